/**
 * base64url without padding (RFC 4648 §5), strict both ways, and no Buffer,
 * so it runs in browsers too (the page player reads tickets with it).
 *
 * `base64UrlDecode` returns undefined for a character outside the alphabet,
 * or for a text no encoder writes (a dangling sixth character, or trailing
 * bits a lenient decoder would drop): one text per byte string, so a
 * mistyped ending is caught, not silently decoded. The caller raises its own
 * layer's error.
 */

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const VALUE = new Map<string, number>(Array.from(ALPHABET, (c, i) => [c, i]));

/** The base64url text of `bytes`, no padding. */
export function base64UrlEncode(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = ((value << 8) | b) & 0xffffff;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += ALPHABET[(value >> bits) & 63];
    }
  }
  if (bits > 0) out += ALPHABET[(value << (6 - bits)) & 63];
  return out;
}

/** The bytes of canonical, unpadded base64url `text`; undefined for anything else. */
export function base64UrlDecode(text: string): Uint8Array | undefined {
  if (typeof text !== "string" || text.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((text.length * 6) / 8));
  let bits = 0;
  let value = 0;
  let at = 0;
  for (const c of text) {
    const v = VALUE.get(c);
    if (v === undefined) return undefined;
    value = ((value << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (value >> bits) & 0xff;
    }
  }
  // Bits left over must be zero, or two texts would decode to the same bytes.
  if ((value & ((1 << bits) - 1)) !== 0) return undefined;
  return out;
}

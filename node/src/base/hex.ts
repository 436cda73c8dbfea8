/**
 * Lower-case hex without a prefix, the form PSP uses for keys and ids in
 * maps, logs, config files and the CLI (viem's bytesToHex/hexToBytes are for
 * 0x-prefixed EVM values). No Buffer, so it runs in browsers too.
 */

const HEX_DIGITS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const HEX_PATTERN = /^(?:[0-9a-fA-F]{2})*$/;

/** The lower-case hex of `bytes`, two digits a byte, no prefix. */
export function hexOf(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX_DIGITS[bytes[i] as number];
  return out;
}

/**
 * The bytes of `text`, hex digits of either case two a byte and no prefix;
 * undefined when it is anything else (odd length, another character), so
 * the caller raises its own layer's error.
 */
export function parseHex(text: string): Uint8Array | undefined {
  if (typeof text !== "string" || !HEX_PATTERN.test(text)) return undefined;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

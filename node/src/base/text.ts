/**
 * Text that goes on the wire: UTF-8 cut to a byte budget without splitting
 * a character, and ASCII-only labels.
 */

const utf8 = new TextEncoder();

/**
 * The UTF-8 bytes of `text`, cut to at most `maxBytes` at a character
 * boundary: a multi-byte character that does not fit whole is left out,
 * never half sent (the receiver would decode it as U+FFFD).
 */
export function utf8Prefix(text: string, maxBytes: number): Uint8Array {
  const bytes = utf8.encode(text);
  if (bytes.length <= maxBytes) return bytes;
  let cut = Math.max(0, Math.floor(maxBytes));
  // Back off over continuation bytes (10xxxxxx) to the first byte of the character at the cut.
  while (cut > 0 && ((bytes[cut] as number) & 0xc0) === 0x80) cut--;
  return bytes.subarray(0, cut);
}

/** `text` with every character outside printable ASCII (0x20-0x7e) replaced by "?". */
export function printableAscii(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?");
}

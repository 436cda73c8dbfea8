/** Hex form of bytes (lower case), for node info printed and parsed by the CLI. */
export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/**
 * Node ids and the XOR metric: 256-bit ids (SHA-256 of the Ed25519 key), XOR
 * distance, bucket index and allocation-free distance comparison.
 *
 * Owns the id arithmetic only; trusts nothing (pure functions over bytes).
 */

/** Id width in bytes and bits. */
export const ID_BYTES = 32;
export const ID_BITS = ID_BYTES * 8;

/** A 32-byte node id or record key. */
export type NodeId = Uint8Array;

/** True when `value` is a 32-byte Uint8Array. */
export function isId(value: unknown): value is NodeId {
  return value instanceof Uint8Array && value.length === ID_BYTES;
}

/** Lower-case hex form, used as a Map key. */
export function idHex(id: Uint8Array): string {
  let out = "";
  for (let i = 0; i < id.length; i++) out += HEX[id[i] as number];
  return out;
}
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Parses 64 hex characters into an id, or returns undefined. */
export function idFromHex(hex: string): NodeId | undefined {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return undefined;
  const out = new Uint8Array(ID_BYTES);
  for (let i = 0; i < ID_BYTES; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function idsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** a XOR b. */
export function xorDistance(a: NodeId, b: NodeId): Uint8Array {
  const out = new Uint8Array(ID_BYTES);
  for (let i = 0; i < ID_BYTES; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

/** Negative when `a` is closer to `target` than `b`, positive when farther, 0 when equal. */
export function compareDistance(a: NodeId, b: NodeId, target: NodeId): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const t = target[i] as number;
    const da = (a[i] as number) ^ t;
    const db = (b[i] as number) ^ t;
    if (da !== db) return da - db;
  }
  return 0;
}

/** Length of the common bit prefix of two ids (ID_BITS when equal). */
export function commonPrefixLength(a: NodeId, b: NodeId): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const x = (a[i] as number) ^ (b[i] as number);
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return ID_BITS;
}

/** Compares ids as unsigned big-endian integers (for sorting id spaces). */
export function compareIds(a: NodeId, b: NodeId): number {
  for (let i = 0; i < ID_BYTES; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

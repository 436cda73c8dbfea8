/**
 * Node ids and the XOR metric: 256-bit ids (SHA-256 of the Ed25519 key), XOR
 * distance, bucket index and allocation-free distance comparison.
 *
 * Owns the id arithmetic only; trusts nothing (pure functions over bytes).
 */
import { bytesEqual } from "../base/bytes.js";
import { hexOf, parseHex } from "../base/hex.js";

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
export const idHex: (id: Uint8Array) => string = hexOf;

/** Parses 64 hex characters into an id, or returns undefined. */
export function idFromHex(hex: string): NodeId | undefined {
  return hex.length === 2 * ID_BYTES ? parseHex(hex) : undefined;
}

/** Ids (and other public bytes: keys, signatures) are equal. */
export const idsEqual: (a: Uint8Array, b: Uint8Array) => boolean = bytesEqual;

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

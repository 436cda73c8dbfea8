/**
 * Byte arrays: equality, order and concatenation.
 *
 * `bytesEqual` returns as soon as two arrays differ, so it is for public
 * data only (keys, ids, digests being looked up); secrets (MACs, AUTH
 * values, tags) are compared with crypto/compare.ts's constantTimeEqual.
 */

/** True when `a` and `b` have the same length and bytes. Not constant time: public data only. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Bytewise order (shorter first on a common prefix): negative, zero or positive, for sorting keys and digests. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** The parts one after another, in a new array. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/**
 * Constant-time comparison of secret byte strings (MACs, AUTH values, tags).
 *
 * Owns one rule: the time taken depends only on the lengths, never on where
 * two equal-length inputs differ. Lengths are treated as public.
 */

/** True when `a` and `b` have the same length and bytes; constant time in the content. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

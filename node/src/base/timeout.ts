/**
 * A deadline on a promise, for RPCs, lookups and bootstraps that must not
 * wait forever on a peer.
 */

/**
 * Settles as `promise` does, or rejects with `onTimeout()` when `ms` pass
 * first (the promise itself is not cancelled; its late result is dropped).
 * A rejection that is not an Error is wrapped in one, so callers can rely on
 * `message`.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), Math.max(0, ms));
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/**
 * A deadline on a promise, for RPCs, lookups and bootstraps that must not
 * wait forever on a peer; and the timer type services take so tests can
 * drive time by hand.
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

/** A timer that can be cancelled. */
export interface CancellableTimer {
  cancel(): void;
}

/** Schedules `fn` after `ms`; services take one so tests can drive their timers by hand. */
export type SetTimer = (fn: () => void, ms: number) => CancellableTimer;

/** The real clock's SetTimer; its timers do not keep the process alive. */
export const unrefTimer: SetTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref?.();
  return { cancel: () => clearTimeout(t) };
};

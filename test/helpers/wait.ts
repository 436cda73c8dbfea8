/**
 * Polling for state that real nodes reach on their own schedule: a consensus
 * adopted, a record stored, a log line written, a viewer attached.
 */

/** What a wait polls: a value when ready; undefined, null or false while not. */
export type Poll<T> = () => T | undefined | null | false | Promise<T | undefined | null | false>;

/** Calls `fn` until it gives a truthy value and returns that; throws "timed out waiting for <what>" once `timeoutMs` has passed. */
export type WaitFor = <T>(what: string, fn: Poll<T>, timeoutMs?: number) => Promise<T>;

/**
 * A WaitFor with a file's own defaults: a consensus round takes seconds and is
 * polled every 100 ms, a stream chunk milliseconds and is polled every 20.
 */
export function waiter(defaults: { timeoutMs: number; intervalMs: number }): WaitFor {
  return async (what, fn, timeoutMs = defaults.timeoutMs) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await fn();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, defaults.intervalMs));
    }
  };
}

/** Waits up to 15 s, polling every 50 ms. */
export const waitFor: WaitFor = waiter({ timeoutMs: 15_000, intervalMs: 50 });

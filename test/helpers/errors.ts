/**
 * What a test asks of a thrown error: its `kind`, and that it was the layer's
 * own typed error. Tests used to carry their own copy of this in each file.
 */
import { PspError } from "../../node/src/errors.js";

type ErrorClass<E> = abstract new (...args: never[]) => E;

/**
 * Runs `fn` and returns the `kind` of the error it threw, or undefined when it
 * returned. An error that is not an instance of `type` (PspError by default) is
 * re-thrown, so an untyped failure fails the test instead of matching a kind.
 */
export function kindOf<E extends PspError = PspError>(fn: () => unknown, type: ErrorClass<E> = PspError as unknown as ErrorClass<E>): E["kind"] | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof type) return (err as E).kind;
    throw err;
  }
}

/** kindOf for a function that returns a promise. */
export async function kindOfAsync<E extends PspError = PspError>(
  fn: () => Promise<unknown>,
  type: ErrorClass<E> = PspError as unknown as ErrorClass<E>,
): Promise<E["kind"] | undefined> {
  try {
    await fn();
    return undefined;
  } catch (err) {
    if (err instanceof type) return (err as E).kind;
    throw err;
  }
}

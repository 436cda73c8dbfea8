/**
 * Error base for every PSP layer.
 *
 * Each layer throws its own subclass (CryptoError, WireError, LinkError, ...)
 * whose `kind` is a string-literal union a caller can switch on, the way arti
 * gives every error an `ErrorKind`. Messages say what was wrong and, where
 * there is one, what to do about it.
 */
export class PspError<K extends string = string> extends Error {
  /** Machine-readable reason; stable across releases. */
  readonly kind: K;

  constructor(kind: K, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = new.target.name;
  }
}

/** True when `err` is a PspError, optionally of one of the given kinds. */
export function isPspError<K extends string>(err: unknown, ...kinds: K[]): err is PspError<K> {
  return err instanceof PspError && (kinds.length === 0 || kinds.includes(err.kind as K));
}

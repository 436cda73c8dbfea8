/**
 * Error base for every PSP layer.
 *
 * Each layer throws its own subclass (CryptoError, WireError, LinkError, ...)
 * with three things a caller can act on, the way arti gives every error an
 * `ErrorKind` through `HasKind`:
 *
 * - `layer`: which layer raised it ("dht", "onion", ...), so equal kind
 *   names in two layers ("malformed", "timeout") never match each other;
 * - `kind`: the layer's own machine-readable reason, stable across releases;
 * - `category`: what to do about it, the same vocabulary in every layer:
 *   drop the peer, fix the configuration, fix the calling code, retry later.
 *
 * Like viem's BaseError, an error carries a short message, optional details
 * and a fix, and `walk()` goes down its causes. `message` stays the short
 * message, so logs and one-line CLI errors read as before.
 *
 * A subclass declares its layer and a kind → category table typed over all of
 * its kinds, so adding a kind without a category does not compile.
 */

/** The layers that raise PspErrors (one per folder of node/src, plus the oracle service). */
export type ErrorLayer =
  | "core"
  | "base"
  | "crypto"
  | "wire"
  | "link"
  | "onion"
  | "directory"
  | "dht"
  | "chain"
  | "authority"
  | "presence"
  | "commercial"
  | "stream"
  | "rewards"
  | "client"
  | "node"
  | "api"
  | "cli"
  | "oracle";

/**
 * What a caller should do about an error, whatever its layer:
 *
 * - `peer`: a remote party sent bytes or documents that are malformed, forged,
 *   replayed, expired or against the protocol. Drop the message, and count it
 *   against that peer; retrying the same input cannot help.
 * - `refused`: a remote party (or the chain) understood the request and said
 *   no by its policy: not registered, revoked, over a quota, not served.
 *   Retrying unchanged will be refused again.
 * - `transient`: the network, a peer's load or a deadline got in the way:
 *   timeouts, busy, unreachable, a rate limit. Retry later, after
 *   `retryAfterMs` when it is set.
 * - `config`: the configuration or environment is wrong (a file, an option a
 *   user chose, a deployment, a passphrase). A person must fix it; the
 *   message names the fix.
 * - `bug`: the calling code broke a contract (a bad argument, a call in the
 *   wrong state). Fix the caller.
 * - `shutdown`: the object was closed or is closing; the operation was
 *   abandoned and nothing is wrong.
 *
 * A kind has one category wherever it is met: a refusal that travels back
 * to a requester (an RPC ERROR, an authority's refusal) keeps its sender's
 * kind and so its category, and two error classes of one layer give a kind
 * they share the same category (test/unit/core/error-layers.test.ts).
 */
export type ErrorCategory = "peer" | "refused" | "transient" | "config" | "bug" | "shutdown";

export const ERROR_CATEGORIES: readonly ErrorCategory[] = ["peer", "refused", "transient", "config", "bug", "shutdown"];

export interface PspErrorOptions {
  cause?: unknown;
  /** Longer explanation: what was seen, against what was expected. */
  details?: string;
  /** What the user or caller should do (a command, an option, a file). */
  fix?: string;
  /** Where the docs explain it, relative to the repository ("docs/spec/dht.md#records"). */
  docsPath?: string;
  /** For transient errors: the earliest a retry can help, in milliseconds. */
  retryAfterMs?: number;
}

/** Kind → category table of one layer; `satisfies` it so every kind must appear. */
export type KindCategories<K extends string> = {
  readonly [P in K]: ErrorCategory;
};

export class PspError<K extends string = string> extends Error {
  /** Machine-readable reason within the layer; stable across releases. */
  readonly kind: K;
  /** The message without details or fix (the same as `message`). */
  readonly shortMessage: string;
  readonly details: string | undefined;
  readonly fix: string | undefined;
  readonly docsPath: string | undefined;
  readonly retryAfterMs: number | undefined;

  /** The layer that raised it; subclasses override. */
  get layer(): ErrorLayer {
    return "core";
  }

  /** What to do about it; subclasses map their kinds, the base calls everything a bug. */
  get category(): ErrorCategory {
    return "bug";
  }

  /** `layer/kind`, unique across layers ("dht/timeout", "link/timeout"). */
  get qualifiedKind(): string {
    return `${this.layer}/${this.kind}`;
  }

  constructor(kind: K, message: string, options?: PspErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.name = new.target.name;
    this.shortMessage = message;
    this.details = options?.details;
    this.fix = options?.fix;
    this.docsPath = options?.docsPath;
    this.retryAfterMs = options?.retryAfterMs;
  }

  /**
   * True when `err` is an instance of this class (a layer's error), of one of
   * `kinds` when given: `DhtError.is(err, "timeout")` never matches a link
   * timeout.
   */
  static is<E extends PspError>(this: abstract new (...args: never[]) => E, err: unknown, ...kinds: E["kind"][]): err is E {
    return err instanceof this && (kinds.length === 0 || kinds.includes(err.kind));
  }

  /**
   * Walks this error and its causes, outermost first. With `match`, returns
   * the first one it accepts (or undefined); without, the innermost cause.
   */
  walk(match?: (err: unknown) => boolean): unknown {
    return walkError(this, match);
  }

  /** The message with details and fix on lines of their own, for people. */
  describe(): string {
    const lines = [this.shortMessage];
    if (this.details) lines.push(`details: ${this.details}`);
    if (this.fix) lines.push(`fix: ${this.fix}`);
    if (this.docsPath) lines.push(`docs: ${this.docsPath}`);
    return lines.join("\n");
  }

  /** A plain object for logs and API bodies; causes are summarized, never their stacks. */
  toJSON(): Record<string, unknown> {
    const cause = this.cause;
    return {
      name: this.name,
      layer: this.layer,
      kind: this.kind,
      category: this.category,
      message: this.shortMessage,
      ...(this.details === undefined ? {} : { details: this.details }),
      ...(this.fix === undefined ? {} : { fix: this.fix }),
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
      ...(cause === undefined
        ? {}
        : {
            cause: cause instanceof PspError ? cause.toJSON() : cause instanceof Error ? { name: cause.name, message: cause.message } : String(cause),
          }),
    };
  }
}

/**
 * Declares a layer's error class: its layer and kind → category table.
 *
 *   export class DhtError extends layerError<DhtErrorKind>("dht", DHT_CATEGORIES) {}
 */
export function layerError<K extends string>(layer: ErrorLayer, categories: KindCategories<K>) {
  return class LayerError extends PspError<K> {
    /** The layer every error of this class belongs to. */
    static readonly layer: ErrorLayer = layer;
    override get layer(): ErrorLayer {
      return layer;
    }
    override get category(): ErrorCategory {
      return categories[this.kind] ?? "bug";
    }
    /** Every kind of this layer, e.g. to validate kinds received from a peer. */
    static readonly kinds: readonly K[] = Object.keys(categories) as K[];
    /** The category of a kind of this layer. */
    static categoryOf(kind: K): ErrorCategory {
      return categories[kind];
    }
  };
}

/** True when `err` is a PspError, optionally of one of the given kinds (in any layer: prefer `XError.is`). */
export function isPspError<K extends string>(err: unknown, ...kinds: K[]): err is PspError<K> {
  return err instanceof PspError && (kinds.length === 0 || kinds.includes(err.kind as K));
}

/** The category of any thrown value: a PspError's own, `bug` for anything else. */
export function errorCategory(err: unknown): ErrorCategory {
  return err instanceof PspError ? err.category : "bug";
}

/** Walks `err` and its `cause` chain (at most 32 deep, so a cycle ends); see PspError.walk. */
export function walkError(err: unknown, match?: (err: unknown) => boolean): unknown {
  let current: unknown = err;
  for (let depth = 0; depth < 32; depth++) {
    if (match?.(current)) return current;
    const next = current instanceof Error ? current.cause : undefined;
    if (next === undefined) return match ? undefined : current;
    current = next;
  }
  return match ? undefined : current;
}

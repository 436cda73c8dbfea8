/**
 * A token bucket in bytes, driven by caller-supplied time.
 *
 * Owns rate arithmetic only: tokens accrue at `bytesPerSecond` up to `burstBytes`;
 * a send of n bytes is allowed when n tokens are present. Time is an input (ms,
 * monotonic), so tests run it on a fake clock. A clock that goes backwards is
 * treated as no time passing. The unit need not be bytes: the authority and
 * the DHT proxy count requests with it.
 */
import { BaseError } from "./errors.js";

export interface TokenBucketOptions {
  bytesPerSecond: number;
  burstBytes: number;
  /** Time of creation in ms; the bucket starts full. */
  now: number;
}

export class TokenBucket {
  readonly bytesPerSecond: number;
  readonly burstBytes: number;
  private tokens: number;
  private updatedAt: number;

  constructor(options: TokenBucketOptions) {
    const { bytesPerSecond, burstBytes, now } = options;
    if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) {
      throw new BaseError("bad-argument", `bytesPerSecond must be a positive finite number, got ${bytesPerSecond}`);
    }
    if (!(burstBytes > 0) || !Number.isFinite(burstBytes)) {
      throw new BaseError("bad-argument", `burstBytes must be a positive finite number, got ${burstBytes}`);
    }
    this.bytesPerSecond = bytesPerSecond;
    this.burstBytes = burstBytes;
    this.tokens = burstBytes;
    this.updatedAt = now;
  }

  private refill(now: number): void {
    if (now > this.updatedAt) {
      this.tokens = Math.min(this.burstBytes, this.tokens + ((now - this.updatedAt) * this.bytesPerSecond) / 1000);
      this.updatedAt = now;
    }
  }

  /** Tokens available at `now`. */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /** Takes `bytes` tokens if present; returns whether it did. */
  tryTake(bytes: number, now: number): boolean {
    this.refill(now);
    if (this.tokens < bytes) return false;
    this.tokens -= bytes;
    return true;
  }

  /** Earliest time at which `bytes` tokens will be present (now, if they already are). */
  readyAt(bytes: number, now: number): number {
    this.refill(now);
    if (this.tokens >= bytes) return now;
    if (bytes > this.burstBytes) return Number.POSITIVE_INFINITY;
    return now + Math.ceil(((bytes - this.tokens) * 1000) / this.bytesPerSecond);
  }
}

export interface KeyedRateLimiterOptions {
  requestsPerMinute: number;
  burst: number;
  /** Keys tracked at once; beyond it the least recently used key is forgotten (it starts again with a full bucket). */
  maxKeys: number;
}

/**
 * One request budget (a TokenBucket counting requests) per key, such as a
 * client, an identity or a circuit: what the authority, oracle and
 * commercial services rate-limit their callers with. Memory is bounded by
 * maxKeys; forgetting a key can only make its caller's budget full again.
 */
export class KeyedRateLimiter {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(private readonly options: KeyedRateLimiterOptions) {
    if (!Number.isSafeInteger(options.maxKeys) || options.maxKeys < 1) {
      throw new BaseError("bad-argument", `maxKeys must be a positive integer, got ${options.maxKeys}`);
    }
  }

  /** Takes one request of `key`'s budget at `now` (ms). Returns 0 when taken, else the ms until one will be there (≥ 1). */
  take(key: string, now: number): number {
    let bucket = this.buckets.get(key);
    if (bucket) this.buckets.delete(key);
    else {
      bucket = new TokenBucket({ bytesPerSecond: this.options.requestsPerMinute / 60, burstBytes: this.options.burst, now });
      if (this.buckets.size >= this.options.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
    }
    // Re-inserted last: the Map's order is the order of last use.
    this.buckets.set(key, bucket);
    if (bucket.tryTake(1, now)) return 0;
    return Math.max(1, Math.ceil(bucket.readyAt(1, now) - now));
  }

  /** Keys tracked now. */
  get size(): number {
    return this.buckets.size;
  }
}

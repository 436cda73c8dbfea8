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

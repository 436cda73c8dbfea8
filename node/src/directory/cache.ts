/**
 * The consensus cache: the latest verified consensus a client uses and any
 * node serves to others (every node proxies discovery requests, docs/spec/directory.md §7).
 *
 * Owns the replacement rule: a consensus replaces the held one when it is
 * newer (later valid-after), or the same body with more signatures. A
 * different body for the same period never replaces the held one (with K a
 * strict majority, two cannot both be validly signed by honest discovery
 * nodes). Serves only what is still live. Trusts verifyConsensus.
 */
import { compressConsensus } from "./compression.js";
import type { RefreshOptions } from "./schedule.js";
import { nextRefreshTime } from "./schedule.js";
import { verifyConsensus } from "./consensus.js";
import type { VerifiedConsensus, VerifyConsensusOptions } from "./consensus.js";
import { bytesEqual } from "../base/bytes.js";

export type ConsensusCacheOptions = Omit<VerifyConsensusOptions, "now">;

export type OfferResult = "accepted" | "older" | "same" | "conflicting";

export class ConsensusCache {
  private held?: VerifiedConsensus;
  private compressed?: { of: Uint8Array; bytes: Uint8Array };

  constructor(private readonly options: ConsensusCacheOptions = {}) {}

  /**
   * Verifies `bytes` and keeps it if it is an improvement. Throws
   * DirectoryError (see verifyConsensus) when it does not verify; the held
   * consensus is then unchanged.
   */
  offer(bytes: Uint8Array, now: number): OfferResult {
    const consensus = verifyConsensus(bytes, { ...this.options, now });
    const held = this.held;
    if (held && held.validUntil >= now) {
      if (consensus.validAfter < held.validAfter) return "older";
      if (consensus.validAfter === held.validAfter) {
        if (!bytesEqual(consensus.digest, held.digest)) return "conflicting";
        if (consensus.signers.length <= held.signers.length) return "same";
      }
    }
    this.held = consensus;
    return "accepted";
  }

  /** The held consensus while it is live (valid-until not passed), else undefined. */
  current(now: number): VerifiedConsensus | undefined {
    return this.held && now <= this.held.validUntil ? this.held : undefined;
  }

  /** The document bytes to serve to a client asking this node, while live. */
  serve(now: number): Uint8Array | undefined {
    return this.current(now)?.bytes;
  }

  /** The same document brotli-compressed (compression.ts), computed once per document. */
  serveCompressed(now: number): Uint8Array | undefined {
    const bytes = this.serve(now);
    if (!bytes) return undefined;
    if (this.compressed?.of !== bytes) this.compressed = { of: bytes, bytes: compressConsensus(bytes) };
    return this.compressed.bytes;
  }

  /** True while the held consensus is before its fresh-until time. */
  isFresh(now: number): boolean {
    return this.held !== undefined && now < this.held.freshUntil;
  }

  /** When to fetch the next consensus; `now` when none is live. */
  refreshAt(now: number, options: RefreshOptions = {}): number {
    const held = this.current(now);
    return held ? Math.max(now, nextRefreshTime(held, options)) : now;
  }
}

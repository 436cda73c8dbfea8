/**
 * Keeping the node-only view (internal.ts) in step with the held consensus
 * (issue 20; docs/spec/directory.md §12).
 *
 * Owns: the refresh rule (InternalViewRefresher: which nodes are asked, in
 * which order, when a round is done, and the retry with backoff of a round
 * that got no answer or left internal nodes without a descriptor), its
 * counters (InternalViewStats, the psp_directory_internal_view_* metrics)
 * and its log lines; retryDelay, the backoff shared with outbound.ts.
 *
 * Trusts: InternalDirectory.offer for every acceptance rule (each descriptor
 * is checked against its own signature and the K-of-N consensus), so any
 * listed node may serve the view: a source can withhold descriptors, never
 * forge one. Kept out of index.ts (timers and the logger), like client.ts.
 */
import type { PeerAddress } from "../link/manager.js";
import { childLogger, logFailure, throttledFailureLog } from "../log.js";
import type { Logger } from "../log.js";
import { DirectoryError } from "./errors.js";
import { internalIdentities } from "./internal.js";
import type { InternalDirectory, InternalView, InternalViewConsensus } from "./internal.js";
import { peerName } from "./transport.js";

/** Counters of the node-only view refresh (metrics: psp_directory_internal_view_*). */
export interface InternalViewStats {
  /** View answers received and offered. */
  fetches: number;
  /** Failed fetches, by DirectoryError kind ("unavailable", "unauthorized", ...). */
  failures: Record<string, number>;
  /** Refresh rounds that ended without a complete view and were scheduled again. */
  retries: number;
  /** valid-after of the consensus the last successful round was for (0: none yet). */
  viewValidAfter: number;
  /** True while the held consensus has a newer valid-after than the last successful round (the view may miss nodes it added). */
  stale: boolean;
  /** Internal nodes of the held consensus without a fresh descriptor after the last round. */
  missing: number;
}

export interface InternalViewRefresherOptions {
  internal: InternalDirectory;
  /** Fetches the view from one node (fetchInternalView over the node's RPC). */
  fetch: (peer: PeerAddress) => Promise<InternalView>;
  /**
   * Where to ask, in order: the trusted discovery nodes first, then other
   * listed nodes (every node serves the view it verified). Safe to fall back
   * on: each descriptor is checked against its own signature and the
   * K-of-N consensus, so a node can withhold descriptors, never forge one.
   */
  sources: (consensus: InternalViewConsensus) => PeerAddress[];
  /** A discovery node's own view (its held descriptors), used instead of fetching. */
  local?: () => InternalView | undefined;
  /** First retry delay (ms, default 5 s); doubles per failed round up to maxRetryMs (default 60 s). */
  minRetryMs?: number;
  maxRetryMs?: number;
  now?: () => number;
  /** Failures at debug per source, a round that got no answer at warn (throttled). */
  logger?: Logger;
}

/**
 * Keeps the node-only view in step with the held consensus: on each new
 * consensus it asks the sources in turn, merging answers until every
 * internal node of the consensus has a fresh descriptor (or the sources run
 * out); a round that got no answer, or left nodes missing, is retried with
 * backoff (retryDelay) until it completes or a newer consensus replaces it.
 * Counted in `stats`.
 */
export class InternalViewRefresher {
  readonly stats: InternalViewStats = { fetches: 0, failures: {}, retries: 0, viewValidAfter: 0, stale: false, missing: 0 };
  private target: (InternalViewConsensus & { validUntil?: number }) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly log: Logger;
  private readonly logRepeating: ReturnType<typeof throttledFailureLog>;
  private readonly minRetryMs: number;
  private readonly maxRetryMs: number;
  private readonly now: () => number;

  constructor(private readonly options: InternalViewRefresherOptions) {
    this.log = childLogger(options.logger, "internal-view");
    this.logRepeating = throttledFailureLog(this.log);
    this.minRetryMs = options.minRetryMs ?? 5_000;
    this.maxRetryMs = Math.max(this.minRetryMs, options.maxRetryMs ?? 60_000);
    this.now = options.now ?? Date.now;
  }

  /** A new consensus is held: refresh for it (a pending retry for an older one is dropped). Resolves when this round ends. */
  update(consensus: InternalViewConsensus & { validUntil?: number }): Promise<void> {
    this.target = consensus;
    this.attempt = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stats.viewValidAfter < consensus.validAfter && internalIdentities(consensus).size > 0) this.stats.stale = true;
    return this.round(consensus);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async round(consensus: InternalViewConsensus & { validUntil?: number }): Promise<void> {
    // One round at a time: a consensus arriving mid-round waits for it, then runs for itself.
    while (this.running) await this.running;
    if (this.stopped || this.target !== consensus) return;
    const done = this.run(consensus);
    this.running = done;
    try {
      await done;
    } finally {
      this.running = undefined;
    }
  }

  private async run(consensus: InternalViewConsensus & { validUntil?: number }): Promise<void> {
    const { internal } = this.options;
    if (internalIdentities(consensus).size === 0) {
      internal.setConsensus(consensus);
      this.succeeded(consensus, 0);
      return;
    }
    const local = this.options.local?.();
    if (local) {
      internal.offer(consensus, local.descriptors, this.now());
      this.succeeded(consensus, internal.missing(this.now()).length);
      return;
    }
    internal.setConsensus(consensus);
    let answered = false;
    const errors: string[] = [];
    for (const peer of this.options.sources(consensus)) {
      if (this.stopped || this.target !== consensus) return;
      try {
        const view = await this.options.fetch(peer);
        this.stats.fetches++;
        answered = true;
        const result = internal.offer(consensus, view.descriptors, this.now());
        if (Object.keys(result.rejected).length > 0)
          this.log.debug({ from: peerName(peer), rejected: result.rejected }, "internal view: some descriptors refused");
        if (internal.missing(this.now()).length === 0) break;
      } catch (err) {
        const kind = err instanceof DirectoryError ? err.kind : "internal";
        this.stats.failures[kind] = (this.stats.failures[kind] ?? 0) + 1;
        errors.push(err instanceof Error ? err.message : String(err));
        logFailure(this.log, err, "fetch the internal nodes' view", "debug", { from: peerName(peer) });
      }
    }
    if (this.stopped || this.target !== consensus) return;
    const missing = internal.missing(this.now()).length;
    if (answered && missing === 0) {
      this.succeeded(consensus, 0);
      return;
    }
    this.stats.missing = missing;
    if (answered) {
      // Some view is held for this consensus: relays can reach the nodes it has; the rest are fetched again.
      this.stats.viewValidAfter = consensus.validAfter;
      this.stats.stale = false;
    }
    this.attempt++;
    this.stats.retries++;
    const delay = retryDelay(this.attempt, this.minRetryMs, this.maxRetryMs);
    const why = answered
      ? `${missing} internal node(s) of the consensus have no descriptor in any view fetched`
      : `no node gave the internal nodes' view: ${errors.join("; ") || "no source known"}`;
    this.logRepeating(new DirectoryError("unavailable", `${why}; retrying in ${delay} ms`), "fetch the internal nodes' view", answered ? "info" : "warn");
    this.timer = setTimeout(() => void this.round(consensus), delay);
    this.timer.unref();
  }

  private succeeded(consensus: InternalViewConsensus, missing: number): void {
    this.stats.viewValidAfter = consensus.validAfter;
    this.stats.stale = false;
    this.stats.missing = missing;
  }
}

/** The retry delay after `failures` consecutive failed rounds (≥ 1): min · 2^(failures−1), at most max. */
export function retryDelay(failures: number, minMs: number, maxMs: number): number {
  if (failures < 1) return 0;
  return Math.min(maxMs, minMs * 2 ** Math.min(failures - 1, 30));
}

/**
 * A node's usage reporter (whitepaper §8.3, issue 16): what its StreamHost
 * counted (stream/usage.ts UsageMeter), signed with the node key and sent to
 * a current oracle every `rewards.reportIntervalSeconds`.
 *
 * Owns: the schedule (windows on the interval grid and cut at every reward
 * epoch boundary, from the epoch timing the caller reads from the chain),
 * signing each part once when its window is cut (a retry sends the same
 * bytes: a reporter never sends two different reports for one (from, to,
 * part)), the choice of oracle (the consensus entries flagged oracle,
 * running ones first, starting at one picked by this node's key so nodes
 * spread over the oracles, then the one that last took a report; on a
 * failure the others in turn), the outbox of signed reports not yet taken
 * (bounded, oldest dropped and counted, retried with back-off while no
 * oracle takes them), its log and the stats its metrics read (psp_usage_*, registered in metrics.ts).
 *
 * Trusts: the meter; the consensus for who the oracles are; the caller's
 * `sign` (rewards/report.ts signUsageReport with the node key) and `send`
 * (the usage-report message over link RPC, service oracle).
 */
import { hexOf } from "../base/hex.js";
import { NodeFlag } from "../directory/config.js";
import type { ConsensusEntry } from "../directory/consensus.js";
import { childLogger } from "../log.js";
import type { Logger } from "../log.js";
import { StreamMediaError } from "../stream/media-errors.js";
import { isFinalReportRefusal } from "../stream/oracle-errors.js";
import { DEFAULT_REPORT_INTERVAL_SECONDS, UsageOutbox, UsageSchedule } from "../stream/usage.js";
import type { EpochTiming, UsageMeter, UsageOutboxStats, UsageWindow } from "../stream/usage.js";

/** Signed reports held while no oracle takes them, by default (about a day at 300 s with a few parts each). */
export const DEFAULT_MAX_PENDING_REPORTS = 1024;

export interface SignedUsageReport {
  window: UsageWindow;
  bytes: Uint8Array;
}

export interface NodeUsageReporterOptions {
  /** This node's identity key (spreads nodes over the oracles). */
  identity: Uint8Array;
  meter: UsageMeter;
  /** Seconds between reports (config rewards.reportIntervalSeconds, default 300). */
  intervalSeconds?: number;
  /** The reward epochs' timing from the chain (undefined until read: windows are cut on the interval grid only). */
  epoch: EpochTiming | (() => EpochTiming | undefined);
  /** The current oracles' node keys (oracleKeysOf(consensus)). */
  oracles: () => readonly Uint8Array[];
  /** Signs one window as a usage report with the node key. */
  sign: (window: UsageWindow) => Uint8Array;
  /** Sends a signed report to the oracle with this node key; resolves once it acknowledged. */
  send: (oracle: Uint8Array, report: Uint8Array) => Promise<void>;
  /** Signed reports held while undelivered (default 1024). */
  maxPending?: number;
  /** First retry after no oracle took a report, ms (default 5 s), doubling up to 5 min. */
  retryMs?: number;
  clock?: () => number;
  logger?: Logger;
}

export interface NodeUsageReporterStats extends UsageOutboxStats {
  /** Windows cut with something to report (their parts are `queued`). */
  windows: number;
  /** Parts that failed to sign (a bug; logged). */
  signFailures: number;
  /** Sends to one oracle that failed (the next was tried). */
  oracleFailures: number;
  /** Reports an oracle refused for good (bad, conflicting, outside their epoch): dropped, never resent. */
  refused: number;
}

/** The node keys of a consensus's oracles: running ones first, each group in consensus order. */
export function oracleKeysOf(entries: readonly ConsensusEntry[] | undefined): Uint8Array[] {
  const oracles = (entries ?? []).filter((e) => (e.flags & NodeFlag.oracle) !== 0);
  const running = (e: ConsensusEntry): number => ((e.flags & NodeFlag.running) !== 0 ? 0 : 1);
  return oracles
    .map((e, i) => ({ e, i }))
    .sort((a, b) => running(a.e) - running(b.e) || a.i - b.i)
    .map(({ e }) => e.identity);
}

export class NodeUsageReporter {
  private readonly schedule: UsageSchedule;
  private readonly outbox: UsageOutbox<SignedUsageReport>;
  private readonly log: Logger;
  private readonly counts = { windows: 0, signFailures: 0, oracleFailures: 0, refused: 0 };
  /** The oracle that last took a report (hex). */
  private lastGood: string | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: NodeUsageReporterOptions) {
    this.log = childLogger(options.logger, "node.usage-reporter");
    this.outbox = new UsageOutbox<SignedUsageReport>({
      deliver: (report) => this.deliver(report),
      maxPending: options.maxPending ?? DEFAULT_MAX_PENDING_REPORTS,
      ...(options.retryMs === undefined ? {} : { retryMs: options.retryMs }),
      what: "usage report",
      ...(options.logger ? { logger: options.logger } : {}),
    });
    this.schedule = new UsageSchedule({
      meter: options.meter,
      intervalSeconds: options.intervalSeconds ?? DEFAULT_REPORT_INTERVAL_SECONDS,
      epoch: options.epoch,
      ...(options.clock ? { clock: options.clock } : {}),
      onWindows: (windows) => this.onWindows(windows),
    });
  }

  start(): void {
    this.schedule.start();
  }

  get stats(): NodeUsageReporterStats {
    return { ...this.outbox.stats, ...this.counts };
  }

  /** Signed reports waiting for an oracle. */
  get pending(): number {
    return this.outbox.size;
  }

  private onWindows(windows: UsageWindow[]): void {
    this.counts.windows++;
    const signed: SignedUsageReport[] = [];
    for (const window of windows) {
      try {
        signed.push({ window, bytes: this.options.sign(window) });
      } catch (err) {
        this.counts.signFailures++;
        this.log.error({ err, from: window.from, to: window.to, part: window.part }, "sign a usage report failed: its bytes are not reported");
      }
    }
    this.log.debug({ from: windows[0]?.from, to: windows[0]?.to, parts: signed.length }, "usage window cut");
    this.outbox.push(signed);
  }

  /** The oracles to try, in order: the one that last took a report, then from this node's starting point round the list. */
  private order(): Uint8Array[] {
    const all = [...this.options.oracles()];
    if (all.length === 0) return [];
    const id = this.options.identity;
    const start = (((id[0] ?? 0) << 8) | (id[1] ?? 0)) % all.length;
    const ordered = [...all.slice(start), ...all.slice(0, start)];
    const good = ordered.findIndex((k) => hexOf(k) === this.lastGood);
    if (good > 0) ordered.unshift(...ordered.splice(good, 1));
    return ordered;
  }

  private async deliver(report: SignedUsageReport): Promise<void> {
    const oracles = this.order();
    if (oracles.length === 0) throw new StreamMediaError("unreachable", "the consensus lists no oracle to send usage reports to", { retryAfterMs: 60_000 });
    let last: unknown;
    for (const oracle of oracles) {
      if (this.closed) throw new StreamMediaError("closed", "the usage reporter is closed");
      try {
        await this.options.send(oracle, report.bytes);
        this.lastGood = hexOf(oracle);
        return;
      } catch (err) {
        if (isFinalReportRefusal(err)) {
          // Another oracle would refuse it too (they replicate what they take): resending cannot help.
          this.counts.refused++;
          this.log.warn({ err, from: report.window.from, to: report.window.to, part: report.window.part }, "an oracle refused a usage report for good: dropped");
          return;
        }
        this.counts.oracleFailures++;
        last = err;
        this.log.debug({ err, oracle: hexOf(oracle).slice(0, 16) }, "an oracle did not take a usage report; trying the next");
      }
    }
    throw new StreamMediaError("unreachable", `no oracle took the usage report (${oracles.length} tried): ${(last as Error | undefined)?.message ?? ""}`, {
      cause: last,
    });
  }

  /** Cuts the window due now (if any) and tries what waits; resolves when that run ended. */
  flush(): Promise<void> {
    this.schedule.cut();
    return this.outbox.flush();
  }

  /** Stops: the partial window up to now is signed and tried once (`final`, default true), then what still waits is dropped (counted). */
  close(final = true): Promise<void> {
    this.closing ??= (async () => {
      this.schedule.stop(final);
      if (final) await this.outbox.flush();
      this.closed = true;
      this.outbox.close();
    })();
    return this.closing;
  }
}

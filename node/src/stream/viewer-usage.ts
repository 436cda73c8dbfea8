/**
 * The viewer's usage reporter (whitepaper §8.3, issue 16): the bytes a
 * player received from each access point, handed out as report windows
 * every interval and once more when the player stops.
 *
 * Owns the viewer's schedule (usage.ts UsageSchedule: the interval grid and
 * the epoch boundaries, so no window straddles an epoch) and its outbox
 * (windows not yet delivered wait, bounded, and are retried with back-off).
 * The caller's `send` signs a window with the session's viewer key and
 * carries it through a circuit to an oracle (the client does, like the
 * session fetch); a window is handed to `send` until it resolves once.
 * `cut()` ends the current window early, e.g. before the session changes.
 *
 * Trusts the player's meter and the caller's `send`.
 */
import type { Logger } from "../log.js";
import type { Player } from "./player.js";
import { DEFAULT_REPORT_INTERVAL_SECONDS, UsageOutbox, UsageSchedule } from "./usage.js";
import type { EpochTiming, UsageMeter, UsageOutboxStats, UsageWindow } from "./usage.js";

export interface ViewerUsageOptions {
  meter: UsageMeter;
  /** Delivers one window (signed and sent by the caller); rejects when it could not (retried). */
  send: (window: UsageWindow) => Promise<void>;
  /** Seconds between windows (default 300). */
  intervalSeconds?: number;
  /** The reward epochs' timing: windows are also cut at its boundaries. */
  epoch?: EpochTiming | (() => EpochTiming | undefined);
  /** Windows held while delivery fails (default 64). */
  maxPending?: number;
  /** First retry after a failed delivery, ms (default 5 s). */
  retryMs?: number;
  clock?: () => number;
  logger?: Logger;
}

export class ViewerUsageReporter {
  private readonly schedule: UsageSchedule;
  private readonly outbox: UsageOutbox<UsageWindow>;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: ViewerUsageOptions) {
    this.outbox = new UsageOutbox<UsageWindow>({
      deliver: options.send,
      maxPending: options.maxPending ?? 64,
      ...(options.retryMs === undefined ? {} : { retryMs: options.retryMs }),
      what: "viewer usage report",
      ...(options.logger ? { logger: options.logger } : {}),
    });
    this.schedule = new UsageSchedule({
      meter: options.meter,
      intervalSeconds: options.intervalSeconds ?? DEFAULT_REPORT_INTERVAL_SECONDS,
      ...(options.epoch === undefined ? {} : { epoch: options.epoch }),
      ...(options.clock ? { clock: options.clock } : {}),
      onWindows: (windows) => this.outbox.push(windows),
    });
    this.schedule.start();
  }

  get stats(): UsageOutboxStats {
    return this.outbox.stats;
  }

  /** Windows waiting to be delivered. */
  get pending(): number {
    return this.outbox.size;
  }

  /** Ends the current window now (before a session change); resolves when what waits was tried once. */
  cut(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.schedule.cut(true);
    return this.outbox.flush();
  }

  /** The final window (what was counted up to now), tried once; then the reporter stops and drops what could not be delivered. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.schedule.stop(true);
      await this.outbox.flush();
      this.outbox.close();
    })();
    return this.closing;
  }
}

/** Reports a player's usage: windows every interval, the final one when the player ends. */
export function reportPlayerUsage(player: Player, options: Omit<ViewerUsageOptions, "meter">): ViewerUsageReporter {
  const reporter = new ViewerUsageReporter({ ...options, meter: player.usage });
  player.once("end", () => void reporter.close());
  return reporter;
}

/**
 * Usage metering for bandwidth rewards (whitepaper §8.3, issue 16): what a
 * node or a viewer counts on its stream links, cut into report windows.
 *
 * Owns: the unit counted (the bytes of whole CHUNK frames, LEN ‖ TYPE ‖ SEQ
 * ‖ sealed, as written to or read from a stream link: the same figure at
 * both ends of a link), the UsageMeter (bytes per (stream, peer, direction)
 * since the last cut, the landing node's stream anchors), the cut of a
 * window into parts within the report limits (entries, anchors, an estimate
 * of the encoded bytes), where windows are cut (on a grid of the report
 * interval and at every epoch boundary: a window never straddles an epoch),
 * and the two pieces both reporters share: UsageSchedule (the timer that
 * cuts) and UsageOutbox (windows or signed reports waiting to be delivered,
 * bounded, oldest dropped and counted, retried with back-off).
 *
 * Memory is bounded: distinct (stream, peer, direction) keys per window
 * (the oldest key is dropped with its bytes, counted), anchors held, and
 * the outbox. Nothing here signs or sends: the reporters get `sign` and
 * `send` from their caller (rewards/report.ts and the oracle messages).
 *
 * Trusts its caller for the peer keys it counts under (a proven node
 * identity, or a session sid the node checked at ATTACH).
 */
import { hexOf } from "../base/hex.js";
import { childLogger, throttledFailureLog } from "../log.js";
import type { Logger } from "../log.js";
import { FRAME_HEADER_LEN } from "./frames.js";
import { StreamMediaError } from "./media-errors.js";

/** Most entries in one usage report (part). */
export const MAX_REPORT_ENTRIES = 512;
/** Most stream anchors in one usage report (part). */
export const MAX_REPORT_ANCHORS = 64;
/** Longest window one report covers, seconds. */
export const MAX_REPORT_WINDOW_SECONDS = 3600;
/** Largest encoded usage report. */
export const MAX_USAGE_REPORT_BYTES = 48 * 1024;
/** Bytes of one entry stay below 2^48. */
export const MAX_ENTRY_BYTES = 2 ** 48 - 1;
/**
 * Room a part's entries and anchors may take, estimated: the report's limit less
 * what its envelope adds (signature, signer, kind, times, a viewer's session id).
 */
export const DEFAULT_PART_BUDGET_BYTES = MAX_USAGE_REPORT_BYTES - 2048;
/** Distinct (stream, peer, direction) keys a meter holds per window by default. */
export const DEFAULT_METER_MAX_KEYS = 16_384;
/** Anchors (streams landed here) a meter holds by default. */
export const DEFAULT_METER_MAX_ANCHORS = 1024;
/** Report interval by default, seconds. */
export const DEFAULT_REPORT_INTERVAL_SECONDS = 300;

/** TYPE (1) ‖ SEQ (8) before a CHUNK frame's sealed bytes. */
const CHUNK_BODY_OVERHEAD = 1 + 8;

/** Bytes of a CHUNK frame carrying `sealedLength` sealed bytes, as it is on the link: what every meter counts per chunk. */
export function chunkFrameBytes(sealedLength: number): number {
  return FRAME_HEADER_LEN + CHUNK_BODY_OVERHEAD + sealedLength;
}

export type UsageDirection = "sent" | "received";

/** One counted (stream, peer, direction): an entry of a usage report (rewards/report.ts signs these). */
export interface UsageEntry {
  /** 16-byte stream id. */
  stream: Uint8Array;
  /** A node key (32) or a viewer's session sid (16). */
  peer: Uint8Array;
  direction: UsageDirection;
  bytes: number;
}

/** A landing node's receipt for a stream and the bitrate it allowed: a usage report's anchor. */
export interface StreamAnchor {
  stream: Uint8Array;
  receipt: Uint8Array;
  kbps: number;
}

/** One part of a report window: what a reporter signs and sends as one usage report. Times are unix seconds. */
export interface UsageWindow {
  from: number;
  to: number;
  part: number;
  entries: UsageEntry[];
  anchors: StreamAnchor[];
}

// ------------------------------------------------------------ parts

/** CBOR size of an unsigned integer's head. */
const uintSize = (n: number): number => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1_0000_0000 ? 5 : 9);
const bstrSize = (n: number): number => uintSize(n) + n;
/** An entry { b, d, p, s } as canonical CBOR: map head, four 1-char keys, the values. */
export const entryEncodedBytes = (e: UsageEntry): number => 1 + 4 * 2 + uintSize(e.bytes) + 1 + bstrSize(e.peer.length) + bstrSize(e.stream.length);
/** An anchor { k, r, s }. */
export const anchorEncodedBytes = (a: StreamAnchor): number => 1 + 3 * 2 + uintSize(a.kbps) + bstrSize(a.receipt.length) + bstrSize(a.stream.length);

export interface SplitLimits {
  maxEntries?: number;
  maxAnchors?: number;
  budgetBytes?: number;
}

/**
 * Cuts one window's entries and anchors into parts 0, 1, ... each within the
 * limits (entries first, then anchors in the room left). An empty window has
 * no parts. Deterministic: the same input gives the same parts.
 */
export function splitWindow(
  from: number,
  to: number,
  entries: readonly UsageEntry[],
  anchors: readonly StreamAnchor[],
  limits: SplitLimits = {},
): UsageWindow[] {
  const maxEntries = limits.maxEntries ?? MAX_REPORT_ENTRIES;
  const maxAnchors = limits.maxAnchors ?? MAX_REPORT_ANCHORS;
  const budget = limits.budgetBytes ?? DEFAULT_PART_BUDGET_BYTES;
  const parts: UsageWindow[] = [];
  let current: UsageWindow | undefined;
  let used = 0;
  const room = (size: number, full: boolean): UsageWindow => {
    if (!current || full || used + size > budget) {
      current = { from, to, part: parts.length, entries: [], anchors: [] };
      parts.push(current);
      used = 0;
    }
    used += size;
    return current;
  };
  for (const e of entries) {
    const size = entryEncodedBytes(e);
    if (size > budget) throw new StreamMediaError("bad-argument", `a usage entry of ${size} bytes does not fit a report`);
    room(size, (current?.entries.length ?? 0) >= maxEntries).entries.push(e);
  }
  for (const a of anchors) {
    const size = anchorEncodedBytes(a);
    if (size > budget) throw new StreamMediaError("bad-argument", `a stream anchor of ${size} bytes does not fit a report`);
    room(size, (current?.anchors.length ?? 0) >= maxAnchors).anchors.push(a);
  }
  return parts;
}

// ------------------------------------------------------------ where windows are cut

/** A reward epoch's timing (BandwidthRewards): epoch n covers [genesis + n·length, genesis + (n+1)·length), unix seconds. */
export interface EpochTiming {
  genesis: number;
  epochLength: number;
}

/** The first epoch boundary strictly after `t` (genesis itself when `t` is before it). */
export function nextEpochBoundary(t: number, epoch: EpochTiming): number {
  if (t < epoch.genesis) return epoch.genesis;
  return epoch.genesis + (Math.floor((t - epoch.genesis) / epoch.epochLength) + 1) * epoch.epochLength;
}

/** The last cut point at or before `t`: a multiple of the interval from the grid's origin (genesis, or 0), or an epoch boundary. */
function lastCutPoint(t: number, intervalSeconds: number, epoch: EpochTiming | undefined): number {
  const origin = epoch?.genesis ?? 0;
  let point = origin + Math.floor((t - origin) / intervalSeconds) * intervalSeconds;
  if (epoch && t >= epoch.genesis) point = Math.max(point, epoch.genesis + Math.floor((t - epoch.genesis) / epoch.epochLength) * epoch.epochLength);
  return point;
}

/** The next cut point strictly after `t`. */
export function nextCutPoint(t: number, intervalSeconds: number, epoch: EpochTiming | undefined): number {
  const origin = epoch?.genesis ?? 0;
  let point = origin + (Math.floor((t - origin) / intervalSeconds) + 1) * intervalSeconds;
  if (epoch) point = Math.min(point, nextEpochBoundary(t, epoch));
  return point;
}

/**
 * Where a window that started at `from` ends when cut at `now` (unix
 * seconds): the last cut point reached, but never past the first epoch
 * boundary after `from`; `final` (a reporter closing, a session change) cuts
 * at `now` itself, or at `from + 1` when the window started this very second
 * (times are whole seconds: its end is then under a second ahead of the
 * clock). Undefined: no cut yet (`to` would not be after `from`).
 */
export function windowEnd(from: number, now: number, intervalSeconds: number, epoch: EpochTiming | undefined, final = false): number | undefined {
  let to = final ? (from === now ? now + 1 : now) : lastCutPoint(now, intervalSeconds, epoch);
  if (epoch) to = Math.min(to, nextEpochBoundary(from, epoch));
  return to > from ? to : undefined;
}

// ------------------------------------------------------------ meter

export interface UsageMeterOptions {
  /** Unix seconds the first window starts at (default now). */
  start?: number;
  /** Distinct (stream, peer, direction) keys per window (default 16,384); one more drops the oldest with its bytes. */
  maxKeys?: number;
  /** Anchors held (default 1024); one more drops the oldest. */
  maxAnchors?: number;
  /** Part limits (tests use small ones). */
  limits?: SplitLimits;
}

export interface UsageMeterStats {
  /** Bytes added since the meter was made. */
  bytesAdded: number;
  /** Bytes handed out in windows. */
  bytesReported: number;
  /** Keys dropped at the key cap, and their bytes (never reported). */
  droppedKeys: number;
  droppedBytes: number;
  /** Anchors dropped at the anchor cap. */
  droppedAnchors: number;
  /** Bytes beyond MAX_ENTRY_BYTES in one window (not reported). */
  clampedBytes: number;
  /** Windows cut (with or without parts). */
  windows: number;
  /** Seconds cut off the start of windows longer than MAX_REPORT_WINDOW_SECONDS. */
  shortenedSeconds: number;
}

interface Held {
  anchor: StreamAnchor;
  /** Released (the stream ended): reported in the next window, then forgotten. */
  released: boolean;
  /** Not reported yet. */
  fresh: boolean;
}

/**
 * Bytes per (stream, peer, direction) since the last cut. A window's anchors
 * are those of the streams it has entries for, and any anchored or released
 * since the last cut: the oracle sees a stream's cap in every epoch it was
 * used in.
 */
export class UsageMeter {
  readonly stats: UsageMeterStats = {
    bytesAdded: 0,
    bytesReported: 0,
    droppedKeys: 0,
    droppedBytes: 0,
    droppedAnchors: 0,
    clampedBytes: 0,
    windows: 0,
    shortenedSeconds: 0,
  };
  private readonly counts = new Map<string, UsageEntry>();
  private readonly anchors = new Map<string, Held>();
  private readonly maxKeys: number;
  private readonly maxAnchors: number;
  private from: number;

  constructor(private readonly options: UsageMeterOptions = {}) {
    this.from = options.start ?? Math.floor(Date.now() / 1000);
    this.maxKeys = options.maxKeys ?? DEFAULT_METER_MAX_KEYS;
    this.maxAnchors = options.maxAnchors ?? DEFAULT_METER_MAX_ANCHORS;
    if (!Number.isSafeInteger(this.from) || this.from < 0) throw new StreamMediaError("bad-argument", "usage meter start must be unix seconds");
    for (const [name, v] of [
      ["maxKeys", this.maxKeys],
      ["maxAnchors", this.maxAnchors],
    ] as const)
      if (!Number.isSafeInteger(v) || v < 1) throw new StreamMediaError("bad-argument", `usage meter ${name} must be a positive integer`);
  }

  /** Where the current window starts, unix seconds. */
  get windowStart(): number {
    return this.from;
  }

  /** Distinct keys counted in the current window. */
  get keys(): number {
    return this.counts.size;
  }

  /** Bytes counted in the current window. */
  get pendingBytes(): number {
    let n = 0;
    for (const e of this.counts.values()) n += e.bytes;
    return n;
  }

  add(stream: Uint8Array, peer: Uint8Array, direction: UsageDirection, bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new StreamMediaError("bad-argument", "usage bytes must be a non-negative integer");
    if (bytes === 0) return;
    this.stats.bytesAdded += bytes;
    const key = `${hexOf(stream)}:${hexOf(peer)}:${direction}`;
    const entry = this.counts.get(key);
    if (entry) {
      const room = MAX_ENTRY_BYTES - entry.bytes;
      if (bytes > room) this.stats.clampedBytes += bytes - room;
      entry.bytes += Math.min(bytes, room);
      return;
    }
    if (this.counts.size >= this.maxKeys) {
      // The oldest key of the window goes, with its bytes: counted, never silently.
      const [oldest, dropped] = this.counts.entries().next().value as [string, UsageEntry];
      this.counts.delete(oldest);
      this.stats.droppedKeys++;
      this.stats.droppedBytes += dropped.bytes;
    }
    this.counts.set(key, { stream: stream.slice(), peer: peer.slice(), direction, bytes: Math.min(bytes, MAX_ENTRY_BYTES) });
    if (bytes > MAX_ENTRY_BYTES) this.stats.clampedBytes += bytes - MAX_ENTRY_BYTES;
  }

  /** A landing node's anchor for a stream it created: reported while the stream is used, until released. */
  anchor(stream: Uint8Array, receipt: Uint8Array, kbps: number): void {
    if (!Number.isSafeInteger(kbps) || kbps < 1) throw new StreamMediaError("bad-argument", "anchor kbps must be a positive integer");
    const key = hexOf(stream);
    this.anchors.delete(key);
    if (this.anchors.size >= this.maxAnchors) {
      const oldest = this.anchors.keys().next().value as string;
      this.anchors.delete(oldest);
      this.stats.droppedAnchors++;
    }
    this.anchors.set(key, { anchor: { stream: stream.slice(), receipt: receipt.slice(), kbps }, released: false, fresh: true });
  }

  /** The stream ended here: its anchor goes into the next window once more, then is forgotten. */
  release(stream: Uint8Array): void {
    const held = this.anchors.get(hexOf(stream));
    if (held) held.released = true;
  }

  /**
   * Cuts the window [start, to) (unix seconds) and starts the next at `to`.
   * Returns its parts (none when nothing was counted and no anchor is due);
   * `to` not after the window's start cuts nothing and returns none. A
   * window longer than MAX_REPORT_WINDOW_SECONDS (the process stalled) is
   * shortened at its start; the gap is counted.
   */
  drain(to: number): UsageWindow[] {
    if (!Number.isSafeInteger(to)) throw new StreamMediaError("bad-argument", "window end must be unix seconds");
    if (to <= this.from) return [];
    let from = this.from;
    if (to - from > MAX_REPORT_WINDOW_SECONDS) {
      this.stats.shortenedSeconds += to - MAX_REPORT_WINDOW_SECONDS - from;
      from = to - MAX_REPORT_WINDOW_SECONDS;
    }
    this.from = to;
    this.stats.windows++;
    const entries = [...this.counts.values()];
    this.counts.clear();
    const used = new Set(entries.map((e) => hexOf(e.stream)));
    const anchors: StreamAnchor[] = [];
    for (const [key, held] of this.anchors) {
      if (used.has(key) || held.fresh || held.released) anchors.push(held.anchor);
      held.fresh = false;
      if (held.released) this.anchors.delete(key);
    }
    for (const e of entries) this.stats.bytesReported += e.bytes;
    return splitWindow(from, to, entries, anchors, this.options.limits);
  }
}

// ------------------------------------------------------------ schedule

export interface UsageScheduleOptions {
  meter: UsageMeter;
  /** Seconds between cuts (1..3600). */
  intervalSeconds: number;
  /** The reward epochs' timing (read from the chain; undefined until known: cuts on the interval grid from 0 only). */
  epoch?: EpochTiming | (() => EpochTiming | undefined);
  /** ms since the epoch (default Date.now). */
  clock?: () => number;
  /** Every cut window's parts, in order. */
  onWindows: (windows: UsageWindow[]) => void;
}

/** Cuts a meter's windows on the interval grid and at every epoch boundary, on a timer; `cut(true)` at the end. */
export class UsageSchedule {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly clock: () => number;

  constructor(private readonly options: UsageScheduleOptions) {
    const i = options.intervalSeconds;
    if (!Number.isSafeInteger(i) || i < 1 || i > MAX_REPORT_WINDOW_SECONDS)
      throw new StreamMediaError("bad-argument", `report interval must be 1..${MAX_REPORT_WINDOW_SECONDS} seconds`);
    this.clock = options.clock ?? Date.now;
  }

  private epoch(): EpochTiming | undefined {
    const e = this.options.epoch;
    return typeof e === "function" ? e() : e;
  }

  start(): void {
    if (this.stopped || this.timer) return;
    this.arm();
  }

  private arm(): void {
    const nowMs = this.clock();
    const next = nextCutPoint(Math.floor(nowMs / 1000), this.options.intervalSeconds, this.epoch());
    // A little after the second turns, so the clock has reached the cut point when the timer fires.
    this.timer = setTimeout(() => this.fire(), Math.max(0, next * 1000 - nowMs) + 50);
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    if (this.stopped) return;
    this.cut();
    this.arm();
  }

  /** Cuts every window due now (more than one when an epoch boundary passed); `final` also cuts the partial window up to now. */
  cut(final = false): void {
    const now = Math.floor(this.clock() / 1000);
    const epoch = this.epoch();
    const { meter } = this.options;
    for (let i = 0; i < 4; i++) {
      const to = windowEnd(meter.windowStart, now, this.options.intervalSeconds, epoch, final);
      if (to === undefined) return;
      const parts = meter.drain(to);
      if (parts.length > 0) this.options.onWindows(parts);
      // Reached the clock (a final cut may end a second ahead of it): nothing more is due.
      if (to >= now) return;
    }
  }

  /** Stops the timer; `final` cuts what was counted up to now first. */
  stop(final = false): void {
    if (this.stopped) return;
    if (final) this.cut(true);
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

// ------------------------------------------------------------ outbox

export interface UsageOutboxOptions<T> {
  /** Delivers one item; rejects when it could not (retried later, in order). */
  deliver: (item: T) => Promise<void>;
  /** Items held (default 256); one more drops the oldest, counted. */
  maxPending?: number;
  /** First retry after a failed delivery, ms (default 5 s), doubling up to maxRetryMs (default 5 min). */
  retryMs?: number;
  maxRetryMs?: number;
  /** What the log calls an item ("usage report"). */
  what?: string;
  logger?: Logger;
}

export interface UsageOutboxStats {
  queued: number;
  delivered: number;
  failures: number;
  dropped: number;
}

/** Items waiting to be delivered, in order, one at a time; bounded; retried with back-off while delivery fails. */
export class UsageOutbox<T> {
  readonly stats: UsageOutboxStats = { queued: 0, delivered: 0, failures: 0, dropped: 0 };
  private readonly pending: T[] = [];
  private readonly log: Logger;
  private readonly failed: ReturnType<typeof throttledFailureLog>;
  private readonly maxPending: number;
  private running: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private closed = false;

  constructor(private readonly options: UsageOutboxOptions<T>) {
    this.maxPending = options.maxPending ?? 256;
    if (!Number.isSafeInteger(this.maxPending) || this.maxPending < 1)
      throw new StreamMediaError("bad-argument", "outbox maxPending must be a positive integer");
    this.log = childLogger(options.logger, "stream.usage");
    this.failed = throttledFailureLog(this.log);
  }

  get size(): number {
    return this.pending.length;
  }

  push(items: readonly T[]): void {
    if (this.closed) return;
    for (const item of items) {
      this.pending.push(item);
      this.stats.queued++;
      if (this.pending.length > this.maxPending) {
        this.pending.shift();
        this.stats.dropped++;
        this.log.warn({ pending: this.maxPending }, `${this.options.what ?? "usage report"} dropped: too many waiting to be delivered`);
      }
    }
    void this.flush();
  }

  /** Tries to deliver everything waiting now (one run at a time); resolves when the run ends. */
  flush(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    while (this.pending.length > 0 && !this.closed) {
      const item = this.pending[0] as T;
      try {
        await this.options.deliver(item);
      } catch (err) {
        this.stats.failures++;
        this.failed(err, `deliver a ${this.options.what ?? "usage report"}`, "warn");
        const base = this.options.retryMs ?? 5000;
        this.backoffMs = Math.min(this.backoffMs === 0 ? base : this.backoffMs * 2, this.options.maxRetryMs ?? 300_000);
        if (!this.closed) {
          this.retryTimer = setTimeout(() => void this.flush(), this.backoffMs);
          this.retryTimer.unref();
        }
        return;
      }
      // Delivered (it may have been dropped at the cap meanwhile: remove it only if still first).
      if (this.pending[0] === item) this.pending.shift();
      this.stats.delivered++;
      this.backoffMs = 0;
    }
  }

  /** Stops retrying; what is still waiting is dropped (counted). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stats.dropped += this.pending.length;
    if (this.pending.length > 0) this.log.info({ dropped: this.pending.length }, `${this.options.what ?? "usage report"}s not delivered at close`);
    this.pending.length = 0;
  }
}

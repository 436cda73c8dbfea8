/**
 * Usage metering (node/src/stream/usage.ts, issue 16): the meter's windows
 * (contiguous, never overlapping, the bytes added reported exactly once,
 * the key cap dropping the oldest key with its bytes counted), anchors (in a
 * window when their stream was used, anchored or released), the cut into
 * parts (within MAX_REPORT_ENTRIES / MAX_REPORT_ANCHORS and the byte
 * budget, whose size estimate equals the canonical CBOR encoding), where
 * windows are cut (the interval grid, every epoch boundary: no window
 * straddles an epoch), the schedule on a driven clock, and the outbox
 * (in order, retried, bounded). Properties are fast-check.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hexOf } from "../../../node/src/base/hex.js";
import { encodeFrame } from "../../../node/src/stream/frames.js";
import { StreamMediaError } from "../../../node/src/stream/media-errors.js";
import {
  anchorEncodedBytes,
  chunkFrameBytes,
  DEFAULT_PART_BUDGET_BYTES,
  entryEncodedBytes,
  MAX_REPORT_ANCHORS,
  MAX_REPORT_ENTRIES,
  MAX_REPORT_WINDOW_SECONDS,
  nextCutPoint,
  nextEpochBoundary,
  splitWindow,
  UsageMeter,
  UsageOutbox,
  UsageSchedule,
  windowEnd,
} from "../../../node/src/stream/usage.js";
import type { EpochTiming, StreamAnchor, UsageEntry, UsageWindow } from "../../../node/src/stream/usage.js";
import { ViewerUsageReporter } from "../../../node/src/stream/viewer-usage.js";
import { encodeCanonical } from "../../../node/src/wire/canonical.js";

const fill = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);
const stream = (i: number): Uint8Array => fill(16, i);
const node = (i: number): Uint8Array => fill(32, 100 + i);
const sid = (i: number): Uint8Array => fill(16, 200 + i);
const sum = (windows: readonly UsageWindow[]): number => windows.reduce((a, w) => a + w.entries.reduce((b, e) => b + e.bytes, 0), 0);
const keyOf = (e: UsageEntry): string => `${hexOf(e.stream)}:${hexOf(e.peer)}:${e.direction}`;

describe("chunk frame bytes", () => {
  it("are the encoded CHUNK frame's length", () => {
    for (const n of [16, 100, 1316, 65_000]) expect(chunkFrameBytes(n)).toBe(encodeFrame({ type: "chunk", seq: 9n, sealed: fill(n, 1) }).length);
  });
});

describe("parts", () => {
  it("estimate each entry's and anchor's canonical CBOR size exactly", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(16, 32),
        fc.integer({ min: 0, max: 2 ** 48 - 1 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 2 ** 32 - 1 }),
        fc.integer({ min: 0, max: 800 }),
        (peerLen, bytes, sent, kbps, receiptLen) => {
          const e: UsageEntry = { stream: stream(1), peer: fill(peerLen, 2), direction: sent ? "sent" : "received", bytes };
          expect(entryEncodedBytes(e)).toBe(encodeCanonical({ s: e.stream, p: e.peer, d: sent ? 0 : 1, b: bytes }).length);
          const a: StreamAnchor = { stream: stream(1), receipt: fill(receiptLen, 3), kbps };
          expect(anchorEncodedBytes(a)).toBe(encodeCanonical({ s: a.stream, r: a.receipt, k: kbps }).length);
        },
      ),
    );
  });

  it("an empty window has no parts; a full one is cut within the limits, in order, numbered from 0", () => {
    expect(splitWindow(10, 20, [], [])).toEqual([]);
    const entries: UsageEntry[] = Array.from({ length: 1300 }, (_, i) => ({ stream: stream(i % 7), peer: node(i % 250), direction: "sent", bytes: i + 1 }));
    const anchors: StreamAnchor[] = Array.from({ length: 100 }, (_, i) => ({ stream: stream(i), receipt: fill(700, i), kbps: 1000 + i }));
    const parts = splitWindow(10, 20, entries, anchors);
    expect(parts.map((p) => p.part)).toEqual(parts.map((_, i) => i));
    for (const p of parts) {
      expect(p.from).toBe(10);
      expect(p.to).toBe(20);
      expect(p.entries.length).toBeLessThanOrEqual(MAX_REPORT_ENTRIES);
      expect(p.anchors.length).toBeLessThanOrEqual(MAX_REPORT_ANCHORS);
      const size = p.entries.reduce((a, e) => a + entryEncodedBytes(e), 0) + p.anchors.reduce((a, x) => a + anchorEncodedBytes(x), 0);
      expect(size).toBeLessThanOrEqual(DEFAULT_PART_BUDGET_BYTES);
    }
    expect(parts.flatMap((p) => p.entries)).toEqual(entries);
    expect(parts.flatMap((p) => p.anchors)).toEqual(anchors);
  });

  it("property: parts hold exactly the window's items, each part within its limits", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 2 ** 40 })), { maxLength: 60 }),
        fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 20 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 800, max: 2000 }),
        (es, as, maxEntries, maxAnchors, budgetBytes) => {
          const entries = es.map(([p, b]): UsageEntry => ({ stream: stream(1), peer: node(p), direction: "received", bytes: b }));
          const anchors = as.map((r, i): StreamAnchor => ({ stream: stream(i), receipt: fill(r, 1), kbps: 5 }));
          const parts = splitWindow(1, 2, entries, anchors, { maxEntries, maxAnchors, budgetBytes });
          expect(parts.flatMap((p) => p.entries)).toEqual(entries);
          expect(parts.flatMap((p) => p.anchors)).toEqual(anchors);
          for (const p of parts) {
            expect(p.entries.length + p.anchors.length).toBeGreaterThan(0);
            expect(p.entries.length).toBeLessThanOrEqual(maxEntries);
            expect(p.anchors.length).toBeLessThanOrEqual(maxAnchors);
            expect(p.entries.reduce((a, e) => a + entryEncodedBytes(e), 0) + p.anchors.reduce((a, x) => a + anchorEncodedBytes(x), 0)).toBeLessThanOrEqual(
              budgetBytes,
            );
          }
        },
      ),
    );
  });
});

describe("UsageMeter", () => {
  it("adds per (stream, peer, direction), cuts contiguous windows, and reports nothing twice", () => {
    const m = new UsageMeter({ start: 1000 });
    m.add(stream(1), sid(1), "sent", 100);
    m.add(stream(1), sid(1), "sent", 50);
    m.add(stream(1), node(1), "sent", 70);
    m.add(stream(1), node(2), "received", 300);
    m.add(stream(1), sid(1), "received", 0);
    expect(m.drain(1000)).toEqual([]); // not after the start: nothing cut
    const [w, ...more] = m.drain(1300);
    expect(more).toEqual([]);
    expect(w).toMatchObject({ from: 1000, to: 1300, part: 0, anchors: [] });
    expect(w!.entries.map((e) => [keyOf(e), e.bytes])).toEqual([
      [`${hexOf(stream(1))}:${hexOf(sid(1))}:sent`, 150],
      [`${hexOf(stream(1))}:${hexOf(node(1))}:sent`, 70],
      [`${hexOf(stream(1))}:${hexOf(node(2))}:received`, 300],
    ]);
    expect(m.windowStart).toBe(1300);
    expect(m.drain(1600)).toEqual([]); // nothing counted: no parts, but the window moved on
    expect(m.windowStart).toBe(1600);
    m.add(stream(2), node(1), "sent", 5);
    expect(m.drain(1900)[0]).toMatchObject({ from: 1600, to: 1900 });
    expect(m.stats).toMatchObject({ bytesAdded: 525, bytesReported: 525, droppedBytes: 0, windows: 3 });
  });

  it("anchors a stream in the window it was anchored in, every window it is used in, and once more after release", () => {
    const m = new UsageMeter({ start: 0 });
    const receipt = fill(300, 9);
    m.anchor(stream(1), receipt, 3000);
    expect(m.drain(10)[0]!.anchors).toEqual([{ stream: stream(1), receipt, kbps: 3000 }]);
    expect(m.drain(20)).toEqual([]); // idle: no anchor
    m.add(stream(1), node(1), "sent", 10);
    m.add(stream(2), node(1), "sent", 10);
    expect(m.drain(30)[0]!.anchors.map((a) => a.stream)).toEqual([stream(1)]);
    m.release(stream(1));
    expect(m.drain(40)[0]!.anchors.map((a) => a.kbps)).toEqual([3000]);
    m.add(stream(1), node(1), "sent", 10);
    expect(m.drain(50)[0]!.anchors).toEqual([]); // forgotten
  });

  it("holds at most maxKeys keys: the oldest goes with its bytes, counted", () => {
    const m = new UsageMeter({ start: 0, maxKeys: 3 });
    for (let i = 0; i < 5; i++) m.add(stream(1), sid(i), "sent", 10 * (i + 1));
    m.add(stream(1), sid(4), "sent", 1);
    expect(m.keys).toBe(3);
    expect(m.stats).toMatchObject({ droppedKeys: 2, droppedBytes: 30 });
    const w = m.drain(5);
    expect(w[0]!.entries.map((e) => e.bytes)).toEqual([30, 40, 51]);
    const m2 = new UsageMeter({ start: 0, maxAnchors: 2 });
    for (let i = 0; i < 3; i++) m2.anchor(stream(i), fill(10, i), 100);
    expect(m2.stats.droppedAnchors).toBe(1);
    expect(m2.drain(1)[0]!.anchors.map((a) => a.stream[0])).toEqual([1, 2]);
  });

  it("shortens a window longer than MAX_REPORT_WINDOW_SECONDS at its start, and refuses bad arguments with typed errors", () => {
    const m = new UsageMeter({ start: 0 });
    m.add(stream(1), node(1), "sent", 1);
    expect(m.drain(MAX_REPORT_WINDOW_SECONDS + 500)[0]).toMatchObject({ from: 500, to: MAX_REPORT_WINDOW_SECONDS + 500 });
    expect(m.stats.shortenedSeconds).toBe(500);
    for (const fn of [() => m.add(stream(1), node(1), "sent", -1), () => m.add(stream(1), node(1), "sent", 1.5), () => m.anchor(stream(1), fill(1, 1), 0)]) {
      expect(fn).toThrow(StreamMediaError);
    }
    expect(() => new UsageMeter({ maxKeys: 0 })).toThrow(StreamMediaError);
  });

  it("property: over any adds and cuts, the windows are contiguous, no key repeats within a window, and bytes reported + pending + dropped = bytes added", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant("add" as const),
              s: fc.integer({ min: 0, max: 2 }),
              p: fc.integer({ min: 0, max: 6 }),
              sent: fc.boolean(),
              b: fc.nat(1e9),
            }),
            fc.record({ op: fc.constant("drain" as const), dt: fc.integer({ min: -5, max: 400 }) }),
          ),
          { maxLength: 200 },
        ),
        fc.integer({ min: 2, max: 40 }),
        (ops, maxKeys) => {
          const m = new UsageMeter({ start: 100, maxKeys, limits: { maxEntries: 4, maxAnchors: 2, budgetBytes: 4096 } });
          let added = 0;
          let now = 100;
          const windows: UsageWindow[] = [];
          for (const o of ops) {
            if (o.op === "add") {
              m.add(stream(o.s), o.p < 3 ? sid(o.p) : node(o.p), o.sent ? "sent" : "received", o.b);
              added += o.b;
            } else {
              now += o.dt;
              windows.push(...m.drain(now));
            }
          }
          expect(sum(windows) + m.pendingBytes + m.stats.droppedBytes).toBe(added);
          let last = 100;
          const byWindow = new Map<string, Set<string>>();
          for (const w of windows) {
            expect(w.from).toBeGreaterThanOrEqual(last);
            expect(w.to).toBeGreaterThan(w.from);
            last = w.from;
            const seen = byWindow.get(`${w.from}-${w.to}`) ?? new Set<string>();
            for (const e of w.entries) {
              expect(seen.has(keyOf(e))).toBe(false);
              seen.add(keyOf(e));
            }
            byWindow.set(`${w.from}-${w.to}`, seen);
          }
          // Distinct windows never overlap (parts of one window share from/to).
          const spans = [...byWindow.keys()].map((k) => k.split("-").map(Number) as [number, number]);
          for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
        },
      ),
    );
  });
});

describe("where windows are cut", () => {
  const epoch: EpochTiming = { genesis: 1_000_000, epochLength: 600 };

  it("on the interval grid from genesis and at every epoch boundary", () => {
    expect(nextEpochBoundary(5, epoch)).toBe(1_000_000);
    expect(nextEpochBoundary(1_000_000, epoch)).toBe(1_000_600);
    expect(nextEpochBoundary(1_000_599, epoch)).toBe(1_000_600);
    const odd: EpochTiming = { genesis: 1_000_000, epochLength: 700 };
    expect(nextCutPoint(1_000_000, 300, odd)).toBe(1_000_300);
    expect(nextCutPoint(1_000_650, 300, odd)).toBe(1_000_700); // the boundary before the next grid point
    expect(windowEnd(1_000_600, 1_000_920, 300, odd)).toBe(1_000_700); // never past the boundary after `from`
    expect(windowEnd(1_000_700, 1_000_920, 300, odd)).toBe(1_000_900);
    expect(windowEnd(1_000_900, 1_000_920, 300, odd)).toBeUndefined();
    expect(windowEnd(1_000_900, 1_000_920, 300, odd, true)).toBe(1_000_920);
    expect(windowEnd(1_000_650, 1_000_920, 300, odd, true)).toBe(1_000_700);
  });

  it("property: a schedule driven over random clock steps cuts windows that never straddle an epoch and lose no byte", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 900 }),
        fc.integer({ min: 1, max: 3600 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 1500 }), fc.nat(1e6)), { minLength: 1, maxLength: 60 }),
        (intervalSeconds, epochLength, steps) => {
          const timing: EpochTiming = { genesis: 1_000_000, epochLength };
          let nowMs = 999_000 * 1000;
          const m = new UsageMeter({ start: 999_000 });
          const windows: UsageWindow[] = [];
          const schedule = new UsageSchedule({ meter: m, intervalSeconds, epoch: timing, clock: () => nowMs, onWindows: (w) => windows.push(...w) });
          let added = 0;
          for (const [dt, b] of steps) {
            m.add(stream(1), node(1), "sent", b);
            added += b;
            nowMs += dt * 1000 + 7;
            schedule.cut();
          }
          schedule.stop(true);
          schedule.stop(true);
          expect(sum(windows) + m.pendingBytes).toBe(added);
          for (const w of windows) {
            expect(w.to - w.from).toBeLessThanOrEqual(MAX_REPORT_WINDOW_SECONDS);
            const epochOf = (t: number): number => Math.floor((t - timing.genesis) / epochLength);
            // [from, to) lies in one epoch (or wholly before genesis).
            if (w.to > timing.genesis) expect(epochOf(w.from) === epochOf(w.to - 1) || w.from < timing.genesis).toBe(true);
            if (w.from < timing.genesis) expect(w.to).toBeLessThanOrEqual(timing.genesis);
          }
        },
      ),
    );
  });

  it("a final cut in the second a window started still reports its bytes, ending at most a second ahead of the clock", () => {
    let nowMs = 1_000_060_400;
    const m = new UsageMeter({ start: 1_000_000 });
    const windows: UsageWindow[] = [];
    const schedule = new UsageSchedule({ meter: m, intervalSeconds: 60, epoch, clock: () => nowMs, onWindows: (w) => windows.push(...w) });
    m.add(stream(1), node(1), "sent", 5);
    schedule.cut(); // the grid point 1_000_060
    m.add(stream(1), node(1), "sent", 7);
    schedule.cut(true);
    schedule.cut(true); // nothing new: no window, and the start does not run further ahead
    expect(windows.map((w) => [w.from, w.to, w.entries[0]!.bytes])).toEqual([
      [1_000_000, 1_000_060, 5],
      [1_000_060, 1_000_061, 7],
    ]);
    expect(m.windowStart).toBe(1_000_061);
    nowMs += 2000;
    m.add(stream(1), node(1), "sent", 9);
    schedule.stop(true);
    expect(windows.at(-1)).toMatchObject({ from: 1_000_061, to: 1_000_062 });
  });

  it("refuses an interval outside 1..3600 s", () => {
    for (const intervalSeconds of [0, 3601, 1.5])
      expect(() => new UsageSchedule({ meter: new UsageMeter(), intervalSeconds, onWindows: () => undefined })).toThrow(StreamMediaError);
  });
});

describe("UsageOutbox", () => {
  it("delivers in order, holds what fails for a retry, and drops the oldest beyond its cap (counted)", async () => {
    const got: number[] = [];
    let up = false;
    const box = new UsageOutbox<number>({
      deliver: (n) => {
        if (!up) return Promise.reject(new StreamMediaError("unreachable", "down"));
        got.push(n);
        return Promise.resolve();
      },
      maxPending: 3,
      retryMs: 3_600_000,
    });
    box.push([1, 2]);
    await box.flush();
    expect(box.size).toBe(2);
    box.push([3, 4]);
    await box.flush();
    expect(box.size).toBe(3);
    expect(box.stats.dropped).toBe(1);
    up = true;
    await box.flush();
    expect(got).toEqual([2, 3, 4]);
    expect(box.stats).toMatchObject({ queued: 4, delivered: 3, dropped: 1 });
    expect(box.stats.failures).toBeGreaterThanOrEqual(2);
    up = false;
    box.push([5]);
    await box.flush();
    box.close();
    expect(box.size).toBe(0);
    expect(box.stats.dropped).toBe(2);
  });
});

describe("ViewerUsageReporter", () => {
  it("hands out each window once, in order, retries what failed, cuts early on demand and sends the partial window at close", async () => {
    let nowMs = 5_000_000 * 1000;
    const meter = new UsageMeter({ start: 5_000_000 });
    const got: UsageWindow[] = [];
    let up = false;
    const reporter = new ViewerUsageReporter({
      meter,
      intervalSeconds: 60,
      epoch: { genesis: 4_000_000, epochLength: 100 },
      clock: () => nowMs,
      retryMs: 3_600_000,
      send: (w) => {
        if (!up) return Promise.reject(new StreamMediaError("unreachable", "no circuit"));
        got.push(w);
        return Promise.resolve();
      },
    });
    meter.add(stream(1), node(1), "received", 10);
    nowMs += 30_000;
    await reporter.cut(); // early cut (a session change): [0, 30)
    expect(reporter.pending).toBe(1);
    meter.add(stream(1), node(2), "received", 20);
    nowMs += 45_000;
    up = true;
    await reporter.cut(); // crosses the epoch boundary at +100: [30, 75) only, since 75 < 100
    expect(got.map((w) => [w.from - 5_000_000, w.to - 5_000_000, w.entries[0]!.bytes])).toEqual([
      [0, 30, 10],
      [30, 75, 20],
    ]);
    meter.add(stream(1), node(2), "received", 5);
    nowMs += 40_000; // +115: the final cut stops at the boundary +100, then [100, 115) is empty
    await reporter.close();
    await reporter.close();
    expect(got.at(-1)).toMatchObject({ from: 5_000_075, to: 5_000_100 });
    expect(reporter.stats).toMatchObject({ queued: 3, delivered: 3, dropped: 0 });
    expect(reporter.stats.failures).toBeGreaterThanOrEqual(1);
  });
});

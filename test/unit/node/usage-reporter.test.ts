/**
 * A node's usage reporter (node/src/node/usage-reporter.ts) on a driven
 * clock: windows signed once when cut and cut at epoch boundaries; the
 * report goes to an oracle the consensus flags (running ones first), the
 * next one when an oracle fails, and waits (bounded) when none takes it;
 * a retry sends the same bytes; close sends the partial window. Also the
 * `rewards` section of the node config and the psp_usage_* metrics.
 */
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { hexOf } from "../../../node/src/base/hex.js";
import { NodeFlag } from "../../../node/src/directory/config.js";
import type { ConsensusEntry } from "../../../node/src/directory/consensus.js";
import { NodeError, parseNodeConfig } from "../../../node/src/node/config.js";
import { NodeUsageReporter, oracleKeysOf } from "../../../node/src/node/usage-reporter.js";
import { registerUsageMetrics } from "../../../node/src/node/metrics.js";
import { OracleError } from "../../../node/src/stream/oracle-errors.js";
import { StreamMediaError } from "../../../node/src/stream/media-errors.js";
import { UsageMeter } from "../../../node/src/stream/usage.js";
import type { UsageWindow } from "../../../node/src/stream/usage.js";
import { encodeCanonical } from "../../../node/src/wire/canonical.js";

const fill = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);
const entry = (id: number, flags: number): ConsensusEntry => ({
  identity: fill(32, id),
  onionKey: fill(32, 0),
  encodedAddresses: [],
  country: "ZZ",
  version: "1",
  bandwidth: 1,
  flags,
});
const GENESIS = 2_000_000;

function setup(oracles: Uint8Array[], fails: Set<string>, refuses = new Set<string>()) {
  let nowMs = GENESIS * 1000;
  const meter = new UsageMeter({ start: GENESIS });
  const sent: { oracle: string; bytes: Uint8Array }[] = [];
  const signed: UsageWindow[] = [];
  const reporter = new NodeUsageReporter({
    identity: fill(32, 2), // starts at the first oracle of two
    meter,
    intervalSeconds: 60,
    epoch: { genesis: GENESIS, epochLength: 100 },
    oracles: () => oracles,
    sign: (w) => {
      signed.push(w);
      return encodeCanonical({ from: w.from, to: w.to, part: w.part, n: w.entries.length });
    },
    send: (oracle, bytes) => {
      if (refuses.has(hexOf(oracle))) return Promise.reject(new OracleError("report-conflict", "another report holds this window"));
      if (fails.has(hexOf(oracle))) return Promise.reject(new StreamMediaError("timeout", "no answer"));
      sent.push({ oracle: hexOf(oracle), bytes });
      return Promise.resolve();
    },
    retryMs: 3_600_000,
    maxPending: 2,
    clock: () => nowMs,
  });
  return { meter, reporter, sent, signed, advance: (s: number) => (nowMs += s * 1000) };
}

describe("NodeUsageReporter", () => {
  it("lists the consensus's oracles, running ones first", () => {
    const keys = oracleKeysOf([
      entry(1, NodeFlag.oracle),
      entry(2, NodeFlag.onion | NodeFlag.running),
      entry(3, NodeFlag.oracle | NodeFlag.running),
      entry(4, NodeFlag.oracle),
    ]);
    expect(keys.map((k) => k[0])).toEqual([3, 1, 4]);
    expect(oracleKeysOf(undefined)).toEqual([]);
  });

  it("cuts at the interval and the epoch boundary, signs each window once, and falls back to the next oracle", async () => {
    const a = fill(32, 10);
    const b = fill(32, 11);
    const fails = new Set([hexOf(a)]);
    const { meter, reporter, sent, signed, advance } = setup([a, b], fails);
    meter.add(fill(16, 1), fill(16, 2), "sent", 1000);
    advance(30);
    await reporter.flush();
    expect(signed).toEqual([]); // before the first cut point
    advance(40); // t = 70: the grid point 60
    await reporter.flush();
    meter.add(fill(16, 1), fill(16, 2), "sent", 500);
    advance(50); // t = 120: the epoch boundary 100 comes before the grid point 120
    await reporter.flush();
    expect(signed.map((w) => [w.from - GENESIS, w.to - GENESIS, w.entries[0]!.bytes])).toEqual([
      [0, 60, 1000],
      [60, 100, 500],
    ]);
    expect(sent.map((s) => s.oracle)).toEqual([hexOf(b), hexOf(b)]);
    expect(reporter.stats).toMatchObject({ windows: 2, queued: 2, delivered: 2, oracleFailures: 1 });
  });

  it("holds signed reports while no oracle takes them (bounded, oldest dropped), resends the same bytes, and sends the partial window at close", async () => {
    const a = fill(32, 10);
    const fails = new Set([hexOf(a)]);
    const oracles: Uint8Array[] = [];
    const { meter, reporter, sent, signed, advance } = setup(oracles, fails);
    for (let i = 0; i < 3; i++) {
      meter.add(fill(16, 1), fill(32, 3), "received", 100 + i);
      advance(60);
      await reporter.flush();
    }
    expect(signed.length).toBe(3);
    expect(reporter.pending).toBe(2);
    expect(reporter.stats.dropped).toBe(1);
    oracles.push(a); // listed, but it fails
    await reporter.flush();
    expect(reporter.pending).toBe(2);
    fails.clear();
    await reporter.flush();
    expect(sent.map((s) => s.bytes)).toEqual(signed.slice(1).map((w) => encodeCanonical({ from: w.from, to: w.to, part: w.part, n: 1 })));
    meter.add(fill(16, 1), fill(32, 3), "received", 7);
    advance(10);
    await reporter.close();
    expect(signed.at(-1)).toMatchObject({ from: GENESIS + 180, to: GENESIS + 190 });
    expect(sent.length).toBe(3);
    const registry = new Registry();
    registerUsageMetrics(registry, meter, reporter);
    const text = await registry.metrics();
    expect(text).toContain('psp_usage_reports_total{outcome="delivered"} 3');
    expect(text).toContain("psp_usage_bytes_counted_total 310");
  });
});

describe("final refusals", () => {
  it("drops a report an oracle refuses for good instead of resending it, and counts it", async () => {
    const a = fill(32, 10);
    const { meter, reporter, sent, signed, advance } = setup([a], new Set(), new Set([hexOf(a)]));
    meter.add(fill(16, 1), fill(32, 3), "received", 100);
    advance(60);
    await reporter.flush();
    await reporter.flush();
    expect(signed.length).toBe(1);
    expect(sent).toEqual([]);
    expect(reporter.pending).toBe(0);
    expect(reporter.stats.refused).toBe(1);
    expect(reporter.stats.oracleFailures).toBe(0);
    await reporter.close(false);
  });
});

describe("rewards config", () => {
  it("takes reportIntervalSeconds 1..3600 and refuses anything else by field", () => {
    expect(parseNodeConfig({ listen: { host: "a", port: 1 }, rewards: { reportIntervalSeconds: 10 } }).rewards).toEqual({ reportIntervalSeconds: 10 });
    expect(parseNodeConfig({ listen: { host: "a", port: 1 } }).rewards).toBeUndefined();
    for (const rewards of [{ reportIntervalSeconds: 0 }, { reportIntervalSeconds: 3601 }, { reportIntervalSeconds: 1.5 }, { other: 1 }, 5]) {
      let err: unknown;
      try {
        parseNodeConfig({ listen: { host: "a", port: 1 }, rewards });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NodeError);
      expect((err as NodeError).message).toContain("rewards");
    }
  });
});

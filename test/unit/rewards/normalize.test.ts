/**
 * Usage normalization (oracle/normalize.ts): the rule on small signed
 * reports (matching, caps, outliers, per-receiver cap, budget, order
 * independence), then issue 16's three targets measured with the same code
 * on a simulated epoch (oracle/normalize-sim.ts): 50 nodes, 2,000 viewer
 * sessions, skewed clocks, latency, re-attaching viewers:
 * - honest nodes lose at most 2 % of what they sent;
 * - a node inflating its reports (1.1× to 10×) gains at most 1.05× its honest reward;
 * - a colluding node and viewer gain at most the stream's cap over the session.
 */
import { describe, expect, it } from "vitest";
import { getAddress, type Address } from "viem";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { RewardsError } from "../../../node/src/rewards/errors.js";
import { signUsageReport, type UsageEntry, type UsageReport } from "../../../node/src/rewards/report.js";
import { signSessionId, type SessionId } from "../../../node/src/stream/session.js";
import { capBytes, coveredSeconds, normalizeUsage, OUTLIER_GRACE_SECONDS, type NormalizeInput } from "../../../oracle/normalize.js";
import { simulateEpoch, type SimEpoch } from "../../../oracle/normalize-sim.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const T = 1_800_000_000;
const oracle = generateEd25519KeyPair();
const nodeA = generateEd25519KeyPair();
const nodeB = generateEd25519KeyPair();
const nodeC = generateEd25519KeyPair();
const stream = new Uint8Array(16).fill(7);
const KBPS = 2000; // 250,000 bytes/s; the cap allows 375,000 bytes/s
const opA = getAddress(`0x${"a1".repeat(20)}`);
const opB = getAddress(`0x${"b2".repeat(20)}`);

function viewer(): { secretKey: Uint8Array; session: SessionId } {
  const keys = generateEd25519KeyPair();
  return {
    secretKey: keys.secretKey,
    session: signSessionId({ issuedAt: T - 10, expiresAt: T + 3600, secretKey: oracle.secretKey, viewerKey: keys.publicKey }),
  };
}

const sent = (peer: Uint8Array, bytes: number, s = stream): UsageEntry => ({ stream: s, peer, direction: "sent", bytes });
const recv = (peer: Uint8Array, bytes: number, s = stream): UsageEntry => ({ stream: s, peer, direction: "received", bytes });
const nodeReport = (secretKey: Uint8Array, entries: UsageEntry[], from = T, to = T + 300) => signUsageReport({ kind: "node", secretKey, from, to, entries });
const viewerReport = (v: ReturnType<typeof viewer>, entries: UsageEntry[], from = T, to = T + 300) =>
  signUsageReport({ kind: "viewer", secretKey: v.secretKey, session: v.session.bytes, from, to, entries });

const base = (reports: UsageReport[], over: Partial<NormalizeInput> = {}): NormalizeInput => ({
  reports,
  caps: new Map([[hex(stream), KBPS]]),
  operators: new Map<string, Address>([
    [hex(nodeA.publicKey), opA],
    [hex(nodeB.publicKey), opB],
  ]),
  weiPerByte: 10n,
  epochBudget: 10n ** 24n,
  ...over,
});
const reasons = (r: ReturnType<typeof normalizeUsage>) => Object.fromEntries(r.discarded.map((d) => [d.reason, d.count]));

describe("normalization rule", () => {
  it("an edge pays the lower side; one-sided, unknown-stream and outlier edges pay nothing", () => {
    const v1 = viewer();
    const v2 = viewer();
    const v3 = viewer();
    const other = new Uint8Array(16).fill(9);
    const r = normalizeUsage(
      base([
        nodeReport(nodeA.secretKey, [sent(v1.session.sid, 60_000_000), sent(v2.session.sid, 5_000_000), sent(v3.session.sid, 50_000_000, other)]),
        viewerReport(v1, [recv(nodeA.publicKey, 59_900_000)]),
        viewerReport(v3, [recv(nodeA.publicKey, 50_000_000, other)]),
        // v2 never reports: no counterpart. Node B claims 10× what v4 saw: outlier.
        ...(() => {
          const v4 = viewer();
          return [nodeReport(nodeB.secretKey, [sent(v4.session.sid, 70_000_000)]), viewerReport(v4, [recv(nodeB.publicKey, 7_000_000)])];
        })(),
      ]),
    );
    expect(r.perNode.get(hex(nodeA.publicKey))).toEqual({ bytes: 59_900_000n, reward: 599_000_000n });
    expect(r.perNode.has(hex(nodeB.publicKey))).toBe(false);
    expect(reasons(r)).toEqual({ "no-counterpart": 1, "unknown-stream": 1, outlier: 1 });
    expect(r.perOperator).toEqual(new Map([[opA, 599_000_000n]]));
    expect(r.total).toBe(599_000_000n);
  });

  it("sides within the ratio or the grace are not outliers; the lower side pays", () => {
    const v = viewer();
    const grace = capBytes(KBPS, OUTLIER_GRACE_SECONDS);
    const r = normalizeUsage(base([nodeReport(nodeA.secretKey, [sent(v.session.sid, 1000 + grace)]), viewerReport(v, [recv(nodeA.publicKey, 1000)])]));
    expect(r.perNode.get(hex(nodeA.publicKey))?.bytes).toBe(1000n);
  });

  it("a pair that agrees on too much is held to the stream's cap over the shorter side's covered time", () => {
    const v = viewer();
    const r = normalizeUsage(
      base([
        nodeReport(nodeA.secretKey, [sent(v.session.sid, 2 ** 40)], T, T + 300),
        nodeReport(nodeA.secretKey, [sent(v.session.sid, 2 ** 40)], T + 300, T + 600),
        viewerReport(v, [recv(nodeA.publicKey, 2 ** 40)], T + 100, T + 400),
      ]),
    );
    // The node's 2 × 2^40 against the viewer's 2^40 is an outlier; agreeing sides are capped.
    expect(reasons(r)).toEqual({ outlier: 1 });
    const r2 = normalizeUsage(
      base([nodeReport(nodeA.secretKey, [sent(v.session.sid, 2 ** 40)], T, T + 600), viewerReport(v, [recv(nodeA.publicKey, 2 ** 40)], T + 100, T + 400)]),
    );
    expect(r2.perNode.get(hex(nodeA.publicKey))?.bytes).toBe(BigInt(capBytes(KBPS, 300)));
    expect(reasons(r2)).toEqual({ capped: 1 });
  });

  it("a viewer's covered time ends with its session, and all senders to one receiver share one cap", () => {
    const v = viewer();
    const big = capBytes(KBPS, 300);
    const r = normalizeUsage(
      base([
        nodeReport(nodeA.secretKey, [sent(v.session.sid, big)]),
        nodeReport(nodeB.secretKey, [sent(v.session.sid, big)]),
        viewerReport(v, [recv(nodeA.publicKey, big), recv(nodeB.publicKey, big)]),
      ]),
    );
    const a = r.perNode.get(hex(nodeA.publicKey))!.bytes;
    const b = r.perNode.get(hex(nodeB.publicKey))!.bytes;
    expect(a + b).toBeLessThanOrEqual(BigInt(big));
    expect(a + b).toBeGreaterThanOrEqual(BigInt(big) - 1n);
    // A report window past the session's expiry covers only the session's part of it.
    const late = normalizeUsage(
      base([
        nodeReport(nodeA.secretKey, [sent(v.session.sid, 2 ** 40)], T + 3500, T + 3800),
        viewerReport(v, [recv(nodeA.publicKey, 2 ** 40)], T + 3500, T + 3800),
      ]),
    );
    expect(late.perNode.get(hex(nodeA.publicKey))?.bytes).toBe(BigInt(capBytes(KBPS, 100)));
  });

  it("node-to-node edges match the feeding node's sent with the fed node's received", () => {
    const r = normalizeUsage(
      base([nodeReport(nodeA.secretKey, [sent(nodeB.publicKey, 70_000_000)]), nodeReport(nodeB.secretKey, [recv(nodeA.publicKey, 69_000_000)])]),
    );
    expect(r.perNode.get(hex(nodeA.publicKey))?.bytes).toBe(69_000_000n);
    const self = normalizeUsage(base([nodeReport(nodeA.secretKey, [sent(nodeA.publicKey, 5), recv(nodeA.publicKey, 5)])]));
    expect(reasons(self)).toEqual({ self: 1 });
  });

  it("rewards scale down pro rata (floor) to the budget; operators sum their nodes; nodes without one pay no one", () => {
    const va = viewer();
    const vb = viewer();
    const vc = viewer();
    const reports = [
      nodeReport(nodeA.secretKey, [sent(va.session.sid, 3_000_000)]),
      viewerReport(va, [recv(nodeA.publicKey, 3_000_000)]),
      nodeReport(nodeB.secretKey, [sent(vb.session.sid, 1_000_001)]),
      viewerReport(vb, [recv(nodeB.publicKey, 1_000_001)]),
      nodeReport(nodeC.secretKey, [sent(vc.session.sid, 9_000_000)]),
      viewerReport(vc, [recv(nodeC.publicKey, 9_000_000)]),
    ];
    const r = normalizeUsage(base(reports, { weiPerByte: 3n, epochBudget: 1_000_000n }));
    expect(r.perOperator.get(opA)).toBe((3_000_000n * 3n * 1_000_000n) / (4_000_001n * 3n));
    expect(r.perOperator.get(opB)).toBe((1_000_001n * 3n * 1_000_000n) / (4_000_001n * 3n));
    expect(r.total).toBeLessThanOrEqual(1_000_000n);
    expect(r.total).toBeGreaterThan(1_000_000n - 2n);
    expect(reasons(r)).toEqual({ "unknown-operator": 1 });
    expect(r.perNode.has(hex(nodeC.publicKey))).toBe(false);
  });

  it("is deterministic: any order of the same reports gives the same amounts", () => {
    const sim = simulateEpoch({ nodes: 12, sessions: 150, seed: 11 });
    const run = (reports: UsageReport[]) => {
      const r = normalizeUsage({ reports, caps: sim.caps, operators: sim.operators, weiPerByte: 7n, epochBudget: 10n ** 12n });
      return { nodes: [...r.perNode].sort(), ops: [...r.perOperator].sort(), total: r.total, discarded: r.discarded };
    };
    const shuffled = [...sim.reports].reverse();
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    expect(run(shuffled)).toEqual(run(sim.reports));
  });

  it("covered seconds are the union of windows; bad prices are refused", () => {
    expect(coveredSeconds([0, 300, 300, 600, 100, 200, 900, 1000])).toBe(700);
    expect(coveredSeconds([5, 10])).toBe(5);
    expect(() => normalizeUsage(base([], { weiPerByte: -1n }))).toThrow(RewardsError);
  });
});

// --- The targets, on a simulated epoch -----------------------------------------------------------------

const WEI = 1_000_000n;
const run = (sim: SimEpoch, reports: UsageReport[]) =>
  normalizeUsage({ reports, caps: sim.caps, operators: sim.operators, weiPerByte: WEI, epochBudget: 10n ** 36n });

/** The sim's reports with one node's own reports scaled by `factor` (sent and received entries). */
const inflate = (reports: UsageReport[], node: string, factor: number): UsageReport[] =>
  reports.map((r) =>
    r.kind === "node" && hex(r.reporter) === node ? { ...r, entries: r.entries.map((e) => ({ ...e, bytes: Math.floor(e.bytes * factor) })) } : r,
  );

describe("simulation: 50 nodes, 2,000 viewer sessions, one epoch", () => {
  const sim = simulateEpoch({ nodes: 50, sessions: 2000, seed: 16 });
  const honest = run(sim, sim.reports);

  it("honest nodes lose at most 2 % to normalization", () => {
    let worst = 1;
    let sentAll = 0;
    let paidAll = 0n;
    for (const node of sim.nodes) {
      const truth = sim.sent.get(node)!;
      if (truth === 0) continue;
      const paid = honest.perNode.get(node)?.bytes ?? 0n;
      expect(paid).toBeLessThanOrEqual(BigInt(truth));
      worst = Math.min(worst, Number(paid) / truth);
      sentAll += truth;
      paidAll += paid;
    }
    console.info(
      `honest: worst node keeps ${(worst * 100).toFixed(3)} %, all nodes ${((Number(paidAll) / sentAll) * 100).toFixed(3)} % of the bytes they sent`,
    );
    expect(worst).toBeGreaterThanOrEqual(0.98);
  });

  it("a node inflating its reports 1.1× to 10× gains at most 1.05× its honest reward", () => {
    const liars = sim.nodes.filter((n) => (honest.perNode.get(n)?.reward ?? 0n) > 0n).slice(0, 8);
    let worst = 0;
    for (const liar of liars) {
      const fair = honest.perNode.get(liar)!.reward;
      for (const factor of [1.1, 1.25, 1.5, 2, 10]) {
        const got = run(sim, inflate(sim.reports, liar, factor)).perNode.get(liar)?.reward ?? 0n;
        const ratio = Number(got) / Number(fair);
        worst = Math.max(worst, ratio);
        expect(ratio, `${liar.slice(0, 8)} × ${factor}`).toBeLessThanOrEqual(1.05);
      }
    }
    console.info(`inflation: the best liar of ${liars.length} nodes × 5 factors gets ${worst.toFixed(4)} × its honest reward`);
  });

  it("a colluding node and viewer gain at most the stream's cap over the session; honest nodes keep their reward", () => {
    const target = sim.streams.find((s) => s.distribution.length >= 2)!;
    const [node, accomplice] = target.distribution as [string, string];
    const keys = generateEd25519KeyPair();
    const session = signSessionId({ issuedAt: sim.epochStart, expiresAt: sim.epochStart + 3600, secretKey: oracle.secretKey, viewerKey: keys.publicKey });
    const sessionSeconds = Math.min(session.expiresAt, sim.epochEnd) - Math.max(session.issuedAt, sim.epochStart);
    const streamId = new Uint8Array(Buffer.from(target.id, "hex"));
    const huge = 2 ** 44;
    const forged: UsageReport[] = [];
    // Both colluding nodes claim the fake viewer every window; the viewer claims both.
    for (let from = sim.epochStart; from < sim.epochEnd; from += sim.intervalSeconds) {
      const to = from + sim.intervalSeconds;
      for (const n of [node, accomplice])
        forged.push({
          kind: "node",
          reporter: new Uint8Array(Buffer.from(n, "hex")),
          from,
          to,
          part: 1,
          entries: [{ stream: streamId, peer: session.sid, direction: "sent", bytes: huge }],
          anchors: [],
          bytes: new Uint8Array(0),
          hash: "0x",
        });
      forged.push(
        signUsageReport({
          kind: "viewer",
          secretKey: keys.secretKey,
          session: session.bytes,
          from,
          to,
          entries: [node, accomplice].map((n) => recv(new Uint8Array(Buffer.from(n, "hex")), huge, streamId)),
        }),
      );
    }
    const colluded = run(sim, [...sim.reports, ...forged]);
    const gain =
      colluded.perNode.get(node)!.reward -
      honest.perNode.get(node)!.reward +
      (colluded.perNode.get(accomplice)!.reward - honest.perNode.get(accomplice)!.reward);
    const bound = BigInt(capBytes(target.kbps, sessionSeconds)) * WEI;
    console.info(
      `collusion: two nodes and one viewer session on a ${target.kbps} kbit/s stream gain ${Number(gain) / Number(WEI)} bytes' worth; ` +
        `the cap over the ${sessionSeconds} s session is ${Number(bound) / Number(WEI)} (${((Number(gain) / Number(bound)) * 100).toFixed(2)} %)`,
    );
    expect(gain).toBeGreaterThan(0n);
    expect(gain).toBeLessThanOrEqual(bound);
    for (const n of sim.nodes) if (n !== node && n !== accomplice) expect(colluded.perNode.get(n)?.reward).toBe(honest.perNode.get(n)?.reward);
  });
});

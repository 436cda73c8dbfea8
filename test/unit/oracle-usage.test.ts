/**
 * The oracle's usage intake (oracle/usage.ts) and settlement
 * (oracle/settlement.ts) on real SQLite stores: every refusal the issue names
 * comes with its typed kind and leaves the store as it was; a duplicate is
 * acknowledged again; replicas reach a second oracle; an epoch's rewards are
 * computed from the stored reports, cumulated across epochs, voted once and
 * only when BandwidthRewards can take the vote; the proof an operator gets
 * leads to the root voted.
 *
 * The chain is an in-memory view here (the devnet tests run the real one):
 * what matters is what the oracle does with its answers.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { getAddress, type Address, type Hex } from "viem";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { silentLogger } from "../../node/src/log.js";
import { verifyRewardProof } from "../../node/src/rewards/merkle.js";
import { signUsageReport, type UsageEntry } from "../../node/src/rewards/report.js";
import { signReceipt, type ReceiptChainView } from "../../node/src/stream/receipt.js";
import { signSessionId } from "../../node/src/stream/session.js";
import { OracleError } from "../../oracle/errors.js";
import { createSettlement, type RewardsChainView } from "../../oracle/settlement.js";
import { OracleStore } from "../../oracle/store.js";
import { createUsageIntake, type UsageIntake } from "../../oracle/usage.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const EPOCH = 60;
const GENESIS = 1_800_000_000;
const clock = { genesis: GENESIS, epochLength: EPOCH };
const oracleA = generateEd25519KeyPair();
const oracleB = generateEd25519KeyPair();
const landing = generateEd25519KeyPair();
const dist = generateEd25519KeyPair();
const stranger = generateEd25519KeyPair();
const operators: Record<string, Address> = {
  [hex(landing.publicKey)]: getAddress(`0x${"a1".repeat(20)}`),
  [hex(dist.publicKey)]: getAddress(`0x${"b2".repeat(20)}`),
};
const stream = new Uint8Array(16).fill(9);
const KBPS = 2000;
const receipt = signReceipt({
  params: { bitrateKbps: KBPS, maxDurationSeconds: 3600, formatFlags: 7 },
  issuedAt: GENESIS - 10,
  expiresAt: GENESIS + 3600,
  secretKey: oracleA.secretKey,
});
const viewerKeys = generateEd25519KeyPair();
const session = signSessionId({ issuedAt: GENESIS - 5, expiresAt: GENESIS + 3600, secretKey: oracleA.secretKey, viewerKey: viewerKeys.publicKey });

const receipts: ReceiptChainView = {
  oracleKeys: async () => [oracleA.publicKey, oracleB.publicKey],
  verifyInclusion: async () => true,
  isRevoked: async () => false,
  blindKey: async () => undefined,
  isOracleSigner: async () => true,
};

/** Epoch e's window [from, to) of `seconds` starting `offset` seconds in. */
const at = (epoch: number, offset: number, seconds: number) => ({ from: GENESIS + epoch * EPOCH + offset, to: GENESIS + epoch * EPOCH + offset + seconds });
const sent = (peer: Uint8Array, bytes: number): UsageEntry => ({ stream, peer, direction: "sent", bytes });
const recv = (peer: Uint8Array, bytes: number): UsageEntry => ({ stream, peer, direction: "received", bytes });

/** One epoch's honest reports: landing feeds dist `feed` bytes, dist sends the viewer `view` bytes. */
function epochReports(epoch: number, feed: number, view: number) {
  const w = at(epoch, 0, EPOCH);
  return [
    signUsageReport({
      kind: "node",
      secretKey: landing.secretKey,
      ...w,
      entries: [sent(dist.publicKey, feed)],
      anchors: [{ stream, receipt: receipt.bytes, kbps: KBPS }],
    }),
    signUsageReport({ kind: "node", secretKey: dist.secretKey, ...w, entries: [recv(landing.publicKey, feed), sent(session.sid, view)] }),
    signUsageReport({ kind: "viewer", secretKey: viewerKeys.secretKey, session: session.bytes, ...w, entries: [recv(dist.publicKey, view)] }),
  ];
}

let now = GENESIS;
let storeA: OracleStore;
let storeB: OracleStore;
let intakeA: UsageIntake;
let intakeB: UsageIntake;

function intakeFor(store: OracleStore, self: Uint8Array, peer: Uint8Array): UsageIntake {
  return createUsageIntake({
    store,
    clock: async () => clock,
    oracleKeys: async () => new Set([hex(oracleA.publicKey), hex(oracleB.publicKey)]),
    peers: async () => [hex(peer)].filter((p) => p !== hex(self)),
    isListedNode: (key) => key === hex(landing.publicKey) || key === hex(dist.publicKey),
    receipts,
    acceptSeconds: 30,
    now: () => now * 1000,
    logger: silentLogger(),
  });
}

async function refusal(intake: UsageIntake, bytes: Uint8Array): Promise<string> {
  try {
    await intake.submit(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(OracleError);
    return (err as OracleError).kind;
  }
  throw new Error("the report was accepted");
}

beforeEach(() => {
  now = GENESIS + EPOCH + 5; // epoch 0 ended 5 s ago
  storeA = new OracleStore(":memory:");
  storeB = new OracleStore(":memory:");
  intakeA = intakeFor(storeA, oracleA.publicKey, oracleB.publicKey);
  intakeB = intakeFor(storeB, oracleB.publicKey, oracleA.publicKey);
});

afterEach(() => {
  storeA.close();
  storeB.close();
});

describe("usage intake", () => {
  it("stores reports, acknowledges a duplicate again, and queues each for the other oracle, who takes it as a replica", async () => {
    const reports = epochReports(0, 1_000_000, 900_000);
    for (const r of reports) expect(await intakeA.submit(r.bytes)).toEqual({ hash: r.hash, duplicate: false });
    expect(await intakeA.submit(reports[0]!.bytes)).toEqual({ hash: reports[0]!.hash, duplicate: true });
    expect(storeA.reportCount(0)).toBe(3);
    const due = storeA.reportOutbox().due(hex(oracleB.publicKey), now * 1000, 10);
    expect(due.map((d) => d.id).sort()).toEqual(reports.map((r) => r.hash).sort());
    // Replicas are taken after the intake deadline too: their first oracle applied it.
    now += 3600;
    expect(await intakeB.replicate(due.map((d) => d.doc))).toBe(3);
    expect(storeB.reportCount(0)).toBe(3);
    expect(storeB.reportOutbox().size()).toBe(0); // never forwarded again
  });

  it("refuses with a typed kind and stores nothing: bad signature, unknown or expired session, another epoch, conflicts, strangers, bad anchors", async () => {
    const good = signUsageReport({ kind: "node", secretKey: dist.secretKey, ...at(0, 0, 30), entries: [sent(session.sid, 10)] });
    const flipped = new Uint8Array(good.bytes);
    flipped[flipped.length - 1]! ^= 1;
    expect(await refusal(intakeA, flipped)).toBe("bad-report");

    const foreignSession = signSessionId({ issuedAt: GENESIS, expiresAt: GENESIS + 3600, secretKey: stranger.secretKey, viewerKey: viewerKeys.publicKey });
    const viewerWith = (s: Uint8Array, w = at(0, 0, 30)) =>
      signUsageReport({ kind: "viewer", secretKey: viewerKeys.secretKey, session: s, ...w, entries: [recv(dist.publicKey, 10)] }).bytes;
    expect(await refusal(intakeA, viewerWith(foreignSession.bytes))).toBe("unknown-session");
    const expired = signSessionId({ issuedAt: GENESIS - 7200, expiresAt: GENESIS - 3600, secretKey: oracleA.secretKey, viewerKey: viewerKeys.publicKey });
    expect(await refusal(intakeA, viewerWith(expired.bytes))).toBe("expired-session");

    // Another epoch: one closed beyond the deadline, one not ended yet reaching into the future, one crossing a boundary.
    now = GENESIS + 3 * EPOCH + 31;
    expect(await refusal(intakeA, good.bytes)).toBe("wrong-epoch");
    now = GENESIS + EPOCH + 5;
    const future = signUsageReport({ kind: "node", secretKey: dist.secretKey, ...at(3, 0, 30), entries: [sent(session.sid, 10)] });
    expect(await refusal(intakeA, future.bytes)).toBe("wrong-epoch");
    const crossing = signUsageReport({ kind: "node", secretKey: dist.secretKey, ...at(0, 50, 20), entries: [sent(session.sid, 10)] });
    expect(await refusal(intakeA, crossing.bytes)).toBe("wrong-epoch");

    const unlisted = signUsageReport({ kind: "node", secretKey: stranger.secretKey, ...at(0, 0, 30), entries: [sent(session.sid, 10)] });
    expect(await refusal(intakeA, unlisted.bytes)).toBe("bad-report");
    const forgedReceipt = signReceipt({
      params: { bitrateKbps: 99_999, maxDurationSeconds: 3600, formatFlags: 7 },
      issuedAt: GENESIS,
      expiresAt: GENESIS + 60,
      secretKey: stranger.secretKey,
    });
    const badAnchor = signUsageReport({
      kind: "node",
      secretKey: landing.secretKey,
      ...at(0, 0, 30),
      entries: [],
      anchors: [{ stream, receipt: forgedReceipt.bytes, kbps: 99_999 }],
    });
    expect(await refusal(intakeA, badAnchor.bytes)).toBe("bad-report");

    expect(storeA.reportCount()).toBe(0);
    await intakeA.submit(good.bytes);
    const sameWindow = signUsageReport({ kind: "node", secretKey: dist.secretKey, ...at(0, 0, 30), entries: [sent(session.sid, 10_000)] });
    expect(await refusal(intakeA, sameWindow.bytes)).toBe("report-conflict");
    const overlapping = signUsageReport({ kind: "node", secretKey: dist.secretKey, ...at(0, 20, 30), entries: [sent(session.sid, 10_000)] });
    expect(await refusal(intakeA, overlapping.bytes)).toBe("report-conflict");
    expect(storeA.reportCount()).toBe(1);
    expect(intakeA.stats().refused).toMatchObject({ "bad-report": 3, "unknown-session": 1, "expired-session": 1, "wrong-epoch": 3, "report-conflict": 2 });
  });
});

describe("settlement", () => {
  /** BandwidthRewards in memory: roots agreed on the first vote (one oracle here), final when told. */
  function memoryChain() {
    const agreed = new Map<number, { root: Hex; total: bigint }>();
    const votes: { epoch: number; root: Hex; total: bigint }[] = [];
    let last: number | undefined;
    let final = false;
    const chain: RewardsChainView = {
      clock: async () => clock,
      lastAgreed: async () => (last === undefined ? undefined : { epoch: last, ...agreed.get(last)!, final }),
      agreedRoot: async (epoch) => agreed.get(epoch)?.root,
      hasVoted: async (epoch) => votes.some((v) => v.epoch === epoch),
      submitRoot: async (epoch, root, total) => {
        votes.push({ epoch, root, total });
        agreed.set(epoch, { root, total });
        last = epoch;
        final = false;
      },
      operatorOf: async (nodeKey) => operators[nodeKey.slice(2)],
    };
    return { chain, votes, finalize: () => (final = true) };
  }

  it("computes each epoch once from the stored reports, cumulates, votes when it can, and serves proofs that lead to the voted root", async () => {
    const { chain, votes, finalize } = memoryChain();
    const WEI = 1_000n;
    const settlement = createSettlement({
      store: storeA,
      chain,
      receipts,
      oracleKeys: async () => new Set([hex(oracleA.publicKey)]),
      policy: { weiPerByte: WEI, epochBudget: 10n ** 30n },
      nodeKey: `0x${hex(oracleA.publicKey)}`,
      settleDelaySeconds: 20,
      intervalMs: 3_600_000,
      now: () => now * 1000,
      logger: silentLogger(),
    });
    try {
      for (const r of epochReports(0, 1_000_000, 900_000)) await intakeA.submit(r.bytes);
      await settlement.tick(); // 5 s after epoch 0: too early
      expect(votes).toEqual([]);
      now = GENESIS + EPOCH + 21;
      await settlement.tick();
      const e0 = storeA.rewardEpoch(0)!;
      const [opLanding, opDist] = [operators[hex(landing.publicKey)]!.toLowerCase(), operators[hex(dist.publicKey)]!.toLowerCase()];
      expect(new Map(e0.accounts.map((a) => [a.account, a.cumulative]))).toEqual(
        new Map([
          [opLanding, 1_000_000n * WEI],
          [opDist, 900_000n * WEI],
        ]),
      );
      expect(votes).toEqual([{ epoch: 0, root: e0.root, total: 1_900_000n * WEI }]);

      // Epoch 1 carries more; its root cannot be voted while epoch 0's is disputable, then it is, cumulatively.
      now = GENESIS + 2 * EPOCH + 5;
      for (const r of epochReports(1, 500_000, 400_000)) await intakeA.submit(r.bytes);
      now = GENESIS + 2 * EPOCH + 21;
      await settlement.tick();
      expect(votes).toHaveLength(1);
      finalize();
      await settlement.tick();
      const e1 = storeA.rewardEpoch(1)!;
      expect(e1.total).toBe(2_800_000n * WEI);
      expect(e1.accounts.find((a) => a.account === opDist)).toEqual({ account: opDist, earned: 400_000n * WEI, cumulative: 1_300_000n * WEI });
      expect(votes.at(-1)).toEqual({ epoch: 1, root: e1.root, total: e1.total });

      const proof = await settlement.proof(getAddress(opDist));
      expect(proof).toMatchObject({ epoch: 1, root: e1.root, amount: 1_300_000n * WEI });
      expect(proof.epochs).toEqual([
        { epoch: 0, amount: 900_000n * WEI },
        { epoch: 1, amount: 400_000n * WEI },
      ]);
      expect(verifyRewardProof(e1.root, getAddress(opDist), proof.amount, proof.proof)).toBe(true);
      expect((await settlement.proof(getAddress(opDist), 0)).amount).toBe(900_000n * WEI);
      // psp_oracle_reward_proofs_served_total counts the proofs served.
      expect(settlement.stats().proofsServed).toBe(2);
      // A report stored after its epoch was computed changes nothing: every oracle computed from what it held then.
      const late = signUsageReport({ kind: "node", secretKey: landing.secretKey, ...at(1, 0, 10), part: 3, entries: [sent(dist.publicKey, 1)] });
      await intakeB.replicate([late.bytes]);
      expect((await settlement.compute(1)).root).toBe(e1.root);
    } finally {
      settlement.close();
    }
  });

  it("an inflated node report pays what its counterpart confirms, and an edge with no counterpart pays nothing", async () => {
    const { chain } = memoryChain();
    const settlement = createSettlement({
      store: storeA,
      chain,
      receipts,
      oracleKeys: async () => new Set([hex(oracleA.publicKey)]),
      policy: { weiPerByte: 1n, epochBudget: 10n ** 30n },
      nodeKey: `0x${hex(oracleA.publicKey)}`,
      settleDelaySeconds: 20,
      intervalMs: 3_600_000,
      now: () => now * 1000,
      logger: silentLogger(),
    });
    try {
      const w = at(0, 0, EPOCH);
      await intakeA.submit(
        signUsageReport({
          kind: "node",
          secretKey: landing.secretKey,
          ...w,
          entries: [sent(dist.publicKey, 1_000_000)],
          anchors: [{ stream, receipt: receipt.bytes, kbps: KBPS }],
        }).bytes,
      );
      // dist claims ten times what the viewer got, and a session nobody reports under.
      await intakeA.submit(
        signUsageReport({
          kind: "node",
          secretKey: dist.secretKey,
          ...w,
          entries: [recv(landing.publicKey, 1_000_000), sent(session.sid, 9_000_000), sent(new Uint8Array(16).fill(1), 5_000_000)],
        }).bytes,
      );
      await intakeA.submit(
        signUsageReport({ kind: "viewer", secretKey: viewerKeys.secretKey, session: session.bytes, ...w, entries: [recv(dist.publicKey, 900_000)] }).bytes,
      );
      const e0 = await settlement.compute(0);
      const opDist = operators[hex(dist.publicKey)]!.toLowerCase();
      // What the viewer confirmed, not the tenfold claim; the session nobody reports under pays nothing.
      expect(e0.accounts.find((a) => a.account === opDist)?.earned).toBe(900_000n);
      expect(e0.summary["discarded.no-counterpart"]).toBe(1);
    } finally {
      settlement.close();
    }
  });
});

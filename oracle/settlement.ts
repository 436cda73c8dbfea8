/**
 * Settlement: once an epoch has ended and its reports had time to reach
 * every oracle, compute its rewards from the stored reports, deterministically,
 * and vote the tree's root on chain (docs/spec/rewards.md "Settlement").
 *
 * Owns the order of work: epochs are computed once each, in order, at
 * epochEnd + settleDelay (reports stored after that do not count, so every
 * oracle that held the same reports then computes the same root); the
 * cumulative amounts of epoch e are those of e-1 plus what e earned; a vote
 * goes to the latest computed epoch when BandwidthRewards can take one (the
 * previous agreed root is final, this oracle has not voted in the round, the
 * root pays something new). Serves operators their proof against the latest
 * agreed root, refusing when its own tree for that epoch is another one.
 *
 * Trusts: its store's reports (the intake checked them), normalize.ts, the
 * chain view for epochs, votes and node operators.
 */
import type { Address, Hex } from "viem";
import { childLogger, logFailure, type Logger } from "../node/src/log.js";
import { decodeUsageReport } from "../node/src/rewards/report.js";
import { buildRewardTree, type RewardTree } from "../node/src/rewards/merkle.js";
import type { ReceiptChainView } from "../node/src/stream/receipt.js";
import { OracleError } from "./errors.js";
import { normalizeUsage, type NormalizeResult } from "./normalize.js";
import type { OracleStore, RewardEpochRecord } from "./store.js";
import { epochOf, verifyAnchorReceipt, type EpochClock } from "./usage.js";

/** What settlement reads and writes on chain (node/src/chain/rewards.ts binds it to BandwidthRewards). */
export interface RewardsChainView {
  clock(): Promise<EpochClock>;
  /** The latest epoch with an agreed root, and whether its dispute window is over. */
  lastAgreed(): Promise<{ epoch: number; root: Hex; total: bigint; final: boolean } | undefined>;
  /** The agreed root of `epoch` (disputable or final), undefined without one. */
  agreedRoot(epoch: number): Promise<Hex | undefined>;
  hasVoted(epoch: number, nodeKey: Hex): Promise<boolean>;
  submitRoot(epoch: number, root: Hex, total: bigint): Promise<void>;
  /** The operator that registered a node (NodeRegistry), undefined for an unknown node. */
  operatorOf(nodeKey: Hex): Promise<Address | undefined>;
}

/** The price list every oracle must share: a different one computes a different root. */
export interface RewardPolicy {
  /** PSP wei per normalized byte carried. */
  weiPerByte: bigint;
  /** Most an epoch pays; more is scaled down pro rata. */
  epochBudget: bigint;
}

export interface SettlementOptions {
  store: OracleStore;
  chain: RewardsChainView;
  receipts: ReceiptChainView;
  oracleKeys: () => Promise<ReadonlySet<string>>;
  policy: RewardPolicy;
  /** This oracle's node key (0x hex): the key its votes are counted under. */
  nodeKey: Hex;
  /** Seconds after an epoch's end before it is computed: the intake deadline plus replication. */
  settleDelaySeconds: number;
  intervalMs?: number;
  now?: () => number;
  logger?: Logger;
}

export interface RewardProof {
  epoch: number;
  root: Hex;
  /** The account's cumulative amount under that root. */
  amount: bigint;
  proof: Hex[];
  /** What the account earned per computed epoch (non-zero ones). */
  epochs: { epoch: number; amount: bigint }[];
}

export interface Settlement {
  /** Computes what is due and votes when it can; resolves when done (never throws: failures are logged). */
  tick(): Promise<void>;
  /** The epoch's record, computing it (and every epoch before it) if needed. */
  compute(epoch: number): Promise<RewardEpochRecord>;
  /** The account's leaf under the agreed root of `epoch` (default: the newest agreed one). */
  proof(account: Address, epoch?: number): Promise<RewardProof>;
  /** Trees computed, votes sent, reward proofs served (an operator's proof against an agreed root), the last epochs computed and voted. */
  stats(): { computed: number; votes: number; proofsServed: number; lastComputed: number | undefined; lastVoted: number | undefined };
  close(): void;
}

/** Stream caps of one epoch from its reports' anchors: the lowest kbps per stream; one receipt anchors one stream (the lowest id). */
async function streamCaps(
  reports: ReturnType<typeof decodeUsageReport>[],
  receipts: ReceiptChainView,
  oracleKeys: ReadonlySet<string>,
  log: Logger,
): Promise<Map<string, number>> {
  const byReceipt = new Map<string, string>();
  const caps = new Map<string, number>();
  const anchors: { stream: string; kbps: number; receiptKey: string }[] = [];
  for (const report of reports) {
    if (report.kind !== "node") continue;
    for (const anchor of report.anchors) {
      try {
        const verified = await verifyAnchorReceipt(anchor.receipt, receipts, report.to, oracleKeys);
        anchors.push({ stream: Buffer.from(anchor.stream).toString("hex"), kbps: Math.min(anchor.kbps, verified.kbps), receiptKey: verified.receiptKey });
      } catch (err) {
        // Checked at intake; a receipt revoked since then, or a key gone, no longer anchors.
        logFailure(log, err, "use a stream anchor", "debug");
      }
    }
  }
  for (const a of anchors) {
    const first = byReceipt.get(a.receiptKey);
    if (first === undefined || a.stream < first) byReceipt.set(a.receiptKey, a.stream);
  }
  for (const a of anchors) {
    if (byReceipt.get(a.receiptKey) !== a.stream) continue;
    caps.set(a.stream, Math.min(caps.get(a.stream) ?? Infinity, a.kbps));
  }
  return caps;
}

export function createSettlement(opts: SettlementOptions): Settlement {
  const log = childLogger(opts.logger, "settlement");
  const now = opts.now ?? Date.now;
  const stats = { computed: 0, votes: 0, proofsServed: 0, lastComputed: undefined as number | undefined, lastVoted: undefined as number | undefined };
  let treeCache: { epoch: number; tree: RewardTree } | undefined;

  const operatorsOf = async (nodes: Iterable<string>): Promise<Map<string, Address>> => {
    const map = new Map<string, Address>();
    for (const node of nodes) {
      const operator = await opts.chain.operatorOf(`0x${node}`);
      if (operator) map.set(node, operator);
    }
    return map;
  };

  const computeOne = async (epoch: number, clock: EpochClock, previous: RewardEpochRecord | undefined): Promise<RewardEpochRecord> => {
    const reports = opts.store.reportsOf(epoch).map((doc) => decodeUsageReport(doc));
    const oracleKeys = await opts.oracleKeys();
    const caps = await streamCaps(reports, opts.receipts, oracleKeys, log);
    const senders = new Set<string>();
    for (const r of reports) if (r.kind === "node") senders.add(Buffer.from(r.reporter).toString("hex"));
    const operators = await operatorsOf(senders);
    const result: NormalizeResult = normalizeUsage({ reports, caps, operators, weiPerByte: opts.policy.weiPerByte, epochBudget: opts.policy.epochBudget });
    const cumulative = new Map<Address, bigint>();
    for (const a of previous?.accounts ?? []) cumulative.set(a.account.toLowerCase() as Address, a.cumulative);
    const earned = new Map<Address, bigint>();
    for (const [account, amount] of result.perOperator) {
      const key = account.toLowerCase() as Address;
      earned.set(key, (earned.get(key) ?? 0n) + amount);
      cumulative.set(key, (cumulative.get(key) ?? 0n) + amount);
    }
    const positive = new Map([...cumulative].filter(([, v]) => v > 0n));
    const tree = positive.size > 0 ? buildRewardTree(positive) : undefined;
    const record: RewardEpochRecord = {
      epoch,
      root: tree?.root ?? `0x${"00".repeat(32)}`,
      total: tree?.total ?? 0n,
      computedAt: Math.floor(now() / 1000),
      summary: {
        reports: reports.length,
        streams: caps.size,
        nodes: result.perNode.size,
        bytes: result.bytes.toString(),
        edges: result.edges,
        earned: result.total.toString(),
        ...Object.fromEntries(result.discarded.map((d) => [`discarded.${d.reason}`, d.count])),
      },
      accounts: [...positive].map(([account, value]) => ({ account, earned: earned.get(account) ?? 0n, cumulative: value })),
    };
    opts.store.saveRewardEpoch(record);
    stats.computed++;
    stats.lastComputed = epoch;
    log.info({ epoch, root: record.root, total: record.total.toString(), ...record.summary }, "computed an epoch's rewards");
    return record;
  };

  let computing: Promise<RewardEpochRecord> | undefined;
  const compute = async (target: number): Promise<RewardEpochRecord> => {
    while (computing) await computing.catch(() => undefined);
    const held = opts.store.rewardEpoch(target);
    if (held) return held;
    const work = (async () => {
      const clock = await opts.chain.clock();
      const last = opts.store.previousRewardEpoch(target);
      let previous = last === undefined ? undefined : opts.store.rewardEpoch(last);
      for (let e = last === undefined ? 0 : last + 1; e <= target; e++) previous = await computeOne(e, clock, previous);
      return previous!;
    })();
    computing = work;
    try {
      return await work;
    } finally {
      computing = undefined;
    }
  };

  const tick = async (): Promise<void> => {
    try {
      const clock = await opts.chain.clock();
      const nowSeconds = Math.floor(now() / 1000);
      const target = epochOf(clock, nowSeconds - opts.settleDelaySeconds) - 1;
      if (target < 0) return;
      const record = await compute(target);
      const last = await opts.chain.lastAgreed();
      if (last) {
        const mine = opts.store.rewardEpoch(last.epoch);
        if (mine && mine.root !== last.root)
          log.error(
            { epoch: last.epoch, agreed: last.root, mine: mine.root },
            "the agreed root differs from this oracle's: its votes will not match the others'",
          );
        if (!last.final || last.epoch >= target || record.total <= last.total) return;
      } else if (record.total === 0n) return;
      if (await opts.chain.hasVoted(target, opts.nodeKey)) return;
      await opts.chain.submitRoot(target, record.root, record.total);
      stats.votes++;
      stats.lastVoted = target;
      log.info({ epoch: target, root: record.root, total: record.total.toString() }, "voted an epoch's reward root");
    } catch (err) {
      logFailure(log, err, "settle reward epochs", "warn");
    }
  };

  let running: Promise<void> | undefined;
  const guardedTick = () => (running ??= tick().finally(() => (running = undefined)));
  const timer = setInterval(() => void guardedTick(), opts.intervalMs ?? 5_000);
  timer.unref();

  return {
    tick: guardedTick,
    compute,
    async proof(account, epoch) {
      const last =
        epoch === undefined ? await opts.chain.lastAgreed() : await opts.chain.agreedRoot(epoch).then((root) => (root ? { epoch, root } : undefined));
      if (!last)
        throw new OracleError(
          "not-settled",
          epoch === undefined ? "no epoch has an agreed reward root yet: retry after the next settlement" : `epoch ${epoch} has no agreed reward root`,
          { retryAfterMs: 30_000 },
        );
      const record = opts.store.rewardEpoch(last.epoch);
      if (!record || record.root !== last.root)
        throw new OracleError("not-settled", `this oracle's tree for epoch ${last.epoch} is not the agreed one: ask another oracle`);
      if (treeCache?.epoch !== last.epoch)
        treeCache = { epoch: last.epoch, tree: buildRewardTree(new Map(record.accounts.map((a) => [a.account, a.cumulative]))) };
      const key = account.toLowerCase() as Address;
      const leaf = record.accounts.find((a) => a.account === key);
      stats.proofsServed++;
      return {
        epoch: last.epoch,
        root: record.root,
        amount: leaf?.cumulative ?? 0n,
        proof: leaf ? treeCache.tree.proof(key) : [],
        epochs: opts.store.earnings(key).map((e) => ({ epoch: e.epoch, amount: e.earned })),
      };
    },
    stats: () => ({ ...stats }),
    close: () => clearInterval(timer),
  };
}

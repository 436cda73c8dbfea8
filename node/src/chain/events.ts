/**
 * Following contract events with a confirmation depth.
 *
 * Owns the rule "act only on logs at least `confirmations` blocks deep" and
 * the detection of reorgs deeper than that. The core is pure: `planPoll`
 * says which block range is confirmed given the chain head, and `applyPoll`
 * decides, from what the chain returned, which logs to deliver or whether the
 * chain under the follower changed. `createEventFollower` is the thin poller
 * that feeds them from any `EventSource` (a viem public client fits).
 *
 * Why this shape: the follower never fetches a block shallower than the
 * confirmation depth, so a reorg that drops a transaction within that depth
 * is never even seen, let alone acted on. A reorg deeper than the depth is
 * detected by re-reading the hash of the last delivered block; the follower
 * then reports it (`onDeepReorg`) so callers drop everything they derived,
 * and resumes from the common ancestor it can still prove.
 *
 * Trusts: the RPC endpoint for the chain's contents (nothing can check that
 * locally); nothing about ordering or completeness of what it returns.
 */
import type { Address, Hex } from "viem";
import { ChainError } from "./errors.js";
import { childLogger, throttledFailureLog } from "../log.js";
import type { Logger } from "../log.js";

/** The fields of a log this module needs; viem's `Log` has them all. */
export interface ChainLog {
  blockNumber: bigint | null;
  blockHash: Hex | null;
  logIndex: number | null;
  transactionHash: Hex | null;
  /** Set by some RPCs on logs removed by a reorg. */
  removed?: boolean;
}

export interface BlockRef {
  number: bigint;
  hash: Hex;
}

/** What the follower has delivered so far: every log up to and including `delivered`. */
export interface FollowerState {
  delivered: BlockRef | null;
}

export type PollPlan =
  | { kind: "idle"; reason: "not-deep-enough" }
  | { kind: "fetch"; fromBlock: bigint; toBlock: bigint };

export interface PollPlanOptions {
  /** Logs must be at least this many blocks below the head (0: the head itself counts). */
  confirmations: number;
  /** First block to follow when nothing was delivered yet (e.g. the contract's deployment block). */
  startBlock: bigint;
  /** Largest block range fetched at once (RPCs cap eth_getLogs ranges). */
  maxRange?: bigint;
}

export const DEFAULT_MAX_LOG_RANGE = 2_000n;

/** The newest block that is at least `confirmations` deep under `head`, or -1 when none is. */
export function confirmedTip(head: bigint, confirmations: number): bigint {
  checkConfirmations(confirmations);
  return head - BigInt(confirmations);
}

/** Which block range to fetch next, given the chain head. Pure. */
export function planPoll(state: FollowerState, head: bigint, opts: PollPlanOptions): PollPlan {
  const tip = confirmedTip(head, opts.confirmations);
  const from = state.delivered ? state.delivered.number + 1n : opts.startBlock;
  if (tip < from) return { kind: "idle", reason: "not-deep-enough" };
  const maxRange = opts.maxRange ?? DEFAULT_MAX_LOG_RANGE;
  if (maxRange < 1n) throw new ChainError("bad-argument", `maxRange must be at least 1 block, got ${maxRange}`);
  const to = tip - from + 1n > maxRange ? from + maxRange - 1n : tip;
  return { kind: "fetch", fromBlock: from, toBlock: to };
}

export interface PollResult<L extends ChainLog> {
  plan: { fromBlock: bigint; toBlock: bigint };
  /** Logs the chain returned for the planned range. */
  logs: readonly L[];
  /** The canonical block at `plan.toBlock`, read after the logs. */
  toBlock: BlockRef;
  /** The canonical hash, now, of the block the state last delivered (null when nothing was). */
  deliveredHashNow: Hex | null;
}

export type PollOutcome<L extends ChainLog> =
  /** Deliver `logs` (confirmed, in chain order) and continue from `state`. */
  | { kind: "deliver"; logs: L[]; state: FollowerState }
  /** The chain changed under a block the follower already treated as final. */
  | { kind: "deep-reorg"; at: BlockRef; state: FollowerState }
  /** The logs and the block header disagree (the chain moved mid-poll): poll again. */
  | { kind: "retry"; reason: string; state: FollowerState };

/**
 * Decides what a poll yields. Pure: the same inputs always give the same outcome.
 * A deep reorg resets the state to `delivered: null` so the caller re-derives
 * everything from `startBlock` (caches rebuilt from chain reads, not from logs).
 */
export function applyPoll<L extends ChainLog>(state: FollowerState, result: PollResult<L>): PollOutcome<L> {
  if (state.delivered && result.deliveredHashNow !== state.delivered.hash) {
    return { kind: "deep-reorg", at: state.delivered, state: { delivered: null } };
  }
  if (result.toBlock.number !== result.plan.toBlock) {
    return { kind: "retry", reason: `asked for block ${result.plan.toBlock}, got header of ${result.toBlock.number}`, state };
  }
  const logs = selectLogs(result.logs, result.plan.fromBlock, result.plan.toBlock);
  for (const log of logs) {
    if (log.blockNumber === result.toBlock.number && log.blockHash !== result.toBlock.hash) {
      return { kind: "retry", reason: `block ${log.blockNumber} changed between reading its logs and its header`, state };
    }
  }
  return { kind: "deliver", logs, state: { delivered: result.toBlock } };
}

/**
 * The logs of `logs` that are in [fromBlock, toBlock], mined (not pending),
 * not flagged removed, deduplicated and sorted by (block, log index). Pure.
 */
export function selectLogs<L extends ChainLog>(logs: readonly L[], fromBlock: bigint, toBlock: bigint): L[] {
  const seen = new Set<string>();
  const out: L[] = [];
  for (const log of logs) {
    if (log.removed || log.blockNumber === null || log.blockHash === null || log.logIndex === null) continue;
    if (log.blockNumber < fromBlock || log.blockNumber > toBlock) continue;
    const id = `${log.blockHash}:${log.logIndex}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(log);
  }
  return out.sort((a, b) => (a.blockNumber! < b.blockNumber! ? -1 : a.blockNumber! > b.blockNumber! ? 1 : a.logIndex! - b.logIndex!));
}

/**
 * For a stream of logs seen as they are mined (e.g. a subscription): the ones
 * at least `confirmations` deep under `head` whose block is still canonical,
 * per `canonicalHash(blockNumber)`. Pure given its inputs.
 */
export function confirmedLogs<L extends ChainLog>(
  logs: readonly L[],
  head: bigint,
  confirmations: number,
  canonicalHash: (blockNumber: bigint) => Hex | undefined,
): L[] {
  const tip = confirmedTip(head, confirmations);
  return selectLogs(logs, 0n, tip).filter((log) => canonicalHash(log.blockNumber!) === log.blockHash);
}

function checkConfirmations(confirmations: number): void {
  if (!Number.isSafeInteger(confirmations) || confirmations < 0) {
    throw new ChainError("bad-argument", `confirmations must be a non-negative integer, got ${String(confirmations)}`);
  }
}

// ---------------------------------------------------------------- the poller

/** The chain reads the poller needs; a viem PublicClient satisfies it. */
export interface EventSource<L extends ChainLog = ChainLog> {
  getBlockNumber(): Promise<bigint>;
  getBlock(args: { blockNumber: bigint }): Promise<{ number: bigint | null; hash: Hex | null }>;
  getLogs(args: { address: Address | Address[]; fromBlock: bigint; toBlock: bigint }): Promise<L[]>;
}

export interface EventFollowerOptions<L extends ChainLog> {
  source: EventSource<L>;
  /** Contract(s) whose logs to follow. */
  address: Address | Address[];
  confirmations: number;
  startBlock: bigint;
  /** Called with each batch of confirmed logs, in chain order. */
  onLogs: (logs: L[]) => void;
  /** Called when a block already delivered is no longer canonical. */
  onDeepReorg?: (at: BlockRef) => void;
  /** Called when a poll fails (RPC down); the follower keeps polling. */
  onError?: (err: unknown) => void;
  /** Poll period for `start()`; default 2 s. */
  intervalMs?: number;
  maxRange?: bigint;
  /** Logs as component "events": a failed background poll at warn (once a minute while the RPC stays down, each counted). */
  logger?: Logger;
}

export interface EventFollower {
  /** One poll; resolves once confirmed logs up to the current head were delivered. */
  pollOnce(): Promise<void>;
  /** Polls every `intervalMs` until `stop()`. */
  start(): void;
  stop(): void;
  readonly state: FollowerState;
}

/** A poller over `source` that delivers only confirmed logs. */
export function createEventFollower<L extends ChainLog>(opts: EventFollowerOptions<L>): EventFollower {
  checkConfirmations(opts.confirmations);
  let state: FollowerState = { delivered: null };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let inFlight: Promise<void> | undefined;
  const logPollFailure = throttledFailureLog(childLogger(opts.logger, "events"));

  const blockRef = async (blockNumber: bigint): Promise<BlockRef> => {
    const block = await opts.source.getBlock({ blockNumber });
    if (block.number === null || block.hash === null) throw new ChainError("rpc-unreachable", `block ${blockNumber} has no hash yet`);
    return { number: block.number, hash: block.hash };
  };

  const pollLoop = async (): Promise<void> => {
    // Catch up in bounded ranges until the confirmed tip is reached.
    for (let rounds = 0; rounds < 10_000; rounds++) {
      const head = await opts.source.getBlockNumber();
      const plan = planPoll(state, head, { confirmations: opts.confirmations, startBlock: opts.startBlock, ...(opts.maxRange ? { maxRange: opts.maxRange } : {}) });
      if (plan.kind === "idle") return;
      const logs = await opts.source.getLogs({ address: opts.address, fromBlock: plan.fromBlock, toBlock: plan.toBlock });
      const toBlock = await blockRef(plan.toBlock);
      const deliveredHashNow = state.delivered ? (await blockRef(state.delivered.number)).hash : null;
      const outcome = applyPoll(state, { plan, logs, toBlock, deliveredHashNow });
      state = outcome.state;
      if (outcome.kind === "deep-reorg") opts.onDeepReorg?.(outcome.at);
      else if (outcome.kind === "deliver" && outcome.logs.length > 0) opts.onLogs(outcome.logs);
    }
  };

  const pollOnce = (): Promise<void> => {
    // Serialize polls: two overlapping ones would deliver the same range twice. The
    // next poll runs whether the previous one succeeded or not; the previous
    // one's failure went to whoever awaited it (a caller, or onError below).
    const next = (inFlight ?? Promise.resolve()).then(pollLoop, pollLoop);
    inFlight = next;
    return next;
  };

  const schedule = () => {
    if (!running) return;
    timer = setTimeout(() => {
      pollOnce()
        .catch((err: unknown) => {
          logPollFailure(err, "poll chain events", "warn");
          opts.onError?.(err);
        })
        .finally(schedule);
    }, opts.intervalMs ?? 2_000);
    timer.unref?.();
  };

  return {
    pollOnce,
    start() {
      if (running) return;
      running = true;
      schedule();
    },
    stop() {
      running = false;
      if (timer) clearTimeout(timer);
    },
    get state() {
      return state;
    },
  };
}

/**
 * The reward pool on chain (contracts/BandwidthRewards.sol, issue 16):
 * typed reads of the settlement state and its two writes, an oracle's vote
 * for a cumulative reward root and an account's cumulative claim.
 *
 * Roots are cumulative (node/src/rewards/merkle.ts builds them): the root of
 * epoch e holds every account's total earnings up to e; agreed roots form a
 * chain (later epoch, previous root final, total never lower) and a claim
 * pays its leaf minus what the account already claimed, against the newest
 * final root only (`latestFinalEpoch`). Spec: docs/spec/contracts-core.md.
 *
 * Owns: the status names and the read model (`RewardEpoch`). Trusts: the
 * JSON-RPC endpoint for chain state (after the deployment check its caller
 * did) and the contract for every rule; arguments are checked here only to
 * fail before a transaction is sent, and a revert is reported by name
 * (transact.ts simulates first). Errors are ChainError.
 */
import { getContract, parseEventLogs, type Address, type Hex } from "viem";
import type { ChainClients } from "./clients.js";
import type { Deployment } from "./deployment.js";
import { ChainError } from "./errors.js";
import { bandwidthRewardsAbi } from "./generated/abis.js";
import { transact } from "./transact.js";

/** BandwidthRewards.EpochStatus, in enum order. */
export const REWARD_EPOCH_STATUSES = ["open", "voting", "disputable", "final", "covered"] as const;
export type RewardEpochStatus = (typeof REWARD_EPOCH_STATUSES)[number];

/** The largest cumulative total the contract stores (uint128). */
export const MAX_CUMULATIVE_TOTAL = 2n ** 128n - 1n;

const ZERO_ROOT = `0x${"00".repeat(32)}`;
const BYTES32 = /^0x[0-9a-fA-F]{64}$/;

export interface RewardEpoch {
  epoch: bigint;
  status: RewardEpochStatus;
  /** The agreed root (zero without one). */
  root: Hex;
  /** The agreed root's cumulative total (0 without one). */
  cumulativeTotal: bigint;
  /** Chain time of agreement (0: none); final from agreedAt + disputeWindow. */
  agreedAt: bigint;
  /** When the agreed root is final (undefined without one). */
  finalAt: bigint | undefined;
  /** Voting round (bumped by rejections and vote resets). */
  round: number;
  startsAt: bigint;
  endsAt: bigint;
}

export interface RewardsTiming {
  genesis: bigint;
  epochLength: bigint;
  disputeWindow: bigint;
}

export interface RewardsView {
  address: Address;
  /** The pool's fixed timing (read once). */
  timing(): Promise<RewardsTiming>;
  currentEpoch(): Promise<bigint>;
  epoch(epoch: bigint): Promise<RewardEpoch>;
  /** The epoch of the newest agreed (disputable or final) root; undefined when none. */
  lastAgreedEpoch(): Promise<bigint | undefined>;
  /** The epoch whose root claims go against now; undefined while no root is final. */
  latestFinalEpoch(): Promise<bigint | undefined>;
  /** The cumulative amount `account` has claimed so far. */
  claimed(account: Address): Promise<bigint>;
  totalClaimed(): Promise<bigint>;
  /** The newest agreed root's cumulative total minus every claim paid. */
  totalReserved(): Promise<bigint>;
  /** The pool's balance not owed to agreed roots (what the next root's increment may take). */
  unallocated(): Promise<bigint>;
  /** True when oracle node `nodeKey` voted in the epoch's current round. */
  hasVoted(epoch: bigint, nodeKey: Hex): Promise<boolean>;
}

/** The BandwidthRewards address of a deployment. */
export function rewardsAddress(deployment: Pick<Deployment, "contracts">): Address {
  return deployment.contracts.BandwidthRewards.address;
}

export function createRewardsView(clients: Pick<ChainClients, "publicClient">, address: Address): RewardsView {
  const contract = getContract({ address, abi: bandwidthRewardsAbi, client: clients.publicClient });
  let timing: Promise<RewardsTiming> | undefined;
  const readTiming = (): Promise<RewardsTiming> => {
    timing ??= Promise.all([contract.read.genesis(), contract.read.epochLength(), contract.read.disputeWindow()]).then(
      ([genesis, epochLength, disputeWindow]) => ({
        genesis,
        epochLength,
        disputeWindow,
      }),
    );
    return timing;
  };
  return {
    address,
    timing: readTiming,
    currentEpoch: () => contract.read.currentEpoch(),
    async epoch(epoch) {
      const [record, status, startsAt, endsAt, t] = await Promise.all([
        contract.read.getEpoch([epoch]),
        contract.read.epochStatus([epoch]),
        contract.read.epochStart([epoch]),
        contract.read.epochEnd([epoch]),
        readTiming(),
      ]);
      const name = REWARD_EPOCH_STATUSES[status];
      if (name === undefined)
        throw new ChainError("bad-deployment", `BandwidthRewards at ${address} reports an unknown epoch status ${status}: upgrade this node`);
      return {
        epoch,
        status: name,
        root: record.root,
        cumulativeTotal: record.total,
        agreedAt: record.agreedAt,
        finalAt: record.agreedAt === 0n ? undefined : record.agreedAt + t.disputeWindow,
        round: record.round,
        startsAt,
        endsAt,
      };
    },
    async lastAgreedEpoch() {
      const [has, epoch] = await Promise.all([contract.read.hasAgreedRoot(), contract.read.lastAgreedEpoch()]);
      return has ? epoch : undefined;
    },
    async latestFinalEpoch() {
      const [exists, epoch] = await contract.read.latestFinalEpoch();
      return exists ? epoch : undefined;
    },
    claimed: (account) => contract.read.claimed([account]),
    totalClaimed: () => contract.read.totalClaimed(),
    totalReserved: () => contract.read.totalReserved(),
    unallocated: () => contract.read.unallocated(),
    hasVoted: (epoch, nodeKey) => contract.read.hasVoted([epoch, nodeKey]),
  };
}

function wallet(clients: ChainClients, what: string) {
  if (!clients.walletClient) throw new ChainError("bad-argument", `${what} sends a transaction: pass a keystore`);
  return clients.walletClient;
}

function checkEpoch(epoch: bigint): void {
  if (typeof epoch !== "bigint" || epoch < 0n || epoch >= 2n ** 64n)
    throw new ChainError("bad-argument", `an epoch is a number in 0..2^64-1, got ${String(epoch)}`);
}

function checkAmount(what: string, amount: bigint): void {
  if (typeof amount !== "bigint" || amount < 0n || amount > MAX_CUMULATIVE_TOTAL) {
    throw new ChainError("bad-argument", `${what} must be a wei amount in 0..2^128-1, got ${String(amount)}`);
  }
}

export interface SubmitRootOptions {
  /** Sends as the oracle node's signer. */
  clients: ChainClients;
  address: Address;
  epoch: bigint;
  root: Hex;
  /** The tree's total: everything owed up to and including `epoch` (RewardTree.total). */
  cumulativeTotal: bigint;
}

/**
 * Votes (root, cumulativeTotal) for `epoch` as this oracle node. Returns the
 * transaction hash and whether this vote agreed the root (reached the quorum).
 */
export async function submitRewardRoot(opts: SubmitRootOptions): Promise<{ hash: Hex; agreed: boolean; votes: bigint }> {
  checkEpoch(opts.epoch);
  if (typeof opts.root !== "string" || !BYTES32.test(opts.root) || opts.root === ZERO_ROOT) {
    throw new ChainError("bad-argument", `a reward root is 32 non-zero bytes in 0x hex, got ${String(opts.root)}`);
  }
  checkAmount("the cumulative total", opts.cumulativeTotal);
  const { hash, receipt } = await transact({
    publicClient: opts.clients.publicClient,
    walletClient: wallet(opts.clients, "voting a reward root"),
    address: opts.address,
    abi: bandwidthRewardsAbi,
    functionName: "submitRoot",
    args: [opts.epoch, opts.root, opts.cumulativeTotal],
  });
  const logs = parseEventLogs({ abi: bandwidthRewardsAbi, logs: receipt.logs });
  const voted = logs.find((l) => l.eventName === "RootVoted");
  return { hash, agreed: logs.some((l) => l.eventName === "RootAgreed"), votes: voted?.eventName === "RootVoted" ? voted.args.votes : 0n };
}

export interface ClaimOptions {
  /** Sends from the wallet client (anyone may send; the tokens go to `account`). */
  clients: ChainClients;
  address: Address;
  /** The newest final root's epoch (RewardsView.latestFinalEpoch). */
  epoch: bigint;
  account: Address;
  /** The account's leaf under that root. */
  cumulativeAmount: bigint;
  proof: readonly Hex[];
}

/** Claims everything `account` earned up to `epoch` that it has not claimed yet. Returns the hash and the amount paid. */
export async function claimRewards(opts: ClaimOptions): Promise<{ hash: Hex; paid: bigint }> {
  checkEpoch(opts.epoch);
  checkAmount("the cumulative amount", opts.cumulativeAmount);
  if (!Array.isArray(opts.proof) || opts.proof.some((p) => typeof p !== "string" || !BYTES32.test(p))) {
    throw new ChainError("bad-argument", "a reward proof is a list of 32-byte 0x hex hashes");
  }
  const { hash, receipt } = await transact({
    publicClient: opts.clients.publicClient,
    walletClient: wallet(opts.clients, "claiming rewards"),
    address: opts.address,
    abi: bandwidthRewardsAbi,
    functionName: "claim",
    args: [opts.epoch, opts.account, opts.cumulativeAmount, [...opts.proof]],
  });
  const [claimed] = parseEventLogs({ abi: bandwidthRewardsAbi, logs: receipt.logs, eventName: "Claimed" });
  return { hash, paid: claimed?.args.amount ?? 0n };
}

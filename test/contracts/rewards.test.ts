/**
 * BandwidthRewards: funding, epoch lifecycle (voting, quorum of the current oracle
 * set, dispute window, rejection, lazy finality), the chain of cumulative roots
 * (later epoch, previous root final, total never lower, covered epochs) and
 * cumulative claims with real proofs from node/src/rewards/merkle.ts.
 */
import { describe, expect, it } from "vitest";
import { network } from "hardhat";
import { getAddress, keccak256, parseEther, parseEventLogs, toHex, zeroAddress, type Address, type Hex } from "viem";
import { addOracles, deployCore, endEpoch, type CoreFixture, type WalletClient } from "./helpers/core.js";
import { buildRewardTree, type RewardEntry } from "./helpers/merkle.js";
import type { ChainClients } from "../../node/src/chain/clients.js";
import { claimRewards, createRewardsView, submitRewardRoot } from "../../node/src/chain/rewards.js";

const Status = { Open: 0, Voting: 1, Disputable: 2, Final: 3, Covered: 4 } as const;

async function funded(core: CoreFixture, amount: bigint): Promise<void> {
  await core.token.write.approve([core.rewards.address, amount]);
  await core.rewards.write.fund([amount]);
}

function entriesFor(core: CoreFixture, n: number): RewardEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    account: (core.users[i] as WalletClient).account.address,
    amount: parseEther(String(i + 1)),
  }));
}

async function vote(core: CoreFixture, oracles: WalletClient[], epoch: bigint, root: `0x${string}`, total: bigint) {
  for (const o of oracles) await core.rewards.write.submitRoot([epoch, root, total], { account: o.account });
}

describe("BandwidthRewards: construction and views", () => {
  it("validates constructor arguments", async () => {
    const { viem } = await network.connect();
    const [admin] = await viem.getWalletClients();
    const a = admin!.account.address;
    await expect(viem.deployContract("BandwidthRewards", [a, a, a, 0n, 0n, 60n, 6667])).rejects.toThrow(/ZeroEpochLength/);
    await expect(viem.deployContract("BandwidthRewards", [a, a, a, 0n, 60n, 60n, 0])).rejects.toThrow(/InvalidQuorum/);
    await expect(viem.deployContract("BandwidthRewards", [a, a, a, 0n, 60n, 60n, 10001])).rejects.toThrow(/InvalidQuorum/);
  });

  it("numbers epochs from genesis and computes quorums", async () => {
    const future = BigInt(Math.floor(Date.now() / 1000)) + 10n * 365n * 86400n;
    const early = await deployCore({ genesis: future });
    await early.viem.assertions.revertWithCustomError(early.rewards.read.currentEpoch(), early.rewards, "BeforeGenesis");

    const core = await deployCore();
    expect(await core.rewards.read.currentEpoch()).toBe(0n);
    expect(await core.rewards.read.epochStatus([0n])).toBe(Status.Open);
    await endEpoch(core, 2n);
    expect(await core.rewards.read.currentEpoch()).toBe(3n);
    expect(await core.rewards.read.epochStatus([2n])).toBe(Status.Voting);
    expect(await core.rewards.read.epochStart([3n])).toBe(core.genesis + 3n * core.epochLength);
    expect(await core.rewards.read.epochEnd([3n])).toBe(core.genesis + 4n * core.epochLength);
    // Absurd epoch numbers never end instead of overflowing.
    const huge = 2n ** 256n - 1n;
    expect(await core.rewards.read.epochStatus([huge])).toBe(Status.Open);
    expect(await core.rewards.read.epochEnd([2n ** 64n])).toBe(huge);
    // ceil(n * 6667 / 10000), at least one: strictly more than two thirds.
    expect(await core.rewards.read.quorum([0n])).toBe(1n);
    expect(await core.rewards.read.quorum([1n])).toBe(1n);
    expect(await core.rewards.read.quorum([3n])).toBe(3n);
    expect(await core.rewards.read.quorum([4n])).toBe(3n);
    expect(await core.rewards.read.quorum([9n])).toBe(7n);
  });

  it("accepts funding by fund() and by plain transfer", async () => {
    const core = await deployCore();
    const a = core.viem.assertions;
    await a.revertWithCustomError(core.rewards.write.fund([0n]), core.rewards, "ZeroAmount");
    await core.token.write.approve([core.rewards.address, 100n]);
    await a.emitWithArgs(core.rewards.write.fund([100n]), core.rewards, "Funded", [core.admin.account.address, 100n]);
    await core.token.write.transfer([core.rewards.address, 50n]);
    expect(await core.rewards.read.unallocated()).toBe(150n);
  });
});

describe("BandwidthRewards: epoch lifecycle", () => {
  it("agrees a root at quorum, reserves it, lets governance reject it, then finalizes", async () => {
    const core = await deployCore();
    const oracles = await addOracles(core, 4); // quorum 3 of 4
    const { rewards } = core;
    const a = core.viem.assertions;
    const good = buildRewardTree(entriesFor(core, 10));
    const bad = keccak256(toHex("bad-root"));
    await funded(core, good.total + 1000n);

    await a.revertWithCustomError(rewards.write.submitRoot([0n, good.root, good.total], { account: oracles[0]!.account }), rewards, "EpochNotEnded");
    await a.revertWithCustomError(
      rewards.write.submitRoot([2n ** 256n - 1n, good.root, good.total], { account: oracles[0]!.account }),
      rewards,
      "EpochNotEnded",
    );
    await endEpoch(core, 0n);
    await a.revertWithCustomError(rewards.write.submitRoot([0n, `0x${"00".repeat(32)}`, 1n], { account: oracles[0]!.account }), rewards, "EmptyRoot");
    await a.revertWithCustomErrorWithArgs(rewards.write.submitRoot([0n, good.root, good.total], { account: core.users[9]!.account }), rewards, "NotOracle", [
      core.users[9]!.account.address,
    ]);

    // Two votes for the good root and one for a different total: a split, no quorum yet.
    const node0 = await core.registry.read.nodeKeyOfSigner([oracles[0]!.account.address]);
    await a.emitWithArgs(rewards.write.submitRoot([0n, good.root, good.total], { account: oracles[0]!.account }), rewards, "RootVoted", [
      0n,
      0,
      node0,
      oracles[0]!.account.address,
      good.root,
      good.total,
      1n,
    ]);
    expect(await rewards.read.currentRound([0n])).toEqual({ startedAt: BigInt(await core.networkHelpers.time.latest()), needed: 3 });
    await a.revertWithCustomErrorWithArgs(rewards.write.submitRoot([0n, good.root, good.total], { account: oracles[0]!.account }), rewards, "AlreadyVoted", [
      node0,
    ]);
    await vote(core, [oracles[1]!], 0n, good.root, good.total);
    await vote(core, [oracles[2]!], 0n, good.root, good.total + 1n);
    expect(await rewards.read.proposalVotes([0n, good.root, good.total])).toBe(2n);
    expect(await rewards.read.epochStatus([0n])).toBe(Status.Voting);
    await a.emit(rewards.write.submitRoot([0n, good.root, good.total], { account: oracles[3]!.account }), rewards, "RootAgreed");
    expect(await rewards.read.epochStatus([0n])).toBe(Status.Disputable);
    expect(await rewards.read.totalReserved()).toBe(good.total);
    expect(await rewards.read.unallocated()).toBe(1000n);
    await a.revertWithCustomError(rewards.write.submitRoot([0n, bad, 1n], { account: oracles[2]!.account }), rewards, "RootAlreadyAgreed");
    await a.revertWithCustomError(rewards.write.claim([0n, zeroAddress, 1n, []]), rewards, "RootNotFinal");

    // Governance rejects inside the window: unreserved, a fresh round, votes cleared.
    await a.revertWithCustomError(rewards.write.rejectRoot([0n], { account: oracles[0]!.account }), rewards, "AccessControlUnauthorizedAccount");
    await a.emitWithArgs(rewards.write.rejectRoot([0n]), rewards, "RootRejected", [0n, good.root, good.total, 1]);
    expect(await rewards.read.epochStatus([0n])).toBe(Status.Voting);
    expect(await rewards.read.totalReserved()).toBe(0n);
    expect(await rewards.read.hasVoted([0n, node0])).toBe(false);
    expect((await rewards.read.getEpoch([0n])).round).toBe(1);
    await a.revertWithCustomError(rewards.write.rejectRoot([0n]), rewards, "WrongEpochStatus");

    await vote(core, oracles.slice(0, 3), 0n, good.root, good.total);
    expect(await rewards.read.epochStatus([0n])).toBe(Status.Disputable);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    expect(await rewards.read.epochStatus([0n])).toBe(Status.Final);
    await a.revertWithCustomErrorWithArgs(rewards.write.rejectRoot([0n]), rewards, "WrongEpochStatus", [0n, Status.Final]);
    const epoch = await rewards.read.getEpoch([0n]);
    expect([epoch.root, epoch.total]).toEqual([good.root, good.total]);
    expect([await rewards.read.hasAgreedRoot(), await rewards.read.lastAgreedEpoch(), await rewards.read.latestFinalEpoch()]).toEqual([true, 0n, [true, 0n]]);
  });

  it("refuses agreement the pool cannot cover, and resets stuck votes", async () => {
    const core = await deployCore({ quorumBps: 5000 });
    const oracles = await addOracles(core, 2); // quorum 1 of 2
    const { rewards } = core;
    const a = core.viem.assertions;
    const tree = buildRewardTree(entriesFor(core, 3));
    await funded(core, tree.total - 1n);
    await endEpoch(core, 0n);
    await a.revertWithCustomErrorWithArgs(
      rewards.write.submitRoot([0n, tree.root, tree.total], { account: oracles[0]!.account }),
      rewards,
      "InsufficientUnallocated",
      [tree.total, tree.total - 1n],
    );
    // The failed vote was rolled back with the agreement: the oracle can vote again after funding.
    expect(await rewards.read.hasVoted([0n, await core.registry.read.nodeKeyOfSigner([oracles[0]!.account.address])])).toBe(false);

    await a.revertWithCustomError(rewards.write.resetVotes([1n]), rewards, "WrongEpochStatus");
    await a.revertWithCustomError(rewards.write.resetVotes([0n], { account: oracles[0]!.account }), rewards, "AccessControlUnauthorizedAccount");
    await a.emitWithArgs(rewards.write.resetVotes([0n]), rewards, "VotesReset", [0n, 1]);
    await funded(core, 1n);
    await vote(core, [oracles[1]!], 0n, tree.root, tree.total);
    expect(await rewards.read.epochStatus([0n])).toBe(Status.Disputable);
    await a.revertWithCustomError(rewards.write.resetVotes([0n]), rewards, "WrongEpochStatus");
  });
});

describe("BandwidthRewards: the chain of cumulative roots", () => {
  it("votes a root only for a later, ended epoch, once the previous root is final, with a total never lower", async () => {
    const core = await deployCore();
    const [oracle] = await addOracles(core, 1);
    const { rewards } = core;
    const a = core.viem.assertions;
    const [x, y] = [core.users[10]!.account.address, core.users[11]!.account.address];
    const first = buildRewardTree([{ account: x, amount: 100n }]);
    const second = buildRewardTree([
      { account: x, amount: 150n },
      { account: y, amount: 50n },
    ]);
    const lower = buildRewardTree([{ account: x, amount: 99n }]);
    await funded(core, 150n);
    await endEpoch(core, 4n);
    const submit = (epoch: bigint, root: Hex, total: bigint) => rewards.write.submitRoot([epoch, root, total], { account: oracle!.account });

    await a.emit(submit(2n, first.root, first.total), rewards, "RootAgreed");
    // Epochs 0 and 1 are covered by epoch 2's cumulative root: nobody votes them any more.
    expect(await rewards.read.epochStatus([1n])).toBe(Status.Covered);
    expect(await rewards.read.epochStatus([3n])).toBe(Status.Voting);
    await a.revertWithCustomErrorWithArgs(submit(1n, first.root, first.total), rewards, "EpochCovered", [1n, 2n]);
    await a.revertWithCustomErrorWithArgs(submit(2n, first.root, first.total), rewards, "RootAlreadyAgreed", [2n]);
    await a.revertWithCustomError(rewards.write.resetVotes([1n]), rewards, "WrongEpochStatus");
    // The next root waits for this one to be final.
    const finalAt = (await rewards.read.getEpoch([2n])).agreedAt + core.disputeWindow;
    await a.revertWithCustomErrorWithArgs(submit(4n, second.root, second.total), rewards, "PreviousRootNotFinal", [2n, finalAt]);
    await core.networkHelpers.time.increaseTo(finalAt);
    await a.revertWithCustomErrorWithArgs(submit(4n, lower.root, lower.total), rewards, "CumulativeTotalDecreased", [99n, 100n]);
    await a.revertWithCustomError(submit(5n, second.root, second.total), rewards, "EpochNotEnded");
    // Only the increment (200 - 100) is reserved; the pool holds 150, 100 of it owed already.
    await a.revertWithCustomErrorWithArgs(submit(4n, second.root, second.total), rewards, "InsufficientUnallocated", [100n, 50n]);
    await funded(core, 50n);
    const agreed = await core.publicClient.waitForTransactionReceipt({ hash: await submit(4n, second.root, second.total) });
    const [event] = parseEventLogs({ abi: rewards.abi, logs: agreed.logs, eventName: "RootAgreed" });
    const agreedAt = (await rewards.read.getEpoch([4n])).agreedAt;
    expect(event!.args).toEqual({
      epoch: 4n,
      round: 0,
      root: second.root,
      cumulativeTotal: 200n,
      reserved: 100n,
      disputeEndsAt: agreedAt + core.disputeWindow,
    });
    expect(await rewards.read.totalReserved()).toBe(200n);
    expect(await rewards.read.unallocated()).toBe(0n);
    expect([await rewards.read.lastAgreedEpoch(), await rewards.read.latestFinalEpoch()]).toEqual([4n, [true, 2n]]);
    expect(await rewards.read.epochStatus([3n])).toBe(Status.Covered);
  });

  it("a rejected newest root gives way to the previous one, and the epochs it covered are voted again", async () => {
    const core = await deployCore();
    const [oracle] = await addOracles(core, 1);
    const { rewards } = core;
    const a = core.viem.assertions;
    const x = core.users[10]!.account.address;
    const first = buildRewardTree([{ account: x, amount: 100n }]);
    const bad = buildRewardTree([{ account: x, amount: 900n }]);
    const good = buildRewardTree([{ account: x, amount: 130n }]);
    await funded(core, 1000n);
    await endEpoch(core, 3n);
    const submit = (epoch: bigint, root: Hex, total: bigint) => rewards.write.submitRoot([epoch, root, total], { account: oracle!.account });

    // Rejecting the very first root leaves no agreed root at all.
    await submit(0n, bad.root, bad.total);
    await rewards.write.rejectRoot([0n]);
    expect([await rewards.read.hasAgreedRoot(), await rewards.read.totalReserved(), await rewards.read.latestFinalEpoch()]).toEqual([false, 0n, [false, 0n]]);
    await submit(0n, first.root, first.total);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    await submit(3n, bad.root, bad.total);
    expect(await rewards.read.epochStatus([2n])).toBe(Status.Covered);
    expect(await rewards.read.totalReserved()).toBe(900n);
    // While epoch 3's root is disputable, claims go against epoch 0's.
    await rewards.write.claim([0n, x, 100n, first.proof(x)]);
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([3n, x, 900n, bad.proof(x)]), rewards, "RootNotFinal", [3n]);
    await a.emitWithArgs(rewards.write.rejectRoot([3n]), rewards, "RootRejected", [3n, bad.root, 900n, 1]);
    expect([await rewards.read.lastAgreedEpoch(), await rewards.read.latestFinalEpoch()]).toEqual([0n, [true, 0n]]);
    expect(await rewards.read.totalReserved()).toBe(0n);
    expect(await rewards.read.unallocated()).toBe(900n);
    for (const e of [1n, 2n, 3n]) expect(await rewards.read.epochStatus([e])).toBe(Status.Voting);
    // A root for an epoch the rejected one covered can now be agreed (epoch 0's is final).
    await submit(2n, good.root, good.total);
    expect(await rewards.read.epochStatus([1n])).toBe(Status.Covered);
    expect(await rewards.read.epochStatus([3n])).toBe(Status.Voting);
    expect(await rewards.read.totalReserved()).toBe(30n);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    await a.emitWithArgs(rewards.write.claim([2n, x, 130n, good.proof(x)]), rewards, "Claimed", [getAddress(x), 2n, 30n, 130n]);
  });
});

describe("BandwidthRewards: cumulative claims", () => {
  it("one claim pays every epoch since the account's last claim, against the newest final root only", async () => {
    const core = await deployCore();
    const [oracle] = await addOracles(core, 1);
    const { rewards, token } = core;
    const a = core.viem.assertions;
    const [x, y, z] = [10, 11, 12].map((i) => core.users[i]!.account.address) as [Address, Address, Address];
    const r0 = buildRewardTree([
      { account: x, amount: 10n },
      { account: y, amount: 20n },
    ]);
    const r2 = buildRewardTree([
      { account: x, amount: 15n },
      { account: y, amount: 20n },
      { account: z, amount: 5n },
    ]);
    await funded(core, 1000n);
    await endEpoch(core, 2n);
    const balances = async () => Promise.all([x, y, z].map((w) => token.read.balanceOf([w])));
    const start = await balances();

    await vote(core, [oracle!], 0n, r0.root, r0.total);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    // Anyone may send the claim; the account is paid.
    await a.emitWithArgs(rewards.write.claim([0n, x, 10n, r0.proof(x)], { account: core.users[5]!.account }), rewards, "Claimed", [
      getAddress(x),
      0n,
      10n,
      10n,
    ]);
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([0n, x, 10n, r0.proof(x)]), rewards, "NothingToClaim", [getAddress(x), 10n, 10n]);
    await vote(core, [oracle!], 2n, r2.root, r2.total);
    // Epoch 2's root is disputable: epoch 0's still pays.
    await rewards.write.claim([0n, y, 20n, r0.proof(y)]);
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([2n, z, 5n, r2.proof(z)]), rewards, "RootNotFinal", [2n]);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    // Epoch 2's root is final: epoch 0's no longer pays, whoever holds a proof for it.
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([0n, x, 10n, r0.proof(x)]), rewards, "RootSuperseded", [0n, 2n]);
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([1n, x, 15n, r2.proof(x)]), rewards, "RootNotFinal", [1n]);
    expect(await rewards.read.claimable([x, 15n])).toBe(5n);
    await a.emitWithArgs(rewards.write.claim([2n, x, 15n, r2.proof(x)]), rewards, "Claimed", [getAddress(x), 2n, 5n, 15n]);
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([2n, y, 20n, r2.proof(y)]), rewards, "NothingToClaim", [getAddress(y), 20n, 20n]);
    await rewards.write.claim([2n, z, 5n, r2.proof(z)]);
    await a.revertWithCustomError(rewards.write.claim([2n, z, 5n, r2.proof(z)]), rewards, "NothingToClaim");
    expect(await rewards.read.claimable([z, 5n])).toBe(0n);

    const end = await balances();
    expect(end.map((b, i) => b - start[i]!)).toEqual([15n, 20n, 5n]);
    expect(await Promise.all([x, y, z].map((w) => rewards.read.claimed([w])))).toEqual([15n, 20n, 5n]);
    expect([await rewards.read.totalClaimed(), await rewards.read.totalReserved(), await rewards.read.unallocated()]).toEqual([40n, 0n, 960n]);
  });

  it("pays only a proof of the account's own leaf under the claimed root", async () => {
    const core = await deployCore();
    const oracles = await addOracles(core, 1);
    const { rewards } = core;
    const a = core.viem.assertions;
    const entries = entriesFor(core, 11);
    const tree = buildRewardTree(entries);
    const other = buildRewardTree(entries.map((e) => ({ ...e, amount: e.amount * 2n })));
    await funded(core, tree.total);
    await endEpoch(core, 0n);
    await vote(core, oracles, 0n, tree.root, tree.total);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    const [e0, e1] = [entries[0]!, entries[1]!];
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([0n, e0.account, e0.amount + 1n, tree.proof(e0.account)]), rewards, "InvalidProof", [
      0n,
      getAddress(e0.account),
    ]);
    // Another account's leaf and proof, paid to this account, or this account's leaf under another root.
    await a.revertWithCustomError(rewards.write.claim([0n, e0.account, e1.amount, tree.proof(e1.account)]), rewards, "InvalidProof");
    await a.revertWithCustomError(rewards.write.claim([0n, e0.account, e0.amount * 2n, other.proof(e0.account)]), rewards, "InvalidProof");
    await a.revertWithCustomError(rewards.write.claim([0n, e0.account, e0.amount, []]), rewards, "InvalidProof");
    for (const e of entries) await rewards.write.claim([0n, e.account, e.amount, tree.proof(e.account)]);
    expect(await rewards.read.totalReserved()).toBe(0n);
    expect(await core.token.read.balanceOf([rewards.address])).toBe(0n);
  });

  it("never pays more in all than the root's cumulative total, even when its leaves add up to more", async () => {
    const core = await deployCore();
    const [oracle] = await addOracles(core, 1);
    const { rewards } = core;
    const a = core.viem.assertions;
    const [x, y] = [core.users[10]!.account.address, core.users[11]!.account.address];
    const tree = buildRewardTree([
      { account: x, amount: 300n },
      { account: y, amount: 10n },
    ]);
    await funded(core, 1000n);
    await endEpoch(core, 1n);
    // The oracles declare a total below the tree's sum.
    await vote(core, [oracle!], 0n, tree.root, 100n);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([0n, x, 300n, tree.proof(x)]), rewards, "ClaimExceedsRootTotal", [0n, 300n, 100n]);
    await rewards.write.claim([0n, y, 10n, tree.proof(y)]);
    expect([await rewards.read.totalReserved(), await rewards.read.unallocated()]).toEqual([90n, 900n]);
    // The next root covers the gap: x's 300 is paid in one claim, bounded by the new total.
    await vote(core, [oracle!], 1n, tree.root, 310n);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    await rewards.write.claim([1n, x, 300n, tree.proof(x)]);
    expect([await rewards.read.totalClaimed(), await rewards.read.totalReserved(), await rewards.read.unallocated()]).toEqual([310n, 0n, 690n]);
  });

  it("an operator that changes address keeps what its old address earned; neither address can take the other's", async () => {
    const core = await deployCore();
    const [oracle] = await addOracles(core, 1);
    const { rewards } = core;
    const a = core.viem.assertions;
    const [old, next] = [core.users[10]!.account.address, core.users[11]!.account.address];
    const before = buildRewardTree([{ account: old, amount: 100n }]);
    // After the move the old address's cumulative amount stays in every later root; the new one starts from zero.
    const after = buildRewardTree([
      { account: old, amount: 100n },
      { account: next, amount: 40n },
    ]);
    await funded(core, 140n);
    await endEpoch(core, 1n);
    await vote(core, [oracle!], 0n, before.root, before.total);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    await vote(core, [oracle!], 1n, after.root, after.total);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    await a.revertWithCustomError(rewards.write.claim([1n, next, 100n, after.proof(old)]), rewards, "InvalidProof");
    await a.revertWithCustomError(rewards.write.claim([1n, old, 40n, after.proof(next)]), rewards, "InvalidProof");
    await rewards.write.claim([1n, old, 100n, after.proof(old)]);
    await rewards.write.claim([1n, next, 40n, after.proof(next)]);
    expect([await rewards.read.claimed([old]), await rewards.read.claimed([next])]).toEqual([100n, 40n]);
  });
});

describe("BandwidthRewards: the node's bindings (node/src/chain/rewards.ts)", () => {
  it("read the settlement state, vote a root and claim, naming a revert", async () => {
    const core = await deployCore();
    const [oracle] = await addOracles(core, 1);
    const x = core.users[10]!.account.address;
    const tree = buildRewardTree([{ account: x, amount: 70n }]);
    await funded(core, 100n);
    const view = createRewardsView({ publicClient: core.publicClient as never }, core.rewards.address);
    const asOracle = { publicClient: core.publicClient, walletClient: oracle } as unknown as ChainClients;
    const asAnyone = { publicClient: core.publicClient, walletClient: core.users[5]! } as unknown as ChainClients;
    expect(await view.timing()).toEqual({ genesis: core.genesis, epochLength: core.epochLength, disputeWindow: core.disputeWindow });
    expect([await view.lastAgreedEpoch(), await view.latestFinalEpoch()]).toEqual([undefined, undefined]);
    expect((await view.epoch(0n)).status).toBe("open");
    await expect(submitRewardRoot({ clients: asOracle, address: view.address, epoch: 0n, root: tree.root, cumulativeTotal: tree.total })).rejects.toMatchObject(
      {
        kind: "transaction-reverted",
        message: expect.stringMatching(/EpochNotEnded/),
      },
    );
    await expect(
      submitRewardRoot({ clients: asOracle, address: view.address, epoch: 0n, root: `0x${"00".repeat(32)}`, cumulativeTotal: 1n }),
    ).rejects.toMatchObject({
      kind: "bad-argument",
    });
    await endEpoch(core, 1n);
    expect(await submitRewardRoot({ clients: asOracle, address: view.address, epoch: 1n, root: tree.root, cumulativeTotal: tree.total })).toMatchObject({
      agreed: true,
      votes: 1n,
    });
    const agreed = await view.epoch(1n);
    expect(agreed).toMatchObject({ status: "disputable", root: tree.root, cumulativeTotal: 70n, finalAt: agreed.agreedAt + core.disputeWindow });
    expect((await view.epoch(0n)).status).toBe("covered");
    expect([await view.lastAgreedEpoch(), await view.latestFinalEpoch(), await view.totalReserved(), await view.unallocated()]).toEqual([
      1n,
      undefined,
      70n,
      30n,
    ]);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    const epoch = (await view.latestFinalEpoch())!;
    expect(epoch).toBe(1n);
    const claim = { clients: asAnyone, address: view.address, epoch, account: x, cumulativeAmount: 70n, proof: tree.proof(x) };
    expect((await claimRewards(claim)).paid).toBe(70n);
    await expect(claimRewards(claim)).rejects.toMatchObject({ kind: "transaction-reverted", message: expect.stringMatching(/NothingToClaim/) });
    await expect(claimRewards({ ...claim, proof: ["0x12"] })).rejects.toMatchObject({ kind: "bad-argument" });
    expect([await view.claimed(x), await view.totalClaimed()]).toEqual([70n, 70n]);
  });
});

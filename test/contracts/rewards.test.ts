/**
 * BandwidthRewards: funding, epoch lifecycle (voting, quorum of the current oracle
 * set, dispute window, rejection, lazy finality) and Merkle claims with real proofs.
 */
import { describe, expect, it } from "vitest";
import { network } from "hardhat";
import { keccak256, parseEther, toHex, zeroAddress, type Address } from "viem";
import { addOracles, deployCore, endEpoch, type CoreFixture, type WalletClient } from "./helpers/core.js";
import { buildRewardTree, type RewardEntry } from "./helpers/merkle.js";

const Status = { Open: 0, Voting: 1, Disputable: 2, Final: 3 } as const;

async function funded(core: CoreFixture, amount: bigint): Promise<void> {
  await core.token.write.approve([core.rewards.address, amount]);
  await core.rewards.write.fund([amount]);
}

function entriesFor(core: CoreFixture, n: number): RewardEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    account: (core.users[10 + (i % 8)] as WalletClient).account.address,
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
    await a.revertWithCustomError(rewards.write.submitRoot([2n ** 256n - 1n, good.root, good.total], { account: oracles[0]!.account }), rewards, "EpochNotEnded");
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
    await a.revertWithCustomErrorWithArgs(rewards.write.submitRoot([0n, good.root, good.total], { account: oracles[0]!.account }), rewards, "AlreadyVoted", [node0]);
    await vote(core, [oracles[1]!], 0n, good.root, good.total);
    await vote(core, [oracles[2]!], 0n, good.root, good.total + 1n);
    expect(await rewards.read.proposalVotes([0n, good.root, good.total])).toBe(2n);
    expect(await rewards.read.epochStatus([0n])).toBe(Status.Voting);
    await a.emit(rewards.write.submitRoot([0n, good.root, good.total], { account: oracles[3]!.account }), rewards, "RootAgreed");
    expect(await rewards.read.epochStatus([0n])).toBe(Status.Disputable);
    expect(await rewards.read.totalReserved()).toBe(good.total);
    expect(await rewards.read.unallocated()).toBe(1000n);
    await a.revertWithCustomError(rewards.write.submitRoot([0n, bad, 1n], { account: oracles[2]!.account }), rewards, "RootAlreadyAgreed");
    await a.revertWithCustomError(rewards.write.claim([0n, 0n, zeroAddress, 1n, []]), rewards, "RootNotFinal");

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
  });

  it("refuses agreement the pool cannot cover, and resets stuck votes", async () => {
    const core = await deployCore({ quorumBps: 5000 });
    const oracles = await addOracles(core, 2); // quorum 1 of 2
    const { rewards } = core;
    const a = core.viem.assertions;
    const tree = buildRewardTree(entriesFor(core, 3));
    await funded(core, tree.total - 1n);
    await endEpoch(core, 0n);
    await a.revertWithCustomErrorWithArgs(rewards.write.submitRoot([0n, tree.root, tree.total], { account: oracles[0]!.account }), rewards, "InsufficientUnallocated", [
      tree.total,
      tree.total - 1n,
    ]);
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

describe("BandwidthRewards: claims", () => {
  it("pays every leaf once with real proofs and rejects bad claims", async () => {
    const core = await deployCore();
    const oracles = await addOracles(core, 1);
    const { rewards, token } = core;
    const a = core.viem.assertions;
    const entries = entriesFor(core, 11);
    const tree = buildRewardTree(entries);
    await funded(core, tree.total);
    await endEpoch(core, 0n);
    await vote(core, oracles, 0n, tree.root, tree.total);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));

    const first = entries[0]!;
    await a.revertWithCustomError(rewards.write.claim([0n, 0n, first.account, first.amount + 1n, tree.proof(0)]), rewards, "InvalidProof");
    await a.revertWithCustomError(rewards.write.claim([0n, 1n, first.account, first.amount, tree.proof(0)]), rewards, "InvalidProof");
    await a.revertWithCustomError(rewards.write.claim([1n, 0n, first.account, first.amount, tree.proof(0)]), rewards, "RootNotFinal");

    const before = new Map<Address, bigint>();
    for (const e of entries) before.set(e.account, await token.read.balanceOf([e.account]));
    const expected = new Map(before);
    for (const [i, e] of entries.entries()) {
      const claimer = core.users[i % 3]!; // anyone may submit; the account is paid
      await a.emitWithArgs(rewards.write.claim([0n, BigInt(i), e.account, e.amount, tree.proof(i)], { account: claimer.account }), rewards, "Claimed", [
        0n,
        BigInt(i),
        e.account,
        e.amount,
      ]);
      expected.set(e.account, (expected.get(e.account) ?? 0n) + e.amount);
      expect(await rewards.read.isClaimed([0n, BigInt(i)])).toBe(true);
    }
    for (const [account, balance] of expected) expect(await token.read.balanceOf([account])).toBe(balance);
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([0n, 3n, entries[3]!.account, entries[3]!.amount, tree.proof(3)]), rewards, "AlreadyClaimed", [0n, 3n]);
    expect(await rewards.read.totalReserved()).toBe(0n);
    expect(await token.read.balanceOf([rewards.address])).toBe(0n);
    expect(await rewards.read.isClaimed([0n, 11n])).toBe(false);
  });

  it("pays only against the epoch's current final root: never a rejected one, never another epoch's", async () => {
    const core = await deployCore();
    const oracles = await addOracles(core, 1);
    const { rewards } = core;
    const a = core.viem.assertions;
    const entries = entriesFor(core, 5);
    const rejected = buildRewardTree(entries);
    const good = buildRewardTree(entries.map((e) => ({ ...e, amount: e.amount + 1n })));
    const other = buildRewardTree(entries.map((e) => ({ ...e, amount: e.amount + 2n })));
    await funded(core, rejected.total + good.total + other.total);
    await endEpoch(core, 1n);

    await vote(core, oracles, 0n, rejected.root, rejected.total);
    expect(await rewards.read.isAgreedRoot([0n, rejected.root])).toBe(true);
    await rewards.write.rejectRoot([0n]);
    expect(await rewards.read.isAgreedRoot([0n, rejected.root])).toBe(false);
    await vote(core, oracles, 0n, good.root, good.total);
    await vote(core, oracles, 1n, other.root, other.total);
    expect(await rewards.read.isAgreedRoot([0n, good.root])).toBe(true);
    expect(await rewards.read.isAgreedRoot([1n, good.root])).toBe(false);
    // Still disputable: even a correct proof is RootNotFinal.
    const e0 = entries[0]!;
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([0n, 0n, e0.account, e0.amount + 1n, good.proof(0)]), rewards, "RootNotFinal", [0n]);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));

    // A valid proof under the rejected root, or under epoch 1's root, does not pay in epoch 0.
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([0n, 0n, e0.account, e0.amount, rejected.proof(0)]), rewards, "InvalidProof", [0n, 0n]);
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([0n, 0n, e0.account, e0.amount + 2n, other.proof(0)]), rewards, "InvalidProof", [0n, 0n]);
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([1n, 0n, e0.account, e0.amount + 1n, good.proof(0)]), rewards, "InvalidProof", [1n, 0n]);
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([2n, 0n, e0.account, e0.amount, []]), rewards, "RootNotFinal", [2n]);
    // The same leaf index is claimed independently per epoch, each once.
    await rewards.write.claim([0n, 0n, e0.account, e0.amount + 1n, good.proof(0)]);
    await rewards.write.claim([1n, 0n, e0.account, e0.amount + 2n, other.proof(0)]);
    await a.revertWithCustomErrorWithArgs(rewards.write.claim([0n, 0n, e0.account, e0.amount + 1n, good.proof(0)]), rewards, "AlreadyClaimed", [0n, 0n]);
    expect(await rewards.read.totalReserved()).toBe(good.total + other.total - (e0.amount + 1n) - (e0.amount + 2n));
    expect(await rewards.read.unallocated()).toBe(rejected.total);
  });

  it("never pays a root beyond its own agreed total", async () => {
    const core = await deployCore();
    const oracles = await addOracles(core, 1);
    const { rewards } = core;
    const entries: RewardEntry[] = [
      { account: core.users[10]!.account.address, amount: 300n },
      { account: core.users[11]!.account.address, amount: 10n },
    ];
    const tree = buildRewardTree(entries);
    await funded(core, 1000n);
    await endEpoch(core, 0n);
    // The oracles claim a total below the tree's sum.
    await vote(core, oracles, 0n, tree.root, 100n);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    await core.viem.assertions.revertWithCustomErrorWithArgs(
      rewards.write.claim([0n, 0n, entries[0]!.account, 300n, tree.proof(0)]),
      rewards,
      "ClaimExceedsEpochReserve",
      [0n, 300n, 100n],
    );
    await rewards.write.claim([0n, 1n, entries[1]!.account, 10n, tree.proof(1)]);
    expect(await rewards.read.remainingReserve([0n])).toBe(90n);
    expect(await rewards.read.totalReserved()).toBe(90n);
    expect(await rewards.read.unallocated()).toBe(900n);
  });
});

/**
 * Property test of stake and pool accounting. fast-check draws random sequences of
 * stake / unstake / withdraw / slash / time / fund / settle-and-claim steps across
 * three operators; a plain model predicts every outcome (success or the named error)
 * and after each step the chain must match the model and both contracts must hold
 * exactly what they owe:
 *   registry: balanceOf(registry) == totalBonded + totalUnbonding == sum of node stakes
 *   pool:     balanceOf(pool) == funded + slashed - claimed, and >= totalReserved
 * Settlements vote cumulative roots (each recipient's running total); claims pay the difference,
 * and a claim with nothing new reverts NothingToClaim.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseEther, type Hex } from "viem";
import { addNode, addOracles, deployCore, endEpoch, ROLE_AUTHORITY, ROLE_ONION, type CoreFixture } from "./helpers/core.js";
import { buildRewardTree } from "./helpers/merkle.js";
import { runContractInvariants } from "../properties/contracts.js";

type Step =
  | { kind: "stake"; node: number; amount: bigint }
  | { kind: "unstake"; node: number; amount: bigint }
  | { kind: "withdraw"; node: number }
  | { kind: "slash"; node: number; amount: bigint }
  | { kind: "time"; seconds: number }
  | { kind: "fund"; amount: bigint }
  | { kind: "settle"; amounts: bigint[]; claims: number };

const NODES = 3;
const psp = (n: number) => parseEther(String(n));
const nodeIx = fc.integer({ min: 0, max: NODES - 1 });
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("stake" as const), node: nodeIx, amount: fc.integer({ min: 0, max: 3000 }).map(psp) }),
  fc.record({ kind: fc.constant("unstake" as const), node: nodeIx, amount: fc.integer({ min: 0, max: 3000 }).map(psp) }),
  fc.record({ kind: fc.constant("withdraw" as const), node: nodeIx }),
  fc.record({ kind: fc.constant("slash" as const), node: nodeIx, amount: fc.integer({ min: 0, max: 3000 }).map(psp) }),
  fc.record({ kind: fc.constant("time" as const), seconds: fc.integer({ min: 0, max: 8 * 86400 }) }),
  fc.record({ kind: fc.constant("fund" as const), amount: fc.integer({ min: 0, max: 500 }).map(psp) }),
  fc.record({
    kind: fc.constant("settle" as const),
    amounts: fc.array(fc.integer({ min: 1, max: 300 }).map(psp), { minLength: 1, maxLength: 4 }),
    claims: fc.integer({ min: 0, max: 4 }),
  }),
);

interface Model {
  bonded: bigint[];
  unbonding: bigint[];
  poolBalance: bigint;
  reserved: bigint;
  epoch: bigint;
  /** Recipient i's cumulative amount in the newest agreed root, and what it claimed. */
  cumulative: bigint[];
  claimed: bigint[];
  agreedTotal: bigint;
}

async function expectAccounts(core: CoreFixture, keys: Hex[], model: Model, oracleStake: bigint): Promise<void> {
  const { registry, rewards, token } = core;
  const [held, totalBonded, totalUnbonding] = await Promise.all([
    token.read.balanceOf([registry.address]),
    registry.read.totalBonded(),
    registry.read.totalUnbonding(),
  ]);
  expect(held).toBe(totalBonded + totalUnbonding);
  const sumBonded = model.bonded.reduce((a, b) => a + b, 0n);
  const sumUnbonding = model.unbonding.reduce((a, b) => a + b, 0n);
  expect(totalBonded).toBe(sumBonded + oracleStake);
  expect(totalUnbonding).toBe(sumUnbonding);
  for (const [i, key] of keys.entries()) {
    const node = await registry.read.getNode([key]);
    expect([node.bonded, node.unbonding]).toEqual([model.bonded[i], model.unbonding[i]]);
  }
  const [poolHeld, reserved] = await Promise.all([token.read.balanceOf([rewards.address]), rewards.read.totalReserved()]);
  expect(poolHeld).toBe(model.poolBalance);
  expect(reserved).toBe(model.reserved);
  expect(poolHeld >= reserved).toBe(true);
}

async function apply(core: CoreFixture, keys: Hex[], model: Model, s: Step): Promise<void> {
  const { registry, rewards, token, networkHelpers } = core;
  const a = core.viem.assertions;
  const op = (i: number) => ({ account: core.users[i]!.account });
  switch (s.kind) {
    case "stake": {
      await token.write.approve([registry.address, s.amount], op(s.node));
      if (s.amount === 0n) return a.revertWithCustomError(registry.write.stake([keys[s.node]!, 0n], op(s.node)), registry, "ZeroAmount");
      await registry.write.stake([keys[s.node]!, s.amount], op(s.node));
      model.bonded[s.node]! += s.amount;
      return;
    }
    case "unstake": {
      const call = registry.write.requestUnstake([keys[s.node]!, s.amount], op(s.node));
      if (s.amount === 0n) return a.revertWithCustomError(call, registry, "ZeroAmount");
      if (s.amount > model.bonded[s.node]!) return a.revertWithCustomError(call, registry, "InsufficientBondedStake");
      await call;
      model.bonded[s.node]! -= s.amount;
      model.unbonding[s.node]! += s.amount;
      return;
    }
    case "withdraw": {
      if (model.unbonding[s.node] === 0n) {
        return a.revertWithCustomError(registry.write.withdraw([keys[s.node]!], op(s.node)), registry, "NothingToWithdraw");
      }
      const releaseAt = (await registry.read.getNode([keys[s.node]!])).unbondingReleaseAt;
      let now = BigInt(await networkHelpers.time.latest());
      // Block times may run ahead of `latest` by wall-clock seconds: settle near misses.
      if (now + 1n < releaseAt && releaseAt <= now + 60n) {
        await networkHelpers.time.increaseTo(releaseAt);
        now = releaseAt;
      }
      if (now + 1n < releaseAt) {
        return a.revertWithCustomError(registry.write.withdraw([keys[s.node]!], op(s.node)), registry, "UnbondingNotMatured");
      }
      await registry.write.withdraw([keys[s.node]!], op(s.node));
      model.unbonding[s.node] = 0n;
      return;
    }
    case "slash": {
      const call = registry.write.slash([keys[s.node]!, s.amount, `0x${"ee".repeat(32)}`]);
      const total = model.bonded[s.node]! + model.unbonding[s.node]!;
      if (s.amount === 0n) return a.revertWithCustomError(call, registry, "ZeroAmount");
      if (total === 0n) return a.revertWithCustomError(call, registry, "NothingToSlash");
      await call;
      const fromBonded = s.amount < model.bonded[s.node]! ? s.amount : model.bonded[s.node]!;
      const rest = s.amount - fromBonded;
      const fromUnbonding = rest < model.unbonding[s.node]! ? rest : model.unbonding[s.node]!;
      model.bonded[s.node]! -= fromBonded;
      model.unbonding[s.node]! -= fromUnbonding;
      model.poolBalance += fromBonded + fromUnbonding;
      return;
    }
    case "time":
      if (s.seconds > 0) await networkHelpers.time.increase(s.seconds);
      return;
    case "fund": {
      await token.write.approve([rewards.address, s.amount]);
      if (s.amount === 0n) return a.revertWithCustomError(rewards.write.fund([0n]), rewards, "ZeroAmount");
      await rewards.write.fund([s.amount]);
      model.poolBalance += s.amount;
      return;
    }
    case "settle": {
      // Cumulative roots: each settlement adds `amounts` to the recipients' running totals.
      const target = model.epoch + 1n;
      model.epoch = target;
      await endEpoch(core, target);
      const cumulative = s.amounts.map((amount, i) => (model.cumulative[i] ?? 0n) + amount);
      const entries = cumulative.map((amount, i) => ({ account: core.users[10 + i]!.account.address, amount }));
      for (let i = s.amounts.length; i < model.cumulative.length; i++) entries.push({ account: core.users[10 + i]!.account.address, amount: model.cumulative[i]! });
      const tree = buildRewardTree(entries);
      const increment = tree.total - model.agreedTotal;
      const oracle = { account: core.users[NODES]!.account };
      const vote = rewards.write.submitRoot([target, tree.root, tree.total], oracle);
      if (increment > model.poolBalance - model.reserved) {
        return a.revertWithCustomError(vote, rewards, "InsufficientUnallocated");
      }
      await vote;
      model.cumulative = entries.map((e) => e.amount);
      model.agreedTotal = tree.total;
      model.reserved += increment;
      await networkHelpers.time.increase(Number(core.disputeWindow));
      for (let i = 0; i < Math.min(s.claims, entries.length); i++) {
        const pay = entries[i]!.amount - (model.claimed[i] ?? 0n);
        const claim = rewards.write.claim([target, entries[i]!.account, entries[i]!.amount, tree.proof(entries[i]!.account)]);
        // A recipient this settlement left out keeps its running total: nothing new to claim.
        if (pay === 0n) {
          await a.revertWithCustomError(claim, rewards, "NothingToClaim");
          continue;
        }
        await claim;
        model.claimed[i] = entries[i]!.amount;
        model.reserved -= pay;
        model.poolBalance -= pay;
      }
      return;
    }
  }
}

describe("stake and pool accounting (fast-check)", () => {
  it("balances always equal what the contracts owe", async () => {
    // Deployed once; every sequence starts from this snapshot, so shrinking a failure stays fast.
    const core = await deployCore({ params: { unbondingDelay: 3n * 86400n }, quorumBps: 2500 }); // one vote of four
    const oracleStake = core.params.minStakeOracle;
    await addOracles(core, NODES + 1, oracleStake); // users[0..2] oracles too; users[3] is the voting oracle
    // Re-purpose users[0..2] as the randomly driven operators: they already own a
    // node each (staked at the oracle minimum); add a second node per operator.
    const keys: Hex[] = [];
    for (let i = 0; i < NODES; i++) {
      keys.push(await addNode(core, { operator: core.users[i]!, signer: core.users[15 + i]!.account.address, roles: ROLE_ONION | ROLE_AUTHORITY, label: `n${i}` }));
    }
    const allOracleStake = oracleStake * BigInt(NODES + 1);
    const fresh = await core.networkHelpers.takeSnapshot();
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 14 }), async (steps) => {
        await fresh.restore();
        const model: Model = { bonded: [0n, 0n, 0n], unbonding: [0n, 0n, 0n], poolBalance: 0n, reserved: 0n, epoch: -1n, cumulative: [], claimed: [], agreedTotal: 0n };
        for (const s of steps) {
          await apply(core, keys, model, s);
          await expectAccounts(core, keys, model, allOracleStake);
        }
      }),
      {
        numRuns: 60,
        // Once failed: a recipient a settlement left out has nothing new to claim (NothingToClaim).
        examples: [
          [
            [
              { kind: "fund", amount: psp(3) },
              { kind: "settle", amounts: [psp(1), psp(1)], claims: 2 },
              { kind: "settle", amounts: [psp(2)], claims: 0 },
              { kind: "settle", amounts: [psp(1)], claims: 2 },
            ],
          ],
        ],
      },
    );
  });
});

describe("registry and pool invariants under stake, signer, set and vote churn (fast-check)", () => {
  it("balances cover what is owed, claims never pass the newest final root's total, no root agreed without a quorum of current nodes", async () => {
    // scripts/invariants.ts runs the same property 10,000 times (npm run invariants).
    const stats = await runContractInvariants({ runs: 200, maxSteps: 8 });
    expect(stats.sequences).toBe(200);
    expect(stats.agreements).toBeGreaterThan(0);
    expect(stats.claims).toBeGreaterThan(0);
  }, 120_000);
});

/**
 * Subscriptions against the real PSPToken, NodeRegistry and IdentityRegistry:
 * plans, payments landing in the reward pool, expiry arithmetic (including a
 * fast-check property over random payment sequences), permits and carry-over
 * after key rotation.
 */
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { getAddress, maxUint256, parseEther, zeroAddress, type Hex } from "viem";
import { permitSignatureParts, permitTypedData } from "../../node/src/chain/permit.js";
import { REGISTRATION_POLICY, applicationId, identityId } from "../../node/src/chain/attestation.js";
import {
  KEY_PROOF,
  attestRotation,
  createApplication,
  deployPki,
  makeRegistration,
  registerIdentity,
  testKey,
  type PkiFixture,
  type WalletClient,
} from "./helpers/pki.js";

const PRICE = parseEther("5");
const PERIOD = 30n * 24n * 3600n;

let f: PkiFixture;
let restore: () => Promise<void>;
let appOwner: WalletClient;
let alice: WalletClient;
let payer: WalletClient;
let mallory: WalletClient;
let appId: Hex;
let otherAppId: Hex;
let aliceId: Hex;
let otherAppIdentity: Hex;
let planId: bigint;

function at<T>(xs: readonly T[], i: number): T {
  const x = xs[i];
  if (x === undefined) throw new Error(`fixture has no element ${i}`);
  return x;
}

beforeAll(async () => {
  f = await deployPki({ authorityCount: 3, threshold: 2 });
  [appOwner, alice, payer, mallory] = [at(f.users, 0), at(f.users, 1), at(f.users, 2), at(f.users, 3)];
  appId = await createApplication(f, appOwner, "peerstream", "client");
  otherAppId = await createApplication(f, appOwner, "peerstream", "other", REGISTRATION_POLICY.open);
  aliceId = await registerIdentity(f, await makeRegistration(f, { owner: alice.account.address }), alice);
  otherAppIdentity = await registerIdentity(
    f,
    await makeRegistration(f, { owner: alice.account.address, application: "other" }),
    alice,
  );
  await f.subscriptions.write.createPlan([appId, PRICE, PERIOD], { account: appOwner.account });
  planId = await f.subscriptions.read.planCount();
  await f.token.write.approve([f.subscriptions.address, maxUint256], { account: payer.account });
  const snapshot = await f.networkHelpers.takeSnapshot();
  restore = () => snapshot.restore();
});

beforeEach(async () => {
  await restore();
});

afterAll(async () => {
  await f.connection.close();
});

async function balances(): Promise<{ payer: bigint; pool: bigint; contract: bigint }> {
  return {
    payer: await f.token.read.balanceOf([payer.account.address]),
    pool: await f.token.read.balanceOf([f.rewardPool]),
    contract: await f.token.read.balanceOf([f.subscriptions.address]),
  };
}

/** Subscribes in a block with timestamp `t` (so the test knows block.timestamp exactly). */
async function subscribeAt(t: bigint, id: Hex, plan: bigint, periods: number, from = payer): Promise<void> {
  await f.networkHelpers.time.setNextBlockTimestamp(t);
  await f.subscriptions.write.subscribe([id, plan, periods], { account: from.account });
}

describe("Subscriptions construction", () => {
  it("rejects zero addresses and exposes its wiring", async () => {
    const { viem, subscriptions, token, identities, rewardPool } = f;
    for (const args of [
      [zeroAddress, identities.address, rewardPool],
      [token.address, zeroAddress, rewardPool],
      [token.address, identities.address, zeroAddress],
    ] as const) {
      await viem.assertions.revertWithCustomError(viem.deployContract("Subscriptions", [...args]), subscriptions, "ZeroAddress");
    }
    expect(await subscriptions.read.token()).toBe(getAddress(token.address));
    expect(await subscriptions.read.identities()).toBe(getAddress(identities.address));
    expect(await subscriptions.read.rewardPool()).toBe(getAddress(rewardPool));
  });
});

describe("plans", () => {
  it("are created by the application owner only, with a price and a period", async () => {
    const { viem, subscriptions } = f;
    await viem.assertions.emitWithArgs(
      subscriptions.write.createPlan([appId, 7n, 3600n], { account: appOwner.account }),
      subscriptions,
      "PlanCreated",
      [planId + 1n, appId, appOwner.account.address, 7n, 3600n],
    );
    expect(await subscriptions.read.planCount()).toBe(planId + 1n);
    const plan = await subscriptions.read.getPlan([planId + 1n]);
    expect(plan).toEqual({ applicationId: appId, price: 7n, period: 3600n, active: true });
    await viem.assertions.revertWithCustomErrorWithArgs(
      subscriptions.write.createPlan([appId, 7n, 3600n], { account: mallory.account }),
      subscriptions,
      "NotApplicationOwner",
      [appId, mallory.account.address],
    );
    const missing = applicationId("peerstream", "missing");
    await viem.assertions.revertWithCustomErrorWithArgs(
      subscriptions.write.createPlan([missing, 7n, 3600n], { account: appOwner.account }),
      subscriptions,
      "ApplicationNotFound",
      [missing],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      subscriptions.write.createPlan([appId, 0n, 3600n], { account: appOwner.account }),
      subscriptions,
      "InvalidPlanParameters",
      [0n, 3600n],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      subscriptions.write.createPlan([appId, 7n, 0n], { account: appOwner.account }),
      subscriptions,
      "InvalidPlanParameters",
      [7n, 0n],
    );
  });

  it("are deactivated for good by the application's current owner", async () => {
    const { viem, subscriptions, identities } = f;
    await viem.assertions.revertWithCustomError(
      subscriptions.write.deactivatePlan([planId], { account: mallory.account }),
      subscriptions,
      "NotApplicationOwner",
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      subscriptions.write.deactivatePlan([999n], { account: appOwner.account }),
      subscriptions,
      "PlanNotFound",
      [999n],
    );
    // Ownership follows the IdentityRegistry: after a transfer the new owner decides.
    await identities.write.transferApplication([appId, mallory.account.address], { account: appOwner.account });
    await viem.assertions.revertWithCustomError(
      subscriptions.write.deactivatePlan([planId], { account: appOwner.account }),
      subscriptions,
      "NotApplicationOwner",
    );
    await viem.assertions.emitWithArgs(
      subscriptions.write.deactivatePlan([planId], { account: mallory.account }),
      subscriptions,
      "PlanDeactivated",
      [planId, appId],
    );
    expect((await subscriptions.read.getPlan([planId])).active).toBe(false);
    await viem.assertions.revertWithCustomErrorWithArgs(
      subscriptions.write.deactivatePlan([planId], { account: mallory.account }),
      subscriptions,
      "PlanInactive",
      [planId],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      subscriptions.write.subscribe([aliceId, planId, 1], { account: payer.account }),
      subscriptions,
      "PlanInactive",
      [planId],
    );
  });
});

describe("subscribe", () => {
  it("starts a subscription and pays the reward pool, not the contract", async () => {
    const { viem, subscriptions } = f;
    const before = await balances();
    const t = BigInt(await f.networkHelpers.time.latest()) + 10n;
    await f.networkHelpers.time.setNextBlockTimestamp(t);
    await viem.assertions.emitWithArgs(
      subscriptions.write.subscribe([aliceId, planId, 3], { account: payer.account }),
      subscriptions,
      "Subscribed",
      [aliceId, planId, payer.account.address, 3, 3n * PRICE, t + 3n * PERIOD],
    );
    const after = await balances();
    expect(before.payer - after.payer).toBe(3n * PRICE);
    expect(after.pool - before.pool).toBe(3n * PRICE);
    expect(after.contract).toBe(0n);
    const expiry = t + 3n * PERIOD;
    expect(await subscriptions.read.subscriptionExpiry([aliceId])).toBe(expiry);
    expect(await subscriptions.read.isSubscribed([aliceId, expiry - 1n])).toBe(true);
    expect(await subscriptions.read.isSubscribed([aliceId, expiry])).toBe(false);
    expect(await subscriptions.read.isSubscribed([otherAppIdentity, t])).toBe(false);
  });

  it("extends from the current expiry while active and from now once lapsed", async () => {
    const now = BigInt(await f.networkHelpers.time.latest());
    await subscribeAt(now + 10n, aliceId, planId, 1);
    const first = now + 10n + PERIOD;
    await subscribeAt(now + 20n, aliceId, planId, 2);
    expect(await f.subscriptions.read.subscriptionExpiry([aliceId])).toBe(first + 2n * PERIOD);
    const lapsed = first + 2n * PERIOD + 1000n;
    await subscribeAt(lapsed, aliceId, planId, 1);
    expect(await f.subscriptions.read.subscriptionExpiry([aliceId])).toBe(lapsed + PERIOD);
  });

  it("rejects zero periods, unknown plans and inactive, unknown or foreign identities", async () => {
    const { viem, subscriptions, identities } = f;
    await viem.assertions.revertWithCustomError(
      subscriptions.write.subscribe([aliceId, planId, 0], { account: payer.account }),
      subscriptions,
      "ZeroPeriods",
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      subscriptions.write.subscribe([aliceId, 0n, 1], { account: payer.account }),
      subscriptions,
      "PlanNotFound",
      [0n],
    );
    const unknown = identityId({ namespace: "peerstream", application: "client", kind: 0, key: testKey("unknown") });
    await viem.assertions.revertWithCustomErrorWithArgs(
      subscriptions.write.subscribe([unknown, planId, 1], { account: payer.account }),
      subscriptions,
      "IdentityNotActive",
      [unknown],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      subscriptions.write.subscribe([otherAppIdentity, planId, 1], { account: payer.account }),
      subscriptions,
      "WrongApplication",
      [otherAppIdentity, otherAppId, appId],
    );
    await subscriptions.write.subscribe([aliceId, planId, 1], { account: payer.account });
    await identities.write.revokeIdentity([aliceId], { account: alice.account });
    const t = BigInt(await f.networkHelpers.time.latest());
    expect(await subscriptions.read.isSubscribed([aliceId, t])).toBe(false);
    await viem.assertions.revertWithCustomError(
      subscriptions.write.subscribe([aliceId, planId, 1], { account: payer.account }),
      subscriptions,
      "IdentityNotActive",
    );
  });

  it("rejects payments and expiries that overflow, and payers without allowance", async () => {
    const { viem, subscriptions, token } = f;
    await subscriptions.write.createPlan([appId, maxUint256 / 2n + 1n, 1n], { account: appOwner.account });
    await viem.assertions.revertWithCustomError(
      subscriptions.write.subscribe([aliceId, planId + 1n, 2], { account: payer.account }),
      subscriptions,
      "PaymentOverflow",
    );
    await subscriptions.write.createPlan([appId, 1n, (1n << 63n) + 1n], { account: appOwner.account });
    await viem.assertions.revertWithCustomError(
      subscriptions.write.subscribe([aliceId, planId + 2n, 2], { account: payer.account }),
      subscriptions,
      "ExpiryOverflow",
    );
    await viem.assertions.revertWithCustomError(
      subscriptions.write.subscribe([aliceId, planId, 1], { account: mallory.account }),
      token,
      "ERC20InsufficientAllowance",
    );
    expect(await subscriptions.read.subscriptionExpiry([aliceId])).toBe(0n);
  });

  it("accepts an ERC-2612 permit, and still pays when a front-runner used the permit", async () => {
    const { subscriptions, token, viem } = f;
    const amount = 2n * PRICE;
    const deadline = BigInt(await f.networkHelpers.time.latest()) + 3600n;
    const signPermit = async (value: bigint) => {
      const nonce = await token.read.nonces([mallory.account.address]);
      const signature = await mallory.signTypedData({
        account: mallory.account,
        ...permitTypedData({ tokenName: "PeerStream Token", token: token.address, chainId: f.chainId, owner: mallory.account.address, spender: subscriptions.address, value, nonce, deadline }),
      });
      return permitSignatureParts(signature);
    };
    const before = await balances();
    const p = await signPermit(amount);
    await subscriptions.write.subscribeWithPermit([aliceId, planId, 2, deadline, p.v, p.r, p.s], { account: mallory.account });
    expect((await balances()).pool - before.pool).toBe(amount);
    expect(await token.read.allowance([mallory.account.address, subscriptions.address])).toBe(0n);

    // Front-run: someone submits the permit first; the subscription still goes through.
    const q = await signPermit(PRICE);
    await token.write.permit([mallory.account.address, subscriptions.address, PRICE, deadline, q.v, q.r, q.s], {
      account: payer.account,
    });
    await subscriptions.write.subscribeWithPermit([aliceId, planId, 1, deadline, q.v, q.r, q.s], { account: mallory.account });
    expect((await balances()).pool - before.pool).toBe(amount + PRICE);

    // A garbage permit without allowance fails on the transfer, not silently.
    await viem.assertions.revertWithCustomError(
      subscriptions.write.subscribeWithPermit([aliceId, planId, 1, deadline, 27, q.r, q.s], { account: mallory.account }),
      token,
      "ERC20InsufficientAllowance",
    );
  });
});

describe("carry-over after key rotation", () => {
  it("moves the unused time to the successor, once", async () => {
    const { viem, subscriptions, identities } = f;
    const now = BigInt(await f.networkHelpers.time.latest());
    await subscribeAt(now + 10n, aliceId, planId, 2);
    const oldExpiry = now + 10n + 2n * PERIOD;
    await viem.assertions.revertWithCustomErrorWithArgs(
      subscriptions.write.carryOverSubscription([aliceId], { account: mallory.account }),
      subscriptions,
      "IdentityNotRotated",
      [aliceId],
    );
    const old = await identities.read.getIdentity([aliceId]);
    const newKey = testKey("carry-successor");
    const r = await makeRegistration(f, { owner: alice.account.address, key: newKey });
    const atts = await attestRotation(
      f.authorities.map((a) => a.signer),
      { chainId: f.chainId, registry: identities.address, rotation: { owner: alice.account.address, identityId: aliceId, newKey, deadline: r.deadline } },
    );
    await identities.write.rotateKey([aliceId, newKey, r.deadline, KEY_PROOF, atts], { account: alice.account });
    const successor = (await identities.read.getIdentity([aliceId])).successor;
    expect(old.status).toBe(1);
    // The successor already paid one period of its own.
    const t1 = now + 1000n;
    await subscribeAt(t1, successor, planId, 1);
    const t2 = t1 + 100n;
    await f.networkHelpers.time.setNextBlockTimestamp(t2);
    await viem.assertions.emitWithArgs(
      subscriptions.write.carryOverSubscription([aliceId], { account: mallory.account }),
      subscriptions,
      "SubscriptionCarriedOver",
      [aliceId, successor, t1 + PERIOD + (oldExpiry - t2)],
    );
    expect(await subscriptions.read.subscriptionExpiry([successor])).toBe(t1 + PERIOD + (oldExpiry - t2));
    expect(await subscriptions.read.isSubscribed([aliceId, t2])).toBe(false);
    await viem.assertions.revertWithCustomErrorWithArgs(
      subscriptions.write.carryOverSubscription([aliceId], { account: mallory.account }),
      subscriptions,
      "NothingToCarryOver",
      [aliceId],
    );
  });
});

describe("expiry arithmetic (property)", () => {
  it("matches max(now, expiry) + periods * period over random payment sequences", async () => {
    // A second plan with another period so sequences mix plans of one application.
    await f.subscriptions.write.createPlan([appId, 3n, 3600n], { account: appOwner.account });
    const plans = [
      { id: planId, price: PRICE, period: PERIOD },
      { id: planId + 1n, price: 3n, period: 3600n },
    ];
    const base = await f.networkHelpers.takeSnapshot();
    const step = fc.record({
      gap: fc.oneof(fc.bigInt({ min: 1n, max: 3600n }), fc.bigInt({ min: 1n, max: 3n * PERIOD })),
      plan: fc.integer({ min: 0, max: 1 }),
      periods: fc.integer({ min: 1, max: 12 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 6 }), async (steps) => {
        await base.restore();
        let t = BigInt(await f.networkHelpers.time.latest());
        let expected = await f.subscriptions.read.subscriptionExpiry([aliceId]);
        let paid = 0n;
        const poolBefore = await f.token.read.balanceOf([f.rewardPool]);
        for (const s of steps) {
          const plan = at(plans, s.plan);
          t += s.gap;
          await subscribeAt(t, aliceId, plan.id, s.periods);
          expected = (expected > t ? expected : t) + BigInt(s.periods) * plan.period;
          paid += BigInt(s.periods) * plan.price;
          expect(await f.subscriptions.read.subscriptionExpiry([aliceId])).toBe(expected);
        }
        expect(await f.subscriptions.read.isSubscribed([aliceId, expected - 1n])).toBe(true);
        expect(await f.subscriptions.read.isSubscribed([aliceId, expected])).toBe(false);
        expect((await f.token.read.balanceOf([f.rewardPool])) - poolBefore).toBe(paid);
      }),
      { numRuns: 20 },
    );
  });
});

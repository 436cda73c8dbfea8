/**
 * NodeRegistry: registration, staking, unbonding, slashing, governance, and the
 * ranked authority / oracle / discovery sets (ordering, ties, caps, agreement of
 * the signer predicates with the sets).
 */
import { describe, expect, it } from "vitest";
import { parseEther, zeroAddress, type Address, type Hex } from "viem";
import { permitSignatureParts, permitTypedData } from "../../node/src/chain/permit.js";
import {
  addNode,
  deployCore,
  nodeKeyOf,
  ROLE_AUTHORITY,
  ROLE_DISCOVERY,
  ROLE_ONION,
  ROLE_ORACLE,
  type CoreFixture,
  type WalletClient,
} from "./helpers/core.js";

function user(core: CoreFixture, i: number): WalletClient {
  const wallet = core.users[i];
  if (wallet === undefined) throw new Error(`no wallet ${i}`);
  return wallet;
}

async function balanceOf(core: CoreFixture, who: Address): Promise<bigint> {
  return core.token.read.balanceOf([who]);
}

async function expectRegistrySolvent(core: CoreFixture): Promise<void> {
  const [bonded, unbonding, held] = await Promise.all([
    core.registry.read.totalBonded(),
    core.registry.read.totalUnbonding(),
    balanceOf(core, core.registry.address),
  ]);
  expect(held).toBe(bonded + unbonding);
}

describe("NodeRegistry: registration", () => {
  it("registers a node and exposes it through every read", async () => {
    const core = await deployCore();
    const op = user(core, 0);
    const key = nodeKeyOf("a");
    const signer = user(core, 1).account.address;
    await core.viem.assertions.emitWithArgs(
      core.registry.write.registerNode([key, signer, ROLE_ONION | ROLE_ORACLE], { account: op.account }),
      core.registry,
      "NodeRegistered",
      [key, op.account.address, signer, ROLE_ONION | ROLE_ORACLE],
    );
    const node = await core.registry.read.getNode([key]);
    expect(node.operator.toLowerCase()).toBe(op.account.address.toLowerCase());
    expect(node.signer.toLowerCase()).toBe(signer.toLowerCase());
    expect(node.roles).toBe(ROLE_ONION | ROLE_ORACLE);
    expect(node.bonded).toBe(0n);
    expect(node.registeredAt).toBe(BigInt(await core.networkHelpers.time.latest()));
    expect(await core.registry.read.nodeKeyOfSigner([signer])).toBe(key);
    expect(await core.registry.read.nodeCount()).toBe(1n);
    const page = await core.registry.read.nodesPage([0n, 10n]);
    expect(page.map((n) => n.nodeKey)).toEqual([key]);
    expect(await core.registry.read.nodesPage([1n, 10n])).toEqual([]);
  });

  it("rejects bad registrations with specific errors", async () => {
    const core = await deployCore();
    const op = { account: user(core, 0).account };
    const signer = user(core, 1).account.address;
    const { registry } = core;
    const a = core.viem.assertions;
    await a.revertWithCustomError(registry.write.registerNode([`0x${"00".repeat(32)}`, signer, 1], op), registry, "ZeroNodeKey");
    await a.revertWithCustomErrorWithArgs(registry.write.registerNode([nodeKeyOf("x"), signer, 0], op), registry, "InvalidRoles", [0]);
    await a.revertWithCustomErrorWithArgs(registry.write.registerNode([nodeKeyOf("x"), signer, 16], op), registry, "InvalidRoles", [16]);
    await a.revertWithCustomError(registry.write.registerNode([nodeKeyOf("x"), zeroAddress, 1], op), registry, "ZeroSigner");
    await registry.write.registerNode([nodeKeyOf("x"), signer, 1], op);
    await a.revertWithCustomError(registry.write.registerNode([nodeKeyOf("x"), user(core, 2).account.address, 1], op), registry, "NodeAlreadyRegistered");
    await a.revertWithCustomErrorWithArgs(registry.write.registerNode([nodeKeyOf("y"), signer, 1], op), registry, "SignerInUse", [
      signer,
      nodeKeyOf("x"),
    ]);
  });

  it("lets only the operator change roles and signer, and deregister without stake", async () => {
    const core = await deployCore();
    const op = user(core, 0);
    const other = user(core, 1);
    const key = await addNode(core, { operator: op, roles: ROLE_ONION, stake: parseEther("200") });
    const { registry } = core;
    const a = core.viem.assertions;
    await a.revertWithCustomError(registry.write.setRoles([key, ROLE_ORACLE], { account: other.account }), registry, "NotOperator");
    await a.revertWithCustomError(registry.write.setRoles([nodeKeyOf("none"), ROLE_ORACLE], { account: op.account }), registry, "UnknownNode");
    await a.revertWithCustomError(registry.write.setRoles([key, 0], { account: op.account }), registry, "InvalidRoles");
    await a.emitWithArgs(registry.write.setRoles([key, ROLE_ONION | ROLE_AUTHORITY], { account: op.account }), registry, "RolesChanged", [
      key,
      ROLE_ONION,
      ROLE_ONION | ROLE_AUTHORITY,
    ]);
    const newSigner = other.account.address;
    await a.revertWithCustomError(registry.write.setSigner([key, newSigner], { account: other.account }), registry, "NotOperator");
    await a.revertWithCustomError(registry.write.setSigner([key, zeroAddress], { account: op.account }), registry, "ZeroSigner");
    await a.revertWithCustomError(registry.write.setSigner([key, op.account.address], { account: op.account }), registry, "SignerInUse");
    await a.emit(registry.write.setSigner([key, newSigner], { account: op.account }), registry, "SignerChanged");
    expect(await registry.read.nodeKeyOfSigner([newSigner])).toBe(key);
    expect(await registry.read.nodeKeyOfSigner([op.account.address])).toBe(`0x${"00".repeat(32)}`);

    await a.revertWithCustomErrorWithArgs(registry.write.deregisterNode([key], { account: op.account }), registry, "StakeRemaining", [
      parseEther("200"),
      0n,
    ]);
    await a.revertWithCustomError(registry.write.deregisterNode([key], { account: other.account }), registry, "NotOperator");
    await registry.write.requestUnstake([key, parseEther("200")], { account: op.account });
    await a.revertWithCustomError(registry.write.deregisterNode([key], { account: op.account }), registry, "StakeRemaining");
    await core.networkHelpers.time.increase(Number(core.params.unbondingDelay));
    await registry.write.withdraw([key], { account: op.account });
    await a.emitWithArgs(registry.write.deregisterNode([key], { account: op.account }), registry, "NodeDeregistered", [
      key,
      op.account.address,
    ]);
    expect(await registry.read.nodeCount()).toBe(0n);
    expect(await registry.read.nodeKeyOfSigner([newSigner])).toBe(`0x${"00".repeat(32)}`);
    await a.revertWithCustomError(registry.read.getNode([key]), registry, "UnknownNode");
    // The key and signer are free again.
    await registry.write.registerNode([key, newSigner, ROLE_ONION], { account: other.account });
  });
});

describe("NodeRegistry: staking", () => {
  it("bonds, unbonds after the delay and pays the operator", async () => {
    const core = await deployCore();
    const op = user(core, 0);
    const { registry, token } = core;
    const a = core.viem.assertions;
    const key = await addNode(core, { operator: op, roles: ROLE_ORACLE });
    await a.revertWithCustomError(registry.write.stake([key, 0n], { account: op.account }), registry, "ZeroAmount");
    await a.revertWithCustomError(registry.write.stake([key, 1n], { account: user(core, 1).account }), registry, "NotOperator");
    await token.write.approve([registry.address, parseEther("3000")], { account: op.account });
    await a.emitWithArgs(registry.write.stake([key, parseEther("3000")], { account: op.account }), registry, "Staked", [
      key,
      op.account.address,
      parseEther("3000"),
      parseEther("3000"),
    ]);
    expect(await registry.read.totalBonded()).toBe(parseEther("3000"));
    expect(await registry.read.isOracleSigner([op.account.address])).toBe(true);
    await expectRegistrySolvent(core);

    await a.revertWithCustomErrorWithArgs(registry.write.requestUnstake([key, parseEther("3001")], { account: op.account }), registry, "InsufficientBondedStake", [
      parseEther("3001"),
      parseEther("3000"),
    ]);
    await a.revertWithCustomError(registry.write.requestUnstake([key, 0n], { account: op.account }), registry, "ZeroAmount");
    await a.revertWithCustomError(registry.write.withdraw([key], { account: op.account }), registry, "NothingToWithdraw");
    await a.emit(registry.write.requestUnstake([key, parseEther("2500")], { account: op.account }), registry, "UnstakeRequested");
    // Below the oracle minimum: out of the set at once.
    expect(await registry.read.isOracleSigner([op.account.address])).toBe(false);
    expect(await registry.read.totalUnbonding()).toBe(parseEther("2500"));
    await expectRegistrySolvent(core);
    await a.revertWithCustomError(registry.write.withdraw([key], { account: op.account }), registry, "UnbondingNotMatured");

    // A second request merges and restarts the clock.
    await core.networkHelpers.time.increase(Number(core.params.unbondingDelay) - 10);
    await registry.write.requestUnstake([key, parseEther("500")], { account: op.account });
    await core.networkHelpers.time.increase(20);
    await a.revertWithCustomError(registry.write.withdraw([key], { account: op.account }), registry, "UnbondingNotMatured");
    await core.networkHelpers.time.increase(Number(core.params.unbondingDelay));
    const before = await balanceOf(core, op.account.address);
    await a.revertWithCustomError(registry.write.withdraw([key], { account: user(core, 1).account }), registry, "NotOperator");
    await a.emitWithArgs(registry.write.withdraw([key], { account: op.account }), registry, "Withdrawn", [key, op.account.address, parseEther("3000")]);
    expect(await balanceOf(core, op.account.address)).toBe(before + parseEther("3000"));
    const node = await registry.read.getNode([key]);
    expect([node.bonded, node.unbonding]).toEqual([0n, 0n]);
    await expectRegistrySolvent(core);
  });

  it("stakes with an ERC-2612 permit instead of an approval", async () => {
    const core = await deployCore();
    const op = user(core, 0);
    const key = await addNode(core, { operator: op, roles: ROLE_AUTHORITY });
    const amount = parseEther("1500");
    const deadline = BigInt(await core.networkHelpers.time.latest()) + 3600n;
    const chainId = await core.publicClient.getChainId();
    const signature = await op.signTypedData({
      account: op.account,
      ...permitTypedData({ tokenName: "PeerStream Token", token: core.token.address, chainId, owner: op.account.address, spender: core.registry.address, value: amount, nonce: 0n, deadline }),
    });
    const { v, r, s } = permitSignatureParts(signature);
    await core.registry.write.stakeWithPermit([key, amount, deadline, v, r, s], { account: op.account });
    expect((await core.registry.read.getNode([key])).bonded).toBe(amount);
    expect(await core.registry.read.isAuthoritySigner([op.account.address])).toBe(true);
    // Replaying the used permit is ignored, and without allowance the transfer fails.
    await core.viem.assertions.revertWithCustomError(
      core.registry.write.stakeWithPermit([key, amount, deadline, Number(v), r, s], { account: op.account }),
      core.token,
      "ERC20InsufficientAllowance",
    );
  });
});

describe("NodeRegistry: slashing and governance", () => {
  it("slashes bonded stake first, then unbonding, into the reward pool", async () => {
    const core = await deployCore();
    const op = user(core, 0);
    const slasher = user(core, 5);
    const { registry } = core;
    const a = core.viem.assertions;
    const key = await addNode(core, { operator: op, roles: ROLE_ORACLE, stake: parseEther("2000") });
    await registry.write.requestUnstake([key, parseEther("500")], { account: op.account });
    const evidence = nodeKeyOf("evidence");

    await a.revertWithCustomError(registry.write.slash([key, 1n, evidence], { account: slasher.account }), registry, "NotSlasher");
    await registry.write.grantRole([await registry.read.SLASHER_ROLE(), slasher.account.address]);
    await a.revertWithCustomError(registry.write.slash([nodeKeyOf("none"), 1n, evidence], { account: slasher.account }), registry, "UnknownNode");
    await a.revertWithCustomError(registry.write.slash([key, 0n, evidence], { account: slasher.account }), registry, "ZeroAmount");

    await a.emitWithArgs(registry.write.slash([key, parseEther("1000"), evidence], { account: slasher.account }), registry, "Slashed", [
      key,
      evidence,
      core.rewards.address,
      parseEther("1000"),
      0n,
    ]);
    expect(await registry.read.isOracleSigner([op.account.address])).toBe(false);
    // Governance may slash too; more than is left takes everything that is left.
    await a.emitWithArgs(registry.write.slash([key, parseEther("5000"), evidence]), registry, "Slashed", [
      key,
      evidence,
      core.rewards.address,
      parseEther("500"),
      parseEther("500"),
    ]);
    expect(await balanceOf(core, core.rewards.address)).toBe(parseEther("2000"));
    await expectRegistrySolvent(core);
    await a.revertWithCustomError(registry.write.slash([key, 1n, evidence]), registry, "NothingToSlash");
  });

  it("restricts governance functions and validates parameters", async () => {
    const core = await deployCore();
    const stranger = { account: user(core, 3).account };
    const { registry } = core;
    const a = core.viem.assertions;
    const p = { ...core.params };
    await a.revertWithCustomError(registry.write.setParams([p], stranger), registry, "AccessControlUnauthorizedAccount");
    await a.revertWithCustomError(registry.write.setSlashRecipient([stranger.account.address], stranger), registry, "AccessControlUnauthorizedAccount");
    await a.revertWithCustomError(registry.write.approveDiscovery([nodeKeyOf("a"), true], stranger), registry, "AccessControlUnauthorizedAccount");
    await a.revertWithCustomErrorWithArgs(registry.write.setParams([{ ...p, minStakeDiscovery: 0n }]), registry, "ZeroMinimumStake", [ROLE_DISCOVERY]);
    await a.revertWithCustomErrorWithArgs(registry.write.setParams([{ ...p, minStakeAuthority: 0n }]), registry, "ZeroMinimumStake", [ROLE_AUTHORITY]);
    await a.revertWithCustomErrorWithArgs(registry.write.setParams([{ ...p, minStakeOracle: 0n }]), registry, "ZeroMinimumStake", [ROLE_ORACLE]);
    await a.revertWithCustomError(registry.write.setParams([{ ...p, maxOracles: 0 }]), registry, "ZeroSetCap");
    await a.revertWithCustomError(registry.write.setParams([{ ...p, maxAuthorities: 0 }]), registry, "ZeroSetCap");
    await a.emit(registry.write.setParams([{ ...p, maxOracles: 9 }]), registry, "ParamsChanged");
    expect((await registry.read.params()).maxOracles).toBe(9);
    await a.revertWithCustomError(registry.write.setSlashRecipient([zeroAddress]), registry, "ZeroSlashRecipient");
    await a.emitWithArgs(registry.write.setSlashRecipient([stranger.account.address]), registry, "SlashRecipientChanged", [
      core.rewards.address,
      stranger.account.address,
    ]);
    await a.revertWithCustomError(registry.write.approveDiscovery([nodeKeyOf("none"), true]), registry, "UnknownNode");
    await a.revertWithCustomErrorWithArgs(registry.read.isEligible([nodeKeyOf("none"), 3]), registry, "InvalidRole", [3]);
  });

  it("re-evaluates candidacy when a minimum is raised or lowered", async () => {
    const core = await deployCore();
    const op = user(core, 0);
    const { registry } = core;
    const key = await addNode(core, { operator: op, roles: ROLE_ORACLE, stake: parseEther("800") });
    expect(await registry.read.isEligible([key, ROLE_ORACLE])).toBe(false);
    await registry.write.setParams([{ ...core.params, minStakeOracle: parseEther("500") }]);
    // Lowered: the node joins at its next update or through the permissionless refresh.
    expect(await registry.read.isOracleSigner([op.account.address])).toBe(false);
    await core.viem.assertions.emitWithArgs(registry.write.refreshCandidacy([[key]], { account: user(core, 4).account }), registry, "CandidacyChanged", [
      key,
      ROLE_ORACLE,
      true,
    ]);
    expect(await registry.read.isOracleSigner([op.account.address])).toBe(true);
    expect(await registry.read.oracleCount()).toBe(1n);
    // Raised: filtered at once.
    await registry.write.setParams([{ ...core.params, minStakeOracle: parseEther("900") }]);
    expect(await registry.read.isOracleSigner([op.account.address])).toBe(false);
    expect(await registry.read.oracleCount()).toBe(0n);
    expect((await registry.read.oracleSet())[0]).toEqual([]);
    await core.viem.assertions.revertWithCustomError(registry.write.refreshCandidacy([[nodeKeyOf("none")]]), registry, "UnknownNode");
  });
});

describe("NodeRegistry: ranked sets", () => {
  it("orders by stake descending, ties by key ascending, capped; predicates agree", async () => {
    const core = await deployCore({ params: { maxAuthorities: 3 } });
    const { registry } = core;
    // Stakes with ties; keys chosen so the tie order is known.
    const specs: { key: Hex; stake: bigint }[] = [
      { key: `0x${"20".repeat(32)}`, stake: parseEther("2000") },
      { key: `0x${"10".repeat(32)}`, stake: parseEther("2000") },
      { key: `0x${"30".repeat(32)}`, stake: parseEther("5000") },
      { key: `0x${"05".repeat(32)}`, stake: parseEther("1000") },
      { key: `0x${"40".repeat(32)}`, stake: parseEther("999") }, // below minimum
    ];
    const signerOf = new Map<Hex, Address>();
    for (const [i, s] of specs.entries()) {
      const op = user(core, i);
      await addNode(core, { operator: op, roles: ROLE_AUTHORITY | ROLE_ONION, stake: s.stake, nodeKey: s.key });
      signerOf.set(s.key, op.account.address);
    }
    const [keys, signers] = await registry.read.authoritySet();
    const expected: Hex[] = [`0x${"30".repeat(32)}`, `0x${"10".repeat(32)}`, `0x${"20".repeat(32)}`];
    expect(keys).toEqual(expected);
    expect(signers.map((x) => x.toLowerCase())).toEqual(expected.map((k) => signerOf.get(k)?.toLowerCase()));
    expect(await registry.read.authorityCount()).toBe(3n);
    for (const s of specs) {
      const member = expected.includes(s.key);
      expect(await registry.read.isAuthoritySigner([signerOf.get(s.key) as Address])).toBe(member);
    }
    // Eligible but ranked below the cap: not a signer.
    expect(await registry.read.isEligible([`0x${"05".repeat(32)}`, ROLE_AUTHORITY])).toBe(true);
    expect(await registry.read.isEligible([`0x${"40".repeat(32)}`, ROLE_AUTHORITY])).toBe(false);
    expect(await registry.read.isEligible([`0x${"40".repeat(32)}`, ROLE_ONION])).toBe(true);
    expect(await registry.read.isAuthoritySigner([zeroAddress])).toBe(false);

    // The lowest node tops up past the tie and displaces key 0x20..
    const low = user(core, 3);
    await core.token.write.approve([registry.address, parseEther("1500")], { account: low.account });
    await registry.write.stake([`0x${"05".repeat(32)}`, parseEther("1500")], { account: low.account });
    const [keys2] = await registry.read.authoritySet();
    expect(keys2).toEqual([`0x${"30".repeat(32)}`, `0x${"05".repeat(32)}`, `0x${"10".repeat(32)}`]);
    expect(await registry.read.isAuthoritySigner([low.account.address])).toBe(true);
    expect(await registry.read.isAuthoritySigner([signerOf.get(`0x${"20".repeat(32)}`) as Address])).toBe(false);
    // Roles are per set: none of them is an oracle.
    expect(await registry.read.oracleCount()).toBe(0n);
    expect(await registry.read.oracleMembership([low.account.address])).toEqual([false, 0n]);
  });

  it("reports oracle membership and set size in one call", async () => {
    const core = await deployCore({ params: { maxOracles: 2 } });
    const ops = [user(core, 0), user(core, 1), user(core, 2)];
    for (const [i, op] of ops.entries()) {
      await addNode(core, { operator: op, roles: ROLE_ORACLE, stake: parseEther(String(1000 + i * 100)) });
    }
    const { registry } = core;
    expect(await registry.read.oracleCount()).toBe(2n);
    expect(await registry.read.oracleMembership([ops[2]!.account.address])).toEqual([true, 2n]);
    expect(await registry.read.oracleMembership([ops[0]!.account.address])).toEqual([false, 2n]);
    expect(await registry.read.isOracleSigner([ops[0]!.account.address])).toBe(false);
    const [keys] = await registry.read.oracleSet();
    expect(keys).toHaveLength(2);
  });

  it("admits discovery nodes only with approval, stake and age", async () => {
    const core = await deployCore();
    const op = user(core, 0);
    const { registry } = core;
    const key = await addNode(core, { operator: op, roles: ROLE_DISCOVERY, stake: parseEther("1000") });
    expect(await registry.read.isEligible([key, ROLE_DISCOVERY])).toBe(false);
    await core.viem.assertions.emitWithArgs(registry.write.approveDiscovery([key, true]), registry, "DiscoveryApprovalChanged", [key, true]);
    // Approved and staked, but too young.
    expect(await registry.read.isEligible([key, ROLE_DISCOVERY])).toBe(false);
    expect(await registry.read.discoveryCount()).toBe(0n);
    await core.networkHelpers.time.increase(Number(core.params.minDiscoveryAge));
    expect(await registry.read.isEligible([key, ROLE_DISCOVERY])).toBe(true);
    expect(await registry.read.isDiscoverySigner([op.account.address])).toBe(true);
    const [keys, signers] = await registry.read.discoverySet();
    expect(keys).toEqual([key]);
    expect(signers[0]?.toLowerCase()).toBe(op.account.address.toLowerCase());
    await registry.write.approveDiscovery([key, false]);
    expect(await registry.read.isDiscoverySigner([op.account.address])).toBe(false);
    expect(await registry.read.discoveryCount()).toBe(0n);
  });
});

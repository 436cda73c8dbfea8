/**
 * NodeRegistry: registration with the signer's consent, staking, unbonding,
 * slashing, governance, and the maintained authority / oracle / discovery sets
 * (ordering, ties by registration order, caps and eviction, activation delay,
 * approval, agreement of the signer predicates with the sets).
 */
import { describe, expect, it } from "vitest";
import { keccak256, parseEther, toHex, zeroAddress, type Address, type Hex } from "viem";
import { nodeConsentDigest } from "../../node/src/chain/consent.js";
import { permitSignatureParts, permitTypedData } from "../../node/src/chain/permit.js";
import {
  addNode,
  approve,
  consentOf,
  deployCore,
  KEY_PROOF,
  nodeKeyOf,
  registerCall,
  walletSigner,
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
    const consent = await consentOf(core, walletSigner(core, signer), key, op.account.address);
    const digest = nodeConsentDigest({
      chainId: await core.publicClient.getChainId(),
      registry: core.registry.address,
      consent: { nodeKey: key, operator: op.account.address, signer, nonce: 0n, deadline: consent.deadline },
    });
    expect(await core.registry.read.consentDigest([key, op.account.address, signer, 0n, consent.deadline])).toBe(digest);
    const tx = core.registry.write.registerNode([key, signer, ROLE_ONION | ROLE_ORACLE, consent.deadline, consent.signature, KEY_PROOF], { account: op.account });
    await core.viem.assertions.emitWithArgs(tx, core.registry, "NodeRegistered", [key, op.account.address, signer, ROLE_ONION | ROLE_ORACLE, 1]);
    const node = await core.registry.read.getNode([key]);
    expect(node.operator.toLowerCase()).toBe(op.account.address.toLowerCase());
    expect(node.signer.toLowerCase()).toBe(signer.toLowerCase());
    expect(node.roles).toBe(ROLE_ONION | ROLE_ORACLE);
    expect(node.seq).toBe(1);
    expect(node.bonded).toBe(0n);
    expect(node.registeredAt).toBe(BigInt(await core.networkHelpers.time.latest()));
    expect(await core.registry.read.nodeKeyOfSigner([signer])).toBe(key);
    expect(await core.registry.read.nonces([signer])).toBe(1n);
    expect(await core.registry.read.nodeCount()).toBe(1n);
    const page = await core.registry.read.nodesPage([0n, 10n]);
    expect(page.map((n) => n.nodeKey)).toEqual([key]);
    expect(await core.registry.read.nodesPage([1n, 10n])).toEqual([]);
  });

  it("publishes the node key's proof over the consent digest", async () => {
    const core = await deployCore();
    const op = user(core, 0);
    const key = nodeKeyOf("p");
    const { tx } = await registerCall(core, { operator: op, signer: op.account.address, nodeKey: key, roles: ROLE_ONION });
    await core.viem.assertions.emitWithArgs(tx, core.registry, "NodeKeyProof", [key, false, (d: Hex) => d.length === 66, KEY_PROOF]);
  });

  it("rejects bad registrations with specific errors", async () => {
    const core = await deployCore();
    const opWallet = user(core, 0);
    const signer = user(core, 1).account.address;
    const { registry } = core;
    const a = core.viem.assertions;
    const reg = (nodeKey: Hex, roles: number, who: Address = signer) => registerCall(core, { operator: opWallet, signer: who, nodeKey, roles });
    await a.revertWithCustomError((await reg(`0x${"00".repeat(32)}`, 1)).tx, registry, "ZeroNodeKey");
    await a.revertWithCustomErrorWithArgs((await reg(nodeKeyOf("x"), 0)).tx, registry, "InvalidRoles", [0]);
    await a.revertWithCustomErrorWithArgs((await reg(nodeKeyOf("x"), 16)).tx, registry, "InvalidRoles", [16]);
    const c = await consentOf(core, walletSigner(core, signer), nodeKeyOf("x"), opWallet.account.address);
    const op = { account: opWallet.account };
    await a.revertWithCustomError(registry.write.registerNode([nodeKeyOf("x"), zeroAddress, 1, c.deadline, c.signature, KEY_PROOF], op), registry, "ZeroSigner");
    await a.revertWithCustomErrorWithArgs(registry.write.registerNode([nodeKeyOf("x"), signer, 1, c.deadline, c.signature, "0x1234"], op), registry, "InvalidKeyProofLength", [2n]);
    // The consent names the operator: another operator cannot use it.
    await a.revertWithCustomErrorWithArgs(
      registry.write.registerNode([nodeKeyOf("x"), signer, 1, c.deadline, c.signature, KEY_PROOF], { account: user(core, 4).account }),
      registry,
      "InvalidSignerConsent",
      [signer],
    );
    await registry.write.registerNode([nodeKeyOf("x"), signer, 1, c.deadline, c.signature, KEY_PROOF], op);
    await a.revertWithCustomError((await reg(nodeKeyOf("x"), 1, user(core, 2).account.address)).tx, registry, "NodeAlreadyRegistered");
    await a.revertWithCustomErrorWithArgs((await reg(nodeKeyOf("y"), 1)).tx, registry, "SignerInUse", [signer, nodeKeyOf("x")]);
    const late = await consentOf(core, walletSigner(core, user(core, 2).account.address), nodeKeyOf("z"), opWallet.account.address);
    await core.networkHelpers.time.increase(3601);
    await a.revertWithCustomError(
      registry.write.registerNode([nodeKeyOf("z"), user(core, 2).account.address, 1, late.deadline, late.signature, KEY_PROOF], op),
      registry,
      "ConsentExpired",
    );
  });

  it("lets only the operator change roles and signer (with the new signer's consent), and deregister without stake", async () => {
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
    const consent = await consentOf(core, walletSigner(core, newSigner), key, op.account.address);
    await a.revertWithCustomError(registry.write.setSigner([key, newSigner, consent.deadline, consent.signature], { account: other.account }), registry, "NotOperator");
    await a.revertWithCustomError(registry.write.setSigner([key, zeroAddress, consent.deadline, consent.signature], { account: op.account }), registry, "ZeroSigner");
    await a.revertWithCustomError(registry.write.setSigner([key, op.account.address, consent.deadline, consent.signature], { account: op.account }), registry, "SignerInUse");
    // A consent of someone else does not bind a signer that never agreed.
    await a.revertWithCustomErrorWithArgs(
      registry.write.setSigner([key, user(core, 6).account.address, consent.deadline, consent.signature], { account: op.account }),
      registry,
      "InvalidSignerConsent",
      [user(core, 6).account.address],
    );
    await a.emit(registry.write.setSigner([key, newSigner, consent.deadline, consent.signature], { account: op.account }), registry, "SignerChanged");
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
    // The key and signer are free again (with a fresh consent: the used one's nonce is spent).
    await (await registerCall(core, { operator: other, signer: newSigner, nodeKey: key, roles: ROLE_ONION })).tx;
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
    await a.revertWithCustomError(registry.write.approveRole([nodeKeyOf("a"), ROLE_DISCOVERY, true], stranger), registry, "AccessControlUnauthorizedAccount");
    await a.revertWithCustomErrorWithArgs(registry.write.setParams([{ ...p, minStakeDiscovery: 0n }]), registry, "ZeroMinimumStake", [ROLE_DISCOVERY]);
    await a.revertWithCustomErrorWithArgs(registry.write.setParams([{ ...p, minStakeAuthority: 0n }]), registry, "ZeroMinimumStake", [ROLE_AUTHORITY]);
    await a.revertWithCustomErrorWithArgs(registry.write.setParams([{ ...p, minStakeOracle: 0n }]), registry, "ZeroMinimumStake", [ROLE_ORACLE]);
    await a.revertWithCustomErrorWithArgs(registry.write.setParams([{ ...p, maxOracles: 0 }]), registry, "InvalidSetCap", [0]);
    await a.revertWithCustomErrorWithArgs(registry.write.setParams([{ ...p, maxAuthorities: 65 }]), registry, "InvalidSetCap", [65]);
    await a.revertWithCustomErrorWithArgs(registry.write.setParams([{ ...p, unbondingDelay: 0n }]), registry, "UnbondingDelayTooShort", [0n, core.disputeWindow]);
    await a.revertWithCustomErrorWithArgs(registry.write.setParams([{ ...p, approvalRoles: 1 }]), registry, "InvalidApprovalRoles", [1]);
    await a.revertWithCustomErrorWithArgs(registry.write.setParams([{ ...p, attestationBps: 10_001 }]), registry, "InvalidAttestationThreshold", [1, 10_001, 5]);
    await a.emit(registry.write.setParams([{ ...p, maxOracles: 9 }]), registry, "ParamsChanged");
    expect((await registry.read.params()).maxOracles).toBe(9);
    await a.revertWithCustomError(registry.write.setSlashRecipient([zeroAddress]), registry, "ZeroSlashRecipient");
    await a.emitWithArgs(registry.write.setSlashRecipient([stranger.account.address]), registry, "SlashRecipientChanged", [
      core.rewards.address,
      stranger.account.address,
    ]);
    await a.revertWithCustomError(registry.write.approveRole([nodeKeyOf("none"), ROLE_DISCOVERY, true]), registry, "UnknownNode");
    await a.revertWithCustomErrorWithArgs(registry.write.approveRole([nodeKeyOf("none"), ROLE_ONION, true]), registry, "InvalidRole", [ROLE_ONION]);
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
    // Raised: swept out at once.
    await registry.write.setParams([{ ...core.params, minStakeOracle: parseEther("900") }]);
    expect(await registry.read.isOracleSigner([op.account.address])).toBe(false);
    expect(await registry.read.oracleCount()).toBe(0n);
    expect((await registry.read.oracleSet())[0]).toEqual([]);
    await core.viem.assertions.revertWithCustomError(registry.write.refreshCandidacy([[nodeKeyOf("none")]]), registry, "UnknownNode");
  });
});

describe("NodeRegistry: maintained sets", () => {
  it("orders by stake descending, ties by registration order, capped with eviction; predicates agree", async () => {
    const core = await deployCore({ params: { maxAuthorities: 3 } });
    const { registry } = core;
    // Registered in this order; keys chosen so that key order and registration order disagree.
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
    // 0x20 registered before 0x10: it wins the tie, whatever the keys.
    const expected: Hex[] = [`0x${"30".repeat(32)}`, `0x${"20".repeat(32)}`, `0x${"10".repeat(32)}`];
    expect(keys).toEqual(expected);
    expect(signers.map((x) => x.toLowerCase())).toEqual(expected.map((k) => signerOf.get(k)?.toLowerCase()));
    expect(await registry.read.authorityCount()).toBe(3n);
    for (const s of specs) {
      const member = expected.includes(s.key);
      expect(await registry.read.isAuthoritySigner([signerOf.get(s.key) as Address])).toBe(member);
      expect(await registry.read.isMember([s.key, ROLE_AUTHORITY])).toBe(member);
    }
    // Qualified but below the full set's lowest member: eligible, not a member; activate names why.
    expect(await registry.read.isEligible([`0x${"05".repeat(32)}`, ROLE_AUTHORITY])).toBe(true);
    await core.viem.assertions.revertWithCustomErrorWithArgs(registry.write.activate([`0x${"05".repeat(32)}`, ROLE_AUTHORITY]), registry, "DoesNotOutrank", [
      `0x${"05".repeat(32)}`,
      ROLE_AUTHORITY,
      `0x${"10".repeat(32)}`,
    ]);
    expect(await registry.read.isEligible([`0x${"40".repeat(32)}`, ROLE_AUTHORITY])).toBe(false);
    await core.viem.assertions.revertWithCustomErrorWithArgs(registry.write.activate([`0x${"40".repeat(32)}`, ROLE_AUTHORITY]), registry, "NotQualified", [
      `0x${"40".repeat(32)}`,
      ROLE_AUTHORITY,
    ]);
    expect(await registry.read.isEligible([`0x${"40".repeat(32)}`, ROLE_ONION])).toBe(true);
    expect(await registry.read.isAuthoritySigner([zeroAddress])).toBe(false);

    // The lowest node tops up past the tie and evicts the lowest member (0x10, registered after 0x20).
    const low = user(core, 3);
    await core.token.write.approve([registry.address, parseEther("1500")], { account: low.account });
    await core.viem.assertions.emitWithArgs(registry.write.stake([`0x${"05".repeat(32)}`, parseEther("1500")], { account: low.account }), registry, "Evicted", [
      `0x${"10".repeat(32)}`,
      ROLE_AUTHORITY,
      `0x${"05".repeat(32)}`,
    ]);
    const [keys2] = await registry.read.authoritySet();
    expect(keys2).toEqual([`0x${"30".repeat(32)}`, `0x${"05".repeat(32)}`, `0x${"20".repeat(32)}`]);
    expect(await registry.read.isAuthoritySigner([low.account.address])).toBe(true);
    expect(await registry.read.isAuthoritySigner([signerOf.get(`0x${"10".repeat(32)}`) as Address])).toBe(false);
    // A member that unstakes below the minimum leaves; the freed seat is taken by activate.
    await registry.write.requestUnstake([`0x${"30".repeat(32)}`, parseEther("4500")], { account: user(core, 2).account });
    expect(await registry.read.authorityCount()).toBe(2n);
    await registry.write.activate([`0x${"10".repeat(32)}`, ROLE_AUTHORITY], { account: user(core, 9).account });
    expect((await registry.read.authoritySet())[0]).toEqual([`0x${"05".repeat(32)}`, `0x${"20".repeat(32)}`, `0x${"10".repeat(32)}`]);
    // Lowering the cap evicts the lowest.
    await registry.write.setParams([{ ...core.params, maxAuthorities: 1 }]);
    expect((await registry.read.authoritySet())[0]).toEqual([`0x${"05".repeat(32)}`]);
    // Roles are per set: none of them is an oracle.
    expect(await registry.read.oracleCount()).toBe(0n);
    expect(await registry.read.oracleNodeOf([low.account.address])).toEqual([`0x${"00".repeat(32)}`, 0n]);
  });

  it("reports a signer's oracle node and join time, and counts continuous members", async () => {
    const core = await deployCore({ params: { maxOracles: 2 } });
    const ops = [user(core, 0), user(core, 1), user(core, 2)];
    const keys: Hex[] = [];
    for (const [i, op] of ops.entries()) {
      keys.push(await addNode(core, { operator: op, roles: ROLE_ORACLE, stake: parseEther(String(1000 + i * 100)) }));
    }
    const { registry } = core;
    expect(await registry.read.oracleCount()).toBe(2n);
    const [key2, since2] = await registry.read.oracleNodeOf([ops[2]!.account.address]);
    expect(key2).toBe(keys[2]);
    expect(since2).toBe((await registry.read.getNode([keys[2]!])).oracleSince);
    expect(await registry.read.oracleNodeOf([ops[0]!.account.address])).toEqual([`0x${"00".repeat(32)}`, 0n]);
    expect(await registry.read.isOracleSigner([ops[0]!.account.address])).toBe(false);
    const now = BigInt(await core.networkHelpers.time.latest());
    expect(await registry.read.countOraclesMemberSince([keys, now])).toBe(2n);
    const since1 = (await registry.read.getNode([keys[1]!])).oracleSince;
    expect(await registry.read.countOraclesMemberSince([keys, since1])).toBe(1n);
    expect(await registry.read.countOraclesMemberSince([keys, since1 - 1n])).toBe(0n);
    const [setKeys] = await registry.read.oracleSet();
    expect(setKeys).toHaveLength(2);
  });

  it("admits authority and oracle nodes only after approval (where required) and the activation delay", async () => {
    const delay = 3600n;
    const core = await deployCore({ params: { activationDelay: delay, approvalRoles: ROLE_AUTHORITY | ROLE_DISCOVERY } });
    const { registry } = core;
    const a = core.viem.assertions;
    const op = user(core, 0);
    const key = await addNode(core, { operator: op, roles: ROLE_AUTHORITY | ROLE_ORACLE, stake: parseEther("1000") });
    // Oracle needs no approval here: qualified at stake, pending for the delay.
    const node = await registry.read.getNode([key]);
    expect(node.oracleSince).toBe(BigInt(await core.networkHelpers.time.latest()));
    expect(node.authoritySince).toBe(0n);
    expect(await registry.read.isOracleSigner([op.account.address])).toBe(false);
    await a.revertWithCustomErrorWithArgs(registry.write.activate([key, ROLE_ORACLE]), registry, "ActivationPending", [key, ROLE_ORACLE, node.oracleSince + delay]);
    await a.revertWithCustomErrorWithArgs(registry.write.activate([key, ROLE_AUTHORITY]), registry, "NotQualified", [key, ROLE_AUTHORITY]);
    await core.networkHelpers.time.increase(Number(delay));
    await a.emitWithArgs(registry.write.activate([key, ROLE_ORACLE], { account: user(core, 5).account }), registry, "SetMembershipChanged", [key, ROLE_ORACLE, true]);
    // The authority delay counts from approval (its qualification), not from the stake.
    await a.emitWithArgs(registry.write.approveRole([key, ROLE_AUTHORITY, true]), registry, "RoleApprovalChanged", [key, ROLE_AUTHORITY, true]);
    await a.revertWithCustomError(registry.write.activate([key, ROLE_AUTHORITY]), registry, "ActivationPending");
    await core.networkHelpers.time.increase(Number(delay));
    await registry.write.activate([key, ROLE_AUTHORITY]);
    expect(await registry.read.isAuthoritySigner([op.account.address])).toBe(true);
    await a.revertWithCustomErrorWithArgs(registry.write.activate([key, ROLE_AUTHORITY]), registry, "AlreadyMember", [key, ROLE_AUTHORITY]);
    // Revoking approval removes it at once.
    await registry.write.approveRole([key, ROLE_AUTHORITY, false]);
    expect(await registry.read.isAuthoritySigner([op.account.address])).toBe(false);
    expect(await registry.read.isOracleSigner([op.account.address])).toBe(true);
  });

  it("admits discovery nodes only with approval, stake and age", async () => {
    const core = await deployCore();
    const op = user(core, 0);
    const { registry } = core;
    const key = await addNode(core, { operator: op, roles: ROLE_DISCOVERY, stake: parseEther("1000") });
    expect(await registry.read.isEligible([key, ROLE_DISCOVERY])).toBe(false);
    await approve(core, key, ROLE_DISCOVERY);
    // Approved and staked, but too young.
    expect(await registry.read.isEligible([key, ROLE_DISCOVERY])).toBe(false);
    expect(await registry.read.discoveryCount()).toBe(0n);
    await core.networkHelpers.time.increase(Number(core.params.minDiscoveryAge));
    expect(await registry.read.isEligible([key, ROLE_DISCOVERY])).toBe(true);
    await registry.write.activate([key, ROLE_DISCOVERY], { account: user(core, 3).account });
    expect(await registry.read.isDiscoverySigner([op.account.address])).toBe(true);
    const [keys, signers] = await registry.read.discoverySet();
    expect(keys).toEqual([key]);
    expect(signers[0]?.toLowerCase()).toBe(op.account.address.toLowerCase());
    await approve(core, key, ROLE_DISCOVERY, false);
    expect(await registry.read.isDiscoverySigner([op.account.address])).toBe(false);
    expect(await registry.read.discoveryCount()).toBe(0n);
  });
});

describe("NodeRegistry: reclaim", () => {
  it("hands a node key to its holder on authority attestations and releases the former operator's stake", async () => {
    const core = await deployCore();
    const { registry } = core;
    const a = core.viem.assertions;
    // Two authorities (floor 1, bps 0: one attestation).
    const authorityOp = user(core, 7);
    await addNode(core, { operator: authorityOp, roles: ROLE_AUTHORITY, stake: parseEther("1000") });
    const squatter = user(core, 0);
    const holder = user(core, 1);
    const key = keccak256(toHex("victim-node-key"));
    await addNode(core, { operator: squatter, roles: ROLE_ORACLE, stake: parseEther("1500"), nodeKey: key });
    expect(await registry.read.isOracleSigner([squatter.account.address])).toBe(true);
    const seq = (await registry.read.getNode([key])).seq;

    const holderSigner = walletSigner(core, user(core, 2).account.address);
    const consent = await consentOf(core, holderSigner, key, holder.account.address);
    const chainId = await core.publicClient.getChainId();
    const digest = nodeConsentDigest({
      chainId,
      registry: registry.address,
      consent: { nodeKey: key, operator: holder.account.address, signer: holderSigner.address, nonce: 0n, deadline: consent.deadline },
    });
    const reclaimDigest = await registry.read.reclaimDigest([key, seq, digest]);
    const attestation = await authorityOp.signTypedData({
      account: authorityOp.account,
      domain: { name: "PSP NodeRegistry", version: "1", chainId, verifyingContract: registry.address },
      types: { NodeReclaim: [{ name: "nodeKey", type: "bytes32" }, { name: "contestedSeq", type: "uint32" }, { name: "consentDigest", type: "bytes32" }] },
      primaryType: "NodeReclaim",
      message: { nodeKey: key, contestedSeq: seq, consentDigest: digest },
    });
    expect(reclaimDigest.length).toBe(66);
    const reclaim = (atts: Hex[], account = holder.account) =>
      registry.write.reclaimNode([key, holderSigner.address, ROLE_ONION, consent.deadline, consent.signature, KEY_PROOF, atts], { account });
    await a.revertWithCustomErrorWithArgs(reclaim([]), registry, "BelowThreshold", [0n, 1n]);
    // Signed by someone who is not an authority.
    const forged = await squatter.signTypedData({
      account: squatter.account,
      domain: { name: "PSP NodeRegistry", version: "1", chainId, verifyingContract: registry.address },
      types: { NodeReclaim: [{ name: "nodeKey", type: "bytes32" }, { name: "contestedSeq", type: "uint32" }, { name: "consentDigest", type: "bytes32" }] },
      primaryType: "NodeReclaim",
      message: { nodeKey: key, contestedSeq: seq, consentDigest: digest },
    });
    await a.revertWithCustomErrorWithArgs(reclaim([forged]), registry, "NotAuthority", [squatter.account.address]);
    await a.emitWithArgs(reclaim([attestation]), registry, "NodeReclaimed", [
      key,
      squatter.account.address,
      holder.account.address,
      parseEther("1500"),
      (t: bigint) => t > 0n,
    ]);
    const node = await registry.read.getNode([key]);
    expect(node.operator.toLowerCase()).toBe(holder.account.address.toLowerCase());
    expect(node.signer.toLowerCase()).toBe(holderSigner.address.toLowerCase());
    expect([node.bonded, node.unbonding, node.seq]).toEqual([0n, 0n, seq + 1]);
    expect(await registry.read.isOracleSigner([squatter.account.address])).toBe(false);
    await a.revertWithCustomError(registry.write.stake([key, 1n], { account: squatter.account }), registry, "NotOperator");
    // The squatter's stake waits out the unbonding delay (slashable meanwhile), then goes back to it.
    await a.revertWithCustomError(registry.write.withdrawReleased({ account: squatter.account }), registry, "UnbondingNotMatured");
    await registry.write.slashReleased([squatter.account.address, parseEther("500"), nodeKeyOf("evidence")]);
    await core.networkHelpers.time.increase(Number(core.params.unbondingDelay));
    const before = await balanceOf(core, squatter.account.address);
    await registry.write.withdrawReleased({ account: squatter.account });
    expect(await balanceOf(core, squatter.account.address)).toBe(before + parseEther("1000"));
    await expectRegistrySolvent(core);
    // The attestation named the contested registration: it cannot be replayed against the new one.
    const again = await consentOf(core, walletSigner(core, user(core, 3).account.address), key, holder.account.address);
    await a.revertWithCustomError(
      registry.write.reclaimNode([key, user(core, 3).account.address, ROLE_ONION, again.deadline, again.signature, KEY_PROOF, [attestation]], { account: holder.account }),
      registry,
      "NotAuthority",
    );
  });
});

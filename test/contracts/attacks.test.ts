/**
 * Regression tests for the attacks of the contracts' security review (issue 13).
 * Each test performs the attack against Hardhat, step by step as an attacker
 * would, and shows where it is now refused (a custom error) or comes to nothing.
 */
import { describe, expect, it } from "vitest";
import { bytesToHex, encodeFunctionData, getAddress, keccak256, parseEther, toHex, zeroHash, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { REGISTRATION_POLICY } from "../../node/src/chain/attestation.js";
import { attestIdentityReclaim, latestKeyConsent, signReclaimProof, type IdentityReclaimContext } from "../../node/src/chain/reclaim.js";
import { signRegistrationProof } from "../../node/src/chain/registration.js";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import {
  addNode,
  addOracles,
  approve,
  consentOf,
  deployCore,
  endEpoch,
  KEY_PROOF,
  nodeKeyOf,
  registerCall,
  ROLE_AUTHORITY,
  ROLE_ONION,
  ROLE_ORACLE,
  walletSigner,
  type CoreFixture,
  type TypedSigner,
  type WalletClient,
} from "./helpers/core.js";
import { buildRewardTree, buildTree, receiptLeaf } from "./helpers/merkle.js";
import { attest, createApplication, deployPki, makeRegistration, registerIdentity, type PkiFixture } from "./helpers/pki.js";

const Status = { Open: 0, Voting: 1, Disputable: 2, Final: 3 } as const;

/** A fresh local signer (an attacker can make as many as it likes). */
function localSigner(label: string): TypedSigner {
  const account = privateKeyToAccount(keccak256(toHex(`attack-signer-${label}`)));
  return { address: account.address, signTypedData: (typed) => account.signTypedData(typed as never) };
}

async function fund(core: CoreFixture, amount: bigint): Promise<void> {
  await core.token.write.approve([core.rewards.address, amount]);
  await core.rewards.write.fund([amount]);
}

async function rotateSigner(core: CoreFixture, operator: WalletClient, nodeKey: Hex, signer: TypedSigner): Promise<void> {
  const consent = await consentOf(core, signer, nodeKey, operator.account.address);
  await core.registry.write.setSigner([nodeKey, signer.address, consent.deadline, consent.signature], { account: operator.account });
}

describe("attack 1: one oracle reaches quorum alone by rotating its signer", () => {
  it("is refused: votes count per node, a rotated signer is the same voice", async () => {
    const core = await deployCore();
    const oracles = await addOracles(core, 3); // quorum ceil(3 * 0.6667) = 3
    const attacker = oracles[0]!;
    const key = await core.registry.read.nodeKeyOfSigner([attacker.account.address]);
    const tree = buildRewardTree([{ account: attacker.account.address, amount: parseEther("1000") }]);
    await fund(core, tree.total);
    await endEpoch(core, 0n);
    await core.rewards.write.submitRoot([0n, tree.root, tree.total], { account: attacker.account });
    // Rotate to a fresh signer (the attacker consents to itself) and vote again.
    const next = localSigner("rotated-1");
    await rotateSigner(core, attacker, key, next);
    await core.connection.networkHelpers.setBalance(next.address, parseEther("1"));
    const rotated = privateKeyToAccount(keccak256(toHex("attack-signer-rotated-1")));
    await core.viem.assertions.revertWithCustomErrorWithArgs(
      core.rewards.write.submitRoot([0n, tree.root, tree.total], { account: rotated }),
      core.rewards,
      "AlreadyVoted",
      [key],
    );
    expect(await core.rewards.read.epochStatus([0n])).toBe(Status.Voting);
    expect(await core.rewards.read.proposalVotes([0n, tree.root, tree.total])).toBe(1n);
  });
});

describe("attack 2: an over-allocating root drains what the pool owes others", () => {
  it("is refused: all claims together never pass the newest final root's cumulative total", async () => {
    const core = await deployCore();
    const [oracle] = await addOracles(core, 1);
    const victim = core.users[10]!.account.address;
    const thief = core.users[11]!.account.address;
    const honest = buildRewardTree([{ account: victim, amount: 300n }]);
    // The next root keeps the victim's 300 and gives the thief 1,000, but declares a cumulative total of 400.
    const greedy = buildRewardTree([
      { account: victim, amount: 300n },
      { account: thief, amount: 1000n },
    ]);
    await fund(core, 1000n);
    await endEpoch(core, 1n);
    await core.rewards.write.submitRoot([0n, honest.root, honest.total], { account: oracle!.account });
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    await core.rewards.write.submitRoot([1n, greedy.root, 400n], { account: oracle!.account });
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    await core.viem.assertions.revertWithCustomErrorWithArgs(
      core.rewards.write.claim([1n, thief, 1000n, greedy.proof(thief)]),
      core.rewards,
      "ClaimExceedsRootTotal",
      [1n, 1000n, 400n],
    );
    // The victim is still paid in full; what is left for the thief is the declared increment.
    await core.rewards.write.claim([1n, victim, 300n, greedy.proof(victim)]);
    await core.viem.assertions.revertWithCustomErrorWithArgs(
      core.rewards.write.claim([1n, thief, 1000n, greedy.proof(thief)]),
      core.rewards,
      "ClaimExceedsRootTotal",
      [1n, 1000n, 100n],
    );
    expect([await core.rewards.read.totalReserved(), await core.rewards.read.unallocated()]).toEqual([100n, 600n]);
  });
});
describe("attack 3: voters leave to shrink the quorum", () => {
  it("is refused: the quorum is fixed when the round starts and only current continuous members count", async () => {
    const core = await deployCore({ params: { maxOracles: 6 } });
    const oracles = await addOracles(core, 6); // quorum at round start: ceil(6 * 0.6667) = 5
    const coalition = oracles.slice(0, 3);
    const bad = buildRewardTree([{ account: coalition[0]!.account.address, amount: parseEther("500") }]);
    await fund(core, bad.total);
    await endEpoch(core, 0n);
    // Two coalition members vote, then leave (unstake): under a set-size quorum, ceil(4 * 0.6667) = 3 of the remaining 4 would do.
    for (const o of coalition.slice(0, 2)) {
      await core.rewards.write.submitRoot([0n, bad.root, bad.total], { account: o.account });
      const key = await core.registry.read.nodeKeyOfSigner([o.account.address]);
      await core.registry.write.requestUnstake([key, core.params.minStakeOracle], { account: o.account });
    }
    expect(await core.registry.read.oracleCount()).toBe(4n);
    expect((await core.rewards.read.currentRound([0n])).needed).toBe(5);
    await core.rewards.write.submitRoot([0n, bad.root, bad.total], { account: coalition[2]!.account });
    expect(await core.rewards.read.epochStatus([0n])).toBe(Status.Voting);
    // A leaver that comes back counts from its return, after the round started: no vote this round.
    const back = coalition[0]!;
    const backKey = await core.registry.read.nodeKeyOfSigner([back.account.address]);
    await core.token.write.approve([core.registry.address, core.params.minStakeOracle], { account: back.account });
    await core.registry.write.stake([backKey, core.params.minStakeOracle], { account: back.account });
    expect(await core.registry.read.isOracleSigner([back.account.address])).toBe(true);
    // A fresh coalition node that joins now cannot vote in this round either.
    const fresh = core.users[8]!;
    const freshKey = await addNode(core, { operator: fresh, roles: ROLE_ORACLE, stake: core.params.minStakeOracle, label: "fresh" });
    expect(await core.registry.read.isOracleSigner([fresh.account.address])).toBe(true);
    const joined = (await core.registry.read.getNode([freshKey])).oracleSince;
    const round = await core.rewards.read.currentRound([0n]);
    await core.viem.assertions.revertWithCustomErrorWithArgs(
      core.rewards.write.submitRoot([0n, bad.root, bad.total], { account: fresh.account }),
      core.rewards,
      "JoinedAfterRoundStart",
      [freshKey, joined, round.startedAt],
    );
    const greedy = coalition[0]!.account.address;
    await core.viem.assertions.revertWithCustomError(core.rewards.write.claim([0n, greedy, bad.total, bad.proof(greedy)]), core.rewards, "RootNotFinal");
  });
});

describe("attack 4: stake alone buys the PKI, instantly, and squats identities for good", () => {
  it("is refused: authority seats need approval and an activation delay, and the quorum is a share of the set", async () => {
    const delay = 7n * 86400n;
    const core = await deployCore({
      params: { activationDelay: delay, approvalRoles: ROLE_AUTHORITY | 2, attestationFloor: 2, attestationBps: 6667, maxAuthorities: 9 },
    });
    const identities = await core.viem.deployContract("IdentityRegistry", [core.registry.address]);
    // Two honest authorities, approved and activated.
    for (const i of [0, 1]) {
      const key = await addNode(core, { operator: core.users[i]!, roles: ROLE_AUTHORITY, stake: core.params.minStakeAuthority, label: `honest-${i}` });
      await approve(core, key, ROLE_AUTHORITY);
    }
    await core.networkHelpers.time.increase(Number(delay));
    for (const i of [0, 1]) await core.registry.write.activate([nodeKeyOf(`honest-${i}`), ROLE_AUTHORITY]);
    expect(await core.registry.read.authorityCount()).toBe(2n);
    // The attacker bonds the minimum on three nodes while seats are free.
    const attackers = [2, 3, 4].map((i) => core.users[i]!);
    const keys: Hex[] = [];
    for (const [i, a] of attackers.entries()) {
      keys.push(await addNode(core, { operator: a, roles: ROLE_AUTHORITY, stake: core.params.minStakeAuthority, label: `attacker-${i}` }));
    }
    expect(await core.registry.read.authorityCount()).toBe(2n);
    await core.viem.assertions.revertWithCustomErrorWithArgs(core.registry.write.activate([keys[0]!, ROLE_AUTHORITY]), core.registry, "NotQualified", [keys[0]!, ROLE_AUTHORITY]);
    // Even were it approved, its seat waits out the delay in public view.
    await approve(core, keys[0]!, ROLE_AUTHORITY);
    await core.viem.assertions.revertWithCustomError(core.registry.write.activate([keys[0]!, ROLE_AUTHORITY]), core.registry, "ActivationPending");
    // Its attestations count for nothing meanwhile.
    await identities.write.registerNamespace(["acme"], { account: core.users[9]!.account });
    await identities.write.registerApplication(["acme", "app", REGISTRATION_POLICY.open], { account: core.users[9]!.account });
    const now = BigInt(await core.networkHelpers.time.latest());
    const r = { owner: attackers[0]!.account.address, namespace: "acme", application: "app", kind: 0, key: keccak256(toHex("victim-identity")), deadline: now + 3600n };
    const digest = await identities.read.attestationDigest([r]);
    const chainId = await core.publicClient.getChainId();
    const sigs = await Promise.all(
      attackers.map((a) => a.signTypedData({ account: a.account, domain: { name: "PSP IdentityRegistry", version: "1", chainId, verifyingContract: identities.address }, types: { IdentityAttestation: [{ name: "owner", type: "address" }, { name: "namespace", type: "string" }, { name: "application", type: "string" }, { name: "kind", type: "uint8" }, { name: "key", type: "bytes32" }, { name: "deadline", type: "uint64" }] }, primaryType: "IdentityAttestation", message: r })),
    );
    expect(digest.length).toBe(66);
    const sorted = attackers.map((a, i) => ({ a: a.account.address, s: sigs[i]! })).sort((x, y) => (BigInt(x.a) < BigInt(y.a) ? -1 : 1)).map((x) => x.s);
    await core.viem.assertions.revertWithCustomError(identities.write.registerIdentity([r, KEY_PROOF, sorted], { account: attackers[0]!.account }), identities, "NotAuthority");
    // The quorum is a share of the current set with a floor: 2 of 2 now, 2 of 3 with one more seat, never "any 2".
    expect(await core.registry.read.authorityQuorum()).toBe(2n);
  });

  it("an identity registered without its key's consent goes back to the key's holder; a consented one never does", async () => {
    const f: PkiFixture = await deployPki({ authorityCount: 3, threshold: 2 });
    const [appOwner, victim, mallory] = f.users;
    await createApplication(f, appOwner!, "peerstream", "client");
    const victimKeys = generateEd25519KeyPair();
    const key = bytesToHex(victimKeys.publicKey);
    // Two authorities collude: they attest a registration of the victim's key to mallory, with no valid proof.
    const r = await makeRegistration(f, { owner: mallory!.account.address, key });
    const id = await registerIdentity(f, r, mallory!, f.authorities.slice(0, 2).map((a) => a.signer));
    await f.identities.write.revokeIdentity([id], { account: mallory!.account }); // and lock the key out "forever"
    // The victim proves possession; honest authorities check the published consent and the reclaim proof.
    const deadline = BigInt(await f.networkHelpers.time.latest()) + 3600n;
    const ctx: IdentityReclaimContext = { chainId: f.chainId, registry: f.identities.address, reclaim: { identityId: id, contestedReclaims: 0, newOwner: victim!.account.address, deadline } };
    const proof = bytesToHex(signReclaimProof(victimKeys.secretKey, ctx));
    const contested = await latestKeyConsent(f.publicClient, f.identities.address, id);
    expect(contested).toMatchObject({ kind: "registration", proof: KEY_PROOF });
    const atts = await Promise.all(f.authorities.slice(1).map((a) => attestIdentityReclaim(a.signer, { ctx, key, reclaimProof: proof, contested: contested! })));
    const ordered = f.authorities.slice(1).map((a, i) => ({ a: a.signer.address, s: atts[i]! })).sort((x, y) => (BigInt(x.a) < BigInt(y.a) ? -1 : 1)).map((x) => x.s);
    await f.viem.assertions.emitWithArgs(
      f.identities.write.reclaimIdentity([id, victim!.account.address, deadline, proof, ordered], { account: victim!.account }),
      f.identities,
      "IdentityReclaimed",
      [id, mallory!.account.address, victim!.account.address],
    );
    expect(await f.identities.read.isActive([id])).toBe(true);
    await f.viem.assertions.revertWithCustomError(f.identities.write.transferIdentity([id, mallory!.account.address], { account: mallory!.account }), f.identities, "NotIdentityOwner");
    // The same attestations cannot be replayed (they name the contested reclaim count).
    await f.viem.assertions.revertWithCustomError(
      f.identities.write.reclaimIdentity([id, victim!.account.address, deadline, proof, ordered], { account: victim!.account }),
      f.identities,
      "NotAuthority",
    );
    // Now the identity's consent verifies: authorities refuse any further reclaim, even by a thief of the key.
    const now = await latestKeyConsent(f.publicClient, f.identities.address, id);
    const again: IdentityReclaimContext = { ...ctx, reclaim: { ...ctx.reclaim, contestedReclaims: 1, newOwner: mallory!.account.address } };
    await expect(
      attestIdentityReclaim(f.authorities[0]!.signer, { ctx: again, key, reclaimProof: bytesToHex(signReclaimProof(victimKeys.secretKey, again)), contested: now! }),
    ).rejects.toMatchObject({ kind: "reclaim-refused" });
    // A legitimately registered identity (valid proof) is refused the same way.
    const ownKeys = generateEd25519KeyPair();
    const own = await makeRegistration(f, { owner: victim!.account.address, key: bytesToHex(ownKeys.publicKey) });
    const ownProof = bytesToHex(signRegistrationProof(ownKeys.secretKey, { chainId: f.chainId, registry: f.identities.address, registration: own }));
    await f.identities.write.registerIdentity([own, ownProof, await attest(f.authorities.map((a) => a.signer), { chainId: f.chainId, registry: f.identities.address, registration: own })], {
      account: victim!.account,
    });
    const ownId = await f.identities.read.identityIdOf([own.namespace, own.application, own.kind, own.key]);
    const steal: IdentityReclaimContext = { chainId: f.chainId, registry: f.identities.address, reclaim: { identityId: ownId, contestedReclaims: 0, newOwner: mallory!.account.address, deadline } };
    await expect(
      attestIdentityReclaim(f.authorities[0]!.signer, {
        ctx: steal,
        key: own.key,
        reclaimProof: bytesToHex(signReclaimProof(ownKeys.secretKey, steal)),
        contested: (await latestKeyConsent(f.publicClient, f.identities.address, ownId))!,
      }),
    ).rejects.toMatchObject({ kind: "reclaim-refused" });
  });
});

describe("attack 5: gas grows with every candidate", () => {
  it("is gone: submitRoot, commitBatch and attestation checks cost the same with many waiting candidates", async () => {
    const core = await deployCore({ params: { maxOracles: 3, maxAuthorities: 3, attestationFloor: 1 } });
    const oracles = await addOracles(core, 3, core.params.minStakeOracle * 2n);
    const gas = async (tx: Promise<Hex>) => (await core.publicClient.waitForTransactionReceipt({ hash: await tx })).gasUsed;
    const tree = buildRewardTree([{ account: oracles[0]!.account.address, amount: 1n }]);
    await fund(core, 10n);
    await endEpoch(core, 1n);
    await core.receipts.write.commitBatch([keccak256(toHex("b0")), 1], { account: oracles[1]!.account });
    const commitBefore = await gas(core.receipts.write.commitBatch([keccak256(toHex("b1")), 1], { account: oracles[0]!.account }));
    const voteBefore = await gas(core.rewards.write.submitRoot([0n, tree.root, 1n], { account: oracles[0]!.account }));
    const memberRead = { to: core.registry.address, data: encodeFunctionData({ abi: core.registry.abi, functionName: "isOracleSigner", args: [oracles[0]!.account.address] }) } as const;
    const checkBefore = await core.publicClient.estimateGas(memberRead);
    // Thirty minimum-stake candidates that never enter a full set.
    for (let i = 0; i < 30; i++) {
      const op = core.users[(i % 8) + 3]!;
      await addNode(core, { operator: op, signer: localSigner(`candidate-${i}`), roles: ROLE_ORACLE | ROLE_AUTHORITY, stake: core.params.minStakeOracle, label: `candidate-${i}` });
    }
    expect(await core.registry.read.oracleCount()).toBe(3n);
    const commitAfter = await gas(core.receipts.write.commitBatch([keccak256(toHex("b2")), 1], { account: oracles[0]!.account }));
    const voteAfter = await gas(core.rewards.write.submitRoot([1n, tree.root, 1n], { account: oracles[0]!.account }));
    const checkAfter = await core.publicClient.estimateGas(memberRead);
    expect(commitAfter).toBe(commitBefore);
    expect(Number(voteAfter)).toBeLessThanOrEqual(Number(voteBefore) * 1.01);
    expect(Number(voteAfter)).toBeGreaterThanOrEqual(Number(voteBefore) * 0.99);
    expect(checkAfter).toBe(checkBefore);
  });
});

describe("attack 6: squatting keys and signers, grinding ties", () => {
  it("is refused: a signer binds only with its own consent", async () => {
    const core = await deployCore();
    const victimSigner = walletSigner(core, core.users[1]!.account.address);
    const attacker = core.users[2]!;
    // The attacker front-runs a victim's registration with the victim's signer, signing the consent itself.
    const forged = await consentOf(core, localSigner("forger"), nodeKeyOf("attacker"), attacker.account.address);
    await core.viem.assertions.revertWithCustomErrorWithArgs(
      core.registry.write.registerNode([nodeKeyOf("attacker"), victimSigner.address, ROLE_ORACLE, forged.deadline, forged.signature, KEY_PROOF], { account: attacker.account }),
      core.registry,
      "InvalidSignerConsent",
      [victimSigner.address],
    );
    // A consent the victim gave its own operator is useless to anyone else.
    const victimConsent = await consentOf(core, victimSigner, nodeKeyOf("victim"), core.users[0]!.account.address);
    await core.viem.assertions.revertWithCustomError(
      core.registry.write.registerNode([nodeKeyOf("victim"), victimSigner.address, ROLE_ORACLE, victimConsent.deadline, victimConsent.signature, KEY_PROOF], { account: attacker.account }),
      core.registry,
      "InvalidSignerConsent",
    );
    // Nor can setSigner grab it.
    const own = await addNode(core, { operator: attacker, roles: ROLE_ONION, label: "own" });
    await core.viem.assertions.revertWithCustomError(
      core.registry.write.setSigner([own, victimSigner.address, victimConsent.deadline, victimConsent.signature], { account: attacker.account }),
      core.registry,
      "InvalidSignerConsent",
    );
  });

  it("is refused: a node key squatted without its proof goes back to its holder", async () => {
    const core = await deployCore();
    await addNode(core, { operator: core.users[7]!, roles: ROLE_AUTHORITY, stake: core.params.minStakeAuthority, label: "authority" });
    const key = keccak256(toHex("victim-node"));
    const squatter = core.users[0]!;
    await addNode(core, { operator: squatter, roles: ROLE_ONION, stake: parseEther("100"), nodeKey: key });
    // The victim's own registration is blocked...
    await core.viem.assertions.revertWithCustomError((await registerCall(core, { operator: core.users[1]!, signer: core.users[2]!.account.address, nodeKey: key, roles: ROLE_ONION })).tx, core.registry, "NodeAlreadyRegistered");
    // ...until it reclaims with an authority's attestation (the authority checked the squatter's published proof fails).
    const holder = core.users[1]!;
    const signer = walletSigner(core, core.users[2]!.account.address);
    const consent = await consentOf(core, signer, key, holder.account.address);
    const seq = (await core.registry.read.getNode([key])).seq;
    const consentDigest = await core.registry.read.consentDigest([key, holder.account.address, signer.address, 0n, consent.deadline]);
    const authority = core.users[7]!;
    const attestation = await authority.signTypedData({
      account: authority.account,
      domain: { name: "PSP NodeRegistry", version: "1", chainId: await core.publicClient.getChainId(), verifyingContract: core.registry.address },
      types: { NodeReclaim: [{ name: "nodeKey", type: "bytes32" }, { name: "contestedSeq", type: "uint32" }, { name: "consentDigest", type: "bytes32" }] },
      primaryType: "NodeReclaim",
      message: { nodeKey: key, contestedSeq: seq, consentDigest },
    });
    await core.registry.write.reclaimNode([key, signer.address, ROLE_ONION, consent.deadline, consent.signature, KEY_PROOF, [attestation]], { account: holder.account });
    await core.viem.assertions.revertWithCustomError(core.registry.write.setRoles([key, ROLE_ORACLE], { account: squatter.account }), core.registry, "NotOperator");
  });

  it("is refused: ties rank by registration order, which no key can grind", async () => {
    const core = await deployCore({ params: { maxOracles: 1 } });
    const honest = await addNode(core, { operator: core.users[0]!, roles: ROLE_ORACLE, stake: core.params.minStakeOracle, label: "honest" });
    const grinder: Hex = `0x${"00".repeat(31)}01`;
    await addNode(core, { operator: core.users[1]!, roles: ROLE_ORACLE, stake: core.params.minStakeOracle, nodeKey: grinder });
    await core.viem.assertions.revertWithCustomErrorWithArgs(core.registry.write.activate([grinder, ROLE_ORACLE]), core.registry, "DoesNotOutrank", [grinder, ROLE_ORACLE, honest]);
    expect((await core.registry.read.oracleSet())[0]).toEqual([honest]);
  });
});

describe("attack 7: governance edges", () => {
  it("an unbonding delay below the dispute window is refused, and a pool cannot outlast the registry's floor", async () => {
    const core = await deployCore();
    await core.viem.assertions.revertWithCustomErrorWithArgs(
      core.registry.write.setParams([{ ...core.params, unbondingDelay: 0n }]),
      core.registry,
      "UnbondingDelayTooShort",
      [0n, core.disputeWindow],
    );
    await core.viem.assertions.revertWithCustomError(
      core.viem.deployContract("BandwidthRewards", [core.token.address, core.registry.address, core.admin.account.address, 0n, 60n, core.disputeWindow + 1n, 6667]),
      core.rewards,
      "DisputeWindowTooLong",
    );
  });

  it("one oracle cannot revoke another oracle's receipts, however often it rotates its signer", async () => {
    const core = await deployCore();
    const [owner, attacker] = await addOracles(core, 3); // revocation quorum 3 of 3
    const hashes = [keccak256(toHex("r0")), keccak256(toHex("r1"))];
    const tree = buildTree(hashes.map(receiptLeaf));
    await core.receipts.write.commitBatch([tree.root, 2], { account: owner!.account });
    await core.receipts.write.revokeReceipt([1n, hashes[0]!, tree.proof(0)], { account: attacker!.account });
    expect(await core.receipts.read.isRevoked([1n, hashes[0]!])).toBe(false);
    const key = await core.registry.read.nodeKeyOfSigner([attacker!.account.address]);
    await rotateSigner(core, attacker!, key, localSigner("revoker"));
    const rotated = privateKeyToAccount(keccak256(toHex("attack-signer-revoker")));
    await core.connection.networkHelpers.setBalance(rotated.address, parseEther("1"));
    await core.viem.assertions.revertWithCustomErrorWithArgs(core.receipts.write.revokeReceipt([1n, hashes[0]!, tree.proof(0)], { account: rotated }), core.receipts, "AlreadyVoted", [key]);
    expect(await core.receipts.read.verifyReceipt([1n, hashes[0]!, tree.proof(0)])).toBe(true);
  });

  it("the attestation floor can never exceed the authority cap", async () => {
    const core = await deployCore({ params: { attestationFloor: 3 } });
    await core.viem.assertions.revertWithCustomErrorWithArgs(
      core.registry.write.setParams([{ ...core.params, maxAuthorities: 2 }]),
      core.registry,
      "InvalidAttestationThreshold",
      [3, 0, 2],
    );
  });

  it("a transferred application drops the previous owner's registrars", async () => {
    const f = await deployPki();
    const [oldOwner, newOwner, registrar] = f.users;
    const appId = await createApplication(f, oldOwner!, "acme", "shop", REGISTRATION_POLICY.restricted);
    await f.identities.write.setRegistrar([appId, registrar!.account.address, true], { account: oldOwner!.account });
    await f.identities.write.transferApplication([appId, newOwner!.account.address], { account: oldOwner!.account });
    const r = await makeRegistration(f, { owner: registrar!.account.address, namespace: "acme", application: "shop" });
    const atts = await attest(f.authorities.map((a) => a.signer), { chainId: f.chainId, registry: f.identities.address, registration: r });
    await f.viem.assertions.revertWithCustomError(f.identities.write.registerIdentity([r, KEY_PROOF, atts], { account: registrar!.account }), f.identities, "PolicyForbids");
  });

  it("governance cannot slash at once: the timelock holds the roles and waits its delay", async () => {
    const core = await deployCore();
    const victim = await addNode(core, { operator: core.users[0]!, roles: ROLE_ORACLE, stake: core.params.minStakeOracle, label: "victim" });
    const delay = 2n * 86400n;
    const admin = core.admin.account.address;
    const timelock = await core.viem.deployContract("PSPTimelock", [delay, [admin], [admin]]);
    const governance = await core.registry.read.GOVERNANCE_ROLE();
    const adminRole = await core.registry.read.DEFAULT_ADMIN_ROLE();
    await core.registry.write.grantRole([governance, timelock.address]);
    await core.registry.write.grantRole([adminRole, timelock.address]);
    await core.registry.write.renounceRole([governance, admin]);
    await core.registry.write.renounceRole([adminRole, admin]);
    await core.viem.assertions.revertWithCustomErrorWithArgs(core.registry.write.slash([victim, 1n, zeroHash]), core.registry, "NotSlasher", [admin]);
    const data = encodeFunctionData({ abi: core.registry.abi, functionName: "slash", args: [victim, core.params.minStakeOracle, zeroHash] });
    await timelock.write.schedule([core.registry.address, 0n, data, zeroHash, zeroHash, delay]);
    await core.viem.assertions.revertWithCustomError(timelock.write.execute([core.registry.address, 0n, data, zeroHash, zeroHash]), timelock, "TimelockUnexpectedOperationState");
    // In the delay the operator sees it coming; the slash lands only after it.
    await core.networkHelpers.time.increase(Number(delay));
    await timelock.write.execute([core.registry.address, 0n, data, zeroHash, zeroHash]);
    expect((await core.registry.read.getNode([victim])).bonded).toBe(0n);
  });
});

describe("attack 8: cumulative reward claims and root votes (issue 16)", () => {
  async function settled(core: CoreFixture, oracles: WalletClient[], epoch: bigint, tree: { root: Hex; total: bigint }, total = tree.total): Promise<void> {
    for (const o of oracles) await core.rewards.write.submitRoot([epoch, tree.root, total], { account: o.account });
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
  }

  it("a claim cannot be repeated, nor replayed against an older root once a newer one is final", async () => {
    const core = await deployCore();
    const oracles = await addOracles(core, 1);
    const a = core.viem.assertions;
    const [x, y] = [core.users[10]!.account.address, core.users[11]!.account.address];
    const r0 = buildRewardTree([{ account: x, amount: 100n }]);
    // The next root lowers x's amount (a correction); its total still counts the 100 x was paid.
    const r1 = buildRewardTree([
      { account: x, amount: 80n },
      { account: y, amount: 50n },
    ]);
    await fund(core, 1000n);
    await endEpoch(core, 1n);
    await settled(core, oracles, 0n, r0);
    const before = await core.token.read.balanceOf([x]);
    // A front-runner that sends x's claim only pays x.
    await a.revertWithCustomError(core.rewards.write.claim([0n, x, 60n, r0.proof(x)], { account: core.users[12]!.account }), core.rewards, "InvalidProof");
    await core.rewards.write.claim([0n, x, 100n, r0.proof(x)], { account: core.users[12]!.account });
    expect((await core.token.read.balanceOf([x])) - before).toBe(100n);
    await a.revertWithCustomErrorWithArgs(core.rewards.write.claim([0n, x, 100n, r0.proof(x)]), core.rewards, "NothingToClaim", [getAddress(x), 100n, 100n]);
    await settled(core, oracles, 1n, r1, 150n);
    await a.revertWithCustomErrorWithArgs(core.rewards.write.claim([0n, x, 100n, r0.proof(x)]), core.rewards, "RootSuperseded", [0n, 1n]);
    await a.revertWithCustomErrorWithArgs(core.rewards.write.claim([1n, x, 80n, r1.proof(x)]), core.rewards, "NothingToClaim", [getAddress(x), 80n, 100n]);
    await core.rewards.write.claim([1n, y, 50n, r1.proof(y)]);
    expect(await core.rewards.read.totalClaimed()).toBe(150n);
    expect(await core.token.read.balanceOf([core.rewards.address])).toBe(850n);
  });

  it("nobody votes an epoch that has not ended, a covered epoch, or the next root before the previous one is final", async () => {
    const core = await deployCore();
    const oracles = await addOracles(core, 3); // quorum 3 of 3
    const a = core.viem.assertions;
    const tree = buildRewardTree([{ account: core.users[10]!.account.address, amount: 10n }]);
    const later = buildRewardTree([{ account: core.users[10]!.account.address, amount: 20n }]);
    await fund(core, 100n);
    const now = await core.rewards.read.currentEpoch();
    await a.revertWithCustomError(core.rewards.write.submitRoot([now, tree.root, tree.total], { account: oracles[0]!.account }), core.rewards, "EpochNotEnded");
    await endEpoch(core, now + 2n);
    for (const o of oracles) await core.rewards.write.submitRoot([now + 1n, tree.root, tree.total], { account: o.account });
    await a.revertWithCustomError(core.rewards.write.submitRoot([now, tree.root, tree.total], { account: oracles[0]!.account }), core.rewards, "EpochCovered");
    // Even a unanimous vote waits for the dispute window, and the refused vote starts no round.
    await a.revertWithCustomError(
      core.rewards.write.submitRoot([now + 2n, later.root, later.total], { account: oracles[0]!.account }),
      core.rewards,
      "PreviousRootNotFinal",
    );
    expect((await core.rewards.read.currentRound([now + 2n])).startedAt).toBe(0n);
    // Two of three voting another root cannot agree it.
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    for (const o of oracles.slice(0, 2)) await core.rewards.write.submitRoot([now + 2n, later.root, 1000n], { account: o.account });
    expect(await core.rewards.read.epochStatus([now + 2n])).toBe(Status.Voting);
    await a.revertWithCustomError(
      core.rewards.write.claim([now + 2n, core.users[10]!.account.address, 20n, later.proof(core.users[10]!.account.address)]),
      core.rewards,
      "RootNotFinal",
    );
  });

  it("an oracle's junk votes on other epochs and totals do not hold the honest root back", async () => {
    const core = await deployCore();
    const oracles = await addOracles(core, 4); // quorum 3 of 4
    const [griefer, ...honest] = oracles as [WalletClient, ...WalletClient[]];
    const x = core.users[10]!.account.address;
    const tree = buildRewardTree([{ account: x, amount: 10n }]);
    const next = buildRewardTree([{ account: x, amount: 25n }]);
    const junk = keccak256(toHex("junk"));
    await fund(core, 100n);
    await endEpoch(core, 5n);
    // The griefer votes junk first for epoch 5 and epoch 2 (each fixing its round) and a huge total.
    await core.rewards.write.submitRoot([5n, junk, 10n ** 30n], { account: griefer.account });
    await core.rewards.write.submitRoot([2n, junk, 1n], { account: griefer.account });
    for (const o of honest) await core.rewards.write.submitRoot([2n, tree.root, tree.total], { account: o.account });
    expect(await core.rewards.read.epochStatus([2n])).toBe(Status.Disputable);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    for (const o of honest) await core.rewards.write.submitRoot([5n, next.root, next.total], { account: o.account });
    expect(await core.rewards.read.epochStatus([5n])).toBe(Status.Disputable);
    await core.networkHelpers.time.increase(Number(core.disputeWindow));
    await core.rewards.write.claim([5n, x, 25n, next.proof(x)]);
    expect(await core.rewards.read.claimed([x])).toBe(25n);
  });

  it("the guardian's rejection of the newest root leaves the claims paid under the previous one intact", async () => {
    const core = await deployCore();
    const oracles = await addOracles(core, 1);
    const a = core.viem.assertions;
    const [x, y] = [core.users[10]!.account.address, core.users[11]!.account.address];
    const r0 = buildRewardTree([
      { account: x, amount: 100n },
      { account: y, amount: 50n },
    ]);
    const bad = buildRewardTree([
      { account: x, amount: 100n },
      { account: y, amount: 5000n },
    ]);
    await fund(core, 10_000n);
    await endEpoch(core, 1n);
    await settled(core, oracles, 0n, r0);
    await core.rewards.write.submitRoot([1n, bad.root, bad.total], { account: oracles[0]!.account });
    // In epoch 1's window, x claims under epoch 0's (still the newest final) root.
    await core.rewards.write.claim([0n, x, 100n, r0.proof(x)]);
    await a.revertWithCustomError(core.rewards.write.claim([1n, y, 5000n, bad.proof(y)]), core.rewards, "RootNotFinal");
    await core.rewards.write.rejectRoot([1n]);
    expect([await core.rewards.read.totalClaimed(), await core.rewards.read.totalReserved(), await core.rewards.read.unallocated()]).toEqual([
      100n,
      50n,
      9850n,
    ]);
    await core.rewards.write.claim([0n, y, 50n, r0.proof(y)]);
    // A root that paid claims is final: the guardian can no longer reject it.
    await a.revertWithCustomErrorWithArgs(core.rewards.write.rejectRoot([0n]), core.rewards, "WrongEpochStatus", [0n, Status.Final]);
    expect(await core.token.read.balanceOf([core.rewards.address])).toBe(9850n);
  });
});

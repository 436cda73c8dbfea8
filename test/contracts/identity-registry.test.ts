/**
 * IdentityRegistry against the real NodeRegistry with staked authority nodes:
 * namespaces, applications and policies, attestation checks (threshold,
 * ordering, replay across owner / chain / registry, authorities that left),
 * rotation, revocation, transfer and governance.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { getAddress, zeroAddress, type Hex } from "viem";
import {
  IDENTITY_STATUS,
  REGISTRATION_POLICY,
  applicationId as tsApplicationId,
  attestationDigest as tsAttestationDigest,
  identityId as tsIdentityId,
  recoverAttestationSigner,
  recoverRotationAttestationSigner,
  rotationAttestationDigest,
  signAttestation,
  sortAttestationsBySigner,
} from "../../node/src/chain/attestation.js";
import {
  MIN_STAKE_AUTHORITY,
  attest,
  attestRotation,
  createApplication,
  deployPki,
  KEY_PROOF,
  makeRegistration,
  registerIdentity,
  setQuorum,
  testKey,
  testSigner,
  type PkiFixture,
  type WalletClient,
} from "./helpers/pki.js";

let f: PkiFixture;
let restore: () => Promise<void>;
let appOwner: WalletClient;
let alice: WalletClient;
let bob: WalletClient;
let mallory: WalletClient;

function at<T>(xs: readonly T[], i: number): T {
  const x = xs[i];
  if (x === undefined) throw new Error(`fixture has no element ${i}`);
  return x;
}

beforeAll(async () => {
  f = await deployPki({ authorityCount: 3, threshold: 2 });
  [appOwner, alice, bob, mallory] = [at(f.users, 0), at(f.users, 1), at(f.users, 2), at(f.users, 3)];
  await createApplication(f, appOwner, "peerstream", "client");
  const snapshot = await f.networkHelpers.takeSnapshot();
  restore = () => snapshot.restore();
});

beforeEach(async () => {
  await restore();
});

afterAll(async () => {
  await f.connection.close();
});

const signers = () => f.authorities.map((a) => a.signer);
const ctxFor = (registration: Awaited<ReturnType<typeof makeRegistration>>) => ({
  chainId: f.chainId,
  registry: f.identities.address,
  registration,
});
const rotationCtx = (owner: WalletClient, identityId: Hex, newKey: Hex, deadline: bigint) => ({
  chainId: f.chainId,
  registry: f.identities.address,
  rotation: { owner: owner.account.address, identityId, newKey, deadline },
});

describe("IdentityRegistry construction", () => {
  it("rejects a zero registry", async () => {
    const { viem, identities } = f;
    await viem.assertions.revertWithCustomError(viem.deployContract("IdentityRegistry", [zeroAddress]), identities, "ZeroAddress");
  });

  it("exposes its wiring and takes its threshold from the NodeRegistry's authority quorum", async () => {
    const { identities, nodeRegistry } = f;
    expect((await identities.read.nodeRegistry()).toLowerCase()).toBe(nodeRegistry.address.toLowerCase());
    expect(await identities.read.attestationThreshold()).toBe(2n);
    expect(await nodeRegistry.read.authorityQuorum()).toBe(2n);
    expect(await nodeRegistry.read.authorityCount()).toBe(3n);
  });
});

describe("namespaces", () => {
  it("are first come first served and emit NamespaceRegistered", async () => {
    const { viem, identities } = f;
    await viem.assertions.emitWithArgs(
      identities.write.registerNamespace(["acme-1"], { account: alice.account }),
      identities,
      "NamespaceRegistered",
      [(h: Hex) => h.length === 66, "acme-1", alice.account.address],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.registerNamespace(["acme-1"], { account: bob.account }),
      identities,
      "NamespaceTaken",
      ["acme-1"],
    );
  });

  it("reject names that are empty, too long, upper case or dotted", async () => {
    const { viem, identities } = f;
    const cases: [string, bigint][] = [
      ["", 0n],
      ["a".repeat(33), 33n],
      ["Acme", 0n],
      ["acme.io", 4n],
      ["acme_io", 4n],
    ];
    for (const [name, index] of cases) {
      await viem.assertions.revertWithCustomErrorWithArgs(
        identities.write.registerNamespace([name], { account: alice.account }),
        identities,
        "InvalidName",
        [name, index],
      );
    }
    await identities.write.registerNamespace(["a".repeat(32)], { account: alice.account });
    await identities.write.registerNamespace(["0-9"], { account: alice.account });
  });

  it("can be transferred by their owner only", async () => {
    const { viem, identities } = f;
    await identities.write.registerNamespace(["acme"], { account: alice.account });
    await viem.assertions.revertWithCustomError(
      identities.write.transferNamespace(["acme", bob.account.address], { account: bob.account }),
      identities,
      "NotNamespaceOwner",
    );
    await viem.assertions.revertWithCustomError(
      identities.write.transferNamespace(["acme", zeroAddress], { account: alice.account }),
      identities,
      "ZeroAddress",
    );
    await viem.assertions.revertWithCustomError(
      identities.write.transferNamespace(["nope", bob.account.address], { account: alice.account }),
      identities,
      "NamespaceNotFound",
    );
    await viem.assertions.emit(
      identities.write.transferNamespace(["acme", bob.account.address], { account: alice.account }),
      identities,
      "NamespaceTransferred",
    );
    // The new owner, not the old one, may now create applications.
    await viem.assertions.revertWithCustomError(
      identities.write.registerApplication(["acme", "app", 0], { account: alice.account }),
      identities,
      "NotNamespaceOwner",
    );
    await identities.write.registerApplication(["acme", "app", 0], { account: bob.account });
  });
});

describe("applications", () => {
  it("are created by the namespace owner with matching ids in Solidity and TypeScript", async () => {
    const { viem, identities } = f;
    await identities.write.registerNamespace(["acme"], { account: alice.account });
    const appId = tsApplicationId("acme", "chat");
    await viem.assertions.emitWithArgs(
      identities.write.registerApplication(["acme", "chat", REGISTRATION_POLICY.restricted], { account: alice.account }),
      identities,
      "ApplicationRegistered",
      [appId, (h: Hex) => h.length === 66, "acme", "chat", alice.account.address, REGISTRATION_POLICY.restricted],
    );
    expect(await identities.read.applicationIdOf(["acme", "chat"])).toBe(appId);
    const app = await identities.read.getApplication([appId]);
    expect(app.owner).toBe(getAddress(alice.account.address));
    expect(app.policy).toBe(REGISTRATION_POLICY.restricted);
    expect(app.namespace).toBe("acme");
    expect(app.name).toBe("chat");
    expect(await identities.read.applicationOwner([appId])).toBe(getAddress(alice.account.address));
  });

  it("reject strangers, duplicates, unknown namespaces and bad names", async () => {
    const { viem, identities } = f;
    await viem.assertions.revertWithCustomError(
      identities.write.registerApplication(["peerstream", "other", 0], { account: mallory.account }),
      identities,
      "NotNamespaceOwner",
    );
    await viem.assertions.revertWithCustomError(
      identities.write.registerApplication(["peerstream", "client", 0], { account: appOwner.account }),
      identities,
      "ApplicationExists",
    );
    await viem.assertions.revertWithCustomError(
      identities.write.registerApplication(["missing", "client", 0], { account: appOwner.account }),
      identities,
      "NamespaceNotFound",
    );
    await viem.assertions.revertWithCustomError(
      identities.write.registerApplication(["peerstream", "Bad.Name", 0], { account: appOwner.account }),
      identities,
      "InvalidName",
    );
  });

  it("have owner-only policy, registrar and transfer operations", async () => {
    const { viem, identities } = f;
    const appId = tsApplicationId("peerstream", "client");
    const missing = tsApplicationId("peerstream", "missing");
    await viem.assertions.revertWithCustomError(
      identities.write.setApplicationPolicy([appId, 1], { account: mallory.account }),
      identities,
      "NotApplicationOwner",
    );
    await viem.assertions.revertWithCustomError(
      identities.write.setApplicationPolicy([missing, 1], { account: appOwner.account }),
      identities,
      "ApplicationNotFound",
    );
    await viem.assertions.emitWithArgs(
      identities.write.setApplicationPolicy([appId, 1], { account: appOwner.account }),
      identities,
      "ApplicationPolicyChanged",
      [appId, 1],
    );
    await viem.assertions.revertWithCustomError(
      identities.write.setRegistrar([appId, alice.account.address, true], { account: mallory.account }),
      identities,
      "NotApplicationOwner",
    );
    await viem.assertions.revertWithCustomError(
      identities.write.setRegistrar([appId, zeroAddress, true], { account: appOwner.account }),
      identities,
      "ZeroAddress",
    );
    expect(await identities.read.isRegistrar([appId, alice.account.address])).toBe(false);
    await viem.assertions.emitWithArgs(
      identities.write.setRegistrar([appId, alice.account.address, true], { account: appOwner.account }),
      identities,
      "RegistrarSet",
      [appId, alice.account.address, true],
    );
    expect(await identities.read.isRegistrar([appId, alice.account.address])).toBe(true);
    expect(await identities.read.isRegistrar([appId, appOwner.account.address])).toBe(true);
    expect(await identities.read.isRegistrar([missing, zeroAddress])).toBe(false);

    await viem.assertions.revertWithCustomError(
      identities.write.transferApplication([appId, zeroAddress], { account: appOwner.account }),
      identities,
      "ZeroAddress",
    );
    await viem.assertions.revertWithCustomError(
      identities.write.transferApplication([appId, mallory.account.address], { account: mallory.account }),
      identities,
      "NotApplicationOwner",
    );
    await viem.assertions.emitWithArgs(
      identities.write.transferApplication([appId, bob.account.address], { account: appOwner.account }),
      identities,
      "ApplicationTransferred",
      [appId, appOwner.account.address, bob.account.address],
    );
    expect(await identities.read.applicationOwner([appId])).toBe(getAddress(bob.account.address));
    // The transfer dropped the previous owner's registrars (and the previous owner itself is none).
    expect(await identities.read.isRegistrar([appId, alice.account.address])).toBe(false);
    expect(await identities.read.isRegistrar([appId, appOwner.account.address])).toBe(false);
    expect(await identities.read.isRegistrar([appId, bob.account.address])).toBe(true);
    await viem.assertions.revertWithCustomError(
      identities.write.setApplicationPolicy([appId, 0], { account: appOwner.account }),
      identities,
      "NotApplicationOwner",
    );
  });
});

describe("registerIdentity", () => {
  it("registers with threshold attestations; ids and digests agree with the TypeScript helper", async () => {
    const { viem, identities } = f;
    const r = await makeRegistration(f, { owner: alice.account.address, kind: 1 });
    expect(await identities.read.attestationDigest([r])).toBe(tsAttestationDigest(ctxFor(r)));
    const attestations = await attest(signers().slice(0, 2), ctxFor(r));
    const id = tsIdentityId(r);
    // Submitted by someone else: under the Open policy the attestations alone decide.
    await viem.assertions.emitWithArgs(
      identities.write.registerIdentity([r, KEY_PROOF, attestations], { account: bob.account }),
      identities,
      "IdentityRegistered",
      [id, tsApplicationId("peerstream", "client"), alice.account.address, 1, r.key],
    );
    expect(await identities.read.identityIdOf([r.namespace, r.application, r.kind, r.key])).toBe(id);
    const stored = await identities.read.getIdentity([id]);
    expect(stored.owner).toBe(getAddress(alice.account.address));
    expect(stored.status).toBe(IDENTITY_STATUS.active);
    expect(stored.kind).toBe(1);
    expect(stored.key).toBe(r.key);
    expect(stored.applicationId).toBe(tsApplicationId("peerstream", "client"));
    expect(stored.registeredAt).toBe(BigInt(await f.networkHelpers.time.latest()));
    expect(await identities.read.isActive([id])).toBe(true);
    expect(await identities.read.ownerOf([id])).toBe(getAddress(alice.account.address));
    expect(await identities.read.applicationOf([id])).toBe(tsApplicationId("peerstream", "client"));
    // The same key under another kind is a different identity.
    await registerIdentity(f, { ...r, kind: 2 }, alice);
    expect(await identities.read.isActive([tsIdentityId({ ...r, kind: 2 })])).toBe(true);
  });

  it("accepts more attestations than the threshold when all are valid", async () => {
    const id = await registerIdentity(f, await makeRegistration(f, { owner: alice.account.address }), alice, signers());
    expect(await f.identities.read.isActive([id])).toBe(true);
  });

  it("rejects bad fields before looking at attestations", async () => {
    const { viem, identities } = f;
    const r = await makeRegistration(f, { owner: alice.account.address });
    const atts = await attest(signers(), ctxFor(r));
    await viem.assertions.revertWithCustomError(
      identities.write.registerIdentity([{ ...r, owner: zeroAddress }, KEY_PROOF, atts], { account: alice.account }),
      identities,
      "ZeroAddress",
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.registerIdentity([{ ...r, kind: 3 }, KEY_PROOF, atts], { account: alice.account }),
      identities,
      "InvalidKind",
      [3],
    );
    await viem.assertions.revertWithCustomError(
      identities.write.registerIdentity([{ ...r, key: `0x${"00".repeat(32)}` }, KEY_PROOF, atts], { account: alice.account }),
      identities,
      "InvalidKey",
    );
    await viem.assertions.revertWithCustomError(
      identities.write.registerIdentity([{ ...r, application: "nope" }, KEY_PROOF, atts], { account: alice.account }),
      identities,
      "ApplicationNotFound",
    );
  });

  it("registers a key once per (namespace, application, kind)", async () => {
    const { viem, identities } = f;
    const r = await makeRegistration(f, { owner: alice.account.address });
    const id = await registerIdentity(f, r, alice);
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.registerIdentity([r, KEY_PROOF, await attest(signers(), ctxFor(r))], { account: alice.account }),
      identities,
      "IdentityExists",
      [id],
    );
  });

  it("rejects expired attestations", async () => {
    const { viem, identities, networkHelpers } = f;
    const r = await makeRegistration(f, { owner: alice.account.address });
    const atts = await attest(signers(), ctxFor(r));
    await networkHelpers.time.increaseTo(r.deadline + 1n);
    await viem.assertions.revertWithCustomError(
      identities.write.registerIdentity([r, KEY_PROOF, atts], { account: alice.account }),
      identities,
      "AttestationExpired",
    );
  });

  it("accepts attestations in the deadline's own second", async () => {
    const r = await makeRegistration(f, { owner: alice.account.address });
    const atts = await attest(signers(), ctxFor(r));
    await f.networkHelpers.time.setNextBlockTimestamp(r.deadline);
    await f.identities.write.registerIdentity([r, KEY_PROOF, atts], { account: alice.account });
    expect(await f.identities.read.isActive([tsIdentityId(r)])).toBe(true);
  });

  it("rejects fewer attestations than the threshold", async () => {
    const { viem, identities } = f;
    const r = await makeRegistration(f, { owner: alice.account.address });
    const one = await attest(signers().slice(0, 1), ctxFor(r));
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.registerIdentity([r, KEY_PROOF, one], { account: alice.account }),
      identities,
      "BelowThreshold",
      [1n, 2n],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.registerIdentity([r, KEY_PROOF, []], { account: alice.account }),
      identities,
      "BelowThreshold",
      [0n, 2n],
    );
  });

  it("rejects a duplicate signer and descending order", async () => {
    const { viem, identities } = f;
    const r = await makeRegistration(f, { owner: alice.account.address });
    const sorted = await attest(signers().slice(0, 2), ctxFor(r));
    const [first, second] = [at(sorted, 0), at(sorted, 1)];
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.registerIdentity([r, KEY_PROOF, [first, first]], { account: alice.account }),
      identities,
      "SignersNotAscending",
      [1n, (a: string) => a.length === 42],
    );
    await viem.assertions.revertWithCustomError(
      identities.write.registerIdentity([r, KEY_PROOF, [second, first]], { account: alice.account }),
      identities,
      "SignersNotAscending",
    );
    await identities.write.registerIdentity([r, KEY_PROOF, [first, second]], { account: alice.account });
  });

  it("rejects malformed signatures", async () => {
    const { viem, identities } = f;
    const r = await makeRegistration(f, { owner: alice.account.address });
    const sorted = await attest(signers().slice(0, 2), ctxFor(r));
    const truncated = at(sorted, 1).slice(0, -2) as Hex;
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.registerIdentity([r, KEY_PROOF, [at(sorted, 0), truncated]], { account: alice.account }),
      identities,
      "InvalidAttestationSignature",
      [1n],
    );
  });

  it("rejects a signer that is not a staked authority", async () => {
    const { viem, identities } = f;
    const r = await makeRegistration(f, { owner: alice.account.address });
    const outsider = testSigner("outsider", 0);
    const atts = await attest([at(signers(), 0), outsider], ctxFor(r));
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.registerIdentity([r, KEY_PROOF, atts], { account: alice.account }),
      identities,
      "NotAuthority",
      [outsider.address],
    );
  });

  it("rejects an authority that requested unstake, even with attestations signed before", async () => {
    const { viem, identities, nodeRegistry } = f;
    const r = await makeRegistration(f, { owner: alice.account.address });
    const leaving = at(f.authorities, 0);
    const atts = await attest([leaving.signer, at(signers(), 1)], ctxFor(r));
    await nodeRegistry.write.requestUnstake([leaving.nodeKey, MIN_STAKE_AUTHORITY], { account: leaving.operator.account });
    expect(await nodeRegistry.read.isAuthoritySigner([leaving.signer.address])).toBe(false);
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.registerIdentity([r, KEY_PROOF, atts], { account: alice.account }),
      identities,
      "NotAuthority",
      [leaving.signer.address],
    );
    // The two remaining authorities still reach the threshold.
    await registerIdentity(f, r, alice, signers().slice(1));
  });

  describe("replay", () => {
    // With threshold 1 a single attestation decides, so the replayed signature's
    // recovered (wrong) signer is checked for authority, not for ordering.
    beforeEach(async () => {
      await setQuorum(f, 1);
    });

    it("for another owner recovers a non-authority", async () => {
      const { viem, identities } = f;
      const r = await makeRegistration(f, { owner: alice.account.address });
      const atts = await attest(signers().slice(0, 1), ctxFor(r));
      await viem.assertions.revertWithCustomError(
        identities.write.registerIdentity([{ ...r, owner: mallory.account.address }, KEY_PROOF, atts], { account: mallory.account }),
        identities,
        "NotAuthority",
      );
      await identities.write.registerIdentity([r, KEY_PROOF, atts], { account: mallory.account });
      expect(await identities.read.ownerOf([tsIdentityId(r)])).toBe(getAddress(alice.account.address));
    });

    it("from another chain id is rejected", async () => {
      const { viem, identities } = f;
      const r = await makeRegistration(f, { owner: alice.account.address });
      const atts = await attest(signers().slice(0, 1), { ...ctxFor(r), chainId: f.chainId + 1 });
      await viem.assertions.revertWithCustomError(
        identities.write.registerIdentity([r, KEY_PROOF, atts], { account: alice.account }),
        identities,
        "NotAuthority",
      );
    });

    it("made for another registry is rejected", async () => {
      const { viem, identities, nodeRegistry } = f;
      const other = await viem.deployContract("IdentityRegistry", [nodeRegistry.address]);
      await other.write.registerNamespace(["peerstream"], { account: appOwner.account });
      await other.write.registerApplication(["peerstream", "client", 0], { account: appOwner.account });
      const r = await makeRegistration(f, { owner: alice.account.address });
      const atts = await attest(signers().slice(0, 1), { ...ctxFor(r), registry: other.address });
      await viem.assertions.revertWithCustomError(
        identities.write.registerIdentity([r, KEY_PROOF, atts], { account: alice.account }),
        identities,
        "NotAuthority",
      );
      // Control: the same attestation is good where it was meant to be used.
      await other.write.registerIdentity([r, KEY_PROOF, atts], { account: alice.account });
      expect(await other.read.isActive([tsIdentityId(r)])).toBe(true);
      expect(await identities.read.isActive([tsIdentityId(r)])).toBe(false);
    });

    it("for another key, kind or deadline is rejected", async () => {
      const { viem, identities } = f;
      const r = await makeRegistration(f, { owner: alice.account.address });
      const atts = await attest(signers().slice(0, 1), ctxFor(r));
      for (const changed of [{ ...r, key: testKey("other") }, { ...r, kind: 2 }, { ...r, deadline: r.deadline + 1n }]) {
        await viem.assertions.revertWithCustomError(
          identities.write.registerIdentity([changed, KEY_PROOF, atts], { account: alice.account }),
          identities,
          "NotAuthority",
        );
      }
    });
  });

  describe("Restricted policy", () => {
    let appId: Hex;
    beforeEach(async () => {
      appId = tsApplicationId("peerstream", "client");
      await f.identities.write.setApplicationPolicy([appId, REGISTRATION_POLICY.restricted], { account: appOwner.account });
    });

    it("refuses when neither caller nor owner is a registrar", async () => {
      const r = await makeRegistration(f, { owner: alice.account.address });
      await f.viem.assertions.revertWithCustomErrorWithArgs(
        f.identities.write.registerIdentity([r, KEY_PROOF, await attest(signers(), ctxFor(r))], { account: bob.account }),
        f.identities,
        "PolicyForbids",
        [appId, bob.account.address, alice.account.address],
      );
    });

    it("admits the application owner and approved registrars as caller or as owner", async () => {
      await registerIdentity(f, await makeRegistration(f, { owner: alice.account.address }), appOwner);
      await f.identities.write.setRegistrar([appId, bob.account.address, true], { account: appOwner.account });
      await registerIdentity(f, await makeRegistration(f, { owner: alice.account.address }), bob);
      await registerIdentity(f, await makeRegistration(f, { owner: bob.account.address }), mallory);
      await f.identities.write.setRegistrar([appId, bob.account.address, false], { account: appOwner.account });
      const r = await makeRegistration(f, { owner: alice.account.address });
      await f.viem.assertions.revertWithCustomError(
        f.identities.write.registerIdentity([r, KEY_PROOF, await attest(signers(), ctxFor(r))], { account: bob.account }),
        f.identities,
        "PolicyForbids",
      );
    });
  });
});

describe("identity lifecycle", () => {
  it("rotates a key: old Rotated with a successor pointer, new Active", async () => {
    const { viem, identities } = f;
    const r = await makeRegistration(f, { owner: alice.account.address, kind: 0 });
    const oldId = await registerIdentity(f, r, alice);
    const newKey = testKey("rotated-1");
    const rotation = { ...r, key: newKey };
    const atts = await attestRotation(signers().slice(0, 2), rotationCtx(alice, oldId, newKey, r.deadline));
    const newId = tsIdentityId(rotation);
    const hash = await identities.write.rotateKey([oldId, newKey, r.deadline, KEY_PROOF, atts], { account: alice.account });
    await viem.assertions.emitWithArgs(hash, identities, "IdentityKeyRotated", [oldId, newId, newKey]);
    await viem.assertions.emitWithArgs(hash, identities, "IdentityRegistered", [
      newId,
      tsApplicationId("peerstream", "client"),
      alice.account.address,
      0,
      newKey,
    ]);
    const old = await identities.read.getIdentity([oldId]);
    expect(old.status).toBe(IDENTITY_STATUS.rotated);
    expect(old.successor).toBe(newId);
    expect(await identities.read.isActive([oldId])).toBe(false);
    expect(await identities.read.isActive([newId])).toBe(true);
    expect(await identities.read.ownerOf([newId])).toBe(getAddress(alice.account.address));
    // A Rotated identity is no longer usable, and its key cannot come back.
    await viem.assertions.revertWithCustomError(
      identities.write.revokeIdentity([oldId], { account: alice.account }),
      identities,
      "IdentityNotActive",
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.registerIdentity([r, KEY_PROOF, await attest(signers(), ctxFor(r))], { account: alice.account }),
      identities,
      "IdentityExists",
      [oldId],
    );
  });

  it("rejects rotations by strangers, to taken or zero keys, or with attestations for another owner", async () => {
    const { viem, identities } = f;
    const r = await makeRegistration(f, { owner: alice.account.address });
    const id = await registerIdentity(f, r, alice);
    const taken = await makeRegistration(f, { owner: alice.account.address });
    const takenId = await registerIdentity(f, taken, alice);
    const newKey = testKey("rotated-2");
    const forAlice = await attestRotation(signers(), rotationCtx(alice, id, newKey, r.deadline));
    await viem.assertions.revertWithCustomError(
      identities.write.rotateKey([id, newKey, r.deadline, KEY_PROOF, forAlice], { account: mallory.account }),
      identities,
      "NotIdentityOwner",
    );
    await viem.assertions.revertWithCustomError(
      identities.write.rotateKey([testKey("never"), newKey, r.deadline, KEY_PROOF, forAlice], { account: alice.account }),
      identities,
      "IdentityNotFound",
    );
    await viem.assertions.revertWithCustomError(
      identities.write.rotateKey([id, `0x${"00".repeat(32)}`, r.deadline, KEY_PROOF, forAlice], { account: alice.account }),
      identities,
      "InvalidKey",
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.rotateKey([id, taken.key, r.deadline, KEY_PROOF, await attestRotation(signers(), rotationCtx(alice, id, taken.key, r.deadline))], {
        account: alice.account,
      }),
      identities,
      "IdentityExists",
      [takenId],
    );
    // Attestations naming Mallory as owner do not let Alice rotate to that key (and vice versa).
    const forMallory = await attestRotation(signers().slice(0, 1), rotationCtx(mallory, id, newKey, r.deadline));
    await setQuorum(f, 1);
    await viem.assertions.revertWithCustomError(
      identities.write.rotateKey([id, newKey, r.deadline, KEY_PROOF, forMallory], { account: alice.account }),
      identities,
      "NotAuthority",
    );
    await identities.write.rotateKey([id, newKey, r.deadline, KEY_PROOF, forAlice], { account: alice.account });
  });

  it("never accepts a rotation's attestations as a registration, nor the reverse", async () => {
    const { viem, identities } = f;
    const r = await makeRegistration(f, { owner: alice.account.address });
    const id = await registerIdentity(f, r, alice);
    const other = await registerIdentity(f, await makeRegistration(f, { owner: alice.account.address }), alice);
    const newKey = testKey("front-run");
    const rotation = rotationCtx(alice, id, newKey, r.deadline);
    const rotationAtts = await attestRotation(signers(), rotation);
    const registrationOfNewKey = { ...r, key: newKey };
    const registrationAtts = await attest(signers(), ctxFor(registrationOfNewKey));

    // The digests differ and match the contract's views.
    const rotationDigest = await identities.read.rotationDigest([alice.account.address, id, newKey, r.deadline]);
    expect(rotationDigest).toBe(rotationAttestationDigest(rotation));
    expect(rotationDigest).not.toBe(tsAttestationDigest(ctxFor(registrationOfNewKey)));
    const rotationSigner = await recoverRotationAttestationSigner(rotation, at(rotationAtts, 0));
    expect(signers().map((s) => s.address)).toContain(rotationSigner);
    expect(signers().map((s) => s.address)).not.toContain(await recoverAttestationSigner(ctxFor(registrationOfNewKey), at(rotationAtts, 0)));

    // Front-running: a rotation's attestations submitted to registerIdentity recover non-authority signers.
    await viem.assertions.revertWithCustomError(
      identities.write.registerIdentity([registrationOfNewKey, KEY_PROOF, rotationAtts], { account: mallory.account }),
      identities,
      "NotAuthority",
    );
    // The reverse: registration attestations of the new key cannot rotate an identity to it.
    await viem.assertions.revertWithCustomError(
      identities.write.rotateKey([id, newKey, r.deadline, KEY_PROOF, registrationAtts], { account: alice.account }),
      identities,
      "NotAuthority",
    );
    // A rotation is bound to the identity it names: not usable for another identity of the same owner.
    await viem.assertions.revertWithCustomError(
      identities.write.rotateKey([other, newKey, r.deadline, KEY_PROOF, rotationAtts], { account: alice.account }),
      identities,
      "NotAuthority",
    );
    // ... nor with another deadline.
    await viem.assertions.revertWithCustomError(
      identities.write.rotateKey([id, newKey, r.deadline - 1n, KEY_PROOF, rotationAtts], { account: alice.account }),
      identities,
      "NotAuthority",
    );
    // The genuine rotation still goes through after the failed front-run.
    await viem.assertions.emit(
      identities.write.rotateKey([id, newKey, r.deadline, KEY_PROOF, rotationAtts], { account: alice.account }),
      identities,
      "IdentityKeyRotated",
    );
    expect(await identities.read.isActive([tsIdentityId(registrationOfNewKey)])).toBe(true);
    // Replaying the registration attestations now finds the key taken by the successor.
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.registerIdentity([registrationOfNewKey, KEY_PROOF, registrationAtts], { account: alice.account }),
      identities,
      "IdentityExists",
      [tsIdentityId(registrationOfNewKey)],
    );
  });

  it("revokes for good: never re-registrable, not rotatable, not transferable", async () => {
    const { viem, identities } = f;
    const r = await makeRegistration(f, { owner: alice.account.address });
    const id = await registerIdentity(f, r, alice);
    await viem.assertions.revertWithCustomError(
      identities.write.revokeIdentity([id], { account: mallory.account }),
      identities,
      "NotIdentityOwner",
    );
    await viem.assertions.emitWithArgs(
      identities.write.revokeIdentity([id], { account: alice.account }),
      identities,
      "IdentityRevokedByOwner",
      [id, alice.account.address],
    );
    expect(await identities.read.isActive([id])).toBe(false);
    expect((await identities.read.getIdentity([id])).status).toBe(IDENTITY_STATUS.revoked);
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.registerIdentity([r, KEY_PROOF, await attest(signers(), ctxFor(r))], { account: alice.account }),
      identities,
      "IdentityRevoked",
      [id],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.revokeIdentity([id], { account: alice.account }),
      identities,
      "IdentityNotActive",
      [id, IDENTITY_STATUS.revoked],
    );
    const newKey = testKey("after-revoke");
    await viem.assertions.revertWithCustomError(
      identities.write.rotateKey([id, newKey, r.deadline, KEY_PROOF, await attestRotation(signers(), rotationCtx(alice, id, newKey, r.deadline))], {
        account: alice.account,
      }),
      identities,
      "IdentityNotActive",
    );
    await viem.assertions.revertWithCustomError(
      identities.write.transferIdentity([id, bob.account.address], { account: alice.account }),
      identities,
      "IdentityNotActive",
    );
  });

  it("transfers an active identity to a new owner", async () => {
    const { viem, identities } = f;
    const id = await registerIdentity(f, await makeRegistration(f, { owner: alice.account.address }), alice);
    await viem.assertions.revertWithCustomError(
      identities.write.transferIdentity([id, zeroAddress], { account: alice.account }),
      identities,
      "ZeroAddress",
    );
    await viem.assertions.revertWithCustomError(
      identities.write.transferIdentity([id, mallory.account.address], { account: mallory.account }),
      identities,
      "NotIdentityOwner",
    );
    await viem.assertions.emitWithArgs(
      identities.write.transferIdentity([id, bob.account.address], { account: alice.account }),
      identities,
      "IdentityTransferred",
      [id, alice.account.address, bob.account.address],
    );
    expect(await identities.read.ownerOf([id])).toBe(getAddress(bob.account.address));
    await viem.assertions.revertWithCustomError(
      identities.write.revokeIdentity([id], { account: alice.account }),
      identities,
      "NotIdentityOwner",
    );
    await identities.write.revokeIdentity([id], { account: bob.account });
  });
});

describe("authority quorum", () => {
  it("is a fraction of the current authority set with a floor, set by NodeRegistry governance only", async () => {
    const { viem, identities, nodeRegistry } = f;
    const params = await nodeRegistry.read.params();
    await viem.assertions.revertWithCustomError(
      nodeRegistry.write.setParams([{ ...params, attestationFloor: 1 }], { account: mallory.account }),
      nodeRegistry,
      "AccessControlUnauthorizedAccount",
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      nodeRegistry.write.setParams([{ ...params, attestationFloor: 0 }]),
      nodeRegistry,
      "InvalidAttestationThreshold",
      [0, 0, params.maxAuthorities],
    );
    // Three authorities at 2/3 and floor 1: ceil(3 * 0.6667) = 3.
    await setQuorum(f, 1, 6667);
    expect(await identities.read.attestationThreshold()).toBe(3n);
    const r = await makeRegistration(f, { owner: alice.account.address });
    await viem.assertions.revertWithCustomErrorWithArgs(
      identities.write.registerIdentity([r, KEY_PROOF, await attest(signers().slice(0, 2), ctxFor(r))], { account: alice.account }),
      identities,
      "BelowThreshold",
      [2n, 3n],
    );
    await registerIdentity(f, r, alice, signers());
  });

  it("cannot be set above the authority cap, so lowering the cap never stops registrations", async () => {
    const { viem, nodeRegistry } = f;
    const params = await nodeRegistry.read.params();
    await setQuorum(f, 3);
    // The cap cannot fall below the floor (attestationFloor <= maxAuthorities is checked on every change).
    await viem.assertions.revertWithCustomErrorWithArgs(
      nodeRegistry.write.setParams([{ ...params, attestationFloor: 3, maxAuthorities: 2 }]),
      nodeRegistry,
      "InvalidAttestationThreshold",
      [3, 0, 2],
    );
    await viem.assertions.revertWithCustomErrorWithArgs(
      nodeRegistry.write.setParams([{ ...params, attestationFloor: 17 }]),
      nodeRegistry,
      "InvalidAttestationThreshold",
      [17, 0, 16],
    );
  });
});

describe("attestation helper (node/src/chain/attestation.ts)", () => {
  it("recovers the signer the contract will see and refuses duplicate signers", async () => {
    const r = await makeRegistration(f, { owner: alice.account.address });
    const signer = at(signers(), 0);
    const signed = await signAttestation(signer, ctxFor(r));
    expect(signed.signer).toBe(signer.address);
    expect(await recoverAttestationSigner(ctxFor(r), signed.signature)).toBe(signer.address);
    expect(await recoverAttestationSigner({ ...ctxFor(r), chainId: f.chainId + 1 }, signed.signature)).not.toBe(signer.address);
    expect(() => sortAttestationsBySigner([signed, signed])).toThrowError(expect.objectContaining({ kind: "duplicate-signer" }));
    const sorted = sortAttestationsBySigner(await Promise.all(signers().reverse().map((s) => signAttestation(s, ctxFor(r)))));
    const order = [...signers()].sort((a, b) => (BigInt(a.address) < BigInt(b.address) ? -1 : 1));
    for (const [i, sig] of sorted.entries()) {
      expect(await recoverAttestationSigner(ctxFor(r), sig)).toBe(at(order, i).address);
    }
  });

  it("rejects bad registrations with typed errors", () => {
    const good = { owner: alice.account.address, namespace: "peerstream", application: "client", kind: 0, key: testKey("x"), deadline: 1n };
    const cases: [object, string][] = [
      [{ owner: zeroAddress }, "invalid-owner"],
      [{ namespace: "Peer.Stream" }, "invalid-name"],
      [{ application: "" }, "invalid-name"],
      [{ kind: 3 }, "invalid-kind"],
      [{ key: "0x1234" }, "invalid-key"],
      [{ key: "0xzz" }, "invalid-key"],
      [{ deadline: 1n << 64n }, "invalid-deadline"],
    ];
    for (const [patch, kind] of cases) {
      expect(() => tsAttestationDigest({ ...ctxFor({ ...good, ...patch } as typeof good) })).toThrowError(expect.objectContaining({ kind }));
    }
    expect(() => tsAttestationDigest({ ...ctxFor(good), chainId: 0 })).toThrowError(expect.objectContaining({ kind: "invalid-chain" }));
    expect(() => tsIdentityId({ ...good, kind: 7 })).toThrowError(expect.objectContaining({ kind: "invalid-kind" }));
  });
});

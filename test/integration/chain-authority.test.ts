/**
 * The chain bridge end to end on an in-process Hardhat chain: the PSP
 * contracts deployed by the real deploy code, three staked authority nodes
 * running the authority service, identity registration with their
 * attestations, access certificates from them, and the ways each is refused.
 */
import { network } from "hardhat";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keccak256, parseEther, toHex, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { REGISTRATION_POLICY, identityId, signAttestation, sortAttestationsBySigner, type AttestationContext } from "../../node/src/chain/attestation.js";
import { AuthorityError, createAuthorityService, localAuthorityTransport, remoteAttester, requestAccessCertificate, type AuthorityService } from "../../node/src/authority/service.js";
import { CertificateError, assembleCertificate, buildCertificateBody, signCertificateBody, verifyAccessCertificate } from "../../node/src/authority/certificate.js";
import type { ChainClients } from "../../node/src/chain/clients.js";
import type { Deployment } from "../../node/src/chain/deployment.js";
import { ChainError } from "../../node/src/chain/errors.js";
import { identityRegistryAbi } from "../../node/src/chain/generated/abis.js";
import { registerIdentity } from "../../node/src/chain/identities.js";
import { createChainPki, type Pki } from "../../node/src/chain/pki.js";
import { signRegistrationProof } from "../../node/src/chain/registration.js";
import { nodeKeyHex, registerNode, requestUnstake, signNodeRegistration, stakeNode } from "../../node/src/chain/staking.js";
import { admitNodes } from "../../scripts/lib/governance.js";
import { transact } from "../../node/src/chain/transact.js";
import { generateEd25519KeyPair, type Ed25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { formatIdentity } from "../../node/src/crypto/identity.js";
import { deployPsp, devnetParams } from "../../scripts/lib/deploy.js";

type Connection = Awaited<ReturnType<typeof network.connect>>;

let connection: Connection;
let deployment: Deployment;
let pki: Pki;
let clientsOf: (index: number) => ChainClients;
const authorities: { node: Ed25519KeyPair; service: AuthorityService; operator: number; nodeKey: Hex }[] = [];

const STAKE = parseEther("100000");

/** Mines `n` blocks and lets the PKI act on the events now confirmed. */
async function settle(n = 1): Promise<void> {
  await connection.networkHelpers.mine(n);
  await pki.sync();
}

async function newIdentity(ownerIndex: number): Promise<{ keys: Ed25519KeyPair; identity: string; identityId: Hex }> {
  const keys = generateEd25519KeyPair();
  const attesters = authorities.map((a) => remoteAttester(localAuthorityTransport(a.service, `owner-${ownerIndex}`)));
  const { identityId: id } = await registerIdentity({
    clients: clientsOf(ownerIndex),
    deployment,
    namespace: "peerstream",
    application: "client",
    kind: "account",
    secretKey: keys.secretKey,
    attesters,
  });
  await settle();
  return { keys, identity: formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: keys.publicKey }), identityId: id };
}

async function currentAuthorityKeys(): Promise<Hex[]> {
  return (await pki.currentAuthorities()).members.map((m) => m.nodeKey);
}

/** Transports to the authority services, as the client `client` (each client has its own rate limit). */
const transportsFor = (client: string, services = authorities.map((a) => a.service)) => services.map((s) => localAuthorityTransport(s, client));

async function certificateFor(id: { keys: Ed25519KeyPair; identity: string }, from = transportsFor(id.identity)) {
  return await requestAccessCertificate({
    transports: from,
    identity: id.identity,
    identitySecretKey: id.keys.secretKey,
    chainId: deployment.chainId,
    registry: deployment.contracts.IdentityRegistry.address,
    authorities: await currentAuthorityKeys(),
    threshold: from.length,
  });
}

beforeAll(async () => {
  connection = await network.connect();
  const publicClient = await connection.viem.getPublicClient();
  const wallets = await connection.viem.getWalletClients();
  clientsOf = (index) => ({ chain: publicClient.chain, publicClient, walletClient: wallets[index]! }) as unknown as ChainClients;
  ({ deployment } = await deployPsp({ clients: clientsOf(0), network: "test", params: { ...devnetParams, attestationFloor: 2, attestationBps: 0 } }));
  pki = await createChainPki({ clients: clientsOf(0), deployment, cacheMs: 600_000, confirmations: 1, follow: false });
  const token = deployment.contracts.PSPToken.address;
  const tokenAbi = [{ type: "function", name: "transfer", stateMutability: "nonpayable", inputs: [{ name: "to", type: "address" }, { name: "amount", type: "uint256" }], outputs: [{ type: "bool" }] }] as const;
  for (let i = 0; i < 3; i++) {
    const operator = 1 + i;
    await transact({ publicClient, walletClient: wallets[0]!, address: token, abi: tokenAbi, functionName: "transfer", args: [wallets[operator]!.account.address, STAKE] });
    const node = generateEd25519KeyPair();
    const signer = privateKeyToAccount(keccak256(toHex(`chain-authority-test-${i}`)));
    const ctx = { clients: clientsOf(operator), deployment };
    const consent = await signNodeRegistration(ctx, { nodeSecretKey: node.secretKey, signer, operator: wallets[operator]!.account.address });
    await registerNode(ctx, { consent, roles: 4 });
    await stakeNode(ctx, { nodeKey: nodeKeyHex(node.publicKey), amount: STAKE });
    await admitNodes(clientsOf(0), deployment, [{ nodeKey: nodeKeyHex(node.publicKey), roles: 4 }]);
    const service = createAuthorityService({ pki, nodeSecretKey: node.secretKey, signer });
    authorities.push({ node, service, operator, nodeKey: nodeKeyHex(node.publicKey) });
  }
  await transact({ publicClient, walletClient: wallets[0]!, address: deployment.contracts.IdentityRegistry.address, abi: identityRegistryAbi, functionName: "registerNamespace", args: ["peerstream"] });
  await transact({
    publicClient,
    walletClient: wallets[0]!,
    address: deployment.contracts.IdentityRegistry.address,
    abi: identityRegistryAbi,
    functionName: "registerApplication",
    args: ["peerstream", "client", REGISTRATION_POLICY.open],
  });
  await settle();
});

afterAll(async () => {
  pki?.close();
  await connection?.close();
});

describe("chain bridge on Hardhat", () => {
  it("reads the authority set, confirmed", async () => {
    expect(new Set(await currentAuthorityKeys())).toEqual(new Set(authorities.map((a) => a.nodeKey)));
    expect(await pki.attestationThreshold()).toBe(2);
  });

  it("registers an identity end to end and issues a certificate from 3 authorities", async () => {
    const alice = await newIdentity(5);
    expect(await pki.isIdentityActive(alice.identityId)).toBe(true);
    const issued = await certificateFor(alice);
    expect(issued.refusals).toEqual([]);
    const verified = verifyAccessCertificate(issued.certificate, {
      now: Date.now(),
      authorities: await currentAuthorityKeys(),
      threshold: 3,
      chainId: deployment.chainId,
      registry: deployment.contracts.IdentityRegistry.address,
    });
    expect(verified.identityId).toBe(alice.identityId);
    expect(verified.authorities).toHaveLength(3);
    // An hour later it is expired.
    expect(() => verifyAccessCertificate(issued.certificate, { now: Date.now() + 2 * 3600_000, authorities: authorities.map((a) => a.nodeKey), threshold: 2 })).toThrow(
      expect.objectContaining({ kind: "expired" }),
    );
  });

  it("trusts a new registration only once it is `confirmations` blocks deep", async () => {
    const keys = generateEd25519KeyPair();
    const { identityId: id } = await registerIdentity({
      clients: clientsOf(11),
      deployment,
      namespace: "peerstream",
      application: "client",
      kind: "account",
      secretKey: keys.secretKey,
      attesters: authorities.map((a) => remoteAttester(localAuthorityTransport(a.service, "fresh"))),
    });
    pki.invalidate(); // no waiting for the event: read the chain now
    expect(await pki.getIdentity(id)).toMatchObject({ status: "active", activeConfirmed: false });
    const fresh = { keys, identity: formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: keys.publicKey }) };
    const early = await certificateFor(fresh).catch((e: unknown) => e);
    expect((early as AuthorityError).message).toMatch(/identity-unconfirmed/);
    await settle();
    expect(await pki.isIdentityActive(id)).toBe(true);
    expect((await certificateFor(fresh)).verified.identityId).toBe(id);
  });

  it("gives a revoked identity no certificate", async () => {
    const bob = await newIdentity(6);
    await transact({
      publicClient: clientsOf(6).publicClient,
      walletClient: clientsOf(6).walletClient!,
      address: deployment.contracts.IdentityRegistry.address,
      abi: identityRegistryAbi,
      functionName: "revokeIdentity",
      args: [bob.identityId],
    });
    await settle();
    const err = await certificateFor(bob).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthorityError);
    expect((err as AuthorityError).kind).toBe("not-enough-authorities");
    expect((err as AuthorityError).message).toMatch(/identity-revoked/);
  });

  it("rejects certificates below the threshold or signed outside the authority set", async () => {
    const carol = await newIdentity(7);
    const one = await certificateFor(carol, transportsFor(carol.identity).slice(0, 1));
    const current = await currentAuthorityKeys();
    expect(() => verifyAccessCertificate(one.certificate, { now: Date.now(), authorities: current, threshold: 2 })).toThrow(expect.objectContaining({ kind: "below-threshold" }));
    // A node that is not a staked authority refuses, and its signature would not count anyway.
    const outsider = generateEd25519KeyPair();
    const rogue = createAuthorityService({ pki, nodeSecretKey: outsider.secretKey, signer: privateKeyToAccount(keccak256(toHex("rogue"))) });
    const refused = await certificateFor(carol, transportsFor(carol.identity, [authorities[0]!.service, rogue])).catch((e: unknown) => e);
    expect((refused as AuthorityError).message).toMatch(/not-an-authority/);
    const now = Math.floor(Date.now() / 1000);
    const { bodyBytes } = buildCertificateBody({ identity: carol.identity, chainId: deployment.chainId, registry: deployment.contracts.IdentityRegistry.address, notBefore: now, notAfter: now + 3600 });
    const forgedSet = assembleCertificate(bodyBytes, [signCertificateBody(bodyBytes, authorities[0]!.node.secretKey), signCertificateBody(bodyBytes, outsider.secretKey)]);
    expect(() => verifyAccessCertificate(forgedSet, { now: Date.now(), authorities: current, threshold: 2 })).toThrow(expect.objectContaining({ kind: "below-threshold" }));
  });

  it("rejects attestations replayed for another owner or chain, and a client that cannot prove its key", async () => {
    const keys = generateEd25519KeyPair();
    const owner = clientsOf(8).walletClient!.account.address;
    const block = await clientsOf(0).publicClient.getBlock();
    const registration = { owner, namespace: "peerstream", application: "client", kind: 0, key: toHex(keys.publicKey), deadline: block.timestamp + 600n };
    const ctx: AttestationContext = { chainId: deployment.chainId, registry: deployment.contracts.IdentityRegistry.address, registration };
    const attesters = authorities.map((a) => remoteAttester(localAuthorityTransport(a.service, "replay")));
    // Without the key, no authority attests.
    const noProof = await attesters[0]!(ctx, signRegistrationProof(generateEd25519KeyPair().secretKey, ctx)).catch((e: unknown) => e);
    expect((noProof as AuthorityError).kind).toBe("bad-proof");
    // Another chain is refused by the authority ...
    const wrongChain = await attesters[0]!({ ...ctx, chainId: 1 }, signRegistrationProof(keys.secretKey, { ...ctx, chainId: 1 })).catch((e: unknown) => e);
    expect((wrongChain as AuthorityError).kind).toBe("wrong-chain");
    const proof = signRegistrationProof(keys.secretKey, ctx);
    const signed = await Promise.all(attesters.map((attest) => attest(ctx, proof)));
    const submit = (r: typeof registration, sigs: Hex[], sender = 8) =>
      transact({ publicClient: clientsOf(sender).publicClient, walletClient: clientsOf(sender).walletClient!, address: ctx.registry, abi: identityRegistryAbi, functionName: "registerIdentity", args: [r, toHex(proof), sigs] });
    // ... and on chain: replayed for another owner, the signatures recover to non-authorities.
    const mallory = clientsOf(9).walletClient!.account.address as Address;
    await expect(submit({ ...registration, owner: mallory }, sortAttestationsBySigner(signed), 9)).rejects.toThrow(/NotAuthority/);
    // An authority's signature made for another chain id does not count here either.
    const otherChain = await Promise.all(authorities.map((_, i) => signAttestation(privateKeyToAccount(keccak256(toHex(`chain-authority-test-${i}`))), { ...ctx, chainId: 1 })));
    await expect(submit(registration, sortAttestationsBySigner(otherChain))).rejects.toThrow(ChainError);
    await expect(submit(registration, sortAttestationsBySigner(otherChain))).rejects.toThrow(/NotAuthority/);
    // The genuine ones register the key for the genuine owner.
    await submit(registration, sortAttestationsBySigner(signed));
    expect(await clientsOf(0).publicClient.readContract({ address: ctx.registry, abi: identityRegistryAbi, functionName: "isActive", args: [identityId(registration)] })).toBe(true);
  });

  it("stops counting an authority that has unstaked", async () => {
    const dave = await newIdentity(10);
    const pair = await certificateFor(dave, transportsFor(dave.identity).slice(0, 2));
    const opts = () => ({ now: Date.now(), threshold: 2, chainId: deployment.chainId });
    verifyAccessCertificate(pair.certificate, { ...opts(), authorities: await currentAuthorityKeys() });
    const leaving = authorities[0]!;
    await requestUnstake({ clients: clientsOf(leaving.operator), deployment }, { nodeKey: leaving.nodeKey, amount: STAKE });
    await settle();
    const current = await currentAuthorityKeys();
    expect(current).not.toContain(leaving.nodeKey);
    const err = (() => {
      try {
        verifyAccessCertificate(pair.certificate, { ...opts(), authorities: current });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CertificateError);
    expect((err as CertificateError).kind).toBe("below-threshold");
    // The node that left refuses to sign new ones.
    const refused = await certificateFor(dave, transportsFor(dave.identity).slice(0, 1)).catch((e: unknown) => e);
    expect((refused as AuthorityError).message).toMatch(/not-an-authority/);
  });
});

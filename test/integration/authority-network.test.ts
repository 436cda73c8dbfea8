/**
 * Authority nodes over the network: three authority nodes (connection
 * manager + link RPC + chain PKI + authority service) on loopback TLS, an
 * in-process Hardhat chain, and clients that reach them only over links.
 */
import { network } from "hardhat";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keccak256, parseEther, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { REGISTRATION_POLICY } from "../../node/src/chain/attestation.js";
import { AuthorityError, decodeAuthorityResponse, encodeAuthorityMessage, remoteAttester, requestAccessCertificate } from "../../node/src/authority/service.js";
import { connectAuthorities, linkAuthorityTransport, parseAuthorityPeers, requestAccessCertificateWhenConfirmed, startAuthorityNode, type AuthorityClient, type AuthorityNode } from "../../node/src/authority/node.js";
import { verifyAccessCertificate } from "../../node/src/authority/certificate.js";
import type { ChainClients } from "../../node/src/chain/clients.js";
import type { Deployment } from "../../node/src/chain/deployment.js";
import { identityRegistryAbi } from "../../node/src/chain/generated/abis.js";
import { registerIdentity } from "../../node/src/chain/identities.js";
import { nodeKeyHex, registerNode, signNodeRegistration, stakeNode } from "../../node/src/chain/staking.js";
import { admitNodes } from "../../scripts/lib/governance.js";
import { transact } from "../../node/src/chain/transact.js";
import { generateEd25519KeyPair, type Ed25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { formatIdentity } from "../../node/src/crypto/identity.js";
import { createConnectionManager } from "../../node/src/link/manager.js";
import { RpcCellKind, RpcError, RpcService, createLinkRpc, encodeRpcCells } from "../../node/src/link/rpc.js";
import { CELL_PAYLOAD_LEN, CellCommand } from "../../node/src/wire/cell.js";
import { deployPsp, devnetParams } from "../../scripts/lib/deploy.js";

type Connection = Awaited<ReturnType<typeof network.connect>>;
let connection: Connection;
let deployment: Deployment;
let clientsOf: (index: number) => ChainClients;
const nodes: AuthorityNode[] = [];
let client: AuthorityClient;

const sync = async (): Promise<void> => {
  await Promise.all(nodes.map((n) => n.pki.sync()));
};
/** Retries while the peer refuses "busy" (its request-start rate refills within a second), so the link is shown usable again. */
async function untilNotBusy<T>(attempt: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof AuthorityError && err.kind === "busy") || tries >= 20) throw err;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
const authorityKeys = () => nodes.map((n) => toHex(n.nodeKey));

async function register(ownerIndex: number): Promise<{ keys: Ed25519KeyPair; identity: string; identityId: `0x${string}` }> {
  const keys = generateEd25519KeyPair();
  const { identityId } = await registerIdentity({
    clients: clientsOf(ownerIndex),
    deployment,
    namespace: "peerstream",
    application: "client",
    kind: "account",
    secretKey: keys.secretKey,
    attesters: client.transports.map((t) => remoteAttester(t)),
  });
  await sync();
  return { keys, identityId, identity: formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: keys.publicKey }) };
}

const certOptions = (id: { identity: string; keys: Ed25519KeyPair }, secretKey = id.keys.secretKey) => ({
  transports: client.transports,
  identity: id.identity,
  identitySecretKey: secretKey,
  chainId: deployment.chainId,
  registry: deployment.contracts.IdentityRegistry.address,
  authorities: authorityKeys(),
  threshold: 2,
});

beforeAll(async () => {
  connection = await network.connect();
  const publicClient = await connection.viem.getPublicClient();
  const wallets = await connection.viem.getWalletClients();
  clientsOf = (index) => ({ chain: publicClient.chain, publicClient, walletClient: wallets[index]! }) as unknown as ChainClients;
  ({ deployment } = await deployPsp({ clients: clientsOf(0), network: "test", params: { ...devnetParams, attestationFloor: 2, attestationBps: 0 } }));
  const tokenAbi = [{ type: "function", name: "transfer", stateMutability: "nonpayable", inputs: [{ name: "to", type: "address" }, { name: "amount", type: "uint256" }], outputs: [{ type: "bool" }] }] as const;
  const stake = parseEther("100000");
  for (let i = 0; i < 3; i++) {
    const operator = 1 + i;
    await transact({ publicClient, walletClient: wallets[0]!, address: deployment.contracts.PSPToken.address, abi: tokenAbi, functionName: "transfer", args: [wallets[operator]!.account.address, stake] });
    const identity = generateEd25519KeyPair();
    const signer = privateKeyToAccount(keccak256(toHex(`authority-network-${i}`)));
    const ctx = { clients: clientsOf(operator), deployment };
    const consent = await signNodeRegistration(ctx, { nodeSecretKey: identity.secretKey, signer, operator: wallets[operator]!.account.address });
    await registerNode(ctx, { consent, roles: 4 });
    await stakeNode(ctx, { nodeKey: nodeKeyHex(identity.publicKey), amount: stake });
    // Governance (the devnet timelock) approves the authority role; the node then activates.
    await admitNodes(clientsOf(0), deployment, [{ nodeKey: nodeKeyHex(identity.publicKey), roles: 4 }]);
    nodes.push(
      await startAuthorityNode({
        identitySecretKey: identity.secretKey,
        signer,
        clients: clientsOf(0),
        deployment,
        listen: { host: "127.0.0.1", port: 0 },
        confirmations: 0,
        cacheMs: 600_000,
        followIntervalMs: 60_000, // the test calls sync() itself
        limits: { burst: 40, requestsPerMinute: 60 },
      }),
    );
  }
  for (const [functionName, args] of [["registerNamespace", ["peerstream"]], ["registerApplication", ["peerstream", "client", REGISTRATION_POLICY.open]]] as const) {
    await transact({ publicClient, walletClient: wallets[0]!, address: deployment.contracts.IdentityRegistry.address, abi: identityRegistryAbi, functionName, args } as Parameters<typeof transact>[0]);
  }
  await sync();
  // Clients find the authorities the way the CLI does: from a peers list.
  const peers = parseAuthorityPeers({ authorities: nodes.map((n) => ({ identity: toHex(n.nodeKey), address: n.address })) });
  client = await connectAuthorities(peers);
}, 120_000);

afterAll(async () => {
  await client?.close();
  await Promise.all(nodes.map((n) => n.close()));
  await connection?.close();
});

describe("authority nodes over loopback TLS", () => {
  it("registers an identity end to end over the network and issues it a certificate", async () => {
    const alice = await register(5);
    const issued = await requestAccessCertificateWhenConfirmed(certOptions(alice));
    expect(issued.refusals).toEqual([]);
    const verified = verifyAccessCertificate(issued.certificate, {
      now: Date.now(),
      authorities: (await nodes[0]!.pki.currentAuthorities()).members.map((m) => m.nodeKey),
      threshold: 3,
      chainId: deployment.chainId,
      registry: deployment.contracts.IdentityRegistry.address,
    });
    expect(verified.identityId).toBe(alice.identityId);
    expect(verified.authorities).toHaveLength(3);
    // Every request went over links: each node served attest + challenge + cert-request.
    for (const n of nodes) expect(n.rpc.stats.requestsServed).toBeGreaterThanOrEqual(3);
    expect(client.manager.links()).toHaveLength(3);
  });

  it("gives a revoked identity no certificate", async () => {
    const bob = await register(6);
    await transact({
      publicClient: clientsOf(6).publicClient,
      walletClient: clientsOf(6).walletClient!,
      address: deployment.contracts.IdentityRegistry.address,
      abi: identityRegistryAbi,
      functionName: "revokeIdentity",
      args: [bob.identityId],
    });
    await sync();
    const err = (await requestAccessCertificateWhenConfirmed(certOptions(bob)).catch((e: unknown) => e)) as AuthorityError;
    expect(err).toBeInstanceOf(AuthorityError);
    expect(err.kind).toBe("not-enough-authorities");
    expect(err.refusals.map((r) => r.kind)).toEqual(["identity-revoked", "identity-revoked", "identity-revoked"]);
  });

  it("gives a client that cannot prove its key nothing: no certificate, no attestation", async () => {
    const carol = await register(7);
    const impostor = generateEd25519KeyPair();
    const err = (await requestAccessCertificate(certOptions(carol, impostor.secretKey)).catch((e: unknown) => e)) as AuthorityError;
    expect(err.kind).toBe("not-enough-authorities");
    expect(err.refusals.map((r) => r.kind)).toEqual(["bad-proof", "bad-proof", "bad-proof"]);
    const block = await clientsOf(0).publicClient.getBlock();
    const registration = { owner: clientsOf(8).walletClient!.account.address, namespace: "peerstream", application: "client", kind: 0, key: toHex(impostor.publicKey), deadline: block.timestamp + 600n };
    const attest = remoteAttester(client.transports[0]!);
    await expect(attest({ chainId: deployment.chainId, registry: deployment.contracts.IdentityRegistry.address, registration }, new Uint8Array(64))).rejects.toMatchObject({ kind: "bad-proof" });
  });

  it("refuses a client past its rate limit with a typed error carrying retryAfterMs", async () => {
    // A node client: its own rate-limit bucket ("node:<key>"), separate from the loopback clients'.
    const manager = await createConnectionManager({ identity: generateEd25519KeyPair() });
    const rpc = createLinkRpc({ manager });
    try {
      const transport = linkAuthorityTransport(rpc, nodes[1]!.peer);
      const answers = await Promise.all(Array.from({ length: 45 }, async () => decodeAuthorityResponse(await transport(encodeAuthorityMessage({ t: "challenge-request" })))));
      const refused = answers.filter((a) => a.t === "error");
      expect(answers.filter((a) => a.t === "challenge").length).toBeGreaterThanOrEqual(40);
      expect(refused.length).toBeGreaterThan(0);
      for (const r of refused) expect(r).toMatchObject({ t: "error", kind: "rate-limited", retryAfterMs: expect.any(Number) });
      // The anonymous loopback client has its own budget and is still served.
      const ok = decodeAuthorityResponse(await client.transports[1]!(encodeAuthorityMessage({ t: "challenge-request" })));
      expect(ok.t).toBe("challenge");
    } finally {
      rpc.close();
      await manager.close();
    }
  });

  it("fuzzed RPC cells and garbage requests never crash a node and the link stays usable", async () => {
    const target = nodes[2]!;
    const link = await client.manager.getLink(target.peer);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: CELL_PAYLOAD_LEN }), { minLength: 1, maxLength: 12 }), fc.uint8Array({ maxLength: 3000 }), async (payloads, garbage) => {
        for (const payload of payloads) {
          if (payload.length >= 3 && payload[0]! % 3 === 0) payload.set([RpcCellKind.REQUEST, 0, RpcService.authority]);
          link.send({ circId: 0, command: CellCommand.RPC, payload });
        }
        // A garbage request, whole: the service answers it with a typed error message, or the RPC layer refuses it (oversized).
        const answer = await client.rpc.request(target.peer, "authority", garbage, { timeoutMs: 5000 }).then(
          (bytes) => decodeAuthorityResponse(bytes),
          (e: unknown) => e,
        );
        // The fuzzed cells start requests too, so the node's anonymous start rate may refuse ours: a typed refusal is right.
        if (answer instanceof RpcError && answer.kind === "busy") expect(answer.code).toBe("rate");
        else if (garbage.length > 2048) expect(answer).toMatchObject({ kind: "oversized" });
        else expect(answer).toMatchObject({ t: "error", kind: expect.stringMatching(/malformed-request|unknown-message|too-large|rate-limited/) });
      }),
      { numRuns: 15 },
    );
    // A half-sent request (first of two cells) is dropped after the reassembly deadline; meanwhile others are served.
    link.send(encodeRpcCells(RpcCellKind.REQUEST, RpcService.authority, 0x7fff_0001, new Uint8Array(900))[0]!);
    const challenge = decodeAuthorityResponse(await untilNotBusy(() => client.transports[2]!(encodeAuthorityMessage({ t: "challenge-request" }))));
    expect(challenge.t).toBe("challenge");
    expect(link.isOpen).toBe(true);
    expect(client.manager.findLink(target.peer.identity)).toBe(link);
  });
});

/**
 * The DHT and the authority service reached only through 3-hop circuits,
 * over real TLS on loopback: nodes started with startNode (one per
 * 127.<i>.0.1 so path rules hold), each running its own DhtNode over its
 * link RPC (the full node wiring, bootstrapped from one seed) and offering
 * service "dht" (dht/proxy.ts); an authority node on the in-process Hardhat
 * chain offering service "authority" (authority/circuit.ts). The
 * client's only links are to its entry relays.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { network } from "hardhat";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keccak256, parseEther, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { REGISTRATION_POLICY } from "../../node/src/chain/attestation.js";
import { createAuthorityService, remoteAttester, requestAccessCertificate } from "../../node/src/authority/service.js";
import { authorityCircuitService, circuitAuthorityTransport } from "../../node/src/authority/circuit.js";
import type { ChainClients } from "../../node/src/chain/clients.js";
import type { Deployment } from "../../node/src/chain/deployment.js";
import { identityRegistryAbi } from "../../node/src/chain/generated/abis.js";
import { registerIdentity } from "../../node/src/chain/identities.js";
import { createChainPki, type Pki } from "../../node/src/chain/pki.js";
import { nodeKeyHex, registerNode, signNodeRegistration, stakeNode } from "../../node/src/chain/staking.js";
import { admitNodes } from "../../scripts/lib/governance.js";
import { transact } from "../../node/src/chain/transact.js";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { formatIdentity } from "../../node/src/crypto/identity.js";
import { DhtError } from "../../node/src/dht/errors.js";
import { createCircuitDhtClient, dhtProxyService } from "../../node/src/dht/proxy.js";
import { signRecordAsOwner } from "../../node/src/dht/record.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import type { TlsCredentials } from "../../node/src/link/index.js";
import { startNode } from "../../node/src/node/node.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { createOnionClient } from "../../node/src/onion/onion-client.js";
import type { OnionClientHandle } from "../../node/src/onion/onion-client.js";
import { deployPsp, devnetParams } from "../../scripts/lib/deploy.js";
import { waitFor } from "../helpers/index.js";

const secret = (label: string): Uint8Array => sha256(new TextEncoder().encode(`circuit-services/${label}`));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const DHT = { staticDifficulty: 0, dynamicDifficulty: 4, bucketSize: 8, disjointPaths: 2, alpha: 2, rpcTimeoutMs: 5000 };
const nodes: RunningNode[] = [];
let credentials: TlsCredentials;
let client: OnionClientHandle;

/** Starts relay i on 127.<i+1>.0.1 with extra services made once the node exists (for flush and the DhtNode). */
async function startRelay(i: number, services: (self: () => RunningNode | undefined) => Record<string, ReturnType<typeof dhtProxyService>>, seed?: RunningNode): Promise<RunningNode> {
  const ref: { node?: RunningNode } = {};
  const node = await startNode(
    {
      listen: { host: `127.${i + 1}.0.1`, port: 0 },
      identity: { secretKeyHex: hexOf(secret(`node-${i}`)) },
      api: false,
      dht: { ...DHT, ...(seed ? { seeds: [{ identity: seed.info.identity, host: seed.info.host, port: seed.info.port }] } : {}) },
    },
    { tlsCredentials: credentials, services: services(() => ref.node) },
  );
  ref.node = node;
  nodes.push(node);
  return node;
}

const dhtService = (i: number) => (self: () => RunningNode | undefined) => ({
  dht: dhtProxyService(() => self()?.dht.node, { publisherSecretKey: secret(`node-${i}`), flush: () => self()?.driver.run(() => undefined) }),
});

beforeAll(async () => {
  credentials = await generateTlsCredentials();
  const seed = await startRelay(0, dhtService(0));
  for (let i = 1; i < 4; i++) await startRelay(i, dhtService(i), seed);
  await waitFor("every routing table to hold the other three", () => nodes.every((n) => n.dht.node.table.size === 3));
  client = await createOnionClient({ nodes: nodes.map((n) => n.pathNode) });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await Promise.all(nodes.map((n) => n.close()));
});

describe("the DHT through circuits", () => {
  it("PUT through one circuit, GET through another; a forged record is refused and the circuit stays usable", async () => {
    const [n0, n1, n2, n3] = nodes as [RunningNode, RunningNode, RunningNode, RunningNode];
    const owner = secret("owner");
    const signed = signRecordAsOwner({ ownerSecretKey: owner, name: "presence/0", value: new TextEncoder().encode("reach me here"), seq: 1, expiresAt: Date.now() + 3600_000 });

    const first = await client.buildCircuit({ path: [n0.pathNode, n1.pathNode, n2.pathNode] });
    const putter = createCircuitDhtClient(await first.openStream("dht"));
    const put = await putter.put(signed);
    expect(put.stored).toBeGreaterThanOrEqual(3);
    // The node at the end of the circuit co-signed as publisher.
    expect(hexOf(put.record.publisher)).toBe(n2.info.identity);

    // A record whose owner signature does not verify: typed refusal, nothing stored, the stream goes on.
    const forged = { ...signed, seq: 2, value: new TextEncoder().encode("hijacked") };
    const refusal = await putter.put(forged).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refusal).toBeInstanceOf(DhtError);
    expect((refusal as DhtError).kind).toBe("bad-owner-signature");
    // A replay of an older sequence is refused with its own kind by the storing nodes.
    const older = signRecordAsOwner({ ownerSecretKey: owner, name: "presence/0", value: new TextEncoder().encode("old"), seq: 0, expiresAt: Date.now() + 3600_000 });
    await expect(putter.put(older)).rejects.toMatchObject({ kind: "stale-sequence" });
    expect(first.isOpen).toBe(true);
    const again = await putter.get(signed.key);
    expect(again?.seq).toBe(1);

    // A different circuit, ending at a different node, finds it.
    const second = await client.buildCircuit({ path: [n3.pathNode, n1.pathNode, n0.pathNode] });
    const getter = createCircuitDhtClient(await second.openStream("dht"));
    const found = await getter.get(signed.key);
    expect(found).toBeDefined();
    expect(new TextDecoder().decode(found!.value)).toBe("reach me here");
    expect(hexOf(found!.owner)).toBe(hexOf(ed25519PublicKey(owner)));
    expect(found!.seq).toBe(1);
    expect(await getter.get(sha256(new TextEncoder().encode("nobody")))).toBeUndefined();
    await expect(getter.get(new Uint8Array(5))).rejects.toMatchObject({ kind: "malformed" });
    putter.close();
    getter.close();
    first.close();
    second.close();
  }, 30_000);
});

describe("the authority service through a circuit", () => {
  type Connection = Awaited<ReturnType<typeof network.connect>>;
  let connection: Connection;
  let deployment: Deployment;
  let pki: Pki;
  let authority: RunningNode;
  let clientsOf: (index: number) => ChainClients;

  beforeAll(async () => {
    connection = await network.connect();
    const publicClient = await connection.viem.getPublicClient();
    const wallets = await connection.viem.getWalletClients();
    clientsOf = (index) => ({ chain: publicClient.chain, publicClient, walletClient: wallets[index]! }) as unknown as ChainClients;
    ({ deployment } = await deployPsp({ clients: clientsOf(0), network: "test", params: { ...devnetParams, attestationFloor: 1, attestationBps: 0 } }));
    const tokenAbi = [{ type: "function", name: "transfer", stateMutability: "nonpayable", inputs: [{ name: "to", type: "address" }, { name: "amount", type: "uint256" }], outputs: [{ type: "bool" }] }] as const;
    const stake = parseEther("100000");
    await transact({ publicClient, walletClient: wallets[0]!, address: deployment.contracts.PSPToken.address, abi: tokenAbi, functionName: "transfer", args: [wallets[1]!.account.address, stake] });
    const nodeSecret = secret("node-4");
    const signer = privateKeyToAccount(keccak256(toHex("circuit-services-authority")));
    const ctx = { clients: clientsOf(1), deployment };
    const consent = await signNodeRegistration(ctx, { nodeSecretKey: nodeSecret, signer, operator: wallets[1]!.account.address });
    await registerNode(ctx, { consent, roles: 4 });
    await stakeNode(ctx, { nodeKey: nodeKeyHex(ed25519PublicKey(nodeSecret)), amount: stake });
    await admitNodes(clientsOf(0), deployment, [{ nodeKey: nodeKeyHex(ed25519PublicKey(nodeSecret)), roles: 4 }]);
    for (const [functionName, args] of [["registerNamespace", ["peerstream"]], ["registerApplication", ["peerstream", "client", REGISTRATION_POLICY.open]]] as const) {
      await transact({ publicClient, walletClient: wallets[0]!, address: deployment.contracts.IdentityRegistry.address, abi: identityRegistryAbi, functionName, args } as Parameters<typeof transact>[0]);
    }
    pki = await createChainPki({ clients: clientsOf(0), deployment, confirmations: 0, cacheMs: 600_000, follow: { intervalMs: 60_000 } });
    await pki.sync();
    const service = createAuthorityService({ pki, nodeSecretKey: nodeSecret, signer });
    authority = await startRelay(4, (self) => ({ authority: authorityCircuitService(service, { flush: () => self()?.driver.run(() => undefined) }) }));
  }, 120_000);

  afterAll(async () => {
    pki?.close();
    await connection?.close();
  });

  it("registers an identity and obtains an access certificate with the authority at the end of a circuit", async () => {
    const [n0, n1] = nodes as [RunningNode, RunningNode];
    const circuit = await client.buildCircuit({ path: [n0.pathNode, n1.pathNode, authority.pathNode] });
    const transport = circuitAuthorityTransport(await circuit.openStream("authority"));
    const keys = { secretKey: secret("user"), publicKey: ed25519PublicKey(secret("user")) };
    await registerIdentity({
      clients: clientsOf(2),
      deployment,
      namespace: "peerstream",
      application: "client",
      kind: "account",
      secretKey: keys.secretKey,
      attesters: [remoteAttester(transport)],
    });
    await pki.sync();
    const identity = formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: keys.publicKey });
    const issued = await requestAccessCertificate({
      transports: [transport],
      identity,
      identitySecretKey: keys.secretKey,
      chainId: deployment.chainId,
      registry: deployment.contracts.IdentityRegistry.address,
      authorities: [toHex(ed25519PublicKey(secret("node-4")))],
      threshold: 1,
    });
    expect(issued.refusals).toEqual([]);
    expect(issued.verified.identity).toBe(identity);
    // A key that is not the identity's: the authority refuses with its typed kind, through the same circuit.
    await expect(
      requestAccessCertificate({
        transports: [transport],
        identity,
        identitySecretKey: secret("not-the-user"),
        chainId: deployment.chainId,
        registry: deployment.contracts.IdentityRegistry.address,
        authorities: [toHex(ed25519PublicKey(secret("node-4")))],
        threshold: 1,
      }),
    ).rejects.toMatchObject({ kind: "not-enough-authorities", refusals: [expect.objectContaining({ kind: "bad-proof" })] });
    transport.close();
    circuit.close();
  }, 60_000);
});

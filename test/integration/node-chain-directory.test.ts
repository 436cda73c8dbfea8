/**
 * The discovery service reads the chain: a Hardhat JSON-RPC node with the PSP
 * contracts, three discovery nodes and two onion nodes started by startNode
 * with a `chain` section (2-second voting periods). The trusted discovery set
 * and K come from NodeRegistry.discoverySet() (the configured bootstrap set
 * holds a fourth key that is not on chain); a registered but unstaked onion
 * node is refused "not-registered" and kept out of the consensus; after its
 * operator unstakes, a node drops out of the next consensus; a discovery node
 * whose approval is withdrawn stops being trusted after the refresh.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { encodeFunctionData, parseEther, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectChain } from "../../node/src/chain/clients.js";
import { NodeRole, pspContractsFor } from "../../node/src/chain/contracts.js";
import type { Deployment } from "../../node/src/chain/deployment.js";
import { nodeRegistryAbi } from "../../node/src/chain/generated/abis.js";
import { nodeKeyHex, registerNode, requestUnstake, signNodeRegistration, stakeNode } from "../../node/src/chain/staking.js";
import { admitNodes, governanceExecute } from "../../scripts/lib/governance.js";
import type { OperatorContext } from "../../node/src/chain/staking.js";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { bytesToHexFast } from "../../node/src/directory/config.js";
import type { VerifiedConsensus } from "../../node/src/directory/consensus.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import { ChainRoleView } from "../../node/src/node/chain.js";
import { parseNodeConfig } from "../../node/src/node/config.js";
import { startNode } from "../../node/src/node/node.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { deployPsp, devnetParams, writeDeployment } from "../../scripts/lib/deploy.js";
import { devAccount } from "../../scripts/lib/devnet-accounts.js";
import { startHardhatNode } from "../../scripts/lib/hardhat-node.js";
import type { HardhatNode } from "../../scripts/lib/hardhat-node.js";
import { freePort, waiter } from "../helpers/index.js";

const dir = mkdtempSync(join(tmpdir(), "psp-node-chain-dir-"));
const secret = (label: string): Uint8Array => sha256(new TextEncoder().encode(`node-chain-directory/${label}`));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const schedule = { periodMs: 2000, voteDelayMs: 600, distDelayMs: 600, validPeriods: 3 };
const names = ["discovery-1", "discovery-2", "discovery-3", "onion-staked", "onion-unstaked"] as const;
const identities = names.map((n) => hexOf(ed25519PublicKey(secret(n))));
const nodes: RunningNode[] = [];
let chain: HardhatNode;
let deployment: Deployment;
let operator: OperatorContext;
let admin: Awaited<ReturnType<typeof connectChain>>;

const hostOf = (i: number): string => `127.${i + 1}.0.1`;

const waitFor = waiter({ timeoutMs: 15_000, intervalMs: 100 });

const listed = (c: VerifiedConsensus): string[] => c.entries.map((e) => bytesToHexFast(e.identity)).sort();

beforeAll(async () => {
  chain = await startHardhatNode({ port: 0 });
  admin = await connectChain({ rpcUrl: chain.rpcUrl, account: devAccount(0) });
  ({ deployment } = await deployPsp({ clients: admin, network: "test", params: devnetParams }));
  const deploymentFile = join(dir, "deployment.json");
  await writeDeployment(deploymentFile, deployment);
  const contracts = pspContractsFor(deployment, { public: admin.publicClient, wallet: admin.walletClient! });
  await admin.publicClient.waitForTransactionReceipt({ hash: await contracts.token.write.transfer([devAccount(1).address, parseEther("500000")]) });
  operator = { clients: await connectChain({ rpcUrl: chain.rpcUrl, account: devAccount(1) }), deployment };

  // Discovery nodes: staked for discovery and approved by governance; one onion node staked, one registered only.
  const discoveryKeys: Hex[] = [];
  for (const [i, name] of names.entries()) {
    const nodeKey = nodeKeyHex(identities[i]!);
    const isDiscovery = name.startsWith("discovery");
    const consent = await signNodeRegistration(operator, { nodeSecretKey: secret(name), signer: privateKeyToAccount(generatePrivateKey()), operator: devAccount(1).address });
    await registerNode(operator, { consent, roles: isDiscovery ? NodeRole.onion | NodeRole.discovery : NodeRole.onion });
    if (isDiscovery) {
      await stakeNode(operator, { nodeKey, amount: parseEther("50000") });
      discoveryKeys.push(nodeKey);
    } else if (name === "onion-staked") {
      await stakeNode(operator, { nodeKey, amount: parseEther("1000") });
    }
  }
  await admitNodes(admin, deployment, discoveryKeys.map((nodeKey) => ({ nodeKey, roles: NodeRole.discovery })));

  const credentials = await generateTlsCredentials();
  const ports = await Promise.all(names.map((_, i) => freePort(hostOf(i))));
  // The bootstrap set also names a key the chain does not list (and nothing listens for it).
  const ghost = { identity: hexOf(ed25519PublicKey(secret("ghost"))), host: "127.0.0.1", port: await freePort("127.0.0.1") };
  const discovery = [...[0, 1, 2].map((i) => ({ identity: identities[i]!, host: hostOf(i), port: ports[i]! })), ghost];
  for (const [i, name] of names.entries()) {
    const isDiscovery = name.startsWith("discovery");
    nodes.push(
      await startNode(
        {
          listen: { host: hostOf(i), port: ports[i] },
          identity: { secretKeyHex: hexOf(secret(name)) },
          roles: isDiscovery ? ["onion", "discovery"] : ["onion"],
          dataDir: join(dir, name),
          onion: { services: ["echo"] },
          dht: { staticDifficulty: 0, dynamicDifficulty: 4, ...(i === 0 ? {} : { seeds: [discovery[0]!] }) },
          directory: { discovery, schedule, publishIntervalMs: 700, retryMs: 500 },
          chain: { rpcUrl: chain.rpcUrl, deploymentFile, confirmations: 0, cacheMs: 60_000, refreshMs: 300, followMs: 100 },
        },
        { tlsCredentials: credentials },
      ),
    );
  }
}, 40_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  await chain?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("node directory on the chain's NodeRegistry", () => {
  it("trusts the chain's discovery set and lists only registered, staked nodes", async () => {
    for (const node of nodes) {
      const status = await waitFor("the chain's discovery set", () => {
        const s = node.directory!.chainStatus();
        return s.discoverySource === "chain" && s;
      });
      expect(status.chainConnected).toBe(true);
      expect(status.discoverySet.sort()).toEqual(identities.slice(0, 3).sort());
      expect(status.threshold).toBe(2);
    }
    const expected = identities.slice(0, 4).sort();
    const consensus = await waitFor("a consensus of the four staked nodes on onion-staked", () => {
      const c = nodes[3]!.directory!.current();
      return c && listed(c).join() === expected.join() ? c : undefined;
    });
    expect(consensus.signers.length).toBeGreaterThanOrEqual(2);
    expect(consensus.discoverySetSize).toBe(3);
    expect(listed(consensus)).not.toContain(identities[4]);

    // The registered but unstaked node is refused "not-registered" by each discovery node, visible in metrics and counters.
    const metrics = await (await fetch(`${nodes[0]!.info.controlApi}/metrics`)).text();
    expect(metrics).toMatch(/^psp_directory_descriptors_rejected_total\{reason="not-registered"\} [1-9]\d*$/m);
    for (const d of nodes.slice(0, 3)) expect(d.directory!.service!.stats.descriptorsRejected["not-registered"]).toBeGreaterThanOrEqual(1);
    const outcomes = await nodes[4]!.directory!.publisher.publishNow();
    expect(outcomes).toHaveLength(3);
    for (const o of outcomes) expect(o).toMatchObject({ ok: false, kind: "not-registered" });
  }, 30_000);

  it("a node whose operator unstakes drops out of the next consensus", async () => {
    await requestUnstake(operator, { nodeKey: nodeKeyHex(identities[3]!), amount: parseEther("1000") });
    const unstakedAt = Date.now();
    const consensus = await waitFor("a consensus without the unstaked node", () => {
      const c = nodes[0]!.directory!.current();
      return c && c.validAfter > unstakedAt && !listed(c).includes(identities[3]!) ? c : undefined;
    });
    expect(listed(consensus)).toEqual(identities.slice(0, 3).sort());
    const outcomes = await nodes[3]!.directory!.publisher.publishNow();
    for (const o of outcomes) expect(o).toMatchObject({ ok: false, kind: "not-registered" });
  }, 20_000);

  it("a discovery node withdrawn from the on-chain set stops being trusted after the refresh", async () => {
    await governanceExecute(admin, deployment, [
      {
        target: deployment.contracts.NodeRegistry.address,
        data: encodeFunctionData({ abi: nodeRegistryAbi, functionName: "approveRole", args: [nodeKeyHex(identities[2]!), NodeRole.discovery, false] }),
      },
    ]);
    const remaining = identities.slice(0, 2).sort();
    for (const node of nodes) {
      await waitFor("the shrunken discovery set", () => node.directory!.chainStatus().discoverySet.sort().join() === remaining.join());
    }
    // The withdrawn node stopped voting: it fetches like any other node now.
    expect(nodes[2]!.directory!.service).toBeUndefined();
    expect(nodes[2]!.directory!.client).toBeDefined();
    const changedAt = Date.now();
    const consensus = await waitFor("a consensus signed by the two remaining discovery nodes", () => {
      const c = nodes[4]!.directory!.current();
      return c && c.validAfter > changedAt ? c : undefined;
    });
    expect(consensus.discoverySetSize).toBe(2);
    expect(consensus.signers.map(bytesToHexFast).sort()).toEqual(remaining);
  }, 20_000);
});

describe("node directory: chain configuration and fallback", () => {
  it("validates the chain section and needs it (or an offline registry) on discovery nodes", () => {
    const base = { listen: { host: "127.0.0.1", port: 0 }, directory: { discovery: [{ identity: identities[0]!, host: "127.0.0.1", port: 1 }] } };
    const chainSection = { rpcUrl: "http://127.0.0.1:8545", deploymentFile: "deployments/localhost.json" };
    const parsed = parseNodeConfig({ ...base, roles: ["discovery"], chain: chainSection });
    expect(parsed.directory?.chain).toEqual(chainSection);
    expect(parseNodeConfig(parsed)).toEqual(parsed); // startNode parses what loadNodeConfig returned
    expect(() => parseNodeConfig({ ...base, directory: { ...base.directory, chain: chainSection } })).toThrow(/directory.chain: unknown field/);
    expect(() => parseNodeConfig({ ...base, roles: ["discovery"] })).toThrow(expect.objectContaining({ kind: "bad-config", message: expect.stringContaining('"chain" section') }));
    expect(() => parseNodeConfig({ ...base, chain: { ...chainSection, rpcUrl: "ws:nope" } })).toThrow(
      expect.objectContaining({ kind: "bad-config", message: expect.stringContaining("chain.rpcUrl") }),
    );
    expect(() => parseNodeConfig({ ...base, chain: { ...chainSection, confirmations: -1 } })).toThrow(/chain.confirmations/);
    expect(() => parseNodeConfig({ ...base, chain: { ...chainSection, extra: 1 } })).toThrow(/chain.extra: unknown field/);
    // A bridge marks its descriptor so discovery nodes never list it.
    expect(parseNodeConfig({ ...base, directory: { ...base.directory, bridge: true } }).directory?.bridge).toBe(true);
    expect(() => parseNodeConfig({ ...base, directory: { ...base.directory, bridge: "yes" } })).toThrow(/directory.bridge: must be true or false/);
  });

  it("trusts the configured set, and says why, when the chain cannot be reached at start", async () => {
    const deadRpc = `http://127.0.0.1:${await freePort("127.0.0.1")}`;
    const discovery = [0, 1].map((i) => ({ identity: identities[i]!, host: hostOf(i), port: 1 }));
    const node = await startNode({
      listen: { host: "127.0.0.1", port: 0 },
      identity: { secretKeyHex: hexOf(secret("offline")) },
      dht: { staticDifficulty: 0 },
      directory: { discovery, retryMs: 500 },
      chain: { rpcUrl: deadRpc, deploymentFile: join(dir, "deployment.json"), refreshMs: 200 },
    });
    try {
      const status = await waitFor("a failed chain read", () => node.directory!.chainStatus().lastError !== undefined && node.directory!.chainStatus());
      expect(status).toMatchObject({ discoverySource: "config", chainConnected: false, threshold: 2 });
      expect(status.discoverySet.sort()).toEqual(identities.slice(0, 2).sort());
      expect(status.lastError).toMatch(/cannot reach the JSON-RPC endpoint/);
    } finally {
      await node.close();
    }
  }, 15_000);
});

describe("ChainRoleView", () => {
  it("answers from the last chain read, keeps it when a read fails, and treats 0 bits as not registered", async () => {
    const answers = new Map<string, number | Error>();
    const view = new ChainRoleView({
      nodeRoles: async (key) => {
        const a = answers.get(key);
        if (a instanceof Error) throw a;
        return a ?? 0;
      },
    });
    const staked = ed25519PublicKey(secret("view-staked"));
    const unstaked = ed25519PublicKey(secret("view-unstaked"));
    answers.set(nodeKeyHex(staked), 3);
    expect(view.roles(staked)).toBeUndefined(); // never read: unknown counts as not registered
    expect(await view.resolve(staked)).toBe(3);
    expect(await view.resolve(unstaked)).toBeUndefined();
    answers.set(nodeKeyHex(staked), new Error("rpc down"));
    await view.refresh([staked, unstaked]);
    expect(view.roles(staked)).toBe(3);
    expect(view.stats).toMatchObject({ lookups: 4, lookupFailures: 1 });
    answers.set(nodeKeyHex(staked), 0);
    await view.refresh([staked]);
    expect(view.roles(staked)).toBeUndefined();
  });
});

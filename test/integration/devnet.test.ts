/**
 * The devnet as `npm start` runs it: a real Hardhat JSON-RPC chain, contracts
 * deployed, nodes staked, the demo identity registered with attestations.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectChain } from "../../node/src/chain/clients.js";
import { pspContractsFor } from "../../node/src/chain/contracts.js";
import { readDeployment } from "../../node/src/chain/deployment.js";
import { parseIdentity } from "../../node/src/crypto/identity.js";
import { startDevnet, type Devnet, type DevnetState } from "../../scripts/lib/devnet.js";

describe("devnet", () => {
  let dir: string;
  let devnet: Devnet;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "psp-devnet-"));
    devnet = await startDevnet({ port: 0, apiPort: 0, dir, deploymentFile: join(dir, "deployment.json") });
  });
  afterAll(async () => {
    await devnet?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("writes a state file that matches the chain", async () => {
    const state = JSON.parse(await readFile(join(dir, "state.json"), "utf8")) as DevnetState;
    expect(state).toEqual(JSON.parse(JSON.stringify(devnet.state)));
    expect(state.chainId).toBe(31337);
    expect(state.nodes).toHaveLength(11);
    for (const node of state.nodes) {
      const parsed = parseIdentity(node.identity);
      expect(parsed.kind).toBe("node");
      expect(Buffer.from(parsed.publicKey).toString("hex")).toBe(node.nodeKey.slice(2));
    }
    const deployment = await readDeployment(state.deploymentFile);
    expect(deployment.contracts.NodeRegistry.address).toBe(state.contracts.NodeRegistry);
  });

  it("has staked nodes of every role in the on-chain sets, ordered by stake", async () => {
    const { state } = devnet;
    const deployment = await readDeployment(state.deploymentFile);
    const clients = await connectChain({ rpcUrl: state.rpcUrl, expectedChainId: 31337 });
    const { nodeRegistry } = pspContractsFor(deployment, { public: clients.publicClient });
    const byName = (name: string) => state.nodes.find((n) => n.name === name)!.nodeKey;
    const [authorities] = await nodeRegistry.read.authoritySet();
    expect(authorities).toEqual([byName("authority-1"), byName("authority-2"), byName("authority-3")]);
    const [oracles] = await nodeRegistry.read.oracleSet();
    expect(oracles).toEqual([byName("oracle-1"), byName("oracle-2")]);
    const [discovery] = await nodeRegistry.read.discoverySet();
    expect(discovery).toEqual([byName("discovery-1"), byName("discovery-2"), byName("discovery-3")]);
    expect(state.sets.authority).toEqual([...authorities]);
  });

  it("registered, subscribed and receipted the demo identity on chain", async () => {
    const { state } = devnet;
    const deployment = await readDeployment(state.deploymentFile);
    const clients = await connectChain({ rpcUrl: state.rpcUrl });
    const c = pspContractsFor(deployment, { public: clients.publicClient });
    const id = state.demo.identity.identityId;
    expect(await c.identityRegistry.read.isActive([id])).toBe(true);
    expect((await c.identityRegistry.read.ownerOf([id])).toLowerCase()).toBe(state.demo.identity.owner.toLowerCase());
    const now = BigInt(Math.floor(Date.now() / 1000));
    expect(await c.subscriptions.read.isSubscribed([id, now])).toBe(true);
    expect(await c.subscriptions.read.isSubscribed([id, BigInt(state.demo.subscription.expiresAt + 1)])).toBe(false);
    // Subscription payments land in the reward pool.
    expect(await c.token.read.balanceOf([deployment.contracts.BandwidthRewards.address])).toBeGreaterThan(0n);
    expect(state.demo.receipts.verified).toBe(true);
  });

  it("serves its control API: status, live sets, nodes, identities, metrics, clear errors", async () => {
    const { state } = devnet;
    const get = async (path: string) => {
      const res = await fetch(state.controlApi + path);
      return { status: res.status, body: res.headers.get("content-type")?.includes("json") ? ((await res.json()) as Record<string, unknown>) : await res.text() };
    };
    const status = await get("/v1/status");
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ role: "devnet", chainId: 31337, nodes: 11, sets: { authority: "3", oracle: "2", discovery: "3" } });

    const sets = (await get("/v1/chain/sets")).body as { authority: { name: string }[] };
    expect(sets.authority.map((a) => a.name)).toEqual(["authority-1", "authority-2", "authority-3"]);

    const node = await get("/v1/nodes/oracle-1");
    expect(node.body).toMatchObject({ name: "oracle-1", chain: { registered: true, memberOf: ["oracle"] } });
    expect((await get("/v1/nodes/nobody")).status).toBe(404);
    expect((await get("/v1/nodes/NOT..valid")).status).toBe(400);

    const identity = await get(`/v1/identities/${state.demo.identity.identityId}`);
    expect(identity.body).toMatchObject({ status: "active", subscription: { active: true } });
    expect((await get(`/v1/identities/0x${"00".repeat(32)}`)).status).toBe(404);
    expect((await get("/v1/identities/0x1234")).status).toBe(400);

    const metrics = await get("/metrics");
    expect(metrics.body).toMatch(/psp_devnet_block_number\{process="devnet"\} \d+/);
    expect(metrics.body).toMatch(/psp_devnet_bonded_stake_psp\{process="devnet"\} 7\d{5}/);
    expect((await get("/v1/nope")).status).toBe(404);
  });
});

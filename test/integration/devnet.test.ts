/**
 * The devnet as `npm start` runs it: a real Hardhat JSON-RPC chain, contracts
 * deployed, eleven staked nodes of every role each running as its own
 * `psp node run` process, the demo identity registered through the
 * authority nodes and holding their access certificate.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { toHex } from "viem";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { register as registerCertCommands } from "../../node/src/cli/cert.js";
import { register as registerIdentityCommands } from "../../node/src/cli/identity.js";
import { encryptEvmKeystore } from "../../node/src/crypto/evm-keystore.js";
import { devAccount } from "../../scripts/lib/devnet-accounts.js";
import { connectChain } from "../../node/src/chain/clients.js";
import { pspContractsFor } from "../../node/src/chain/contracts.js";
import { readDeployment } from "../../node/src/chain/deployment.js";
import { verifyAccessCertificate } from "../../node/src/authority/certificate.js";
import { parseIdentity } from "../../node/src/crypto/identity.js";
import { startDevnet, type Devnet, type DevnetState } from "../../scripts/lib/devnet.js";
import { describeNodeMetrics } from "../suites/node-metrics.js";

describe("devnet", () => {
  let dir: string;
  let devnet: Devnet;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "psp-devnet-"));
    devnet = await startDevnet({
      port: 0,
      apiPort: 0,
      dir,
      deploymentFile: join(dir, "deployment.json"),
      schedule: { periodMs: 2000, voteDelayMs: 600, distDelayMs: 600, validPeriods: 3 },
    });
    // Eleven node processes start at once: on a loaded machine that takes minutes, not seconds.
  }, 240_000);
  // Every node's /metrics against docs/METRICS.md, on this devnet.
  describeNodeMetrics(() => devnet.state);

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

  it("runs its authority and oracle nodes as psp node run processes; the demo identity got its certificate through them over TLS", async () => {
    const { state } = devnet;
    const authorities = state.nodes.filter((n) => n.roles.includes("authority"));
    expect(authorities).toHaveLength(3);
    expect(devnet.authorities).toHaveLength(3);
    const statusOf = async (node: (typeof state.nodes)[number]) =>
      (await (await fetch(`${node.controlApi}/v1/status`)).json()) as Record<string, { inSet: boolean | null; signer: string; requests?: number }>;
    for (const node of [...authorities, ...state.nodes.filter((n) => n.roles.includes("oracle"))]) {
      expect(node.addresses[0]).toMatch(/^127\.\d+\.0\.1:\d+$/);
      expect(node.pid).toBeGreaterThan(0);
      const role = node.roles.includes("authority") ? "authority" : "oracle";
      let status = await statusOf(node);
      for (let i = 0; i < 40 && status[role]?.inSet === null; i++) {
        await new Promise((r) => setTimeout(r, 250));
        status = await statusOf(node);
      }
      // The chain counts it in its set, with the signer the devnet registered.
      expect(status[role]).toMatchObject({ inSet: true });
      expect(status[role]!.signer.toLowerCase()).toBe(node.signer.toLowerCase());
      // Each authority answered the demo's attestation and certificate requests over its links.
      if (role === "authority") expect(status.authority!.requests).toBeGreaterThanOrEqual(3);
    }
    const certificate = new Uint8Array(await readFile(state.demo.certificate.file));
    const verified = verifyAccessCertificate(certificate, {
      now: Date.now(),
      authorities: state.sets.authority,
      threshold: 2,
      chainId: state.chainId,
      registry: state.contracts.IdentityRegistry!,
    });
    expect(verified.identityId).toBe(state.demo.identity.identityId);
    expect(verified.identity).toBe(state.demo.identity.identity);
    expect(state.demo.certificate).toMatchObject({ verified: true, authorities: verified.authorities.length });
    expect(state.demo.endToEndMs).toBeGreaterThan(0);
  });

  it("the psp CLI creates, registers and shows an identity and gets it a certificate from the authority nodes over TLS", async () => {
    const { state } = devnet;
    const keyFile = join(dir, "bob.key");
    const keystore = join(dir, "bob-owner.json");
    const owner = devAccount(13); // a funded devnet user
    await writeFile(keystore, await encryptEvmKeystore(toHex(owner.getHdKey().privateKey!), "owner pass", { scryptN: 2 ** 10 }));
    const saved = { key: process.env.PSP_KEY_PASSWORD, store: process.env.PSP_KEYSTORE_PASSWORD };
    process.env.PSP_KEY_PASSWORD = "bob pass";
    process.env.PSP_KEYSTORE_PASSWORD = "owner pass";
    const out: string[] = [];
    const err: string[] = [];
    const log = vi.spyOn(console, "log").mockImplementation((line: unknown) => void out.push(String(line)));
    const warn = vi.spyOn(console, "error").mockImplementation((line: unknown) => void err.push(String(line)));
    const psp = async (...args: string[]): Promise<string> => {
      const program = new Command().name("psp").exitOverride();
      registerIdentityCommands(program);
      registerCertCommands(program);
      out.length = 0;
      await program.parseAsync(["node", "psp", ...args]);
      return out.join("\n");
    };
    const chainArgs = ["--rpc", state.rpcUrl, "--deployment", state.deploymentFile];
    const stateFile = join(dir, "state.json");
    try {
      const identity = (await psp("identity", "create", "--out", keyFile)).trim();
      expect(identity).toMatch(/^peerstream\.client\.account\./);
      expect(await psp("identity", "show", "--key-file", keyFile, ...chainArgs)).toMatch(/status\s+none/);
      const registered = await psp("identity", "register", "--key-file", keyFile, "--keystore", keystore, "--authorities", stateFile, ...chainArgs);
      expect(registered).toContain(`registered ${identity}`);
      const shown = JSON.parse(await psp("identity", "show", "--identity", identity, "--json", ...chainArgs)) as { status: string; owner: string };
      expect(shown.status).toBe("active");
      expect(shown.owner.toLowerCase()).toBe(owner.address.toLowerCase());
      const certOut = join(dir, "bob.cert");
      const requested = await psp("cert", "request", "--key-file", keyFile, "--out", certOut, "--authorities", stateFile, ...chainArgs);
      expect(requested).toMatch(/authorities\s+[23] counted/);
      expect(await psp("cert", "verify", certOut, ...chainArgs)).toMatch(/^valid\n/);
      // Nothing went through the in-process devnet path.
      expect(err.join("\n")).not.toMatch(/DEVNET PATH/);
      // A list naming no current authority is refused before anything is dialed.
      const stranger = join(dir, "stranger.json");
      await writeFile(stranger, JSON.stringify([{ identity: `0x${"11".repeat(32)}`, host: "127.0.0.1", port: 9 }]));
      await expect(psp("cert", "request", "--key-file", keyFile, "--authorities", stranger, ...chainArgs)).rejects.toMatchObject({ kind: "bad-argument" });
    } finally {
      log.mockRestore();
      warn.mockRestore();
      process.env.PSP_KEY_PASSWORD = saved.key;
      process.env.PSP_KEYSTORE_PASSWORD = saved.store;
      if (saved.key === undefined) delete process.env.PSP_KEY_PASSWORD;
      if (saved.store === undefined) delete process.env.PSP_KEYSTORE_PASSWORD;
    }
  });

  it("runs every node as a process; the discovery nodes sign a consensus listing them all with their role flags", async () => {
    const running = devnet.state.nodes.filter((n) => n.controlApi);
    expect(running).toHaveLength(11);
    const first = await devnet.firstConsensus;
    expect(first.signers).toBeGreaterThanOrEqual(2);
    // Descriptors reach the discovery nodes over the first periods: wait until one consensus lists every node.
    const wanted = running.map((n) => n.nodeKey.slice(2).toLowerCase()).sort();
    let listed: { identity: string; flags: string[] }[] = [];
    const ids = () =>
      listed
        .map((n) => n.identity.toLowerCase())
        .sort()
        .join();
    for (let attempt = 0; attempt < 60 && ids() !== wanted.join(); attempt++) {
      const res = await fetch(`${running.find((n) => n.name === "onion-1")!.controlApi}/v1/consensus`);
      if (res.ok) listed = ((await res.json()) as { nodes: { identity: string; flags: string[] }[] }).nodes;
      if (ids() !== wanted.join()) await new Promise((r) => setTimeout(r, 500));
    }
    expect(ids()).toBe(wanted.join());
    // Role flags are set only where the chain agrees with the descriptor.
    for (const node of running) {
      const entry = listed.find((e) => e.identity.toLowerCase() === node.nodeKey.slice(2).toLowerCase())!;
      for (const role of node.roles) expect(entry.flags).toContain(role);
    }
  }, 90_000);

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

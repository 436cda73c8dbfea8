/**
 * createPspClient against a real devnet (chain, contracts, eleven node
 * processes, 2-second voting periods): the app of docs/CLIENT.md run
 * verbatim as its own Node process importing the built package, the other
 * bootstrap sources (nodes + discovery keys, a consensus file), and the
 * refusals an app meets (wrong trust roots, no identity, a closed client).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPspClient } from "../../node/src/client/client.js";
import { NodeFlag } from "../../node/src/directory/config.js";
import type { PspClient } from "../../node/src/client/client.js";
import { projectRoot } from "../../scripts/lib/artifacts.js";
import { startDevnet, waitForConsensusListing, type Devnet } from "../../scripts/lib/devnet.js";
import { TEST_DEVNET_SCHEDULE } from "../helpers/devnet.js";

const run = promisify(execFile);
let root: string;
let devnet: Devnet;
const clients: PspClient[] = [];

beforeAll(async () => {
  // root/devnet is the devnet's folder, so the example's relative paths hold with root as the working directory.
  root = await mkdtemp(join(tmpdir(), "psp-client-"));
  devnet = await startDevnet({
    port: 0,
    apiPort: 0,
    dir: join(root, "devnet"),
    deploymentFile: join(root, "deployment.json"),
    schedule: TEST_DEVNET_SCHEDULE,
  });
  await devnet.firstConsensus;
  // Descriptors reach the discovery nodes over the first periods: wait for a consensus listing all eleven.
  await waitForConsensusListing(devnet.state.nodes, devnet.state.nodes.length, 240_000);
}, 300_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await devnet?.stop();
  await rm(root, { recursive: true, force: true });
});

async function track(client: Promise<PspClient>): Promise<PspClient> {
  const c = await client;
  clients.push(c);
  return c;
}

describe("the docs/CLIENT.md app", () => {
  it("runs as printed, under 40 lines, against the devnet", async () => {
    const doc = await readFile(join(projectRoot, "docs", "CLIENT.md"), "utf8");
    const example = /```js\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    expect(example!.trimEnd().split("\n").length).toBeLessThan(40);
    // Installed the way an app installs it: node_modules/peerstream-protocol is the package (its exports map, build/).
    expect(existsSync(join(projectRoot, "build", "node", "src", "index.js"))).toBe(true);
    await mkdir(join(root, "node_modules"), { recursive: true });
    await symlink(projectRoot, join(root, "node_modules", "peerstream-protocol"), "dir");
    await writeFile(join(root, "app.mjs"), example!);
    const { stdout, stderr } = await run(process.execPath, ["app.mjs"], { cwd: root, timeout: 90_000 });
    const alice = devnet.state.demo.identity.identity;
    expect(stdout).toMatch(/^consensus: 11 nodes, [23] signatures$/m);
    expect(stdout).toContain(`certified as ${alice} by `);
    expect(stdout).toMatch(/^dht: hello from alice$/m);
    expect(stdout).toMatch(/^echo: ping$/m);
    expect(stderr).not.toMatch(/Error|at .*\.js/);
  }, 120_000);
});

describe("bootstrap sources", () => {
  const discovery = () => ({ keys: devnet.state.sets.discovery.map((k) => k.slice(2)), threshold: devnet.state.sets.discoveryThreshold });
  const someNodes = () =>
    devnet.state.nodes.slice(8).map((n) => {
      const [host, port] = n.addresses[0]!.split(":") as [string, string];
      return { identity: n.nodeKey.slice(2), host, port: Number(port) };
    });

  it("from bootstrap nodes and discovery keys, keeping the consensus in a file another client starts from", async () => {
    const file = join(root, "consensus.bin");
    const first = await track(createPspClient({ bootstrap: { nodes: someNodes(), discovery: discovery(), consensusFile: file }, preemptiveCircuits: 1 }));
    await first.ready;
    expect(first.consensus?.entries).toHaveLength(11);
    const stream = await first.openStream("echo");
    await stream.send(new TextEncoder().encode("through a bootstrap node"));
    expect(new TextDecoder().decode(await stream.receive())).toBe("through a bootstrap node");
    stream.close();
    expect(existsSync(file)).toBe(true);
    // No nodes at all: the file alone bootstraps it (its circuits use the nodes it lists).
    const second = await track(createPspClient({ bootstrap: { consensusFile: file, discovery: discovery() }, preemptiveCircuits: 1 }));
    await second.ready;
    expect(second.consensus?.validAfter).toBeGreaterThan(0);
    const circuit = await second.circuit({ lastHop: devnet.state.nodes[0]!.nodeKey });
    expect(Buffer.from(circuit.path.at(-1)!.identity).toString("hex")).toBe(devnet.state.nodes[0]!.nodeKey.slice(2));
    circuit.close();
    await Promise.all([first.close(), second.close()]);
  }, 60_000);

  it("refuses a consensus signed by keys it does not trust: ready rejects with no-consensus and warnings say why", async () => {
    const strangers = { keys: ["11".repeat(32), "22".repeat(32), "33".repeat(32)] };
    const client = await track(createPspClient({ bootstrap: { nodes: someNodes(), discovery: strangers }, readyTimeoutMs: 3000 }));
    const warnings: Error[] = [];
    client.on("warning", (w) => warnings.push(w));
    await expect(client.ready).rejects.toMatchObject({ kind: "no-consensus" });
    expect(warnings.some((w) => /consensus fetch/.test(w.message))).toBe(true);
    await client.close();
  }, 30_000);

  it("needs an identity for certificates and signed records, and refuses work once closed", async () => {
    const client = await track(createPspClient({ bootstrap: { devnet: join(root, "devnet", "state.json") }, preemptiveCircuits: 1 }));
    await client.ready;
    await expect(client.certificate()).rejects.toMatchObject({ kind: "no-identity" });
    await expect(client.dht.put({ name: "x", value: new Uint8Array(1) })).rejects.toMatchObject({ kind: "no-identity" });
    // Reading needs no identity: the record the example published is found.
    const found = await client.dht.get({ owner: devnet.state.demo.identity.identity, name: "greeting" });
    expect(new TextDecoder().decode(found!.value)).toBe("hello from alice");
    await expect(client.circuit({ lastHop: "ab".repeat(32) })).rejects.toMatchObject({ kind: "bad-option" });
    await client.close();
    await expect(client.openStream("echo")).rejects.toMatchObject({ kind: "closed" });
  }, 60_000);
});

describe("an internal node on the devnet (onion-3)", () => {
  it("is listed without an address and without guard, and carries a circuit that ends at it", async () => {
    const onion3 = devnet.state.nodes.find((n) => n.name === "onion-3")!;
    expect(onion3.internal).toBe(true);
    const client = await track(createPspClient({ bootstrap: { devnet: join(root, "devnet", "state.json") } }));
    await client.ready;
    const entry = client.consensus!.entries.find((e) => Buffer.from(e.identity).toString("hex") === onion3.nodeKey.slice(2))!;
    expect(entry.encodedAddresses).toHaveLength(0);
    expect(entry.flags & NodeFlag.internal).toBe(NodeFlag.internal);
    expect(entry.flags & NodeFlag.guard).toBe(0);
    // The relay before it finds it through the node-only view: the client names it by identity alone.
    const stream = await client.openStream("echo", { lastHop: onion3.nodeKey });
    await stream.send(new TextEncoder().encode("to an internal node"));
    expect(new TextDecoder().decode(await stream.receive())).toBe("to an internal node");
    stream.close();
    await client.close();
  }, 60_000);
});

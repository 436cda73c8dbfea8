/**
 * Node processes with the directory composed in, in one process on loopback:
 * three discovery nodes and two onion nodes started by startNode from their
 * configs alone (2-second voting periods). They publish descriptors, the
 * discovery nodes vote and sign, a non-discovery node fetches, caches and
 * serves the consensus at GET /v1/consensus, its DHT re-seeds from it, and
 * an onion client on the node's consensus builds a circuit through it. One
 * more onion node is internal (issue 20): listed without an address, never
 * a first hop, reached by the relay before it through the node-only view.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { consensusToJson, discoveryStatus as discoveryStatusOf } from "../../node/src/directory/api.js";
import { NodeFlag } from "../../node/src/directory/config.js";
import { consensusToPathNodes } from "../../node/src/directory/path-nodes.js";
import { selectPath } from "../../node/src/onion/path.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { startDirectoryNodes } from "../../scripts/lib/directory-nodes.js";
import { waiter } from "../helpers/index.js";

const dir = mkdtempSync(join(tmpdir(), "psp-node-dir-"));
const secret = (label: string): Uint8Array => sha256(new TextEncoder().encode(`node-directory/${label}`));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const names = ["discovery-1", "discovery-2", "discovery-3", "onion-1", "onion-2", "internal-1"];
const nodes: RunningNode[] = [];

// Each node on its own /16, so a 3-hop path can be chosen among them.
const hostOf = (i: number): string => `127.${i + 1}.0.1`;

const waitFor = waiter({ timeoutMs: 20_000, intervalMs: 100 });

beforeAll(async () => {
  nodes.push(
    ...(await startDirectoryNodes({
      names,
      hostOf,
      secret,
      dataDir: dir,
      directory: (name) => ({ country: "DE", ...(name.startsWith("internal") ? { internal: true } : {}) }),
    })),
  );
}, 30_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe("node process: directory roles", () => {
  it("discovery and onion nodes form a consensus that a non-discovery node serves at /v1/consensus", async () => {
    const onion = nodes[4]!;
    const consensus = await waitFor("a consensus listing all six nodes on onion-2", async () => {
      const res = await fetch(`${onion.info.controlApi}/v1/consensus`);
      if (res.status !== 200) return undefined;
      const body = (await res.json()) as { nodes: { identity: string; flags: string[] }[]; signers: string[] };
      return body.nodes.length === names.length ? body : undefined;
    });
    expect(consensus.signers.length).toBeGreaterThanOrEqual(2);
    expect(consensus.nodes.map((n) => n.identity).sort()).toEqual(nodes.map((n) => n.info.identity).sort());
    const discoveryEntry = consensus.nodes.find((n) => n.identity === nodes[0]!.info.identity)!;
    expect(discoveryEntry.flags).toEqual(expect.arrayContaining(["running", "valid", "onion", "discovery"]));

    const status = (await (await fetch(`${onion.info.controlApi}/v1/status`)).json()) as { consensus: { nodes: number } | null; discovery?: unknown };
    expect(status.consensus?.nodes).toBe(names.length);
    expect(status.discovery).toBeUndefined();
    const discoveryStatus = (await (await fetch(`${nodes[1]!.info.controlApi}/v1/status`)).json()) as { discovery: { votesCast: number; consensusPublished: number } };
    expect(discoveryStatus.discovery.votesCast).toBeGreaterThanOrEqual(1);
    expect(discoveryStatus.discovery.consensusPublished).toBeGreaterThanOrEqual(1);
    // The response schemas drop nothing: the discovery section and the consensus answer every key the code produces.
    const keysOf = (o: object) => Object.keys(o).sort();
    const producedDiscovery = JSON.parse(JSON.stringify(discoveryStatusOf(nodes[1]!.directory!.service!))) as { lastConsensus: object };
    expect(keysOf(discoveryStatus.discovery)).toEqual(keysOf(producedDiscovery));
    expect(keysOf((discoveryStatus.discovery as unknown as { lastConsensus: object }).lastConsensus)).toEqual(keysOf(producedDiscovery.lastConsensus));
    const producedConsensus = consensusToJson(onion.directory!.current()!);
    expect(keysOf(consensus)).toEqual(keysOf(producedConsensus));
    for (const [i, entry] of producedConsensus.nodes.entries()) expect(keysOf(consensus.nodes[i] ?? {}), entry.identity).toEqual(keysOf(entry));
    expect(await (await fetch(`${onion.info.controlApi}/metrics`)).text()).toMatch(/^psp_directory_consensus_nodes 6$/m);

    // The consensus re-seeded the onion node's DHT.
    const dht = (await (await fetch(`${onion.info.controlApi}/v1/dht/stats`)).json()) as { reseeds: number; tableSize: number };
    expect(dht.reseeds).toBeGreaterThanOrEqual(1);
    // Four from the consensus; the internal node, listed without an address, joins through its own DHT seed.
    expect(dht.tableSize).toBeGreaterThanOrEqual(4);
  }, 30_000);

  it("an onion client on the node's consensus builds a circuit through the listed relays", async () => {
    // The first test waited for onion-2's copy; onion-1 fetches its own on its own schedule.
    // An early consensus may not list every relay yet; a circuit needs three.
    await waitFor("a consensus on onion-1 listing all six nodes", async () => (nodes[3]!.directory?.current()?.entries.length ?? 0) >= names.length);
    // A relay may extend to the internal node once it holds the node-only view naming its address.
    const internalKey = ed25519PublicKey(secret("internal-1"));
    await waitFor("every relay holding the internal node's address", async () => nodes.slice(0, 5).every((n) => n.directory?.internalAddresses(internalKey)?.length));
    const client = await nodes[3]!.createOnionClient();
    try {
      const circuit = await client.buildCircuit({ length: 3 });
      const stream = await circuit.openStream("echo");
      await stream.send(new TextEncoder().encode("through the consensus"));
      expect(new TextDecoder().decode(await stream.receive())).toBe("through the consensus");
    } finally {
      await client.close();
    }
  }, 20_000);

  it("an internal node: listed with no address and never guard, never a first hop, carries circuits as middle and last hop", async () => {
    const held = nodes[3]!.directory!.current()!;
    const internalId = hexOf(ed25519PublicKey(secret("internal-1")));
    const entry = held.entries.find((e) => hexOf(e.identity) === internalId)!;
    expect(entry.encodedAddresses).toHaveLength(0);
    expect(entry.flags & NodeFlag.internal).toBe(NodeFlag.internal);
    expect(entry.flags & NodeFlag.guard).toBe(0);
    // What a client fetches names no address of it anywhere.
    expect(Buffer.from(held.bytes).includes(Buffer.from(hostOf(5).split(".").map(Number)))).toBe(false);
    const pathNodes = consensusToPathNodes(held);
    const internal = pathNodes.find((n) => hexOf(n.identity) === internalId)!;
    expect(internal).toMatchObject({ host: "", port: 0 });
    const byName = (name: string) => pathNodes.find((n) => hexOf(n.identity) === nodes[names.indexOf(name)]!.info.identity)!;
    const client = await nodes[3]!.createOnionClient();
    try {
      for (const path of [
        [byName("discovery-1"), byName("onion-2"), internal],
        [byName("discovery-2"), internal, byName("onion-2")],
      ]) {
        const circuit = await client.buildCircuit({ path });
        const stream = await circuit.openStream("echo");
        await stream.send(new TextEncoder().encode("past an internal node"));
        expect(new TextDecoder().decode(await stream.receive())).toBe("past an internal node");
        circuit.close();
      }
      await expect(client.buildCircuit({ path: [internal, byName("onion-2")] })).rejects.toMatchObject({ kind: "bad-argument" });
      for (let i = 0; i < 20; i++) expect(hexOf(selectPath(pathNodes, { length: 3 })[0]!.identity)).not.toBe(internalId);
    } finally {
      await client.close();
    }
  }, 30_000);
});

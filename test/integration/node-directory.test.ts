/**
 * Node processes with the directory composed in, in one process on loopback:
 * three discovery nodes and two onion nodes started by startNode from their
 * configs alone (2-second voting periods). They publish descriptors, the
 * discovery nodes vote and sign, a non-discovery node fetches, caches and
 * serves the consensus at GET /v1/consensus, its DHT re-seeds from it, and
 * an onion client on the node's consensus builds a circuit through it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import { startNode } from "../../node/src/node/node.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { freePort } from "../helpers/index.js";

const dir = mkdtempSync(join(tmpdir(), "psp-node-dir-"));
const secret = (label: string): Uint8Array => sha256(new TextEncoder().encode(`node-directory/${label}`));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const schedule = { periodMs: 2000, voteDelayMs: 600, distDelayMs: 600, validPeriods: 3 };
const names = ["discovery-1", "discovery-2", "discovery-3", "onion-1", "onion-2"];
const nodes: RunningNode[] = [];

// Each node on its own /16, so a 3-hop path can be chosen among them.
const hostOf = (i: number): string => `127.${i + 1}.0.1`;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  const credentials = await generateTlsCredentials();
  const ports = await Promise.all(names.map((_, i) => freePort(hostOf(i))));
  const identities = names.map((n) => hexOf(ed25519PublicKey(secret(n))));
  const discovery = [0, 1, 2].map((i) => ({ identity: identities[i]!, host: hostOf(i), port: ports[i]! }));
  const registry = Object.fromEntries(names.map((n, i) => [identities[i]!, n.startsWith("discovery") ? ["onion", "discovery"] : ["onion"]]));
  for (const [i, name] of names.entries()) {
    const isDiscovery = name.startsWith("discovery");
    const node = await startNode(
      {
        listen: { host: hostOf(i), port: ports[i] },
        identity: { secretKeyHex: hexOf(secret(name)) },
        roles: isDiscovery ? ["onion", "discovery"] : ["onion"],
        dataDir: join(dir, name),
        onion: { services: ["echo"] },
        dht: { staticDifficulty: 0, dynamicDifficulty: 4, ...(i === 0 ? {} : { seeds: [discovery[0]!] }) },
        directory: { discovery, schedule, publishIntervalMs: 1000, retryMs: 500, country: "DE", ...(isDiscovery ? { registry } : {}) },
      },
      { tlsCredentials: credentials },
    );
    nodes.push(node);
  }
}, 30_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe("node process: directory roles", () => {
  it("discovery and onion nodes form a consensus that a non-discovery node serves at /v1/consensus", async () => {
    const onion = nodes[4]!;
    const consensus = await waitFor("a consensus listing all five nodes on onion-2", async () => {
      const res = await fetch(`${onion.info.controlApi}/v1/consensus`);
      if (res.status !== 200) return undefined;
      const body = (await res.json()) as { nodes: { identity: string; flags: string[] }[]; signers: string[] };
      return body.nodes.length === 5 ? body : undefined;
    });
    expect(consensus.signers.length).toBeGreaterThanOrEqual(2);
    expect(consensus.nodes.map((n) => n.identity).sort()).toEqual(nodes.map((n) => n.info.identity).sort());
    const discoveryEntry = consensus.nodes.find((n) => n.identity === nodes[0]!.info.identity)!;
    expect(discoveryEntry.flags).toEqual(expect.arrayContaining(["running", "valid", "onion", "discovery"]));

    const status = (await (await fetch(`${onion.info.controlApi}/v1/status`)).json()) as { consensus: { nodes: number } | null; discovery?: unknown };
    expect(status.consensus?.nodes).toBe(5);
    expect(status.discovery).toBeUndefined();
    const discoveryStatus = (await (await fetch(`${nodes[1]!.info.controlApi}/v1/status`)).json()) as { discovery: { votesCast: number; consensusPublished: number } };
    expect(discoveryStatus.discovery.votesCast).toBeGreaterThanOrEqual(1);
    expect(discoveryStatus.discovery.consensusPublished).toBeGreaterThanOrEqual(1);
    expect(await (await fetch(`${onion.info.controlApi}/metrics`)).text()).toMatch(/^psp_directory_consensus_nodes 5$/m);

    // The consensus re-seeded the onion node's DHT.
    const dht = (await (await fetch(`${onion.info.controlApi}/v1/dht/stats`)).json()) as { reseeds: number; tableSize: number };
    expect(dht.reseeds).toBeGreaterThanOrEqual(1);
    expect(dht.tableSize).toBe(4);
  }, 30_000);

  it("an onion client on the node's consensus builds a circuit through the listed relays", async () => {
    // The first test waited for onion-2's copy; onion-1 fetches its own on its own schedule.
    // An early consensus may not list every relay yet; a circuit needs three.
    await waitFor("a consensus on onion-1 listing all five nodes", async () => (nodes[3]!.directory?.current()?.entries.length ?? 0) >= 5);
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
});

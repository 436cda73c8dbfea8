/**
 * The DHT over real TLS links: 8 DhtNodes, each with its own connection
 * manager and link RPC endpoint listening on loopback, in one process.
 * Messages travel as RPC cells of service "dht" (CellCommand.RPC,
 * fragmented), signed and verified end to end.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { createDhtIdentity } from "../../node/src/dht/identity.js";
import { LinkDhtTransport, formatLinkAddress } from "../../node/src/dht/link-transport.js";
import { DhtNode } from "../../node/src/dht/node.js";
import { coSignRecord, signRecordAsOwner } from "../../node/src/dht/record.js";
import type { DhtRecord } from "../../node/src/dht/record.js";
import { SqliteRecordStore } from "../../node/src/dht/sqlite-store.js";
import { MemoryRecordStore } from "../../node/src/dht/store.js";
import type { RecordStore } from "../../node/src/dht/store.js";
import { createConnectionManager } from "../../node/src/link/manager.js";
import type { ConnectionManager } from "../../node/src/link/manager.js";
import { RpcService, createLinkRpc } from "../../node/src/link/rpc.js";
import type { LinkRpc } from "../../node/src/link/rpc.js";
import { CellCommand } from "../../node/src/wire/cell.js";

const config = { staticDifficulty: 4, dynamicDifficulty: 4, bucketSize: 8, siblings: 8, disjointPaths: 2, alpha: 2, rpcTimeoutMs: 10_000 };
const seed = (label: string): Uint8Array => sha256(new TextEncoder().encode(`dht-links/${label}`));
const keyPair = (label: string) => {
  const secretKey = seed(label);
  return { secretKey, publicKey: ed25519PublicKey(secretKey) };
};
const alice = keyPair("alice");
const mallory = keyPair("mallory");
const dir = mkdtempSync(join(tmpdir(), "psp-dht-links-"));
const FLOOD_QUOTA = { maxRecordsPerOwner: 4, maxBytesPerOwner: 64 * 1024, maxTotalBytes: 1 << 20 };

interface Peer {
  identity: ReturnType<typeof createDhtIdentity>;
  manager: ConnectionManager;
  rpc: LinkRpc;
  transport: LinkDhtTransport;
  node: DhtNode;
  store: RecordStore;
}
const peers: Peer[] = [];

async function startPeer(i: number, store: RecordStore, port = 0): Promise<Peer> {
  const identity = createDhtIdentity({ address: "unset", staticDifficulty: 4, dynamicDifficulty: 4, seed: seed(`node-${i}`) });
  const manager = await createConnectionManager({
    identity: { secretKey: identity.secretKey, publicKey: identity.publicKey },
    listen: { host: "127.0.0.1", port },
  });
  const address = formatLinkAddress("127.0.0.1", manager.address()!.port);
  const rpc = createLinkRpc({ manager, maxInflightPerPeer: 4 });
  const transport = new LinkDhtTransport({ rpc });
  const node = new DhtNode({ identity: { ...identity, address }, transport, store, config });
  transport.serve((request) => node.handleRequest(request));
  return { identity, manager, rpc, transport, node, store };
}

async function stopPeer(p: Peer): Promise<void> {
  p.transport.close();
  p.rpc.close();
  await p.manager.close();
  p.store.close();
}

function record(owner: { secretKey: Uint8Array }, name: string, publisher: Peer): DhtRecord {
  const signed = signRecordAsOwner({ ownerSecretKey: owner.secretKey, name, value: new TextEncoder().encode(`${name} `.repeat(40)), seq: 1, expiresAt: Date.now() + 3600_000 });
  return coSignRecord(signed, publisher.identity.secretKey);
}

beforeAll(async () => {
  for (let i = 0; i < 8; i++) {
    const store = i === 7 ? new SqliteRecordStore({ path: join(dir, "node-7.db") }) : i === 5 ? new MemoryRecordStore(FLOOD_QUOTA) : new MemoryRecordStore();
    peers.push(await startPeer(i, store));
  }
  for (const p of peers.slice(1)) await p.node.bootstrap([peers[0]!.node.contact]);
  for (const p of peers) await p.node.lookupNode(p.node.nodeId);
  await Promise.all(peers.map((p) => p.node.settled()));
}, 60_000);

afterAll(async () => {
  await Promise.all(peers.map(stopPeer));
  rmSync(dir, { recursive: true, force: true });
});

describe("DHT over TLS links (8 nodes on loopback)", () => {
  it("routing tables fill over links; a record stored from one node is found from another", async () => {
    for (const p of peers) expect(p.node.table.size).toBe(7);
    const r = record(alice, "presence/links", peers[1]!);
    const published = await peers[1]!.node.publish(r);
    expect(published.failed).toEqual([]);
    expect(published.stored.length + (published.storedLocally ? 1 : 0)).toBe(8);
    const found = await peers[6]!.node.findValue(r.key);
    expect(found.record?.value).toEqual(r.value);
    // The request and the response (a ~600-byte record) needed several cells each.
    expect(r.value.length).toBeGreaterThan(494);
    expect(peers[6]!.transport.stats.responsesReceived).toBeGreaterThan(0);
  });

  it("a restarted node (same SQLite file, same port) still serves its records", async () => {
    const r = record(alice, "restart/0", peers[2]!);
    expect(await peers[2]!.node.rpc(peers[7]!.node.contact, { type: "STORE", record: r })).toMatchObject({ type: "STORED", outcome: "stored" });
    const port = peers[7]!.manager.address()!.port;
    await stopPeer(peers[7]!);
    peers[7] = await startPeer(7, new SqliteRecordStore({ path: join(dir, "node-7.db") }), port);
    expect(peers[7].node.contact.address).toBe(formatLinkAddress("127.0.0.1", port));
    // Node 3's old link was closed by the shutdown; the RPC dials a new one.
    const body = await peers[3]!.node.rpc(peers[7].node.contact, { type: "FIND_VALUE", key: r.key });
    expect(body.type).toBe("VALUE");
    expect(body.type === "VALUE" ? body.record.value : undefined).toEqual(r.value);
  });

  it("a forged record sent over the wire is refused with a typed error and the link stays usable", async () => {
    const genuine = record(alice, "forged/0", peers[4]!);
    const forged = { ...genuine, value: new TextEncoder().encode("attacker's address") };
    const to = peers[6]!.node.contact;
    expect(await peers[4]!.node.ping(to)).toBe(true);
    const link = peers[4]!.manager.findLink(to.publicKey);
    expect(link?.isOpen).toBe(true);
    expect(await peers[4]!.node.rpc(to, { type: "STORE", record: forged })).toMatchObject({ type: "ERROR", kind: "bad-owner-signature" });
    expect(peers[6]!.node.store.get(genuine.key, Date.now())).toBeUndefined();
    // Garbage RPC cells (bad kind, fragment past the end) are dropped without closing the link;
    // cells of the retired DHT command are counted as unhandled and dropped.
    const before = peers[6]!.rpc.stats.malformedCells;
    const unhandled = peers[6]!.manager.stats.unhandledCells;
    link!.send({ circId: 0, command: CellCommand.RPC, payload: new Uint8Array([9, 0, RpcService.dht, 0, 0, 0, 1]) });
    link!.send({ circId: 0, command: CellCommand.RPC, payload: new Uint8Array([1, 0, RpcService.dht, 0, 0, 0, 2, 0, 5, 0, 0, 0, 10]) });
    link!.send({ circId: 0, command: CellCommand.DHT, payload: new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 10]) });
    expect(await peers[4]!.node.rpc(to, { type: "STORE", record: genuine })).toMatchObject({ type: "STORED" });
    expect(peers[6]!.rpc.stats.malformedCells).toBe(before + 2);
    expect(peers[6]!.manager.stats.unhandledCells).toBe(unhandled + 1);
    expect(peers[4]!.manager.findLink(to.publicKey)).toBe(link);
    expect(link!.isOpen).toBe(true);
  });

  it("a flood of STOREs from one owner hits its quota without evicting other owners' records", async () => {
    const target = peers[5]!;
    const kept = record(alice, "kept/0", peers[1]!);
    expect(await peers[1]!.node.rpc(target.node.contact, { type: "STORE", record: kept })).toMatchObject({ type: "STORED" });
    // 12 STOREs at once from one peer: the per-peer cap (4 in flight) queues them on the sender's side.
    const flood = Array.from({ length: 12 }, (_, i) => record(mallory, `flood/${i}`, peers[2]!));
    const answers = await Promise.all(flood.map((r) => peers[2]!.node.rpc(target.node.contact, { type: "STORE", record: r })));
    expect(answers.filter((a) => a.type === "STORED")).toHaveLength(FLOOD_QUOTA.maxRecordsPerOwner);
    expect(answers.filter((a) => a.type === "ERROR" && a.kind === "quota-exceeded")).toHaveLength(12 - FLOOD_QUOTA.maxRecordsPerOwner);
    expect(target.store.usage(mallory.publicKey, Date.now()).records).toBe(FLOOD_QUOTA.maxRecordsPerOwner);
    expect(target.store.get(kept.key, Date.now())?.value).toEqual(kept.value);
    expect(peers[2]!.transport.inflight).toBe(0);
    expect(peers[2]!.rpc.stats.busyRefusals + target.rpc.stats.busyRefusals).toBe(0); // queued by the sender, never refused
  });
});

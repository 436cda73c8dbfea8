/**
 * A few dozen real DhtNodes (Ed25519-signed messages, puzzles at low
 * difficulty) over the in-memory transport. Identities and the record
 * owner are seeded, and the in-memory transport never loses a message, so
 * every routing decision (and so every assertion) is the same on every run;
 * the RPC timeout is long because only CPU starvation could trip it here.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { beforeAll, describe, expect, it } from "vitest";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { compareDistance, idsEqual } from "../../node/src/dht/id.js";
import { createDhtIdentity } from "../../node/src/dht/identity.js";
import { MemoryNetwork } from "../../node/src/dht/memory-transport.js";
import { DhtNode } from "../../node/src/dht/node.js";
import { coSignRecord, renewRecord, signRecordAsOwner } from "../../node/src/dht/record.js";
import type { DhtRecord } from "../../node/src/dht/record.js";
import { MemoryRecordStore } from "../../node/src/dht/store.js";
import type { DhtRequest } from "../../node/src/dht/messages.js";

const config = { staticDifficulty: 4, dynamicDifficulty: 4, bucketSize: 8, siblings: 8, disjointPaths: 2, alpha: 2, rpcTimeoutMs: 30_000 };
const network = new MemoryNetwork();
const nodes: DhtNode[] = [];
const stores: MemoryRecordStore[] = [];
const seed = (label: string): Uint8Array => sha256(new TextEncoder().encode(`dht-network/${label}`));
const ownerSecret = seed("owner");
const owner = { secretKey: ownerSecret, publicKey: ed25519PublicKey(ownerSecret) };

/** The `count` nodes of `among` closest to `key`, by global knowledge. */
function closestNodes(key: Uint8Array, among: readonly DhtNode[], count: number): DhtNode[] {
  return [...among].sort((a, b) => compareDistance(a.nodeId, b.nodeId, key)).slice(0, count);
}
/**
 * Every one of the k closest nodes of `among` holds the record, and nobody
 * farther than the (k+1)-th does (the publisher keeps a copy besides the k
 * others it stores on when it is itself among the k closest).
 */
function expectHeldByClosest(key: Uint8Array, among: readonly DhtNode[]): void {
  const k = config.bucketSize;
  const held = new Set(holdersOf(key, among));
  const ranked = closestNodes(key, among, among.length);
  expect(ranked.slice(0, k).filter((n) => !held.has(n)).map((n) => n.contact.address)).toEqual([]);
  expect(ranked.slice(k + 1).filter((n) => held.has(n)).map((n) => n.contact.address)).toEqual([]);
}
const holdersOf = (key: Uint8Array, among: readonly DhtNode[] = nodes): DhtNode[] =>
  among.filter((n) => n.store.get(key, Date.now()) !== undefined);

function makeRecord(name: string, o: { seq?: number; ttlMs?: number; publisher?: DhtNode; value?: string } = {}): DhtRecord {
  const signed = signRecordAsOwner({
    ownerSecretKey: owner.secretKey,
    name,
    value: new TextEncoder().encode(o.value ?? `value of ${name}`),
    seq: o.seq ?? 1,
    expiresAt: Date.now() + (o.ttlMs ?? 3600_000),
  });
  return coSignRecord(signed, publisherKeys.get(o.publisher ?? nodes[0]!)!);
}
const publisherKeys = new Map<DhtNode, Uint8Array>();

beforeAll(async () => {
  for (let i = 0; i < 30; i++) {
    const identity = createDhtIdentity({ address: `mem-${i}`, staticDifficulty: 4, dynamicDifficulty: 4, seed: seed(`node-${i}`) });
    const store = new MemoryRecordStore();
    const node = new DhtNode({ identity, transport: network.transport, store, config });
    network.attach(identity.address, (req) => node.handleRequest(req));
    nodes.push(node);
    stores.push(store);
    publisherKeys.set(node, identity.secretKey);
  }
  for (const node of nodes.slice(1)) await node.bootstrap([nodes[0]!.contact]);
  // A second round lets early joiners learn of later ones.
  for (const node of nodes) await node.lookupNode(node.nodeId);
  await Promise.all(nodes.map((n) => n.settled()));
});

describe("DHT over the in-memory transport", () => {
  it("routing tables are populated only through signed exchanges", () => {
    for (const node of nodes) expect(node.table.size).toBeGreaterThanOrEqual(config.bucketSize);
  });

  it("stores on the k closest nodes and finds the record from any node", async () => {
    const record = makeRecord("presence/0");
    const published = await nodes[3]!.publish(record);
    expect(published.stored.length + (published.storedLocally ? 1 : 0)).toBeGreaterThanOrEqual(config.bucketSize);
    for (const node of nodes) {
      const found = await node.findValue(record.key);
      expect(found.record?.seq).toBe(1);
    }
  });

  it("never returns a forged record, even when holders serve one", async () => {
    const genuine = makeRecord("forged/0");
    const forged = { ...genuine, value: new TextEncoder().encode("attacker's node") };
    // A STORE of it to a responsible node is refused with a typed error...
    const responsible = closestNodes(genuine.key, nodes, 1)[0]!;
    const sender = nodes.find((n) => n !== responsible)!;
    const body = await sender.rpc(responsible.contact, { type: "STORE", record: forged });
    expect(body).toMatchObject({ type: "ERROR", kind: "bad-owner-signature" });
    // ...and when corrupted holders serve it anyway, lookups reject it.
    for (const store of stores) store.injectUnchecked(forged);
    for (const node of nodes.slice(0, 10)) expect((await node.findValue(forged.key)).record).toBeUndefined();
  });

  it("refuses a replayed older sequence number; lookups return the newest", async () => {
    const v1 = makeRecord("replay/0", { seq: 1 });
    const v2 = makeRecord("replay/0", { seq: 2, value: "new" });
    await nodes[4]!.publish(v1);
    const second = await nodes[4]!.publish(v2);
    const holder = second.stored[0]!;
    const body = await nodes[5]!.rpc(holder, { type: "STORE", record: v1 });
    expect(body).toMatchObject({ type: "ERROR", kind: "stale-sequence" });
    for (const node of nodes.slice(0, 10)) expect((await node.findValue(v1.key)).record?.seq).toBe(2);
  });

  it("never returns an expired record, and sweeping wipes it", async () => {
    const live = makeRecord("expiring/0", { ttlMs: 3600_000 });
    const expired = { ...live, expiresAt: Date.now() - 1 };
    for (const store of stores) store.injectUnchecked(expired, 100);
    for (const node of nodes.slice(0, 10)) expect((await node.findValue(expired.key)).record).toBeUndefined();
    const swept = nodes.reduce((sum, n) => sum + n.sweep(), 0);
    expect(swept).toBeGreaterThanOrEqual(nodes.length);
  });

  it("rejects replayed, tampered and bad-puzzle messages with typed errors", async () => {
    const requester = nodes[6]!;
    const target = nodes[7]!;
    let captured: DhtRequest | undefined;
    const spy = new MemoryNetwork();
    spy.attach(target.contact.address, (req) => {
      captured = req;
      return target.handleRequest(req);
    });
    const spyNode = new DhtNode({
      identity: createDhtIdentity({ address: "spy", staticDifficulty: 4, dynamicDifficulty: 4 }),
      transport: spy.transport,
      store: new MemoryRecordStore(),
      config,
    });
    expect(await spyNode.ping(target.contact)).toBe(true);
    expect((await target.handleRequest(captured!)).body).toMatchObject({ type: "ERROR", kind: "replayed-message" });
    const tampered = { ...captured!, nonce: new Uint8Array(16).fill(9) };
    expect((await target.handleRequest(tampered)).body).toMatchObject({ type: "ERROR", kind: "bad-message-signature" });
    const badX = { ...captured!, nonce: new Uint8Array(16).fill(8), sender: { ...captured!.sender, puzzleX: new Uint8Array(32).fill(0xaa) } };
    const badXResult = (await target.handleRequest(badX)).body;
    // Difficulty 4: a random X passes with probability 1/16, then the signature check catches the change.
    expect(["bad-node-id", "bad-message-signature"]).toContain(badXResult.type === "ERROR" ? badXResult.kind : "none");
    const stale = { ...captured!, timestamp: Date.now() - 3600_000 };
    expect((await target.handleRequest(stale)).body).toMatchObject({ type: "ERROR", kind: "stale-message" });
    expect((await target.handleRequest({ junk: true } as unknown as DhtRequest)).body).toMatchObject({ type: "ERROR", kind: "malformed" });
    void requester;
  });

  it("a node refuses to store a record it is not plausibly responsible for", async () => {
    const record = makeRecord("far/0");
    const far = closestNodes(record.key, nodes, nodes.length).at(-1)!;
    expect(far.isResponsibleFor(record.key)).toBe(false);
    const body = await nodes.find((n) => n !== far)!.rpc(far.contact, { type: "STORE", record });
    expect(body).toMatchObject({ type: "ERROR", kind: "not-responsible" });
    expect(far.store.get(record.key, Date.now())).toBeUndefined();
  });

  it("records survive 30% of nodes leaving: holders re-replicate, then the owner renews", async () => {
    const k = config.bucketSize;
    const records = [0, 1, 2].map((i) => makeRecord(`churn/${i}`));
    for (const r of records) {
      const published = await nodes[0]!.publish(r);
      expect(published.stored).toHaveLength(k);
      expectHeldByClosest(r.key, nodes);
    }
    // 9 of 30 nodes leave, chosen among the holders so that copies are really lost. Node 0 (the
    // publisher) and each record's closest holder stay: re-replication needs one surviving copy.
    const keep = new Set([nodes[0]!, ...records.map((r) => closestNodes(r.key, nodes, 1)[0]!)]);
    const leaving = [...new Set(records.flatMap((r) => closestNodes(r.key, nodes, k)))].filter((n) => !keep.has(n)).slice(0, 9);
    expect(leaving).toHaveLength(9);
    for (const n of leaving) network.setOnline(n.contact.address, false);
    const alive = nodes.filter((n) => !leaving.includes(n));
    const survivingCopies = records.map((r) => holdersOf(r.key, alive).length);
    expect(Math.min(...survivingCopies)).toBeGreaterThanOrEqual(1);
    expect(Math.min(...survivingCopies)).toBeLessThan(k / 2);

    // Maintenance on the remaining nodes: drop departed contacts, then re-replicate what they hold.
    for (const n of alive) await n.refreshTable();
    for (const n of alive) expect(n.table.all().some((c) => leaving.some((l) => idsEqual(l.nodeId, c.nodeId)))).toBe(false);
    for (const n of alive) await n.replicate();
    for (const r of records) expectHeldByClosest(r.key, alive);
    for (const node of alive) for (const r of records) expect((await node.findValue(r.key)).record?.seq).toBe(1);

    // The owner's renewal reaches the same k closest live nodes.
    for (const r of records) {
      const renewed = renewRecord(r, { ownerSecretKey: owner.secretKey, publisherSecretKey: publisherKeys.get(nodes[0]!)!, ttlMs: 3600_000, now: Date.now() });
      const result = await nodes[0]!.publish(renewed);
      expect(result.failed.filter((f) => f.error.kind !== "unreachable")).toEqual([]);
      expect(result.stored).toHaveLength(k);
      expectHeldByClosest(r.key, alive);
      for (const node of alive) expect((await node.findValue(r.key)).record?.seq).toBe(2);
    }
    for (const n of leaving) network.setOnline(n.contact.address, true);
  });
});

/**
 * Issue 19 (resource exhaustion) against the DHT, scaled down: forged pings
 * must not fill the replay cache, one sender's share never refuses another,
 * a full cache is reported by the node's own lookups as such, fresh owner
 * keys from one publisher stop at that publisher's quota (across a restart
 * too), and this node's
 * own "busy" never evicts a contact.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import type { Contact } from "../../../node/src/dht/contact.js";
import { DhtError } from "../../../node/src/dht/errors.js";
import { createDhtIdentity } from "../../../node/src/dht/identity.js";
import { isLocalRefusal, rpcToDhtError } from "../../../node/src/dht/link-transport.js";
import { MemoryNetwork } from "../../../node/src/dht/memory-transport.js";
import { DHT_PROTOCOL_VERSION, ReplayGuard } from "../../../node/src/dht/messages.js";
import type { DhtRequest, DhtTransport } from "../../../node/src/dht/messages.js";
import { DhtNode } from "../../../node/src/dht/node.js";
import type { DhtConfig } from "../../../node/src/dht/config.js";
import { coSignRecord, signRecordAsOwner } from "../../../node/src/dht/record.js";
import type { DhtRecord } from "../../../node/src/dht/record.js";
import { SenderQuota } from "../../../node/src/dht/sender-quota.js";
import { SqliteRecordStore } from "../../../node/src/dht/sqlite-store.js";
import { MemoryRecordStore } from "../../../node/src/dht/store.js";
import { RpcError } from "../../../node/src/link/rpc.js";

const BASE: Partial<DhtConfig> = { staticDifficulty: 2, dynamicDifficulty: 2, bucketSize: 4, siblings: 4 };

function makeNode(network: MemoryNetwork, name: string, config: Partial<DhtConfig> = {}, transport: DhtTransport = network.transport): DhtNode {
  const identity = createDhtIdentity({ address: name, staticDifficulty: 2, dynamicDifficulty: 2 });
  const node = new DhtNode({ identity, transport, store: new MemoryRecordStore(), config: { ...BASE, ...config } });
  network.attach(name, (r) => node.handleRequest(r));
  return node;
}

/** A PING from `sender`'s contact with an all-zero signature (what the devnet attacker sent). */
function forgedPing(sender: Contact, i: number): DhtRequest {
  const nonce = new Uint8Array(16);
  new DataView(nonce.buffer).setUint32(0, i);
  return { version: DHT_PROTOCOL_VERSION, sender, nonce, timestamp: Date.now(), body: { type: "PING" }, signature: new Uint8Array(64) };
}

function record(ownerSecret: Uint8Array, publisherSecret: Uint8Array, name: string): DhtRecord {
  const owned = signRecordAsOwner({ ownerSecretKey: ownerSecret, name, value: new Uint8Array(200).fill(7), seq: 1, expiresAt: Date.now() + 3600_000 });
  return coSignRecord(owned, publisherSecret);
}

describe("DHT replay cache under a flood", () => {
  it("forged (zero-signature) pings take no room; an honest signed message is accepted after the flood", async () => {
    const network = new MemoryNetwork();
    const target = makeNode(network, "target", { replay: { maxNoncesPerSender: 8, maxEntries: 16 } });
    const attacker = makeNode(network, "attacker");
    const honest = makeNode(network, "honest");
    for (let i = 0; i < 500; i++) {
      const answer = await target.handleRequest(forgedPing(attacker.contact, i));
      expect(answer.body).toMatchObject({ type: "ERROR", kind: "bad-message-signature" });
    }
    expect(target.stats.refused["bad-message-signature"]).toBe(500);
    expect(target.stats.refused.overloaded).toBeUndefined();
    expect(await honest.ping(target.contact)).toBe(true);
  });

  it("one sender filling its share is refused alone; another sender is still served", async () => {
    const network = new MemoryNetwork();
    const target = makeNode(network, "target", { replay: { maxNoncesPerSender: 8, maxEntries: 64 } });
    const flooder = makeNode(network, "flooder");
    const honest = makeNode(network, "honest");
    const answers = await Promise.all(Array.from({ length: 30 }, () => flooder.rpc(target.contact, { type: "PING" })));
    expect(answers.filter((a) => a.type === "PONG")).toHaveLength(8);
    expect(answers.filter((a) => a.type === "ERROR" && a.kind === "busy")).toHaveLength(22);
    expect(target.stats.refused.busy).toBe(22);
    expect(await honest.ping(target.contact)).toBe(true);
  });

  it("the guard keeps a share per sender and a total, and refuses with retryAfterMs", () => {
    const guard = new ReplayGuard(1000, { maxNoncesPerSender: 2, maxEntries: 3 });
    const a = new Uint8Array(32).fill(1);
    const b = new Uint8Array(32).fill(2);
    const c = new Uint8Array(32).fill(3);
    const nonce = (n: number) => new Uint8Array(16).fill(n);
    guard.check(a, nonce(1), 0, 0);
    guard.check(a, nonce(2), 0, 0);
    expect(() => guard.check(a, nonce(1), 0, 0)).toThrow(expect.objectContaining({ kind: "replayed-message" }));
    const full = (() => {
      try {
        guard.check(a, nonce(3), 0, 0);
      } catch (err) {
        return err;
      }
    })();
    expect(full).toMatchObject({ kind: "busy", category: "transient" }); // the sender's own doing
    expect((full as DhtError).retryAfterMs).toBeGreaterThan(0);
    guard.check(b, nonce(1), 0, 0);
    expect(() => guard.check(c, nonce(1), 0, 0)).toThrow(expect.objectContaining({ kind: "overloaded" }));
    // Once the window passes, old nonces make room again.
    guard.check(c, nonce(1), 2500, 2500);
    expect(guard.sizeOf(c)).toBe(1);
  });

  it("a lookup stopped by this node's own full cache reports it, never 'not found'", async () => {
    const network = new MemoryNetwork();
    const local = makeNode(network, "local", { replay: { maxNoncesPerSender: 4, maxEntries: 4 } });
    const peers = [makeNode(network, "peer-1"), makeNode(network, "peer-2")];
    // Two each: neither fills its share of 4, together they fill local's whole cache.
    for (const peer of peers) for (let i = 0; i < 2; i++) expect(await peer.ping(local.contact)).toBe(true);
    expect(local.table.size).toBe(2);
    const err = await local.findValue(new Uint8Array(32).fill(9)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DhtError);
    expect(err).toMatchObject({ kind: "overloaded", category: "transient" });
    expect(await local.refreshTable()).toBe(0); // and the peers are not blamed
    expect(local.table.size).toBe(2);
    expect(local.stats.localRefusals).toBeGreaterThan(0);
  });
});

describe("DHT storage quota per sending node", () => {
  it("one publisher's fresh owner keys stop at its quota while another publisher's record is stored", async () => {
    const network = new MemoryNetwork();
    const target = makeNode(network, "target", { senderQuota: { maxRecordsPerSender: 5, maxBytesPerSender: 1 << 20, maxBytesPerAddress: 1 << 22 } });
    const flooder = makeNode(network, "flooder");
    const honest = makeNode(network, "honest");
    const kinds: string[] = [];
    const publisherKey = generateEd25519KeyPair();
    for (let i = 0; i < 40; i++) {
      const owner = generateEd25519KeyPair(); // free: a fresh owner each time
      const body = await flooder.rpc(target.contact, { type: "STORE", record: record(owner.secretKey, publisherKey.secretKey, `spam/${i}`) });
      kinds.push(body.type === "ERROR" ? body.kind : body.type);
    }
    expect(kinds.filter((k) => k === "STORED")).toHaveLength(5);
    expect(kinds.filter((k) => k === "quota-exceeded")).toHaveLength(35);
    expect(target.store.count()).toBe(5);
    expect(target.senderUsage(flooder.nodeId).records).toBe(5);
    const alice = generateEd25519KeyPair();
    const body = await honest.rpc(target.contact, { type: "STORE", record: record(alice.secretKey, publisherKey.secretKey, "alice/presence") });
    expect(body).toMatchObject({ type: "STORED", outcome: "stored" });
    expect(target.stats.refused["quota-exceeded"]).toBe(35);
  });

  it("a restarted node still counts what a publisher stored before (the ledger is rebuilt from the SQLite store)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "psp-dht-ledger-"));
    try {
      const network = new MemoryNetwork();
      const senderQuota = { maxRecordsPerSender: 5, maxBytesPerSender: 1 << 20, maxBytesPerAddress: 1 << 22 };
      const identity = createDhtIdentity({ address: "target", staticDifficulty: 2, dynamicDifficulty: 2 });
      const start = () => {
        const node = new DhtNode({ identity, transport: network.transport, store: new SqliteRecordStore({ path: join(dir, "records.db") }), config: { ...BASE, senderQuota } });
        network.attach("target", (r) => node.handleRequest(r));
        return node;
      };
      const flooder = makeNode(network, "flooder");
      const publisherKey = generateEd25519KeyPair();
      const store = async (target: DhtNode, i: number) => {
        const body = await flooder.rpc(target.contact, { type: "STORE", record: record(generateEd25519KeyPair().secretKey, publisherKey.secretKey, `spam/${i}`) });
        return body.type === "ERROR" ? body.kind : body.type;
      };
      const before = start();
      for (let i = 0; i < 3; i++) expect(await store(before, i)).toBe("STORED");
      before.store.close();
      const after = start();
      expect(after.senderUsage(flooder.nodeId).records).toBe(3);
      const kinds = [];
      for (let i = 3; i < 8; i++) kinds.push(await store(after, i));
      expect(kinds).toEqual(["STORED", "STORED", "quota-exceeded", "quota-exceeded", "quota-exceeded"]);
      expect(after.store.count()).toBe(5);
      after.store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("charges bytes per source address across senders, and a re-store moves the charge", () => {
    const quota = new SenderQuota({ maxRecordsPerSender: 10, maxBytesPerSender: 1000, maxBytesPerAddress: 1500 });
    quota.check("k1", 800, "s1", "10.0.0.1", 0);
    quota.charge("k1", 800, 10_000, "s1", "10.0.0.1");
    expect(() => quota.check("k2", 300, "s1", "10.0.0.2", 0)).toThrow(expect.objectContaining({ kind: "quota-exceeded" }));
    expect(() => quota.check("k2", 800, "s2", "10.0.0.1", 0)).toThrow(/per-address/);
    quota.check("k2", 800, "s2", "10.0.0.2", 0);
    // s2 re-stores k1: the charge leaves s1.
    quota.charge("k1", 800, 10_000, "s2", "10.0.0.2");
    expect(quota.usage("s1", 0).records).toBe(0);
    // Expired charges are released.
    expect(quota.usage("s2", 20_000).records).toBe(0);
  });
});

describe("DHT and this node's own limits", () => {
  /** The memory network, but with this node's own request slots refusing ("busy", not from the peer) while `busy` is set. */
  function busyTransport(network: MemoryNetwork, state: { busy: boolean; remote: boolean }): DhtTransport {
    return {
      request: async (contact, message, options) => {
        if (state.busy) throw new DhtError("busy", "queued requests full", { cause: new RpcError("busy", "full", { remote: state.remote }) });
        return network.transport.request(contact, message, options);
      },
    };
  }

  it("isLocalRefusal: only refusals raised by this node itself", () => {
    expect(isLocalRefusal(new DhtError("overloaded", "own replay cache"))).toBe(true);
    expect(isLocalRefusal(new DhtError("busy", "own queue", { cause: new RpcError("busy", "full") }))).toBe(true);
    expect(isLocalRefusal(new DhtError("busy", "peer busy", { cause: new RpcError("busy", "full", { remote: true }) }))).toBe(false);
    // A peer naming "overloaded" in an RPC refusal does not escape blame.
    expect(isLocalRefusal(rpcToDhtError(new RpcError("refused", "x", { code: "overloaded", remote: true })))).toBe(false);
    expect(isLocalRefusal(new DhtError("timeout", "slow peer"))).toBe(false);
  });

  it("local busy never evicts contacts; a peer's own busy still counts against it", async () => {
    const network = new MemoryNetwork();
    const state = { busy: false, remote: false };
    const local = makeNode(network, "local", { staleAfterFailures: 2 }, busyTransport(network, state));
    const peers = [0, 1, 2].map((i) => makeNode(network, `peer-${i}`));
    for (const p of peers) expect(await p.ping(local.contact)).toBe(true);
    expect(local.table.size).toBe(3);
    state.busy = true;
    for (let i = 0; i < 5; i++) await local.lookupNode(new Uint8Array(32).fill(i)).catch((e: unknown) => expect(isLocalRefusal(e)).toBe(true));
    expect(await local.refreshTable()).toBe(0);
    expect(local.table.size).toBe(3);
    expect(local.stats.localRefusals).toBeGreaterThan(0);
    state.remote = true; // the same refusal, but from the peer: that is the peer's failure
    expect(await local.refreshTable()).toBe(3);
    expect(local.table.size).toBe(0);
  });
});

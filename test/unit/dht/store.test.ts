import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import Database from "better-sqlite3";
import { coSignRecord, encodeRecord, signRecordAsOwner, validateRecord } from "../../../node/src/dht/record.js";
import type { DhtRecord } from "../../../node/src/dht/record.js";
import { SqliteRecordStore } from "../../../node/src/dht/sqlite-store.js";
import { MemoryRecordStore } from "../../../node/src/dht/store.js";
import type { RecordStore, StoreQuota } from "../../../node/src/dht/store.js";

const NOW = Date.UTC(2025, 5, 1);
const publisher = generateEd25519KeyPair();
const dir = mkdtempSync(join(tmpdir(), "psp-dht-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function record(ownerSecret: Uint8Array, name: string, o: { seq?: number; expiresAt?: number } = {}): DhtRecord {
  return coSignRecord(
    signRecordAsOwner({ ownerSecretKey: ownerSecret, name, value: new Uint8Array(100).fill(1), seq: o.seq ?? 1, expiresAt: o.expiresAt ?? NOW + 3600_000 }),
    publisher.secretKey,
  );
}

const put = (store: RecordStore, r: DhtRecord, now = NOW) => store.put(r, validateRecord(r, { now }), now);
const quota: StoreQuota = { maxRecordsPerOwner: 5, maxBytesPerOwner: 1_000_000, maxTotalBytes: 1_000_000 };

const stores: Array<[string, () => RecordStore]> = [
  ["memory", () => new MemoryRecordStore(quota)],
  ["sqlite", () => new SqliteRecordStore({ path: join(dir, `q-${Math.random()}.db`), quota })],
];

describe.each(stores)("%s record store", (_name, open) => {
  it("a flood from one owner hits its quota and never evicts other owners' records", () => {
    const store = open();
    const alice = generateEd25519KeyPair();
    const mallory = generateEd25519KeyPair();
    const aliceRecords = [0, 1].map((i) => record(alice.secretKey, `a/${i}`));
    for (const r of aliceRecords) expect(put(store, r)).toBe("stored");
    let refused = 0;
    for (let i = 0; i < 20; i++) {
      try {
        put(store, record(mallory.secretKey, `m/${i}`));
      } catch (e) {
        expect((e as { kind: string }).kind).toBe("quota-exceeded");
        refused++;
      }
    }
    expect(refused).toBe(15);
    expect(store.usage(mallory.publicKey, NOW).records).toBe(5);
    for (const r of aliceRecords) expect(store.get(r.key, NOW)?.seq).toBe(1);
    // An update of an existing key does not count twice against the quota.
    expect(put(store, record(mallory.secretKey, "m/0", { seq: 2 }))).toBe("stored");
    store.close();
  });

  it("total capacity refuses new records instead of evicting", () => {
    const store: RecordStore =
      _name === "memory"
        ? new MemoryRecordStore({ ...quota, maxTotalBytes: 700 })
        : new SqliteRecordStore({ path: join(dir, `cap-${Math.random()}.db`), quota: { ...quota, maxTotalBytes: 700 } });
    const first = record(generateEd25519KeyPair().secretKey, "x");
    put(store, first);
    expect(() => put(store, record(generateEd25519KeyPair().secretKey, "y"))).toThrow(expect.objectContaining({ kind: "store-full" }));
    expect(store.get(first.key, NOW)).toBeDefined();
    store.close();
  });

  it("keeps each record's charge (sender, address) when a peer sent it, none for a local put, and only while it lives", () => {
    const store = open();
    const owner = generateEd25519KeyPair();
    const sent = record(owner.secretKey, "sent");
    const short = record(owner.secretKey, "short", { expiresAt: NOW + 1000 });
    const local = record(owner.secretKey, "local");
    store.put(sent, validateRecord(sent, { now: NOW }), NOW, { sender: "aa".repeat(32), address: "10.0.0.1" });
    store.put(short, validateRecord(short, { now: NOW }), NOW, { sender: "bb".repeat(32) });
    put(store, local);
    const charges = store.charges(NOW);
    expect(charges.map((c) => ({ sender: c.sender, address: c.address })).sort((a, b) => a.sender.localeCompare(b.sender))).toEqual([
      { sender: "aa".repeat(32), address: "10.0.0.1" },
      { sender: "bb".repeat(32), address: undefined },
    ]);
    const [charge] = charges.filter((c) => c.sender === "aa".repeat(32));
    expect(charge).toMatchObject({ size: validateRecord(sent, { now: NOW }), expiresAt: sent.expiresAt });
    expect(Buffer.from(charge!.key).equals(Buffer.from(sent.key))).toBe(true);
    expect(store.charges(NOW + 1000).map((c) => c.sender)).toEqual(["aa".repeat(32)]);
    store.close();
  });

  it("expired records are never returned and are swept", () => {
    const store = open();
    const owner = generateEd25519KeyPair();
    const short = record(owner.secretKey, "short", { expiresAt: NOW + 1000 });
    put(store, short);
    expect(store.get(short.key, NOW)).toBeDefined();
    expect(store.get(short.key, NOW + 1000)).toBeUndefined();
    expect(() => store.put(short, 300, NOW + 2000)).toThrow(expect.objectContaining({ kind: "expired" }));
    expect(store.sweep(NOW + 1000)).toBe(1);
    expect(store.count()).toBe(0);
    store.close();
  });
});

describe("SqliteRecordStore persistence", () => {
  it("keeps records across a restart, with sequence rules intact", () => {
    const path = join(dir, "persist.db");
    const owner = generateEd25519KeyPair();
    const v2 = record(owner.secretKey, "presence/0", { seq: 2 });
    const first = new SqliteRecordStore({ path });
    expect(put(first, v2)).toBe("stored");
    first.close();
    const reopened = new SqliteRecordStore({ path });
    expect(reopened.get(v2.key, NOW)).toEqual(v2);
    expect(reopened.count()).toBe(1);
    expect(() => put(reopened, record(owner.secretKey, "presence/0", { seq: 1 }))).toThrow(expect.objectContaining({ kind: "stale-sequence" }));
    expect(reopened.records(NOW)).toHaveLength(1);
    reopened.close();
  });

  it("keeps charges across a restart, and migrates a schema-1 file in place without losing a record", () => {
    const path = join(dir, "charges.db");
    const owner = generateEd25519KeyPair();
    const r = record(owner.secretKey, "charged");
    const first = new SqliteRecordStore({ path });
    first.put(r, validateRecord(r, { now: NOW }), NOW, { sender: "cc".repeat(32), address: "10.0.0.9" });
    first.close();
    const reopened = new SqliteRecordStore({ path });
    expect(reopened.charges(NOW)).toMatchObject([{ sender: "cc".repeat(32), address: "10.0.0.9", expiresAt: r.expiresAt }]);
    reopened.close();

    // A file written by schema 1 (no charge columns), as a node upgraded in place has.
    const oldPath = join(dir, "schema1.db");
    const old = new Database(oldPath);
    old.exec(`
      CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE records (key BLOB PRIMARY KEY, owner BLOB NOT NULL, seq INTEGER NOT NULL, expires_at INTEGER NOT NULL, size INTEGER NOT NULL, encoded BLOB NOT NULL) WITHOUT ROWID;
      INSERT INTO meta (name, value) VALUES ('schema', 1);
    `);
    old.prepare("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)").run(r.key, r.owner, r.seq, r.expiresAt, validateRecord(r, { now: NOW }), encodeRecord(r));
    old.close();
    const migrated = new SqliteRecordStore({ path: oldPath });
    expect(migrated.get(r.key, NOW)).toEqual(r);
    expect(migrated.charges(NOW)).toEqual([]);
    const next = record(owner.secretKey, "after");
    migrated.put(next, validateRecord(next, { now: NOW }), NOW, { sender: "dd".repeat(32) });
    migrated.close();
    const again = new SqliteRecordStore({ path: oldPath });
    expect(again.records(NOW)).toHaveLength(2);
    expect(again.charges(NOW).map((c) => c.sender)).toEqual(["dd".repeat(32)]);
    again.close();
  });

  it("a bad path is a typed store-io error", () => {
    expect(() => new SqliteRecordStore({ path: join(dir, "missing", "dir", "x.db") })).toThrow(expect.objectContaining({ kind: "store-io" }));
  });
});

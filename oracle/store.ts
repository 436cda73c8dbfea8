/**
 * The oracle's issuance store: better-sqlite3 in WAL mode, so a restarted
 * oracle still knows which identity each of its receipts went to, which
 * batch committed it and the inclusion proof a producer fetches.
 *
 * Owns the schema (version 1, in table meta):
 *   issuance(row_id PK, kind 'linkable'|'blind', receipt_hash, identity,
 *            identity_id, oracle, issued_at, expires_at, key_id, doc,
 *            batch_id, proof)          one row per receipt issued, by this
 *            oracle (oracle = its key) or replicated from another
 *   outbox(row_id, peer, attempts, next_at)   rows still to replicate to a peer
 *   batches(batch_id PK, root, count, committed_at)
 *   blind_keys(key_id PK, pkcs8_pem, spki, b, d, f, valid_from, valid_until)
 * row_id is the linkable receipt's 16-byte id (hex), or a random id for a
 * blind issuance (the oracle never sees a blind receipt's token). `doc` is
 * the issuing oracle's signed row (replication.ts), kept to forward as is.
 *
 * Trusts: its caller for what it stores (the service checked it); the file
 * to be this oracle's own. Every failure is OracleError "store-failed".
 */
import Database from "better-sqlite3";
import type { Database as SqliteDatabase } from "better-sqlite3";
import type { Hex } from "viem";
import { OracleError } from "./errors.js";
import type { ReceiptInclusion, StreamParams } from "../node/src/stream/receipt.js";

export const ORACLE_SCHEMA_VERSION = 1;

export interface IssuanceRow {
  rowId: string;
  kind: "linkable" | "blind";
  /** For linkable receipts: the committed hash; null for blind ones. */
  receiptHash: Hex | null;
  identity: string;
  identityId: Hex;
  /** The issuing oracle's node key, hex. */
  oracle: string;
  issuedAt: number;
  expiresAt: number;
  keyId: Hex | null;
  /** The issuing oracle's signed row. */
  doc: Uint8Array;
}

export interface StoredBlindKey {
  keyId: Hex;
  pkcs8Pem: string;
  spki: Uint8Array;
  params: StreamParams;
  validFrom: number;
  validUntil: number;
}

interface DbRow {
  row_id: string;
  kind: string;
  receipt_hash: string | null;
  identity: string;
  identity_id: string;
  oracle: string;
  issued_at: number;
  expires_at: number;
  key_id: string | null;
  doc: Uint8Array;
  batch_id: number | null;
  proof: string | null;
}

const fromDb = (r: DbRow): IssuanceRow => ({
  rowId: r.row_id,
  kind: r.kind as IssuanceRow["kind"],
  receiptHash: r.receipt_hash as Hex | null,
  identity: r.identity,
  identityId: r.identity_id as Hex,
  oracle: r.oracle,
  issuedAt: r.issued_at,
  expiresAt: r.expires_at,
  keyId: r.key_id as Hex | null,
  doc: new Uint8Array(r.doc),
});

export class OracleStore {
  private readonly db: SqliteDatabase;

  constructor(path: string) {
    try {
      this.db = new Database(path);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS issuance (
          row_id TEXT PRIMARY KEY, kind TEXT NOT NULL, receipt_hash TEXT, identity TEXT NOT NULL, identity_id TEXT NOT NULL,
          oracle TEXT NOT NULL, issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, key_id TEXT, doc BLOB NOT NULL,
          batch_id INTEGER, proof TEXT);
        CREATE INDEX IF NOT EXISTS issuance_hash ON issuance (receipt_hash);
        CREATE INDEX IF NOT EXISTS issuance_pending ON issuance (oracle, batch_id);
        CREATE TABLE IF NOT EXISTS outbox (row_id TEXT NOT NULL, peer TEXT NOT NULL, attempts INTEGER NOT NULL, next_at INTEGER NOT NULL,
          PRIMARY KEY (row_id, peer));
        CREATE TABLE IF NOT EXISTS batches (batch_id INTEGER PRIMARY KEY, root TEXT NOT NULL, count INTEGER NOT NULL, committed_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS blind_keys (key_id TEXT PRIMARY KEY, pkcs8_pem TEXT NOT NULL, spki BLOB NOT NULL, b INTEGER NOT NULL,
          d INTEGER NOT NULL, f INTEGER NOT NULL, valid_from INTEGER NOT NULL, valid_until INTEGER NOT NULL);
      `);
      const version = this.db.prepare<[], { value: number }>("SELECT value FROM meta WHERE name = 'schema'").get();
      if (version === undefined) this.db.prepare("INSERT INTO meta (name, value) VALUES ('schema', ?)").run(ORACLE_SCHEMA_VERSION);
      else if (version.value !== ORACLE_SCHEMA_VERSION) {
        throw new OracleError("store-failed", `oracle store schema ${version.value} is not the supported ${ORACLE_SCHEMA_VERSION}; move the file aside`);
      }
    } catch (err) {
      if (err instanceof OracleError) throw err;
      throw new OracleError("store-failed", `cannot open the oracle store at ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  private run<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new OracleError("store-failed", `oracle store: ${what}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Records an issuance (and queues it for `peers`); false when the row id is already held (a replica seen twice). */
  insert(row: IssuanceRow, peers: readonly string[] = [], now = 0): boolean {
    return this.run("insert issuance", () =>
      this.db.transaction(() => {
        const info = this.db
          .prepare(
            `INSERT OR IGNORE INTO issuance (row_id, kind, receipt_hash, identity, identity_id, oracle, issued_at, expires_at, key_id, doc)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(row.rowId, row.kind, row.receiptHash, row.identity, row.identityId, row.oracle, row.issuedAt, row.expiresAt, row.keyId, row.doc);
        if (info.changes === 0) return false;
        const queue = this.db.prepare("INSERT OR IGNORE INTO outbox (row_id, peer, attempts, next_at) VALUES (?, ?, 0, ?)");
        for (const peer of peers) queue.run(row.rowId, peer, now);
        return true;
      })(),
    );
  }

  get(rowId: string): IssuanceRow | undefined {
    const r = this.run("read issuance", () => this.db.prepare<[string], DbRow>("SELECT * FROM issuance WHERE row_id = ?").get(rowId));
    return r && fromDb(r);
  }

  /** Every row, oldest first (status, tests). */
  all(): IssuanceRow[] {
    return this.run("read issuance", () => this.db.prepare<[], DbRow>("SELECT * FROM issuance ORDER BY issued_at, row_id").all().map(fromDb));
  }

  count(): number {
    return this.run("count", () => this.db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM issuance").get()!.n);
  }

  /** This oracle's linkable receipts not yet in a batch, oldest first. */
  uncommitted(oracle: string, limit: number): { rowId: string; receiptHash: Hex }[] {
    return this.run("read pending", () =>
      this.db
        .prepare<[string, number], { row_id: string; receipt_hash: string }>(
          "SELECT row_id, receipt_hash FROM issuance WHERE oracle = ? AND kind = 'linkable' AND batch_id IS NULL ORDER BY issued_at, row_id LIMIT ?",
        )
        .all(oracle, limit)
        .map((r) => ({ rowId: r.row_id, receiptHash: r.receipt_hash as Hex })),
    );
  }

  /** Records a committed batch and each member's proof, in one transaction. */
  recordBatch(batchId: bigint, root: Hex, committedAt: number, members: readonly { rowId: string; proof: Hex[] }[]): void {
    this.run("record batch", () =>
      this.db.transaction(() => {
        this.db
          .prepare("INSERT INTO batches (batch_id, root, count, committed_at) VALUES (?, ?, ?, ?)")
          .run(Number(batchId), root, members.length, committedAt);
        const set = this.db.prepare("UPDATE issuance SET batch_id = ?, proof = ? WHERE row_id = ?");
        for (const m of members) set.run(Number(batchId), JSON.stringify(m.proof), m.rowId);
      })(),
    );
  }

  /** Where a receipt hash was committed: undefined when unknown, null when not yet committed. */
  inclusion(receiptHash: Hex): ReceiptInclusion | null | undefined {
    const r = this.run("read inclusion", () =>
      this.db
        .prepare<[string], { batch_id: number | null; proof: string | null }>("SELECT batch_id, proof FROM issuance WHERE receipt_hash = ?")
        .get(receiptHash.toLowerCase()),
    );
    if (r === undefined) return undefined;
    if (r.batch_id === null || r.proof === null) return null;
    return { batchId: BigInt(r.batch_id), proof: JSON.parse(r.proof) as Hex[] };
  }

  batches(): { batchId: bigint; root: Hex; count: number }[] {
    return this.run("read batches", () =>
      this.db
        .prepare<[], { batch_id: number; root: string; count: number }>("SELECT batch_id, root, count FROM batches ORDER BY batch_id")
        .all()
        .map((b) => ({ batchId: BigInt(b.batch_id), root: b.root as Hex, count: b.count })),
    );
  }

  // ---------------------------------------------------------- replication outbox

  /** Rows due for `peer` (next_at ≤ now), oldest first. */
  due(peer: string, now: number, limit: number): IssuanceRow[] {
    return this.run("read outbox", () =>
      this.db
        .prepare<[string, number, number], DbRow>(
          "SELECT i.* FROM outbox o JOIN issuance i ON i.row_id = o.row_id WHERE o.peer = ? AND o.next_at <= ? ORDER BY i.issued_at LIMIT ?",
        )
        .all(peer, now, limit)
        .map(fromDb),
    );
  }

  /** Peers with rows waiting. */
  pendingPeers(): string[] {
    return this.run("read outbox", () =>
      this.db
        .prepare<[], { peer: string }>("SELECT DISTINCT peer FROM outbox")
        .all()
        .map((r) => r.peer),
    );
  }

  outboxSize(): number {
    return this.run("count outbox", () => this.db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM outbox").get()!.n);
  }

  delivered(peer: string, rowIds: readonly string[]): void {
    this.run("update outbox", () =>
      this.db.transaction(() => {
        const del = this.db.prepare("DELETE FROM outbox WHERE peer = ? AND row_id = ?");
        for (const id of rowIds) del.run(peer, id);
      })(),
    );
  }

  /** Backs off a failed delivery: attempt n waits min(maxMs, baseMs · 2^n). */
  failed(peer: string, rowIds: readonly string[], now: number, baseMs: number, maxMs: number): void {
    this.run("update outbox", () =>
      this.db.transaction(() => {
        const get = this.db.prepare<[string, string], { attempts: number }>("SELECT attempts FROM outbox WHERE peer = ? AND row_id = ?");
        const set = this.db.prepare("UPDATE outbox SET attempts = ?, next_at = ? WHERE peer = ? AND row_id = ?");
        for (const id of rowIds) {
          const attempts = (get.get(peer, id)?.attempts ?? 0) + 1;
          set.run(attempts, now + Math.min(maxMs, baseMs * 2 ** Math.min(attempts, 20)), peer, id);
        }
      })(),
    );
  }

  // ---------------------------------------------------------- blind keys

  saveBlindKey(key: StoredBlindKey): void {
    this.run("save blind key", () =>
      this.db
        .prepare("INSERT OR REPLACE INTO blind_keys (key_id, pkcs8_pem, spki, b, d, f, valid_from, valid_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .run(key.keyId, key.pkcs8Pem, key.spki, key.params.bitrateKbps, key.params.maxDurationSeconds, key.params.formatFlags, key.validFrom, key.validUntil),
    );
  }

  blindKeys(): StoredBlindKey[] {
    return this.run("read blind keys", () =>
      this.db
        .prepare<[], { key_id: string; pkcs8_pem: string; spki: Uint8Array; b: number; d: number; f: number; valid_from: number; valid_until: number }>(
          "SELECT * FROM blind_keys ORDER BY valid_until",
        )
        .all()
        .map((k) => ({
          keyId: k.key_id as Hex,
          pkcs8Pem: k.pkcs8_pem,
          spki: new Uint8Array(k.spki),
          params: { bitrateKbps: k.b, maxDurationSeconds: k.d, formatFlags: k.f },
          validFrom: k.valid_from,
          validUntil: k.valid_until,
        })),
    );
  }

  close(): void {
    this.db.close();
  }
}

/**
 * The oracle's issuance store: better-sqlite3 in WAL mode, so a restarted
 * oracle still knows which identity each of its receipts went to, which
 * batch committed it and the inclusion proof a producer fetches.
 *
 * Owns the schema (version 2, in table meta; a version-1 file is upgraded in
 * place, since version 2 only adds tables):
 *   issuance(row_id PK, kind 'linkable'|'blind', receipt_hash, identity,
 *            identity_id, oracle, issued_at, expires_at, key_id, doc,
 *            batch_id, proof)          one row per receipt issued, by this
 *            oracle (oracle = its key) or replicated from another
 *   outbox(row_id, peer, attempts, next_at)   rows still to replicate to a peer
 *   batches(batch_id PK, root, count, committed_at)
 *   blind_keys(key_id PK, pkcs8_pem, spki, b, d, f, valid_from, valid_until)
 *   usage_reports(hash PK, epoch, reporter, kind, from_s, to_s, part, doc,
 *            received_at; UNIQUE(reporter, from_s, to_s, part))   every
 *            accepted usage report, own intake or replicated (rewards/report.ts)
 *   report_outbox(hash, peer, attempts, next_at)   reports still to replicate
 *   reward_epochs(epoch PK, root, total, computed_at, summary)   the reward
 *            tree this oracle computed for an epoch (cumulative amounts)
 *   reward_amounts(epoch, account, earned, cumulative)   its leaves
 * row_id is the linkable receipt's 16-byte id (hex), or a random id for a
 * blind issuance (the oracle never sees a blind receipt's token). `doc` is
 * the issuing oracle's signed row (replication.ts), kept to forward as is.
 *
 * Usage intake is acknowledged only after its transaction commits (WAL,
 * synchronous FULL), so an oracle killed at any point restarts with every
 * report it acknowledged and none half-written.
 *
 * Trusts: its caller for what it stores (the service checked it); the file
 * to be this oracle's own. Every failure is OracleError "store-failed".
 */
import Database from "better-sqlite3";
import type { Database as SqliteDatabase } from "better-sqlite3";
import type { Address, Hex } from "viem";
import { OracleError } from "./errors.js";
import type { ReceiptInclusion, StreamParams } from "../node/src/stream/receipt.js";

export const ORACLE_SCHEMA_VERSION = 2;

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

/** Where a replicator reads one kind of row (store.issuanceOutbox(), store.reportOutbox()). */
export interface ReplicationQueue {
  pendingPeers(): string[];
  /** Rows due for `peer` (next_at ≤ now), oldest first: their ids and signed documents. */
  due(peer: string, now: number, limit: number): { id: string; doc: Uint8Array }[];
  size(): number;
  delivered(peer: string, ids: readonly string[]): void;
  /** Backs off a failed delivery: attempt n waits min(maxMs, baseMs · 2^n). */
  failed(peer: string, ids: readonly string[], now: number, baseMs: number, maxMs: number): void;
}

/** A usage report as stored: its key fields and the reporter's signed bytes. */
export interface StoredReport {
  hash: Hex;
  epoch: number;
  /** The signer's key, hex without 0x. */
  reporter: string;
  kind: "node" | "viewer";
  from: number;
  to: number;
  part: number;
  doc: Uint8Array;
}

/** Counts a settlement keeps for status and operators. */
export type RewardSummary = Record<string, number | string>;

/** The reward tree an oracle computed for an epoch: cumulative amounts up to and including it. */
export interface RewardEpochRecord {
  epoch: number;
  root: Hex;
  /** Sum of the cumulative amounts. */
  total: bigint;
  computedAt: number;
  summary: RewardSummary;
  accounts: { account: Address; earned: bigint; cumulative: bigint }[];
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
      // FULL: an acknowledged report or issuance survives an OS crash too, not only a killed process.
      this.db.pragma("synchronous = FULL");
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
        CREATE TABLE IF NOT EXISTS usage_reports (hash TEXT PRIMARY KEY, epoch INTEGER NOT NULL, reporter TEXT NOT NULL, kind TEXT NOT NULL,
          from_s INTEGER NOT NULL, to_s INTEGER NOT NULL, part INTEGER NOT NULL, doc BLOB NOT NULL, received_at INTEGER NOT NULL,
          UNIQUE (reporter, from_s, to_s, part));
        CREATE INDEX IF NOT EXISTS usage_epoch ON usage_reports (epoch);
        CREATE TABLE IF NOT EXISTS report_outbox (hash TEXT NOT NULL, peer TEXT NOT NULL, attempts INTEGER NOT NULL, next_at INTEGER NOT NULL,
          PRIMARY KEY (hash, peer));
        CREATE TABLE IF NOT EXISTS reward_epochs (epoch INTEGER PRIMARY KEY, root TEXT NOT NULL, total TEXT NOT NULL, computed_at INTEGER NOT NULL,
          summary TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS reward_amounts (epoch INTEGER NOT NULL, account TEXT NOT NULL, earned TEXT NOT NULL, cumulative TEXT NOT NULL,
          PRIMARY KEY (epoch, account));
      `);
      const version = this.db.prepare<[], { value: number }>("SELECT value FROM meta WHERE name = 'schema'").get();
      if (version === undefined) this.db.prepare("INSERT INTO meta (name, value) VALUES ('schema', ?)").run(ORACLE_SCHEMA_VERSION);
      else if (version.value === 1) this.db.prepare("UPDATE meta SET value = ? WHERE name = 'schema'").run(ORACLE_SCHEMA_VERSION);
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

  // ---------------------------------------------------------- replication outboxes

  /** The issuance rows still to replicate, as the replicator reads them. */
  issuanceOutbox(): ReplicationQueue {
    return this.outbox({ table: "outbox", id: "row_id", rows: "issuance", order: "issued_at" });
  }

  /** The usage reports still to replicate. */
  reportOutbox(): ReplicationQueue {
    return this.outbox({ table: "report_outbox", id: "hash", rows: "usage_reports", order: "received_at" });
  }

  /** Peers with issuance rows waiting. */
  pendingPeers(): string[] {
    return this.issuanceOutbox().pendingPeers();
  }

  /** Issuance rows waiting, over every peer. */
  outboxSize(): number {
    return this.issuanceOutbox().size();
  }

  /** One outbox over fixed table names (never user input). */
  private outbox(t: { table: string; id: string; rows: string; order: string }): ReplicationQueue {
    return {
      pendingPeers: () =>
        this.run("read outbox", () =>
          this.db
            .prepare<[], { peer: string }>(`SELECT DISTINCT peer FROM ${t.table}`)
            .all()
            .map((r) => r.peer),
        ),
      due: (peer, now, limit) =>
        this.run("read outbox", () =>
          this.db
            .prepare<[string, number, number], { id: string; doc: Uint8Array }>(
              `SELECT r.${t.id} AS id, r.doc AS doc FROM ${t.table} o JOIN ${t.rows} r ON r.${t.id} = o.${t.id}
               WHERE o.peer = ? AND o.next_at <= ? ORDER BY r.${t.order}, r.${t.id} LIMIT ?`,
            )
            .all(peer, now, limit)
            .map((r) => ({ id: r.id, doc: new Uint8Array(r.doc) })),
        ),
      size: () => this.run("count outbox", () => this.db.prepare<[], { n: number }>(`SELECT COUNT(*) AS n FROM ${t.table}`).get()!.n),
      delivered: (peer, ids) =>
        this.run("update outbox", () =>
          this.db.transaction(() => {
            const del = this.db.prepare(`DELETE FROM ${t.table} WHERE peer = ? AND ${t.id} = ?`);
            for (const id of ids) del.run(peer, id);
          })(),
        ),
      failed: (peer, ids, now, baseMs, maxMs) =>
        this.run("update outbox", () =>
          this.db.transaction(() => {
            const get = this.db.prepare<[string, string], { attempts: number }>(`SELECT attempts FROM ${t.table} WHERE peer = ? AND ${t.id} = ?`);
            const set = this.db.prepare(`UPDATE ${t.table} SET attempts = ?, next_at = ? WHERE peer = ? AND ${t.id} = ?`);
            for (const id of ids) {
              const attempts = (get.get(peer, id)?.attempts ?? 0) + 1;
              set.run(attempts, now + Math.min(maxMs, baseMs * 2 ** Math.min(attempts, 20)), peer, id);
            }
          })(),
        ),
    };
  }

  // ---------------------------------------------------------- usage reports

  /**
   * Records a usage report (and queues it for `peers`) in one transaction:
   * "duplicate" when these exact bytes are held, "conflict" when the reporter
   * already has another report for the same window and part, or a window
   * overlapping this one (a reporter counts each second once).
   */
  insertReport(report: StoredReport, peers: readonly string[] = [], now = 0): "inserted" | "duplicate" | "conflict" {
    return this.run("insert usage report", () =>
      this.db.transaction((): "inserted" | "duplicate" | "conflict" => {
        if (this.db.prepare<[string], { n: number }>("SELECT 1 AS n FROM usage_reports WHERE hash = ?").get(report.hash)) return "duplicate";
        const clash = this.db
          .prepare<[string, number, number, number, number], { n: number }>(
            `SELECT 1 AS n FROM usage_reports WHERE reporter = ? AND from_s < ? AND to_s > ? AND NOT (from_s = ? AND to_s = ?) LIMIT 1`,
          )
          .get(report.reporter, report.to, report.from, report.from, report.to);
        const samePart = this.db
          .prepare<[string, number, number, number], { n: number }>(
            "SELECT 1 AS n FROM usage_reports WHERE reporter = ? AND from_s = ? AND to_s = ? AND part = ?",
          )
          .get(report.reporter, report.from, report.to, report.part);
        if (clash || samePart) return "conflict";
        this.db
          .prepare(
            `INSERT INTO usage_reports (hash, epoch, reporter, kind, from_s, to_s, part, doc, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(report.hash, report.epoch, report.reporter, report.kind, report.from, report.to, report.part, report.doc, now);
        const queue = this.db.prepare("INSERT OR IGNORE INTO report_outbox (hash, peer, attempts, next_at) VALUES (?, ?, 0, ?)");
        for (const peer of peers) queue.run(report.hash, peer, now);
        return "inserted";
      })(),
    );
  }

  /** Every report of `epoch`, in hash order (the order does not change the normalization's result). */
  reportsOf(epoch: number): Uint8Array[] {
    return this.run("read usage reports", () =>
      this.db
        .prepare<[number], { doc: Uint8Array }>("SELECT doc FROM usage_reports WHERE epoch = ? ORDER BY hash")
        .all(epoch)
        .map((r) => new Uint8Array(r.doc)),
    );
  }

  reportCount(epoch?: number): number {
    return this.run("count usage reports", () =>
      epoch === undefined
        ? this.db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM usage_reports").get()!.n
        : this.db.prepare<[number], { n: number }>("SELECT COUNT(*) AS n FROM usage_reports WHERE epoch = ?").get(epoch)!.n,
    );
  }

  hasReport(hash: Hex): boolean {
    return this.run("read usage reports", () => this.db.prepare("SELECT 1 FROM usage_reports WHERE hash = ?").get(hash) !== undefined);
  }

  // ---------------------------------------------------------- reward trees

  /** Stores the reward tree computed for `epoch` (replacing an earlier computation of it). */
  saveRewardEpoch(epoch: RewardEpochRecord): void {
    this.run("save reward epoch", () =>
      this.db.transaction(() => {
        this.db.prepare("DELETE FROM reward_amounts WHERE epoch = ?").run(epoch.epoch);
        this.db
          .prepare("INSERT OR REPLACE INTO reward_epochs (epoch, root, total, computed_at, summary) VALUES (?, ?, ?, ?, ?)")
          .run(epoch.epoch, epoch.root, epoch.total.toString(), epoch.computedAt, JSON.stringify(epoch.summary));
        const add = this.db.prepare("INSERT INTO reward_amounts (epoch, account, earned, cumulative) VALUES (?, ?, ?, ?)");
        for (const a of epoch.accounts) add.run(epoch.epoch, a.account.toLowerCase(), a.earned.toString(), a.cumulative.toString());
      })(),
    );
  }

  rewardEpoch(epoch: number): RewardEpochRecord | undefined {
    return this.run("read reward epoch", () => {
      const e = this.db
        .prepare<[number], { epoch: number; root: string; total: string; computed_at: number; summary: string }>("SELECT * FROM reward_epochs WHERE epoch = ?")
        .get(epoch);
      if (!e) return undefined;
      const accounts = this.db
        .prepare<[number], { account: string; earned: string; cumulative: string }>("SELECT account, earned, cumulative FROM reward_amounts WHERE epoch = ? ORDER BY account")
        .all(epoch)
        .map((a) => ({ account: a.account as Address, earned: BigInt(a.earned), cumulative: BigInt(a.cumulative) }));
      return { epoch: e.epoch, root: e.root as Hex, total: BigInt(e.total), computedAt: e.computed_at, summary: JSON.parse(e.summary) as RewardSummary, accounts };
    });
  }

  /** The latest computed epoch before `epoch`, if any. */
  previousRewardEpoch(epoch: number): number | undefined {
    return this.run("read reward epoch", () => this.db.prepare<[number], { epoch: number }>("SELECT MAX(epoch) AS epoch FROM reward_epochs WHERE epoch < ?").get(epoch)?.epoch ?? undefined);
  }

  /** What `account` earned in each computed epoch (non-zero only), oldest first. */
  earnings(account: Address): { epoch: number; earned: bigint; cumulative: bigint }[] {
    return this.run("read earnings", () =>
      this.db
        .prepare<[string], { epoch: number; earned: string; cumulative: string }>(
          "SELECT epoch, earned, cumulative FROM reward_amounts WHERE account = ? AND earned != '0' ORDER BY epoch",
        )
        .all(account.toLowerCase())
        .map((r) => ({ epoch: r.epoch, earned: BigInt(r.earned), cumulative: BigInt(r.cumulative) })),
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

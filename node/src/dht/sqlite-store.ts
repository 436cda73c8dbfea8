/**
 * The persistent RecordStore: better-sqlite3 (embedded, synchronous,
 * prepared statements) in WAL mode, so a restarted node keeps its records.
 *
 * Each put runs in one IMMEDIATE transaction: sweep the owner's expired
 * rows, read the key's current row and the owner's and the node's usage,
 * decide (decidePut, shared with the memory store), then write. No other
 * writer can interleave, so concurrent floods can never push an owner past
 * its quota or evict another owner's rows.
 *
 * Trusts: its caller to have validated records; the database file to be
 * this node's own (rows are decoded and shape-checked again on read).
 */
import Database from "better-sqlite3";
import type { Database as SqliteDatabase, Statement } from "better-sqlite3";
import { DhtError } from "./errors.js";
import { decodeRecord, encodeRecord } from "./record.js";
import type { DhtRecord, RecordLimits } from "./record.js";
import { DEFAULT_RECORD_LIMITS } from "./record.js";
import { DEFAULT_STORE_QUOTA, decidePut } from "./store.js";
import type { HeldCharge, OwnerUsage, PutOutcome, RecordCharge, RecordStore, StoreQuota } from "./store.js";

/** 2 added each row's charge (sender, address), so a restarted node keeps its per-sender quotas; 1 is migrated in place. */
const SCHEMA_VERSION = 2;

export interface SqliteRecordStoreOptions {
  /** Database file path, or ":memory:". */
  path: string;
  quota?: StoreQuota;
  limits?: RecordLimits;
}

interface Row {
  encoded: Uint8Array;
  size: number;
}

export class SqliteRecordStore implements RecordStore {
  readonly quota: StoreQuota;
  private readonly limits: RecordLimits;
  private readonly db: SqliteDatabase;
  private readonly stmts: {
    getRow: Statement<[Uint8Array], Row>;
    ownerUsage: Statement<[Uint8Array, number], { records: number; bytes: number | null }>;
    total: Statement<[], { bytes: number | null }>;
    sweepOwner: Statement<[Uint8Array, number]>;
    sweepAll: Statement<[number]>;
    upsert: Statement<[Uint8Array, Uint8Array, number, number, number, Uint8Array, string | null, string | null]>;
    count: Statement<[], { n: number }>;
    live: Statement<[number], { encoded: Uint8Array }>;
    charges: Statement<[number], { key: Uint8Array; size: number; expires_at: number; sender: string; address: string | null }>;
  };
  private readonly putTx: (record: DhtRecord, size: number, now: number, charge: RecordCharge | undefined) => PutOutcome;

  constructor(options: SqliteRecordStoreOptions) {
    this.quota = options.quota ?? DEFAULT_STORE_QUOTA;
    this.limits = options.limits ?? DEFAULT_RECORD_LIMITS;
    try {
      this.db = new Database(options.path);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
      this.db.exec(`
        CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS records (
          key BLOB PRIMARY KEY,
          owner BLOB NOT NULL,
          seq INTEGER NOT NULL,
          expires_at INTEGER NOT NULL,
          size INTEGER NOT NULL,
          encoded BLOB NOT NULL,
          sender TEXT,
          address TEXT
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS records_owner ON records (owner, expires_at);
        CREATE INDEX IF NOT EXISTS records_expiry ON records (expires_at);
      `);
      const version = this.db.prepare<[], { value: number }>("SELECT value FROM meta WHERE name = 'schema'").get();
      if (version === undefined) this.db.prepare("INSERT INTO meta (name, value) VALUES ('schema', ?)").run(SCHEMA_VERSION);
      else if (version.value === 1) {
        // Rows stored before charges were kept count toward owner and total limits only, until re-stored.
        this.db.transaction(() => {
          this.db.exec("ALTER TABLE records ADD COLUMN sender TEXT; ALTER TABLE records ADD COLUMN address TEXT;");
          this.db.prepare("UPDATE meta SET value = ? WHERE name = 'schema'").run(SCHEMA_VERSION);
        }).immediate();
      } else if (version.value !== SCHEMA_VERSION) {
        throw new DhtError("store-io", `record store schema ${version.value} is not the supported ${SCHEMA_VERSION}; move the file aside`);
      }
      this.stmts = {
        getRow: this.db.prepare("SELECT encoded, size FROM records WHERE key = ?"),
        ownerUsage: this.db.prepare("SELECT COUNT(*) AS records, SUM(size) AS bytes FROM records WHERE owner = ? AND expires_at > ?"),
        total: this.db.prepare("SELECT SUM(size) AS bytes FROM records"),
        sweepOwner: this.db.prepare("DELETE FROM records WHERE owner = ? AND expires_at <= ?"),
        sweepAll: this.db.prepare("DELETE FROM records WHERE expires_at <= ?"),
        upsert: this.db.prepare(
          "INSERT OR REPLACE INTO records (key, owner, seq, expires_at, size, encoded, sender, address) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ),
        count: this.db.prepare("SELECT COUNT(*) AS n FROM records"),
        live: this.db.prepare("SELECT encoded FROM records WHERE expires_at > ?"),
        charges: this.db.prepare("SELECT key, size, expires_at, sender, address FROM records WHERE sender IS NOT NULL AND expires_at > ?"),
      };
    } catch (cause) {
      if (cause instanceof DhtError) throw cause;
      throw new DhtError("store-io", `cannot open record store at ${options.path}: ${(cause as Error).message}`, { cause });
    }
    const tx = this.db.transaction((record: DhtRecord, size: number, now: number, charge: RecordCharge | undefined): PutOutcome => {
      this.stmts.sweepOwner.run(record.owner, now);
      const row = this.stmts.getRow.get(record.key);
      const existing = row === undefined ? undefined : this.decodeRow(row);
      const usage = this.usage(record.owner, now);
      const total = this.stmts.total.get()?.bytes ?? 0;
      const decision = decidePut(record, size, now, existing, usage, total, this.quota);
      if (decision === "unchanged" || decision === "stored") return "unchanged";
      this.stmts.upsert.run(record.key, record.owner, record.seq, record.expiresAt, size, encodeRecord(record), charge?.sender ?? null, charge?.address ?? null);
      return "stored";
    });
    this.putTx = (record, size, now, charge) => tx.immediate(record, size, now, charge);
  }

  put(record: DhtRecord, size: number, now: number, charge?: RecordCharge): PutOutcome {
    try {
      return this.putTx(record, size, now, charge);
    } catch (cause) {
      if (cause instanceof DhtError) throw cause;
      throw new DhtError("store-io", `record store write failed: ${(cause as Error).message}`, { cause });
    }
  }

  get(key: Uint8Array, now: number): DhtRecord | undefined {
    const row = this.stmts.getRow.get(key);
    if (row === undefined) return undefined;
    const held = this.decodeRow(row);
    return held !== undefined && held.record.expiresAt > now ? held.record : undefined;
  }

  sweep(now: number): number {
    return this.stmts.sweepAll.run(now).changes;
  }

  usage(owner: Uint8Array, now: number): OwnerUsage {
    const row = this.stmts.ownerUsage.get(owner, now);
    return { records: row?.records ?? 0, bytes: row?.bytes ?? 0 };
  }

  count(): number {
    return this.stmts.count.get()?.n ?? 0;
  }

  records(now: number): DhtRecord[] {
    const out: DhtRecord[] = [];
    for (const row of this.stmts.live.all(now)) {
      const held = this.decodeRow({ encoded: row.encoded, size: row.encoded.length });
      if (held !== undefined) out.push(held.record);
    }
    return out;
  }

  charges(now: number): HeldCharge[] {
    return this.stmts.charges
      .all(now)
      .map((row) => ({ key: new Uint8Array(row.key), size: row.size, expiresAt: row.expires_at, sender: row.sender, ...(row.address === null ? {} : { address: row.address }) }));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** A row that no longer decodes (corrupted file) is skipped, never returned. */
  private decodeRow(row: Row): { record: DhtRecord; size: number } | undefined {
    try {
      return { record: decodeRecord(new Uint8Array(row.encoded), this.limits), size: row.size };
    } catch {
      return undefined;
    }
  }
}

/**
 * What the media path needs from the oracle side, and the landing node's
 * durable memory of used receipts.
 *
 * Owns: StreamAdmission, the narrow interface landing and distribution
 * nodes call to check a creation receipt and a viewer's session id (the
 * oracle engineer's receipt.ts and session.ts verify the signatures,
 * validity times, commitments and revocations behind it), and
 * ReceiptReplayStore: receipt id → expiry in SQLite, so a receipt creates
 * one stream only, across restarts, for as long as it is valid.
 *
 * Trusts: the admission implementation for every oracle-side check. The
 * store trusts only its own file.
 */
import Database from "better-sqlite3";
import type { Database as SqliteDatabase, Statement } from "better-sqlite3";
import { StreamMediaError } from "./media-errors.js";
import { receiptReplayKey, verifyReceiptAgainstChain } from "./receipt.js";
import type { ReceiptChainView } from "./receipt.js";
import { verifySessionId } from "./session.js";

/** The parameters a receipt allows (the creation request must stay within them). */
export interface ReceiptParams {
  /** Highest bitrate, kbit/s. */
  maxKbps: number;
  /** Longest stream, seconds. */
  maxDurationS: number;
  /** The receipt's own expiry (ms since the epoch): it cannot create a stream after it, and the replay record is kept until it. */
  expiresAt: number;
  /** Format flags the oracle allowed (bit field, opaque to the media path). */
  formatFlags: number;
}

export interface AdmittedReceipt {
  /** Unique per receipt: what replay protection keys on. */
  receiptId: Uint8Array;
  params: ReceiptParams;
}

export interface AdmittedSession {
  sessionId: Uint8Array;
  /** ms since the epoch. */
  expiresAt: number;
}

export interface StreamAdmission {
  /** Checks a creation receipt; throws a typed error (the oracle side's) when it is malformed, forged, expired, revoked or uncommitted. */
  checkReceipt(bytes: Uint8Array, now: number): Promise<AdmittedReceipt>;
  /** Checks a viewer's session id; throws a typed error when it is malformed, forged or expired. */
  checkSession(bytes: Uint8Array, now: number): AdmittedSession;
}

/** Used receipt ids, durable. */
export class ReceiptReplayStore {
  private readonly db: SqliteDatabase;
  private readonly insert: Statement;
  private readonly prune: Statement;

  /** `path`: a file, or ":memory:" (tests, and nodes without a dataDir). */
  constructor(path: string) {
    try {
      this.db = new Database(path);
      this.db.pragma("journal_mode = WAL");
      this.db.pragma("synchronous = NORMAL");
      this.db.exec("CREATE TABLE IF NOT EXISTS used_receipts (id BLOB PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID");
    } catch (err) {
      throw new StreamMediaError("bad-argument", `cannot open the receipt store ${path}: ${(err as Error).message}`, { cause: err });
    }
    this.insert = this.db.prepare("INSERT OR IGNORE INTO used_receipts (id, expires_at) VALUES (?, ?)");
    this.prune = this.db.prepare("DELETE FROM used_receipts WHERE expires_at < ?");
  }

  /** Records `receiptId` as used; false when it was used before (a replay). Forgets receipts expired before `now`. */
  claim(receiptId: Uint8Array, expiresAt: number, now: number): boolean {
    this.prune.run(Math.floor(now));
    return this.insert.run(Buffer.from(receiptId), Math.ceil(expiresAt)).changes === 1;
  }

  get size(): number {
    return (this.db.prepare("SELECT count(*) AS n FROM used_receipts").get() as { n: number }).n;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

export interface OracleAdmissionOptions {
  /** The chain as a landing node sees it: oracle set, commitments, revocations, blind keys (receipt.ts). */
  view: ReceiptChainView;
  /** Node identity keys of the current oracles, held in memory (session ids are checked on every ATTACH, synchronously). */
  sessionOracleKeys: () => Iterable<Uint8Array>;
  graceSeconds?: number;
  skewSeconds?: number;
}

/**
 * The StreamAdmission of a node: receipts through verifyReceiptAgainstChain
 * (signature by a current oracle or under a registered blind key, validity,
 * commitment or grace period, revocation), session ids through
 * verifySessionId. Errors are the oracle side's StreamError kinds.
 */
export function oracleAdmission(options: OracleAdmissionOptions): StreamAdmission {
  return {
    async checkReceipt(bytes, now) {
      const seconds = Math.floor(now / 1000);
      const verified = await verifyReceiptAgainstChain(bytes, {
        view: options.view,
        now: seconds,
        ...(options.graceSeconds === undefined ? {} : { graceSeconds: options.graceSeconds }),
        ...(options.skewSeconds === undefined ? {} : { skewSeconds: options.skewSeconds }),
      });
      const expiresAt = (verified.kind === "linkable" ? verified.receipt.expiresAt : verified.receipt.validUntil) * 1000;
      return {
        receiptId: new TextEncoder().encode(receiptReplayKey(verified.receipt)),
        params: { maxKbps: verified.params.bitrateKbps, maxDurationS: verified.params.maxDurationSeconds, expiresAt, formatFlags: verified.params.formatFlags },
      };
    },
    checkSession(bytes, now) {
      const session = verifySessionId(bytes, {
        oracleKeys: options.sessionOracleKeys(),
        now: Math.floor(now / 1000),
        ...(options.skewSeconds === undefined ? {} : { skewSeconds: options.skewSeconds }),
      });
      return { sessionId: session.sid, expiresAt: session.expiresAt * 1000 };
    },
  };
}

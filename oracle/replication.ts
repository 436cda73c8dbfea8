/**
 * Replicating issuance rows (receipt id → identity) to the other current
 * oracles, so the identity behind a receipt survives the loss of the oracle
 * that issued it (docs/spec/oracle.md "Replication").
 *
 * Owns: the signed row, a signed document (wire/document.ts) of type
 * "oracle-issuance" by the issuing oracle's node key, body
 *   { exp: uint, hash: bstr(32) or empty, iat: uint, identity: tstr, iid: bstr(32),
 *     key: bstr(32) or empty, kind: "linkable" | "blind", row: tstr, v: 1 }
 * and the replicator, for issuance rows and usage reports alike: every
 * `intervalMs` it sends each peer its due rows in `replicate` (or
 * `reports-replicate`) messages over the node's authenticated link RPC (service
 * ORACLE_RPC_SERVICE, node links only), deletes what the peer acked and backs
 * off what failed (1 s doubling to 5 min), so delivery is at-least-once and
 * survives restarts (the outbox is in the store).
 *
 * Trusts: a received row only when its signature verifies and its signer is
 * in the current oracle set; the link layer for who sent it (not needed for
 * trust, the signature carries it).
 */
import { bytesToHex, type Hex } from "viem";
import { openDocument, signDocument } from "../node/src/wire/document.js";
import { cborReaders } from "../node/src/wire/fields.js";
import type { Logger } from "../node/src/log.js";
import { ORACLE_LINK_SERVICE } from "../node/src/node/usage.js";
import { logFailure } from "../node/src/log.js";
import { decodeOracleResponse, encodeOracleMessage, MAX_REPLICATE_ROWS } from "../node/src/stream/oracle-messages.js";
import { OracleError } from "./errors.js";
import type { IssuanceRow, ReplicationQueue } from "./store.js";

export const ISSUANCE_TYPE = "oracle-issuance";
/** The link RPC service id oracles replicate and take node reports on (RpcService lists 1..3; 4 is the oracle's). */
export const ORACLE_RPC_SERVICE = ORACLE_LINK_SERVICE;
const MAX_ROW_BYTES = 1024;

const hexBytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/^0x/, ""), "hex"));

export type UnsignedRow = Omit<IssuanceRow, "doc" | "oracle">;

/** Signs an issuance row with the issuing oracle's node seed. */
export function signIssuanceRow(row: UnsignedRow, secretKey: Uint8Array): Uint8Array {
  return signDocument({
    type: ISSUANCE_TYPE,
    secretKey,
    body: {
      exp: row.expiresAt,
      hash: row.receiptHash ? hexBytes(row.receiptHash) : new Uint8Array(0),
      iat: row.issuedAt,
      identity: row.identity,
      iid: hexBytes(row.identityId),
      key: row.keyId ? hexBytes(row.keyId) : new Uint8Array(0),
      kind: row.kind,
      row: row.rowId,
      v: 1,
    },
  });
}

/** Opens a replicated row: signature, shape, and its signer among `oracleKeys` (hex). */
export function openIssuanceRow(doc: Uint8Array, oracleKeys: ReadonlySet<string>): IssuanceRow {
  const bad = (m: string) => new OracleError("bad-replica", `replicated row: ${m}`);
  let opened;
  try {
    opened = openDocument(doc, { type: ISSUANCE_TYPE, maxBytes: MAX_ROW_BYTES, maxDepth: 1 });
  } catch (err) {
    throw new OracleError("bad-replica", `replicated row does not open: ${(err as Error).message}`, { cause: err });
  }
  const oracle = bytesToHex(opened.signer).slice(2);
  if (!oracleKeys.has(oracle)) throw bad(`signed by ${oracle}, not a current oracle`);
  const r = cborReaders(bad);
  const b = r.readMap(opened.body, "row", ["exp", "hash", "iat", "identity", "iid", "key", "kind", "row", "v"]);
  if (b.v !== 1) throw bad("unknown version");
  const kind = r.readString(b.kind, "kind", /^(linkable|blind)$/) as IssuanceRow["kind"];
  const optional32 = (value: unknown, what: string): Hex | null => {
    if (value instanceof Uint8Array && value.length === 0) return null;
    return bytesToHex(r.readBytes(value, what, 32));
  };
  return {
    rowId: r.readString(b.row, "row", /^[0-9a-f]{32}$/),
    kind,
    receiptHash: optional32(b.hash, "hash"),
    identity: r.readText(b.identity, "identity", 200),
    identityId: bytesToHex(r.readBytes(b.iid, "iid", 32)),
    oracle,
    issuedAt: r.readUint(b.iat, "iat"),
    expiresAt: r.readUint(b.exp, "exp"),
    keyId: optional32(b.key, "key"),
    doc,
  };
}

export interface ReplicatorOptions {
  /** Where the rows wait (store.issuanceOutbox() or store.reportOutbox()). */
  queue: ReplicationQueue;
  /** The message carrying a batch of signed rows (`replicate` for issuance rows, `reports-replicate` for usage reports). */
  message: (docs: Uint8Array[]) => Uint8Array;
  /** What is replicated, for logs ("issuance rows", "usage reports"). */
  what: string;
  /** Rows per message. */
  batch?: number;
  /** Sends one message to a peer oracle (node key hex) and returns its answer. */
  send: (peer: string, request: Uint8Array) => Promise<Uint8Array>;
  intervalMs?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  now?: () => number;
  logger: Logger;
}

export interface Replicator {
  /** One pass over every peer with due rows; resolves when done. */
  tick(): Promise<void>;
  stats(): { sent: number; failed: number };
  close(): void;
}

/** The `replicate` message for issuance rows. */
export const issuanceMessage = (docs: Uint8Array[]): Uint8Array => encodeOracleMessage({ t: "replicate", rows: docs });

export function createReplicator(opts: ReplicatorOptions): Replicator {
  const now = opts.now ?? Date.now;
  const stats = { sent: 0, failed: 0 };
  let running: Promise<void> | undefined;
  const pass = async () => {
    for (const peer of opts.queue.pendingPeers()) {
      const rows = opts.queue.due(peer, now(), opts.batch ?? MAX_REPLICATE_ROWS);
      if (rows.length === 0) continue;
      const ids = rows.map((r) => r.id);
      try {
        const answer = decodeOracleResponse(await opts.send(peer, opts.message(rows.map((r) => r.doc))));
        if (answer.t !== "ack")
          throw new OracleError("bad-response", answer.t === "error" ? `peer refused: ${answer.kind}: ${answer.message}` : `expected ack, got ${answer.t}`);
        opts.queue.delivered(peer, ids);
        stats.sent += ids.length;
      } catch (err) {
        stats.failed += ids.length;
        opts.queue.failed(peer, ids, now(), opts.baseBackoffMs ?? 1000, opts.maxBackoffMs ?? 300_000);
        logFailure(opts.logger, err, `replicate ${opts.what}`, "warn", { peer: peer.slice(0, 16), rows: ids.length });
      }
    }
  };
  const tick = () => (running ??= pass().finally(() => (running = undefined)));
  const timer = setInterval(() => void tick(), opts.intervalMs ?? 2000);
  timer.unref();
  return { tick, stats: () => ({ ...stats }), close: () => clearInterval(timer) };
}

/**
 * The oracle protocol's messages: what a producer or viewer sends an oracle
 * at the end of a circuit, and what oracles send each other to replicate
 * issuance rows (docs/spec/oracle.md "Messages").
 *
 * Owns the layout: canonical CBOR maps (wire/canonical.ts) of at most
 * MAX_ORACLE_MESSAGE_BYTES, each with "t" naming it and "v": 1:
 *
 *   challenge-request { }                                   -> challenge
 *   challenge         { expires: uint ms, nonce: bstr32, oracle: bstr32 }
 *   receipt-request   { cert: bstr, nonce: bstr32, proof: bstr64,
 *                       blinded: bstr (optional), key: bstr32 (optional) } -> receipt | blind-sig
 *   receipt           { receipt: bstr }                     (a linkable receipt, receipt.ts)
 *   blind-sig         { key: bstr32, sig: bstr }            (RFC 9474 BlindSign output)
 *   keys-request      { }                                   -> keys
 *   keys              { keys: [ { b, d, f, from, id: bstr32, spki: bstr, until } ] }
 *   proof-request     { hash: bstr32 }                      -> inclusion
 *   inclusion         { b: uint, p: [bstr32] }              (receipt.ts inclusionToCbor)
 *   puzzle-request    { }                                   -> puzzle
 *   puzzle            { difficulty: uint, expires: uint ms, seed: bstr32 }
 *   session-request   { k: bstr32, seed: bstr32, x: bstr32 } -> session   (k: the viewer's ephemeral Ed25519 key)
 *   session           { session: bstr }                     (session.ts)
 *   replicate         { rows: [bstr] }                      -> ack   (oracle to oracle, over node links)
 *   ack               { n: uint }
 *   usage-report      { report: bstr }                      -> report-ack   (rewards/report.ts)
 *   report-ack        { dup: bool, hash: bstr32 }           (keccak256 of the report; dup: already held)
 *   reports-replicate { reports: [bstr] }                   -> ack   (oracle to oracle, over node links)
 *   reward-proof-request { account: bstr20, epoch: uint (optional) } -> reward-proof
 *   epoch-clock-request { }                                 -> epoch-clock
 *   epoch-clock       { genesis: uint, length: uint }       (BandwidthRewards' epochs, unix seconds: a viewer cuts its windows at them)
 *   reward-proof      { amount: bstr, epoch: uint, epochs: [ { amount: bstr, e: uint } ],
 *                       proof: [bstr32], root: bstr32 }
 * Amounts are uint256 as big-endian bytes without leading zeros (0 is the
 * empty string). reward-proof: the account's cumulative amount in the agreed
 * root of `epoch` (default: the newest agreed root), its Merkle proof and that root; epochs: what it earned
 * in each settled epoch, newest last (at most MAX_REWARD_EPOCHS).
 *
 * Over node links (a node's usage reports, replication) a message may be up
 * to MAX_ORACLE_LINK_MESSAGE_BYTES; through circuits MAX_ORACLE_MESSAGE_BYTES.
 *   error             { kind: tstr, message: tstr, retryAfterMs: uint (optional) }
 *
 * The producer's proof is its identity key's Ed25519 signature over the
 * signed-document message of type "oracle-receipt-proof" with body
 *   { blinded: bstr (empty for linkable), key: bstr (empty for linkable), nonce, oracle }
 * so it is bound to one challenge of one oracle and, in blind mode, to the
 * one blinded message and key (a relay cannot swap them).
 *
 * Trusts nothing about input bytes; every rejection is OracleError
 * "too-large" or "malformed-request" (requests) or "bad-response" (responses).
 */
import { bytesToHex, getAddress, type Address, type Hex } from "viem";
import { decodeCanonical, encodeCanonical, type CanonicalValue } from "../wire/canonical.js";
import { documentSigningMessage } from "../wire/document.js";
import { cborReaders, isCborMap, type CborMap } from "../wire/fields.js";
import { OracleError, ORACLE_CLIENT_SIDE_KINDS, type OracleErrorKind } from "./oracle-errors.js";
import { inclusionFromCbor, inclusionToCbor, type ReceiptInclusion, type StreamParams } from "./receipt.js";

export const ORACLE_MESSAGE_VERSION = 1;
/** Largest oracle message (an access certificate is up to 4096 bytes, a blinded 4096-bit message 512). */
export const MAX_ORACLE_MESSAGE_BYTES = 8192;
/** Largest oracle message over an authenticated node link (a node's usage report of up to 48 KiB, replication). */
export const MAX_ORACLE_LINK_MESSAGE_BYTES = 60 * 1024;
/** Most rows in one replicate message. */
export const MAX_REPLICATE_ROWS = 16;
/** Most usage reports in one reports-replicate message (the byte cap binds first for large ones). */
export const MAX_REPLICATE_REPORTS = 64;
/** Largest usage report a message carries (rewards/report.ts MAX_USAGE_REPORT_BYTES). */
const MAX_REPORT_BLOB = 48 * 1024;
/** Longest reward Merkle proof (a tree of up to 2^32 operators). */
export const MAX_REWARD_PROOF_DEPTH = 32;
/** Most per-epoch amounts in one reward-proof answer. */
export const MAX_REWARD_EPOCHS = 64;
/** Most blind keys one oracle lists. */
export const MAX_LISTED_KEYS = 16;
export const RECEIPT_PROOF_TYPE = "oracle-receipt-proof";
const NONCE_LEN = 32;

export interface OracleChallenge {
  oracle: Uint8Array;
  nonce: Uint8Array;
  /** Unix ms. */
  expires: number;
}

export interface ListedBlindKey {
  keyId: Hex;
  spki: Uint8Array;
  params: StreamParams;
  validFrom: number;
  validUntil: number;
}

export interface OraclePuzzle {
  seed: Uint8Array;
  difficulty: number;
  expires: number;
}

export type OracleRequest =
  | { t: "challenge-request" }
  | { t: "receipt-request"; nonce: Uint8Array; cert: Uint8Array; proof: Uint8Array; blinded?: Uint8Array; key?: Hex }
  | { t: "keys-request" }
  | { t: "proof-request"; hash: Hex }
  | { t: "puzzle-request" }
  | { t: "session-request"; seed: Uint8Array; x: Uint8Array; viewerKey: Uint8Array }
  | { t: "replicate"; rows: Uint8Array[] }
  | { t: "usage-report"; report: Uint8Array }
  | { t: "reports-replicate"; reports: Uint8Array[] }
  | { t: "reward-proof-request"; account: Address; epoch?: number }
  | { t: "epoch-clock-request" };

export interface RewardProofAnswer {
  /** The newest final root's epoch. */
  epoch: number;
  /** The account's cumulative amount in that root (wei). */
  amount: bigint;
  proof: Hex[];
  root: Hex;
  /** What the account earned in each settled epoch, oldest first. */
  epochs: { epoch: number; amount: bigint }[];
}

export type OracleResponse =
  | ({ t: "challenge" } & OracleChallenge)
  | { t: "receipt"; receipt: Uint8Array }
  | { t: "blind-sig"; key: Hex; sig: Uint8Array }
  | { t: "keys"; keys: ListedBlindKey[] }
  | ({ t: "inclusion" } & ReceiptInclusion)
  | ({ t: "puzzle" } & OraclePuzzle)
  | { t: "session"; session: Uint8Array }
  | { t: "ack"; n: number }
  | { t: "report-ack"; hash: Hex; dup: boolean }
  | ({ t: "reward-proof" } & RewardProofAnswer)
  | { t: "epoch-clock"; genesis: number; length: number }
  | { t: "error"; kind: string; message: string; retryAfterMs?: number };

/** Largest epoch number, genesis or epoch length accepted (2^40 seconds is beyond any real clock). */
const MAX_EPOCH = 2 ** 40;
const hexBytes = (h: Hex): Uint8Array => new Uint8Array(Buffer.from(h.slice(2), "hex"));
const MAX_UINT256 = (1n << 256n) - 1n;

/** A uint256 as big-endian bytes without leading zeros (0 is empty). */
export function amountToBytes(amount: bigint): Uint8Array {
  if (typeof amount !== "bigint" || amount < 0n || amount > MAX_UINT256) throw new OracleError("bad-argument", "an amount must be a uint256");
  if (amount === 0n) return new Uint8Array(0);
  let hex = amount.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return new Uint8Array(Buffer.from(hex, "hex"));
}

function amountFromBytes(value: unknown, what: string, fail: (m: string) => OracleError): bigint {
  if (!(value instanceof Uint8Array) || value.length > 32) throw fail(`${what} must be a byte string of at most 32 bytes`);
  if (value.length > 0 && value[0] === 0) throw fail(`${what} has a leading zero byte`);
  return value.length === 0 ? 0n : BigInt(`0x${Buffer.from(value).toString("hex")}`);
}

/** Encodes any oracle message. */
export function encodeOracleMessage(msg: OracleRequest | OracleResponse): Uint8Array {
  const v = ORACLE_MESSAGE_VERSION;
  switch (msg.t) {
    case "challenge-request":
    case "keys-request":
    case "puzzle-request":
      return encodeCanonical({ t: msg.t, v });
    case "challenge":
      return encodeCanonical({ t: msg.t, v, expires: msg.expires, nonce: msg.nonce, oracle: msg.oracle });
    case "receipt-request":
      return encodeCanonical({
        t: msg.t,
        v,
        cert: msg.cert,
        nonce: msg.nonce,
        proof: msg.proof,
        ...(msg.blinded ? { blinded: msg.blinded } : {}),
        ...(msg.key ? { key: hexBytes(msg.key) } : {}),
      });
    case "receipt":
      return encodeCanonical({ t: msg.t, v, receipt: msg.receipt });
    case "blind-sig":
      return encodeCanonical({ t: msg.t, v, key: hexBytes(msg.key), sig: msg.sig });
    case "keys":
      return encodeCanonical({
        t: msg.t,
        v,
        keys: msg.keys.map((k) => ({
          b: k.params.bitrateKbps,
          d: k.params.maxDurationSeconds,
          f: k.params.formatFlags,
          from: k.validFrom,
          id: hexBytes(k.keyId),
          spki: k.spki,
          until: k.validUntil,
        })),
      });
    case "proof-request":
      return encodeCanonical({ t: msg.t, v, hash: hexBytes(msg.hash) });
    case "inclusion":
      return encodeCanonical({ t: msg.t, v, ...(inclusionToCbor(msg) as CborMap) });
    case "puzzle":
      return encodeCanonical({ t: msg.t, v, difficulty: msg.difficulty, expires: msg.expires, seed: msg.seed });
    case "session-request":
      return encodeCanonical({ t: msg.t, v, k: msg.viewerKey, seed: msg.seed, x: msg.x });
    case "session":
      return encodeCanonical({ t: msg.t, v, session: msg.session });
    case "replicate":
      return encodeCanonical({ t: msg.t, v, rows: msg.rows });
    case "ack":
      return encodeCanonical({ t: msg.t, v, n: msg.n });
    case "usage-report":
      return encodeCanonical({ t: msg.t, v, report: msg.report });
    case "report-ack":
      return encodeCanonical({ t: msg.t, v, dup: msg.dup, hash: hexBytes(msg.hash) });
    case "reports-replicate":
      return encodeCanonical({ t: msg.t, v, reports: msg.reports });
    case "reward-proof-request":
      return encodeCanonical({ t: msg.t, v, account: hexBytes(msg.account), ...(msg.epoch === undefined ? {} : { epoch: msg.epoch }) });
    case "epoch-clock-request":
      return encodeCanonical({ t: msg.t, v });
    case "epoch-clock":
      return encodeCanonical({ t: msg.t, v, genesis: msg.genesis, length: msg.length });
    case "reward-proof":
      return encodeCanonical({
        t: msg.t,
        v,
        amount: amountToBytes(msg.amount),
        epoch: msg.epoch,
        epochs: msg.epochs.map((e) => ({ amount: amountToBytes(e.amount), e: e.epoch })),
        proof: msg.proof.map(hexBytes),
        root: hexBytes(msg.root),
      });
    case "error":
      return encodeCanonical({
        t: msg.t,
        v,
        kind: msg.kind,
        message: msg.message.slice(0, 512),
        ...(msg.retryAfterMs === undefined ? {} : { retryAfterMs: msg.retryAfterMs }),
      });
  }
}

export interface DecodeOracleOptions {
  /** Largest message accepted: MAX_ORACLE_MESSAGE_BYTES (default, circuits) or MAX_ORACLE_LINK_MESSAGE_BYTES (node links). */
  maxBytes?: number;
}

function decodeMap(bytes: Uint8Array, fail: (m: string) => OracleError, maxBytes = MAX_ORACLE_MESSAGE_BYTES): CborMap {
  if (!(bytes instanceof Uint8Array)) throw fail("message must be bytes");
  if (bytes.length > maxBytes) throw new OracleError("too-large", `oracle message of ${bytes.length} bytes is over ${maxBytes}`);
  let raw: CanonicalValue;
  try {
    raw = decodeCanonical(bytes, { maxBytes, maxDepth: 4 });
  } catch (err) {
    throw fail(`not canonical CBOR: ${(err as Error).message}`);
  }
  if (!isCborMap(raw)) throw fail("message must be a map");
  if (raw.v !== ORACLE_MESSAGE_VERSION) throw fail(`version ${String(raw.v)} is not ${ORACLE_MESSAGE_VERSION}`);
  if (typeof raw.t !== "string") throw fail('message lacks its type "t"');
  return raw;
}

/** Decodes a request; OracleError "too-large" or "malformed-request". */
export function decodeOracleRequest(bytes: Uint8Array, options: DecodeOracleOptions = {}): OracleRequest {
  const fail = (m: string) => new OracleError("malformed-request", `oracle request: ${m}`);
  const r = cborReaders(fail);
  const map = decodeMap(bytes, fail, options.maxBytes);
  const fields = (req: string[], opt: string[] = []) => r.readMap(map, String(map.t), ["t", "v", ...req], opt);
  switch (map.t) {
    case "challenge-request":
    case "keys-request":
    case "puzzle-request":
      fields([]);
      return { t: map.t };
    case "receipt-request": {
      fields(["cert", "nonce", "proof"], ["blinded", "key"]);
      const cert = map.cert;
      if (!(cert instanceof Uint8Array) || cert.length === 0 || cert.length > 4096) throw fail("cert must be 1..4096 bytes");
      const out: OracleRequest = { t: "receipt-request", cert, nonce: r.readBytes(map.nonce, "nonce", NONCE_LEN), proof: r.readBytes(map.proof, "proof", 64) };
      if ((map.blinded === undefined) !== (map.key === undefined)) throw fail("a blind request carries both blinded and key");
      if (map.blinded !== undefined) {
        const blinded = map.blinded;
        if (!(blinded instanceof Uint8Array) || blinded.length < 256 || blinded.length > 512) throw fail("blinded must be 256..512 bytes");
        out.blinded = blinded;
        out.key = bytesToHex(r.readBytes(map.key, "key", 32));
      }
      return out;
    }
    case "proof-request":
      fields(["hash"]);
      return { t: "proof-request", hash: bytesToHex(r.readBytes(map.hash, "hash", 32)) };
    case "session-request":
      fields(["k", "seed", "x"]);
      return { t: "session-request", seed: r.readBytes(map.seed, "seed", 32), x: r.readBytes(map.x, "x", 32), viewerKey: r.readBytes(map.k, "k", 32) };
    case "usage-report": {
      fields(["report"]);
      const report = map.report;
      if (!(report instanceof Uint8Array) || report.length === 0 || report.length > MAX_REPORT_BLOB) throw fail(`report must be 1..${MAX_REPORT_BLOB} bytes`);
      return { t: "usage-report", report };
    }
    case "reports-replicate": {
      fields(["reports"]);
      const reports = r.readArray(map.reports, "reports", MAX_REPLICATE_REPORTS, 1);
      for (const report of reports)
        if (!(report instanceof Uint8Array) || report.length === 0 || report.length > MAX_REPORT_BLOB)
          throw fail(`each report must be a byte string of 1..${MAX_REPORT_BLOB} bytes`);
      return { t: "reports-replicate", reports: reports as Uint8Array[] };
    }
    case "reward-proof-request": {
      fields(["account"], ["epoch"]);
      const account = getAddress(bytesToHex(r.readBytes(map.account, "account", 20)));
      return map.epoch === undefined ? { t: "reward-proof-request", account } : { t: "reward-proof-request", account, epoch: r.readUint(map.epoch, "epoch", MAX_EPOCH) };
    }
    case "epoch-clock-request":
      fields([]);
      return { t: "epoch-clock-request" };
    case "replicate": {
      fields(["rows"]);
      const rows = r.readArray(map.rows, "rows", MAX_REPLICATE_ROWS, 1);
      for (const row of rows) if (!(row instanceof Uint8Array) || row.length > 1024) throw fail("each row must be a byte string of at most 1024 bytes");
      return { t: "replicate", rows: rows as Uint8Array[] };
    }
    default:
      throw fail(`unknown request type ${JSON.stringify(String(map.t).slice(0, 32))}`);
  }
}

/** Decodes a response; OracleError "bad-response" for anything malformed. */
export function decodeOracleResponse(bytes: Uint8Array, options: DecodeOracleOptions = {}): OracleResponse {
  const fail = (m: string) => new OracleError("bad-response", `oracle response: ${m}`);
  const r = cborReaders(fail);
  let map: CborMap;
  try {
    map = decodeMap(bytes, fail, options.maxBytes);
  } catch (err) {
    throw err instanceof OracleError && err.kind === "bad-response" ? err : fail((err as Error).message);
  }
  const fields = (req: string[], opt: string[] = []) => r.readMap(map, String(map.t), ["t", "v", ...req], opt);
  const blob = (value: unknown, what: string, max: number): Uint8Array => {
    if (!(value instanceof Uint8Array) || value.length === 0 || value.length > max) throw fail(`${what} must be 1..${max} bytes`);
    return value;
  };
  switch (map.t) {
    case "challenge":
      fields(["expires", "nonce", "oracle"]);
      return {
        t: "challenge",
        expires: r.readUint(map.expires, "expires"),
        nonce: r.readBytes(map.nonce, "nonce", NONCE_LEN),
        oracle: r.readBytes(map.oracle, "oracle", 32),
      };
    case "receipt":
      fields(["receipt"]);
      return { t: "receipt", receipt: blob(map.receipt, "receipt", 1024) };
    case "blind-sig":
      fields(["key", "sig"]);
      return { t: "blind-sig", key: bytesToHex(r.readBytes(map.key, "key", 32)), sig: blob(map.sig, "sig", 512) };
    case "keys": {
      fields(["keys"]);
      const keys = r.readArray(map.keys, "keys", MAX_LISTED_KEYS).map((k) => {
        const m = r.readMap(k, "key", ["b", "d", "f", "from", "id", "spki", "until"]);
        return {
          keyId: bytesToHex(r.readBytes(m.id, "id", 32)),
          spki: blob(m.spki, "spki", 600),
          params: {
            bitrateKbps: r.readUint(m.b, "b", 0xffff_ffff),
            maxDurationSeconds: r.readUint(m.d, "d", 0xffff_ffff),
            formatFlags: r.readUint(m.f, "f", 0xffff_ffff),
          },
          validFrom: r.readUint(m.from, "from"),
          validUntil: r.readUint(m.until, "until"),
        };
      });
      return { t: "keys", keys };
    }
    case "inclusion": {
      fields(["b", "p"]);
      try {
        return { t: "inclusion", ...inclusionFromCbor({ b: map.b ?? null, p: map.p ?? null }) };
      } catch (err) {
        throw fail((err as Error).message);
      }
    }
    case "puzzle":
      fields(["difficulty", "expires", "seed"]);
      return {
        t: "puzzle",
        difficulty: r.readUint(map.difficulty, "difficulty", 64),
        expires: r.readUint(map.expires, "expires"),
        seed: r.readBytes(map.seed, "seed", 32),
      };
    case "session":
      fields(["session"]);
      return { t: "session", session: blob(map.session, "session", 512) };
    case "ack":
      fields(["n"]);
      return { t: "ack", n: r.readUint(map.n, "n", Math.max(MAX_REPLICATE_ROWS, MAX_REPLICATE_REPORTS)) };
    case "report-ack": {
      fields(["dup", "hash"]);
      if (typeof map.dup !== "boolean") throw fail("dup must be a boolean");
      return { t: "report-ack", dup: map.dup, hash: bytesToHex(r.readBytes(map.hash, "hash", 32)) };
    }
    case "reward-proof": {
      fields(["amount", "epoch", "epochs", "proof", "root"]);
      return {
        t: "reward-proof",
        amount: amountFromBytes(map.amount, "amount", fail),
        epoch: r.readUint(map.epoch, "epoch"),
        epochs: r.readArray(map.epochs, "epochs", MAX_REWARD_EPOCHS).map((item) => {
          const m = r.readMap(item, "epoch amount", ["amount", "e"]);
          return { epoch: r.readUint(m.e, "e"), amount: amountFromBytes(m.amount, "epoch amount", fail) };
        }),
        proof: r.readArray(map.proof, "proof", MAX_REWARD_PROOF_DEPTH).map((p) => bytesToHex(r.readBytes(p, "proof node", 32))),
        root: bytesToHex(r.readBytes(map.root, "root", 32)),
      };
    }
    case "epoch-clock": {
      fields(["genesis", "length"]);
      const length = r.readUint(map.length, "length", MAX_EPOCH);
      if (length === 0) throw fail("epoch length must be positive");
      return { t: "epoch-clock", genesis: r.readUint(map.genesis, "genesis", MAX_EPOCH), length };
    }
    case "error": {
      fields(["kind", "message"], ["retryAfterMs"]);
      const out: OracleResponse = { t: "error", kind: r.readText(map.kind, "kind", 64), message: r.readText(map.message, "message", 512) };
      if (map.retryAfterMs !== undefined) out.retryAfterMs = r.readUint(map.retryAfterMs, "retryAfterMs");
      return out;
    }
    default:
      throw fail(`unknown response type ${JSON.stringify(String(map.t).slice(0, 32))}`);
  }
}

/** The error an `error` response stands for (an unknown kind is "bad-response"). */
export function refusalError(response: { kind: string; message: string; retryAfterMs?: number }): OracleError {
  const known = (OracleError.kinds as readonly string[]).includes(response.kind) && !ORACLE_CLIENT_SIDE_KINDS.includes(response.kind as OracleErrorKind);
  return new OracleError(known ? (response.kind as OracleErrorKind) : "bad-response", `oracle refused: ${response.message}`, {
    ...(response.retryAfterMs === undefined ? {} : { retryAfterMs: response.retryAfterMs }),
  });
}

/** The bytes a producer's identity key signs to ask `oracle` for a receipt under challenge `nonce`. */
export function receiptProofMessage(oracle: Uint8Array, nonce: Uint8Array, blind?: { blinded: Uint8Array; key: Hex }): Uint8Array {
  return documentSigningMessage(
    RECEIPT_PROOF_TYPE,
    encodeCanonical({ blinded: blind?.blinded ?? new Uint8Array(0), key: blind ? hexBytes(blind.key) : new Uint8Array(0), nonce, oracle }),
  );
}

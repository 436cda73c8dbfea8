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
 *   session-request   { seed: bstr32, x: bstr32 }           -> session
 *   session           { session: bstr }                     (session.ts)
 *   replicate         { rows: [bstr] }                      -> ack   (oracle to oracle, over node links)
 *   ack               { n: uint }
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
import { bytesToHex, type Hex } from "viem";
import { decodeCanonical, encodeCanonical, type CanonicalValue } from "../wire/canonical.js";
import { documentSigningMessage } from "../wire/document.js";
import { cborReaders, isCborMap, type CborMap } from "../wire/fields.js";
import { OracleError, ORACLE_CLIENT_SIDE_KINDS, type OracleErrorKind } from "./oracle-errors.js";
import { inclusionFromCbor, inclusionToCbor, type ReceiptInclusion, type StreamParams } from "./receipt.js";

export const ORACLE_MESSAGE_VERSION = 1;
/** Largest oracle message (an access certificate is up to 4096 bytes, a blinded 4096-bit message 512). */
export const MAX_ORACLE_MESSAGE_BYTES = 8192;
/** Most rows in one replicate message. */
export const MAX_REPLICATE_ROWS = 16;
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
  | { t: "session-request"; seed: Uint8Array; x: Uint8Array }
  | { t: "replicate"; rows: Uint8Array[] };

export type OracleResponse =
  | ({ t: "challenge" } & OracleChallenge)
  | { t: "receipt"; receipt: Uint8Array }
  | { t: "blind-sig"; key: Hex; sig: Uint8Array }
  | { t: "keys"; keys: ListedBlindKey[] }
  | ({ t: "inclusion" } & ReceiptInclusion)
  | ({ t: "puzzle" } & OraclePuzzle)
  | { t: "session"; session: Uint8Array }
  | { t: "ack"; n: number }
  | { t: "error"; kind: string; message: string; retryAfterMs?: number };

const hexBytes = (h: Hex): Uint8Array => new Uint8Array(Buffer.from(h.slice(2), "hex"));

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
      return encodeCanonical({ t: msg.t, v, seed: msg.seed, x: msg.x });
    case "session":
      return encodeCanonical({ t: msg.t, v, session: msg.session });
    case "replicate":
      return encodeCanonical({ t: msg.t, v, rows: msg.rows });
    case "ack":
      return encodeCanonical({ t: msg.t, v, n: msg.n });
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

function decodeMap(bytes: Uint8Array, fail: (m: string) => OracleError): CborMap {
  if (!(bytes instanceof Uint8Array)) throw fail("message must be bytes");
  if (bytes.length > MAX_ORACLE_MESSAGE_BYTES)
    throw new OracleError("too-large", `oracle message of ${bytes.length} bytes is over ${MAX_ORACLE_MESSAGE_BYTES}`);
  let raw: CanonicalValue;
  try {
    raw = decodeCanonical(bytes, { maxBytes: MAX_ORACLE_MESSAGE_BYTES, maxDepth: 4 });
  } catch (err) {
    throw fail(`not canonical CBOR: ${(err as Error).message}`);
  }
  if (!isCborMap(raw)) throw fail("message must be a map");
  if (raw.v !== ORACLE_MESSAGE_VERSION) throw fail(`version ${String(raw.v)} is not ${ORACLE_MESSAGE_VERSION}`);
  if (typeof raw.t !== "string") throw fail('message lacks its type "t"');
  return raw;
}

/** Decodes a request; OracleError "too-large" or "malformed-request". */
export function decodeOracleRequest(bytes: Uint8Array): OracleRequest {
  const fail = (m: string) => new OracleError("malformed-request", `oracle request: ${m}`);
  const r = cborReaders(fail);
  const map = decodeMap(bytes, fail);
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
      fields(["seed", "x"]);
      return { t: "session-request", seed: r.readBytes(map.seed, "seed", 32), x: r.readBytes(map.x, "x", 32) };
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
export function decodeOracleResponse(bytes: Uint8Array): OracleResponse {
  const fail = (m: string) => new OracleError("bad-response", `oracle response: ${m}`);
  const r = cborReaders(fail);
  let map: CborMap;
  try {
    map = decodeMap(bytes, fail);
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
      return { t: "ack", n: r.readUint(map.n, "n", MAX_REPLICATE_ROWS) };
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

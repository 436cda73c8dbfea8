/**
 * Anonymous stream-creation receipts: what an oracle hands a subscribed
 * producer so that a landing node creates its stream without learning who
 * owns it (whitepaper §8.1; docs/spec/oracle.md).
 *
 * Owns two byte layouts (canonical CBOR, wire/canonical.ts) and their checks:
 *
 * Linkable receipt, a signed document (wire/document.ts) of type
 * "stream-receipt" whose body is
 *   { "exp": uint, "iat": uint, "id": bstr(16), "o": bstr(32),
 *     "p": { "b": uint, "d": uint, "f": uint }, "v": 1 }
 * id = 16 random bytes (the landing node's replay key), o = the issuing
 * oracle's node identity key (it must equal the envelope's signer), p = the
 * allowed parameters (bitrate cap kbit/s, maximum duration s, format flags),
 * iat/exp = unix seconds. Its `receiptHash` (bytes32, the leaf committed in
 * OracleReceipts batches) is keccak256 of the exact signed message
 * ("psp-doc-v1" ‖ 0 ‖ "stream-receipt" ‖ 0 ‖ body). The oracle keeps
 * id → identity; the receipt itself names no identity.
 *
 * Blind (unlinkable) receipt, RFC 9474 RSABSSA-SHA384-PSS-Randomized:
 *   { "k": bstr(32), "r": bstr(32), "s": bstr(256..512), "t": bstr(32),
 *     "type": "stream-blind-receipt", "v": 1 }
 * k = key id (keccak256 of the RSA key's DER SPKI, as OracleReceipts' blind
 * key registry computes it), t = a random token the producer chose, r = the
 * RFC's Prepare prefix, s = the RSA-PSS signature over
 *   r ‖ "psp-blind-receipt-v1" ‖ 0 ‖ k ‖ t.
 * The oracle signed it blinded, so it cannot link it to the producer; the
 * parameters and validity window are the KEY's (one key per parameter class
 * and window, published on chain), so they need not be in the receipt.
 * The replay key is t.
 *
 * Verifiers are plain functions: they take the trust inputs (the current
 * oracle keys, the chain's record of a blind key, the chain's answer about a
 * commitment) and `now`, and throw StreamError "malformed", "forged",
 * "expired", "not-yet-valid", "revoked", "unknown-oracle", "unknown-key" or
 * "uncommitted". `verifyReceiptAgainstChain` composes them over a
 * ReceiptChainView (stream/oracle-chain.ts binds it to the contracts).
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { randomBytes } from "node:crypto";
import { bytesToHex, type Address, type Hex } from "viem";
import { bytesEqual, concatBytes } from "../base/bytes.js";
import {
  BLIND_RSA_PREFIX_LEN,
  blindRsaBlind,
  blindRsaFinalize,
  blindRsaPrepare,
  blindRsaPublicKey,
  blindRsaVerify,
  type BlindRsaPublicKey,
} from "../crypto/blind-rsa.js";
import { ED25519_PUBLIC_KEY_LEN, ed25519PublicKey } from "../crypto/ed25519.js";
import { decodeCanonical, encodeCanonical, type CanonicalValue } from "../wire/canonical.js";
import { documentSigningMessage, openDocument, signDocument } from "../wire/document.js";
import { WireError } from "../wire/errors.js";
import { cborReaders, isCborMap } from "../wire/fields.js";
import { StreamError } from "./errors.js";

export const RECEIPT_TYPE = "stream-receipt";
export const BLIND_RECEIPT_TYPE = "stream-blind-receipt";
export const RECEIPT_VERSION = 1;
export const RECEIPT_ID_LEN = 16;
export const BLIND_TOKEN_LEN = 32;
/** Largest encoded linkable receipt accepted (a real one is about 230 bytes). */
export const MAX_RECEIPT_BYTES = 512;
/** Largest encoded blind receipt accepted (a 4096-bit signature is 512 bytes). */
export const MAX_BLIND_RECEIPT_BYTES = 768;
/** What an oracle issues: one hour to start the stream. */
export const DEFAULT_RECEIPT_VALIDITY_SECONDS = 3600;
/** Longest window a verifier accepts for a linkable receipt. */
export const MAX_RECEIPT_VALIDITY_SECONDS = 24 * 3600;
/** How long a landing node accepts a linkable receipt whose batch has not landed yet. */
export const DEFAULT_COMMIT_GRACE_SECONDS = 600;
/** Clock difference tolerated at both ends of a window. */
export const DEFAULT_STREAM_CLOCK_SKEW_SECONDS = 60;
/** Largest parameter values (uint32, as the chain stores them). */
export const MAX_PARAM_VALUE = 0xffff_ffff;
/** Most siblings an inclusion proof may carry (2^32 receipts per batch). */
export const MAX_PROOF_LENGTH = 32;

/** Format flags of a stream (a bit set; unknown bits are kept and passed on). */
export const FormatFlag = { video: 1, audio: 2, mpegts: 4 } as const;

const BLIND_DOMAIN = new TextEncoder().encode("psp-blind-receipt-v1");
const MAX_UNIX_SECONDS = 2 ** 40;

/** What a receipt allows: a landing node enforces it on the stream it creates. */
export interface StreamParams {
  bitrateKbps: number;
  maxDurationSeconds: number;
  formatFlags: number;
}

export interface LinkableReceipt {
  id: Uint8Array;
  params: StreamParams;
  /** Unix seconds. */
  issuedAt: number;
  /** Unix seconds, exclusive. */
  expiresAt: number;
  /** The issuing oracle's Ed25519 node identity key. */
  oracle: Uint8Array;
  /** bytes32 committed in OracleReceipts batches. */
  receiptHash: Hex;
  /** The encoded receipt, exactly as signed and transported. */
  bytes: Uint8Array;
}

export interface BlindReceipt {
  keyId: Hex;
  token: Uint8Array;
  prefix: Uint8Array;
  signature: Uint8Array;
  bytes: Uint8Array;
}

const malformed = (message: string) => new StreamError("malformed", `receipt: ${message}`);
const { readBytes, readMap, readUint, readArray } = cborReaders(malformed);

function checkParams(params: StreamParams, fail: (m: string) => StreamError): void {
  for (const [name, value] of Object.entries(params)) {
    if (!Number.isSafeInteger(value) || value < 0 || value > MAX_PARAM_VALUE) throw fail(`${name} must be an integer in 0..${MAX_PARAM_VALUE}`);
  }
}

function checkWindow(issuedAt: number, expiresAt: number, maxValidity: number, fail: (m: string) => StreamError): void {
  for (const t of [issuedAt, expiresAt]) if (!Number.isSafeInteger(t) || t < 0 || t > MAX_UNIX_SECONDS) throw fail("times must be unix seconds");
  if (expiresAt <= issuedAt) throw fail("expiry must be after issue");
  if (expiresAt - issuedAt > maxValidity) throw fail(`validity of ${expiresAt - issuedAt} s is longer than ${maxValidity} s`);
}

function readParams(value: CanonicalValue | undefined): StreamParams {
  const p = readMap(value, "params", ["b", "d", "f"]);
  return {
    bitrateKbps: readUint(p.b, "bitrate", MAX_PARAM_VALUE),
    maxDurationSeconds: readUint(p.d, "duration", MAX_PARAM_VALUE),
    formatFlags: readUint(p.f, "format flags", MAX_PARAM_VALUE),
  };
}

function keyIn(key: Uint8Array, keys: Iterable<Uint8Array>): boolean {
  for (const k of keys) if (bytesEqual(k, key)) return true;
  return false;
}

/** Time checks shared by receipts and session ids: expired, not yet valid. */
export function checkValidityTime(what: string, issuedAt: number, expiresAt: number, now: number, skewSeconds: number): void {
  if (now >= expiresAt + skewSeconds) {
    throw new StreamError("expired", `${what} expired at ${expiresAt}, now is ${now}`, { fix: `obtain a fresh ${what} from an oracle` });
  }
  if (now + skewSeconds < issuedAt) throw new StreamError("not-yet-valid", `${what} is dated ${issuedAt}, now is ${now}: a clock is wrong`);
}

// ------------------------------------------------------------------ linkable

export interface SignReceiptInput {
  params: StreamParams;
  issuedAt: number;
  expiresAt: number;
  /** The oracle's 32-byte Ed25519 node identity seed. */
  secretKey: Uint8Array;
  /** Fixed id for vectors; random otherwise. */
  id?: Uint8Array;
}

/** Issues (signs and encodes) a linkable receipt. */
export function signReceipt(input: SignReceiptInput): LinkableReceipt {
  const bad = (m: string) => new StreamError("bad-argument", `receipt: ${m}`);
  checkParams(input.params, bad);
  checkWindow(input.issuedAt, input.expiresAt, MAX_RECEIPT_VALIDITY_SECONDS, bad);
  const id = input.id ?? new Uint8Array(randomBytes(RECEIPT_ID_LEN));
  if (id.length !== RECEIPT_ID_LEN) throw bad(`id must be ${RECEIPT_ID_LEN} bytes`);
  const bytes = signDocument({
    type: RECEIPT_TYPE,
    secretKey: input.secretKey,
    body: receiptBody(new Uint8Array(id), input.params, input.issuedAt, input.expiresAt, ed25519PublicKey(input.secretKey)),
  });
  return decodeReceipt(bytes);
}

function receiptBody(id: Uint8Array, p: StreamParams, iat: number, exp: number, oracle: Uint8Array): CanonicalValue {
  return { exp, iat, id, o: oracle, p: { b: p.bitrateKbps, d: p.maxDurationSeconds, f: p.formatFlags }, v: RECEIPT_VERSION };
}

/** keccak256 of the exact message a linkable receipt's signature covers. */
export function receiptHashOf(bodyBytes: Uint8Array): Hex {
  return bytesToHex(keccak_256(documentSigningMessage(RECEIPT_TYPE, bodyBytes)));
}

function wireToStream(err: unknown, what: string): never {
  if (err instanceof StreamError) throw err;
  if (WireError.is(err, "bad-signature")) throw new StreamError("forged", `${what}: signature does not verify`, { cause: err });
  throw new StreamError("malformed", `${what}: ${(err as Error).message}`, { cause: err });
}

/**
 * Decodes a linkable receipt and checks its own signature (by the key it
 * names). Does not decide whether that key is an oracle's: see verifyReceipt.
 */
export function decodeReceipt(bytes: Uint8Array): LinkableReceipt {
  if (!(bytes instanceof Uint8Array) || bytes.length > MAX_RECEIPT_BYTES) throw malformed(`larger than ${MAX_RECEIPT_BYTES} bytes`);
  let opened;
  try {
    opened = openDocument(bytes, { type: RECEIPT_TYPE, maxBytes: MAX_RECEIPT_BYTES, maxDepth: 2 });
  } catch (err) {
    wireToStream(err, "receipt");
  }
  const body = readMap(opened.body, "receipt body", ["exp", "iat", "id", "o", "p", "v"]);
  if (body.v !== RECEIPT_VERSION) throw malformed(`version ${String(body.v)} is not ${RECEIPT_VERSION}`);
  const id = readBytes(body.id, "id", RECEIPT_ID_LEN);
  const oracle = readBytes(body.o, "oracle key", ED25519_PUBLIC_KEY_LEN);
  const params = readParams(body.p);
  const issuedAt = readUint(body.iat, "issued-at", MAX_UNIX_SECONDS);
  const expiresAt = readUint(body.exp, "expires-at", MAX_UNIX_SECONDS);
  if (expiresAt <= issuedAt) throw malformed("expiry must be after issue");
  if (!bytesEqual(oracle, opened.signer)) throw new StreamError("forged", "receipt is signed by another key than the oracle it names");
  return { id, params, issuedAt, expiresAt, oracle, receiptHash: receiptHashOf(opened.bodyBytes), bytes };
}

export interface VerifyReceiptOptions {
  /** Node identity keys of the current oracles (the on-chain oracle set). */
  oracleKeys: Iterable<Uint8Array>;
  /** Unix seconds. */
  now: number;
  skewSeconds?: number;
}

/** Signature by a current oracle and validity time; commitment and revocation are checkReceiptCommitment's. */
export function verifyReceipt(bytes: Uint8Array, options: VerifyReceiptOptions): LinkableReceipt {
  const receipt = decodeReceipt(bytes);
  if (receipt.expiresAt - receipt.issuedAt > MAX_RECEIPT_VALIDITY_SECONDS) throw new StreamError("expired", "receipt validity window is longer than allowed");
  if (!keyIn(receipt.oracle, options.oracleKeys)) {
    throw new StreamError("unknown-oracle", "receipt is signed by a node that is not a current oracle", { fix: "obtain a receipt from a current oracle" });
  }
  checkValidityTime("receipt", receipt.issuedAt, receipt.expiresAt, options.now, options.skewSeconds ?? DEFAULT_STREAM_CLOCK_SKEW_SECONDS);
  return receipt;
}

/** Where a receipt hash sits in a committed batch: batch id and OZ StandardMerkleTree proof. */
export interface ReceiptInclusion {
  batchId: bigint;
  proof: Hex[];
}

/** What the chain says about one receipt. */
export interface CommitmentStatus {
  /** The inclusion proof places the hash in a committed batch (OracleReceipts.verifyReceipt, or the root). */
  committed: boolean;
  /** A ReceiptRevoked event names the hash. */
  revoked: boolean;
}

/**
 * A landing node accepts a linkable receipt that is committed and not
 * revoked, or, before its batch lands, within `graceSeconds` of issue.
 */
export function checkReceiptCommitment(
  receipt: Pick<LinkableReceipt, "issuedAt" | "receiptHash">,
  status: CommitmentStatus,
  now: number,
  graceSeconds = DEFAULT_COMMIT_GRACE_SECONDS,
): void {
  if (status.revoked) throw new StreamError("revoked", `receipt ${receipt.receiptHash} was revoked on chain`);
  if (status.committed) return;
  if (now < receipt.issuedAt + graceSeconds) return;
  throw new StreamError("uncommitted", `receipt ${receipt.receiptHash} is not committed on chain and its ${graceSeconds} s grace period is over`, {
    fix: "fetch the receipt's inclusion proof from the oracle and present it",
  });
}

/** Encodes an inclusion proof as a CBOR value: { "b": uint, "p": [bstr(32), ...] }. */
export function inclusionToCbor(inclusion: ReceiptInclusion): CanonicalValue {
  return { b: Number(inclusion.batchId), p: inclusion.proof.map((h) => Buffer.from(h.slice(2), "hex")).map((b) => new Uint8Array(b)) };
}

export function inclusionFromCbor(value: CanonicalValue | undefined): ReceiptInclusion {
  const m = readMap(value, "inclusion", ["b", "p"]);
  const batchId = BigInt(readUint(m.b, "batch id"));
  if (batchId === 0n) throw malformed("batch ids start at 1");
  const proof = readArray(m.p, "proof", MAX_PROOF_LENGTH).map((h) => bytesToHex(readBytes(h, "proof node", 32)));
  return { batchId, proof };
}

// ------------------------------------------------------------------ blind

/** A blind key as the chain records it (OracleReceipts' registry). */
export interface BlindKeyRecord {
  keyId: Hex;
  spki: Uint8Array;
  /** The oracle signer that published it. */
  oracle: Address;
  params: StreamParams;
  /** Unix seconds: receipts under the key are valid from validFrom until validUntil (exclusive). */
  validFrom: number;
  validUntil: number;
  revoked: boolean;
}

/** keccak256 of a DER SPKI: the key id the chain computes. */
export function blindKeyId(spki: Uint8Array): Hex {
  return bytesToHex(keccak_256(spki));
}

/** The message an RSA blind signature covers, before the RFC's random prefix. */
export function blindReceiptMessage(keyId: Hex, token: Uint8Array): Uint8Array {
  return concatBytes(BLIND_DOMAIN, Uint8Array.of(0), Buffer.from(keyId.slice(2), "hex"), token);
}

export function encodeBlindReceipt(r: Omit<BlindReceipt, "bytes">): Uint8Array {
  return encodeCanonical({ k: Buffer.from(r.keyId.slice(2), "hex"), r: r.prefix, s: r.signature, t: r.token, type: BLIND_RECEIPT_TYPE, v: RECEIPT_VERSION });
}

/** Decodes a blind receipt's shape (the signature is verifyBlindReceipt's, against the chain's key). */
export function decodeBlindReceipt(bytes: Uint8Array): BlindReceipt {
  if (!(bytes instanceof Uint8Array) || bytes.length > MAX_BLIND_RECEIPT_BYTES) throw malformed(`blind receipt larger than ${MAX_BLIND_RECEIPT_BYTES} bytes`);
  let raw: CanonicalValue;
  try {
    raw = decodeCanonical(bytes, { maxBytes: MAX_BLIND_RECEIPT_BYTES, maxDepth: 1 });
  } catch (err) {
    wireToStream(err, "blind receipt");
  }
  const m = readMap(raw, "blind receipt", ["k", "r", "s", "t", "type", "v"]);
  if (m.type !== BLIND_RECEIPT_TYPE) throw malformed(`type must be "${BLIND_RECEIPT_TYPE}"`);
  if (m.v !== RECEIPT_VERSION) throw malformed(`version ${String(m.v)} is not ${RECEIPT_VERSION}`);
  const s = m.s;
  if (!(s instanceof Uint8Array) || s.length < 256 || s.length > 512) throw malformed("signature must be 256..512 bytes");
  return {
    keyId: bytesToHex(readBytes(m.k, "key id", 32)),
    prefix: readBytes(m.r, "prefix", BLIND_RSA_PREFIX_LEN),
    signature: s,
    token: readBytes(m.t, "token", BLIND_TOKEN_LEN),
    bytes,
  };
}

export interface VerifiedBlindReceipt extends BlindReceipt {
  params: StreamParams;
  validUntil: number;
}

export interface VerifyBlindReceiptOptions {
  /** The chain's record of the key the receipt names; undefined when the chain holds none. */
  key: BlindKeyRecord | undefined;
  /** Whether the key's publishing oracle is still in the oracle set. */
  oracleCurrent: boolean;
  now: number;
  skewSeconds?: number;
}

/** Valid while its key is registered, unrevoked, in its window and its oracle still in the set; and the signature verifies. */
export function verifyBlindReceipt(bytes: Uint8Array, options: VerifyBlindReceiptOptions): VerifiedBlindReceipt {
  const receipt = decodeBlindReceipt(bytes);
  const key = options.key;
  if (key === undefined || key.keyId.toLowerCase() !== receipt.keyId.toLowerCase()) {
    throw new StreamError("unknown-key", `blind receipt names key ${receipt.keyId}, which the chain does not hold`);
  }
  if (blindKeyId(key.spki) !== receipt.keyId.toLowerCase()) throw new StreamError("unknown-key", "the chain's key record does not hash to its id");
  if (key.revoked) throw new StreamError("revoked", `blind key ${key.keyId} was revoked`);
  if (!options.oracleCurrent) throw new StreamError("unknown-oracle", `blind key ${key.keyId} belongs to ${key.oracle}, no longer a current oracle`);
  checkValidityTime("blind receipt", key.validFrom, key.validUntil, options.now, options.skewSeconds ?? DEFAULT_STREAM_CLOCK_SKEW_SECONDS);
  let pk: BlindRsaPublicKey;
  try {
    pk = blindRsaPublicKey(key.spki);
  } catch (err) {
    throw new StreamError("unknown-key", `blind key ${key.keyId} is not a usable RSA key`, { cause: err });
  }
  if (receipt.signature.length !== pk.modulusBytes) throw new StreamError("forged", "blind receipt signature length does not match its key");
  const prepared = concatBytes(receipt.prefix, blindReceiptMessage(receipt.keyId, receipt.token));
  if (!blindRsaVerify(pk, prepared, receipt.signature)) throw new StreamError("forged", `blind receipt signature does not verify under key ${key.keyId}`);
  return { ...receipt, params: key.params, validUntil: key.validUntil };
}

/** The client's state between sending a blinded request and finishing the receipt. */
export interface BlindReceiptRequest {
  keyId: Hex;
  token: Uint8Array;
  prefix: Uint8Array;
  prepared: Uint8Array;
  blindedMsg: Uint8Array;
  inv: bigint;
  publicKey: BlindRsaPublicKey;
}

/** Producer side: picks a random token and blinds it for the key `spki`. */
export function prepareBlindReceipt(spki: Uint8Array): BlindReceiptRequest {
  const publicKey = blindRsaPublicKey(spki);
  const keyId = blindKeyId(spki);
  const token = new Uint8Array(randomBytes(BLIND_TOKEN_LEN));
  const prepared = blindRsaPrepare(blindReceiptMessage(keyId, token));
  const { blindedMsg, inv } = blindRsaBlind(publicKey, prepared);
  return { keyId, token, prefix: prepared.subarray(0, BLIND_RSA_PREFIX_LEN), prepared, blindedMsg, inv, publicKey };
}

/** Producer side: unblinds the oracle's blind signature into a receipt (throws "forged" when it does not verify). */
export function finishBlindReceipt(request: BlindReceiptRequest, blindSig: Uint8Array): BlindReceipt {
  let signature: Uint8Array;
  try {
    signature = blindRsaFinalize(request.publicKey, request.prepared, blindSig, request.inv);
  } catch (err) {
    throw new StreamError("forged", "the oracle's blind signature does not verify under the published key", { cause: err });
  }
  const fields = { keyId: request.keyId, token: request.token, prefix: request.prefix, signature };
  return { ...fields, bytes: encodeBlindReceipt(fields) };
}

// ------------------------------------------------------------------ either kind

/** The key a landing node uses to refuse a second stream on one receipt (hex of id or token). */
export function receiptReplayKey(receipt: LinkableReceipt | BlindReceipt): string {
  return "receiptHash" in receipt ? `l:${bytesToHex(receipt.id)}` : `b:${bytesToHex(receipt.token)}`;
}

/** What a landing node needs from the chain to judge a receipt (stream/oracle-chain.ts implements it). */
export interface ReceiptChainView {
  /** Node identity keys of the current oracle set. */
  oracleKeys(): Promise<readonly Uint8Array[]>;
  /** True when the proof places the hash in the batch and it is not revoked (OracleReceipts.verifyReceipt). */
  verifyInclusion(inclusion: ReceiptInclusion, receiptHash: Hex): Promise<boolean>;
  /** True when a ReceiptRevoked event names the hash. */
  isRevoked(receiptHash: Hex): Promise<boolean>;
  /** The chain's record of a blind key, undefined when there is none. */
  blindKey(keyId: Hex): Promise<BlindKeyRecord | undefined>;
  /** True when the signer address is in the current oracle set. */
  isOracleSigner(signer: Address): Promise<boolean>;
}

export type VerifiedAnyReceipt =
  { kind: "linkable"; receipt: LinkableReceipt; params: StreamParams } | { kind: "blind"; receipt: VerifiedBlindReceipt; params: StreamParams };

/** A landing node's whole check of a receipt (linkable or blind), except replay. */
export async function verifyReceiptAgainstChain(
  bytes: Uint8Array,
  options: { view: ReceiptChainView; now: number; inclusion?: ReceiptInclusion; graceSeconds?: number; skewSeconds?: number },
): Promise<VerifiedAnyReceipt> {
  const { view, now } = options;
  if (isBlindReceiptBytes(bytes)) {
    const shape = decodeBlindReceipt(bytes);
    const key = await view.blindKey(shape.keyId);
    const oracleCurrent = key === undefined ? false : await view.isOracleSigner(key.oracle);
    const receipt = verifyBlindReceipt(bytes, { key, oracleCurrent, now, skewSeconds: options.skewSeconds });
    return { kind: "blind", receipt, params: receipt.params };
  }
  const receipt = verifyReceipt(bytes, { oracleKeys: await view.oracleKeys(), now, skewSeconds: options.skewSeconds });
  const revoked = await view.isRevoked(receipt.receiptHash);
  const committed = !revoked && options.inclusion !== undefined ? await view.verifyInclusion(options.inclusion, receipt.receiptHash) : false;
  if (options.inclusion !== undefined && !committed && !revoked) {
    throw new StreamError("uncommitted", "the inclusion proof does not place the receipt in a committed batch");
  }
  checkReceiptCommitment(receipt, { committed, revoked }, now, options.graceSeconds);
  return { kind: "linkable", receipt, params: receipt.params };
}

/** True when the bytes are a blind receipt: both kinds are canonical maps with a "type" field. */
function isBlindReceiptBytes(bytes: Uint8Array): boolean {
  let raw: CanonicalValue;
  try {
    raw = decodeCanonical(bytes, { maxBytes: MAX_BLIND_RECEIPT_BYTES, maxDepth: 1 });
  } catch {
    return false; // decodeReceipt reports what is wrong with it
  }
  return isCborMap(raw) && raw.type === BLIND_RECEIPT_TYPE;
}

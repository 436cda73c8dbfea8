/**
 * DHT records: the signed, expiring key/value entries every node stores.
 *
 * A record is signed by its owner (a client, node or group identity key) and
 * co-signed by the node that published it (docs/spec/dht.md, Records). Its key is bound
 * to the owner: key = SHA-256("psp/dht/key/v1" || 0x00 || owner || name), so
 * no one can squat another identity's keys. Sequence numbers order updates;
 * expiry bounds how long a record lives without renewal by its owner.
 *
 * Owns the record format, its canonical encoding (wire/canonical CBOR),
 * signing, renewal and validation. Trusts crypto/ed25519 and wire/canonical.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { ed25519PublicKey, ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import { decodeCanonical, encodeCanonical } from "../wire/canonical.js";
import { isCborMap } from "../wire/fields.js";
import { DhtError } from "./errors.js";
import { idsEqual, isId } from "./id.js";

const KEY_DOMAIN = new TextEncoder().encode("psp/dht/key/v1");
const RECORD_DOMAIN = "psp/dht/record/v1";
const COSIGN_DOMAIN = "psp/dht/cosign/v1";
const utf8 = new TextEncoder();

export interface DhtRecord {
  /** Lookup key (32 bytes) = recordKey(owner, name). */
  key: Uint8Array;
  /** Owner-chosen label, e.g. "presence/0" (UTF-8, at most maxNameBytes). */
  name: string;
  /** Opaque payload (at most maxValueBytes). */
  value: Uint8Array;
  /** Owner's Ed25519 public key. */
  owner: Uint8Array;
  /** Update counter; a node keeps only the highest it has seen for a key. */
  seq: number;
  /** Expiry, milliseconds since the Unix epoch. */
  expiresAt: number;
  /** Owner's signature over the record fields. */
  ownerSig: Uint8Array;
  /** Publishing node's Ed25519 public key. */
  publisher: Uint8Array;
  /** Publishing node's co-signature over the owner-signed record. */
  publisherSig: Uint8Array;
}

export interface RecordLimits {
  maxNameBytes: number;
  maxValueBytes: number;
  /** Upper bound on the whole encoded record. */
  maxRecordBytes: number;
  /** Records may not expire later than now + maxTtlMs (+ clock skew). */
  maxTtlMs: number;
  /** Clock skew tolerated on expiry checks. */
  clockSkewMs: number;
}

export const DEFAULT_RECORD_LIMITS: RecordLimits = {
  maxNameBytes: 64,
  maxValueBytes: 2048,
  maxRecordBytes: 4096,
  maxTtlMs: 24 * 3600_000,
  clockSkewMs: 60_000,
};

/** The key of an owner's record called `name`. */
export function recordKey(owner: Uint8Array, name: string): Uint8Array {
  if (!isId(owner)) throw new DhtError("malformed", "record owner must be a 32-byte Ed25519 public key");
  const nameBytes = utf8.encode(name);
  const input = new Uint8Array(KEY_DOMAIN.length + 1 + 32 + nameBytes.length);
  input.set(KEY_DOMAIN, 0);
  input[KEY_DOMAIN.length] = 0;
  input.set(owner, KEY_DOMAIN.length + 1);
  input.set(nameBytes, KEY_DOMAIN.length + 33);
  return sha256(input);
}

/** Bytes the owner signs. */
export function ownerSigningPayload(r: Pick<DhtRecord, "key" | "name" | "value" | "owner" | "seq" | "expiresAt">): Uint8Array {
  return encodeCanonical({ domain: RECORD_DOMAIN, key: r.key, name: r.name, value: r.value, owner: r.owner, seq: r.seq, expiresAt: r.expiresAt });
}

/** Bytes the publishing node signs: a digest of the owner payload, the owner signature and its own key. */
export function publisherSigningPayload(r: Omit<DhtRecord, "publisherSig">): Uint8Array {
  return encodeCanonical({ domain: COSIGN_DOMAIN, record: sha256(ownerSigningPayload(r)), ownerSig: r.ownerSig, publisher: r.publisher });
}

/** An owner-signed record not yet co-signed (what a client hands its presence node). */
export type OwnerSignedRecord = Omit<DhtRecord, "publisher" | "publisherSig">;

export interface SignRecordOptions {
  ownerSecretKey: Uint8Array;
  name: string;
  value: Uint8Array;
  seq: number;
  expiresAt: number;
}

/** Owner side: builds and signs a record. */
export function signRecordAsOwner(o: SignRecordOptions): OwnerSignedRecord {
  const owner = ed25519PublicKey(o.ownerSecretKey);
  checkSeqAndExpiry(o.seq, o.expiresAt);
  const fields = { key: recordKey(owner, o.name), name: o.name, value: o.value, owner, seq: o.seq, expiresAt: o.expiresAt };
  return { ...fields, ownerSig: ed25519Sign(o.ownerSecretKey, ownerSigningPayload(fields)) };
}

/**
 * Owner side, for an owner whose secret is not a plain Ed25519 seed (a
 * per-period blinded key, crypto/blinding.ts): `sign` produces the owner's
 * Ed25519 signature over the payload it is given.
 */
export function signRecordWith(o: Omit<SignRecordOptions, "ownerSecretKey"> & { owner: Uint8Array; sign: (payload: Uint8Array) => Uint8Array }): OwnerSignedRecord {
  checkSeqAndExpiry(o.seq, o.expiresAt);
  const fields = { key: recordKey(o.owner, o.name), name: o.name, value: o.value, owner: o.owner, seq: o.seq, expiresAt: o.expiresAt };
  return { ...fields, ownerSig: o.sign(ownerSigningPayload(fields)) };
}

/** Publishing node side: co-signs an owner-signed record (verify it first with validateRecord after signing, or checkOwnerSignature). */
export function coSignRecord(record: OwnerSignedRecord, publisherSecretKey: Uint8Array): DhtRecord {
  if (!ed25519Verify(record.owner, ownerSigningPayload(record), record.ownerSig)) {
    throw new DhtError("bad-owner-signature", "refusing to co-sign: the owner signature does not verify");
  }
  const withPublisher = { ...record, publisher: ed25519PublicKey(publisherSecretKey) };
  return { ...withPublisher, publisherSig: ed25519Sign(publisherSecretKey, publisherSigningPayload(withPublisher)) };
}

export interface RenewRecordOptions {
  ownerSecretKey: Uint8Array;
  publisherSecretKey: Uint8Array;
  /** New lifetime from `now`. */
  ttlMs: number;
  now: number;
  /** New value; defaults to the current one. */
  value?: Uint8Array;
}

/** The owner's renewal of a record: same key, seq + 1, new expiry, fresh signatures. */
export function renewRecord(record: DhtRecord, o: RenewRecordOptions): DhtRecord {
  const owner = ed25519PublicKey(o.ownerSecretKey);
  if (!idsEqual(owner, record.owner)) throw new DhtError("bad-owner-signature", "only the record's owner can renew it: wrong ownerSecretKey");
  const signed = signRecordAsOwner({
    ownerSecretKey: o.ownerSecretKey,
    name: record.name,
    value: o.value ?? record.value,
    seq: record.seq + 1,
    expiresAt: o.now + o.ttlMs,
  });
  return coSignRecord(signed, o.publisherSecretKey);
}

/** True when a record should be renewed now: less than `marginMs` of its life left. */
export function needsRenewal(record: DhtRecord, now: number, marginMs: number): boolean {
  return record.expiresAt - now <= marginMs;
}

function checkSeqAndExpiry(seq: unknown, expiresAt: unknown): void {
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) throw new DhtError("malformed", "record seq must be a non-negative safe integer");
  if (typeof expiresAt !== "number" || !Number.isSafeInteger(expiresAt) || expiresAt < 0) {
    throw new DhtError("malformed", "record expiresAt must be a non-negative integer (ms since epoch)");
  }
}

/** Wire form: canonical CBOR of a map with short field names. */
export function encodeRecord(r: DhtRecord): Uint8Array {
  return encodeCanonical(recordToWire(r));
}

/** Shape check of a decoded record map; throws DhtError "malformed". */
export function recordFromWire(value: unknown): DhtRecord {
  if (!isCborMap(value)) throw new DhtError("malformed", "record must be a map");
  const m = value;
  const bytes = (field: string, length?: number): Uint8Array => {
    const v = m[field];
    if (!(v instanceof Uint8Array) || (length !== undefined && v.length !== length)) {
      throw new DhtError("malformed", `record field "${field}" must be ${length === undefined ? "bytes" : `${length} bytes`}`);
    }
    return v;
  };
  const name = m["n"];
  if (typeof name !== "string") throw new DhtError("malformed", 'record field "n" (name) must be a string');
  checkSeqAndExpiry(m["s"], m["e"]);
  const known = new Set(["k", "n", "v", "o", "s", "e", "os", "p", "ps"]);
  for (const field of Object.keys(m)) if (!known.has(field)) throw new DhtError("malformed", `record has unknown field "${field}"`);
  return {
    key: bytes("k", 32),
    name,
    value: bytes("v"),
    owner: bytes("o", 32),
    seq: m["s"] as number,
    expiresAt: m["e"] as number,
    ownerSig: bytes("os", 64),
    publisher: bytes("p", 32),
    publisherSig: bytes("ps", 64),
  };
}

/** Wire map of an owner-signed record (what a client hands the node that co-signs it). */
export function ownerRecordToWire(r: OwnerSignedRecord): Record<string, unknown> {
  return { k: r.key, n: r.name, v: r.value, o: r.owner, s: r.seq, e: r.expiresAt, os: r.ownerSig };
}

/** Wire map of a whole record (the map encodeRecord encodes). */
export function recordToWire(r: DhtRecord): Record<string, unknown> {
  return { ...ownerRecordToWire(r), p: r.publisher, ps: r.publisherSig };
}

/** Shape check of an owner-signed record map (a record without p/ps). Throws DhtError "malformed". */
export function ownerRecordFromWire(value: unknown): OwnerSignedRecord {
  if (typeof value !== "object" || value === null || value instanceof Uint8Array || Array.isArray(value)) throw new DhtError("malformed", "an owner-signed record must be a map");
  if ("p" in value || "ps" in value) throw new DhtError("malformed", "an owner-signed record has no publisher fields; the publishing node co-signs it");
  const full = recordFromWire({ ...value, p: new Uint8Array(32), ps: new Uint8Array(64) });
  const { publisher: _p, publisherSig: _ps, ...owned } = full;
  return owned;
}

/** Decodes a record from bytes; throws DhtError "oversized" or "malformed". */
export function decodeRecord(bytes: Uint8Array, limits: RecordLimits = DEFAULT_RECORD_LIMITS): DhtRecord {
  if (bytes.length > limits.maxRecordBytes) throw new DhtError("oversized", `record is ${bytes.length} bytes; the limit is ${limits.maxRecordBytes}`);
  let decoded: unknown;
  try {
    decoded = decodeCanonical(bytes, { maxBytes: limits.maxRecordBytes });
  } catch (cause) {
    throw new DhtError("malformed", "record bytes are not canonical CBOR", { cause });
  }
  return recordFromWire(decoded);
}

export interface ValidateRecordOptions {
  now: number;
  limits?: RecordLimits;
  /** Extra rule on who may co-sign (e.g. "a node in the current consensus"); default accepts any key. */
  acceptPublisher?: (publisher: Uint8Array) => boolean;
}

/**
 * Full validation of a record received from anyone: sizes, key binding,
 * expiry, owner signature, publisher co-signature. Returns the encoded
 * size. Throws DhtError with the kind of the first failed rule. Sequence
 * and quota rules need stored state and live in the record store.
 */
export function validateRecord(record: DhtRecord, o: ValidateRecordOptions): number {
  const limits = o.limits ?? DEFAULT_RECORD_LIMITS;
  const r = recordFromWire(toWireShape(record));
  const nameBytes = utf8.encode(r.name).length;
  if (nameBytes > limits.maxNameBytes) throw new DhtError("oversized", `record name is ${nameBytes} bytes; the limit is ${limits.maxNameBytes}`);
  if (r.value.length > limits.maxValueBytes) throw new DhtError("oversized", `record value is ${r.value.length} bytes; the limit is ${limits.maxValueBytes}`);
  const size = encodeRecord(r).length;
  if (size > limits.maxRecordBytes) throw new DhtError("oversized", `record is ${size} bytes; the limit is ${limits.maxRecordBytes}`);
  if (!idsEqual(r.key, recordKey(r.owner, r.name))) throw new DhtError("key-mismatch", "record key is not SHA-256 of its owner and name");
  if (r.expiresAt <= o.now) throw new DhtError("expired", `record expired at ${new Date(r.expiresAt).toISOString()}`);
  if (r.expiresAt > o.now + limits.maxTtlMs + limits.clockSkewMs) {
    throw new DhtError("ttl-too-long", `record expires more than ${limits.maxTtlMs} ms from now; renew more often with a shorter TTL`);
  }
  if (!ed25519Verify(r.owner, ownerSigningPayload(r), r.ownerSig)) throw new DhtError("bad-owner-signature", "record owner signature does not verify");
  if (!ed25519Verify(r.publisher, publisherSigningPayload(r), r.publisherSig)) {
    throw new DhtError("bad-publisher-signature", "record publisher co-signature does not verify");
  }
  if (o.acceptPublisher !== undefined && !o.acceptPublisher(r.publisher)) {
    throw new DhtError("bad-publisher-signature", "record publisher is not an accepted publishing node");
  }
  return size;
}

function toWireShape(r: DhtRecord): Record<string, unknown> {
  if (typeof r !== "object" || r === null) throw new DhtError("malformed", "record must be an object");
  return { k: r.key, n: r.name, v: r.value, o: r.owner, s: r.seq, e: r.expiresAt, os: r.ownerSig, p: r.publisher, ps: r.publisherSig };
}

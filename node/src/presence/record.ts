/**
 * Presence records: where a user can be introduced to, stored in the DHT so
 * that only those who know the user's identity can find and read them
 * (docs/spec/presence.md "Presence records").
 *
 * A user keeps several presence points (slots 0, 1, 2 by default). Slot i
 * for time period p is a DHT record named "presence/<i>" owned by the
 * identity's blinded key for p (crypto/blinding.ts, rend-spec-v3 A.2): DHT
 * nodes see a key that changes every period and cannot be linked to the
 * identity, while anyone who knows the identity derives the same key. The
 * record's value is encrypted under a key derived from the period's
 * subcredential, so it is readable only by them too; it names the presence
 * node, the point's introduction key (authKey) and announcement encryption
 * key (encKey), and flags. The owner signature is the blinded key's; the
 * presence node co-signs as the record's publisher.
 *
 * Owns the record's plaintext layout, its encryption and the binding checks.
 * Trusts nothing in a record until it decrypts and matches its slot.
 */
import { aeadOpen, aeadSeal, AEAD_NONCE_LEN, AEAD_TAG_LEN } from "../crypto/aead.js";
import { randomBytes } from "../crypto/backend.js";
import { blindPublicKey, blindSecretKey, ed25519SignExpanded, subcredential, timePeriodNumber } from "../crypto/blinding.js";
import { hkdfSha256 } from "../crypto/kdf.js";
import { ed25519Verify } from "../crypto/ed25519.js";
import { idsEqual } from "../dht/id.js";
import { ownerSigningPayload, recordKey, signRecordWith } from "../dht/record.js";
import type { DhtRecord, OwnerSignedRecord } from "../dht/record.js";
import { readBytes, readMap, readUint } from "../directory/fields.js";
import { DirectoryError } from "../directory/errors.js";
import { decodeCanonical, encodeCanonical } from "../wire/canonical.js";
import { WireError } from "../wire/errors.js";
import { PresenceError } from "./errors.js";
import { describeValue, KEY_LEN } from "./messages.js";

export const PRESENCE_RECORD_VERSION = 1;
/** Slots a record may name: "presence/0" .. "presence/7". */
export const MAX_PRESENCE_SLOTS = 8;
/** The point's record says it is reachable directly (public presence, docs/spec/presence.md). */
export const PRESENCE_FLAG_PUBLIC = 1;
const SLOT_PREFIX = "presence/";
const RECORD_KEY_INFO = new TextEncoder().encode("psp-presence-record-v1");
const MAX_PLAINTEXT = 512;

/** One presence point as a lookup returns it. */
export interface PresencePoint {
  slot: number;
  /** The presence node's identity key: where introductions go. */
  node: Uint8Array;
  /** The point's introduction key (names the registration at the node; the hs-ntor AUTH_KEY). */
  authKey: Uint8Array;
  /** The point's announcement encryption key (X25519; the hs-ntor B). */
  encKey: Uint8Array;
  /** PRESENCE_FLAG_* bits. */
  flags: number;
  /** How many slots the owner keeps (a lookup reads that many). */
  points: number;
  /** When the owner signed this version, ms since the epoch. */
  issuedAt: number;
}

/** The DHT location of one slot for one period. */
export interface PresenceLocation {
  period: number;
  periodLength: number;
  slot: number;
  /** The identity's blinded key for the period (the record's owner). */
  blinded: Uint8Array;
  /** recordKey(blinded, "presence/<slot>"). */
  key: Uint8Array;
}

export function presenceSlotName(slot: number): string {
  checkSlot(slot);
  return `${SLOT_PREFIX}${slot}`;
}

/** The time period a wall-clock time (ms) falls in, for periods of `periodLength` minutes. */
export function presencePeriod(nowMs: number, periodLength: number): number {
  return timePeriodNumber(Math.floor(nowMs / 1000), periodLength);
}

export function presenceLocation(identityKey: Uint8Array, period: number, periodLength: number, slot: number): PresenceLocation {
  const blinded = blindPublicKey(identityKey, period, periodLength);
  return { period, periodLength, slot, blinded, key: recordKey(blinded, presenceSlotName(slot)) };
}

function recordCipherKey(identityKey: Uint8Array, blinded: Uint8Array, slot: number): Uint8Array {
  const info = new Uint8Array(RECORD_KEY_INFO.length + 1);
  info.set(RECORD_KEY_INFO);
  info[RECORD_KEY_INFO.length] = slot;
  return hkdfSha256(subcredential(identityKey, blinded), blinded, info, 32);
}

function associatedData(blinded: Uint8Array, slot: number): Uint8Array {
  const aad = new Uint8Array(33);
  aad.set(blinded);
  aad[32] = slot;
  return aad;
}

/**
 * The encrypted value of a presence record: nonce ‖ ChaCha20-Poly1305(plaintext).
 * `nonce` is random when omitted (given only by test vectors).
 */
export function sealPresencePoint(
  identityKey: Uint8Array,
  location: Pick<PresenceLocation, "blinded" | "slot">,
  point: Omit<PresencePoint, "slot">,
  nonce: Uint8Array = randomBytes(AEAD_NONCE_LEN),
): Uint8Array {
  const plaintext = encodeCanonical({
    v: PRESENCE_RECORD_VERSION,
    node: point.node,
    authKey: point.authKey,
    encKey: point.encKey,
    flags: point.flags,
    points: point.points,
    issuedAt: point.issuedAt,
  });
  if (!(nonce instanceof Uint8Array) || nonce.length !== AEAD_NONCE_LEN) throw new PresenceError("bad-argument", `a record nonce is ${AEAD_NONCE_LEN} bytes`);
  const key = recordCipherKey(identityKey, location.blinded, location.slot);
  const sealed = aeadSeal(key, nonce, plaintext, associatedData(location.blinded, location.slot));
  key.fill(0);
  const out = new Uint8Array(nonce.length + sealed.length);
  out.set(nonce);
  out.set(sealed, nonce.length);
  return out;
}

/** Decrypts and checks a presence record's value; throws PresenceError "record-invalid". */
export function openPresencePoint(identityKey: Uint8Array, location: Pick<PresenceLocation, "blinded" | "slot">, value: Uint8Array): PresencePoint {
  if (!(value instanceof Uint8Array) || value.length < AEAD_NONCE_LEN + AEAD_TAG_LEN + 1 || value.length > AEAD_NONCE_LEN + AEAD_TAG_LEN + MAX_PLAINTEXT) {
    throw new PresenceError("record-invalid", "presence record value has the wrong size");
  }
  const key = recordCipherKey(identityKey, location.blinded, location.slot);
  let plaintext: Uint8Array;
  try {
    plaintext = aeadOpen(key, value.subarray(0, AEAD_NONCE_LEN), value.subarray(AEAD_NONCE_LEN), associatedData(location.blinded, location.slot));
  } catch (err) {
    throw new PresenceError("record-invalid", "presence record does not decrypt under the identity's key for this period and slot", { cause: err });
  } finally {
    key.fill(0);
  }
  try {
    const m = readMap(decodeCanonical(plaintext, { maxBytes: MAX_PLAINTEXT }), "presence point", [
      "authKey",
      "encKey",
      "flags",
      "issuedAt",
      "node",
      "points",
      "v",
    ]);
    if (m["v"] !== PRESENCE_RECORD_VERSION)
      throw new PresenceError("record-invalid", `presence record version ${describeValue(m["v"])} is not ${PRESENCE_RECORD_VERSION}`);
    return {
      slot: location.slot,
      node: readBytes(m["node"], "node", KEY_LEN),
      authKey: readBytes(m["authKey"], "authKey", KEY_LEN),
      encKey: readBytes(m["encKey"], "encKey", KEY_LEN),
      flags: readUint(m["flags"], "flags", 0xff),
      points: Math.max(1, readUint(m["points"], "points", MAX_PRESENCE_SLOTS)),
      issuedAt: readUint(m["issuedAt"], "issuedAt"),
    };
  } catch (err) {
    if (err instanceof PresenceError) throw err;
    if (err instanceof DirectoryError || err instanceof WireError) {
      throw new PresenceError("record-invalid", `presence record plaintext is malformed: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

export interface SignPresenceRecordOptions {
  /** The identity's Ed25519 seed (the blinded key is derived from it). */
  identitySecret: Uint8Array;
  identityKey: Uint8Array;
  period: number;
  periodLength: number;
  slot: number;
  point: Omit<PresencePoint, "slot">;
  seq: number;
  expiresAt: number;
  /** The value's AEAD nonce; random when omitted (given only by test vectors). */
  nonce?: Uint8Array;
}

/** Owner side: the slot's record for the period, encrypted and signed with the period's blinded key. */
export function signPresenceRecord(o: SignPresenceRecordOptions): OwnerSignedRecord {
  const blindedPair = blindSecretKey(o.identitySecret, o.period, o.periodLength);
  try {
    const value = sealPresencePoint(o.identityKey, { blinded: blindedPair.publicKey, slot: o.slot }, o.point, o.nonce);
    return signRecordWith({
      owner: blindedPair.publicKey,
      name: presenceSlotName(o.slot),
      value,
      seq: o.seq,
      expiresAt: o.expiresAt,
      sign: (payload) => ed25519SignExpanded(blindedPair.secretKey, payload, blindedPair.publicKey),
    });
  } finally {
    blindedPair.secretKey.fill(0);
  }
}

/**
 * Checks that `record` is the identity's record for `location` (owner is the
 * blinded key, name is the slot, owner signature verifies) and opens it.
 * Throws PresenceError "record-invalid".
 */
export function readPresenceRecord(identityKey: Uint8Array, location: PresenceLocation, record: OwnerSignedRecord | DhtRecord): PresencePoint {
  if (!idsEqual(record.owner, location.blinded))
    throw new PresenceError("record-invalid", "presence record is not owned by the identity's blinded key for this period");
  if (record.name !== presenceSlotName(location.slot) || !idsEqual(record.key, location.key)) {
    throw new PresenceError("record-invalid", `presence record is not slot ${location.slot}'s`);
  }
  if (!ed25519Verify(record.owner, ownerSigningPayload(record), record.ownerSig))
    throw new PresenceError("record-invalid", "presence record's owner signature does not verify");
  return openPresencePoint(identityKey, location, record.value);
}

function checkSlot(slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_PRESENCE_SLOTS)
    throw new PresenceError("bad-argument", `a presence slot is an integer in 0..${MAX_PRESENCE_SLOTS - 1}`);
}

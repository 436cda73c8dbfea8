/**
 * Presence records (node/src/presence/record.ts): a record signed for
 * (identity, period, slot) reads back only there; any other identity,
 * period or slot, an altered value or signature, or a record signed by
 * anyone but the identity's blinded key is refused "record-invalid"; and
 * the DHT accepts the presence node's co-signed record as it would any.
 */
import { describe, expect, it } from "vitest";
import { aeadSeal } from "../../../node/src/crypto/aead.js";
import { blindSecretKey, ed25519SignExpanded, subcredential } from "../../../node/src/crypto/blinding.js";
import { ed25519Sign, generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { hkdfSha256 } from "../../../node/src/crypto/kdf.js";
import { coSignRecord, signRecordWith, validateRecord } from "../../../node/src/dht/record.js";
import type { OwnerSignedRecord } from "../../../node/src/dht/record.js";
import {
  MAX_PRESENCE_SLOTS,
  openPresencePoint,
  presenceLocation,
  presencePeriod,
  presenceSlotName,
  readPresenceRecord,
  sealPresencePoint,
  signPresenceRecord,
} from "../../../node/src/presence/record.js";
import type { PresencePoint } from "../../../node/src/presence/record.js";
import { encodeCanonical } from "../../../node/src/wire/canonical.js";
import type { CanonicalValue } from "../../../node/src/wire/canonical.js";
import { flipped, hex, makeUser, presenceKind } from "./helpers.js";

const PERIOD_LENGTH = 1440;
const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
const PERIOD = presencePeriod(NOW, PERIOD_LENGTH);
const alice = makeUser();
const mallory = makeUser();
const presenceNode = generateEd25519KeyPair();

const point: Omit<PresencePoint, "slot"> = {
  node: presenceNode.publicKey,
  authKey: new Uint8Array(32).fill(0xa1),
  encKey: new Uint8Array(32).fill(0xe2),
  flags: 1,
  points: 3,
  issuedAt: NOW,
};

function sign(o: { user?: typeof alice; period?: number; slot?: number } = {}): OwnerSignedRecord {
  const user = o.user ?? alice;
  return signPresenceRecord({
    identitySecret: user.secretKey,
    identityKey: user.publicKey,
    period: o.period ?? PERIOD,
    periodLength: PERIOD_LENGTH,
    slot: o.slot ?? 1,
    point,
    seq: 1,
    expiresAt: NOW + 10 * 60_000,
  });
}

const location = (o: { key?: Uint8Array; period?: number; slot?: number } = {}) =>
  presenceLocation(o.key ?? alice.publicKey, o.period ?? PERIOD, PERIOD_LENGTH, o.slot ?? 1);

/** Signs `fields` as the identity's blinded key for PERIOD: what only the identity can do. */
function signAsBlinded(user: typeof alice, fields: { name: string; value: Uint8Array }, period = PERIOD): OwnerSignedRecord {
  const pair = blindSecretKey(user.secretKey, period, PERIOD_LENGTH);
  return signRecordWith({ owner: pair.publicKey, ...fields, seq: 1, expiresAt: NOW + 60_000, sign: (p) => ed25519SignExpanded(pair.secretKey, p, pair.publicKey) });
}

/** The record cipher as record.ts derives it (pinned here so a plaintext of our own choosing can be sealed). */
function sealRaw(plaintext: CanonicalValue, loc = location()): Uint8Array {
  const info = new Uint8Array([...new TextEncoder().encode("psp-presence-record-v1"), loc.slot]);
  const key = hkdfSha256(subcredential(alice.publicKey, loc.blinded), loc.blinded, info, 32);
  const nonce = new Uint8Array(12).fill(7);
  const aad = new Uint8Array([...loc.blinded, loc.slot]);
  return new Uint8Array([...nonce, ...aeadSeal(key, nonce, encodeCanonical(plaintext), aad)]);
}

describe("presence records", () => {
  it("a record signed for (identity, period, slot) reads back there, owned by the blinded key under the slot's name", () => {
    const record = sign();
    const loc = location();
    expect(hex(record.owner)).toBe(hex(loc.blinded));
    expect(hex(record.key)).toBe(hex(loc.key));
    expect(record.name).toBe("presence/1");
    expect(hex(record.owner)).not.toBe(hex(alice.publicKey));
    const read = readPresenceRecord(alice.publicKey, loc, record);
    expect({ ...read, node: hex(read.node), authKey: hex(read.authKey), encKey: hex(read.encKey) }).toEqual({
      ...point,
      slot: 1,
      node: hex(point.node),
      authKey: hex(point.authKey),
      encKey: hex(point.encKey),
    });
  });

  it("the blinded key and the value change every period, and two seals of one point differ (random nonce)", () => {
    expect(hex(location({ period: PERIOD + 1 }).blinded)).not.toBe(hex(location().blinded));
    expect(hex(sign().value)).not.toBe(hex(sign().value));
  });

  it("is refused record-invalid for another period, slot or identity", () => {
    const record = sign();
    expect(presenceKind(() => readPresenceRecord(alice.publicKey, location({ period: PERIOD + 1 }), record))).toBe("record-invalid");
    expect(presenceKind(() => readPresenceRecord(alice.publicKey, location({ period: PERIOD - 1 }), record))).toBe("record-invalid");
    expect(presenceKind(() => readPresenceRecord(alice.publicKey, location({ slot: 0 }), record))).toBe("record-invalid");
    expect(presenceKind(() => readPresenceRecord(mallory.publicKey, location({ key: mallory.publicKey }), record))).toBe("record-invalid");
  });

  it("is refused record-invalid when a byte of the value or of the signature is flipped", () => {
    const record = sign();
    for (const at of [0, 12, record.value.length - 1]) {
      expect(presenceKind(() => readPresenceRecord(alice.publicKey, location(), { ...record, value: flipped(record.value, at) }))).toBe("record-invalid");
    }
    for (const at of [0, 63]) {
      expect(presenceKind(() => readPresenceRecord(alice.publicKey, location(), { ...record, ownerSig: flipped(record.ownerSig, at) }))).toBe("record-invalid");
    }
    expect(presenceKind(() => readPresenceRecord(alice.publicKey, location(), { ...record, seq: record.seq + 1 }))).toBe("record-invalid");
    expect(presenceKind(() => readPresenceRecord(alice.publicKey, location(), { ...record, expiresAt: record.expiresAt + 1 }))).toBe("record-invalid");
  });

  it("an altered value re-signed with the blinded key still fails: the value is authenticated on its own", () => {
    const record = sign();
    const forged = signAsBlinded(alice, { name: record.name, value: flipped(record.value, 20) });
    expect(presenceKind(() => readPresenceRecord(alice.publicKey, location(), forged))).toBe("record-invalid");
  });

  it("a record signed by someone else is refused, even with the identity's blinded key as owner and a value sealed to the identity", () => {
    // Anyone who knows the identity can derive the blinded public key and the record cipher key; only the identity can sign.
    const loc = location();
    const value = sealPresencePoint(alice.publicKey, loc, { ...point, node: mallory.publicKey });
    const asOwner = signRecordWith({ owner: loc.blinded, name: "presence/1", value, seq: 1, expiresAt: NOW + 60_000, sign: (p) => ed25519Sign(mallory.secretKey, p) });
    expect(presenceKind(() => readPresenceRecord(alice.publicKey, loc, asOwner))).toBe("record-invalid");
    const ownKey = signRecordWith({ owner: mallory.publicKey, name: "presence/1", value, seq: 1, expiresAt: NOW + 60_000, sign: (p) => ed25519Sign(mallory.secretKey, p) });
    expect(presenceKind(() => readPresenceRecord(alice.publicKey, loc, ownKey))).toBe("record-invalid");
    const malloryBlinded = signAsBlinded(mallory, { name: "presence/1", value });
    expect(presenceKind(() => readPresenceRecord(alice.publicKey, loc, malloryBlinded))).toBe("record-invalid");
  });

  it("a value sealed for one slot and signed under another slot's name is refused", () => {
    const value = sealPresencePoint(alice.publicKey, location({ slot: 0 }), point);
    const record = signAsBlinded(alice, { name: "presence/1", value });
    expect(presenceKind(() => readPresenceRecord(alice.publicKey, location({ slot: 1 }), record))).toBe("record-invalid");
    expect(presenceKind(() => openPresencePoint(alice.publicKey, location({ slot: 1 }), value))).toBe("record-invalid");
    expect(openPresencePoint(alice.publicKey, location({ slot: 0 }), value).slot).toBe(0);
  });

  it("a value of the wrong size is refused before decryption", () => {
    for (const size of [0, 28, 12 + 16 + 512 + 1]) {
      expect(presenceKind(() => openPresencePoint(alice.publicKey, location(), new Uint8Array(size)))).toBe("record-invalid");
    }
  });

  it("a plaintext of another version, with an unknown field or a hostile version value, is refused record-invalid", () => {
    const good = { v: 1, node: point.node, authKey: point.authKey, encKey: point.encKey, flags: 0, points: 3, issuedAt: NOW };
    expect(openPresencePoint(alice.publicKey, location(), sealRaw(good)).points).toBe(3);
    for (const bad of [{ ...good, v: 2 }, { ...good, extra: 1 }, { ...good, v: { toString: null } }, { ...good, node: new Uint8Array(31) }, [1, 2], "text"]) {
      expect(presenceKind(() => openPresencePoint(alice.publicKey, location(), sealRaw(bad as CanonicalValue)))).toBe("record-invalid");
    }
  });

  it("the DHT accepts the presence node's co-signature of the record: the blinded key's signature is ordinary Ed25519", () => {
    const record = coSignRecord(sign(), presenceNode.secretKey);
    expect(validateRecord(record, { now: NOW })).toBeGreaterThan(0);
    expect(hex(record.publisher)).toBe(hex(presenceNode.publicKey));
    // And reading it back through the DHT record type works too.
    expect(readPresenceRecord(alice.publicKey, location(), record).slot).toBe(1);
  });

  it("a given nonce makes the record reproducible", () => {
    const nonce = new Uint8Array(12).fill(3);
    const make = () =>
      signPresenceRecord({ identitySecret: alice.secretKey, identityKey: alice.publicKey, period: PERIOD, periodLength: PERIOD_LENGTH, slot: 1, point, seq: 1, expiresAt: NOW + 1, nonce });
    expect(hex(make().value)).toBe(hex(make().value));
    expect(hex(make().value.subarray(0, 12))).toBe(hex(nonce));
    expect(hex(make().ownerSig)).toBe(hex(make().ownerSig));
    expect(presenceKind(() => sealPresencePoint(alice.publicKey, location(), point, new Uint8Array(11)))).toBe("bad-argument");
  });

  it("slot names and periods", () => {
    expect(presenceSlotName(0)).toBe("presence/0");
    expect(presenceSlotName(MAX_PRESENCE_SLOTS - 1)).toBe(`presence/${MAX_PRESENCE_SLOTS - 1}`);
    for (const bad of [-1, MAX_PRESENCE_SLOTS, 1.5, Number.NaN]) expect(presenceKind(() => presenceSlotName(bad))).toBe("bad-argument");
    // Periods turn over at 12:00 UTC (Tor's rotation offset) for day-long periods.
    expect(presencePeriod(NOW - 1, PERIOD_LENGTH)).toBe(PERIOD - 1);
    expect(presencePeriod(NOW + 24 * 3600_000 - 1, PERIOD_LENGTH)).toBe(PERIOD);
  });
});

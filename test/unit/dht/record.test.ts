import { describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { coSignRecord, decodeRecord, encodeRecord, needsRenewal, renewRecord, signRecordAsOwner, validateRecord } from "../../../node/src/dht/record.js";
import type { DhtRecord } from "../../../node/src/dht/record.js";
import { MemoryRecordStore } from "../../../node/src/dht/store.js";
import { kindOf } from "../../helpers/index.js";

const NOW = Date.UTC(2025, 5, 1);
const owner = generateEd25519KeyPair();
const publisher = generateEd25519KeyPair();

function make(o: { seq?: number; expiresAt?: number; value?: Uint8Array; name?: string; ownerKey?: Uint8Array } = {}): DhtRecord {
  const signed = signRecordAsOwner({
    ownerSecretKey: o.ownerKey ?? owner.secretKey,
    name: o.name ?? "presence/0",
    value: o.value ?? new TextEncoder().encode("node-xyz"),
    seq: o.seq ?? 1,
    expiresAt: o.expiresAt ?? NOW + 3600_000,
  });
  return coSignRecord(signed, publisher.secretKey);
}

describe("DHT records", () => {
  it("a well-formed record validates and round-trips through canonical CBOR", () => {
    const r = make();
    expect(validateRecord(r, { now: NOW })).toBe(encodeRecord(r).length);
    expect(decodeRecord(encodeRecord(r))).toEqual(r);
  });

  it("rejects a forged owner signature", () => {
    const r = make();
    const value = new TextEncoder().encode("evil");
    expect(kindOf(() => validateRecord({ ...r, value }, { now: NOW }))).toBe("bad-owner-signature");
  });

  it("rejects a forged co-signature (another node claims to have published)", () => {
    const r = make();
    const other = generateEd25519KeyPair();
    expect(kindOf(() => validateRecord({ ...r, publisher: other.publicKey }, { now: NOW }))).toBe("bad-publisher-signature");
    const sig = r.publisherSig.slice();
    sig[0] = (sig[0] as number) ^ 1;
    expect(kindOf(() => validateRecord({ ...r, publisherSig: sig }, { now: NOW }))).toBe("bad-publisher-signature");
  });

  it("rejects a record under a key not derived from its owner", () => {
    const mine = make();
    const theirs = make({ ownerKey: generateEd25519KeyPair().secretKey });
    expect(kindOf(() => validateRecord({ ...theirs, key: mine.key }, { now: NOW }))).toBe("key-mismatch");
  });

  it("rejects expired and too-long-lived records", () => {
    expect(kindOf(() => validateRecord(make({ expiresAt: NOW - 1 }), { now: NOW }))).toBe("expired");
    expect(kindOf(() => validateRecord(make({ expiresAt: NOW + 30 * 24 * 3600_000 }), { now: NOW }))).toBe("ttl-too-long");
  });

  it("rejects oversized values and names", () => {
    expect(kindOf(() => validateRecord(make({ value: new Uint8Array(5000) }), { now: NOW }))).toBe("oversized");
    expect(kindOf(() => validateRecord(make({ name: "x".repeat(100) }), { now: NOW }))).toBe("oversized");
    expect(kindOf(() => decodeRecord(new Uint8Array(10_000)))).toBe("oversized");
    expect(kindOf(() => decodeRecord(Uint8Array.from([0xff, 0x00])))).toBe("malformed");
  });

  it("a store refuses a replayed older sequence number, and accepts the renewal", () => {
    const store = new MemoryRecordStore();
    const v1 = make({ seq: 1 });
    const v2 = renewRecord(v1, { ownerSecretKey: owner.secretKey, publisherSecretKey: publisher.secretKey, ttlMs: 3600_000, now: NOW + 1000 });
    expect(v2.seq).toBe(2);
    expect(store.put(v2, validateRecord(v2, { now: NOW }), NOW)).toBe("stored");
    expect(kindOf(() => store.put(v1, validateRecord(v1, { now: NOW }), NOW))).toBe("stale-sequence");
    expect(store.put(v2, 1, NOW)).toBe("unchanged");
    expect(store.get(v1.key, NOW)?.seq).toBe(2);
  });

  it("renewal needs the owner's key and is due inside the margin", () => {
    const r = make();
    expect(kindOf(() => renewRecord(r, { ownerSecretKey: publisher.secretKey, publisherSecretKey: publisher.secretKey, ttlMs: 1, now: NOW }))).toBe("bad-owner-signature");
    expect(needsRenewal(r, NOW, 60_000)).toBe(false);
    expect(needsRenewal(r, r.expiresAt - 30_000, 60_000)).toBe(true);
  });
});

import { readFileSync } from "node:fs";
import { ed25519 as nobleEd25519 } from "@noble/curves/ed25519.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_PERIOD_LENGTH_MINUTES,
  blindPublicKey,
  blindPublicKeyWithParam,
  blindSecretKey,
  blindSecretKeyWithParam,
  blindingParam,
  credential,
  ed25519PublicKeyFromExpanded,
  ed25519SignExpanded,
  expandEd25519SecretKey,
  subcredential,
  timePeriodNumber,
  timePeriodStart,
} from "../../../node/src/crypto/blinding.js";
import { ed25519Backends, ed25519Sign, generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { CryptoError } from "../../../node/src/crypto/errors.js";
import { hsNtorClientIntroduceKeys, hsNtorServiceIntroduceKeys } from "../../../node/src/crypto/hs-ntor.js";
import { generateX25519KeyPair } from "../../../node/src/crypto/x25519.js";
import { randomBytes } from "../../../node/src/crypto/backend.js";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

interface BlindingVectors {
  periodBlinding: {
    time: string;
    unixSeconds: number;
    periodLengthMinutes: number;
    periodNumber: number;
    identityPublicKey: string;
    identityExpandedSecretKey: string;
    blindingParam: string;
    blindedPublicKey: string;
    subcredential: string;
    blindedExpandedSecretKey: string;
  };
  timePeriods: { time: string; unixSeconds: number; periodLengthMinutes: number; periodNumber: number; nextPeriodStartsAt?: number }[];
  ed25519: {
    seed: string;
    expandedSecretKey: string;
    publicKey: string;
    selfSignature: string;
    blindingParam: string;
    blindedSecretKey: string;
    blindedPublicKey: string;
  }[];
}

const tor = JSON.parse(readFileSync(new URL("../../vectors/blinding-tor.json", import.meta.url), "utf8")) as BlindingVectors;

function expectCryptoError(fn: () => unknown, kind: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CryptoError);
    expect((err as CryptoError).kind).toBe(kind);
    return;
  }
  throw new Error(`expected a CryptoError ${kind}`);
}

const verifiers = Object.values(ed25519Backends);

describe("time periods (rend-spec-v3 §2.2.1) against Tor", () => {
  it("reproduces test_time_period and the spec's example", () => {
    for (const t of tor.timePeriods) {
      expect(Date.parse(t.time) / 1000).toBe(t.unixSeconds);
      expect(timePeriodNumber(t.unixSeconds, t.periodLengthMinutes)).toBe(t.periodNumber);
      if (t.nextPeriodStartsAt !== undefined) expect(timePeriodStart(t.periodNumber + 1, t.periodLengthMinutes)).toBe(t.nextPeriodStartsAt);
    }
    const b = tor.periodBlinding;
    expect(Date.parse(b.time) / 1000).toBe(b.unixSeconds);
    expect(timePeriodNumber(b.unixSeconds, b.periodLengthMinutes)).toBe(b.periodNumber);
    expect(timePeriodNumber(b.unixSeconds)).toBe(b.periodNumber); // 1440 is the default
  });

  it("a period starts at its start time and ends one second before the next", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 1, max: 14400 }), (n, len) => {
        const start = timePeriodStart(n, len);
        expect(timePeriodNumber(start, len)).toBe(n);
        expect(timePeriodNumber(start + len * 60 - 1, len)).toBe(n);
        expect(timePeriodNumber(start + len * 60, len)).toBe(n + 1);
      }),
    );
  });

  it("takes the rotation offset as a parameter", () => {
    expect(timePeriodNumber(0, 60, 0)).toBe(0);
    expect(timePeriodNumber(3600, 60, 0)).toBe(1);
    expect(timePeriodStart(1, 60, 0)).toBe(3600);
  });

  it("refuses out-of-range inputs with bad-time-period", () => {
    expectCryptoError(() => timePeriodNumber(100), "bad-time-period"); // before 1970-01-01 12:00
    expectCryptoError(() => timePeriodNumber(Number.NaN), "bad-time-period");
    for (const len of [0, -1, 1.5, 14401]) expectCryptoError(() => timePeriodNumber(1460546101, len), "bad-time-period");
    expectCryptoError(() => timePeriodStart(-1), "bad-time-period");
    expectCryptoError(() => timePeriodNumber(1460546101, 1440, -1), "bad-time-period");
    expectCryptoError(() => blindingParam(hex(tor.periodBlinding.identityPublicKey), 1.5, 1440), "bad-time-period");
    expectCryptoError(() => blindPublicKey(hex(tor.periodBlinding.identityPublicKey), 1234, 0), "bad-time-period");
  });
});

describe("per-period blinding against Tor (test_hs_common.c test_blinding_basics)", () => {
  const b = tor.periodBlinding;
  const identity = hex(b.identityPublicKey);

  it("derives Tor's blinding parameter, blinded public key and subcredential", () => {
    expect(toHex(ed25519PublicKeyFromExpanded(hex(b.identityExpandedSecretKey)))).toBe(b.identityPublicKey);
    expect(toHex(blindingParam(identity, b.periodNumber, b.periodLengthMinutes))).toBe(b.blindingParam);
    const blinded = blindPublicKey(identity, b.periodNumber, b.periodLengthMinutes);
    expect(toHex(blinded)).toBe(b.blindedPublicKey);
    expect(toHex(subcredential(identity, blinded))).toBe(b.subcredential);
  });

  it("derives Tor's blinded secret key, whose public key is the blinded public key", () => {
    const kp = blindSecretKey(hex(b.identityExpandedSecretKey), b.periodNumber, b.periodLengthMinutes);
    expect(toHex(kp.secretKey)).toBe(b.blindedExpandedSecretKey);
    expect(toHex(kp.publicKey)).toBe(b.blindedPublicKey);
  });

  it("signatures with the blinded key verify as plain Ed25519 under the blinded public key, on both backends", () => {
    const kp = blindSecretKey(hex(b.identityExpandedSecretKey), b.periodNumber, b.periodLengthMinutes);
    const message = new TextEncoder().encode("presence record for period 1234");
    const sig = ed25519SignExpanded(kp.secretKey, message);
    for (const v of verifiers) {
      expect(v.verify(kp.publicKey, message, sig)).toBe(true);
      expect(v.verify(identity, message, sig)).toBe(false);
      expect(v.verify(kp.publicKey, new TextEncoder().encode("another message"), sig)).toBe(false);
    }
  });
});

describe("Ed25519 expansion and blinding against Tor (src/test/ed25519_vectors.inc)", () => {
  it.each(tor.ed25519.map((v, i) => [i, v] as const))("vector %i", (_i, v) => {
    const expandedKey = expandEd25519SecretKey(hex(v.seed));
    expect(toHex(expandedKey)).toBe(v.expandedSecretKey);
    const pub = ed25519PublicKeyFromExpanded(expandedKey);
    expect(toHex(pub)).toBe(v.publicKey);
    // Signing with the expanded key is RFC 8032 signing with the seed.
    expect(toHex(ed25519SignExpanded(expandedKey, pub))).toBe(v.selfSignature);
    expect(toHex(ed25519Sign(hex(v.seed), pub))).toBe(v.selfSignature);
    const blindedSecret = blindSecretKeyWithParam(expandedKey, hex(v.blindingParam));
    expect(toHex(blindedSecret)).toBe(v.blindedSecretKey);
    expect(toHex(blindPublicKeyWithParam(pub, hex(v.blindingParam)))).toBe(v.blindedPublicKey);
    expect(toHex(ed25519PublicKeyFromExpanded(blindedSecret))).toBe(v.blindedPublicKey);
  });
});

describe("blinding properties", () => {
  it("public and secret derivations agree for random keys and periods; seeds and expanded keys give the same result", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 1, max: 14400 }), (seed, period, len) => {
        const pub = ed25519Backends.noble.publicKey(seed);
        const fromSeed = blindSecretKey(seed, period, len);
        const fromExpanded = blindSecretKey(expandEd25519SecretKey(seed), period, len);
        expect(toHex(fromSeed.secretKey)).toBe(toHex(fromExpanded.secretKey));
        expect(toHex(fromSeed.publicKey)).toBe(toHex(blindPublicKey(pub, period, len)));
        const msg = Uint8Array.of(period & 0xff, len & 0xff);
        expect(ed25519Backends.noble.verify(fromSeed.publicKey, msg, ed25519SignExpanded(fromSeed.secretKey, msg))).toBe(true);
      }),
      { numRuns: 20 },
    );
  });

  it("different periods, period lengths and secrets give unrelated blinded keys", () => {
    const { publicKey } = generateEd25519KeyPair();
    const a = toHex(blindPublicKey(publicKey, 100, 1440));
    expect(toHex(blindPublicKey(publicKey, 101, 1440))).not.toBe(a);
    expect(toHex(blindPublicKey(publicKey, 100, 720))).not.toBe(a);
    expect(toHex(blindPublicKey(publicKey, 100, 1440, { secret: Uint8Array.of(1) }))).not.toBe(a);
    expect(toHex(blindPublicKey(publicKey, 100, DEFAULT_PERIOD_LENGTH_MINUTES))).toBe(a);
  });

  it("blinding a key with a torsion component matches the full-width multiplication h·A", () => {
    const { publicKey } = generateEd25519KeyPair();
    const torsion = nobleEd25519.Point.fromBytes(hex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"));
    const mixed = nobleEd25519.Point.fromBytes(publicKey).add(torsion).toBytes();
    const param = blindingParam(mixed, 5, 1440);
    const h = param.slice();
    h[0] = (h[0] as number) & 248;
    h[31] = ((h[31] as number) & 63) | 64;
    // Reference: h·A by double-and-add over all 256 bits, no reduction mod l.
    let acc = nobleEd25519.Point.ZERO;
    const p = nobleEd25519.Point.fromBytes(mixed);
    for (let i = 255; i >= 0; i--) {
      acc = acc.double();
      if ((((h[i >> 3] as number) >> (i & 7)) & 1) === 1) acc = acc.add(p);
    }
    expect(toHex(blindPublicKeyWithParam(mixed, param))).toBe(toHex(acc.toBytes()));
  });

  it("the subcredential from a blinded key feeds hs-ntor: both sides agree only with the right period", () => {
    const id = generateEd25519KeyPair();
    const enc = generateX25519KeyPair();
    const introAuthKey = randomBytes(32);
    const sub = subcredential(id.publicKey, blindPublicKey(id.publicKey, 7, 1440));
    const c = hsNtorClientIntroduceKeys({ introAuthKey, introEncKey: enc.publicKey, subcredential: sub });
    const same = hsNtorServiceIntroduceKeys({ introAuthKey, introEncSecret: enc.secretKey, clientPublic: c.clientPublic, subcredential: sub });
    expect(toHex(same.macKey)).toBe(toHex(c.macKey));
    const stale = subcredential(id.publicKey, blindPublicKey(id.publicKey, 6, 1440));
    const other = hsNtorServiceIntroduceKeys({ introAuthKey, introEncSecret: enc.secretKey, clientPublic: c.clientPublic, subcredential: stale });
    expect(toHex(other.macKey)).not.toBe(toHex(c.macKey));
    expect(toHex(credential(id.publicKey))).not.toBe(toHex(sub));
  });
});

describe("blinding rejects", () => {
  const pub = hex(tor.periodBlinding.identityPublicKey);

  it("bad key and parameter lengths with bad-key-length", () => {
    expectCryptoError(() => blindPublicKey(new Uint8Array(31), 1, 1440), "bad-key-length");
    expectCryptoError(() => blindPublicKeyWithParam(pub, new Uint8Array(31)), "bad-key-length");
    expectCryptoError(() => blindSecretKey(new Uint8Array(48), 1, 1440), "bad-key-length");
    expectCryptoError(() => blindSecretKeyWithParam(new Uint8Array(32), new Uint8Array(32)), "bad-key-length");
    expectCryptoError(() => ed25519SignExpanded(new Uint8Array(32), new Uint8Array(0)), "bad-key-length");
    expectCryptoError(() => ed25519PublicKeyFromExpanded(new Uint8Array(63)), "bad-key-length");
    expectCryptoError(() => expandEd25519SecretKey(new Uint8Array(64)), "bad-key-length");
    expectCryptoError(() => subcredential(pub, new Uint8Array(33)), "bad-key-length");
    expectCryptoError(() => credential(new Uint8Array(0)), "bad-key-length");
  });

  it("public keys that are not curve points, or of small order, with bad-public-key", () => {
    const param = new Uint8Array(32).fill(7);
    // y = 2 is not on the curve.
    const offCurve = new Uint8Array(32);
    offCurve[0] = 2;
    expectCryptoError(() => blindPublicKeyWithParam(offCurve, param), "bad-public-key");
    // The identity point (y = 1) and a point of order 8.
    const identity = new Uint8Array(32);
    identity[0] = 1;
    expectCryptoError(() => blindPublicKeyWithParam(identity, param), "bad-public-key");
    expectCryptoError(() => blindPublicKey(hex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), 1, 1440), "bad-public-key");
    // Non-canonical encoding: y = p (≡ 0) written out in full.
    const nonCanonical = hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    expectCryptoError(() => blindPublicKeyWithParam(nonCanonical, param), "bad-public-key");
  });

  it("random 32-byte strings either blind to a valid point or are refused with bad-public-key (fuzz)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (key) => {
        try {
          const blinded = blindPublicKey(key, 9, 1440);
          expect(nobleEd25519.utils.isValidPublicKey(blinded)).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(CryptoError);
          expect((err as CryptoError).kind).toBe("bad-public-key");
        }
      }),
      { numRuns: 100 },
    );
  });
});

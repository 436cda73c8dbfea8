import { createCipheriv } from "node:crypto";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CryptoError } from "../../../node/src/crypto/errors.js";
import {
  HS_NTOR_REPLY_LEN,
  PSP_HS_NTOR_PROTOID,
  TOR_HS_NTOR_PROTOID,
  hsMac,
  hsNtorClientIntroduceKeys,
  hsNtorClientRendezvous,
  hsNtorExpandKeys,
  hsNtorServiceIntroduceKeys,
  hsNtorServiceRendezvous,
  sha3Backends,
} from "../../../node/src/crypto/hs-ntor.js";
import { generateX25519KeyPair } from "../../../node/src/crypto/x25519.js";
import { randomBytes } from "../../../node/src/crypto/backend.js";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

interface TorVector {
  protoId: string;
  introAuthKey: string;
  introEncKey: string;
  introEncSecret: string;
  subcredential: string;
  introduce1Header: string;
  introduce1Plaintext: string;
  clientSecret: string;
  clientPublic: string;
  encKey: string;
  macKey: string;
  introduce1Body: string;
  serviceSecret: string;
  servicePublic: string;
  auth: string;
  keySeed: string;
  hsMac: { key: string; message: string; mac: string }[];
}

const tor = JSON.parse(readFileSync(new URL("../../vectors/hs-ntor-tor.json", import.meta.url), "utf8")) as TorVector;

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

/** A fresh service (introduction point keys, subcredential) for round trips. */
function freshService(): { introAuthKey: Uint8Array; introEncKey: Uint8Array; introEncSecret: Uint8Array; subcredential: Uint8Array } {
  const enc = generateX25519KeyPair();
  return { introAuthKey: randomBytes(32), introEncKey: enc.publicKey, introEncSecret: enc.secretKey, subcredential: randomBytes(32) };
}

describe("hs-ntor against Tor (rend-spec-v3 Appendix G.1)", () => {
  const common = { protoId: TOR_HS_NTOR_PROTOID, introAuthKey: hex(tor.introAuthKey), subcredential: hex(tor.subcredential) };

  it("uses Tor's protocol id", () => {
    expect(tor.protoId).toBe(TOR_HS_NTOR_PROTOID);
  });

  it("reproduces hs_ntor_ref.py's MAC vectors", () => {
    for (const v of tor.hsMac) expect(toHex(hsMac(hex(v.key), hex(v.message)))).toBe(v.mac);
  });

  it("reproduces the client's INTRODUCE1 keys byte for byte", () => {
    const c = hsNtorClientIntroduceKeys({ ...common, introEncKey: hex(tor.introEncKey), clientSecret: hex(tor.clientSecret) });
    expect(toHex(c.clientPublic)).toBe(tor.clientPublic);
    expect(toHex(c.encKey)).toBe(tor.encKey);
    expect(toHex(c.macKey)).toBe(tor.macKey);
  });

  it("reproduces the whole INTRODUCE1 body: AES-256-CTR under ENC_KEY, hsMac(MAC_KEY, H ‖ X ‖ C)", () => {
    const c = hsNtorClientIntroduceKeys({ ...common, introEncKey: hex(tor.introEncKey), clientSecret: hex(tor.clientSecret) });
    const cipher = createCipheriv("aes-256-ctr", c.encKey, new Uint8Array(16));
    const ciphertext = Buffer.concat([cipher.update(hex(tor.introduce1Plaintext)), cipher.final()]);
    const signed = Buffer.concat([hex(tor.introduce1Header), c.clientPublic, ciphertext]);
    expect(toHex(Buffer.concat([signed, hsMac(c.macKey, signed)]))).toBe(tor.introduce1Body);
  });

  it("the service derives the same INTRODUCE1 keys from X and b", () => {
    const s = hsNtorServiceIntroduceKeys({ ...common, introEncSecret: hex(tor.introEncSecret), clientPublic: hex(tor.clientPublic) });
    expect(toHex(s.encKey)).toBe(tor.encKey);
    expect(toHex(s.macKey)).toBe(tor.macKey);
  });

  it("reproduces the RENDEZVOUS1 reply Y ‖ AUTH and NTOR_KEY_SEED", () => {
    const s = hsNtorServiceRendezvous({
      ...common,
      introEncSecret: hex(tor.introEncSecret),
      clientPublic: hex(tor.clientPublic),
      serviceSecret: hex(tor.serviceSecret),
    });
    expect(toHex(s.reply)).toBe(tor.servicePublic + tor.auth);
    expect(toHex(s.keySeed)).toBe(tor.keySeed);
    expect(toHex(s.encKey)).toBe(tor.encKey);
    expect(toHex(s.macKey)).toBe(tor.macKey);
    // B given explicitly gives the same result as B derived from b.
    const again = hsNtorServiceRendezvous({
      ...common,
      introEncSecret: hex(tor.introEncSecret),
      introEncKey: hex(tor.introEncKey),
      clientPublic: hex(tor.clientPublic),
      serviceSecret: hex(tor.serviceSecret),
    });
    expect(toHex(again.reply)).toBe(toHex(s.reply));
  });

  it("the client verifies Tor's reply and computes the same NTOR_KEY_SEED", () => {
    const keySeed = hsNtorClientRendezvous({
      ...common,
      introEncKey: hex(tor.introEncKey),
      clientSecret: hex(tor.clientSecret),
      reply: hex(tor.servicePublic + tor.auth),
    });
    expect(toHex(keySeed)).toBe(tor.keySeed);
  });

  it("expands NTOR_KEY_SEED as rend-spec-v3 §4.2.1 (SHAKE-256 of seed ‖ m_hsexpand)", () => {
    const keys = hsNtorExpandKeys(hex(tor.keySeed), 128, TOR_HS_NTOR_PROTOID);
    const expected = sha3Backends.noble.shake256(128, hex(tor.keySeed), new TextEncoder().encode(`${TOR_HS_NTOR_PROTOID}:hs_key_expand`));
    expect(toHex(keys)).toBe(toHex(expected));
    expect(keys.length).toBe(128);
  });

  it("the same vector under PSP's protocol id gives different keys", () => {
    const c = hsNtorClientIntroduceKeys({ ...common, protoId: PSP_HS_NTOR_PROTOID, introEncKey: hex(tor.introEncKey), clientSecret: hex(tor.clientSecret) });
    expect(toHex(c.encKey)).not.toBe(tor.encKey);
    // And Tor's reply does not verify for a PSP client.
    expectCryptoError(
      () =>
        hsNtorClientRendezvous({
          ...common,
          protoId: PSP_HS_NTOR_PROTOID,
          introEncKey: hex(tor.introEncKey),
          clientSecret: hex(tor.clientSecret),
          reply: hex(tor.servicePublic + tor.auth),
        }),
      "hs-ntor-auth-failed",
    );
  });
});

describe("SHA-3 backends", () => {
  it("node:crypto and @noble give identical SHA3-256 and SHAKE-256", () => {
    const node = sha3Backends.node;
    if (!node) return;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 1, max: 200 }), (a, b, n) => {
        expect(toHex(node.sha3_256(a, b))).toBe(toHex(sha3Backends.noble.sha3_256(a, b)));
        expect(toHex(node.shake256(n, a, b))).toBe(toHex(sha3Backends.noble.shake256(n, a, b)));
      }),
      { numRuns: 50 },
    );
  });
});

describe("hs-ntor round trips", () => {
  it("client and service agree under PSP's protocol id (the default)", () => {
    const svc = freshService();
    const c = hsNtorClientIntroduceKeys({ introAuthKey: svc.introAuthKey, introEncKey: svc.introEncKey, subcredential: svc.subcredential });
    const si = hsNtorServiceIntroduceKeys({ ...svc, clientPublic: c.clientPublic });
    expect(toHex(si.encKey)).toBe(toHex(c.encKey));
    expect(toHex(si.macKey)).toBe(toHex(c.macKey));
    const s = hsNtorServiceRendezvous({ ...svc, clientPublic: c.clientPublic });
    expect(s.reply.length).toBe(HS_NTOR_REPLY_LEN);
    expect(toHex(s.encKey)).toBe(toHex(c.encKey));
    const keySeed = hsNtorClientRendezvous({ ...svc, clientSecret: c.clientSecret, clientPublic: c.clientPublic, reply: s.reply });
    expect(toHex(keySeed)).toBe(toHex(s.keySeed));
    expect(toHex(hsNtorExpandKeys(keySeed))).toBe(toHex(hsNtorExpandKeys(s.keySeed)));
    // Explicit PSP protocol id is the same as the default; Tor's is different.
    const explicit = hsNtorClientIntroduceKeys({ ...svc, protoId: PSP_HS_NTOR_PROTOID, clientSecret: c.clientSecret });
    expect(toHex(explicit.encKey)).toBe(toHex(c.encKey));
    const torKeys = hsNtorClientIntroduceKeys({ ...svc, protoId: TOR_HS_NTOR_PROTOID, clientSecret: c.clientSecret });
    expect(toHex(torKeys.encKey)).not.toBe(toHex(c.encKey));
  });

  it("different subcredentials give different introduction keys (a stale descriptor cannot introduce)", () => {
    const svc = freshService();
    const c = hsNtorClientIntroduceKeys({ ...svc });
    const s = hsNtorServiceIntroduceKeys({ ...svc, subcredential: randomBytes(32), clientPublic: c.clientPublic });
    expect(toHex(s.macKey)).not.toBe(toHex(c.macKey));
  });

  it("a mismatched protocol id between the two sides fails AUTH", () => {
    const svc = freshService();
    const c = hsNtorClientIntroduceKeys({ ...svc, protoId: "psp-hs-ntor-test-a" });
    const s = hsNtorServiceRendezvous({ ...svc, protoId: "psp-hs-ntor-test-b", clientPublic: c.clientPublic });
    expectCryptoError(() => hsNtorClientRendezvous({ ...svc, protoId: "psp-hs-ntor-test-a", clientSecret: c.clientSecret, reply: s.reply }), "hs-ntor-auth-failed");
  });
});

describe("hs-ntor rejects", () => {
  const svc = freshService();
  const c = hsNtorClientIntroduceKeys({ ...svc });
  const s = hsNtorServiceRendezvous({ ...svc, clientPublic: c.clientPublic });
  const finish = (reply: Uint8Array, extra: Partial<Parameters<typeof hsNtorClientRendezvous>[0]> = {}): Uint8Array =>
    hsNtorClientRendezvous({ ...svc, clientSecret: c.clientSecret, reply, ...extra });

  it("every single-bit flip of AUTH with hs-ntor-auth-failed", () => {
    for (let bit = 0; bit < 256; bit++) {
      const bad = s.reply.slice();
      const i = 32 + (bit >> 3);
      bad[i] = (bad[i] as number) ^ (1 << (bit & 7));
      expectCryptoError(() => finish(bad), "hs-ntor-auth-failed");
    }
  });

  it("a tampered Y with hs-ntor-auth-failed", () => {
    const bad = s.reply.slice();
    bad[5] = (bad[5] as number) ^ 0x40;
    expectCryptoError(() => finish(bad), "hs-ntor-auth-failed");
  });

  it("the right reply against the wrong introduction keys", () => {
    expectCryptoError(() => finish(s.reply, { introAuthKey: randomBytes(32) }), "hs-ntor-auth-failed");
    expectCryptoError(() => finish(s.reply, { introEncKey: generateX25519KeyPair().publicKey }), "hs-ntor-auth-failed");
  });

  it("a reply of the wrong length with hs-ntor-bad-message", () => {
    for (const n of [0, 32, 63, 65, 128]) expectCryptoError(() => finish(new Uint8Array(n)), "hs-ntor-bad-message");
  });

  it("a low-order Y or X with zero-shared-secret", () => {
    const lowOrder = new Uint8Array(32); // u = 0
    expectCryptoError(() => finish(Uint8Array.from([...lowOrder, ...s.reply.subarray(32)])), "zero-shared-secret");
    expectCryptoError(() => hsNtorServiceIntroduceKeys({ ...svc, clientPublic: lowOrder }), "zero-shared-secret");
    expectCryptoError(() => hsNtorServiceRendezvous({ ...svc, clientPublic: lowOrder }), "zero-shared-secret");
    expectCryptoError(() => hsNtorClientIntroduceKeys({ ...svc, introEncKey: lowOrder }), "zero-shared-secret");
  });

  it("bad key lengths with bad-key-length", () => {
    const short = new Uint8Array(31);
    expectCryptoError(() => hsNtorClientIntroduceKeys({ ...svc, introAuthKey: short }), "bad-key-length");
    expectCryptoError(() => hsNtorClientIntroduceKeys({ ...svc, introEncKey: short }), "bad-key-length");
    expectCryptoError(() => hsNtorClientIntroduceKeys({ ...svc, subcredential: new Uint8Array(33) }), "bad-key-length");
    expectCryptoError(() => hsNtorClientIntroduceKeys({ ...svc, clientSecret: short }), "bad-key-length");
    expectCryptoError(() => hsNtorServiceIntroduceKeys({ ...svc, introEncSecret: short, clientPublic: c.clientPublic }), "bad-key-length");
    expectCryptoError(() => hsNtorServiceIntroduceKeys({ ...svc, clientPublic: short }), "bad-key-length");
    expectCryptoError(() => hsNtorServiceRendezvous({ ...svc, clientPublic: c.clientPublic, serviceSecret: short }), "bad-key-length");
    expectCryptoError(() => hsNtorServiceRendezvous({ ...svc, clientPublic: c.clientPublic, introEncKey: short }), "bad-key-length");
    expectCryptoError(() => finish(s.reply, { clientSecret: short }), "bad-key-length");
    expectCryptoError(() => finish(s.reply, { subcredential: short }), "bad-key-length");
    expectCryptoError(() => hsNtorExpandKeys(short), "bad-key-length");
    expectCryptoError(() => hsMac("key" as unknown as Uint8Array, new Uint8Array(1)), "bad-length");
  });

  it("unusable protocol ids and expansion lengths", () => {
    expectCryptoError(() => hsNtorClientIntroduceKeys({ ...svc, protoId: "" }), "hs-ntor-bad-message");
    expectCryptoError(() => hsNtorClientIntroduceKeys({ ...svc, protoId: "x".repeat(256) }), "hs-ntor-bad-message");
    for (const n of [0, -1, 1.5, 8193]) expectCryptoError(() => hsNtorExpandKeys(s.keySeed, n), "bad-length");
  });

  it("random replies never verify (fuzz)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: HS_NTOR_REPLY_LEN, maxLength: HS_NTOR_REPLY_LEN }), (reply) => {
        try {
          finish(reply);
        } catch (err) {
          expect(err).toBeInstanceOf(CryptoError);
          expect(["hs-ntor-auth-failed", "zero-shared-secret"]).toContain((err as CryptoError).kind);
          return;
        }
        throw new Error("a random reply verified");
      }),
      { numRuns: 200 },
    );
  });

  it("the genuine Y with a random AUTH never verifies (fuzz)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (auth) => {
        fc.pre(toHex(auth) !== toHex(s.reply.subarray(32)));
        expectCryptoError(() => finish(Uint8Array.from([...s.reply.subarray(0, 32), ...auth])), "hs-ntor-auth-failed");
      }),
      { numRuns: 200 },
    );
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AEAD_ALGORITHM, aeadBackends, aeadOpen, aeadSeal } from "../../../node/src/crypto/aead.js";
import { constantTimeEqual } from "../../../node/src/crypto/compare.js";
import { CryptoError } from "../../../node/src/crypto/errors.js";
import { hashBackends, hkdfSha256, hmacSha256 } from "../../../node/src/crypto/kdf.js";
import { PSP_NTOR_PROTOID, TOR_NTOR_ID_LEN, TOR_NTOR_PROTOID, ntorClientCreate, ntorClientFinish, ntorParseOnionskin, ntorServerRespond } from "../../../node/src/crypto/ntor.js";
import { generateX25519KeyPair } from "../../../node/src/crypto/x25519.js";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

function expectCryptoError(fn: () => unknown, kind?: string): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CryptoError);
    if (kind) expect((err as CryptoError).kind).toBe(kind);
    return;
  }
  throw new Error("expected a CryptoError");
}

describe("ntor", () => {
  it("reproduces Tor's ntor-curve25519-sha256-1 test vector byte for byte", () => {
    const common = { protoId: TOR_NTOR_PROTOID, idLength: TOR_NTOR_ID_LEN, id: hex("69546f6c64596f7541626f75745374616972732e") };
    const onionSecret = hex("4820544f4c4420594f5520444f474954204b454550532048415050454e494e47");
    const onionPublic = hex("ccbc8541904d18af08753eae967874749e6149f873de937f57f8fd903a21c471");
    const { state, onionskin } = ntorClientCreate({
      ...common,
      onionPublic,
      clientSecret: hex("706f6461792069207075742e2e2e2e2e2e2e2e4a454c4c59206f6e2074686973"),
    });
    expect(toHex(onionskin)).toBe(
      "69546f6c64596f7541626f75745374616972732eccbc8541904d18af08753eae967874749e6149f873de937f57f8fd903a21c471e65dfdbef8b2635837fe2cebc086a8096eae3213e6830dc407516083d412b078",
    );
    const parsed = ntorParseOnionskin(onionskin, TOR_NTOR_ID_LEN);
    const { reply, keys } = ntorServerRespond({
      ...common,
      onionSecret,
      clientPublic: parsed.clientPublic,
      ephemeralSecret: hex("70686520737175697272656c2e2e2e2e2e2e2e2e686173206869732067616d65"),
      keyLength: 72,
    });
    expect(toHex(reply)).toBe("390480a14362761d6aec1fea840f6e9e928fb2adb7b25c670be1045e35133a371cbdf68b89923e1f85e8e18ee6e805ea333fe4849c790ffd2670bd80fec95cc8");
    const expectedKeys = "0c62dee7f48893370d0ef896758d35729867beef1a5121df80e00f79ed349af39b51cae125719182f19d932a667dae1afbf2e336e6910e7822223e763afad0a13342157969dc6b79";
    expect(toHex(keys)).toBe(expectedKeys);
    expect(toHex(ntorClientFinish({ ...state, idLength: TOR_NTOR_ID_LEN, reply, keyLength: 72 }))).toBe(expectedKeys);
  });

  it("completes with PSP's protocol id by default and gives different keys than Tor's id", () => {
    const onion = generateX25519KeyPair();
    const id = new Uint8Array(32).fill(7);
    const clientSecret = generateX25519KeyPair().secretKey;
    const ephemeralSecret = generateX25519KeyPair().secretKey;
    const run = (protoId: string) => {
      const { state, onionskin } = ntorClientCreate({ protoId, id, onionPublic: onion.publicKey, clientSecret });
      const { clientPublic } = ntorParseOnionskin(onionskin);
      const server = ntorServerRespond({ protoId, id, onionSecret: onion.secretKey, clientPublic, ephemeralSecret, keyLength: 100 });
      const client = ntorClientFinish({ ...state, reply: server.reply, keyLength: 100 });
      expect(toHex(client)).toBe(toHex(server.keys));
      return client;
    };
    const { state } = ntorClientCreate({ id, onionPublic: onion.publicKey });
    expect(state.protoId).toBe(PSP_NTOR_PROTOID);
    expect(toHex(run(PSP_NTOR_PROTOID))).not.toBe(toHex(run("other-ntor-id")));
  });

  it("fails with ntor-auth-failed for a wrong identity, a wrong onion key or a tampered reply", () => {
    const onion = generateX25519KeyPair();
    const id = new Uint8Array(32).fill(1);
    const { state, onionskin } = ntorClientCreate({ id, onionPublic: onion.publicKey });
    const { clientPublic } = ntorParseOnionskin(onionskin);
    const good = ntorServerRespond({ id, onionSecret: onion.secretKey, clientPublic, keyLength: 32 });
    expect(ntorClientFinish({ ...state, reply: good.reply, keyLength: 32 })).toHaveLength(32);

    const wrongId = ntorServerRespond({ id: new Uint8Array(32).fill(2), onionSecret: onion.secretKey, clientPublic, keyLength: 32 });
    expectCryptoError(() => ntorClientFinish({ ...state, reply: wrongId.reply, keyLength: 32 }), "ntor-auth-failed");
    const other = generateX25519KeyPair();
    const wrongKey = ntorServerRespond({ id, onionSecret: other.secretKey, clientPublic, keyLength: 32 });
    expectCryptoError(() => ntorClientFinish({ ...state, reply: wrongKey.reply, keyLength: 32 }), "ntor-auth-failed");

    fc.assert(
      fc.property(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 1, max: 255 }), (pos, flip) => {
        const reply = good.reply.slice();
        reply[pos] = (reply[pos] as number) ^ flip;
        expectCryptoError(() => ntorClientFinish({ ...state, reply, keyLength: 32 }));
      }),
      { numRuns: 200 },
    );
  });

  it("rejects low-order points on both sides and malformed messages with typed errors", () => {
    const onion = generateX25519KeyPair();
    const id = new Uint8Array(32);
    const zero = new Uint8Array(32);
    expectCryptoError(() => ntorServerRespond({ id, onionSecret: onion.secretKey, clientPublic: zero, keyLength: 32 }), "zero-shared-secret");
    const { state } = ntorClientCreate({ id, onionPublic: onion.publicKey });
    const reply = new Uint8Array(64); // Y = 0
    expectCryptoError(() => ntorClientFinish({ ...state, reply, keyLength: 32 }), "zero-shared-secret");
    expectCryptoError(() => ntorClientFinish({ ...state, reply: new Uint8Array(63), keyLength: 32 }), "ntor-bad-message");
    expectCryptoError(() => ntorParseOnionskin(new Uint8Array(95)), "ntor-bad-message");
    expectCryptoError(() => ntorClientCreate({ id: new Uint8Array(20), onionPublic: onion.publicKey }), "bad-key-length");
    expectCryptoError(() => ntorServerRespond({ id, onionSecret: onion.secretKey, clientPublic: onion.publicKey, keyLength: 0 }), "bad-length");
  });
});

describe("HKDF-SHA256, HMAC and constant-time compare", () => {
  it("matches RFC 5869 test case 1 on both backends", () => {
    for (const backend of [hashBackends.node, hashBackends.noble]) {
      if (!backend) continue;
      const okm = hkdfSha256(hex("0b".repeat(22)), hex("000102030405060708090a0b0c"), hex("f0f1f2f3f4f5f6f7f8f9"), 42, backend);
      expect(toHex(okm)).toBe("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    }
  });

  it("backends agree on HMAC and HKDF for random inputs, including info over 1 KiB", () => {
    const node = hashBackends.node;
    if (!node) return;
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 100 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.uint8Array({ maxLength: 1100 }),
        fc.integer({ min: 1, max: 300 }),
        (ikm, salt, info, len) => {
          expect(toHex(node.hkdfSha256(ikm, salt, info, len))).toBe(toHex(hashBackends.noble.hkdfSha256(ikm, salt, info, len)));
          expect(toHex(node.hmacSha256(salt, ikm))).toBe(toHex(hashBackends.noble.hmacSha256(salt, ikm)));
        },
      ),
      { numRuns: 200 },
    );
    expect(hmacSha256(new Uint8Array(3), new Uint8Array(3))).toHaveLength(32);
    expectCryptoError(() => hkdfSha256(new Uint8Array(1), new Uint8Array(0), new Uint8Array(0), 255 * 32 + 1), "bad-length");
  });

  it("constantTimeEqual compares content and length", () => {
    expect(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0))).toBe(false);
  });
});

describe("AEAD", () => {
  it("uses ChaCha20-Poly1305 and matches RFC 8439 §2.8.2 on both backends", () => {
    expect(AEAD_ALGORITHM).toBe("chacha20-poly1305");
    const key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    const nonce = hex("070000004041424344454647");
    const aad = hex("50515253c0c1c2c3c4c5c6c7");
    const pt = new TextEncoder().encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    for (const backend of [aeadBackends["chacha20-poly1305"].node, aeadBackends["chacha20-poly1305"].noble]) {
      if (!backend) continue;
      const sealed = aeadSeal(key, nonce, pt, aad, backend);
      expect(toHex(sealed.subarray(0, 16))).toBe("d31a8d34648e60db7b86afbc53ef7ec2");
      expect(toHex(sealed.subarray(sealed.length - 16))).toBe("1ae10b594f09e26a7e902ecbd0600691");
      expect(new TextDecoder().decode(aeadOpen(key, nonce, sealed, aad, backend))).toMatch(/^Ladies/);
    }
  });

  it("both candidates agree across backends and reject any tampering", () => {
    const key = new Uint8Array(32).fill(3);
    const nonce = new Uint8Array(12).fill(4);
    for (const alg of ["chacha20-poly1305", "aes-256-gcm"] as const) {
      const { node, noble } = aeadBackends[alg];
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 20 }), fc.nat(), (pt, aad, where) => {
          const sealed = aeadSeal(key, nonce, pt, aad, noble);
          if (node) {
            expect(toHex(aeadSeal(key, nonce, pt, aad, node))).toBe(toHex(sealed));
            expect(toHex(aeadOpen(key, nonce, sealed, aad, node))).toBe(toHex(pt));
          }
          const bad = sealed.slice();
          const i = where % bad.length;
          bad[i] = (bad[i] as number) ^ 0x40;
          for (const backend of [node, noble]) {
            if (backend) expectCryptoError(() => aeadOpen(key, nonce, bad, aad, backend), "aead-auth-failed");
          }
          expectCryptoError(() => aeadOpen(key, nonce, sealed, Uint8Array.of(...aad, 1), noble), "aead-auth-failed");
        }),
        { numRuns: 150 },
      );
    }
  });

  it("rejects random sealed data and bad key/nonce sizes with typed errors", () => {
    const key = new Uint8Array(32);
    const nonce = new Uint8Array(12);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (junk) => {
        expectCryptoError(() => aeadOpen(key, nonce, junk), "aead-auth-failed");
      }),
      { numRuns: 1000 },
    );
    expectCryptoError(() => aeadSeal(new Uint8Array(16), nonce, new Uint8Array(1)), "bad-key-length");
    expectCryptoError(() => aeadSeal(key, new Uint8Array(8), new Uint8Array(1)), "bad-key-length");
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ed25519Backends, ed25519PublicKey, ed25519Sign, ed25519Verify, generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { CryptoError } from "../../../node/src/crypto/errors.js";
import { generateX25519KeyPair, x25519Backends, x25519PublicKey, x25519SharedSecret } from "../../../node/src/crypto/x25519.js";
import { defaultBackend } from "../../../node/src/crypto/backend.js";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const nodeEd = ed25519Backends.node;
const nobleEd = ed25519Backends.noble;
const bytes32 = fc.uint8Array({ minLength: 32, maxLength: 32 });

describe("Ed25519", () => {
  it("runs on node:crypto in Node unless PSP_CRYPTO_BACKEND=noble", () => {
    expect(defaultBackend).toBe(process.env["PSP_CRYPTO_BACKEND"] === "noble" ? "noble" : "node");
  });

  it("matches RFC 8032 test 1 and test 2 on every backend", () => {
    const vectors = [
      {
        sk: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        pk: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        msg: "",
        sig: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
      },
      {
        sk: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        pk: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        msg: "72",
        sig: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
      },
    ];
    for (const backend of [nodeEd, nobleEd]) {
      if (!backend) continue;
      for (const v of vectors) {
        expect(toHex(backend.publicKey(hex(v.sk)))).toBe(v.pk);
        expect(toHex(backend.sign(hex(v.sk), hex(v.msg)))).toBe(v.sig);
        expect(backend.verify(hex(v.pk), hex(v.msg), hex(v.sig))).toBe(true);
      }
    }
  });

  it("node:crypto and noble agree: same keys, same signatures, each verifies the other's", () => {
    if (!nodeEd) return;
    fc.assert(
      fc.property(bytes32, fc.uint8Array({ maxLength: 300 }), (seed, msg) => {
        const pk = nodeEd.publicKey(seed);
        expect(toHex(nobleEd.publicKey(seed))).toBe(toHex(pk));
        const nodeSig = nodeEd.sign(seed, msg);
        const nobleSig = nobleEd.sign(seed, msg);
        expect(toHex(nodeSig)).toBe(toHex(nobleSig));
        expect(nobleEd.verify(pk, msg, nodeSig)).toBe(true);
        expect(nodeEd.verify(pk, msg, nobleSig)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it("both backends give the same verdict on mutated signatures, keys and messages", () => {
    if (!nodeEd) return;
    const kp = generateEd25519KeyPair();
    const msg = new TextEncoder().encode("psp");
    const sig = ed25519Sign(kp.secretKey, msg);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 127 }), fc.integer({ min: 1, max: 255 }), (pos, flip) => {
        const s = sig.slice();
        const k = kp.publicKey.slice();
        if (pos < 64) s[pos] = (s[pos] as number) ^ flip;
        else if (pos < 96) k[pos - 64] = (k[pos - 64] as number) ^ flip;
        const m = pos >= 96 ? Uint8Array.of(...msg, flip) : msg;
        const a = nodeEd.verify(k, m, s);
        expect(nobleEd.verify(k, m, s)).toBe(a);
        expect(a).toBe(false);
      }),
      { numRuns: 120 },
    );
  });

  it("rejects small-order public keys and non-canonical S on both backends", () => {
    const msg = new Uint8Array(0);
    const identity = hex("0100000000000000000000000000000000000000000000000000000000000000");
    // With A = identity and R = identity, S = 0 satisfies the cofactorless equation.
    const trivialSig = new Uint8Array(64);
    trivialSig.set(identity, 0);
    const kp = generateEd25519KeyPair();
    const sig = ed25519Sign(kp.secretKey, msg);
    // S + L is the same scalar mod L but non-canonical (malleability).
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i] as number);
    let sPlusL = s + L;
    const malleable = sig.slice();
    for (let i = 32; i < 64; i++) {
      malleable[i] = Number(sPlusL & 0xffn);
      sPlusL >>= 8n;
    }
    for (const backend of [nodeEd, nobleEd]) {
      if (!backend) continue;
      expect(backend.verify(identity, msg, trivialSig)).toBe(false);
      expect(backend.verify(kp.publicKey, msg, sig)).toBe(true);
      expect(backend.verify(kp.publicKey, msg, malleable)).toBe(false);
    }
  });

  it("verify never throws: bad lengths and types give false", () => {
    const kp = generateEd25519KeyPair();
    const msg = Uint8Array.of(1, 2, 3);
    const sig = ed25519Sign(kp.secretKey, msg);
    expect(ed25519Verify(kp.publicKey, msg, sig)).toBe(true);
    expect(ed25519Verify(kp.publicKey.subarray(1), msg, sig)).toBe(false);
    expect(ed25519Verify(kp.publicKey, msg, sig.subarray(1))).toBe(false);
    expect(ed25519Verify(new Uint8Array(0), msg, new Uint8Array(0))).toBe(false);
    expect(ed25519Verify("key" as unknown as Uint8Array, msg, sig)).toBe(false);
    expect(ed25519Verify(kp.publicKey, null as unknown as Uint8Array, sig)).toBe(false);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 70 }), (k, s) => {
        expect(ed25519Verify(k, msg, s)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it("sign and publicKey reject bad seeds with a typed error", () => {
    expect(() => ed25519Sign(new Uint8Array(31), new Uint8Array(1))).toThrow(CryptoError);
    expect(() => ed25519PublicKey(new Uint8Array(64))).toThrowError(expect.objectContaining({ kind: "bad-key-length" }));
    expect(() => nobleEd.sign(new Uint8Array(33), new Uint8Array(1))).toThrowError(expect.objectContaining({ kind: "bad-key-length" }));
  });

  it("keeps using the right key when a caller reuses and mutates its key buffer", () => {
    const seed = generateEd25519KeyPair().secretKey;
    const pk1 = ed25519PublicKey(seed);
    seed[0] = (seed[0] as number) ^ 1;
    const pk2 = ed25519PublicKey(seed);
    expect(toHex(pk2)).not.toBe(toHex(pk1));
    expect(toHex(pk2)).toBe(toHex(nobleEd.publicKey(seed)));
    const sig = ed25519Sign(seed, Uint8Array.of(9));
    expect(nobleEd.verify(pk2, Uint8Array.of(9), sig)).toBe(true);
  });
});

describe("X25519", () => {
  it("matches RFC 7748 §6.1 on every backend", () => {
    const a = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const b = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    for (const backend of [x25519Backends.node, x25519Backends.noble]) {
      if (!backend) continue;
      expect(toHex(x25519PublicKey(a, backend))).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
      expect(toHex(x25519SharedSecret(a, x25519PublicKey(b, backend), backend))).toBe("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    }
  });

  it("node:crypto and noble agree on random secrets and arbitrary peer bytes", () => {
    const node = x25519Backends.node;
    if (!node) return;
    fc.assert(
      fc.property(bytes32, bytes32, (secret, peer) => {
        expect(toHex(node.publicKey(secret))).toBe(toHex(x25519Backends.noble.publicKey(secret)));
        expect(toHex(node.scalarMult(secret, peer))).toBe(toHex(x25519Backends.noble.scalarMult(secret, peer)));
      }),
      { numRuns: 100 },
    );
  });

  it("a pair either backend generates is the pair of its secret on the other, and a reused, mutated secret is read afresh", () => {
    const node = x25519Backends.node;
    if (!node) return;
    for (let i = 0; i < 20; i++) {
      const fromNode = generateX25519KeyPair(node);
      const fromNoble = generateX25519KeyPair(x25519Backends.noble);
      expect(toHex(x25519Backends.noble.publicKey(fromNode.secretKey))).toBe(toHex(fromNode.publicKey));
      expect(toHex(node.publicKey(fromNoble.secretKey))).toBe(toHex(fromNoble.publicKey));
      expect(toHex(node.scalarMult(fromNode.secretKey, fromNoble.publicKey))).toBe(toHex(x25519Backends.noble.scalarMult(fromNoble.secretKey, fromNode.publicKey)));
    }
    // The node backend keeps a pair's key object for the DHs that follow; a caller overwriting the secret must not reach it.
    const pair = generateX25519KeyPair(node);
    const peer = generateX25519KeyPair(x25519Backends.noble);
    pair.secretKey.set(peer.secretKey);
    expect(toHex(node.scalarMult(pair.secretKey, pair.publicKey))).toBe(toHex(x25519Backends.noble.scalarMult(peer.secretKey, pair.publicKey)));
  });

  it("rejects low-order peer keys with zero-shared-secret on both backends", () => {
    const lowOrder = [
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0100000000000000000000000000000000000000000000000000000000000000",
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    const me = generateX25519KeyPair();
    for (const backend of [x25519Backends.node, x25519Backends.noble]) {
      if (!backend) continue;
      for (const p of lowOrder) {
        expect(() => x25519SharedSecret(me.secretKey, hex(p), backend)).toThrowError(expect.objectContaining({ kind: "zero-shared-secret" }));
      }
    }
  });

  it("both sides of an exchange get the same secret; bad lengths are typed errors", () => {
    const a = generateX25519KeyPair();
    const b = generateX25519KeyPair();
    expect(toHex(x25519SharedSecret(a.secretKey, b.publicKey))).toBe(toHex(x25519SharedSecret(b.secretKey, a.publicKey)));
    expect(() => x25519SharedSecret(a.secretKey, b.publicKey.subarray(2))).toThrowError(expect.objectContaining({ kind: "bad-key-length" }));
    expect(() => x25519PublicKey(new Uint8Array(5))).toThrowError(expect.objectContaining({ kind: "bad-key-length" }));
  });
});

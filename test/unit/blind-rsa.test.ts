/**
 * RFC 9474 blind RSA (node/src/crypto/blind-rsa.ts) against the RFC's own
 * test vectors (Appendix A, test/vectors/rfc9474-blind-rsa.json): the four
 * SHA-384 suites, step by step (blind with the vector's salt and r, blind
 * sign, finalize, verify), then a fresh 2048-bit key end to end and the
 * refusals: wrong-length or out-of-range blinded messages, a signature under
 * another key, an altered message.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  blindRsaBlind,
  blindRsaBlindSign,
  blindRsaFinalize,
  blindRsaPrepare,
  blindRsaPrivateKeyFromComponents,
  blindRsaPublicKey,
  blindRsaVerify,
  generateBlindRsaKey,
  i2osp,
  modInverse,
} from "../../node/src/crypto/blind-rsa.js";
import { CryptoError } from "../../node/src/crypto/errors.js";

interface Vector {
  name: string;
  p: string;
  q: string;
  n: string;
  e: string;
  d: string;
  msg: string;
  msg_prefix: string;
  input_msg: string;
  sLen: string;
  salt: string;
  inv: string;
  blinded_msg: string;
  blind_sig: string;
  sig: string;
}

const vectors = JSON.parse(readFileSync(new URL("../vectors/rfc9474-blind-rsa.json", import.meta.url), "utf8")) as Vector[];
const big = (h: string): bigint => BigInt(h.startsWith("0x") ? h : `0x${h}`);
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/^0x/, ""), "hex"));
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

describe("RFC 9474 test vectors", () => {
  it("has the four SHA-384 suites", () => {
    expect(vectors.map((v) => v.name).sort()).toEqual([
      "RSABSSA-SHA384-PSS-Deterministic",
      "RSABSSA-SHA384-PSS-Randomized",
      "RSABSSA-SHA384-PSSZERO-Deterministic",
      "RSABSSA-SHA384-PSSZERO-Randomized",
    ]);
  });

  for (const v of vectors) {
    it(`${v.name}: blind, blind-sign, finalize and verify give the RFC's bytes`, () => {
      const sk = blindRsaPrivateKeyFromComponents({ n: big(v.n), e: big(v.e), d: big(v.d), p: big(v.p), q: big(v.q) });
      const pk = sk.publicKey;
      expect(pk.modulusBits).toBe(4096);
      const saltLength = Number(big(v.sLen));
      const input = v.msg_prefix ? blindRsaPrepare(bytes(v.msg), bytes(v.msg_prefix)) : bytes(v.msg);
      expect(hex(input)).toBe(v.input_msg);
      const inv = big(v.inv);
      const r = modInverse(inv, pk.n)!;
      const blinded = blindRsaBlind(pk, input, { saltLength, salt: bytes(v.salt), r });
      expect(blinded.inv).toBe(inv);
      expect(hex(blinded.blindedMsg)).toBe(v.blinded_msg);
      const blindSig = blindRsaBlindSign(sk, blinded.blindedMsg);
      expect(hex(blindSig)).toBe(v.blind_sig);
      const sig = blindRsaFinalize(pk, input, blindSig, inv, saltLength);
      expect(hex(sig)).toBe(v.sig);
      expect(blindRsaVerify(pk, input, sig, saltLength)).toBe(true);
      // The published key alone verifies (what a landing node holds).
      expect(blindRsaVerify(blindRsaPublicKey(pk.spki), input, sig, saltLength)).toBe(true);
    });
  }
});

describe("blind RSA with a fresh key", () => {
  const sk = generateBlindRsaKey(2048);
  const pk = blindRsaPublicKey(sk.publicKey.spki);

  it("round-trips: the signer never sees the message, the signature verifies", () => {
    const input = blindRsaPrepare(new TextEncoder().encode("token"));
    const { blindedMsg, inv } = blindRsaBlind(pk, input);
    expect(blindedMsg.length).toBe(256);
    const sig = blindRsaFinalize(pk, input, blindRsaBlindSign(sk, blindedMsg), inv);
    expect(blindRsaVerify(pk, input, sig)).toBe(true);
    const altered = input.slice();
    altered[0]! ^= 1;
    expect(blindRsaVerify(pk, altered, sig)).toBe(false);
  });

  it("two blindings of one message look unrelated", () => {
    const input = blindRsaPrepare(new Uint8Array(32));
    expect(hex(blindRsaBlind(pk, input).blindedMsg)).not.toBe(hex(blindRsaBlind(pk, input).blindedMsg));
  });

  it("refuses a blinded message of the wrong length or not below the modulus", () => {
    expect(() => blindRsaBlindSign(sk, new Uint8Array(255))).toThrow(CryptoError);
    try {
      blindRsaBlindSign(sk, i2osp(pk.n, 256));
      expect.unreachable();
    } catch (err) {
      expect(CryptoError.is(err, "blind-rsa-bad-input")).toBe(true);
    }
  });

  it("finalize refuses a blind signature made with another key", () => {
    const other = generateBlindRsaKey(2048);
    const input = blindRsaPrepare(new Uint8Array(32));
    const { blindedMsg, inv } = blindRsaBlind(pk, input);
    const wrong = blindRsaBlindSign(
      other,
      blindedMsg.subarray(0, 256).map((b, i) => (i === 0 ? 0 : b)),
    );
    try {
      blindRsaFinalize(pk, input, wrong, inv);
      expect.unreachable();
    } catch (err) {
      expect(CryptoError.is(err, "blind-rsa-invalid-signature", "blind-rsa-bad-input")).toBe(true);
    }
  });

  it("refuses keys outside 2048..4096 bits", () => {
    expect(() => generateBlindRsaKey(1024)).toThrow(CryptoError);
  });
});

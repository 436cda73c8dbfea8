/**
 * RFC 9474 RSA blind signatures, suite RSABSSA-SHA384-PSS-Randomized (and,
 * with `saltLength: 0` / no prefix, the other three suites the RFC gives
 * vectors for).
 *
 * Owns the protocol steps of RFC 9474 §4: Prepare (a random 32-byte prefix
 * before the message), Blind (EMSA-PSS encoding with SHA-384 and MGF1-SHA-384,
 * then multiplication by r^e mod n), BlindSign (the raw RSA private operation
 * RSASP1, then the RFC's check that RSAVP1 of the result gives back the
 * blinded message, which guards against a faulty CRT computation leaking the
 * key), Finalize (unblinding by r^-1 and an ordinary RSASSA-PSS verification)
 * and Verify.
 *
 * The private operation and RSAVP1 run in OpenSSL through node:crypto with
 * RSA_NO_PADDING (constant-time, CRT); only blinding and unblinding use bigint
 * arithmetic, on the client side, where timing leaks nothing the client does
 * not already know. The verifier is node:crypto's RSA-PSS verify.
 *
 * Trusts nothing about the bytes it is given: a blinded message or signature
 * of the wrong length or not below the modulus is CryptoError
 * "blind-rsa-bad-input"; a signature that does not verify is
 * "blind-rsa-invalid-signature"; keys outside 2048..4096 bits are
 * "blind-rsa-bad-key".
 */
import { constants, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes, verify } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { concatBytes } from "../base/bytes.js";
import { CryptoError } from "./errors.js";

/** SHA-384's output length, the PSS salt length of RSABSSA-SHA384-PSS. */
export const BLIND_RSA_SALT_LEN = 48;
/** The random prefix Prepare puts before the message in the randomized suites. */
export const BLIND_RSA_PREFIX_LEN = 32;
export const BLIND_RSA_MIN_BITS = 2048;
export const BLIND_RSA_MAX_BITS = 4096;
const HASH_LEN = 48;

export interface BlindRsaPublicKey {
  n: bigint;
  e: bigint;
  /** k in RFC 9474: the modulus length in bytes, the length of every blinded message and signature. */
  modulusBytes: number;
  modulusBits: number;
  /** DER SubjectPublicKeyInfo, the form keys are published in. */
  spki: Uint8Array;
  key: KeyObject;
}

export interface BlindRsaPrivateKey {
  publicKey: BlindRsaPublicKey;
  key: KeyObject;
}

export interface BlindOptions {
  /** PSS salt length: BLIND_RSA_SALT_LEN (default) or 0 for the PSSZERO suites. */
  saltLength?: number;
  /** A fixed salt, for known-answer tests only. */
  salt?: Uint8Array;
  /** A fixed blinding factor r, for known-answer tests only. */
  r?: bigint;
}

export interface BlindResult {
  /** What goes to the signer: k bytes that reveal nothing about the message. */
  blindedMsg: Uint8Array;
  /** r^-1 mod n, kept by the client for finalize. */
  inv: bigint;
}

// ------------------------------------------------------------------ integers

/** OS2IP: big-endian bytes to a non-negative integer. */
export function os2ip(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString("hex")}`);
}

/** I2OSP: a non-negative integer to exactly `length` big-endian bytes. */
export function i2osp(value: bigint, length: number): Uint8Array {
  if (value < 0n) throw new CryptoError("bad-length", "I2OSP of a negative integer");
  const hex = value.toString(16);
  if (hex.length > length * 2) throw new CryptoError("bad-length", `integer too large for ${length} bytes`);
  return new Uint8Array(Buffer.from(hex.padStart(length * 2, "0"), "hex"));
}

function mod(a: bigint, n: bigint): bigint {
  const r = a % n;
  return r < 0n ? r + n : r;
}

/** a^-1 mod n, or undefined when gcd(a, n) ≠ 1. */
export function modInverse(a: bigint, n: bigint): bigint | undefined {
  let [oldR, r] = [mod(a, n), n];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  return oldR === 1n ? mod(oldS, n) : undefined;
}

function base64url(value: bigint): string {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  return Buffer.from(hex, "hex").toString("base64url");
}

function fromBase64url(text: string | undefined): bigint {
  if (text === undefined) throw new CryptoError("blind-rsa-bad-key", "RSA key lacks a component");
  return os2ip(Buffer.from(text, "base64url"));
}

// ------------------------------------------------------------------ keys

function publicFromKeyObject(key: KeyObject): BlindRsaPublicKey {
  if (key.asymmetricKeyType !== "rsa") throw new CryptoError("blind-rsa-bad-key", `blind signatures need an RSA key, got ${String(key.asymmetricKeyType)}`);
  const jwk = key.export({ format: "jwk" });
  const n = fromBase64url(jwk.n);
  const e = fromBase64url(jwk.e);
  const modulusBits = n.toString(2).length;
  if (modulusBits < BLIND_RSA_MIN_BITS || modulusBits > BLIND_RSA_MAX_BITS || n % 2n === 0n) {
    throw new CryptoError("blind-rsa-bad-key", `RSA modulus of ${modulusBits} bits is outside ${BLIND_RSA_MIN_BITS}..${BLIND_RSA_MAX_BITS}`);
  }
  const spki = new Uint8Array(key.export({ format: "der", type: "spki" }));
  return { n, e, modulusBits, modulusBytes: Math.ceil(modulusBits / 8), spki, key };
}

/** A public key from its DER SubjectPublicKeyInfo (as published on chain). */
export function blindRsaPublicKey(spki: Uint8Array): BlindRsaPublicKey {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" });
  } catch (err) {
    throw new CryptoError("blind-rsa-bad-key", "not a DER SubjectPublicKeyInfo", { cause: err });
  }
  return publicFromKeyObject(key);
}

/** Wraps an RSA private KeyObject (or PKCS#8 PEM). */
export function blindRsaPrivateKey(key: KeyObject | string): BlindRsaPrivateKey {
  const object = typeof key === "string" ? createPrivateKey(key) : key;
  if (object.type !== "private") throw new CryptoError("blind-rsa-bad-key", "a blind signer needs a private key");
  return { key: object, publicKey: publicFromKeyObject(createPublicKey(object)) };
}

/** A private key from its components (the RFC's test vectors give n, e, d, p, q). */
export function blindRsaPrivateKeyFromComponents(c: { n: bigint; e: bigint; d: bigint; p: bigint; q: bigint }): BlindRsaPrivateKey {
  const qi = modInverse(c.q, c.p);
  if (qi === undefined || c.p * c.q !== c.n) throw new CryptoError("blind-rsa-bad-key", "inconsistent RSA components");
  const jwk = {
    kty: "RSA",
    n: base64url(c.n),
    e: base64url(c.e),
    d: base64url(c.d),
    p: base64url(c.p),
    q: base64url(c.q),
    dp: base64url(c.d % (c.p - 1n)),
    dq: base64url(c.d % (c.q - 1n)),
    qi: base64url(qi),
  };
  return blindRsaPrivateKey(createPrivateKey({ key: jwk, format: "jwk" }));
}

/** A fresh key pair (2048 bits by default; e = 65537). */
export function generateBlindRsaKey(bits = 2048): BlindRsaPrivateKey {
  if (!Number.isSafeInteger(bits) || bits < BLIND_RSA_MIN_BITS || bits > BLIND_RSA_MAX_BITS) {
    throw new CryptoError("blind-rsa-bad-key", `modulus length ${bits} is outside ${BLIND_RSA_MIN_BITS}..${BLIND_RSA_MAX_BITS}`);
  }
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: bits, publicExponent: 65537 });
  return blindRsaPrivateKey(privateKey);
}

// ------------------------------------------------------------------ EMSA-PSS

function sha384(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha384");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

function mgf1(seed: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(length / HASH_LEN) * HASH_LEN);
  for (let counter = 0; counter * HASH_LEN < length; counter++) {
    out.set(sha384(seed, i2osp(BigInt(counter), 4)), counter * HASH_LEN);
  }
  return out.subarray(0, length);
}

/** EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with SHA-384 and MGF1-SHA-384. */
export function emsaPssEncode(message: Uint8Array, emBits: number, salt: Uint8Array): Uint8Array {
  const emLen = Math.ceil(emBits / 8);
  if (emLen < HASH_LEN + salt.length + 2) throw new CryptoError("blind-rsa-bad-key", "modulus too small for EMSA-PSS with this salt");
  const mHash = sha384(message);
  const h = sha384(new Uint8Array(8), mHash, salt);
  const db = new Uint8Array(emLen - HASH_LEN - 1);
  db[db.length - salt.length - 1] = 0x01;
  db.set(salt, db.length - salt.length);
  const mask = mgf1(h, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >> (8 * emLen - emBits);
  return concatBytes(db, h, Uint8Array.of(0xbc));
}

// ------------------------------------------------------------------ protocol

/** Prepare (randomized suites): a random 32-byte prefix ‖ message. `prefix` fixes it for tests. */
export function blindRsaPrepare(message: Uint8Array, prefix: Uint8Array = new Uint8Array(randomBytes(BLIND_RSA_PREFIX_LEN))): Uint8Array {
  if (prefix.length !== BLIND_RSA_PREFIX_LEN) throw new CryptoError("bad-length", `the prepare prefix is ${BLIND_RSA_PREFIX_LEN} bytes`);
  return concatBytes(prefix, message);
}

/** RSAVP1 through OpenSSL: s^e mod n, for 0 ≤ s < n. */
function rsavp1(pk: BlindRsaPublicKey, s: Uint8Array): Uint8Array {
  return new Uint8Array(publicEncrypt({ key: pk.key, padding: constants.RSA_NO_PADDING }, s));
}

function checkRepresentative(pk: BlindRsaPublicKey, bytes: Uint8Array, what: string): bigint {
  if (bytes.length !== pk.modulusBytes) throw new CryptoError("blind-rsa-bad-input", `${what} must be ${pk.modulusBytes} bytes, got ${bytes.length}`);
  const m = os2ip(bytes);
  if (m >= pk.n) throw new CryptoError("blind-rsa-bad-input", `${what} is not below the modulus`);
  return m;
}

/** Blind (client): encodes the prepared message and blinds it with a fresh r. */
export function blindRsaBlind(pk: BlindRsaPublicKey, preparedMsg: Uint8Array, options: BlindOptions = {}): BlindResult {
  const saltLength = options.saltLength ?? BLIND_RSA_SALT_LEN;
  const salt = options.salt ?? randomBytes(saltLength);
  if (salt.length !== saltLength) throw new CryptoError("bad-length", `salt must be ${saltLength} bytes`);
  const encoded = emsaPssEncode(preparedMsg, pk.modulusBits - 1, salt);
  const m = os2ip(encoded);
  if (modInverse(m, pk.n) === undefined) throw new CryptoError("blind-rsa-bad-input", "the encoded message shares a factor with the modulus");
  let r = options.r;
  let inv: bigint | undefined;
  for (;;) {
    if (r === undefined) r = mod(os2ip(randomBytes(pk.modulusBytes + 16)), pk.n);
    inv = r > 0n ? modInverse(r, pk.n) : undefined;
    if (inv !== undefined) break;
    if (options.r !== undefined) throw new CryptoError("blind-rsa-bad-input", "the blinding factor is not invertible");
    r = undefined;
  }
  const x = os2ip(rsavp1(pk, i2osp(r, pk.modulusBytes)));
  return { blindedMsg: i2osp(mod(m * x, pk.n), pk.modulusBytes), inv };
}

/**
 * BlindSign (signer): RSASP1 of the blinded message, checked by RSAVP1 as the
 * RFC requires. Learns nothing about the message.
 */
export function blindRsaBlindSign(sk: BlindRsaPrivateKey, blindedMsg: Uint8Array): Uint8Array {
  const pk = sk.publicKey;
  checkRepresentative(pk, blindedMsg, "blinded message");
  const s = new Uint8Array(privateDecrypt({ key: sk.key, padding: constants.RSA_NO_PADDING }, blindedMsg));
  const back = rsavp1(pk, s);
  if (Buffer.compare(back, blindedMsg) !== 0) throw new CryptoError("blind-rsa-invalid-signature", "RSASP1 result does not verify (signing fault)");
  return s;
}

/** Finalize (client): unblinds and verifies; returns the RSASSA-PSS signature over the prepared message. */
export function blindRsaFinalize(
  pk: BlindRsaPublicKey,
  preparedMsg: Uint8Array,
  blindSig: Uint8Array,
  inv: bigint,
  saltLength = BLIND_RSA_SALT_LEN,
): Uint8Array {
  const z = checkRepresentative(pk, blindSig, "blind signature");
  const sig = i2osp(mod(z * inv, pk.n), pk.modulusBytes);
  if (!blindRsaVerify(pk, preparedMsg, sig, saltLength))
    throw new CryptoError("blind-rsa-invalid-signature", "the unblinded signature does not verify: the signer used another key");
  return sig;
}

/** Verify: RSASSA-PSS (SHA-384, MGF1-SHA-384) over the prepared message. */
export function blindRsaVerify(pk: BlindRsaPublicKey, preparedMsg: Uint8Array, signature: Uint8Array, saltLength = BLIND_RSA_SALT_LEN): boolean {
  if (signature.length !== pk.modulusBytes) return false;
  return verify("sha384", preparedMsg, { key: pk.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, signature);
}

/**
 * Ed25519 identity keys: generate, sign, verify, derive the public key.
 *
 * Owns the byte formats callers see: a secret key is the 32-byte RFC 8032
 * seed, a public key 32 bytes, a signature 64 bytes. Two backends compute the
 * same thing: node:crypto (OpenSSL, ~16x faster) and @noble/curves (portable);
 * `ed25519` is the one this runtime uses, `ed25519Backends` exposes both for
 * cross-checking. Verification is strict RFC 8032 / FIPS 186-5 on both
 * (noble with zip215: false; non-canonical S and small-order keys rejected),
 * and never throws: any malformed input simply does not verify.
 *
 * Trusts: the backend libraries; nothing about its inputs.
 */
import type { KeyObject } from "node:crypto";
import { ed25519 as nobleEd25519 } from "@noble/curves/ed25519.js";
import { CryptoError } from "./errors.js";
import { hexOf } from "../base/hex.js";
import { KeyObjectCache, concatBytes, nodeCrypto, randomBytes } from "./backend.js";
import type { BackendName } from "./backend.js";

export const ED25519_SECRET_KEY_LEN = 32;
export const ED25519_PUBLIC_KEY_LEN = 32;
export const ED25519_SIGNATURE_LEN = 64;

export interface Ed25519KeyPair {
  /** The 32-byte RFC 8032 seed. Keep secret. */
  secretKey: Uint8Array;
  /** The 32-byte public key. */
  publicKey: Uint8Array;
}

/** One implementation of Ed25519 over the byte formats above. */
export interface Ed25519Backend {
  readonly name: BackendName;
  publicKey(secretKey: Uint8Array): Uint8Array;
  sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

// The group order L; a signature's S must be below it (RFC 8032 §5.1.7).
const GROUP_ORDER = 2n ** 252n + 27742317777372353535851937790883648493n;

function checkSecretKey(secretKey: Uint8Array): void {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== ED25519_SECRET_KEY_LEN) {
    throw new CryptoError(
      "bad-key-length",
      `Ed25519 secret key must be a ${ED25519_SECRET_KEY_LEN}-byte seed Uint8Array, got ${describe(secretKey)}`,
    );
  }
}

function checkMessage(message: Uint8Array): void {
  if (!(message instanceof Uint8Array)) {
    throw new CryptoError("bad-length", `message must be a Uint8Array, got ${describe(message)}`);
  }
}

function describe(value: unknown): string {
  return value instanceof Uint8Array ? `${value.length} bytes` : typeof value;
}

/** Shape checks shared by both backends so they agree on every malformed input. */
function wellFormedForVerify(publicKey: unknown, message: unknown, signature: unknown): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_LEN) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== ED25519_SIGNATURE_LEN) return false;
  if (!(message instanceof Uint8Array)) return false;
  // S (little-endian, last 32 bytes) must be canonical: S < L.
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(signature[i] as number);
  return s < GROUP_ORDER;
}

export const nobleEd25519Backend: Ed25519Backend = {
  name: "noble",
  publicKey(secretKey) {
    checkSecretKey(secretKey);
    return nobleEd25519.getPublicKey(secretKey);
  },
  sign(secretKey, message) {
    checkSecretKey(secretKey);
    checkMessage(message);
    return nobleEd25519.sign(message, secretKey);
  },
  verify(publicKey, message, signature) {
    if (!wellFormedForVerify(publicKey, message, signature)) return false;
    try {
      return nobleEd25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },
};

// The DER prefix that wraps a raw 32-byte Ed25519 seed for OpenSSL (RFC 8410). Public keys go in and
// out as JWK instead: OpenSSL 3's DER encoder and decoder cost 33 and 12 µs a key here, JWK 1 and 5.
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

function makeNodeBackend(nc: NonNullable<typeof nodeCrypto>): Ed25519Backend {
  const privateKeys = new KeyObjectCache<KeyObject>();
  const publicKeys = new KeyObjectCache<KeyObject | null>();
  const toPrivate = (seed: Uint8Array): KeyObject =>
    nc.createPrivateKey({ key: Buffer.from(concatBytes(PKCS8_PREFIX, seed)), format: "der", type: "pkcs8" });
  const toPublic = (key: Uint8Array): KeyObject | null => {
    try {
      return nc.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("base64url") }, format: "jwk" });
    } catch {
      return null; // not a point on the curve: never verifies
    }
  };
  return {
    name: "node",
    publicKey(secretKey) {
      checkSecretKey(secretKey);
      const jwk = nc.createPublicKey(privateKeys.get(secretKey, toPrivate)).export({ format: "jwk" });
      return new Uint8Array(Buffer.from(jwk.x ?? "", "base64url"));
    },
    sign(secretKey, message) {
      checkSecretKey(secretKey);
      checkMessage(message);
      const sig = nc.sign(null, message, privateKeys.get(secretKey, toPrivate));
      return new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength);
    },
    verify(publicKey, message, signature) {
      if (!wellFormedForVerify(publicKey, message, signature)) return false;
      // Match noble's strict mode: small-order keys never verify on either backend.
      if (isSmallOrderEncoding(publicKey)) return false;
      const key = publicKeys.get(publicKey, toPublic);
      if (key === null) return false;
      try {
        return nc.verify(null, message, key, signature);
      } catch {
        return false;
      }
    },
  };
}

/**
 * The eight small-order points of edwards25519 (and their non-canonical
 * encodings with the sign bit set) as hex; noble's strict verify rejects
 * them, so the node backend does too.
 */
const SMALL_ORDER_KEYS = new Set(
  [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
  ],
);

function isSmallOrderEncoding(publicKey: Uint8Array): boolean {
  return SMALL_ORDER_KEYS.has(hexOf(publicKey));
}

/** node:crypto backend, or undefined where node:crypto is absent (browsers). */
export const nodeEd25519Backend: Ed25519Backend | undefined = nodeCrypto ? makeNodeBackend(nodeCrypto) : undefined;

/** Both backends, for benchmarks and cross-check tests. */
export const ed25519Backends: { node?: Ed25519Backend; noble: Ed25519Backend } = {
  noble: nobleEd25519Backend,
  ...(nodeEd25519Backend ? { node: nodeEd25519Backend } : {}),
};

/** The backend the functions below use. */
export const ed25519: Ed25519Backend = nodeEd25519Backend ?? nobleEd25519Backend;

/** A fresh random Ed25519 key pair. */
export function generateEd25519KeyPair(): Ed25519KeyPair {
  const secretKey = randomBytes(ED25519_SECRET_KEY_LEN);
  return { secretKey, publicKey: ed25519.publicKey(secretKey) };
}

/** The public key of a 32-byte seed. Throws CryptoError "bad-key-length". */
export function ed25519PublicKey(secretKey: Uint8Array): Uint8Array {
  return ed25519.publicKey(secretKey);
}

/** A 64-byte signature of `message`. Throws CryptoError "bad-key-length" for a bad seed. */
export function ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  return ed25519.sign(secretKey, message);
}

/** True when `signature` is valid for `message` under `publicKey`; false for any malformed input. */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return ed25519.verify(publicKey, message, signature);
}

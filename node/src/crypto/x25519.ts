/**
 * X25519 key agreement (RFC 7748) for link and onion keys.
 *
 * Owns the byte formats: 32-byte secret scalars (clamped by the function,
 * so any 32 random bytes are a valid secret), 32-byte public u-coordinates.
 * A shared secret that comes out all zero means the peer sent a low-order
 * point; it is always rejected with CryptoError "zero-shared-secret", on both
 * backends, so no caller can forget the check ntor and friends rely on.
 *
 * Trusts: the backend libraries; nothing about peer-supplied public keys.
 */
import type { KeyObject } from "node:crypto";
import { x25519 as nobleX25519 } from "@noble/curves/ed25519.js";
import { CryptoError } from "./errors.js";
import { KeyObjectCache, concatBytes, nodeCrypto, randomBytes } from "./backend.js";
import type { BackendName } from "./backend.js";

export const X25519_KEY_LEN = 32;

export interface X25519KeyPair {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

export interface X25519Backend {
  readonly name: BackendName;
  publicKey(secretKey: Uint8Array): Uint8Array;
  /** Raw X25519 output; may be all zero (callers use x25519SharedSecret, which rejects that). */
  scalarMult(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
}

function checkKey(key: Uint8Array, what: string): void {
  if (!(key instanceof Uint8Array) || key.length !== X25519_KEY_LEN) {
    throw new CryptoError(
      "bad-key-length",
      `X25519 ${what} must be a ${X25519_KEY_LEN}-byte Uint8Array, got ${key instanceof Uint8Array ? `${key.length} bytes` : typeof key}`,
    );
  }
}

const ZERO_32 = new Uint8Array(32);

export const nobleX25519Backend: X25519Backend = {
  name: "noble",
  publicKey(secretKey) {
    checkKey(secretKey, "secret key");
    return nobleX25519.getPublicKey(secretKey);
  },
  scalarMult(secretKey, publicKey) {
    checkKey(secretKey, "secret key");
    checkKey(publicKey, "public key");
    try {
      return nobleX25519.getSharedSecret(secretKey, publicKey);
    } catch {
      // noble throws exactly when the result is the all-zero point.
      return ZERO_32.slice();
    }
  },
};

// RFC 8410 DER wrapper for a raw X25519 secret (JWK import would need its public half too).
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);

/** The raw bytes of a base64url JWK member. */
function jwkBytes(member: string | undefined): Uint8Array {
  return new Uint8Array(Buffer.from(member ?? "", "base64url"));
}

/**
 * OpenSSL through node:crypto. Public keys go in and out as JWK, not DER:
 * OpenSSL 3's DER encoder took 33 µs to export a public key here and its
 * decoder 12 µs to import one, against 1 and 5 µs as JWK; a circuit build
 * does six of them per hop. Secrets stay DER (a JWK secret would be a string,
 * which cannot be wiped; `generateKeyPairSync` would save another 16 µs a
 * pair that way).
 */
function makeNodeBackend(nc: NonNullable<typeof nodeCrypto>): X25519Backend {
  // Long-lived onion and link keys hit this cache, and so does a fresh pair's
  // secret in the DHs that follow its creation; other keys miss it cheaply.
  const privateKeys = new KeyObjectCache<KeyObject>();
  const toPrivate = (key: Uint8Array): KeyObject =>
    nc.createPrivateKey({ key: Buffer.from(concatBytes(PKCS8_PREFIX, key)), format: "der", type: "pkcs8" });
  const toPublic = (key: Uint8Array): KeyObject =>
    nc.createPublicKey({ key: { kty: "OKP", crv: "X25519", x: Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("base64url") }, format: "jwk" });
  return {
    name: "node",
    publicKey(secretKey) {
      checkKey(secretKey, "secret key");
      return jwkBytes(nc.createPublicKey(privateKeys.get(secretKey, toPrivate)).export({ format: "jwk" }).x);
    },
    scalarMult(secretKey, publicKey) {
      checkKey(secretKey, "secret key");
      checkKey(publicKey, "public key");
      try {
        const out = nc.diffieHellman({ privateKey: privateKeys.get(secretKey, toPrivate), publicKey: toPublic(publicKey) });
        return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      } catch {
        // OpenSSL refuses to derive exactly when the result is all zero.
        return ZERO_32.slice();
      }
    },
  };
}

export const nodeX25519Backend: X25519Backend | undefined = nodeCrypto ? makeNodeBackend(nodeCrypto) : undefined;

export const x25519Backends: { node?: X25519Backend; noble: X25519Backend } = {
  noble: nobleX25519Backend,
  ...(nodeX25519Backend ? { node: nodeX25519Backend } : {}),
};

/** The backend the functions below use. */
export const x25519: X25519Backend = nodeX25519Backend ?? nobleX25519Backend;

/** A fresh random X25519 key pair. */
export function generateX25519KeyPair(backend: X25519Backend = x25519): X25519KeyPair {
  const secretKey = randomBytes(X25519_KEY_LEN);
  return { secretKey, publicKey: backend.publicKey(secretKey) };
}

/** The public key of a 32-byte secret. */
export function x25519PublicKey(secretKey: Uint8Array, backend: X25519Backend = x25519): Uint8Array {
  return backend.publicKey(secretKey);
}

/** True when all bytes are zero, in time independent of where a non-zero byte is. */
export function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i] as number;
  return acc === 0;
}

/**
 * The X25519 shared secret of our secret and a peer's public key. Throws
 * CryptoError "zero-shared-secret" when the peer's key is a low-order point.
 */
export function x25519SharedSecret(secretKey: Uint8Array, peerPublicKey: Uint8Array, backend: X25519Backend = x25519): Uint8Array {
  const shared = backend.scalarMult(secretKey, peerPublicKey);
  if (isAllZero(shared)) {
    throw new CryptoError("zero-shared-secret", "X25519 shared secret is all zero: the peer's public key is a low-order point");
  }
  return shared;
}

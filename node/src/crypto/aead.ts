/**
 * Authenticated encryption with associated data: PSP's one AEAD.
 *
 * Owns the choice of algorithm and the byte format: sealed = ciphertext ‖
 * 16-byte tag, a 32-byte key and a 12-byte nonce (never reuse a nonce under
 * one key; callers either use a counter or a random nonce for one-shot keys).
 *
 * The algorithm is ChaCha20-Poly1305 (RFC 8439), chosen by measurement
 * (scripts/bench/crypto.ts): AES-256-GCM is faster under node:crypto with
 * AES-NI, but the portable @noble code runs ChaCha20-Poly1305 several times
 * faster than GCM, and browsers (the client library) only have the portable
 * code; with node:crypto both are far above what any PSP path needs. Both
 * candidates stay implemented here, on both backends, so the benchmark can
 * keep re-checking the choice.
 *
 * Trusts: nothing about sealed input; any failure to authenticate is a
 * CryptoError "aead-auth-failed", and no plaintext is released.
 */
import { gcm } from "@noble/ciphers/aes.js";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { CryptoError } from "./errors.js";
import { nodeCrypto } from "./backend.js";
import type { BackendName } from "./backend.js";

export const AEAD_KEY_LEN = 32;
export const AEAD_NONCE_LEN = 12;
export const AEAD_TAG_LEN = 16;

export type AeadAlgorithm = "chacha20-poly1305" | "aes-256-gcm";
/** The AEAD every PSP format uses. */
export const AEAD_ALGORITHM = "chacha20-poly1305" satisfies AeadAlgorithm;

export interface AeadBackend {
  readonly name: BackendName;
  readonly algorithm: AeadAlgorithm;
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** Returns undefined when authentication fails. */
  open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | undefined;
}

function nobleBackend(algorithm: AeadAlgorithm): AeadBackend {
  const make = algorithm === "chacha20-poly1305" ? chacha20poly1305 : gcm;
  return {
    name: "noble",
    algorithm,
    seal: (key, nonce, plaintext, aad) => make(key, nonce, aad).encrypt(plaintext),
    open: (key, nonce, sealed, aad) => {
      try {
        return make(key, nonce, aad).decrypt(sealed);
      } catch {
        return undefined;
      }
    },
  };
}

function nodeBackend(nc: NonNullable<typeof nodeCrypto>, algorithm: AeadAlgorithm): AeadBackend {
  const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return {
    name: "node",
    algorithm,
    seal(key, nonce, plaintext, aad) {
      const cipher = nc.createCipheriv(algorithm as "chacha20-poly1305", key, nonce, { authTagLength: AEAD_TAG_LEN });
      cipher.setAAD(aad, { plaintextLength: plaintext.length });
      const out = new Uint8Array(plaintext.length + AEAD_TAG_LEN);
      const head = cipher.update(plaintext);
      out.set(head, 0);
      const tail = cipher.final();
      out.set(tail, head.length);
      out.set(cipher.getAuthTag(), plaintext.length);
      return out;
    },
    open(key, nonce, sealed, aad) {
      const ctLen = sealed.length - AEAD_TAG_LEN;
      const decipher = nc.createDecipheriv(algorithm as "chacha20-poly1305", key, nonce, { authTagLength: AEAD_TAG_LEN });
      decipher.setAuthTag(sealed.subarray(ctLen));
      decipher.setAAD(aad, { plaintextLength: ctLen });
      const head = decipher.update(sealed.subarray(0, ctLen));
      try {
        const tail = decipher.final();
        if (tail.length === 0) return view(head);
        const out = new Uint8Array(ctLen);
        out.set(head, 0);
        out.set(tail, head.length);
        return out;
      } catch {
        head.fill(0); // unauthenticated plaintext never leaves this function
        return undefined;
      }
    },
  };
}

type BackendPair = { node?: AeadBackend; noble: AeadBackend };

function pair(algorithm: AeadAlgorithm): BackendPair {
  return {
    noble: nobleBackend(algorithm),
    ...(nodeCrypto ? { node: nodeBackend(nodeCrypto, algorithm) } : {}),
  };
}

/** Every candidate on every backend, for benchmarks and cross-checks. */
export const aeadBackends: Record<AeadAlgorithm, BackendPair> = {
  "chacha20-poly1305": pair("chacha20-poly1305"),
  "aes-256-gcm": pair("aes-256-gcm"),
};

const defaultPair = aeadBackends[AEAD_ALGORITHM];
/** The backend aeadSeal/aeadOpen use. */
export const aead: AeadBackend = defaultPair.node ?? defaultPair.noble;

const EMPTY = new Uint8Array(0);

function checkInputs(key: Uint8Array, nonce: Uint8Array, data: Uint8Array, aad: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== AEAD_KEY_LEN) {
    throw new CryptoError("bad-key-length", `AEAD key must be ${AEAD_KEY_LEN} bytes`);
  }
  if (!(nonce instanceof Uint8Array) || nonce.length !== AEAD_NONCE_LEN) {
    throw new CryptoError("bad-key-length", `AEAD nonce must be ${AEAD_NONCE_LEN} bytes`);
  }
  if (!(data instanceof Uint8Array) || !(aad instanceof Uint8Array)) {
    throw new CryptoError("bad-length", "AEAD data and associated data must be Uint8Arrays");
  }
}

/** Encrypts and authenticates: returns ciphertext ‖ 16-byte tag. */
export function aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array = EMPTY, backend: AeadBackend = aead): Uint8Array {
  checkInputs(key, nonce, plaintext, aad);
  return backend.seal(key, nonce, plaintext, aad);
}

/** Authenticates and decrypts; throws CryptoError "aead-auth-failed" on any mismatch. */
export function aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array = EMPTY, backend: AeadBackend = aead): Uint8Array {
  checkInputs(key, nonce, sealed, aad);
  if (sealed.length < AEAD_TAG_LEN) {
    throw new CryptoError("aead-auth-failed", `sealed data is ${sealed.length} bytes, shorter than the ${AEAD_TAG_LEN}-byte tag`);
  }
  const plaintext = backend.open(key, nonce, sealed, aad);
  if (plaintext === undefined) {
    throw new CryptoError("aead-auth-failed", "AEAD authentication failed: wrong key, nonce or associated data, or the data was modified");
  }
  return plaintext;
}

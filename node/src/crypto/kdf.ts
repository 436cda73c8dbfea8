/**
 * SHA-256, HMAC-SHA256 and HKDF-SHA256 (RFC 5869).
 *
 * Owns the key-derivation primitives that ntor, relay crypto and stream crypto
 * build on. Small inputs dominate (ntor hashes ~200 bytes), where the per-call
 * overhead matters more than throughput; node:crypto is used when present
 * (see scripts/bench/crypto.ts), @noble/hashes otherwise. Both give identical
 * bytes (tested).
 */
import { hkdf as nobleHkdf } from "@noble/hashes/hkdf.js";
import { hmac as nobleHmac } from "@noble/hashes/hmac.js";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { CryptoError } from "./errors.js";
import { nodeCrypto } from "./backend.js";
import type { BackendName } from "./backend.js";

export const SHA256_LEN = 32;
/** RFC 5869: at most 255 blocks of output. */
export const HKDF_SHA256_MAX_LEN = 255 * SHA256_LEN;

export interface HashBackend {
  readonly name: BackendName;
  sha256(data: Uint8Array): Uint8Array;
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array;
}

export const nobleHashBackend: HashBackend = {
  name: "noble",
  sha256: (data) => nobleSha256(data),
  hmacSha256: (key, data) => nobleHmac(nobleSha256, key, data),
  hkdfSha256: (ikm, salt, info, length) => nobleHkdf(nobleSha256, ikm, salt, info, length),
};

function makeNodeBackend(nc: NonNullable<typeof nodeCrypto>): HashBackend {
  const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return {
    name: "node",
    sha256: (data) => view(nc.createHash("sha256").update(data).digest()),
    hmacSha256: (key, data) => view(nc.createHmac("sha256", key).update(data).digest()),
    hkdfSha256: (ikm, salt, info, length) => {
      // hkdfSync limits info to 1024 bytes; noble has no such limit, so fall back.
      if (info.length > 1024) return nobleHashBackend.hkdfSha256(ikm, salt, info, length);
      return new Uint8Array(nc.hkdfSync("sha256", ikm, salt, info, length));
    },
  };
}

export const nodeHashBackend: HashBackend | undefined = nodeCrypto ? makeNodeBackend(nodeCrypto) : undefined;

export const hashBackends: { node?: HashBackend; noble: HashBackend } = {
  noble: nobleHashBackend,
  ...(nodeHashBackend ? { node: nodeHashBackend } : {}),
};

/** The backend the functions below use. */
export const hashes: HashBackend = nodeHashBackend ?? nobleHashBackend;

function checkBytes(value: Uint8Array, what: string): void {
  if (!(value instanceof Uint8Array)) throw new CryptoError("bad-length", `${what} must be a Uint8Array, got ${typeof value}`);
}

export function sha256(data: Uint8Array): Uint8Array {
  checkBytes(data, "data");
  return hashes.sha256(data);
}

export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  checkBytes(key, "HMAC key");
  checkBytes(data, "data");
  return hashes.hmacSha256(key, data);
}

/**
 * HKDF-SHA256: extract with `salt`, expand with `info` to `length` bytes
 * (1..8160). An empty salt means RFC 5869's default of 32 zero bytes.
 */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number, backend: HashBackend = hashes): Uint8Array {
  checkBytes(ikm, "HKDF input key material");
  checkBytes(salt, "HKDF salt");
  checkBytes(info, "HKDF info");
  if (!Number.isInteger(length) || length < 1 || length > HKDF_SHA256_MAX_LEN) {
    throw new CryptoError("bad-length", `HKDF-SHA256 output length must be an integer in 1..${HKDF_SHA256_MAX_LEN}, got ${length}`);
  }
  return backend.hkdfSha256(ikm, salt, info, length);
}

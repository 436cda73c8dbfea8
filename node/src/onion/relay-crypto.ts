/**
 * Per-hop relay crypto: AES-128-CTR layers and running SHA-256 digests.
 *
 * Owns the onion layers of relay cells. Each hop of a circuit shares with the
 * client, per direction, one AES-128-CTR keystream (IV zero: each key is used
 * for exactly one keystream) and one running SHA-256 digest seeded with a
 * 32-byte secret. Key material from the ntor KDF is split as
 * Df (32) ‖ Db (32) ‖ Kf (16) ‖ Kb (16) (tor-spec 5.2.2, SHA-256 digests).
 *
 * Digest rule: the digest of a relay payload is the first 4 bytes of
 * SHA-256(seed ‖ every earlier payload of this hop and direction ‖ this payload),
 * each payload hashed with its 4-byte digest field zeroed. A payload is
 * "recognized" at a hop only when its recognized field is 0 and the digest
 * matches; only then is it added to that hop's running digest.
 *
 * Batching: `applyKeystream` runs one cipher call over the concatenation of
 * many payloads of the same circuit and direction (7x faster than one call per
 * cell). Cipher and hash objects live as long as the circuit.
 *
 * Trusts: node:crypto. Trusts nothing about payload contents.
 */
import { createCipheriv, createHash, timingSafeEqual } from "node:crypto";
import type { Hash } from "node:crypto";

type Cipheriv = ReturnType<typeof createCipheriv>;
import { CIPHER_KEY_LEN, DIGEST_SEED_LEN, HOP_KEY_MATERIAL_LEN } from "./constants.js";
import { CircuitError } from "./errors.js";

/** Bytes of a relay payload (the whole cell payload). */
export const RELAY_PAYLOAD_LEN = 507;
export const RECOGNIZED_OFFSET = 0;
export const DIGEST_OFFSET = 4;
export const DIGEST_LEN = 4;

const ZERO_IV = Buffer.alloc(16);

/** A plain Uint8Array view of a Buffer, so `.slice()` downstream copies as it does for every other Uint8Array. */
function asUint8Array(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** The four per-hop secrets, split from the ntor key material. */
export interface HopKeys {
  forwardDigestSeed: Uint8Array;
  backwardDigestSeed: Uint8Array;
  forwardKey: Uint8Array;
  backwardKey: Uint8Array;
}

/** Splits ntor key material (at least 96 bytes) into Df, Db, Kf, Kb. */
export function splitHopKeys(material: Uint8Array): HopKeys {
  if (!(material instanceof Uint8Array) || material.length < HOP_KEY_MATERIAL_LEN) {
    throw new CircuitError(
      "bad-argument",
      `hop key material must be at least ${HOP_KEY_MATERIAL_LEN} bytes (ask ntor for keyLength ${HOP_KEY_MATERIAL_LEN})`,
    );
  }
  let o = 0;
  const take = (n: number) => material.slice(o, (o += n));
  return {
    forwardDigestSeed: take(DIGEST_SEED_LEN),
    backwardDigestSeed: take(DIGEST_SEED_LEN),
    forwardKey: take(CIPHER_KEY_LEN),
    backwardKey: take(CIPHER_KEY_LEN),
  };
}

/**
 * One direction of one hop: a keystream and a running digest. The same type
 * serves both ends: the originator calls `seal` then `applyKeystream`; the
 * recipient calls `applyKeystream` then `recognize`.
 */
export class RelayLayer {
  private readonly cipher: Cipheriv;
  private digest: Hash;

  constructor(key: Uint8Array, digestSeed: Uint8Array) {
    if (key.length !== CIPHER_KEY_LEN || digestSeed.length !== DIGEST_SEED_LEN) {
      throw new CircuitError("bad-argument", `relay layer needs a ${CIPHER_KEY_LEN}-byte key and a ${DIGEST_SEED_LEN}-byte digest seed`);
    }
    this.cipher = createCipheriv("aes-128-ctr", key, ZERO_IV);
    this.digest = createHash("sha256").update(digestSeed);
  }

  /**
   * XORs the next `bytes.length` keystream bytes into a new buffer. Pass many
   * payloads concatenated to pay for one cipher call; CTR never buffers, so the
   * output has the input's length.
   */
  applyKeystream(bytes: Uint8Array): Uint8Array {
    return asUint8Array(this.cipher.update(bytes));
  }

  /** Applies the keystream to each payload in one cipher call; returns views into one new buffer. */
  applyKeystreamBatch(payloads: readonly Uint8Array[]): Uint8Array[] {
    if (payloads.length === 1) return [this.applyKeystream(payloads[0] as Uint8Array)];
    const out = asUint8Array(this.cipher.update(Buffer.concat(payloads)));
    const views: Uint8Array[] = [];
    let o = 0;
    for (const p of payloads) {
      views.push(out.subarray(o, o + p.length));
      o += p.length;
    }
    return views;
  }

  /**
   * Writes the digest field of a plaintext payload this side originates
   * (recognized must already be 0) and adds it to the running digest.
   * Returns the full 32-byte running digest after this payload.
   */
  seal(payload: Uint8Array): Buffer {
    payload.fill(0, DIGEST_OFFSET, DIGEST_OFFSET + DIGEST_LEN);
    this.digest.update(payload);
    const full = this.digest.copy().digest();
    payload.set(full.subarray(0, DIGEST_LEN), DIGEST_OFFSET);
    return full;
  }

  /**
   * True when the (decrypted) payload is addressed to this hop: recognized is
   * zero and the digest matches. On a match the payload joins the running
   * digest; otherwise the digest state is untouched. The payload is left as it
   * came in.
   */
  recognize(payload: Uint8Array): boolean {
    if (payload[RECOGNIZED_OFFSET] !== 0 || payload[RECOGNIZED_OFFSET + 1] !== 0) return false;
    const claimed = Buffer.from(payload.subarray(DIGEST_OFFSET, DIGEST_OFFSET + DIGEST_LEN));
    payload.fill(0, DIGEST_OFFSET, DIGEST_OFFSET + DIGEST_LEN);
    const candidate = this.digest.copy();
    candidate.update(payload);
    const computed = candidate.copy().digest().subarray(0, DIGEST_LEN);
    payload.set(claimed, DIGEST_OFFSET);
    if (!timingSafeEqual(claimed, computed)) return false;
    this.digest = candidate;
    return true;
  }
}

/** Both directions of one hop. */
export interface HopCrypto {
  /** Client → relay: the client seals+encrypts, the relay decrypts+recognizes. */
  forward: RelayLayer;
  /** Relay → client: the relay seals+encrypts, the client decrypts+recognizes. */
  backward: RelayLayer;
}

/** Builds a hop's crypto from ntor key material (same call on client and relay). */
export function hopCryptoFromKeyMaterial(material: Uint8Array): HopCrypto {
  const k = splitHopKeys(material);
  return {
    forward: new RelayLayer(k.forwardKey, k.forwardDigestSeed),
    backward: new RelayLayer(k.backwardKey, k.backwardDigestSeed),
  };
}

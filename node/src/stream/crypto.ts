/**
 * Chunk encryption of a stream: what makes media opaque to every node on
 * its path (docs/spec/streaming.md "Chunk crypto").
 *
 * Owns: making stream keys and ids, per-epoch keys (HKDF-SHA256 of the
 * stream key, salt = stream id: a new key every 65,536 chunks), and sealing
 * and opening chunks with node:crypto. What the seal is made of (epoch of a
 * seq, HKDF info, nonce 0^4 ‖ seq, AAD "psp-stream-chunk-v1" ‖ stream id ‖
 * seq, plaintext producer time (8, ms) ‖ media) is media-format.ts's, which
 * the page player opens chunks with too. The time rides inside the seal, so
 * nodes learn nothing from it and viewers can measure delay; a chunk moved
 * to another stream or position does not open.
 *
 * The AEAD is PSP's one AEAD (crypto/aead.ts, ChaCha20-Poly1305). On this
 * machine node:crypto seals 16 KiB chunks at 700-900 MB/s with either it or
 * AES-256-GCM (measured, within noise of each other), so the project's
 * choice stands.
 *
 * Trusts nothing about sealed input: any failure is "chunk-auth-failed".
 */
import { randomBytes } from "node:crypto";
import { aeadOpen, aeadSeal } from "../crypto/aead.js";
import { CryptoError } from "../crypto/errors.js";
import { hkdfSha256 } from "../crypto/kdf.js";
import {
  CHUNK_TAG_LEN,
  CHUNK_TIME_LEN,
  STREAM_ID_LEN,
  STREAM_KEY_LEN,
  chunkAad,
  chunkNonce,
  chunkPlaintext,
  epochKeyInfo,
  epochOf,
  isChunkSeq,
  splitChunkPlaintext,
} from "./media-format.js";
import { StreamMediaError } from "./media-errors.js";

export { CHUNK_TIME_LEN, EPOCH_BITS, STREAM_KEY_LEN, chunkAad, chunkNonce, epochOf } from "./media-format.js";

export function generateStreamKey(): Uint8Array {
  return new Uint8Array(randomBytes(STREAM_KEY_LEN));
}

export function generateStreamId(): Uint8Array {
  return new Uint8Array(randomBytes(STREAM_ID_LEN));
}

/** The key of one epoch. */
export function epochKey(streamKey: Uint8Array, streamId: Uint8Array, epoch: number): Uint8Array {
  return hkdfSha256(streamKey, streamId, epochKeyInfo(epoch), 32);
}

export interface OpenedChunk {
  seq: bigint;
  /** The producer's clock (ms) when it sealed the chunk. */
  producedAt: number;
  media: Uint8Array;
}

/**
 * Seals and opens the chunks of one stream, caching the current epoch key.
 * Both ends make one from the ticket's stream id and key.
 */
export class StreamCipher {
  readonly streamId: Uint8Array;
  private readonly streamKey: Uint8Array;
  private cachedEpoch = -1;
  private cachedKey: Uint8Array = new Uint8Array(32);

  constructor(streamId: Uint8Array, streamKey: Uint8Array) {
    if (!(streamId instanceof Uint8Array) || streamId.length !== STREAM_ID_LEN)
      throw new StreamMediaError("bad-argument", `a stream id is ${STREAM_ID_LEN} bytes`);
    if (!(streamKey instanceof Uint8Array) || streamKey.length !== STREAM_KEY_LEN)
      throw new StreamMediaError("bad-argument", `a stream key is ${STREAM_KEY_LEN} bytes`);
    this.streamId = streamId.slice();
    this.streamKey = streamKey.slice();
  }

  private keyFor(seq: bigint): Uint8Array {
    const epoch = epochOf(seq);
    if (epoch !== this.cachedEpoch) {
      this.cachedKey = epochKey(this.streamKey, this.streamId, epoch);
      this.cachedEpoch = epoch;
    }
    return this.cachedKey;
  }

  /** The sealed bytes of chunk `seq`: ciphertext of `time ‖ media`, then the 16-byte tag. */
  seal(seq: bigint, media: Uint8Array, producedAt: number): Uint8Array {
    if (!isChunkSeq(seq)) throw new StreamMediaError("bad-argument", "seq must be a 64-bit unsigned integer");
    return aeadSeal(this.keyFor(seq), chunkNonce(seq), chunkPlaintext(media, producedAt), chunkAad(this.streamId, seq));
  }

  /** Opens chunk `seq`; "chunk-auth-failed" when it was altered, is of another stream or position, or was sealed under another key. */
  open(seq: bigint, sealed: Uint8Array): OpenedChunk {
    if (sealed.length < CHUNK_TAG_LEN + CHUNK_TIME_LEN)
      throw new StreamMediaError("chunk-auth-failed", `a sealed chunk is at least ${CHUNK_TAG_LEN + CHUNK_TIME_LEN} bytes`);
    let plaintext: Uint8Array;
    try {
      plaintext = aeadOpen(this.keyFor(seq), chunkNonce(seq), sealed, chunkAad(this.streamId, seq));
    } catch (err) {
      if (err instanceof CryptoError) throw new StreamMediaError("chunk-auth-failed", `chunk ${seq} does not open under this stream's key`, { cause: err });
      throw err;
    }
    return { seq, ...splitChunkPlaintext(plaintext) };
  }
}

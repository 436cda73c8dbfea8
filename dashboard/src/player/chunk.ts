/**
 * Opening a stream's chunks in the page, exactly as node/src/stream/crypto.ts
 * seals them (docs/spec/streaming.md "Chunk crypto"): the seal's inputs come
 * from the node's node/src/stream/media-format.ts (epoch, HKDF info, nonce,
 * AAD, plaintext layout), the primitives from @noble instead of node:crypto
 * (HKDF-SHA256, ChaCha20-Poly1305). Also the gateway's binary framing
 * (api/stream-gateway.ts): seq (8, big-endian) ‖ sealed chunk.
 *
 * Trusts nothing: a message too short is "malformed", a chunk that does not
 * open is "chunk-auth-failed" (the player drops it). Cross-checked against
 * the node's sealing in test/unit/stream-page-player.test.ts.
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  CHUNK_TAG_LEN,
  CHUNK_TIME_LEN,
  STREAM_ID_LEN,
  STREAM_KEY_LEN,
  chunkAad,
  chunkNonce,
  epochKeyInfo,
  epochOf,
  isChunkSeq,
  splitChunkPlaintext,
} from "../../../node/src/stream/media-format.js";
import { PlayerError } from "./errors.js";

/** The largest sealed chunk a CHUNK frame carries (65,536 − TYPE − seq). */
export const MAX_SEALED_BYTES = 65527;
/** seq (8) before the sealed chunk in a gateway message. */
const SEQ_LEN = 8;

export interface PageChunk {
  seq: bigint;
  /** The producer's clock (ms) when it sealed the chunk. */
  producedAt: number;
  media: Uint8Array;
}

export interface GatewayChunk {
  seq: bigint;
  sealed: Uint8Array;
}

/** One binary gateway message: seq (8, big-endian) ‖ sealed chunk (16 + 8 .. MAX_SEALED_BYTES). */
export function parseGatewayChunk(message: Uint8Array): GatewayChunk {
  const least = SEQ_LEN + CHUNK_TAG_LEN + CHUNK_TIME_LEN;
  if (message.length < least || message.length > SEQ_LEN + MAX_SEALED_BYTES)
    throw new PlayerError("malformed", `a gateway chunk message is ${least}..${SEQ_LEN + MAX_SEALED_BYTES} bytes, not ${message.length}`);
  const seq = new DataView(message.buffer, message.byteOffset, SEQ_LEN).getBigUint64(0);
  return { seq, sealed: message.subarray(SEQ_LEN) };
}

export function pageEpochKey(streamKey: Uint8Array, streamId: Uint8Array, epoch: number): Uint8Array {
  return hkdf(sha256, streamKey, streamId, epochKeyInfo(epoch), 32);
}

/** Opens the chunks of one stream, caching the current epoch's key. */
export class ChunkOpener {
  private cachedEpoch = -1;
  private cachedKey: Uint8Array = new Uint8Array(32);

  constructor(
    private readonly streamId: Uint8Array,
    private readonly streamKey: Uint8Array,
  ) {
    if (streamId.length !== STREAM_ID_LEN || streamKey.length !== STREAM_KEY_LEN)
      throw new PlayerError("bad-ticket", `a stream id is ${STREAM_ID_LEN} bytes and a stream key ${STREAM_KEY_LEN}`);
  }

  open(seq: bigint, sealed: Uint8Array): PageChunk {
    if (!isChunkSeq(seq)) throw new PlayerError("chunk-auth-failed", "seq is a 64-bit unsigned integer");
    if (sealed.length < CHUNK_TAG_LEN + CHUNK_TIME_LEN)
      throw new PlayerError("chunk-auth-failed", `a sealed chunk is at least ${CHUNK_TAG_LEN + CHUNK_TIME_LEN} bytes`);
    const epoch = epochOf(seq);
    if (epoch !== this.cachedEpoch) {
      this.cachedKey = pageEpochKey(this.streamKey, this.streamId, epoch);
      this.cachedEpoch = epoch;
    }
    let plaintext: Uint8Array;
    try {
      plaintext = chacha20poly1305(this.cachedKey, chunkNonce(seq), chunkAad(this.streamId, seq)).decrypt(sealed);
    } catch {
      throw new PlayerError("chunk-auth-failed", `chunk ${seq} does not open under this ticket's key`);
    }
    return { seq, ...splitChunkPlaintext(plaintext) };
  }
}

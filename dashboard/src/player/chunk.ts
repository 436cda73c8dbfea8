/**
 * Opening a stream's chunks in the page, exactly as node/src/stream/crypto.ts
 * seals them (docs/spec/streaming.md "Chunk crypto"), with @noble instead of
 * node:crypto: epoch key = HKDF-SHA256(ikm = stream key, salt = stream id,
 * info = "psp-stream-epoch-v1" ‖ epoch (4, big-endian), 32), epoch = seq >>
 * 16; ChaCha20-Poly1305 with nonce 0^4 ‖ seq (8) and AAD
 * "psp-stream-chunk-v1" ‖ stream id (16) ‖ seq (8); plaintext = producer
 * time (8, ms) ‖ media. Also the gateway's binary framing
 * (api/stream-gateway.ts): seq (8, big-endian) ‖ sealed chunk.
 *
 * Trusts nothing: a message too short is "malformed", a chunk that does not
 * open is "chunk-auth-failed" (the player drops it). Cross-checked against
 * the node's sealing in test/unit/stream-page-player.test.ts.
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { PlayerError } from "./errors.js";

const EPOCH_BITS = 16n;
const TAG_LEN = 16;
const TIME_LEN = 8;
const EPOCH_INFO = new TextEncoder().encode("psp-stream-epoch-v1");
const AAD_PREFIX = new TextEncoder().encode("psp-stream-chunk-v1");
/** The largest sealed chunk a CHUNK frame carries (65,536 − TYPE − seq). */
export const MAX_SEALED_BYTES = 65527;

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
  if (message.length < 8 + TAG_LEN + TIME_LEN || message.length > 8 + MAX_SEALED_BYTES)
    throw new PlayerError("malformed", `a gateway chunk message is ${8 + TAG_LEN + TIME_LEN}..${8 + MAX_SEALED_BYTES} bytes, not ${message.length}`);
  const seq = new DataView(message.buffer, message.byteOffset, 8).getBigUint64(0);
  return { seq, sealed: message.subarray(8) };
}

function be64(n: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n);
  return b;
}

export function pageEpochKey(streamKey: Uint8Array, streamId: Uint8Array, epoch: number): Uint8Array {
  const info = new Uint8Array(EPOCH_INFO.length + 4);
  info.set(EPOCH_INFO);
  new DataView(info.buffer).setUint32(EPOCH_INFO.length, epoch);
  return hkdf(sha256, streamKey, streamId, info, 32);
}

function nonceOf(seq: bigint): Uint8Array {
  const n = new Uint8Array(12);
  n.set(be64(seq), 4);
  return n;
}

function aadOf(streamId: Uint8Array, seq: bigint): Uint8Array {
  const aad = new Uint8Array(AAD_PREFIX.length + 16 + 8);
  aad.set(AAD_PREFIX);
  aad.set(streamId, AAD_PREFIX.length);
  aad.set(be64(seq), AAD_PREFIX.length + 16);
  return aad;
}

/** Opens the chunks of one stream, caching the current epoch's key. */
export class ChunkOpener {
  private cachedEpoch = -1;
  private cachedKey: Uint8Array = new Uint8Array(32);

  constructor(
    private readonly streamId: Uint8Array,
    private readonly streamKey: Uint8Array,
  ) {
    if (streamId.length !== 16 || streamKey.length !== 32) throw new PlayerError("bad-ticket", "a stream id is 16 bytes and a stream key 32");
  }

  open(seq: bigint, sealed: Uint8Array): PageChunk {
    if (seq < 0n || seq > 0xffffffffffffffffn) throw new PlayerError("chunk-auth-failed", "seq is a 64-bit unsigned integer");
    if (sealed.length < TAG_LEN + TIME_LEN) throw new PlayerError("chunk-auth-failed", `a sealed chunk is at least ${TAG_LEN + TIME_LEN} bytes`);
    const epoch = Number(seq >> EPOCH_BITS);
    if (epoch !== this.cachedEpoch) {
      this.cachedKey = pageEpochKey(this.streamKey, this.streamId, epoch);
      this.cachedEpoch = epoch;
    }
    let plaintext: Uint8Array;
    try {
      plaintext = chacha20poly1305(this.cachedKey, nonceOf(seq), aadOf(this.streamId, seq)).decrypt(sealed);
    } catch {
      throw new PlayerError("chunk-auth-failed", `chunk ${seq} does not open under this ticket's key`);
    }
    const producedAt = Number(new DataView(plaintext.buffer, plaintext.byteOffset, 8).getBigUint64(0));
    return { seq, producedAt, media: plaintext.subarray(TIME_LEN) };
  }
}

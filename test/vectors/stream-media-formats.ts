/**
 * Fixed inputs and encodings of the streaming media path's formats, for
 * test/vectors/stream-media.json (written by scripts/gen-vectors.ts, checked
 * by test/unit/stream-vectors.test.ts): every stream-link frame, a NODE_PROOF
 * transcript and signature for a fixed EKM, epoch keys, a sealed chunk and a
 * ticket.
 */
import { ed25519PublicKey, ed25519Sign } from "../../node/src/crypto/ed25519.js";
import { epochKey, StreamCipher } from "../../node/src/stream/crypto.js";
import { encodeFrame } from "../../node/src/stream/frames.js";
import type { StreamFrame } from "../../node/src/stream/frames.js";
import { streamProofTranscript } from "../../node/src/stream/stream-link.js";
import { encodeTicket } from "../../node/src/stream/ticket.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));

export const streamInputs = {
  nodeSeed: "a1".repeat(32),
  ekm: "e0".repeat(32),
  streamId: "00112233445566778899aabbccddeeff",
  streamKey: "5c".repeat(32),
  seq: "65537",
  producedAt: 1_790_000_000_000,
  media: "47400010" + "ff".repeat(12),
  landingSeed: "b2".repeat(32),
  host: "127.0.0.1",
  port: 7000,
};

export function streamFrameSamples(): { name: string; frame: StreamFrame }[] {
  const id = unhex(streamInputs.streamId);
  const node = ed25519PublicKey(unhex(streamInputs.nodeSeed));
  return [
    { name: "NODE_PROOF", frame: { type: "node-proof", identity: node, signature: new Uint8Array(64).fill(0x33) } },
    { name: "PUBLISH", frame: { type: "publish", streamId: id, token: new Uint8Array(32).fill(0x44) } },
    { name: "ATTACH", frame: { type: "attach", streamId: id, session: Uint8Array.of(0xa1, 0x01, 0x02) } },
    { name: "FEED", frame: { type: "feed", streamId: id } },
    { name: "ACCEPT", frame: { type: "accept", streamId: id } },
    { name: "REFUSE", frame: { type: "refuse", kind: "bad-session", text: "session id expired" } },
    { name: "CHUNK", frame: { type: "chunk", seq: 65537n, sealed: new Uint8Array(24).fill(0x55) } },
    { name: "LOAD", frame: { type: "load", viewers: 7, spareKbps: 50_000 } },
    { name: "POINTS_REQUEST", frame: { type: "points-request", streamId: id } },
    { name: "POINTS", frame: { type: "points", points: [{ identity: node, host: "127.0.0.1", port: 7000, load: 3 }] } },
    { name: "NEED_NODES", frame: { type: "need-nodes", count: 2 } },
    { name: "ADD_NODES", frame: { type: "add-nodes", nodes: [{ identity: node, host: "d.example", port: 443, load: 0 }] } },
    { name: "END", frame: { type: "end" } },
  ];
}

export function streamMediaVector(): Record<string, unknown> {
  const i = streamInputs;
  const node = ed25519PublicKey(unhex(i.nodeSeed));
  const transcript = streamProofTranscript("responder", unhex(i.ekm), node);
  const id = unhex(i.streamId);
  const key = unhex(i.streamKey);
  return {
    format: "stream media path",
    spec: "docs/spec/streaming.md Frames, Stream links, Chunk crypto, Tickets",
    description:
      "Every stream-link frame (LEN (4) ‖ TYPE (1) ‖ BODY); a responder NODE_PROOF transcript (link AUTH transcript with the ALPN id as both versions bodies) and its Ed25519 signature for a fixed EKM; epoch keys 0 and 1; chunk 65537 (epoch 1) sealed with ChaCha20-Poly1305, nonce 0^4 ‖ seq, aad 'psp-stream-chunk-v1' ‖ stream id ‖ seq, plaintext producer time (8) ‖ media; a ticket.",
    input: i,
    frames: streamFrameSamples().map(({ name, frame }) => ({ name, hex: hex(encodeFrame(frame)) })),
    nodeIdentity: hex(node),
    proofTranscript: hex(transcript),
    proofSignature: hex(ed25519Sign(unhex(i.nodeSeed), transcript)),
    epochKey0: hex(epochKey(key, id, 0)),
    epochKey1: hex(epochKey(key, id, 1)),
    sealedChunk: hex(new StreamCipher(id, key).seal(BigInt(i.seq), unhex(i.media), i.producedAt)),
    ticket: encodeTicket({ streamId: id, streamKey: key, landing: ed25519PublicKey(unhex(i.landingSeed)), host: i.host, port: i.port }),
  };
}

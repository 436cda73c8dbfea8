/**
 * The media path's pure parts: frames (every type round-trips; bad lengths,
 * unknown types, oversized LENs are typed refusals), chunk crypto (tamper,
 * wrong stream id, wrong seq, wrong key → refused; epoch keys rotate), tickets
 * (round trip; a mistyped or cut ticket is "bad-ticket"), the fan-out engine
 * (late chunks, bounded queues and the live edge, stale queued chunks, a
 * viewer waiting for the first chunk), and the durable replay store.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ReceiptReplayStore } from "../../node/src/stream/admission.js";
import { epochKey, epochOf, StreamCipher } from "../../node/src/stream/crypto.js";
import { decodeCreateRequest, decodeCreateResponse, encodeCreateRequest, encodeCreateResponse } from "../../node/src/stream/creation.js";
import { FanoutEngine } from "../../node/src/stream/fanout.js";
import { decodeFrame, encodeFrame, FrameReader, FrameType, MAX_FRAME_BYTES } from "../../node/src/stream/frames.js";
import type { StreamFrame } from "../../node/src/stream/frames.js";
import { StreamMediaError } from "../../node/src/stream/media-errors.js";
import { decodeTicket, encodeTicket } from "../../node/src/stream/ticket.js";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { readPublicStreamRecord, signPublicStreamRecord } from "../../node/src/stream/public-record.js";

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
const kindOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(StreamMediaError);
    return (err as StreamMediaError).kind;
  }
};

const SAMPLES: StreamFrame[] = [
  { type: "node-proof", identity: bytes(32, 1), signature: bytes(64, 2) },
  { type: "publish", streamId: bytes(16, 3), token: bytes(32, 4) },
  { type: "attach", streamId: bytes(16, 5), session: bytes(100, 6) },
  { type: "feed", streamId: bytes(16, 7) },
  { type: "accept", streamId: bytes(16, 8) },
  { type: "refuse", kind: "bad-session", text: "expired" },
  { type: "chunk", seq: 0x0102030405060708n, sealed: bytes(40, 9) },
  { type: "load", viewers: 12, spareKbps: 3000 },
  { type: "points-request", streamId: bytes(16, 10) },
  { type: "points", points: [{ identity: bytes(32, 11), host: "127.0.0.1", port: 9001, load: 3 }] },
  { type: "need-nodes", count: 2 },
  { type: "add-nodes", nodes: [{ identity: bytes(32, 12), host: "node.example", port: 443, load: 0 }] },
  { type: "end" },
];

describe("stream frames", () => {
  it("every frame type round-trips through the reader, whole and byte by byte", () => {
    const all = SAMPLES.map(encodeFrame);
    const whole = new FrameReader().push(Buffer.concat(all));
    expect(whole).toEqual(SAMPLES);
    const reader = new FrameReader();
    const dribbled: StreamFrame[] = [];
    for (const b of Buffer.concat(all)) dribbled.push(...reader.push(Uint8Array.of(b)));
    expect(dribbled).toEqual(SAMPLES);
    expect(reader.pendingBytes).toBe(0);
  });

  it("refuses wrong body lengths, unknown types and codes with malformed", () => {
    expect(kindOf(() => decodeFrame(FrameType.PUBLISH, bytes(47, 0)))).toBe("malformed");
    expect(kindOf(() => decodeFrame(FrameType.NODE_PROOF, bytes(97, 0)))).toBe("malformed");
    expect(kindOf(() => decodeFrame(FrameType.ATTACH, bytes(16, 0)))).toBe("malformed");
    expect(kindOf(() => decodeFrame(FrameType.CHUNK, bytes(23, 0)))).toBe("malformed");
    expect(kindOf(() => decodeFrame(FrameType.END, bytes(1, 0)))).toBe("malformed");
    expect(kindOf(() => decodeFrame(99, bytes(0, 0)))).toBe("malformed");
    expect(kindOf(() => decodeFrame(FrameType.REFUSE, Uint8Array.of(200)))).toBe("malformed");
    expect(kindOf(() => decodeFrame(FrameType.REFUSE, Uint8Array.of(1, 0xff)))).toBe("malformed");
    expect(kindOf(() => decodeFrame(FrameType.NEED_NODES, Uint8Array.of(0)))).toBe("malformed");
    expect(kindOf(() => decodeFrame(FrameType.POINTS, Uint8Array.of(1, ...bytes(38, 0))))).toBe("malformed");
    expect(kindOf(() => decodeFrame(FrameType.POINTS, Uint8Array.of(33)))).toBe("malformed");
    expect(kindOf(() => decodeFrame(FrameType.POINTS, Uint8Array.of(0, 1)))).toBe("malformed");
  });

  it("refuses an oversized or empty LEN before its body arrives, and stays failed", () => {
    const reader = new FrameReader();
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, MAX_FRAME_BYTES + 1);
    expect(kindOf(() => reader.push(header))).toBe("oversized");
    expect(kindOf(() => reader.push(encodeFrame({ type: "end" })))).toBe("oversized");
    expect(kindOf(() => new FrameReader().push(new Uint8Array(4)))).toBe("malformed");
    expect(kindOf(() => encodeFrame({ type: "chunk", seq: 1n, sealed: bytes(MAX_FRAME_BYTES, 0) }))).toBe("bad-argument");
  });
});

describe("chunk crypto", () => {
  const id = bytes(16, 1);
  const key = bytes(32, 2);
  const cipher = new StreamCipher(id, key);

  it("opens what it sealed, with the producer time inside", () => {
    const sealed = cipher.seal(5n, Uint8Array.of(1, 2, 3), 1_700_000_000_123);
    const opened = new StreamCipher(id, key).open(5n, sealed);
    expect([...opened.media]).toEqual([1, 2, 3]);
    expect(opened.producedAt).toBe(1_700_000_000_123);
  });

  it("refuses a tampered chunk, another seq, another stream id and another key", () => {
    const sealed = cipher.seal(7n, bytes(100, 3), 1);
    const tampered = sealed.slice();
    tampered[20] = (tampered[20] as number) ^ 1;
    expect(kindOf(() => cipher.open(7n, tampered))).toBe("chunk-auth-failed");
    expect(kindOf(() => cipher.open(8n, sealed))).toBe("chunk-auth-failed");
    expect(kindOf(() => new StreamCipher(bytes(16, 9), key).open(7n, sealed))).toBe("chunk-auth-failed");
    expect(kindOf(() => new StreamCipher(id, bytes(32, 9)).open(7n, sealed))).toBe("chunk-auth-failed");
    expect(kindOf(() => cipher.open(7n, sealed.subarray(0, 10)))).toBe("chunk-auth-failed");
  });

  it("rotates the key every 2^16 chunks, and both ends follow", () => {
    expect(epochOf(65535n)).toBe(0);
    expect(epochOf(65536n)).toBe(1);
    expect(Buffer.from(epochKey(key, id, 0)).equals(Buffer.from(epochKey(key, id, 1)))).toBe(false);
    const a = cipher.seal(65535n, bytes(10, 1), 1);
    const b = cipher.seal(65536n, bytes(10, 1), 1);
    const viewer = new StreamCipher(id, key);
    expect(viewer.open(65536n, b).media).toEqual(bytes(10, 1));
    expect(viewer.open(65535n, a).media).toEqual(bytes(10, 1));
    // A chunk of epoch 1 presented as epoch 0's does not open (the nonce and key both differ).
    expect(kindOf(() => viewer.open(65536n - 65536n + 1n, b))).toBe("chunk-auth-failed");
  });
});

describe("tickets", () => {
  const ticket = { streamId: bytes(16, 1), streamKey: bytes(32, 2), landing: bytes(32, 3), host: "127.0.0.1", port: 7001 };

  it("round-trips, whitespace around it ignored", () => {
    const text = encodeTicket(ticket);
    expect(text.startsWith("pspstream1:")).toBe(true);
    expect(decodeTicket(`  ${text}\n`)).toEqual(ticket);
  });

  it("refuses a mistyped, cut or foreign ticket with bad-ticket", () => {
    const text = encodeTicket(ticket);
    const i = text.length - 20;
    const swapped = text.slice(0, i) + (text[i] === "A" ? "B" : "A") + text.slice(i + 1);
    expect(kindOf(() => decodeTicket(swapped))).toBe("bad-ticket");
    expect(kindOf(() => decodeTicket(text.slice(0, -3)))).toBe("bad-ticket");
    expect(kindOf(() => decodeTicket(text.slice(0, 40)))).toBe("bad-ticket");
    expect(kindOf(() => decodeTicket("psp1:abc"))).toBe("bad-ticket");
    expect(kindOf(() => decodeTicket(`${text}!`))).toBe("bad-ticket");
    const err = (() => {
      try {
        decodeTicket(swapped);
      } catch (e) {
        return e as StreamMediaError;
      }
    })();
    expect(err?.message).toMatch(/checksum/);
    expect(err?.fix).toMatch(/copy the whole ticket/);
  });
});

describe("fan-out engine", () => {
  const frame = (n: number): Uint8Array => bytes(n, 0);

  it("a viewer attached before the first chunk waits, then gets every chunk in order", () => {
    const e = new FanoutEngine();
    e.addSink("v", "viewer");
    expect(e.sinkState("v")?.waiting).toBe(true);
    expect(e.chunk(0n, frame(10), 0).map((s) => s.seq)).toEqual([0n]);
    expect(e.chunk(1n, frame(10), 1).map((s) => [s.to, s.seq])).toEqual([["v", 1n]]);
    expect(e.sinkState("v")?.waiting).toBe(false);
  });

  it("drops a late chunk (not above the newest seq) for everyone", () => {
    const e = new FanoutEngine();
    e.addSink("v", "viewer");
    e.chunk(5n, frame(10), 0);
    expect(e.chunk(5n, frame(10), 1)).toEqual([]);
    expect(e.chunk(3n, frame(10), 1)).toEqual([]);
    expect(e.counters.late).toBe(2);
    expect(e.chunk(6n, frame(10), 2)).toHaveLength(1);
  });

  it("queues while blocked, bounded in bytes; a viewer past its bound jumps to the live edge", () => {
    const e = new FanoutEngine({ viewerQueueBytes: 250 });
    e.addSink("slow", "viewer");
    e.addSink("fast", "viewer");
    e.blocked("slow");
    for (let i = 0; i < 10; i++) {
      const sends = e.chunk(BigInt(i), frame(100), i);
      expect(sends.map((s) => s.to)).toEqual(["fast"]);
      expect(e.sinkState("slow")?.queuedBytes).toBeLessThanOrEqual(250);
    }
    expect(e.counters.liveEdgeJumps).toBeGreaterThan(0);
    const resumed = e.drained("slow", 10).map((s) => s.seq);
    // Only the newest chunks are left, in order, ending at the live edge.
    expect(resumed.at(-1)).toBe(9n);
    expect(resumed.length).toBeLessThanOrEqual(2);
    expect(resumed).toEqual([...resumed].sort((a, b) => (a < b ? -1 : 1)));
  });

  it("a queued chunk older than maxDelayMs when the socket drains is dropped", () => {
    const e = new FanoutEngine({ maxDelayMs: 100 });
    e.addSink("v", "viewer");
    e.blocked("v");
    e.chunk(0n, frame(10), 0);
    e.chunk(1n, frame(10), 150);
    expect(e.drained("v", 200).map((s) => s.seq)).toEqual([1n]);
    expect(e.counters.dropped).toBe(1);
    expect(e.chunk(2n, frame(10), 201).map((s) => s.seq)).toEqual([2n]);
  });

  it("a feed (distribution node) gets a larger bound than a viewer", () => {
    const e = new FanoutEngine({ viewerQueueBytes: 100, feedQueueBytes: 1000 });
    e.addSink("v", "viewer");
    e.addSink("f", "feed");
    e.blocked("v");
    e.blocked("f");
    for (let i = 0; i < 5; i++) e.chunk(BigInt(i), frame(100), 0);
    expect(e.sinkState("v")?.queuedChunks).toBe(1);
    expect(e.sinkState("f")?.queuedChunks).toBe(5);
    expect(e.countOf("viewer")).toBe(1);
    e.removeSink("v");
    expect(e.sinkCount).toBe(1);
  });
});

describe("creation messages and the replay store", () => {
  it("creation request and response round-trip; a bad field is malformed", () => {
    const req = { receipt: bytes(200, 1), kbps: 2000, durationS: 600, public: false, distribution: [{ identity: bytes(32, 2), host: "h", port: 1, load: 0 }] };
    expect(decodeCreateRequest(encodeCreateRequest(req))).toEqual(req);
    const res = { streamId: bytes(16, 1), token: bytes(32, 2), expiresAt: 1_800_000_000_000 };
    expect(decodeCreateResponse(encodeCreateResponse(res))).toEqual(res);
    expect(kindOf(() => decodeCreateRequest(encodeCreateRequest({ ...req, receipt: new Uint8Array(0) })))).toBe("malformed");
    expect(kindOf(() => decodeCreateRequest(Uint8Array.of(0xff)))).toBe("malformed");
  });

  it("a receipt id is claimed once, across a reopen, until it expires", () => {
    const dir = mkdtempSync(join(tmpdir(), "psp-stream-replay-"));
    try {
      const path = join(dir, "receipts.db");
      let store = new ReceiptReplayStore(path);
      expect(store.claim(bytes(16, 1), 2000, 1000)).toBe(true);
      expect(store.claim(bytes(16, 1), 2000, 1000)).toBe(false);
      store.close();
      store = new ReceiptReplayStore(path);
      expect(store.claim(bytes(16, 1), 2000, 1500)).toBe(false);
      expect(store.claim(bytes(16, 2), 2000, 2500)).toBe(true);
      expect(store.size).toBe(1); // the first one expired and was forgotten
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("public stream records", () => {
  it("round-trip; another owner, another stream or a bad value is malformed", () => {
    const landing = generateEd25519KeyPair();
    const info = {
      streamId: bytes(16, 1),
      formatFlags: 5,
      kbps: 2000,
      expiresAt: Date.now() + 60_000,
      points: [{ identity: bytes(32, 2), host: "h", port: 9, load: 1 }],
    };
    const record = signPublicStreamRecord(landing.secretKey, info, 1);
    expect(readPublicStreamRecord(record, landing.publicKey, info.streamId)).toEqual(info);
    expect(kindOf(() => readPublicStreamRecord(record, generateEd25519KeyPair().publicKey, info.streamId))).toBe("malformed");
    expect(kindOf(() => readPublicStreamRecord(record, landing.publicKey, bytes(16, 9)))).toBe("malformed");
    expect(kindOf(() => readPublicStreamRecord({ ...record, value: Uint8Array.of(0xff) }, landing.publicKey, info.streamId))).toBe("malformed");
  });
});

/**
 * Stream-link frames: the bytes on a psp-stream/1 TLS connection
 * (docs/spec/streaming.md "Frames").
 *
 * Owns the layout `LEN (4, big-endian, counts TYPE and BODY) ‖ TYPE (1) ‖
 * BODY`, at most MAX_FRAME_BYTES after LEN, the body of every frame type,
 * their encoders, and a decoder that checks every length and field by hand
 * before anything is read (a hostile peer controls every byte), and the
 * incremental reader that cuts a TLS byte stream into frames.
 *
 * Trusts nothing: every decode failure is a StreamMediaError "malformed" or
 * "oversized"; the caller refuses the peer and keeps running.
 */
import { concatBytes } from "../base/bytes.js";
import { CHUNK_TAG_LEN, MAX_HOST_LEN, NODE_IDENTITY_LEN, STREAM_ID_LEN } from "./media-format.js";
import { StreamMediaError, mediaRefusalCodes } from "./media-errors.js";
import type { MediaRefusalKind } from "./media-errors.js";

/** Largest TYPE ‖ BODY of one frame: 64 KiB. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** LEN (4). */
export const FRAME_HEADER_LEN = 4;
// Shared with tickets (media-format.ts), re-exported for the frames' users.
export { MAX_HOST_LEN, NODE_IDENTITY_LEN, STREAM_ID_LEN };
export const PUBLISH_TOKEN_LEN = 32;
export const NODE_SIGNATURE_LEN = 64;
/** Largest session id a viewer may present (the oracle's format is opaque here). */
export const MAX_SESSION_BYTES = 4096;
/** Longest REFUSE text, bytes of UTF-8. */
export const MAX_REFUSE_TEXT = 512;
/** Most entries in a POINTS or ADD_NODES frame. */
export const MAX_POINTS = 32;
/** A sealed chunk has at least its 16-byte tag. */
export const MIN_SEALED_LEN = CHUNK_TAG_LEN;
/** Largest sealed chunk: what fits in one frame after TYPE and SEQ. */
export const MAX_SEALED_LEN = MAX_FRAME_BYTES - 1 - 8;

export const FrameType = {
  NODE_PROOF: 1,
  PUBLISH: 2,
  ATTACH: 3,
  FEED: 4,
  ACCEPT: 5,
  REFUSE: 6,
  CHUNK: 7,
  LOAD: 8,
  POINTS_REQUEST: 9,
  POINTS: 10,
  NEED_NODES: 11,
  ADD_NODES: 12,
  END: 13,
} as const;

/** A node an access-point list or a producer's ADD_NODES names: identity, where to reach it, its reported load. */
export interface NodeEntry {
  identity: Uint8Array;
  host: string;
  port: number;
  /** Viewers and feeds it serves for the stream (POINTS); 0 in ADD_NODES. */
  load: number;
}

export type StreamFrame =
  /** The sender proves its node identity over this TLS session (stream-link.ts). */
  | { type: "node-proof"; identity: Uint8Array; signature: Uint8Array }
  /** Producer → landing: send chunks of this stream. */
  | { type: "publish"; streamId: Uint8Array; token: Uint8Array }
  /** Viewer → access point: receive chunks of this stream, with an oracle session id. */
  | { type: "attach"; streamId: Uint8Array; session: Uint8Array }
  /** Node → node (after its NODE_PROOF): feed me nothing, I feed you this stream. */
  | { type: "feed"; streamId: Uint8Array }
  | { type: "accept"; streamId: Uint8Array }
  | { type: "refuse"; kind: MediaRefusalKind; text: string }
  /** A sealed chunk: opaque to every node. */
  | { type: "chunk"; seq: bigint; sealed: Uint8Array }
  /** Distribution → landing (on the feed link): how loaded it is. */
  | { type: "load"; viewers: number; spareKbps: number }
  | { type: "points-request"; streamId: Uint8Array }
  | { type: "points"; points: NodeEntry[] }
  /** Landing → producer: name this many more distribution nodes. */
  | { type: "need-nodes"; count: number }
  /** Producer → landing: more distribution nodes. */
  | { type: "add-nodes"; nodes: NodeEntry[] }
  | { type: "end" };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function malformed(message: string): StreamMediaError {
  return new StreamMediaError("malformed", message);
}

function frame(type: number, ...parts: Uint8Array[]): Uint8Array {
  const body = concatBytes(...parts);
  const length = 1 + body.length;
  if (length > MAX_FRAME_BYTES) throw new StreamMediaError("oversized", `a frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const out = new Uint8Array(FRAME_HEADER_LEN + length);
  new DataView(out.buffer).setUint32(0, length);
  out[4] = type;
  out.set(body, 5);
  return out;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function checkLen(what: string, bytes: Uint8Array, length: number): Uint8Array {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) throw new StreamMediaError("bad-argument", `${what} must be ${length} bytes`);
  return bytes;
}

function encodeEntries(entries: readonly NodeEntry[]): Uint8Array {
  if (entries.length > MAX_POINTS) throw new StreamMediaError("bad-argument", `at most ${MAX_POINTS} node entries fit in a frame`);
  const parts: Uint8Array[] = [Uint8Array.of(entries.length)];
  for (const e of entries) {
    const host = encoder.encode(e.host);
    if (host.length > MAX_HOST_LEN) throw new StreamMediaError("bad-argument", `host names are at most ${MAX_HOST_LEN} bytes`);
    if (!Number.isInteger(e.port) || e.port < 0 || e.port > 0xffff) throw new StreamMediaError("bad-argument", "port must be in 0..65535");
    if (!Number.isInteger(e.load) || e.load < 0 || e.load > 0xffffffff) throw new StreamMediaError("bad-argument", "load must be a 32-bit unsigned integer");
    parts.push(checkLen("a node identity", e.identity, NODE_IDENTITY_LEN), u32(e.load), Uint8Array.of(e.port >>> 8, e.port & 0xff, host.length), host);
  }
  return concatBytes(...parts);
}

/** The bytes of one frame, LEN included. Throws "bad-argument" for fields out of range. */
export function encodeFrame(f: StreamFrame): Uint8Array {
  switch (f.type) {
    case "node-proof":
      return frame(FrameType.NODE_PROOF, checkLen("identity", f.identity, NODE_IDENTITY_LEN), checkLen("signature", f.signature, NODE_SIGNATURE_LEN));
    case "publish":
      return frame(FrameType.PUBLISH, checkLen("stream id", f.streamId, STREAM_ID_LEN), checkLen("publish token", f.token, PUBLISH_TOKEN_LEN));
    case "attach":
      if (f.session.length < 1 || f.session.length > MAX_SESSION_BYTES)
        throw new StreamMediaError("bad-argument", `a session id is 1..${MAX_SESSION_BYTES} bytes`);
      return frame(FrameType.ATTACH, checkLen("stream id", f.streamId, STREAM_ID_LEN), f.session);
    case "feed":
      return frame(FrameType.FEED, checkLen("stream id", f.streamId, STREAM_ID_LEN));
    case "accept":
      return frame(FrameType.ACCEPT, checkLen("stream id", f.streamId, STREAM_ID_LEN));
    case "refuse": {
      let text = encoder.encode(f.text);
      if (text.length > MAX_REFUSE_TEXT) text = encoder.encode(f.text.slice(0, MAX_REFUSE_TEXT / 4));
      const code = mediaRefusalCodes.codeOf(f.kind);
      if (code === undefined) throw new StreamMediaError("bad-argument", `${f.kind} is not a refusal kind`);
      return frame(FrameType.REFUSE, Uint8Array.of(code), text);
    }
    case "chunk": {
      if (f.seq < 0n || f.seq > 0xffffffffffffffffn) throw new StreamMediaError("bad-argument", "seq must be a 64-bit unsigned integer");
      if (f.sealed.length < MIN_SEALED_LEN || f.sealed.length > MAX_SEALED_LEN)
        throw new StreamMediaError("bad-argument", `a sealed chunk is ${MIN_SEALED_LEN}..${MAX_SEALED_LEN} bytes`);
      const seq = new Uint8Array(8);
      new DataView(seq.buffer).setBigUint64(0, f.seq);
      return frame(FrameType.CHUNK, seq, f.sealed);
    }
    case "load":
      for (const [k, v] of [
        ["viewers", f.viewers],
        ["spareKbps", f.spareKbps],
      ] as const) {
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new StreamMediaError("bad-argument", `${k} must be a 32-bit unsigned integer`);
      }
      return frame(FrameType.LOAD, u32(f.viewers), u32(f.spareKbps));
    case "points-request":
      return frame(FrameType.POINTS_REQUEST, checkLen("stream id", f.streamId, STREAM_ID_LEN));
    case "points":
      return frame(FrameType.POINTS, encodeEntries(f.points));
    case "need-nodes":
      if (!Number.isInteger(f.count) || f.count < 1 || f.count > MAX_POINTS) throw new StreamMediaError("bad-argument", `count must be in 1..${MAX_POINTS}`);
      return frame(FrameType.NEED_NODES, Uint8Array.of(f.count));
    case "add-nodes":
      return frame(FrameType.ADD_NODES, encodeEntries(f.nodes));
    case "end":
      return frame(FrameType.END);
  }
}

function exact(name: string, body: Uint8Array, length: number): void {
  if (body.length !== length) throw malformed(`a ${name} frame body is ${length} bytes, got ${body.length}`);
}

function decodeEntries(name: string, body: Uint8Array): NodeEntry[] {
  if (body.length < 1) throw malformed(`a ${name} frame lacks its entry count`);
  const count = body[0] as number;
  if (count > MAX_POINTS) throw malformed(`a ${name} frame holds at most ${MAX_POINTS} entries, says ${count}`);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const entries: NodeEntry[] = [];
  let at = 1;
  for (let i = 0; i < count; i++) {
    if (body.length - at < NODE_IDENTITY_LEN + 7) throw malformed(`${name} entry ${i} is cut short`);
    const identity = body.slice(at, at + NODE_IDENTITY_LEN);
    at += NODE_IDENTITY_LEN;
    const load = view.getUint32(at);
    const port = view.getUint16(at + 4);
    const hostLen = body[at + 6] as number;
    at += 7;
    if (hostLen > MAX_HOST_LEN || body.length - at < hostLen) throw malformed(`${name} entry ${i} has a bad host length`);
    let host: string;
    try {
      host = decoder.decode(body.subarray(at, at + hostLen));
    } catch {
      throw malformed(`${name} entry ${i}'s host is not UTF-8`);
    }
    at += hostLen;
    entries.push({ identity, host, port, load });
  }
  if (at !== body.length) throw malformed(`a ${name} frame has ${body.length - at} bytes after its entries`);
  return entries;
}

/** Decodes TYPE and BODY (LEN already stripped). Throws StreamMediaError "malformed". */
export function decodeFrame(type: number, body: Uint8Array): StreamFrame {
  switch (type) {
    case FrameType.NODE_PROOF:
      exact("NODE_PROOF", body, NODE_IDENTITY_LEN + NODE_SIGNATURE_LEN);
      return { type: "node-proof", identity: body.slice(0, 32), signature: body.slice(32) };
    case FrameType.PUBLISH:
      exact("PUBLISH", body, STREAM_ID_LEN + PUBLISH_TOKEN_LEN);
      return { type: "publish", streamId: body.slice(0, 16), token: body.slice(16) };
    case FrameType.ATTACH:
      if (body.length < STREAM_ID_LEN + 1 || body.length > STREAM_ID_LEN + MAX_SESSION_BYTES)
        throw malformed(`an ATTACH frame body is ${STREAM_ID_LEN + 1}..${STREAM_ID_LEN + MAX_SESSION_BYTES} bytes, got ${body.length}`);
      return { type: "attach", streamId: body.slice(0, 16), session: body.slice(16) };
    case FrameType.FEED:
      exact("FEED", body, STREAM_ID_LEN);
      return { type: "feed", streamId: body.slice() };
    case FrameType.ACCEPT:
      exact("ACCEPT", body, STREAM_ID_LEN);
      return { type: "accept", streamId: body.slice() };
    case FrameType.REFUSE: {
      if (body.length < 1 || body.length > 1 + MAX_REFUSE_TEXT) throw malformed(`a REFUSE frame body is 1..${1 + MAX_REFUSE_TEXT} bytes`);
      const kind = mediaRefusalCodes.nameOf(body[0] as number);
      if (kind === undefined) throw malformed(`unknown refusal code ${body[0]}`);
      let text: string;
      try {
        text = decoder.decode(body.subarray(1));
      } catch {
        throw malformed("a REFUSE frame's text is not UTF-8");
      }
      return { type: "refuse", kind, text };
    }
    case FrameType.CHUNK: {
      if (body.length < 8 + MIN_SEALED_LEN) throw malformed(`a CHUNK frame body is at least ${8 + MIN_SEALED_LEN} bytes, got ${body.length}`);
      const seq = new DataView(body.buffer, body.byteOffset, 8).getBigUint64(0);
      return { type: "chunk", seq, sealed: body.slice(8) };
    }
    case FrameType.LOAD: {
      exact("LOAD", body, 8);
      const view = new DataView(body.buffer, body.byteOffset, 8);
      return { type: "load", viewers: view.getUint32(0), spareKbps: view.getUint32(4) };
    }
    case FrameType.POINTS_REQUEST:
      exact("POINTS_REQUEST", body, STREAM_ID_LEN);
      return { type: "points-request", streamId: body.slice() };
    case FrameType.POINTS:
      return { type: "points", points: decodeEntries("POINTS", body) };
    case FrameType.NEED_NODES: {
      exact("NEED_NODES", body, 1);
      const count = body[0] as number;
      if (count < 1 || count > MAX_POINTS) throw malformed(`NEED_NODES asks for 1..${MAX_POINTS} nodes, got ${count}`);
      return { type: "need-nodes", count };
    }
    case FrameType.ADD_NODES:
      return { type: "add-nodes", nodes: decodeEntries("ADD_NODES", body) };
    case FrameType.END:
      exact("END", body, 0);
      return { type: "end" };
    default:
      throw malformed(`unknown frame type ${type}`);
  }
}

/**
 * Cuts a byte stream into frames. `push` returns the whole frames the bytes
 * completed; a LEN of 0 or above MAX_FRAME_BYTES throws at once (before the
 * body arrives), so a peer cannot make the reader buffer more than one frame.
 */
export class FrameReader {
  private buffered: Uint8Array[] = [];
  private bufferedBytes = 0;
  private failed: StreamMediaError | undefined;

  /** Bytes held for an incomplete frame. */
  get pendingBytes(): number {
    return this.bufferedBytes;
  }

  push(bytes: Uint8Array): StreamFrame[] {
    if (this.failed) throw this.failed;
    // A plain view (not a Buffer), so decoded fields are plain Uint8Arrays too.
    this.buffered.push(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    this.bufferedBytes += bytes.length;
    const out: StreamFrame[] = [];
    let data = this.buffered.length === 1 ? (this.buffered[0] as Uint8Array) : concatBytes(...this.buffered);
    let at = 0;
    try {
      while (data.length - at >= FRAME_HEADER_LEN) {
        const length = new DataView(data.buffer, data.byteOffset + at, 4).getUint32(0);
        if (length < 1) throw malformed("a frame of length 0 (no type)");
        if (length > MAX_FRAME_BYTES) throw new StreamMediaError("oversized", `a frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
        if (data.length - at < FRAME_HEADER_LEN + length) break;
        const type = data[at + 4] as number;
        out.push(decodeFrame(type, data.subarray(at + 5, at + FRAME_HEADER_LEN + length)));
        at += FRAME_HEADER_LEN + length;
      }
    } catch (err) {
      this.failed = err as StreamMediaError;
      this.buffered = [];
      this.bufferedBytes = 0;
      throw err;
    }
    data = data.subarray(at);
    this.buffered = data.length > 0 ? [data.slice()] : [];
    this.bufferedBytes = data.length;
    return out;
  }
}

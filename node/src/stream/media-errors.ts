/**
 * StreamMediaError: the typed error of the media path of the streaming layer
 * (stream links, frames, chunk crypto, tickets, landing and distribution).
 *
 * The oracle side (receipts, session ids) has its own StreamError in
 * errors.ts; both are layer "stream", and a kind they share keeps one
 * category. Kinds that travel in REFUSE frames keep these names on the wire
 * through MEDIA_REFUSAL_CODES.
 */
import { codeLookup } from "../base/codes.js";
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

export type StreamMediaErrorKind =
  /** An argument or option is out of range: a caller bug; the message names it. */
  | "bad-argument"
  /** A frame, request or ticket field is not of the expected shape or size. */
  | "malformed"
  /** A frame is longer than MAX_FRAME_BYTES. */
  | "oversized"
  /** A sealed chunk does not open: altered, wrong key, wrong stream id or sequence number. */
  | "chunk-auth-failed"
  /** A ticket's checksum does not match: it was mistyped or cut. */
  | "bad-ticket"
  /** The node on a stream link did not prove the expected identity over this TLS session. */
  | "node-auth-failed"
  /** The publish token does not match the stream's. */
  | "bad-token"
  /** The node holds no stream with that id. */
  | "unknown-stream"
  /** The creation receipt was refused (forged, expired, revoked, unknown oracle, uncommitted); `cause` holds the oracle-side error. */
  | "bad-receipt"
  /** The creation receipt's id was used before. */
  | "replayed"
  /** The viewer's session id was refused (forged, expired); `cause` holds the oracle-side error. */
  | "bad-session"
  /** The wanted parameters exceed the receipt's. */
  | "over-limit"
  /** A cap (streams, viewers, feeds) is reached at this node. */
  | "busy"
  /** The peer refused (the REFUSE frame's kind is in the message). */
  | "refused"
  /** No answer or no chunk in time. */
  | "timeout"
  /** The stream link or the stream closed. */
  | "closed"
  /** No access point of the stream could be reached. */
  | "unreachable";

const STREAM_MEDIA_CATEGORIES = {
  "bad-argument": "bug",
  malformed: "peer",
  oversized: "peer",
  "chunk-auth-failed": "peer",
  "bad-ticket": "config",
  "node-auth-failed": "peer",
  "bad-token": "refused",
  "unknown-stream": "refused",
  "bad-receipt": "refused",
  replayed: "peer",
  "bad-session": "refused",
  "over-limit": "refused",
  busy: "transient",
  refused: "refused",
  timeout: "transient",
  closed: "shutdown",
  unreachable: "transient",
} as const satisfies KindCategories<StreamMediaErrorKind>;

export class StreamMediaError extends layerError<StreamMediaErrorKind>("stream", STREAM_MEDIA_CATEGORIES) {}

/** The kinds a node puts in a REFUSE frame, by their one-byte wire code. */
export const MediaRefusalCode = {
  malformed: 1,
  oversized: 2,
  "node-auth-failed": 3,
  "bad-token": 4,
  "unknown-stream": 5,
  "bad-receipt": 6,
  replayed: 7,
  "bad-session": 8,
  "over-limit": 9,
  busy: 10,
  refused: 11,
} as const satisfies Partial<Record<StreamMediaErrorKind, number>>;

export type MediaRefusalKind = keyof typeof MediaRefusalCode;
export const mediaRefusalCodes = codeLookup(MediaRefusalCode);

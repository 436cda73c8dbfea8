/**
 * WireError: the typed error of the wire layer.
 *
 * Every decoder in node/src/wire throws only this error for bad bytes (never a
 * TypeError or RangeError), so a link or circuit can map `kind` to a close
 * reason instead of crashing.
 */
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

export type WireErrorKind =
  /** A buffer is shorter or longer than the layout requires. */
  | "bad-length"
  /** A cell command byte that this version does not know. */
  | "unknown-command"
  /** A circuit id outside 0..2^32-1 or not an integer. */
  | "bad-circ-id"
  /** A relay cell's length field is larger than the 496 data bytes. */
  | "bad-relay-length"
  /** A relay command byte that this version does not know. */
  | "unknown-relay-command"
  /** A stream id outside 0..65535 or not an integer. */
  | "bad-stream-id"
  /** A field value out of range when encoding (caller bug). */
  | "bad-field"
  /** A reassembled message would exceed the configured maximum. */
  | "message-too-large"
  /** A fragment arrived out of order (wrong sequence number or message id). */
  | "out-of-order"
  /** The stream of fragments ended before the message was complete. */
  | "truncated"
  /** A fragment header is inconsistent (e.g. zero total, chunk beyond total). */
  | "bad-fragment"
  /** Input to a canonical decoder is larger than maxBytes. */
  | "too-large"
  /** Bytes are not well-formed canonical CBOR or not of the expected shape. */
  | "malformed"
  /** Bytes decode but are not in canonical form (re-encoding differs). */
  | "non-canonical"
  /** A value cannot be encoded canonically (e.g. undefined, a function, NaN). */
  | "unencodable"
  /** A signed document has a different type than the caller expected. */
  | "wrong-type"
  /** A signed document's signature does not verify. */
  | "bad-signature";

/** Bytes that do not decode came from a peer; values that cannot be encoded are the caller's. */
const WIRE_CATEGORIES = {
  "bad-length": "peer",
  "unknown-command": "peer",
  "bad-circ-id": "peer",
  "bad-relay-length": "peer",
  "unknown-relay-command": "peer",
  "bad-stream-id": "bug",
  "bad-field": "bug",
  "message-too-large": "peer",
  "out-of-order": "peer",
  truncated: "peer",
  "bad-fragment": "peer",
  "too-large": "peer",
  malformed: "peer",
  "non-canonical": "peer",
  unencodable: "bug",
  "wrong-type": "peer",
  "bad-signature": "peer",
} as const satisfies KindCategories<WireErrorKind>;

export class WireError extends layerError<WireErrorKind>("wire", WIRE_CATEGORIES) {}

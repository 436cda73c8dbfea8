/**
 * StreamError: the typed error of the streaming layer (stream-creation
 * receipts, viewer session ids, and the media path built on them).
 *
 * Every verifier of node/src/stream throws only this error for bad input, so
 * a landing or distribution node can switch on `kind` and send it back as a
 * typed refusal (docs/spec/oracle.md lists the kinds of receipts and
 * session ids).
 */
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

export type StreamErrorKind =
  /** A key, length or option is out of range: a caller bug. */
  | "bad-argument"
  /** A receipt, session id or message is not of the expected shape, size or version. */
  | "malformed"
  /** A signature does not verify: an Ed25519 signature by the named oracle, or an RSA blind signature under the named key. */
  | "forged"
  /** Past its expiry (plus clock skew), or its window is longer than allowed. */
  | "expired"
  /** Dated in the future beyond the clock skew. */
  | "not-yet-valid"
  /** The receipt was revoked on chain, or its blind key was. */
  | "revoked"
  /** The signer is not a current oracle (not in the on-chain oracle set). */
  | "unknown-oracle"
  /** The blind receipt names a key id the chain does not hold. */
  | "unknown-key"
  /** A linkable receipt is not committed on chain and its grace period is over (or its inclusion proof fails). */
  | "uncommitted"
  /** A receipt or session id was presented before (one stream per receipt). */
  | "replayed";

const STREAM_CATEGORIES = {
  "bad-argument": "bug",
  malformed: "peer",
  forged: "peer",
  expired: "peer",
  "not-yet-valid": "peer",
  revoked: "refused",
  "unknown-oracle": "refused",
  "unknown-key": "refused",
  uncommitted: "refused",
  replayed: "peer",
} as const satisfies KindCategories<StreamErrorKind>;

export class StreamError extends layerError<StreamErrorKind>("stream", STREAM_CATEGORIES) {}

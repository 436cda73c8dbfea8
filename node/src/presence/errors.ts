/**
 * PresenceError: the typed error of the presence layer (presence points,
 * lookups, introductions, rendezvous and the private channels they open).
 *
 * Every function in node/src/presence throws only this error for bad input,
 * so a caller can switch on `kind` (docs/spec/presence.md lists them). Kinds
 * that travel in refusals (`refused` messages from a presence or rendezvous
 * node, introduction acknowledgements) keep these names on the wire.
 */
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

export type PresenceErrorKind =
  /** A key or seed had the wrong length, or an option is out of range: a caller bug. */
  | "bad-argument"
  /** A presence, introduction or rendezvous message is not of the expected shape or version. */
  | "malformed"
  /** A presence record does not decrypt under the identity's period key, or does not match its slot. */
  | "record-invalid"
  /** No presence record of the identity was found in the DHT for the current or previous period. */
  | "not-found"
  /** An access certificate is malformed, forged, expired, below threshold or for another identity; `cause` holds the CertificateError. */
  | "bad-certificate"
  /** A registration or introduction signature does not verify under the identity key. */
  | "bad-signature"
  /** A registration or introduction is dated outside the accepted clock window. */
  | "stale"
  /** An introduction (or a rendezvous cookie) was seen before. */
  | "replayed"
  /** An introduction's MAC or encrypted part does not authenticate: wrong keys, or altered on the way. */
  | "intro-auth-failed"
  /** The presence node holds no registration for that introduction key (the point is gone: try another). */
  | "unknown-presence"
  /** A registration names another presence node, another slot or another period than it is sent for. */
  | "wrong-binding"
  /** The peer's app refused the introduction. */
  | "refused"
  /** A cap at the presence node was reached (pending introductions, channels, registrations). */
  | "cap-reached"
  /** A rate limit or queue at a presence or rendezvous node refused the request for now. */
  | "busy"
  /** The presence node asks for a proof of work of at least the given effort (the client solves it and retries). */
  | "pow-required"
  /** A proof of work does not verify or is below the effort asked. */
  | "pow-invalid"
  /** No answer in time (introduction decision, rendezvous join, delivery acknowledgement). */
  | "timeout"
  /** The rendezvous did not complete: cookie unknown or taken, or the hs-ntor reply did not authenticate. */
  | "rendezvous-failed"
  /** None of the identity's presence points could be reached. */
  | "unreachable"
  /** The channel, presence point or client was closed. */
  | "closed"
  /** A channel frame is too short, too long or has an unknown version. */
  | "channel-malformed"
  /** A channel frame did not authenticate: wrong keys, or altered on the way. */
  | "channel-auth-failed"
  /** A channel frame's counter was used before (its key is gone) or is older than the reorder window. */
  | "channel-replayed"
  /** A channel frame's counter is further ahead than the reorder window allows. */
  | "channel-too-far-ahead"
  /** A channel has sent or received its last counter value; open a new one. */
  | "channel-exhausted";

const PRESENCE_CATEGORIES = {
  "bad-argument": "bug",
  malformed: "peer",
  "record-invalid": "peer",
  "not-found": "refused",
  "bad-certificate": "peer",
  "bad-signature": "peer",
  stale: "peer",
  replayed: "peer",
  "intro-auth-failed": "peer",
  "unknown-presence": "transient",
  "wrong-binding": "peer",
  refused: "refused",
  "cap-reached": "transient",
  busy: "transient",
  "pow-required": "transient",
  "pow-invalid": "peer",
  timeout: "transient",
  "rendezvous-failed": "transient",
  unreachable: "transient",
  closed: "shutdown",
  "channel-malformed": "peer",
  "channel-auth-failed": "peer",
  "channel-replayed": "peer",
  "channel-too-far-ahead": "peer",
  "channel-exhausted": "refused",
} as const satisfies KindCategories<PresenceErrorKind>;

export class PresenceError extends layerError<PresenceErrorKind>("presence", PRESENCE_CATEGORIES) {}

/** Kinds a presence or rendezvous node may put in a refusal, and a presence point in an acknowledgement. */
export const WIRE_REFUSAL_KINDS: readonly PresenceErrorKind[] = [
  "malformed",
  "record-invalid",
  "bad-certificate",
  "bad-signature",
  "stale",
  "replayed",
  "unknown-presence",
  "wrong-binding",
  "refused",
  "cap-reached",
  "busy",
  "pow-required",
  "pow-invalid",
  "timeout",
  "rendezvous-failed",
];

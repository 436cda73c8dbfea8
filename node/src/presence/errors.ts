/**
 * PresenceError: the typed error of the presence layer (presence points,
 * introductions, rendezvous and the private channels they open).
 *
 * Every function in node/src/presence throws only this error for bad input,
 * so a caller can switch on `kind` (docs/spec/presence.md lists them).
 */
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

export type PresenceErrorKind =
  /** A key or seed had the wrong length, or an option is out of range: a caller bug. */
  | "bad-argument"
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

/** Frames that fail to open came from the other end; an exhausted channel refuses more until a new one is opened. */
const PRESENCE_CATEGORIES = {
  "bad-argument": "bug",
  "channel-malformed": "peer",
  "channel-auth-failed": "peer",
  "channel-replayed": "peer",
  "channel-too-far-ahead": "peer",
  "channel-exhausted": "refused",
} as const satisfies KindCategories<PresenceErrorKind>;

export class PresenceError extends layerError<PresenceErrorKind>("presence", PRESENCE_CATEGORIES) {}

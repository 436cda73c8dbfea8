/**
 * DhtError: the typed error of the DHT layer.
 *
 * Every function in node/src/dht throws only this error for bad input or a
 * refused record, so a caller (an RPC handler, the presence layer, the CLI)
 * can switch on `kind`. The same kinds travel in ERROR responses.
 */
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

export type DhtErrorKind =
  /** A message or record is not of the expected shape (missing field, wrong type or length). */
  | "malformed"
  /** A message signature does not verify under the sender's key. */
  | "bad-message-signature"
  /** A contact's node id is not SHA-256 of its key, or a puzzle is unsolved at the required difficulty. */
  | "bad-node-id"
  /** A message's timestamp is outside the accepted clock skew window. */
  | "stale-message"
  /** A message nonce was already seen inside the replay window. */
  | "replayed-message"
  /** A response did not come from the contact asked or does not answer the request sent. */
  | "unexpected-response"
  /** A record's owner signature does not verify. */
  | "bad-owner-signature"
  /** A record's publishing-node co-signature does not verify. */
  | "bad-publisher-signature"
  /** A record's key is not derived from its owner and name. */
  | "key-mismatch"
  /** A record's sequence number is not newer than the stored one (replay or stale update). */
  | "stale-sequence"
  /** A record's expiry has passed. */
  | "expired"
  /** A record expires further in the future than the maximum TTL. */
  | "ttl-too-long"
  /** A record, value or name is larger than the configured maximum. */
  | "oversized"
  /** The owner, or the node (or address) that sent the STORE, already holds its maximum number of records or bytes on this node. */
  | "quota-exceeded"
  /** This node's store is at its total capacity; existing records are never evicted for new ones. */
  | "store-full"
  /** The contacted node did not answer within the timeout. */
  | "timeout"
  /** The contacted node is unknown to or unreachable by the transport. */
  | "unreachable"
  /** A lookup or publish found no node to talk to (empty routing table). */
  | "no-contacts"
  /** The persistent store could not be opened or written. */
  | "store-io"
  /** A configuration value is out of range (caller bug; the message names the fix). */
  | "bad-config"
  /** STORE refused: by this node's routing table it is not plausibly among the k closest to the key. */
  | "not-responsible"
  /** The peer has too many requests of ours in progress (per-peer in-flight cap); retry later. */
  | "busy"
  /** A DHT message on a link names a sender other than the identity the link authenticated. */
  | "link-mismatch"
  /** This node's own limits refused (its replay cache is full in total): not the peer's fault; retry after `retryAfterMs`. */
  | "overloaded";

const DHT_CATEGORIES = {
  malformed: "peer",
  "bad-message-signature": "peer",
  "bad-node-id": "peer",
  "stale-message": "peer",
  "replayed-message": "peer",
  "unexpected-response": "peer",
  "bad-owner-signature": "peer",
  "bad-publisher-signature": "peer",
  "key-mismatch": "peer",
  "stale-sequence": "peer",
  expired: "peer",
  "ttl-too-long": "peer",
  oversized: "peer",
  "quota-exceeded": "refused",
  "store-full": "refused",
  timeout: "transient",
  unreachable: "transient",
  "no-contacts": "transient",
  "store-io": "config",
  "bad-config": "bug",
  "not-responsible": "refused",
  busy: "transient",
  "link-mismatch": "peer",
  overloaded: "transient",
} as const satisfies KindCategories<DhtErrorKind>;

export class DhtError extends layerError<DhtErrorKind>("dht", DHT_CATEGORIES) {}

/** All kinds, for validating kinds received in ERROR responses. */
export const DHT_ERROR_KINDS: readonly DhtErrorKind[] = DhtError.kinds;

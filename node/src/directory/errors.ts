/**
 * DirectoryError: the typed error of the directory layer.
 *
 * Every function in node/src/directory throws only this error for bad input
 * (bytes from the network, a refused descriptor, vote or consensus), so a
 * caller (the link handler, the client bootstrap, the CLI) can switch on
 * `kind`: drop the peer, fetch again later, or fix its configuration.
 */
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

export type DirectoryErrorKind =
  /** Bytes are not a well-formed document of the expected type and shape. */
  | "malformed"
  /** A document is larger than the configured limit. */
  | "too-large"
  /** A descriptor's or vote's signature does not verify. */
  | "bad-signature"
  /** A descriptor was published longer ago than the accepted maximum age. */
  | "stale"
  /** A descriptor or vote is dated in the future beyond the tolerated clock skew, or a consensus is not valid yet. */
  | "future-dated"
  /** A consensus is past its valid-until time. */
  | "expired"
  /** The node is not registered and staked on chain. */
  | "not-registered"
  /** A consensus carries fewer than K valid signatures from distinct trusted discovery keys. */
  | "under-signed"
  /** A consensus carries no signature from any trusted key, or a vote or signature comes from outside the discovery set. */
  | "unknown-signer"
  /** A vote or signature is for a different voting period than the one being collected. */
  | "wrong-period"
  /** A discovery node sent two different votes for the same period (equivocation). */
  | "conflicting-vote"
  /** Too few votes (not more than half of the discovery set) to compute a consensus. */
  | "insufficient-votes"
  /** A configuration value is out of range (the trust or schedule settings, or a caller's option; the message names the fix). */
  | "bad-config"
  /** The asked node does not serve this request (e.g. a vote pushed to a node that is not a discovery node). */
  | "not-served"
  /** The request is for nodes only (the internal nodes' view) and came over a link whose peer is not a known node. */
  | "unauthorized"
  /** No node could be reached or none answered usefully (transport failures, timeouts, no consensus held). */
  | "unavailable";

/**
 * Documents that fail a check came from a peer (drop them, ask another
 * source); "bad-config" is mostly the operator's trust and schedule settings,
 * so a person fixes it; too few votes or no answer is worth another try later.
 */
const DIRECTORY_CATEGORIES = {
  malformed: "peer",
  "too-large": "peer",
  "bad-signature": "peer",
  stale: "peer",
  "future-dated": "peer",
  expired: "peer",
  "not-registered": "refused",
  "under-signed": "peer",
  "unknown-signer": "peer",
  "wrong-period": "refused",
  "conflicting-vote": "peer",
  "insufficient-votes": "transient",
  "bad-config": "config",
  "not-served": "refused",
  unauthorized: "refused",
  unavailable: "transient",
} as const satisfies KindCategories<DirectoryErrorKind>;

export class DirectoryError extends layerError<DirectoryErrorKind>("directory", DIRECTORY_CATEGORIES) {}

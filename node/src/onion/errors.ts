/**
 * CircuitError: the typed error of the onion layer.
 *
 * Owns the list of things that can go wrong with circuits and the streams in
 * them. Every public entry point of node/src/onion throws only this error (or
 * reports it through an event) for bad input, so a caller can switch on `kind`
 * instead of parsing messages. Protocol violations by a peer never throw out
 * of a relay's entry point: they become a DESTROY cell plus an event.
 */
import { layerError } from "../errors.js";
import type { KindCategories, PspErrorOptions } from "../errors.js";
import type { DestroyReason, EndReason } from "./constants.js";

export type CircuitErrorKind =
  /** The circuit was torn down; `destroyReason` says why (and `hop` which hop reported it, if known). */
  | "circuit-destroyed"
  /** Building the circuit did not finish within the build timeout. */
  | "build-timeout"
  /** A hop's ntor reply did not authenticate, or a CREATED/EXTENDED payload was malformed. */
  | "handshake-failed"
  /** The client asked for more hops than it (or the relays) allow. */
  | "too-many-hops"
  /** A path could not be chosen: too few distinct, eligible nodes. */
  | "no-path"
  /** The stream was ended by the far side or locally; `endReason` says why. */
  | "stream-closed"
  /** The service refused or does not exist at that hop (END before CONNECTED). */
  | "stream-refused"
  /** A limit was reached: circuits per peer, streams per circuit, message size, queued bytes. */
  | "resource-limit"
  /** The circuit or stream is not in a state that allows the operation (e.g. send before open). */
  | "bad-state"
  /** An argument was malformed (caller bug); the message names the field. */
  | "bad-argument"
  /** A peer sent bytes that violate the protocol (malformed relay payload, wrong command). */
  | "protocol-violation"
  /** A cell arrived for a circuit id that this node does not know. */
  | "unknown-circuit";

export interface CircuitErrorDetails extends PspErrorOptions {
  destroyReason?: DestroyReason;
  endReason?: EndReason;
  /** Index of the hop (0 = first) that reported the failure, when known. */
  hop?: number;
}

/**
 * A circuit or stream that went away, a build that timed out, a path that
 * could not be chosen from this consensus and a limit reached are all
 * worth another try later (a new circuit, a new stream); a hop that fails
 * its handshake or breaks the protocol is the peer's doing.
 */
const CIRCUIT_CATEGORIES = {
  "circuit-destroyed": "transient",
  "build-timeout": "transient",
  "handshake-failed": "peer",
  "too-many-hops": "bug",
  "no-path": "transient",
  "stream-closed": "transient",
  "stream-refused": "refused",
  "resource-limit": "transient",
  "bad-state": "bug",
  "bad-argument": "bug",
  "protocol-violation": "peer",
  "unknown-circuit": "peer",
} as const satisfies KindCategories<CircuitErrorKind>;

export class CircuitError extends layerError<CircuitErrorKind>("onion", CIRCUIT_CATEGORIES) {
  readonly destroyReason: DestroyReason | undefined;
  readonly endReason: EndReason | undefined;
  readonly hop: number | undefined;

  constructor(kind: CircuitErrorKind, message: string, details: CircuitErrorDetails = {}) {
    super(kind, message, details);
    this.destroyReason = details.destroyReason;
    this.endReason = details.endReason;
    this.hop = details.hop;
  }
}

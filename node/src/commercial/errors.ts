/**
 * CommercialError: the typed error of the commercial layer (application
 * services on commercial nodes, docs/spec/commercial.md).
 *
 * Every function in node/src/commercial throws only this error for bad input
 * or a refusal, so a caller can switch on `kind`. The kinds a commercial node
 * puts in a refusal (WIRE_REFUSAL_KINDS) keep these names on the wire.
 */
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

export type CommercialErrorKind =
  /** An option or argument is out of range or of the wrong shape: a caller bug. */
  | "bad-argument"
  /** A plugin module does not follow the plugin interface; the message names what is wrong. */
  | "bad-plugin"
  /** An open message or reply is not of the expected shape. */
  | "malformed"
  /** An open message, request or response is larger than the node's cap. */
  | "too-large"
  /** The node does not serve that application. */
  | "unknown-application"
  /** The application has no service of that name on this node. */
  | "unknown-service"
  /** The service needs the client's identity: present an access certificate. */
  | "needs-identity"
  /** The access certificate or its possession proof does not verify (forged, expired, another app or node). */
  | "bad-certificate"
  /** An open message was seen before (its nonce), or is dated outside the accepted window. */
  | "replayed"
  /** The client's request budget at this node is spent for now; retry after retryAfterMs. */
  | "rate-limited"
  /** The service refused the request by its own rule (the plugin's code is in the message). */
  | "refused"
  /** The service failed while answering. */
  | "handler-failed"
  /** The consensus lists no node serving the application (or none reachable). */
  | "no-nodes"
  /** The node could not be reached, or the stream to it was lost. */
  | "unreachable"
  /** No answer in time. */
  | "timeout"
  /** The connection or client was closed. */
  | "closed";

const COMMERCIAL_CATEGORIES = {
  "bad-argument": "bug",
  "bad-plugin": "config",
  malformed: "peer",
  "too-large": "refused",
  "unknown-application": "refused",
  "unknown-service": "refused",
  "needs-identity": "refused",
  "bad-certificate": "peer",
  replayed: "peer",
  "rate-limited": "transient",
  refused: "refused",
  "handler-failed": "transient",
  "no-nodes": "refused",
  unreachable: "transient",
  timeout: "transient",
  closed: "shutdown",
} as const satisfies KindCategories<CommercialErrorKind>;

export class CommercialError extends layerError<CommercialErrorKind>("commercial", COMMERCIAL_CATEGORIES) {}

/** Kinds a commercial node may put in a refusal of an open message or a request. */
export const WIRE_REFUSAL_KINDS: readonly CommercialErrorKind[] = [
  "malformed",
  "too-large",
  "unknown-application",
  "unknown-service",
  "needs-identity",
  "bad-certificate",
  "replayed",
  "rate-limited",
  "refused",
  "handler-failed",
];

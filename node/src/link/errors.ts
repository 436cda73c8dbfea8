/**
 * LinkError and the link close reasons.
 *
 * Owns two vocabularies: `LinkErrorKind`, what a caller of this layer can
 * switch on, and `CloseReason`, the one-byte code a CLOSE cell carries on the
 * wire so the peer learns why its link went away. Every kind maps to the code
 * we send, and every code we receive maps back to a readable name.
 *
 * Trusts nothing: unknown codes received from a peer are kept as numbers.
 */
import { codeLookup } from "../base/codes.js";
import { layerError } from "../errors.js";
import type { KindCategories, PspErrorOptions } from "../errors.js";

export type LinkErrorKind =
  /** Options were invalid (caller bug): the message names the option. */
  | "config"
  /** TCP or TLS failed (refused, reset, bad TLS record); no CLOSE cell could be exchanged. */
  | "transport"
  /** The TLS + link handshake did not finish within the handshake timeout. */
  | "handshake-timeout"
  /** The peer broke the link protocol: wrong cell at the wrong time, bad field layout. */
  | "protocol"
  /** A cell command byte this version does not know. */
  | "unknown-command"
  /** The two sides share no link protocol version. */
  | "no-common-version"
  /** The peer's AUTH signature does not verify over the transcript. */
  | "auth-failed"
  /** The peer proved an identity other than the one the dialer expected. */
  | "identity-mismatch"
  /** The responder refused an anonymous client, or a responder tried to be anonymous. */
  | "anonymous-refused"
  /** The peer closed the link with a CLOSE cell; `closeReason` says why. */
  | "peer-closed"
  /** The stream ended in the middle of a cell. */
  | "truncated"
  /** An operation on a link that is already closed or closing. */
  | "closed"
  /** The send queue grew past its cap because the peer does not read: the link was closed. */
  | "send-queue-full"
  /** The manager (or the peer) already holds its maximum number of links (of this class, or handshaking); `cap` says which. */
  | "link-cap"
  /** Too many inbound connections from this source address or its /24 (/48) prefix; `cap` says which. */
  | "source-cap"
  /** The peer (or we) stopped sending anything, even keepalives, for too long. */
  | "peer-silent"
  /** The operation was aborted because the connection manager was closed. */
  | "manager-closed";

/** One-byte close reason codes carried by CLOSE cells (docs/spec/link.md §6). */
export const CloseReason = {
  /** Orderly close with nothing wrong (e.g. the application asked). */
  DONE: 0,
  PROTOCOL_VIOLATION: 1,
  NO_COMMON_VERSION: 2,
  AUTH_FAILED: 3,
  IDENTITY_MISMATCH: 4,
  HANDSHAKE_TIMEOUT: 5,
  UNKNOWN_COMMAND: 6,
  QUEUE_OVERFLOW: 7,
  IDLE: 8,
  PEER_SILENT: 9,
  DUPLICATE_LINK: 10,
  LINK_CAP: 11,
  SHUTDOWN: 12,
  ANONYMOUS_REFUSED: 13,
  INTERNAL: 14,
} as const;

export type CloseReasonName = keyof typeof CloseReason;
export type CloseReasonCode = (typeof CloseReason)[CloseReasonName];

const closeReasons = codeLookup(CloseReason);

/** "IDLE" for 8; "UNKNOWN_REASON_200" for a code this version does not know. */
export function closeReasonName(code: number): string {
  return closeReasons.nameOf(code) ?? `UNKNOWN_REASON_${code}`;
}

/** The close reason we send to the peer when we fail the link with `kind`. */
export function closeReasonForKind(kind: LinkErrorKind): CloseReasonCode {
  switch (kind) {
    case "protocol":
    case "truncated":
      return CloseReason.PROTOCOL_VIOLATION;
    case "unknown-command":
      return CloseReason.UNKNOWN_COMMAND;
    case "no-common-version":
      return CloseReason.NO_COMMON_VERSION;
    case "auth-failed":
      return CloseReason.AUTH_FAILED;
    case "identity-mismatch":
      return CloseReason.IDENTITY_MISMATCH;
    case "anonymous-refused":
      return CloseReason.ANONYMOUS_REFUSED;
    case "handshake-timeout":
      return CloseReason.HANDSHAKE_TIMEOUT;
    case "send-queue-full":
      return CloseReason.QUEUE_OVERFLOW;
    case "peer-silent":
      return CloseReason.PEER_SILENT;
    case "link-cap":
    case "source-cap":
      return CloseReason.LINK_CAP;
    case "manager-closed":
      return CloseReason.SHUTDOWN;
    case "config":
    case "transport":
    case "peer-closed":
    case "closed":
      return CloseReason.INTERNAL;
  }
}

/** The error kind a local caller sees when the peer closed with `code`. */
export function kindForPeerCloseReason(code: number): LinkErrorKind {
  switch (code) {
    case CloseReason.NO_COMMON_VERSION:
      return "no-common-version";
    case CloseReason.LINK_CAP:
      return "link-cap";
    case CloseReason.ANONYMOUS_REFUSED:
      return "anonymous-refused";
    default:
      return "peer-closed";
  }
}

/**
 * A link that broke the protocol or failed authentication is the peer's
 * doing; one that dropped, timed out or hit a cap can be dialed again later;
 * a peer that cannot or will not speak with us (no common version, no
 * anonymous clients) refuses.
 */
const LINK_CATEGORIES = {
  config: "bug",
  transport: "transient",
  "handshake-timeout": "transient",
  protocol: "peer",
  "unknown-command": "peer",
  "no-common-version": "refused",
  "auth-failed": "peer",
  "identity-mismatch": "peer",
  "anonymous-refused": "refused",
  "peer-closed": "transient",
  truncated: "peer",
  closed: "shutdown",
  "send-queue-full": "transient",
  "link-cap": "transient",
  "source-cap": "transient",
  "peer-silent": "transient",
  "manager-closed": "shutdown",
} as const satisfies KindCategories<LinkErrorKind>;

/**
 * The connection manager's inbound budgets (issue 19): all links our peers
 * may open (maxLinks less the outbound reserve), anonymous inbound links,
 * connections still handshaking, and per source address and prefix.
 */
export type LinkCap = "links" | "anonymous" | "pending" | "per-address" | "per-prefix";
export const LINK_CAPS: readonly LinkCap[] = ["links", "anonymous", "pending", "per-address", "per-prefix"];

export class LinkError extends layerError<LinkErrorKind>("link", LINK_CATEGORIES) {
  /** The CLOSE reason involved (sent by us, or received from the peer for "peer-closed"). */
  readonly closeReason: number | undefined;
  /** For "link-cap" and "source-cap" refusals made here: the budget that was full. */
  readonly cap: LinkCap | undefined;

  constructor(kind: LinkErrorKind, message: string, options?: PspErrorOptions & { closeReason?: number; cap?: LinkCap }) {
    super(kind, message, options);
    this.closeReason = options?.closeReason;
    this.cap = options?.cap;
  }
}

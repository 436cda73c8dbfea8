/**
 * OracleError: the typed error of the oracle protocol: receipt and session-id
 * requests, the issuance store, batch commitments, replication, usage-report
 * intake and reward proofs. It lives in
 * node/src (the client raises it too); the oracle service (oracle/) re-exports it.
 *
 * Refusals travel back to the requester as `error` messages with their kind
 * (oracle-messages.ts), so a producer can switch on `kind` ("not-subscribed",
 * "bad-certificate", ...) exactly as the oracle raised it.
 */
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

export type OracleErrorKind =
  /** An option or argument is out of range: a caller bug. */
  | "bad-argument"
  /** Larger than MAX_ORACLE_MESSAGE_BYTES (MAX_ORACLE_LINK_MESSAGE_BYTES over node links). */
  | "too-large"
  /** Not a well-formed oracle message, or an unknown message type. */
  | "malformed-request"
  /** The access certificate does not verify (malformed, forged, expired, below threshold); `cause` holds the CertificateError. */
  | "bad-certificate"
  /** The identity's signature over the oracle's challenge does not verify. */
  | "bad-proof"
  | "unknown-challenge"
  | "challenge-expired"
  | "challenge-reused"
  /** The identity holds no paid subscription on chain (Subscriptions.isSubscribed). */
  | "not-subscribed"
  /** This node is not in the current on-chain oracle set: its receipts would not count. */
  | "not-an-oracle"
  /** The blind request names a key this oracle does not sign with (or none is published yet). */
  | "unknown-key"
  /** The puzzle solution does not meet the difficulty, or names a puzzle this oracle did not set. */
  | "pow-invalid"
  /** The receipt is not committed yet: retry after its batch lands. */
  | "not-committed"
  /** The oracle does not know the receipt hash. */
  | "unknown-receipt"
  | "rate-limited"
  | "busy"
  /** The oracle cannot read or write the chain right now. */
  | "chain-unavailable"
  /** The issuance store failed (disk, schema). */
  | "store-failed"
  /** A replicated row is not signed by a current oracle, or is malformed. */
  | "bad-replica"
  /** A usage report is malformed, oversized or not signed as it claims (rewards/report.ts); `cause` holds the RewardsError. */
  | "bad-report"
  /** The reporter already sent another report for the same window and part, or one overlapping it. */
  | "report-conflict"
  /** The report's window is not inside an epoch this oracle takes reports for (ended and settled, or not begun). */
  | "wrong-epoch"
  /** A viewer report's session id is not signed by a current oracle. */
  | "unknown-session"
  /** A viewer report's window is outside its session id's validity. */
  | "expired-session"
  /** The epoch asked about has no final reward root yet: retry after it settles. */
  | "not-settled"
  /** No settled reward root pays the account anything. */
  | "no-rewards"
  /** Client side: a response of an unknown kind or shape, or one that does not verify. */
  | "bad-response"
  /** Client side: no oracle could be reached through a circuit, or it did not answer in time. */
  | "unreachable";

const ORACLE_CATEGORIES = {
  "bad-argument": "bug",
  "too-large": "peer",
  "malformed-request": "peer",
  "bad-certificate": "peer",
  "bad-proof": "peer",
  "unknown-challenge": "transient",
  "challenge-expired": "transient",
  "challenge-reused": "peer",
  "not-subscribed": "refused",
  "not-an-oracle": "refused",
  "unknown-key": "refused",
  "pow-invalid": "peer",
  "not-committed": "transient",
  "unknown-receipt": "refused",
  "rate-limited": "transient",
  busy: "transient",
  "chain-unavailable": "transient",
  "store-failed": "transient",
  "bad-replica": "peer",
  "bad-report": "peer",
  "report-conflict": "peer",
  "wrong-epoch": "refused",
  "unknown-session": "refused",
  "expired-session": "refused",
  "not-settled": "transient",
  "no-rewards": "refused",
  "bad-response": "peer",
  unreachable: "transient",
} as const satisfies KindCategories<OracleErrorKind>;

export class OracleError extends layerError<OracleErrorKind>("oracle", ORACLE_CATEGORIES) {}

/** Kinds only the client side raises; every other kind is a refusal an oracle may send. */
export const ORACLE_CLIENT_SIDE_KINDS: readonly OracleErrorKind[] = ["bad-response", "unreachable", "bad-argument"];

/**
 * Refusals of a usage report that no retry and no other oracle would answer
 * otherwise (oracles replicate what they take): a reporter drops that report,
 * counting it, instead of resending it.
 */
export const FINAL_REPORT_REFUSALS: readonly OracleErrorKind[] = ["bad-report", "report-conflict", "wrong-epoch", "unknown-session", "expired-session"];

/** True when `err` is an oracle's final refusal of a usage report (FINAL_REPORT_REFUSALS). */
export function isFinalReportRefusal(err: unknown): err is OracleError {
  return err instanceof OracleError && FINAL_REPORT_REFUSALS.includes(err.kind);
}

/**
 * The rewards layer (whitepaper §8.3, issue 16): how the bandwidth nodes
 * carry for streams becomes tokens their operators claim.
 *
 * Produces and consumes:
 * - usage reports (report.ts): signed by nodes (their identity key; the
 *   bytes they sent to viewers and fed nodes, received from their feeding
 *   node, and the landing node's stream anchors) and by viewers (their
 *   session's viewer key; the bytes received per attached node), sent to
 *   the oracles (stream/oracle-messages.ts "usage-report") and replicated
 *   among them ("reports-replicate");
 * - the epoch's normalization (oracle/normalize.ts, pure): both sides of
 *   every (stream, sender, receiver) edge matched, capped by the stream's
 *   bitrate, aggregated per node and operator;
 * - the cumulative reward tree (merkle.ts): one leaf per operator with its
 *   total over all settled epochs, voted on chain (BandwidthRewards) and
 *   claimed with a proof.
 * Depends on: base/, crypto/, wire/ (signed documents, canonical CBOR),
 * stream/ (session ids, receipts), chain/.
 * Used by: node/ (the node's reporter), client/ (the viewer's reporter),
 * oracle/ (intake, normalization, settlement), cli/ (`psp operator`).
 * Trust boundary: report.ts checks a report's shape and signature only; the
 * oracle checks it against the epoch, the oracle set and the chain before it
 * counts, and normalization trusts neither side of an edge alone.
 * Spec: docs/spec/rewards.md.
 */
export { RewardsError } from "./errors.js";
export type { RewardsErrorKind } from "./errors.js";
export {
  decodeUsageReport,
  MAX_REPORT_ANCHORS,
  MAX_REPORT_ENTRIES,
  MAX_REPORT_WINDOW_SECONDS,
  MAX_USAGE_REPORT_BYTES,
  signUsageReport,
  splitUsage,
  USAGE_REPORT_TYPE,
} from "./report.js";
export type { SignUsageReportInput, StreamAnchor, UsageDirection, UsageEntry, UsageReport } from "./report.js";

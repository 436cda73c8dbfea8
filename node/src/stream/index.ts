/**
 * The streaming layer (whitepaper §8.1–§8.3, issue 15): anonymous stream
 * creation with oracle receipts, landing and distribution nodes, end-to-end
 * encrypted fan-out over direct TLS stream links, and viewer session ids.
 *
 * Produces and consumes:
 * - receipts and session ids (receipt.ts, session.ts): signed by oracle nodes
 *   (oracle/, the top-level service built on this folder), verified by
 *   landing and distribution nodes against the chain (oracle-chain.ts);
 * - stream-link frames (frames.ts) between producer, landing node,
 *   distribution nodes and viewers; chunks sealed with the stream key
 *   (crypto.ts) that only the producer and its viewers hold (ticket.ts);
 *   the ticket layout and the seal's inputs are written once, with no node:*
 *   module, in media-format.ts, which the dashboard's page player
 *   (dashboard/src/player/) imports too;
 * - creation requests through circuits (creation.ts), public stream records
 *   in the DHT (public-record.ts);
 * - usage counts for bandwidth rewards (usage.ts): what host.ts and player.ts
 *   count on stream links, cut into report windows for the node's reporter
 *   (node/usage-reporter.ts) and the viewer's (viewer-usage.ts).
 * Depends on: base/, crypto/, wire/, link/ (the TLS listener's ALPN
 * dispatch), onion/ (circuits, stream RPC), directory/ (the consensus's
 * oracles), dht/ (records), chain/ (the receipt chain view).
 * Used by: node/ (StreamHost and its admission, node/stream.ts), client/
 * (`PspClient.oracle`, `PspClient.streams`), cli/ (`psp stream`), oracle/,
 * the page player (media-format.ts only).
 * Trust boundary: a node trusts no byte on a stream link until the frame
 * decodes and the credential (receipt, session id, publish token, node
 * proof) checks; it never sees the stream key, so it forwards what it cannot
 * read. A viewer trusts the ticket it was handed and nothing from a node:
 * every chunk must open under the stream key.
 * Spec: docs/spec/streaming.md, docs/spec/oracle.md.
 */
export { StreamError } from "./errors.js";
export type { StreamErrorKind } from "./errors.js";
export { StreamMediaError } from "./media-errors.js";
export type { StreamMediaErrorKind } from "./media-errors.js";
export { OracleError } from "./oracle-errors.js";
export type { OracleErrorKind } from "./oracle-errors.js";
export { decodeTicket, encodeTicket, TICKET_PREFIX } from "./ticket.js";
export type { StreamTicket } from "./ticket.js";
export { StreamCipher, generateStreamId, generateStreamKey } from "./crypto.js";
export type { OpenedChunk } from "./crypto.js";
export { FormatFlag, decodeReceipt, receiptHashOf, signReceipt, verifyBlindReceipt, verifyReceipt, verifyReceiptAgainstChain } from "./receipt.js";
export type { BlindReceipt, LinkableReceipt, ReceiptChainView, ReceiptInclusion, StreamParams } from "./receipt.js";
export { decodeSessionId, signSessionId, verifySessionId } from "./session.js";
export type { SessionId } from "./session.js";
export { receiptChainView } from "./oracle-chain.js";
export { ReceiptReplayStore, oracleAdmission } from "./admission.js";
export type { StreamAdmission } from "./admission.js";
export { StreamHost } from "./host.js";
export type { HostCounters, HostedStreamView, StreamHostOptions } from "./host.js";
export { Publisher, openPublisher, publishReadable } from "./publisher.js";
export { Player, fetchAccessPoints, playStream } from "./player.js";
export type { PlayerStats, SealedChunk, StreamLocator } from "./player.js";
export { createPspStreams } from "./client-streams.js";
export type { CreateStreamOptions, CreatedStreamInfo, PlayOptions, PspStreams, PublishOptions } from "./client-streams.js";
export { createOracleClient, ORACLE_SERVICE } from "./oracle-client.js";
export type { ObtainedReceipt, OracleClient, OracleReceiptOptions, ViewerSession } from "./oracle-client.js";
export { STREAM_CIRCUIT_SERVICE } from "./creation.js";
export { MAX_REPORT_ANCHORS, MAX_REPORT_ENTRIES, MAX_REPORT_WINDOW_SECONDS, UsageMeter, chunkFrameBytes } from "./usage.js";
export type { EpochTiming, StreamAnchor, UsageEntry, UsageWindow } from "./usage.js";
export { ViewerUsageReporter, reportPlayerUsage } from "./viewer-usage.js";

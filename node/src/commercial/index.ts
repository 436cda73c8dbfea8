/**
 * The commercial layer (issue 17, whitepaper §5): applications' own nodes
 * serving custom protocols, published on chain (CommercialNodes), listed in
 * the consensus and reached through circuits.
 *
 * Depends on: onion/ (streams, stream RPC), directory/ (the consensus's
 * commercial entries), crypto/, wire/, base/. Used by: node/ (the
 * "commercial" role), client/ (`PspClient.app().connect()`).
 * Trust boundary: a commercial node trusts nothing in a client's messages and
 * checks identities against the authorities' certificates; a client trusts
 * the consensus for which nodes serve an app, nothing in a node's answers.
 * Spec: docs/spec/commercial.md.
 */
export { CommercialError, WIRE_REFUSAL_KINDS } from "./errors.js";
export type { CommercialErrorKind } from "./errors.js";
export { COMMERCIAL_SERVICE, decodeOpen, decodeOpenReply, encodeOpen, encodeOpenReply, signOpenProof, checkOpenProof } from "./messages.js";
export type { OpenMessage, OpenProof, OpenReply, ServiceMode } from "./messages.js";
export { checkPlugin, loadPlugin } from "./plugin.js";
export type { CommercialContext, CommercialPlugin, CommercialService, DuplexIo, DuplexService, DuplexSession, RequestService } from "./plugin.js";
export { createCommercialServer, DEFAULT_COMMERCIAL_LIMITS, OPEN_PROOF_WINDOW_MS } from "./server.js";
export type { CheckedIdentity, CommercialLimits, CommercialServer, CommercialServerOptions, CommercialStats, ServedApplication } from "./server.js";
export { applicationNodes, chooseApplicationNode, CommercialConnection, commercialErrorOf, openCommercial } from "./client.js";
export type { OpenCommercialOptions, OpenIdentity } from "./client.js";

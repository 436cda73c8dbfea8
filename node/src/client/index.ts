/**
 * The client layer: `createPspClient`, the one bootstrapped object an app
 * uses (docs/CLIENT.md).
 *
 * Depends on: every layer below it (directory, onion, dht, authority, link, crypto).
 * Used by: applications, and the CLI's devnet helpers.
 * Trust boundary: the discovery keys it is configured with (and the chain
 * binding, when given); everything else it fetches is verified against them.
 * Spec: docs/CLIENT.md.
 */
export { createPspClient, PspClient } from "./client.js";
export type { PspClientOptions, PspClientEvents, IdentityOption, ConsensusSummary, CertificateInfo, CircuitEvent, CircuitOptions, PspDht, DhtKey, DhtPutInput } from "./client.js";
export type { AppConnectOptions, PspApp } from "./client.js";
// Commercial nodes (issue 17): what app.connect() returns and throws, and what a plugin module implements.
export { CommercialConnection } from "../commercial/client.js";
export { CommercialError } from "../commercial/errors.js";
export type { CommercialErrorKind } from "../commercial/errors.js";
export type { CommercialContext, CommercialPlugin, CommercialService, DuplexIo, DuplexService, DuplexSession, RequestService } from "../commercial/plugin.js";
export type { BootstrapOption, BootstrapNode, DiscoveryTrustOption, ChainBinding } from "./bootstrap.js";
export { ClientError } from "./errors.js";
export type { ClientErrorKind } from "./errors.js";
export { readDevnetState, parseDevnetState } from "./devnet-state.js";
export type { DevnetState, DevnetNodeState, DevnetKeystore } from "./devnet-state.js";

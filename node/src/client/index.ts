/**
 * The client layer: `createPspClient`, the one bootstrapped object an app
 * uses (docs/CLIENT.md). Depends on every layer below it (directory, onion,
 * DHT, authority); used by applications and by the CLI's devnet helpers.
 * Trust boundary: the discovery keys it is configured with.
 */
export { createPspClient, PspClient } from "./client.js";
export type { PspClientOptions, PspClientEvents, IdentityOption, ConsensusSummary, CertificateInfo, CircuitEvent, CircuitOptions, PspDht, DhtKey, DhtPutInput } from "./client.js";
export type { BootstrapOption, BootstrapNode, DiscoveryTrustOption, ChainBinding } from "./bootstrap.js";
export { ClientError } from "./errors.js";
export type { ClientErrorKind } from "./errors.js";
export { readDevnetState, parseDevnetState } from "./devnet-state.js";
export type { DevnetState, DevnetNodeState, DevnetKeystore } from "./devnet-state.js";

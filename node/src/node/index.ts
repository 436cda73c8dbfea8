/**
 * The node process: layers composed by role (onion, discovery, authority,
 * oracle), its config file, the control API and the loopback onion benchmark.
 *
 * Depends on: every protocol layer (link, onion, directory, dht, chain,
 * authority) and api/.
 * Used by: `psp node run` (cli/), the devnet (scripts/lib/devnet-nodes.ts), tests.
 * Trust boundary: trusts its config file and key files; everything from the
 * network goes through the layers' own checks.
 * Spec: docs/spec/node.md and docs/spec/onion.md §15.
 */
export { startNode, pathNodeFromInfo } from "./node.js";
export type { NodeInfo, RunningNode, StartNodeOptions } from "./node.js";
export { parseNodeConfig, loadNodeConfig, NodeError, NODE_ROLES, BUILTIN_SERVICES } from "./config.js";
export type { NodeConfig, NodeErrorKind, KeySource, NodeRole, BuiltinService } from "./config.js";
export { startNodeDht, contactFor, puzzleStart, DEFAULT_RESEED_COUNT } from "./dht.js";
export type { NodeDht, NodeDhtStats, StartNodeDhtOptions } from "./dht.js";
export { startNodeDirectory, onionPathNodes, consensusPeers, NODE_SOFTWARE_VERSION } from "./directory.js";
export type { NodeDirectory, StartNodeDirectoryOptions } from "./directory.js";
export { dhtStats, nodeStatus, registerNodeMetrics, mountNodeRoutes, NODE_STATUS_SCHEMA, DHT_STATS_SCHEMA } from "./api.js";
export type { NodeApiSources } from "./api.js";
export { CHAIN_ROLE_NAMES } from "./config.js";
export type { ConfiguredPeer, NodeDhtConfig, NodeDirectoryConfig } from "./config.js";

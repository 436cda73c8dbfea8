/**
 * node/src/node: the node process (layers composed by role), its config file
 * and the loopback onion benchmark. See docs/spec/node.md and docs/spec/onion.md §15.
 */
export { startNode, pathNodeFromInfo } from "./node.js";
export type { NodeInfo, RunningNode, StartNodeOptions } from "./node.js";
export { parseNodeConfig, loadNodeConfig, NodeError, NODE_ROLES, BUILTIN_SERVICES } from "./config.js";
export type { NodeConfig, NodeErrorKind, KeySource, NodeRole, BuiltinService } from "./config.js";
export { startNodeDht, contactFor, puzzleStart, DEFAULT_RESEED_COUNT } from "./dht.js";
export type { NodeDht, NodeDhtStats, StartNodeDhtOptions } from "./dht.js";
export { startNodeDirectory, onionPathNodes, consensusPeers, NODE_SOFTWARE_VERSION } from "./directory.js";
export type { NodeDirectory, StartNodeDirectoryOptions } from "./directory.js";
export { dhtStats, nodeStatus, registerNodeMetrics, mountNodeRoutes } from "./api.js";
export type { NodeApiSources } from "./api.js";
export { CHAIN_ROLE_NAMES } from "./config.js";
export type { ConfiguredPeer, NodeDhtConfig, NodeDirectoryConfig } from "./config.js";

/**
 * node/src/node: the node process (layers composed by role), its config file
 * and the loopback onion benchmark. See docs/spec/onion.md §13.
 */
export { startNode, pathNodeFromInfo } from "./node.js";
export type { NodeInfo, RunningNode, StartNodeOptions } from "./node.js";
export { parseNodeConfig, loadNodeConfig, NodeError, NODE_ROLES, BUILTIN_SERVICES } from "./config.js";
export type { NodeConfig, NodeErrorKind, KeySource, NodeRole, BuiltinService } from "./config.js";

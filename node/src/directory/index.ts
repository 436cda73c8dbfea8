/**
 * The directory layer: descriptors, votes, the signed consensus, the
 * discovery node state machine (discovery-node.ts), the client cache and the
 * conversion to path-selection input. Import from here, or the modules.
 *
 * Depends on: base/, crypto/, wire/ (signed documents), link/ (RPC transport), onion/
 * (the path-selection node type it converts the consensus to).
 * Used by: node/ (the discovery role, and every node's consensus), client/.
 * Trust boundary: a client trusts only its configured discovery keys (K of N
 * signatures); a discovery node trusts descriptors only after their signature
 * and the chain's registration check. Frozen vectors: test/vectors/descriptor.json,
 * vote.json, consensus.json.
 * Spec: docs/spec/directory.md.
 */
export * from "./errors.js";
export * from "./config.js";
export * from "./address.js";
export * from "./descriptor.js";
export * from "./vote.js";
export * from "./consensus.js";
export * from "./schedule.js";
export * from "./discovery-node.js";
export * from "./cache.js";
export * from "./compression.js";
export * from "./path-nodes.js";
export * from "./messages.js";
export * from "./transport.js";
export * from "./internal.js";
// The networked parts use node:fs, node:events and timers; import them from
// their modules (client.ts, publisher.ts, service.ts, api.ts) so this entry
// stays bundleable for browsers.

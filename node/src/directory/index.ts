/**
 * The directory layer's public surface: descriptors, votes, the signed
 * consensus, the discovery node state machine, the client cache and the
 * conversion to path-selection input. Import from here, or the modules.
 */
export * from "./errors.js";
export * from "./config.js";
export * from "./address.js";
export * from "./descriptor.js";
export * from "./vote.js";
export * from "./consensus.js";
export * from "./schedule.js";
export * from "./authority.js";
export * from "./cache.js";
export * from "./compression.js";
export * from "./path-nodes.js";
export * from "./messages.js";
export * from "./transport.js";
// The networked parts use node:fs, node:events and timers; import them from
// their modules (client.ts, publisher.ts, service.ts, api.ts) so this entry
// stays bundleable for browsers.

/**
 * The DHT layer's public surface: S/Kademlia node, lookups, records,
 * stores, transports and the simulator.
 */
export * from "./errors.js";
export * from "./id.js";
export * from "./contact.js";
export * from "./config.js";
export * from "./routing-table.js";
export * from "./lookup.js";
export * from "./record.js";
export * from "./store.js";
export * from "./sqlite-store.js";
export * from "./messages.js";
export * from "./memory-transport.js";
export * from "./link-transport.js";
export * from "./node.js";
export * from "./identity.js";
export * from "./simulator.js";

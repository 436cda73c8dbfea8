/**
 * The DHT layer: S/Kademlia node, disjoint lookups, signed records, stores,
 * transports (in memory, over links, through circuits) and the simulator.
 *
 * Depends on: base/, crypto/ (puzzles, Ed25519), wire/ (canonical CBOR), link/ and
 * onion/ for transport.
 * Used by: node/ (every node holds the DHT), client/.
 * Trust boundary: only signed messages enter the routing table; a record is
 * stored only when its owner signature and publisher co-signature verify, its
 * key is bound to its owner and its sequence and expiry pass. Frozen vector:
 * test/vectors/dht-record.json.
 * Spec: docs/spec/dht.md.
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

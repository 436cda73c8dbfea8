/**
 * The wire layer: 512-byte cells, relay payloads, fragmentation, canonical
 * CBOR and signed documents.
 *
 * Depends on: base/, crypto/ (Ed25519 for signed documents).
 * Used by: link/, onion/, directory/, dht/, authority/.
 * Trust boundary: trusts nothing about input bytes; every malformed input is a
 * WireError. Frozen vectors: test/vectors/cell.json, relay-cell.json.
 * Spec: docs/spec/crypto-wire.md §6–§10.
 */
export * from "./errors.js";
export * from "./cell.js";
export * from "./relay.js";
export * from "./fragment.js";
export * from "./canonical.js";
export * from "./document.js";

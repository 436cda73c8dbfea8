/**
 * The wire layer's public surface: cells, relay payloads, fragmentation,
 * canonical CBOR and signed documents.
 */
export * from "./errors.js";
export * from "./cell.js";
export * from "./relay.js";
export * from "./fragment.js";
export * from "./canonical.js";
export * from "./document.js";

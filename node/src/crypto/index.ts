/**
 * The crypto layer: keys, identity strings, Ed25519/X25519, ntor, HKDF, AEAD,
 * DHT puzzles and key files. Import from here, or from the individual modules.
 *
 * Depends on: base/ only (node:crypto, @noble/*, ethers for EVM keystores).
 * Used by: every other layer.
 * Trust boundary: trusts its crypto backends; every decoder (identity strings,
 * key files, ntor messages) trusts nothing about its input and fails with
 * CryptoError.
 * Spec: docs/spec/crypto-wire.md §1–§5.
 */
export * from "./errors.js";
export { defaultBackend, randomBytes } from "./backend.js";
export type { BackendName } from "./backend.js";
export * from "./compare.js";
export * from "./ed25519.js";
export * from "./x25519.js";
export * from "./kdf.js";
export * from "./aead.js";
export * from "./ntor.js";
export * from "./hs-ntor.js";
export * from "./blinding.js";
export * from "./identity.js";
export * from "./keyfile.js";
export * from "./evm-keystore.js";
export * from "./equix.js";

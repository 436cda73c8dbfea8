/**
 * The crypto layer's public surface: keys, identities, key exchange, KDFs,
 * AEAD and key files. Import from here, or from the individual modules.
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
export * from "./identity.js";
export * from "./keyfile.js";
export * from "./evm-keystore.js";
export * from "./equix.js";

/**
 * The authority layer (docs/spec/authority.md): registration attestations
 * and access certificates, served over links and circuits.
 *
 * Depends on chain/ (the PKI: identities, sets, EIP-712 attestation types)
 * and on link/ and onion/ for transport. Used by the node process (the
 * "authority" role of `psp node run`), by createPspClient (certificates
 * through circuits) and by the `psp identity` / `psp cert` commands.
 * Trust boundary: every request is checked by service.ts against the Pki;
 * every certificate by certificate.ts against the current on-chain set.
 */
export * from "./service.js";
export * from "./certificate.js";
export * from "./node.js";
export * from "./circuit.js";

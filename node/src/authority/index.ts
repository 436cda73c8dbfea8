/**
 * The authority layer: registration attestations and access certificates,
 * served over links and circuits.
 *
 * Depends on: base/, chain/ (the PKI: identities, sets, EIP-712 attestation types),
 * crypto/, wire/, and link/ and onion/ for transport.
 * Used by: the node process (the "authority" role of `psp node run`),
 * createPspClient (certificates through circuits) and the `psp identity` /
 * `psp cert` commands.
 * Trust boundary: every request is checked by service.ts against the Pki;
 * every certificate by certificate.ts against the current on-chain authority set.
 * Frozen vector: test/vectors/access-certificate.json.
 * Spec: docs/spec/authority.md.
 */
export * from "./service.js";
export * from "./certificate.js";
export * from "./node.js";
export * from "./circuit.js";

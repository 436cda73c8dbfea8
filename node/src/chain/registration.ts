/**
 * Proof of possession for identity registration.
 *
 * The identity's Ed25519 key signs the EIP-712 attestation digest (which
 * binds chain id, registry, owner, namespace, application, kind, key and
 * deadline) under a PSP domain prefix. An authority that checks this signature
 * and then signs the attestation with its EVM signer has verified exactly what
 * the IdentityRegistry needs: this key, for this owner, on this chain.
 */
import { hexToBytes, type Hex, type LocalAccount } from "viem";
import { ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import { attestationDigest, normalizeKey, signAttestation, type AttestationContext, type SignedAttestation } from "./attestation.js";
import { ChainError } from "./errors.js";

const PROOF_DOMAIN = new TextEncoder().encode("psp-identity-registration-v1");

/** The bytes the identity key signs to prove possession for `ctx`. */
export function registrationProofMessage(ctx: AttestationContext): Uint8Array {
  const digest = hexToBytes(attestationDigest(ctx));
  const message = new Uint8Array(PROOF_DOMAIN.length + digest.length);
  message.set(PROOF_DOMAIN, 0);
  message.set(digest, PROOF_DOMAIN.length);
  return message;
}

/** Signs the proof of possession with the identity's Ed25519 secret key (32-byte seed). */
export function signRegistrationProof(secretKey: Uint8Array, ctx: AttestationContext): Uint8Array {
  return ed25519Sign(secretKey, registrationProofMessage(ctx));
}

/** True when `signature` proves possession of the registration's key for `ctx`. */
export function verifyRegistrationProof(ctx: AttestationContext, signature: Uint8Array): boolean {
  const key = hexToBytes(normalizeKey(ctx.registration.key));
  return ed25519Verify(key, registrationProofMessage(ctx), signature);
}

/**
 * What an authority does for a registration: check the proof, then attest.
 * (The authority service adds the on-chain policy checks and rate limits.)
 */
export async function attestRegistration(
  authority: Pick<LocalAccount, "address" | "signTypedData">,
  ctx: AttestationContext,
  proof: Uint8Array,
): Promise<SignedAttestation> {
  if (!verifyRegistrationProof(ctx, proof)) {
    throw new ChainError("bad-argument", "the Ed25519 proof of possession does not verify for this key, owner, chain and registry");
  }
  return await signAttestation(authority, ctx);
}

export type { Hex };

/**
 * Proof of possession for identity registration.
 *
 * The identity's Ed25519 key signs the EIP-712 attestation digest (which
 * binds chain id, registry, owner, namespace, application, kind, key and
 * deadline) under a PSP domain prefix. An authority that checks this signature
 * and then signs the attestation with its EVM signer has verified exactly what
 * the IdentityRegistry needs: this key, for this owner, on this chain.
 *
 * A key rotation is proven the same way with the new key over the
 * `KeyRotationAttestation` digest under its own prefix
 * ("psp-identity-rotation-v1"), so a registration proof can never pass as a
 * rotation proof or the reverse.
 */
import { hexToBytes, type Hex, type LocalAccount } from "viem";
import { ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import {
  attestationDigest,
  normalizeKey,
  rotationAttestationDigest,
  signAttestation,
  signRotationAttestation,
  type AttestationContext,
  type RotationAttestationContext,
  type SignedAttestation,
} from "./attestation.js";
import { ChainError } from "./errors.js";

const PROOF_DOMAIN = new TextEncoder().encode("psp-identity-registration-v1");
const ROTATION_PROOF_DOMAIN = new TextEncoder().encode("psp-identity-rotation-v1");

function prefixed(domain: Uint8Array, digestHex: Hex): Uint8Array {
  const digest = hexToBytes(digestHex);
  const message = new Uint8Array(domain.length + digest.length);
  message.set(domain, 0);
  message.set(digest, domain.length);
  return message;
}

/** The bytes the identity key signs to prove possession for `ctx`. */
export function registrationProofMessage(ctx: AttestationContext): Uint8Array {
  return prefixed(PROOF_DOMAIN, attestationDigest(ctx));
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

/** The bytes the NEW key signs to prove possession for a rotation: "psp-identity-rotation-v1" ‖ digest. */
export function rotationProofMessage(ctx: RotationAttestationContext): Uint8Array {
  return prefixed(ROTATION_PROOF_DOMAIN, rotationAttestationDigest(ctx));
}

/** Signs the rotation proof of possession with the new key's Ed25519 secret key (32-byte seed). */
export function signRotationProof(newSecretKey: Uint8Array, ctx: RotationAttestationContext): Uint8Array {
  return ed25519Sign(newSecretKey, rotationProofMessage(ctx));
}

/** True when `signature` proves possession of the rotation's new key for `ctx`. */
export function verifyRotationProof(ctx: RotationAttestationContext, signature: Uint8Array): boolean {
  const key = hexToBytes(normalizeKey(ctx.rotation.newKey));
  return ed25519Verify(key, rotationProofMessage(ctx), signature);
}

/**
 * What an authority does for a key rotation: check the new key's proof, then
 * attest. (The authority service adds the on-chain checks: the identity is
 * Active and owned by `ctx.rotation.owner`.)
 */
export async function attestRotation(
  authority: Pick<LocalAccount, "address" | "signTypedData">,
  ctx: RotationAttestationContext,
  proof: Uint8Array,
): Promise<SignedAttestation> {
  if (!verifyRotationProof(ctx, proof)) {
    throw new ChainError("bad-argument", "the Ed25519 proof of possession of the new key does not verify for this identity, owner, chain and registry");
  }
  return await signRotationAttestation(authority, ctx);
}

export type { Hex };

/**
 * Off-chain half of key rotation (node/src/chain/attestation.ts, registration.ts):
 * the rotation proof of possession is "psp-identity-rotation-v1" ‖ digest signed by
 * the NEW key, never interchangeable with a registration proof, and bad rotations
 * are refused with a typed error before anything is signed. Pure: no chain.
 */
import { describe, expect, it } from "vitest";
import { bytesToHex, hexToBytes, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { attestationDigest, recoverRotationAttestationSigner, rotationAttestationDigest, type KeyRotation } from "../../node/src/chain/attestation.js";
import {
  attestRegistration,
  attestRotation,
  registrationProofMessage,
  rotationProofMessage,
  signRegistrationProof,
  signRotationProof,
  verifyRotationProof,
} from "../../node/src/chain/registration.js";
import { ChainError } from "../../node/src/chain/errors.js";
import { kindOf as anyKindOf } from "../helpers/index.js";

const registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3" as const;
const owner = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" as const;
const authority = privateKeyToAccount(`0x${"11".repeat(32)}`);
const identityId = `0x${"ab".repeat(32)}` as Hex;

function rotationTo(newKey: Uint8Array, overrides: Partial<KeyRotation> = {}) {
  return { chainId: 31337, registry, rotation: { owner, identityId, newKey: bytesToHex(newKey), deadline: 2_000_000_000n, ...overrides } };
}

const kindOf = (fn: () => unknown) => anyKindOf(fn, ChainError);

describe("key rotation attestations off chain", () => {
  it("prefixes the rotation digest with its own domain and verifies only with the new key", async () => {
    const fresh = generateEd25519KeyPair();
    const old = generateEd25519KeyPair();
    const ctx = rotationTo(fresh.publicKey);
    const message = rotationProofMessage(ctx);
    const prefix = new TextEncoder().encode("psp-identity-rotation-v1");
    expect(message.slice(0, prefix.length)).toEqual(prefix);
    expect(bytesToHex(message.slice(prefix.length))).toBe(rotationAttestationDigest(ctx));

    const proof = signRotationProof(fresh.secretKey, ctx);
    expect(verifyRotationProof(ctx, proof)).toBe(true);
    expect(verifyRotationProof(ctx, signRotationProof(old.secretKey, ctx))).toBe(false);
    expect(verifyRotationProof(rotationTo(fresh.publicKey, { deadline: 2_000_000_001n }), proof)).toBe(false);

    const attestation = await attestRotation(authority, ctx, proof);
    expect(await recoverRotationAttestationSigner(ctx, attestation.signature)).toBe(authority.address);
    await expect(attestRotation(authority, ctx, signRotationProof(old.secretKey, ctx))).rejects.toThrow(/proof of possession/);
  });

  it("never accepts a registration proof as a rotation proof, or the reverse", async () => {
    const fresh = generateEd25519KeyPair();
    const rotation = rotationTo(fresh.publicKey);
    const registration = {
      chainId: 31337,
      registry,
      registration: { owner, namespace: "peerstream", application: "client", kind: 0, key: bytesToHex(fresh.publicKey), deadline: 2_000_000_000n },
    };
    expect(bytesToHex(rotationProofMessage(rotation))).not.toBe(bytesToHex(registrationProofMessage(registration)));
    expect(rotationAttestationDigest(rotation)).not.toBe(attestationDigest(registration));
    const registrationProof = signRegistrationProof(fresh.secretKey, registration);
    await expect(attestRotation(authority, rotation, registrationProof)).rejects.toThrow(/proof of possession/);
    await expect(attestRegistration(authority, registration, signRotationProof(fresh.secretKey, rotation))).rejects.toThrow(/proof of possession/);
  });

  it("refuses malformed rotations with a typed error", () => {
    const key = generateEd25519KeyPair().publicKey;
    expect(kindOf(() => rotationAttestationDigest(rotationTo(key, { identityId: "0x1234" })))).toBe("invalid-identity-id");
    expect(kindOf(() => rotationAttestationDigest(rotationTo(key, { owner: `0x${"00".repeat(20)}` })))).toBe("invalid-owner");
    expect(kindOf(() => rotationAttestationDigest(rotationTo(key, { newKey: `0x${"00".repeat(32)}` })))).toBe("invalid-key");
    expect(kindOf(() => rotationAttestationDigest(rotationTo(key.slice(0, 31))))).toBe("invalid-key");
    expect(kindOf(() => rotationAttestationDigest(rotationTo(key, { deadline: 1n << 64n })))).toBe("invalid-deadline");
    expect(kindOf(() => rotationAttestationDigest({ ...rotationTo(key), chainId: 0 }))).toBe("invalid-chain");
    expect(hexToBytes(rotationAttestationDigest(rotationTo(key))).length).toBe(32);
  });
});

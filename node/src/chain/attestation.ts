/**
 * Identity attestations for the on-chain IdentityRegistry (contracts/IdentityRegistry.sol).
 *
 * Owns: the EIP-712 domain and `IdentityAttestation` type an authority node signs
 * after it has verified an Ed25519 signature by the identity key over the same
 * fields, the ordering rule the contract enforces (strictly ascending signer
 * address), and the `applicationId` / `identityId` hashes. Pure functions only,
 * no RPC: the authority node, the registration script and the contract tests all
 * reuse exactly these, so what is signed here is what the contract checks.
 *
 * A key rotation is attested with its own EIP-712 type, `KeyRotationAttestation`
 * (owner, identity id, new key, deadline), so registration and rotation
 * attestations can never be swapped on chain.
 *
 * Trusts: nothing it is given. Every registration is validated (names, kind,
 * 32-byte key, owner address, deadline) before it is hashed or signed, and bad
 * input raises a ChainError whose `kind` says what to fix.
 */
import {
  encodeAbiParameters,
  getAddress,
  hashTypedData,
  isAddress,
  keccak256,
  recoverTypedDataAddress,
  toBytes,
  toHex,
  type Address,
  type Hex,
  type LocalAccount,
  type TypedDataDefinition,
} from "viem";
import { ChainError } from "./errors.js";

/** EIP-712 domain name of the IdentityRegistry. */
export const ATTESTATION_DOMAIN_NAME = "PSP IdentityRegistry";
/** EIP-712 domain version of the IdentityRegistry. */
export const ATTESTATION_DOMAIN_VERSION = "1";

/** Identity kinds as stored on chain. */
export const IDENTITY_KIND = { account: 0, node: 1, group: 2 } as const;
export type IdentityKindName = keyof typeof IDENTITY_KIND;
export type IdentityKindCode = (typeof IDENTITY_KIND)[IdentityKindName];

/** Registration policy of an application, as the contract's enum. */
export const REGISTRATION_POLICY = { open: 0, restricted: 1 } as const;

/** Identity lifecycle, as the contract's enum. */
export const IDENTITY_STATUS = { none: 0, active: 1, rotated: 2, revoked: 3 } as const;

/** The EIP-712 types of an attestation (the domain type is implied by viem). */
export const attestationTypes = {
  IdentityAttestation: [
    { name: "owner", type: "address" },
    { name: "namespace", type: "string" },
    { name: "application", type: "string" },
    { name: "kind", type: "uint8" },
    { name: "key", type: "bytes32" },
    { name: "deadline", type: "uint64" },
  ],
} as const;

/** What a registration states; mirrors `IdentityRegistry.Registration`. */
export interface Registration {
  /** EVM account that will own the identity. */
  owner: Address;
  namespace: string;
  application: string;
  /** 0 account, 1 node, 2 group. */
  kind: number;
  /** Ed25519 public key, 32 bytes. */
  key: Hex;
  /** Unix seconds after which the contract refuses the attestation. */
  deadline: bigint;
}

/** Where the attestation will be used: the chain and the IdentityRegistry address. */
export interface AttestationContext {
  chainId: number;
  registry: Address;
  registration: Registration;
}

/** One authority's attestation. */
export interface SignedAttestation {
  signer: Address;
  signature: Hex;
}

export type AttestationTypedData = TypedDataDefinition<typeof attestationTypes, "IdentityAttestation">;

const NAME_PATTERN = /^[a-z0-9-]{1,32}$/;
const MAX_UINT64 = (1n << 64n) - 1n;

/** Throws unless `name` is a valid namespace or application name: 1-32 chars of [a-z0-9-]. */
export function assertValidName(name: string, what = "name"): void {
  if (!NAME_PATTERN.test(name)) {
    throw new ChainError("invalid-name", `${what} ${JSON.stringify(name)} must be 1-32 characters of a-z, 0-9 and '-' (no dots)`);
  }
}

/** Normalizes a 32-byte Ed25519 key given as hex or bytes; throws on any other length. */
export function normalizeKey(key: Hex | Uint8Array): Hex {
  const bytes = typeof key === "string" ? hexToBytesChecked(key) : key;
  if (bytes.length !== 32) {
    throw new ChainError("invalid-key", `an Ed25519 public key is 32 bytes, got ${bytes.length}`);
  }
  if (bytes.every((b) => b === 0)) {
    throw new ChainError("invalid-key", "the all-zero key is not a usable Ed25519 public key");
  }
  return toHex(bytes);
}

function hexToBytesChecked(hex: string): Uint8Array {
  if (!/^0x([0-9a-fA-F]{2})*$/.test(hex)) {
    throw new ChainError("invalid-key", `key ${JSON.stringify(hex)} is not 0x-prefixed hex with whole bytes`);
  }
  return toBytes(hex as Hex);
}

/** Checks every field the contract checks (except the attestations) and returns a normalized copy. */
export function validateRegistration(r: Registration): Registration {
  if (!isAddress(r.owner, { strict: false }) || BigInt(r.owner) === 0n) {
    throw new ChainError("invalid-owner", `owner ${JSON.stringify(r.owner)} must be a non-zero EVM address`);
  }
  assertValidName(r.namespace, "namespace");
  assertValidName(r.application, "application");
  if (!Number.isInteger(r.kind) || r.kind < 0 || r.kind > 2) {
    throw new ChainError("invalid-kind", `kind ${r.kind} must be 0 (account), 1 (node) or 2 (group)`);
  }
  if (typeof r.deadline !== "bigint" || r.deadline < 0n || r.deadline > MAX_UINT64) {
    throw new ChainError("invalid-deadline", `deadline ${String(r.deadline)} must be a uint64 of unix seconds`);
  }
  return { ...r, owner: getAddress(r.owner), key: normalizeKey(r.key) };
}

/** The viem typed data an authority signs for `registration` on `chainId` at `registry`. */
export function attestationTypedData(ctx: AttestationContext): AttestationTypedData {
  if (!Number.isSafeInteger(ctx.chainId) || ctx.chainId <= 0) {
    throw new ChainError("invalid-chain", `chain id ${ctx.chainId} must be a positive integer`);
  }
  if (!isAddress(ctx.registry, { strict: false })) {
    throw new ChainError("invalid-chain", `registry ${JSON.stringify(ctx.registry)} is not an address`);
  }
  const r = validateRegistration(ctx.registration);
  return {
    domain: {
      name: ATTESTATION_DOMAIN_NAME,
      version: ATTESTATION_DOMAIN_VERSION,
      chainId: ctx.chainId,
      verifyingContract: getAddress(ctx.registry),
    },
    types: attestationTypes,
    primaryType: "IdentityAttestation",
    message: {
      owner: r.owner,
      namespace: r.namespace,
      application: r.application,
      kind: r.kind,
      key: r.key,
      deadline: r.deadline,
    },
  };
}

/** The EIP-712 digest; equals `IdentityRegistry.attestationDigest(registration)` on that chain. */
export function attestationDigest(ctx: AttestationContext): Hex {
  return hashTypedData(attestationTypedData(ctx));
}

/** Signs the attestation with an authority's EVM signer key. */
export async function signAttestation(
  account: Pick<LocalAccount, "address" | "signTypedData">,
  ctx: AttestationContext,
): Promise<SignedAttestation> {
  const signature = await account.signTypedData(attestationTypedData(ctx));
  return { signer: getAddress(account.address), signature };
}

/** Recovers the signer of an attestation (what the contract's ecrecover will see). */
export async function recoverAttestationSigner(ctx: AttestationContext, signature: Hex): Promise<Address> {
  try {
    return await recoverTypedDataAddress({ ...attestationTypedData(ctx), signature });
  } catch (err) {
    throw new ChainError("invalid-signature", "attestation signature is malformed: expect 65 bytes r || s || v", { cause: err });
  }
}

/**
 * Orders attestations by strictly ascending signer address, as the contract
 * requires, and returns the signatures ready for `registerIdentity`. Two
 * attestations from one signer are refused: the contract would reject them.
 */
export function sortAttestationsBySigner(attestations: readonly SignedAttestation[]): Hex[] {
  const sorted = [...attestations].sort((a, b) => {
    const x = BigInt(a.signer);
    const y = BigInt(b.signer);
    return x < y ? -1 : x > y ? 1 : 0;
  });
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (prev !== undefined && cur !== undefined && BigInt(prev.signer) === BigInt(cur.signer)) {
      throw new ChainError("duplicate-signer", `two attestations from signer ${getAddress(cur.signer)}: keep one per authority`);
    }
  }
  return sorted.map((a) => a.signature);
}

/** keccak256(abi.encode(keccak256(namespace), keccak256(application))), as `IdentityRegistry.applicationIdOf`. */
export function applicationId(namespace: string, application: string): Hex {
  assertValidName(namespace, "namespace");
  assertValidName(application, "application");
  return keccak256(
    encodeAbiParameters([{ type: "bytes32" }, { type: "bytes32" }], [keccak256(toBytes(namespace)), keccak256(toBytes(application))]),
  );
}

/** keccak256(abi.encode(keccak256(ns), keccak256(app), uint8 kind, bytes32 key)), as `IdentityRegistry.identityIdOf`. */
export function identityId(params: { namespace: string; application: string; kind: number; key: Hex | Uint8Array }): Hex {
  assertValidName(params.namespace, "namespace");
  assertValidName(params.application, "application");
  if (!Number.isInteger(params.kind) || params.kind < 0 || params.kind > 2) {
    throw new ChainError("invalid-kind", `kind ${params.kind} must be 0 (account), 1 (node) or 2 (group)`);
  }
  return keccak256(
    encodeAbiParameters(
      [{ type: "bytes32" }, { type: "bytes32" }, { type: "uint8" }, { type: "bytes32" }],
      [keccak256(toBytes(params.namespace)), keccak256(toBytes(params.application)), params.kind, normalizeKey(params.key)],
    ),
  );
}

// ------------------------------------------------------------------ key rotation

/** The EIP-712 types of a key-rotation attestation; mirrors `IdentityRegistry.ROTATION_TYPEHASH`. */
export const rotationAttestationTypes = {
  KeyRotationAttestation: [
    { name: "owner", type: "address" },
    { name: "identityId", type: "bytes32" },
    { name: "newKey", type: "bytes32" },
    { name: "deadline", type: "uint64" },
  ],
} as const;

/** What a key rotation states: `owner` replaces the key of its Active `identityId` with `newKey`. */
export interface KeyRotation {
  /** EVM account that owns the identity and will call `rotateKey`. */
  owner: Address;
  /** The Active identity being rotated (see `identityId`). */
  identityId: Hex;
  /** The new Ed25519 public key, 32 bytes. */
  newKey: Hex;
  /** Unix seconds after which the contract refuses the attestation. */
  deadline: bigint;
}

/** Where a rotation attestation will be used: the chain and the IdentityRegistry address. */
export interface RotationAttestationContext {
  chainId: number;
  registry: Address;
  rotation: KeyRotation;
}

export type RotationAttestationTypedData = TypedDataDefinition<typeof rotationAttestationTypes, "KeyRotationAttestation">;

/** Checks every field the contract checks (except the attestations) and returns a normalized copy. */
export function validateKeyRotation(r: KeyRotation): KeyRotation {
  if (!isAddress(r.owner, { strict: false }) || BigInt(r.owner) === 0n) {
    throw new ChainError("invalid-owner", `owner ${JSON.stringify(r.owner)} must be a non-zero EVM address`);
  }
  if (typeof r.identityId !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(r.identityId)) {
    throw new ChainError("invalid-identity-id", `identity id ${JSON.stringify(r.identityId)} must be 32 bytes of 0x-prefixed hex (see identityId())`);
  }
  if (typeof r.deadline !== "bigint" || r.deadline < 0n || r.deadline > MAX_UINT64) {
    throw new ChainError("invalid-deadline", `deadline ${String(r.deadline)} must be a uint64 of unix seconds`);
  }
  return { owner: getAddress(r.owner), identityId: r.identityId.toLowerCase() as Hex, newKey: normalizeKey(r.newKey), deadline: r.deadline };
}

/** The viem typed data an authority signs for a key rotation on `chainId` at `registry`. */
export function rotationAttestationTypedData(ctx: RotationAttestationContext): RotationAttestationTypedData {
  const rotation = validateKeyRotation(ctx.rotation);
  return {
    domain: registryDomain(ctx.chainId, ctx.registry),
    types: rotationAttestationTypes,
    primaryType: "KeyRotationAttestation",
    message: rotation,
  };
}

/** The EIP-712 digest; equals `IdentityRegistry.rotationDigest(owner, identityId, newKey, deadline)` on that chain. */
export function rotationAttestationDigest(ctx: RotationAttestationContext): Hex {
  return hashTypedData(rotationAttestationTypedData(ctx));
}

/** Signs a key-rotation attestation with an authority's EVM signer key. */
export async function signRotationAttestation(
  account: Pick<LocalAccount, "address" | "signTypedData">,
  ctx: RotationAttestationContext,
): Promise<SignedAttestation> {
  const signature = await account.signTypedData(rotationAttestationTypedData(ctx));
  return { signer: getAddress(account.address), signature };
}

/** Recovers the signer of a key-rotation attestation (what the contract's ecrecover will see). */
export async function recoverRotationAttestationSigner(ctx: RotationAttestationContext, signature: Hex): Promise<Address> {
  const typedData = rotationAttestationTypedData(ctx);
  try {
    return await recoverTypedDataAddress({ ...typedData, signature });
  } catch (err) {
    throw new ChainError("invalid-signature", "rotation attestation signature is malformed: expect 65 bytes r || s || v", { cause: err });
  }
}

function registryDomain(chainId: number, registry: Address): { name: string; version: string; chainId: number; verifyingContract: Address } {
  if (!Number.isSafeInteger(chainId) || chainId <= 0) {
    throw new ChainError("invalid-chain", `chain id ${chainId} must be a positive integer`);
  }
  if (!isAddress(registry, { strict: false })) {
    throw new ChainError("invalid-chain", `registry ${JSON.stringify(registry)} is not an address`);
  }
  return { name: ATTESTATION_DOMAIN_NAME, version: ATTESTATION_DOMAIN_VERSION, chainId, verifyingContract: getAddress(registry) };
}

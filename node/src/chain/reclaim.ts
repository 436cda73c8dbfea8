/**
 * Taking back an identity registered without its key's consent
 * (IdentityRegistry.reclaimIdentity).
 *
 * Every registration, rotation and reclaim publishes the key's Ed25519 proof
 * over its digest in a `KeyConsent` event. An identity whose latest consent
 * does not verify was admitted without its key holder; that holder signs
 * "psp-identity-reclaim-v1" || the `IdentityReclaim` digest, and each
 * authority that checks both (the published consent fails, the reclaim proof
 * holds) attests the reclaim. A quorum of those attestations hands the
 * identity to the holder's chosen owner. An identity whose consent verifies
 * is never reclaimable: a thief of a key cannot take a legitimate identity,
 * and a revoked key stays revoked.
 *
 * Why off chain: no audited Solidity Ed25519 verifier exists, and a pure
 * Solidity one (SHA-512 plus curve arithmetic) costs on the order of a
 * million gas; authorities already verify Ed25519 proofs for registration.
 */
import { concatBytes } from "@noble/hashes/utils.js";
import { getAbiItem, hashTypedData, hexToBytes, type Address, type Chain, type Hex, type LocalAccount, type PublicClient, type Transport, type TypedDataDefinition } from "viem";
import { ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import { ATTESTATION_DOMAIN_NAME, ATTESTATION_DOMAIN_VERSION } from "./attestation.js";
import { ChainError } from "./errors.js";
import { identityRegistryAbi } from "./generated/abis.js";

/** KeyConsent kinds, as the contract's ConsentKind enum. */
export const CONSENT_KIND = { registration: 0, rotation: 1, reclaim: 2 } as const;
export type ConsentKindName = keyof typeof CONSENT_KIND;

const PREFIX: Record<ConsentKindName, Uint8Array> = {
  registration: new TextEncoder().encode("psp-identity-registration-v1"),
  rotation: new TextEncoder().encode("psp-identity-rotation-v1"),
  reclaim: new TextEncoder().encode("psp-identity-reclaim-v1"),
};

/** A published consent: which proof, over which digest. */
export interface KeyConsent {
  kind: ConsentKindName;
  digest: Hex;
  proof: Hex;
}

/** True when `proof` is `key`'s Ed25519 signature over the consent's prefix and digest. */
export function verifyKeyConsent(key: Hex, consent: KeyConsent): boolean {
  const keyBytes = hexToBytes(key);
  const proof = hexToBytes(consent.proof);
  if (keyBytes.length !== 32 || proof.length !== 64) return false;
  try {
    return ed25519Verify(keyBytes, concatBytes(PREFIX[consent.kind], hexToBytes(consent.digest)), proof);
  } catch {
    return false;
  }
}

export const identityReclaimTypes = {
  IdentityReclaim: [
    { name: "identityId", type: "bytes32" },
    { name: "contestedReclaims", type: "uint16" },
    { name: "newOwner", type: "address" },
    { name: "deadline", type: "uint64" },
  ],
} as const;

/** What a reclaim states; `contestedReclaims` is the identity's current `reclaims` count. */
export interface IdentityReclaim {
  identityId: Hex;
  contestedReclaims: number;
  newOwner: Address;
  deadline: bigint;
}

export interface IdentityReclaimContext {
  chainId: number;
  /** The IdentityRegistry address. */
  registry: Address;
  reclaim: IdentityReclaim;
}

export function identityReclaimTypedData(ctx: IdentityReclaimContext): TypedDataDefinition<typeof identityReclaimTypes, "IdentityReclaim"> {
  return {
    domain: { name: ATTESTATION_DOMAIN_NAME, version: ATTESTATION_DOMAIN_VERSION, chainId: ctx.chainId, verifyingContract: ctx.registry },
    types: identityReclaimTypes,
    primaryType: "IdentityReclaim",
    message: ctx.reclaim,
  };
}

/** The digest authorities sign and the key signs (prefixed) for a reclaim. */
export function identityReclaimDigest(ctx: IdentityReclaimContext): Hex {
  return hashTypedData(identityReclaimTypedData(ctx));
}

/** The key holder's proof for a reclaim (secretKey: the identity's 32-byte Ed25519 seed). */
export function signReclaimProof(secretKey: Uint8Array, ctx: IdentityReclaimContext): Uint8Array {
  return ed25519Sign(secretKey, concatBytes(PREFIX.reclaim, hexToBytes(identityReclaimDigest(ctx))));
}

/**
 * What an authority does for a reclaim: refuse unless the identity's latest
 * published consent fails for `key` and `reclaimProof` holds, then attest.
 * Throws ChainError "reclaim-refused" naming which check failed.
 */
export async function attestIdentityReclaim(
  authority: Pick<LocalAccount, "signTypedData">,
  args: { ctx: IdentityReclaimContext; key: Hex; reclaimProof: Hex; contested: KeyConsent },
): Promise<Hex> {
  if (verifyKeyConsent(args.key, args.contested)) {
    throw new ChainError("reclaim-refused", `identity ${args.ctx.reclaim.identityId} was registered with its key's consent: it cannot be reclaimed`);
  }
  if (!verifyKeyConsent(args.key, { kind: "reclaim", digest: identityReclaimDigest(args.ctx), proof: args.reclaimProof })) {
    throw new ChainError("reclaim-refused", "the reclaim proof is not the identity key's signature over this reclaim");
  }
  return await authority.signTypedData(identityReclaimTypedData(args.ctx));
}

/** The identity's latest `KeyConsent` on chain (the one a reclaim contests), or undefined. */
export async function latestKeyConsent(
  client: PublicClient<Transport, Chain>,
  registry: Address,
  identityId: Hex,
  fromBlock = 0n,
): Promise<KeyConsent | undefined> {
  let logs;
  try {
    logs = await client.getLogs({ address: registry, event: getAbiItem({ abi: identityRegistryAbi, name: "KeyConsent" }), args: { identityId }, fromBlock });
  } catch (err) {
    throw new ChainError("rpc-unreachable", `cannot read the key consents of ${identityId}: is the RPC endpoint up?`, { cause: err });
  }
  const last = logs[logs.length - 1];
  if (!last) return undefined;
  const kinds = Object.keys(CONSENT_KIND) as ConsentKindName[];
  const kind = kinds[last.args.kind ?? 0] ?? "registration";
  return { kind, digest: last.args.digest!, proof: last.args.proof! };
}

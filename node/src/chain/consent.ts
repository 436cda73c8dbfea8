/**
 * Consent to a NodeRegistry binding (contracts/NodeRegistry.sol): the EIP-712
 * `NodeConsent` a node's EVM signer signs before an operator may register the
 * node (or switch it to that signer), and the Ed25519 proof the node key signs
 * over the same digest, published on chain for anyone to check. A node key
 * registered without such a proof is taken back by its holder with
 * `reclaimNode`, attested by a quorum of authorities over `NodeReclaim`.
 *
 * Pure functions, no RPC: the operator CLI, the devnet and the contract tests
 * all sign exactly what the contract checks. The nonce is the signer's
 * `NodeRegistry.nonces(signer)`; a consent is used once.
 */
import { concatBytes } from "@noble/hashes/utils.js";
import { hashTypedData, hexToBytes, type Address, type Hex, type LocalAccount, type TypedDataDefinition } from "viem";
import { ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";

/** EIP-712 domain of the NodeRegistry. */
export const NODE_REGISTRY_DOMAIN = { name: "PSP NodeRegistry", version: "1" } as const;

export const nodeConsentTypes = {
  NodeConsent: [
    { name: "nodeKey", type: "bytes32" },
    { name: "operator", type: "address" },
    { name: "signer", type: "address" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint64" },
  ],
} as const;

export const nodeReclaimTypes = {
  NodeReclaim: [
    { name: "nodeKey", type: "bytes32" },
    { name: "contestedSeq", type: "uint32" },
    { name: "consentDigest", type: "bytes32" },
  ],
} as const;

/** What a signer consents to: serving `nodeKey` for `operator`. */
export interface NodeConsent {
  nodeKey: Hex;
  operator: Address;
  signer: Address;
  /** NodeRegistry.nonces(signer) at signing time. */
  nonce: bigint;
  /** Last second (chain time) the consent is valid. */
  deadline: bigint;
}

export interface NodeConsentContext {
  chainId: number;
  /** The NodeRegistry address. */
  registry: Address;
  consent: NodeConsent;
}

export function nodeConsentTypedData(ctx: NodeConsentContext): TypedDataDefinition<typeof nodeConsentTypes, "NodeConsent"> {
  return {
    domain: { ...NODE_REGISTRY_DOMAIN, chainId: ctx.chainId, verifyingContract: ctx.registry },
    types: nodeConsentTypes,
    primaryType: "NodeConsent",
    message: ctx.consent,
  };
}

/** The digest the signer signs (EIP-712) and the node key signs (Ed25519, prefixed). */
export function nodeConsentDigest(ctx: NodeConsentContext): Hex {
  return hashTypedData(nodeConsentTypedData(ctx));
}

/** The signer's consent: its EIP-712 signature, for `registerNode` / `setSigner`. */
export async function signNodeConsent(signer: Pick<LocalAccount, "signTypedData">, ctx: NodeConsentContext): Promise<Hex> {
  return await signer.signTypedData(nodeConsentTypedData(ctx));
}

const CONSENT_PREFIX = new TextEncoder().encode("psp-node-consent-v1");
const RECLAIM_PREFIX = new TextEncoder().encode("psp-node-reclaim-v1");

/** The bytes a node key signs: "psp-node-consent-v1" (or "psp-node-reclaim-v1") followed by the 32-byte digest. */
export function nodeKeyProofMessage(digest: Hex, reclaim = false): Uint8Array {
  return concatBytes(reclaim ? RECLAIM_PREFIX : CONSENT_PREFIX, hexToBytes(digest));
}

/** The node key's Ed25519 proof over a consent digest (secretKey: the 32-byte seed). */
export function signNodeKeyProof(secretKey: Uint8Array, digest: Hex, reclaim = false): Uint8Array {
  return ed25519Sign(secretKey, nodeKeyProofMessage(digest, reclaim));
}

/** True when `proof` is `nodeKey`'s signature over the digest (what readers check in `NodeKeyProof` events). */
export function verifyNodeKeyProof(nodeKey: Hex, digest: Hex, proof: Uint8Array, reclaim = false): boolean {
  const key = hexToBytes(nodeKey);
  return key.length === 32 && proof.length === 64 && ed25519Verify(key, nodeKeyProofMessage(digest, reclaim), proof);
}

/** The EIP-712 `NodeReclaim` authorities sign to hand `nodeKey` (registration `contestedSeq`) to its holder. */
export function nodeReclaimTypedData(args: { chainId: number; registry: Address; nodeKey: Hex; contestedSeq: number; consentDigest: Hex }): TypedDataDefinition<typeof nodeReclaimTypes, "NodeReclaim"> {
  return {
    domain: { ...NODE_REGISTRY_DOMAIN, chainId: args.chainId, verifyingContract: args.registry },
    types: nodeReclaimTypes,
    primaryType: "NodeReclaim",
    message: { nodeKey: args.nodeKey, contestedSeq: args.contestedSeq, consentDigest: args.consentDigest },
  };
}

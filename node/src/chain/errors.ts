/**
 * ChainError: the one typed error of the chain layer, for reads and
 * transactions against the contracts and for the attestations authorities
 * sign for them (attestation.ts). Every message names a fix.
 */
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

export type ChainErrorKind =
  /** The JSON-RPC endpoint cannot be reached, or a read failed. */
  | "rpc-unreachable"
  /** The RPC serves another chain than the deployment or the caller expects. */
  | "wrong-chain"
  /** No deployment file where one was looked for. */
  | "missing-deployment"
  /** A deployment file is not valid JSON or lacks a field. */
  | "bad-deployment"
  /** A deployed address holds no code on this chain (a stale deployment). */
  | "no-code"
  | "insufficient-balance"
  | "insufficient-allowance"
  /** The node is not registered in the NodeRegistry. */
  | "unknown-node"
  /** The node is operated by another account than the keystore given. */
  | "not-operator"
  | "nothing-to-withdraw"
  /** An argument was malformed (caller bug); the message names it. */
  | "bad-argument"
  /** Fewer attestations than the registry's threshold were gathered. */
  | "insufficient-attestations"
  /** The contract reverted (or would): the message carries the revert reason. */
  | "transaction-reverted"
  /** A reclaim of a squatted identity or node was refused (not eligible, or not the holder). */
  | "reclaim-refused"
  // What attestation.ts refuses before anything is hashed or signed:
  /** A namespace or application name is not 1-32 characters of a-z, 0-9 and '-'. */
  | "invalid-name"
  /** An identity kind other than 0 (account), 1 (node) or 2 (group). */
  | "invalid-kind"
  /** An identity key is not 32 bytes of usable Ed25519 key in 0x-prefixed hex. */
  | "invalid-key"
  /** An owner is not a non-zero EVM address. */
  | "invalid-owner"
  /** A deadline is not a uint64 of unix seconds. */
  | "invalid-deadline"
  /** A chain id or registry address is not usable. */
  | "invalid-chain"
  /** An attestation signature is not 65 bytes r ‖ s ‖ v. */
  | "invalid-signature"
  /** A rotation's identity id is not 32 bytes of 0x-prefixed hex. */
  | "invalid-identity-id"
  /** Two attestations from one signer (the contract would reject them). */
  | "duplicate-signer";

/**
 * A wrong chain, deployment or keystore is the operator's to fix; what the
 * contracts say no to (balances, registrations, reverts) is refused; input
 * to the attestation helpers is the caller's to get right, except a
 * signature, which comes from an authority.
 */
const CHAIN_CATEGORIES = {
  "rpc-unreachable": "transient",
  "wrong-chain": "config",
  "missing-deployment": "config",
  "bad-deployment": "config",
  "no-code": "config",
  "insufficient-balance": "refused",
  "insufficient-allowance": "refused",
  "unknown-node": "refused",
  "not-operator": "config",
  "nothing-to-withdraw": "refused",
  "bad-argument": "bug",
  "insufficient-attestations": "refused",
  "transaction-reverted": "refused",
  "reclaim-refused": "refused",
  "invalid-name": "bug",
  "invalid-kind": "bug",
  "invalid-key": "bug",
  "invalid-owner": "bug",
  "invalid-deadline": "bug",
  "invalid-chain": "bug",
  "invalid-signature": "peer",
  "invalid-identity-id": "bug",
  "duplicate-signer": "bug",
} as const satisfies KindCategories<ChainErrorKind>;

export class ChainError extends layerError<ChainErrorKind>("chain", CHAIN_CATEGORIES) {}

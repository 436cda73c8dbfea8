/**
 * A tiny Merkle tree builder matching OpenZeppelin's MerkleProof: pairs are hashed
 * sorted (commutative keccak256), an odd node at the end of a layer is promoted
 * unchanged. Leaves are the double-hashed "standard" leaves the contracts expect:
 *   reward leaf  = keccak256(keccak256(abi.encode(address account, uint256 cumulativeAmount)))
 *                  (the node's own cumulative tree, node/src/rewards/merkle.ts, re-exported here)
 *   receipt leaf = keccak256(keccak256(abi.encode(bytes32 receiptHash)))
 * Owns nothing on chain; trusts nothing. Used by tests and scripts/bench/gas-core.ts.
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex, encodeAbiParameters, hexToBytes, type Address, type Hex } from "viem";
import { merkleLayers, merkleProof } from "../../../node/src/rewards/merkle.js";
import { buildRewardTree as buildCumulativeTree, type RewardTree } from "../../../node/src/rewards/merkle.js";

export { rewardLeaf, verifyRewardProof, type RewardTree } from "../../../node/src/rewards/merkle.js";

export interface MerkleTree {
  root: Hex;
  leafCount: number;
  /** Sibling hashes from the leaf up, as `bytes32[]` for MerkleProof.verify. */
  proof(index: number): Hex[];
}

/** Builds a tree over already-hashed 32-byte leaves, in the given order. */
export function buildTree(leaves: readonly Hex[]): MerkleTree {
  if (leaves.length === 0) throw new RangeError("buildTree: at least one leaf is needed");
  const layers = merkleLayers(leaves.map((l) => hexToBytes(l)));
  const top = layers[layers.length - 1] as Uint8Array[];
  return {
    root: bytesToHex(top[0] as Uint8Array),
    leafCount: leaves.length,
    proof(index: number): Hex[] {
      if (!Number.isInteger(index) || index < 0 || index >= leaves.length) {
        throw new RangeError(`proof: index ${index} outside 0..${leaves.length - 1}`);
      }
      return merkleProof(layers, index);
    },
  };
}

function doubleHash(encoded: Hex): Hex {
  return bytesToHex(keccak_256(keccak_256(hexToBytes(encoded))));
}

/** OracleReceipts leaf. */
export function receiptLeaf(receiptHash: Hex): Hex {
  return doubleHash(encodeAbiParameters([{ type: "bytes32" }], [receiptHash]));
}

export interface RewardEntry {
  account: Address;
  /** The account's cumulative amount. */
  amount: bigint;
}

/** The cumulative reward tree of `entries` (one per account), built by the node's own code. */
export function buildRewardTree(entries: readonly RewardEntry[]): RewardTree {
  return buildCumulativeTree(entries.map((e) => [e.account, e.amount] as const));
}

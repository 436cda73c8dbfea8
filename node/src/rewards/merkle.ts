/**
 * The cumulative reward tree that oracles vote on chain and operators claim
 * against (BandwidthRewards, docs/spec/contracts-core.md "BandwidthRewards").
 *
 * One leaf per account: keccak256(keccak256(abi.encode(address account,
 * uint256 cumulative))), where `cumulative` is everything the account earned
 * over all settled epochs up to and including the root's epoch (the same
 * double-hashed "standard" leaf as OpenZeppelin's StandardMerkleTree). Pairs
 * are hashed sorted (OpenZeppelin MerkleProof); leaves sit in ascending order
 * of their lower-case address and an odd node at the end of a layer is
 * promoted unchanged. So the same amounts give the same root on every oracle,
 * whatever order they were listed in.
 *
 * Rules: an account with a zero cumulative amount gets no leaf (it has
 * nothing to claim, and oracles that list it and oracles that do not agree
 * on the root); an account listed twice (in any letter case), a negative
 * amount, or a total above 2^128 - 1 (the contract's uint128) is refused
 * with a RangeError. There is no tree without a leaf: while nothing is owed
 * to anyone, oracles do not vote (the contract refuses a zero root), and an
 * epoch that adds nothing re-uses the previous cumulative amounts.
 *
 * Owns: the leaf encoding, the tree shape and proofs. Trusts: nothing; pure
 * and synchronous (10,000 leaves build in well under a second).
 */
import { keccak_256 } from "@noble/hashes/sha3.js";
import { bytesToHex, getAddress, hexToBytes, isAddress, numberToBytes, type Address, type Hex } from "viem";

/** The largest cumulative total the contract stores (uint128). */
export const MAX_REWARD_TOTAL = 2n ** 128n - 1n;

export interface RewardLeaf {
  /** Checksummed address the claim pays. */
  account: Address;
  /** Everything the account earned up to the root's epoch (wei of PSP). */
  cumulative: bigint;
}

export interface RewardTree {
  root: Hex;
  /** Sum of the leaves: the root's cumulativeTotal on chain. */
  total: bigint;
  /** Sorted by lower-case address; zero amounts left out. */
  leaves: readonly RewardLeaf[];
  /** Sibling hashes from the leaf up (`bytes32[]` for claim); RangeError for an account without a leaf. */
  proof(account: Address): Hex[];
  /** The account's cumulative amount, undefined when it has no leaf. */
  amountOf(account: Address): bigint | undefined;
}

function leafBytes(account: Address, cumulative: bigint): Uint8Array {
  // abi.encode(address, uint256): the address left-padded to 32 bytes, then the amount.
  const encoded = new Uint8Array(64);
  encoded.set(hexToBytes(account), 12);
  encoded.set(numberToBytes(cumulative, { size: 32 }), 32);
  return keccak_256(keccak_256(encoded));
}

function checkAccount(account: string): Address {
  if (typeof account !== "string" || !isAddress(account, { strict: false })) throw new TypeError(`reward tree: ${String(account)} is not an EVM address`);
  return getAddress(account);
}

function checkAmount(account: string, cumulative: bigint): void {
  if (typeof cumulative !== "bigint" || cumulative < 0n || cumulative > MAX_REWARD_TOTAL) {
    throw new RangeError(`reward tree: the amount of ${account} must be a bigint in 0..2^128-1, got ${String(cumulative)}`);
  }
}

/** The claim leaf of (account, cumulative), as BandwidthRewards computes it. */
export function rewardLeaf(account: Address, cumulative: bigint): Hex {
  const checked = checkAccount(account);
  checkAmount(checked, cumulative);
  return bytesToHex(leafBytes(checked, cumulative));
}

function compare(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

/** OpenZeppelin MerkleProof's node: keccak256 of the sorted pair. */
export function hashPair(a: Uint8Array, b: Uint8Array): Uint8Array {
  const buf = new Uint8Array(64);
  const [lo, hi] = compare(a, b) <= 0 ? [a, b] : [b, a];
  buf.set(lo, 0);
  buf.set(hi, 32);
  return keccak_256(buf);
}

/** A tree's layers over 32-byte leaves in the given order (an odd last node is promoted); the last layer holds the root. */
export function merkleLayers(leaves: readonly Uint8Array[]): Uint8Array[][] {
  const layers: Uint8Array[][] = [[...leaves]];
  for (let layer = layers[0] as Uint8Array[]; layer.length > 1; ) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < layer.length; i += 2) {
      const left = layer[i] as Uint8Array;
      const right = layer[i + 1];
      next.push(right === undefined ? left : hashPair(left, right));
    }
    layers.push(next);
    layer = next;
  }
  return layers;
}

/** The sibling hashes from leaf `index` up (MerkleProof's `proof`). */
export function merkleProof(layers: readonly Uint8Array[][], index: number): Hex[] {
  const out: Hex[] = [];
  let i = index;
  for (const layer of layers.slice(0, -1)) {
    const sibling = layer[i ^ 1];
    if (sibling !== undefined) out.push(bytesToHex(sibling));
    i >>= 1;
  }
  return out;
}

/** True when `proof` places (account, cumulative) under `root` (MerkleProof.verify). False for malformed input. */
export function verifyRewardProof(root: Hex, account: Address, cumulative: bigint, proof: readonly Hex[]): boolean {
  try {
    let node = hexToBytes(rewardLeaf(account, cumulative));
    for (const sibling of proof) {
      const bytes = hexToBytes(sibling);
      if (bytes.length !== 32) return false;
      node = hashPair(node, bytes);
    }
    return bytesToHex(node) === root.toLowerCase();
  } catch {
    return false;
  }
}

/** Builds the tree of every account's cumulative amount (see the file header for the rules). */
export function buildRewardTree(amounts: ReadonlyMap<Address, bigint> | Iterable<readonly [Address, bigint]>): RewardTree {
  const byKey = new Map<string, RewardLeaf>();
  let total = 0n;
  for (const [raw, cumulative] of amounts) {
    const account = checkAccount(raw);
    checkAmount(account, cumulative);
    const key = account.toLowerCase();
    if (byKey.has(key)) throw new RangeError(`reward tree: ${account} is listed twice`);
    if (cumulative === 0n) continue;
    byKey.set(key, { account, cumulative });
    total += cumulative;
  }
  if (total > MAX_REWARD_TOTAL) throw new RangeError(`reward tree: the total ${total} exceeds the contract's 2^128-1`);
  if (byKey.size === 0) throw new RangeError("reward tree: no account is owed anything, so there is no root to vote");
  const keys = [...byKey.keys()].sort();
  const leaves = keys.map((k) => byKey.get(k) as RewardLeaf);
  const index = new Map(keys.map((k, i) => [k, i]));
  const layers = merkleLayers(leaves.map((l) => leafBytes(l.account, l.cumulative)));
  const root = bytesToHex((layers[layers.length - 1] as Uint8Array[])[0] as Uint8Array);
  const indexOf = (account: Address): number | undefined => (typeof account === "string" ? index.get(account.toLowerCase()) : undefined);
  return {
    root,
    total,
    leaves,
    proof(account: Address): Hex[] {
      const at = indexOf(account);
      if (at === undefined) throw new RangeError(`reward tree: ${String(account)} has no leaf`);
      return merkleProof(layers, at);
    },
    amountOf(account: Address): bigint | undefined {
      const at = indexOf(account);
      return at === undefined ? undefined : (leaves[at] as RewardLeaf).cumulative;
    },
  };
}

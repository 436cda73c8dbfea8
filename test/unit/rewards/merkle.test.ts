/**
 * The cumulative reward tree (node/src/rewards/merkle.ts): its leaves are the
 * contract's (abi.encode and OpenZeppelin's standard leaf), every proof checks
 * with OpenZeppelin's own verifier, the root does not depend on listing order,
 * letter case or zero amounts, malformed input is refused, and the frozen
 * vector test/vectors/reward-tree.json still comes out byte for byte. The
 * contract side (claims paying exactly these leaves) is test/contracts/rewards.test.ts.
 */
import { readFileSync } from "node:fs";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeAbiParameters, getAddress, keccak256, toHex, type Address, type Hex } from "viem";
import { buildRewardTree, MAX_REWARD_TOTAL, rewardLeaf, verifyRewardProof } from "../../../node/src/rewards/merkle.js";

const addressOf = (i: number): Address => getAddress(keccak256(toHex(`reward-account-${i}`)).slice(0, 42));
const ENCODING = ["address", "uint256"];

interface Vector {
  input: { account: Address; cumulative: string }[];
  leaves: { account: Address; cumulative: string; leaf: Hex }[];
  root: Hex;
  total: string;
  proof: { account: Address; cumulative: string; proof: Hex[] };
}

describe("reward tree: leaves and proofs", () => {
  it("hashes the contract's leaf: keccak256(keccak256(abi.encode(account, cumulative)))", () => {
    const account = addressOf(1);
    const encoded = encodeAbiParameters([{ type: "address" }, { type: "uint256" }], [account, 123n]);
    expect(rewardLeaf(account, 123n)).toBe(keccak256(keccak256(encoded)));
    expect(rewardLeaf(account.toLowerCase() as Address, 123n)).toBe(rewardLeaf(account, 123n));
  });

  it("gives proofs OpenZeppelin's verifier accepts, for odd and even leaf counts", () => {
    for (const n of [1, 2, 3, 5, 8, 13]) {
      const amounts = new Map(Array.from({ length: n }, (_, i) => [addressOf(i), BigInt(i + 1) * 10n ** 18n] as const));
      const tree = buildRewardTree(amounts);
      expect(tree.leaves.map((l) => l.account.toLowerCase())).toEqual([...amounts.keys()].map((a) => a.toLowerCase()).sort());
      expect(tree.total).toBe([...amounts.values()].reduce((a, b) => a + b, 0n));
      for (const [account, amount] of amounts) {
        const proof = tree.proof(account);
        expect(StandardMerkleTree.verify(tree.root, ENCODING, [account, amount], proof)).toBe(true);
        expect(verifyRewardProof(tree.root, account, amount, proof)).toBe(true);
        expect(tree.amountOf(account)).toBe(amount);
      }
      if (n === 1) expect([tree.root, tree.proof(addressOf(0))]).toEqual([rewardLeaf(addressOf(0), 10n ** 18n), []]);
    }
  });

  it("refuses a proof of another amount, another account, a changed sibling or malformed hex", () => {
    const tree = buildRewardTree([
      [addressOf(1), 10n],
      [addressOf(2), 20n],
      [addressOf(3), 30n],
    ]);
    const proof = tree.proof(addressOf(1));
    expect(verifyRewardProof(tree.root, addressOf(1), 11n, proof)).toBe(false);
    expect(verifyRewardProof(tree.root, addressOf(2), 10n, proof)).toBe(false);
    expect(verifyRewardProof(tree.root, addressOf(1), 10n, [...proof.slice(1), proof[0]!])).toBe(proof.length < 2);
    expect(verifyRewardProof(tree.root, addressOf(1), 10n, [`0x${"00".repeat(32)}`, ...proof.slice(1)])).toBe(false);
    expect(verifyRewardProof(tree.root, addressOf(1), 10n, ["0x1234"])).toBe(false);
    expect(verifyRewardProof(tree.root, "0xnot-an-address" as Address, 10n, proof)).toBe(false);
    expect(verifyRewardProof(tree.root, addressOf(1), -1n, proof)).toBe(false);
    expect(() => tree.proof(addressOf(9))).toThrow(RangeError);
    expect(tree.amountOf(addressOf(9))).toBeUndefined();
  });
});

describe("reward tree: determinism and input rules", () => {
  it("builds the same root whatever the listing order, letter case, or zero amounts listed", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 500 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.bigInt({ min: 1n, max: 10n ** 30n }), { minLength: 40, maxLength: 40 }),
        fc.integer(),
        (ids, values, seed) => {
          const entries = ids.map((id, i) => [addressOf(id), values[i]!] as [Address, bigint]);
          const tree = buildRewardTree(new Map(entries));
          const shuffled = [...entries].sort(
            (a, b) => ((a[0].charCodeAt(5 + (Math.abs(seed) % 30)) ^ seed) & 7) - ((b[0].charCodeAt(5 + (Math.abs(seed) % 30)) ^ seed) & 7),
          );
          const recased = shuffled.map(([a, v], i) => [(i % 2 === 0 ? a.toLowerCase() : a) as Address, v] as [Address, bigint]);
          const withZeros: [Address, bigint][] = [...recased, [addressOf(1000), 0n], [addressOf(1001), 0n]];
          const again = buildRewardTree(withZeros);
          expect(again.root).toBe(tree.root);
          expect(again.total).toBe(tree.total);
          const [account, amount] = entries[Math.abs(seed) % entries.length]!;
          expect(StandardMerkleTree.verify(tree.root, ENCODING, [account, amount], again.proof(account))).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("refuses duplicates, negative or oversized amounts, bad addresses and an empty map", () => {
    const a = addressOf(1);
    expect(() =>
      buildRewardTree([
        [a, 1n],
        [a.toLowerCase() as Address, 2n],
      ]),
    ).toThrow(/listed twice/);
    expect(() =>
      buildRewardTree([
        [a, 1n],
        [a, 0n],
      ]),
    ).toThrow(/listed twice/);
    expect(() => buildRewardTree([[a, -1n]])).toThrow(RangeError);
    expect(() => buildRewardTree([[a, MAX_REWARD_TOTAL + 1n]])).toThrow(RangeError);
    expect(() => buildRewardTree([[a, 1n] as [Address, bigint], [addressOf(2), 5 as unknown as bigint]])).toThrow(RangeError);
    expect(() =>
      buildRewardTree([
        [a, MAX_REWARD_TOTAL],
        [addressOf(2), 1n],
      ]),
    ).toThrow(/exceeds/);
    expect(() => buildRewardTree([["0x1234" as Address, 1n]])).toThrow(TypeError);
    expect(() => buildRewardTree(new Map())).toThrow(/no account is owed/);
    expect(() => buildRewardTree([[a, 0n]])).toThrow(/no account is owed/);
    expect(buildRewardTree([[a, MAX_REWARD_TOTAL]]).total).toBe(MAX_REWARD_TOTAL);
  });

  it("builds a 10,000-account tree whose proofs all check", () => {
    const amounts = new Map(Array.from({ length: 10_000 }, (_, i) => [addressOf(i), BigInt(i + 1)] as const));
    const tree = buildRewardTree(amounts);
    expect(tree.leaves.length).toBe(10_000);
    for (const i of [0, 1, 4999, 9998, 9999]) {
      const proof = tree.proof(addressOf(i));
      expect(proof.length).toBeLessThanOrEqual(14); // ceil(log2(10,000)); leaves past the last full pair are promoted
      expect(verifyRewardProof(tree.root, addressOf(i), BigInt(i + 1), proof)).toBe(true);
    }
  });
});

describe("reward tree: frozen vector (test/vectors/reward-tree.json)", () => {
  it("rebuilds the pinned leaves, root, total and proof", () => {
    const v = JSON.parse(readFileSync(new URL("../../vectors/reward-tree.json", import.meta.url), "utf8")) as Vector;
    const tree = buildRewardTree(v.input.map((e) => [e.account, BigInt(e.cumulative)] as [Address, bigint]));
    expect(tree.leaves.map((l) => ({ account: l.account, cumulative: l.cumulative.toString(), leaf: rewardLeaf(l.account, l.cumulative) }))).toEqual(v.leaves);
    expect([tree.root, tree.total.toString()]).toEqual([v.root, v.total]);
    expect(tree.proof(v.proof.account)).toEqual(v.proof.proof);
    expect(StandardMerkleTree.verify(v.root, ENCODING, [v.proof.account, BigInt(v.proof.cumulative)], v.proof.proof)).toBe(true);
  });
});

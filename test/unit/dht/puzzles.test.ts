import { describe, expect, it } from "vitest";
import {
  leadingZeroBits,
  nodeIdFromPublicKey,
  solveDynamicPuzzle,
  solveStaticPuzzle,
  verifyDynamicPuzzle,
  verifyStaticPuzzle,
} from "../../../node/src/crypto/puzzles.js";
import { sha256 } from "@noble/hashes/sha2.js";

describe("crypto puzzles", () => {
  it("counts leading zero bits", () => {
    expect(leadingZeroBits(Uint8Array.from([0, 0, 0x10]))).toBe(19);
    expect(leadingZeroBits(Uint8Array.from([0x80]))).toBe(0);
    expect(leadingZeroBits(new Uint8Array(4))).toBe(32);
  });

  it("static puzzle: a solved key verifies, a bit flip in id or key does not", () => {
    const { keyPair, nodeId, attempts } = solveStaticPuzzle({ difficulty: 6 });
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(leadingZeroBits(sha256(nodeId))).toBeGreaterThanOrEqual(6);
    expect(verifyStaticPuzzle(keyPair.publicKey, nodeId, 6)).toBe(true);
    const otherId = nodeId.slice();
    otherId[0] = (otherId[0] as number) ^ 1;
    expect(verifyStaticPuzzle(keyPair.publicKey, otherId, 6)).toBe(false);
    expect(verifyStaticPuzzle(keyPair.publicKey, nodeId.subarray(1), 6)).toBe(false);
  });

  it("static puzzle: an id that misses the difficulty is rejected", () => {
    // Find a key whose H(H(pub)) starts with a 1 bit: it can never meet difficulty >= 1.
    let found = false;
    for (let i = 0; i < 64 && !found; i++) {
      const { keyPair, nodeId } = solveStaticPuzzle({ difficulty: 0 });
      if (leadingZeroBits(sha256(nodeId)) === 0) {
        expect(verifyStaticPuzzle(keyPair.publicKey, nodeId, 0)).toBe(true);
        expect(verifyStaticPuzzle(keyPair.publicKey, nodeId, 1)).toBe(false);
        found = true;
      }
    }
    expect(found).toBe(true);
  });

  it("dynamic puzzle: a solution verifies, a wrong X or another id does not", () => {
    const id = nodeIdFromPublicKey(new Uint8Array(32).fill(7));
    const { x } = solveDynamicPuzzle(id, { difficulty: 10 });
    expect(verifyDynamicPuzzle(id, x, 10)).toBe(true);
    const otherId = id.slice();
    otherId[31] = (otherId[31] as number) ^ 0x40;
    // A random other id passes difficulty 10 with probability 2^-10; this one is fixed and checked.
    expect(verifyDynamicPuzzle(otherId, x, 10)).toBe(false);
    expect(verifyDynamicPuzzle(id, new Uint8Array(31), 10)).toBe(false);
  });

  it("gives up with a typed error instead of looping forever", () => {
    expect(() => solveDynamicPuzzle(new Uint8Array(32), { difficulty: 40, maxAttempts: 10 })).toThrow(
      expect.objectContaining({ kind: "bad-length" }),
    );
    expect(() => verifyDynamicPuzzle(new Uint8Array(32), new Uint8Array(32), 99)).toThrow(expect.objectContaining({ kind: "bad-length" }));
  });
});

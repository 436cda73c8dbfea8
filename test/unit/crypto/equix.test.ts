/**
 * Equi-X and the hspow-spec v1 proof of work against Tor's published vectors
 * (test/vectors/equix-vectors.json, equix-pow-v1-vectors.json). Solving costs a few hundred
 * milliseconds each, so only a handful of challenges are solved; every vector solution is verified.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  EQUIX_NUM_IDX,
  equixAssertValid,
  equixSolutionFromBytes,
  equixSolutionToBytes,
  equixSolve,
  equixTrySolve,
  equixVerify,
  powChallenge,
  powSolve,
  powVerify,
} from "../../../node/src/crypto/equix.js";
import type { EquixSolution, PowV1Solution } from "../../../node/src/crypto/equix.js";
import { CryptoError } from "../../../node/src/crypto/errors.js";
import vectors from "../../vectors/equix-vectors.json" with { type: "json" };
import powVectors from "../../vectors/equix-pow-v1-vectors.json" with { type: "json" };

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const indices = (s: string[]): number[] => s.map((x) => parseInt(x, 16));
const fmt = (s: EquixSolution): string[] => Array.from(s, (x) => x.toString(16).padStart(4, "0"));
const SOLVED = new Set(["zzz", "", "01234567890123456789", "bsipdp", "qqq"]);

function kindOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CryptoError);
    return (err as CryptoError).kind;
  }
  return undefined;
}

describe("Equi-X vectors (Tor test_crypto_equix)", () => {
  it.each(vectors.solve.filter((v) => SOLVED.has(v.challenge)))("solves $challenge exactly as Tor does", (v) => {
    const sols = equixTrySolve(enc(v.challenge));
    if (v.solutions === null) {
      expect(sols).toBeUndefined();
      expect(kindOf(() => equixSolve(enc(v.challenge)))).toBe("hashx-bad-seed");
      return;
    }
    expect(sols?.map(fmt)).toEqual(v.solutions);
    for (const s of sols!) expect(equixVerify(enc(v.challenge), s)).toEqual({ ok: true });
  });

  it.each(vectors.solve.filter((v) => v.solutions !== null && v.solutions.length > 0))(
    "verifies every solution for $challenge, and refuses variations with a typed reason",
    (v) => {
      const c = enc(v.challenge);
      for (const sol of v.solutions!) {
        const s = indices(sol);
        expect(equixVerify(c, s)).toEqual({ ok: true });
        expect(equixVerify(c, equixSolutionToBytes(s))).toEqual({ ok: true });
        // Reordered: swap the first two indices.
        expect(equixVerify(c, [s[1]!, s[0]!, ...s.slice(2)])).toEqual({ ok: false, reason: "equix-order" });
        // Reordered: swap the two halves.
        expect(equixVerify(c, [...s.slice(4), ...s.slice(0, 4)])).toEqual({ ok: false, reason: "equix-order" });
        // Altered: first index plus one (still in order).
        expect(equixVerify(c, [s[0]! + 1, ...s.slice(1)])).toEqual({ ok: false, reason: "equix-partial-sum" });
        // Duplicate index: the first index twice.
        expect(equixVerify(c, [s[0]!, s[0]!, ...s.slice(2)])).toEqual({ ok: false, reason: "equix-partial-sum" });
        // One index repeated eight times.
        expect(equixVerify(c, new Array<number>(8).fill(s[3]!))).toEqual({ ok: false, reason: "equix-partial-sum" });
        // Right answer, wrong challenge.
        expect(equixVerify(enc(v.challenge + "!"), s).ok).toBe(false);
      }
    },
  );

  it.each(vectors.verify)("verify-only vector $result", (v) => {
    const r = equixVerify(enc(v.challenge), indices(v.solution));
    expect(r.ok ? "ok" : r.reason).toBe(v.result);
    const kind = kindOf(() => equixAssertValid(enc(v.challenge), indices(v.solution)));
    expect(kind ?? "ok").toBe(v.result);
  });

  it("accepts exactly one of the 40,320 orderings of a solution", () => {
    const c = new Uint8Array(4); // u32 0, little-endian
    const sols = equixSolve(c);
    expect(sols.length).toBe(1);
    const counts: Record<string, number> = {};
    const items = Array.from(sols[0]!);
    const permute = (k: number): void => {
      if (k === items.length) {
        const r = equixVerify(c, items);
        const key = r.ok ? "ok" : r.reason;
        counts[key] = (counts[key] ?? 0) + 1;
        return;
      }
      for (let i = k; i < items.length; i++) {
        [items[k], items[i]] = [items[i]!, items[k]!];
        permute(k + 1);
        [items[k], items[i]] = [items[i]!, items[k]!];
      }
    };
    permute(0);
    const p = vectors.permutations;
    expect(counts["ok"]).toBe(p.valid);
    expect(counts["equix-order"]).toBe(p.orderFailures);
    expect((counts["equix-partial-sum"] ?? 0) + (counts["equix-final-sum"] ?? 0)).toBe(p.hashSumFailures);
  });

  it("random solutions never verify (fuzz)", () => {
    const c = enc("a");
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), (s) => {
        expect(equixVerify(c, s).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
    // Put random indices into tree order first, so the sums (not the order check) must refuse them.
    const sortTree = (s: number[]): number[] => {
      const key = (a: number[]): bigint => a.reduceRight((acc, x) => (acc << 16n) | BigInt(x), 0n);
      const sortRun = (a: number[]): number[] => {
        if (a.length === 1) return a;
        const l = sortRun(a.slice(0, a.length / 2));
        const r = sortRun(a.slice(a.length / 2));
        return key(l) <= key(r) ? [...l, ...r] : [...r, ...l];
      };
      return sortRun(s);
    };
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), (s) => {
        const r = equixVerify(c, sortTree(s));
        expect(r.ok).toBe(false);
        expect(["equix-partial-sum", "equix-final-sum"]).toContain(r.ok ? "ok" : r.reason);
      }),
      { numRuns: 60 },
    );
  });

  it("packs solutions as little-endian u16 and refuses malformed input", () => {
    const s = Uint16Array.from([0x0102, 0xa0b0, 3, 4, 5, 6, 7, 0xffff]);
    const b = equixSolutionToBytes(s);
    expect(toHex(b)).toBe("0201b0a003000400050006000700ffff");
    expect(Array.from(equixSolutionFromBytes(b))).toEqual(Array.from(s));
    expect(kindOf(() => equixSolutionFromBytes(new Uint8Array(15)))).toBe("bad-length");
    expect(kindOf(() => equixVerify(enc("a"), [1, 2, 3]))).toBe("bad-length");
    expect(kindOf(() => equixVerify(enc("a"), [1, 2, 3, 4, 5, 6, 7, 0x10000]))).toBe("bad-length");
    expect(EQUIX_NUM_IDX).toBe(8);
  });
});

describe("proof of work v1 (hspow-spec)", () => {
  const solution = (v: { nonce: string; effort: number; seedHead: string; proof: string }): PowV1Solution => ({
    nonce: hex(v.nonce),
    effort: v.effort,
    seedHead: hex(v.seedHead),
    proof: hex(v.proof),
  });

  it.each(powVectors.verify)("verify vector: effort $effort → $result", (v) => {
    const r = powVerify({ seed: hex(v.seed), serviceBlindedId: hex(v.serviceBlindedId), solution: solution(v) });
    expect(r.ok ? "ok" : r.reason).toBe(v.result);
  });

  it("verifies every published solve result, and refuses it for another service or effort", () => {
    for (const v of powVectors.solve) {
      const sol = solution({ nonce: v.expectedNonce, effort: v.effort, seedHead: v.seed.slice(0, 8), proof: v.proof });
      expect(powVerify({ seed: hex(v.seed), serviceBlindedId: hex(v.serviceBlindedId), solution: sol })).toEqual({ ok: true });
      const otherId = hex(v.serviceBlindedId);
      otherId[0] = otherId[0]! ^ 1;
      expect(powVerify({ seed: hex(v.seed), serviceBlindedId: otherId, solution: sol }).ok).toBe(false);
      expect(powVerify({ seed: hex(v.seed), serviceBlindedId: hex(v.serviceBlindedId), solution: { ...sol, effort: v.effort + 1 } }).ok).toBe(false);
    }
  });

  // A few cheap solves (one or two Equi-X solves each) reproduce the published nonce and proof.
  it.each(powVectors.solve.filter((v) => [0, 2].includes(v.effort) || (v.effort === 10 && v.firstNonce.startsWith("55"))))("solves effort $effort from nonce $firstNonce", (v) => {
    const s = powSolve({ seed: hex(v.seed), serviceBlindedId: hex(v.serviceBlindedId), effort: v.effort, nonce: hex(v.firstNonce) });
    expect(toHex(s.nonce)).toBe(v.expectedNonce);
    expect(toHex(s.proof)).toBe(v.proof);
    expect(toHex(s.seedHead)).toBe(v.seed.slice(0, 8));
    expect(s.effort).toBe(v.effort);
  });

  it("lays out the challenge as P || ID || C || N || INT_32(E)", () => {
    const c = powChallenge(new Uint8Array(32).fill(0x11), new Uint8Array(32).fill(0xaa), new Uint8Array(16).fill(0x55), 0x01020304);
    expect(c.length).toBe(100);
    expect(Buffer.from(c.subarray(0, 16)).toString("latin1")).toBe("Tor hs intro v1\0");
    expect(toHex(c.subarray(96))).toBe("01020304");
    expect(kindOf(() => powChallenge(new Uint8Array(31), new Uint8Array(32), new Uint8Array(16), 1))).toBe("bad-key-length");
    expect(kindOf(() => powChallenge(new Uint8Array(32), new Uint8Array(32), new Uint8Array(16), -1))).toBe("bad-length");
  });

  it("gives up with a typed error after maxAttempts", () => {
    const kind = kindOf(() => powSolve({ seed: new Uint8Array(32), serviceBlindedId: new Uint8Array(32), effort: 0xffffffff, nonce: new Uint8Array(16), maxAttempts: 1 }));
    expect(kind).toBe("pow-effort-failed");
  });
});

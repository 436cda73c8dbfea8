/**
 * HashX against Tor's and arti's published vectors (test/vectors/hashx-vectors.json), plus the
 * batch interpreter (used by the Equi-X solver) against the single-input interpreter.
 */
import { describe, expect, it } from "vitest";
import { CryptoError } from "../../../node/src/crypto/errors.js";
import { HashX } from "../../../node/src/crypto/hashx.js";
import vectors from "../../vectors/hashx-vectors.json" with { type: "json" };

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
type SeedSpec = { seed?: string; seedHex?: string };
const seedOf = (v: SeedSpec): Uint8Array => (v.seedHex !== undefined ? Uint8Array.from(Buffer.from(v.seedHex, "hex")) : new TextEncoder().encode(v.seed));

describe("HashX vectors", () => {
  it.each(vectors.hashes)("seed $seed$seedHex, input $input", (v) => {
    const h = HashX.create(seedOf(v));
    expect(hex(h.hash(BigInt(v.input)))).toBe(v.output);
    expect(h.hashToBigInt(BigInt(v.input))).toBe(Buffer.from(v.output, "hex").readBigUInt64LE(0));
  });

  it("rejects the seeds Tor rejects, with a typed error", () => {
    for (const v of vectors.badSeeds) {
      expect(HashX.tryCreate(seedOf(v))).toBeUndefined();
      expect(() => HashX.create(seedOf(v))).toThrow(CryptoError);
      try {
        HashX.create(seedOf(v));
      } catch (err) {
        expect((err as CryptoError).kind).toBe("hashx-bad-seed");
      }
    }
    for (const v of vectors.goodSeeds) expect(HashX.tryCreate(seedOf(v))).toBeDefined();
  });

  it("draws the same random stream as Tor's generator", () => {
    const { readBack } = vectors.rng;
    const seen: bigint[] = [];
    const h = HashX.create(seedOf(readBack), { rngHook: (x) => (seen.push(x), x) });
    expect(seen.length).toBe(readBack.draws);
    expect(h.rngDraws).toBe(readBack.draws);
    expect(seen.slice(0, 4)).toEqual(readBack.first.map((x) => BigInt(x)));
    expect(hex(h.hash(BigInt(readBack.input)).subarray(0, 8))).toBe(readBack.output8);
  });

  it("builds the same program as Tor from a replaced random stream", () => {
    const { replaced } = vectors.rng;
    const h = HashX.create(seedOf(replaced), { rngHook: () => BigInt(replaced.constant) });
    expect(h.rngDraws).toBe(replaced.draws);
    expect(hex(h.hash(BigInt(replaced.input)).subarray(0, 8))).toBe(replaced.output8);
  });
});

describe("HashX batch interpreter", () => {
  it("agrees with the single-input interpreter (branches included)", () => {
    for (const seed of ["This is a test\0", "a", "01234567890123456789"]) {
      const h = HashX.create(new TextEncoder().encode(seed));
      const n = 1500;
      const lo = new Int32Array(n);
      const hi = new Int32Array(n);
      h.hashRange(1000, n, lo, hi);
      const w = new Int32Array(2);
      for (let i = 0; i < n; i++) {
        h.hashWords(1000 + i, w);
        expect([hi[i], lo[i]]).toEqual([w[0], w[1]]);
      }
      expect(h.hashToBigInt(1000)).toBe((BigInt(hi[0]! >>> 0) << 32n) | BigInt(lo[0]! >>> 0));
    }
  });

  it("refuses inputs outside 64 unsigned bits", () => {
    const h = HashX.create(new TextEncoder().encode("a"));
    expect(() => h.hash(-1)).toThrow(CryptoError);
    expect(() => h.hash(1n << 64n)).toThrow(CryptoError);
    expect(() => h.hash(0.5)).toThrow(CryptoError);
  });
});

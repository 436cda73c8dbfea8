/**
 * Equi-X: tevador's asymmetric client puzzle (Equihash with N = 60, K = 3 over HashX), and the
 * onion-service proof of work built on it (Tor proposal 327, torspec hspow-spec "v1").
 *
 * A challenge (any bytes) seeds one HashX function H. A solution is eight 16-bit indices
 * x0..x7 whose hashes cancel level by level in a binary tree:
 *   H(x0)+H(x1) ≡ 0 (mod 2^15), and likewise for (x2,x3), (x4,x5), (x6,x7);
 *   the sums of pairs of pairs ≡ 0 (mod 2^30); all eight ≡ 0 (mod 2^60).
 * Each tree node's left branch must not sort after its right one (compared as little-endian
 * words), so every solution has one canonical order. Solving hashes all 65,536 indices and finds
 * collisions in three bucket-sort stages (about 2 solutions per challenge on average); verifying
 * costs one HashX program generation and eight hashes.
 *
 * This is an independent TypeScript implementation of the algorithm of tevador's reference solver
 * (as carried in Tor's src/ext/equix and ported to Rust in arti's `equix` crate). It returns the
 * same solutions in the same order as Tor's C code for the vectors in
 * test/vectors/equix-vectors.json.
 *
 * Equi-X itself allows an index to repeat inside a solution (the reference verifier does not reject
 * it, and the solver can in principle emit one); PSP follows Tor here so that every proof Tor accepts
 * PSP accepts too. A solution with repeated indices still has to meet every sum, so it costs the
 * same work as any other.
 */
import { blake2b } from "@noble/hashes/blake2.js";
import { CryptoError } from "./errors.js";
import type { CryptoErrorKind } from "./errors.js";
import { HashX } from "./hashx.js";

// HashX is exported through this module so the crypto index needs one line for both.
export { HashX, HASHX_PROGRAM_SIZE } from "./hashx.js";
export type { HashxOptions, HashxProgram, HashxRngHook } from "./hashx.js";

/** Indices per solution. */
export const EQUIX_NUM_IDX = 8;
/** Bytes of a packed solution: eight little-endian u16. */
export const EQUIX_SOLUTION_BYTES = 16;
/** The solver returns at most this many solutions per challenge (as Tor's does). */
export const EQUIX_MAX_SOLUTIONS = 8;

/** One solution: eight 16-bit indices in canonical tree order. */
export type EquixSolution = Uint16Array;

/** Why a solution was refused. */
export type EquixFailure = Extract<CryptoErrorKind, "equix-order" | "equix-partial-sum" | "equix-final-sum" | "hashx-bad-seed">;

export type EquixVerifyResult = { ok: true } | { ok: false; reason: EquixFailure };

const STAGE1_MASK_BITS = 15;
const NUM_COARSE = 256;
const NUM_FINE = 128;
const COARSE_ITEMS = 336;
const FINE_ITEMS = 12;
const INDEX_SPACE = 1 << 16;
const TWO_24 = 16777216;
const TWO_37 = 137438953472;

/** Solver working memory (about 2 MB), allocated once and reused. */
class SolverMemory {
  readonly hashLo = new Int32Array(INDEX_SPACE);
  readonly hashHi = new Int32Array(INDEX_SPACE);
  readonly s1Count = new Uint16Array(NUM_COARSE);
  readonly s1Idx = new Uint16Array(NUM_COARSE * COARSE_ITEMS);
  /** Bits 8..59 of each hash (52 bits, exact in a double); higher bits never reach a checked bit. */
  readonly s1Data = new Float64Array(NUM_COARSE * COARSE_ITEMS);
  readonly s2Count = new Uint16Array(NUM_COARSE);
  readonly s2Idx = new Uint32Array(NUM_COARSE * COARSE_ITEMS);
  /** 37 significant bits. */
  readonly s2Data = new Float64Array(NUM_COARSE * COARSE_ITEMS);
  readonly s3Count = new Uint16Array(NUM_COARSE);
  readonly s3Idx = new Uint32Array(NUM_COARSE * COARSE_ITEMS);
  /** 22 significant bits. */
  readonly s3Data = new Uint32Array(NUM_COARSE * COARSE_ITEMS);
  readonly fineCount = new Uint8Array(NUM_FINE);
  readonly fineItems = new Uint16Array(NUM_FINE * FINE_ITEMS);
}

let memory: SolverMemory | undefined;

/** A stage item names a pair: bucket of the left parent (8 bits), left item (9 bits), right item in the complementary bucket (9 bits). */
const makeItem = (bucket: number, left: number, right: number): number => ((left << 17) | (right << 8) | bucket) >>> 0;

/** Tree-order comparison of two equal-length runs of indices: the last index is the most significant. */
function branchLessOrEqual(s: Uint16Array, left: number, right: number, len: number): boolean {
  for (let i = len - 1; i >= 0; i--) {
    const a = s[left + i]!;
    const b = s[right + i]!;
    if (a !== b) return a < b;
  }
  return true;
}

function swapRuns(s: Uint16Array, left: number, right: number, len: number): void {
  for (let i = 0; i < len; i++) {
    const t = s[left + i]!;
    s[left + i] = s[right + i]!;
    s[right + i] = t;
  }
}

/** True when every node of the index tree has its left branch ordered before (or equal to) its right. */
function inTreeOrder(s: Uint16Array): boolean {
  return (
    branchLessOrEqual(s, 0, 4, 4) &&
    branchLessOrEqual(s, 0, 2, 2) &&
    branchLessOrEqual(s, 4, 6, 2) &&
    branchLessOrEqual(s, 0, 1, 1) &&
    branchLessOrEqual(s, 2, 3, 1) &&
    branchLessOrEqual(s, 4, 5, 1) &&
    branchLessOrEqual(s, 6, 7, 1)
  );
}

function buildStage1(m: SolverMemory, out: Uint16Array, at: number, root: number): void {
  const bucket = root & 0xff;
  const inv = -bucket & 0xff;
  out[at] = m.s1Idx[bucket * COARSE_ITEMS + (root >>> 17)]!;
  out[at + 1] = m.s1Idx[inv * COARSE_ITEMS + ((root >>> 8) & 511)]!;
  if (!branchLessOrEqual(out, at, at + 1, 1)) swapRuns(out, at, at + 1, 1);
}

function buildStage2(m: SolverMemory, out: Uint16Array, at: number, root: number): void {
  const bucket = root & 0xff;
  const inv = -bucket & 0xff;
  buildStage1(m, out, at, m.s2Idx[bucket * COARSE_ITEMS + (root >>> 17)]!);
  buildStage1(m, out, at + 2, m.s2Idx[inv * COARSE_ITEMS + ((root >>> 8) & 511)]!);
  if (!branchLessOrEqual(out, at, at + 2, 2)) swapRuns(out, at, at + 2, 2);
}

function buildSolution(m: SolverMemory, left: number, right: number): EquixSolution {
  const out = new Uint16Array(EQUIX_NUM_IDX);
  buildStage2(m, out, 0, left);
  buildStage2(m, out, 4, right);
  if (!branchLessOrEqual(out, 0, 4, 4)) swapRuns(out, 0, 4, 4);
  return out;
}

/** Stage 0: hash every index and sort by the low 8 bits. */
function stage0(m: SolverMemory, h: HashX): void {
  h.hashRange(0, INDEX_SPACE, m.hashLo, m.hashHi);
  m.s1Count.fill(0);
  for (let i = 0; i < INDEX_SPACE; i++) {
    const lo = m.hashLo[i]!;
    const bucket = lo & 0xff;
    const n = m.s1Count[bucket]!;
    if (n >= COARSE_ITEMS) continue;
    m.s1Count[bucket] = n + 1;
    const slot = bucket * COARSE_ITEMS + n;
    m.s1Idx[slot] = i;
    m.s1Data[slot] = (m.hashHi[i]! & 0x0fffffff) * TWO_24 + (lo >>> 8);
  }
}

/**
 * One collision stage over data held as doubles: pairs items of bucket b with items of bucket -b
 * whose next 7 bits also cancel, and files each pair's sum (shifted right by 15) under its next 8
 * bits. `keep` bounds the data written (higher bits never reach a checked bit).
 */
function collide(
  inCount: Uint16Array,
  inData: Float64Array,
  outCount: Uint16Array,
  outIdx: Uint32Array,
  outData: Float64Array | Uint32Array,
  keep: number,
  fineCount: Uint8Array,
  fineItems: Uint16Array,
): void {
  outCount.fill(0);
  const pair = (bucket: number, cpl: number, item: number): void => {
    const value = inData[bucket * COARSE_ITEMS + item]! + (bucket !== 0 ? 1 : 0);
    const fine = value % NUM_FINE;
    const fineCpl = -fine & (NUM_FINE - 1);
    const n = fineCount[fineCpl]!;
    for (let f = 0; f < n; f++) {
      const cplIndex = fineItems[fineCpl * FINE_ITEMS + f]!;
      const sum = (value + inData[cpl * COARSE_ITEMS + cplIndex]!) / NUM_FINE;
      const ob = sum % NUM_COARSE;
      const on = outCount[ob]!;
      if (on >= COARSE_ITEMS) continue;
      outCount[ob] = on + 1;
      outIdx[ob * COARSE_ITEMS + on] = makeItem(bucket, item, cplIndex);
      outData[ob * COARSE_ITEMS + on] = Math.floor(sum / NUM_COARSE) % keep;
    }
  };
  for (let bucket = 0; bucket <= NUM_COARSE / 2; bucket++) {
    const cpl = -bucket & (NUM_COARSE - 1);
    fineCount.fill(0);
    const cplSize = inCount[cpl]!;
    for (let item = 0; item < cplSize; item++) {
      const fine = inData[cpl * COARSE_ITEMS + item]! % NUM_FINE;
      const n = fineCount[fine]!;
      if (n >= FINE_ITEMS) continue;
      fineCount[fine] = n + 1;
      fineItems[fine * FINE_ITEMS + n] = item;
      if (cpl === bucket) pair(bucket, cpl, item);
    }
    if (cpl !== bucket) {
      const size = inCount[bucket]!;
      for (let item = 0; item < size; item++) pair(bucket, cpl, item);
    }
  }
}

/** Stage 3: the last 15 bits must cancel; each match is a solution. */
function stage3(m: SolverMemory): EquixSolution[] {
  const solutions: EquixSolution[] = [];
  const { s3Count, s3Data, s3Idx, fineCount, fineItems } = m;
  // Returns false once the solution buffer is full.
  const pair = (bucket: number, cpl: number, item: number): boolean => {
    const value = s3Data[bucket * COARSE_ITEMS + item]! + (bucket !== 0 ? 1 : 0);
    const fine = value % NUM_FINE;
    const fineCpl = -fine & (NUM_FINE - 1);
    const n = fineCount[fineCpl]!;
    for (let f = 0; f < n; f++) {
      const cplIndex = fineItems[fineCpl * FINE_ITEMS + f]!;
      const sum = (value + s3Data[cpl * COARSE_ITEMS + cplIndex]!) / NUM_FINE;
      if ((sum & ((1 << STAGE1_MASK_BITS) - 1)) === 0) {
        solutions.push(buildSolution(m, s3Idx[bucket * COARSE_ITEMS + item]!, s3Idx[cpl * COARSE_ITEMS + cplIndex]!));
        if (solutions.length >= EQUIX_MAX_SOLUTIONS) return false;
      }
    }
    return true;
  };
  for (let bucket = 0; bucket <= NUM_COARSE / 2; bucket++) {
    const cpl = -bucket & (NUM_COARSE - 1);
    fineCount.fill(0);
    const cplSize = s3Count[cpl]!;
    for (let item = 0; item < cplSize; item++) {
      const fine = s3Data[cpl * COARSE_ITEMS + item]! % NUM_FINE;
      const n = fineCount[fine]!;
      if (n >= FINE_ITEMS) continue;
      fineCount[fine] = n + 1;
      fineItems[fine * FINE_ITEMS + n] = item;
      if (cpl === bucket && !pair(bucket, cpl, item)) return solutions;
    }
    if (cpl !== bucket) {
      const size = s3Count[bucket]!;
      for (let item = 0; item < size; item++) if (!pair(bucket, cpl, item)) return solutions;
    }
  }
  return solutions;
}

/** All solutions (at most 8, in the reference solver's order) for a HashX function. */
function solveWith(h: HashX): EquixSolution[] {
  const m = (memory ??= new SolverMemory());
  stage0(m, h);
  collide(m.s1Count, m.s1Data, m.s2Count, m.s2Idx, m.s2Data, TWO_37, m.fineCount, m.fineItems);
  collide(m.s2Count, m.s2Data, m.s3Count, m.s3Idx, m.s3Data, 1 << 22, m.fineCount, m.fineItems);
  return stage3(m);
}

/** Solutions for `challenge`, or undefined when the challenge's HashX program fails its constraints (then change the nonce). */
export function equixTrySolve(challenge: Uint8Array): EquixSolution[] | undefined {
  const h = HashX.tryCreate(challenge);
  return h ? solveWith(h) : undefined;
}

/**
 * Every solution the reference solver finds for `challenge` (zero or more, at most 8), each eight
 * u16 indices in canonical order. Throws CryptoError `hashx-bad-seed` for the rare challenge whose
 * HashX program is unusable.
 */
export function equixSolve(challenge: Uint8Array): EquixSolution[] {
  return solveWith(HashX.create(challenge));
}

/** Packs a solution as 16 bytes (little-endian u16s, the wire form Tor uses). */
export function equixSolutionToBytes(solution: ArrayLike<number>): Uint8Array {
  const s = toIndices(solution);
  const out = new Uint8Array(EQUIX_SOLUTION_BYTES);
  for (let i = 0; i < EQUIX_NUM_IDX; i++) {
    out[2 * i] = s[i]! & 0xff;
    out[2 * i + 1] = s[i]! >>> 8;
  }
  return out;
}

/** Unpacks 16 bytes into eight indices (no validity check: that is equixVerify's job). */
export function equixSolutionFromBytes(bytes: Uint8Array): EquixSolution {
  if (bytes.length !== EQUIX_SOLUTION_BYTES) throw new CryptoError("bad-length", `an Equi-X solution is ${EQUIX_SOLUTION_BYTES} bytes, got ${bytes.length}`);
  const s = new Uint16Array(EQUIX_NUM_IDX);
  for (let i = 0; i < EQUIX_NUM_IDX; i++) s[i] = bytes[2 * i]! | (bytes[2 * i + 1]! << 8);
  return s;
}

function toIndices(solution: ArrayLike<number>): Uint16Array {
  if (solution instanceof Uint8Array) return equixSolutionFromBytes(solution);
  if (solution.length !== EQUIX_NUM_IDX) throw new CryptoError("bad-length", `an Equi-X solution has ${EQUIX_NUM_IDX} indices, got ${solution.length}`);
  const s = new Uint16Array(EQUIX_NUM_IDX);
  for (let i = 0; i < EQUIX_NUM_IDX; i++) {
    const x = solution[i]!;
    if (!Number.isInteger(x) || x < 0 || x > 0xffff) throw new CryptoError("bad-length", `Equi-X index ${i} is not a 16-bit value: ${x}`);
    s[i] = x;
  }
  return s;
}

/** Checks the tree sums; returns the failure or undefined. */
function checkSums(h: HashX, s: Uint16Array): EquixFailure | undefined {
  const w = new Int32Array(2);
  const hi = new Int32Array(8);
  const lo = new Int32Array(8);
  for (let i = 0; i < EQUIX_NUM_IDX; i++) {
    h.hashWords(s[i]!, w);
    hi[i] = w[0]!;
    lo[i] = w[1]!;
  }
  // 64-bit wrapping sums as (hi, lo); only the low 60 bits are ever checked.
  const add = (ah: number, al: number, bh: number, bl: number): [number, number] => {
    const l = (al + bl) | 0;
    return [(ah + bh + (l >>> 0 < al >>> 0 ? 1 : 0)) | 0, l];
  };
  const pairs: [number, number][] = [];
  for (let i = 0; i < 8; i += 2) {
    const p = add(hi[i]!, lo[i]!, hi[i + 1]!, lo[i + 1]!);
    if ((p[1] & 0x7fff) !== 0) return "equix-partial-sum";
    pairs.push(p);
  }
  const left = add(pairs[0]![0], pairs[0]![1], pairs[1]![0], pairs[1]![1]);
  const right = add(pairs[2]![0], pairs[2]![1], pairs[3]![0], pairs[3]![1]);
  if ((left[1] & 0x3fffffff) !== 0 || (right[1] & 0x3fffffff) !== 0) return "equix-partial-sum";
  const all = add(left[0], left[1], right[0], right[1]);
  if (all[1] !== 0 || (all[0] & 0x0fffffff) !== 0) return "equix-final-sum";
  return undefined;
}

/**
 * Checks one solution (eight indices, or its 16-byte packed form) against `challenge`, in the
 * reference order: tree order first (cheap), then the challenge's HashX program, then the sums.
 * Wrong-length input throws CryptoError `bad-length`; everything else is a typed result.
 */
export function equixVerify(challenge: Uint8Array, solution: ArrayLike<number>): EquixVerifyResult {
  const s = toIndices(solution);
  if (!inTreeOrder(s)) return { ok: false, reason: "equix-order" };
  const h = HashX.tryCreate(challenge);
  if (!h) return { ok: false, reason: "hashx-bad-seed" };
  const failure = checkSums(h, s);
  return failure ? { ok: false, reason: failure } : { ok: true };
}

/** As equixVerify, but throws the failure as a CryptoError. */
export function equixAssertValid(challenge: Uint8Array, solution: ArrayLike<number>): void {
  const r = equixVerify(challenge, solution);
  if (!r.ok) throw new CryptoError(r.reason, `Equi-X solution refused: ${r.reason}`);
}

// ---------------------------------------------------------------------------
// Proof of work v1 (torspec hspow-spec, "v1": Equi-X + blake2b effort check)
// ---------------------------------------------------------------------------

/** Personalization string P, 16 bytes including its NUL. */
export const POW_V1_PERSONALIZATION = new TextEncoder().encode("Tor hs intro v1\0");
export const POW_V1_SEED_LEN = 32;
export const POW_V1_NONCE_LEN = 16;
export const POW_V1_ID_LEN = 32;
export const POW_V1_SEED_HEAD_LEN = 4;
/** Length of the Equi-X challenge P || ID || C || N || INT_32(E). */
export const POW_V1_CHALLENGE_LEN = 16 + POW_V1_ID_LEN + POW_V1_SEED_LEN + POW_V1_NONCE_LEN + 4;

/** A v1 proof of work as a client sends it (the INTRODUCE1 PoW extension's fields). */
export interface PowV1Solution {
  /** N: 16 bytes. */
  nonce: Uint8Array;
  /** E: the effort claimed, u32. */
  effort: number;
  /** First 4 bytes of the seed C the proof was made for. */
  seedHead: Uint8Array;
  /** S: the Equi-X solution, 16 bytes. */
  proof: Uint8Array;
}

export type PowVerifyResult = { ok: true } | { ok: false; reason: EquixFailure | Extract<CryptoErrorKind, "pow-seed-mismatch" | "pow-effort-failed"> };

function expectLength(name: string, b: Uint8Array, n: number): void {
  if (!(b instanceof Uint8Array) || b.length !== n) throw new CryptoError("bad-key-length", `${name} must be ${n} bytes`);
}

function expectEffort(effort: number): void {
  if (!Number.isInteger(effort) || effort < 0 || effort > 0xffffffff) throw new CryptoError("bad-length", `effort must be a u32, got ${effort}`);
}

/** The Equi-X challenge string P || ID || C || N || INT_32(E) (E big-endian). */
export function powChallenge(serviceBlindedId: Uint8Array, seed: Uint8Array, nonce: Uint8Array, effort: number): Uint8Array {
  expectLength("serviceBlindedId", serviceBlindedId, POW_V1_ID_LEN);
  expectLength("seed", seed, POW_V1_SEED_LEN);
  expectLength("nonce", nonce, POW_V1_NONCE_LEN);
  expectEffort(effort);
  const c = new Uint8Array(POW_V1_CHALLENGE_LEN);
  c.set(POW_V1_PERSONALIZATION, 0);
  c.set(serviceBlindedId, 16);
  c.set(seed, 48);
  c.set(nonce, 80);
  new DataView(c.buffer).setUint32(96, effort >>> 0, false);
  return c;
}

/** The effort test: R = blake2b-32(challenge || proof) read big-endian must satisfy R × E ≤ 2^32 − 1. */
export function powEffortOk(challenge: Uint8Array, proof: Uint8Array, effort: number): boolean {
  const input = new Uint8Array(challenge.length + proof.length);
  input.set(challenge, 0);
  input.set(proof, challenge.length);
  const d = blake2b(input, { dkLen: 4 });
  const r = ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0;
  return r * effort <= 0xffffffff;
}

/** Increments a little-endian counter in place, wrapping. */
function incrementLe(b: Uint8Array, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    b[i] = (b[i]! + 1) & 0xff;
    if (b[i] !== 0) return;
  }
}

export interface PowSolveOptions {
  seed: Uint8Array;
  /** Service's blinded id (32 bytes): binds the proof to one service and time period. */
  serviceBlindedId: Uint8Array;
  effort: number;
  /** First nonce to try (16 bytes); random when absent. Tried nonces count up little-endian. */
  nonce?: Uint8Array;
  /** Give up after this many nonces (Equi-X solves); default unbounded. */
  maxAttempts?: number;
}

/**
 * Finds a v1 proof of work: tries nonces N, N+1, ... until one of the Equi-X solutions of
 * P || ID || C || N || E passes the effort test. Expected work ≈ effort / 2 Equi-X solves
 * (about two solutions per challenge). Throws CryptoError `pow-effort-failed` after maxAttempts.
 */
export function powSolve(options: PowSolveOptions): PowV1Solution {
  const { seed, serviceBlindedId, effort } = options;
  const start = options.nonce ?? crypto.getRandomValues(new Uint8Array(POW_V1_NONCE_LEN));
  const challenge = powChallenge(serviceBlindedId, seed, start, effort);
  const max = options.maxAttempts ?? Infinity;
  for (let attempt = 0; attempt < max; attempt++) {
    const solutions = equixTrySolve(challenge) ?? [];
    for (const s of solutions) {
      const proof = equixSolutionToBytes(s);
      if (powEffortOk(challenge, proof, effort)) {
        return { nonce: challenge.slice(80, 96), effort, seedHead: seed.slice(0, POW_V1_SEED_HEAD_LEN), proof };
      }
    }
    incrementLe(challenge, 80, 96);
  }
  throw new CryptoError("pow-effort-failed", `no proof of work at effort ${effort} within ${max} nonces`);
}

export interface PowVerifyOptions {
  seed: Uint8Array;
  serviceBlindedId: Uint8Array;
  solution: PowV1Solution;
}

/**
 * Checks a v1 proof of work, cheapest test first, as Tor and arti do: the seed head, then the
 * effort test (one blake2b), then Equi-X (program generation and eight hashes). The caller still
 * owns replay protection (remember (seed, nonce) pairs) and the policy for which effort to demand.
 */
export function powVerify(options: PowVerifyOptions): PowVerifyResult {
  const { seed, serviceBlindedId, solution } = options;
  expectLength("seedHead", solution.seedHead, POW_V1_SEED_HEAD_LEN);
  expectLength("proof", solution.proof, EQUIX_SOLUTION_BYTES);
  expectLength("seed", seed, POW_V1_SEED_LEN);
  for (let i = 0; i < POW_V1_SEED_HEAD_LEN; i++) if (seed[i] !== solution.seedHead[i]) return { ok: false, reason: "pow-seed-mismatch" };
  const challenge = powChallenge(serviceBlindedId, seed, solution.nonce, solution.effort);
  if (!powEffortOk(challenge, solution.proof, solution.effort)) return { ok: false, reason: "pow-effort-failed" };
  return equixVerify(challenge, solution.proof);
}

/**
 * HashX: tevador's ASIC-resistant hash family, as used by Tor's Equi-X puzzle.
 *
 * A seed picks one hash function out of a huge family: the seed is hashed with
 * BLAKE2b-512 (salt "HashX v1") into two SipHash keys. The first key drives a
 * pseudo-random generator that writes a 512-instruction program for eight
 * 64-bit registers, scheduled as if for a three-port superscalar CPU, so that
 * every accepted program has the same size, multiply count and latency. The
 * second key turns a 64-bit input into the eight starting registers
 * (SipHash-2-4 in counter mode) and finalizes the output.
 *
 * This is an independent TypeScript implementation written from the published
 * description and behaviour of tevador's reference code, Tor's copy in
 * src/ext/equix and arti's `hashx` crate; it reproduces their test vectors byte
 * for byte (test/vectors/hashx-vectors.json).
 *
 * JavaScript has no fast 64-bit integers, so every 64-bit register is a pair
 * of int32 halves (high, low). Two ways to run a program:
 * - `HashX.hash*` interprets it for one input (verifiers hash eight inputs);
 * - `HashX.hashRange` runs it instruction by instruction over blocks of 256
 *   inputs (registers stored structure-of-arrays), which is what the Equi-X
 *   solver needs for its 65,536 hashes. A per-program JIT (generated
 *   JavaScript) was measured first: V8 spent more CPU optimizing each new
 *   program than the generated code saved.
 * Both paths are checked against each other and the vectors.
 */
import { blake2b } from "@noble/hashes/blake2.js";
import { CryptoError } from "./errors.js";

/** Instruction opcodes, numbered as in the reference code (the order matters to the generator). */
const enum Op {
  UMULH_R = 0,
  SMULH_R = 1,
  MUL_R = 2,
  SUB_R = 3,
  XOR_R = 4,
  ADD_RS = 5,
  ROR_C = 6,
  ADD_C = 7,
  XOR_C = 8,
  TARGET = 9,
  BRANCH = 10,
}

/** Salt of the BLAKE2b call that turns a seed into keys (16 bytes, zero padded). */
const HASHX_SALT = (() => {
  const s = new Uint8Array(16);
  s.set(new TextEncoder().encode("HashX v1"));
  return s;
})();

/** Number of instructions in every accepted program. */
export const HASHX_PROGRAM_SIZE = 512;
const REQUIRED_MUL_COUNT = 192;
const REQUIRED_LATENCY = 195;
const TARGET_CYCLE = 192;
const PORT_MAP_SIZE = TARGET_CYCLE + 4;
const REGISTER_NEEDS_DISPLACEMENT = 5;
const BRANCH_MASK = 0x80000000;
const LOG2_BRANCH_PROB = 4;
const MAX_RETRIES = 1;

// Execution ports of the modelled CPU (Ivy Bridge integer ports P0, P1, P5).
const P0 = 1;
const P1 = 2;
const P5 = 4;
const P01 = P0 | P1;
const P05 = P0 | P5;
const P015 = P0 | P1 | P5;
const NONE = 0;

interface Template {
  readonly op: Op;
  readonly latency: number;
  readonly uop1: number;
  readonly uop2: number;
  readonly immMask: number;
  readonly group: Op;
  readonly immCanBeZero: boolean;
  readonly distinctDst: boolean;
  readonly opParIsSrc: boolean;
  readonly hasSrc: boolean;
  readonly hasDst: boolean;
}

function tpl(op: Op, latency: number, uop1: number, uop2: number, immMask: number, group: Op, flags: string): Template {
  return {
    op,
    latency,
    uop1,
    uop2,
    immMask,
    group,
    immCanBeZero: flags.includes("z"),
    distinctDst: flags.includes("d"),
    opParIsSrc: flags.includes("p"),
    hasSrc: flags.includes("s"),
    hasDst: flags.includes("t"),
  };
}

// Flags: z = immediate may be 0, d = dst must differ from src, p = operation parameter is the src register,
// s = has a source register, t = has a destination register.
const T_UMULH = tpl(Op.UMULH_R, 4, P1, P5, 0, Op.UMULH_R, "st");
const T_SMULH = tpl(Op.SMULH_R, 4, P1, P5, 0, Op.SMULH_R, "st");
const T_MUL = tpl(Op.MUL_R, 3, P1, NONE, 0, Op.MUL_R, "dpst");
// SUB_R shares ADD_RS's group, so "sub" never directly follows "add shifted" on the same operands.
const T_SUB = tpl(Op.SUB_R, 1, P015, NONE, 0, Op.ADD_RS, "dpst");
const T_XOR = tpl(Op.XOR_R, 1, P015, NONE, 0, Op.XOR_R, "dpst");
const T_ADD_RS = tpl(Op.ADD_RS, 1, P01, NONE, 3, Op.ADD_RS, "zdpst");
const T_ROR_C = tpl(Op.ROR_C, 1, P05, NONE, 63, Op.ROR_C, "dt");
const T_ADD_C = tpl(Op.ADD_C, 1, P015, NONE, 0xffffffff, Op.ADD_C, "dt");
const T_XOR_C = tpl(Op.XOR_C, 1, P015, NONE, 0xffffffff, Op.XOR_C, "dt");
const T_TARGET = tpl(Op.TARGET, 1, P015, P015, 0, Op.TARGET, "d");
const T_BRANCH = tpl(Op.BRANCH, 1, P015, P015, BRANCH_MASK, Op.BRANCH, "d");

interface LayoutItem {
  readonly templates: readonly Template[];
  readonly mask0: number;
  readonly mask1: number;
  readonly duplicates: boolean;
}

const ITEM_MUL: LayoutItem = { templates: [T_MUL], mask0: 0, mask1: 0, duplicates: true };
const ITEM_TARGET: LayoutItem = { templates: [T_TARGET], mask0: 0, mask1: 0, duplicates: true };
const ITEM_BRANCH: LayoutItem = { templates: [T_BRANCH], mask0: 0, mask1: 0, duplicates: true };
const ITEM_WIDE_MUL: LayoutItem = { templates: [T_SMULH, T_UMULH], mask0: 1, mask1: 1, duplicates: true };
// On a retry (mask1 = 3) only the first four, which need no source register, can be picked.
const ITEM_ANY: LayoutItem = { templates: [T_ROR_C, T_XOR_C, T_ADD_C, T_ADD_C, T_SUB, T_XOR, T_XOR_C, T_ADD_RS], mask0: 7, mask1: 3, duplicates: false };

/** One 36-sub-cycle period of the instruction mix (3 sub-cycles = 1 CPU cycle). */
const LAYOUT: readonly LayoutItem[] = (() => {
  const m = ITEM_MUL;
  const a = ITEM_ANY;
  const w = ITEM_WIDE_MUL;
  return [m, ITEM_TARGET, a, m, a, a, m, a, a, m, a, a, w, a, a, m, a, a, m, ITEM_BRANCH, a, m, a, a, w, a, a, m, a, a, m, a, a, m, a, a];
})();

// ---------------------------------------------------------------------------
// 64-bit helpers on (hi, lo) int32 pairs. Results go to the module scratch
// pair (rh, rl) so no objects are allocated on the hot path.
// ---------------------------------------------------------------------------

let rh = 0;
let rl = 0;

/** High 32 bits of the unsigned 32 × 32 → 64-bit product. */
function mulhu32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) | 0;
}

/** Unsigned high 64 bits of the 64 × 64 → 128-bit product, into (rh, rl). */
function umulh64(ah: number, al: number, bh: number, bl: number): void {
  const llh = mulhu32(al, bl) >>> 0;
  const lhl = Math.imul(al, bh) >>> 0;
  const lhh = mulhu32(al, bh) >>> 0;
  const hll = Math.imul(ah, bl) >>> 0;
  const hlh = mulhu32(ah, bl) >>> 0;
  const hhl = Math.imul(ah, bh) >>> 0;
  const hhh = mulhu32(ah, bh) >>> 0;
  const carry = Math.floor((llh + lhl + hll) / 4294967296);
  const s = hhl + lhh + hlh + carry;
  rl = s | 0;
  rh = (hhh + Math.floor(s / 4294967296)) | 0;
}

/** Signed high 64 bits of the 64 × 64 → 128-bit product, into (rh, rl). */
function smulh64(ah: number, al: number, bh: number, bl: number): void {
  umulh64(ah, al, bh, bl);
  let h = rh;
  let l = rl;
  if (ah < 0) {
    const t = (l - bl) | 0;
    h = (h - bh - (l >>> 0 < bl >>> 0 ? 1 : 0)) | 0;
    l = t;
  }
  if (bh < 0) {
    const t = (l - al) | 0;
    h = (h - ah - (l >>> 0 < al >>> 0 ? 1 : 0)) | 0;
    l = t;
  }
  rh = h;
  rl = l;
}

// SipHash state: Int32Array [v0h, v0l, v1h, v1l, v2h, v2l, v3h, v3l].

function add64(s: Int32Array, d: number, a: number): void {
  const lo = (s[d + 1]! + s[a + 1]!) | 0;
  s[d] = (s[d]! + s[a]! + (lo >>> 0 < s[d + 1]! >>> 0 ? 1 : 0)) | 0;
  s[d + 1] = lo;
}

function rotl64(s: Int32Array, d: number, k: number): void {
  let h = s[d]!;
  let l = s[d + 1]!;
  if (k >= 32) {
    const t = h;
    h = l;
    l = t;
    k -= 32;
  }
  if (k !== 0) {
    const t = h;
    h = (h << k) | (l >>> (32 - k));
    l = (l << k) | (t >>> (32 - k));
  }
  s[d] = h;
  s[d + 1] = l;
}

function xor64(s: Int32Array, d: number, a: number): void {
  s[d] = s[d]! ^ s[a]!;
  s[d + 1] = s[d + 1]! ^ s[a + 1]!;
}

/** One SipRound over four 64-bit words at offsets a, b, c, d (in int32 units) of `s`. */
function sipRound(s: Int32Array, a: number, b: number, c: number, d: number): void {
  add64(s, a, b);
  add64(s, c, d);
  rotl64(s, b, 13);
  rotl64(s, d, 16);
  xor64(s, b, a);
  xor64(s, d, c);
  rotl64(s, a, 32);
  add64(s, c, b);
  add64(s, a, d);
  rotl64(s, b, 17);
  rotl64(s, d, 21);
  xor64(s, b, c);
  xor64(s, d, a);
  rotl64(s, c, 32);
}

const sipScratch = new Int32Array(8);

/** SipHash-1-3 in counter mode (the program generator's random stream); result in (rh, rl). */
function siphash13Ctr(keys: Int32Array, inHi: number, inLo: number): void {
  const s = sipScratch;
  s.set(keys);
  s[6] = s[6]! ^ inHi;
  s[7] = s[7]! ^ inLo;
  sipRound(s, 0, 2, 4, 6);
  s[0] = s[0]! ^ inHi;
  s[1] = s[1]! ^ inLo;
  s[5] = s[5]! ^ 0xff;
  sipRound(s, 0, 2, 4, 6);
  sipRound(s, 0, 2, 4, 6);
  sipRound(s, 0, 2, 4, 6);
  rh = s[0]! ^ s[2]! ^ s[4]! ^ s[6]!;
  rl = s[1]! ^ s[3]! ^ s[5]! ^ s[7]!;
}

/** SipHash-2-4 in counter mode, widened to a 512-bit state: the eight starting registers. */
function siphash24CtrState512(keys: Int32Array, inHi: number, inLo: number, out: Int32Array): void {
  const s = sipScratch;
  s.set(keys);
  s[3] = s[3]! ^ 0xee;
  s[6] = s[6]! ^ inHi;
  s[7] = s[7]! ^ inLo;
  sipRound(s, 0, 2, 4, 6);
  sipRound(s, 0, 2, 4, 6);
  s[0] = s[0]! ^ inHi;
  s[1] = s[1]! ^ inLo;
  s[5] = s[5]! ^ 0xee;
  for (let i = 0; i < 4; i++) sipRound(s, 0, 2, 4, 6);
  out.set(s, 0);
  s[3] = s[3]! ^ 0xdd;
  for (let i = 0; i < 4; i++) sipRound(s, 0, 2, 4, 6);
  out.set(s, 8);
}

// ---------------------------------------------------------------------------
// Program generation
// ---------------------------------------------------------------------------

/** Hook over the generator's random stream (each 64-bit SipHash output): for tests that reproduce Tor's RNG vectors. */
export type HashxRngHook = (value: bigint) => bigint;

class SipRng {
  private counter = 0;
  private buf8h = 0;
  private buf8l = 0;
  private count8 = 0;
  private buf32h = 0;
  private buf32l = 0;
  private count32 = 0;
  /** Number of 64-bit values drawn so far. */
  draws = 0;

  constructor(
    private readonly keys: Int32Array,
    private readonly hook?: HashxRngHook,
  ) {}

  private next(): void {
    siphash13Ctr(this.keys, 0, this.counter);
    this.counter++;
    this.draws++;
    if (this.hook) {
      const v = this.hook((BigInt(rh >>> 0) << 32n) | BigInt(rl >>> 0));
      rh = Number((v >> 32n) & 0xffffffffn) | 0;
      rl = Number(v & 0xffffffffn) | 0;
    }
  }

  /** Bytes of each 64-bit draw, most significant first. */
  u8(): number {
    if (this.count8 === 0) {
      this.next();
      this.buf8h = rh;
      this.buf8l = rl;
      this.count8 = 8;
    }
    this.count8--;
    const c = this.count8;
    return c >= 4 ? (this.buf8h >>> ((c - 4) * 8)) & 0xff : (this.buf8l >>> (c * 8)) & 0xff;
  }

  /** 32-bit halves of each 64-bit draw, high half first. Returned unsigned. */
  u32(): number {
    if (this.count32 === 0) {
      this.next();
      this.buf32h = rh;
      this.buf32l = rl;
      this.count32 = 2;
    }
    this.count32--;
    return (this.count32 === 1 ? this.buf32h : this.buf32l) >>> 0;
  }
}

/** A generated program: struct-of-arrays, one entry per instruction. */
export interface HashxProgram {
  readonly size: number;
  readonly op: Uint8Array;
  readonly dst: Int8Array;
  readonly src: Int8Array;
  /** Immediate (unsigned 32-bit; for ROR_C the rotation, for ADD_RS the shift, for BRANCH the mask). */
  readonly imm: Uint32Array;
}

/** Outcome of program generation, with the statistics the constraints check. */
interface Generated {
  program: HashxProgram;
  accepted: boolean;
  rngDraws: number;
}

function generateProgram(keys: Int32Array, hook?: HashxRngHook): Generated {
  const rng = new SipRng(keys, hook);
  const op = new Uint8Array(HASHX_PROGRAM_SIZE);
  const dst = new Int8Array(HASHX_PROGRAM_SIZE);
  const src = new Int8Array(HASHX_PROGRAM_SIZE);
  const imm = new Uint32Array(HASHX_PROGRAM_SIZE);
  const ports = new Uint8Array(PORT_MAP_SIZE * 3);
  const regLatency = new Int32Array(8);
  const regLastOp = new Int32Array(8).fill(-1);
  const regLastOpPar = new Uint32Array(8).fill(0xffffffff);
  const available = new Int32Array(8);

  let cycle = 0;
  let subCycle = 0;
  let mulCount = 0;
  let chainMul = false;
  let latency = 0;
  let size = 0;
  let attempt = 0;
  let lastGroup = -1;

  // The instruction being built; it survives retries of the same slot.
  let iOp = 0;
  let iSrc = -1;
  let iDst = -1;
  let iImm = 0;
  let iOpPar = 0;

  const scheduleUop = (uop: number, from: number, commit: boolean): number => {
    // Ports are tried in the order P5, P0, P1 so that P1 (the only multiplier) stays free when it can.
    for (let c = from; c < PORT_MAP_SIZE; c++) {
      if (uop & P5 && !ports[c * 3 + 2]) {
        if (commit) ports[c * 3 + 2] = uop;
        return c;
      }
      if (uop & P0 && !ports[c * 3]) {
        if (commit) ports[c * 3] = uop;
        return c;
      }
      if (uop & P1 && !ports[c * 3 + 1]) {
        if (commit) ports[c * 3 + 1] = uop;
        return c;
      }
    }
    return -1;
  };

  const scheduleInstr = (t: Template, commit: boolean): number => {
    if (t.uop2 === NONE) return scheduleUop(t.uop1, cycle, commit);
    // Two-uop instructions need both uops to issue in the same cycle.
    for (let c = cycle; c < PORT_MAP_SIZE; c++) {
      const c1 = scheduleUop(t.uop1, c, false);
      const c2 = scheduleUop(t.uop2, c, false);
      if (c1 >= 0 && c1 === c2) {
        if (commit) {
          scheduleUop(t.uop1, c, true);
          scheduleUop(t.uop2, c, true);
        }
        return c1;
      }
    }
    return -1;
  };

  const pickRegister = (count: number): number => (count > 1 ? available[rng.u32() % count]! : available[0]!);

  const selectSource = (t: Template, at: number): boolean => {
    let count = 0;
    for (let i = 0; i < 8; i++) if (regLatency[i]! <= at) available[count++] = i;
    // With only two ready registers for ADD_RS and one of them r5, r5 must be the source (it cannot be the destination).
    if (count === 2 && iOp === Op.ADD_RS && (available[0] === REGISTER_NEEDS_DISPLACEMENT || available[1] === REGISTER_NEEDS_DISPLACEMENT)) {
      iSrc = REGISTER_NEEDS_DISPLACEMENT;
      iOpPar = REGISTER_NEEDS_DISPLACEMENT;
      return true;
    }
    if (count === 0) return false;
    iSrc = pickRegister(count);
    if (t.opParIsSrc) iOpPar = iSrc;
    return true;
  };

  const selectDestination = (t: Template, at: number): boolean => {
    let count = 0;
    for (let i = 0; i < 8; i++) {
      const ok =
        regLatency[i]! <= at &&
        (!t.distinctDst || i !== iSrc) &&
        (chainMul || t.group !== Op.MUL_R || regLastOp[i] !== Op.MUL_R) &&
        (regLastOp[i] !== t.group || regLastOpPar[i] !== iOpPar) &&
        (iOp !== Op.ADD_RS || i !== REGISTER_NEEDS_DISPLACEMENT);
      if (ok) available[count++] = i;
    }
    if (count === 0) return false;
    iDst = pickRegister(count);
    return true;
  };

  while (size < HASHX_PROGRAM_SIZE) {
    // Pick a template for this sub-cycle; the "any" slot never repeats the previous group.
    const item = LAYOUT[subCycle % 36]!;
    let t: Template;
    do {
      const index = item.mask0 ? rng.u8() & (attempt > 0 ? item.mask1 : item.mask0) : 0;
      t = item.templates[index]!;
    } while (!item.duplicates && t.group === lastGroup);
    lastGroup = t.group;

    iOp = t.op;
    if (t.immMask) {
      if (t.immMask === BRANCH_MASK) {
        let mask = 0;
        let bits = 0;
        while (bits < LOG2_BRANCH_PROB) {
          const bit = (1 << (rng.u8() % 32)) >>> 0;
          if (!(mask & bit)) {
            mask = (mask | bit) >>> 0;
            bits++;
          }
        }
        iImm = mask >>> 0;
      } else {
        do iImm = (rng.u32() & t.immMask) >>> 0;
        while (iImm === 0 && !t.immCanBeZero);
      }
    }
    if (!t.opParIsSrc) iOpPar = t.distinctDst ? 0xffffffff : rng.u32();
    if (!t.hasSrc) iSrc = -1;
    if (!t.hasDst) iDst = -1;

    let at = scheduleInstr(t, false);
    if (at < 0) break;
    chainMul = attempt > 0;

    if (t.hasSrc && !selectSource(t, at)) {
      if (attempt++ < MAX_RETRIES) continue;
      subCycle += 3;
      cycle = Math.floor(subCycle / 3);
      attempt = 0;
      continue;
    }
    if (t.hasDst && !selectDestination(t, at)) {
      if (attempt++ < MAX_RETRIES) continue;
      subCycle += 3;
      cycle = Math.floor(subCycle / 3);
      attempt = 0;
      continue;
    }
    attempt = 0;

    at = scheduleInstr(t, true);
    if (at < 0 || at >= TARGET_CYCLE) break;

    if (t.hasDst) {
      const retire = at + t.latency;
      regLatency[iDst] = retire;
      regLastOp[iDst] = t.group;
      regLastOpPar[iDst] = iOpPar;
      if (retire > latency) latency = retire;
    }
    op[size] = iOp;
    dst[size] = iDst;
    src[size] = iSrc;
    imm[size] = iImm;
    size++;
    if (iOp <= Op.MUL_R) mulCount++;
    subCycle += t.uop2 !== NONE ? 2 : 1;
    cycle = Math.floor(subCycle / 3);
  }

  // Every accepted program has exactly the same size, multiply count and critical-path latency.
  const accepted = size === HASHX_PROGRAM_SIZE && mulCount === REQUIRED_MUL_COUNT && latency === REQUIRED_LATENCY - 1;
  return { program: { size, op, dst, src, imm }, accepted, rngDraws: rng.draws };
}

// ---------------------------------------------------------------------------
// Interpreter
// ---------------------------------------------------------------------------

/** Runs `p` over registers `r` ([h0, l0, h1, l1, ...]). */
function execute(p: HashxProgram, r: Int32Array): void {
  let target = 0;
  let branchEnabled = true;
  let result = 0;
  for (let i = 0; i < p.size; i++) {
    const d = p.dst[i]! * 2;
    const s = p.src[i]! * 2;
    switch (p.op[i]) {
      case Op.UMULH_R:
        umulh64(r[d]!, r[d + 1]!, r[s]!, r[s + 1]!);
        r[d] = rh;
        r[d + 1] = rl;
        result = rl;
        break;
      case Op.SMULH_R:
        smulh64(r[d]!, r[d + 1]!, r[s]!, r[s + 1]!);
        r[d] = rh;
        r[d + 1] = rl;
        result = rl;
        break;
      case Op.MUL_R: {
        const al = r[d + 1]!;
        const bl = r[s + 1]!;
        r[d] = (mulhu32(al, bl) + Math.imul(al, r[s]!) + Math.imul(r[d]!, bl)) | 0;
        r[d + 1] = Math.imul(al, bl);
        break;
      }
      case Op.SUB_R: {
        const al = r[d + 1]!;
        const bl = r[s + 1]!;
        r[d + 1] = (al - bl) | 0;
        r[d] = (r[d]! - r[s]! - (al >>> 0 < bl >>> 0 ? 1 : 0)) | 0;
        break;
      }
      case Op.XOR_R:
        r[d] = r[d]! ^ r[s]!;
        r[d + 1] = r[d + 1]! ^ r[s + 1]!;
        break;
      case Op.ADD_RS: {
        const k = p.imm[i]!;
        let bh = r[s]!;
        let bl = r[s + 1]!;
        if (k) {
          bh = (bh << k) | (bl >>> (32 - k));
          bl = bl << k;
        }
        const al = r[d + 1]!;
        const lo = (al + bl) | 0;
        r[d] = (r[d]! + bh + (lo >>> 0 < al >>> 0 ? 1 : 0)) | 0;
        r[d + 1] = lo;
        break;
      }
      case Op.ROR_C:
        rotl64(r, d, 64 - p.imm[i]!);
        break;
      case Op.ADD_C: {
        const c = p.imm[i]! | 0;
        const al = r[d + 1]!;
        const lo = (al + c) | 0;
        r[d] = (r[d]! + (c >> 31) + (lo >>> 0 < al >>> 0 ? 1 : 0)) | 0;
        r[d + 1] = lo;
        break;
      }
      case Op.XOR_C: {
        const c = p.imm[i]! | 0;
        r[d] = r[d]! ^ (c >> 31);
        r[d + 1] = r[d + 1]! ^ c;
        break;
      }
      case Op.TARGET:
        target = i;
        break;
      case Op.BRANCH:
        // One backward jump per run at most; execution resumes after the last TARGET.
        if (branchEnabled && (result & p.imm[i]!) === 0) {
          i = target;
          branchEnabled = false;
        }
        break;
    }
  }
}

// ---------------------------------------------------------------------------
// Batch interpreter: the program runs instruction by instruction over a block
// of inputs at once (registers stored structure-of-arrays), so one dispatch
// serves BLOCK inputs and each opcode is a tight loop. None of this code
// depends on the program, so V8 optimizes it once per process; a per-program
// JIT was tried and spent more CPU compiling than it saved.
// ---------------------------------------------------------------------------

/** Inputs per block. Register word w of input n lives at R[w * BLOCK + n]. */
const BLOCK = 256;

function srcAdd(d: string, a: string): string {
  return `t=(${d}l+${a}l)|0;${d}h=(${d}h+${a}h+((t>>>0)<(${d}l>>>0)?1:0))|0;${d}l=t;`;
}
function srcXor(d: string, a: string): string {
  return `${d}h^=${a}h;${d}l^=${a}l;`;
}
function srcRotl(d: string, k: number): string {
  if (k === 32) return `t=${d}h;${d}h=${d}l;${d}l=t;`;
  if (k < 32) return `t=${d}h;${d}h=(t<<${k})|(${d}l>>>${32 - k});${d}l=(${d}l<<${k})|(t>>>${32 - k});`;
  const j = k - 32;
  return `t=${d}h;${d}h=(${d}l<<${j})|(t>>>${32 - j});${d}l=(t<<${j})|(${d}l>>>${32 - j});`;
}
function srcSipRound(a: string, b: string, c: string, d: string): string {
  return [
    srcAdd(a, b),
    srcAdd(c, d),
    srcRotl(b, 13),
    srcRotl(d, 16),
    srcXor(b, a),
    srcXor(d, c),
    srcRotl(a, 32),
    srcAdd(c, b),
    srcAdd(a, d),
    srcRotl(b, 17),
    srcRotl(d, 21),
    srcXor(b, c),
    srcXor(d, a),
    srcRotl(c, 32),
  ].join("");
}

/** SipHash-2-4 state512 for inputs start .. start+m-1 into R; JavaScript over locals, generated once at load. */
type SipInit = (R: Int32Array, start: number, m: number, k0: number, k1: number, k2: number, k3: number, k4: number, k5: number, k6: number, k7: number) => void;
/** Finalization of a block: adds the keys, one SipRound per register half, writes r0 ^ r4. */
type SipFinal = (
  R: Int32Array,
  m: number,
  outLo: Int32Array,
  outHi: Int32Array,
  at: number,
  k0: number,
  k1: number,
  k2: number,
  k3: number,
  k4: number,
  k5: number,
  k6: number,
  k7: number,
) => void;

const [sipInitBlock, sipFinalBlock] = (() => {
  const round = srcSipRound("s0", "s1", "s2", "s3");
  const put = (base: number): string => Array.from({ length: 8 }, (_, w) => `R[${(base + w) * BLOCK}+n]=s${w >> 1}${w & 1 ? "l" : "h"};`).join("");
  const init = `"use strict";return function(R,start,m,k0,k1,k2,k3,k4,k5,k6,k7){
    for(let n=0;n<m;n++){const x=(start+n)|0;let t,s0h=k0,s0l=k1,s1h=k2,s1l=k3^0xee,s2h=k4,s2l=k5,s3h=k6,s3l=k7^x;
    ${round}${round}s0l^=x;s2l^=0xee;${round}${round}${round}${round}${put(0)}
    s1l^=0xdd;${round}${round}${round}${round}${put(8)}}}`;
  const regs: string[] = [];
  for (let w = 0; w < 16; w++) regs.push(`r${w >> 1}${w & 1 ? "l" : "h"}=R[${w * BLOCK}+n]`);
  const add = (d: string, kh: string, kl: string): string => `t=(${d}l+${kl})|0;${d}h=(${d}h+${kh}+((t>>>0)<(${d}l>>>0)?1:0))|0;${d}l=t;`;
  const fin = `"use strict";return function(R,m,outLo,outHi,at,k0,k1,k2,k3,k4,k5,k6,k7){
    for(let n=0;n<m;n++){let t,${regs.join(",")};
    ${add("r0", "k0", "k1")}${add("r1", "k2", "k3")}${add("r6", "k4", "k5")}${add("r7", "k6", "k7")}
    ${srcSipRound("r0", "r1", "r2", "r3")}${srcSipRound("r4", "r5", "r6", "r7")}
    outLo[at+n]=r0l^r4l;outHi[at+n]=r0h^r4h;}}`;
  // Fixed source, built from constants in this module only.
  return [new Function(init)() as SipInit, new Function(fin)() as SipFinal];
})();

/**
 * Runs instruction i over the inputs listed in sel[0..m) of block R. dh/dl/sh/sl are the word
 * bases of the destination and source registers.
 */
function stepBlock(op: number, imm: number, R: Int32Array, dh: number, dl: number, sh: number, sl: number, sel: Uint16Array, m: number, res: Int32Array): void {
  switch (op) {
    case Op.UMULH_R:
    case Op.SMULH_R: {
      const signed = op === Op.SMULH_R;
      for (let j = 0; j < m; j++) {
        const n = sel[j]!;
        const ah = R[dh + n]!;
        const bh = R[sh + n]!;
        if (signed) smulh64(ah, R[dl + n]!, bh, R[sl + n]!);
        else umulh64(ah, R[dl + n]!, bh, R[sl + n]!);
        R[dh + n] = rh;
        R[dl + n] = rl;
        res[n] = rl;
      }
      return;
    }
    case Op.MUL_R:
      for (let j = 0; j < m; j++) {
        const n = sel[j]!;
        const al = R[dl + n]!;
        const bl = R[sl + n]!;
        R[dh + n] = (mulhu32(al, bl) + Math.imul(al, R[sh + n]!) + Math.imul(R[dh + n]!, bl)) | 0;
        R[dl + n] = Math.imul(al, bl);
      }
      return;
    case Op.SUB_R:
      for (let j = 0; j < m; j++) {
        const n = sel[j]!;
        const al = R[dl + n]!;
        const bl = R[sl + n]!;
        R[dl + n] = (al - bl) | 0;
        R[dh + n] = (R[dh + n]! - R[sh + n]! - (al >>> 0 < bl >>> 0 ? 1 : 0)) | 0;
      }
      return;
    case Op.XOR_R:
      for (let j = 0; j < m; j++) {
        const n = sel[j]!;
        R[dh + n] = R[dh + n]! ^ R[sh + n]!;
        R[dl + n] = R[dl + n]! ^ R[sl + n]!;
      }
      return;
    case Op.ADD_RS:
      for (let j = 0; j < m; j++) {
        const n = sel[j]!;
        let bh = R[sh + n]!;
        let bl = R[sl + n]!;
        if (imm) {
          bh = (bh << imm) | (bl >>> (32 - imm));
          bl = bl << imm;
        }
        const al = R[dl + n]!;
        const lo = (al + bl) | 0;
        R[dh + n] = (R[dh + n]! + bh + (lo >>> 0 < al >>> 0 ? 1 : 0)) | 0;
        R[dl + n] = lo;
      }
      return;
    case Op.ROR_C: {
      // Rotate right by imm = rotate left by 64 - imm; split into a word swap and a < 32 rotation.
      let k = 64 - imm;
      const swap = k >= 32;
      if (swap) k -= 32;
      for (let j = 0; j < m; j++) {
        const n = sel[j]!;
        let h = R[dh + n]!;
        let l = R[dl + n]!;
        if (swap) {
          const t = h;
          h = l;
          l = t;
        }
        if (k !== 0) {
          const t = h;
          h = (h << k) | (l >>> (32 - k));
          l = (l << k) | (t >>> (32 - k));
        }
        R[dh + n] = h;
        R[dl + n] = l;
      }
      return;
    }
    case Op.ADD_C: {
      const c = imm | 0;
      const ch = c >> 31;
      for (let j = 0; j < m; j++) {
        const n = sel[j]!;
        const al = R[dl + n]!;
        const lo = (al + c) | 0;
        R[dh + n] = (R[dh + n]! + ch + (lo >>> 0 < al >>> 0 ? 1 : 0)) | 0;
        R[dl + n] = lo;
      }
      return;
    }
    case Op.XOR_C: {
      const c = imm | 0;
      const ch = c >> 31;
      for (let j = 0; j < m; j++) {
        const n = sel[j]!;
        R[dh + n] = R[dh + n]! ^ ch;
        R[dl + n] = R[dl + n]! ^ c;
      }
      return;
    }
  }
}

/** Working buffers of the batch interpreter (one set per process; hashing is synchronous). */
const blockR = new Int32Array(16 * BLOCK);
const blockRes = new Int32Array(BLOCK);
const blockEnabled = new Uint8Array(BLOCK);
const blockAll = Uint16Array.from({ length: BLOCK }, (_, i) => i);
const blockTaken = new Uint16Array(BLOCK);

function executeBlock(p: HashxProgram, m: number): void {
  const R = blockR;
  const res = blockRes;
  const en = blockEnabled;
  res.fill(0, 0, m);
  en.fill(1, 0, m);
  let lastTarget = 0;
  const run = (i: number, sel: Uint16Array, count: number): void => {
    const d = p.dst[i]!;
    const s = p.src[i]!;
    stepBlock(p.op[i]!, p.imm[i]!, R, 2 * d * BLOCK, (2 * d + 1) * BLOCK, 2 * s * BLOCK, (2 * s + 1) * BLOCK, sel, count, res);
  };
  for (let i = 0; i < p.size; i++) {
    const o = p.op[i]!;
    if (o === Op.TARGET) {
      lastTarget = i;
    } else if (o === Op.BRANCH) {
      // Inputs whose (still enabled) branch is taken jump back once: rerun the instructions after the last TARGET for them.
      const mask = p.imm[i]! | 0;
      let taken = 0;
      for (let n = 0; n < m; n++) {
        if (en[n] && (res[n]! & mask) === 0) {
          en[n] = 0;
          blockTaken[taken++] = n;
        }
      }
      if (taken) for (let j = lastTarget + 1; j < i; j++) if (p.op[j]! < Op.TARGET) run(j, blockTaken, taken);
    } else {
      run(i, blockAll, m);
    }
  }
}

/** Hashes inputs start .. start+count-1 (below 2^32): out words are the low/high halves of r0 ^ r4. */
function hashRangeBatched(p: HashxProgram, k: Int32Array, start: number, count: number, outLo: Int32Array, outHi: Int32Array): void {
  for (let done = 0; done < count; done += BLOCK) {
    const m = Math.min(BLOCK, count - done);
    sipInitBlock(blockR, start + done, m, k[0]!, k[1]!, k[2]!, k[3]!, k[4]!, k[5]!, k[6]!, k[7]!);
    executeBlock(p, m);
    sipFinalBlock(blockR, m, outLo, outHi, done, k[0]!, k[1]!, k[2]!, k[3]!, k[4]!, k[5]!, k[6]!, k[7]!);
  }
}

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/** Options for building a HashX instance. */
export interface HashxOptions {
  /** Inspect or replace each 64-bit draw of the generator's random stream (tests only). */
  rngHook?: HashxRngHook;
}

function loadKeys(bytes: Uint8Array, offset: number): Int32Array {
  // Four little-endian u64 words → [v0h, v0l, v1h, v1l, ...].
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, 32);
  const k = new Int32Array(8);
  for (let i = 0; i < 4; i++) {
    k[2 * i + 1] = dv.getInt32(8 * i, true);
    k[2 * i] = dv.getInt32(8 * i + 4, true);
  }
  return k;
}

function splitInput(input: bigint | number): [number, number] {
  if (typeof input === "number") {
    if (!Number.isSafeInteger(input) || input < 0) throw new CryptoError("bad-length", `HashX input must be a non-negative integer below 2^53 (or a bigint), got ${input}`);
    return [Math.floor(input / 4294967296) | 0, input | 0];
  }
  if (input < 0n || input > 0xffffffffffffffffn) throw new CryptoError("bad-length", "HashX input must fit in 64 unsigned bits");
  return [Number(input >> 32n) | 0, Number(input & 0xffffffffn) | 0];
}

/** One HashX function, chosen by its seed. Build with `HashX.create` or `HashX.tryCreate`. */
export class HashX {
  private readonly regs = new Int32Array(16);

  private constructor(
    /** The generated program. */
    readonly program: HashxProgram,
    private readonly keys: Int32Array,
    /** How many 64-bit values the generator drew from its random stream. */
    readonly rngDraws: number,
  ) {}

  /** The HashX function for `seed`, or undefined when the seed's program misses the constraints (about 1 seed in 2,000+). */
  static tryCreate(seed: Uint8Array, options: HashxOptions = {}): HashX | undefined {
    const keyBytes = blake2b(seed, { dkLen: 64, salt: HASHX_SALT });
    const generated = generateProgram(loadKeys(keyBytes, 0), options.rngHook);
    if (!generated.accepted) return undefined;
    return new HashX(generated.program, loadKeys(keyBytes, 32), generated.rngDraws);
  }

  /** The HashX function for `seed`; throws CryptoError `hashx-bad-seed` when no valid program comes from it. */
  static create(seed: Uint8Array, options: HashxOptions = {}): HashX {
    const h = HashX.tryCreate(seed, options);
    if (!h) throw new CryptoError("hashx-bad-seed", "this seed yields a HashX program that fails the size/multiply/latency constraints; pick another seed (or nonce)");
    return h;
  }

  /** Runs the function on (hi, lo), leaving the eight finalized registers in this.regs. */
  private run(hi: number, lo: number): Int32Array {
    const r = this.regs;
    siphash24CtrState512(this.keys, hi, lo, r);
    execute(this.program, r);
    const k = this.keys;
    const s = sipScratch;
    // Finalization: add keys to r0, r1, r6, r7, then one SipRound over each half of the registers.
    for (const [reg, key] of [
      [0, 0],
      [2, 2],
      [12, 4],
      [14, 6],
    ] as const) {
      const lo2 = (r[reg + 1]! + k[key + 1]!) | 0;
      r[reg] = (r[reg]! + k[key]! + (lo2 >>> 0 < r[reg + 1]! >>> 0 ? 1 : 0)) | 0;
      r[reg + 1] = lo2;
    }
    s.set(r.subarray(0, 8));
    sipRound(s, 0, 2, 4, 6);
    r.set(s, 0);
    s.set(r.subarray(8, 16));
    sipRound(s, 0, 2, 4, 6);
    r.set(s, 8);
    return r;
  }

  /** The 32-byte output for a 64-bit input (Tor's Equi-X uses the first 8 bytes). */
  hash(input: bigint | number): Uint8Array {
    const [hi, lo] = splitInput(input);
    const r = this.run(hi, lo);
    const out = new Uint8Array(32);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < 4; i++) {
      dv.setInt32(8 * i, r[2 * i + 1]! ^ r[2 * i + 9]!, true);
      dv.setInt32(8 * i + 4, r[2 * i]! ^ r[2 * i + 8]!, true);
    }
    return out;
  }

  /** The first 8 output bytes as a little-endian u64. */
  hashToBigInt(input: bigint | number): bigint {
    const [hi, lo] = splitInput(input);
    const r = this.run(hi, lo);
    return (BigInt((r[0]! ^ r[8]!) >>> 0) << 32n) | BigInt((r[1]! ^ r[9]!) >>> 0);
  }

  /** Fast path for 32-bit inputs: the first 8 output bytes as (hi, lo) words, written to out[0], out[1]. */
  hashWords(input: number, out: Int32Array): void {
    const r = this.run(0, input | 0);
    out[0] = r[0]! ^ r[8]!;
    out[1] = r[1]! ^ r[9]!;
  }

  /**
   * Hashes inputs start .. start+count-1 (below 2^32) with the batch interpreter: outLo[i], outHi[i]
   * are the low and high words of the 8-byte output for start + i.
   */
  hashRange(start: number, count: number, outLo: Int32Array, outHi: Int32Array): void {
    hashRangeBatched(this.program, this.keys, start, count, outLo, outHi);
  }
}

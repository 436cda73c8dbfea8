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
 * JavaScript has no 64-bit integers that are fast, so every 64-bit register is
 * a pair of int32 halves (high, low). Two ways to run a program:
 * - `HashX.hash*` interprets it instruction by instruction (used by verifiers,
 *   which hash only eight inputs per challenge);
 * - `HashX.hashRange` compiles the program once into a JavaScript function
 *   (straight-line code, registers in local variables) and runs it over an
 *   input range, which is what the Equi-X solver needs for its 65,536 hashes.
 * Both are checked against each other and the vectors.
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
// Compiler: program → straight-line JavaScript over local variables.
// ---------------------------------------------------------------------------

/** Hashes `count` consecutive inputs from `start` (all below 2^32); output word i is r0 ^ r4 of input start + i. */
type BatchFn = (start: number, count: number, outLo: Int32Array, outHi: Int32Array) => void;

function srcAdd(d: string, a: string): string {
  return `t=(${d}l+${a}l)|0;${d}h=(${d}h+${a}h+((t>>>0)<(${d}l>>>0)?1:0))|0;${d}l=t;`;
}
function srcAddConst(d: string, hi: number, lo: number): string {
  return `t=(${d}l+${lo})|0;${d}h=(${d}h+${hi}+((t>>>0)<(${d}l>>>0)?1:0))|0;${d}l=t;`;
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

/** High 64 bits of d × s (unsigned, or signed when `signed`), into d; low word also into `res`. */
function srcMulHigh(d: string, s: string, signed: boolean): string {
  let out =
    `a=${d}h;b=${d}l;c=${s}h;e=${s}l;` +
    `m0=mulhu32(b,e)>>>0;m1=Math.imul(b,c)>>>0;m2=mulhu32(b,c)>>>0;m3=Math.imul(a,e)>>>0;m4=mulhu32(a,e)>>>0;` +
    `q=(Math.imul(a,c)>>>0)+m2+m4+Math.floor((m0+m1+m3)/4294967296);` +
    `${d}l=q|0;${d}h=(mulhu32(a,c)+Math.floor(q/4294967296))|0;`;
  if (signed) {
    out += `if(a<0){t=(${d}l-e)|0;${d}h=(${d}h-c-((${d}l>>>0)<(e>>>0)?1:0))|0;${d}l=t;}`;
    out += `if(c<0){t=(${d}l-b)|0;${d}h=(${d}h-a-((${d}l>>>0)<(b>>>0)?1:0))|0;${d}l=t;}`;
  }
  return out + `res=${d}l;`;
}

/** JavaScript source for one instruction over registers r0..r7 (hi/lo locals). */
function srcInstr(p: HashxProgram, i: number): string {
  const d = `r${p.dst[i]}`;
  const s = `r${p.src[i]}`;
  const k = p.imm[i]!;
  switch (p.op[i]) {
    case Op.UMULH_R:
      return srcMulHigh(d, s, false);
    case Op.SMULH_R:
      return srcMulHigh(d, s, true);
    case Op.MUL_R:
      return `${d}h=(mulhu32(${d}l,${s}l)+Math.imul(${d}l,${s}h)+Math.imul(${d}h,${s}l))|0;${d}l=Math.imul(${d}l,${s}l);`;
    case Op.SUB_R:
      return `t=(${d}l-${s}l)|0;${d}h=(${d}h-${s}h-((${d}l>>>0)<(${s}l>>>0)?1:0))|0;${d}l=t;`;
    case Op.XOR_R:
      return srcXor(d, s);
    case Op.ADD_RS:
      if (k === 0) return srcAdd(d, s);
      return `c=(${s}h<<${k})|(${s}l>>>${32 - k});e=${s}l<<${k};t=(${d}l+e)|0;${d}h=(${d}h+c+((t>>>0)<(${d}l>>>0)?1:0))|0;${d}l=t;`;
    case Op.ROR_C:
      return srcRotl(d, 64 - k);
    case Op.ADD_C:
      return srcAddConst(d, (k | 0) >> 31, k | 0);
    case Op.XOR_C:
      return `${d}h^=${(k | 0) >> 31};${d}l^=${k | 0};`;
    default:
      return "";
  }
}

/** Instructions per compiled chunk (chunks end at a BRANCH); keeps each chunk far below V8's 60 KB optimization limit. */
const CHUNK_INSTRUCTIONS = 96;
/** Inputs hashed together, chunk by chunk (their states stay in cache: 18 words each). */
const BLOCK_INPUTS = 512;

/**
 * Compiles the program, with the keyed SipHash prologue and the finalization, into JavaScript over
 * local variables. V8 does not optimize functions beyond 60 KB of bytecode, so the program is cut
 * into chunks at BRANCH instructions; chunks pass the registers through one Int32Array.
 *
 * Branches: at most one backward jump happens per run, so each BRANCH becomes "if taken, run the
 * instructions after the preceding TARGET once more, then fall through" (after a jump every later
 * branch is inert, exactly as in the interpreter).
 */
function compile(p: HashxProgram, keys: Int32Array): BatchFn {
  const regNames: string[] = [];
  for (let i = 0; i < 8; i++) regNames.push(`r${i}h`, `r${i}l`);
  const temps = "t,a,b,c,e,q,m0,m1,m2,m3,m4";
  const load = regNames.map((n, i) => `${n}=R[o+${i}]`).join(",");
  const store = regNames.map((n, i) => `R[o+${i}]=${n};`).join("");
  const chunks: string[] = [];
  let body: string[] = [];
  let count = 0;
  let lastTarget = 0;
  // Each chunk runs its slice of the program over every input of the block (state stride 18 words),
  // so each function has one hot loop that V8 optimizes early.
  const flush = (): void => {
    if (body.length === 0) return;
    chunks.push(`function(R,m){for(let o=0;o<m*18;o+=18){let ${temps},${load},res=R[o+16],en=R[o+17];${body.join("")}${store}R[o+16]=res;R[o+17]=en;}}`);
    body = [];
    count = 0;
  };
  for (let i = 0; i < p.size; i++) {
    const o = p.op[i];
    if (o === Op.TARGET) {
      lastTarget = i;
      continue;
    }
    if (o === Op.BRANCH) {
      const again: string[] = [];
      for (let j = lastTarget + 1; j < i; j++) again.push(srcInstr(p, j));
      body.push(`if(en&&(res&${p.imm[i]! | 0})===0){en=0;${again.join("")}}`);
      count += again.length + 1;
      if (count >= CHUNK_INSTRUCTIONS) flush();
      continue;
    }
    body.push(srcInstr(p, i));
    count++;
  }
  flush();
  const k = Array.from(keys, (x) => x | 0);
  const round = srcSipRound("s0", "s1", "s2", "s3");
  const prologue = `function(R,start,m){for(let n=0;n<m;n++){const o=n*18,x=(start+n)|0;let t,s0h,s0l,s1h,s1l,s2h,s2l,s3h,s3l;
    s0h=${k[0]};s0l=${k[1]};s1h=${k[2]};s1l=${k[3]! ^ 0xee};s2h=${k[4]};s2l=${k[5]};s3h=${k[6]};s3l=${k[7]}^x;
    ${round}${round}
    s0l^=x;s2l^=0xee;
    ${round}${round}${round}${round}
    R[o]=s0h;R[o+1]=s0l;R[o+2]=s1h;R[o+3]=s1l;R[o+4]=s2h;R[o+5]=s2l;R[o+6]=s3h;R[o+7]=s3l;
    s1l^=0xdd;
    ${round}${round}${round}${round}
    R[o+8]=s0h;R[o+9]=s0l;R[o+10]=s1h;R[o+11]=s1l;R[o+12]=s2h;R[o+13]=s2l;R[o+14]=s3h;R[o+15]=s3l;R[o+16]=0;R[o+17]=1;}}`;
  const epilogue = `function(R,m,outLo,outHi,at){for(let n=0;n<m;n++){const o=n*18;let t,${load};
    ${srcAddConst("r0", k[0]!, k[1]!)}${srcAddConst("r1", k[2]!, k[3]!)}${srcAddConst("r6", k[4]!, k[5]!)}${srcAddConst("r7", k[6]!, k[7]!)}
    ${srcSipRound("r0", "r1", "r2", "r3")}
    ${srcSipRound("r4", "r5", "r6", "r7")}
    outLo[at+n]=r0l^r4l;outHi[at+n]=r0h^r4h;}}`;
  const source = `"use strict";
const pro=${prologue};
const epi=${epilogue};
${chunks.map((c, i) => `const c${i}=${c};`).join("\n")}
const R = new Int32Array(${BLOCK_INPUTS * 18});
return function hashxBatch(start, count, outLo, outHi) {
  for (let done = 0; done < count; done += ${BLOCK_INPUTS}) {
    const m = Math.min(${BLOCK_INPUTS}, count - done);
    pro(R, start + done, m);
    ${chunks.map((_, i) => `c${i}(R,m);`).join("")}
    epi(R, m, outLo, outHi, done);
  }
};`;
  // The source is built only from numbers this module computed; no caller-controlled text reaches it.
  const factory = new Function("mulhu32", source) as (m: typeof mulhu32) => BatchFn;
  return factory(mulhu32);
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
  private batch: BatchFn | undefined;
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
   * Hashes inputs start .. start+count-1 (below 2^32) with the compiled program: outLo[i], outHi[i]
   * are the low and high words of the 8-byte output for start + i. Compiles on first use.
   */
  hashRange(start: number, count: number, outLo: Int32Array, outHi: Int32Array): void {
    if (!this.batch) this.batch = compile(this.program, this.keys);
    this.batch(start, count, outLo, outHi);
  }
}

/**
 * S/Kademlia crypto puzzles (Baumgart & Mies 2007, §4.1) that make node ids
 * expensive to choose and cheap to check.
 *
 * - Static puzzle: nodeId = SHA-256(publicKey), and SHA-256(nodeId) must have
 *   at least c1 leading zero bits. The only way to solve it is to generate
 *   key pairs until one fits, so an attacker cannot pick an id near a target.
 * - Dynamic puzzle: a 32-byte X such that SHA-256(nodeId XOR X) has at least
 *   c2 leading zero bits. Costs ~2^c2 hashes once per id; its difficulty can
 *   be raised over time without changing ids.
 *
 * Verification is two hashes. Ids are 256 bits (the SHA-256 width), which is
 * also the Ed25519 public-key width, so no truncation rule is needed.
 *
 * Trusts: @noble/hashes SHA-256 and the key generator it is given.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { CryptoError } from "./errors.js";
import { generateEd25519KeyPair } from "./ed25519.js";
import type { Ed25519KeyPair } from "./ed25519.js";

/** Width of node ids and puzzle solutions in bytes. */
export const PUZZLE_ID_BYTES = 32;
/** Highest difficulty accepted; beyond this solving would never finish. */
export const MAX_PUZZLE_DIFFICULTY = 64;

/** Number of leading zero bits of `bytes` (big-endian bit order). */
export function leadingZeroBits(bytes: Uint8Array): number {
  let bits = 0;
  for (const byte of bytes) {
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

function checkDifficulty(difficulty: number, name: string): void {
  if (!Number.isInteger(difficulty) || difficulty < 0 || difficulty > MAX_PUZZLE_DIFFICULTY) {
    throw new CryptoError("bad-length", `${name} must be an integer in 0..${MAX_PUZZLE_DIFFICULTY}, got ${difficulty}`);
  }
}

function check32(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== PUZZLE_ID_BYTES) {
    throw new CryptoError("bad-key-length", `${name} must be ${PUZZLE_ID_BYTES} bytes`);
  }
}

/** The node id of a public key: SHA-256(publicKey). */
export function nodeIdFromPublicKey(publicKey: Uint8Array): Uint8Array {
  check32(publicKey, "public key");
  return sha256(publicKey);
}

/** True when `publicKey` hashes to `nodeId` and SHA-256(nodeId) has `difficulty` leading zero bits. */
export function verifyStaticPuzzle(publicKey: Uint8Array, nodeId: Uint8Array, difficulty: number): boolean {
  checkDifficulty(difficulty, "static puzzle difficulty (c1)");
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUZZLE_ID_BYTES) return false;
  if (!(nodeId instanceof Uint8Array) || nodeId.length !== PUZZLE_ID_BYTES) return false;
  const derived = sha256(publicKey);
  for (let i = 0; i < PUZZLE_ID_BYTES; i++) if (derived[i] !== nodeId[i]) return false;
  return difficulty === 0 || leadingZeroBits(sha256(nodeId)) >= difficulty;
}

/** True when SHA-256(nodeId XOR x) has `difficulty` leading zero bits. */
export function verifyDynamicPuzzle(nodeId: Uint8Array, x: Uint8Array, difficulty: number): boolean {
  checkDifficulty(difficulty, "dynamic puzzle difficulty (c2)");
  if (!(nodeId instanceof Uint8Array) || nodeId.length !== PUZZLE_ID_BYTES) return false;
  if (!(x instanceof Uint8Array) || x.length !== PUZZLE_ID_BYTES) return false;
  if (difficulty === 0) return true;
  const mixed = new Uint8Array(PUZZLE_ID_BYTES);
  for (let i = 0; i < PUZZLE_ID_BYTES; i++) mixed[i] = (nodeId[i] as number) ^ (x[i] as number);
  return leadingZeroBits(sha256(mixed)) >= difficulty;
}

export interface StaticPuzzleSolution {
  keyPair: Ed25519KeyPair;
  nodeId: Uint8Array;
  /** Key pairs generated before one fitted. */
  attempts: number;
}

export interface SolveStaticPuzzleOptions {
  /** c1: leading zero bits required of SHA-256(nodeId). */
  difficulty: number;
  /** Key source; defaults to fresh random Ed25519 keys. Tests and simulators pass a seeded one. */
  generateKeyPair?: () => Ed25519KeyPair;
  /** Give up after this many key pairs (default 2^(difficulty+6)). */
  maxAttempts?: number;
}

/** Generates key pairs until one satisfies the static puzzle. Throws CryptoError "bad-length" when maxAttempts runs out. */
export function solveStaticPuzzle(options: SolveStaticPuzzleOptions): StaticPuzzleSolution {
  checkDifficulty(options.difficulty, "static puzzle difficulty (c1)");
  const generate = options.generateKeyPair ?? generateEd25519KeyPair;
  const maxAttempts = options.maxAttempts ?? 2 ** Math.min(options.difficulty + 6, 40);
  for (let attempts = 1; attempts <= maxAttempts; attempts++) {
    const keyPair = generate();
    const nodeId = sha256(keyPair.publicKey);
    if (options.difficulty === 0 || leadingZeroBits(sha256(nodeId)) >= options.difficulty) {
      return { keyPair, nodeId, attempts };
    }
  }
  throw new CryptoError(
    "bad-length",
    `no key pair met static puzzle difficulty ${options.difficulty} within ${maxAttempts} attempts; lower c1 or raise maxAttempts`,
  );
}

export interface SolveDynamicPuzzleOptions {
  /** c2: leading zero bits required of SHA-256(nodeId XOR x). */
  difficulty: number;
  /** Starting value of the search (default all zero); any start works. */
  start?: Uint8Array;
  /** Give up after this many hashes (default 2^(difficulty+8)). */
  maxAttempts?: number;
}

/** Finds X for the dynamic puzzle by counting up from `start`. Throws CryptoError "bad-length" when maxAttempts runs out. */
export function solveDynamicPuzzle(nodeId: Uint8Array, options: SolveDynamicPuzzleOptions): { x: Uint8Array; attempts: number } {
  check32(nodeId, "node id");
  checkDifficulty(options.difficulty, "dynamic puzzle difficulty (c2)");
  const x = new Uint8Array(PUZZLE_ID_BYTES);
  if (options.start !== undefined) {
    check32(options.start, "puzzle start");
    x.set(options.start);
  }
  const maxAttempts = options.maxAttempts ?? 2 ** Math.min(options.difficulty + 8, 48);
  const mixed = new Uint8Array(PUZZLE_ID_BYTES);
  for (let attempts = 1; attempts <= maxAttempts; attempts++) {
    for (let i = 0; i < PUZZLE_ID_BYTES; i++) mixed[i] = (nodeId[i] as number) ^ (x[i] as number);
    if (options.difficulty === 0 || leadingZeroBits(sha256(mixed)) >= options.difficulty) {
      return { x: x.slice(), attempts };
    }
    // Big-endian increment of x.
    for (let i = PUZZLE_ID_BYTES - 1; i >= 0; i--) {
      x[i] = ((x[i] as number) + 1) & 0xff;
      if (x[i] !== 0) break;
    }
  }
  throw new CryptoError(
    "bad-length",
    `no X met dynamic puzzle difficulty ${options.difficulty} within ${maxAttempts} hashes; lower c2 or raise maxAttempts`,
  );
}

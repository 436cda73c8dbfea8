/**
 * Making a DHT node identity: an Ed25519 key pair that solves the static
 * puzzle, plus the dynamic puzzle solution for its id.
 *
 * Trusts crypto/puzzles and crypto/ed25519.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { randomBytes } from "../crypto/backend.js";
import { ed25519PublicKey } from "../crypto/ed25519.js";
import { solveDynamicPuzzle, solveStaticPuzzle } from "../crypto/puzzles.js";
import { DEFAULT_DHT_CONFIG } from "./config.js";
import type { PuzzleDifficulty } from "./contact.js";
import type { DhtNodeIdentity } from "./node.js";

export interface CreateIdentityOptions extends Partial<PuzzleDifficulty> {
  address: string;
  /**
   * Deterministic identity for tests and simulations: key seeds are
   * SHA-256(seed || attempt) and the dynamic puzzle search starts at
   * SHA-256(seed || "x"). Never use for a real node.
   */
  seed?: Uint8Array;
}

/** Solves both puzzles (defaults: the DHT's configured difficulties) and returns a ready identity. */
export function createDhtIdentity(o: CreateIdentityOptions): DhtNodeIdentity & { nodeId: Uint8Array } {
  const seed = o.seed;
  let attempt = 0;
  const seeded = (suffix: Uint8Array): Uint8Array => sha256(new Uint8Array([...(seed as Uint8Array), ...suffix]));
  const solved = solveStaticPuzzle({
    difficulty: o.staticDifficulty ?? DEFAULT_DHT_CONFIG.staticDifficulty,
    ...(seed === undefined
      ? {}
      : {
          generateKeyPair: () => {
            const secretKey = seeded(new Uint8Array([attempt >>> 24, (attempt >>> 16) & 0xff, (attempt >>> 8) & 0xff, attempt++ & 0xff]));
            return { secretKey, publicKey: ed25519PublicKey(secretKey) };
          },
        }),
  });
  const { x } = solveDynamicPuzzle(solved.nodeId, {
    difficulty: o.dynamicDifficulty ?? DEFAULT_DHT_CONFIG.dynamicDifficulty,
    start: seed === undefined ? randomBytes(32) : seeded(new TextEncoder().encode("x")),
  });
  return { secretKey: solved.keyPair.secretKey, publicKey: solved.keyPair.publicKey, puzzleX: x, address: o.address, nodeId: solved.nodeId };
}

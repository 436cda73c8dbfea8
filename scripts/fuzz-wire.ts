/**
 * Long fuzz run over every decoder of node/src/crypto and node/src/wire:
 * random and mutated bytes must either decode or be rejected with the
 * layer's typed error (WireError / CryptoError), never a TypeError,
 * RangeError or crash. The properties live in test/properties/wire.ts and
 * crypto.ts; the unit tests run the same ones briefly.
 *
 *   npx tsx scripts/fuzz-wire.ts --iterations 200000 [--seed 42]
 *
 * Key files cost one scrypt (N = 2^10) per case, so they get iterations/200.
 */
import { Command } from "commander";
import { runTargets } from "../test/properties/common.js";
import { cryptoTargets } from "../test/properties/crypto.js";
import { wireTargets } from "../test/properties/wire.js";

const program = new Command()
  .option("--iterations <n>", "cases per target", (v) => Number.parseInt(v, 10), 100_000)
  .option("--seed <n>", "fast-check seed (random when omitted)", (v) => Number.parseInt(v, 10))
  .parse();
const { iterations, seed } = program.opts<{ iterations: number; seed?: number }>();

const failed = await runTargets([...wireTargets, ...cryptoTargets], iterations, seed);
process.exitCode = failed.length > 0 ? 1 : 0;

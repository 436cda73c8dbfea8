/**
 * Long fuzz run over the link handshake state machine: random bytes in random
 * chunks on both roles, and mutations of a valid responder flight. Every step
 * must either progress or fail with a typed LinkError carrying a CLOSE cell
 * with its reason; a mutated flight must never authenticate anyone but the
 * expected peer. The properties live in test/properties/link.ts; the unit
 * tests run the same ones briefly.
 *
 *   npx tsx scripts/fuzz-link.ts --iterations 100000 [--seed 42]
 */
import { Command } from "commander";
import { runTargets } from "../test/properties/common.js";
import { linkTargets } from "../test/properties/link.js";

const program = new Command()
  .option("--iterations <n>", "cases per target", (v) => Number.parseInt(v, 10), 50_000)
  .option("--seed <n>", "fast-check seed (random when omitted)", (v) => Number.parseInt(v, 10))
  .parse();
const { iterations, seed } = program.opts<{ iterations: number; seed?: number }>();

const failed = await runTargets(linkTargets, iterations, seed);
process.exitCode = failed.length > 0 ? 1 : 0;

/**
 * Long fuzz run over every decoder of node/src/presence/messages.ts
 * (PRESENCE_DECODERS): random bytes, mutated valid encodings, valid maps with
 * one field replaced by any CBOR value, and arbitrary CBOR values must either
 * decode (and re-encode to the same bytes) or be refused with PresenceError
 * "malformed", never another error type or kind. The properties live in
 * test/properties/presence.ts; test/unit/presence/fuzz.test.ts runs the same
 * ones briefly.
 *
 *   npx tsx scripts/fuzz-presence.ts --iterations 100000 [--seed 42]
 */
import { Command } from "commander";
import { runTargets } from "../test/properties/common.js";
import { presenceTargets } from "../test/properties/presence.js";

const program = new Command()
  .option("--iterations <n>", "cases per target", (v) => Number.parseInt(v, 10), 100_000)
  .option("--seed <n>", "fast-check seed (random when omitted)", (v) => Number.parseInt(v, 10))
  .parse();
const { iterations, seed } = program.opts<{ iterations: number; seed?: number }>();

const failed = await runTargets(presenceTargets, iterations, seed);
process.exitCode = failed.length > 0 ? 1 : 0;

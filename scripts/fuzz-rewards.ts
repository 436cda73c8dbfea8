/**
 * Long fuzz run over the usage-report decoder (node/src/rewards/report.ts) and
 * the oracle message decoders with issue 16's messages: random bytes, mutated
 * valid reports and messages, and re-signed report bodies with one field
 * replaced must decode (keeping their bytes) or be refused with a typed kind.
 * The properties live in test/properties/rewards.ts and stream.ts;
 * test/unit/rewards/fuzz.test.ts and test/unit/stream-receipt-fuzz.test.ts run
 * the same ones briefly.
 *
 *   npx tsx scripts/fuzz-rewards.ts --iterations 100000 [--seed 42]
 */
import { Command } from "commander";
import { runTargets } from "../test/properties/common.js";
import { rewardsTargets } from "../test/properties/rewards.js";
import { streamTargets } from "../test/properties/stream.js";

const program = new Command()
  .option("--iterations <n>", "cases per target", (v) => Number.parseInt(v, 10), 100_000)
  .option("--seed <n>", "fast-check seed (random when omitted)", (v) => Number.parseInt(v, 10))
  .parse();
const { iterations, seed } = program.opts<{ iterations: number; seed?: number }>();

const failed = await runTargets([...rewardsTargets, ...streamTargets.filter((t) => t.name.startsWith("oracle"))], iterations, seed);
process.exitCode = failed.length > 0 ? 1 : 0;

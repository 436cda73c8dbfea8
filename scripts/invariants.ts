/**
 * `npm run invariants`: the contract invariant property (test/properties/contracts.ts)
 * over many random sequences of staking, unstaking, slashing, signer changes, set
 * churn, votes, rejections and cumulative claims across several epochs, against the real
 * contracts on the in-process Hardhat chain. Writes its result as the
 * "invariants" section of docs/BENCHMARKS.md; exits 1 on a broken invariant
 * (fast-check prints the shrunk counterexample and the seed to replay it).
 *
 *   npm run invariants -- [--runs 10000] [--seed 42] [--max-steps 16]
 */
import { Command } from "commander";
import { benchSectionNames, readStoredSections, stamp, writeBenchReport } from "./bench/lib/report.js";
import { runContractInvariants, type InvariantStats } from "../test/properties/contracts.js";

const program = new Command()
  .option("--runs <n>", "random sequences", (v) => Number.parseInt(v, 10), 10_000)
  .option("--seed <n>", "fast-check seed (random when omitted)", (v) => Number.parseInt(v, 10))
  .option("--max-steps <n>", "longest sequence", (v) => Number.parseInt(v, 10), 16)
  .parse();
const { runs, seed, maxSteps } = program.opts<{ runs: number; seed?: number; maxSteps: number }>();

const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(0);
let stats: InvariantStats;
try {
  stats = await runContractInvariants({
    runs,
    maxSteps,
    ...(seed === undefined ? {} : { seed }),
    onProgress: (s) => console.log(`${s.sequences} sequences, ${s.steps} steps, ${s.agreements} agreements, ${s.claims} claims (${seconds()} s)`),
  });
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
const refused = Object.entries(stats.refused).sort((a, b) => b[1] - a[1]);
const markdown = [
  `${stats.sequences.toLocaleString("en-US")} random sequences (${stats.steps.toLocaleString("en-US")} steps, up to ${maxSteps} per sequence) against the real`,
  "NodeRegistry, OracleReceipts and BandwidthRewards on the in-process Hardhat chain (`npm run invariants`;",
  "`npm test` runs the same property 200 times). Six oracle-capable nodes compete for a set of four; three",
  "ended epochs each have an honest cumulative proposal and one whose leaves exceed its declared total. After every",
  "step: the registry's balance equals what it owes, the pool's balance covers totalReserved, totalReserved equals the",
  "newest agreed root's cumulative total minus totalClaimed, and totalClaimed never passes the newest final root's total;",
  "agreed roots form a chain (later epoch, total never lower, previous root final); every claim paid went against the",
  "newest final root and paid the leaf minus what the account had claimed; at every agreement the voters are distinct",
  "nodes and at least the round's quorum (fixed from the set size at the round's first vote) of them are current members",
  "that never left since the round started. Every refused step was a custom error.",
  "",
  `Result: **all invariants held** in ${seconds()} s.`,
  "",
  "| what happened | count |",
  "| --- | --- |",
  ...(
    [
      ["votes accepted", stats.votes],
      ["roots agreed", stats.agreements],
      ["roots rejected by the guardian", stats.rejections],
      ["vote rounds reset", stats.resets],
      ["claims paid", stats.claims],
      ["signer rotations", stats.rotations],
      ["evictions from a full set", stats.evictions],
    ] as const
  ).map(([what, n]) => `| ${what} | ${n.toLocaleString("en-US")} |`),
  "",
  `Refusals by custom error: ${refused.map(([name, n]) => `${name} ${n.toLocaleString("en-US")}`).join(", ")}.`,
].join("\n");
const sections = await readStoredSections();
sections.invariants = stamp({ title: "Reliability: contract invariants (fast-check)", markdown, figures: { ...stats, maxSteps, seconds: Number(seconds()) } });
await writeBenchReport(sections, await benchSectionNames());
console.log(`all invariants held over ${stats.sequences} sequences; wrote docs/BENCHMARKS.md`);

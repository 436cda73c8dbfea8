/**
 * `psp sim dht`: runs the S/Kademlia simulator (node/src/dht/simulator.ts)
 * and prints the figures, as one JSON object with --json.
 */
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { integerOption } from "./options.js";
import { ADVERSARY_STRATEGIES, runSimulation } from "../dht/simulator.js";
import type { AdversaryStrategy } from "../dht/simulator.js";

function strategy(value: string): AdversaryStrategy {
  if (!(ADVERSARY_STRATEGIES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`strategy must be one of ${ADVERSARY_STRATEGIES.join(", ")}`);
  }
  return value as AdversaryStrategy;
}

function fraction(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 0.9)) throw new InvalidArgumentError("adversarial fraction must be a number in 0..0.9");
  return n;
}

export function register(program: Command): void {
  const sim = program.command("sim").description("in-process simulators");
  sim
    .command("dht")
    .description("S/Kademlia lookups over disjoint paths against colluding adversarial nodes")
    .option("--nodes <n>", "number of nodes", integerOption("--nodes", 2, 1_000_000), 1000)
    .option("--adversarial <f>", "fraction of adversarial nodes (0..0.9)", fraction, 0)
    .option("--disjoint <d>", "disjoint lookup paths", integerOption("--disjoint", 1, 64), 4)
    .option("--bucket <k>", "bucket size k", integerOption("--bucket", 1, 1024), 16)
    .option("--siblings <s>", "sibling list size s", integerOption("--siblings", 1, 1024), 16)
    .option("--alpha <a>", "parallel queries per path", integerOption("--alpha", 1, 64), 1)
    .option("--lookups <l>", "number of node lookups", integerOption("--lookups", 1, 10_000_000), 200)
    .option("--value-lookups <v>", "number of value lookups (publish, then find; default: --lookups)", integerOption("--value-lookups", 0, 10_000_000))
    .option("--strategy <s>", `adversary strategy: ${ADVERSARY_STRATEGIES.join(", ")}`, strategy, "random-closer")
    .option("--seed <x>", "RNG seed", integerOption("--seed", 0, 2 ** 32 - 1), 1)
    .option("--max-messages <m>", "cap on queries per lookup (default 20k)", integerOption("--max-messages", 1, 1_000_000))
    .option("--json", "print one JSON object")
    .action(
      async (o: {
        nodes: number;
        adversarial: number;
        disjoint: number;
        bucket: number;
        siblings: number;
        alpha: number;
        lookups: number;
        valueLookups?: number;
        strategy: AdversaryStrategy;
        seed: number;
        maxMessages?: number;
        json?: boolean;
      }) => {
        const result = await runSimulation({
          nodes: o.nodes,
          adversarialFraction: o.adversarial,
          disjointPaths: o.disjoint,
          bucketSize: o.bucket,
          siblings: o.siblings,
          alpha: o.alpha,
          lookups: o.lookups,
          adversaryStrategy: o.strategy,
          ...(o.valueLookups === undefined ? {} : { valueLookups: o.valueLookups }),
          seed: o.seed,
          ...(o.maxMessages === undefined ? {} : { maxMessagesPerLookup: o.maxMessages }),
        });
        if (o.json) {
          console.log(JSON.stringify(result));
          return;
        }
        console.log(
          `${result.nodes} nodes, ${(result.adversarial * 100).toFixed(0)}% adversarial, d=${result.disjointPaths} k=${result.bucketSize} ` +
            `s=${result.siblings} alpha=${result.alpha} (${result.adversaryStrategy}): node lookups ${(result.successRate * 100).toFixed(1)}% ` +
            `(${result.meanHops.toFixed(2)} hops, ${result.meanMessages.toFixed(1)} messages), value lookups ` +
            `${(result.valueSuccessRate * 100).toFixed(1)}% (${result.meanHonestReplicas.toFixed(1)} honest replicas, ` +
            `${result.meanValueMessages.toFixed(1)} messages), ${result.cpuMsPerLookup.toFixed(2)} CPU ms per lookup`,
        );
      },
    );
}

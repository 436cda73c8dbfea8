/**
 * DHT figures: simulator success rate of node and value lookups, hops and
 * messages per lookup for N = 1,000 and 10,000, d in {1,2,4,8}, k = 16,
 * alpha = 1 per path, adversarial fraction 0..0.5 (colluding adversaries,
 * "random-closer" strategy). Baseline in the same run: d = 1 (a plain
 * Kademlia-style lookup); each d > 1 row gives its success and message
 * cost as a ratio to d = 1 at the same N and fraction.
 */
import { SimulatedNetwork } from "../../node/src/dht/simulator.js";
import type { SimulationResult } from "../../node/src/dht/simulator.js";
import type { BenchSection } from "./types.js";
import { fmt, table } from "./types.js";

const FRACTIONS = [0, 0.1, 0.2, 0.3, 0.4, 0.5];
const PATHS = [1, 2, 4, 8];
const SIZES: Array<{ nodes: number; lookups: number; valueLookups: number }> = [
  { nodes: 1000, lookups: 400, valueLookups: 200 },
  { nodes: 10_000, lookups: 200, valueLookups: 100 },
];

export async function run(): Promise<BenchSection> {
  const results: SimulationResult[] = [];
  const buildMs: Record<string, number> = {};
  for (const { nodes, lookups, valueLookups } of SIZES) {
    const started = performance.now();
    const network = SimulatedNetwork.build({ nodes, bucketSize: 16, siblings: 16, seed: 42 });
    buildMs[String(nodes)] = performance.now() - started;
    for (const adversarialFraction of FRACTIONS) {
      for (const disjointPaths of PATHS) {
        results.push(await network.runLookups({ adversarialFraction, disjointPaths, alpha: 1, lookups, valueLookups, seed: 7 }));
      }
    }
  }
  const baseline = (r: SimulationResult): SimulationResult =>
    results.find((b) => b.nodes === r.nodes && b.adversarial === r.adversarial && b.disjointPaths === 1) as SimulationResult;
  const rows = results.map((r) => {
    const b = baseline(r);
    return [
      fmt(r.nodes),
      `${fmt(r.adversarial * 100)}%`,
      r.disjointPaths,
      `${fmt(r.successRate * 100, 1)}%`,
      r.disjointPaths === 1 ? "baseline" : `${fmt(r.successRate / Math.max(b.successRate, 1e-9), 2)}×`,
      `${fmt(r.valueSuccessRate * 100, 1)}%`,
      r.disjointPaths === 1 ? "baseline" : `${fmt(r.valueSuccessRate / Math.max(b.valueSuccessRate, 1e-9), 2)}×`,
      fmt(r.meanHonestReplicas, 1),
      fmt(r.meanHops, 2),
      fmt(r.meanMessages, 1),
      r.disjointPaths === 1 ? "1.00×" : `${fmt(r.meanMessages / b.meanMessages, 2)}×`,
      fmt(r.cpuMsPerLookup, 2),
    ];
  });
  const at = (nodes: number, f: number, d: number) => results.find((r) => r.nodes === nodes && r.adversarial === f && r.disjointPaths === d);
  const headline = [10_000, 1000]
    .map((n) => {
      const pct = (r: SimulationResult | undefined, value = false): string => `${fmt(((value ? r?.valueSuccessRate : r?.successRate) ?? 0) * 100, 1)}%`;
      const r20 = at(n, 0.2, 8);
      const r50 = at(n, 0.5, 8);
      const b20 = at(n, 0.2, 1);
      const b50 = at(n, 0.5, 1);
      return (
        `N = ${fmt(n)}, d = 8: node lookups ${pct(r20)} at 20% adversarial nodes (d = 1 baseline ${pct(b20)}), ${pct(r50)} at 50% (d = 1: ${pct(b50)}); ` +
        `value lookups ${pct(r20, true)} at 20% (d = 1: ${pct(b20, true)}), ${pct(r50, true)} at 50% (d = 1: ${pct(b50, true)}).`
      );
    })
    .join("\n");
  const markdown = [
    "Simulator (`psp sim dht`): real DhtNode routing and lookup code, in-memory transport, seeded RNG,",
    "routing tables filled from the global view, unsigned messages (records are really signed), k = 16, s = 16, alpha = 1 per path.",
    "Adversaries collude: each answers a lookup with k colluders drawn at random from those closer to the target than",
    "itself (so different adversaries name different colluders), acknowledges STOREs and drops them.",
    "Node lookup success: the honest node closest to the target answered a query of the lookup. Value lookup success:",
    "a record published by a random honest node (disjoint-path lookup, STORE to the k closest found) is then found by",
    "another random honest node from an honest holder. \"replicas\": honest nodes that accepted each record.",
    `Network build: ${Object.entries(buildMs).map(([n, ms]) => `${fmt(Number(n))} nodes ${fmt(ms / 1000, 1)} s`).join(", ")}.`,
    "The paper reports 99% success at 20% adversarial nodes with disjoint paths.",
    "",
    headline,
    "",
    table(["N", "adversarial", "d", "node success", "vs d=1", "value success", "vs d=1", "replicas", "hops", "messages", "msgs vs d=1", "CPU ms/lookup"], rows),
  ].join("\n");
  return { title: "DHT lookups under adversaries (S/Kademlia simulator)", markdown, figures: { results, buildMs } };
}

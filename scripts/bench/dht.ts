/**
 * DHT figures: simulator success rate of node and value lookups, hops and
 * messages per lookup for N = 1,000 and 10,000, d in {1,2,4,8}, k = 16,
 * alpha = 1 per path, adversarial fraction 0..0.5 (colluding adversaries,
 * "random-closer" strategy). Baseline in the same run: d = 1 (a plain
 * Kademlia-style lookup); each d > 1 row gives its success and message
 * cost as a ratio to d = 1 at the same N and fraction.
 *
 * Issue 14's figure first: messages per node lookup at N = 10,000, d = 8 for
 * 20/30/50% adversaries with the lookup as built (window w = 2, first-reply
 * breadth b = 3), against d = 1 and against Kademlia's termination (w = k,
 * b = 0: the rule before issue 14) in the same run, with the <= 50 target and
 * the success floors 99.5/99/97%, success with 95% Wilson intervals.
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

const TARGET = { nodes: 10_000, disjointPaths: 8, maxMessages: 50, lookups: 1000, valueLookups: 400 };
const FLOORS: Record<string, number> = { "0.2": 0.995, "0.3": 0.99, "0.5": 0.97 };

/** 95% Wilson score interval of a success fraction over n trials. */
export function wilson(p: number, n: number, z = 1.96): [number, number] {
  const d = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / d;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

const pctCi = (p: number, n: number): string => {
  const [lo, hi] = wilson(p, n);
  return `${fmt(p * 100, 1)}% [${fmt(lo * 100, 1)}, ${fmt(hi * 100, 1)}]`;
};

async function issueFigure(network: SimulatedNetwork): Promise<{ markdown: string; figures: unknown[] }> {
  const variants = [
    { label: "d = 8, w = 2, b = 3 (as built)", disjointPaths: 8, overrides: {} },
    { label: "d = 8, w = k, b = 0 (before)", disjointPaths: 8, overrides: { lookupWindow: 16, firstReplyBreadth: 0 } },
    { label: "d = 1 (baseline)", disjointPaths: 1, overrides: {} },
  ];
  const rows: string[][] = [];
  const figures: unknown[] = [];
  const verdicts: string[] = [];
  for (const adversarialFraction of Object.keys(FLOORS).map(Number)) {
    let built: SimulationResult | undefined;
    let baseline: SimulationResult | undefined;
    for (const v of variants) {
      const r = await network.runLookups({
        adversarialFraction,
        disjointPaths: v.disjointPaths,
        alpha: 1,
        lookups: TARGET.lookups,
        valueLookups: TARGET.valueLookups,
        seed: 7,
        ...v.overrides,
      });
      if (v.disjointPaths === 1) baseline = r;
      else if (built === undefined) built = r;
      figures.push({ variant: v.label, ...r });
      rows.push([
        `${fmt(adversarialFraction * 100)}%`,
        v.label,
        fmt(r.meanMessages, 1),
        pctCi(r.successRate, r.lookups),
        fmt(r.meanValueMessages, 1),
        pctCi(r.valueSuccessRate, r.valueLookups),
        fmt(r.meanHonestReplicas, 1),
      ]);
    }
    const b = built as SimulationResult;
    const floor = FLOORS[String(adversarialFraction)] as number;
    const ok = b.meanMessages <= TARGET.maxMessages && b.successRate >= floor;
    verdicts.push(
      `${fmt(adversarialFraction * 100)}%: ${fmt(b.meanMessages, 1)} messages (target ≤ ${TARGET.maxMessages}; d = 1: ${fmt((baseline as SimulationResult).meanMessages, 1)}), ` +
        `success ${pctCi(b.successRate, b.lookups)} (floor ${fmt(floor * 100, 1)}%) — ${ok ? "met" : "NOT met"}`,
    );
  }
  const markdown = [
    `### Issue 14: messages per lookup at N = ${fmt(TARGET.nodes)}, d = ${TARGET.disjointPaths}`,
    "",
    `${fmt(TARGET.lookups)} node lookups and ${fmt(TARGET.valueLookups)} value lookups (publish, then find with quorum 1) per row, random-closer adversaries, k = s = 16, alpha = 1.`,
    "Messages = FIND_NODE / FIND_VALUE requests the initiator sent (one per RPC, responses not counted, timeouts counted); the",
    "publish side's lookup and its STOREs are not in either figure. Success in brackets: 95% Wilson interval. w = window, b = first-reply breadth (docs/spec/dht.md).",
    "",
    ...verdicts.map((v) => `- ${v}`),
    "",
    table(["adversarial", "lookup", "node msgs", "node success", "value msgs", "value success", "replicas"], rows),
    "",
  ].join("\n");
  return { markdown, figures };
}

export async function run(): Promise<BenchSection> {
  const results: SimulationResult[] = [];
  const buildMs: Record<string, number> = {};
  let issue: { markdown: string; figures: unknown[] } | undefined;
  for (const { nodes, lookups, valueLookups } of SIZES) {
    const started = performance.now();
    const network = SimulatedNetwork.build({ nodes, bucketSize: 16, siblings: 16, seed: 42 });
    buildMs[String(nodes)] = performance.now() - started;
    if (nodes === TARGET.nodes) issue = await issueFigure(network);
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
    (issue as { markdown: string }).markdown,
    "### Success and cost across N, d and adversarial fraction",
    "",
    "Simulator (`psp sim dht`): real DhtNode routing and lookup code, in-memory transport, seeded RNG,",
    "routing tables filled from the global view, unsigned messages (records are really signed), k = 16, s = 16, alpha = 1 per path,",
    'lookup window w = 2 and first-reply breadth b = 3 (publishing converges on w = k). "messages" = queries sent per node lookup.',
    "Adversaries collude: each answers a lookup with k colluders drawn at random from those closer to the target than",
    "itself (so different adversaries name different colluders), acknowledges STOREs and drops them.",
    "Node lookup success: the honest node closest to the target answered a query of the lookup. Value lookup success:",
    "a record published by a random honest node (disjoint-path lookup, STORE to the k closest found) is then found by",
    'another random honest node from an honest holder. "replicas": honest nodes that accepted each record.',
    `Network build: ${Object.entries(buildMs)
      .map(([n, ms]) => `${fmt(Number(n))} nodes ${fmt(ms / 1000, 1)} s`)
      .join(", ")}.`,
    "The paper reports 99% success at 20% adversarial nodes with disjoint paths.",
    "",
    headline,
    "",
    table(["N", "adversarial", "d", "node success", "vs d=1", "value success", "vs d=1", "replicas", "hops", "messages", "msgs vs d=1", "CPU ms/lookup"], rows),
  ].join("\n");
  return { title: "DHT lookups under adversaries (S/Kademlia simulator)", markdown, figures: { issue14: (issue as { figures: unknown[] }).figures, results, buildMs } };
}

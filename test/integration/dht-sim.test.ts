import { describe, expect, it } from "vitest";
import { SimulatedNetwork } from "../../node/src/dht/simulator.js";

describe("S/Kademlia simulator (500 nodes, colluding adversaries)", () => {
  const net = SimulatedNetwork.build({ nodes: 500, bucketSize: 8, siblings: 8, seed: 3 });
  const run = (adversarialFraction: number, disjointPaths: number, adversaryStrategy: "random-closer" | "own-view" = "random-closer") =>
    net.runLookups({ adversarialFraction, disjointPaths, alpha: 1, lookups: 150, valueLookups: 40, seed: 11, adversaryStrategy });

  it("one path loses node and value lookups as adversaries rise; eight disjoint paths keep most", async () => {
    const clean = await run(0, 1);
    const heavyOne = await run(0.5, 1);
    const heavyEight = await run(0.5, 8);
    expect(clean.successRate).toBe(1);
    expect(clean.valueSuccessRate).toBe(1);
    expect(clean.meanHonestReplicas).toBe(8);
    expect(heavyOne.successRate).toBeLessThan(0.8);
    expect(heavyOne.valueSuccessRate).toBeLessThan(0.6);
    expect(heavyEight.successRate).toBeGreaterThan(heavyOne.successRate + 0.15);
    expect(heavyEight.valueSuccessRate).toBeGreaterThan(heavyOne.valueSuccessRate + 0.2);
    // Adversaries drop what they should store: about half the replicas are lost.
    expect(heavyEight.meanHonestReplicas).toBeLessThan(6);
    expect(heavyEight.meanMessages).toBeGreaterThan(heavyOne.meanMessages);
    // Same seed, same network: the simulator is deterministic.
    const again = await run(0.5, 1);
    expect([again.successRate, again.valueSuccessRate]).toEqual([heavyOne.successRate, heavyOne.valueSuccessRate]);
  });

  it("adversaries that only use their own view are measured too", async () => {
    const r = await run(0.3, 4, "own-view");
    expect(r.adversaryStrategy).toBe("own-view");
    expect(r.successRate).toBeGreaterThan(0.8);
    expect(r.successRate).toBeLessThanOrEqual(1);
  });
});

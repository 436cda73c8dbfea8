/** Registers each fuzz target as a vitest test with a few hundred cases (scripts/fuzz-*.ts run the same targets at length). */
import fc from "fast-check";
import { it } from "vitest";
import type { FuzzTarget } from "./common.js";

export const UNIT_RUNS = 300;

export function fuzzTests(targets: readonly FuzzTarget[], runs = UNIT_RUNS): void {
  for (const t of targets) {
    it(`fuzz: ${t.name}`, async () => {
      await fc.assert(t.property(), { numRuns: Math.max(10, Math.floor(runs * Math.max(t.weight ?? 1, 0.1))) });
    });
  }
}

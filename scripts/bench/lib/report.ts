/**
 * docs/BENCHMARKS.md and docs/benchmarks.json: the stored sections and the
 * writer both `npm run bench` (scripts/bench.ts) and `npm run invariants`
 * (scripts/invariants.ts) use. A section keeps its last figures, stamped with
 * the date and machine it was measured on, until it is measured again.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { join } from "node:path";
import type { BenchSection } from "../types.js";
import { projectRoot } from "../../lib/artifacts.js";

const jsonPath = join(projectRoot, "docs", "benchmarks.json");

export interface StoredSection extends BenchSection {
  measuredAt: string;
  machine: string;
}

/** The bench sections (scripts/bench/<name>.ts), in report order. */
export async function benchSectionNames(): Promise<string[]> {
  const files = await readdir(join(projectRoot, "scripts", "bench"));
  // Sorted as file names (as scripts/bench.ts runs them), so "onion-core" comes before "onion".
  return files.filter((f) => f.endsWith(".ts") && f !== "types.ts").sort().map((f) => f.slice(0, -3));
}

/** The machine line every section is stamped with. */
export function machineLine(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`;
}

/** Every stored section by name (empty when there is no file yet). */
export async function readStoredSections(): Promise<Record<string, StoredSection>> {
  try {
    const parsed = JSON.parse(await readFile(jsonPath, "utf8")) as { sections?: Record<string, StoredSection> };
    return parsed.sections ?? {};
  } catch {
    return {};
  }
}

/** A freshly measured section, stamped now. */
export function stamp(section: BenchSection): StoredSection {
  return { ...section, measuredAt: new Date().toISOString().slice(0, 10), machine: machineLine() };
}

/** Writes both files: sections named in `order` first, then any other stored section (e.g. the invariant run). */
export async function writeBenchReport(sections: Record<string, StoredSection>, order: readonly string[]): Promise<number> {
  const names = [...order.filter((n) => sections[n]), ...Object.keys(sections).filter((n) => !order.includes(n)).sort()];
  const md = [
    "# Benchmarks",
    "",
    "Written by `npm run bench` (`npm run bench -- <section>` re-measures one section) and, for the contract",
    "invariant run, `npm run invariants`. The machine is shared and noisy: compare each figure with the baseline",
    "measured in the same run, as a ratio, not absolute figures across runs.",
    "",
    ...names.flatMap((name) => {
      const s = sections[name]!;
      return [`## ${s.title}`, "", `_Measured ${s.measuredAt} on ${s.machine}._`, "", s.markdown.trim(), ""];
    }),
  ].join("\n");
  await writeFile(join(projectRoot, "docs", "BENCHMARKS.md"), md);
  await writeFile(jsonPath, JSON.stringify({ sections: Object.fromEntries(names.map((n) => [n, sections[n]])) }, null, 2) + "\n");
  return names.length;
}

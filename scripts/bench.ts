/**
 * `npm run bench`: runs every benchmark section in scripts/bench/ and writes
 * docs/BENCHMARKS.md (human) and docs/benchmarks.json (machine).
 *
 * `npm run bench -- dht onion` runs only the named sections and keeps the
 * others' last figures, each stamped with the date it was measured, so one
 * layer can be re-measured without re-running hours of simulation.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BenchModule, BenchSection } from "./bench/types.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const benchDir = join(root, "scripts", "bench");
const jsonPath = join(root, "docs", "benchmarks.json");

interface StoredSection extends BenchSection {
  measuredAt: string;
  machine: string;
}

async function readStored(): Promise<Record<string, StoredSection>> {
  try {
    const parsed = JSON.parse(await readFile(jsonPath, "utf8")) as { sections?: Record<string, StoredSection> };
    return parsed.sections ?? {};
  } catch {
    return {};
  }
}

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const all = (await readdir(benchDir)).filter((f) => f.endsWith(".ts") && f !== "types.ts").sort();
  const unknown = only.filter((name) => !all.includes(`${name}.ts`));
  if (unknown.length) throw new Error(`no benchmark section ${unknown.join(", ")}: choose from ${all.map((f) => basename(f, ".ts")).join(", ")}`);
  const toRun = all.filter((f) => only.length === 0 || only.includes(basename(f, ".ts")));
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`;
  const stored = only.length === 0 ? {} : await readStored();
  for (const file of toRun) {
    const started = performance.now();
    process.stdout.write(`bench ${file} ... `);
    const mod = (await import(pathToFileURL(join(benchDir, file)).href)) as BenchModule;
    const section = await mod.run();
    stored[basename(file, ".ts")] = { ...section, measuredAt: new Date().toISOString().slice(0, 10), machine };
    process.stdout.write(`${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  }
  const ordered = all.map((f) => basename(f, ".ts")).filter((name) => stored[name]);
  const md = [
    "# Benchmarks",
    "",
    "Written by `npm run bench` (`npm run bench -- <section>` re-measures one section).",
    "The machine is shared and noisy: compare each figure with the baseline measured in the",
    "same run, as a ratio, not absolute figures across runs.",
    "",
    ...ordered.flatMap((name) => {
      const s = stored[name]!;
      return [`## ${s.title}`, "", `_Measured ${s.measuredAt} on ${s.machine}._`, "", s.markdown.trim(), ""];
    }),
  ].join("\n");
  await writeFile(join(root, "docs", "BENCHMARKS.md"), md);
  await writeFile(jsonPath, JSON.stringify({ sections: Object.fromEntries(ordered.map((n) => [n, stored[n]])) }, null, 2) + "\n");
  console.log(`wrote docs/BENCHMARKS.md (${ordered.length} sections)`);
}

await main();

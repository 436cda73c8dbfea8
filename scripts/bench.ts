/**
 * `npm run bench`: runs every benchmark section in scripts/bench/ and writes
 * docs/BENCHMARKS.md (human) and docs/benchmarks.json (machine).
 *
 * `npm run bench -- dht onion` runs only the named sections and keeps the
 * others' last figures, each stamped with the date it was measured, so one
 * layer can be re-measured without re-running hours of simulation.
 */
import { readdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BenchModule } from "./bench/types.js";
import { readStoredSections, stamp, writeBenchReport } from "./bench/lib/report.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const benchDir = join(root, "scripts", "bench");

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const all = (await readdir(benchDir)).filter((f) => f.endsWith(".ts") && f !== "types.ts").sort();
  const unknown = only.filter((name) => !all.includes(`${name}.ts`));
  if (unknown.length) throw new Error(`no benchmark section ${unknown.join(", ")}: choose from ${all.map((f) => basename(f, ".ts")).join(", ")}`);
  const toRun = all.filter((f) => only.length === 0 || only.includes(basename(f, ".ts")));
  const names = all.map((f) => basename(f, ".ts"));
  // A full run re-measures every bench section; sections written by other runners (npm run invariants) stay.
  const stored = await readStoredSections();
  if (only.length === 0) for (const name of names) delete stored[name];
  for (const file of toRun) {
    const started = performance.now();
    process.stdout.write(`bench ${file} ... `);
    const mod = (await import(pathToFileURL(join(benchDir, file)).href)) as BenchModule;
    stored[basename(file, ".ts")] = stamp(await mod.run());
    process.stdout.write(`${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  }
  const count = await writeBenchReport(stored, names);
  console.log(`wrote docs/BENCHMARKS.md (${count} sections)`);
}

await main();

/**
 * `npm run bench`: runs every benchmark section in scripts/bench/ and writes
 * docs/BENCHMARKS.md (human) and docs/benchmarks.json (machine).
 * `npm run bench -- gas crypto` runs only the named sections.
 */
import { readdir, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BenchModule, BenchSection } from "./bench/types.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const benchDir = join(root, "scripts", "bench");

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const files = (await readdir(benchDir))
    .filter((f) => f.endsWith(".ts") && f !== "types.ts")
    .sort()
    .filter((f) => only.length === 0 || only.includes(basename(f, ".ts")));
  const sections: BenchSection[] = [];
  for (const file of files) {
    const started = performance.now();
    process.stdout.write(`bench ${file} ... `);
    const mod = (await import(pathToFileURL(join(benchDir, file)).href)) as BenchModule;
    sections.push(await mod.run());
    process.stdout.write(`${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`;
  const md = [
    "# Benchmarks",
    "",
    `Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)} (${machine}).`,
    "The machine is shared and noisy: compare the ratios against the baseline measured in",
    "the same run, not absolute figures across runs.",
    "",
    ...sections.flatMap((s) => [`## ${s.title}`, "", s.markdown.trim(), ""]),
  ].join("\n");
  const json = Object.fromEntries(sections.map((s) => [s.title, s.figures]));
  if (only.length === 0) {
    await writeFile(join(root, "docs", "BENCHMARKS.md"), md);
    await writeFile(join(root, "docs", "benchmarks.json"), JSON.stringify(json, null, 2) + "\n");
    console.log("wrote docs/BENCHMARKS.md");
  } else {
    console.log(md);
  }
}

await main();

/**
 * Shared shape of a benchmark section. Each file in `scripts/bench/` exports
 * `run(): Promise<BenchSection>`; `scripts/bench.ts` runs them in order and
 * writes every section to `docs/BENCHMARKS.md`.
 *
 * The machine is shared and noisy, so every figure that matters is reported
 * beside a baseline measured in the same run, as a ratio.
 */
export interface BenchSection {
  /** Heading of the section in BENCHMARKS.md. */
  title: string;
  /** Markdown body: tables, ratios, a sentence on method. */
  markdown: string;
  /** Machine-readable figures, also written to docs/benchmarks.json. */
  figures: Record<string, unknown>;
}

export type BenchModule = { run: () => Promise<BenchSection> };

/** Runs `fn` repeatedly for about `ms` milliseconds and returns operations per second. */
export function opsPerSecond(fn: () => void, ms = 400): number {
  // Warm up so the JIT has compiled the hot path before we time it.
  const warmupEnd = performance.now() + Math.min(100, ms / 4);
  while (performance.now() < warmupEnd) fn();
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 16; i++) fn();
    ops += 16;
    now = performance.now();
  }
  return (ops * 1000) / (now - start);
}

/** Formats a number with thousands separators and at most `digits` decimals. */
export function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** A GitHub-flavoured markdown table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map(String).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

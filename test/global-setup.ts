/**
 * Vitest global setup: tests that spawn `psp` run the compiled build/, so a
 * build older than its sources would test yesterday's code. Recompiles
 * (incrementally, a few seconds) when any source is newer than the build;
 * costs one directory walk otherwise. `npm test` has built already.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const buildInfo = join(root, "build", ".tsbuildinfo");
const sourceRoots = ["node/src", "scripts/lib", "scripts/devnet.ts", "scripts/deploy.ts", "scripts/operator.ts", "tsconfig.json", "tsconfig.build.json"];

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

export default function setup(): void {
  let built = 0;
  try {
    built = statSync(buildInfo).mtimeMs;
  } catch {
    // No build yet.
  }
  const newest = Math.max(...sourceRoots.map((p) => newestMtime(join(root, p))));
  if (newest <= built) return;
  execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
  // tsc leaves its build info untouched when a touched source compiled to the same output.
  const now = new Date();
  utimesSync(buildInfo, now, now);
}

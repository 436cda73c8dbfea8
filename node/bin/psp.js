#!/usr/bin/env node
// The `psp` command: runs the compiled CLI in build/ (made by `npm ci` through
// `prepare`, or `npm run build`). PSP needs Node 22 (Hardhat 3, the native
// SQLite binding): an older Node re-runs this file under the checkout's own.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
  const node22 = fileURLToPath(new URL("../../node_modules/node/bin/node", import.meta.url));
  if (!existsSync(node22)) {
    console.error(`psp: needs Node.js 22 or newer (this is ${process.version}); run \`npx -y -p node@22 -- npm ci\` in the checkout, then \`npx psp\``);
    process.exit(1);
  }
  const run = spawnSync(node22, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(run.status ?? 1);
}

const main = new URL("../../build/node/src/cli/main.js", import.meta.url);
if (!existsSync(main)) {
  console.error("psp: the compiled CLI is missing (build/node/src/cli/main.js): run `npm run build` in the checkout (`npm ci` runs it)");
  process.exit(1);
}
await import(main.href);

/**
 * `npm run build:dashboard`: bundles the devnet dashboard (dashboard/src/main.ts,
 * plain TypeScript modules and uPlot) with esbuild into build/dashboard/, with
 * its index.html, style.css and uPlot's stylesheet beside it. The devnet API
 * serves that folder at its root (scripts/lib/devnet-api.ts).
 */
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { build } from "esbuild";
import { projectRoot } from "./lib/artifacts.js";

const src = join(projectRoot, "dashboard");
const out = join(projectRoot, "build", "dashboard");
await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(src, "src", "main.ts")],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: true,
  outfile: join(out, "main.js"),
  logLevel: "warning",
});
await copyFile(join(src, "index.html"), join(out, "index.html"));
await copyFile(join(src, "style.css"), join(out, "style.css"));
await copyFile(join(projectRoot, "node_modules", "uplot", "dist", "uPlot.min.css"), join(out, "uPlot.min.css"));
console.log(`dashboard built in ${out}`);

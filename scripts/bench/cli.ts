/**
 * CLI start-up: wall time of `psp --help` and of `psp identity show` (which
 * reads a key file and asks a real Hardhat chain over JSON-RPC for the
 * identity's status), each against `node -e 0` measured in the same run, as
 * the difference from it. Runs the built bin (`node/bin/psp.js` → build/), as
 * `npx psp` does minus npm's own start-up (about 1 s here, outside PSP's reach).
 * Run alone with `npm run bench -- cli`.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectChain } from "../../node/src/chain/clients.js";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { encryptKeyFile } from "../../node/src/crypto/keyfile.js";
import { projectRoot } from "../lib/artifacts.js";
import { deployPsp, devnetParams, writeDeployment } from "../lib/deploy.js";
import { devAccount } from "../lib/devnet-accounts.js";
import { startHardhatNode } from "../lib/hardhat-node.js";
import { fmt, table } from "./types.js";
import type { BenchSection } from "./types.js";

const ROUNDS = 9;
/** The targets: how far above `node -e 0` each command may start. */
const TARGET_MS = { help: 400, show: 1000 };

/** Runs one process to completion and returns its wall time in milliseconds; throws on a non-zero exit. */
async function timeRun(args: string[]): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: projectRoot, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`node ${args.join(" ")} exited with ${code}: ${stderr.trim()}`))));
  });
  return performance.now() - started;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(): Promise<BenchSection> {
  const dir = await mkdtemp(join(tmpdir(), "psp-bench-cli-"));
  const chain = await startHardhatNode({ port: 0 });
  try {
    const admin = await connectChain({ rpcUrl: chain.rpcUrl, account: devAccount(0) });
    const { deployment } = await deployPsp({ clients: admin, network: "bench", params: devnetParams });
    const deploymentFile = join(dir, "deployment.json");
    await writeDeployment(deploymentFile, deployment);
    const keyFile = join(dir, "bench.key");
    // `show` reads only the public key, so the file's scrypt cost does not enter the figure.
    await writeFile(keyFile, await encryptKeyFile(generateEd25519KeyPair().secretKey, "bench", { scrypt: { N: 2 ** 10, r: 8, p: 1 } }));

    const bin = join(projectRoot, "node", "bin", "psp.js");
    const commands = {
      baseline: ["-e", "0"],
      help: [bin, "--help"],
      show: [bin, "identity", "show", "--key-file", keyFile, "--rpc", chain.rpcUrl, "--deployment", deploymentFile],
    };
    // One warm-up run each fills the OS file cache, as any second run of a CLI finds it.
    for (const args of Object.values(commands)) await timeRun(args);
    // Interleaved rounds: the difference of neighbouring runs is far steadier on a loaded machine.
    const samples = { baseline: [] as number[], help: [] as number[], show: [] as number[], helpOver: [] as number[], showOver: [] as number[] };
    for (let i = 0; i < ROUNDS; i++) {
      const base = await timeRun(commands.baseline);
      const help = await timeRun(commands.help);
      const show = await timeRun(commands.show);
      samples.baseline.push(base);
      samples.help.push(help);
      samples.show.push(show);
      samples.helpOver.push(help - base);
      samples.showOver.push(show - base);
    }
    const figures = {
      rounds: ROUNDS,
      baselineMs: median(samples.baseline),
      helpMs: median(samples.help),
      showMs: median(samples.show),
      helpOverBaselineMs: median(samples.helpOver),
      showOverBaselineMs: median(samples.showOver),
      targetHelpOverMs: TARGET_MS.help,
      targetShowOverMs: TARGET_MS.show,
    };
    const verdict = (over: number, target: number) => (over <= target ? `within ${target} ms: yes` : `within ${target} ms: **no**`);
    const markdown = [
      `Wall time of one CLI run, median of ${ROUNDS} interleaved rounds after a warm-up, against \`node -e 0\` in the same round.`,
      "`psp identity show` reads a key file and queries a Hardhat chain over JSON-RPC. `npx` adds npm's own start-up on top (about 1 s here).",
      "",
      table(
        ["command", "wall time", "above `node -e 0`", "target"],
        [
          ["`node -e 0` (baseline)", `${fmt(figures.baselineMs)} ms`, "–", "–"],
          ["`psp --help`", `${fmt(figures.helpMs)} ms`, `${fmt(figures.helpOverBaselineMs)} ms`, verdict(figures.helpOverBaselineMs, TARGET_MS.help)],
          ["`psp identity show`", `${fmt(figures.showMs)} ms`, `${fmt(figures.showOverBaselineMs)} ms`, verdict(figures.showOverBaselineMs, TARGET_MS.show)],
        ],
      ),
    ].join("\n");
    return { title: "CLI start-up", markdown, figures };
  } finally {
    await chain.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

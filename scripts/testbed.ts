/**
 * `npm run testbed -- up|down|bench` (issue 18): the multi-host testbed.
 *
 * - `up`: builds the network (one namespace per node, veth into a bridge,
 *   netem on every link, or a userspace link emulator where the kernel has
 *   no netem: scripts/lib/testbed/net.ts), starts the devnet
 *   across it (chain, contracts, eleven nodes of every role, the demo users)
 *   and runs until SIGINT/SIGTERM, then tears everything down.
 * - `down`: stops any running testbed (SIGTERM to its process) and deletes
 *   every testbed namespace and interface left behind.
 * - `bench`: `up`, then the measurements (scripts/lib/testbed/measure.ts),
 *   printed and written as JSON, then down.
 *
 * Needs root (network namespaces); without them it says why and exits 2.
 */
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { createLogger } from "../node/src/log.js";
import { DEVNET_PASSPHRASE } from "./lib/devnet.js";
import { projectRoot } from "./lib/artifacts.js";
import { checkTestbedCapability } from "./lib/testbed/capability.js";
import { measureNetwork } from "./lib/testbed/measure.js";
import { DEFAULT_LINK_SHAPE, removeAll, type LinkShape } from "./lib/testbed/net.js";
import { startTestbed, type Testbed } from "./lib/testbed/testbed.js";

const logger = createLogger({ level: "info" });

const ms = (v: string): number => {
  const m = /^(\d+(?:\.\d+)?)(ms)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not a duration in ms (e.g. 20ms)`);
  return Number(m[1]);
};
const percent = (v: string): number => {
  const m = /^(\d+(?:\.\d+)?)%?$/.exec(v.trim());
  if (!m || Number(m[1]) > 100) throw new InvalidArgumentError(`"${v}" is not a loss percentage (e.g. 0.5%)`);
  return Number(m[1]);
};

interface ShapeOptions {
  delay: number;
  jitter: number;
  loss: number;
  requireShaping?: boolean;
  dir?: string;
}

const withShape = (cmd: Command): Command =>
  cmd
    .option("--delay <ms>", "one-way delay each host's link adds", ms, DEFAULT_LINK_SHAPE.delayMs)
    .option("--jitter <ms>", "± jitter around the delay", ms, DEFAULT_LINK_SHAPE.jitterMs)
    .option("--loss <percent>", "packets each host's link drops", percent, DEFAULT_LINK_SHAPE.lossPercent)
    .option("--require-shaping", "fail when the links cannot be shaped (no netem, no link emulator) instead of running them unshaped")
    .option("--dir <dir>", "where the devnet's state, keys and logs go (default: a fresh temporary folder)");

async function preflight(): Promise<void> {
  const cap = await checkTestbedCapability();
  if (!cap.netns) {
    console.error(`testbed: cannot run here: ${cap.reason}`);
    process.exit(2);
  }
  if (!cap.netem) console.warn(`testbed: ${cap.reason}${cap.shaping ? "" : " (--require-shaping makes that an error)"}`);
}

/** Starts the testbed, stopping it (and the network) on SIGINT/SIGTERM or when `body` ends. */
async function withTestbed(o: ShapeOptions, body: (tb: Testbed) => Promise<void>): Promise<void> {
  await preflight();
  const shape: LinkShape = { delayMs: o.delay, jitterMs: o.jitter, lossPercent: o.loss };
  const dir = o.dir ?? (await mkdtemp(join(tmpdir(), "psp-testbed-")));
  await mkdir(dir, { recursive: true });
  let testbed: Testbed | undefined;
  let starting: Promise<Testbed> | undefined;
  let stopping = false;
  const stop = async (why: string, code: number): Promise<never> => {
    if (stopping) {
      console.error(`${why} again: exiting now; \`npm run testbed -- down\` deletes what is left`);
      process.exit(code);
    }
    stopping = true;
    console.log(`${why}: stopping the testbed${testbed ? "" : " once its start-up settles (nodes are starting)"}`);
    try {
      // Mid-start there is no handle yet: wait for it (or its failure, which cleans up itself), then stop.
      testbed ??= await starting?.catch(() => undefined);
      await testbed?.stop();
      console.log("testbed stopped: nodes and chain exited, namespaces and links deleted");
    } catch (err) {
      console.error(`testbed did not stop cleanly (run \`npm run testbed -- down\`): ${(err as Error).message}`);
      code = 1;
    }
    if (!o.dir) await rm(dir, { recursive: true, force: true });
    process.exit(code);
  };
  process.on("SIGINT", () => void stop("SIGINT", 130));
  process.on("SIGTERM", () => void stop("SIGTERM", 143));
  try {
    const started = performance.now();
    starting = startTestbed({ dir, shape, ...(o.requireShaping ? { requireShaping: true } : {}), logger });
    testbed = await starting;
    if (stopping) return await new Promise<never>(() => {}); // a signal came mid-start: stop() has it
    const { net, devnet } = testbed;
    console.log(
      [
        "",
        `PSP testbed up in ${((performance.now() - started) / 1000).toFixed(1)} s: ${net.hosts.length} namespaces, root namespace ${net.rootAddress}`,
        `  links        ${
          net.shaping.by === "none"
            ? `UNSHAPED: ${net.shaping.reason}`
            : `${net.shaping.by === "netem" ? "netem" : "userspace link emulator"}: delay ${shape.delayMs} ms ± ${shape.jitterMs} ms, loss ${shape.lossPercent} % on every host's egress (host-to-host RTT ${2 * shape.delayMs} ms)`
        }`,
        `  chain        ${devnet.state.rpcUrl}`,
        `  state        ${testbed.stateFile}`,
        ...devnet.state.nodes.map(
          (n) =>
            `  ${n.name.padEnd(12)} ${(net.hosts.find((h) => h.name === n.name)?.namespace ?? "").padEnd(18)} ${n.addresses.join(", ").padEnd(18)} ${n.controlApi ?? ""}`,
        ),
        "",
      ].join("\n"),
    );
    await body(testbed);
  } catch (err) {
    console.error(`testbed failed: ${err instanceof Error ? err.message : String(err)}`);
    if (stopping) return await new Promise<never>(() => {}); // stop() is under way and exits
    await stop("failure", 1);
  }
}

const program = new Command("testbed").description(
  "PSP multi-host testbed: nodes in network namespaces joined by veth, netem delay and loss per link (needs root)",
);

withShape(program.command("up").description("build the testbed and run it until Ctrl-C")).action(async (o: ShapeOptions) => {
  await withTestbed(o, async () => {
    console.log("Ctrl-C (or `npm run testbed -- down`) stops the testbed and deletes its namespaces.");
    await new Promise<never>(() => {});
  });
});

withShape(program.command("bench").description("build the testbed, measure circuits, presence and a stream across it, tear down"))
  .option("--out <file>", "JSON figures", join(projectRoot, "test-artifacts", "testbed", "bench.json"))
  .action(async (o: ShapeOptions & { out: string }) => {
    await withTestbed(o, async (tb) => {
      const figures = await measureNetwork({ state: tb.devnet.state, stateFile: tb.stateFile, passphrase: DEVNET_PASSPHRASE, logger });
      await mkdir(join(o.out, ".."), { recursive: true });
      await writeFile(o.out, JSON.stringify({ shape: tb.net.shape, shaping: tb.net.shaping, figures }, null, 2) + "\n");
      console.log(JSON.stringify(figures, null, 2));
      console.log(`figures written to ${o.out}`);
      await tb.stop();
    });
    process.exit(0);
  });

program
  .command("down")
  .description("stop any running testbed and delete every testbed namespace and interface")
  .action(async () => {
    const removed = await removeAll(20_000, logger);
    console.log(removed.length ? `deleted ${removed.join(", ")}` : "no testbed namespaces or interfaces left");
  });

await program.parseAsync();

/**
 * `npm start`: runs the local devnet until interrupted.
 *
 * PSP_DEVNET_PORT (default 8545) sets the chain's port, PSP_DEVNET_API_PORT
 * (default 8600) the control API's. State goes to
 * devnet/state.json, the deployment to deployments/localhost.json.
 *
 * Start-up progress (chain, contracts, nodes, demo) shows through
 * node/src/cli/progress.ts: on a terminal listr2's renderer on stderr with
 * each step's latest log line under it; elsewhere the log lines on stdout
 * as before, with plain step lines (`❯ title`, `✔ title`) on stderr.
 */
import { join } from "node:path";
import { Writable } from "node:stream";
import { progressMode, trackSteps } from "../node/src/cli/progress.js";
import { projectRoot } from "./lib/artifacts.js";
import { DEVNET_PASSPHRASE, DEVNET_STEPS, startDevnet, waitForConsensusListing } from "./lib/devnet.js";
import type { DevnetStep } from "./lib/devnet.js";
import { startDevnetUsers } from "./lib/devnet-demo.js";
import { publishDemoStream } from "./lib/devnet-gateway.js";
import type { DevnetUsers } from "./lib/devnet-demo.js";
import { createLogger } from "../node/src/log.js";

const port = Number(process.env.PSP_DEVNET_PORT ?? 8545);
const apiPort = Number(process.env.PSP_DEVNET_API_PORT ?? 8600);
const dir = join(projectRoot, "devnet");
const started = performance.now();

const STEP_TITLES: Record<DevnetStep, string> = {
  chain: "chain: a Hardhat JSON-RPC node",
  deploy: "contracts: deploy the PSP contracts",
  nodes: "nodes: register, stake and start every node",
  demo: "demo: accounts, identities through the authorities, a subscription, receipts",
};
const steps = trackSteps(DEVNET_STEPS.map((s) => STEP_TITLES[s]));
// On a terminal each log line becomes its step's progress line; elsewhere the log lines go to stdout as they always did.
// Each node logs to devnet/nodes/<name>/node.log.
let startedUp = false;
const toSteps = new Writable({
  write(chunk: Buffer, _encoding, callback) {
    for (const line of chunk.toString().split("\n")) {
      if (line.trim() === "") continue;
      let text = line;
      try {
        text = String((JSON.parse(line) as { msg?: unknown }).msg ?? line);
      } catch {
        // not a JSON line: shown as it is
      }
      // After the start-up (a node process that exits, say) the lines go to stdout, where they always went.
      if (startedUp) console.log(text);
      else steps.output(text);
    }
    callback();
  },
});
const startupLogger = progressMode() === "tty" ? createLogger({ level: "info", destination: toSteps, pretty: false }) : createLogger({ level: "info" });
const logger = createLogger({ level: "info" });
const devnet = await startDevnet({
  port,
  apiPort,
  dir,
  deploymentFile: join(projectRoot, "deployments", "localhost.json"),
  logger: startupLogger,
  onStep: (step) => steps.start(STEP_TITLES[step]),
}).catch(async (err: unknown) => {
  await steps.fail(err);
  console.error(`devnet failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
await steps.done();
startedUp = true;

const { state } = devnet;
console.log(
  [
    "",
    `PSP devnet up in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    `  JSON-RPC     ${state.rpcUrl} (chain ${state.chainId})`,
    `  dashboard    ${state.controlApi}/  (live: nodes, consensus, circuits, DHT, presence, streams, stakes, rewards)`,
    `  control API  ${state.controlApi}/v1/status  (also /v1/chain/sets, /v1/nodes/<name>, /v1/identities/<id>, /metrics)`,
    `  state        ${join(dir, "state.json")}`,
    `  deployment   ${state.deploymentFile}`,
    `  nodes        ${state.nodes.length} registered and staked (${state.sets.authority.length} authority, ${state.sets.oracle.length} oracle, ${state.sets.discovery.length} discovery)`,
    `  demo id      ${state.demo.identity.identity}`,
    ...state.nodes
      .filter((n) => n.controlApi || n.addresses.length)
      .map((n) => `  ${n.name.padEnd(12)} ${n.addresses.join(", ").padEnd(22)} ${n.controlApi ?? ""}${n.internal ? "  (internal: listed without its address)" : ""}`),
    "",
    "Try: npm run operator -- status --node-key " + state.nodes[0]!.nodeKey.slice(2),
    "Ctrl-C stops the devnet.",
  ].join("\n"),
);

console.log("Waiting for the discovery nodes' first signed consensus (one voting period)...");
let users: DevnetUsers | undefined;
void devnet.firstConsensus.then(async (c) => {
  console.log(
    `consensus signed by ${c.signers} discovery nodes, listing ${c.nodes} nodes, valid until ${new Date(c.validUntil).toISOString()} (served by ${c.servedBy}'s /v1/consensus, ${(c.afterMs / 1000).toFixed(1)} s after start)`,
  );
  // The demo users find each other and talk; alice then stays present for anyone to message.
  try {
    // Presence needs relays in the consensus: descriptors arrive over the first periods.
    const listed = await waitForConsensusListing(state.nodes, state.nodes.length, 5 * 60_000);
    if (stopping) return;
    console.log(`consensus lists all ${listed} nodes: starting the demo users alice and carol`);
    users = startDevnetUsers({
      stateFile: join(dir, "state.json"),
      users: state.demo.users,
      passphrase: DEVNET_PASSPHRASE,
      logger,
      // The dashboard's player finds the demo stream's ticket and gateway in GET /v1/devnet (demo.stream).
      onStream: (demo) => publishDemoStream(state, demo),
    });
    await users.demo;
    const alice = state.demo.users.find((u) => u.name === "alice")!;
    console.log(`Message alice: npx psp msg send --key-file devnet/keys/carol.key --to ${alice.identity} --text hi`);
  } catch (err) {
    if (!stopping) console.error(`devnet demo users: ${err instanceof Error ? err.message : String(err)}`);
  }
});

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping the devnet`);
  try {
    await users?.stop();
    await devnet.stop();
  } catch (err) {
    console.error(`devnet did not stop cleanly: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
  console.log("devnet stopped: every node and the chain have exited");
  process.exit(0);
};
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));

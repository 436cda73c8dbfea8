/**
 * `psp node run --config <file>`: runs a node process with the roles in its
 * config (docs/spec/node.md). Prints one JSON line `{"event":"ready",
 * ...NodeInfo}` once listening (identity, onion key, link address, roles,
 * DHT address, control API URL: what a client or a devnet script needs),
 * then runs until SIGINT or SIGTERM, when it closes the control API, the
 * directory, the DHT store and its links (CLOSE SHUTDOWN) and exits. A bad
 * config exits with status 2 and a message naming the field.
 */
import type { Command } from "commander";
import { isPspError } from "../errors.js";
import { errorSummary } from "./run.js";
import { loadNodeConfig } from "../node/config.js";
import { startNode } from "../node/node.js";

export function register(program: Command): void {
  const node = program.command("node").description("run a PSP node");
  node
    .command("run")
    .description("start a node: TLS links, onion relay, DHT, directory, control API and the roles in its config (onion, discovery, authority, oracle)")
    .requiredOption("--config <file>", "node config file (JSON; see docs/spec/node.md)")
    .action(async (o: { config: string }) => {
      let running;
      try {
        running = await startNode(await loadNodeConfig(o.config));
      } catch (err) {
        if (!isPspError(err)) throw err;
        console.error(`psp node run: ${errorSummary(err)}`);
        process.exitCode = 2;
        return;
      }
      console.log(JSON.stringify({ event: "ready", ...running.info }));
      const stop = async (): Promise<void> => {
        await running.close();
        process.exit(0);
      };
      process.once("SIGINT", () => void stop());
      process.once("SIGTERM", () => void stop());
      // The listener keeps the process alive until a signal arrives.
    });
}

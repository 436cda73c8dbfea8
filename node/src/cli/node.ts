/**
 * `psp node run --config <file>`: runs a node process with the roles in its
 * config (docs/spec/node.md). Logs JSON lines with levels to stdout (pretty
 * when stdout is a terminal) at the level of `--log-level`, else
 * PSP_LOG_LEVEL, else the config's `log.level`, else info. Once listening it
 * writes the ready line, a log line whatever the level:
 * `{"level":30,...,"component":"node","event":"ready", ...NodeInfo}`
 * (identity, onion key, link address, roles, DHT address, control API URL:
 * what a client or a devnet script needs), then runs until SIGINT or
 * SIGTERM, when it closes the control API, the directory, the DHT store and
 * its links (CLOSE SHUTDOWN) and exits. A bad config or log level exits with
 * status 2 and a message naming the field on stderr.
 *
 * This is the top composition point: it alone hands startNode the oracle
 * service from the top-level oracle/ folder (StartNodeOptions.oracleService),
 * so the rest of node/src never imports oracle/.
 */
import type { Command } from "commander";
import { isPspError } from "../errors.js";
import { errorSummary } from "./run.js";
import { LOG_LEVELS, createLogger } from "../log.js";
import type { LogLevel } from "../log.js";
import { NodeError, loadNodeConfig, parseLogLevel } from "../node/config.js";
import type { NodeConfig } from "../node/config.js";
import { startNode } from "../node/node.js";
import { startOracleService } from "../../../oracle/node.js";

/** The level to log at: the flag, then PSP_LOG_LEVEL, then the config, then info. Throws NodeError "bad-config" for a name that is not a level. */
export function resolveLogLevel(config: NodeConfig, flag: string | undefined, env: string | undefined = process.env.PSP_LOG_LEVEL): LogLevel {
  for (const [source, value] of [
    ["--log-level", flag],
    ["PSP_LOG_LEVEL", env],
  ] as const) {
    if (value === undefined || value === "") continue;
    const level = parseLogLevel(value);
    if (level === undefined) throw new NodeError("bad-config", `${source} ${JSON.stringify(value)} is not a log level; use one of ${LOG_LEVELS.join(", ")}`);
    return level;
  }
  return config.log?.level ?? "info";
}

export function register(program: Command): void {
  const node = program.command("node").description("run a PSP node");
  node
    .command("run")
    .description("start a node: TLS links, onion relay, DHT, directory, control API and the roles in its config (onion, discovery, authority, oracle)")
    .requiredOption("--config <file>", "node config file (JSON; see docs/spec/node.md)")
    .option("--log-level <level>", `lowest level logged (${LOG_LEVELS.join(", ")}); overrides PSP_LOG_LEVEL and the config's log.level`)
    .action(async (o: { config: string; logLevel?: string }) => {
      let running;
      try {
        const config = await loadNodeConfig(o.config);
        const logger = createLogger({ level: resolveLogLevel(config, o.logLevel) });
        running = await startNode(config, { logger, oracleService: startOracleService });
      } catch (err) {
        if (!isPspError(err)) throw err;
        console.error(`psp node run: ${errorSummary(err)}`);
        process.exitCode = 2;
        return;
      }
      // Scripts wait for this line (scripts/lib/devnet-nodes.ts, tests): written at info whatever the configured level.
      running.logger.child({ component: "node" }, { level: "info" }).info({ event: "ready", ...running.info }, "ready");
      const stop = async (): Promise<void> => {
        await running.close();
        process.exit(0);
      };
      process.once("SIGINT", () => void stop());
      process.once("SIGTERM", () => void stop());
      // The listener keeps the process alive until a signal arrives.
    });
}

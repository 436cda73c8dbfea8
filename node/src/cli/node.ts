/**
 * `psp node start --config <file>` (alias `psp node run`, which the devnet
 * and tests spawn): runs a node process with the roles in its config
 * (docs/spec/node.md; JSON, YAML or TOML by extension). Before starting it
 * runs the start-up diagnostics (node/diagnostics.ts): a port in use, an RPC
 * endpoint that does not answer or serves another chain, a node key not
 * registered or not staked for its roles, discovery nodes that do not
 * answer. A fatal finding exits with status 2 and one line
 * `psp node start: error: [node/kind] message; fix: …` on stderr (with
 * `--json` also `{ "error": { layer, kind, category, message, fix } }` on
 * stdout); a warning is one `warning: …` line on stderr, and the node starts.
 * The alias `node run` skips the discovery dial: scripts start the
 * discovery nodes together with the rest (and the node logs failed fetches).
 *
 * Logs JSON lines with levels to stdout (pretty when stdout is a terminal,
 * never with --json) at the level of `--log-level`, else PSP_LOG_LEVEL, else
 * the config's `log.level`, else info. Once listening it writes the ready
 * line, a log line whatever the level:
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
import { LOG_LEVELS, createLogger } from "../log.js";
import type { LogLevel } from "../log.js";
import { NodeError, loadIdentityKey, loadNodeConfig, parseLogLevel } from "../node/config.js";
import type { NodeConfig } from "../node/config.js";
import { diagnoseNode, explainStartFailure } from "../node/diagnostics.js";
import { startNode } from "../node/node.js";
import { startOracleService } from "../../../oracle/node.js";
import { errorSummary, reportFailure } from "./output.js";

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

interface StartOptions {
  config: string;
  logLevel?: string;
  json?: boolean;
}

/** Diagnoses, then starts the node; a fatal finding or a failed start exits 2 (the header). */
async function start(name: "start" | "run", o: StartOptions): Promise<void> {
  let running;
  let config: NodeConfig | undefined;
  try {
    config = await loadNodeConfig(o.config);
    const level = resolveLogLevel(config, o.logLevel);
    const identity = config.identity ? (await loadIdentityKey(config)).publicKey : undefined;
    const findings = await diagnoseNode(config, { configFile: o.config, checkDiscovery: name === "start", ...(identity ? { identity } : {}) });
    for (const w of findings.filter((d) => d.severity === "warning")) console.error(`warning: ${errorSummary(w.error)}`);
    const failed = findings.find((d) => d.severity === "fatal");
    if (failed) throw failed.error;
    const logger = createLogger({ level, ...(o.json ? { pretty: false } : {}) });
    running = await startNode(config, { logger, oracleService: startOracleService });
  } catch (raw) {
    const err = config ? explainStartFailure(raw, config, o.config) : raw;
    if (!isPspError(err)) throw err;
    reportFailure(err, { json: o.json, exitCode: 2, prefix: `psp node ${name}` });
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
}

export function register(program: Command): void {
  const node = program.command("node").description("run a PSP node");
  for (const name of ["start", "run"] as const) {
    node
      .command(name)
      .description(
        name === "start"
          ? "check the config, ports, chain standing and discovery nodes, then start a node: TLS links, onion relay, DHT, directory, control API and the roles in its config"
          : "the same as `psp node start` without the discovery dial (scripts that start a whole network at once use it)",
      )
      .requiredOption("--config <file>", "node config file: .json, .yaml/.yml or .toml (docs/spec/node.md)")
      .option("--log-level <level>", `lowest level logged (${LOG_LEVELS.join(", ")}); overrides PSP_LOG_LEVEL and the config's log.level`)
      .option("--json", "log lines as JSON even on a terminal; a failure also as { error } on stdout")
      .action((o: StartOptions) => start(name, o));
  }
}

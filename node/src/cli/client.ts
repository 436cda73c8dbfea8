/**
 * `psp client run`: a PSP client kept running as a local daemon, so apps in
 * any language can announce presence, look users up, open private channels
 * and exchange messages through a REST + WebSocket API (api/client-daemon.ts,
 * docs/CLIENT.md "The client daemon").
 *
 * Every request needs the daemon's bearer token: `--token`, PSP_CLIENT_TOKEN,
 * or one made at start. It is written to `--token-file` (mode 0600) when one
 * is named, and otherwise printed once, in the JSON line the daemon prints
 * when it is ready: `{"event":"ready","url":...,"identity":...,"token":...}`.
 * Logs go to stderr (pretty on a terminal, JSON lines with `--json`, which
 * also prints a failure as `{ "error": {...} }` on stdout; the ready line is
 * JSON either way). It runs until SIGINT or SIGTERM, then closes the API,
 * its channels and the client, and exits 0.
 */
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { InvalidArgumentError, Option } from "commander";
import { MIN_TOKEN_LENGTH, startClientDaemon } from "../api/client-daemon.js";
import { writeTokenFile } from "../api/token.js";
import { ClientError } from "../client/errors.js";
import { childLogger, createLogger, LOG_LEVELS, logFailure } from "../log.js";
import type { LogLevel } from "../log.js";
import { clientOptions, closeClient, openClient, untilSignal } from "./client-options.js";
import type { ClientCliOptions } from "./client-options.js";
import { integerOption } from "./options.js";

/** The daemon's default port (the devnet's API is on 8600). */
export const DEFAULT_DAEMON_PORT = 8700;

interface RunOptions extends ClientCliOptions {
  host: string;
  port: number;
  token?: string;
  tokenFile?: string;
  logLevel: LogLevel;
  json?: boolean;
}

function tokenOption(value: string): string {
  if (value.length < MIN_TOKEN_LENGTH || /\s/.test(value)) throw new InvalidArgumentError(`the token must be at least ${MIN_TOKEN_LENGTH} characters, without spaces`);
  return value;
}

/** The token: given, from PSP_CLIENT_TOKEN, or made now. */
function daemonToken(given: string | undefined): string {
  const token = given ?? process.env.PSP_CLIENT_TOKEN;
  if (token === undefined || token === "") return randomBytes(24).toString("base64url");
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token))
    throw new ClientError("bad-option", `PSP_CLIENT_TOKEN must be at least ${MIN_TOKEN_LENGTH} characters, without spaces (or unset it: a token is made)`);
  return token;
}

/** Writes the token where only this user can read it (api/token.ts; an existing file is narrowed to 0600 too). */
async function saveTokenFile(path: string, token: string): Promise<void> {
  try {
    await writeTokenFile(path, token);
  } catch (err) {
    throw new ClientError("bad-option", `cannot write the token to ${path} (${(err as NodeJS.ErrnoException).code ?? "error"}): check --token-file`, { cause: err });
  }
}

async function run(opts: RunOptions): Promise<void> {
  const token = daemonToken(opts.token);
  const log = createLogger({ destination: 2, level: opts.logLevel, pretty: process.stderr.isTTY === true && !opts.json });
  const client = await openClient(opts, (err) => logFailure(log, err, "client background task"));
  let daemon;
  try {
    const stopped = untilSignal();
    daemon = await startClientDaemon({ client, token, host: opts.host, port: opts.port, logger: log });
    if (opts.tokenFile !== undefined) await saveTokenFile(opts.tokenFile, token);
    const shown = opts.tokenFile !== undefined ? { tokenFile: opts.tokenFile } : { token };
    console.log(JSON.stringify({ event: "ready", url: daemon.url, identity: client.identity ?? null, ...shown }));
    const signal = await stopped;
    childLogger(log, "cli").info(`${signal}: stopping`);
  } finally {
    await daemon?.close();
    await closeClient(client);
  }
}

export function register(program: Command): void {
  const client = program.command("client").description("run a local client daemon: a REST + WebSocket API for apps in any language");

  clientOptions(client.command("run").description("run a PSP client as a local daemon with a token-protected REST + WebSocket API (docs/CLIENT.md)"), "optional")
    .option("--host <address>", "where the API listens (keep it on loopback)", "127.0.0.1")
    .option("--port <n>", "the API's port (0 picks a free one)", integerOption("--port", 0, 65535), DEFAULT_DAEMON_PORT)
    .option("--token <token>", "the bearer token apps must send (default: PSP_CLIENT_TOKEN, or one made at start)", tokenOption)
    .option("--token-file <file>", "write the token there (mode 0600) instead of printing it")
    .addOption(new Option("--log-level <level>", "log level on stderr").choices(LOG_LEVELS as string[]).default("info"))
    .option("--json", "JSON log lines on stderr even on a terminal; a failure as { error } on stdout (the ready line is JSON either way)")
    .action(run);
}

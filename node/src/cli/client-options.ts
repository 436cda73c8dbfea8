/**
 * What the commands that act through a PSP client share (`psp msg`, `psp
 * client run`): the options naming the network (`--bootstrap`, by default
 * the running devnet's devnet/state.json) and the identity (`--key-file`,
 * its passphrase from PSP_KEY_PASSWORD, the devnet's own passphrase for the
 * devnet's key files, or the terminal), opening a bootstrapped client from
 * them, and waiting for the signal that ends a long-running command.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { createPspClient } from "../client/client.js";
import type { PspClient } from "../client/client.js";
import type { BootstrapOption } from "../client/bootstrap.js";
import { readDevnetState } from "../client/devnet-state.js";
import { ClientError } from "../client/errors.js";
import { defaultDevnetStateFile } from "./devnet-defaults.js";
import { identityNameOptions, keyPassphrase } from "./key-file.js";
import type { NameOptions } from "./key-file.js";

/** How long the devnet's API may take to show it runs (a loaded machine answers slowly; a stopped devnet refuses at once). */
const DEVNET_PROBE_MS = 15_000;

export interface ClientCliOptions extends NameOptions {
  keyFile?: string;
  bootstrap?: string;
}

/** Options of a client without identity (oracle sessions, proofs and playing need none). */
export const anonymousClientOptions = (bootstrap: string | undefined): ClientCliOptions => ({
  ...(bootstrap === undefined ? {} : { bootstrap }),
  namespace: "peerstream",
  application: "client",
  kind: "account",
});

/** Adds --key-file (required or not), --bootstrap and the identity name options. */
export function clientOptions(cmd: Command, keyFile: "required" | "optional"): Command {
  const withKey =
    keyFile === "required"
      ? cmd.requiredOption("--key-file <file>", "the identity's encrypted key file (psp identity create)")
      : cmd.option("--key-file <file>", "the identity's encrypted key file (without one: lookups only)");
  return identityNameOptions(withKey).option(
    "--bootstrap <file>",
    "where to start: a devnet state.json, or a JSON file { nodes, discovery } as createPspClient takes (default devnet/state.json)",
  );
}

/**
 * The bootstrap a file names: a JSON object with `discovery` is taken as
 * createPspClient's `{ nodes, discovery, consensusFile? }`, anything else as
 * a devnet state file (checked by the client).
 */
export async function bootstrapFrom(file: string | undefined): Promise<BootstrapOption> {
  const path = file ?? defaultDevnetStateFile();
  if (!existsSync(path)) {
    throw new ClientError(
      "bad-bootstrap",
      file === undefined
        ? `no devnet state at ${path}: start the devnet (\`npm start\`) or pass --bootstrap <state.json | bootstrap.json>`
        : `no file ${path}: check --bootstrap`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw new ClientError("bad-bootstrap", `${path} is not JSON (${(err as Error).message}): check --bootstrap`, { cause: err });
  }
  if (typeof json === "object" && json !== null && "discovery" in json) return json as BootstrapOption;
  await assertDevnetRunning(path);
  return { devnet: path };
}

/** Fails at once, naming the fix, when the devnet a state file describes is not running (rather than after the client's bootstrap deadline). */
async function assertDevnetRunning(path: string): Promise<void> {
  const state = await readDevnetState(path);
  try {
    // Any answer means it runs; a stopped devnet refuses the connection at once.
    await fetch(`${state.controlApi}/v1/status`, { signal: AbortSignal.timeout(DEVNET_PROBE_MS) });
    return;
  } catch {
    // not answering: reported below
  }
  throw new ClientError("bad-bootstrap", `the devnet of ${path} is not running (its API at ${state.controlApi} does not answer): start it with \`npm start\``);
}

/**
 * A bootstrapped client for the command's options: its identity from
 * --key-file (when given), background failures to `onWarning`. Closed again
 * when bootstrapping fails.
 */
export async function openClient(opts: ClientCliOptions, onWarning: (err: Error) => void): Promise<PspClient> {
  const bootstrap = await bootstrapFrom(opts.bootstrap);
  if (opts.keyFile !== undefined && !existsSync(opts.keyFile))
    throw new ClientError("bad-option", `no key file ${opts.keyFile}: check --key-file (make one with \`psp identity create\`)`);
  const names = { namespace: opts.namespace, application: opts.application, kind: opts.kind };
  const identity = opts.keyFile === undefined ? undefined : { keyFile: opts.keyFile, passphrase: await keyPassphrase(opts.keyFile), ...names };
  const client = await createPspClient({ bootstrap, ...(identity ? { identity } : {}) });
  client.on("warning", onWarning);
  try {
    await client.ready;
  } catch (err) {
    await client.close();
    throw err;
  }
  return client;
}

/** Resolves with the first SIGINT or SIGTERM (a long-running command's end). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals): void => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      resolve(signal);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

/** A warning as one stderr line (the commands' stdout stays for their output). */
export function warnLine(err: Error): void {
  console.error(`warning: ${err.message}`);
}

/** How long closing a client may take before a command gives up on it (and says so). */
const CLOSE_WITHIN_MS = 10_000;

/**
 * Closes `client`, giving up after 10 s with a warning line: a command that
 * has done its work ends with its own exit code, never hanging on a route
 * that no longer answers.
 */
export async function closeClient(client: PspClient): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), CLOSE_WITHIN_MS)));
  const closed = client.close().then(
    () => "closed" as const,
    (err: unknown) => {
      warnLine(new Error(`closing the client failed: ${(err as Error).message}`));
      return "closed" as const;
    },
  );
  try {
    if ((await Promise.race([closed, late])) === "late") warnLine(new Error(`the client did not close within ${CLOSE_WITHIN_MS / 1000} s; exiting anyway`));
  } finally {
    clearTimeout(timer);
  }
}

/** Rejects with `error()` unless `promise` settles within `ms` (the timer also keeps the process waiting for it). */
export async function within<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(error()), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What the CLI takes from a running devnet when the user names nothing else:
 * the devnet's state file (devnet/state.json in the working directory) when
 * the command targets the devnet's own deployment on chain 31337. It gives
 * the account keystores (written by `npm start`, one documented passphrase)
 * and the authority nodes, so the README's steps need no key handling by
 * hand. Anywhere else nothing is assumed: every command then needs its
 * --keystore, --authorities and passphrases.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { readDevnetState } from "../client/devnet-state.js";
import type { DevnetKeystore, DevnetState } from "../client/devnet-state.js";

/** Hardhat's chain id: the only chain whose devnet defaults apply. */
const DEVNET_CHAIN_ID = 31337;

export function defaultDevnetStateFile(): string {
  return join(process.cwd(), "devnet", "state.json");
}

/**
 * The running devnet's state, when `deploymentFile` is its deployment on
 * chain 31337; undefined when there is no devnet here or it is another
 * deployment. A state file that exists but is malformed is an error.
 */
export async function devnetFor(deploymentFile: string): Promise<DevnetState | undefined> {
  const file = defaultDevnetStateFile();
  if (!existsSync(file)) return undefined;
  const state = await readDevnetState(file);
  return state.chainId === DEVNET_CHAIN_ID && resolve(state.deploymentFile) === resolve(deploymentFile) ? state : undefined;
}

/** The devnet keystore of `address`, if the devnet wrote one. */
export function devnetKeystore(state: DevnetState, address: string | undefined): DevnetKeystore | undefined {
  if (address === undefined) return undefined;
  return state.accounts.keystores.files.find((k) => k.address.toLowerCase() === address.toLowerCase());
}

/** The documented devnet passphrase, when `file` is one of the devnet's own keystores or key files. */
export async function devnetPassphraseFor(file: string): Promise<string | undefined> {
  const stateFile = defaultDevnetStateFile();
  if (!existsSync(stateFile)) return undefined;
  let state: DevnetState;
  try {
    state = await readDevnetState(stateFile);
  } catch {
    return undefined; // a broken state file never unlocks anything
  }
  const own = [...state.accounts.keystores.files.map((k) => k.file), ...demoKeyFiles(state.demo ?? {})];
  return own.some((f) => resolve(f) === resolve(file)) ? state.accounts.keystores.passphrase : undefined;
}

/** The key files of the devnet's demo identity and demo users (alice, carol), as far as the state names them. */
function demoKeyFiles(demo: DevnetState["demo"]): string[] {
  const keyFileOf = (v: unknown): string[] => {
    const file = typeof v === "object" && v !== null ? (v as { keyFile?: unknown }).keyFile : undefined;
    return typeof file === "string" && file !== "" ? [file] : [];
  };
  const users = Array.isArray(demo.users) ? (demo.users as unknown[]) : [];
  return [...keyFileOf(demo.identity), ...users.flatMap(keyFileOf)];
}

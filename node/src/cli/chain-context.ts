/**
 * What every chain-facing command needs: an RPC URL, a deployment file, and
 * optionally an account from an ethers JSON keystore. Relative paths (the
 * default `deployments/<network>.json`) resolve against the working directory,
 * which npm scripts set to the project root. On the running devnet a
 * command that sends a transaction without --keystore sends from the devnet
 * account it names (devnet-defaults.ts), and says so on stderr.
 */
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline/promises";
import { join } from "node:path";
import { privateKeyToAccount } from "viem/accounts";
import type { Account } from "viem";
import { Option, type Command } from "commander";
import { connectChain, type ChainClients } from "../chain/clients.js";
import { readDeployment, type Deployment } from "../chain/deployment.js";
import { ChainError } from "../chain/errors.js";
import type { DevnetState } from "../client/devnet-state.js";
import { devnetFor, devnetKeystore, devnetPassphraseFor } from "./devnet-defaults.js";

export interface ChainCliOptions {
  rpc?: string;
  deployment?: string;
  network?: string;
  keystore?: string;
}

export const defaultRpcUrl = process.env.PSP_RPC_URL ?? "http://127.0.0.1:8545";

export function deploymentPath(opts: ChainCliOptions): string {
  return opts.deployment ?? join(process.cwd(), "deployments", `${opts.network ?? "localhost"}.json`);
}

async function passphrase(path: string): Promise<string> {
  const fromEnv = process.env.PSP_KEYSTORE_PASSWORD;
  if (fromEnv !== undefined) return fromEnv;
  const devnet = await devnetPassphraseFor(path);
  if (devnet !== undefined) return devnet;
  if (!process.stdin.isTTY) {
    throw new ChainError("bad-argument", `no passphrase for ${path}: set PSP_KEYSTORE_PASSWORD or run on a terminal`);
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return await rl.question(`passphrase for ${path}: `);
  } finally {
    rl.close();
  }
}

/** Decrypts the keystore at `path` into a viem account. */
export async function loadKeystoreAccount(path: string): Promise<Account> {
  let json: string;
  try {
    json = await readFile(path, "utf8");
  } catch (err) {
    throw new ChainError("bad-argument", `cannot read keystore ${path}: check --keystore`, { cause: err });
  }
  // ethers (for the keystore format) loads only when a keystore is opened: it costs CLI start-up time.
  const { decryptEvmKeystore } = await import("../crypto/evm-keystore.js");
  const { privateKey } = await decryptEvmKeystore(json, await passphrase(path));
  return privateKeyToAccount(privateKey);
}

/** Which devnet account a command sends from when no --keystore is given (an address the devnet holds a keystore of). */
export type DevnetAccountChoice = (state: DevnetState) => string | undefined;

/** The devnet's default account: the funded user "bob" (alice owns the demo identity). */
export const defaultDevnetAccount: DevnetAccountChoice = (state) => state.accounts.keystores.default;

/**
 * Connects to the chain the deployment file names, checking the chain id.
 * With `needsAccount` the account comes from --keystore or, on the running
 * devnet, from the keystore of the account `devnetAccount` picks.
 */
export async function chainContext(
  opts: ChainCliOptions,
  needsAccount: boolean,
  devnetAccount: DevnetAccountChoice = defaultDevnetAccount,
): Promise<{ clients: ChainClients; deployment: Deployment }> {
  const path = deploymentPath(opts);
  const deployment = await readDeployment(path);
  let keystore = opts.keystore;
  if (needsAccount && keystore === undefined) {
    const devnet = await devnetFor(path);
    const chosen = devnet ? devnetKeystore(devnet, devnetAccount(devnet)) : undefined;
    if (!chosen) throw new ChainError("bad-argument", "this command sends a transaction: pass --keystore <ethers JSON keystore>");
    console.error(`devnet: sending from ${chosen.label} ${chosen.address} (${chosen.file}; pass --keystore to use another account)`);
    keystore = chosen.file;
  }
  const account = keystore !== undefined ? await loadKeystoreAccount(keystore) : undefined;
  const rpcUrl = opts.rpc ?? defaultRpcUrl;
  const clients = await connectChain({ rpcUrl, ...(account ? { account } : {}) });
  const chainId = clients.chain.id;
  if (chainId !== deployment.chainId) {
    throw new ChainError(
      "wrong-chain",
      `${path} is a deployment on chain ${deployment.chainId} but ${rpcUrl} serves chain ${chainId}: point --rpc at that chain or pass this chain's --deployment`,
    );
  }
  return { clients, deployment };
}

/** Adds the options every chain-facing command takes: --rpc, --network, --deployment. */
export function addChainOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--rpc <url>", "JSON-RPC endpoint").default(defaultRpcUrl))
    .option("--network <name>", "deployment name: reads deployments/<name>.json", "localhost")
    .option("--deployment <file>", "deployment file (overrides --network)");
}

/**
 * What every chain-facing command needs: an RPC URL, a deployment file, and
 * optionally an account from an ethers JSON keystore. Relative paths (the
 * default `deployments/<network>.json`) resolve against the working directory,
 * which npm scripts set to the project root.
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
import { decryptEvmKeystore } from "../crypto/evm-keystore.js";

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
  const { privateKey } = await decryptEvmKeystore(json, await passphrase(path));
  return privateKeyToAccount(privateKey);
}

/** Connects to the chain the deployment file names, checking the chain id. */
export async function chainContext(opts: ChainCliOptions, needsAccount: boolean): Promise<{ clients: ChainClients; deployment: Deployment }> {
  const deployment = await readDeployment(deploymentPath(opts));
  const account = needsAccount || opts.keystore ? await loadKeystoreAccountOrFail(opts.keystore) : undefined;
  const clients = await connectChain({ rpcUrl: opts.rpc ?? defaultRpcUrl, expectedChainId: deployment.chainId, ...(account ? { account } : {}) });
  return { clients, deployment };
}

async function loadKeystoreAccountOrFail(path: string | undefined): Promise<Account> {
  if (!path) throw new ChainError("bad-argument", "this command sends a transaction: pass --keystore <ethers JSON keystore>");
  return await loadKeystoreAccount(path);
}

/** Adds the options every chain-facing command takes: --rpc, --network, --deployment. */
export function addChainOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--rpc <url>", "JSON-RPC endpoint").default(defaultRpcUrl))
    .option("--network <name>", "deployment name: reads deployments/<name>.json", "localhost")
    .option("--deployment <file>", "deployment file (overrides --network)");
}

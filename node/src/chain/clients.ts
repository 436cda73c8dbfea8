/**
 * viem clients for any EVM chain reached over JSON-RPC.
 *
 * The chain is described only by its RPC URL and the chain id it reports, so
 * a Hardhat devnet, a testnet or an L2 are handled the same way.
 */
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  type Account,
  type Chain,
  type PublicClient,
  type Transport,
  type WalletClient,
} from "viem";
import { ChainError } from "./errors.js";

export interface ChainClients {
  chain: Chain;
  publicClient: PublicClient<Transport, Chain>;
  /** Present when an account was given. */
  walletClient?: WalletClient<Transport, Chain, Account>;
}

export interface ConnectOptions {
  rpcUrl: string;
  /** Signs transactions; omit for read-only access. */
  account?: Account;
  /** Refuse to connect when the RPC reports another chain id. */
  expectedChainId?: number;
  /** Poll interval for receipts and events; short on a local devnet. */
  pollingIntervalMs?: number;
}

/** Connects to `rpcUrl`, reads its chain id and returns typed viem clients. */
export async function connectChain(opts: ConnectOptions): Promise<ChainClients> {
  const transport = http(opts.rpcUrl, { retryCount: 2, timeout: 15_000 });
  let chainId: number;
  try {
    chainId = await createPublicClient({ transport }).getChainId();
  } catch (err) {
    throw new ChainError("rpc-unreachable", `cannot reach the JSON-RPC endpoint ${opts.rpcUrl}: is the chain running? (\`npm start\` runs a local one)`, {
      cause: err,
    });
  }
  if (opts.expectedChainId !== undefined && chainId !== opts.expectedChainId) {
    throw new ChainError("wrong-chain", `${opts.rpcUrl} serves chain ${chainId}, expected ${opts.expectedChainId}: check --rpc`);
  }
  const chain = defineChain({
    id: chainId,
    name: chainId === 31337 ? "Hardhat devnet" : `chain ${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [opts.rpcUrl] } },
  });
  const pollingInterval = opts.pollingIntervalMs ?? (chainId === 31337 ? 50 : 4_000);
  const publicClient = createPublicClient({ chain, transport, pollingInterval });
  const walletClient = opts.account ? createWalletClient({ chain, transport, account: opts.account, pollingInterval }) : undefined;
  return walletClient ? { chain, publicClient, walletClient } : { chain, publicClient };
}

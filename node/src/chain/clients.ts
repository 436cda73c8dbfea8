/**
 * viem clients for any EVM chain reached over JSON-RPC.
 *
 * The chain is described only by its RPC URL and the chain id it reports, so
 * a Hardhat devnet, a testnet or an L2 are handled the same way.
 *
 * Every JSON-RPC call through these clients is counted per endpoint URL for
 * this process (chainRpcStats): calls, failures, the time of the last
 * success and the highest block number an eth_blockNumber answered; a node
 * exports them as psp_chain_* metrics. In-process, every client of one URL
 * shares them.
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

/** The JSON-RPC calls this process made to one endpoint. */
export interface ChainRpcStats {
  requests: number;
  failures: number;
  /** Date.now() of the last call answered, undefined before any. */
  lastSuccessAt: number | undefined;
  /** The highest block number eth_blockNumber answered, undefined before any. */
  headBlock: bigint | undefined;
}

const rpcStats = new Map<string, ChainRpcStats>();

/** The counters of calls to `rpcUrl` from this process (made on first use). */
export function chainRpcStats(rpcUrl: string): ChainRpcStats {
  let stats = rpcStats.get(rpcUrl);
  if (!stats) {
    stats = { requests: 0, failures: 0, lastSuccessAt: undefined, headBlock: undefined };
    rpcStats.set(rpcUrl, stats);
  }
  return stats;
}

/** viem's http transport, every call counted in `stats`. */
function countedHttp(rpcUrl: string, stats: ChainRpcStats): Transport {
  const base = http(rpcUrl, { retryCount: 2, timeout: 15_000 });
  return (params) => {
    const t = base(params);
    const request: typeof t.request = async (args, options) => {
      stats.requests++;
      try {
        const result: unknown = await t.request(args, options);
        stats.lastSuccessAt = Date.now();
        if (args.method === "eth_blockNumber" && typeof result === "string") {
          const block = BigInt(result);
          if (stats.headBlock === undefined || block > stats.headBlock) stats.headBlock = block;
        }
        return result as never;
      } catch (err) {
        stats.failures++;
        throw err;
      }
    };
    return { ...t, request };
  };
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
  const transport = countedHttp(opts.rpcUrl, chainRpcStats(opts.rpcUrl));
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

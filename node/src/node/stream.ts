/**
 * The node's stream admission from its chain config: what lets a node with a
 * chain land and distribute streams (docs/spec/streaming.md, "Admission at a
 * node").
 *
 * Owns: the chain view a landing node checks receipts against
 * (stream/oracle-chain.ts over a JSON-RPC connection of its own, opened on
 * first use and retried on the next one after a failure, so an unreachable
 * chain never stops the node from starting, as with the directory's chain),
 * and the in-memory set of current oracle keys a distribution node checks
 * session ids with on every ATTACH (synchronously), re-read from
 * NodeRegistry every refresh. Until the first read answers, every session id
 * is refused as "unknown-oracle": a node never admits a viewer on a set it
 * has not read. A failed re-read keeps the last set and is logged; the
 * oracle set changes by on-chain votes, far slower than the refresh. The
 * reward epochs' clock (BandwidthRewards' genesis and epoch length, both
 * immutable) is read once on the same connection, for usage reports.
 *
 * Trusts: the chain endpoint and deployment file of the node's config, and
 * stream/admission.ts for every check on a receipt or session id.
 */
import { connectChain } from "../chain/clients.js";
import { readDeployment } from "../chain/deployment.js";
import { childLogger, throttledFailureLog } from "../log.js";
import type { Logger } from "../log.js";
import { oracleAdmission } from "../stream/admission.js";
import type { StreamAdmission } from "../stream/admission.js";
import { receiptChainView } from "../stream/oracle-chain.js";
import type { ReceiptChainView } from "../stream/receipt.js";
import type { EpochTiming } from "../stream/usage.js";
import { createRewardsView, rewardsAddress } from "../chain/rewards.js";
import type { ChainClients } from "../chain/clients.js";
import type { Deployment } from "../chain/deployment.js";
import type { NodeChainConfig, NodeStreamConfig } from "./config.js";

/** How often the oracle set behind session-id checks is re-read, ms, unless chain.refreshMs says otherwise. */
export const DEFAULT_ORACLE_KEYS_REFRESH_MS = 60_000;

export interface NodeStreamAdmission {
  readonly admission: StreamAdmission;
  /** The oracle keys last read (0 until the first read answered). */
  oracleKeyCount(): number;
  /** The reward epochs' timing (BandwidthRewards), once read: usage windows are cut at its boundaries. */
  epochTiming(): EpochTiming | undefined;
  close(): void;
}

/** BandwidthRewards' epoch clock (immutable), in unix seconds. */
export async function epochTimingOf(clients: Pick<ChainClients, "publicClient">, deployment: Deployment): Promise<EpochTiming> {
  const t = await createRewardsView(clients, rewardsAddress(deployment)).timing();
  return { genesis: Number(t.genesis), epochLength: Number(t.epochLength) };
}

/** A ReceiptChainView (and the reward epochs' clock) that connects on first use and again after a failed connection. */
function lazyChainView(chain: NodeChainConfig): ReceiptChainView & { epochTiming(): Promise<EpochTiming> } {
  let view: (ReceiptChainView & { epochTiming(): Promise<EpochTiming> }) | undefined;
  let connecting: Promise<ReceiptChainView & { epochTiming(): Promise<EpochTiming> }> | undefined;
  const connected = (): Promise<ReceiptChainView & { epochTiming(): Promise<EpochTiming> }> => {
    if (view) return Promise.resolve(view);
    connecting ??= (async () => {
      const deployment = await readDeployment(chain.deploymentFile);
      const clients = await connectChain({ rpcUrl: chain.rpcUrl, expectedChainId: deployment.chainId });
      view = { ...receiptChainView(clients.publicClient, deployment), epochTiming: () => epochTimingOf(clients, deployment) };
      return view;
    })().finally(() => {
      connecting = undefined;
    });
    return connecting;
  };
  return {
    epochTiming: async () => (await connected()).epochTiming(),
    oracleKeys: async () => (await connected()).oracleKeys(),
    verifyInclusion: async (inclusion, receiptHash) => (await connected()).verifyInclusion(inclusion, receiptHash),
    isRevoked: async (receiptHash) => (await connected()).isRevoked(receiptHash),
    blindKey: async (keyId) => (await connected()).blindKey(keyId),
    isOracleSigner: async (signer) => (await connected()).isOracleSigner(signer),
  };
}

/** The admission a StreamHost checks receipts and session ids with, over the node's chain. Starts reading the oracle set at once. */
export function startNodeStreamAdmission(options: { chain: NodeChainConfig; stream?: NodeStreamConfig; logger?: Logger }): NodeStreamAdmission {
  const log = childLogger(options.logger, "node.stream-admission");
  const failed = throttledFailureLog(log);
  const view = lazyChainView(options.chain);
  let oracleKeys: readonly Uint8Array[] = [];
  let timing: EpochTiming | undefined;
  let closed = false;
  const refresh = async (): Promise<void> => {
    try {
      timing ??= await view.epochTiming();
      const keys = await view.oracleKeys();
      if (closed) return;
      if (keys.length !== oracleKeys.length) log.info({ oracles: keys.length }, "oracle set for session ids read");
      oracleKeys = keys;
    } catch (err) {
      if (!closed) failed(err, "read the oracle set for session ids", "warn");
    }
  };
  void refresh();
  const timer = setInterval(() => void refresh(), options.chain.refreshMs ?? DEFAULT_ORACLE_KEYS_REFRESH_MS);
  timer.unref();
  const admission = oracleAdmission({
    view,
    sessionOracleKeys: () => oracleKeys,
    ...(options.stream?.graceSeconds === undefined ? {} : { graceSeconds: options.stream.graceSeconds }),
  });
  return {
    admission,
    oracleKeyCount: () => oracleKeys.length,
    epochTiming: () => timing,
    close: () => {
      closed = true;
      clearInterval(timer);
    },
  };
}

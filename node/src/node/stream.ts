/**
 * The node's stream admission from its chain config: what lets a node with a
 * chain land and distribute streams (docs/spec/streaming.md, "Admission").
 *
 * Owns: the chain view a landing node checks receipts against
 * (stream/oracle-chain.ts over the node's own JSON-RPC connection), and the
 * in-memory set of current oracle keys a distribution node checks session
 * ids with on every ATTACH (synchronously), re-read from NodeRegistry every
 * refresh. Until the first read answers, every session id is refused as
 * "unknown-oracle": a node never admits a viewer on a set it has not read.
 * A failed re-read keeps the last set and is logged; the oracle set changes
 * by on-chain votes, far slower than the refresh.
 *
 * Trusts: the chain endpoint and deployment file of the node's config, and
 * stream/admission.ts for every check on a receipt or session id.
 */
import { connectChain } from "../chain/clients.js";
import { readDeployment } from "../chain/deployment.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { oracleAdmission } from "../stream/admission.js";
import type { StreamAdmission } from "../stream/admission.js";
import { receiptChainView } from "../stream/oracle-chain.js";
import type { NodeChainConfig, NodeStreamConfig } from "./config.js";

/** How often the oracle set behind session-id checks is re-read, ms, unless chain.refreshMs says otherwise. */
export const DEFAULT_ORACLE_KEYS_REFRESH_MS = 60_000;

export interface NodeStreamAdmission {
  readonly admission: StreamAdmission;
  /** The oracle keys last read (empty until the first read answered). */
  oracleKeyCount(): number;
  close(): void;
}

/** Connects to the chain and returns the admission a StreamHost checks receipts and session ids with. Throws ChainError when the chain is unreachable. */
export async function startNodeStreamAdmission(options: { chain: NodeChainConfig; stream?: NodeStreamConfig; logger?: Logger }): Promise<NodeStreamAdmission> {
  const log = childLogger(options.logger, "node.stream-admission");
  const deployment = await readDeployment(options.chain.deploymentFile);
  const clients = await connectChain({ rpcUrl: options.chain.rpcUrl, expectedChainId: deployment.chainId });
  const view = receiptChainView(clients.publicClient, deployment);
  let oracleKeys: readonly Uint8Array[] = [];
  const refresh = async (): Promise<void> => {
    try {
      oracleKeys = await view.oracleKeys();
    } catch (err) {
      logFailure(log, err, "re-read the oracle set for session ids", "warn");
    }
  };
  await refresh();
  const timer = setInterval(() => void refresh(), options.chain.refreshMs ?? DEFAULT_ORACLE_KEYS_REFRESH_MS);
  timer.unref();
  const admission = oracleAdmission({
    view,
    sessionOracleKeys: () => oracleKeys,
    ...(options.stream?.graceSeconds === undefined ? {} : { graceSeconds: options.stream.graceSeconds }),
  });
  log.debug({ oracles: oracleKeys.length }, "stream admission ready");
  return { admission, oracleKeyCount: () => oracleKeys.length, close: () => clearInterval(timer) };
}

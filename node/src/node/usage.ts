/**
 * A node's usage reporting, assembled: the meter its StreamHost counts into,
 * and the reporter that signs each window with the node key and hands it to
 * a current oracle over an authenticated node link (docs/spec/rewards.md
 * "Reports").
 *
 * Owns: the composition only. Signing is rewards/report.ts's, the message
 * stream/oracle-messages.ts's, windows and retries stream/usage.ts's and
 * usage-reporter.ts's. An oracle is reached at the address the consensus
 * lists for it, or through the node-only view for an internal one.
 *
 * Trusts: the consensus for which nodes are oracles and where they listen;
 * the link layer for their identity (the report's signature is what an oracle
 * trusts).
 */
import type { VerifiedConsensus } from "../directory/consensus.js";
import { decodeAddress } from "../directory/address.js";
import type { LinkRpc } from "../link/rpc.js";
import type { Logger } from "../log.js";
import { signUsageReport } from "../rewards/report.js";
import { decodeOracleResponse, encodeOracleMessage, MAX_ORACLE_LINK_MESSAGE_BYTES, refusalError } from "../stream/oracle-messages.js";
import { OracleError } from "../stream/oracle-errors.js";
import { UsageMeter, type EpochTiming } from "../stream/usage.js";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import { NodeUsageReporter, oracleKeysOf } from "./usage-reporter.js";

/** The link RPC service oracles listen on (oracle/replication.ts ORACLE_RPC_SERVICE). */
export const ORACLE_LINK_SERVICE = 4;

export interface NodeUsageOptions {
  identity: Ed25519KeyPair;
  rpc: LinkRpc;
  consensus: () => VerifiedConsensus | undefined;
  /** An internal oracle's address from the node-only view. */
  internalAddress?: (peer: Uint8Array) => { host: string; port: number } | undefined;
  /** The reward epochs' timing once read from the chain. */
  epoch: () => EpochTiming | undefined;
  intervalSeconds?: number;
  logger?: Logger;
}

export interface NodeUsage {
  readonly meter: UsageMeter;
  readonly reporter: NodeUsageReporter;
  /** Sends what is left, then stops. */
  close(): Promise<void>;
}

export function startNodeUsage(options: NodeUsageOptions): NodeUsage {
  const meter = new UsageMeter();
  const addressOf = (oracle: Uint8Array): { identity: Uint8Array; host: string; port: number } => {
    const entry = options.consensus()?.entries.find((e) => Buffer.from(e.identity).equals(oracle));
    const encoded = entry?.encodedAddresses[0];
    const address = encoded ? decodeAddress(encoded) : options.internalAddress?.(oracle);
    if (!address) throw new OracleError("unreachable", "the oracle has no address in the consensus");
    return { identity: oracle, host: address.host, port: address.port };
  };
  const reporter = new NodeUsageReporter({
    identity: options.identity.publicKey,
    meter,
    ...(options.intervalSeconds === undefined ? {} : { intervalSeconds: options.intervalSeconds }),
    epoch: options.epoch,
    oracles: () => oracleKeysOf(options.consensus()?.entries),
    sign: (window) => signUsageReport({ kind: "node", secretKey: options.identity.secretKey, ...window }).bytes,
    send: async (oracle, report) => {
      const answer = decodeOracleResponse(
        await options.rpc.request(addressOf(oracle), ORACLE_LINK_SERVICE, encodeOracleMessage({ t: "usage-report", report }), {
          timeoutMs: 10_000,
          maxResponseBytes: MAX_ORACLE_LINK_MESSAGE_BYTES,
        }),
      );
      if (answer.t === "error") throw refusalError(answer);
      if (answer.t !== "report-ack") throw new OracleError("bad-response", `expected report-ack, got ${answer.t}`);
    },
    ...(options.logger ? { logger: options.logger } : {}),
  });
  reporter.start();
  return { meter, reporter, close: () => reporter.close() };
}

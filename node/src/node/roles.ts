/**
 * The node's chain-backed roles, "authority" and "oracle", as a node process
 * runs them (docs/spec/node.md "Roles").
 *
 * Authority: the authority service (authority/service.ts) on a chain PKI of
 * its own (it follows IdentityRegistry and NodeRegistry events), served as
 * link RPC service "authority" (anonymous client links allowed) and as the
 * onion service "authority" at the end of circuits. The node counts every
 * request and refusal by kind for its status and metrics.
 *
 * Oracle: the node's signer and its standing in the on-chain oracle set,
 * re-read every refresh. The oracle service itself (receipts, session ids,
 * batches, replication) is built in oracle/ on top of node/; node/src never
 * imports it. The composition point is StartNodeOptions.oracleService: the
 * CLI (`psp node run`) passes oracle/'s startOracleService, startNode calls
 * it with an OracleServiceContext when the oracle role runs, and offers its
 * circuitService as onion service "oracle".
 *
 * Owns only composition and counting; every check on a request stays in
 * authority/service.ts. Trusts the chain PKI and its own config.
 */
import { privateKeyToAccount } from "viem/accounts";
import type { Address } from "viem";
import { authorityCircuitService } from "../authority/circuit.js";
import { serveAuthority } from "../authority/node.js";
import { createAuthorityService, decodeAuthorityResponse } from "../authority/service.js";
import type { AuthorityService } from "../authority/service.js";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import type { LinkRpc } from "../link/rpc.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import type { LocalService } from "../onion/types.js";
import type { VerifiedConsensus } from "../directory/consensus.js";
import { connectNodeChain } from "./chain.js";
import type { NodeChain } from "./chain.js";
import { NodeError, loadSignerKey } from "./config.js";
import type { NodeAuthorityConfig, NodeChainConfig, NodeOracleConfig } from "./config.js";
import { hex } from "./hex.js";

/** How the node stands in one on-chain role set. */
export interface RoleStanding {
  /** The EVM signer the node signs with. */
  signer: Address;
  /** In the current on-chain set (null until the chain has answered). */
  inSet: boolean | null;
  /** The chain's signer for this node differs from the configured one (its signatures would not count). */
  signerMismatch: boolean;
  /** The last chain failure while reading the set, if the last read failed. */
  lastError?: string;
}

export interface AuthorityRoleStatus extends RoleStanding {
  requests: number;
  /** Refusals by AuthorityError kind. */
  refusals: Record<string, number>;
}

export interface NodeAuthority {
  readonly service: AuthorityService;
  /** The onion service "authority" to offer at the end of circuits. */
  readonly circuitService: LocalService;
  status(): AuthorityRoleStatus;
  close(): void;
}

/** What startNode hands the oracle service factory (oracle/node.ts). */
export interface OracleServiceContext {
  identity: Ed25519KeyPair;
  config: NodeOracleConfig;
  chain: NodeChainConfig;
  /** The node's link RPC: oracles replicate rows over authenticated node links. */
  rpc: LinkRpc;
  /** Sends replies a circuit service makes after an await. */
  flush: () => void;
  /** The node's current consensus (certificates are threshold-checked against its authorities; peers' addresses). */
  consensus: () => VerifiedConsensus | undefined;
  /** The address of an internal node the consensus lists without one (hex identity). */
  internalAddress?: (identityHex: string) => { host: string; port: number } | undefined;
  /** The node's data directory, when it has one. */
  dataDir?: string;
  logger?: Logger;
}

/** Sent rows and failed sends of one replication outbox. */
export interface ReplicationStatus {
  sent: number;
  failed: number;
}

/** What a running oracle service counts (oracle/node.ts status()); the node exports it as psp_oracle_* metrics. */
export interface OracleServiceStatus {
  /** Requests answered, receipts issued by kind, session ids issued, replicated rows taken. */
  requests: number;
  receipts: { linkable: number; blind: number };
  sessions: number;
  replicasReceived: number;
  /** Requests refused, by OracleError kind. */
  refusals: Record<string, number>;
  /** Issuance rows stored, and rows waiting in the replication outbox. */
  stored: number;
  outbox: number;
  batches: { batches: number; committed: number; failures: number };
  replication: ReplicationStatus;
  usage: {
    accepted: number;
    duplicates: number;
    replicas: number;
    /** Usage reports refused, by OracleError kind. */
    refused: Record<string, number>;
    stored: number;
    outbox: number;
    replication: ReplicationStatus;
  };
  settlement: { computed: number; votes: number; proofsServed: number; lastComputed: number | undefined; lastVoted: number | undefined };
}

/** A running oracle service, as startNode needs it. */
export interface OracleServiceHandle {
  /** The onion service "oracle" to offer at the end of circuits. */
  readonly circuitService: LocalService;
  status(): OracleServiceStatus;
  close(): void | Promise<void>;
}

/** Starts the oracle service (oracle/node.ts startOracleService); injected so node/src never imports oracle/. */
export type OracleServiceFactory = (ctx: OracleServiceContext) => Promise<OracleServiceHandle>;

export interface NodeOracle {
  status(): RoleStanding;
  close(): void;
}

async function connect(role: string, chain: NodeChainConfig, log: Logger): Promise<NodeChain> {
  try {
    return await connectNodeChain(chain, { logger: log });
  } catch (err) {
    throw new NodeError("start-failed", `the ${role} role reads the chain, and ${chain.rpcUrl} with ${chain.deploymentFile} failed: ${(err as Error).message}`, { cause: err });
  }
}

/** Keeps a RoleStanding current: reads `set` now and every `refreshMs`; logs each change of standing, and a failed read once per outage. */
function followStanding(standing: RoleStanding, nodeKey: string, read: () => Promise<{ members: readonly { nodeKey: string; signer: string }[] }>, refreshMs: number, log: Logger) {
  const refresh = async (): Promise<void> => {
    try {
      const set = await read();
      const me = set.members.find((m) => m.nodeKey.toLowerCase() === nodeKey);
      const before = { inSet: standing.inSet, signerMismatch: standing.signerMismatch };
      standing.inSet = me !== undefined;
      standing.signerMismatch = me !== undefined && me.signer.toLowerCase() !== standing.signer.toLowerCase();
      delete standing.lastError;
      if (standing.inSet !== before.inSet) {
        if (standing.inSet) log.info({ signer: standing.signer }, "this node is in the on-chain set");
        else log.warn({ signer: standing.signer }, "this node is not in the on-chain set: its signatures do not count");
      }
      if (standing.signerMismatch && !before.signerMismatch) log.warn({ signer: standing.signer, onChain: me?.signer }, "the chain names another signer for this node: its signatures do not count");
    } catch (err) {
      logFailure(log, err, "read the on-chain set", standing.lastError === undefined ? "warn" : "debug");
      standing.lastError = (err as Error).message;
    }
  };
  void refresh();
  const timer = setInterval(() => void refresh(), refreshMs);
  timer.unref();
  return () => clearInterval(timer);
}

export interface StartRoleOptions {
  identity: Ed25519KeyPair;
  chain: NodeChainConfig;
  /** The node's logger; the role logs as component "authority" or "oracle" (its chain PKI beneath). */
  logger?: Logger;
}

/** Starts the authority role: serves "authority" on `rpc`; `flush` sends replies a circuit service makes after an await. */
export async function startNodeAuthority(opts: StartRoleOptions & { config: NodeAuthorityConfig; rpc: LinkRpc; flush: () => void }): Promise<NodeAuthority> {
  const signer = privateKeyToAccount(await loadSignerKey(opts.config.signer, "authority.signer"));
  const log = childLogger(opts.logger, "authority");
  const chain = await connect("authority", opts.chain, log);
  const inner = createAuthorityService({
    pki: chain.pki,
    nodeSecretKey: opts.identity.secretKey,
    signer,
    ...(opts.config.limits ? { limits: opts.config.limits } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  const counts = { requests: 0, refusals: {} as Record<string, number> };
  // The same service, counted: every answer is one of its messages, a refusal an `error` message.
  const service: AuthorityService = {
    ...inner,
    handleMessage: async (bytes, ctx) => {
      const answer = await inner.handleMessage(bytes, ctx);
      counts.requests++;
      try {
        const response = decodeAuthorityResponse(answer);
        if (response.t === "error") counts.refusals[response.kind] = (counts.refusals[response.kind] ?? 0) + 1;
      } catch (err) {
        // Our own service answered something we cannot read back: a bug of ours.
        counts.refusals["unreadable-answer"] = (counts.refusals["unreadable-answer"] ?? 0) + 1;
        logFailure(log, err, "read our own authority answer", "error");
      }
      return answer;
    },
  };
  const stopServing = serveAuthority(opts.rpc, service);
  const standing: RoleStanding = { signer: signer.address, inSet: null, signerMismatch: false };
  const stopFollowing = followStanding(standing, `0x${hex(opts.identity.publicKey)}`, () => chain.pki.currentAuthorities(), opts.chain.refreshMs ?? 60_000, log);
  return {
    service,
    circuitService: authorityCircuitService(service, { flush: opts.flush, logger: log }),
    status: () => ({ ...standing, requests: counts.requests, refusals: { ...counts.refusals } }),
    close() {
      stopFollowing();
      stopServing();
      chain.close();
    },
  };
}

/** Starts the oracle role: its signer, and its standing in the on-chain oracle set. */
export async function startNodeOracle(opts: StartRoleOptions & { config: NodeOracleConfig }): Promise<NodeOracle> {
  const signer = privateKeyToAccount(await loadSignerKey(opts.config.signer, "oracle.signer"));
  const log = childLogger(opts.logger, "oracle");
  const chain = await connect("oracle", opts.chain, log);
  const standing: RoleStanding = { signer: signer.address, inSet: null, signerMismatch: false };
  const stopFollowing = followStanding(standing, `0x${hex(opts.identity.publicKey)}`, () => chain.pki.currentOracles(), opts.chain.refreshMs ?? 60_000, log);
  return {
    status: () => ({ ...standing }),
    close() {
      stopFollowing();
      chain.close();
    },
  };
}

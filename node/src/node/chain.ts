/**
 * The chain as the node's directory sees it: which nodes are registered and
 * staked (the role bits they are eligible for), and the governance-approved
 * discovery set, both from the NodeRegistry through the chain PKI
 * (chain/pki.ts: cached answers, confirmations, caches dropped on events).
 *
 * Owns: connecting from the config's `chain` section; `ChainRoleView`, the
 * synchronous snapshot the discovery state machine needs (its ChainRoles is
 * a plain function), kept current by async reads: a descriptor's node is
 * looked up before the descriptor is handed over, and every known node is
 * looked up again each refresh (a cache hit unless a NodeRegistry event or
 * the TTL dropped it); `discoveryTrustFromChain`, the trust set (keys, K)
 * from NodeRegistry.discoverySet().
 *
 * Trusts: the chain PKI and the deployment file it was given. An unknown
 * node counts as not registered until the chain says otherwise.
 */
import type { Hex } from "viem";
import { withTimeout } from "../base/timeout.js";
import { connectChain } from "../chain/clients.js";
import { COMMERCIAL_CONTRACT, readDeployment } from "../chain/deployment.js";
import { createCommercialView } from "../chain/commercial.js";
import type { CommercialView } from "../chain/commercial.js";
import { ChainError } from "../chain/errors.js";
import { createChainPki } from "../chain/pki.js";
import type { Pki, RoleSet } from "../chain/pki.js";
import type { ChainRoles } from "../directory/discovery-node.js";
import { bytesToHexFast, discoveryTrustFromKeys } from "../directory/config.js";
import type { DiscoveryTrust } from "../directory/config.js";
import type { Logger } from "../log.js";
import type { NodeChainConfig } from "./config.js";

/** The node's chain connection (close() stops following events). */
export interface NodeChain {
  readonly pki: Pki;
  /** Commercial publications (CommercialNodes), when the deployment has the contract. */
  readonly commercial?: CommercialView;
  close(): void;
}

/**
 * Connects to `config.rpcUrl`, checks the deployment file against the chain
 * id it serves and starts following NodeRegistry events. Throws ChainError
 * ("rpc-unreachable", "wrong-chain", "missing-deployment", "bad-deployment").
 */
export async function connectNodeChain(config: NodeChainConfig, options: { logger?: Logger } = {}): Promise<NodeChain> {
  const deployment = await readDeployment(config.deploymentFile);
  const clients = await connectChain({ rpcUrl: config.rpcUrl, expectedChainId: deployment.chainId });
  const pki = await createChainPki({
    clients,
    deployment,
    ...(config.cacheMs === undefined ? {} : { cacheMs: config.cacheMs }),
    ...(config.confirmations === undefined ? {} : { confirmations: config.confirmations }),
    follow: { intervalMs: config.followMs ?? 2_000 },
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const commercial = deployment.contracts[COMMERCIAL_CONTRACT] ? createCommercialView(clients, deployment) : undefined;
  return { pki, ...(commercial ? { commercial } : {}), close: () => pki.close() };
}

export interface ChainRoleViewOptions {
  /** Where answers come from (cached there). */
  nodeRoles: (nodeKey: Hex) => Promise<number>;
  /** Chain lookups at once; descriptors beyond it are judged on the snapshot alone (default 16). */
  maxInflight?: number;
  /** Deadline of one lookup before the snapshot is used, ms (default 5 s). */
  timeoutMs?: number;
  /** Most nodes remembered (default 100,000; the least recently asked go first). */
  maxEntries?: number;
  /** Called when a lookup fails (the snapshot keeps its last answer). */
  onError?: (err: unknown) => void;
}

export interface ChainRoleStats {
  lookups: number;
  lookupFailures: number;
  /** Lookups not started because maxInflight were running. */
  lookupsShed: number;
}

/**
 * Role bits per node as last read from the chain, for the synchronous
 * ChainRoles of the discovery state machine: `roles(identity)` is the
 * eligible bits, or undefined when the node is unknown, unregistered or not
 * staked for any role (the descriptor is then refused "not-registered").
 */
export class ChainRoleView {
  readonly stats: ChainRoleStats = { lookups: 0, lookupFailures: 0, lookupsShed: 0 };
  private readonly snapshot = new Map<string, number>();
  private readonly options: ChainRoleViewOptions;
  private inflight = 0;

  constructor(options: ChainRoleViewOptions) {
    this.options = options;
  }

  /** The ChainRoles function to hand to the discovery service. */
  readonly roles: ChainRoles = (identity) => {
    const bits = this.snapshot.get(bytesToHexFast(identity));
    return bits === undefined || bits === 0 ? undefined : bits;
  };

  /** Reads one node's roles (a cache hit in the PKI unless an event dropped it) into the snapshot. */
  async resolve(identity: Uint8Array): Promise<number | undefined> {
    const key = bytesToHexFast(identity);
    if (this.inflight >= (this.options.maxInflight ?? 16)) {
      this.stats.lookupsShed++;
      return this.roles(identity);
    }
    this.inflight++;
    this.stats.lookups++;
    const timeoutMs = this.options.timeoutMs ?? 5_000;
    try {
      const bits = await withTimeout(
        this.options.nodeRoles(`0x${key}`),
        timeoutMs,
        () => new ChainError("rpc-unreachable", `chain lookup of node ${key} took longer than ${timeoutMs} ms`),
      );
      this.remember(key, bits);
    } catch (err) {
      this.stats.lookupFailures++;
      this.options.onError?.(err);
    } finally {
      this.inflight--;
    }
    return this.roles(identity);
  }

  /** Looks every given node up again (nodes whose descriptors are held), so unstaking or deregistration shows. */
  async refresh(identities: Iterable<Uint8Array>): Promise<void> {
    const all = [...identities];
    const workers = Array.from({ length: Math.min(all.length, Math.max(1, (this.options.maxInflight ?? 16) - this.inflight)) }, async () => {
      for (let id = all.shift(); id; id = all.shift()) await this.resolve(id);
    });
    await Promise.all(workers);
  }

  private remember(key: string, bits: number): void {
    this.snapshot.delete(key);
    if (this.snapshot.size >= (this.options.maxEntries ?? 100_000)) {
      const oldest = this.snapshot.keys().next();
      if (!oldest.done) this.snapshot.delete(oldest.value);
    }
    this.snapshot.set(key, bits);
  }
}

/**
 * The trust set from the chain's discovery set: its keys, and K = `threshold`
 * when given and at most N, else a strict majority of N. Undefined when the
 * chain set is empty (the caller keeps its bootstrap set).
 */
export function discoveryTrustFromChain(set: RoleSet, threshold?: number): DiscoveryTrust | undefined {
  if (set.members.length === 0) return undefined;
  const keys = set.members.map((m) => m.publicKey);
  return discoveryTrustFromKeys(keys, threshold !== undefined && threshold <= keys.length ? threshold : undefined);
}

/** True when two trust sets hold the same keys and K. */
export function sameTrust(a: DiscoveryTrust, b: DiscoveryTrust): boolean {
  if (a.threshold !== b.threshold || a.keys.length !== b.keys.length) return false;
  const keys = new Set(a.keys.map(bytesToHexFast));
  return b.keys.every((k) => keys.has(bytesToHexFast(k)));
}

/**
 * The directory as a node process runs it. Every node publishes its signed
 * descriptor to the discovery nodes and holds the latest verified consensus
 * (fetched, kept in the data directory, served to others: every node
 * proxies it). A node with the "discovery" role runs the discovery service
 * instead of the fetching client: it votes, signs and serves the consensus
 * itself, and hands its own descriptor to its own service directly.
 *
 * Owns only the composition and the mapping of config to the directory
 * layer's options; every acceptance rule stays in node/src/directory.
 *
 * Trusts: the directory layer (verifyConsensus, DiscoveryNode); the
 * registry view from the config for on-chain roles (a chain-backed view
 * replaces it where the node has chain access).
 */
import { join } from "node:path";
import { ConsensusClient, serveConsensus } from "../directory/client.js";
import { ChainRole, discoveryTrustFromKeys } from "../directory/config.js";
import type { VerifiedConsensus } from "../directory/consensus.js";
import { createDescriptor } from "../directory/descriptor.js";
import type { DescriptorFields } from "../directory/descriptor.js";
import { DirectoryError } from "../directory/errors.js";
import { consensusToPathNodes } from "../directory/path-nodes.js";
import { startDescriptorPublisher } from "../directory/publisher.js";
import type { DescriptorPublisher } from "../directory/publisher.js";
import { startDiscoveryService } from "../directory/service.js";
import type { DiscoveryService } from "../directory/service.js";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import type { ConnectionManager, PeerAddress } from "../link/manager.js";
import type { LinkRpc } from "../link/rpc.js";
import type { PathNode } from "../onion/path.js";
import { NodeError } from "./config.js";
import type { ConfiguredPeer, NodeDirectoryConfig, NodeRole } from "./config.js";
import { hex } from "./hex.js";

export const NODE_SOFTWARE_VERSION = "psp/0.1.0";

export interface NodeDirectory {
  /** The discovery service (discovery role only). */
  readonly service: DiscoveryService | undefined;
  /** The consensus client (nodes without the discovery role). */
  readonly client: ConsensusClient | undefined;
  readonly publisher: DescriptorPublisher;
  /** The latest verified consensus this node holds. */
  current(): VerifiedConsensus | undefined;
  /** Called with every newly held consensus. */
  onConsensus(listener: (consensus: VerifiedConsensus) => void): void;
  close(): void;
}

export interface StartNodeDirectoryOptions {
  identity: Ed25519KeyPair;
  onionPublicKey: Uint8Array;
  roles: readonly NodeRole[];
  advertised: { host: string; port: number };
  manager: ConnectionManager;
  rpc: LinkRpc;
  config: NodeDirectoryConfig;
  dataDir: string | undefined;
}

const toPeer = (p: ConfiguredPeer): PeerAddress => ({ identity: Uint8Array.from(Buffer.from(p.identity, "hex")), host: p.host, port: p.port });

function roleBits(names: readonly string[]): number {
  let bits = 0;
  for (const n of names) bits |= ChainRole[n as keyof typeof ChainRole] ?? 0;
  return bits;
}

/** Starts descriptor publication and the consensus holder (client or discovery service). Throws NodeError "bad-config". */
export function startNodeDirectory(options: StartNodeDirectoryOptions): NodeDirectory {
  const { config, identity } = options;
  const discoveryPeers = config.discovery.map(toPeer);
  const ownHex = hex(identity.publicKey);
  let trust;
  try {
    trust = discoveryTrustFromKeys(
      discoveryPeers.map((p) => p.identity),
      config.threshold,
    );
  } catch (err) {
    throw new NodeError("bad-config", `config directory: ${(err as Error).message}`, { cause: err });
  }
  const listeners: ((c: VerifiedConsensus) => void)[] = [];
  const emit = (c: VerifiedConsensus): void => {
    for (const l of listeners) l(c);
  };
  const descriptor = (): Omit<DescriptorFields, "publishedAt"> => ({
    onionKey: options.onionPublicKey,
    addresses: [{ host: options.advertised.host, port: options.advertised.port }],
    roles: roleBits(options.roles),
    bridge: false,
    bandwidth: config.bandwidth ?? 1_000_000,
    country: config.country ?? "ZZ",
    version: NODE_SOFTWARE_VERSION,
  });
  const isDiscovery = options.roles.includes("discovery");
  if (isDiscovery && !discoveryPeers.some((p) => hex(p.identity) === ownHex)) {
    throw new NodeError("bad-config", "config directory.discovery: a node with the discovery role must list itself in the discovery set");
  }

  let service: DiscoveryService | undefined;
  let client: ConsensusClient | undefined;
  try {
    if (isDiscovery) {
      const registry = new Map(Object.entries(config.registry ?? {}).map(([k, roles]) => [k, roleBits(roles)]));
      service = startDiscoveryService({
        rpc: options.rpc,
        manager: options.manager,
        secretKey: identity.secretKey,
        discoverySet: trust.keys,
        threshold: trust.threshold,
        chainRoles: (id) => registry.get(hex(id)),
        ...(config.schedule ? { schedule: config.schedule } : {}),
        peers: discoveryPeers,
      });
      service.on("consensus-published", emit);
    } else {
      client = new ConsensusClient({
        rpc: options.rpc,
        trust,
        sources: discoveryPeers,
        role: "cache",
        ...(options.dataDir === undefined ? {} : { file: join(options.dataDir, "consensus.bin") }),
        ...(config.retryMs === undefined ? {} : { retryMs: config.retryMs }),
      });
      serveConsensus(options.rpc, client);
      client.on("consensus", emit);
      void client.start().catch(() => undefined);
    }
  } catch (err) {
    if (err instanceof DirectoryError) throw new NodeError("bad-config", `config directory: ${err.message}`, { cause: err });
    throw err;
  }

  // A discovery node reports to the others over links and to its own service directly.
  const others = discoveryPeers.filter((p) => hex(p.identity) !== ownHex);
  const publishIntervalMs = config.publishIntervalMs ?? 10 * 60_000;
  const publisher = startDescriptorPublisher({ rpc: options.rpc, secretKey: identity.secretKey, descriptor, discovery: others, intervalMs: publishIntervalMs });
  let selfTimer: NodeJS.Timeout | undefined;
  if (service) {
    const own = service;
    const submitOwn = (): void => {
      try {
        own.node.submitDescriptor(createDescriptor({ ...descriptor(), publishedAt: Date.now(), secretKey: identity.secretKey }), Date.now());
      } catch {
        // Refused by our own rules (e.g. the registry view lacks us): visible in the service's counters.
      }
    };
    submitOwn();
    selfTimer = setInterval(submitOwn, publishIntervalMs);
    selfTimer.unref();
  }

  return {
    service,
    client,
    publisher,
    current: () => client?.current() ?? service?.current(),
    onConsensus(listener) {
      listeners.push(listener);
    },
    close() {
      publisher.stop();
      if (selfTimer) clearInterval(selfTimer);
      client?.stop();
      service?.stop();
    },
  };
}

/** The onion relays of a consensus as path-selection input. */
export function onionPathNodes(consensus: VerifiedConsensus): PathNode[] {
  return consensusToPathNodes(consensus);
}

/** Every node of a consensus with its first address (for DHT re-seeding). */
export function consensusPeers(consensus: VerifiedConsensus): ConfiguredPeer[] {
  return consensusToPathNodes(consensus, { requireFlags: [] }).map((n) => ({ identity: hex(n.identity), host: n.host, port: n.port }));
}

/**
 * The directory as a node process runs it. Every node publishes its signed
 * descriptor to the discovery nodes and holds the latest verified consensus
 * (fetched, kept in the data directory, served to others: every node
 * proxies it). A node with the "discovery" role runs the discovery service
 * instead of the fetching client: it votes, signs and serves the consensus
 * itself, and hands its own descriptor to its own service directly.
 *
 * Two sources for the chain's view (docs/spec/node.md "Chain"):
 *  - with `chain` (config.chain): the NodeRegistry. Discovery nodes judge
 *    descriptors by the role bits the node is eligible for on chain (chain.ts
 *    ChainRoleView: looked up before a descriptor is accepted, looked up again
 *    every refresh); every node trusts NodeRegistry.discoverySet() with K a
 *    majority (or the configured K), read at start and every refreshMs. The
 *    configured directory.discovery is the bootstrap: trusted until the chain
 *    answers (or while it cannot be reached), and where discovery nodes are
 *    dialled. When the trusted set changes, the service or client is replaced
 *    by one on the new set (held descriptors, the held consensus where it
 *    still verifies, and counters carry over); a discovery node outside the
 *    chain's set stops voting and fetches like any other node.
 *  - without it (tests, offline networks): directory.registry and the
 *    configured set, fixed for the process's life.
 *
 * Internal nodes (issue 20): every node keeps an InternalDirectory, the
 * verified descriptors of the nodes its consensus flags internal (where they
 * listen; clients never get them). A discovery node fills it from the
 * descriptors it holds, any other node fetches the node-only view on each
 * new consensus (trusted discovery nodes first, then a few other listed
 * nodes; retried with backoff: InternalViewRefresher), and serves it on to
 * nodes. Links opened by an outbound-only internal node are held here so
 * they never idle-close; such a node itself (directory.internal.outboundLinks)
 * publishes no address and keeps links to its neighbours (outbound.ts).
 *
 * Owns only the composition and the mapping of config to the directory
 * layer's options; every acceptance rule stays in node/src/directory.
 *
 * Trusts: the directory layer (verifyConsensus, DiscoveryNode); the chain
 * PKI (chain.ts) or the config's registry for on-chain roles.
 */
import { join } from "node:path";
import { ConsensusClient, serveConsensus } from "../directory/client.js";
import { ChainRole, NodeFlag, bytesToHexFast, discoveryTrustFromKeys } from "../directory/config.js";
import type { DiscoveryTrust } from "../directory/config.js";
import type { VerifiedConsensus } from "../directory/consensus.js";
import { decodeAddress } from "../directory/address.js";
import { createDescriptor, openDescriptor } from "../directory/descriptor.js";
import type { DescriptorFields } from "../directory/descriptor.js";
import { DirectoryError } from "../directory/errors.js";
import { InternalDirectory, fetchInternalView } from "../directory/internal.js";
import { InternalViewRefresher } from "../directory/internal-refresh.js";
import type { InternalViewConsensus } from "../directory/internal.js";
import type { InternalViewStats } from "../directory/internal-refresh.js";
import { holdLinksFrom, outboundNeighbours, startOutboundLinks } from "../directory/outbound.js";
import type { OutboundLinks } from "../directory/outbound.js";
import type { NodeAddress } from "../directory/address.js";
import { decodeDirectoryRequest } from "../directory/messages.js";
import { consensusToPathNodes } from "../directory/path-nodes.js";
import { startDescriptorPublisher } from "../directory/publisher.js";
import type { DescriptorPublisher } from "../directory/publisher.js";
import { startDiscoveryService } from "../directory/service.js";
import type { DiscoveryService } from "../directory/service.js";
import type { DirectoryRpc } from "../directory/transport.js";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import type { ConnectionManager, PeerAddress } from "../link/manager.js";
import { childLogger, logFailure, throttledFailureLog } from "../log.js";
import type { Logger } from "../log.js";
import type { LinkRpc } from "../link/rpc.js";
import type { PathNode } from "../onion/path.js";
import { ChainRoleView, connectNodeChain, discoveryTrustFromChain, sameTrust } from "./chain.js";
import { ChainAppsView } from "./commercial.js";
import type { ChainRoleStats, NodeChain } from "./chain.js";
import { NodeError } from "./config.js";
import type { ConfiguredPeer, NodeDirectoryConfig, NodeRole } from "./config.js";
import { hex } from "./hex.js";

export const NODE_SOFTWARE_VERSION = "psp/0.1.0";

/** Where the trusted discovery set came from, and the chain connection's state. */
export interface DirectoryChainStatus {
  /** "chain": NodeRegistry.discoverySet(); "config": directory.discovery (no chain section, or the chain not read yet). */
  discoverySource: "chain" | "config";
  /** Trusted discovery keys (hex) and K. */
  discoverySet: string[];
  threshold: number;
  /** True once the chain answered (always false without a chain section). */
  chainConnected: boolean;
  /** The last chain failure, if the last attempt failed. */
  lastError?: string;
  /** Times the trusted set changed after start. */
  setChanges: number;
  /** Registry lookups (discovery nodes with a chain section). */
  roleLookups?: ChainRoleStats;
}

export interface NodeDirectory {
  /**
   * The discovery service (discovery role, while this node is in the trusted
   * set). A stable handle: it follows the service of the current set, so
   * metrics registered once keep reading the live counters.
   */
  readonly service: DiscoveryService | undefined;
  /** The consensus client (nodes without the discovery role, or outside the set); a stable handle like `service`. */
  readonly client: ConsensusClient | undefined;
  readonly publisher: DescriptorPublisher;
  /** The latest verified consensus this node holds. */
  current(): VerifiedConsensus | undefined;
  /** Called with every newly held consensus. */
  onConsensus(listener: (consensus: VerifiedConsensus) => void): void;
  /** Internal nodes' verified descriptors for the held consensus (the node-only view this node holds and serves). */
  readonly internal: InternalDirectory;
  /** Where an internal node listens (from its verified descriptor), or undefined when unknown or not internal; empty for one with outbound links only. */
  internalAddresses(identity: Uint8Array): NodeAddress[] | undefined;
  /** The node-only view refresh: fetches, failures by kind, retries, staleness. */
  readonly internalViewStats: InternalViewStats;
  /** An internal node with outbound links only (directory.internal.outboundLinks): the links it keeps to its neighbours. */
  readonly outbound: OutboundLinks | undefined;
  /** The trusted set and the chain connection. */
  chainStatus(): DirectoryChainStatus;
  /**
   * With a chain section: reads the discovery set (and re-checks the held
   * descriptors' nodes) now instead of at the next refresh; resolves when done.
   */
  refreshFromChain(): Promise<void>;
  close(): void;
}

export interface StartNodeDirectoryOptions {
  identity: Ed25519KeyPair;
  onionPublicKey: Uint8Array;
  roles: readonly NodeRole[];
  /** Application ids this node serves as a commercial node (claimed in the descriptor). */
  apps?: readonly Uint8Array[];
  advertised: { host: string; port: number };
  manager: ConnectionManager;
  rpc: LinkRpc;
  config: NodeDirectoryConfig;
  dataDir: string | undefined;
  /**
   * Logs as component "directory" (chain fallbacks, set changes), with the
   * consensus client, publisher, discovery service and chain PKI beneath it;
   * silent when absent.
   */
  logger?: Logger;
}

const toPeer = (p: ConfiguredPeer): PeerAddress => ({ identity: Uint8Array.from(Buffer.from(p.identity, "hex")), host: p.host, port: p.port });

function roleBits(names: readonly string[]): number {
  let bits = 0;
  for (const n of names) bits |= ChainRole[n as keyof typeof ChainRole] ?? 0;
  return bits;
}

/** One service or client on one trusted set, with the RPC handler it registered. */
interface Generation {
  trust: DiscoveryTrust;
  service?: DiscoveryService;
  client?: ConsensusClient;
  unserve: (() => void)[];
}

/**
 * A handle that always acts on `current()`: the directory layer's metrics
 * (directory/api.ts) are registered once against one object, while the
 * object behind it is replaced when the discovery set changes.
 */
function follow<T extends object>(initial: T, current: () => T): T {
  return new Proxy(initial, {
    get(_target, prop) {
      const target = current();
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Starts descriptor publication and the consensus holder (client or discovery service). Throws NodeError "bad-config". */
export function startNodeDirectory(options: StartNodeDirectoryOptions): NodeDirectory {
  const { config, identity } = options;
  const log = childLogger(options.logger, "directory");
  /** Refusals of our own descriptor and failed chain lookups repeat every interval while the cause lasts. */
  const logRepeating = throttledFailureLog(log);
  const configuredPeers = config.discovery.map(toPeer);
  const ownHex = hex(identity.publicKey);
  let bootstrap: DiscoveryTrust;
  try {
    bootstrap = discoveryTrustFromKeys(
      configuredPeers.map((p) => p.identity),
      config.threshold,
    );
  } catch (err) {
    throw new NodeError("bad-config", `config directory: ${(err as Error).message}`, { cause: err });
  }
  const listeners: ((c: VerifiedConsensus) => void)[] = [];
  const internal = new InternalDirectory();
  const outboundOnly = config.outboundLinks !== undefined;
  const emit = (c: VerifiedConsensus): void => {
    refreshInternal(c).catch((err: unknown) => logFailure(log, err, "refresh the internal nodes' view", "warn"));
    outbound?.check();
    for (const l of listeners) l(c);
  };
  const descriptor = (): Omit<DescriptorFields, "publishedAt"> => ({
    onionKey: options.onionPublicKey,
    // An internal node with outbound links only accepts no links: it names no address (directory.md §12).
    addresses: outboundOnly ? [] : [{ host: options.advertised.host, port: options.advertised.port }],
    roles: roleBits(options.roles),
    bridge: config.bridge ?? false,
    bandwidth: config.bandwidth ?? 1_000_000,
    country: config.country ?? "ZZ",
    version: NODE_SOFTWARE_VERSION,
    ...(config.internal ? { internal: true } : {}),
    ...(options.apps && options.apps.length > 0 ? { apps: [...options.apps] } : {}),
  });
  const isDiscovery = options.roles.includes("discovery");
  if (isDiscovery && !configuredPeers.some((p) => hex(p.identity) === ownHex)) {
    throw new NodeError("bad-config", "config directory.discovery: a node with the discovery role must list itself in the discovery set");
  }
  if (isDiscovery && outboundOnly) {
    throw new NodeError("bad-config", "config directory.internal.outboundLinks: a discovery node must accept links (nodes publish to it and fetch from it)");
  }

  // ------------------------------------------------ the chain's view of roles
  const chainConfig = config.chain;
  let chain: NodeChain | undefined;
  let closed = false;
  const status: DirectoryChainStatus = {
    discoverySource: "config",
    discoverySet: bootstrap.keys.map(bytesToHexFast),
    threshold: bootstrap.threshold,
    chainConnected: false,
    setChanges: 0,
  };
  const roleView =
    chainConfig && isDiscovery
      ? new ChainRoleView({
          nodeRoles: async (nodeKey) => {
            if (!chain) throw new DirectoryError("unavailable", "the chain has not answered yet: registrations cannot be checked");
            return await chain.pki.nodeRoles(nodeKey);
          },
          // The snapshot keeps its last answer; the lookup is counted in roleLookups.
          onError: (err) => logRepeating(err, "look up a node's roles on chain", "warn"),
        })
      : undefined;
  // Commercial claims (issue 17): a descriptor's application ids count only where CommercialNodes confirms them.
  const appsView =
    chainConfig && isDiscovery
      ? new ChainAppsView(
          async (nodeKey) => {
            const view = chain?.commercial;
            if (!view) return [];
            return await view.servingApps(nodeKey);
          },
          (err) => logRepeating(err, "look up a node's applications on chain", "warn"),
        )
      : undefined;
  const configRegistry = new Map(Object.entries(config.registry ?? {}).map(([k, roles]) => [k, roleBits(roles)]));
  const chainRoles = roleView ? roleView.roles : (id: Uint8Array) => configRegistry.get(hex(id));

  /**
   * The RPC as the service or client of one generation sees it: records the
   * handler's unregistration (the next generation serves in its place) and,
   * for a discovery service, looks a descriptor's node up on chain before the
   * service judges it.
   */
  const generationRpc = (unserve: (() => void)[], lookUpDescriptors: boolean): DirectoryRpc => ({
    request: options.rpc.request.bind(options.rpc),
    serve(service, handler, serveOptions) {
      const wrapped: typeof handler = roleView && lookUpDescriptors
        ? async (bytes, ctx) => {
            await prefetchDescriptorNode(bytes);
            return await handler(bytes, ctx);
          }
        : handler;
      const stop = options.rpc.serve(service, wrapped, serveOptions);
      unserve.push(stop);
      return stop;
    },
  });
  const prefetchDescriptorNode = async (bytes: Uint8Array): Promise<void> => {
    if (!roleView) return;
    try {
      const request = decodeDirectoryRequest(bytes);
      if (request.type !== "publish-descriptor") return;
      // Only a well-signed descriptor costs a chain read; anything else the service refuses on its own.
      const opened = openDescriptor(request.descriptor);
      await roleView.resolve(opened.identity);
      if (appsView && opened.apps) await appsView.resolve(opened.identity);
    } catch (err) {
      // Malformed or forged: the service refuses it with the precise kind, and counts and logs that refusal.
      log.debug({ err }, "descriptor not looked up on chain: it does not open");
    }
  };

  // ------------------------------------------------ generations
  let gen: Generation | undefined;
  let lastService: DiscoveryService | undefined;
  let lastClient: ConsensusClient | undefined;
  const held = (): VerifiedConsensus | undefined => gen?.client?.current() ?? gen?.service?.current();
  /** The generation in force (set before anything below can run). */
  const live = (): Generation => {
    if (!gen) throw new NodeError("start-failed", "the directory has not started");
    return gen;
  };
  /** Where the trusted discovery nodes listen: configured addresses, then those the held consensus lists. */
  const peersOf = (trust: DiscoveryTrust): PeerAddress[] => {
    const trusted = new Set(trust.keys.map(bytesToHexFast));
    const out = new Map<string, PeerAddress>();
    for (const p of configuredPeers) if (trusted.has(hex(p.identity))) out.set(hex(p.identity), p);
    for (const entry of held()?.entries ?? []) {
      const key = bytesToHexFast(entry.identity);
      const encoded = entry.encodedAddresses[0];
      if (out.has(key) || !trusted.has(key) || !encoded || (entry.flags & NodeFlag.discovery) === 0) continue;
      out.set(key, { identity: entry.identity, ...decodeAddress(encoded) });
    }
    return [...out.values()];
  };

  const startGeneration = (trust: DiscoveryTrust, previous?: Generation): Generation => {
    const gen: Generation = { trust, unserve: [] };
    const peers = peersOf(trust);
    const voting = isDiscovery && trust.keys.some((k) => bytesToHexFast(k) === ownHex);
    if (voting) {
      const service = startDiscoveryService({
        rpc: generationRpc(gen.unserve, true),
        logger: log,
        manager: options.manager,
        secretKey: identity.secretKey,
        discoverySet: trust.keys,
        threshold: trust.threshold,
        chainRoles,
        ...(appsView ? { chainApps: appsView.apps } : {}),
        ...(config.schedule ? { schedule: config.schedule } : {}),
        peers,
      });
      const before = previous?.service ?? lastService;
      if (before) {
        Object.assign(service.stats, structuredClone(before.stats));
        for (const d of before.node.heldDescriptors()) {
          try {
            service.node.submitDescriptor(d.bytes, Date.now());
          } catch (err) {
            // No longer acceptable (e.g. aged out): dropped, as the old service would have.
            log.debug({ err }, "a held descriptor is not carried over to the new discovery set");
          }
        }
      }
      service.on("consensus-published", emit);
      gen.service = service;
      lastService = service;
    } else {
      const client = new ConsensusClient({
        rpc: options.rpc,
        logger: log,
        trust,
        sources: () => peersOf(trust),
        role: "cache",
        ...(options.dataDir === undefined ? {} : { file: join(options.dataDir, "consensus.bin") }),
        ...(config.retryMs === undefined ? {} : { retryMs: config.retryMs }),
      });
      const before = previous?.client ?? lastClient;
      if (before) Object.assign(client.stats, structuredClone(before.stats));
      const consensus = previous?.client?.current() ?? previous?.service?.current();
      if (consensus) {
        try {
          client.offer(consensus.bytes);
        } catch (err) {
          // Not signed by K of the new set: fetched afresh.
          log.info({ err }, "the held consensus is not signed by K of the new discovery set; fetching afresh");
        }
      }
      serveConsensus(generationRpc(gen.unserve, false), client, Date.now, { internal });
      client.on("consensus", emit);
      // start() logs its own fetch failures; what is left (an unreadable data directory, a bug) is logged here.
      void client.start().catch((err: unknown) => logFailure(log, err, "start consensus client", "error"));
      gen.client = client;
      lastClient = client;
    }
    return gen;
  };
  /**
   * The internal nodes' view follows the held consensus: on a discovery node
   * from its own held descriptors, else fetched from the trusted discovery
   * nodes, then (if they fail) from up to VIEW_FALLBACK_SOURCES other listed
   * public nodes, which serve the view they verified; a round without an
   * answer or with nodes missing is retried with backoff (internal.ts).
   */
  const VIEW_FALLBACK_SOURCES = 3;
  const viewSources = (c: InternalViewConsensus): PeerAddress[] => {
    const first = gen ? peersOf(gen.trust).filter((p) => hex(p.identity) !== ownHex) : [];
    const seen = new Set([ownHex, ...first.map((p) => hex(p.identity))]);
    const others: PeerAddress[] = [];
    for (const e of c.entries) {
      const encoded = e.encodedAddresses[0];
      if (!encoded || (e.flags & NodeFlag.running) === 0 || seen.has(bytesToHexFast(e.identity))) continue;
      others.push({ identity: e.identity, ...decodeAddress(encoded) });
    }
    // A random few, so one withholding node is not asked by everyone.
    for (let i = others.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [others[i], others[j]] = [others[j] as PeerAddress, others[i] as PeerAddress];
    }
    return [...first, ...others.slice(0, VIEW_FALLBACK_SOURCES)];
  };
  const refresher = new InternalViewRefresher({
    internal,
    fetch: (peer) => fetchInternalView(options.rpc, peer),
    sources: viewSources,
    local: () => gen?.service?.internalView(Date.now()),
    minRetryMs: config.retryMs ?? 5_000,
    logger: log,
  });
  // Links that outbound-only internal nodes opened to this node are its only way to them: held, never idle-closed.
  const inboundHolds = holdLinksFrom(options.manager, (peer) => internal.isOutboundOnly(peer, Date.now()));
  const refreshInternal = async (c: VerifiedConsensus): Promise<void> => {
    // A consensus loaded from the file arrives while the first generation is still being made: let it finish.
    await Promise.resolve();
    await refresher.update(c);
    inboundHolds.check();
  };
  let outbound: OutboundLinks | undefined;
  const stopGeneration = (gen: Generation): void => {
    gen.client?.stop();
    gen.service?.stop();
    for (const stop of gen.unserve.splice(0)) stop();
  };

  try {
    gen = startGeneration(bootstrap);
  } catch (err) {
    if (err instanceof DirectoryError) throw new NodeError("bad-config", `config directory: ${err.message}`, { cause: err });
    throw err;
  }
  // Made on first use, once the kind exists (a discovery node outside the chain's set gets a client later).
  let serviceHandle: DiscoveryService | undefined;
  let clientHandle: ConsensusClient | undefined;

  const adopt = (trust: DiscoveryTrust, source: "chain" | "config"): void => {
    status.discoverySource = source;
    const old = live();
    if (sameTrust(trust, old.trust)) return;
    log.info(
      { source, keys: trust.keys.length, threshold: trust.threshold },
      `the trusted discovery set changes (${source}): ${old.trust.keys.length} keys K=${old.trust.threshold} -> ${trust.keys.length} keys K=${trust.threshold}`,
    );
    stopGeneration(old);
    try {
      gen = startGeneration(trust, old);
    } catch (err) {
      logFailure(log, err, "run the directory on the new discovery set", "error", { keeping: "the previous set" });
      gen = startGeneration(old.trust, old);
      return;
    }
    status.discoverySet = trust.keys.map(bytesToHexFast);
    status.threshold = trust.threshold;
    status.setChanges++;
  };

  // ------------------------------------------------ chain refresh
  let refreshing: Promise<void> | undefined;
  const refreshOnce = async (): Promise<void> => {
    if (!chainConfig || closed) return;
    try {
      if (!chain) {
        const connected = await connectNodeChain(chainConfig, { logger: log });
        if (closed) {
          connected.close();
          return;
        }
        chain = connected;
        status.chainConnected = true;
      }
      const set = await chain.pki.currentDiscovery();
      if (closed) return;
      const trust = discoveryTrustFromChain(set, config.threshold);
      if (!trust) {
        log.warn("NodeRegistry.discoverySet() is empty: keeping the configured discovery set");
      } else {
        if (config.threshold !== undefined && config.threshold > set.members.length) {
          log.warn(`configured K=${config.threshold} exceeds the ${set.members.length} discovery nodes on chain: using a majority, K=${trust.threshold}`);
        }
        adopt(trust, "chain");
      }
      const service = live().service;
      if (roleView && service) await roleView.refresh([identity.publicKey, ...service.node.heldDescriptors().map((d) => d.identity)]);
      if (appsView && service) await appsView.refresh(service.node.heldDescriptors().flatMap((d) => (d.apps ? [d.identity] : [])));
      delete status.lastError;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // Logged once per outage (lastError marks it); every failed read is counted.
      if (!status.chainConnected && status.lastError === undefined) {
        logFailure(log, err, "read the chain at start", "warn", { trusting: "the configured discovery set until it answers", keys: bootstrap.keys.length, threshold: bootstrap.threshold });
      } else {
        logFailure(log, err, "read the chain", status.lastError === undefined ? "warn" : "debug", { keeping: "the current discovery set" });
      }
      status.lastError = message;
    }
  };
  const refreshFromChain = (): Promise<void> => {
    refreshing ??= refreshOnce().finally(() => (refreshing = undefined));
    return refreshing;
  };
  let refreshTimer: NodeJS.Timeout | undefined;
  if (chainConfig) {
    void refreshFromChain();
    refreshTimer = setInterval(() => void refreshFromChain(), chainConfig.refreshMs ?? 60_000);
    refreshTimer.unref();
  }

  // ------------------------------------------------ descriptors
  // A discovery node reports to the other trusted discovery nodes over links and to its own service directly.
  const publishIntervalMs = config.publishIntervalMs ?? 10 * 60_000;
  const publisher = startDescriptorPublisher({
    rpc: options.rpc,
    logger: log,
    secretKey: identity.secretKey,
    descriptor,
    discovery: () => peersOf(live().trust).filter((p) => hex(p.identity) !== ownHex),
    intervalMs: publishIntervalMs,
  });
  if (config.outboundLinks) {
    // Reached only over links it opens: to every trusted discovery node (which then counts it running) and every listed public relay.
    outbound = startOutboundLinks({
      manager: options.manager,
      self: identity.publicKey,
      neighbours: () => outboundNeighbours(held(), peersOf(live().trust), identity.publicKey),
      options: config.outboundLinks,
      logger: log,
    });
  }
  const submitOwn = async (): Promise<void> => {
    if (!live().service) return;
    if (roleView) await roleView.resolve(identity.publicKey);
    try {
      live().service?.node.submitDescriptor(createDescriptor({ ...descriptor(), publishedAt: Date.now(), secretKey: identity.secretKey }), Date.now());
    } catch (err) {
      // Refused by our own rules (e.g. the chain lacks our stake): the operator must hear of it, once in a while.
      logRepeating(err, "submit our own descriptor to our discovery service", "warn");
    }
  };
  let selfTimer: NodeJS.Timeout | undefined;
  if (isDiscovery) {
    void submitOwn();
    selfTimer = setInterval(() => void submitOwn(), publishIntervalMs);
    selfTimer.unref();
  }

  return {
    get service() {
      const service = live().service;
      if (!service) return undefined;
      serviceHandle ??= follow(service, () => lastService ?? service);
      return serviceHandle;
    },
    get client() {
      const client = live().client;
      if (!client) return undefined;
      clientHandle ??= follow(client, () => lastClient ?? client);
      return clientHandle;
    },
    publisher,
    current: held,
    internal,
    internalViewStats: refresher.stats,
    get outbound() {
      return outbound;
    },
    internalAddresses: (id) => internal.addressesOf(id, Date.now()),
    onConsensus(listener) {
      listeners.push(listener);
    },
    chainStatus: () => ({ ...status, ...(roleView ? { roleLookups: { ...roleView.stats } } : {}) }),
    refreshFromChain,
    close() {
      closed = true;
      publisher.stop();
      if (selfTimer) clearInterval(selfTimer);
      if (refreshTimer) clearInterval(refreshTimer);
      stopGeneration(live());
      refresher.stop();
      inboundHolds.stop();
      outbound?.stop();
      chain?.close();
    },
  };
}

/** The onion relays of a consensus as path-selection input. */
export function onionPathNodes(consensus: VerifiedConsensus): PathNode[] {
  return consensusToPathNodes(consensus);
}

/** Every node of a consensus with its first address (for DHT re-seeding). */
export function consensusPeers(consensus: VerifiedConsensus): ConfiguredPeer[] {
  // Internal nodes have no address in the consensus (port 0): they are reached over existing links, never dialed from here.
  return consensusToPathNodes(consensus, { requireFlags: [] })
    .filter((n) => n.port !== 0)
    .map((n) => ({ identity: hex(n.identity), host: n.host, port: n.port }));
}

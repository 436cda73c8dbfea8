/**
 * The node process: composes layers by role.
 *
 * Owns start-up and shutdown of one node: keys from the config, a
 * ConnectionManager listening on TLS and one link RPC endpoint on it, then
 * the layers above: an OnionRelay (configured limits and built-in services)
 * driven by an OnionDriver; the DHT (dht.ts: SQLite store in the data
 * directory, bootstrap from seeds, re-seeding from each new consensus);
 * the directory (directory.ts: descriptor publication and the consensus
 * cache everywhere, the discovery service on "discovery" nodes); and the
 * the "authority" and "oracle" roles (roles.ts: the authority service over
 * links and circuits; the oracle's standing on chain); and the control API
 * (api.ts). Shutdown runs in reverse order.
 *
 * Logs: every layer gets a child of the logger it is given (bound to the
 * node's short identity), and every failure they log or report is counted
 * in /metrics as psp_log_events_total. Without a logger the node is silent.
 *
 * Trusts: its config (validated by config.ts) and the layers it composes.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startControlApi } from "../api/server.js";
import { isLoopbackHost, loadOrCreateApiToken } from "../api/token.js";
import type { ControlApi } from "../api/server.js";
import { generateEd25519KeyPair } from "../crypto/ed25519.js";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import { solveStaticPuzzle } from "../crypto/puzzles.js";
import { DEFAULT_DHT_CONFIG } from "../dht/config.js";
import { formatLinkAddress } from "../dht/link-transport.js";
import { createLinkRpc } from "../link/rpc.js";
import type { LinkRpc } from "../link/rpc.js";
import { childLogger, logFailure, silentLogger, watchLogEvents } from "../log.js";
import type { Logger } from "../log.js";
import { createOnionClient } from "../onion/onion-client.js";
import type { CreateOnionClientOptions, OnionClientHandle } from "../onion/onion-client.js";
import { NODE_STATUS_SCHEMA, countLogEvents, createLogEventsMetric, mountNodeRoutes, nodeStatus, registerNodeMetrics } from "./api.js";
import type { NodeApiSources } from "./api.js";
import { startNodeDht } from "./dht.js";
import { NodeEventBus, mountNodeEvents, watchNodeEvents } from "./events.js";
import { dhtProxyService } from "../dht/proxy.js";
import type { NodeDht } from "./dht.js";
import { consensusPeers, onionPathNodes, startNodeDirectory } from "./directory.js";
import type { NodeDirectory } from "./directory.js";
import { hex } from "./hex.js";
import { NodeFlag } from "../directory/config.js";
import { createConnectionManager } from "../link/index.js";
import type { ConnectionManager, Link, TlsCredentials } from "../link/index.js";
import { OnionRelay } from "../onion/relay.js";
import { OnionDriver } from "../onion/runtime.js";
import { createDiscardService, createEchoService } from "../onion/services.js";
import type { ServiceCounters } from "../onion/services.js";
import type { PathNode } from "../onion/path.js";
import { ReceiptReplayStore } from "../stream/admission.js";
import type { StreamAdmission } from "../stream/admission.js";
import { streamCreationService } from "../stream/creation.js";
import { StreamHost } from "../stream/host.js";
import type { LocalService } from "../onion/types.js";
import type { Cell } from "../wire/cell.js";
import { NodeError, loadIdentityKey, loadOnionKey, parseNodeConfig } from "./config.js";
import { startNodeAuthority, startNodeOracle } from "./roles.js";
import { startNodeCommercial } from "./commercial.js";
import type { NodeCommercial } from "./commercial.js";
import { COMMERCIAL_SERVICE } from "../commercial/messages.js";
import { PRESENCE_FIRST_HOP_SERVICES, startNodePresence } from "./presence.js";
import type { NodePresence } from "./presence.js";
import { startNodeStreamAdmission } from "./stream.js";
import { startNodeUsage, type NodeUsage } from "./usage.js";
import type { EpochTiming } from "../stream/usage.js";
import type { IntroducerCertificate } from "../presence/introduction.js";
import type { NodeAuthority, NodeOracle, OracleServiceFactory, OracleServiceHandle } from "./roles.js";
import type { NodeConfig } from "./config.js";

/** What a running node tells others about itself (what a directory would list). */
export interface NodeInfo {
  /** Ed25519 identity public key, hex. */
  identity: string;
  /** X25519 onion public key, hex. */
  onionKey: string;
  host: string;
  port: number;
  roles: string[];
  /** The node's DHT contact address ("host:port"). */
  dhtAddress: string;
  /** Control API base URL (null when turned off). */
  controlApi: string | null;
}

export interface StartNodeOptions {
  /** TLS certificate to reuse (tests and benchmarks start many nodes); generated when absent. */
  tlsCredentials?: TlsCredentials;
  /** Extra local services by name (in addition to the configured built-ins). */
  services?: Record<string, LocalService>;
  /**
   * Checks access certificates for the presence services instead of the
   * consensus's authorities (tests on networks without a chain, whose
   * consensus lists no authority).
   */
  verifyCertificate?: (cert: Uint8Array) => IntroducerCertificate;
  /**
   * Lands and distributes streams (node/src/stream): stream links on the link
   * port and service "stream" at the end of circuits, receipts and session
   * ids checked through it (stream/admission.ts oracleAdmission). Absent:
   * an onion node with a chain builds it from the chain (node/stream.ts)
   * unless config.stream.enabled is false; without a chain it hosts no streams.
   */
  streamAdmission?: StreamAdmission;
  /**
   * The oracle service (oracle/node.ts startOracleService), started with the
   * oracle role and offered as onion service "oracle". Injected by the
   * composition (`psp node run`, tests), so node/src never imports oracle/;
   * without it an oracle node only follows its standing on chain.
   */
  oracleService?: OracleServiceFactory;
  /** Test hook: wraps every local service the relay offers (to observe what this node sees at the edge of circuits). */
  wrapService?: (name: string, service: LocalService) => LocalService;
  /** Test hook on every cell the relay sends (see OnionDriverOptions.outboundHook). */
  outboundHook?: (cell: Cell, link: Link) => Cell | undefined;
  /**
   * The root every layer logs under (`psp node run` passes one writing JSON
   * lines to stdout); the node binds its short identity (and log.name) to it.
   * Default: silent.
   */
  logger?: Logger;
}

export interface RunningNode {
  readonly info: NodeInfo;
  /** The node's logger (bound to its identity; silent when startNode was given none). */
  readonly logger: Logger;
  /** The node as a client puts it in a path. */
  readonly pathNode: PathNode;
  readonly manager: ConnectionManager;
  /** The node's link RPC endpoint (shared by the DHT and the directory). */
  readonly rpc: LinkRpc;
  readonly relay: OnionRelay;
  readonly driver: OnionDriver;
  readonly dht: NodeDht;
  /** Descriptor publication and the consensus (absent without directory config). */
  readonly directory: NodeDirectory | undefined;
  /** The authority role (absent without it). */
  readonly authority: NodeAuthority | undefined;
  /** The oracle role (absent without it). */
  readonly oracle: NodeOracle | undefined;
  /** The oracle service (absent without the role or without StartNodeOptions.oracleService). */
  readonly oracleService: OracleServiceHandle | undefined;
  /** The commercial role: applications' plugin services (absent without it). */
  readonly commercial: NodeCommercial | undefined;
  /** Presence points, introductions and rendezvous this node serves. */
  readonly presence: NodePresence;
  /** Streams this node lands and distributes (absent when it has no stream admission: no chain, or stream.enabled false). */
  readonly streams: StreamHost | undefined;
  readonly api: ControlApi | undefined;
  /**
   * An onion client on this node's consensus: path selection uses the
   * consensus's onion relays and follows every newer consensus (setNodes).
   * Throws NodeError "start-failed" while no consensus is held and no nodes are given.
   */
  createOnionClient(options?: Partial<CreateOnionClientOptions>): Promise<OnionClientHandle>;
  /** Counters of the built-in services this node offers. */
  readonly services: Partial<Record<"echo" | "discard", ServiceCounters>>;
  /** Orderly shutdown: links get CLOSE SHUTDOWN, circuits end with CHANNEL_CLOSED at the neighbours. */
  close(): Promise<void>;
}

/**
 * Starts a node from a config (a NodeConfig or the parsed JSON of one).
 * Throws NodeError "bad-config", "key-load" or "start-failed".
 */
export async function startNode(configInput: NodeConfig | unknown, options: StartNodeOptions = {}): Promise<RunningNode> {
  const config = parseNodeConfig(configInput);
  const staticDifficulty = config.dht?.staticDifficulty ?? DEFAULT_DHT_CONFIG.staticDifficulty;
  // A fresh identity solves the DHT's static puzzle, so it can join the DHT.
  const identity: Ed25519KeyPair = config.identity
    ? await loadIdentityKey(config)
    : solveStaticPuzzle({ difficulty: staticDifficulty, generateKeyPair: generateEd25519KeyPair }).keyPair;
  if (config.dataDir !== undefined) {
    try {
      mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new NodeError("start-failed", `cannot create dataDir ${config.dataDir}: ${(err as Error).message}`, { cause: err });
    }
  }
  const onionKey = await loadOnionKey(config);
  // Every layer logs under this, so every line says which node wrote it.
  const nodeLogger: Logger | undefined = options.logger?.child({
    node: hex(identity.publicKey).slice(0, 16),
    ...(config.log?.name ? { name: config.log.name } : {}),
  });
  const withLogger = nodeLogger ? { logger: nodeLogger } : {};
  const log = childLogger(nodeLogger, "node");
  const logEvents = createLogEventsMetric();
  const stopCounting = nodeLogger ? watchLogEvents(nodeLogger, (event) => countLogEvents(logEvents, event)) : () => undefined;
  // Declared before anything that reads it can run: links, the relay and presence ask for the consensus late.
  let directory: NodeDirectory | undefined;
  // Who the consensus this node holds lists, by identity and flags (built once per consensus): links and RPC
  // from listed nodes get the node budgets, a listed relay's link the relay-link CREATE budget.
  let listedFor: unknown;
  let listed = new Map<string, number>();
  const listedFlags = (): ReadonlyMap<string, number> => {
    const consensus = directory?.current();
    if (consensus !== listedFor) {
      listedFor = consensus;
      listed = new Map(consensus ? consensus.entries.map((e) => [hex(e.identity), e.flags] as const) : []);
    }
    return listed;
  };
  // Until a consensus is held (bootstrap, or a node run without a directory) every proven identity counts as a node.
  const isKnownNode = (peer: Uint8Array): boolean => {
    const flags = listedFlags();
    return listedFor === undefined || flags.has(hex(peer));
  };
  let manager: ConnectionManager;
  // An internal node with outbound links only (issue 20) accepts no links at all: it opens no listener.
  const outboundOnly = config.directory?.outboundLinks !== undefined;
  try {
    manager = await createConnectionManager({
      identity,
      isKnownNode,
      ...(outboundOnly ? {} : { listen: config.listen }),
      ...withLogger,
      ...(config.link ? { link: config.link } : {}),
      ...(config.maxLinks === undefined ? {} : { maxLinks: config.maxLinks }),
      ...(config.inbound ? { inbound: config.inbound } : {}),
      ...(options.tlsCredentials ? { tlsCredentials: options.tlsCredentials } : {}),
    });
  } catch (err) {
    stopCounting();
    throw new NodeError("start-failed", `cannot listen on ${config.listen.host}:${config.listen.port}: ${(err as Error).message}`, { cause: err });
  }
  const bound = manager.address();
  // Port 0: not listening (outbound links only); the descriptor then names no address.
  const advertised = config.advertise ?? { host: config.listen.host, port: bound?.port ?? 0 };

  // Set once the relay exists; closures made before then (flush, cleanup) read it late.
  const late: { driver?: OnionDriver } = {};
  const roles = config.roles ?? ["onion"];
  const rpc = createLinkRpc({ manager, isKnownNode, ...withLogger, ...config.rpc });
  const cleanup: (() => void | Promise<void>)[] = [
    async () => {
      rpc.close();
      await manager.close();
      late.driver?.stop();
      stopCounting();
    },
  ];
  // Every step runs even when one fails: a failed step is logged and counted, and the rest still close.
  const unwind = async (): Promise<void> => {
    for (const step of cleanup.reverse())
      await Promise.resolve()
        .then(step)
        .catch((err: unknown) => logFailure(log, err, "shut down a layer", "warn"));
  };

  // Chain-backed roles first: they can fail (no chain, bad signer key) before anything else runs.
  let authority: NodeAuthority | undefined;
  let oracle: NodeOracle | undefined;
  let oracleService: OracleServiceHandle | undefined;
  let streamAdmission = options.streamAdmission;
  let epochTiming: (() => EpochTiming | undefined) | undefined;
  let commercial: NodeCommercial | undefined;
  try {
    if (roles.includes("authority") && config.authority && config.chain) {
      const started = await startNodeAuthority({
        identity,
        config: config.authority,
        chain: config.chain,
        rpc,
        ...withLogger,
        flush: () => late.driver?.run(() => undefined),
      });
      authority = started;
      cleanup.push(() => started.close());
    }
    if (roles.includes("oracle") && config.oracle && config.chain) {
      const started = await startNodeOracle({ identity, config: config.oracle, chain: config.chain, ...withLogger });
      oracle = started;
      cleanup.push(() => started.close());
      if (options.oracleService) {
        const service = await options.oracleService({
          identity,
          config: config.oracle,
          chain: config.chain,
          rpc,
          flush: () => late.driver?.run(() => undefined),
          consensus: () => directory?.current(),
          internalAddress: (peer) => directory?.internalAddresses(Uint8Array.from(Buffer.from(peer, "hex")))?.[0],
          ...(config.dataDir === undefined ? {} : { dataDir: config.dataDir }),
          ...withLogger,
        });
        oracleService = service;
        cleanup.push(() => service.close());
      }
    }
    // Landing and distribution check receipts and session ids against the chain; on by default for an onion node with one.
    if (!streamAdmission && config.chain && roles.includes("onion") && config.stream?.enabled !== false) {
      const started = startNodeStreamAdmission({ chain: config.chain, ...(config.stream ? { stream: config.stream } : {}), ...withLogger });
      streamAdmission = started.admission;
      epochTiming = () => started.epochTiming();
      cleanup.push(() => started.close());
    }
    if (roles.includes("commercial") && config.commercial) {
      const started = await startNodeCommercial({
        identity,
        config: config.commercial,
        consensus: () => directory?.current(),
        ...(config.chain ? { chain: config.chain } : {}),
        flush: () => late.driver?.run(() => undefined),
        ...withLogger,
      });
      commercial = started;
      cleanup.push(() => started.close());
    }
  } catch (err) {
    await unwind();
    throw err;
  }

  const services: Record<string, LocalService> = {};
  const counters: RunningNode["services"] = {};
  for (const name of config.onion?.services ?? []) {
    const made = name === "echo" ? createEchoService() : createDiscardService();
    services[name] = made.service;
    counters[name] = made.counters;
  }
  // Clients reach this node's DHT through circuits: a "dht" service on the last hop
  // (the node runs lookups for them and co-signs what they publish). Its replies are
  // sent after an await, outside the relay's round, so it flushes the driver itself.
  services["dht"] = dhtProxyService(() => dht?.node, {
    publisherSecretKey: identity.secretKey,
    flush: () => late.driver?.run(() => undefined),
    ...withLogger,
  });
  if (authority) services["authority"] = authority.circuitService;
  if (oracleService) services["oracle"] = oracleService.circuitService;
  if (commercial) services[COMMERCIAL_SERVICE] = commercial.service;
  // Every onion node holds presence points, forwards introductions and hosts rendezvous.
  const presence = startNodePresence({
    identity,
    dht: () => dht?.node,
    consensus: () => directory?.current(),
    flush: () => late.driver?.run(() => undefined),
    ...(options.verifyCertificate ? { verifyCertificate: options.verifyCertificate } : {}),
    ...withLogger,
  });
  cleanup.push(() => presence.close());
  Object.assign(services, presence.services);
  // Landing and distribution: stream links arrive on the link port (ALPN psp-stream/1), creation requests through circuits.
  let streams: StreamHost | undefined;
  let usage: NodeUsage | undefined;
  if (streamAdmission) {
    // What this node carries is metered and reported to the oracles (rewards); tests without a chain may inject admission alone.
    if (epochTiming) {
      const started = startNodeUsage({
        identity,
        rpc,
        consensus: () => directory?.current(),
        internalAddress: (peer) => directory?.internalAddresses(peer)?.[0],
        epoch: epochTiming,
        ...(config.rewards?.reportIntervalSeconds === undefined ? {} : { intervalSeconds: config.rewards.reportIntervalSeconds }),
        ...withLogger,
      });
      usage = started;
      cleanup.push(() => started.close());
    }
    const replayStore = new ReceiptReplayStore(config.dataDir !== undefined ? join(config.dataDir, "stream-receipts.db") : ":memory:");
    const host = new StreamHost({
      identity,
      admission: streamAdmission,
      ...(usage ? { usage: usage.meter } : {}),
      replayStore,
      advertised,
      // A public stream's record goes into the DHT through this node's own DhtNode.
      publishPublic: async (record) => {
        if (!dht) throw new NodeError("start-failed", "the DHT is not running yet");
        return await dht.node.publish(record);
      },
      ...withLogger,
    });
    streams = host;
    manager.setStreamHandler((socket) => host.handleSocket(socket));
    services["stream"] = streamCreationService(host, { flush: () => late.driver?.run(() => undefined), ...withLogger });
    cleanup.push(() => {
      manager.setStreamHandler(undefined);
      host.close();
      replayStore.close();
    });
  }
  Object.assign(services, options.services);
  if (options.wrapService) for (const [name, service] of Object.entries(services)) services[name] = options.wrapService(name, service);

  const relay = new OnionRelay({
    identity: identity.publicKey,
    onionKeys: [onionKey],
    now: performance.now(),
    services,
    // A client that chose a direct connection to a commercial node opens its stream at the first hop.
    firstHopServices: services[COMMERCIAL_SERVICE] ? [...PRESENCE_FIRST_HOP_SERVICES, COMMERCIAL_SERVICE] : PRESENCE_FIRST_HOP_SERVICES,
    ...(config.onion?.limits ? { limits: config.onion.limits } : {}),
    ...(config.onion?.allowStreamsAtFirstHop === undefined ? {} : { allowStreamsAtFirstHop: config.onion.allowStreamsAtFirstHop }),
    ...(config.onion?.protoId === undefined ? {} : { protoId: config.onion.protoId }),
    // Only a relay the consensus lists: without a consensus every link keeps the client budget (a self-made identity must not get more).
    isListedRelay: (peer) => ((listedFlags().get(hex(peer)) ?? 0) & NodeFlag.onion) !== 0,
  });
  const onionDriver = new OnionDriver({
    manager,
    machine: relay,
    // An EXTEND2 naming an internal node by identity alone: its address comes from the node-only view this node keeps.
    resolveAddresses: (peer) => directory?.internalAddresses(peer),
    ...(options.outboundHook ? { outboundHook: options.outboundHook } : {}),
    ...withLogger,
  });
  late.driver = onionDriver;

  let dht: NodeDht;
  let api: ControlApi | undefined;
  const info: NodeInfo = {
    identity: hex(identity.publicKey),
    onionKey: hex(onionKey.publicKey),
    host: advertised.host,
    port: advertised.port,
    roles,
    dhtAddress: formatLinkAddress(advertised.host, advertised.port),
    controlApi: null,
  };
  const startedAt = Date.now();
  try {
    dht = startNodeDht({ identity, rpc, advertised, config: config.dht ?? {}, dataDir: config.dataDir, ...withLogger });
    cleanup.push(() => dht.close());
    if (config.directory) {
      const started = startNodeDirectory({
        identity,
        onionPublicKey: onionKey.publicKey,
        roles,
        ...(commercial ? { apps: commercial.appIds } : {}),
        advertised,
        manager,
        rpc,
        config: config.directory,
        dataDir: config.dataDir,
        ...withLogger,
      });
      directory = started;
      cleanup.push(() => started.close());
      // Every new consensus re-seeds the DHT from random nodes of it (S/Kademlia bootstrap from the node list).
      // reseed() logs a failed lookup itself; what reaches here (a bad consensus entry, the store) is logged and counted too.
      started.onConsensus(
        (consensus) => void dht.reseed(consensusPeers(consensus)).catch((err: unknown) => logFailure(log, err, "reseed the DHT from the consensus")),
      );
    }
    if (config.api !== false) {
      const sources: NodeApiSources = { info, startedAt, manager, rpc, relay, dht, directory, authority, oracle, presence, logEvents };
      Object.assign(sources, { streams, oracleService, usage, chainRpcUrl: config.chain?.rpcUrl } satisfies Partial<NodeApiSources>);
      const apiAddress = config.api ?? { host: "127.0.0.1", port: 0 };
      const events = new NodeEventBus(nodeLogger);
      const watcher = watchNodeEvents(events, { manager, relay, dht, directory, presence, streams, usage }, withLogger);
      cleanup.push(() => watcher.close());
      // Beyond loopback every request needs the token made on first start (parseNodeConfig ensured a dataDir).
      let apiToken: string | undefined;
      if (!isLoopbackHost(apiAddress.host) && config.dataDir !== undefined) {
        const loaded = await loadOrCreateApiToken(config.dataDir);
        apiToken = loaded.token;
        if (loaded.narrowed) log.warn({ path: loaded.path }, "the control API token file was readable by others: narrowed to mode 0600");
        log.info({ path: loaded.path, created: loaded.created }, "the control API needs its bearer token");
      }
      try {
        api = await startControlApi({
          host: apiAddress.host,
          port: apiAddress.port,
          ...(apiToken !== undefined ? { token: apiToken } : {}),
          title: "PSP node control API",
          status: () => nodeStatus(sources),
          statusSchema: NODE_STATUS_SCHEMA,
          ...withLogger,
          routes: async (app, metrics) => {
            registerNodeMetrics(metrics, sources);
            mountNodeRoutes(app, sources);
            // GET /v1/events: the node's live event stream (events.ts).
            await mountNodeEvents(app, events, withLogger);
          },
        });
      } catch (err) {
        throw new NodeError("start-failed", `cannot serve the control API on ${apiAddress.host}:${apiAddress.port}: ${(err as Error).message}`, { cause: err });
      }
      const started = api;
      cleanup.push(() => started.close());
      info.controlApi = api.url;
    }
  } catch (err) {
    await unwind();
    throw err;
  }
  // Bootstrap in the background: seeds may still be starting; maintenance refreshes later.
  const seeds = config.dht?.seeds ?? [];
  void dht.bootstrapFrom(seeds).catch((err: unknown) => logFailure(log, err, "bootstrap the DHT"));
  const pathNode: PathNode = {
    identity: identity.publicKey,
    onionKey: onionKey.publicKey,
    // An outbound-only internal node has no address: as clients see it in the consensus, never a first hop.
    host: outboundOnly ? "" : advertised.host,
    port: advertised.port,
    flags: outboundOnly ? ["running", "internal"] : ["running"],
  };
  let closing: Promise<void> | undefined;
  log.debug({ ...info }, "node started");
  return {
    info,
    logger: nodeLogger ?? silentLogger(),
    pathNode,
    manager,
    rpc,
    relay,
    driver: onionDriver,
    dht,
    directory,
    authority,
    oracle,
    oracleService,
    commercial,
    presence,
    streams,
    api,
    services: counters,
    async createOnionClient(options = {}) {
      const held = directory?.current();
      const nodes = options.nodes ?? (held ? onionPathNodes(held) : []);
      if (nodes.length === 0)
        throw new NodeError("start-failed", "no consensus is held yet and no nodes were given: wait for GET /v1/consensus, or pass options.nodes");
      // The node's own clients log beneath it, as "client.onion", "client.circuits", ...
      const client = await createOnionClient({ ...(nodeLogger ? { logger: childLogger(nodeLogger, "client") } : {}), ...options, nodes });
      if (!options.nodes) directory?.onConsensus((c) => client.setNodes(onionPathNodes(c)));
      return client;
    },
    close() {
      if (!closing) log.info("node shutting down");
      closing ??= unwind();
      return closing;
    },
  };
}

/** A PathNode from a NodeInfo (what `psp node run` prints), for clients. */
export function pathNodeFromInfo(info: NodeInfo, flags: readonly string[] = ["running"]): PathNode {
  const key = (field: string, v: string): Uint8Array => {
    if (!/^[0-9a-f]{64}$/i.test(v)) throw new NodeError("bad-config", `node info ${field} must be 64 hex digits`);
    return Uint8Array.from(Buffer.from(v, "hex"));
  };
  return { identity: key("identity", info.identity), onionKey: key("onionKey", info.onionKey), host: info.host, port: info.port, flags };
}

/**
 * The consensus client every node and client runs: fetches the consensus
 * from any node it knows (discovery nodes, or any node that proxies it),
 * verifies K of N signatures against its trust set, keeps the last good one
 * on disk, refreshes at a random time after fresh-until, and serves what it
 * holds to others (every node proxies the consensus, docs/spec/directory.md §7).
 *
 * Owns: the fetch loop (source order, conditional and compressed fetches,
 * retries), the consensus file (written atomically: temp file + rename, so
 * a crash never leaves half a document; a bad or expired file is ignored,
 * never trusted), and the "directory" handler of a node that is not a
 * discovery node. Trusts verifyConsensus (through ConsensusCache) and
 * nothing any source sends.
 */
import { EventEmitter } from "node:events";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { sha256 } from "../crypto/kdf.js";
import type { PeerAddress } from "../link/manager.js";
import { childLogger, logFailure, throttledFailureLog } from "../log.js";
import type { Logger } from "../log.js";
import { decodeAddress } from "./address.js";
import { ConsensusCache } from "./cache.js";
import type { OfferResult } from "./cache.js";
import { decompressConsensus } from "./compression.js";
import { DEFAULT_LIMITS, builtInDiscoveryTrust, resolveTrust } from "./config.js";
import type { DiscoveryTrust } from "./config.js";
import type { VerifiedConsensus } from "./consensus.js";
import { DirectoryError } from "./errors.js";
import { answerFetchInternal, listedIn } from "./internal.js";
import type { InternalViewSource } from "./internal.js";
import { bytesEqual } from "../base/bytes.js";
import { DIRECTORY_SERVICE, decodeDirectoryRequest, encodeDirectoryResponse, errorResponse } from "./messages.js";
import type { DirectoryRequest, DirectoryResponse } from "./messages.js";
import { consensusToPathNodes } from "./path-nodes.js";
import type { PathNodesOptions } from "./path-nodes.js";
import type { PathNode } from "../onion/path.js";
import type { RefreshRole } from "./schedule.js";
import { DEFAULT_DIRECTORY_TIMEOUT_MS, directoryRequest, peerName } from "./transport.js";
import type { DirectoryRpc } from "./transport.js";

/** Something that serves consensus bytes (a ConsensusCache, a ConsensusClient, a discovery service). */
export interface ConsensusSource {
  serve(now: number): Uint8Array | undefined;
  serveCompressed(now: number): Uint8Array | undefined;
}

/** The answer to a fetch-consensus request from what `source` holds. */
export function answerFetchConsensus(source: ConsensusSource, request: Extract<DirectoryRequest, { type: "fetch-consensus" }>, now: number): DirectoryResponse {
  const bytes = source.serve(now);
  if (!bytes) return { type: "no-consensus" };
  if (request.ifNoneMatch && bytesEqual(sha256(bytes), request.ifNoneMatch)) return { type: "not-modified" };
  if (request.compressed) {
    const compressed = source.serveCompressed(now);
    if (compressed) return { type: "consensus", compressed: true, document: compressed };
  }
  return { type: "consensus", compressed: false, document: bytes };
}

/** What a node that is not a discovery node serves besides the consensus. */
export interface ServeConsensusOptions {
  /** The internal nodes' view this node fetched (an InternalDirectory); without it fetch-internal is "not-served". */
  internal?: InternalViewSource;
  /** Who may fetch that view (a peer's proven identity); default: listed in the consensus `source` holds, when it can say (ConsensusClient), else nobody. */
  isKnownNode?: (identity: Uint8Array) => boolean;
}

/**
 * Registers the "directory" handler of a node that is not a discovery node:
 * it answers fetch-consensus from `source`, fetch-internal (known nodes only)
 * from `options.internal`, and refuses everything else with "not-served".
 * (A discovery node registers startDiscoveryService's handler instead.)
 */
export function serveConsensus(rpc: DirectoryRpc, source: ConsensusSource, now: () => number = Date.now, options: ServeConsensusOptions = {}): void {
  const held = (source as Partial<Pick<ConsensusClient, "current">>).current;
  const isKnownNode = options.isKnownNode ?? (typeof held === "function" ? listedIn(() => held.call(source)) : () => false);
  rpc.serve(DIRECTORY_SERVICE, async (bytes, ctx) => {
    let response: DirectoryResponse;
    try {
      const request = decodeDirectoryRequest(bytes);
      if (request.type === "fetch-consensus") response = answerFetchConsensus(source, request, now());
      else if (request.type === "fetch-internal" && options.internal) response = answerFetchInternal(options.internal, ctx.peer, isKnownNode, now());
      else response = { type: "error", kind: "not-served", message: `this node is not a discovery node; send ${request.type} to one` };
    } catch (err) {
      response = errorResponse(err);
    }
    return encodeDirectoryResponse(response);
  });
}

export interface ConsensusClientOptions {
  rpc: DirectoryRpc;
  /** Trusted discovery keys and K; default the built-in set (empty until launch: pass your network's). */
  trust?: DiscoveryTrust;
  /** Nodes to fetch from (discovery nodes or any node); called on each refresh when a function. */
  sources: readonly PeerAddress[] | (() => readonly PeerAddress[]);
  /** Also fetch from nodes listed in the held consensus (default true), so load spreads over caches. */
  useConsensusNodes?: boolean;
  /** Where the last good consensus is kept across restarts (none: memory only). */
  file?: string;
  /** "cache" (a node that proxies) refreshes early; "client" later (schedule.ts). Default "client". */
  role?: RefreshRole;
  /** Ask for brotli bytes (default true). */
  compressed?: boolean;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
  /** Wait before trying again after a failed or useless refresh (default 30 s). */
  retryMs?: number;
  /** Sources tried per refresh before giving up until retryMs (default 6). */
  maxAttempts?: number;
  clockSkewMs?: number;
  random?: () => number;
  now?: () => number;
  /** Logs as component "consensus": refresh failures (throttled warnings), each source's failure (debug, counted), accepted consensuses. */
  logger?: Logger;
}

export type LoadResult = { loaded: true; validAfter: number } | { loaded: false; reason: "no-file" | DirectoryError["kind"]; message: string };

export interface ConsensusClientEvents {
  /** A consensus was accepted (fetched, offered or loaded). */
  consensus: [VerifiedConsensus];
  /** A source's answer was refused or the source failed (the held consensus is unchanged). */
  "fetch-error": [PeerAddress, DirectoryError];
}

export interface FetchStats {
  fetches: number;
  accepted: number;
  notModified: number;
  /** Refusals and failures by DirectoryError kind. */
  failures: Record<string, number>;
}

export class ConsensusClient extends EventEmitter<ConsensusClientEvents> implements ConsensusSource {
  readonly cache: ConsensusCache;
  readonly stats: FetchStats = { fetches: 0, accepted: 0, notModified: 0, failures: {} };
  private readonly options: ConsensusClientOptions;
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private refreshing?: Promise<VerifiedConsensus | undefined>;
  private readonly log: Logger;
  /** A refresh is retried every retryMs while no source helps: one line a minute, each counted. */
  private readonly logRefreshFailure: ReturnType<typeof throttledFailureLog>;

  constructor(options: ConsensusClientOptions) {
    super();
    if (!options?.rpc) throw new DirectoryError("bad-config", "ConsensusClient needs rpc (createLinkRpc)");
    const trust = resolveTrust(options.trust ?? builtInDiscoveryTrust());
    this.options = options;
    this.now = options.now ?? Date.now;
    this.log = childLogger(options.logger, "consensus");
    this.logRefreshFailure = throttledFailureLog(this.log);
    this.cache = new ConsensusCache({ trustedKeys: trust.keys, threshold: trust.threshold, clockSkewMs: options.clockSkewMs ?? 0 });
  }

  /** The verified consensus while live. */
  current(): VerifiedConsensus | undefined {
    return this.cache.current(this.now());
  }

  /** The live consensus as path-selection input ([] when none is held). */
  pathNodes(options: PathNodesOptions = {}): PathNode[] {
    const held = this.current();
    return held ? consensusToPathNodes(held, options) : [];
  }

  serve(now: number): Uint8Array | undefined {
    return this.cache.serve(now);
  }

  serveCompressed(now: number): Uint8Array | undefined {
    return this.cache.serveCompressed(now);
  }

  /**
   * Verifies and keeps `bytes` if it improves on the held consensus; writes
   * it to the file when accepted. Throws DirectoryError when it does not verify.
   */
  offer(bytes: Uint8Array): OfferResult {
    const result = this.cache.offer(bytes, this.now());
    if (result === "accepted") {
      const held = this.cache.current(this.now()) as VerifiedConsensus;
      this.persist(held.bytes);
      this.log.info({ validAfter: held.validAfter, validUntil: held.validUntil, nodes: held.entries.length, signers: held.signers.length }, "consensus accepted");
      this.emit("consensus", held);
    }
    return result;
  }

  /** Loads the consensus file, if any. An unreadable, forged or expired file is reported and ignored. */
  load(): LoadResult {
    const file = this.options.file;
    if (!file) return { loaded: false, reason: "no-file", message: "no consensus file configured" };
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(file));
    } catch (err) {
      return { loaded: false, reason: "no-file", message: `cannot read ${file}: ${(err as Error).message}` };
    }
    try {
      const result = this.cache.offer(bytes, this.now());
      const held = this.cache.current(this.now()) as VerifiedConsensus;
      if (result === "accepted") this.emit("consensus", held);
      return { loaded: true, validAfter: held.validAfter };
    } catch (err) {
      if (!(err instanceof DirectoryError)) throw err;
      return { loaded: false, reason: err.kind, message: `${file}: ${err.message}` };
    }
  }

  /**
   * Fetches from one node and offers what it answers. Returns the offer's
   * result, or "not-modified". Throws DirectoryError ("unavailable" when the
   * node has none or cannot be reached; a verification kind when what it sent is refused).
   */
  async fetchFrom(peer: PeerAddress): Promise<OfferResult | "not-modified"> {
    this.stats.fetches++;
    try {
      const compressed = this.options.compressed ?? true;
      const held = this.cache.serve(this.now());
      const request: DirectoryRequest = { type: "fetch-consensus", compressed };
      if (held) request.ifNoneMatch = sha256(held);
      const response = await directoryRequest(this.options.rpc, peer, request, { timeoutMs: this.options.timeoutMs ?? DEFAULT_DIRECTORY_TIMEOUT_MS });
      if (response.type === "not-modified") {
        this.stats.notModified++;
        return "not-modified";
      }
      if (response.type === "no-consensus") throw new DirectoryError("unavailable", `${peerName(peer)} holds no live consensus`);
      if (response.type !== "consensus") throw new DirectoryError("malformed", `${peerName(peer)} answered ${response.type} to fetch-consensus`);
      const document = response.compressed ? decompressConsensus(response.document, DEFAULT_LIMITS.maxConsensusBytes) : response.document;
      const result = this.offer(document);
      if (result === "accepted") this.stats.accepted++;
      return result;
    } catch (err) {
      if (!(err instanceof DirectoryError)) throw err;
      this.stats.failures[err.kind] = (this.stats.failures[err.kind] ?? 0) + 1;
      // One source of several: the refresh as a whole is what a person needs to hear about.
      logFailure(this.log, err, "fetch consensus from a source", "debug", { source: peerName(peer) });
      this.emit("fetch-error", peer, err);
      throw err;
    }
  }

  /**
   * Tries sources (configured ones, then nodes of the held consensus, each
   * group shuffled) until one gives a newer or better-signed consensus, or
   * one answers "not-modified" while the held one is still fresh. Returns
   * the held consensus afterwards. Throws DirectoryError "unavailable" when
   * no source helped and nothing live is held.
   */
  refresh(): Promise<VerifiedConsensus | undefined> {
    this.refreshing ??= this.doRefresh().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async doRefresh(): Promise<VerifiedConsensus | undefined> {
    const before = this.current();
    const errors: string[] = [];
    for (const peer of this.candidates().slice(0, this.options.maxAttempts ?? 6)) {
      try {
        const result = await this.fetchFrom(peer);
        const held = this.current();
        if (result === "accepted") return held;
        // The source has nothing newer: good enough while ours is fresh.
        if (held && this.cache.isFresh(this.now())) return held;
        errors.push(`${peerName(peer)}: ${result}`);
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
      }
    }
    const held = this.current();
    if (held) return held;
    throw new DirectoryError("unavailable", `no consensus from any source${before ? "" : " (none held)"}: ${errors.join("; ") || "no sources configured"}`);
  }

  private candidates(): PeerAddress[] {
    const sources = typeof this.options.sources === "function" ? this.options.sources() : this.options.sources;
    const configured = shuffle([...sources], this.options.random);
    if (this.options.useConsensusNodes === false) return configured;
    const held = this.current();
    const seen = new Set(configured.map((p) => peerName(p)));
    const listed: PeerAddress[] = [];
    for (const entry of held?.entries ?? []) {
      const encoded = entry.encodedAddresses[0];
      if (!encoded) continue;
      const { host, port } = decodeAddress(encoded);
      const peer = { identity: entry.identity, host, port };
      if (!seen.has(peerName(peer))) listed.push(peer);
    }
    // Configured sources first (they are why the operator trusts this to work), then caches.
    return [...configured, ...shuffle(listed, this.options.random)];
  }

  /** Loads the file, fetches unless the loaded consensus is fresh, and keeps refreshing on schedule. */
  async start(): Promise<LoadResult> {
    this.stopped = false;
    const loaded = this.load();
    if (!loaded.loaded && loaded.reason !== "no-file") this.log.warn({ reason: loaded.reason }, `consensus file not used: ${loaded.message}`);
    // Without a consensus yet, the schedule below keeps retrying: the failure is logged, not thrown.
    if (!this.cache.isFresh(this.now())) await this.refresh().catch((err: unknown) => this.logRefreshFailure(err, "refresh consensus", "warn"));
    this.schedule();
    return loaded;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.stopped) return;
    const now = this.now();
    const retry = this.options.retryMs ?? 30_000;
    let at = this.cache.refreshAt(now, { role: this.options.role ?? "client", ...(this.options.random ? { random: this.options.random } : {}) });
    if (at <= now) at = now + retry;
    this.timer = setTimeout(() => {
      void this.refresh()
        .catch((err: unknown) => this.logRefreshFailure(err, "refresh consensus", "warn"))
        .finally(() => this.schedule());
    }, at - now);
    this.timer.unref();
  }

  private persist(bytes: Uint8Array): void {
    const file = this.options.file;
    if (!file) return;
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, bytes);
    renameSync(temp, file);
  }
}

function shuffle<T>(items: T[], random: () => number = Math.random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/** Creates a consensus client (see ConsensusClient); call start() to load, fetch and refresh. */
export function createConsensusClient(options: ConsensusClientOptions): ConsensusClient {
  return new ConsensusClient(options);
}

/**
 * The discovery service on the network: drives a DiscoveryNode (discovery-node.ts)
 * with real time and real links.
 *
 * Owns: the "directory" RPC handler of a discovery node (descriptors in,
 * votes and signatures in, votes and the consensus out); reachability tests
 * (dial each node's first address through the connection manager, expecting
 * the identity of its descriptor; a node with no address, an outbound-only
 * internal node, passes while it holds a link to us; success = running, kept through failed
 * probes for a grace of one period, reachability.ts) shortly before each
 * vote and on a node's first descriptor; carrying out the state machine's
 * actions (push the vote and signature to every other discovery node, fetch
 * missing votes); serving the latest published consensus, and to known
 * nodes only the internal nodes' view (their held descriptors, internal.ts);
 * counters for the control API; the "first-consensus" event.
 *
 * Trusts: the DiscoveryNode for every acceptance rule, the connection
 * manager for identity proofs, and the injected chain view. A peer's
 * refusal or silence is counted, never thrown out of a timer.
 */
import { EventEmitter } from "node:events";
import type { ConnectionManager, PeerAddress } from "../link/manager.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { decodeAddress } from "./address.js";
import { DiscoveryNode } from "./discovery-node.js";
import type { ChainApps, ChainRoles, DirectoryAction } from "./discovery-node.js";
import { ConsensusCache } from "./cache.js";
import { answerFetchConsensus } from "./client.js";
import type { ConsensusSource } from "./client.js";
import { bytesToHexFast } from "./config.js";
import type { DirectoryLimits, FlagThresholds, VotingSchedule } from "./config.js";
import type { VerifiedConsensus } from "./consensus.js";
import { openDescriptor } from "./descriptor.js";
import type { Descriptor } from "./descriptor.js";
import { DirectoryError } from "./errors.js";
import { DIRECTORY_SERVICE, decodeDirectoryRequest, encodeDirectoryResponse, errorResponse } from "./messages.js";
import type { DirectoryRequest, DirectoryResponse } from "./messages.js";
import { answerFetchInternal, internalViewOf, listedIn } from "./internal.js";
import type { InternalView, InternalViewSource } from "./internal.js";
import { afterSweep } from "./reachability.js";
import type { ProbeResult, ReachableSet } from "./reachability.js";
import { nextValidAfter, roundTimes } from "./schedule.js";
import { DEFAULT_DIRECTORY_TIMEOUT_MS, directoryRequest } from "./transport.js";
import type { DirectoryRpc } from "./transport.js";

export interface ReachabilityOptions {
  /** Tests one node; default: manager.getLink(peer) within timeoutMs (an open authenticated link counts). */
  probe?: (peer: PeerAddress) => Promise<boolean>;
  /** Per-probe deadline (default min(10 s, leadMs)). */
  timeoutMs?: number;
  /** How long before each vote the sweep starts (default a quarter of voteDelayMs). */
  leadMs?: number;
  /** Probes at once (default 32). */
  concurrency?: number;
  /** A node that fails a sweep stays reachable while its last success is this recent (default one voting period). */
  graceMs?: number;
}

export interface DiscoveryServiceOptions {
  rpc: DirectoryRpc;
  manager: ConnectionManager;
  /** This discovery node's 32-byte Ed25519 identity seed. */
  secretKey: Uint8Array;
  /** Public keys of the whole discovery set (from chain: NodeRegistry.discoverySet()), this node's included. */
  discoverySet: readonly Uint8Array[];
  chainRoles: ChainRoles;
  /** Confirms descriptors' application claims (commercial nodes, issue 17). */
  chainApps?: ChainApps;
  schedule?: Partial<VotingSchedule>;
  /** Link addresses of the other discovery nodes (this node's own entry, if present, is skipped). */
  peers: readonly PeerAddress[];
  reachability?: ReachabilityOptions;
  thresholds?: Partial<FlagThresholds>;
  threshold?: number;
  descriptorMaxAgeMs?: number;
  maxSkewMs?: number;
  limits?: Partial<DirectoryLimits>;
  /** How often the state machine is advanced (default min(1 s, period/20)). */
  tickMs?: number;
  /** Deadline for each request to another discovery node (default 10 s). */
  requestTimeoutMs?: number;
  /**
   * Who may fetch the internal nodes' view (a peer's proven identity). Default:
   * listed in the consensus this node holds, or a member of the discovery set.
   */
  isKnownNode?: (identity: Uint8Array) => boolean;
  now?: () => number;
  /**
   * Logs as component "discovery": refused descriptors, votes and signatures
   * and failed pushes at debug (counted), a round without a consensus and a
   * disagreement at warn, each published consensus at info.
   */
  logger?: Logger;
}

export interface DiscoveryServiceStats {
  descriptorsReceived: number;
  descriptorsAccepted: number;
  /** Refused descriptors by DirectoryError kind. */
  descriptorsRejected: Record<string, number>;
  votesCast: number;
  votesReceived: number;
  votesRejected: Record<string, number>;
  /** Pushes and fetches to other discovery nodes that failed, by kind. */
  peerFailures: Record<string, number>;
  signaturesReceived: number;
  signaturesRejected: Record<string, number>;
  disagreements: number;
  consensusFailures: Record<string, number>;
  consensusPublished: number;
  reachabilityProbes: number;
  reachable: number;
  lastConsensus?: { validAfter: number; signers: number; nodes: number; publishedAt: number };
}

export interface DiscoveryServiceEvents {
  /** The first consensus this node published (signed by ≥ K). */
  "first-consensus": [VerifiedConsensus];
  /** Every publication, re-publications with more signers included. */
  "consensus-published": [VerifiedConsensus];
  "consensus-failed": [Extract<DirectoryAction, { type: "consensus-failed" }>];
  disagreement: [Extract<DirectoryAction, { type: "consensus-disagreement" }>];
}

const bump = (counts: Record<string, number>, kind: string): void => {
  counts[kind] = (counts[kind] ?? 0) + 1;
};
const kindOf = (err: unknown): string => (err instanceof DirectoryError ? err.kind : "internal");
/** A peer's refused input is a debug line (counted); anything but a DirectoryError is a bug of ours. */
const refusalLevel = (err: unknown): "debug" | "error" => (err instanceof DirectoryError ? "debug" : "error");

export class DiscoveryService extends EventEmitter<DiscoveryServiceEvents> implements ConsensusSource, InternalViewSource {
  readonly node: DiscoveryNode;
  readonly stats: DiscoveryServiceStats = {
    descriptorsReceived: 0,
    descriptorsAccepted: 0,
    descriptorsRejected: {},
    votesCast: 0,
    votesReceived: 0,
    votesRejected: {},
    peerFailures: {},
    signaturesReceived: 0,
    signaturesRejected: {},
    disagreements: 0,
    consensusFailures: {},
    consensusPublished: 0,
    reachabilityProbes: 0,
    reachable: 0,
  };
  private readonly options: DiscoveryServiceOptions;
  private readonly now: () => number;
  private readonly peers: PeerAddress[];
  private readonly cache: ConsensusCache;
  private reachable: ReachableSet = new Map();
  private readonly probing = new Set<string>();
  private readonly sweptRounds = new Set<number>();
  private readonly leadMs: number;
  private readonly probeTimeoutMs: number;
  private readonly graceMs: number;
  private timer?: NodeJS.Timeout;
  private published = false;
  private readonly log: Logger;
  private readonly isKnownNode: (identity: Uint8Array) => boolean;

  constructor(options: DiscoveryServiceOptions) {
    super();
    if (!options?.rpc || !options.manager) throw new DirectoryError("bad-config", "startDiscoveryService needs rpc (createLinkRpc) and manager (the node's ConnectionManager)");
    this.options = options;
    this.now = options.now ?? Date.now;
    this.log = childLogger(options.logger, "discovery");
    this.node = new DiscoveryNode({
      secretKey: options.secretKey,
      discoverySet: options.discoverySet,
      chainRoles: options.chainRoles,
      ...(options.chainApps ? { chainApps: options.chainApps } : {}),
      ...(options.schedule ? { schedule: options.schedule } : {}),
      ...(options.thresholds ? { thresholds: options.thresholds } : {}),
      ...(options.threshold !== undefined ? { threshold: options.threshold } : {}),
      ...(options.descriptorMaxAgeMs !== undefined ? { descriptorMaxAgeMs: options.descriptorMaxAgeMs } : {}),
      ...(options.maxSkewMs !== undefined ? { maxSkewMs: options.maxSkewMs } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
    });
    const own = bytesToHexFast(this.node.publicKey);
    this.peers = (options.peers ?? []).filter((p) => bytesToHexFast(p.identity) !== own);
    this.cache = new ConsensusCache({ trustedKeys: options.discoverySet, threshold: this.node.threshold });
    this.leadMs = options.reachability?.leadMs ?? Math.max(1, Math.floor(this.node.schedule.voteDelayMs / 4));
    this.probeTimeoutMs = options.reachability?.timeoutMs ?? Math.min(10_000, this.leadMs);
    this.graceMs = options.reachability?.graceMs ?? this.node.schedule.periodMs;
    const listed = listedIn(() => this.current());
    const discoveryKeys = new Set(options.discoverySet.map(bytesToHexFast));
    this.isKnownNode = options.isKnownNode ?? ((id) => discoveryKeys.has(bytesToHexFast(id)) || listed(id));
  }

  get publicKey(): Uint8Array {
    return this.node.publicKey;
  }

  /** Registers the "directory" handler and starts the clock. */
  start(): this {
    this.options.rpc.serve(DIRECTORY_SERVICE, async (bytes, ctx) => encodeDirectoryResponse(this.answer(bytes, ctx.peer)));
    const tickMs = this.options.tickMs ?? Math.max(10, Math.min(1000, Math.floor(this.node.schedule.periodMs / 20)));
    this.timer = setInterval(() => this.tick(), tickMs);
    this.tick();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The latest published consensus, verified against the discovery set. */
  current(): VerifiedConsensus | undefined {
    return this.cache.current(this.now());
  }

  serve(now: number): Uint8Array | undefined {
    return this.cache.serve(now);
  }

  serveCompressed(now: number): Uint8Array | undefined {
    return this.cache.serveCompressed(now);
  }

  /** Identities (hex) this node currently finds reachable. */
  reachableNodes(): string[] {
    return [...this.reachable.keys()];
  }

  /**
   * The internal nodes' view for the consensus this node holds: the newest
   * held descriptor of each node it flags internal.
   */
  internalView(now: number): InternalView | undefined {
    const held = this.cache.current(now);
    return held ? internalViewOf(held, this.node.heldDescriptors()) : undefined;
  }

  /**
   * Answers one request (the RPC handler's body; exposed for tests and
   * in-process use). `peer`: the requesting link's proven identity, null on
   * an anonymous link (the default), which is refused the internal view.
   */
  answer(bytes: Uint8Array, peer: Uint8Array | null = null): DirectoryResponse {
    const now = this.now();
    let request: DirectoryRequest;
    try {
      request = decodeDirectoryRequest(bytes);
    } catch (err) {
      return errorResponse(err);
    }
    switch (request.type) {
      case "publish-descriptor":
        return this.onDescriptor(request.descriptor, now);
      case "fetch-consensus":
        return answerFetchConsensus(this.cache, request, now);
      case "fetch-votes":
        return { type: "votes", votes: this.node.votesFor(request.validAfter, request.voters) };
      case "push-vote":
        try {
          const accepted = this.node.receiveVote(request.vote, now);
          if (accepted) this.stats.votesReceived++;
          return { type: "ok", accepted };
        } catch (err) {
          bump(this.stats.votesRejected, kindOf(err));
          logFailure(this.log, err, "accept vote", refusalLevel(err));
          return errorResponse(err);
        }
      case "push-signature":
        try {
          this.stats.signaturesReceived++;
          this.handle(this.node.receiveSignature(request.signature, now));
          return { type: "ok", accepted: true };
        } catch (err) {
          bump(this.stats.signaturesRejected, kindOf(err));
          logFailure(this.log, err, "accept consensus signature", refusalLevel(err));
          return errorResponse(err);
        }
      case "fetch-internal":
        return answerFetchInternal(this, peer, this.isKnownNode, now);
    }
  }

  private onDescriptor(bytes: Uint8Array, now: number): DirectoryResponse {
    this.stats.descriptorsReceived++;
    try {
      const accepted = this.node.submitDescriptor(bytes, now);
      if (accepted) {
        this.stats.descriptorsAccepted++;
        const identity = openDescriptor(bytes).identity;
        const descriptor = this.node.heldDescriptors().find((d) => bytesToHexFast(d.identity) === bytesToHexFast(identity));
        // A node heard of for the first time is tested at once, so it can be in the next vote.
        if (descriptor && !this.reachable.has(bytesToHexFast(descriptor.identity))) void this.probeOne(descriptor);
      }
      return { type: "ok", accepted };
    } catch (err) {
      bump(this.stats.descriptorsRejected, kindOf(err));
      logFailure(this.log, err, "accept descriptor", refusalLevel(err));
      return errorResponse(err);
    }
  }

  private tick(): void {
    const now = this.now();
    const upcoming = nextValidAfter(now, this.node.schedule);
    const { voteAt } = roundTimes(upcoming, this.node.schedule);
    if (now >= voteAt - this.leadMs && now < voteAt && !this.sweptRounds.has(upcoming)) {
      this.sweptRounds.add(upcoming);
      for (const round of this.sweptRounds) if (round < upcoming) this.sweptRounds.delete(round);
      void this.sweep();
    }
    this.handle(this.node.tick(now));
  }

  private handle(actions: DirectoryAction[]): void {
    for (const action of actions) {
      switch (action.type) {
        case "broadcast-vote":
          this.stats.votesCast++;
          this.toPeers({ type: "push-vote", vote: action.vote });
          break;
        case "fetch-votes":
          void this.fetchVotes(action.validAfter, action.voters);
          break;
        case "broadcast-signature":
          this.toPeers({ type: "push-signature", signature: action.signature });
          break;
        case "consensus-published":
          this.onPublished(action.consensus);
          break;
        case "consensus-failed":
          bump(this.stats.consensusFailures, action.kind);
          logFailure(this.log, new DirectoryError(action.kind, action.message), "make consensus", "warn", { validAfter: action.validAfter });
          this.emit("consensus-failed", action);
          break;
        case "consensus-disagreement":
          this.stats.disagreements++;
          this.log.warn({ validAfter: action.validAfter, signer: bytesToHexFast(action.signer).slice(0, 16) }, "another discovery node signed a different consensus for this period");
          this.emit("disagreement", action);
          break;
      }
    }
  }

  private onPublished(bytes: Uint8Array): void {
    const now = this.now();
    try {
      this.cache.offer(bytes, now);
    } catch (err) {
      // Our own assembly failing verification would be a bug in the rules; count it, keep serving the last one.
      bump(this.stats.consensusFailures, kindOf(err));
      logFailure(this.log, err, "verify our own consensus", "error");
      return;
    }
    const held = this.cache.current(now);
    if (!held) return;
    this.stats.consensusPublished++;
    this.stats.lastConsensus = { validAfter: held.validAfter, signers: held.signers.length, nodes: held.entries.length, publishedAt: now };
    this.log.info({ validAfter: held.validAfter, signers: held.signers.length, nodes: held.entries.length }, "consensus published");
    if (!this.published) {
      this.published = true;
      this.emit("first-consensus", held);
    }
    this.emit("consensus-published", held);
  }

  private toPeers(request: DirectoryRequest): void {
    for (const peer of this.peers) {
      directoryRequest(this.options.rpc, peer, request, { timeoutMs: this.requestTimeout() }).catch((err: unknown) => {
        bump(this.stats.peerFailures, kindOf(err));
        logFailure(this.log, err, `send ${request.type} to a discovery node`, refusalLevel(err));
      });
    }
  }

  private requestTimeout(): number {
    // A push is useless after the step it serves: keep it inside the distribution window.
    return this.options.requestTimeoutMs ?? Math.min(DEFAULT_DIRECTORY_TIMEOUT_MS, this.node.schedule.distDelayMs);
  }

  private async fetchVotes(validAfter: number, voters: Uint8Array[]): Promise<void> {
    await Promise.all(
      this.peers.map(async (peer) => {
        try {
          const response = await directoryRequest(this.options.rpc, peer, { type: "fetch-votes", validAfter, voters }, { timeoutMs: this.requestTimeout() });
          if (response.type !== "votes") throw new DirectoryError("malformed", `answered ${response.type} to fetch-votes`);
          for (const vote of response.votes) {
            try {
              if (this.node.receiveVote(vote, this.now())) this.stats.votesReceived++;
            } catch (err) {
              bump(this.stats.votesRejected, kindOf(err));
              logFailure(this.log, err, "accept fetched vote", refusalLevel(err));
            }
          }
        } catch (err) {
          bump(this.stats.peerFailures, kindOf(err));
          logFailure(this.log, err, "fetch votes from a discovery node", refusalLevel(err));
        }
      }),
    );
  }

  /** Tests every held descriptor's node; the reachable set becomes what `afterSweep` makes of the results. */
  private async sweep(): Promise<void> {
    const descriptors = this.node.heldDescriptors().filter((d) => !d.bridge);
    const results: ProbeResult[] = [];
    const queue = [...descriptors];
    const workers = Array.from({ length: Math.min(queue.length, this.options.reachability?.concurrency ?? 32) }, async () => {
      for (let d = queue.shift(); d; d = queue.shift()) results.push({ key: bytesToHexFast(d.identity), identity: d.identity, ok: await this.test(d) });
    });
    await Promise.all(workers);
    this.reachable = afterSweep(this.reachable, results, this.now(), this.graceMs);
    this.publishReachable();
  }

  private async probeOne(descriptor: Descriptor): Promise<void> {
    const key = bytesToHexFast(descriptor.identity);
    if (this.probing.has(key)) return;
    this.probing.add(key);
    try {
      if (await this.test(descriptor)) {
        this.reachable.set(key, { identity: descriptor.identity, okAt: this.now() });
        this.publishReachable();
      }
    } finally {
      this.probing.delete(key);
    }
  }

  private publishReachable(): void {
    this.stats.reachable = this.reachable.size;
    this.node.setReachable([...this.reachable.values()].map((e) => e.identity));
  }

  private async test(descriptor: Descriptor): Promise<boolean> {
    const encoded = descriptor.encodedAddresses[0];
    if (!encoded) {
      // An internal node with outbound links only (no address, directory.md §12) cannot be dialed: it is running
      // while it holds an authenticated link to this discovery node (findLink: only links whose peer proved it).
      if (bytesToHexFast(descriptor.identity) === bytesToHexFast(this.node.publicKey)) return true;
      this.stats.reachabilityProbes++;
      return this.options.manager.findLink(descriptor.identity) !== undefined;
    }
    const { host, port } = decodeAddress(encoded);
    const peer: PeerAddress = { identity: descriptor.identity, host, port };
    if (bytesToHexFast(peer.identity) === bytesToHexFast(this.node.publicKey)) return true; // ourselves: the others test us
    this.stats.reachabilityProbes++;
    const probe = this.options.reachability?.probe ?? ((p: PeerAddress) => this.dial(p));
    try {
      return await probe(peer);
    } catch (err) {
      // Unreachable is the probe's answer, not a failure of ours.
      logFailure(this.log, err, "probe reachability", "debug");
      return false;
    }
  }

  private async dial(peer: PeerAddress): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), this.probeTimeoutMs);
    });
    try {
      return await Promise.race([this.options.manager.getLink(peer).then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Starts a discovery node on the network: registers the "directory" RPC
 * service and advances the voting schedule with real time. Listen for
 * "first-consensus" to learn when the first consensus is signed.
 */
export function startDiscoveryService(options: DiscoveryServiceOptions): DiscoveryService {
  return new DiscoveryService(options).start();
}

/**
 * Outbound links of an internal node that accepts no links (issue 20;
 * docs/spec/directory.md §12, the whitepaper's loosely connected mesh).
 *
 * Such a node publishes a descriptor with no address: nobody can dial it. It
 * is reached only over links it opens itself, so it keeps an authenticated
 * link to every neighbour it may be reached from: every trusted discovery
 * node (the discovery node's reachability test counts that link as
 * "running") and every public onion relay its consensus lists as running
 * (path selection only ever puts a public relay right before an internal
 * hop, onion/path.ts, so whichever relay extends to it holds such a link).
 *
 * Owns: the neighbour rule (outboundNeighbours), the redial backoff
 * (retryDelay) and the per-neighbour plan (OutboundLinkPlan, pure: fed with
 * the time, which links are open and dial outcomes), the keeper that carries
 * the plan out over a ConnectionManager (holding each neighbour's link with
 * link.acquire() so it never idle-closes, releasing links to nodes that are
 * no longer neighbours so they idle-close), and holdLinksFrom, the other
 * end's rule: a node holds the links an outbound-only node opened to it, so
 * its own idle timer does not close them either.
 *
 * Trusts: the consensus it is given (verified K of N) for who the
 * neighbours are; the link layer for identity proofs (getLink and findLink
 * only ever return links whose peer proved the identity asked for).
 */
import { hexOf } from "../base/hex.js";
import type { ConnectionManager, PeerAddress } from "../link/manager.js";
import type { Link } from "../link/link.js";
import { childLogger, logFailure, throttledFailureLog } from "../log.js";
import type { Logger } from "../log.js";
import { decodeAddress } from "./address.js";
import { NodeFlag } from "./config.js";
import type { ConsensusEntry } from "./consensus.js";
import { DirectoryError } from "./errors.js";
import { retryDelay } from "./internal-refresh.js";

export interface OutboundLinksOptions {
  /** First redial delay after a failed dial or a dropped link (ms, default 1 s). */
  minRetryMs: number;
  /** Longest redial delay (ms, default 60 s): the delay doubles per consecutive failure up to this. */
  maxRetryMs: number;
  /** How often the keeper looks at its neighbours besides link events (ms, default 5 s). */
  checkMs: number;
}

export const DEFAULT_OUTBOUND_LINKS: OutboundLinksOptions = { minRetryMs: 1_000, maxRetryMs: 60_000, checkMs: 5_000 };

/**
 * The neighbours of an outbound-only internal node: the trusted discovery
 * nodes (where they listen), then every entry the consensus lists as a
 * running onion relay with an address (public: not internal), without the
 * node itself, each identity once.
 */
export function outboundNeighbours(
  consensus: { entries: readonly ConsensusEntry[] } | undefined,
  discovery: readonly PeerAddress[],
  self: Uint8Array,
): PeerAddress[] {
  const own = hexOf(self);
  const out = new Map<string, PeerAddress>();
  for (const p of discovery) if (hexOf(p.identity) !== own) out.set(hexOf(p.identity), p);
  const wanted = NodeFlag.running | NodeFlag.onion;
  for (const e of consensus?.entries ?? []) {
    const key = hexOf(e.identity);
    const encoded = e.encodedAddresses[0];
    if (key === own || out.has(key) || !encoded || (e.flags & wanted) !== wanted || (e.flags & NodeFlag.internal) !== 0) continue;
    out.set(key, { identity: e.identity, ...decodeAddress(encoded) });
  }
  return [...out.values()];
}

interface NeighbourState {
  peer: PeerAddress;
  /** Failed dials and drops since the last link that stayed up for maxRetryMs. */
  failures: number;
  /** When the current link came up (undefined while none is up). */
  upSince: number | undefined;
  /** No dial before this time (ms). */
  nextAttemptAt: number;
  dialing: boolean;
}

/**
 * Which neighbours to dial now. Pure: `setNeighbours` with the current list,
 * `due(now, isOpen)` for the dials to start, and `dialed`/`dropped` with
 * outcomes. A neighbour with an open link is never dialed; one whose dial
 * failed (or whose link dropped) waits retryDelay(failures) first. The count
 * of failures starts again only when a link drops after staying up for at
 * least maxRetryMs, so a peer that accepts links and closes them at once is
 * redialed ever more slowly, like one that refuses them.
 */
export class OutboundLinkPlan {
  private readonly state = new Map<string, NeighbourState>();

  constructor(private readonly options: Pick<OutboundLinksOptions, "minRetryMs" | "maxRetryMs"> = DEFAULT_OUTBOUND_LINKS) {}

  /** Replaces the neighbour list; returns the identities (hex) that left it (their links are let go). */
  setNeighbours(peers: readonly PeerAddress[]): string[] {
    const keep = new Set<string>();
    for (const peer of peers) {
      const key = hexOf(peer.identity);
      keep.add(key);
      const held = this.state.get(key);
      if (held) held.peer = peer;
      else this.state.set(key, { peer, failures: 0, upSince: undefined, nextAttemptAt: 0, dialing: false });
    }
    const left: string[] = [];
    for (const key of [...this.state.keys()])
      if (!keep.has(key)) {
        this.state.delete(key);
        left.push(key);
      }
    return left;
  }

  /** Neighbours to dial at `now`: no open link, no dial under way, backoff elapsed. Marks them dialing. */
  due(now: number, isOpen: (identity: Uint8Array) => boolean): PeerAddress[] {
    const out: PeerAddress[] = [];
    for (const s of this.state.values()) {
      if (s.dialing || isOpen(s.peer.identity) || now < s.nextAttemptAt) continue;
      s.dialing = true;
      out.push(s.peer);
    }
    return out;
  }

  /** A dial finished: success starts the link's uptime, failure doubles the wait. */
  dialed(identity: Uint8Array, ok: boolean, now: number): void {
    const s = this.state.get(hexOf(identity));
    if (!s) return;
    s.dialing = false;
    if (ok) this.opened(identity, now);
    else {
      s.failures++;
      s.nextAttemptAt = now + retryDelay(s.failures, this.options.minRetryMs, this.options.maxRetryMs);
    }
  }

  /** A link to the neighbour is open (dialed here or elsewhere, e.g. by the descriptor publisher). */
  opened(identity: Uint8Array, now: number): void {
    const s = this.state.get(hexOf(identity));
    if (!s) return;
    s.upSince ??= now;
    s.nextAttemptAt = 0;
  }

  /** A held link dropped: redial after the backoff, so a peer that keeps closing it is not hammered. */
  dropped(identity: Uint8Array, now: number): void {
    const s = this.state.get(hexOf(identity));
    if (!s) return;
    const stable = s.upSince !== undefined && now - s.upSince >= this.options.maxRetryMs;
    s.failures = stable ? 1 : s.failures + 1;
    s.upSince = undefined;
    s.nextAttemptAt = now + retryDelay(s.failures, this.options.minRetryMs, this.options.maxRetryMs);
  }

  /** Whether `identity` (hex) is a neighbour. */
  has(key: string): boolean {
    return this.state.has(key);
  }

  /** When the next backoff after `now` ends, if any neighbour waits on one (one already over is for due() to act on). */
  nextDueAt(now: number): number | undefined {
    let next: number | undefined;
    for (const s of this.state.values()) if (s.nextAttemptAt > now && (next === undefined || s.nextAttemptAt < next)) next = s.nextAttemptAt;
    return next;
  }

  get size(): number {
    return this.state.size;
  }
}

export interface OutboundLinkStats {
  /** Neighbours the node should hold a link to. */
  neighbours: number;
  /** Links held open now. */
  linksHeld: number;
  dials: number;
  dialFailures: number;
  /** Held links that closed (each is redialed after the backoff). */
  linksDropped: number;
}

export interface StartOutboundLinksOptions {
  manager: ConnectionManager;
  /** Our own identity (never dialed). */
  self: Uint8Array;
  /** The neighbours now (outboundNeighbours of the held consensus); asked on every check. */
  neighbours: () => PeerAddress[];
  options?: Partial<OutboundLinksOptions>;
  clock?: () => number;
  /** Logs as component "outbound": dial failures at debug, losing every discovery link at warn. */
  logger?: Logger;
}

export interface OutboundLinks {
  readonly stats: OutboundLinkStats;
  /** Looks at the neighbours now (e.g. after a new consensus). */
  check(): void;
  /** Releases every held link (they idle-close) and stops. */
  stop(): void;
}

/**
 * Keeps links to the neighbours: dials those without an open link (backoff
 * between failures), holds every open one so it does not idle-close, lets go
 * of links to nodes that are no longer neighbours.
 */
export function startOutboundLinks(start: StartOutboundLinksOptions): OutboundLinks {
  const options = { ...DEFAULT_OUTBOUND_LINKS, ...start.options };
  if (!(options.minRetryMs > 0) || options.maxRetryMs < options.minRetryMs || !(options.checkMs > 0))
    throw new DirectoryError("bad-config", "outbound links: minRetryMs and checkMs must be positive and maxRetryMs at least minRetryMs");
  const { manager } = start;
  const clock = start.clock ?? (() => performance.now());
  const log = childLogger(start.logger, "outbound");
  const logRepeating = throttledFailureLog(log);
  const plan = new OutboundLinkPlan(options);
  const holds = new Map<string, { link: Link; release: () => void }>();
  const stats: OutboundLinkStats = { neighbours: 0, linksHeld: 0, dials: 0, dialFailures: 0, linksDropped: 0 };
  let stopped = false;
  let soon: NodeJS.Timeout | undefined;

  const hold = (link: Link): void => {
    const key = hexOf(link.peerIdentity as Uint8Array);
    const held = holds.get(key);
    if (held?.link === link) return;
    held?.release();
    holds.set(key, { link, release: link.acquire() });
    stats.linksHeld = holds.size;
  };
  const letGo = (key: string): void => {
    holds.get(key)?.release();
    holds.delete(key);
    stats.linksHeld = holds.size;
  };
  const check = (): void => {
    if (stopped) return;
    for (const key of plan.setNeighbours(start.neighbours().filter((p) => hexOf(p.identity) !== hexOf(start.self)))) letGo(key);
    stats.neighbours = plan.size;
    for (const [key, held] of holds) if (!held.link.isOpen) letGo(key);
    // Links open now (whoever dialed them) are held; a neighbour's link the manager swapped for its duplicate is re-held.
    for (const link of manager.links()) {
      const peer = link.peerIdentity;
      if (peer && plan.has(hexOf(peer)) && manager.findLink(peer) === link) {
        hold(link);
        plan.opened(peer, clock());
      }
    }
    const now = clock();
    for (const peer of plan.due(now, (id) => manager.findLink(id) !== undefined)) {
      stats.dials++;
      manager.getLink(peer).then(
        (link) => {
          plan.dialed(peer.identity, true, clock());
          if (stopped || !plan.has(hexOf(peer.identity))) return;
          hold(link);
        },
        (err: unknown) => {
          stats.dialFailures++;
          plan.dialed(peer.identity, false, clock());
          if (stopped) return;
          logFailure(log, err, "open an outbound link to a neighbour", "debug", { peer: hexOf(peer.identity).slice(0, 16) });
          schedule();
        },
      );
    }
    schedule();
  };
  /** One timer: the sooner of the next backoff end and the periodic check. */
  const schedule = (): void => {
    if (stopped) return;
    if (soon) clearTimeout(soon);
    const next = plan.nextDueAt(clock());
    const delay = Math.min(options.checkMs, next === undefined ? Infinity : Math.max(0, next - clock()));
    soon = setTimeout(check, delay);
    soon.unref();
  };
  const onClosed = (link: Link): void => {
    const peer = link.peerIdentity;
    if (stopped || !peer) return;
    const key = hexOf(peer);
    if (holds.get(key)?.link !== link) return;
    letGo(key);
    stats.linksDropped++;
    plan.dropped(peer, clock());
    if (manager.findLink(peer) === undefined) {
      // A node that loses its link to a discovery node is no longer "running" there once the grace passes.
      logRepeating(
        new DirectoryError("unavailable", `the link to neighbour ${key.slice(0, 16)} closed; redialing with backoff`),
        "keep outbound links",
        "info",
      );
    }
    schedule();
  };
  const onLink = (link: Link): void => {
    const peer = link.peerIdentity;
    if (!stopped && peer && plan.has(hexOf(peer)) && manager.findLink(peer) === link) {
      hold(link);
      plan.opened(peer, clock());
    }
  };
  manager.on("linkClosed", onClosed);
  manager.on("link", onLink);
  check();
  return {
    stats,
    check,
    stop() {
      stopped = true;
      if (soon) clearTimeout(soon);
      manager.off("linkClosed", onClosed);
      manager.off("link", onLink);
      for (const key of [...holds.keys()]) letGo(key);
    },
  };
}

/**
 * The other end: holds every open link whose peer `isOutboundOnly` says
 * cannot be dialed back (its descriptor has no address), so this node's idle
 * timer never closes the only way to reach it. Re-evaluate with `check()`
 * when the answer may have changed (a new node-only view).
 */
export function holdLinksFrom(
  manager: ConnectionManager,
  isOutboundOnly: (identity: Uint8Array) => boolean,
): { check(): void; stop(): void; readonly held: number } {
  const holds = new Map<Link, () => void>();
  const consider = (link: Link): void => {
    const peer = link.peerIdentity;
    const want = link.isOpen && peer !== undefined && isOutboundOnly(peer);
    const release = holds.get(link);
    if (want && !release) holds.set(link, link.acquire());
    else if (!want && release) {
      release();
      holds.delete(link);
    }
  };
  const onClosed = (link: Link): void => {
    holds.get(link)?.();
    holds.delete(link);
  };
  manager.on("link", consider);
  manager.on("linkClosed", onClosed);
  return {
    check() {
      for (const link of manager.links()) consider(link);
      for (const link of [...holds.keys()]) if (!link.isOpen) onClosed(link);
    },
    stop() {
      manager.off("link", consider);
      manager.off("linkClosed", onClosed);
      for (const release of holds.values()) release();
      holds.clear();
    },
    get held() {
      return holds.size;
    },
  };
}

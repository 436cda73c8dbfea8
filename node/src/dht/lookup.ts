/**
 * The S/Kademlia iterative lookup over d disjoint paths (Baumgart & Mies
 * 2007, §4.4), free of I/O: it calls a `query` function the node supplies.
 *
 * The initiator's k closest contacts are dealt round-robin into d paths.
 * Each path runs an ordinary Kademlia lookup with at most `alpha` queries in
 * flight and its own shortlist, fed only by the replies to its own queries.
 * A node is queried by at most one path during the whole lookup: when a path
 * reaches a node another path already queried (or is querying), it skips it
 * and the skipped node does not count towards the path's window. So a
 * colluding adversary that captures one path cannot steer the others onto
 * its nodes, and the lookup survives while one path stays honest.
 *
 * Termination, per path (all three must hold, or the message cap is hit):
 * - window: the w (`window`) closest entries of its shortlist that did not
 *   fail have been queried by this path and answered. w = k is Kademlia's
 *   rule; a small w (default 2) ends a path soon after it converged.
 * - first-reply breadth: the b (`firstReplyBreadth`) closest referrals in the
 *   reply of each initial contact have been queried. A path whose first
 *   honest reply put an adversary first is captured by that adversary's
 *   colluders; the next referrals of that honest reply are its way back.
 *   Measured in the simulator, this buys more success per message than a
 *   wider window (docs/spec/dht.md).
 * - value lookups end everything once `valueQuorum` valid values arrived.
 *
 * Messages = queries sent (one per RPC; its response is not counted; a query
 * that times out counts).
 *
 * Trusts: `query` to return only verified contacts and validated values.
 */
import { DhtError } from "./errors.js";
import { compareDistance, idHex } from "./id.js";
import type { NodeId } from "./id.js";
import { contactHex } from "./contact.js";
import type { Contact } from "./contact.js";

export interface LookupReply<V> {
  /** Contacts the queried node returned (closer nodes). */
  contacts: readonly Contact[];
  /** A value, for value lookups, already validated by the caller. */
  value?: V;
}

export interface LookupOptions<V> {
  target: NodeId;
  /** Starting contacts, usually the local k closest to the target. */
  initial: readonly Contact[];
  /** Sends one query; rejects when the node fails or answers badly. `path` is for accounting only. */
  query: (contact: Contact, path: number) => Promise<LookupReply<V>>;
  /** d: number of disjoint paths (1 = plain Kademlia lookup). */
  disjointPaths: number;
  /** Queries in flight per path. */
  alpha: number;
  /** k: size of the result and of each path's convergence window. */
  resultSize: number;
  /** Hard cap on queries sent by this lookup. */
  maxMessages: number;
  /** Never queried (the local node). */
  localId?: NodeId;
  /** Value lookups stop once this many values arrived (default 1). */
  valueQuorum?: number;
  /** w: a path ends once the w closest non-failed entries of its shortlist answered it (default resultSize, Kademlia's rule). */
  window?: number;
  /** b: the b closest referrals in each initial contact's reply are queried by its path before the path ends (default 0). */
  firstReplyBreadth?: number;
}

/** One node that answered, with how it was reached. */
export interface ReachedNode {
  contact: Contact;
  /** Referral depth: 1 for an initial contact, n+1 for a node learned from a depth-n reply. */
  hops: number;
  /** The path that queried it. */
  path: number;
}

export interface LookupResult<V> {
  /** Up to k nodes that answered, closest to the target first. */
  closest: ReachedNode[];
  /** Values received, in arrival order. */
  values: Array<{ value: V; from: ReachedNode }>;
  /** Every query sent, in order: which node, which path, whether it answered. */
  queried: Array<ReachedNode & { answered: boolean }>;
  /** Queries sent. */
  messages: number;
  /** Queries that failed (timeout, unreachable, bad reply). */
  failures: number;
  /** True when the message cap stopped the lookup early. */
  capped: boolean;
}

type EntryState = "pending" | "inflight" | "answered" | "failed" | "taken";

interface PathEntry {
  contact: Contact;
  hex: string;
  hops: number;
  state: EntryState;
  /** Queried even outside the window (first-reply breadth). */
  required: boolean;
}

interface PathState {
  index: number;
  /** Sorted by distance to the target, closest first. */
  shortlist: PathEntry[];
  known: Set<string>;
}

export function checkLookupOptions(o: { disjointPaths: number; alpha: number; resultSize: number; maxMessages: number; window?: number; firstReplyBreadth?: number }): void {
  const check = (v: number, name: string, max: number): void => {
    if (!Number.isInteger(v) || v < 1 || v > max) throw new DhtError("bad-config", `${name} must be an integer in 1..${max}, got ${v}`);
  };
  check(o.disjointPaths, "disjointPaths (d)", 64);
  check(o.alpha, "alpha", 64);
  check(o.resultSize, "resultSize (k)", 1024);
  check(o.maxMessages, "maxMessages", 1_000_000);
  if (o.window !== undefined) check(o.window, "window (w)", o.resultSize);
  if (o.firstReplyBreadth !== undefined && o.firstReplyBreadth !== 0) check(o.firstReplyBreadth, "firstReplyBreadth (b)", o.resultSize);
}

/** Runs a disjoint-path lookup. Never rejects for node failures; throws DhtError "bad-config" for bad options. */
export async function disjointLookup<V>(options: LookupOptions<V>): Promise<LookupResult<V>> {
  checkLookupOptions(options);
  const { target, disjointPaths: d, alpha, resultSize: k, maxMessages } = options;
  const quorum = options.valueQuorum ?? 1;
  const w = options.window ?? k;
  const breadth = options.firstReplyBreadth ?? 0;
  const localHex = options.localId === undefined ? undefined : idHex(options.localId);
  /** hex id -> path that queried it. */
  const claimed = new Map<string, number>();
  const result: LookupResult<V> = { closest: [], values: [], queried: [], messages: 0, failures: 0, capped: false };
  let stopped = false;
  // Keep the shortlist bounded: the window is k, extra room absorbs skipped entries.
  const shortlistLimit = k * 4;

  const paths: PathState[] = Array.from({ length: d }, (_, index) => ({ index, shortlist: [], known: new Set<string>() }));
  const initial = [...options.initial].sort((a, b) => compareDistance(a.nodeId, b.nodeId, target));
  let dealt = 0;
  for (const contact of initial) {
    const hex = contactHex(contact);
    if (hex === localHex || paths.some((p) => p.known.has(hex))) continue;
    const path = paths[dealt % d] as PathState;
    path.known.add(hex);
    path.shortlist.push({ contact, hex, hops: 1, state: "pending", required: false });
    dealt++;
  }

  const insert = (path: PathState, contact: Contact, hops: number, required: boolean): void => {
    const hex = contactHex(contact);
    if (hex === localHex || path.known.has(hex)) return;
    path.known.add(hex);
    const list = path.shortlist;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareDistance((list[mid] as PathEntry).contact.nodeId, contact.nodeId, target) < 0) lo = mid + 1;
      else hi = mid;
    }
    if (lo >= shortlistLimit && !required) return;
    list.splice(lo, 0, { contact, hex, hops, state: "pending", required });
    if (list.length > shortlistLimit) {
      // Drop the farthest entry that is neither in flight (it must finish its bookkeeping) nor a pending required one.
      for (let i = list.length - 1; i >= 0; i--) {
        const e = list[i] as PathEntry;
        if (e.state !== "inflight" && !(e.required && e.state === "pending")) {
          list.splice(i, 1);
          break;
        }
      }
    }
  };

  /** True (and marks it "taken") when another path queried or is querying the entry. */
  const takenByOther = (path: PathState, entry: PathEntry): boolean => {
    const owner = claimed.get(entry.hex);
    if (owner === undefined || owner === path.index) return false;
    entry.state = "taken";
    return true;
  };

  /**
   * The path's next query: the closest pending entry inside its window of w
   * entries it queried itself (failed and taken ones do not count), else the
   * closest pending required entry; undefined when the path is done.
   */
  const nextCandidate = (path: PathState): PathEntry | undefined => {
    let usable = 0;
    for (const entry of path.shortlist) {
      if (usable >= w) break;
      if (entry.state === "failed" || entry.state === "taken") continue;
      if (entry.state === "pending") {
        if (takenByOther(path, entry)) continue;
        return entry;
      }
      usable++;
    }
    for (const entry of path.shortlist) {
      if (entry.state === "pending" && entry.required && !takenByOther(path, entry)) return entry;
    }
    return undefined;
  };

  const queryOne = async (path: PathState, entry: PathEntry): Promise<void> => {
    const reached: ReachedNode = { contact: entry.contact, hops: entry.hops, path: path.index };
    try {
      const reply = await options.query(entry.contact, path.index);
      entry.state = "answered";
      result.queried.push({ ...reached, answered: true });
      result.closest.push(reached);
      // Referrals of an initial contact: its b closest are required queries of this path.
      const contacts = breadth > 0 && entry.hops === 1 ? [...reply.contacts].sort((a, b) => compareDistance(a.nodeId, b.nodeId, target)) : reply.contacts;
      contacts.forEach((c, i) => insert(path, c, entry.hops + 1, breadth > 0 && entry.hops === 1 && i < breadth));
      if (reply.value !== undefined) {
        result.values.push({ value: reply.value, from: reached });
        if (result.values.length >= quorum) stopped = true;
      }
    } catch {
      entry.state = "failed";
      result.failures++;
      result.queried.push({ ...reached, answered: false });
    }
  };

  const runPath = async (path: PathState): Promise<void> => {
    const inflight = new Set<Promise<void>>();
    while (true) {
      while (inflight.size < alpha && !stopped) {
        const next = nextCandidate(path);
        if (next === undefined) break;
        if (result.messages >= maxMessages) {
          result.capped = true;
          stopped = true;
          break;
        }
        result.messages++;
        claimed.set(next.hex, path.index);
        next.state = "inflight";
        const running: Promise<void> = queryOne(path, next).finally(() => inflight.delete(running));
        inflight.add(running);
      }
      if (inflight.size === 0) return;
      await Promise.race(inflight);
    }
  };

  await Promise.all(paths.map(runPath));
  result.closest.sort((a, b) => compareDistance(a.contact.nodeId, b.contact.nodeId, target));
  result.closest = result.closest.slice(0, k);
  return result;
}

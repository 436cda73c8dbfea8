/**
 * Path selection for circuits.
 *
 * Owns the choice of hops from a node list: distinct identities, no two hops
 * in the same IPv4 /16 or IPv6 /32 (or on the same host name), no two in the
 * same declared operator family, each hop picked at random with probability
 * proportional to its weight. The random source is injectable so tests and
 * simulations are deterministic.
 *
 * Internal nodes (flag "internal", or no host: clients never learn their
 * addresses) are never the first hop, since the client would have to dial
 * them; they may be middle and last hops, which the previous relay reaches by
 * identity (docs/spec/onion.md §2). The hop right before an internal node is
 * always a public one: an internal node with outbound links only accepts no
 * links and keeps one to every listed public relay, so only a public relay
 * is sure to reach it (clients cannot tell the two kinds of internal node
 * apart, docs/spec/directory.md §12). A node without a host has no network
 * for the "one hop per network" rule: it conflicts only by identity and family.
 *
 * Trusts: the node list (the directory layer has verified it). Validates only
 * what it needs to choose safely.
 */
import { hexOf } from "../base/hex.js";
import { CircuitError } from "./errors.js";
import { DEFAULT_PATH_LENGTH } from "./constants.js";

export interface PathNode {
  /** Ed25519 identity key (32 bytes). */
  identity: Uint8Array;
  /** X25519 onion key (32 bytes) for ntor. */
  onionKey: Uint8Array;
  /** Where to dial it; "" (port 0) for an internal node, whose address only nodes know. */
  host: string;
  port: number;
  /** Operator family; nodes sharing a non-empty family never share a circuit. */
  family?: string;
  /** Directory flags, e.g. "running", "stable", "guard", "internal". */
  flags: readonly string[];
  /** Selection weight (e.g. measured bandwidth); default 1, 0 = never chosen. */
  weight?: number;
}

export interface SelectPathOptions {
  /** Number of hops (default 3). */
  length?: number;
  /** Uniform random in [0, 1); default crypto-random. */
  random?: () => number;
  /** A fixed last hop (e.g. a chosen presence or rendezvous node). */
  lastHop?: PathNode;
  /** Identities never to use (e.g. hops of a sibling circuit). */
  exclude?: readonly Uint8Array[];
  /** Flags every hop must carry (default ["running"]). */
  requiredFlags?: readonly string[];
  /** Extra flags the first hop must carry (e.g. ["guard"]). */
  entryFlags?: readonly string[];
  /**
   * Bridges (or pinned entries): the first hop is drawn from these instead of
   * `nodes`. Bridges are never listed in the consensus, so they need not carry
   * the required or entry flags; the /16 and family rules still apply.
   */
  entryNodes?: readonly PathNode[];
  /** Whole-path attempts before giving up (greedy picks can paint into a corner). */
  attempts?: number;
}

function defaultRandom(): number {
  const buf = new Uint32Array(2);
  globalThis.crypto.getRandomValues(buf);
  return ((buf[0] as number) * 2 ** 21 + ((buf[1] as number) >>> 11)) / 2 ** 53;
}

/** Hex form of a key, for set membership. */
export const keyHex: (key: Uint8Array) => string = hexOf;

function parseIPv4(host: string): number[] | undefined {
  const parts = host.split(".");
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

/** First two 16-bit groups of an IPv6 address, or undefined if it is not one. */
function ipv6Prefix32(host: string): string | undefined {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  if (!h.includes(":") || !/^[0-9a-fA-F:.]+$/.test(h)) return undefined;
  const halves = h.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups.
  const groupsOf = (list: string[]) => list.reduce((n, g) => n + (g.includes(".") ? 2 : 1), 0);
  const missing = 8 - groupsOf(head) - groupsOf(tail);
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return undefined;
  const all = [...head, ...Array<string>(missing).fill("0"), ...tail];
  const v4 = parseIPv4(all[all.length - 1] ?? "");
  if (v4 && all.length === 7 && all.slice(0, 5).every((g) => /^0+$/.test(g)) && /^ffff$/i.test(all[5] ?? "")) {
    return `4:${v4[0]}.${v4[1]}`; // IPv4-mapped: same /16 rule as IPv4
  }
  const g0 = parseInt(all[0] ?? "0", 16);
  const g1 = parseInt(all[1] ?? "0", 16);
  if (!Number.isFinite(g0) || !Number.isFinite(g1)) return undefined;
  return `6:${g0.toString(16)}:${g1.toString(16)}`;
}

/** The network a host belongs to for the "one hop per network" rule. */
export function networkKey(host: string): string {
  const v4 = parseIPv4(host);
  if (v4) return `4:${v4[0]}.${v4[1]}`;
  return ipv6Prefix32(host) ?? `h:${host.toLowerCase()}`;
}

/** The consensus flag of a relay that is only ever a middle or last hop. */
export const INTERNAL_FLAG = "internal";

/**
 * True for a node a client cannot dial: flagged internal, or listed without
 * an address. Such a node is never a first hop.
 */
export function isInternalNode(node: PathNode): boolean {
  return node.host === "" || node.flags.includes(INTERNAL_FLAG);
}

function conflicts(a: PathNode, b: PathNode): boolean {
  if (keyHex(a.identity) === keyHex(b.identity)) return true;
  // No host, no network: every internal node would otherwise share the key "h:".
  if (a.host !== "" && b.host !== "" && networkKey(a.host) === networkKey(b.host)) return true;
  return Boolean(a.family && b.family && a.family === b.family);
}

function weightOf(node: PathNode): number {
  const w = node.weight ?? 1;
  return Number.isFinite(w) && w > 0 ? w : 0;
}

function pickWeighted(candidates: PathNode[], random: () => number): PathNode | undefined {
  let total = 0;
  for (const c of candidates) total += weightOf(c);
  if (total <= 0) return undefined;
  let r = random() * total;
  for (const c of candidates) {
    r -= weightOf(c);
    if (r < 0) return c;
  }
  return candidates.findLast((c) => weightOf(c) > 0);
}

/**
 * Chooses `length` hops, entry first. Throws CircuitError "no-path" when the
 * list has too few eligible, mutually unrelated nodes, and "bad-argument" for
 * a one-hop path to a fixed internal `lastHop` (the client has no address to
 * reach it).
 */
export function selectPath(nodes: readonly PathNode[], options: SelectPathOptions = {}): PathNode[] {
  const length = options.length ?? DEFAULT_PATH_LENGTH;
  if (!Number.isInteger(length) || length < 1) {
    throw new CircuitError("bad-argument", `path length must be a positive integer, got ${length}`);
  }
  const random = options.random ?? defaultRandom;
  const required = options.requiredFlags ?? ["running"];
  const excluded = new Set((options.exclude ?? []).map(keyHex));
  const eligible = nodes.filter(
    (n) => !excluded.has(keyHex(n.identity)) && required.every((f) => n.flags.includes(f)) && weightOf(n) > 0,
  );
  const entryFlags = options.entryFlags ?? [];
  const entryNodes = options.entryNodes && options.entryNodes.length > 0 ? options.entryNodes : undefined;
  if (entryNodes && length === 1) throw new CircuitError("bad-argument", "a one-hop path has no separate entry: use at least two hops with entryNodes (bridges)");
  if (length === 1 && options.lastHop && isInternalNode(options.lastHop)) {
    throw new CircuitError("bad-argument", "a one-hop path to an internal node: clients have no address for it; reach it through at least one other hop");
  }
  const attempts = options.attempts ?? 8;

  for (let attempt = 0; attempt < attempts; attempt++) {
    const chosen: PathNode[] = [];
    // A one-hop path's last hop is also its entry, so it must be dialable.
    const last = options.lastHop ?? pickWeighted(length === 1 ? eligible.filter((n) => !isInternalNode(n)) : eligible, random);
    if (!last) break;
    chosen.push(last);
    let ok = true;
    // Entry next (it has the strictest requirement), then middles. Hop i's previous hop is chosen[i] (the entry is chosen[1]).
    for (let i = 0; i < length - 1 && ok; i++) {
      const isEntry = i === 0;
      const previous = isEntry ? undefined : chosen[i];
      // Public: the entry (clients dial it), and any hop right before an internal one (only public relays surely reach it).
      const mustBePublic = isEntry || (previous !== undefined && isInternalNode(previous)) || (i === length - 2 && isInternalNode(last));
      const candidates = isEntry && entryNodes
        ? entryNodes.filter((n) => !excluded.has(keyHex(n.identity)) && !isInternalNode(n) && chosen.every((c) => !conflicts(c, n)))
        : eligible.filter(
            (n) =>
              (!mustBePublic || !isInternalNode(n)) && (!isEntry || entryFlags.every((f) => n.flags.includes(f))) && chosen.every((c) => !conflicts(c, n)),
          );
      const pick = pickWeighted(candidates, random);
      if (pick) chosen.push(pick);
      else ok = false;
    }
    if (ok) {
      // chosen = [last, entry, middle...]; return entry, middles, last.
      const [lastHop, ...rest] = chosen as [PathNode, ...PathNode[]];
      return length === 1 ? [lastHop] : [...rest, lastHop];
    }
    if (options.lastHop && attempt > 0 && eligible.length < length) break;
  }
  throw new CircuitError(
    "no-path",
    `no ${length}-hop path: need ${length} running nodes in distinct /16 networks and families, the first one and each one before an internal one not internal; ` +
      `${eligible.length} eligible of ${nodes.length} (${eligible.filter(isInternalNode).length} internal); fetch a fresh node list or lower the path length`,
  );
}

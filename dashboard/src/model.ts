/**
 * The dashboard's state: the devnet's overview (GET /v1/overview) as first
 * loaded, then updated by each message of the aggregate event stream
 * (GET /v1/events: node events tagged { node }, chain events with node
 * null). Pure: no DOM here, so what a panel shows is a function of this.
 *
 * Trusts the devnet API it was served by; still reads every field defensively,
 * since a node of another version may send more or less.
 */

export interface NodeStats {
  links?: number;
  circuits?: number;
  bytesRelayed?: number;
  dht?: { tableSize: number; records: number; lookups: number; lookupFailures: number } | null;
  consensus?: { validAfter: number; nodes: number; signers: number } | null;
  presence?: { points: number; introductions: number; rendezvous: number } | null;
  streams?: { hosted: number; viewers: number; bytes: number; list?: StreamEntry[] };
  rewards?: { sent: number; acked: number; pending: number } | null;
}

export interface StreamEntry {
  stream: string;
  role: "landing" | "distribution";
  viewers: number;
  feeds: string[];
}

export interface OverviewNode {
  name: string;
  roles: string[];
  internal?: boolean;
  nodeKey: string;
  stake: string;
  up: boolean;
  events: boolean;
  consensusAgeSeconds: number | null;
  status: Record<string, unknown> | null;
  stats: NodeStats | null;
}

export interface RewardEpoch {
  epoch: number;
  status: string;
  cumulativeTotal: string;
  startsAt: number;
  endsAt: number;
  agreedAt: number;
  finalAt: number | null;
}

export interface Overview {
  at: number;
  chain: { chainId: number; blockNumber: string; blockTimestamp: number };
  nodes: OverviewNode[];
  sets: { authority: string[]; oracle: string[]; discovery: string[] };
  rewards: {
    genesis: number;
    epochLength: number;
    disputeWindow: number;
    currentEpoch: number;
    totalClaimed: string;
    pool: string;
    epochs: RewardEpoch[];
    claims: { node: string; account: string; claimed: string }[];
  };
}

export interface DevnetEvent {
  type: string;
  at: number;
  node: string | null;
  data: Record<string, unknown>;
}

export interface Sample {
  t: number;
  relayed: number;
  stream: number;
}

export interface State {
  overview: Overview | undefined;
  /** Each node's last stats event, by name. */
  stats: Map<string, { at: number; data: NodeStats }>;
  /** When each panel last took new data (ms). */
  panelAt: Map<string, number>;
  /** Block head from block events. */
  block: { number: string; timestamp: number; seenAt: number } | undefined;
  /** The newest consensus any node adopted. */
  consensus: { validAfter: number; validUntil: number; nodes: number; signers: number; adoptedBy: Set<string> } | undefined;
  circuitsOpened: number;
  circuitsClosed: number;
  presenceRegistered: number;
  introductions: number;
  rewardEvents: DevnetEvent[];
  log: DevnetEvent[];
  /** Bytes per second, relayed and streamed, over time (sums over nodes). */
  series: Sample[];
  lastTotals: { t: number; relayed: number; stream: number } | undefined;
}

export const MAX_LOG = 60;
export const MAX_SERIES = 180;

export function emptyState(): State {
  return {
    overview: undefined,
    stats: new Map(),
    panelAt: new Map(),
    block: undefined,
    consensus: undefined,
    circuitsOpened: 0,
    circuitsClosed: 0,
    presenceRegistered: 0,
    introductions: 0,
    rewardEvents: [],
    log: [],
    series: [],
    lastTotals: undefined,
  };
}

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/** Takes a fresh overview: node stats it carries seed the per-node stats. */
export function applyOverview(s: State, o: Overview): void {
  s.overview = o;
  for (const n of o.nodes) if (n.stats && !s.stats.has(n.name)) s.stats.set(n.name, { at: o.at, data: n.stats });
  s.block ??= { number: o.chain.blockNumber, timestamp: o.chain.blockTimestamp, seenAt: o.at };
  for (const n of o.nodes) {
    const c = n.status?.consensus as { validAfter?: number; validUntil?: number; nodes?: number; signers?: number } | null | undefined;
    if (c && typeof c.validAfter === "number" && (!s.consensus || c.validAfter > s.consensus.validAfter)) {
      s.consensus = { validAfter: c.validAfter, validUntil: num(c.validUntil), nodes: num(c.nodes), signers: num(c.signers), adoptedBy: new Set([n.name]) };
    } else if (c && s.consensus && c.validAfter === s.consensus.validAfter) s.consensus.adoptedBy.add(n.name);
  }
  for (const p of ["nodes", "consensus", "stakes", "rewards"]) s.panelAt.set(p, o.at);
}

/** Which panels an event feeds. */
export function panelsOf(e: DevnetEvent): string[] {
  switch (e.type) {
    case "stats":
      return ["nodes", "circuits", "dht", "presence", "streams", "consensus", "bandwidth"];
    case "consensus":
      return ["consensus", "nodes"];
    case "circuit":
      return ["circuits"];
    case "presence":
      return ["presence"];
    case "stream":
      return ["streams"];
    case "rewards":
      return ["rewards"];
    case "block":
      return ["stakes", "rewards"];
    default:
      return [];
  }
}

/** Applies one event of the aggregate stream. */
export function applyEvent(s: State, e: DevnetEvent): void {
  for (const p of panelsOf(e)) s.panelAt.set(p, e.at);
  if (e.type !== "stats") {
    s.log.unshift(e);
    if (s.log.length > MAX_LOG) s.log.length = MAX_LOG;
  }
  switch (e.type) {
    case "stats":
      if (e.node) s.stats.set(e.node, { at: e.at, data: e.data as NodeStats });
      break;
    case "consensus": {
      const validAfter = num(e.data.validAfter);
      if (!s.consensus || validAfter > s.consensus.validAfter)
        s.consensus = { validAfter, validUntil: num(e.data.validUntil), nodes: num(e.data.nodes), signers: num(e.data.signers), adoptedBy: new Set() };
      if (e.node && validAfter === s.consensus.validAfter) s.consensus.adoptedBy.add(e.node);
      break;
    }
    case "circuit":
      s.circuitsOpened += num(e.data.opened);
      s.circuitsClosed += num(e.data.closed);
      break;
    case "presence":
      if (e.data.event === "registered") s.presenceRegistered += num(e.data.count);
      if (e.data.event === "introduction-delivered") s.introductions += num(e.data.count);
      break;
    case "rewards":
      s.rewardEvents.unshift(e);
      if (s.rewardEvents.length > 12) s.rewardEvents.length = 12;
      break;
    case "block":
      s.block = { number: String(e.data.number), timestamp: num(e.data.timestamp), seenAt: e.at };
      break;
  }
}

/** Sums over the nodes' last stats. */
export function totals(s: State) {
  let links = 0,
    circuits = 0,
    relayed = 0,
    table = 0,
    records = 0,
    lookups = 0,
    lookupFailures = 0,
    points = 0,
    intros = 0,
    streamBytes = 0,
    viewers = 0,
    sent = 0,
    acked = 0;
  const streams = new Set<string>();
  for (const { data } of s.stats.values()) {
    links += num(data.links);
    circuits += num(data.circuits);
    relayed += num(data.bytesRelayed);
    table += num(data.dht?.tableSize);
    records += num(data.dht?.records);
    lookups += num(data.dht?.lookups);
    lookupFailures += num(data.dht?.lookupFailures);
    points += num(data.presence?.points);
    intros += num(data.presence?.introductions);
    streamBytes += num(data.streams?.bytes);
    for (const e of data.streams?.list ?? []) {
      streams.add(e.stream);
      if (e.role === "distribution") viewers += e.viewers;
    }
    sent += num(data.rewards?.sent);
    acked += num(data.rewards?.acked);
  }
  return { links, circuits, relayed, table, records, lookups, lookupFailures, points, intros, streamBytes, viewers, streams: streams.size, sent, acked };
}

/** Adds a bandwidth sample (bytes/s since the last one) from the current totals. */
export function sample(s: State, now: number): void {
  const t = totals(s);
  const last = s.lastTotals;
  s.lastTotals = { t: now, relayed: t.relayed, stream: t.streamBytes };
  if (!last || now <= last.t) return;
  const dt = (now - last.t) / 1000;
  s.series.push({ t: now / 1000, relayed: Math.max(0, (t.relayed - last.relayed) / dt), stream: Math.max(0, (t.streamBytes - last.stream) / dt) });
  if (s.series.length > MAX_SERIES) s.series.shift();
}

/** One stream's fan-out: landing node → distribution nodes → viewers. */
export interface FanoutTree {
  stream: string;
  landing: string | undefined;
  distribution: { node: string; viewers: number; children: string[] }[];
}

export function fanoutTrees(s: State, nameOfKey: (hex: string) => string): FanoutTree[] {
  const trees = new Map<string, FanoutTree>();
  const tree = (id: string) => {
    let t = trees.get(id);
    if (!t) trees.set(id, (t = { stream: id, landing: undefined, distribution: [] }));
    return t;
  };
  for (const [node, { data }] of s.stats) {
    for (const e of data.streams?.list ?? []) {
      const t = tree(e.stream);
      if (e.role === "landing") t.landing = node;
      else t.distribution.push({ node, viewers: e.viewers, children: e.feeds.map(nameOfKey) });
    }
  }
  // A landing node's feeds that have not reported yet still show, with no viewers known.
  for (const [node, { data }] of s.stats)
    for (const e of data.streams?.list ?? [])
      if (e.role === "landing") {
        const t = tree(e.stream);
        for (const f of e.feeds.map(nameOfKey)) if (!t.distribution.some((d) => d.node === f)) t.distribution.push({ node: f, viewers: 0, children: [] });
        t.landing = node;
      }
  return [...trees.values()].sort((a, b) => a.stream.localeCompare(b.stream));
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** A PSP amount (18 decimals, as a decimal string of wei) as PSP with at most 4 decimals. */
export function formatPsp(wei: string): string {
  let v: bigint;
  try {
    v = BigInt(wei);
  } catch {
    return wei;
  }
  const whole = v / 10n ** 18n;
  const frac = (v % 10n ** 18n).toString().padStart(18, "0").slice(0, 4).replace(/0+$/, "");
  return `${whole.toLocaleString("en-US")}${frac ? "." + frac : ""} PSP`;
}

export function formatAge(seconds: number): string {
  if (seconds < 0) return "in the future";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

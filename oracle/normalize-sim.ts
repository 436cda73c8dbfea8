/**
 * A deterministic simulated epoch of honest usage for normalize.ts: streams
 * fanned out from landing to distribution nodes, viewer sessions that start,
 * end and re-attach at random times, every party reporting in windows of its
 * own clock (skewed), bytes arriving a latency after they are sent. It gives
 * the decoded reports intake would hand normalizeUsage, plus what each node
 * truly sent in the epoch, so the test (test/unit/rewards/normalize.test.ts)
 * can measure honest loss and what a liar or a colluding pair gains, and the
 * bench (npm run bench) can time an epoch of 10,000 nodes and 100,000 sessions
 * (`benchNormalize({ nodes: 10_000, sessions: 100_000 })`).
 *
 * Reports here are decoded values, not signed bytes (`bytes` empty, `hash`
 * a counter): normalization never reads either. Owns nothing on the wire.
 */
import { getAddress, type Address, type Hex } from "viem";
import type { UsageEntry, UsageReport } from "../node/src/rewards/report.js";
import type { SessionId } from "../node/src/stream/session.js";
import { normalizeUsage } from "./normalize.js";

export interface SimOptions {
  nodes: number;
  sessions: number;
  /** PRNG seed (default 1). */
  seed?: number;
  /** Epoch start, unix seconds (default 1_800_000_000). */
  epochStart?: number;
  /** Default 3600. */
  epochSeconds?: number;
  /** Node and viewer report interval (default 300 s). */
  intervalSeconds?: number;
  /** Standard deviation of a viewer's clock error, s (default 2; nodes a quarter of it); clamped to ±5σ. */
  skewSeconds?: number;
  /** Nodes per operator (default 2). */
  nodesPerOperator?: number;
  /** Share of sessions that re-attach to another node once (default 0.15). */
  reattachShare?: number;
}

export interface SimStream {
  id: string;
  kbps: number;
  landing: string;
  distribution: string[];
}

export interface SimEpoch {
  reports: UsageReport[];
  caps: Map<string, number>;
  operators: Map<string, Address>;
  nodes: string[];
  streams: SimStream[];
  /** Node key hex → bytes it truly sent in the epoch (by its clock). */
  sent: Map<string, number>;
  /** Node key hex → its clock error, s. */
  skew: Map<string, number>;
  epochStart: number;
  epochEnd: number;
  intervalSeconds: number;
}

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const unhex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));

/** One honest flow: `rate` bytes/s from `sender` to `receiver` over real time [a, b), arriving `latency` s later. */
interface Flow {
  stream: string;
  sender: string;
  receiver: string;
  rate: number;
  a: number;
  b: number;
  latency: number;
}

const overlap = (a: number, b: number, c: number, d: number): number => Math.max(0, Math.min(b, d) - Math.max(a, c));

export function simulateEpoch(options: SimOptions): SimEpoch {
  const rand = prng(options.seed ?? 1);
  const epochStart = options.epochStart ?? 1_800_000_000;
  const epochSeconds = options.epochSeconds ?? 3600;
  const epochEnd = epochStart + epochSeconds;
  const interval = options.intervalSeconds ?? 300;
  const sigma = options.skewSeconds ?? 2;
  const perOperator = options.nodesPerOperator ?? 2;
  const reattach = options.reattachShare ?? 0.15;
  const hexBytes = (n: number): string => {
    let s = "";
    for (let i = 0; i < n; i++)
      s += Math.floor(rand() * 256)
        .toString(16)
        .padStart(2, "0");
    return s;
  };
  const gauss = (sd: number): number => {
    const g = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    return Math.max(-5, Math.min(5, g)) * sd;
  };

  const nodes = Array.from({ length: options.nodes }, () => hexBytes(32));
  const skew = new Map(nodes.map((n) => [n, gauss(sigma / 4)]));
  const operators = new Map<string, Address>();
  nodes.forEach((n, i) => operators.set(n, getAddress(`0x${(Math.floor(i / perOperator) + 1).toString(16).padStart(40, "0")}`)));

  // Streams: about one per 10 nodes; a landing node feeds 1..6 distribution nodes, all live the whole epoch.
  const streamCount = Math.max(1, Math.floor(options.nodes / 10));
  const kbpsChoices = [800, 1500, 2500, 4000];
  const streams: SimStream[] = [];
  const flows: Flow[] = [];
  const rates = new Map<string, number>();
  for (let i = 0; i < streamCount; i++) {
    const landing = nodes[i % nodes.length] as string;
    const distribution = new Set<string>();
    const want = Math.min(nodes.length - 1, 1 + Math.floor(rand() * 6));
    while (distribution.size < want) {
      const n = nodes[Math.floor(rand() * nodes.length)] as string;
      if (n !== landing) distribution.add(n);
    }
    const kbps = kbpsChoices[Math.floor(rand() * kbpsChoices.length)] as number;
    const stream = { id: hexBytes(16), kbps, landing, distribution: [...distribution] };
    streams.push(stream);
    // The media's own bitrate varies around kbps (within the landing node's 1.5×), plus ~1 % framing.
    const rate = ((kbps * 1000) / 8) * (0.85 + rand() * 0.35) * 1.01;
    rates.set(stream.id, rate);
    for (const d of stream.distribution)
      flows.push({ stream: stream.id, sender: landing, receiver: d, rate, a: epochStart - 7200, b: epochEnd + 7200, latency: 0.005 + rand() * 0.045 });
  }
  const caps = new Map(streams.map((s) => [s.id, s.kbps]));

  // Sessions: start anywhere from 50 min before the epoch to its last minute, last 30 s .. ~57 min.
  interface Viewer {
    sid: string;
    key: string;
    skew: number;
    session: SessionId;
    start: number;
    end: number;
    legs: Flow[];
  }
  const viewers: Viewer[] = [];
  for (let i = 0; i < options.sessions; i++) {
    const stream = streams[Math.floor(rand() * streams.length)] as SimStream;
    const start = epochStart - 3000 + rand() * (epochSeconds + 2940);
    const duration = Math.min(3400, 30 + -Math.log(1 - rand()) * 1200);
    const end = start + duration;
    const points = stream.distribution.length > 0 ? stream.distribution : [stream.landing];
    const sid = hexBytes(16);
    const latency = 0.02 + rand() * 0.13;
    const rate = rates.get(stream.id) as number;
    const legs: Flow[] = [];
    const first = points[Math.floor(rand() * points.length)] as string;
    if (points.length > 1 && rand() < reattach) {
      const switchAt = start + rand() * duration;
      let second = first;
      while (second === first) second = points[Math.floor(rand() * points.length)] as string;
      legs.push({ stream: stream.id, sender: first, receiver: sid, rate, a: start, b: switchAt, latency });
      legs.push({ stream: stream.id, sender: second, receiver: sid, rate, a: switchAt + 1, b: end, latency });
    } else legs.push({ stream: stream.id, sender: first, receiver: sid, rate, a: start, b: end, latency });
    const vskew = gauss(sigma);
    const iat = Math.floor(start + vskew) - 2;
    const session: SessionId = {
      sid: unhex(sid),
      issuedAt: iat,
      expiresAt: iat + 3600,
      oracle: new Uint8Array(32),
      viewerKey: unhex(hexBytes(32)),
      bytes: new Uint8Array(0),
    };
    viewers.push({ sid, key: hexBytes(32), skew: vskew, session, start, end, legs });
    flows.push(...legs);
  }

  let counter = 0;
  const report = (kind: "node" | "viewer", reporter: string, from: number, to: number, entries: UsageEntry[], session?: SessionId): UsageReport => ({
    kind,
    reporter: unhex(reporter),
    from,
    to,
    part: 0,
    entries,
    anchors: [],
    ...(session ? { session } : {}),
    bytes: new Uint8Array(0),
    hash: `0x${(counter++).toString(16).padStart(64, "0")}` as Hex,
  });

  // Nodes: windows aligned to the epoch on their own clock; sent and received bytes of their flows.
  const bySender = new Map<string, Flow[]>();
  const byNodeReceiver = new Map<string, Flow[]>();
  for (const f of flows) {
    (bySender.get(f.sender) ?? bySender.set(f.sender, []).get(f.sender)!).push(f);
    if (f.receiver.length === 64) (byNodeReceiver.get(f.receiver) ?? byNodeReceiver.set(f.receiver, []).get(f.receiver)!).push(f);
  }
  const reports: UsageReport[] = [];
  const sent = new Map<string, number>();
  for (const node of nodes) {
    const s = skew.get(node) as number;
    let total = 0;
    for (let from = epochStart; from < epochEnd; from += interval) {
      const to = Math.min(from + interval, epochEnd);
      const [r0, r1] = [from - s, to - s]; // real time of the window
      const entries: UsageEntry[] = [];
      for (const f of bySender.get(node) ?? []) {
        const bytes = Math.floor(f.rate * overlap(f.a, f.b, r0, r1));
        if (bytes > 0) entries.push({ stream: unhex(f.stream), peer: unhex(f.receiver), direction: "sent", bytes });
        total += bytes;
      }
      for (const f of byNodeReceiver.get(node) ?? []) {
        const bytes = Math.floor(f.rate * overlap(f.a + f.latency, f.b + f.latency, r0, r1));
        if (bytes > 0) entries.push({ stream: unhex(f.stream), peer: unhex(f.sender), direction: "received", bytes });
      }
      if (entries.length > 0) reports.push(report("node", node, from, to, entries));
    }
    sent.set(node, total);
  }

  // Viewers: windows from their session's start on their own clock, cut at the epoch's edges, bounded by the session.
  for (const v of viewers) {
    const clockStart = Math.floor(v.start + v.skew);
    const clockEnd = Math.ceil(v.end + v.skew + 1);
    const cuts = new Set<number>([clockStart, clockEnd]);
    for (let t = clockStart + interval; t < clockEnd; t += interval) cuts.add(t);
    for (const t of [epochStart, epochEnd]) if (t > clockStart && t < clockEnd) cuts.add(t);
    const sorted = [...cuts].sort((a, b) => a - b);
    for (let i = 0; i + 1 < sorted.length; i++) {
      const from = sorted[i] as number;
      const to = sorted[i + 1] as number;
      if (from < epochStart || to > epochEnd) continue; // another epoch's window
      const entries = new Map<string, UsageEntry>();
      for (const leg of v.legs) {
        const bytes = Math.floor(leg.rate * overlap(leg.a + leg.latency, leg.b + leg.latency, from - v.skew, to - v.skew));
        if (bytes <= 0) continue;
        const e = entries.get(leg.sender);
        if (e) e.bytes += bytes;
        else entries.set(leg.sender, { stream: unhex(leg.stream), peer: unhex(leg.sender), direction: "received", bytes });
      }
      if (entries.size > 0) reports.push(report("viewer", v.key, from, to, [...entries.values()], v.session));
    }
  }
  return { reports, caps, operators, nodes, streams, sent, skew, epochStart, epochEnd, intervalSeconds: interval };
}

export interface NormalizeBenchResult {
  nodes: number;
  sessions: number;
  reports: number;
  entries: number;
  /** Edges that paid. */
  edges: number;
  /** Wall time of normalizeUsage alone, ms (median of `runs`). */
  ms: number;
  /** CPU time of the same run (user + system), ms: the figure that holds on a shared machine. */
  cpuMs: number;
}

/** Times normalizeUsage over a simulated epoch (for `npm run bench`): generation is not timed. */
export function benchNormalize(options: SimOptions & { runs?: number }): NormalizeBenchResult {
  const sim = simulateEpoch(options);
  const input = { reports: sim.reports, caps: sim.caps, operators: sim.operators, weiPerByte: 1n, epochBudget: 10n ** 30n };
  const runs: { ms: number; cpuMs: number; edges: number }[] = [];
  for (let i = 0; i < Math.max(1, options.runs ?? 3); i++) {
    const cpu = process.cpuUsage();
    const started = performance.now();
    const result = normalizeUsage(input);
    const ms = performance.now() - started;
    const used = process.cpuUsage(cpu);
    runs.push({ ms, cpuMs: (used.user + used.system) / 1000, edges: result.edges });
  }
  runs.sort((a, b) => a.ms - b.ms);
  const median = runs[runs.length >> 1]!;
  let entries = 0;
  for (const r of sim.reports) entries += r.entries.length;
  return { nodes: options.nodes, sessions: options.sessions, reports: sim.reports.length, entries, edges: median.edges, ms: median.ms, cpuMs: median.cpuMs };
}

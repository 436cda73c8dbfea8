/**
 * Usage normalization (whitepaper §8.3 "to prevent clients from
 * misreporting", issue 16): one epoch's accepted usage reports in, what each
 * node and operator earned out. Pure and deterministic: every oracle given
 * the same reports (in any order), caps, operators and price computes the
 * same amounts, so their reward roots agree. Spec: docs/spec/rewards.md.
 *
 * An edge is (stream, sender node, receiver), the receiver a viewer session
 * (by sid) or a fed node (by key). Its sender side is the "sent" entries of
 * the sender's node reports; its receiver side the "received" entries naming
 * the sender in the viewer's reports (under that sid) or the fed node's.
 * Per edge:
 *   cap    = stream kbps × 125 × STREAM_CAP_FACTOR × min(sender's covered s, receiver's covered s)
 *   agreed = min(sent, received, cap)
 * where a side's covered seconds are the union of its report windows that
 * name the edge (a viewer's clipped to its session's validity). An edge is
 * discarded with no counterpart, with no cap for its stream (no verified
 * anchor), or when its sides disagree beyond OUTLIER_RATIO (plus
 * OUTLIER_GRACE_SECONDS of the stream's capped rate, for bytes in flight and
 * clock skew at the epoch's edges). Then, per (stream, receiver), the sum of
 * agreed bytes over all senders is held to the cap over the receiver's
 * covered seconds (scaled down pro rata, floor), so a receiver is never paid
 * for more than one stream's worth at a time. Agreed bytes add up per sender
 * node; reward = bytes × weiPerByte, all scaled down pro rata (floor) when the
 * sum passes the epoch's budget; operators get the sum of their nodes.
 *
 * Trusts: the caller for the reports being verified and context-checked
 * (signature, epoch, session validity, one report per reporter window and
 * part: oracle intake), the caps (from verified anchors) and the node →
 * operator map (from the chain). Trusts no single side of an edge.
 */
import type { Address } from "viem";
import type { UsageReport } from "../node/src/rewards/report.js";
import { RewardsError } from "../node/src/rewards/errors.js";

/** Headroom over the stream's kbps that the cap allows: the landing node lets a producer send 1.5 × kbps (stream/host.ts). */
export const STREAM_CAP_FACTOR = 1.5;
/** Sides further apart than this ratio (beyond the grace) are an outlier: the edge pays nothing. */
export const OUTLIER_RATIO = 1.25;
/** Seconds of the stream's capped rate two honest sides may differ by before the ratio applies (bytes in flight, clock skew, at both epoch edges). */
export const OUTLIER_GRACE_SECONDS = 120;

export type DiscardReason =
  /** Only one side reported the edge. */
  | "no-counterpart"
  /** No verified anchor gives the stream a bitrate. */
  | "unknown-stream"
  /** The sides disagree beyond OUTLIER_RATIO and the grace. */
  | "outlier"
  /** A node reported bytes to or from itself. */
  | "self"
  /** The sender node has no operator on chain: its bytes pay no one. */
  | "unknown-operator"
  /** Not a discard: bytes cut by the bitrate cap (per edge or per receiver). */
  | "capped";

export interface NormalizeInput {
  /** One epoch's accepted reports, decoded and context-checked. */
  reports: Iterable<UsageReport>;
  /** Stream id (32 lower-case hex, no prefix) → kbps: the lowest of the stream's valid anchors. */
  caps: ReadonlyMap<string, number>;
  /** Node identity key (64 lower-case hex, no prefix) → operator address. */
  operators: ReadonlyMap<string, Address>;
  weiPerByte: bigint;
  epochBudget: bigint;
}

export interface NodeReward {
  bytes: bigint;
  reward: bigint;
}

export interface NormalizeResult {
  /** Node key (hex, no prefix) → agreed bytes and reward. */
  perNode: Map<string, NodeReward>;
  /** Operator → the epoch's reward of all its nodes. */
  perOperator: Map<Address, bigint>;
  /** Edges (for "unknown-operator": nodes) left out or cut, and the bytes their higher side claimed (for "capped": the bytes cut). */
  discarded: { reason: DiscardReason; count: number; bytes: bigint }[];
  /** Edges that carried agreed bytes (including those of nodes without an operator). */
  edges: number;
  /** Sum of agreed bytes that pay (nodes with an operator). */
  bytes: bigint;
  /** Sum of perOperator (≤ epochBudget). */
  total: bigint;
}

interface Side {
  bytes: number;
  /** Report windows as [from, to] pairs, flat. */
  windows: number[];
}

interface Edge {
  stream: string;
  sender: string;
  receiver: string;
  sent?: Side;
  received?: Side;
  agreed: number;
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** Exact for integer sums up to 2^53, then saturates: the same result in any order. */
const addSat = (a: number, b: number): number => Math.min(a + b, MAX_SAFE);
/** A byte string as a JS string of char codes 0..255: the cheapest exact Map key (hex only for what leaves this module). */
const bin = (b: Uint8Array): string => String.fromCharCode.apply(null, b as unknown as number[]);
const hexOfBin = (s: string): string => Buffer.from(s, "latin1").toString("hex");

/** Total length of the union of [from, to) windows (flat pairs). */
export function coveredSeconds(windows: readonly number[]): number {
  const n = windows.length >> 1;
  if (n === 1) return (windows[1] as number) - (windows[0] as number);
  const order = Array.from({ length: n }, (_, i) => 2 * i);
  order.sort((a, b) => (windows[a] as number) - (windows[b] as number) || (windows[a + 1] as number) - (windows[b + 1] as number));
  let total = 0;
  let start = -1;
  let end = -1;
  for (const i of order) {
    const f = windows[i] as number;
    const t = windows[i + 1] as number;
    if (f > end) {
      total += end - start;
      start = f;
      end = t;
    } else if (t > end) end = t;
  }
  return total + end - start;
}

/** The most bytes a stream of `kbps` may carry to one receiver over `seconds`. */
export function capBytes(kbps: number, seconds: number): number {
  return Math.floor(kbps * 125 * STREAM_CAP_FACTOR * seconds);
}

/** Normalizes one epoch's usage; RewardsError "bad-argument" for a negative price or budget. */
export function normalizeUsage(input: NormalizeInput): NormalizeResult {
  if (typeof input.weiPerByte !== "bigint" || input.weiPerByte < 0n) throw new RewardsError("bad-argument", "weiPerByte must be a non-negative bigint");
  if (typeof input.epochBudget !== "bigint" || input.epochBudget < 0n) throw new RewardsError("bad-argument", "epochBudget must be a non-negative bigint");

  const edges = new Map<string, Edge>();
  const side = (stream: string, sender: string, receiver: string, which: "sent" | "received"): Side => {
    const key = stream + sender + receiver; // fixed widths (16, 32, 16|32 chars): unambiguous
    let edge = edges.get(key);
    if (!edge) edges.set(key, (edge = { stream, sender, receiver, agreed: 0 }));
    return (edge[which] ??= { bytes: 0, windows: [] });
  };

  for (const report of input.reports) {
    if (report.kind === "node") {
      const me = bin(report.reporter);
      for (const e of report.entries) {
        const peer = bin(e.peer);
        const s = side(bin(e.stream), e.direction === "sent" ? me : peer, e.direction === "sent" ? peer : me, e.direction);
        s.bytes = addSat(s.bytes, e.bytes);
        s.windows.push(report.from, report.to);
      }
    } else {
      const session = report.session;
      if (!session) continue; // decodeUsageReport never returns a viewer report without one
      const from = Math.max(report.from, session.issuedAt);
      const to = Math.min(report.to, session.expiresAt);
      if (to <= from) continue; // intake refuses it ("expired-session"); nothing to cover
      const sid = bin(session.sid);
      for (const e of report.entries) {
        const s = side(bin(e.stream), bin(e.peer), sid, "received");
        s.bytes = addSat(s.bytes, e.bytes);
        s.windows.push(from, to);
      }
    }
  }

  const discards = new Map<DiscardReason, { count: number; bytes: bigint }>();
  const discard = (reason: DiscardReason, bytes: number | bigint, count = 1): void => {
    const d = discards.get(reason) ?? { count: 0, bytes: 0n };
    d.count += count;
    d.bytes += BigInt(bytes);
    discards.set(reason, d);
  };

  // Per edge: match, cap, reject outliers. Receivers' windows per stream gathered for the per-receiver cap.
  const receivers = new Map<string, { kbps: number; edges: Edge[]; sum: number }>();
  const streamKbps = new Map<string, number | undefined>();
  for (const edge of edges.values()) {
    const { sent, received } = edge;
    const claimed = Math.max(sent?.bytes ?? 0, received?.bytes ?? 0);
    if (edge.sender === edge.receiver) {
      discard("self", claimed);
      continue;
    }
    if (!sent || !received) {
      discard("no-counterpart", claimed);
      continue;
    }
    let kbps = streamKbps.get(edge.stream);
    if (kbps === undefined && !streamKbps.has(edge.stream)) streamKbps.set(edge.stream, (kbps = input.caps.get(hexOfBin(edge.stream))));
    if (kbps === undefined || !(kbps > 0)) {
      discard("unknown-stream", claimed);
      continue;
    }
    const lo = Math.min(sent.bytes, received.bytes);
    if (claimed > lo * OUTLIER_RATIO + capBytes(kbps, OUTLIER_GRACE_SECONDS)) {
      discard("outlier", claimed);
      continue;
    }
    const cap = capBytes(kbps, Math.min(coveredSeconds(sent.windows), coveredSeconds(received.windows)));
    edge.agreed = Math.min(lo, cap);
    if (cap < lo) discard("capped", lo - cap, 1);
    const rkey = edge.stream + edge.receiver;
    let r = receivers.get(rkey);
    if (!r) receivers.set(rkey, (r = { kbps, edges: [], sum: 0 }));
    r.edges.push(edge);
    r.sum = addSat(r.sum, edge.agreed);
  }

  // Per (stream, receiver): all senders together within the cap over the receiver's covered time.
  const perNodeBytes = new Map<string, bigint>();
  let paidEdges = 0;
  for (const r of receivers.values()) {
    // One sender: its edge's cap (over at most the receiver's covered time) already holds.
    const cap = r.edges.length === 1 ? r.sum : capBytes(r.kbps, coveredSeconds(r.edges.flatMap((e) => (e.received as Side).windows)));
    if (r.sum > cap) {
      let cut = 0;
      for (const edge of r.edges) {
        const scaled = Number((BigInt(edge.agreed) * BigInt(cap)) / BigInt(r.sum));
        cut += edge.agreed - scaled;
        edge.agreed = scaled;
      }
      discard("capped", cut);
    }
    for (const edge of r.edges) {
      if (edge.agreed <= 0) continue;
      paidEdges++;
      perNodeBytes.set(edge.sender, (perNodeBytes.get(edge.sender) ?? 0n) + BigInt(edge.agreed));
    }
  }

  // Rewards: bytes × price, scaled pro rata (floor) to the budget; nodes without an operator pay no one.
  const perNode = new Map<string, NodeReward>();
  let raw = 0n;
  let bytes = 0n;
  for (const [nodeBin, b] of perNodeBytes) {
    const node = hexOfBin(nodeBin);
    if (!input.operators.has(node)) {
      discard("unknown-operator", b);
      continue;
    }
    perNode.set(node, { bytes: b, reward: b * input.weiPerByte });
    raw += b * input.weiPerByte;
    bytes += b;
  }
  const scale = raw > input.epochBudget;
  const perOperator = new Map<Address, bigint>();
  let total = 0n;
  for (const [node, r] of perNode) {
    if (scale) r.reward = (r.reward * input.epochBudget) / raw;
    const operator = input.operators.get(node) as Address;
    perOperator.set(operator, (perOperator.get(operator) ?? 0n) + r.reward);
    total += r.reward;
  }

  const order: DiscardReason[] = ["no-counterpart", "unknown-stream", "outlier", "self", "unknown-operator", "capped"];
  const discarded = order.filter((reason) => discards.has(reason)).map((reason) => ({ reason, ...discards.get(reason)! }));
  return { perNode, perOperator, discarded, edges: paidEdges, bytes, total };
}

/**
 * The fan-out engine of one stream at one node: chunks and time in, sends
 * out. No sockets, no timers (docs/spec/streaming.md "Fan-out").
 *
 * Owns the real-time rules of the media path: a chunk whose sequence number
 * is not above the newest one seen is late (a repeat after a re-feed, or
 * reordered) and is dropped; every sink (a viewer, or a downstream
 * distribution node) has a queue bounded in bytes that only fills while its
 * socket is blocked; a sink whose queue would pass its bound is moved to the
 * live edge (its queue is dropped and it continues with the newest chunk);
 * a queued chunk older than maxDelayMs when the socket drains is dropped
 * (late); a sink added before the first chunk simply waits for it.
 *
 * Trusts nothing: chunks are opaque bytes; the caller has already framed
 * them. The I/O around it (host.ts) writes every "send" action in order and
 * reports `blocked` when a write returns false and `drained` on 'drain'.
 */
import { StreamMediaError } from "./media-errors.js";

export interface FanoutOptions {
  /** Bytes one viewer's queue may hold while its socket is blocked (default 512 KiB: ~2 s at 2 Mbit/s). */
  viewerQueueBytes?: number;
  /** The same for a downstream distribution node (default 2 MiB). */
  feedQueueBytes?: number;
  /** A queued chunk older than this when it could be written is dropped (default 1500 ms). */
  maxDelayMs?: number;
}

export type SinkKind = "viewer" | "feed";

export interface FanoutSend {
  to: string;
  seq: bigint;
  bytes: Uint8Array;
}

export interface FanoutCounters {
  /** Chunks accepted from upstream. */
  chunksIn: number;
  /** Chunk copies handed to sinks. */
  chunksOut: number;
  /** Chunks from upstream not above the newest sequence number (repeats, reordered). */
  late: number;
  /** Queued chunk copies dropped: too old when the sink drained, or dropped at a live-edge jump. */
  dropped: number;
  /** Times a sink was moved to the live edge. */
  liveEdgeJumps: number;
}

interface QueuedChunk {
  seq: bigint;
  bytes: Uint8Array;
  at: number;
}

interface Sink {
  kind: SinkKind;
  blocked: boolean;
  queue: QueuedChunk[];
  queuedBytes: number;
  /** Chunks handed to this sink. */
  sent: number;
}

export interface SinkState {
  kind: SinkKind;
  blocked: boolean;
  queuedBytes: number;
  queuedChunks: number;
  /** True until the sink was handed its first chunk. */
  waiting: boolean;
}

export class FanoutEngine {
  readonly counters: FanoutCounters = { chunksIn: 0, chunksOut: 0, late: 0, dropped: 0, liveEdgeJumps: 0 };
  private readonly sinks = new Map<string, Sink>();
  private newest = -1n;
  private readonly viewerQueueBytes: number;
  private readonly feedQueueBytes: number;
  private readonly maxDelayMs: number;

  constructor(options: FanoutOptions = {}) {
    this.viewerQueueBytes = options.viewerQueueBytes ?? 512 * 1024;
    this.feedQueueBytes = options.feedQueueBytes ?? 2 * 1024 * 1024;
    this.maxDelayMs = options.maxDelayMs ?? 1500;
    for (const [name, v] of [
      ["viewerQueueBytes", this.viewerQueueBytes],
      ["feedQueueBytes", this.feedQueueBytes],
      ["maxDelayMs", this.maxDelayMs],
    ] as const) {
      if (!Number.isFinite(v) || v <= 0) throw new StreamMediaError("bad-argument", `${name} must be a positive number`);
    }
  }

  /** The newest sequence number seen, or -1n before the first chunk. */
  get newestSeq(): bigint {
    return this.newest;
  }

  get sinkCount(): number {
    return this.sinks.size;
  }

  countOf(kind: SinkKind): number {
    let n = 0;
    for (const s of this.sinks.values()) if (s.kind === kind) n++;
    return n;
  }

  /** Adds a sink; it receives chunks from the next one on (waiting until the producer starts). */
  addSink(id: string, kind: SinkKind): void {
    if (this.sinks.has(id)) throw new StreamMediaError("bad-argument", `sink ${id} is already attached`);
    this.sinks.set(id, { kind, blocked: false, queue: [], queuedBytes: 0, sent: 0 });
  }

  removeSink(id: string): void {
    this.sinks.delete(id);
  }

  sinkState(id: string): SinkState | undefined {
    const s = this.sinks.get(id);
    return s && { kind: s.kind, blocked: s.blocked, queuedBytes: s.queuedBytes, queuedChunks: s.queue.length, waiting: s.sent === 0 };
  }

  /** One chunk from upstream (`bytes`: the whole CHUNK frame to forward). Returns the sends for unblocked sinks. */
  chunk(seq: bigint, bytes: Uint8Array, now: number): FanoutSend[] {
    if (seq <= this.newest) {
      this.counters.late++;
      return [];
    }
    this.newest = seq;
    this.counters.chunksIn++;
    const out: FanoutSend[] = [];
    for (const [id, sink] of this.sinks) {
      if (!sink.blocked) {
        out.push({ to: id, seq, bytes });
        sink.sent++;
        continue;
      }
      const cap = sink.kind === "viewer" ? this.viewerQueueBytes : this.feedQueueBytes;
      if (sink.queuedBytes + bytes.length > cap) {
        // Behind by more than its queue holds: skip to the live edge.
        this.counters.dropped += sink.queue.length;
        this.counters.liveEdgeJumps++;
        sink.queue = [];
        sink.queuedBytes = 0;
      }
      sink.queue.push({ seq, bytes, at: now });
      sink.queuedBytes += bytes.length;
    }
    this.counters.chunksOut += out.length;
    return out;
  }

  /** The sink's socket would not take more: queue from now on. */
  blocked(id: string): void {
    const sink = this.sinks.get(id);
    if (sink) sink.blocked = true;
  }

  /** The sink's socket drained: its queued chunks still fresh enough, in order (older ones dropped as late). */
  drained(id: string, now: number): FanoutSend[] {
    const sink = this.sinks.get(id);
    if (!sink) return [];
    sink.blocked = false;
    const out: FanoutSend[] = [];
    for (const q of sink.queue) {
      if (now - q.at > this.maxDelayMs) {
        this.counters.dropped++;
        continue;
      }
      out.push({ to: id, seq: q.seq, bytes: q.bytes });
    }
    sink.sent += out.length;
    sink.queue = [];
    sink.queuedBytes = 0;
    this.counters.chunksOut += out.length;
    return out;
  }
}

/**
 * Outbound cell scheduler: the onion layer's send-rate limit.
 *
 * Owns the queue between the circuit state machines and the links. Every
 * circuit cell a node sends (except DESTROY, which must always get through and
 * drops the circuit's queue instead) waits here until both the node's token
 * bucket and the circuit's own bucket hold 512 bytes. Circuits take turns
 * (round robin), so one busy circuit cannot starve the others. A circuit whose
 * queue grows past the cap is reported so its owner can destroy it: the layer
 * never buffers without bound.
 *
 * Time is an input; `nextReadyAt` tells the driver when to call `flush` again.
 */
import type { Cell } from "../wire/cell.js";
import { CELL_LEN } from "../wire/cell.js";
import { TokenBucket } from "./token-bucket.js";

export interface RateLimit {
  bytesPerSecond: number;
  burstBytes: number;
}

export interface SchedulerOptions {
  node: RateLimit;
  /** Per-circuit-direction limit; omit for none. */
  circuit?: RateLimit;
  maxQueuedCellsPerCircuit: number;
  now: number;
}

/** A released cell; shaped as the machines' "send" action so it is handed on without another object. */
export interface OutboundCell {
  type: "send";
  linkId: string;
  cell: Cell;
}

interface CircuitQueue {
  linkId: string;
  cells: Cell[];
  head: number;
  bucket: TokenBucket | undefined;
}

export class OutboundScheduler {
  private readonly nodeBucket: TokenBucket;
  private readonly queues = new Map<string, CircuitQueue>();
  /** Keys of queues with cells, in round-robin order. */
  private active: string[] = [];
  private cursor = 0;
  private sentBytes = 0;

  constructor(private readonly options: SchedulerOptions) {
    this.nodeBucket = new TokenBucket({ ...options.node, now: options.now });
  }

  /** Bytes released so far (for metrics and tests). */
  get bytesSent(): number {
    return this.sentBytes;
  }

  /** Cells waiting in all queues. */
  get queuedCells(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.cells.length - q.head;
    return n;
  }

  /** Cells waiting on one queue. */
  queued(key: string): number {
    const q = this.queues.get(key);
    return q ? q.cells.length - q.head : 0;
  }

  /** Queues a cell for `linkId` under the circuit key; false when the circuit's queue is full. */
  enqueue(key: string, linkId: string, cell: Cell, now: number): boolean {
    let q = this.queues.get(key);
    if (!q) {
      q = {
        linkId,
        cells: [],
        head: 0,
        bucket: this.options.circuit ? new TokenBucket({ ...this.options.circuit, now }) : undefined,
      };
      this.queues.set(key, q);
    }
    if (q.cells.length - q.head >= this.options.maxQueuedCellsPerCircuit) return false;
    if (q.cells.length === q.head) this.active.push(key);
    q.cells.push(cell);
    return true;
  }

  /** Forgets a circuit direction and every cell it had queued. */
  drop(key: string): void {
    if (!this.queues.delete(key)) return;
    const i = this.active.indexOf(key);
    if (i >= 0) {
      this.active.splice(i, 1);
      if (this.cursor > i) this.cursor--;
    }
  }

  /** Releases every cell the buckets allow at `now`, circuits in turn. */
  flush(now: number, out: { push(cell: OutboundCell): unknown }): void {
    let blockedInARow = 0;
    while (this.active.length > 0 && blockedInARow < this.active.length) {
      if (this.nodeBucket.available(now) < CELL_LEN) return;
      if (this.cursor >= this.active.length) this.cursor = 0;
      const key = this.active[this.cursor] as string;
      const q = this.queues.get(key) as CircuitQueue;
      if (q.bucket && !q.bucket.tryTake(CELL_LEN, now)) {
        this.cursor++;
        blockedInARow++;
        continue;
      }
      blockedInARow = 0;
      this.nodeBucket.tryTake(CELL_LEN, now);
      this.sentBytes += CELL_LEN;
      const cell = q.cells[q.head++] as Cell;
      out.push({ type: "send", linkId: q.linkId, cell });
      // Alone in the round, a circuit gets every cell the buckets allow in one
      // go: no other circuit is owed a turn, so per-cell turns buy nothing.
      if (this.active.length === 1 && q.head < q.cells.length) this.releaseRun(q, now, out);
      if (q.head === q.cells.length) {
        q.cells = [];
        q.head = 0;
        this.active.splice(this.cursor, 1);
      } else {
        if (q.head > 1024) {
          q.cells = q.cells.slice(q.head);
          q.head = 0;
        }
        this.cursor++;
      }
    }
  }

  /** Releases as many further cells of `q` as both buckets hold tokens for (the one-active-circuit fast path). */
  private releaseRun(q: CircuitQueue, now: number, out: { push(cell: OutboundCell): unknown }): void {
    let n = Math.min(q.cells.length - q.head, Math.floor(this.nodeBucket.available(now) / CELL_LEN));
    if (q.bucket) n = Math.min(n, Math.floor(q.bucket.available(now) / CELL_LEN));
    if (n <= 0) return;
    this.nodeBucket.tryTake(n * CELL_LEN, now);
    q.bucket?.tryTake(n * CELL_LEN, now);
    this.sentBytes += n * CELL_LEN;
    const { linkId } = q;
    for (let end = q.head + n; q.head < end; ) out.push({ type: "send", linkId, cell: q.cells[q.head++] as Cell });
  }

  /** When the next queued cell can go out, or undefined when nothing is queued. */
  nextReadyAt(now: number): number | undefined {
    if (this.active.length === 0) return undefined;
    const nodeReady = this.nodeBucket.readyAt(CELL_LEN, now);
    let circuitReady = Number.POSITIVE_INFINITY;
    for (const key of this.active) {
      const b = this.queues.get(key)?.bucket;
      circuitReady = Math.min(circuitReady, b ? b.readyAt(CELL_LEN, now) : now);
    }
    return Math.max(nodeReady, circuitReady);
  }
}

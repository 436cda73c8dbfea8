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
 * Bulk traffic is queued as runs of already-encoded cells (`enqueueRun`):
 * one contiguous buffer of 512-byte cells counts as that many cells for the
 * buckets, the queue cap and the round robin, and leaves as one "send-run"
 * output (a view into the run, never a copy) when a lone circuit may release
 * it whole; with other circuits waiting it is released one cell per turn.
 *
 * Time is an input; `nextReadyAt` tells the driver when to call `flush` again.
 */
import type { Cell } from "../wire/cell.js";
import { CELL_LEN } from "../wire/cell.js";
import { TokenBucket } from "../base/token-bucket.js";

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

/** Released encoded cells (512 bytes each, back to back); shaped as the machines' "send-run" action. */
export interface OutboundRun {
  type: "send-run";
  linkId: string;
  bytes: Uint8Array;
  cells: number;
}

/** A run of encoded cells waiting; `taken` of them already left. */
interface QueuedRun {
  bytes: Uint8Array;
  count: number;
  taken: number;
}

interface CircuitQueue {
  linkId: string;
  /** Cells and runs in send order, from `head`. */
  items: (Cell | QueuedRun)[];
  head: number;
  /** Cells waiting (a run counts each of its cells not yet taken). */
  count: number;
  bucket: TokenBucket | undefined;
}

type Out = { push(item: OutboundCell | OutboundRun): unknown };

function isRun(item: Cell | QueuedRun): item is QueuedRun {
  return (item as QueuedRun).bytes !== undefined;
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
    for (const q of this.queues.values()) n += q.count;
    return n;
  }

  /** Cells waiting on one queue. */
  queued(key: string): number {
    const q = this.queues.get(key);
    return q ? q.count : 0;
  }

  /** Queues a cell for `linkId` under the circuit key; false when the circuit's queue is full. */
  enqueue(key: string, linkId: string, cell: Cell, now: number): boolean {
    const q = this.queueFor(key, linkId, now);
    if (q.count >= this.options.maxQueuedCellsPerCircuit) return false;
    if (q.count === 0) this.active.push(key);
    q.items.push(cell);
    q.count++;
    return true;
  }

  /**
   * Queues `cells` encoded cells (`bytes`: exactly 512 × cells bytes, never
   * modified afterwards) for `linkId`; false, and nothing queued, when they
   * would pass the circuit's queue cap.
   */
  enqueueRun(key: string, linkId: string, bytes: Uint8Array, cells: number, now: number): boolean {
    if (cells <= 0) return true;
    const q = this.queueFor(key, linkId, now);
    if (q.count + cells > this.options.maxQueuedCellsPerCircuit) return false;
    if (q.count === 0) this.active.push(key);
    q.items.push({ bytes, count: cells, taken: 0 });
    q.count += cells;
    return true;
  }

  private queueFor(key: string, linkId: string, now: number): CircuitQueue {
    let q = this.queues.get(key);
    if (!q) {
      q = {
        linkId,
        items: [],
        head: 0,
        count: 0,
        bucket: this.options.circuit ? new TokenBucket({ ...this.options.circuit, now }) : undefined,
      };
      this.queues.set(key, q);
    }
    return q;
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
  flush(now: number, out: Out): void {
    let blockedInARow = 0;
    while (this.active.length > 0 && blockedInARow < this.active.length) {
      if (this.nodeBucket.available(now) < CELL_LEN) return;
      if (this.cursor >= this.active.length) this.cursor = 0;
      const key = this.active[this.cursor] as string;
      const q = this.queues.get(key) as CircuitQueue;
      if (this.active.length === 1) {
        // Alone in the round, a circuit gets every cell the buckets allow in one
        // go: no other circuit is owed a turn, so per-cell turns buy nothing.
        let n = Math.min(q.count, Math.floor(this.nodeBucket.available(now) / CELL_LEN));
        if (q.bucket) n = Math.min(n, Math.floor(q.bucket.available(now) / CELL_LEN));
        if (n <= 0) return;
        this.nodeBucket.tryTake(n * CELL_LEN, now);
        q.bucket?.tryTake(n * CELL_LEN, now);
        this.release(q, n, out);
      } else {
        if (q.bucket && !q.bucket.tryTake(CELL_LEN, now)) {
          this.cursor++;
          blockedInARow++;
          continue;
        }
        blockedInARow = 0;
        this.nodeBucket.tryTake(CELL_LEN, now);
        this.release(q, 1, out);
      }
      if (q.count === 0) {
        q.items = [];
        q.head = 0;
        this.active.splice(this.cursor, 1);
      } else {
        if (q.head > 1024) {
          q.items = q.items.slice(q.head);
          q.head = 0;
        }
        this.cursor++;
      }
    }
  }

  /** Hands the next `n` cells of `q` to `out` (tokens already taken): cells one by one, runs as views. */
  private release(q: CircuitQueue, n: number, out: Out): void {
    this.sentBytes += n * CELL_LEN;
    q.count -= n;
    const { linkId } = q;
    while (n > 0) {
      const item = q.items[q.head] as Cell | QueuedRun;
      if (!isRun(item)) {
        out.push({ type: "send", linkId, cell: item });
        q.head++;
        n--;
        continue;
      }
      const take = Math.min(n, item.count - item.taken);
      const bytes = take === item.count ? item.bytes : item.bytes.subarray(item.taken * CELL_LEN, (item.taken + take) * CELL_LEN);
      out.push({ type: "send-run", linkId, bytes, cells: take });
      item.taken += take;
      n -= take;
      if (item.taken === item.count) q.head++;
    }
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

/**
 * The state of one stream at either end of a circuit.
 *
 * Owns per-stream bookkeeping shared by the client and the relay edge: the
 * stream-level SENDME window, the queue of messages waiting for a window,
 * and message reassembly. Sending and circuit-level windows stay with the
 * owner, which knows the circuit.
 *
 * A queued message is copied once and cut into DATA bodies only as each is
 * packaged: `writeNextBody` writes the body straight into the relay payload
 * it travels in (the bulk path: no per-cell view or array entry), while
 * `nextChunk` returns it as a buffer of its own.
 */
import { STREAM_WINDOW_INCREMENT, STREAM_WINDOW_START } from "./constants.js";
import { FlowWindow } from "./flow-control.js";
import { DATA_CHUNK_LEN, MessageReassembler, dataBodyCount, writeDataBody } from "./framing.js";

export type StreamPhase = "connecting" | "open" | "closed";

/** A queued message: bodies `next`..`count - 1` of it are still to be sent. */
interface OutgoingMessage {
  bytes: Uint8Array;
  next: number;
  count: number;
}

export class EdgeStream {
  readonly window = new FlowWindow({ start: STREAM_WINDOW_START, increment: STREAM_WINDOW_INCREMENT });
  readonly reassembler: MessageReassembler;
  phase: StreamPhase = "connecting";
  /** Messages waiting, from `head`. */
  private outgoing: OutgoingMessage[] = [];
  private head = 0;
  private queued = 0;

  constructor(
    readonly streamId: number,
    readonly service: string,
    readonly hop: number,
    readonly maxMessageBytes: number,
  ) {
    this.reassembler = new MessageReassembler(maxMessageBytes);
  }

  /** Queues a message (a copy: the caller may reuse its buffer) to be sent as DATA bodies. */
  enqueueMessage(message: Uint8Array): void {
    const count = dataBodyCount(message, this.maxMessageBytes);
    this.outgoing.push({ bytes: message.slice(), next: 0, count });
    this.queued += count;
  }

  /** DATA bodies waiting for a window. */
  get queuedCells(): number {
    return this.queued;
  }

  /**
   * Writes the next DATA body into `target` at `offset` (at most 496 bytes of
   * room needed) and returns its length; 0 when nothing is queued.
   */
  writeNextBody(target: Uint8Array, offset: number): number {
    const m = this.outgoing[this.head];
    if (m === undefined) return 0;
    const length = writeDataBody(target, offset, m.bytes, m.next);
    this.advance(m);
    return length;
  }

  /** The next DATA body as a buffer of its own, if any (does not consult windows). */
  nextChunk(): Uint8Array | undefined {
    if (this.queued === 0) return undefined;
    const body = new Uint8Array(DATA_CHUNK_LEN);
    return body.subarray(0, this.writeNextBody(body, 0));
  }

  private advance(m: OutgoingMessage): void {
    this.queued--;
    if (++m.next < m.count) return;
    this.head++;
    if (this.head === this.outgoing.length) {
      this.outgoing = [];
      this.head = 0;
    } else if (this.head > 1024) {
      this.outgoing = this.outgoing.slice(this.head);
      this.head = 0;
    }
  }

  clearQueue(): void {
    this.outgoing = [];
    this.head = 0;
    this.queued = 0;
  }
}

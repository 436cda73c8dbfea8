/**
 * The state of one stream at either end of a circuit.
 *
 * Owns per-stream bookkeeping shared by the client and the relay edge: the
 * stream-level SENDME window, the queue of DATA chunks waiting for a window,
 * and message reassembly. Sending and circuit-level windows stay with the
 * owner, which knows the circuit.
 */
import { STREAM_WINDOW_INCREMENT, STREAM_WINDOW_START } from "./constants.js";
import { FlowWindow } from "./flow-control.js";
import { MessageReassembler, frameMessage } from "./framing.js";

export type StreamPhase = "connecting" | "open" | "closed";

export class EdgeStream {
  readonly window = new FlowWindow({ start: STREAM_WINDOW_START, increment: STREAM_WINDOW_INCREMENT });
  readonly reassembler: MessageReassembler;
  phase: StreamPhase = "connecting";
  private chunks: Uint8Array[] = [];
  private head = 0;

  constructor(
    readonly streamId: number,
    readonly service: string,
    readonly hop: number,
    readonly maxMessageBytes: number,
  ) {
    this.reassembler = new MessageReassembler(maxMessageBytes);
  }

  /** Frames a message onto the send queue. */
  enqueueMessage(message: Uint8Array): void {
    for (const c of frameMessage(message, this.maxMessageBytes)) this.chunks.push(c);
  }

  get queuedCells(): number {
    return this.chunks.length - this.head;
  }

  /** Next chunk to send, if any (does not consult windows). */
  nextChunk(): Uint8Array | undefined {
    if (this.head >= this.chunks.length) return undefined;
    const c = this.chunks[this.head++];
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head > 4096) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
    return c;
  }

  clearQueue(): void {
    this.chunks = [];
    this.head = 0;
  }
}

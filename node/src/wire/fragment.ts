/**
 * Fragmenting messages longer than one cell, and reassembling them.
 *
 * Owns the fragment layout (big-endian):
 *   sequence (2) ‖ total message length (4) ‖ chunk
 * Fragments of one message are numbered 0, 1, 2, … and every fragment
 * repeats the total length, so a receiver knows the size from the first
 * fragment, can refuse an oversized message before buffering it, and can
 * tell a missing, repeated or reordered fragment from a complete message.
 * Fragments travel in order over one circuit or stream (which is reliable
 * and ordered), so anything else is a protocol violation and an error.
 *
 * The reassembler's buffer grows with the bytes that arrived (doubling, from
 * REASSEMBLY_INITIAL_BYTES, never past the announced size), never the
 * announced size up front: a peer that announces 64 KiB and sends one cell
 * holds at most 4 KiB (issue 19). Doubling keeps the bulk path at about one
 * extra copy per byte and a handful of allocations per message. Callers
 * that budget memory read `bytesBuffered` (arrived) before and after each
 * push; `bytesHeld` (the buffer) is at most twice that, or 4 KiB.
 *
 * Trusts nothing about incoming fragments; errors are WireError
 * "message-too-large", "out-of-order", "bad-fragment" and "truncated".
 */
import { WireError } from "./errors.js";

export const FRAGMENT_HEADER_LEN = 6;
export const MAX_FRAGMENTS = 0x1_0000;
/** Upper bound on the length field; each Reassembler sets its own, lower maximum. */
export const MAX_FRAGMENTED_MESSAGE_LEN = 0xffff_ffff;

/**
 * Splits `message` into fragments of at most `maxChunk` bytes each (header
 * included), e.g. maxChunk = RELAY_DATA_LEN (496) for relay cells. An empty
 * message is one header-only fragment.
 */
export function fragmentMessage(message: Uint8Array, maxChunk: number): Uint8Array[] {
  if (!(message instanceof Uint8Array)) throw new WireError("bad-field", `message must be a Uint8Array, got ${typeof message}`);
  if (!Number.isInteger(maxChunk) || maxChunk <= FRAGMENT_HEADER_LEN) {
    throw new WireError("bad-field", `maxChunk must be an integer above the ${FRAGMENT_HEADER_LEN}-byte fragment header, got ${maxChunk}`);
  }
  const room = maxChunk - FRAGMENT_HEADER_LEN;
  const count = Math.max(1, Math.ceil(message.length / room));
  if (count > MAX_FRAGMENTS || message.length > MAX_FRAGMENTED_MESSAGE_LEN) {
    throw new WireError("message-too-large", `a ${message.length}-byte message needs ${count} fragments; at most ${MAX_FRAGMENTS} are allowed`);
  }
  const total = message.length;
  const fragments: Uint8Array[] = [];
  for (let seq = 0; seq < count; seq++) {
    const chunk = message.subarray(seq * room, Math.min(total, (seq + 1) * room));
    const fragment = new Uint8Array(FRAGMENT_HEADER_LEN + chunk.length);
    fragment[0] = seq >>> 8;
    fragment[1] = seq & 0xff;
    fragment[2] = total >>> 24;
    fragment[3] = (total >>> 16) & 0xff;
    fragment[4] = (total >>> 8) & 0xff;
    fragment[5] = total & 0xff;
    fragment.set(chunk, FRAGMENT_HEADER_LEN);
    fragments.push(fragment);
  }
  return fragments;
}

/** The reassembler's first buffer (or the whole message, when smaller): eight cells' worth. */
export const REASSEMBLY_INITIAL_BYTES = 4096;

const EMPTY = new Uint8Array(0);

export interface ReassemblerOptions {
  /** Largest message accepted; bigger ones are refused at their first fragment. */
  maxMessageBytes: number;
}

/**
 * Rebuilds messages from in-order fragments. Feed fragments with `push`; it
 * returns the whole message when the last fragment arrives, else undefined.
 * After any error the partial message is dropped and the reassembler is idle
 * again (callers normally close the stream instead of continuing).
 */
export class Reassembler {
  readonly maxMessageBytes: number;
  /** The announced length of the message in progress. */
  private total: number | undefined;
  /** The bytes received so far, at the front; grows with what arrived, not with what was announced. */
  private buffer: Uint8Array = EMPTY;
  private filled = 0;
  private nextSeq = 0;

  constructor(options: ReassemblerOptions) {
    const max = options?.maxMessageBytes;
    if (!Number.isInteger(max) || max < 0 || max > MAX_FRAGMENTED_MESSAGE_LEN) {
      throw new WireError("bad-field", `maxMessageBytes must be an integer in 0..${MAX_FRAGMENTED_MESSAGE_LEN}, got ${String(max)}`);
    }
    this.maxMessageBytes = max;
  }

  /** True while a message is partly received. */
  get inProgress(): boolean {
    return this.total !== undefined;
  }

  /** The length the message in progress announced (undefined when idle). */
  get announcedBytes(): number | undefined {
    return this.total;
  }

  /** Bytes of the current message received so far. */
  get bytesBuffered(): number {
    return this.filled;
  }

  /** Bytes of buffer held for the current message: at most max(2 × bytesBuffered, REASSEMBLY_INITIAL_BYTES), never above the announced size. */
  get bytesHeld(): number {
    return this.buffer.length;
  }

  push(fragment: Uint8Array): Uint8Array | undefined {
    try {
      return this.accept(fragment);
    } catch (err) {
      this.reset();
      throw err;
    }
  }

  /** Declares the fragment stream finished; throws "truncated" if a message is incomplete. */
  end(): void {
    if (this.total !== undefined) {
      const missing = this.total - this.filled;
      this.reset();
      throw new WireError("truncated", `fragment stream ended with ${missing} bytes of a message still missing`);
    }
  }

  /** Drops any partial message. */
  reset(): void {
    this.total = undefined;
    this.buffer = EMPTY;
    this.filled = 0;
    this.nextSeq = 0;
  }

  private accept(fragment: Uint8Array): Uint8Array | undefined {
    if (!(fragment instanceof Uint8Array) || fragment.length < FRAGMENT_HEADER_LEN) {
      throw new WireError(
        "bad-fragment",
        `a fragment has a ${FRAGMENT_HEADER_LEN}-byte header, got ${fragment instanceof Uint8Array ? fragment.length : typeof fragment} bytes`,
      );
    }
    const seq = ((fragment[0] as number) << 8) | (fragment[1] as number);
    const total = (fragment[2] as number) * 0x100_0000 + (((fragment[3] as number) << 16) | ((fragment[4] as number) << 8) | (fragment[5] as number));
    const chunk = fragment.subarray(FRAGMENT_HEADER_LEN);
    if (seq !== this.nextSeq) {
      throw new WireError("out-of-order", `expected fragment ${this.nextSeq}, got fragment ${seq}`);
    }
    if (this.total === undefined) {
      if (total > this.maxMessageBytes) {
        throw new WireError("message-too-large", `incoming message is ${total} bytes, above the ${this.maxMessageBytes}-byte limit`);
      }
      this.total = total;
    } else if (total !== this.total) {
      throw new WireError("bad-fragment", `fragment ${seq} says the message is ${total} bytes, earlier fragments said ${this.total}`);
    }
    if (chunk.length === 0 && total !== 0) {
      throw new WireError("bad-fragment", `fragment ${seq} carries no data`);
    }
    if (this.filled + chunk.length > total) {
      throw new WireError("bad-fragment", `fragment ${seq} overruns the announced ${total}-byte message`);
    }
    this.reserve(this.filled + chunk.length, total);
    this.buffer.set(chunk, this.filled); // a copy: the caller's cell buffer is not retained
    this.filled += chunk.length;
    this.nextSeq++;
    if (this.filled === total) {
      const message = this.buffer;
      this.reset();
      return message;
    }
    if (this.nextSeq >= MAX_FRAGMENTS) {
      throw new WireError("bad-fragment", `message not complete after ${MAX_FRAGMENTS} fragments`);
    }
    return undefined;
  }

  /** Grows the buffer to hold `needed` bytes: doubling, at least REASSEMBLY_INITIAL_BYTES, at most the announced `total`. */
  private reserve(needed: number, total: number): void {
    if (needed <= this.buffer.length) return;
    const grown = new Uint8Array(Math.min(total, Math.max(needed, this.buffer.length * 2, REASSEMBLY_INITIAL_BYTES)));
    grown.set(this.buffer.subarray(0, this.filled));
    this.buffer = grown;
  }
}

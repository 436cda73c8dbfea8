/**
 * Message framing inside a stream's DATA cells.
 *
 * Owns how application messages map onto DATA cells: each DATA cell carries
 * exactly one fragment of the wire layer's fragment format
 * (sequence (2) ‖ total length (4) ‖ chunk, see node/src/wire/fragment.ts), so
 * a message of n bytes takes max(1, ceil(n / 490)) cells. Streams are ordered
 * and reliable, so the wire reassembler's in-order checks hold. Its errors are
 * mapped to CircuitError: "resource-limit" for an oversized message (refused
 * at the first fragment, before buffering), "protocol-violation" otherwise.
 */
import { RELAY_DATA_LEN } from "../wire/relay.js";
import { FRAGMENT_HEADER_LEN, MAX_FRAGMENTS, Reassembler, fragmentMessage } from "../wire/fragment.js";
import { WireError } from "../wire/errors.js";
import { CircuitError } from "./errors.js";

/** Largest DATA body: one relay cell's data. */
export const DATA_CHUNK_LEN = RELAY_DATA_LEN;

/**
 * Cuts one message into DATA-cell bodies, byte for byte what the wire
 * layer's `fragmentMessage` produces, but as views into one buffer: one
 * allocation per message instead of one per cell (the bulk path's garbage).
 */
export function frameMessage(message: Uint8Array, maxMessageBytes: number): Uint8Array[] {
  if (!(message instanceof Uint8Array)) throw new CircuitError("bad-argument", "a message must be a Uint8Array");
  if (message.length > maxMessageBytes) {
    throw new CircuitError("resource-limit", `message of ${message.length} bytes exceeds the ${maxMessageBytes}-byte limit; split it`);
  }
  const room = DATA_CHUNK_LEN - FRAGMENT_HEADER_LEN;
  const total = message.length;
  const count = Math.max(1, Math.ceil(total / room));
  // Outside the fragment format's range: the wire layer's checks and errors apply.
  if (count > MAX_FRAGMENTS || total > 0xffff_ffff) return fragmentMessage(message, DATA_CHUNK_LEN);
  const backing = new Uint8Array(total + count * FRAGMENT_HEADER_LEN);
  const fragments = new Array<Uint8Array>(count);
  let o = 0;
  for (let seq = 0; seq < count; seq++) {
    const from = seq * room;
    const to = Math.min(total, from + room);
    backing[o] = seq >>> 8;
    backing[o + 1] = seq & 0xff;
    backing[o + 2] = total >>> 24;
    backing[o + 3] = (total >>> 16) & 0xff;
    backing[o + 4] = (total >>> 8) & 0xff;
    backing[o + 5] = total & 0xff;
    backing.set(message.subarray(from, to), o + FRAGMENT_HEADER_LEN);
    const end = o + FRAGMENT_HEADER_LEN + (to - from);
    fragments[seq] = backing.subarray(o, end);
    o = end;
  }
  return fragments;
}

/** Rebuilds messages from DATA bodies. */
export class MessageReassembler {
  private readonly inner: Reassembler;

  constructor(maxMessageBytes: number) {
    this.inner = new Reassembler({ maxMessageBytes });
  }

  /** Feeds one DATA body; returns the message it completed, if any. */
  push(body: Uint8Array): Uint8Array | undefined {
    try {
      return this.inner.push(body);
    } catch (err) {
      if (!WireError.is(err)) throw err;
      throw new CircuitError(err.kind === "message-too-large" ? "resource-limit" : "protocol-violation", err.message, { cause: err });
    }
  }
}

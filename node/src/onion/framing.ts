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
import { FRAGMENT_HEADER_LEN, MAX_FRAGMENTED_MESSAGE_LEN, MAX_FRAGMENTS, Reassembler } from "../wire/fragment.js";
import { WireError } from "../wire/errors.js";
import { CircuitError } from "./errors.js";

/** Largest DATA body: one relay cell's data. */
export const DATA_CHUNK_LEN = RELAY_DATA_LEN;

/** Message bytes one DATA body carries after its fragment header (490). */
const FRAGMENT_ROOM = DATA_CHUNK_LEN - FRAGMENT_HEADER_LEN;

/**
 * How many DATA bodies `message` takes, with the checks every sender applies:
 * CircuitError "bad-argument" for a non-Uint8Array, "resource-limit" for a
 * message over `maxMessageBytes` or beyond the fragment format's range.
 */
export function dataBodyCount(message: Uint8Array, maxMessageBytes: number): number {
  if (!(message instanceof Uint8Array)) throw new CircuitError("bad-argument", "a message must be a Uint8Array");
  if (message.length > maxMessageBytes) {
    throw new CircuitError("resource-limit", `message of ${message.length} bytes exceeds the ${maxMessageBytes}-byte limit; split it`);
  }
  const count = Math.max(1, Math.ceil(message.length / FRAGMENT_ROOM));
  if (count > MAX_FRAGMENTS || message.length > MAX_FRAGMENTED_MESSAGE_LEN) {
    throw new CircuitError("resource-limit", `a ${message.length}-byte message needs ${count} DATA cells; at most ${MAX_FRAGMENTS} are allowed`);
  }
  return count;
}

/**
 * Writes DATA body `seq` of `message` (fragment header, then its chunk) into
 * `target` at `offset`; returns the body's length. Byte for byte the
 * fragment the wire layer's `fragmentMessage` makes; the bulk path writes it
 * straight into the relay payload it travels in.
 */
export function writeDataBody(target: Uint8Array, offset: number, message: Uint8Array, seq: number): number {
  const total = message.length;
  const from = seq * FRAGMENT_ROOM;
  const to = Math.min(total, from + FRAGMENT_ROOM);
  target[offset] = seq >>> 8;
  target[offset + 1] = seq & 0xff;
  target[offset + 2] = total >>> 24;
  target[offset + 3] = (total >>> 16) & 0xff;
  target[offset + 4] = (total >>> 8) & 0xff;
  target[offset + 5] = total & 0xff;
  target.set(from === 0 && to === total ? message : message.subarray(from, to), offset + FRAGMENT_HEADER_LEN);
  return FRAGMENT_HEADER_LEN + (to - from);
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

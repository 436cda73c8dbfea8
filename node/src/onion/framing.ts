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
import { Reassembler, fragmentMessage } from "../wire/fragment.js";
import { isPspError } from "../errors.js";
import { CircuitError } from "./errors.js";

/** Largest DATA body: one relay cell's data. */
export const DATA_CHUNK_LEN = RELAY_DATA_LEN;

/** Cuts one message into DATA-cell bodies. */
export function frameMessage(message: Uint8Array, maxMessageBytes: number): Uint8Array[] {
  if (!(message instanceof Uint8Array)) throw new CircuitError("bad-argument", "a message must be a Uint8Array");
  if (message.length > maxMessageBytes) {
    throw new CircuitError("resource-limit", `message of ${message.length} bytes exceeds the ${maxMessageBytes}-byte limit; split it`);
  }
  return fragmentMessage(message, DATA_CHUNK_LEN);
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
      if (!isPspError(err)) throw err;
      throw new CircuitError(err.kind === "message-too-large" ? "resource-limit" : "protocol-violation", err.message, { cause: err });
    }
  }
}

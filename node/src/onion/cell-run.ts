/**
 * Runs of encoded cells: the bulk path's unit between the state machines and
 * the links.
 *
 * Owns writing relay payloads (507 bytes each, back to back, as one cipher
 * call leaves them) into one buffer of 512-byte cells with a circuit id and a
 * command, so a batch of a circuit leaves as one "send-run" action and one
 * socket write instead of one object per cell. The bytes are exactly what
 * `encodeCell` writes for each cell (docs/spec/onion.md §11).
 *
 * Trusts its callers (the relay and client machines) for circuit ids and
 * commands: they come from the machines' own state, never from a peer.
 */
import { CELL_HEADER_LEN, CELL_LEN, CELL_PAYLOAD_LEN } from "../wire/cell.js";

/** Writes a cell header (circuit id, big-endian, then the command) at `offset`. */
export function writeCellHeader(target: Uint8Array, offset: number, circId: number, command: number): void {
  target[offset] = circId >>> 24;
  target[offset + 1] = (circId >>> 16) & 0xff;
  target[offset + 2] = (circId >>> 8) & 0xff;
  target[offset + 3] = circId & 0xff;
  target[offset + 4] = command;
}

/**
 * Encodes payloads `from`..`to` (indexes of 507-byte payloads in `payloads`)
 * as cells of `circId`, each with `commands[i]` (or the one `commands`
 * number), into a new buffer of (to - from) × 512 bytes.
 */
export function encodeRelayRun(circId: number, commands: number | readonly number[], payloads: Buffer, from: number, to: number): Buffer {
  const out = Buffer.allocUnsafe((to - from) * CELL_LEN);
  let o = 0;
  for (let i = from; i < to; i++) {
    writeCellHeader(out, o, circId, typeof commands === "number" ? commands : (commands[i] as number));
    payloads.copy(out, o + CELL_HEADER_LEN, i * CELL_PAYLOAD_LEN, (i + 1) * CELL_PAYLOAD_LEN);
    o += CELL_LEN;
  }
  return out;
}

/** Gathers payloads (each at most 507 bytes; shorter ones are zero-padded) back to back into one new buffer. */
export function gatherPayloads(payloads: readonly Uint8Array[]): Buffer {
  return gatherInto(Buffer.allocUnsafe(payloads.length * CELL_PAYLOAD_LEN), payloads);
}

/** Grows to the largest batch gathered (bounded by the circuit window and queue caps). */
let transient = Buffer.allocUnsafeSlow(128 * CELL_PAYLOAD_LEN);

/**
 * Gathers payloads like `gatherPayloads` into one buffer shared by every
 * caller in this process: only for a result a cipher call consumes at once
 * (the cipher returns new memory), so the next gather may overwrite it. One
 * large allocation less per batch and hop; garbage collection was a large
 * part of a middle relay's time.
 */
export function gatherPayloadsTransient(payloads: readonly Uint8Array[]): Buffer {
  const bytes = payloads.length * CELL_PAYLOAD_LEN;
  if (transient.length < bytes) transient = Buffer.allocUnsafeSlow(Math.max(bytes, 2 * transient.length));
  return gatherInto(transient.subarray(0, bytes), payloads);
}

function gatherInto(out: Buffer, payloads: readonly Uint8Array[]): Buffer {
  let o = 0;
  for (const p of payloads) {
    out.set(p, o);
    if (p.length < CELL_PAYLOAD_LEN) out.fill(0, o + p.length, o + CELL_PAYLOAD_LEN);
    o += CELL_PAYLOAD_LEN;
  }
  return out;
}

/**
 * A second reference for the onion throughput figure: the bare prototype's
 * chain (onion-prototype.ts: a client and three relays in this process over
 * three TLS links on loopback) carrying PSP's cells instead of a byte stream,
 * with little JavaScript per cell (a few copies and header writes, each the
 * cheapest Node offers: Buffer.copy, one cipher and one hash call per batch or
 * run) and no protocol state. It tells how much of the distance between PSP
 * and the bare prototype comes with cells themselves, and how much with PSP's
 * machinery.
 *
 * What it does, in batches of 64 cells (32 KB):
 * - the client cuts 64 KiB messages into DATA payloads laid out as PSP's
 *   (relay header, fragment header, 490 application bytes), seals them as
 *   runs of 16 (one SHA-256 over chain ‖ payloads, the digest in the last
 *   member), runs three AES-128-CTR layers over the payloads and writes
 *   512-byte cells;
 * - each relay cuts its TLS stream into whole cells, gathers their payloads,
 *   removes one layer, and (the two middle ones) checks each recognized field
 *   and writes the cells on;
 * - the last relay verifies each run's digest and copies the application
 *   bytes into a new 64 KiB message buffer per message.
 * What it leaves out: circuits, streams, flow control and SENDMEs, rate
 * limits, per-cell objects, and every check a peer's input needs. TCP's
 * back-pressure is the only flow control, as in the bare prototype.
 *
 * Trusts: node:tls and node:crypto; it talks only to itself.
 */
import { once } from "node:events";
import { createCipheriv, hash } from "node:crypto";
import type { TlsCredentials } from "../../../node/src/link/tls.js";
import { CELL_HEADER_LEN, CELL_LEN, CELL_PAYLOAD_LEN, CellCommand } from "../../../node/src/wire/cell.js";
import { FRAGMENT_HEADER_LEN } from "../../../node/src/wire/fragment.js";
import {
  RELAY_DATA_OFFSET,
  RELAY_DIGEST_LEN,
  RELAY_DIGEST_OFFSET,
  RELAY_LENGTH_OFFSET,
  RelayCommand,
  RELAY_COMMAND_OFFSET,
} from "../../../node/src/wire/relay.js";
import { MAX_RUN_PAYLOADS } from "../../../node/src/onion/relay-crypto.js";
import { startRelayChain } from "./onion-prototype.js";
import type { PrototypeChainResult } from "./onion-prototype.js";

export interface CellPrototypeOptions {
  /** Application bytes to move (default 16 MiB). */
  bytes?: number;
  host?: string;
}

/** Cells per client write: whole runs, so every run the client seals is complete when sending stops. */
const BATCH_CELLS = 4 * MAX_RUN_PAYLOADS;
const MESSAGE_BYTES = 64 * 1024;
/** Where the application bytes start in a DATA payload: relay header, then fragment header. */
const APP_OFFSET = RELAY_DATA_OFFSET + FRAGMENT_HEADER_LEN;
/** Application bytes in a full DATA payload (what PSP's throughput counts). */
const APP_BYTES = CELL_PAYLOAD_LEN - APP_OFFSET;
const CHAIN_LEN = 32;
const CIRCUIT_ID = 0x8000_0001;

/** Hop `hop`'s layer (0: the first relay): a key of its own, so the client's three layers do not cancel. */
function aesCtr(hop: number) {
  return createCipheriv("aes-128-ctr", Buffer.alloc(16, hop + 1), Buffer.alloc(16));
}

/**
 * Cuts a TLS byte stream into whole cells: `onCells(bytes, count)` gets a
 * buffer holding `count` cells from its start. A cell split across reads is
 * carried over (rare: a 16 KiB TLS record holds 32 whole cells).
 */
function cellFramer(onCells: (bytes: Buffer, count: number) => void): (chunk: Buffer) => void {
  let carry: Buffer | undefined;
  return (chunk) => {
    const bytes = carry ? Buffer.concat([carry, chunk]) : chunk;
    const count = Math.floor(bytes.length / CELL_LEN);
    if (count > 0) onCells(bytes, count);
    carry = bytes.length > count * CELL_LEN ? Buffer.from(bytes.subarray(count * CELL_LEN)) : undefined;
  };
}

/** Copies the payloads of `count` cells at the start of `cells` back to back into `into` (grown as needed). */
function gatherPayloads(cells: Buffer, count: number, into: { buffer: Buffer }): Buffer {
  if (into.buffer.length < count * CELL_PAYLOAD_LEN) into.buffer = Buffer.allocUnsafe(count * CELL_PAYLOAD_LEN);
  const out = into.buffer;
  for (let i = 0; i < count; i++) cells.copy(out, i * CELL_PAYLOAD_LEN, i * CELL_LEN + CELL_HEADER_LEN, (i + 1) * CELL_LEN);
  return out.subarray(0, count * CELL_PAYLOAD_LEN);
}

/** Writes `count` payloads lying back to back in `payloads` as RELAY cells of one circuit into a new buffer. */
function encodeCells(payloads: Buffer, count: number): Buffer {
  const out = Buffer.allocUnsafe(count * CELL_LEN);
  for (let i = 0; i < count; i++) {
    const o = i * CELL_LEN;
    out.writeUInt32BE(CIRCUIT_ID, o);
    out[o + 4] = CellCommand.RELAY;
    payloads.copy(out, o + CELL_HEADER_LEN, i * CELL_PAYLOAD_LEN, (i + 1) * CELL_PAYLOAD_LEN);
  }
  return out;
}

/**
 * A digest chain over runs of 16 payloads, as relay-crypto.ts seals them:
 * C' = SHA-256(C ‖ payloads), digest fields zeroed, C'[0..4] in the last
 * member. Both ends copy a run behind C in one scratch buffer and hash it
 * with one call.
 */
class RunChain {
  private chain = Buffer.alloc(CHAIN_LEN, 9);
  /** C ‖ the run's payloads. */
  readonly scratch = Buffer.allocUnsafe(CHAIN_LEN + MAX_RUN_PAYLOADS * CELL_PAYLOAD_LEN);
  /** Payloads of the run being received, in `scratch` after C. */
  private members = 0;

  /** Sender: seals payloads [from, to) of `payloads` (at most 16) as one run, writing the digest into the last. */
  seal(payloads: Buffer, from: number, to: number): void {
    this.chain.copy(this.scratch, 0);
    payloads.copy(this.scratch, CHAIN_LEN, from * CELL_PAYLOAD_LEN, to * CELL_PAYLOAD_LEN);
    this.advance(to - from);
    this.chain.copy(payloads, (to - 1) * CELL_PAYLOAD_LEN + RELAY_DIGEST_OFFSET, 0, RELAY_DIGEST_LEN);
  }

  /**
   * Receiver: takes payload `index` of `payloads`, in arrival order (a run may
   * span reads). Returns undefined while the run is incomplete, then whether it
   * verified; its payloads are then `member(0..15)` until the next call.
   */
  receive(payloads: Buffer, index: number): boolean | undefined {
    const at = CHAIN_LEN + this.members * CELL_PAYLOAD_LEN;
    payloads.copy(this.scratch, at, index * CELL_PAYLOAD_LEN, (index + 1) * CELL_PAYLOAD_LEN);
    if (++this.members < MAX_RUN_PAYLOADS) return undefined;
    const digestAt = at + RELAY_DIGEST_OFFSET;
    const claimed = this.scratch.readUInt32BE(digestAt);
    this.scratch.writeUInt32BE(0, digestAt);
    this.chain.copy(this.scratch, 0);
    this.advance(MAX_RUN_PAYLOADS);
    this.members = 0;
    return this.chain.readUInt32BE(0) === claimed;
  }

  /** Byte offset in `scratch` of member `i` of the run just received. */
  member(i: number): number {
    return CHAIN_LEN + i * CELL_PAYLOAD_LEN;
  }

  private advance(count: number): void {
    this.chain = hash("sha256", this.scratch.subarray(0, CHAIN_LEN + count * CELL_PAYLOAD_LEN), "buffer");
  }
}

/** Moves `bytes` application bytes through the cell-carrying chain; timed from the first write to the last byte delivered. */
export async function cellPrototypeThroughput(creds: TlsCredentials, options: CellPrototypeOptions = {}): Promise<PrototypeChainResult> {
  const total = options.bytes ?? 16 * 1024 * 1024;
  const host = options.host ?? "127.0.0.1";
  let delivered = 0;
  let zeroByChance = 0;
  let failure: Error | undefined;
  let finish!: (at: number) => void;
  const done = new Promise<number>((resolve) => (finish = resolve));
  const lastLayer = aesCtr(2);
  const lastChain = new RunChain();
  const lastGather = { buffer: Buffer.alloc(0) };
  let message = Buffer.allocUnsafe(MESSAGE_BYTES);
  let messageFilled = 0;
  const deliver = cellFramer((cells, count) => {
    const payloads = lastLayer.update(gatherPayloads(cells, count, lastGather));
    for (let index = 0; index < count; index++) {
      const verified = lastChain.receive(payloads, index);
      if (verified === undefined) continue;
      if (!verified) failure ??= new Error("cell prototype: a run did not verify");
      const run = lastChain.scratch;
      for (let i = 0; i < MAX_RUN_PAYLOADS; i++) {
        const at = lastChain.member(i);
        const n = run.readUInt16BE(at + RELAY_LENGTH_OFFSET) - FRAGMENT_HEADER_LEN;
        run.copy(message, messageFilled, at + APP_OFFSET, at + APP_OFFSET + n);
        messageFilled += n;
        delivered += n;
        if (messageFilled === MESSAGE_BYTES) {
          message = Buffer.allocUnsafe(MESSAGE_BYTES);
          messageFilled = 0;
        }
      }
    }
    if (delivered >= total) finish(performance.now());
  });
  const middleHop = (hop: number): ((chunk: Buffer) => Uint8Array | undefined) => {
    const layer = aesCtr(hop);
    const gather = { buffer: Buffer.alloc(0) };
    let out: Buffer | undefined;
    const frame = cellFramer((cells, count) => {
      const payloads = layer.update(gatherPayloads(cells, count, gather));
      // A middle hop's one look at each payload: recognized is not zero, so the cell is not its own
      // (zero by chance once in 2^16 cells, where PSP then compares a digest).
      for (let o = 0; o < payloads.length; o += CELL_PAYLOAD_LEN) if (payloads[o] === 0 && payloads[o + 1] === 0) zeroByChance++;
      out = encodeCells(payloads, count);
    });
    return (chunk) => {
      out = undefined;
      frame(chunk);
      return out;
    };
  };
  const relays = await startRelayChain(creds, host, deliver, middleHop);
  try {
    const client = relays.client;
    const layers = [aesCtr(0), aesCtr(1), aesCtr(2)];
    const sealing = new RunChain();
    const source = Buffer.alloc(MESSAGE_BYTES, 7);
    const staging = Buffer.allocUnsafe(BATCH_CELLS * CELL_PAYLOAD_LEN);
    let sourceOffset = 0;
    const cpu = process.cpuUsage();
    const loop = performance.eventLoopUtilization();
    const started = performance.now();
    for (let sent = 0; sent < total;) {
      for (let i = 0; i < BATCH_CELLS; i++) {
        const o = i * CELL_PAYLOAD_LEN;
        // Recognized and digest zero, as the last hop expects them. A message's last cell carries what is
        // left of it (65,536 is not a multiple of 490), as in PSP.
        const n = Math.min(APP_BYTES, MESSAGE_BYTES - sourceOffset);
        staging.fill(0, o, o + APP_OFFSET);
        staging.writeUInt16BE(n + FRAGMENT_HEADER_LEN, o + RELAY_LENGTH_OFFSET);
        staging[o + RELAY_COMMAND_OFFSET] = RelayCommand.DATA;
        source.copy(staging, o + APP_OFFSET, sourceOffset, sourceOffset + n);
        if (n < APP_BYTES) staging.fill(0, o + APP_OFFSET + n, o + CELL_PAYLOAD_LEN);
        sourceOffset = (sourceOffset + n) % MESSAGE_BYTES;
        sent += n;
      }
      for (let first = 0; first < BATCH_CELLS; first += MAX_RUN_PAYLOADS) sealing.seal(staging, first, first + MAX_RUN_PAYLOADS);
      let payloads: Buffer = staging;
      // The last hop's layer first, so each relay removes its own in path order.
      for (let layer = layers.length - 1; layer >= 0; layer--) payloads = (layers[layer] as ReturnType<typeof aesCtr>).update(payloads);
      if (!client.write(encodeCells(payloads, BATCH_CELLS))) await once(client, "drain");
    }
    const ended = await done;
    const used = process.cpuUsage(cpu);
    const eventLoopUtilization = performance.eventLoopUtilization(loop).utilization;
    if (failure) throw failure;
    // Expected: one in 2^16 of the cells the two middle hops see; far more means a layer did not come off.
    if (zeroByChance > (2 * delivered) / APP_BYTES / 1000)
      throw new Error(`cell prototype: ${zeroByChance} middle-hop payloads looked addressed to the hop; the layers are wrong`);
    return { bps: (delivered * 1000) / (ended - started), cpuMs: (used.user + used.system) / 1000, eventLoopUtilization };
  } finally {
    relays.close();
  }
}

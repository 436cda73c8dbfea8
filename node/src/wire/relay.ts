/**
 * The relay-cell payload: what travels, onion-encrypted, inside RELAY and
 * RELAY_EARLY cells.
 *
 * Owns the 507-byte layout (all integers big-endian):
 *   recognized (2) ‖ stream id (2) ‖ digest (4) ‖ length (2) ‖ relay command (1) ‖ data (496)
 * Bytes of `data` past `length` are padding. Encode writes zeros there unless
 * asked for random padding; decode ignores their content (never rejects it),
 * so senders may pick either, and the running digest covers them regardless.
 *
 * `recognized` and `digest` are carried, not checked: the onion layer decides
 * whether a decrypted cell is for this hop (recognized = 0 and digest match).
 *
 * Relay command numbers are partitioned by layer so later layers can add
 * theirs without colliding: 1-31 onion (below), 32-63 presence/rendezvous,
 * 64-95 streaming, 96-127 directory/DHT over circuits, 128-255 reserved.
 * A layer adds its commands once at start-up with registerRelayCommands.
 *
 * Trusts nothing about its input: every malformed payload is a WireError.
 */
import { randomBytes } from "../crypto/backend.js";
import { CELL_PAYLOAD_LEN } from "./cell.js";
import { WireError } from "./errors.js";

export const RELAY_HEADER_LEN = 11;
export const RELAY_DATA_LEN = CELL_PAYLOAD_LEN - RELAY_HEADER_LEN; // 496
export const RELAY_RECOGNIZED_OFFSET = 0;
export const RELAY_STREAM_ID_OFFSET = 2;
export const RELAY_DIGEST_OFFSET = 4;
export const RELAY_DIGEST_LEN = 4;
export const RELAY_LENGTH_OFFSET = 8;
export const RELAY_COMMAND_OFFSET = 10;
export const RELAY_DATA_OFFSET = RELAY_HEADER_LEN;
export const MAX_STREAM_ID = 0xffff;

/** The onion layer's relay commands (1-31). */
export const RelayCommand = {
  BEGIN: 1,
  DATA: 2,
  END: 3,
  CONNECTED: 4,
  SENDME: 5,
  EXTEND: 6,
  EXTENDED: 7,
  TRUNCATE: 8,
  TRUNCATED: 9,
  DROP: 10,
} as const;

/** Command number ranges owned by each layer. */
export const RELAY_COMMAND_RANGES = {
  onion: [1, 31],
  presence: [32, 63],
  stream: [64, 95],
  directory: [96, 127],
} as const satisfies Record<string, readonly [number, number]>;

export interface RelayPayload {
  /** 0 on a cell meant for the hop that decrypted it. */
  recognized: number;
  /** 0 for circuit-level commands, else the stream the cell belongs to. */
  streamId: number;
  /** The first 4 bytes of the running digest (the onion layer fills it). */
  digest: Uint8Array;
  command: number;
  /** At most 496 bytes. Decoded payloads carry a view into the input. */
  data: Uint8Array;
}

/** What encode takes: recognized defaults to 0 and digest to four zero bytes (the onion layer fills it later). */
export type RelayPayloadInput = Omit<RelayPayload, "recognized" | "digest"> & { recognized?: number; digest?: Uint8Array };

export interface EncodeRelayOptions {
  /** "zero" (default) or "random" bytes after the data. */
  padding?: "zero" | "random";
}

const knownCommands = new Map<number, string>(Object.entries(RelayCommand).map(([name, value]) => [value, name]));

/**
 * Adds relay commands for a later layer, e.g. `registerRelayCommands({ INTRODUCE: 33 })`.
 * Re-registering the same name with the same number is a no-op; a number
 * already taken by another name, or outside 1..255, is a "bad-field" error.
 */
export function registerRelayCommands(commands: Record<string, number>): void {
  for (const [name, value] of Object.entries(commands)) {
    if (!Number.isInteger(value) || value < 1 || value > 255) {
      throw new WireError("bad-field", `relay command ${name} must be an integer in 1..255, got ${value}`);
    }
    const existing = knownCommands.get(value);
    if (existing !== undefined && existing !== name) {
      throw new WireError("bad-field", `relay command number ${value} is already ${existing}; pick a free number in your layer's range`);
    }
  }
  for (const [name, value] of Object.entries(commands)) knownCommands.set(value, name);
}

/** True for a relay command this process knows (built-in or registered). */
export function isKnownRelayCommand(command: number): boolean {
  return knownCommands.has(command);
}

/** The name of a relay command, or undefined. */
export function relayCommandName(command: number): string | undefined {
  return knownCommands.get(command);
}

const ZERO_DIGEST = new Uint8Array(RELAY_DIGEST_LEN);

/** Writes a relay payload into `target[offset .. offset+507)`, e.g. straight into a cell buffer. */
export function encodeRelayPayloadInto(relay: RelayPayloadInput, target: Uint8Array, offset: number, options: EncodeRelayOptions = {}): void {
  const { recognized = 0, streamId, command, data } = relay;
  const digest = relay.digest ?? ZERO_DIGEST;
  if (!Number.isInteger(recognized) || recognized < 0 || recognized > 0xffff) {
    throw new WireError("bad-field", `recognized must be an integer in 0..65535, got ${String(recognized)}`);
  }
  if (!Number.isInteger(streamId) || streamId < 0 || streamId > MAX_STREAM_ID) {
    throw new WireError("bad-stream-id", `stream id must be an integer in 0..${MAX_STREAM_ID}, got ${String(streamId)}`);
  }
  if (!knownCommands.has(command)) {
    throw new WireError("unknown-relay-command", `unknown relay command ${String(command)}; use RelayCommand or register the layer's commands`);
  }
  if (!(digest instanceof Uint8Array) || digest.length !== RELAY_DIGEST_LEN) {
    throw new WireError("bad-field", `relay digest must be ${RELAY_DIGEST_LEN} bytes`);
  }
  if (!(data instanceof Uint8Array) || data.length > RELAY_DATA_LEN) {
    throw new WireError(
      "bad-relay-length",
      `relay data must be a Uint8Array of at most ${RELAY_DATA_LEN} bytes, got ${data instanceof Uint8Array ? data.length : typeof data}; use fragmentMessage`,
    );
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + CELL_PAYLOAD_LEN > target.length) {
    throw new WireError("bad-length", `target has no room for a ${CELL_PAYLOAD_LEN}-byte relay payload at offset ${offset}`);
  }
  writeRelayHeader(target, offset, streamId, command, data.length, recognized);
  target.set(digest, offset + RELAY_DIGEST_OFFSET);
  target.set(data, offset + RELAY_DATA_OFFSET);
  const padStart = offset + RELAY_DATA_OFFSET + data.length;
  const padEnd = offset + CELL_PAYLOAD_LEN;
  if (options.padding === "random") target.set(randomBytes(padEnd - padStart), padStart);
  else target.fill(0, padStart, padEnd);
}

/**
 * Writes a relay header with a zero digest at `offset`, unchecked: for
 * callers whose fields come from their own state (the bulk path, which
 * writes the data after it), never from a peer.
 */
export function writeRelayHeader(target: Uint8Array, offset: number, streamId: number, command: number, length: number, recognized = 0): void {
  target[offset] = recognized >>> 8;
  target[offset + 1] = recognized & 0xff;
  target[offset + 2] = streamId >>> 8;
  target[offset + 3] = streamId & 0xff;
  target[offset + 4] = target[offset + 5] = target[offset + 6] = target[offset + 7] = 0;
  target[offset + 8] = length >>> 8;
  target[offset + 9] = length & 0xff;
  target[offset + 10] = command;
}

/** Encodes a relay payload as exactly 507 bytes (a cell payload). */
export function encodeRelayPayload(relay: RelayPayloadInput, options: EncodeRelayOptions = {}): Uint8Array {
  const out = new Uint8Array(CELL_PAYLOAD_LEN);
  encodeRelayPayloadInto(relay, out, 0, options);
  return out;
}

/**
 * Decodes a 507-byte relay payload (a decrypted cell payload). `data` and
 * `digest` are views into `payload`. Throws WireError "bad-length",
 * "bad-relay-length" (length > 496) or "unknown-relay-command".
 */
export function decodeRelayPayload(payload: Uint8Array): RelayPayload {
  if (!(payload instanceof Uint8Array) || payload.length !== CELL_PAYLOAD_LEN) {
    throw new WireError(
      "bad-length",
      `a relay payload is ${CELL_PAYLOAD_LEN} bytes, got ${payload instanceof Uint8Array ? payload.length : typeof payload}`,
    );
  }
  const length = ((payload[8] as number) << 8) | (payload[9] as number);
  if (length > RELAY_DATA_LEN) {
    throw new WireError("bad-relay-length", `relay length field is ${length}, more than the ${RELAY_DATA_LEN} data bytes of a cell`);
  }
  const command = payload[10] as number;
  if (!knownCommands.has(command)) {
    throw new WireError("unknown-relay-command", `unknown relay command ${command}`);
  }
  return {
    recognized: ((payload[0] as number) << 8) | (payload[1] as number),
    streamId: ((payload[2] as number) << 8) | (payload[3] as number),
    digest: payload.subarray(RELAY_DIGEST_OFFSET, RELAY_DIGEST_OFFSET + RELAY_DIGEST_LEN),
    command,
    data: payload.subarray(RELAY_DATA_OFFSET, RELAY_DATA_OFFSET + length),
  };
}

/**
 * The fixed-size cell: the unit every link carries.
 *
 * Owns the 512-byte layout: circuit id (4, big-endian) ‖ command (1) ‖
 * payload (507). Payloads shorter than 507 bytes are zero-padded on encode;
 * decode returns a 507-byte view into the caller's buffer (no copy), so the
 * caller must copy it if it reuses the buffer.
 *
 * Link-level commands (PADDING, VERSIONS, AUTH, CLOSE) travel on circuit id 0;
 * circuit commands (CREATE, CREATED, RELAY, DESTROY, RELAY_EARLY) on a non-zero
 * id. Both encode and decode enforce this, so a peer cannot smuggle a circuit
 * command onto the link's control channel or the other way round.
 *
 * Trusts nothing about its input bytes: every malformed cell is a WireError.
 */
import { codeLookup } from "../base/codes.js";
import { WireError } from "./errors.js";

export const CELL_LEN = 512;
export const CIRC_ID_LEN = 4;
export const CELL_HEADER_LEN = 5;
export const CELL_PAYLOAD_LEN = 507;
export const MAX_CIRC_ID = 0xffff_ffff;

/** Cell command bytes. 6 is reserved (Tor's CREATE_FAST; PSP has none). */
export const CellCommand = {
  PADDING: 0,
  CREATE: 1,
  CREATED: 2,
  RELAY: 3,
  DESTROY: 4,
  RELAY_EARLY: 5,
  VERSIONS: 7,
  AUTH: 8,
  CLOSE: 9,
  /** Reserved: the DHT's first, DHT-only request/response framing; superseded by RPC (the DHT is service "dht" on it). No handler is registered for it. */
  DHT: 10,
  /** Request/response messages between two linked peers for any service (node/src/link/rpc.ts, docs/spec/link.md §8); circuit id 0. */
  RPC: 11,
} as const;

export type CellCommandName = keyof typeof CellCommand;
export type CellCommandValue = (typeof CellCommand)[CellCommandName];

export interface Cell {
  /** 0 for link-level commands, 1..2^32-1 for circuit commands. */
  circId: number;
  command: number;
  /** At most 507 bytes; zero-padded to 507 on encode. Decoded cells carry a 507-byte view. */
  payload: Uint8Array;
}

// Lookup table: 0 = unknown, 1 = link control command, 2 = circuit command,
// 3 = link-level data command (circuit id 0 like link control, but handed to an upper layer's handler).
const COMMAND_CLASS = new Uint8Array(256);
for (const c of [CellCommand.PADDING, CellCommand.VERSIONS, CellCommand.AUTH, CellCommand.CLOSE]) COMMAND_CLASS[c] = 1;
COMMAND_CLASS[CellCommand.DHT] = 3;
COMMAND_CLASS[CellCommand.RPC] = 3;
for (const c of [CellCommand.CREATE, CellCommand.CREATED, CellCommand.RELAY, CellCommand.DESTROY, CellCommand.RELAY_EARLY]) {
  COMMAND_CLASS[c] = 2;
}

const cellCommands = codeLookup(CellCommand);

/** True for a command byte this version knows. */
export function isKnownCellCommand(command: number): command is CellCommandValue {
  return Number.isInteger(command) && command >= 0 && command <= 255 && COMMAND_CLASS[command] !== 0;
}

/** True for the link control commands the link handles itself (PADDING, VERSIONS, AUTH, CLOSE; all on circuit id 0). DHT also uses circuit id 0 but goes to a registered handler. */
export function isLinkCommand(command: number): boolean {
  return Number.isInteger(command) && command >= 0 && command <= 255 && COMMAND_CLASS[command] === 1;
}

/** The command's name, e.g. "RELAY", or undefined for an unknown byte. */
export function cellCommandName(command: number): CellCommandName | undefined {
  return cellCommands.nameOf(command);
}

function checkCircIdForCommand(circId: number, command: number): void {
  const linkLevel = COMMAND_CLASS[command] === 1 || COMMAND_CLASS[command] === 3;
  if (linkLevel && circId !== 0) {
    throw new WireError(
      "bad-circ-id",
      `${cellCommandName(command)} is a link-level command and must use circuit id 0, got ${circId}`,
    );
  }
  if (!linkLevel && circId === 0) {
    throw new WireError("bad-circ-id", `${cellCommandName(command)} is a circuit command and needs a non-zero circuit id`);
  }
}

/**
 * Writes `cell` as 512 bytes into `target` at `offset` (for batching many cells
 * into one buffer before a single socket write or cipher call).
 */
export function encodeCellInto(cell: Cell, target: Uint8Array, offset: number): void {
  const { circId, command, payload } = cell;
  if (!Number.isInteger(circId) || circId < 0 || circId > MAX_CIRC_ID) {
    throw new WireError("bad-circ-id", `circuit id must be an integer in 0..${MAX_CIRC_ID}, got ${String(circId)}`);
  }
  if (!isKnownCellCommand(command)) {
    throw new WireError("unknown-command", `unknown cell command ${String(command)}; use a CellCommand value`);
  }
  checkCircIdForCommand(circId, command);
  if (!(payload instanceof Uint8Array) || payload.length > CELL_PAYLOAD_LEN) {
    throw new WireError(
      "bad-length",
      `cell payload must be a Uint8Array of at most ${CELL_PAYLOAD_LEN} bytes, got ${payload instanceof Uint8Array ? payload.length : typeof payload}; fragment longer messages`,
    );
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + CELL_LEN > target.length) {
    throw new WireError("bad-length", `target has no room for a ${CELL_LEN}-byte cell at offset ${offset}`);
  }
  target[offset] = circId >>> 24;
  target[offset + 1] = (circId >>> 16) & 0xff;
  target[offset + 2] = (circId >>> 8) & 0xff;
  target[offset + 3] = circId & 0xff;
  target[offset + 4] = command;
  target.set(payload, offset + CELL_HEADER_LEN);
  target.fill(0, offset + CELL_HEADER_LEN + payload.length, offset + CELL_LEN);
}

/** Encodes one cell as exactly 512 bytes. */
export function encodeCell(cell: Cell): Uint8Array {
  const out = new Uint8Array(CELL_LEN);
  encodeCellInto(cell, out, 0);
  return out;
}

/** Encodes cells back to back into one buffer of 512 × cells.length bytes. */
export function encodeCells(cells: readonly Cell[]): Uint8Array {
  const out = new Uint8Array(CELL_LEN * cells.length);
  for (let i = 0; i < cells.length; i++) encodeCellInto(cells[i] as Cell, out, i * CELL_LEN);
  return out;
}

/**
 * Checks a buffer of pre-encoded cells (512 bytes each, back to back) before
 * it goes out as it is: a whole number of cells, each with a known command
 * and a circuit id that suits it (the rules `encodeCellInto` applies).
 * Throws WireError otherwise. Payload bytes are not looked at.
 */
export function checkEncodedCells(bytes: Uint8Array): void {
  if (!(bytes instanceof Uint8Array) || bytes.length % CELL_LEN !== 0) {
    throw new WireError("bad-length", `encoded cells must be a Uint8Array of a multiple of ${CELL_LEN} bytes, got ${bytes instanceof Uint8Array ? bytes.length : typeof bytes}`);
  }
  for (let o = 0; o < bytes.length; o += CELL_LEN) {
    const command = bytes[o + 4] as number;
    const cls = COMMAND_CLASS[command];
    if (cls === 0) throw new WireError("unknown-command", `unknown cell command ${command} in encoded cell ${o / CELL_LEN}`);
    const zeroId = bytes[o] === 0 && bytes[o + 1] === 0 && bytes[o + 2] === 0 && bytes[o + 3] === 0;
    // Fast accept for the common case: a circuit command on a non-zero id.
    if (cls === 2 ? !zeroId : zeroId) continue;
    checkCircIdForCommand(((bytes[o] as number) * 0x100_0000 + ((bytes[o + 1] as number) << 16)) + ((bytes[o + 2] as number) << 8) + (bytes[o + 3] as number), command);
  }
}

/**
 * Decodes the cell at `offset`. Needs at least 512 bytes from `offset`; extra
 * bytes after the cell are ignored (so a batch can be walked cell by cell).
 * The payload is a 507-byte view into `bytes` (a plain Uint8Array, never a Buffer).
 */
export function decodeCell(bytes: Uint8Array, offset = 0): Cell {
  if (!(bytes instanceof Uint8Array)) throw new WireError("bad-length", `a cell must be a Uint8Array, got ${typeof bytes}`);
  if (!Number.isInteger(offset) || offset < 0 || bytes.length - offset < CELL_LEN) {
    throw new WireError(
      "bad-length",
      `a cell is ${CELL_LEN} bytes, but only ${Math.max(0, bytes.length - (Number.isInteger(offset) && offset > 0 ? offset : 0))} are available at offset ${offset}`,
    );
  }
  const circId = ((bytes[offset] as number) * 0x100_0000 + ((bytes[offset + 1] as number) << 16)) + ((bytes[offset + 2] as number) << 8) + (bytes[offset + 3] as number);
  const command = bytes[offset + 4] as number;
  if (COMMAND_CLASS[command] === 0) {
    throw new WireError("unknown-command", `unknown cell command ${command} on circuit ${circId}`);
  }
  checkCircIdForCommand(circId, command);
  // A plain Uint8Array view even when `bytes` is a Buffer: cheaper to make than a Buffer view, and
  // `.slice()` downstream then copies instead of pinning the socket's read buffer.
  return { circId, command, payload: new Uint8Array(bytes.buffer, bytes.byteOffset + offset + CELL_HEADER_LEN, CELL_PAYLOAD_LEN) };
}

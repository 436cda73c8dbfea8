/**
 * Link-level cell bodies (VERSIONS, AUTH, CLOSE) and the cell framer.
 *
 * Owns the payload layouts of the three link-control cells (docs/spec/link.md
 * §3) and the reassembly of a TLS byte stream into 512-byte cells. The cell
 * header itself (circuit id, command) is wire/cell.ts's; this module only
 * reads and writes payloads and cuts the stream.
 *
 * Trusts nothing about received bytes: every parser returns a LinkError of
 * kind "protocol" for a malformed body and never throws anything else.
 */
import { CELL_LEN, CELL_PAYLOAD_LEN, CellCommand, encodeCell } from "../wire/cell.js";
import { CloseReason, LinkError } from "./errors.js";

/** Link protocol versions this implementation speaks, highest first. */
export const SUPPORTED_LINK_VERSIONS: readonly number[] = [1];
/** At most this many versions in one VERSIONS cell. */
export const MAX_VERSIONS = 64;

/** AUTH method byte: the initiator is an anonymous client and proves nothing. */
export const AUTH_METHOD_ANONYMOUS = 0;
/** AUTH method byte: Ed25519 identity key signing the transcript (with the TLS exporter). */
export const AUTH_METHOD_ED25519_EKM = 1;
export const IDENTITY_KEY_LEN = 32;
export const SIGNATURE_LEN = 64;

/** Longest CLOSE message text, in UTF-8 bytes: the payload minus reason (1) and length (2). */
export const MAX_CLOSE_MESSAGE_LEN = CELL_PAYLOAD_LEN - 3;

// ---------------------------------------------------------------- VERSIONS

/**
 * VERSIONS body: count (1) ‖ count × version (2, big-endian) ‖ zero padding.
 * Returns just the meaningful prefix (count ‖ versions): the transcript signs it.
 */
export function encodeVersionsBody(versions: readonly number[]): Uint8Array {
  if (versions.length < 1 || versions.length > MAX_VERSIONS) {
    throw new LinkError("config", `a VERSIONS cell lists 1..${MAX_VERSIONS} versions, got ${versions.length}`);
  }
  const body = new Uint8Array(1 + 2 * versions.length);
  body[0] = versions.length;
  const seen = new Set<number>();
  versions.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 1 || v > 0xffff || seen.has(v)) {
      throw new LinkError("config", `link versions must be distinct integers in 1..65535, got ${String(v)}`);
    }
    seen.add(v);
    body[1 + 2 * i] = v >>> 8;
    body[2 + 2 * i] = v & 0xff;
  });
  return body;
}

export interface ParsedVersions {
  versions: number[];
  /** count ‖ versions, exactly as received: what the transcript covers. */
  body: Uint8Array;
}

export function parseVersionsPayload(payload: Uint8Array): ParsedVersions | LinkError {
  const count = payload[0] ?? 0;
  if (count < 1 || count > MAX_VERSIONS || 1 + 2 * count > payload.length) {
    return new LinkError("protocol", `VERSIONS cell lists ${count} versions; 1..${MAX_VERSIONS} required`, {
      closeReason: CloseReason.PROTOCOL_VIOLATION,
    });
  }
  const versions: number[] = [];
  for (let i = 0; i < count; i++) {
    const v = ((payload[1 + 2 * i] as number) << 8) | (payload[2 + 2 * i] as number);
    if (v === 0 || versions.includes(v)) {
      return new LinkError("protocol", `VERSIONS cell has a zero or repeated version ${v}`, {
        closeReason: CloseReason.PROTOCOL_VIOLATION,
      });
    }
    versions.push(v);
  }
  return { versions, body: payload.slice(0, 1 + 2 * count) };
}

/** The highest version in both lists, or undefined when they share none. */
export function negotiateVersion(ours: readonly number[], theirs: readonly number[]): number | undefined {
  let best: number | undefined;
  for (const v of ours) if (theirs.includes(v) && (best === undefined || v > best)) best = v;
  return best;
}

// ---------------------------------------------------------------- AUTH

export type AuthBody =
  | { method: typeof AUTH_METHOD_ANONYMOUS }
  | { method: typeof AUTH_METHOD_ED25519_EKM; identity: Uint8Array; signature: Uint8Array };

/** AUTH body: method (1) ‖ [identity key (32) ‖ signature (64)] ‖ zero padding. */
export function encodeAuthPayload(auth: AuthBody): Uint8Array {
  if (auth.method === AUTH_METHOD_ANONYMOUS) return Uint8Array.of(AUTH_METHOD_ANONYMOUS);
  const out = new Uint8Array(1 + IDENTITY_KEY_LEN + SIGNATURE_LEN);
  out[0] = AUTH_METHOD_ED25519_EKM;
  out.set(auth.identity, 1);
  out.set(auth.signature, 1 + IDENTITY_KEY_LEN);
  return out;
}

export function parseAuthPayload(payload: Uint8Array): AuthBody | LinkError {
  const method = payload[0];
  if (method === AUTH_METHOD_ANONYMOUS) return { method };
  if (method === AUTH_METHOD_ED25519_EKM && payload.length >= 1 + IDENTITY_KEY_LEN + SIGNATURE_LEN) {
    return {
      method,
      identity: payload.slice(1, 1 + IDENTITY_KEY_LEN),
      signature: payload.slice(1 + IDENTITY_KEY_LEN, 1 + IDENTITY_KEY_LEN + SIGNATURE_LEN),
    };
  }
  return new LinkError("protocol", `AUTH cell has unknown method ${String(method)}`, {
    closeReason: CloseReason.PROTOCOL_VIOLATION,
  });
}

// ---------------------------------------------------------------- CLOSE

export interface CloseBody {
  reason: number;
  message: string;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: false });

/** CLOSE body: reason (1) ‖ message length (2, big-endian) ‖ UTF-8 message ‖ zero padding. */
export function encodeClosePayload(reason: number, message: string): Uint8Array {
  let text = utf8.encode(message);
  if (text.length > MAX_CLOSE_MESSAGE_LEN) {
    // Cut on a character boundary so the peer never sees a broken code point.
    let end = MAX_CLOSE_MESSAGE_LEN;
    while (end > 0 && ((text[end] as number) & 0xc0) === 0x80) end--;
    text = text.subarray(0, end);
  }
  const out = new Uint8Array(3 + text.length);
  out[0] = reason & 0xff;
  out[1] = text.length >>> 8;
  out[2] = text.length & 0xff;
  out.set(text, 3);
  return out;
}

export function parseClosePayload(payload: Uint8Array): CloseBody {
  const reason = payload[0] ?? CloseReason.PROTOCOL_VIOLATION;
  // A bad length is the peer's problem, not a reason to lose its reason code: clamp it.
  const len = Math.min(((payload[1] ?? 0) << 8) | (payload[2] ?? 0), Math.max(0, payload.length - 3));
  return { reason, message: utf8Decoder.decode(payload.subarray(3, 3 + len)) };
}

/** A complete CLOSE cell, ready to write. */
export function encodeCloseCell(reason: number, message: string): Uint8Array {
  return encodeCell({ circId: 0, command: CellCommand.CLOSE, payload: encodeClosePayload(reason, message) });
}

// ---------------------------------------------------------------- framer

/**
 * Cuts a byte stream into 512-byte cells. Whole cells inside a chunk are
 * handed out as (chunk, offset) without copying; only a cell split across
 * chunks is copied, into a fresh 512-byte buffer, so at most 511 bytes are
 * copied per chunk boundary. Nothing handed out is ever overwritten later,
 * so views into it (decoded payloads) stay valid for as long as a consumer
 * keeps them.
 */
export class CellFramer {
  private partial = new Uint8Array(CELL_LEN);
  private partialLen = 0;
  private remainder: Uint8Array | undefined;

  /** Bytes held back waiting for the rest of a cell. */
  get bufferedBytes(): number {
    return this.partialLen;
  }

  /**
   * Feeds `chunk`. Calls `onCell(bytes, offset)` for each complete cell, in
   * order. If `onCell` returns false the framer stops
   * and keeps the unread bytes for `takeRemainder()`; push returns false.
   */
  push(chunk: Uint8Array, onCell: (bytes: Uint8Array, offset: number) => boolean): boolean {
    let pos = 0;
    if (this.partialLen > 0) {
      const need = CELL_LEN - this.partialLen;
      if (chunk.length < need) {
        this.partial.set(chunk, this.partialLen);
        this.partialLen += chunk.length;
        return true;
      }
      const whole = this.partial;
      whole.set(chunk.subarray(0, need), this.partialLen);
      this.partial = new Uint8Array(CELL_LEN);
      this.partialLen = 0;
      pos = need;
      if (!onCell(whole, 0)) return this.stop(chunk, pos);
    }
    const end = chunk.length - CELL_LEN;
    while (pos <= end) {
      const offset = pos;
      pos += CELL_LEN;
      if (!onCell(chunk, offset)) return this.stop(chunk, pos);
    }
    if (pos < chunk.length) {
      this.partial.set(chunk.subarray(pos), 0);
      this.partialLen = chunk.length - pos;
    }
    return true;
  }

  /** After push returned false: every byte not yet handed out (unread cells and any partial cell). */
  takeRemainder(): Uint8Array {
    const rest = this.remainder ?? new Uint8Array(0);
    this.remainder = undefined;
    return rest;
  }

  private stop(chunk: Uint8Array, pos: number): false {
    this.remainder = chunk.subarray(pos);
    return false;
  }
}

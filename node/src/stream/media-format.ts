/**
 * The stream formats a node and a web page both read, written once: the
 * ticket (docs/spec/streaming.md "Tickets") and what a sealed chunk is made
 * of ("Chunk crypto": its epoch, the epoch key's HKDF info, nonce, AAD and
 * plaintext layout).
 *
 * Environment-neutral on purpose: no node:* imports and no Buffer, so the
 * dashboard's page player (dashboard/src/player/, bundled for the browser)
 * imports this file rather than restating it (the dashboard's typecheck,
 * which has no Node types, holds it to that). Each side keeps its own error
 * type and primitives: stream/ticket.ts and stream/crypto.ts (node:crypto)
 * in the node, dashboard/src/player/ (@noble) in the page.
 *
 * Trusts nothing in a ticket string: `readTicket` hands every way one can be
 * wrong to the caller's `refuse` and never returns a wrong stream.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { base64UrlDecode, base64UrlEncode } from "../base/base64url.js";
import { bytesEqual, concatBytes } from "../base/bytes.js";

export const STREAM_ID_LEN = 16;
export const STREAM_KEY_LEN = 32;
/** An Ed25519 node identity (a ticket's landing node, a stream link's peer). */
export const NODE_IDENTITY_LEN = 32;
/** Longest host name or address in a ticket or a stream-link node entry. */
export const MAX_HOST_LEN = 253;

// ------------------------------------------------------------------ tickets

export const TICKET_PREFIX = "pspstream1:";
export const TICKET_VERSION = 1;
/** What a refused ticket's reader should do. */
export const TICKET_FIX = `copy the whole ticket again from the producer (it starts with ${TICKET_PREFIX})`;
const CHECK_LEN = 4;
const CHECK_DOMAIN = new TextEncoder().encode("psp-ticket-v1");
/** VERSION ‖ stream id ‖ stream key ‖ landing identity ‖ port (2) ‖ host length (1). */
const FIXED_LEN = 1 + STREAM_ID_LEN + STREAM_KEY_LEN + NODE_IDENTITY_LEN + 2 + 1;

export interface StreamTicket {
  streamId: Uint8Array;
  streamKey: Uint8Array;
  /** The landing node's Ed25519 identity. */
  landing: Uint8Array;
  /** Where the landing node listens for stream links. */
  host: string;
  port: number;
}

/** CHECK: the first 4 bytes of SHA-256("psp-ticket-v1" ‖ everything before it). */
function ticketCheck(payload: Uint8Array): Uint8Array {
  return sha256(concatBytes(CHECK_DOMAIN, payload)).subarray(0, CHECK_LEN);
}

/** Why `t` cannot be written as a ticket, or undefined when it can. */
export function ticketFieldsProblem(t: StreamTicket): string | undefined {
  if (t.streamId?.length !== STREAM_ID_LEN || t.streamKey?.length !== STREAM_KEY_LEN || t.landing?.length !== NODE_IDENTITY_LEN) {
    return `a ticket needs a ${STREAM_ID_LEN}-byte stream id, a ${STREAM_KEY_LEN}-byte stream key and a ${NODE_IDENTITY_LEN}-byte landing identity`;
  }
  if (typeof t.host !== "string" || new TextEncoder().encode(t.host).length > MAX_HOST_LEN) return `a ticket's host is at most ${MAX_HOST_LEN} bytes of UTF-8`;
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 0xffff) return "a ticket's port is 1..65535";
  return undefined;
}

/** `pspstream1:` ‖ base64url(VERSION ‖ fields ‖ CHECK); the caller has checked the fields (ticketFieldsProblem). */
export function ticketText(t: StreamTicket): string {
  const host = new TextEncoder().encode(t.host);
  const payload = concatBytes(Uint8Array.of(TICKET_VERSION), t.streamId, t.streamKey, t.landing, Uint8Array.of(t.port >>> 8, t.port & 0xff, host.length), host);
  return TICKET_PREFIX + base64UrlEncode(concatBytes(payload, ticketCheck(payload)));
}

/** The fields of ticket `text` (surrounding white space ignored); every refusal is `refuse(why)`, thrown. */
export function readTicket(text: unknown, refuse: (why: string) => Error): StreamTicket {
  if (typeof text !== "string") throw refuse("a ticket is a string");
  const trimmed = text.trim();
  if (!trimmed.startsWith(TICKET_PREFIX)) throw refuse(`a stream ticket starts with "${TICKET_PREFIX}"`);
  const body = trimmed.slice(TICKET_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw refuse("the ticket holds characters outside base64url: it was mistyped");
  const bytes = base64UrlDecode(body);
  if (!bytes) throw refuse("the ticket's last characters are not a valid ending: it was mistyped or cut");
  if (bytes.length < FIXED_LEN + CHECK_LEN) throw refuse("the ticket is too short: it was cut");
  const payload = bytes.subarray(0, bytes.length - CHECK_LEN);
  // A typo check, not a secret: plain comparison is enough.
  if (!bytesEqual(ticketCheck(payload), bytes.subarray(bytes.length - CHECK_LEN))) throw refuse("the ticket's checksum does not match: it was mistyped or cut");
  if (payload[0] !== TICKET_VERSION) throw refuse(`ticket version ${payload[0]} is not supported (this software reads version ${TICKET_VERSION})`);
  let at = 1;
  const take = (n: number): Uint8Array => payload.slice(at, (at += n));
  const streamId = take(STREAM_ID_LEN);
  const streamKey = take(STREAM_KEY_LEN);
  const landing = take(NODE_IDENTITY_LEN);
  const port = ((payload[at] as number) << 8) | (payload[at + 1] as number);
  const hostLen = payload[at + 2] as number;
  at += 3;
  if (payload.length - at !== hostLen) throw refuse("the ticket's host length does not match its size");
  let host: string;
  try {
    host = new TextDecoder("utf-8", { fatal: true }).decode(payload.subarray(at));
  } catch {
    throw refuse("the ticket's host is not UTF-8");
  }
  if (port < 1) throw refuse("the ticket's port is 0");
  return { streamId, streamKey, landing, host, port };
}

// ------------------------------------------------------------------ chunks

/** A new epoch key every 2^16 chunks. */
export const EPOCH_BITS = 16n;
/** The producer's time (8, ms, big-endian) that opens every chunk's plaintext. */
export const CHUNK_TIME_LEN = 8;
/** The AEAD's tag (ChaCha20-Poly1305), at the end of every sealed chunk. */
export const CHUNK_TAG_LEN = 16;
const MAX_SEQ = 0xffffffffffffffffn;
const EPOCH_INFO = new TextEncoder().encode("psp-stream-epoch-v1");
const AAD_PREFIX = new TextEncoder().encode("psp-stream-chunk-v1");

/** True when `seq` is a chunk sequence number: a 64-bit unsigned integer. */
export function isChunkSeq(seq: bigint): boolean {
  return typeof seq === "bigint" && seq >= 0n && seq <= MAX_SEQ;
}

/** The epoch of sequence number `seq`. */
export function epochOf(seq: bigint): number {
  return Number(seq >> EPOCH_BITS);
}

function be64(n: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n);
  return b;
}

/** HKDF-SHA256's info for an epoch key: "psp-stream-epoch-v1" ‖ epoch (4, big-endian); ikm = stream key, salt = stream id, 32 bytes. */
export function epochKeyInfo(epoch: number): Uint8Array {
  const info = new Uint8Array(EPOCH_INFO.length + 4);
  info.set(EPOCH_INFO);
  new DataView(info.buffer).setUint32(EPOCH_INFO.length, epoch);
  return info;
}

/** 4 zero bytes ‖ seq (8, big-endian): unique under one epoch key, since seq never repeats. */
export function chunkNonce(seq: bigint): Uint8Array {
  return concatBytes(new Uint8Array(4), be64(seq));
}

/** "psp-stream-chunk-v1" ‖ stream id ‖ seq (8): a chunk moved to another stream or position does not open. */
export function chunkAad(streamId: Uint8Array, seq: bigint): Uint8Array {
  return concatBytes(AAD_PREFIX, streamId, be64(seq));
}

/** The plaintext a chunk seals: producer time ‖ media. */
export function chunkPlaintext(media: Uint8Array, producedAt: number): Uint8Array {
  const plaintext = new Uint8Array(CHUNK_TIME_LEN + media.length);
  new DataView(plaintext.buffer).setBigUint64(0, BigInt(Math.max(0, Math.floor(producedAt))));
  plaintext.set(media, CHUNK_TIME_LEN);
  return plaintext;
}

/** The producer time and media of an opened chunk's plaintext (at least CHUNK_TIME_LEN bytes: the AEAD opened it). */
export function splitChunkPlaintext(plaintext: Uint8Array): { producedAt: number; media: Uint8Array } {
  const producedAt = Number(new DataView(plaintext.buffer, plaintext.byteOffset, CHUNK_TIME_LEN).getBigUint64(0));
  return { producedAt, media: plaintext.subarray(CHUNK_TIME_LEN) };
}

/**
 * Stream tickets: the one string a producer hands a viewer (privately)
 * (docs/spec/streaming.md "Tickets").
 *
 * Owns the layout `pspstream1:` ‖ base64url(VERSION (1) = 1 ‖ stream id (16)
 * ‖ stream key (32) ‖ landing identity (32) ‖ port (2) ‖ host length (1) ‖
 * host ‖ CHECK (4)), CHECK being the first 4 bytes of SHA-256("psp-ticket-v1"
 * ‖ everything before it). The landing identity says which consensus node
 * the stream lives on; host and port are where to dial it (the landing node
 * proves that identity on the stream link, so a wrong address cannot
 * impersonate it).
 *
 * Trusts nothing in the string: a mistyped or cut ticket is "bad-ticket"
 * with a message saying so, never a wrong stream.
 */
import { concatBytes } from "../base/bytes.js";
import { constantTimeEqual } from "../crypto/compare.js";
import { sha256 } from "../crypto/kdf.js";
import { MAX_HOST_LEN, NODE_IDENTITY_LEN, STREAM_ID_LEN } from "./frames.js";
import { STREAM_KEY_LEN } from "./crypto.js";
import { StreamMediaError } from "./media-errors.js";

export const TICKET_PREFIX = "pspstream1:";
export const TICKET_VERSION = 1;
const CHECK_LEN = 4;
const CHECK_DOMAIN = new TextEncoder().encode("psp-ticket-v1");
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

function check(payload: Uint8Array): Uint8Array {
  return sha256(concatBytes(CHECK_DOMAIN, payload)).subarray(0, CHECK_LEN);
}

export function encodeTicket(t: StreamTicket): string {
  const host = new TextEncoder().encode(t.host);
  if (t.streamId?.length !== STREAM_ID_LEN || t.streamKey?.length !== STREAM_KEY_LEN || t.landing?.length !== NODE_IDENTITY_LEN) {
    throw new StreamMediaError("bad-argument", "a ticket needs a 16-byte stream id, a 32-byte stream key and a 32-byte landing identity");
  }
  if (host.length > MAX_HOST_LEN || !Number.isInteger(t.port) || t.port < 1 || t.port > 0xffff)
    throw new StreamMediaError("bad-argument", "bad ticket host or port");
  const payload = concatBytes(Uint8Array.of(TICKET_VERSION), t.streamId, t.streamKey, t.landing, Uint8Array.of(t.port >>> 8, t.port & 0xff, host.length), host);
  return TICKET_PREFIX + Buffer.from(concatBytes(payload, check(payload))).toString("base64url");
}

function bad(message: string): StreamMediaError {
  return new StreamMediaError("bad-ticket", message, { fix: "copy the whole ticket again from the producer (it starts with pspstream1:)" });
}

export function decodeTicket(text: string): StreamTicket {
  if (typeof text !== "string") throw bad("a ticket is a string");
  const trimmed = text.trim();
  if (!trimmed.startsWith(TICKET_PREFIX)) throw bad(`a stream ticket starts with "${TICKET_PREFIX}"`);
  const body = trimmed.slice(TICKET_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw bad("the ticket holds characters outside base64url: it was mistyped");
  const bytes = new Uint8Array(Buffer.from(body, "base64url"));
  // One text per ticket: trailing bits a decoder would ignore mean it was mistyped.
  if (Buffer.from(bytes).toString("base64url") !== body) throw bad("the ticket's last characters are not a valid ending: it was mistyped or cut");
  if (bytes.length < FIXED_LEN + CHECK_LEN) throw bad("the ticket is too short: it was cut");
  const payload = bytes.subarray(0, bytes.length - CHECK_LEN);
  if (!constantTimeEqual(check(payload), bytes.subarray(bytes.length - CHECK_LEN))) throw bad("the ticket's checksum does not match: it was mistyped or cut");
  if (payload[0] !== TICKET_VERSION) throw bad(`ticket version ${payload[0]} is not supported (this node reads version ${TICKET_VERSION})`);
  let at = 1;
  const take = (n: number): Uint8Array => payload.slice(at, (at += n));
  const streamId = take(STREAM_ID_LEN);
  const streamKey = take(STREAM_KEY_LEN);
  const landing = take(NODE_IDENTITY_LEN);
  const port = ((payload[at] as number) << 8) | (payload[at + 1] as number);
  const hostLen = payload[at + 2] as number;
  at += 3;
  if (payload.length - at !== hostLen) throw bad("the ticket's host length does not match its size");
  let host: string;
  try {
    host = new TextDecoder("utf-8", { fatal: true }).decode(payload.subarray(at));
  } catch {
    throw bad("the ticket's host is not UTF-8");
  }
  if (port < 1) throw bad("the ticket's port is 0");
  return { streamId, streamKey, landing, host, port };
}

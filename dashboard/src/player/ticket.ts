/**
 * Stream tickets in the page: the same decoding as node/src/stream/ticket.ts
 * (docs/spec/streaming.md "Tickets"), written for the browser (no Buffer):
 * `pspstream1:` ‖ base64url(1 ‖ stream id (16) ‖ stream key (32) ‖ landing
 * identity (32) ‖ port (2) ‖ host length (1) ‖ host ‖ check (4)), check =
 * first 4 bytes of SHA-256("psp-ticket-v1" ‖ everything before it).
 *
 * Trusts nothing in the string: a mistyped, cut or non-canonically ended
 * ticket is PlayerError "bad-ticket". Cross-checked against the node's
 * encoder in test/unit/stream-page-player.test.ts.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { PlayerError } from "./errors.js";

export const TICKET_PREFIX = "pspstream1:";
const TICKET_VERSION = 1;
const STREAM_ID_LEN = 16;
const STREAM_KEY_LEN = 32;
const IDENTITY_LEN = 32;
const CHECK_LEN = 4;
const FIXED_LEN = 1 + STREAM_ID_LEN + STREAM_KEY_LEN + IDENTITY_LEN + 2 + 1;
const CHECK_DOMAIN = new TextEncoder().encode("psp-ticket-v1");
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

export interface PageTicket {
  streamId: Uint8Array;
  streamKey: Uint8Array;
  landing: Uint8Array;
  host: string;
  port: number;
}

/** base64url without padding; undefined for a character outside the alphabet. */
export function base64UrlDecode(text: string): Uint8Array | undefined {
  const out = new Uint8Array(Math.floor((text.length * 6) / 8));
  let bits = 0;
  let value = 0;
  let at = 0;
  for (const c of text) {
    const v = ALPHABET.indexOf(c);
    if (v < 0) return undefined;
    value = ((value << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (value >> bits) & 0xff;
    }
  }
  return out;
}

export function base64UrlEncode(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = ((value << 8) | b) & 0xffffff;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += ALPHABET[(value >> bits) & 63];
    }
  }
  if (bits > 0) out += ALPHABET[(value << (6 - bits)) & 63];
  return out;
}

export function hexOfBytes(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

function bad(message: string): PlayerError {
  return new PlayerError("bad-ticket", `${message}; copy the whole ticket again from the producer (it starts with ${TICKET_PREFIX})`);
}

export function decodePageTicket(text: string): PageTicket {
  if (typeof text !== "string") throw bad("a ticket is a string");
  const trimmed = text.trim();
  if (!trimmed.startsWith(TICKET_PREFIX)) throw bad(`a stream ticket starts with "${TICKET_PREFIX}"`);
  const body = trimmed.slice(TICKET_PREFIX.length);
  const bytes = /^[A-Za-z0-9_-]+$/.test(body) ? base64UrlDecode(body) : undefined;
  if (!bytes) throw bad("the ticket holds characters outside base64url: it was mistyped");
  if (base64UrlEncode(bytes) !== body) throw bad("the ticket's last characters are not a valid ending: it was mistyped or cut");
  if (bytes.length < FIXED_LEN + CHECK_LEN) throw bad("the ticket is too short: it was cut");
  const payload = bytes.subarray(0, bytes.length - CHECK_LEN);
  const domain = new Uint8Array(CHECK_DOMAIN.length + payload.length);
  domain.set(CHECK_DOMAIN);
  domain.set(payload, CHECK_DOMAIN.length);
  const expected = sha256(domain).subarray(0, CHECK_LEN);
  const got = bytes.subarray(bytes.length - CHECK_LEN);
  if (expected.some((b, i) => b !== got[i])) throw bad("the ticket's checksum does not match: it was mistyped or cut");
  if (payload[0] !== TICKET_VERSION) throw bad(`ticket version ${payload[0]} is not supported (this page reads version ${TICKET_VERSION})`);
  let at = 1;
  const take = (n: number): Uint8Array => payload.slice(at, (at += n));
  const streamId = take(STREAM_ID_LEN);
  const streamKey = take(STREAM_KEY_LEN);
  const landing = take(IDENTITY_LEN);
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

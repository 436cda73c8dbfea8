/**
 * Presence-layer messages: what clients, presence nodes and rendezvous nodes
 * say to each other on the streams "presence", "introduce" and
 * "rendezvous" (docs/spec/presence.md "Messages"), and the plaintexts
 * carried encrypted inside introductions and channel frames.
 *
 * Every message is one stream message holding one canonical CBOR map with a
 * type field `t`. Decoders are strict (exact field sets, fixed lengths,
 * bounded sizes, canonical bytes) and throw only PresenceError "malformed".
 *
 * Owns the layouts; trusts nothing in the bytes.
 */
import { readBytes, readMap, readString, readUint } from "../directory/fields.js";
import { DirectoryError } from "../directory/errors.js";
import { ownerRecordFromWire, ownerRecordToWire } from "../dht/record.js";
import type { OwnerSignedRecord } from "../dht/record.js";
import { decodeCanonical, encodeCanonical } from "../wire/canonical.js";
import { PresenceError, WIRE_REFUSAL_KINDS } from "./errors.js";
import type { PresenceErrorKind } from "./errors.js";

export const PRESENCE_PROTOCOL_VERSION = 1;
/** Largest message on a presence or introduce stream. */
export const MAX_PRESENCE_MESSAGE_BYTES = 16 * 1024;
/** Largest message on a rendezvous stream before the join (after it, frames are opaque). */
export const MAX_RENDEZVOUS_MESSAGE_BYTES = 1024;
/** Largest encrypted introduction body. */
export const MAX_INTRO_CIPHERTEXT_BYTES = 8 * 1024;
export const RENDEZVOUS_COOKIE_LEN = 20;
export const KEY_LEN = 32;
export const SIGNATURE_LEN = 64;
export const INTRO_MAC_LEN = 32;
export const HS_REPLY_LEN = 64;
/** Largest access certificate carried (authority/certificate.ts MAX_CERT_BYTES). */
const MAX_CERT_BYTES = 4096;
const MAX_TEXT = 256;
/** Highest slot a presence record can name (record.ts MAX_PRESENCE_SLOTS - 1). */
const MAX_SLOT = 7;
/** Longest time period, minutes (crypto/blinding.ts MAX_PERIOD_LENGTH_MINUTES). */
const MAX_PERIOD_LENGTH = 14_400;
const IDENTITY_PATTERN = /^[\x21-\x7e]{1,200}$/;
const U32 = 0xffff_ffff;

/** What a client asks of the presence node holding one of its presence points. */
export interface PresenceLimits {
  /** Introductions waiting for the client's decision at once; one more is refused "cap-reached". */
  maxPending: number;
  /** Introductions delivered to the client over this point's life (the hard channel cap). */
  maxChannels: number;
  /** Introductions per second forwarded to the client (token bucket rate) ... */
  introsPerSecond: number;
  /** ... and burst. */
  introBurst: number;
}

export type PresenceRequest =
  | {
      t: "register";
      /** The presence node the registration is for (its identity key). */
      node: Uint8Array;
      identity: string;
      cert: Uint8Array;
      period: number;
      periodLength: number;
      slot: number;
      /** This point's introduction key (Ed25519 public): how introducers name the registration. */
      authKey: Uint8Array;
      record: OwnerSignedRecord;
      limits: PresenceLimits;
      /** Client's clock, ms since the epoch. */
      time: number;
      /** The identity's signature over registrationSigningPayload. */
      sig: Uint8Array;
    }
  | { t: "renew"; record: OwnerSignedRecord; cert?: Uint8Array }
  | { t: "decide"; id: number; accept: boolean }
  | { t: "cancel"; id: number };

export type CapName = "pending" | "channels" | "rate";

export type PresenceNotice =
  | { t: "registered"; expiresAt: number; stored: number }
  | { t: "refused"; kind: PresenceErrorKind; message: string }
  | { t: "introduce"; id: number; x: Uint8Array; ct: Uint8Array; mac: Uint8Array; effort: number }
  | { t: "notice"; cap: CapName; limit: number };

export interface PowProof {
  nonce: Uint8Array;
  effort: number;
  seedHead: Uint8Array;
  solution: Uint8Array;
}

export interface IntroduceRequest {
  t: "introduce";
  authKey: Uint8Array;
  /** hs-ntor client public key X. */
  x: Uint8Array;
  /** The encrypted introduction (IntroPlaintext under hs-ntor ENC_KEY). */
  ct: Uint8Array;
  /** hs-ntor MAC over authKey ‖ X ‖ ct. */
  mac: Uint8Array;
  pow?: PowProof;
}

export interface PowParams {
  seed: Uint8Array;
  effort: number;
}

export type IntroduceReply = { t: "ack" } | { t: "refused"; kind: PresenceErrorKind; message: string; pow?: PowParams };

export type RendezvousMessage =
  | { t: "establish"; cookie: Uint8Array }
  | { t: "established" }
  | { t: "join"; cookie: Uint8Array; reply: Uint8Array; rate: number; burst: number }
  | { t: "joined"; reply?: Uint8Array }
  | { t: "refused"; kind: PresenceErrorKind; message: string };

/** What an introduction carries encrypted to the peer's announcement key. */
export interface IntroPlaintext {
  identity: string;
  cert: Uint8Array;
  /** The rendezvous node's identity key. */
  rdv: Uint8Array;
  cookie: Uint8Array;
  /** Initiator's clock, ms since the epoch. */
  time: number;
  /** The initiator's identity signature over introductionSigningPayload. */
  sig: Uint8Array;
}

export type ChannelPayload = { t: "msg"; id: number; body: Uint8Array } | { t: "ack"; id: number } | { t: "close" } | { t: "keepalive" };

// ---------------------------------------------------------------- helpers

/**
 * A received value for an error message. Only primitives are shown: a CBOR
 * map may carry a "toString" key that makes String() and template literals
 * throw a TypeError.
 */
export function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.slice(0, 16));
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean" || value === null) return String(value);
  return value instanceof Uint8Array ? "a byte string" : Array.isArray(value) ? "an array" : "a map";
}

function malformed(what: string, cause?: unknown): PresenceError {
  return new PresenceError("malformed", what, cause === undefined ? undefined : { cause });
}

/** Runs field reads, turning the directory readers' errors into PresenceError "malformed". */
function reading<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof DirectoryError) throw malformed(`${what}: ${err.message}`, err);
    throw err;
  }
}

function decodeMap(bytes: Uint8Array, maxBytes: number, what: string): Record<string, unknown> {
  if (!(bytes instanceof Uint8Array)) throw malformed(`${what} must be bytes`);
  if (bytes.length > maxBytes) throw malformed(`${what} is ${bytes.length} bytes; the limit is ${maxBytes}`);
  let value: unknown;
  try {
    value = decodeCanonical(bytes, { maxBytes });
  } catch (err) {
    throw malformed(`${what} is not canonical CBOR`, err);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) throw malformed(`${what} must be a CBOR map`);
  return value as Record<string, unknown>;
}

function typeOf(map: Record<string, unknown>, what: string, allowed: readonly string[]): string {
  const t = map["t"];
  if (typeof t !== "string" || !allowed.includes(t)) throw malformed(`${what} has an unknown type ${describeValue(t)}`);
  return t;
}

function bool(value: unknown, what: string): boolean {
  if (typeof value !== "boolean") throw malformed(`${what} must be true or false`);
  return value;
}

function boundedBytes(value: unknown, what: string, max: number, min = 1): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length < min || value.length > max) throw malformed(`${what} must be ${min}..${max} bytes`);
  return value;
}

function refusal(map: Record<string, unknown>, what: string): { kind: PresenceErrorKind; message: string } {
  const kind = map["kind"];
  if (typeof kind !== "string" || !(WIRE_REFUSAL_KINDS as readonly string[]).includes(kind)) throw malformed(`${what} carries an unknown refusal kind`);
  const message = map["message"];
  if (typeof message !== "string" || message.length > MAX_TEXT) throw malformed(`${what}'s message must be text of at most ${MAX_TEXT} characters`);
  return { kind: kind as PresenceErrorKind, message };
}

/** A refusal's message, cut to what the wire carries. */
function clip(message: string): string {
  return message.length <= MAX_TEXT ? message : `${message.slice(0, MAX_TEXT - 1)}…`;
}

function ownerRecord(value: unknown, what: string): OwnerSignedRecord {
  try {
    return ownerRecordFromWire(value);
  } catch (err) {
    throw malformed(`${what}: ${(err as Error).message}`, err);
  }
}

function limitsFrom(value: unknown): PresenceLimits {
  return reading("register.limits", () => {
    const m = readMap(value, "limits", ["burst", "channels", "pending", "rate"]);
    return {
      maxPending: readUint(m["pending"], "pending", 4096),
      maxChannels: readUint(m["channels"], "channels", U32),
      introsPerSecond: readUint(m["rate"], "rate", 10_000),
      introBurst: readUint(m["burst"], "burst", 10_000),
    };
  });
}

function periodLength(value: unknown): number {
  const minutes = readUint(value, "periodLength", MAX_PERIOD_LENGTH);
  if (minutes < 1) throw malformed("periodLength must be at least 1 minute");
  return minutes;
}

// ---------------------------------------------------------------- presence stream

export function encodePresenceRequest(r: PresenceRequest): Uint8Array {
  switch (r.t) {
    case "register":
      return encodeCanonical({
        t: r.t,
        v: PRESENCE_PROTOCOL_VERSION,
        node: r.node,
        identity: r.identity,
        cert: r.cert,
        period: r.period,
        periodLength: r.periodLength,
        slot: r.slot,
        authKey: r.authKey,
        record: ownerRecordToWire(r.record),
        limits: { pending: r.limits.maxPending, channels: r.limits.maxChannels, rate: r.limits.introsPerSecond, burst: r.limits.introBurst },
        time: r.time,
        sig: r.sig,
      });
    case "renew":
      return encodeCanonical({ t: r.t, record: ownerRecordToWire(r.record), ...(r.cert ? { cert: r.cert } : {}) });
    case "decide":
      return encodeCanonical({ t: r.t, id: r.id, accept: r.accept });
    case "cancel":
      return encodeCanonical({ t: r.t, id: r.id });
  }
}

export function decodePresenceRequest(bytes: Uint8Array): PresenceRequest {
  const m = decodeMap(bytes, MAX_PRESENCE_MESSAGE_BYTES, "presence request");
  const t = typeOf(m, "presence request", ["register", "renew", "decide", "cancel"]);
  return reading(`presence ${t}`, (): PresenceRequest => {
    if (t === "register") {
      const r = readMap(m, "register", ["authKey", "cert", "identity", "limits", "node", "period", "periodLength", "record", "sig", "slot", "t", "time", "v"]);
      if (r["v"] !== PRESENCE_PROTOCOL_VERSION)
        throw malformed(`register has protocol version ${describeValue(r["v"])}; this node speaks ${PRESENCE_PROTOCOL_VERSION}`);
      return {
        t,
        node: readBytes(r["node"], "node", KEY_LEN),
        identity: readString(r["identity"], "identity", IDENTITY_PATTERN),
        cert: boundedBytes(r["cert"], "cert", MAX_CERT_BYTES),
        period: readUint(r["period"], "period", U32),
        periodLength: periodLength(r["periodLength"]),
        slot: readUint(r["slot"], "slot", MAX_SLOT),
        authKey: readBytes(r["authKey"], "authKey", KEY_LEN),
        record: ownerRecord(r["record"], "register.record"),
        limits: limitsFrom(r["limits"]),
        time: readUint(r["time"], "time"),
        sig: readBytes(r["sig"], "sig", SIGNATURE_LEN),
      };
    }
    if (t === "renew") {
      const r = readMap(m, "renew", ["record", "t"], ["cert"]);
      return {
        t,
        record: ownerRecord(r["record"], "renew.record"),
        ...(r["cert"] === undefined ? {} : { cert: boundedBytes(r["cert"], "cert", MAX_CERT_BYTES) }),
      };
    }
    const r = t === "decide" ? readMap(m, t, ["accept", "id", "t"]) : readMap(m, t, ["id", "t"]);
    const id = readUint(r["id"], "id", U32);
    return t === "decide" ? { t, id, accept: bool(r["accept"], "accept") } : { t: "cancel", id };
  });
}

export function encodePresenceNotice(n: PresenceNotice): Uint8Array {
  switch (n.t) {
    case "registered":
      return encodeCanonical({ t: n.t, expiresAt: n.expiresAt, stored: n.stored });
    case "refused":
      return encodeCanonical({ t: n.t, kind: n.kind, message: clip(n.message) });
    case "introduce":
      return encodeCanonical({ t: n.t, id: n.id, x: n.x, ct: n.ct, mac: n.mac, effort: n.effort });
    case "notice":
      return encodeCanonical({ t: n.t, cap: n.cap, limit: n.limit });
  }
}

export function decodePresenceNotice(bytes: Uint8Array): PresenceNotice {
  const m = decodeMap(bytes, MAX_PRESENCE_MESSAGE_BYTES, "presence notice");
  const t = typeOf(m, "presence notice", ["registered", "refused", "introduce", "notice"]);
  return reading(`presence ${t}`, (): PresenceNotice => {
    if (t === "registered") {
      const r = readMap(m, t, ["expiresAt", "stored", "t"]);
      return { t, expiresAt: readUint(r["expiresAt"], "expiresAt"), stored: readUint(r["stored"], "stored", U32) };
    }
    if (t === "refused") return { t, ...refusal(readMap(m, t, ["kind", "message", "t"]), "refused") };
    if (t === "introduce") {
      const r = readMap(m, t, ["ct", "effort", "id", "mac", "t", "x"]);
      return {
        t,
        id: readUint(r["id"], "id", U32),
        x: readBytes(r["x"], "x", KEY_LEN),
        ct: boundedBytes(r["ct"], "ct", MAX_INTRO_CIPHERTEXT_BYTES),
        mac: readBytes(r["mac"], "mac", INTRO_MAC_LEN),
        effort: readUint(r["effort"], "effort", U32),
      };
    }
    const r = readMap(m, t, ["cap", "limit", "t"]);
    const cap = readString(r["cap"], "cap", /^(pending|channels|rate)$/) as CapName;
    return { t: "notice", cap, limit: readUint(r["limit"], "limit", U32) };
  });
}

// ---------------------------------------------------------------- introduce stream

export function encodeIntroduceRequest(r: IntroduceRequest): Uint8Array {
  return encodeCanonical({
    t: "introduce",
    v: PRESENCE_PROTOCOL_VERSION,
    authKey: r.authKey,
    x: r.x,
    ct: r.ct,
    mac: r.mac,
    ...(r.pow ? { pow: { nonce: r.pow.nonce, effort: r.pow.effort, seed: r.pow.seedHead, solution: r.pow.solution } } : {}),
  });
}

export function decodeIntroduceRequest(bytes: Uint8Array): IntroduceRequest {
  const m = decodeMap(bytes, MAX_PRESENCE_MESSAGE_BYTES, "introduction");
  typeOf(m, "introduction", ["introduce"]);
  return reading("introduction", () => {
    const r = readMap(m, "introduce", ["authKey", "ct", "mac", "t", "v", "x"], ["pow"]);
    if (r["v"] !== PRESENCE_PROTOCOL_VERSION)
      throw malformed(`introduction has protocol version ${describeValue(r["v"])}; this node speaks ${PRESENCE_PROTOCOL_VERSION}`);
    const out: IntroduceRequest = {
      t: "introduce",
      authKey: readBytes(r["authKey"], "authKey", KEY_LEN),
      x: readBytes(r["x"], "x", KEY_LEN),
      ct: boundedBytes(r["ct"], "ct", MAX_INTRO_CIPHERTEXT_BYTES),
      mac: readBytes(r["mac"], "mac", INTRO_MAC_LEN),
    };
    if (r["pow"] !== undefined) {
      const p = readMap(r["pow"], "pow", ["effort", "nonce", "seed", "solution"]);
      out.pow = {
        nonce: readBytes(p["nonce"], "pow.nonce", 16),
        effort: readUint(p["effort"], "pow.effort", U32),
        seedHead: readBytes(p["seed"], "pow.seed", 4),
        solution: readBytes(p["solution"], "pow.solution", 16),
      };
    }
    return out;
  });
}

export function encodeIntroduceReply(r: IntroduceReply): Uint8Array {
  if (r.t === "ack") return encodeCanonical({ t: "ack" });
  return encodeCanonical({ t: "refused", kind: r.kind, message: clip(r.message), ...(r.pow ? { pow: { seed: r.pow.seed, effort: r.pow.effort } } : {}) });
}

export function decodeIntroduceReply(bytes: Uint8Array): IntroduceReply {
  const m = decodeMap(bytes, MAX_PRESENCE_MESSAGE_BYTES, "introduction reply");
  const t = typeOf(m, "introduction reply", ["ack", "refused"]);
  return reading("introduction reply", (): IntroduceReply => {
    if (t === "ack") {
      readMap(m, "ack", ["t"]);
      return { t: "ack" };
    }
    const r = readMap(m, "refused", ["kind", "message", "t"], ["pow"]);
    const out: IntroduceReply = { t: "refused", ...refusal(r, "refused") };
    if (r["pow"] !== undefined) {
      const p = readMap(r["pow"], "pow", ["effort", "seed"]);
      out.pow = { seed: readBytes(p["seed"], "pow.seed", 32), effort: readUint(p["effort"], "pow.effort", U32) };
    }
    return out;
  });
}

// ---------------------------------------------------------------- rendezvous stream

export function encodeRendezvousMessage(r: RendezvousMessage): Uint8Array {
  switch (r.t) {
    case "establish":
      return encodeCanonical({ t: r.t, cookie: r.cookie });
    case "established":
      return encodeCanonical({ t: r.t });
    case "join":
      return encodeCanonical({ t: r.t, cookie: r.cookie, reply: r.reply, rate: r.rate, burst: r.burst });
    case "joined":
      return encodeCanonical({ t: r.t, ...(r.reply ? { reply: r.reply } : {}) });
    case "refused":
      return encodeCanonical({ t: r.t, kind: r.kind, message: clip(r.message) });
  }
}

export function decodeRendezvousMessage(bytes: Uint8Array): RendezvousMessage {
  const m = decodeMap(bytes, MAX_RENDEZVOUS_MESSAGE_BYTES, "rendezvous message");
  const t = typeOf(m, "rendezvous message", ["establish", "established", "join", "joined", "refused"]);
  return reading(`rendezvous ${t}`, (): RendezvousMessage => {
    switch (t) {
      case "establish":
        return { t, cookie: readBytes(readMap(m, t, ["cookie", "t"])["cookie"], "cookie", RENDEZVOUS_COOKIE_LEN) };
      case "established":
        readMap(m, t, ["t"]);
        return { t };
      case "join": {
        const r = readMap(m, t, ["burst", "cookie", "rate", "reply", "t"]);
        return {
          t,
          cookie: readBytes(r["cookie"], "cookie", RENDEZVOUS_COOKIE_LEN),
          reply: readBytes(r["reply"], "reply", HS_REPLY_LEN),
          rate: readUint(r["rate"], "rate", U32),
          burst: readUint(r["burst"], "burst", U32),
        };
      }
      case "joined": {
        const r = readMap(m, t, ["t"], ["reply"]);
        return r["reply"] === undefined ? { t } : { t, reply: readBytes(r["reply"], "reply", HS_REPLY_LEN) };
      }
      default:
        return { t: "refused", ...refusal(readMap(m, t, ["kind", "message", "t"]), "refused") };
    }
  });
}

// ---------------------------------------------------------------- encrypted plaintexts

export function encodeIntroPlaintext(p: IntroPlaintext): Uint8Array {
  return encodeCanonical({ v: PRESENCE_PROTOCOL_VERSION, identity: p.identity, cert: p.cert, rdv: p.rdv, cookie: p.cookie, time: p.time, sig: p.sig });
}

export function decodeIntroPlaintext(bytes: Uint8Array): IntroPlaintext {
  const m = decodeMap(bytes, MAX_INTRO_CIPHERTEXT_BYTES, "introduction plaintext");
  return reading("introduction plaintext", () => {
    const r = readMap(m, "introduction", ["cert", "cookie", "identity", "rdv", "sig", "time", "v"]);
    if (r["v"] !== PRESENCE_PROTOCOL_VERSION) throw malformed(`introduction plaintext has version ${describeValue(r["v"])}`);
    return {
      identity: readString(r["identity"], "identity", IDENTITY_PATTERN),
      cert: boundedBytes(r["cert"], "cert", MAX_CERT_BYTES),
      rdv: readBytes(r["rdv"], "rdv", KEY_LEN),
      cookie: readBytes(r["cookie"], "cookie", RENDEZVOUS_COOKIE_LEN),
      time: readUint(r["time"], "time"),
      sig: readBytes(r["sig"], "sig", SIGNATURE_LEN),
    };
  });
}

/** Largest message body a channel carries (a frame's plaintext holds the body plus a few bytes of framing). */
export const MAX_CHANNEL_BODY = 60 * 1024;

export function encodeChannelPayload(p: ChannelPayload): Uint8Array {
  if (p.t === "msg") return encodeCanonical({ t: p.t, id: p.id, body: p.body });
  if (p.t === "ack") return encodeCanonical({ t: p.t, id: p.id });
  return encodeCanonical({ t: p.t });
}

export function decodeChannelPayload(bytes: Uint8Array): ChannelPayload {
  const m = decodeMap(bytes, MAX_CHANNEL_BODY + 64, "channel payload");
  const t = typeOf(m, "channel payload", ["msg", "ack", "close", "keepalive"]);
  return reading(`channel ${t}`, (): ChannelPayload => {
    if (t === "msg") {
      const r = readMap(m, t, ["body", "id", "t"]);
      return { t, id: readUint(r["id"], "id", U32), body: boundedBytes(r["body"], "body", MAX_CHANNEL_BODY, 0) };
    }
    if (t === "ack") return { t, id: readUint(readMap(m, t, ["id", "t"])["id"], "id", U32) };
    readMap(m, t, ["t"]);
    return t === "keepalive" ? { t: "keepalive" } : { t: "close" };
  });
}

// ---------------------------------------------------------------- signed payloads

/** What the identity signs to register a presence point at one node (binds node, period, slot, key and record). */
export function registrationSigningPayload(r: Extract<PresenceRequest, { t: "register" }>): Uint8Array {
  return encodeCanonical({
    domain: "psp-presence-register-v1",
    node: r.node,
    identity: r.identity,
    period: r.period,
    periodLength: r.periodLength,
    slot: r.slot,
    authKey: r.authKey,
    recordSig: r.record.ownerSig,
    limits: [r.limits.maxPending, r.limits.maxChannels, r.limits.introsPerSecond, r.limits.introBurst],
    time: r.time,
  });
}

/** What the initiator signs inside an introduction (binds it to this handshake, the peer's point and the rendezvous). */
export function introductionSigningPayload(p: { authKey: Uint8Array; x: Uint8Array; rdv: Uint8Array; cookie: Uint8Array; time: number }): Uint8Array {
  return encodeCanonical({ domain: "psp-introduce-v1", authKey: p.authKey, x: p.x, rdv: p.rdv, cookie: p.cookie, time: p.time });
}

// Exported for the fuzz tests: every decoder of this module.
export const PRESENCE_DECODERS = {
  presenceRequest: decodePresenceRequest,
  presenceNotice: decodePresenceNotice,
  introduceRequest: decodeIntroduceRequest,
  introduceReply: decodeIntroduceReply,
  rendezvousMessage: decodeRendezvousMessage,
  introPlaintext: decodeIntroPlaintext,
  channelPayload: decodeChannelPayload,
} as const;

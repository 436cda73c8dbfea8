/**
 * DHT RPC messages: PING, FIND_NODE, FIND_VALUE, STORE and their responses,
 * the signed envelope around them, its canonical encoding, and the
 * DhtTransport interface every transport (in-memory simulator, TLS links)
 * implements.
 *
 * Every message is signed by its sender's node key over the canonical CBOR
 * of all its fields (domain-separated), and carries a fresh 16-byte nonce
 * and a timestamp; responses also echo the request nonce. Receivers reject
 * messages outside the clock-skew window and nonces seen inside it
 * (ReplayGuard), so a captured message cannot be replayed to poison a
 * routing table.
 *
 * Owns message shapes, encoding and the replay guard. Trusts wire/canonical
 * and crypto/ed25519.
 */
import { ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import { decodeCanonical, encodeCanonical } from "../wire/canonical.js";
import { DHT_ERROR_KINDS, DhtError } from "./errors.js";
import type { DhtErrorKind } from "./errors.js";
import { assertContactShape } from "./contact.js";
import type { Contact } from "./contact.js";
import { idHex, isId } from "./id.js";
import { encodeRecord, recordFromWire } from "./record.js";
import type { DhtRecord } from "./record.js";
import type { PutOutcome } from "./store.js";

export const DHT_PROTOCOL_VERSION = 1;
export const NONCE_BYTES = 16;
/** Most contacts a NODES or VALUE response may carry. */
export const MAX_CONTACTS_PER_RESPONSE = 64;
/** Largest encoded message accepted (one record plus a full contact list). */
export const MAX_MESSAGE_BYTES = 32 * 1024;
const MESSAGE_DOMAIN = "psp/dht/msg/v1";
const MAX_ERROR_MESSAGE = 512;

export type DhtRequestBody =
  { type: "PING" } | { type: "FIND_NODE"; target: Uint8Array } | { type: "FIND_VALUE"; key: Uint8Array } | { type: "STORE"; record: DhtRecord };

export type DhtResponseBody =
  | { type: "PONG" }
  | { type: "NODES"; contacts: Contact[] }
  | { type: "VALUE"; record: DhtRecord; contacts: Contact[] }
  | { type: "STORED"; outcome: PutOutcome }
  | { type: "ERROR"; kind: DhtErrorKind; message: string };

/** What a transport knows about where a request came from, beyond its signed sender. */
export interface DhtRequestContext {
  /** Source host of the request (link transports), for per-address quotas; absent in the simulator. */
  address?: string;
}

export interface DhtMessage<B> {
  version: number;
  sender: Contact;
  /** 16 random bytes, never reused. */
  nonce: Uint8Array;
  /** Sender's clock, ms since the Unix epoch. */
  timestamp: number;
  /** Responses: the nonce of the request answered. */
  inReplyTo?: Uint8Array;
  body: B;
  /** Ed25519 signature by sender.publicKey over signingPayload(message). Empty only in the simulator's unsigned mode. */
  signature: Uint8Array;
}

export type DhtRequest = DhtMessage<DhtRequestBody>;
export type DhtResponse = DhtMessage<DhtResponseBody>;

/**
 * A way to deliver a request to a contact and get its response. The
 * in-memory simulator and the TLS link transport both implement it. It
 * rejects with DhtError "timeout" or "unreachable"; it does not verify
 * messages (the node does).
 */
export interface DhtTransport {
  request(contact: Contact, message: DhtRequest, options: { timeoutMs: number }): Promise<DhtResponse>;
}

/** Signs and verifies messages; the simulator may swap in the unsigned variant. */
export interface MessageAuthenticator {
  /** True when signatures are real (false only in the simulator). */
  readonly signs: boolean;
  sign(payload: () => Uint8Array): Uint8Array;
  verify(publicKey: Uint8Array, payload: () => Uint8Array, signature: Uint8Array): boolean;
}

/** Real Ed25519 signatures with the node's identity key. */
export function ed25519Authenticator(secretKey: Uint8Array): MessageAuthenticator {
  return {
    signs: true,
    sign: (payload) => ed25519Sign(secretKey, payload()),
    verify: (publicKey, payload, signature) => ed25519Verify(publicKey, payload(), signature),
  };
}

/**
 * The simulator's authenticator: no signatures. Only for the in-process
 * simulator, where every node is honest code and the cost of 10^6 Ed25519
 * operations would dominate; the routing logic is unchanged.
 */
export const UNSIGNED_SIMULATOR_AUTH: MessageAuthenticator = {
  signs: false,
  sign: () => new Uint8Array(0),
  verify: () => true,
};

function contactToWire(c: Contact): Record<string, unknown> {
  return { i: c.nodeId, k: c.publicKey, x: c.puzzleX, a: c.address };
}

function contactFromWire(value: unknown): Contact {
  if (typeof value !== "object" || value === null) throw new DhtError("malformed", "contact must be a map");
  const m = value as Record<string, unknown>;
  const contact = { nodeId: m["i"], publicKey: m["k"], puzzleX: m["x"], address: m["a"] };
  assertContactShape(contact);
  return contact;
}

function bodyToWire(body: DhtRequestBody | DhtResponseBody): Record<string, unknown> {
  switch (body.type) {
    case "PING":
    case "PONG":
      return { t: body.type };
    case "FIND_NODE":
      return { t: body.type, target: body.target };
    case "FIND_VALUE":
      return { t: body.type, key: body.key };
    case "STORE":
      return { t: body.type, record: recordWireMap(body.record) };
    case "NODES":
      return { t: body.type, contacts: body.contacts.map(contactToWire) };
    case "VALUE":
      return { t: body.type, record: recordWireMap(body.record), contacts: body.contacts.map(contactToWire) };
    case "STORED":
      return { t: body.type, outcome: body.outcome };
    case "ERROR":
      return { t: body.type, kind: body.kind, message: body.message };
  }
}

function recordWireMap(r: DhtRecord): unknown {
  return decodeCanonical(encodeRecord(r), { maxBytes: MAX_MESSAGE_BYTES });
}

function contactsFromWire(value: unknown): Contact[] {
  if (!Array.isArray(value) || value.length > MAX_CONTACTS_PER_RESPONSE) {
    throw new DhtError("malformed", `contacts must be a list of at most ${MAX_CONTACTS_PER_RESPONSE}`);
  }
  return value.map(contactFromWire);
}

function bodyFromWire(value: unknown): DhtRequestBody | DhtResponseBody {
  if (typeof value !== "object" || value === null) throw new DhtError("malformed", "message body must be a map");
  const m = value as Record<string, unknown>;
  const id = (field: string): Uint8Array => {
    const v = m[field];
    if (!isId(v)) throw new DhtError("malformed", `${String(m["t"])}.${field} must be 32 bytes`);
    return v;
  };
  switch (m["t"]) {
    case "PING":
      return { type: "PING" };
    case "PONG":
      return { type: "PONG" };
    case "FIND_NODE":
      return { type: "FIND_NODE", target: id("target") };
    case "FIND_VALUE":
      return { type: "FIND_VALUE", key: id("key") };
    case "STORE":
      return { type: "STORE", record: recordFromWire(m["record"]) };
    case "NODES":
      return { type: "NODES", contacts: contactsFromWire(m["contacts"]) };
    case "VALUE":
      return { type: "VALUE", record: recordFromWire(m["record"]), contacts: contactsFromWire(m["contacts"]) };
    case "STORED": {
      const outcome = m["outcome"];
      if (outcome !== "stored" && outcome !== "unchanged") throw new DhtError("malformed", "STORED.outcome must be stored or unchanged");
      return { type: "STORED", outcome };
    }
    case "ERROR": {
      const kind = m["kind"];
      const message = m["message"];
      if (typeof kind !== "string" || !(DHT_ERROR_KINDS as readonly string[]).includes(kind)) {
        throw new DhtError("malformed", "ERROR.kind is not a known DHT error kind");
      }
      if (typeof message !== "string" || message.length > MAX_ERROR_MESSAGE) throw new DhtError("malformed", "ERROR.message must be a short string");
      return { type: "ERROR", kind: kind as DhtErrorKind, message };
    }
    default:
      throw new DhtError("malformed", `unknown DHT message type ${JSON.stringify(m["t"])}`);
  }
}

function unsignedWire(msg: DhtMessage<DhtRequestBody | DhtResponseBody>): Record<string, unknown> {
  const wire: Record<string, unknown> = {
    v: msg.version,
    s: contactToWire(msg.sender),
    n: msg.nonce,
    ts: msg.timestamp,
    b: bodyToWire(msg.body),
  };
  if (msg.inReplyTo !== undefined) wire["r"] = msg.inReplyTo;
  return wire;
}

/** The bytes a message signature covers. */
export function signingPayload(msg: DhtMessage<DhtRequestBody | DhtResponseBody>): Uint8Array {
  return encodeCanonical({ d: MESSAGE_DOMAIN, ...unsignedWire(msg) });
}

/** Canonical CBOR wire form of a message (for byte transports). */
export function encodeDhtMessage(msg: DhtMessage<DhtRequestBody | DhtResponseBody>): Uint8Array {
  return encodeCanonical({ ...unsignedWire(msg), sig: msg.signature });
}

/** Decodes and shape-checks a message; throws DhtError "malformed" or "oversized". Does not verify it. */
export function decodeDhtMessage(bytes: Uint8Array): DhtMessage<DhtRequestBody | DhtResponseBody> {
  if (bytes.length > MAX_MESSAGE_BYTES) throw new DhtError("oversized", `DHT message is ${bytes.length} bytes; the limit is ${MAX_MESSAGE_BYTES}`);
  let decoded: unknown;
  try {
    decoded = decodeCanonical(bytes, { maxBytes: MAX_MESSAGE_BYTES });
  } catch (cause) {
    throw new DhtError("malformed", "DHT message is not canonical CBOR", { cause });
  }
  return messageFromWire(decoded);
}

function messageFromWire(value: unknown): DhtMessage<DhtRequestBody | DhtResponseBody> {
  if (typeof value !== "object" || value === null) throw new DhtError("malformed", "DHT message must be a map");
  const m = value as Record<string, unknown>;
  if (m["v"] !== DHT_PROTOCOL_VERSION) throw new DhtError("malformed", `unsupported DHT message version ${String(m["v"])}`);
  const nonce = m["n"];
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) throw new DhtError("malformed", "message nonce must be 16 bytes");
  const ts = m["ts"];
  if (typeof ts !== "number" || !Number.isSafeInteger(ts) || ts < 0) throw new DhtError("malformed", "message timestamp must be a non-negative integer");
  const sig = m["sig"];
  if (!(sig instanceof Uint8Array) || sig.length > 64) throw new DhtError("malformed", "message signature must be at most 64 bytes");
  const msg: DhtMessage<DhtRequestBody | DhtResponseBody> = {
    version: DHT_PROTOCOL_VERSION,
    sender: contactFromWire(m["s"]),
    nonce,
    timestamp: ts,
    body: bodyFromWire(m["b"]),
    signature: sig,
  };
  const r = m["r"];
  if (r !== undefined) {
    if (!(r instanceof Uint8Array) || r.length !== NONCE_BYTES) throw new DhtError("malformed", "inReplyTo must be 16 bytes");
    msg.inReplyTo = r;
  }
  return msg;
}

/**
 * Shape check of a message object handed over by an in-process transport
 * (which skips bytes): it is re-validated field by field exactly as a
 * decoded one would be.
 */
export function checkMessageShape(value: unknown): DhtMessage<DhtRequestBody | DhtResponseBody> {
  if (typeof value !== "object" || value === null) throw new DhtError("malformed", "DHT message must be an object");
  const m = value as DhtMessage<DhtRequestBody | DhtResponseBody>;
  if (typeof m.body !== "object" || m.body === null) throw new DhtError("malformed", "DHT message body must be an object");
  return messageFromWire({ ...unsignedWireLoose(m), sig: m.signature });
}

function unsignedWireLoose(m: DhtMessage<DhtRequestBody | DhtResponseBody>): Record<string, unknown> {
  try {
    return unsignedWire(m);
  } catch (cause) {
    if (cause instanceof DhtError) throw cause;
    throw new DhtError("malformed", "DHT message fields have the wrong types", { cause });
  }
}

export function isRequestBody(body: DhtRequestBody | DhtResponseBody): body is DhtRequestBody {
  return body.type === "PING" || body.type === "FIND_NODE" || body.type === "FIND_VALUE" || body.type === "STORE";
}

/** Bounds of a ReplayGuard: its share per sender and its total. */
export interface ReplayLimits {
  /** Live nonces remembered per sender node id; past it that sender alone is refused "busy" until its nonces age out. */
  maxNoncesPerSender: number;
  /** Live nonces remembered in total (all senders). */
  maxEntries: number;
}

export const DEFAULT_REPLAY_LIMITS: ReplayLimits = { maxNoncesPerSender: 2048, maxEntries: 200_000 };

/**
 * Rejects replayed and stale messages: a timestamp must be within
 * `maxSkewMs` of the local clock, and a (sender, nonce) pair is accepted
 * once while it could still pass that check. Callers record a nonce only
 * after the message's signature verified, so forged messages take no room.
 * Memory is bounded per sender and in total, and a full share or cache
 * refuses new messages rather than forgetting nonces that could be
 * replayed. A full share refuses only that sender ("busy": it sent too
 * much, which counts against it), so one sender filling its share never
 * refuses another's messages; a full total is "overloaded" (this node's own
 * limit, not the peer's fault).
 */
export class ReplayGuard {
  private readonly bySender = new Map<string, Map<string, number>>();
  private entries = 0;
  private readonly limits: ReplayLimits;

  constructor(
    private readonly maxSkewMs: number,
    limits: Partial<ReplayLimits> = {},
  ) {
    this.limits = { ...DEFAULT_REPLAY_LIMITS, ...limits };
  }

  /** The clock check alone: cheap, so it runs before the signature check. */
  checkClock(timestamp: number, now: number): void {
    if (Math.abs(timestamp - now) > this.maxSkewMs) {
      throw new DhtError("stale-message", `message timestamp is ${timestamp - now} ms off the local clock; the limit is ${this.maxSkewMs} ms`);
    }
  }

  /** Clock check, then records the nonce. Call after the signature verified. */
  check(senderId: Uint8Array, nonce: Uint8Array, timestamp: number, now: number): void {
    this.checkClock(timestamp, now);
    const sender = idHex(senderId);
    const key = idHex(nonce);
    let seen = this.bySender.get(sender);
    const until = seen?.get(key);
    if (until !== undefined && until >= now) throw new DhtError("replayed-message", "message nonce already seen from this sender");
    if (seen !== undefined && seen.size >= this.limits.maxNoncesPerSender) {
      this.pruneSender(sender, seen, now);
      seen = this.bySender.get(sender);
    }
    if (seen !== undefined && seen.size >= this.limits.maxNoncesPerSender) {
      throw new DhtError("busy", `replay cache share of this sender is full (${this.limits.maxNoncesPerSender} live nonces); retry shortly`, {
        retryAfterMs: this.retryAfter(seen, now),
      });
    }
    if (this.entries >= this.limits.maxEntries) {
      this.prune(now);
      seen = this.bySender.get(sender);
    }
    if (this.entries >= this.limits.maxEntries) {
      throw new DhtError("overloaded", `replay cache is full (${this.limits.maxEntries} live nonces); retry shortly`, { retryAfterMs: 2 * this.maxSkewMs });
    }
    if (seen === undefined) this.bySender.set(sender, (seen = new Map()));
    seen.set(key, timestamp + 2 * this.maxSkewMs);
    this.entries++;
  }

  get size(): number {
    return this.entries;
  }

  /** Live nonces held for one sender. */
  sizeOf(senderId: Uint8Array): number {
    return this.bySender.get(idHex(senderId))?.size ?? 0;
  }

  private retryAfter(seen: Map<string, number>, now: number): number {
    // Entries are in insertion order; the first to expire frees the first slot.
    const first = seen.values().next().value;
    return first === undefined ? 0 : Math.max(0, first - now);
  }

  private pruneSender(sender: string, seen: Map<string, number>, now: number): void {
    for (const [key, until] of seen) {
      if (until < now) {
        seen.delete(key);
        this.entries--;
      }
    }
    if (seen.size === 0) this.bySender.delete(sender);
  }

  private prune(now: number): void {
    for (const [sender, seen] of this.bySender) this.pruneSender(sender, seen, now);
  }
}

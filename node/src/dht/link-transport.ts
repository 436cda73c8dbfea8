/**
 * The DHT over PSP links: a DhtTransport that carries DHT messages in DHT
 * cells (CellCommand.DHT, circuit id 0) over the connection manager's
 * authenticated TLS links, and serves incoming requests to a handler
 * (normally `DhtNode.handleRequest`).
 *
 * Owns the DHT cell layout (docs/spec/dht.md, "DHT over links"): kind (1) ‖
 * request id (4) ‖ one wire fragment (wire/fragment.ts: seq 2 ‖ total 4 ‖
 * chunk ≤ 496). Every full message is the canonical CBOR of a signed DHT
 * message (messages.ts), at most `maxMessageBytes`. Also owns request ids,
 * per-request timeouts, the per-peer cap on requests in flight (both ways),
 * and transport-level ERROR cells that refuse a request without a DHT
 * signature (busy, oversized, malformed, link-mismatch, no DHT here).
 *
 * A bad DHT cell never closes the link: the message it belongs to is
 * dropped (and refused with an ERROR cell when it was a request), other
 * requests on the same link go on.
 *
 * Trusts: the link layer for the peer's identity (a request's signed sender
 * key must equal it) and for ordered delivery. Trusts nothing in the cells;
 * the DhtNode verifies every message it gets.
 */
import { randomBytes } from "../crypto/backend.js";
import { LinkError } from "../link/errors.js";
import type { ConnectionManager } from "../link/manager.js";
import type { Link } from "../link/link.js";
import { CELL_PAYLOAD_LEN, CellCommand } from "../wire/cell.js";
import type { Cell } from "../wire/cell.js";
import { WireError } from "../wire/errors.js";
import { FRAGMENT_HEADER_LEN, Reassembler, fragmentMessage } from "../wire/fragment.js";
import type { Contact } from "./contact.js";
import { DHT_ERROR_KINDS, DhtError } from "./errors.js";
import type { DhtErrorKind } from "./errors.js";
import { idHex, idsEqual } from "./id.js";
import { MAX_MESSAGE_BYTES, decodeDhtMessage, encodeDhtMessage, isRequestBody } from "./messages.js";
import type { DhtRequest, DhtResponse, DhtTransport } from "./messages.js";

/** kind (1) + request id (4). */
export const DHT_CELL_HEADER_LEN = 5;
/** Room for one wire fragment in a DHT cell (header included): 502. */
export const DHT_FRAGMENT_MAX = CELL_PAYLOAD_LEN - DHT_CELL_HEADER_LEN;
/** Message bytes per DHT cell: 496. */
export const DHT_CHUNK_LEN = DHT_FRAGMENT_MAX - FRAGMENT_HEADER_LEN;

/** The first payload byte of a DHT cell. */
export const DhtCellKind = {
  /** A fragment of a request; the id is chosen by the requester. */
  REQUEST: 1,
  /** A fragment of the response to request `id`. */
  RESPONSE: 2,
  /** Request `id` refused by the transport: kind and message, one cell, no fragments. */
  ERROR: 3,
} as const;

const MAX_ERROR_TEXT = CELL_PAYLOAD_LEN - DHT_CELL_HEADER_LEN - 1 - 32 - 2;

export interface LinkDhtTransportOptions {
  manager: ConnectionManager;
  /** Largest DHT message sent or accepted (default MAX_MESSAGE_BYTES, 32 KiB). */
  maxMessageBytes?: number;
  /** Requests in flight per peer, each way (default 16). Ours past it wait; theirs are refused "busy". */
  maxInflightPerPeer?: number;
  /** Our requests waiting for a slot per peer (default 256); past it a request fails "busy" at once. */
  maxQueuedPerPeer?: number;
}

export interface LinkDhtTransportStats {
  requestsSent: number;
  responsesReceived: number;
  requestsServed: number;
  /** ERROR cells we sent (refused requests). */
  errorsSent: number;
  /** Incoming requests refused because the peer had maxInflightPerPeer in progress. */
  busyRefusals: number;
  /** DHT cells that matched no request of ours on that link (late or forged), dropped. */
  unsolicitedCells: number;
  /** DHT cells with a bad kind or fragment, dropped. */
  malformedCells: number;
}

/** A request handler: DhtNode.handleRequest. Must not throw (DhtNode's never does). */
export type DhtRequestHandler = (request: DhtRequest) => Promise<DhtResponse> | DhtResponse;

interface Pending {
  link: Link;
  reassembler: Reassembler;
  resolve: (bytes: Uint8Array) => void;
  reject: (error: DhtError) => void;
}

interface Inbound {
  reassembler: Reassembler | undefined;
  /** Refused at its first fragment: later fragments are dropped until the last. */
  refused: boolean;
}

interface PeerSlots {
  active: number;
  waiters: Array<() => void>;
}

/** "host:port" or "[v6 host]:port": the contact address of a node reachable over links. */
export function formatLinkAddress(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parses a contact address made by formatLinkAddress. Throws DhtError "unreachable". */
export function parseLinkAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = m === null ? NaN : Number(m[3]);
  const host = m?.[1] ?? m?.[2];
  if (host === undefined || !(port >= 1 && port <= 65535)) {
    throw new DhtError("unreachable", `contact address ${JSON.stringify(address.slice(0, 80))} is not host:port; link contacts use formatLinkAddress`);
  }
  return { host, port };
}

function u32(bytes: Uint8Array, at: number): number {
  return (((bytes[at] as number) << 24) | ((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number)) >>> 0;
}

function dhtCell(kind: number, id: number, body: Uint8Array): Cell {
  const payload = new Uint8Array(DHT_CELL_HEADER_LEN + body.length);
  payload[0] = kind;
  payload[1] = id >>> 24;
  payload[2] = (id >>> 16) & 0xff;
  payload[3] = (id >>> 8) & 0xff;
  payload[4] = id & 0xff;
  payload.set(body, DHT_CELL_HEADER_LEN);
  return { circId: 0, command: CellCommand.DHT, payload };
}

/** The cells carrying one message. */
export function encodeDhtCells(kind: typeof DhtCellKind.REQUEST | typeof DhtCellKind.RESPONSE, id: number, message: Uint8Array): Cell[] {
  return fragmentMessage(message, DHT_FRAGMENT_MAX).map((f) => dhtCell(kind, id, f));
}

/** An ERROR cell refusing request `id`. */
export function encodeDhtErrorCell(id: number, kind: DhtErrorKind, message: string): Cell {
  const kindBytes = new TextEncoder().encode(kind);
  let text = new TextEncoder().encode(message);
  if (text.length > MAX_ERROR_TEXT) text = new TextEncoder().encode(message.slice(0, MAX_ERROR_TEXT / 3));
  const body = new Uint8Array(1 + kindBytes.length + 2 + text.length);
  body[0] = kindBytes.length;
  body.set(kindBytes, 1);
  body[1 + kindBytes.length] = text.length >>> 8;
  body[2 + kindBytes.length] = text.length & 0xff;
  body.set(text, 3 + kindBytes.length);
  return dhtCell(DhtCellKind.ERROR, id, body);
}

/** Decodes an ERROR cell body into the DhtError it reports; an unknown kind is "malformed". */
export function decodeDhtErrorBody(body: Uint8Array): DhtError {
  const kindLen = body[0] as number;
  const kind = new TextDecoder().decode(body.subarray(1, 1 + kindLen));
  const textLen = (((body[1 + kindLen] ?? 0) << 8) | (body[2 + kindLen] ?? 0)) >>> 0;
  const text = new TextDecoder().decode(body.subarray(3 + kindLen, Math.min(body.length, 3 + kindLen + textLen)));
  if (!(DHT_ERROR_KINDS as readonly string[]).includes(kind)) return new DhtError("malformed", "peer sent a DHT ERROR cell with an unknown kind");
  return new DhtError(kind as DhtErrorKind, `peer refused the request: ${text}`);
}

/**
 * The one fragment inside a DHT cell payload (zero padding stripped): its
 * length follows from seq and total, since every fragment but the last is full.
 */
export function fragmentOfPayload(payload: Uint8Array): { fragment: Uint8Array; last: boolean } {
  const region = payload.subarray(DHT_CELL_HEADER_LEN);
  if (region.length < FRAGMENT_HEADER_LEN) throw new WireError("bad-fragment", "DHT cell too short for a fragment header");
  const seq = ((region[0] as number) << 8) | (region[1] as number);
  const total = u32(region, 2);
  const chunk = Math.min(DHT_CHUNK_LEN, total - seq * DHT_CHUNK_LEN);
  if (chunk < 0 || (chunk === 0 && total !== 0) || FRAGMENT_HEADER_LEN + chunk > region.length) {
    throw new WireError("bad-fragment", `fragment ${seq} lies past the end of a ${total}-byte message`);
  }
  return { fragment: region.subarray(0, FRAGMENT_HEADER_LEN + chunk), last: (seq + 1) * DHT_CHUNK_LEN >= total };
}

function wireToDht(err: unknown): DhtError {
  if (err instanceof DhtError) return err;
  if (err instanceof WireError && err.kind === "message-too-large") return new DhtError("oversized", err.message, { cause: err });
  return new DhtError("malformed", `bad DHT fragment: ${(err as Error).message}`, { cause: err });
}

export class LinkDhtTransport implements DhtTransport {
  readonly stats: LinkDhtTransportStats = {
    requestsSent: 0,
    responsesReceived: 0,
    requestsServed: 0,
    errorsSent: 0,
    busyRefusals: 0,
    unsolicitedCells: 0,
    malformedCells: 0,
  };
  private readonly manager: ConnectionManager;
  private readonly maxMessageBytes: number;
  private readonly maxInflight: number;
  private readonly maxQueued: number;
  private readonly pending = new Map<number, Pending>();
  private readonly inbound = new WeakMap<Link, { messages: Map<number, Inbound>; serving: number }>();
  private readonly slots = new Map<string, PeerSlots>();
  private handler: DhtRequestHandler | undefined;
  private nextId: number;
  private readonly unregister: () => void;
  private closed = false;
  private readonly onLinkClosed = (link: Link): void => {
    for (const [id, p] of this.pending) {
      if (p.link === link) {
        this.pending.delete(id);
        p.reject(new DhtError("unreachable", `the link to the peer closed (${link.closeReason?.reasonName ?? "closed"}) before it answered`));
      }
    }
  };

  constructor(options: LinkDhtTransportOptions) {
    this.manager = options.manager;
    this.maxMessageBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    this.maxInflight = options.maxInflightPerPeer ?? 16;
    this.maxQueued = options.maxQueuedPerPeer ?? 256;
    for (const [name, v] of [
      ["maxMessageBytes", this.maxMessageBytes],
      ["maxInflightPerPeer", this.maxInflight],
      ["maxQueuedPerPeer", this.maxQueued],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) throw new DhtError("bad-config", `${name} must be a positive integer, got ${v}`);
    }
    const seed = randomBytes(4);
    this.nextId = u32(seed, 0) || 1;
    this.unregister = this.manager.handle(CellCommand.DHT, (cell, link) => this.onCell(cell, link));
    this.manager.on("linkClosed", this.onLinkClosed);
  }

  /** Serves incoming DHT requests with `handler` (DhtNode.handleRequest). Returns a function that stops serving. */
  serve(handler: DhtRequestHandler): () => void {
    this.handler = handler;
    return () => {
      if (this.handler === handler) this.handler = undefined;
    };
  }

  /** Stops serving and fails every request in flight with "unreachable". The manager stays open. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unregister();
    this.manager.off("linkClosed", this.onLinkClosed);
    this.handler = undefined;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new DhtError("unreachable", "the DHT link transport was closed"));
    }
  }

  /** Requests of ours waiting for an answer (all peers). */
  get inflight(): number {
    return this.pending.size;
  }

  async request(contact: Contact, message: DhtRequest, options: { timeoutMs: number }): Promise<DhtResponse> {
    if (this.closed) throw new DhtError("unreachable", "the DHT link transport is closed");
    const peer = { identity: contact.publicKey, ...parseLinkAddress(contact.address) };
    const bytes = encodeDhtMessage(message);
    if (bytes.length > this.maxMessageBytes) {
      throw new DhtError("oversized", `DHT request is ${bytes.length} bytes; the limit is ${this.maxMessageBytes}`);
    }
    const deadline = performance.now() + options.timeoutMs;
    const release = await this.acquireSlot(idHex(contact.publicKey), options.timeoutMs);
    try {
      let link: Link;
      try {
        link = await this.beforeDeadline(this.manager.getLink(peer), deadline, "connecting");
      } catch (err) {
        if (err instanceof DhtError) throw err;
        const reason = err instanceof LinkError ? `${err.kind}: ${err.message}` : String(err);
        throw new DhtError("unreachable", `no link to ${contact.address}: ${reason}`, { cause: err });
      }
      const response = decodeDhtMessage(await this.exchange(link, bytes, deadline));
      if (isRequestBody(response.body)) throw new DhtError("unexpected-response", `peer answered with a ${response.body.type} request`);
      this.stats.responsesReceived++;
      return response as DhtResponse;
    } finally {
      release();
    }
  }

  // ------------------------------------------------------------ requester side

  private beforeDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
    const ms = Math.max(0, deadline - performance.now());
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new DhtError("timeout", `timed out ${what} after the request's deadline`)), ms);
      promise.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  /** Waits for one of the peer's in-flight slots; fails "busy" past the queue cap, "timeout" after `timeoutMs`. */
  private acquireSlot(peer: string, timeoutMs: number): Promise<() => void> {
    let slots = this.slots.get(peer);
    if (slots === undefined) this.slots.set(peer, (slots = { active: 0, waiters: [] }));
    const s = slots;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const next = s.waiters.shift();
      if (next !== undefined) next();
      else if (--s.active === 0) this.slots.delete(peer);
    };
    if (s.active < this.maxInflight) {
      s.active++;
      return Promise.resolve(release);
    }
    if (s.waiters.length >= this.maxQueued) {
      return Promise.reject(new DhtError("busy", `${s.active} requests in flight and ${s.waiters.length} queued to this peer; retry later`));
    }
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(release); // the slot passes from the releaser to us: `active` is unchanged
      };
      const timer = setTimeout(() => {
        const at = s.waiters.indexOf(wake);
        if (at >= 0) s.waiters.splice(at, 1);
        reject(new DhtError("timeout", `waited ${timeoutMs} ms for a free request slot to this peer`));
      }, timeoutMs);
      s.waiters.push(wake);
    });
  }

  private allocateId(): number {
    do {
      this.nextId = (this.nextId + 1) >>> 0 || 1;
    } while (this.pending.has(this.nextId));
    return this.nextId;
  }

  private exchange(link: Link, bytes: Uint8Array, deadline: number): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      const id = this.allocateId();
      const hold = link.acquire();
      const settle = (): void => {
        clearTimeout(timer);
        hold();
        this.pending.delete(id);
      };
      const timer = setTimeout(() => {
        settle();
        reject(new DhtError("timeout", "the peer did not answer before the request's deadline"));
      }, Math.max(0, deadline - performance.now()));
      this.pending.set(id, {
        link,
        reassembler: new Reassembler({ maxMessageBytes: this.maxMessageBytes }),
        resolve: (b) => {
          settle();
          resolve(b);
        },
        reject: (e) => {
          settle();
          reject(e);
        },
      });
      try {
        link.sendMany(encodeDhtCells(DhtCellKind.REQUEST, id, bytes));
        this.stats.requestsSent++;
      } catch (err) {
        this.pending.get(id)?.reject(new DhtError("unreachable", `could not send on the link: ${(err as Error).message}`, { cause: err }));
      }
    });
  }

  // ------------------------------------------------------------ cells in

  private onCell(cell: Cell, link: Link): void {
    const payload = cell.payload;
    const kind = payload[0];
    const id = u32(payload, 1);
    switch (kind) {
      case DhtCellKind.REQUEST:
        this.onRequestFragment(link, id, payload);
        return;
      case DhtCellKind.RESPONSE:
        this.onResponseFragment(link, id, payload);
        return;
      case DhtCellKind.ERROR: {
        const p = this.pending.get(id);
        if (p === undefined || p.link !== link) {
          this.stats.unsolicitedCells++;
          return;
        }
        p.reject(decodeDhtErrorBody(payload.subarray(DHT_CELL_HEADER_LEN)));
        return;
      }
      default:
        this.stats.malformedCells++;
    }
  }

  private onResponseFragment(link: Link, id: number, payload: Uint8Array): void {
    const p = this.pending.get(id);
    if (p === undefined || p.link !== link) {
      this.stats.unsolicitedCells++;
      return;
    }
    try {
      const message = p.reassembler.push(fragmentOfPayload(payload).fragment);
      if (message !== undefined) p.resolve(message);
    } catch (err) {
      this.stats.malformedCells++;
      p.reject(wireToDht(err));
    }
  }

  private inboundOf(link: Link): { messages: Map<number, Inbound>; serving: number } {
    let state = this.inbound.get(link);
    if (state === undefined) this.inbound.set(link, (state = { messages: new Map(), serving: 0 }));
    return state;
  }

  private onRequestFragment(link: Link, id: number, payload: Uint8Array): void {
    const state = this.inboundOf(link);
    let fragment: { fragment: Uint8Array; last: boolean };
    try {
      fragment = fragmentOfPayload(payload);
    } catch (err) {
      this.stats.malformedCells++;
      state.messages.delete(id);
      this.refuse(link, id, wireToDht(err));
      return;
    }
    let entry = state.messages.get(id);
    if (entry === undefined) {
      entry = { reassembler: undefined, refused: false };
      const refusal = this.admit(link, state);
      if (refusal !== undefined) {
        entry.refused = true;
        this.refuse(link, id, refusal);
      } else {
        entry.reassembler = new Reassembler({ maxMessageBytes: this.maxMessageBytes });
      }
      if (!fragment.last) state.messages.set(id, entry);
    }
    if (entry.refused || entry.reassembler === undefined) {
      if (fragment.last) state.messages.delete(id);
      return;
    }
    let message: Uint8Array | undefined;
    try {
      message = entry.reassembler.push(fragment.fragment);
    } catch (err) {
      this.stats.malformedCells++;
      entry.refused = true;
      entry.reassembler = undefined;
      if (fragment.last) state.messages.delete(id);
      this.refuse(link, id, wireToDht(err));
      return;
    }
    if (message === undefined) return;
    state.messages.delete(id);
    void this.serveOne(link, id, message, state);
  }

  /** Why a new incoming request on `link` must be refused, if it must. */
  private admit(link: Link, state: { messages: Map<number, Inbound>; serving: number }): DhtError | undefined {
    if (this.handler === undefined) return new DhtError("unreachable", "this node does not serve the DHT");
    if (link.peerIdentity === undefined) return new DhtError("link-mismatch", "DHT requests need a node link authenticated with an identity key");
    if (state.serving + state.messages.size >= this.maxInflight) {
      this.stats.busyRefusals++;
      return new DhtError("busy", `${this.maxInflight} requests from this peer already in progress; wait for answers`);
    }
    return undefined;
  }

  private async serveOne(link: Link, id: number, bytes: Uint8Array, state: { serving: number }): Promise<void> {
    let request: DhtRequest;
    try {
      const decoded = decodeDhtMessage(bytes);
      if (!isRequestBody(decoded.body)) throw new DhtError("malformed", `${decoded.body.type} is a response, sent as a request`);
      if (!idsEqual(decoded.sender.publicKey, link.peerIdentity as Uint8Array)) {
        throw new DhtError("link-mismatch", "the request's sender key is not the identity this link authenticated");
      }
      request = decoded as DhtRequest;
    } catch (err) {
      this.refuse(link, id, wireToDht(err));
      return;
    }
    const handler = this.handler;
    if (handler === undefined) {
      this.refuse(link, id, new DhtError("unreachable", "this node does not serve the DHT"));
      return;
    }
    state.serving++;
    const hold = link.acquire();
    try {
      const response = encodeDhtMessage(await handler(request));
      if (response.length > this.maxMessageBytes) throw new DhtError("oversized", `response would be ${response.length} bytes`);
      if (link.isOpen) {
        link.sendMany(encodeDhtCells(DhtCellKind.RESPONSE, id, response));
        this.stats.requestsServed++;
      }
    } catch (err) {
      this.refuse(link, id, err instanceof DhtError ? err : new DhtError("malformed", `could not answer: ${(err as Error).message}`));
    } finally {
      state.serving--;
      hold();
    }
  }

  private refuse(link: Link, id: number, error: DhtError): void {
    if (!link.isOpen) return;
    try {
      link.send(encodeDhtErrorCell(id, error.kind, error.message));
      this.stats.errorsSent++;
    } catch {
      // The link is closing; the requester's own timeout or linkClosed handles it.
    }
  }
}

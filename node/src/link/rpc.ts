/**
 * Request/response messages between two linked peers, for any service (the
 * DHT, the directory, authority nodes): RPC cells (CellCommand.RPC = 11,
 * circuit id 0) over the connection manager's authenticated TLS links.
 *
 * Owns the RPC cell layout (docs/spec/link.md §8): kind (1) ‖ service (2) ‖
 * request id (4) ‖ one wire fragment (wire/fragment.ts: seq 2 ‖ total 4 ‖
 * chunk ≤ 494); service ids and names; request ids; per-request deadlines;
 * the per-peer cap on requests in flight both ways; a reassembly deadline
 * for incoming requests (a peer that stops halfway through a multi-cell
 * request loses its slot); and ERROR cells that refuse a request with a
 * typed kind (busy, oversized, malformed, unknown-service, unauthenticated,
 * refused, handler-failed, timeout).
 *
 * Also owns the serving budgets (issue 19, per class and per link the way
 * Tor's DoS subsystem budgets per source): requests in progress and bytes of
 * partly received requests, per link and per peer class. Anonymous client
 * links get a smaller share, a shorter reassembly deadline and a request
 * rate; the rest of the node-wide budget is a reserve that only links whose
 * peer proved a node identity can use, so anonymous links can never starve
 * a DHT ping from a node. A refusal at a budget is "busy" with the budget's
 * name as its `code`, counted in `stats.refusals`.
 *
 * A bad RPC cell never closes the link: the message it belongs to is
 * dropped (and refused with an ERROR cell when it was a request), other
 * requests on the same link go on.
 *
 * Trusts: the link layer for the peer's identity (handed to handlers as
 * `ctx.peer`, null on an anonymous client link) and for ordered delivery.
 * Trusts nothing in the cells; message contents are the service's to check.
 */
import { codeLookup } from "../base/codes.js";
import { hexOf } from "../base/hex.js";
import { TokenBucket } from "../base/token-bucket.js";
import { withTimeout } from "../base/timeout.js";
import { randomBytes } from "../crypto/backend.js";
import { layerError } from "../errors.js";
import type { KindCategories, PspErrorOptions } from "../errors.js";
import { childLogger, logFailure, throttledFailureLog } from "../log.js";
import type { Logger } from "../log.js";
import { CELL_PAYLOAD_LEN, CellCommand } from "../wire/cell.js";
import type { Cell } from "../wire/cell.js";
import { ERROR_BODY_FIXED_LEN, ERROR_DETAIL_MAX_LEN, decodeErrorBody, encodeErrorBody } from "../wire/error-body.js";
import { WireError } from "../wire/errors.js";
import { FRAGMENT_HEADER_LEN, Reassembler, fragmentMessage } from "../wire/fragment.js";
import { LinkError } from "./errors.js";
import type { Link } from "./link.js";
import type { ConnectionManager, PeerAddress } from "./manager.js";

/** kind (1) + service (2) + request id (4). */
export const RPC_CELL_HEADER_LEN = 7;
/** Room for one wire fragment in an RPC cell (header included): 500. */
export const RPC_FRAGMENT_MAX = CELL_PAYLOAD_LEN - RPC_CELL_HEADER_LEN;
/** Message bytes per RPC cell: 494. */
export const RPC_CHUNK_LEN = RPC_FRAGMENT_MAX - FRAGMENT_HEADER_LEN;
/** Default largest request or response: 64 KiB. */
export const DEFAULT_RPC_MAX_MESSAGE_BYTES = 64 * 1024;

/** The first payload byte of an RPC cell. */
export const RpcCellKind = {
  /** A fragment of a request; the id is chosen by the requester. */
  REQUEST: 1,
  /** A fragment of the response to request `id`. */
  RESPONSE: 2,
  /** Request `id` refused: one cell, no fragments. */
  ERROR: 3,
} as const;
export type RpcCellKindValue = (typeof RpcCellKind)[keyof typeof RpcCellKind];

/** Well-known service ids (u16 on the wire). Numbers 1..65535 not listed here are free for experiments. */
export const RpcService = {
  dht: 1,
  directory: 2,
  authority: 3,
} as const;
export type RpcServiceName = keyof typeof RpcService;

export type RpcErrorKind =
  /** Bad options or arguments (caller bug): the message names the fix. */
  | "config"
  /** No link to the peer, or it closed before answering. */
  | "unreachable"
  /** No answer before the deadline (or, from the peer: our request did not complete in time). */
  | "timeout"
  /** Too many requests in flight to or from this peer; retry later. */
  | "busy"
  /** A request or response is larger than the limit. */
  | "oversized"
  /** Bad cells or fragments. */
  | "malformed"
  /** The peer serves no such service. */
  | "unknown-service"
  /** The service needs an authenticated node link and this one is an anonymous client link. */
  | "unauthenticated"
  /** The service refused the request; `code` is the service's own reason. */
  | "refused"
  /** The peer's handler failed. */
  | "handler-failed"
  /** The RPC endpoint was closed. */
  | "closed";

/** The kinds that travel in ERROR cells, by their one-byte code; any other kind is sent as "handler-failed". */
export const RpcErrorCode = {
  busy: 1,
  oversized: 2,
  malformed: 3,
  "unknown-service": 4,
  unauthenticated: 5,
  refused: 6,
  "handler-failed": 7,
  timeout: 8,
} as const satisfies Partial<Record<RpcErrorKind, number>>;
const rpcErrorCodes = codeLookup(RpcErrorCode);
/** The text of an ERROR cell fills what the cell has left: 464 bytes. */
const MAX_ERROR_TEXT = CELL_PAYLOAD_LEN - RPC_CELL_HEADER_LEN - ERROR_BODY_FIXED_LEN - ERROR_DETAIL_MAX_LEN;

/**
 * Categories as the requester meets them (refusals arrive from the peer in
 * ERROR cells): a busy, slow or failing peer can be asked again later, a
 * refusal or an oversized message will be refused again unchanged.
 */
const RPC_CATEGORIES = {
  config: "bug",
  unreachable: "transient",
  timeout: "transient",
  busy: "transient",
  oversized: "refused",
  malformed: "peer",
  "unknown-service": "refused",
  unauthenticated: "refused",
  refused: "refused",
  "handler-failed": "transient",
  closed: "shutdown",
} as const satisfies KindCategories<RpcErrorKind>;

/**
 * The link layer's request/response error: one request failed or was
 * refused, the link goes on (a LinkError is about the link itself).
 */
export class RpcError extends layerError<RpcErrorKind>("link", RPC_CATEGORIES) {
  /** For "refused": the service's reason (e.g. a DHT error kind); for "busy": the budget that was full (RpcBudget). ASCII, ≤ 32 bytes. */
  readonly code: string | undefined;
  /** True when the peer sent this refusal in an ERROR cell. */
  readonly remote: boolean;

  constructor(kind: RpcErrorKind, message: string, options?: PspErrorOptions & { code?: string; remote?: boolean }) {
    super(kind, message, options);
    this.code = options?.code;
    this.remote = options?.remote ?? false;
  }
}

/** What a handler learns about the request's origin. */
export interface RpcContext {
  /** The peer's proven identity key, or null on an anonymous client link. */
  peer: Uint8Array | null;
  link: Link;
  service: number;
}

/** Answers one request. Throw RpcError("refused", …, { code }) for a typed refusal; any other throw is "handler-failed". */
export type RpcHandler = (request: Uint8Array, ctx: RpcContext) => Promise<Uint8Array>;

export interface ServeOptions {
  /** Serve anonymous client links too (default true); false refuses them "unauthenticated". */
  allowAnonymous?: boolean;
  /** Largest request accepted for this service (default: the endpoint's maxMessageBytes). */
  maxRequestBytes?: number;
}

export interface RequestOptions {
  /** Deadline for the whole exchange: waiting for a slot, dialing, sending, the answer. */
  timeoutMs: number;
  /** Largest response accepted (default: the endpoint's maxMessageBytes). */
  maxResponseBytes?: number;
}

/** A peer class: links whose peer proved a node identity, and anonymous client links. */
export type RpcPeerClass = "node" | "anonymous";

/** The budgets a request can be refused "busy" at (the ERROR cell's code names it). */
export type RpcBudget = "link-inflight" | "class-serving" | "total-serving" | "link-memory" | "class-memory" | "total-memory" | "rate";
export const RPC_BUDGETS: readonly RpcBudget[] = ["link-inflight", "class-serving", "total-serving", "link-memory", "class-memory", "total-memory", "rate"];

/** What anonymous client links may use; every field has a default (DEFAULT_ANONYMOUS_RPC_LIMITS). */
export interface AnonymousRpcLimits {
  /** Requests being received or served at once per anonymous link. */
  maxInflightPerLink: number;
  /** Requests being received or served at once, all anonymous links together; must be below maxServingTotal (the rest is the node reserve). */
  maxServing: number;
  /** Bytes of partly received requests per anonymous link. */
  maxReassemblyBytesPerLink: number;
  /** Bytes of partly received requests, all anonymous links together; must be below maxReassemblyBytesTotal. */
  maxReassemblyBytes: number;
  /** An anonymous link's request must arrive whole within this long of its first cell (ms). */
  reassemblyTimeoutMs: number;
  /** New requests per second per anonymous link (token bucket), and the burst above it. */
  requestsPerSecond: number;
  requestBurst: number;
}

export const DEFAULT_ANONYMOUS_RPC_LIMITS: AnonymousRpcLimits = {
  maxInflightPerLink: 4,
  maxServing: 256,
  maxReassemblyBytesPerLink: 64 * 1024,
  maxReassemblyBytes: 4 * 1024 * 1024,
  reassemblyTimeoutMs: 2_000,
  requestsPerSecond: 20,
  requestBurst: 40,
};

export interface LinkRpcOptions {
  manager: ConnectionManager;
  /** Largest request or response sent or accepted (default 64 KiB). */
  maxMessageBytes?: number;
  /** Requests in flight per peer, each way (default 16). Ours past it wait; theirs are refused "busy". Anonymous links: see `anonymous`. */
  maxInflightPerPeer?: number;
  /** Our requests waiting for a slot per peer (default 256); past it a request fails "busy" at once. */
  maxQueuedPerPeer?: number;
  /** An incoming request must arrive whole within this long of its first cell (default 10 s), else it is dropped and refused "timeout". */
  reassemblyTimeoutMs?: number;
  /** Incoming requests being received or served at once, all links together (default 1024); past it "busy". */
  maxServingTotal?: number;
  /** Bytes of partly received requests per node link (default 1 MiB); past it "busy". */
  maxReassemblyBytesPerPeer?: number;
  /** Bytes of partly received requests, all links together (default 16 MiB); past it "busy". */
  maxReassemblyBytesTotal?: number;
  /** The smaller budgets of anonymous client links (defaults: DEFAULT_ANONYMOUS_RPC_LIMITS). */
  anonymous?: Partial<AnonymousRpcLimits>;
  /**
   * Whether a peer that proved `identity` gets the node class (in a node:
   * "listed in the consensus it holds"); one that does not is served from
   * the anonymous budgets, so self-made identities cannot take the node
   * reserve. Default: every proven identity is a node.
   */
  isKnownNode?: (identity: Uint8Array) => boolean;
  /** Logs as component "rpc": refusals at debug (counted), a handler that throws something other than RpcError at error. */
  logger?: Logger;
}

export interface LinkRpcStats {
  requestsSent: number;
  responsesReceived: number;
  /** ERROR cells received for our requests. */
  errorsReceived: number;
  requestsServed: number;
  /** ERROR cells we sent (refused requests). */
  errorsSent: number;
  /** Incoming requests refused because of an in-flight cap. */
  busyRefusals: number;
  /** Incoming requests refused "busy", by peer class and budget (busyRefusals counts them all). */
  refusals: Record<RpcPeerClass, Record<RpcBudget, number>>;
  /** Incoming requests being received or served now, by peer class. */
  serving: Record<RpcPeerClass, number>;
  /** Bytes of partly received requests held now, by peer class. */
  reassemblyBytes: Record<RpcPeerClass, number>;
  /** Incoming requests dropped because their cells stopped before the message was whole. */
  reassemblyTimeouts: number;
  /** RPC cells that matched no request on that link (late, forged, or after a refusal), dropped. */
  unsolicitedCells: number;
  /** RPC cells with a bad kind or fragment. */
  malformedCells: number;
}

export interface LinkRpc {
  readonly stats: LinkRpcStats;
  readonly maxMessageBytes: number;
  /** Serves `service` with `handler`. Returns a function that stops serving it. */
  serve(service: RpcServiceName | number, handler: RpcHandler, options?: ServeOptions): () => void;
  /** Sends a request to `peer` (dialing a link if needed) and resolves with the response bytes. Rejects with RpcError. */
  request(peer: PeerAddress, service: RpcServiceName | number, request: Uint8Array, options: RequestOptions): Promise<Uint8Array>;
  /** The same over a given open link (e.g. an inbound one). */
  requestOnLink(link: Link, service: RpcServiceName | number, request: Uint8Array, options: RequestOptions): Promise<Uint8Array>;
  /** Our requests waiting for an answer (all peers). */
  readonly inflight: number;
  /** Stops serving, fails our requests in flight with "closed". The manager stays open. */
  close(): void;
}

/** The u16 id of a service name or number; throws RpcError "config" for anything else. */
export function serviceId(service: RpcServiceName | number): number {
  if (typeof service === "string") {
    const id = (RpcService as Record<string, number | undefined>)[service];
    if (id === undefined)
      throw new RpcError(
        "config",
        `unknown RPC service name ${JSON.stringify(service)}; use one of ${Object.keys(RpcService).join(", ")} or a number in 1..65535`,
      );
    return id;
  }
  if (!Number.isInteger(service) || service < 1 || service > 0xffff)
    throw new RpcError("config", `RPC service id must be an integer in 1..65535, got ${String(service)}`);
  return service;
}

const services = codeLookup(RpcService);

function serviceLabel(id: number): string {
  return services.nameOf(id) ?? `service ${id}`;
}

function u32(bytes: Uint8Array, at: number): number {
  return (((bytes[at] ?? 0) << 24) | ((bytes[at + 1] ?? 0) << 16) | ((bytes[at + 2] ?? 0) << 8) | (bytes[at + 3] ?? 0)) >>> 0;
}

/** The header fields of an RPC cell payload. */
export function rpcHeader(payload: Uint8Array): { kind: number; service: number; id: number } {
  return { kind: payload[0] ?? 0, service: ((payload[1] ?? 0) << 8) | (payload[2] ?? 0), id: u32(payload, 3) };
}

function rpcCell(kind: RpcCellKindValue, service: number, id: number, body: Uint8Array): Cell {
  const payload = new Uint8Array(RPC_CELL_HEADER_LEN + body.length);
  payload[0] = kind;
  payload[1] = service >>> 8;
  payload[2] = service & 0xff;
  payload[3] = id >>> 24;
  payload[4] = (id >>> 16) & 0xff;
  payload[5] = (id >>> 8) & 0xff;
  payload[6] = id & 0xff;
  payload.set(body, RPC_CELL_HEADER_LEN);
  return { circId: 0, command: CellCommand.RPC, payload };
}

/** The cells carrying one request or response. */
export function encodeRpcCells(kind: typeof RpcCellKind.REQUEST | typeof RpcCellKind.RESPONSE, service: number, id: number, message: Uint8Array): Cell[] {
  return fragmentMessage(message, RPC_FRAGMENT_MAX).map((f) => rpcCell(kind, service, id, f));
}

/** An ERROR cell refusing request `id`, its body as wire/error-body.ts lays it out. */
export function encodeRpcErrorCell(service: number, id: number, error: { kind: RpcErrorKind; message: string; code?: string | undefined }): Cell {
  const code = rpcErrorCodes.codeOf(error.kind) ?? RpcErrorCode["handler-failed"];
  return rpcCell(RpcCellKind.ERROR, service, id, encodeErrorBody({ code, detail: error.code ?? "", text: error.message }, MAX_ERROR_TEXT));
}

/** Decodes an ERROR cell body into the RpcError it reports; an unknown code or a body that does not decode is "malformed". */
export function decodeRpcErrorBody(body: Uint8Array): RpcError {
  const decoded = decodeErrorBody(body);
  const kind = decoded === undefined ? undefined : rpcErrorCodes.nameOf(decoded.code);
  if (decoded === undefined || kind === undefined)
    return new RpcError("malformed", `peer sent an RPC ERROR cell with code ${body[0] ?? "none"} that does not decode`, { remote: true });
  const { detail, text } = decoded;
  return new RpcError(kind, `peer refused the request${detail ? ` (${detail})` : ""}: ${text}`, { ...(detail ? { code: detail } : {}), remote: true });
}

/**
 * The one fragment inside an RPC cell payload (zero padding stripped): its
 * length follows from seq and total, since every fragment but the last is full.
 */
export function rpcFragmentOfPayload(payload: Uint8Array): { fragment: Uint8Array; seq: number; last: boolean } {
  const region = payload.subarray(RPC_CELL_HEADER_LEN);
  if (region.length < FRAGMENT_HEADER_LEN) throw new WireError("bad-fragment", "RPC cell too short for a fragment header");
  const seq = ((region[0] as number) << 8) | (region[1] as number);
  const total = u32(region, 2);
  const chunk = Math.min(RPC_CHUNK_LEN, total - seq * RPC_CHUNK_LEN);
  if (chunk < 0 || (chunk === 0 && total !== 0) || FRAGMENT_HEADER_LEN + chunk > region.length) {
    throw new WireError("bad-fragment", `fragment ${seq} lies past the end of a ${total}-byte message`);
  }
  return { fragment: region.subarray(0, FRAGMENT_HEADER_LEN + chunk), seq, last: (seq + 1) * RPC_CHUNK_LEN >= total };
}

function wireToRpc(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  if (err instanceof WireError && err.kind === "message-too-large") return new RpcError("oversized", err.message, { cause: err });
  return new RpcError("malformed", `bad RPC fragment: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

interface Pending {
  link: Link;
  service: number;
  reassembler: Reassembler;
  resolve: (bytes: Uint8Array) => void;
  reject: (error: RpcError) => void;
}

interface Inbound {
  service: number;
  reassembler: Reassembler;
  timer: ReturnType<typeof setTimeout>;
  /** Reassembly bytes charged to the budgets for this request so far. */
  charged: number;
}

interface LinkInbound {
  peerClass: RpcPeerClass;
  /** Requests partly received. */
  messages: Map<number, Inbound>;
  /** Requests whole and being handled. */
  serving: number;
  /** Bytes held by the reassemblers in `messages`. */
  bytes: number;
}

interface PeerSlots {
  active: number;
  waiters: Array<() => void>;
}

interface Service {
  handler: RpcHandler;
  allowAnonymous: boolean;
  maxRequestBytes: number;
}

function positiveInteger(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RpcError("config", `${name} must be a positive integer, got ${v}`);
  return v;
}

function positiveNumber(name: string, v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) throw new RpcError("config", `${name} must be a positive number, got ${v}`);
  return v;
}

function zeroBudgets(): Record<RpcBudget, number> {
  return Object.fromEntries(RPC_BUDGETS.map((b) => [b, 0])) as Record<RpcBudget, number>;
}

/** The anonymous limits with defaults filled in, checked against the node-wide totals (which must leave a node reserve). */
function anonymousLimits(given: Partial<AnonymousRpcLimits> | undefined, maxServingTotal: number, maxBytesTotal: number): AnonymousRpcLimits {
  if (given !== undefined && (typeof given !== "object" || given === null)) throw new RpcError("config", "anonymous must be an object of limits");
  const known = new Set(Object.keys(DEFAULT_ANONYMOUS_RPC_LIMITS));
  for (const key of Object.keys(given ?? {}))
    if (!known.has(key)) throw new RpcError("config", `anonymous.${key} is not a limit; use ${[...known].join(", ")}`);
  const defaults = { ...DEFAULT_ANONYMOUS_RPC_LIMITS, maxServing: Math.min(DEFAULT_ANONYMOUS_RPC_LIMITS.maxServing, Math.floor(maxServingTotal / 4)) };
  defaults.maxReassemblyBytes = Math.min(defaults.maxReassemblyBytes, Math.floor(maxBytesTotal / 4));
  const l = { ...defaults, ...given };
  for (const key of ["maxInflightPerLink", "maxServing", "maxReassemblyBytesPerLink", "maxReassemblyBytes", "reassemblyTimeoutMs"] as const)
    positiveInteger(`anonymous.${key}`, l[key]);
  positiveNumber("anonymous.requestsPerSecond", l.requestsPerSecond);
  positiveNumber("anonymous.requestBurst", l.requestBurst);
  if (l.maxServing >= maxServingTotal) {
    throw new RpcError(
      "config",
      `anonymous.maxServing (${l.maxServing}) must be below maxServingTotal (${maxServingTotal}): the difference is reserved for node links`,
    );
  }
  if (l.maxReassemblyBytes >= maxBytesTotal) {
    throw new RpcError(
      "config",
      `anonymous.maxReassemblyBytes (${l.maxReassemblyBytes}) must be below maxReassemblyBytesTotal (${maxBytesTotal}): the difference is reserved for node links`,
    );
  }
  return l;
}

/** The limits of LinkRpcOptions with defaults filled in; throws RpcError "config" naming the option (node config checks with it too). */
export function checkLinkRpcLimits(options: Omit<LinkRpcOptions, "manager" | "logger">) {
  const maxServingTotal = positiveInteger("maxServingTotal", options.maxServingTotal ?? 1024);
  const maxBytesTotal = positiveInteger("maxReassemblyBytesTotal", options.maxReassemblyBytesTotal ?? 16 * 1024 * 1024);
  return {
    maxMessageBytes: positiveInteger("maxMessageBytes", options.maxMessageBytes ?? DEFAULT_RPC_MAX_MESSAGE_BYTES),
    maxInflight: positiveInteger("maxInflightPerPeer", options.maxInflightPerPeer ?? 16),
    maxQueued: positiveInteger("maxQueuedPerPeer", options.maxQueuedPerPeer ?? 256),
    reassemblyTimeoutMs: positiveInteger("reassemblyTimeoutMs", options.reassemblyTimeoutMs ?? 10_000),
    maxServingTotal,
    maxBytesPerPeer: positiveInteger("maxReassemblyBytesPerPeer", options.maxReassemblyBytesPerPeer ?? 1024 * 1024),
    maxBytesTotal,
    anon: anonymousLimits(options.anonymous, maxServingTotal, maxBytesTotal),
  };
}

/**
 * Creates the RPC endpoint of one connection manager (one per manager: it
 * registers the manager's handler for CellCommand.RPC, so a second one on the
 * same manager fails with LinkError "config").
 */
export function createLinkRpc(options: LinkRpcOptions): LinkRpc {
  const manager = options.manager;
  const isKnownNode = options.isKnownNode ?? (() => true);
  const { maxMessageBytes, maxInflight, maxQueued, reassemblyTimeoutMs, maxServingTotal, maxBytesPerPeer, maxBytesTotal, anon } = checkLinkRpcLimits(options);
  /** Per-class budgets; a node link's class budget is the whole node's (anonymous links are held below it, leaving the reserve). */
  const classLimits: Record<RpcPeerClass, { inflight: number; bytesPerLink: number; serving: number; bytes: number; timeoutMs: number }> = {
    node: { inflight: maxInflight, bytesPerLink: maxBytesPerPeer, serving: maxServingTotal, bytes: maxBytesTotal, timeoutMs: reassemblyTimeoutMs },
    anonymous: {
      inflight: anon.maxInflightPerLink,
      bytesPerLink: anon.maxReassemblyBytesPerLink,
      serving: anon.maxServing,
      bytes: anon.maxReassemblyBytes,
      timeoutMs: anon.reassemblyTimeoutMs,
    },
  };
  const log = childLogger(options.logger, "rpc");
  /** A full class or node-wide budget is news for the operator: a warning a minute at most, each one counted. */
  const logShedding = throttledFailureLog(log);
  /** One link past its own budget repeats at the attacker's pace: a debug line a minute at most, each one counted. */
  const logBusyLink = throttledFailureLog(log);
  const stats: LinkRpcStats = {
    requestsSent: 0,
    responsesReceived: 0,
    errorsReceived: 0,
    requestsServed: 0,
    errorsSent: 0,
    busyRefusals: 0,
    refusals: { node: zeroBudgets(), anonymous: zeroBudgets() },
    serving: { node: 0, anonymous: 0 },
    reassemblyBytes: { node: 0, anonymous: 0 },
    reassemblyTimeouts: 0,
    unsolicitedCells: 0,
    malformedCells: 0,
  };
  const services = new Map<number, Service>();
  const pending = new Map<number, Pending>();
  const inbound = new Map<Link, LinkInbound>();
  const slots = new Map<string, PeerSlots>();
  /** One request-rate bucket per anonymous link. */
  const rates = new WeakMap<Link, TokenBucket>();
  let servingTotal = 0;
  let bytesTotal = 0;
  let closed = false;
  let nextId = u32(randomBytes(4), 0) || 1;

  const onLinkClosed = (link: Link): void => {
    for (const [id, p] of pending) {
      if (p.link === link)
        p.reject(new RpcError("unreachable", `the link to the peer closed (${link.closeReason?.reasonName ?? "closed"}) before it answered request ${id}`));
    }
    const state = inbound.get(link);
    if (state !== undefined) dropAll(link, state);
  };

  const unregister = manager.handle(CellCommand.RPC, (cell, link) => onCell(cell, link));
  manager.on("linkClosed", onLinkClosed);

  // ------------------------------------------------------------ requester side

  function acquireSlot(peer: string, timeoutMs: number): Promise<() => void> {
    let s = slots.get(peer);
    if (s === undefined) slots.set(peer, (s = { active: 0, waiters: [] }));
    const peerSlots = s;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const next = peerSlots.waiters.shift();
      if (next !== undefined) next();
      else if (--peerSlots.active === 0) slots.delete(peer);
    };
    if (peerSlots.active < maxInflight) {
      peerSlots.active++;
      return Promise.resolve(release);
    }
    if (peerSlots.waiters.length >= maxQueued) {
      return Promise.reject(new RpcError("busy", `${peerSlots.active} requests in flight and ${peerSlots.waiters.length} queued to this peer; retry later`));
    }
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(release); // the slot passes from the releaser to us: `active` is unchanged
      };
      const timer = setTimeout(() => {
        const at = peerSlots.waiters.indexOf(wake);
        if (at >= 0) peerSlots.waiters.splice(at, 1);
        reject(new RpcError("timeout", `waited ${timeoutMs} ms for a free request slot to this peer`));
      }, timeoutMs);
      peerSlots.waiters.push(wake);
    });
  }

  function allocateId(): number {
    do nextId = (nextId + 1) >>> 0 || 1;
    while (pending.has(nextId));
    return nextId;
  }

  function exchange(link: Link, service: number, bytes: Uint8Array, deadline: number, maxResponseBytes: number): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      const id = allocateId();
      const hold = link.acquire();
      let done = false;
      const settle = (): boolean => {
        if (done) return false;
        done = true;
        clearTimeout(timer);
        hold();
        pending.delete(id);
        return true;
      };
      const timer = setTimeout(
        () => {
          if (settle()) reject(new RpcError("timeout", `${serviceLabel(service)}: the peer did not answer before the request's deadline`));
        },
        Math.max(0, deadline - performance.now()),
      );
      pending.set(id, {
        link,
        service,
        reassembler: new Reassembler({ maxMessageBytes: maxResponseBytes }),
        resolve: (b) => settle() && resolve(b),
        reject: (e) => settle() && reject(e),
      });
      try {
        link.sendMany(encodeRpcCells(RpcCellKind.REQUEST, service, id, bytes));
        stats.requestsSent++;
      } catch (err) {
        pending.get(id)?.reject(new RpcError("unreachable", `could not send on the link: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
      }
    });
  }

  function checkRequest(service: RpcServiceName | number, request: Uint8Array, options: RequestOptions): { id: number; maxResponseBytes: number } {
    if (closed) throw new RpcError("closed", "the RPC endpoint is closed");
    const id = serviceId(service);
    if (!(request instanceof Uint8Array)) throw new RpcError("config", "the request must be a Uint8Array");
    if (!(options?.timeoutMs > 0)) throw new RpcError("config", `timeoutMs must be a positive number of milliseconds, got ${String(options?.timeoutMs)}`);
    if (request.length > maxMessageBytes) throw new RpcError("oversized", `the request is ${request.length} bytes; the limit is ${maxMessageBytes}`);
    const maxResponseBytes = options.maxResponseBytes ?? maxMessageBytes;
    if (!Number.isInteger(maxResponseBytes) || maxResponseBytes < 0)
      throw new RpcError("config", `maxResponseBytes must be a non-negative integer, got ${maxResponseBytes}`);
    return { id, maxResponseBytes };
  }

  async function request(peer: PeerAddress, service: RpcServiceName | number, bytes: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
    const { id, maxResponseBytes } = checkRequest(service, bytes, options);
    if (!(peer?.identity instanceof Uint8Array)) throw new RpcError("config", "peer needs an identity key, a host and a port");
    const deadline = performance.now() + options.timeoutMs;
    const release = await acquireSlot(hexOf(peer.identity), options.timeoutMs);
    try {
      let link: Link;
      try {
        link = await withTimeout(
          manager.getLink(peer),
          deadline - performance.now(),
          () => new RpcError("timeout", "timed out connecting before the request's deadline"),
        );
      } catch (err) {
        if (err instanceof RpcError) throw err;
        const reason = err instanceof LinkError ? `${err.kind}: ${err.message}` : String(err);
        throw new RpcError("unreachable", `no link to ${peer.host}:${peer.port}: ${reason}`, { cause: err });
      }
      const response = await exchange(link, id, bytes, deadline, maxResponseBytes);
      stats.responsesReceived++;
      return response;
    } finally {
      release();
    }
  }

  async function requestOnLink(link: Link, service: RpcServiceName | number, bytes: Uint8Array, options: RequestOptions): Promise<Uint8Array> {
    const { id, maxResponseBytes } = checkRequest(service, bytes, options);
    if (!link.isOpen) throw new RpcError("unreachable", "that link is not open");
    const deadline = performance.now() + options.timeoutMs;
    const release = await acquireSlot(link.peerIdentity ? hexOf(link.peerIdentity) : `link-${link.id}`, options.timeoutMs);
    try {
      const response = await exchange(link, id, bytes, deadline, maxResponseBytes);
      stats.responsesReceived++;
      return response;
    } finally {
      release();
    }
  }

  // ------------------------------------------------------------ cells in

  function onCell(cell: Cell, link: Link): void {
    const { kind, service, id } = rpcHeader(cell.payload);
    switch (kind) {
      case RpcCellKind.REQUEST:
        onRequestFragment(link, service, id, cell.payload);
        return;
      case RpcCellKind.RESPONSE:
      case RpcCellKind.ERROR: {
        const p = pending.get(id);
        if (p === undefined || p.link !== link) {
          stats.unsolicitedCells++;
          return;
        }
        if (p.service !== service) {
          stats.malformedCells++;
          p.reject(new RpcError("malformed", `the answer to a ${serviceLabel(p.service)} request names ${serviceLabel(service)}`));
          return;
        }
        if (kind === RpcCellKind.ERROR) {
          stats.errorsReceived++;
          p.reject(decodeRpcErrorBody(cell.payload.subarray(RPC_CELL_HEADER_LEN)));
          return;
        }
        try {
          const message = p.reassembler.push(rpcFragmentOfPayload(cell.payload).fragment);
          if (message !== undefined) p.resolve(message);
        } catch (err) {
          stats.malformedCells++;
          p.reject(wireToRpc(err));
        }
        return;
      }
      default:
        stats.malformedCells++;
    }
  }

  function inboundOf(link: Link): LinkInbound {
    let state = inbound.get(link);
    if (state === undefined) {
      const peerClass: RpcPeerClass = link.peerIdentity !== undefined && isKnownNode(link.peerIdentity) ? "node" : "anonymous";
      inbound.set(link, (state = { peerClass, messages: new Map(), serving: 0, bytes: 0 }));
    }
    return state;
  }

  /** Gives back a partly received request's slot and the bytes its reassembler held. */
  function release(state: LinkInbound, entry: Inbound): void {
    clearTimeout(entry.timer);
    const held = entry.charged;
    entry.charged = 0;
    entry.reassembler.reset();
    state.bytes -= held;
    stats.reassemblyBytes[state.peerClass] -= held;
    bytesTotal -= held;
  }

  function dropEntry(link: Link, state: LinkInbound, id: number): void {
    const entry = state.messages.get(id);
    if (entry === undefined) return;
    release(state, entry);
    state.messages.delete(id);
    servingTotal--;
    stats.serving[state.peerClass]--;
    if (state.messages.size === 0 && state.serving === 0) inbound.delete(link);
  }

  function dropAll(link: Link, state: LinkInbound): void {
    for (const id of [...state.messages.keys()]) dropEntry(link, state, id);
    if (state.serving === 0) inbound.delete(link);
  }

  /** Charges `bytes` more of reassembly memory to this link, or names the budget that is full. */
  function chargeBytes(state: LinkInbound, bytes: number): RpcBudget | undefined {
    const limits = classLimits[state.peerClass];
    if (state.bytes + bytes > limits.bytesPerLink) return "link-memory";
    if (stats.reassemblyBytes[state.peerClass] + bytes > limits.bytes) return "class-memory";
    if (bytesTotal + bytes > maxBytesTotal) return "total-memory";
    state.bytes += bytes;
    stats.reassemblyBytes[state.peerClass] += bytes;
    bytesTotal += bytes;
    return undefined;
  }

  /** The "busy" refusal at `budget`, counted; class and node-wide budgets also log (throttled) for the operator. */
  function busy(state: LinkInbound, budget: RpcBudget, message: string): RpcError {
    stats.busyRefusals++;
    stats.refusals[state.peerClass][budget]++;
    const error = new RpcError("busy", message, { code: budget });
    if (sheds(error)) logShedding(error, `serve ${state.peerClass} requests (${budget})`, "warn");
    return error;
  }

  /** A refusal at a class or node-wide budget: the node is shedding load, not one peer being refused. */
  function sheds(error: RpcError): boolean {
    return error.kind === "busy" && (error.code?.startsWith("class-") === true || error.code?.startsWith("total-") === true);
  }

  function onRequestFragment(link: Link, service: number, id: number, payload: Uint8Array): void {
    if (closed) return;
    const state = inboundOf(link);
    let fragment: { fragment: Uint8Array; seq: number; last: boolean };
    try {
      fragment = rpcFragmentOfPayload(payload);
    } catch (err) {
      stats.malformedCells++;
      dropEntry(link, state, id);
      refuse(link, service, id, wireToRpc(err));
      return;
    }
    let entry = state.messages.get(id);
    if (entry === undefined) {
      if (fragment.seq !== 0) {
        // The rest of a request already refused or timed out (the requester has its answer): drop quietly.
        stats.unsolicitedCells++;
        if (state.messages.size === 0 && state.serving === 0) inbound.delete(link);
        return;
      }
      const admitted = admit(link, state, service);
      if (admitted instanceof RpcError) {
        if (state.messages.size === 0 && state.serving === 0) inbound.delete(link);
        refuse(link, service, id, admitted);
        return;
      }
      const timeoutMs = classLimits[state.peerClass].timeoutMs;
      entry = {
        service,
        reassembler: new Reassembler({ maxMessageBytes: admitted.maxRequestBytes }),
        timer: setTimeout(() => {
          stats.reassemblyTimeouts++;
          dropEntry(link, state, id);
          refuse(link, service, id, new RpcError("timeout", `the request's cells did not all arrive within ${timeoutMs} ms`));
        }, timeoutMs),
        charged: 0,
      };
      entry.timer.unref?.();
      state.messages.set(id, entry);
      servingTotal++;
      stats.serving[state.peerClass]++;
    } else if (entry.service !== service) {
      stats.malformedCells++;
      dropEntry(link, state, id);
      refuse(link, entry.service, id, new RpcError("malformed", "a request's fragments name different services"));
      return;
    }
    let message: Uint8Array | undefined;
    const before = entry.reassembler.bytesBuffered;
    try {
      message = entry.reassembler.push(fragment.fragment);
    } catch (err) {
      stats.malformedCells++;
      dropEntry(link, state, id);
      refuse(link, service, id, wireToRpc(err));
      return;
    }
    if (message === undefined) {
      // Memory is charged as it arrives (never the announced size up front); past a budget the request is dropped.
      const grown = entry.reassembler.bytesBuffered - before;
      const full = chargeBytes(state, grown);
      if (full === undefined) entry.charged += grown;
      else {
        dropEntry(link, state, id);
        refuse(link, service, id, busy(state, full, `a partly received request would take this ${state.peerClass} link past its ${full} budget; retry later`));
      }
      return;
    }
    // Whole: from "being received" to "being served" (servingTotal unchanged).
    release(state, entry);
    state.messages.delete(id);
    state.serving++;
    void serveOne(link, state, service, id, message);
  }

  /** The service to hand a new request to, or why it must be refused. */
  function admit(link: Link, state: LinkInbound, service: number): Service | RpcError {
    const s = services.get(service);
    if (s === undefined) return new RpcError("unknown-service", `this node does not serve ${serviceLabel(service)}`);
    if (!s.allowAnonymous && link.peerIdentity === undefined) {
      return new RpcError("unauthenticated", `${serviceLabel(service)} needs a node link authenticated with an identity key`);
    }
    const limits = classLimits[state.peerClass];
    if (state.serving + state.messages.size >= limits.inflight) {
      return busy(state, "link-inflight", `${limits.inflight} requests from this ${state.peerClass} link already in progress; wait for answers`);
    }
    if (state.peerClass === "anonymous" && !takeRequestToken(link)) {
      return busy(state, "rate", `anonymous links may start ${anon.requestsPerSecond} requests a second; slow down`);
    }
    if (stats.serving[state.peerClass] >= limits.serving) {
      return busy(state, "class-serving", `this node is handling ${limits.serving} requests from ${state.peerClass} links; retry later`);
    }
    if (servingTotal >= maxServingTotal) {
      return busy(state, "total-serving", `this node is handling ${maxServingTotal} requests; retry later`);
    }
    return s;
  }

  function takeRequestToken(link: Link): boolean {
    const now = performance.now();
    let bucket = rates.get(link);
    if (bucket === undefined) rates.set(link, (bucket = new TokenBucket({ bytesPerSecond: anon.requestsPerSecond, burstBytes: anon.requestBurst, now })));
    return bucket.tryTake(1, now);
  }

  async function serveOne(link: Link, state: LinkInbound, service: number, id: number, bytes: Uint8Array): Promise<void> {
    const hold = link.acquire();
    try {
      const s = services.get(service);
      if (s === undefined) throw new RpcError("unknown-service", `this node stopped serving ${serviceLabel(service)}`);
      let response: Uint8Array;
      try {
        response = await s.handler(bytes, { peer: link.peerIdentity ?? null, link, service });
      } catch (err) {
        if (err instanceof RpcError) throw err;
        // Handlers refuse with RpcError; anything else thrown is a failure of ours the requester only sees as "handler-failed".
        logFailure(log, err, `serve ${serviceLabel(service)}`, "error");
        throw new RpcError("handler-failed", `${serviceLabel(service)} could not answer: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      if (!(response instanceof Uint8Array)) throw new RpcError("handler-failed", `${serviceLabel(service)} answered with something other than bytes`);
      if (response.length > maxMessageBytes) throw new RpcError("oversized", `the response would be ${response.length} bytes; the limit is ${maxMessageBytes}`);
      if (link.isOpen) {
        link.sendMany(encodeRpcCells(RpcCellKind.RESPONSE, service, id, response));
        stats.requestsServed++;
      }
    } catch (err) {
      refuse(
        link,
        service,
        id,
        err instanceof RpcError ? err : new RpcError("handler-failed", `could not answer: ${err instanceof Error ? err.message : String(err)}`),
      );
    } finally {
      hold();
      state.serving--;
      servingTotal--;
      stats.serving[state.peerClass]--;
      if (state.messages.size === 0 && state.serving === 0) inbound.delete(link);
    }
  }

  function refuse(link: Link, service: number, id: number, error: RpcError): void {
    // A peer's bad or excess requests: counted, printed only at debug (shedding at a class or node-wide budget was logged by busy()).
    if (error.kind === "busy") {
      if (!sheds(error)) logBusyLink(error, "answer request", "debug");
    } else logFailure(log, error, "answer request", "debug", { service: serviceLabel(service), link: link.id });
    if (!link.isOpen) return;
    try {
      link.send(encodeRpcErrorCell(service, id, error));
      stats.errorsSent++;
    } catch (err) {
      // The link is closing; the requester's own deadline or linkClosed handles it.
      logFailure(log, err, "send refusal", "debug", { service: serviceLabel(service), link: link.id });
    }
  }

  return {
    stats,
    maxMessageBytes,
    serve(service, handler, serveOptions = {}) {
      const id = serviceId(service);
      if (closed) throw new RpcError("closed", "the RPC endpoint is closed");
      if (typeof handler !== "function") throw new RpcError("config", "serve needs a handler function");
      if (services.has(id))
        throw new RpcError("config", `${serviceLabel(id)} is already served on this endpoint; stop the first handler before serving another`);
      const maxRequestBytes = serveOptions.maxRequestBytes ?? maxMessageBytes;
      if (!Number.isInteger(maxRequestBytes) || maxRequestBytes < 0 || maxRequestBytes > maxMessageBytes) {
        throw new RpcError("config", `maxRequestBytes must be an integer in 0..${maxMessageBytes} (the endpoint's maxMessageBytes), got ${maxRequestBytes}`);
      }
      const entry: Service = { handler, allowAnonymous: serveOptions.allowAnonymous ?? true, maxRequestBytes };
      services.set(id, entry);
      return () => {
        if (services.get(id) === entry) services.delete(id);
      };
    },
    request,
    requestOnLink,
    get inflight() {
      return pending.size;
    },
    close() {
      if (closed) return;
      closed = true;
      unregister();
      manager.off("linkClosed", onLinkClosed);
      services.clear();
      for (const p of pending.values()) p.reject(new RpcError("closed", "the RPC endpoint was closed"));
      for (const [link, state] of inbound) dropAll(link, state);
    },
  };
}

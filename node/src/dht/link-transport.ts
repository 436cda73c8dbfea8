/**
 * The DHT over PSP links: a DhtTransport that carries DHT messages as
 * service "dht" of the link RPC layer (link/rpc.ts: RPC cells, fragments,
 * request ids, deadlines, per-peer caps, typed ERROR cells), and serves
 * incoming requests to a handler (normally `DhtNode.handleRequest`).
 *
 * Owns only what is DHT-specific: contact addresses ("host:port"), the
 * encoding of requests and responses (canonical CBOR of signed DHT
 * messages, messages.ts, at most `maxMessageBytes`), the rule that a
 * request's signed sender key must be the identity the link authenticated
 * (anonymous client links are refused by the RPC layer), and the mapping of
 * RPC errors to DhtError kinds. CellCommand.DHT (10), this transport's first
 * framing, is reserved and unused.
 *
 * Trusts: the link layer for the peer's identity and ordered delivery; the
 * RPC layer for framing. Trusts nothing in a message; the DhtNode verifies
 * every message it gets.
 */
import { isLoopbackHost } from "../base/address.js";
import { RpcError } from "../link/rpc.js";
import type { LinkRpc, RpcContext } from "../link/rpc.js";
import type { Contact } from "./contact.js";
import { DHT_ERROR_KINDS, DhtError } from "./errors.js";
import type { DhtErrorKind } from "./errors.js";
import { idsEqual } from "./id.js";
import { MAX_MESSAGE_BYTES, decodeDhtMessage, encodeDhtMessage, isRequestBody } from "./messages.js";
import type { DhtRequest, DhtRequestContext, DhtResponse, DhtTransport } from "./messages.js";

/** The RPC service the DHT answers on. */
export const DHT_RPC_SERVICE = "dht";

export interface LinkDhtTransportOptions {
  /** The node's link RPC endpoint (one per connection manager, shared with other services). */
  rpc: LinkRpc;
  /** Largest DHT message sent or accepted (default MAX_MESSAGE_BYTES, 32 KiB; at most rpc.maxMessageBytes). */
  maxMessageBytes?: number;
}

export interface LinkDhtTransportStats {
  requestsSent: number;
  responsesReceived: number;
  requestsServed: number;
  /** Incoming requests refused before the DhtNode saw them (bad encoding, a response sent as a request, sender ≠ link identity). */
  requestsRefused: number;
}

/** A request handler: DhtNode.handleRequest. Must not throw (DhtNode's never does). */
export type DhtRequestHandler = (request: DhtRequest, context: DhtRequestContext) => Promise<DhtResponse> | DhtResponse;

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

/** The DhtError an RPC failure means to the DHT. */
export function rpcToDhtError(err: unknown): DhtError {
  if (err instanceof DhtError) return err;
  if (!(err instanceof RpcError)) return new DhtError("malformed", `DHT request failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  const same: Partial<Record<RpcError["kind"], DhtErrorKind>> = {
    timeout: "timeout",
    busy: "busy",
    oversized: "oversized",
    malformed: "malformed",
    unreachable: "unreachable",
    closed: "unreachable",
    "unknown-service": "unreachable",
    unauthenticated: "link-mismatch",
    config: "bad-config",
    "handler-failed": "malformed",
  };
  if (err.kind === "refused") {
    const code = err.code as DhtErrorKind | undefined;
    return new DhtError(code !== undefined && DHT_ERROR_KINDS.includes(code) ? code : "malformed", err.message, { cause: err });
  }
  return new DhtError(same[err.kind] ?? "malformed", err.message, { cause: err });
}

/**
 * True when a failed request was refused by this node's own limits (its
 * request slots to the peer, its replay cache), not by the peer: the DHT
 * must not count it against the contact.
 */
export function isLocalRefusal(err: unknown): boolean {
  // "overloaded" is raised by this node's replay cache; one that arrived from a peer (an RPC refusal code) is the peer's.
  if (DhtError.is(err, "overloaded")) return !(err.cause instanceof RpcError);
  return DhtError.is(err, "busy") && err.cause instanceof RpcError && !err.cause.remote;
}

export class LinkDhtTransport implements DhtTransport {
  readonly stats: LinkDhtTransportStats = { requestsSent: 0, responsesReceived: 0, requestsServed: 0, requestsRefused: 0 };
  readonly rpc: LinkRpc;
  private readonly maxMessageBytes: number;
  private stopServing: (() => void) | undefined;
  private closed = false;

  constructor(options: LinkDhtTransportOptions) {
    this.rpc = options.rpc;
    this.maxMessageBytes = options.maxMessageBytes ?? Math.min(MAX_MESSAGE_BYTES, this.rpc.maxMessageBytes);
    if (!Number.isInteger(this.maxMessageBytes) || this.maxMessageBytes < 1 || this.maxMessageBytes > this.rpc.maxMessageBytes) {
      throw new DhtError(
        "bad-config",
        `maxMessageBytes must be an integer in 1..${this.rpc.maxMessageBytes} (the RPC endpoint's limit), got ${this.maxMessageBytes}`,
      );
    }
  }

  /** Serves incoming DHT requests with `handler` (DhtNode.handleRequest). Returns a function that stops serving. */
  serve(handler: DhtRequestHandler): () => void {
    if (this.closed) throw new DhtError("unreachable", "the DHT link transport is closed");
    this.stopServing?.();
    const stop = this.rpc.serve(DHT_RPC_SERVICE, (bytes, ctx) => this.handle(handler, bytes, ctx), {
      allowAnonymous: false,
      maxRequestBytes: this.maxMessageBytes,
    });
    this.stopServing = stop;
    return () => {
      if (this.stopServing === stop) this.stopServing = undefined;
      stop();
    };
  }

  /** Stops serving the DHT. The RPC endpoint and the manager stay open (other services share them). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopServing?.();
    this.stopServing = undefined;
  }

  /** Requests of this node's RPC endpoint waiting for an answer (all services, all peers). */
  get inflight(): number {
    return this.rpc.inflight;
  }

  async request(contact: Contact, message: DhtRequest, options: { timeoutMs: number }): Promise<DhtResponse> {
    if (this.closed) throw new DhtError("unreachable", "the DHT link transport is closed");
    const peer = { identity: contact.publicKey, ...parseLinkAddress(contact.address) };
    const bytes = encodeDhtMessage(message);
    if (bytes.length > this.maxMessageBytes) {
      throw new DhtError("oversized", `DHT request is ${bytes.length} bytes; the limit is ${this.maxMessageBytes}`);
    }
    let answer: Uint8Array;
    try {
      this.stats.requestsSent++;
      answer = await this.rpc.request(peer, DHT_RPC_SERVICE, bytes, { timeoutMs: options.timeoutMs, maxResponseBytes: this.maxMessageBytes });
    } catch (err) {
      throw rpcToDhtError(err);
    }
    const response = decodeDhtMessage(answer);
    if (isRequestBody(response.body)) throw new DhtError("unexpected-response", `peer answered with a ${response.body.type} request`);
    this.stats.responsesReceived++;
    return response as DhtResponse;
  }

  private async handle(handler: DhtRequestHandler, bytes: Uint8Array, ctx: RpcContext): Promise<Uint8Array> {
    let request: DhtRequest;
    try {
      const decoded = decodeDhtMessage(bytes);
      if (!isRequestBody(decoded.body)) throw new DhtError("malformed", `${decoded.body.type} is a response, sent as a request`);
      if (ctx.peer === null || !idsEqual(decoded.sender.publicKey, ctx.peer)) {
        throw new DhtError("link-mismatch", "the request's sender key is not the identity this link authenticated");
      }
      request = decoded as DhtRequest;
    } catch (err) {
      this.stats.requestsRefused++;
      const e = err instanceof DhtError ? err : new DhtError("malformed", `bad DHT message: ${err instanceof Error ? err.message : String(err)}`);
      throw new RpcError("refused", e.message, { code: e.kind, cause: e });
    }
    // The source host, for the per-address storage quota (the port is the peer's ephemeral one; loopback is every local peer's).
    const host = ctx.link.remoteAddress.host;
    const response = encodeDhtMessage(await handler(request, host === "" || isLoopbackHost(host) ? {} : { address: host }));
    if (response.length > this.maxMessageBytes) throw new RpcError("refused", `response would be ${response.length} bytes`, { code: "oversized" });
    this.stats.requestsServed++;
    return response;
  }
}

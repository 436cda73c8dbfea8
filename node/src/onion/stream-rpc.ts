/**
 * Request/response over one onion stream: what the DHT, authority and other
 * services a node offers at the end of circuits speak (docs/spec/onion.md
 * "Request/response over a stream").
 *
 * Owns the message layout `REQUEST_ID (4) ‖ KIND (1) ‖ BODY` (one stream
 * message each, the onion layer fragments it), request ids, the client's
 * per-request deadlines, the server's per-stream cap on requests in flight
 * (one more is refused "busy"), the service-wide cap past which streams are
 * paused (their senders stop at the flow-control window until the handler
 * catches up), and ERROR messages that refuse a request with a typed kind
 * (busy, oversized, malformed, refused with the service's own code,
 * handler-failed). A bad message never ends the stream or the process.
 *
 * Trusts: the onion layer for ordered, whole messages on the stream. Trusts
 * nothing in the messages; their bodies are the handler's to check. The
 * server learns nothing about the client beyond the local circuit serial.
 */
import { codeLookup } from "../base/codes.js";
import { PspError, layerError } from "../errors.js";
import type { KindCategories, PspErrorOptions } from "../errors.js";
import { decodeErrorBody, encodeErrorBody } from "../wire/error-body.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { EndReason } from "./constants.js";
import type { OnionStream } from "./onion-client.js";
import type { LocalService, ServiceHandler, ServiceStream } from "./types.js";

/** request id (4) + kind (1). */
export const STREAM_RPC_HEADER_LEN = 5;
/** Default largest request or response body: 64 KiB. */
export const DEFAULT_STREAM_RPC_MAX_MESSAGE_BYTES = 64 * 1024;
/** Default requests one stream may have in the handler at once. */
export const DEFAULT_STREAM_RPC_MAX_INFLIGHT = 8;
/** Default requests in the handler across every stream of one service before streams are paused. */
export const DEFAULT_STREAM_RPC_MAX_INFLIGHT_TOTAL = 256;

/** The KIND byte. */
export const StreamRpcKind = {
  REQUEST: 1,
  RESPONSE: 2,
  ERROR: 3,
} as const;

export type StreamRpcErrorKind =
  /** Bad options or arguments (caller bug); the message names the fix. */
  | "bad-argument"
  /** No answer before the request's deadline. */
  | "timeout"
  /** The stream (or this RPC endpoint) closed before the answer; `cause` holds the stream's CircuitError. */
  | "closed"
  /** The server has `maxInflight` requests of this stream in progress; wait for answers. */
  | "busy"
  /** A request or response is larger than the limit. */
  | "oversized"
  /** A message that does not follow the layout. */
  | "malformed"
  /** The service refused the request; `code` is its own reason (e.g. a DhtError kind). */
  | "refused"
  /** The service failed while answering. */
  | "handler-failed";

/** The kinds that travel in ERROR messages, by their one-byte code; any other kind is sent as "handler-failed". */
export const StreamRpcErrorCode = {
  busy: 1,
  oversized: 2,
  malformed: 3,
  refused: 4,
  "handler-failed": 5,
} as const satisfies Partial<Record<StreamRpcErrorKind, number>>;
const streamRpcErrorCodes = codeLookup(StreamRpcErrorCode);
/** Longest ERROR text, in bytes of UTF-8. */
const MAX_ERROR_TEXT = 512;

/**
 * Categories as the requester meets them, the same as the link RPC's: a
 * closed stream, a busy or failing service can be asked again (on a new
 * stream), a refusal or an oversized message will be refused again.
 */
const STREAM_RPC_CATEGORIES = {
  "bad-argument": "bug",
  timeout: "transient",
  closed: "transient",
  busy: "transient",
  oversized: "refused",
  malformed: "peer",
  refused: "refused",
  "handler-failed": "transient",
} as const satisfies KindCategories<StreamRpcErrorKind>;

/** The onion layer's request/response error: one request over a stream failed or was refused. */
export class StreamRpcError extends layerError<StreamRpcErrorKind>("onion", STREAM_RPC_CATEGORIES) {
  /** For "refused": the service's reason, ASCII, ≤ 32 bytes. */
  readonly code: string | undefined;
  /** True when the far end sent this error. */
  readonly remote: boolean;

  constructor(kind: StreamRpcErrorKind, message: string, options?: PspErrorOptions & { code?: string; remote?: boolean }) {
    super(kind, message, options);
    this.code = options?.code;
    this.remote = options?.remote ?? false;
  }
}

// ------------------------------------------------------------------ codec

/** One decoded stream-RPC message. */
export interface StreamRpcMessage {
  id: number;
  kind: number;
  body: Uint8Array;
}

/** `id (4, big-endian) ‖ kind (1) ‖ body`. */
export function encodeStreamRpcMessage(id: number, kind: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(STREAM_RPC_HEADER_LEN + body.length);
  new DataView(out.buffer).setUint32(0, id >>> 0);
  out[4] = kind;
  out.set(body, STREAM_RPC_HEADER_LEN);
  return out;
}

/** Splits a message; throws StreamRpcError "malformed" when it is shorter than the header. */
export function decodeStreamRpcMessage(message: Uint8Array): StreamRpcMessage {
  if (!(message instanceof Uint8Array) || message.length < STREAM_RPC_HEADER_LEN) {
    throw new StreamRpcError("malformed", `a stream-RPC message needs at least ${STREAM_RPC_HEADER_LEN} bytes (id and kind)`);
  }
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  return { id: view.getUint32(0), kind: message[4] as number, body: message.subarray(STREAM_RPC_HEADER_LEN) };
}

/** An ERROR message's body, as wire/error-body.ts lays it out. */
export function encodeStreamRpcError(error: { kind: StreamRpcErrorKind; message: string; code?: string | undefined }): Uint8Array {
  const code = streamRpcErrorCodes.codeOf(error.kind) ?? StreamRpcErrorCode["handler-failed"];
  return encodeErrorBody({ code, detail: error.code ?? "", text: error.message }, MAX_ERROR_TEXT);
}

/** The error an ERROR body reports; an unknown code or a body that does not decode is "malformed". */
export function decodeStreamRpcError(body: Uint8Array): StreamRpcError {
  const decoded = decodeErrorBody(body);
  const kind = decoded === undefined ? undefined : streamRpcErrorCodes.nameOf(decoded.code);
  if (decoded === undefined || kind === undefined) {
    return new StreamRpcError("malformed", `the service sent an ERROR message with code ${body[0] ?? "none"} that does not decode`, { remote: true });
  }
  const { detail, text } = decoded;
  return new StreamRpcError(kind, `the service refused the request${detail ? ` (${detail})` : ""}: ${text}`, { ...(detail ? { code: detail } : {}), remote: true });
}

function positiveInteger(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new StreamRpcError("bad-argument", `${name} must be a positive integer, got ${String(v)}`);
  return v;
}

// ------------------------------------------------------------------ server

/** What a handler learns about a request's origin: only local serials. */
export interface StreamRpcContext {
  /** Local serial of the circuit (not its wire id; unknown to the client). */
  circuitId: number;
  streamId: number;
}

/**
 * Answers one request. Throw StreamRpcError("refused", …, { code }) for a
 * typed refusal; any other PspError is sent as "refused" with its `kind` as
 * the code; anything else is "handler-failed" (its text is not sent).
 */
export type StreamRpcHandler = (request: Uint8Array, ctx: StreamRpcContext) => Promise<Uint8Array>;

export interface StreamRpcServiceOptions {
  /** Largest request body accepted and response body sent (default 64 KiB). */
  maxMessageBytes?: number;
  /** Requests of one stream in the handler at once (default 8); one more is refused "busy". */
  maxInflight?: number;
  /** Requests in the handler across every stream of this service (default 256); past it a stream that delivers one more is paused until the total halves. */
  maxInflightTotal?: number;
  /**
   * Performs the cells a reply queued outside the relay's own call (the
   * handler answers asynchronously, after the relay's round ended). startNode
   * passes `() => driver.run(() => undefined)`; without it a reply waits for
   * the node's next onion round.
   */
  flush?: () => void;
  /** Called once per stream when it ends (drop per-stream state). */
  onStreamEnd?: (ctx: StreamRpcContext) => void;
  /** Logs as component "stream-rpc": a client that stops taking replies and replies left unsent at shutdown (debug, counted). */
  logger?: Logger;
}

/** Counters of one stream-RPC service. */
export interface StreamRpcServiceStats {
  streams: number;
  requests: number;
  responses: number;
  /** ERROR messages sent (refusals of every kind). */
  errors: number;
  busyRefusals: number;
  malformed: number;
  /** Times a stream was paused because the service was saturated. */
  pauses: number;
  /** Requests in the handler now, all streams. */
  inflight: number;
}

/** A LocalService answering requests with `handler`, plus its counters. */
export interface StreamRpcService {
  readonly service: LocalService;
  readonly stats: StreamRpcServiceStats;
}

/**
 * Serves `handler` on every stream opened to this service. Bad messages get
 * typed ERROR messages; a handler that throws never ends the stream; a reply
 * the stream cannot queue (the client stopped reading) ends the stream with
 * END RESOURCELIMIT.
 */
export function createStreamRpcService(handler: StreamRpcHandler, options: StreamRpcServiceOptions = {}): StreamRpcService {
  if (typeof handler !== "function") throw new StreamRpcError("bad-argument", "streamRpcService needs a handler function");
  const maxMessageBytes = positiveInteger("maxMessageBytes", options.maxMessageBytes ?? DEFAULT_STREAM_RPC_MAX_MESSAGE_BYTES);
  const maxInflight = positiveInteger("maxInflight", options.maxInflight ?? DEFAULT_STREAM_RPC_MAX_INFLIGHT);
  const maxInflightTotal = positiveInteger("maxInflightTotal", options.maxInflightTotal ?? DEFAULT_STREAM_RPC_MAX_INFLIGHT_TOTAL);
  const flush = options.flush ?? (() => undefined);
  const log = childLogger(options.logger, "stream-rpc");
  const stats: StreamRpcServiceStats = { streams: 0, requests: 0, responses: 0, errors: 0, busyRefusals: 0, malformed: 0, pauses: 0, inflight: 0 };
  /** Streams paused for saturation, resumed in order when the total halves. */
  const paused = new Set<ServiceStream>();

  const resumePaused = (): void => {
    if (stats.inflight > Math.floor(maxInflightTotal / 2) || paused.size === 0) return;
    const streams = [...paused];
    paused.clear();
    for (const s of streams) s.resume();
  };

  const service: LocalService = (stream) => {
    stats.streams++;
    const ctx: StreamRpcContext = { circuitId: stream.circuitId, streamId: stream.streamId };
    let open = true;
    let inflight = 0;

    const send = (id: number, kind: number, body: Uint8Array): void => {
      if (!open) return;
      try {
        stream.send(encodeStreamRpcMessage(id, kind, body));
      } catch (err) {
        // The client does not take its replies: stop rather than buffer.
        logFailure(log, err, "send a reply", "debug", { circuit: ctx.circuitId, stream: ctx.streamId });
        open = false;
        stream.end(EndReason.RESOURCELIMIT);
      }
    };
    const refuse = (id: number, error: StreamRpcError): void => {
      stats.errors++;
      send(id, StreamRpcKind.ERROR, encodeStreamRpcError(error));
    };

    async function serve(id: number, body: Uint8Array): Promise<void> {
      let reply: { kind: number; body: Uint8Array };
      try {
        const response = await handler(body, ctx);
        if (!(response instanceof Uint8Array)) throw new StreamRpcError("handler-failed", "the service answered with something other than bytes");
        if (response.length > maxMessageBytes) throw new StreamRpcError("oversized", `the response would be ${response.length} bytes; the limit is ${maxMessageBytes}`);
        reply = { kind: StreamRpcKind.RESPONSE, body: response };
        stats.responses++;
      } catch (err) {
        stats.errors++;
        reply = { kind: StreamRpcKind.ERROR, body: encodeStreamRpcError(asWireError(err)) };
      } finally {
        inflight--;
        stats.inflight--;
      }
      flush_(() => {
        send(id, reply.kind, reply.body);
        resumePaused();
      });
    }

    /** Runs `fn` (which may queue cells) and has the driver send them now. */
    const flush_ = (fn: () => void): void => {
      fn();
      try {
        flush();
      } catch (err) {
        // The driver is stopped (node closing): nothing to send any more.
        logFailure(log, err, "flush replies", "debug");
      }
    };

    const onStreamHandler: ServiceHandler = {
      onMessage(message) {
        if (!open) return;
        let decoded: StreamRpcMessage;
        try {
          decoded = decodeStreamRpcMessage(message);
        } catch (err) {
          stats.malformed++;
          // No id to answer: id 0 is never a client's request id.
          return refuse(0, err as StreamRpcError);
        }
        const { id, kind, body } = decoded;
        if (kind !== StreamRpcKind.REQUEST) {
          stats.malformed++;
          return refuse(id, new StreamRpcError("malformed", `a client sends only requests (kind ${StreamRpcKind.REQUEST}), got kind ${kind}`));
        }
        if (body.length > maxMessageBytes) return refuse(id, new StreamRpcError("oversized", `the request is ${body.length} bytes; the limit is ${maxMessageBytes}`));
        if (inflight >= maxInflight) {
          stats.busyRefusals++;
          return refuse(id, new StreamRpcError("busy", `${maxInflight} requests of this stream are already in progress; wait for answers`));
        }
        stats.requests++;
        inflight++;
        stats.inflight++;
        if (stats.inflight >= maxInflightTotal && !paused.has(stream)) {
          stats.pauses++;
          paused.add(stream);
          stream.pause();
        }
        void serve(id, body);
      },
      onEnd() {
        open = false;
        paused.delete(stream);
        options.onStreamEnd?.(ctx);
      },
    };
    return onStreamHandler;
  };
  return { service, stats };
}

/** The LocalService of createStreamRpcService (when the counters are not needed). */
export function streamRpcService(handler: StreamRpcHandler, options: StreamRpcServiceOptions = {}): LocalService {
  return createStreamRpcService(handler, options).service;
}

function asWireError(err: unknown): StreamRpcError {
  if (err instanceof StreamRpcError) return err;
  if (err instanceof PspError) return new StreamRpcError("refused", err.message, { code: err.kind });
  return new StreamRpcError("handler-failed", "the service failed while answering");
}

// ------------------------------------------------------------------ client

export interface CreateStreamRpcOptions {
  /** Largest request body sent and response body accepted (default 64 KiB). */
  maxMessageBytes?: number;
}

export interface StreamRpcRequestOptions {
  /** Deadline for the exchange (sending included). */
  timeoutMs: number;
}

export interface StreamRpcStats {
  requestsSent: number;
  responsesReceived: number;
  /** ERROR messages received for our requests. */
  errorsReceived: number;
  /** Messages for no pending request (late after a timeout, or forged), dropped. */
  unsolicited: number;
  /** Messages that did not follow the layout. */
  malformed: number;
}

export interface StreamRpc {
  readonly stats: StreamRpcStats;
  /** Requests waiting for an answer. */
  readonly inflight: number;
  /** Sends `request` and resolves with the response body. Rejects with StreamRpcError only. */
  request(request: Uint8Array, options: StreamRpcRequestOptions): Promise<Uint8Array>;
  /** Fails pending requests with "closed" and ends the stream (END DONE). */
  close(): void;
}

/** The part of an OnionStream the client uses (a test can hand in a fake). */
export type RpcStream = Pick<OnionStream, "service" | "isOpen" | "send" | "close" | "on" | "off">;

interface Pending {
  resolve: (body: Uint8Array) => void;
  reject: (error: StreamRpcError) => void;
}

/**
 * The client side over an open stream. Takes the stream's messages (adds a
 * 'message' listener): use one StreamRpc per stream and nothing else on it.
 */
export function createStreamRpc(stream: RpcStream, options: CreateStreamRpcOptions = {}): StreamRpc {
  if (stream === null || typeof stream !== "object" || typeof stream.send !== "function") {
    throw new StreamRpcError("bad-argument", "createStreamRpc needs an open OnionStream (circuit.openStream(service))");
  }
  const maxMessageBytes = positiveInteger("maxMessageBytes", options.maxMessageBytes ?? DEFAULT_STREAM_RPC_MAX_MESSAGE_BYTES);
  const stats: StreamRpcStats = { requestsSent: 0, responsesReceived: 0, errorsReceived: 0, unsolicited: 0, malformed: 0 };
  const pending = new Map<number, Pending>();
  let nextId = 0;
  let closedError: StreamRpcError | undefined;

  const onMessage = (message: Uint8Array): void => {
    let decoded: StreamRpcMessage;
    try {
      decoded = decodeStreamRpcMessage(message);
    } catch {
      stats.malformed++;
      return;
    }
    const p = pending.get(decoded.id);
    if (p === undefined) {
      stats.unsolicited++;
      return;
    }
    switch (decoded.kind) {
      case StreamRpcKind.RESPONSE:
        if (decoded.body.length > maxMessageBytes) {
          p.reject(new StreamRpcError("oversized", `the response is ${decoded.body.length} bytes; the limit is ${maxMessageBytes}`, { remote: true }));
          return;
        }
        stats.responsesReceived++;
        p.resolve(decoded.body);
        return;
      case StreamRpcKind.ERROR:
        stats.errorsReceived++;
        p.reject(decodeStreamRpcError(decoded.body));
        return;
      default:
        stats.malformed++;
        p.reject(new StreamRpcError("malformed", `the service answered with message kind ${decoded.kind}`, { remote: true }));
    }
  };
  const onClose = (error: unknown): void => {
    shut(new StreamRpcError("closed", `the stream to "${stream.service}" closed${error instanceof Error ? `: ${error.message}` : ""}`, error === undefined ? undefined : { cause: error }));
  };
  const shut = (error: StreamRpcError): void => {
    if (closedError) return;
    closedError = error;
    stream.off("message", onMessage);
    stream.off("close", onClose);
    for (const p of [...pending.values()]) p.reject(error);
  };
  stream.on("message", onMessage);
  stream.on("close", onClose);
  if (!stream.isOpen) onClose(undefined);

  const allocateId = (): number => {
    do nextId = (nextId + 1) >>> 0 || 1;
    while (pending.has(nextId));
    return nextId;
  };

  return {
    stats,
    get inflight() {
      return pending.size;
    },
    request(request, requestOptions) {
      if (closedError) return Promise.reject(closedError);
      if (!(request instanceof Uint8Array)) return Promise.reject(new StreamRpcError("bad-argument", "the request must be a Uint8Array"));
      const timeoutMs = requestOptions?.timeoutMs;
      if (typeof timeoutMs !== "number" || !(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
        return Promise.reject(new StreamRpcError("bad-argument", `timeoutMs must be a positive number of milliseconds, got ${String(timeoutMs)}`));
      }
      if (request.length > maxMessageBytes) return Promise.reject(new StreamRpcError("oversized", `the request is ${request.length} bytes; the limit is ${maxMessageBytes}`));
      return new Promise<Uint8Array>((resolve, reject) => {
        const id = allocateId();
        const settle = (): boolean => {
          if (!pending.has(id)) return false;
          pending.delete(id);
          clearTimeout(timer);
          return true;
        };
        const timer = setTimeout(() => {
          if (settle()) reject(new StreamRpcError("timeout", `"${stream.service}" did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve: (b) => settle() && resolve(b), reject: (e) => settle() && reject(e) });
        stats.requestsSent++;
        stream.send(encodeStreamRpcMessage(id, StreamRpcKind.REQUEST, request)).catch((err: unknown) => {
          pending.get(id)?.reject(new StreamRpcError("closed", `could not send on the stream: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
        });
      });
    },
    close() {
      shut(new StreamRpcError("closed", "the stream RPC was closed"));
      stream.close();
    },
  };
}

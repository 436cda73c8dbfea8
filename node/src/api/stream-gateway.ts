/**
 * The browser gateway of a stream (docs/spec/streaming.md "Browser
 * gateway"): the network half of a viewer in a web page. A browser cannot
 * dial a node's stream link (TLS with a node proof, ALPN psp-stream/1), so
 * a server it can reach attaches to the stream as a viewer for it and
 * forwards every chunk over a WebSocket, still sealed; the page holds the
 * ticket, opens the chunks and plays them (dashboard/src/player/).
 *
 * Owns: the route (`GET /v1/streams/:streamId/sealed`, a WebSocket), its
 * framing (a binary message per chunk = the CHUNK frame's body unchanged:
 * seq (8, big-endian) ‖ sealed chunk; text messages are JSON: `{ "type":
 * "attached" }`, `{ "type": "end" }`, or `{ "error": { "kind", "message" } }`
 * right before the gateway closes the socket), one keyless Player per socket
 * (stream/player.ts with a StreamLocator: it attaches with a session id from
 * `session`, re-attaches when its access point goes away, drops repeats),
 * and per-socket buffering bounded like a slow viewer's at a node: a
 * FanoutEngine with one viewer sink (stream/fanout.ts), so a browser that
 * falls more than `maxQueueBytes` behind jumps to the live edge and queued
 * chunks older than `maxDelayMs` are dropped.
 *
 * Trusts: `locate` for where a stream lives; nothing from the browser (it
 * sends nothing the gateway reads; its stream id is checked and looked up).
 * Never holds a stream key: the gateway cannot read the media, and a page
 * given a wrong ticket only gets chunks it cannot open.
 */
import fastifyWebsocket from "@fastify/websocket";
import type { FastifyInstance } from "fastify";
import type { WebSocket } from "ws";
import { parseHex } from "../base/hex.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { FanoutEngine } from "../stream/fanout.js";
import type { FanoutSend } from "../stream/fanout.js";
import { StreamMediaError } from "../stream/media-errors.js";
import { Player } from "../stream/player.js";
import type { SealedChunk, StreamLocator } from "../stream/player.js";
import { errorAnswer } from "./errors.js";

/** The gateway's route; `:streamId` is the stream id in 32 lowercase hex digits. */
export const STREAM_GATEWAY_ROUTE = "/v1/streams/:streamId/sealed";
/** Bytes a browser's queue may hold while its socket is blocked (as a viewer's at a node: ~2 s at 2 Mbit/s). */
export const GATEWAY_QUEUE_BYTES = 512 * 1024;
/** A socket counts as blocked once this much is buffered in it unsent... */
const BLOCKED_ABOVE = 64 * 1024;
/** ...and as drained again once less than this is. */
const DRAINED_BELOW = 16 * 1024;
/** WebSocket close codes: 1000 after END, 1011 after an error message (its kind says why), 1001 when the gateway closes. */
const CLOSE_END = 1000;
const CLOSE_GOING_AWAY = 1001;
const CLOSE_ERROR = 1011;

export interface StreamGatewayOptions {
  /** Where the stream with this id lives (a ticket without its key); undefined when this gateway does not serve it. */
  locate(streamId: Uint8Array): StreamLocator | undefined | Promise<StreamLocator | undefined>;
  /** A viewer session id from an oracle, asked before each attach (client.oracle.session().session, renewed by the caller). */
  session(): Promise<Uint8Array> | Uint8Array;
  /** Per-socket queue bound, bytes (default GATEWAY_QUEUE_BYTES). */
  maxQueueBytes?: number;
  /** A queued chunk older than this when the socket drains is dropped (default 1500 ms). */
  maxDelayMs?: number;
  /** How long a player may take to find another access point (default 10 s). */
  reattachTimeoutMs?: number;
  logger?: Logger;
}

export interface StreamGatewayStats {
  /** Browser sockets open now. */
  sockets: number;
  /** Chunks written to browsers. */
  chunksOut: number;
  /** Chunks dropped for a slow browser (live-edge jumps, too old when its socket drained). */
  dropped: number;
  liveEdgeJumps: number;
}

export interface StreamGateway {
  readonly stats: StreamGatewayStats;
  /** Closes every browser socket (1001) and its player. */
  close(): void;
}

/** The binary message for one chunk: seq (8, big-endian) ‖ sealed chunk. */
export function gatewayChunkMessage(chunk: SealedChunk): Buffer {
  const out = Buffer.allocUnsafe(8 + chunk.sealed.length);
  out.writeBigUInt64BE(chunk.seq, 0);
  out.set(chunk.sealed, 8);
  return out;
}

/**
 * Mounts the gateway's WebSocket route on `app` (registering @fastify/websocket
 * when the app has not). Call before the app listens.
 */
export async function mountStreamGateway(app: FastifyInstance, options: StreamGatewayOptions): Promise<StreamGateway> {
  const log = childLogger(options.logger, "stream-gateway");
  const stats: StreamGatewayStats = { sockets: 0, chunksOut: 0, dropped: 0, liveEdgeJumps: 0 };
  const closers = new Set<() => void>();
  // Fail at mount, not per socket, on a bad bound.
  void new FanoutEngine({ viewerQueueBytes: options.maxQueueBytes ?? GATEWAY_QUEUE_BYTES, maxDelayMs: options.maxDelayMs ?? 1500 });
  if (!app.hasDecorator("websocketServer")) await app.register(fastifyWebsocket, { options: { maxPayload: 1024 } });

  app.get<{ Params: { streamId: string } }>(
    STREAM_GATEWAY_ROUTE,
    {
      websocket: true,
      schema: {
        summary: "A stream's sealed chunks, for a browser viewer (WebSocket)",
        description:
          "Attaches to the stream as a viewer and forwards each chunk still sealed: a binary message is seq (8, big-endian) ‖ sealed chunk; text messages are JSON ({type: attached}, {type: end}, or {error: {kind, message}} before the socket closes). The page opens chunks with the ticket's key.",
      },
    },
    (socket, request) => {
      const closer = serveSocket(socket, request.params.streamId, options, stats, log);
      closers.add(closer);
      socket.once("close", () => closers.delete(closer));
    },
  );
  return {
    stats,
    close() {
      for (const c of [...closers]) c();
      closers.clear();
    },
  };
}

function serveSocket(socket: WebSocket, streamIdText: string, options: StreamGatewayOptions, stats: StreamGatewayStats, log: Logger): () => void {
  stats.sockets++;
  const engine = new FanoutEngine({ viewerQueueBytes: options.maxQueueBytes ?? GATEWAY_QUEUE_BYTES, maxDelayMs: options.maxDelayMs ?? 1500 });
  engine.addSink("browser", "viewer");
  let player: Player | undefined;
  let done = false;
  const counted = { dropped: 0, liveEdgeJumps: 0 };

  const syncCounters = (): void => {
    stats.dropped += engine.counters.dropped - counted.dropped;
    stats.liveEdgeJumps += engine.counters.liveEdgeJumps - counted.liveEdgeJumps;
    counted.dropped = engine.counters.dropped;
    counted.liveEdgeJumps = engine.counters.liveEdgeJumps;
  };
  const finish = (code: number, message?: object): void => {
    if (done) return;
    done = true;
    stats.sockets--;
    player?.close();
    syncCounters();
    if (socket.readyState === socket.OPEN) {
      if (message) socket.send(JSON.stringify(message));
      socket.close(code);
    }
  };
  const fail = (err: unknown): void => {
    const { body } = errorAnswer(err);
    logFailure(log, err, "serve a browser viewer", "info", { stream: streamIdText });
    finish(CLOSE_ERROR, { error: { kind: body.error.kind, message: body.error.message } });
  };
  const write = (sends: FanoutSend[]): void => {
    for (const s of sends) {
      if (socket.readyState !== socket.OPEN) return;
      socket.send(s.bytes, { binary: true }, (err) => {
        if (err) return;
        if (engine.sinkState("browser")?.blocked && socket.bufferedAmount < DRAINED_BELOW) write(engine.drained("browser", Date.now()));
        syncCounters();
      });
      stats.chunksOut++;
      if (socket.bufferedAmount > BLOCKED_ABOVE) engine.blocked("browser");
    }
  };

  socket.on("close", () => finish(CLOSE_GOING_AWAY));
  socket.on("error", (err) => logFailure(log, err, "browser socket", "debug"));
  // The page has nothing to say; a message from it is ignored (maxPayload bounds it).
  socket.on("message", () => undefined);

  void (async () => {
    const streamId = /^[0-9a-f]{32}$/.test(streamIdText) ? parseHex(streamIdText) : undefined;
    if (!streamId) throw new StreamMediaError("bad-argument", "the stream id in the path is 32 lowercase hex digits (the ticket's stream id)");
    const located = await options.locate(streamId);
    if (!located) throw new StreamMediaError("unknown-stream", `this gateway serves no stream ${streamIdText}`);
    if (done) return;
    const p = new Player({
      ticket: located,
      session: options.session,
      ...(options.reattachTimeoutMs === undefined ? {} : { reattachTimeoutMs: options.reattachTimeoutMs }),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    player = p;
    p.on("sealed", (chunk) => {
      write(engine.chunk(chunk.seq, gatewayChunkMessage(chunk), Date.now()));
      syncCounters();
    });
    p.on("attached", () => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ type: "attached" }));
    });
    p.once("error", fail);
    p.once("end", () => finish(CLOSE_END, { type: "end" }));
    await p.start();
    if (!done) log.debug({ stream: streamIdText }, "browser viewer attached");
  })().catch(fail);

  return () => finish(CLOSE_GOING_AWAY);
}

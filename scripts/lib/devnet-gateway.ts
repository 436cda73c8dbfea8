/**
 * The devnet's browser gateway for its demo stream (issue 18): what lets the
 * dashboard play the stream alice publishes, decrypted in the page.
 *
 * Owns: where the demo stream is recorded once it runs (`publishDemoStream`:
 * `state.demo.stream` = `{ ticket, streamId, gateway }`, JSON, so
 * `GET /v1/devnet` shows the dashboard the ticket and the gateway's path),
 * and mounting the gateway (node/src/api/stream-gateway.ts) on the devnet
 * API's fastify app for that one stream, attaching with carol's oracle
 * session ids (StreamDemo.session). Before the demo stream runs (or without
 * ffmpeg) a page's socket gets `{ error: { kind: "unknown-stream" } }`.
 *
 * The ticket (with its key) is served by the devnet's loopback API: the
 * devnet is a demo, and it prints the ticket in its log anyway. The gateway
 * itself only ever holds the ticket without its key.
 *
 * Wiring (the devnet's entry point): `await mountDemoStreamGateway(app,
 * state)` where the devnet API adds its routes, and `publishDemoStream(state,
 * demo)` once startStreamDemo resolved.
 */
import type { FastifyInstance } from "fastify";
import { mountStreamGateway, STREAM_GATEWAY_ROUTE } from "../../node/src/api/stream-gateway.js";
import type { StreamGateway } from "../../node/src/api/stream-gateway.js";
import { bytesEqual } from "../../node/src/base/bytes.js";
import { hexOf } from "../../node/src/base/hex.js";
import type { Logger } from "../../node/src/log.js";
import { StreamMediaError } from "../../node/src/stream/media-errors.js";
import { decodeTicket } from "../../node/src/stream/ticket.js";
import type { StreamDemo } from "./devnet-stream.js";

/** The part of the devnet state this file reads and writes (DevnetState has it). */
export interface DemoStreamState {
  demo: Record<string, unknown>;
}

/** `state.demo.stream` once the demo stream runs. */
export interface DemoStreamInfo {
  /** The viewers' ticket: the page's player opens chunks with its key. */
  ticket: string;
  /** 32 hex digits. */
  streamId: string;
  /** The gateway's WebSocket path on the devnet API. */
  gateway: string;
}

/** The running demo of each state object (its session provider is not JSON, so it is kept here, not in the state). */
const running = new WeakMap<DemoStreamState, StreamDemo>();

/** Records the running demo stream in the devnet state (for /v1/devnet and the dashboard) and serves it through the gateway. */
export function publishDemoStream(state: DemoStreamState, demo: StreamDemo): DemoStreamInfo {
  const streamId = hexOf(decodeTicket(demo.ticket).streamId);
  const info: DemoStreamInfo = { ticket: demo.ticket, streamId, gateway: STREAM_GATEWAY_ROUTE.replace(":streamId", streamId) };
  running.set(state, demo);
  state.demo.stream = info;
  return info;
}

/** Forgets the demo stream (it stopped): its sockets' players fail, new sockets get unknown-stream. */
export function unpublishDemoStream(state: DemoStreamState): void {
  running.delete(state);
  delete state.demo.stream;
}

/** Mounts the gateway on the devnet API's app, serving the demo stream once publishDemoStream recorded it. */
export async function mountDemoStreamGateway(app: FastifyInstance, state: DemoStreamState, options: { logger?: Logger } = {}): Promise<StreamGateway> {
  const demo = (): StreamDemo => {
    const d = running.get(state);
    if (!d)
      throw new StreamMediaError("unknown-stream", "the devnet's demo stream is not running (yet): it starts once the demo users are up, and needs ffmpeg");
    return d;
  };
  return await mountStreamGateway(app, {
    locate: (streamId) => {
      const { streamKey: _key, ...locator } = decodeTicket(demo().ticket);
      return bytesEqual(locator.streamId, streamId) ? locator : undefined;
    },
    session: () => demo().session(),
    ...(options.logger ? { logger: options.logger } : {}),
  });
}

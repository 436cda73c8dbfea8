/**
 * The node's live event stream (docs/spec/node.md, "Event stream"): an event
 * bus the node's layers publish to, a watcher that turns what the layers
 * hold into events, and the WebSocket route `GET /v1/events` that sends them.
 *
 * Every message is one JSON text frame `{ type, at, data }` (at: ms since
 * the epoch): `consensus` (a new consensus adopted), `circuit` (circuits
 * opened/closed at this relay), `presence` (points registered/expired,
 * introductions delivered), `stream` (stream hosted/ended, viewers
 * attached/left, feeds added), `rewards` (usage reports sent/acked/refused)
 * and `stats` every 2 s with the counters a dashboard charts. A consensus
 * comes from the directory's own listener (onConsensus); the others are
 * read from the layers' counters and views on each sample (every 500 ms),
 * so a layer gains no callback for them and what the stream says is what
 * /v1/status says.
 *
 * A slow client cannot make the node hold memory without bound: each socket
 * has at most `maxQueue` messages written and not yet flushed to the kernel;
 * one more and the socket is closed (1013, "event queue full: read faster")
 * and counted in `stats.dropped`.
 *
 * Owns: the event names and fields. Trusts the layers it reads; reads
 * nothing from a client (messages it sends are ignored).
 */
import fastifyWebsocket from "@fastify/websocket";
import type { FastifyInstance } from "fastify";
import type { WebSocket } from "ws";
import type { VerifiedConsensus } from "../directory/consensus.js";
import type { ConnectionManager } from "../link/manager.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import type { OnionRelay } from "../onion/relay.js";
import type { StreamHost } from "../stream/host.js";
import type { NodeDht } from "./dht.js";
import type { NodeDirectory } from "./directory.js";
import { hex } from "./hex.js";
import { NodeError } from "./config.js";
import type { NodePresence } from "./presence.js";
import type { NodeUsage } from "./usage.js";

export const NODE_EVENT_TYPES = ["consensus", "circuit", "presence", "stream", "rewards", "stats"] as const;
export type NodeEventType = (typeof NODE_EVENT_TYPES)[number];

/** One message of the stream. */
export interface NodeEvent {
  type: NodeEventType;
  /** When it happened, ms since the epoch. */
  at: number;
  data: Record<string, unknown>;
}

/** Messages written to one socket and not yet flushed before it is dropped. */
export const DEFAULT_EVENT_QUEUE = 256;
/** How often the counters are sampled for events, and how often a `stats` event goes out. */
export const EVENT_SAMPLE_MS = 500;
export const STATS_EVENT_MS = 2000;
/** Streams listed in one `stats` event. */
export const MAX_STATS_STREAMS = 16;
/** Most sockets on one node's event stream at once (one more is refused with 1013). */
export const MAX_EVENT_CLIENTS = 32;

export interface NodeEventBusStats {
  published: number;
  clients: number;
  /** Sockets closed because their queue was full (too slow a reader). */
  dropped: number;
  /** Sockets refused because MAX_EVENT_CLIENTS were attached. */
  refused: number;
}

/** Fan-out of node events to listeners (the sockets); synchronous, never throws into the publisher. */
export class NodeEventBus {
  readonly stats: NodeEventBusStats = { published: 0, clients: 0, dropped: 0, refused: 0 };
  private readonly listeners = new Set<(event: NodeEvent) => void>();
  private readonly log: Logger;

  constructor(
    logger?: Logger,
    private readonly clock: () => number = Date.now,
  ) {
    this.log = childLogger(logger, "node.events");
  }

  publish(type: NodeEventType, data: Record<string, unknown>): void {
    const event: NodeEvent = { type, at: this.clock(), data };
    this.stats.published++;
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        logFailure(this.log, err, "deliver a node event", "warn", { type });
      }
    }
  }

  subscribe(listener: (event: NodeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}

/** What the watcher reads; absent layers publish nothing. */
export interface NodeEventSources {
  manager: ConnectionManager;
  relay: OnionRelay | undefined;
  dht: NodeDht | undefined;
  directory: NodeDirectory | undefined;
  presence: NodePresence | undefined;
  streams: StreamHost | undefined;
  usage: NodeUsage | undefined;
}

/** A consensus as the `consensus` event (and the dashboard) names it. */
export function consensusEventData(c: VerifiedConsensus): Record<string, unknown> {
  return { validAfter: c.validAfter, freshUntil: c.freshUntil, validUntil: c.validUntil, nodes: c.entries.length, signers: c.signers.length };
}

interface StreamSample {
  role: string;
  viewers: number;
  feeds: Set<string>;
}

/** The counters a `stats` event carries. */
export function statsEventData(s: NodeEventSources, events: NodeEventBus): Record<string, unknown> {
  const relay = s.relay?.stats();
  const consensus = s.directory?.current();
  const streams = s.streams?.streamsView() ?? [];
  const meter = s.usage?.meter.stats;
  return {
    links: s.manager.linkCount,
    circuits: relay?.circuits ?? 0,
    bytesRelayed: relay?.bytesSent ?? 0,
    dht: s.dht
      ? { tableSize: s.dht.node.table.size, records: s.dht.store.count(), lookups: s.dht.stats.lookups, lookupFailures: s.dht.stats.lookupFailures }
      : null,
    consensus: consensus ? { validAfter: consensus.validAfter, nodes: consensus.entries.length, signers: consensus.signers.length } : null,
    presence: s.presence
      ? { points: s.presence.presence.points, introductions: s.presence.presence.stats.delivered, rendezvous: s.presence.rendezvous.waiting }
      : null,
    streams: {
      hosted: streams.length,
      // What each stream looks like here (the dashboard draws the fan-out tree from the landing and distribution nodes' lists).
      list: streams.slice(0, MAX_STATS_STREAMS).map((v) => ({ stream: hex(v.streamId), role: v.role, viewers: v.viewers, feeds: v.feeds.map((f) => hex(f.identity)) })),
      viewers: streams.reduce((n, v) => n + v.viewers, 0),
      bytes: meter?.bytesAdded ?? 0,
      chunksOut: s.streams?.counters.chunksOut ?? 0,
    },
    rewards: s.usage ? { sent: s.usage.reporter.stats.queued, acked: s.usage.reporter.stats.delivered, pending: s.usage.reporter.pending } : null,
    eventClients: events.stats.clients,
  };
}

/**
 * Publishes the node's events to `bus` until `close()`: consensus from the
 * directory's listener, the rest from counters sampled every `sampleMs`,
 * `stats` every `statsMs`.
 */
export function watchNodeEvents(
  bus: NodeEventBus,
  s: NodeEventSources,
  options: { sampleMs?: number; statsMs?: number; logger?: Logger } = {},
): { close(): void } {
  const log = childLogger(options.logger, "node.events");
  let closed = false;
  s.directory?.onConsensus((c) => {
    if (!closed) bus.publish("consensus", consensusEventData(c));
  });
  const relayNow = () => s.relay?.stats();
  let last = {
    circuits: relayNow()?.circuits ?? 0,
    handshakes: relayNow()?.handshakes ?? 0,
    points: s.presence?.presence.points ?? 0,
    delivered: s.presence?.presence.stats.delivered ?? 0,
    sent: s.usage?.reporter.stats.queued ?? 0,
    acked: s.usage?.reporter.stats.delivered ?? 0,
    refused: s.usage?.reporter.stats.refused ?? 0,
  };
  let streams = new Map<string, StreamSample>();
  const sample = (): void => {
    const relay = relayNow();
    if (relay) {
      const opened = Math.max(0, relay.handshakes - last.handshakes);
      const closedCount = Math.max(0, last.circuits + opened - relay.circuits);
      if (opened > 0 || closedCount > 0) bus.publish("circuit", { opened, closed: closedCount, circuits: relay.circuits });
      last.handshakes = relay.handshakes;
      last.circuits = relay.circuits;
    }
    if (s.presence) {
      const points = s.presence.presence.points;
      const delivered = s.presence.presence.stats.delivered;
      if (points > last.points) bus.publish("presence", { event: "registered", count: points - last.points, points });
      if (points < last.points) bus.publish("presence", { event: "expired", count: last.points - points, points });
      if (delivered > last.delivered) bus.publish("presence", { event: "introduction-delivered", count: delivered - last.delivered, points });
      last.points = points;
      last.delivered = delivered;
    }
    if (s.streams) {
      const now = new Map<string, StreamSample>();
      for (const v of s.streams.streamsView()) {
        const id = hex(v.streamId);
        const feeds = new Set(v.feeds.map((f) => hex(f.identity)));
        now.set(id, { role: v.role, viewers: v.viewers, feeds });
        const before = streams.get(id);
        const base = { stream: id, role: v.role };
        if (!before) bus.publish("stream", { ...base, event: "hosted", viewers: v.viewers, feeds: [...feeds] });
        const viewersBefore = before?.viewers ?? 0;
        if (v.viewers > viewersBefore) bus.publish("stream", { ...base, event: "viewer-attached", count: v.viewers - viewersBefore, viewers: v.viewers });
        if (v.viewers < viewersBefore) bus.publish("stream", { ...base, event: "viewer-left", count: viewersBefore - v.viewers, viewers: v.viewers });
        for (const f of feeds) if (before && !before.feeds.has(f)) bus.publish("stream", { ...base, event: "feed-added", feed: f });
      }
      for (const [id, before] of streams) if (!now.has(id)) bus.publish("stream", { stream: id, role: before.role, event: "ended" });
      streams = now;
    }
    if (s.usage) {
      const r = s.usage.reporter.stats;
      if (r.queued > last.sent) bus.publish("rewards", { event: "report-sent", count: r.queued - last.sent, pending: s.usage.reporter.pending });
      if (r.delivered > last.acked) bus.publish("rewards", { event: "report-acked", count: r.delivered - last.acked, pending: s.usage.reporter.pending });
      if (r.refused > last.refused) bus.publish("rewards", { event: "report-refused", count: r.refused - last.refused });
      last = { ...last, sent: r.queued, acked: r.delivered, refused: r.refused };
    }
  };
  const guarded = (what: string, fn: () => void) => () => {
    try {
      fn();
    } catch (err) {
      logFailure(log, err, what, "warn");
    }
  };
  const sampler = setInterval(guarded("sample the node's counters for events", sample), options.sampleMs ?? EVENT_SAMPLE_MS);
  const stats = setInterval(
    guarded("publish a stats event", () => bus.publish("stats", statsEventData(s, bus))),
    options.statsMs ?? STATS_EVENT_MS,
  );
  sampler.unref();
  stats.unref();
  return {
    close() {
      closed = true;
      clearInterval(sampler);
      clearInterval(stats);
    },
  };
}

/** Counters of an event fan-out's sockets (the node's bus, the devnet's aggregate). */
export interface EventSocketStats {
  clients: number;
  dropped: number;
}

/**
 * Sends what `subscribe` delivers to one socket as JSON, at most `maxQueue`
 * messages written and not yet flushed: one more closes the socket (1013)
 * and counts it in `stats.dropped`. Shared with the devnet's aggregate stream.
 */
export function attachEventSocket(
  socket: WebSocket,
  subscribe: (listener: (message: unknown) => void) => () => void,
  o: { maxQueue: number; stats: EventSocketStats; logger?: Logger },
): void {
  const log = childLogger(o.logger, "node.events");
  let unflushed = 0;
  let gone = false;
  o.stats.clients++;
  const detach = subscribe((message) => {
    if (gone || socket.readyState !== socket.OPEN) return;
    if (unflushed >= o.maxQueue) {
      gone = true;
      o.stats.dropped++;
      log.warn({ queued: unflushed, maxQueue: o.maxQueue }, "dropped a slow event-stream client: its queue was full");
      socket.close(1013, "event queue full: read faster");
      // A reader that does not read may not read the close frame either.
      setTimeout(() => socket.terminate(), 2000).unref();
      detach();
      return;
    }
    unflushed++;
    socket.send(JSON.stringify(message), (err) => {
      unflushed--;
      if (err) logFailure(log, err, "write to an event-stream socket", "debug");
    });
  });
  socket.on("close", () => {
    gone = true;
    o.stats.clients--;
    detach();
  });
  socket.on("error", (err) => logFailure(log, err, "event-stream socket", "debug"));
}

/**
 * Mounts `GET /v1/events` (WebSocket) on a control API app (call it from
 * the API's `routes` hook); registers @fastify/websocket on an app without it.
 */
export async function mountNodeEvents(
  app: FastifyInstance,
  bus: NodeEventBus,
  options: { maxQueue?: number; maxClients?: number; logger?: Logger } = {},
): Promise<void> {
  const maxQueue = options.maxQueue ?? DEFAULT_EVENT_QUEUE;
  const maxClients = options.maxClients ?? MAX_EVENT_CLIENTS;
  if (!Number.isInteger(maxQueue) || maxQueue < 1) throw new NodeError("bad-config", `the event queue must be a positive integer, not ${maxQueue}`);
  // The control API base (api/server.ts) registers it ahead of its token check; a bare app gets it here.
  if (!app.hasDecorator("websocketServer")) await app.register(fastifyWebsocket, { options: { maxPayload: 4096 } });
  app.get(
    "/v1/events",
    {
      websocket: true,
      schema: {
        summary: "Live node events (WebSocket)",
        description:
          "JSON text messages { type, at, data }: consensus, circuit, presence, stream, rewards, and stats every 2 s (docs/spec/node.md, Event stream). A client that falls 256 messages behind is closed with 1013.",
        tags: ["status"],
      },
    },
    (socket) => {
      if (bus.stats.clients >= maxClients) {
        bus.stats.refused++;
        socket.close(1013, `at most ${maxClients} event-stream clients`);
        return;
      }
      attachEventSocket(socket, (listener) => bus.subscribe(listener), { maxQueue, stats: bus.stats, ...(options.logger ? { logger: options.logger } : {}) });
    },
  );
}

/**
 * The node's event stream (node/src/node/events.ts) on real nodes: three
 * nodes composed by startNode, an onion client building a circuit through
 * them, and the middle node's `GET /v1/events` WebSocket showing the circuit
 * opened and closed and `stats` events with its links and relayed bytes.
 * Then the bound on a slow reader: a raw TCP client that upgrades and never
 * reads is closed once its queue is full, counted, while a reading client on
 * the same bus keeps receiving. Behind a token, an upgrade without it is
 * refused and one with it is served.
 */
import { connect } from "node:net";
import type { Socket } from "node:net";
import { sha256 } from "@noble/hashes/sha2.js";
import Fastify from "fastify";
import { WebSocket as WsClient } from "ws";
import { startControlApi } from "../../node/src/api/server.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import type { TlsCredentials } from "../../node/src/link/index.js";
import { NodeEventBus, mountNodeEvents } from "../../node/src/node/events.js";
import type { NodeEvent } from "../../node/src/node/events.js";
import { startNode } from "../../node/src/node/node.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { createOnionClient } from "../../node/src/onion/onion-client.js";
import type { OnionClientHandle } from "../../node/src/onion/onion-client.js";

const secret = (label: string): Uint8Array => sha256(new TextEncoder().encode(`node-events/${label}`));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const DHT = { staticDifficulty: 0, dynamicDifficulty: 4, bucketSize: 8, disjointPaths: 2, alpha: 2, rpcTimeoutMs: 5000 };
const nodes: RunningNode[] = [];
const sockets: WebSocket[] = [];
let credentials: TlsCredentials;
let client: OnionClientHandle;

/** Opens a node's event stream and collects every message. */
async function listen(url: string): Promise<{ socket: WebSocket; events: NodeEvent[] }> {
  const socket = new WebSocket(url.replace(/^http/, "ws") + "/v1/events");
  sockets.push(socket);
  const events: NodeEvent[] = [];
  socket.addEventListener("message", (m) => events.push(JSON.parse(String(m.data)) as NodeEvent));
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener("open", () => resolve(), { once: true });
    socket.addEventListener("error", () => reject(new Error(`cannot open ${url}/v1/events`)), { once: true });
  });
  return { socket, events };
}

beforeAll(async () => {
  credentials = await generateTlsCredentials();
  for (let i = 0; i < 3; i++) {
    const seed = nodes[0];
    nodes.push(
      await startNode(
        {
          listen: { host: `127.${i + 1}.0.1`, port: 0 },
          identity: { secretKeyHex: hexOf(secret(`node-${i}`)) },
          dht: { ...DHT, ...(seed ? { seeds: [{ identity: seed.info.identity, host: seed.info.host, port: seed.info.port }] } : {}) },
        },
        { tlsCredentials: credentials },
      ),
    );
  }
  client = await createOnionClient({ nodes: nodes.map((n) => n.pathNode) });
}, 60_000);

afterAll(async () => {
  for (const s of sockets) s.close();
  await client?.close();
  await Promise.all(nodes.map((n) => n.close()));
});

describe("GET /v1/events on a node", () => {
  it("shows a circuit opened and closed at the middle relay, and stats with its links and relayed bytes", async () => {
    const [n0, n1, n2] = nodes as [RunningNode, RunningNode, RunningNode];
    const { events } = await listen(n1.info.controlApi!);
    const circuit = await client.buildCircuit({ path: [n0.pathNode, n1.pathNode, n2.pathNode] });
    const echo = await circuit.openStream("dht").catch(() => undefined);
    await vi.waitFor(() => expect(events.some((e) => e.type === "circuit" && (e.data.opened as number) >= 1)).toBe(true), { timeout: 15_000, interval: 100 });
    circuit.close();
    echo?.close();
    await vi.waitFor(() => expect(events.some((e) => e.type === "circuit" && (e.data.closed as number) >= 1)).toBe(true), { timeout: 15_000, interval: 100 });
    await vi.waitFor(
      () => {
        const stats = events.filter((e) => e.type === "stats");
        expect(stats.length).toBeGreaterThanOrEqual(1);
        const last = stats.at(-1)!;
        expect(last.data.links).toBeGreaterThanOrEqual(2);
        expect(last.data.bytesRelayed).toBeGreaterThan(0);
        expect(last.data.dht).toMatchObject({ tableSize: expect.any(Number), lookups: expect.any(Number) });
        expect(last.data.eventClients).toBe(1);
      },
      { timeout: 15_000, interval: 100 },
    );
    for (const e of events) {
      expect(typeof e.at).toBe("number");
      expect(["consensus", "circuit", "presence", "stream", "rewards", "stats"]).toContain(e.type);
    }
  }, 60_000);
});

describe("a slow event-stream reader", () => {
  it("is closed once its queue is full and counted; a reading client goes on receiving", async () => {
    const bus = new NodeEventBus();
    const app = Fastify();
    await mountNodeEvents(app, bus, { maxQueue: 8 });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    try {
      const reader = await listen(`http://127.0.0.1:${port}`);
      // A raw upgrade that is never read past the handshake: the server's writes pile up unflushed.
      const raw: Socket = connect(port, "127.0.0.1");
      await new Promise<void>((resolve, reject) => {
        raw.once("error", reject);
        raw.once("connect", () => {
          raw.write(
            "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
          );
        });
        raw.once("data", (chunk: Buffer) => {
          expect(chunk.toString()).toMatch(/^HTTP\/1\.1 101/);
          raw.pause();
          resolve();
        });
      });
      await vi.waitFor(() => expect(bus.stats.clients).toBe(2), { timeout: 5000, interval: 20 });
      const big = "x".repeat(64 * 1024);
      let round = 0;
      // Publish across ticks (so a reading client's writes flush) until the paused one is dropped.
      while (bus.stats.dropped === 0 && round < 2000) {
        bus.publish("stats", { round: round++, filler: big });
        await new Promise((r) => setImmediate(r));
      }
      expect(bus.stats.dropped).toBe(1);
      expect(bus.listenerCount).toBe(1);
      bus.publish("stats", { round: "after" });
      await vi.waitFor(() => expect(reader.events.at(-1)?.data.round).toBe("after"), { timeout: 10_000, interval: 20 });
      raw.destroy();
    } finally {
      await app.close();
    }
  }, 60_000);
});

describe("the event stream behind a token", () => {
  it("refuses an upgrade without the bearer token and serves one with it", async () => {
    const bus = new NodeEventBus();
    const token = "e".repeat(64);
    const api = await startControlApi({ port: 0, token, status: () => ({}), routes: (app) => mountNodeEvents(app, bus) });
    try {
      const url = api.url.replace(/^http/, "ws") + "/v1/events";
      const refused = await new Promise<number | string>((resolve) => {
        const ws = new WsClient(url);
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.on("open", () => resolve("opened"));
        ws.on("error", (err) => resolve(err.message));
      });
      expect(refused).toBe(401);
      const ws = new WsClient(url, { headers: { authorization: `Bearer ${token}` } });
      const got: unknown[] = [];
      ws.on("message", (data) => got.push(JSON.parse(String(data))));
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      bus.publish("stats", { links: 1 });
      await vi.waitFor(() => expect(got).toContainEqual(expect.objectContaining({ type: "stats", data: { links: 1 } })), { timeout: 5000, interval: 20 });
      ws.close();
    } finally {
      await api.close();
    }
  }, 30_000);
});

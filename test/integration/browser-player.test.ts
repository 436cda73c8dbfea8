/**
 * A browser as a PSP viewer: Debian's chromium (driven by playwright-core,
 * no browser download) plays a live stream through the gateway
 * (node/src/api/stream-gateway.ts), decrypting it in the page
 * (dashboard/src/player/, bundled here with esbuild).
 *
 * The network is real: a landing node and a distribution node (each a
 * ConnectionManager handing psp-stream/1 sockets to a StreamHost, over TLS
 * on loopback), oracle-signed receipts and session ids checked by
 * oracleAdmission, a producer publishing ffmpeg's test source (H.264 in
 * MPEG-TS, scripts/lib/devnet-stream.ts) in real time, and a fastify app
 * serving the page and the gateway. The ticket reaches the page in the URL's
 * fragment, which the browser never sends: the gateway never sees the key.
 *
 * Proves: with the right ticket the video element's currentTime passes 1 s
 * and its decoded-frame count grows, no chunk fails to open; with a ticket
 * of the same stream under another key, nothing plays (no frame decoded,
 * no chunk opened) and the page reports the chunks that failed; the
 * gateway's binary messages open under the key with the node's own
 * StreamCipher (framing seq ‖ sealed, no plaintext); an unknown or
 * malformed stream id gets `{ error: { kind } }` and the socket closes. The
 * gateway is mounted the devnet's way (scripts/lib/devnet-gateway.ts): the
 * demo stream recorded in the state (ticket, stream id, gateway path) and
 * served; once forgotten, a page is told it is not running. A page that
 * stops reading (a paused socket, on a fast stream of random bytes) is
 * moved to the live edge: the gateway counts drops and a jump, and once the
 * page reads again it gets the newest chunk, seqs strictly increasing with a
 * gap.
 * A screenshot of the playing page goes to test-artifacts/player/.
 */
import { spawn } from "node:child_process";
import type { ChildProcessByStdio } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { build } from "esbuild";
import Fastify from "fastify";
import type { FastifyInstance } from "fastify";
import { chromium } from "playwright-core";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { StreamGateway } from "../../node/src/api/stream-gateway.js";
import { bytesEqual } from "../../node/src/base/bytes.js";
import { hexOf } from "../../node/src/base/hex.js";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { createConnectionManager } from "../../node/src/link/manager.js";
import type { ConnectionManager } from "../../node/src/link/manager.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import type { TlsCredentials } from "../../node/src/link/tls.js";
import { ReceiptReplayStore } from "../../node/src/stream/admission.js";
import { generateStreamKey, StreamCipher } from "../../node/src/stream/crypto.js";
import type { NodeEntry } from "../../node/src/stream/frames.js";
import { StreamHost } from "../../node/src/stream/host.js";
import { openPublisher, publishReadable } from "../../node/src/stream/publisher.js";
import type { Publisher } from "../../node/src/stream/publisher.js";
import { signReceipt } from "../../node/src/stream/receipt.js";
import { encodeTicket } from "../../node/src/stream/ticket.js";
import type { StreamTicket } from "../../node/src/stream/ticket.js";
import { mountStreamGateway } from "../../node/src/api/stream-gateway.js";
import { mountDemoStreamGateway, publishDemoStream, unpublishDemoStream } from "../../scripts/lib/devnet-gateway.js";
import type { DemoStreamInfo } from "../../scripts/lib/devnet-gateway.js";
import { testSourceFfmpegArgs } from "../../scripts/lib/devnet-stream.js";
import { benchOracle } from "../../scripts/bench/lib/stream-nodes.js";
import { CHROMIUM, CHROMIUM_ARGS } from "../helpers/dashboard.js";

const FFMPEG = "/usr/bin/ffmpeg";
const ARTIFACTS = resolve("test-artifacts/player");

interface MediaNode {
  manager: ConnectionManager;
  host: StreamHost;
  store: ReceiptReplayStore;
  entry: NodeEntry;
  identity: Uint8Array;
}

// One fixed oracle key signs receipts and session ids; the nodes admit what it signed (as the stream benches do).
const testOracle = benchOracle();
const oracle = testOracle.keys;
const admission = testOracle.admission;
const session = testOracle.session;
const nowS = (): number => Math.floor(Date.now() / 1000);

const nodes: MediaNode[] = [];
let dir: string;
let credentials: TlsCredentials;
let ticket: StreamTicket;
let source: ChildProcessByStdio<null, Readable, null> | undefined;
let publisher: Publisher | undefined;
let app: FastifyInstance;
let gateway: StreamGateway;
let baseUrl: string;
let context: BrowserContext;
let landingNode: MediaNode;
let distNode: MediaNode;
const apps: FastifyInstance[] = [];
const devnetState = { demo: {} as Record<string, unknown> };
let published: DemoStreamInfo;

async function startMediaNode(name: string): Promise<MediaNode> {
  const identity = generateEd25519KeyPair();
  const manager = await createConnectionManager({ identity, listen: { host: "127.0.0.1", port: 0 }, tlsCredentials: credentials });
  const address = manager.address() as { host: string; port: number };
  const store = new ReceiptReplayStore(join(dir, `${name}-receipts.db`));
  const host = new StreamHost({ identity, admission, replayStore: store, advertised: address, tickMs: 100 });
  manager.setStreamHandler((socket) => host.handleSocket(socket));
  const node = { manager, host, store, identity: identity.publicKey, entry: { identity: identity.publicKey, host: address.host, port: address.port, load: 0 } };
  nodes.push(node);
  return node;
}

/** Creates a private stream on `landing`, distributed through `dist`, under a fresh receipt of the test oracle. */
function createPrivateStream(landing: MediaNode, dist: MediaNode, o: { bitrateKbps: number; formatFlags: number; kbps: number; durationS: number }) {
  return landing.host.create({
    receipt: signReceipt({
      params: { bitrateKbps: o.bitrateKbps, maxDurationSeconds: 600, formatFlags: o.formatFlags },
      issuedAt: nowS() - 5,
      expiresAt: nowS() + 3600,
      secretKey: oracle.secretKey,
    }).bytes,
    kbps: o.kbps,
    durationS: o.durationS,
    public: false,
    distribution: [dist.entry],
  });
}

async function waitUntil(what: string, fn: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The page: a video element and the bundled player; the ticket comes from the URL's fragment (never sent to the server). */
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>PSP player test</title></head>
<body style="margin:0;background:#111"><video id="v" muted playsinline width="320" height="240"></video>
<script src="/player.js"></script>
<script>
  const ticket = decodeURIComponent(location.hash.slice(1));
  window.pspPlayer = PspPlayer.attachStreamPlayer(document.getElementById("v"), { gatewayUrl: location.origin, ticket });
</script></body></html>`;

async function bundlePlayer(): Promise<string> {
  const out = await build({
    stdin: { contents: `export * from "./dashboard/src/player/index.ts";`, resolveDir: resolve("."), loader: "ts", sourcefile: "player-entry.ts" },
    bundle: true,
    write: false,
    format: "iife",
    globalName: "PspPlayer",
    platform: "browser",
    target: "chrome120",
    logLevel: "silent",
  });
  return out.outputFiles[0]!.text;
}

interface PageView {
  currentTime: number;
  delayMs: number | undefined;
  decodedFrames: number;
  chunks: number;
  failedChunks: number;
  state: string;
  error: string | undefined;
}

async function pageView(page: Page): Promise<PageView> {
  return page.evaluate(`(() => {
    const v = document.getElementById("v");
    const s = window.pspPlayer.stats;
    return { currentTime: v.currentTime, delayMs: s.delayMs, decodedFrames: s.decodedFrames, chunks: s.chunks, failedChunks: s.failedChunks, state: s.state,
             error: s.error ? s.error.kind + ": " + s.error.message : undefined };
  })()`);
}

async function openPage(t: string): Promise<Page> {
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error("page error:", err.message));
  await page.goto(`${baseUrl}/#${encodeURIComponent(t)}`);
  return page;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "psp-browser-player-"));
  credentials = await generateTlsCredentials();
  const landing = (landingNode = await startMediaNode("landing"));
  const dist = (distNode = await startMediaNode("dist"));
  const created = await createPrivateStream(landing, dist, { bitrateKbps: 4000, formatFlags: 5, kbps: 3000, durationS: 300 });
  ticket = { streamId: created.streamId, streamKey: generateStreamKey(), landing: landing.identity, host: landing.entry.host, port: landing.entry.port };
  await waitUntil("the distribution node's feed", () => dist.host.streamsView().some((s) => bytesEqual(s.streamId, ticket.streamId)));

  // The producer runs for the whole file (killed in afterAll), in real time.
  publisher = await openPublisher({ ticket, token: created.token });
  source = spawn(FFMPEG, testSourceFfmpegArgs(120), { stdio: ["ignore", "pipe", "ignore"] });
  void publishReadable(publisher, source.stdout).catch(() => undefined);

  app = Fastify({ logger: false });
  const script = await bundlePlayer();
  app.get("/", async (_request, reply) => reply.type("text/html").send(PAGE));
  app.get("/player.js", async (_request, reply) => reply.type("text/javascript").send(script));
  // The devnet's way: the gateway is mounted at start, the demo stream recorded in the state once it runs.
  gateway = await mountDemoStreamGateway(app, devnetState);
  published = publishDemoStream(devnetState, {
    ticket: encodeTicket(ticket),
    session: () => Promise.resolve(session()),
    received: () => [],
    stop: () => undefined,
  });
  baseUrl = await app.listen({ host: "127.0.0.1", port: 0 });

  context = await chromium.launchPersistentContext(join(dir, "chromium-profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"],
  });
}, 120_000);

afterAll(async () => {
  await context?.close().catch(() => undefined);
  gateway?.close();
  await app?.close().catch(() => undefined);
  for (const a of apps) await a.close().catch(() => undefined);
  source?.kill("SIGTERM");
  publisher?.end();
  for (const n of nodes) {
    n.host.close();
    await n.manager.close().catch(() => undefined);
    n.store.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("a browser plays a PSP stream through the gateway, decrypting in the page", () => {
  it("with the stream's ticket: the video advances past 1 s and decodes more and more frames", async () => {
    const page = await openPage(encodeTicket(ticket));
    await expect.poll(async () => (await pageView(page)).currentTime, { timeout: 45_000, interval: 250 }).toBeGreaterThan(1);
    const first = await pageView(page);
    expect(first.decodedFrames).toBeGreaterThan(0);
    await expect.poll(async () => (await pageView(page)).decodedFrames, { timeout: 20_000, interval: 250 }).toBeGreaterThan(first.decodedFrames + 10);
    const now = await pageView(page);
    // A figure for the docs, not asserted: producer clock to the page opening the chunk (same machine, same clock).
    console.log(`browser player: ${now.chunks} chunks opened, producer → page ${now.delayMs} ms for the newest`);
    expect(now.chunks).toBeGreaterThan(0);
    expect(now.failedChunks).toBe(0);
    expect(now.state).toBe("playing");
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "playing.png") });
    await page.close();
  }, 90_000);

  it("with a ticket of the same stream under another key: nothing plays, and the page reports chunks that did not open", async () => {
    const page = await openPage(encodeTicket({ ...ticket, streamKey: generateStreamKey() }));
    await expect.poll(async () => (await pageView(page)).failedChunks, { timeout: 30_000, interval: 250 }).toBeGreaterThan(10);
    const seen = await pageView(page);
    expect(seen.chunks).toBe(0);
    expect(seen.decodedFrames).toBe(0);
    expect(seen.currentTime).toBe(0);
    expect(seen.error).toMatch(/^chunk-auth-failed/);
    await page.screenshot({ path: join(ARTIFACTS, "wrong-key.png") });
    await page.close();
  }, 60_000);

  it("the gateway sends seq ‖ sealed chunks that open under the key, and refuses unknown and malformed stream ids", async () => {
    const wsBase = baseUrl.replace(/^http/, "ws");
    expect(devnetState.demo.stream).toEqual(published);
    expect(published.streamId).toBe(hexOf(ticket.streamId));
    const socket = new WebSocket(`${wsBase}${published.gateway}`);
    const messages: Buffer[] = [];
    socket.on("message", (data: Buffer, binary: boolean) => {
      if (binary) messages.push(data);
    });
    await waitUntil("five chunks from the gateway", () => messages.length >= 5, 20_000);
    socket.close();
    const cipher = new StreamCipher(ticket.streamId, ticket.streamKey);
    let last = -1n;
    for (const m of messages) {
      const seq = m.readBigUInt64BE(0);
      expect(seq).toBeGreaterThan(last);
      last = seq;
      const opened = cipher.open(seq, new Uint8Array(m.subarray(8)));
      expect(opened.media.length % 188).toBe(0);
      // Sealed on the wire: the TS sync byte pattern of the plaintext is not there.
      expect(m.includes(Buffer.from(opened.media.subarray(0, 64)))).toBe(false);
    }

    const refusal = async (path: string): Promise<{ text: string; code: number }> => {
      const refused = new WebSocket(`${wsBase}${path}`);
      return await new Promise<{ text: string; code: number }>((resolve, reject) => {
        let text = "";
        refused.on("message", (data: Buffer) => (text = data.toString()));
        refused.on("close", (code) => resolve({ text, code }));
        refused.on("error", reject);
      });
    };
    for (const [id, kind] of [
      ["00".repeat(16), "unknown-stream"],
      ["not-a-stream", "bad-argument"],
    ] as const) {
      const answer = await refusal(`/v1/streams/${id}/sealed`);
      expect(JSON.parse(answer.text)).toMatchObject({ error: { kind } });
      expect(answer.code).toBe(1011);
    }
    expect(gateway.stats.chunksOut).toBeGreaterThan(0);

    // Once the devnet forgets its demo stream, a page is told it is not running.
    unpublishDemoStream(devnetState);
    expect(devnetState.demo.stream).toBeUndefined();
    const gone = await refusal(published.gateway);
    expect(JSON.parse(gone.text)).toMatchObject({ error: { kind: "unknown-stream", message: expect.stringMatching(/not running/) } });
  }, 60_000);

  it("a page that stops reading is moved to the live edge: the gateway drops for it, then sends it fresh chunks in order", async () => {
    // A fast stream of its own (random bytes, no ffmpeg), so loopback socket buffers fill within seconds.
    const created = await createPrivateStream(landingNode, distNode, { bitrateKbps: 400_000, formatFlags: 0, kbps: 400_000, durationS: 600 });
    const fast: StreamTicket = { ...ticket, streamId: created.streamId, streamKey: generateStreamKey() };
    await waitUntil("the fast stream's feed", () => distNode.host.streamsView().some((v) => bytesEqual(v.streamId, fast.streamId)));
    const fastApp = Fastify({ logger: false });
    apps.push(fastApp);
    const { streamKey: _key, ...locator } = fast;
    const fastGateway = await mountStreamGateway(fastApp, {
      locate: (id) => (bytesEqual(id, fast.streamId) ? locator : undefined),
      session,
      maxQueueBytes: 256 * 1024,
    });
    const url = (await fastApp.listen({ host: "127.0.0.1", port: 0 })).replace(/^http/, "ws");

    const page = new WebSocket(`${url}/v1/streams/${hexOf(fast.streamId)}/sealed`);
    const seqs: bigint[] = [];
    page.on("message", (data: Buffer, binary: boolean) => {
      if (binary) seqs.push(data.readBigUInt64BE(0));
    });
    await new Promise<void>((resolve) => page.on("message", (_d, binary) => binary || resolve()));
    page.pause();
    const publisher = await openPublisher({ ticket: fast, token: created.token });
    const media = new Uint8Array(9964);
    let written = 0;
    while (fastGateway.stats.liveEdgeJumps === 0) {
      if (written++ > 20_000) throw new Error("the gateway never moved a page that reads nothing to the live edge");
      if (!publisher.write(media)) await publisher.drain();
      await new Promise((r) => setImmediate(r));
    }
    const sentBeforeResume = fastGateway.stats.chunksOut;
    page.resume();
    for (let i = 0; i < 50; i++) if (!publisher.write(media)) await publisher.drain();
    const last = publisher.chunksSent - 1;
    await waitUntil("the newest chunk at the page", () => seqs.at(-1) === BigInt(last), 20_000);
    expect(fastGateway.stats.dropped).toBeGreaterThan(0);
    expect(fastGateway.stats.chunksOut).toBeGreaterThan(sentBeforeResume);
    // In order, no repeats, and with a gap where the page was moved to the live edge.
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]! > seqs[i - 1]!).toBe(true);
    expect(seqs.length).toBeLessThan(last + 1);
    publisher.end();
    page.close();
  }, 90_000);
});

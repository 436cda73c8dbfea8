/**
 * The streaming media path over real TLS on loopback: a landing node and
 * distribution nodes (each a ConnectionManager listening as a node, its
 * listener handing psp-stream/1 sockets to a StreamHost), a producer
 * publishing ffmpeg's MPEG-TS test source, viewers playing through the
 * distribution nodes, real oracle-signed receipts and session ids checked
 * by oracleAdmission (the oracle set is held in memory here, standing for
 * the chain view; signatures, times and revocation are the real checks).
 *
 * Proves: three viewers through two distribution nodes each decode a
 * stream whose ffprobe frame count is within 5 % of the source's; killing a
 * distribution node mid-stream moves its viewers to another within 2 s of
 * producer time, and the landing node asks the producer for a replacement
 * (NEED_NODES → ADD_NODES) and feeds it; replayed, forged, expired and revoked receipts, forged and
 * expired session ids and a wrong publish token are refused with typed
 * reasons; the landing node holds no producer identity, and distribution
 * nodes hold neither an identity nor the stream key and send only sealed
 * bytes.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytesEqual } from "../../node/src/base/bytes.js";
import { hexOf } from "../../node/src/base/hex.js";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import type { Ed25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { createConnectionManager } from "../../node/src/link/manager.js";
import type { ConnectionManager } from "../../node/src/link/manager.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import type { TlsCredentials } from "../../node/src/link/tls.js";
import { oracleAdmission, ReceiptReplayStore } from "../../node/src/stream/admission.js";
import { generateStreamKey } from "../../node/src/stream/crypto.js";
import { StreamError } from "../../node/src/stream/errors.js";
import type { NodeEntry } from "../../node/src/stream/frames.js";
import { StreamHost } from "../../node/src/stream/host.js";
import { StreamMediaError } from "../../node/src/stream/media-errors.js";
import { fetchAccessPoints, playStream } from "../../node/src/stream/player.js";
import type { Player } from "../../node/src/stream/player.js";
import { openPublisher, publishReadable } from "../../node/src/stream/publisher.js";
import { signReceipt } from "../../node/src/stream/receipt.js";
import type { ReceiptChainView } from "../../node/src/stream/receipt.js";
import { signSessionId } from "../../node/src/stream/session.js";
import { connectStreamLink } from "../../node/src/stream/stream-link.js";
import { decodeTicket, encodeTicket } from "../../node/src/stream/ticket.js";
import type { StreamTicket } from "../../node/src/stream/ticket.js";
import { testSourceFfmpegArgs } from "../../scripts/lib/devnet-stream.js";
import { waiter } from "../helpers/index.js";

const FFMPEG = "/usr/bin/ffmpeg";
const FFPROBE = "/usr/bin/ffprobe";
const SECONDS = 6;

interface MediaNode {
  name: string;
  identity: Ed25519KeyPair;
  manager: ConnectionManager;
  host: StreamHost;
  store: ReceiptReplayStore;
  entry: NodeEntry;
}

const oracle = generateEd25519KeyPair();
const revoked = new Set<string>();
const view: ReceiptChainView = {
  oracleKeys: () => Promise.resolve([oracle.publicKey]),
  verifyInclusion: () => Promise.resolve(false),
  isRevoked: (hash) => Promise.resolve(revoked.has(hash)),
  blindKey: () => Promise.resolve(undefined),
  isOracleSigner: () => Promise.resolve(false),
};
const admission = oracleAdmission({ view, sessionOracleKeys: () => [oracle.publicKey] });
const nodes: MediaNode[] = [];
let credentials: TlsCredentials;
let dir: string;

const nowS = (): number => Math.floor(Date.now() / 1000);
const receipt = (over: { secretKey?: Uint8Array; issuedAt?: number; expiresAt?: number } = {}) =>
  signReceipt({
    params: { bitrateKbps: 4000, maxDurationSeconds: 600, formatFlags: 5 },
    issuedAt: over.issuedAt ?? nowS() - 5,
    expiresAt: over.expiresAt ?? nowS() + 3600,
    secretKey: over.secretKey ?? oracle.secretKey,
  });
const session = (over: { secretKey?: Uint8Array; issuedAt?: number; expiresAt?: number } = {}): Uint8Array =>
  signSessionId({ issuedAt: over.issuedAt ?? nowS() - 5, expiresAt: over.expiresAt ?? nowS() + 3600, secretKey: over.secretKey ?? oracle.secretKey }).bytes;

async function startMediaNode(name: string, capacityKbps?: number, maxDirectFeeds?: number): Promise<MediaNode> {
  const identity = generateEd25519KeyPair();
  const manager = await createConnectionManager({ identity, listen: { host: "127.0.0.1", port: 0 }, tlsCredentials: credentials });
  const address = manager.address() as { host: string; port: number };
  const store = new ReceiptReplayStore(join(dir, `${name}-receipts.db`));
  const host = new StreamHost({
    identity,
    admission,
    replayStore: store,
    advertised: address,
    tickMs: 100,
    ...(capacityKbps ? { capacityKbps } : {}),
    ...(maxDirectFeeds ? { maxDirectFeeds } : {}),
  });
  manager.setStreamHandler((socket) => host.handleSocket(socket));
  const node = { name, identity, manager, host, store, entry: { identity: identity.publicKey, host: address.host, port: address.port, load: 0 } };
  nodes.push(node);
  return node;
}

async function kill(node: MediaNode): Promise<void> {
  node.host.close();
  await node.manager.close();
}

const waitFor = waiter({ timeoutMs: 10_000, intervalMs: 20 });

/** ffmpeg's test source as MPEG-TS on stdout, in real time. */
function ffmpegSource(seconds: number) {
  return spawn(FFMPEG, testSourceFfmpegArgs(seconds), { stdio: ["ignore", "pipe", "inherit"] });
}

function countFrames(file: string): number {
  const r = spawnSync(FFPROBE, ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file], {
    encoding: "utf8",
  });
  return Number.parseInt(r.stdout.trim(), 10);
}

interface Viewing {
  player: Player;
  chunks: Buffer[];
  producedAt: number[];
  ended: Promise<void>;
}

async function view_(ticket: StreamTicket): Promise<Viewing> {
  const player = await playStream({ ticket, session: () => session(), reattachTimeoutMs: 5000 });
  const chunks: Buffer[] = [];
  const producedAt: number[] = [];
  player.on("media", (c) => {
    chunks.push(Buffer.from(c.media));
    producedAt.push(c.producedAt);
  });
  const ended = new Promise<void>((resolve) => player.once("end", resolve));
  return { player, chunks, producedAt, ended };
}

/** Creates a stream at `landing`, returns its ticket and publish token. */
async function createStream(landing: MediaNode, distribution: MediaNode[]) {
  const created = await landing.host.create({
    receipt: receipt().bytes,
    kbps: 3000,
    durationS: 120,
    public: false,
    distribution: distribution.map((d) => d.entry),
  });
  const ticket: StreamTicket = {
    streamId: created.streamId,
    streamKey: generateStreamKey(),
    landing: landing.identity.publicKey,
    host: landing.entry.host,
    port: landing.entry.port,
  };
  // The ticket travels as a string (producer → viewers, privately).
  return { ticket: decodeTicket(encodeTicket(ticket)), token: created.token };
}

const feedsUp = (landing: MediaNode, streamId: Uint8Array, n: number) => () =>
  landing.host.streamsView().find((s) => bytesEqual(s.streamId, streamId))?.feeds.length === n &&
  nodes.filter((d) => d !== landing).filter((d) => d.host.streamsView().some((s) => bytesEqual(s.streamId, streamId))).length >= n;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "psp-stream-media-"));
  credentials = await generateTlsCredentials();
}, 60_000);

afterAll(async () => {
  for (const n of nodes) {
    n.host.close();
    await n.manager.close().catch(() => undefined);
    n.store.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("streaming media path over real TLS", () => {
  it("ffmpeg → landing → two distribution nodes → three viewers: each output decodes within 5 % of the source's frames; nodes hold no identity or key", async () => {
    const landing = await startMediaNode("landing");
    const d1 = await startMediaNode("d1");
    const d2 = await startMediaNode("d2");
    const { ticket, token } = await createStream(landing, [d1, d2]);
    await waitFor("both feeds", feedsUp(landing, ticket.streamId, 2));

    // Viewers attach before the producer starts: they wait for the first chunk.
    const viewers: Viewing[] = [];
    for (let i = 0; i < 3; i++) {
      viewers.push(await view_(ticket));
      const attached = viewers.length;
      await waitFor("load reports", () => landing.host.streamsView()[0]!.feeds.reduce((a, f) => a + f.load, 0) === attached);
    }
    const loads = landing.host
      .streamsView()[0]!
      .feeds.map((f) => f.load)
      .sort();
    expect(loads).toEqual([1, 2]); // the least-loaded point took each viewer

    // A raw viewer at d2 records exactly what a distribution node sends.
    const raw = await connectStreamLink({ host: d2.entry.host, port: d2.entry.port, expectedIdentity: d2.identity.publicKey });
    raw.send({ type: "attach", streamId: ticket.streamId, session: session() });
    expect((await raw.nextFrame(5000)).type).toBe("accept");
    const rawBytes: Buffer[] = [];
    raw.socket.on("data", (b: Buffer) => rawBytes.push(b));

    const publisher = await openPublisher({ ticket, token });
    const source = ffmpegSource(SECONDS);
    const sourceBytes: Buffer[] = [];
    source.stdout.on("data", (b: Buffer) => sourceBytes.push(b));
    await publishReadable(publisher, source.stdout);
    await Promise.all(viewers.map((v) => v.ended));

    const sourceFile = join(dir, "source.ts");
    writeFileSync(sourceFile, Buffer.concat(sourceBytes));
    const sourceFrames = countFrames(sourceFile);
    expect(sourceFrames).toBeGreaterThanOrEqual(SECONDS * 25 * 0.95);
    for (const [i, v] of viewers.entries()) {
      const file = join(dir, `viewer-${i}.ts`);
      writeFileSync(file, Buffer.concat(v.chunks));
      const frames = countFrames(file);
      expect(Math.abs(frames - sourceFrames) / sourceFrames).toBeLessThanOrEqual(0.05);
      expect(v.player.stats.rejected).toBe(0);
    }

    // What the nodes hold: the landing node a token and no producer identity; distribution nodes neither token nor key.
    const landingView = landing.host.streamsView();
    expect(landingView.length === 0 || landingView.every((s) => s.role === "landing" && s.hasToken)).toBe(true);
    for (const n of [landing, d1, d2]) {
      const held = JSON.stringify(n.host.streamsView(), (_k, v: unknown) => (v instanceof Uint8Array ? hexOf(v) : typeof v === "bigint" ? String(v) : v));
      expect(held).not.toContain(hexOf(ticket.streamKey));
    }
    for (const d of [d1, d2]) for (const s of d.host.streamsView()) expect(s.hasToken).toBe(false);
    // What a distribution node sends: sealed bytes only — no key, and no MPEG-TS packet run in the clear.
    const sent = Buffer.concat(rawBytes);
    expect(sent.length).toBeGreaterThan(100_000);
    expect(sent.includes(Buffer.from(ticket.streamKey))).toBe(false);
    const plainTs = Buffer.concat(sourceBytes).subarray(188 * 10, 188 * 10 + 64);
    expect(sent.includes(plainTs)).toBe(false);
    raw.close();
  }, 90_000);

  it("a distribution node killed mid-stream: its viewers re-attach to another within 2 s of producer time", async () => {
    const landing = await startMediaNode("landing-2");
    const d1 = await startMediaNode("d1-2");
    const d2 = await startMediaNode("d2-2");
    const { ticket, token } = await createStream(landing, [d1, d2]);
    await waitFor("both feeds", feedsUp(landing, ticket.streamId, 2));
    const viewers: Viewing[] = [];
    for (let i = 0; i < 4; i++) {
      viewers.push(await view_(ticket));
      const attached = viewers.length;
      await waitFor("load reports", () => landing.host.streamsView()[0]!.feeds.reduce((a, f) => a + f.load, 0) === attached);
    }
    const onD1 = viewers.filter((v) => v.player.stats.attachedTo[0] === hexOf(d1.identity.publicKey));
    expect(onD1.length).toBe(2);

    // The producer names a spare node when the landing node runs short.
    const spare = await startMediaNode("d3-2");
    const asked: number[] = [];
    const publisher = await openPublisher({
      ticket,
      token,
      moreNodes: (count) => {
        asked.push(count);
        return Promise.resolve([spare.entry]);
      },
    });
    const source = ffmpegSource(SECONDS);
    const publishing = publishReadable(publisher, source.stdout);
    await waitFor("media flowing", () => viewers.every((v) => v.chunks.length >= 15), 15_000);
    await kill(d1);
    // The landing node lost an access point: it asks the producer for one more and feeds the node it names.
    await waitFor(
      "the spare node fed",
      () => landing.host.streamsView()[0]!.feeds.some((f) => bytesEqual(f.identity, spare.identity.publicKey)) && spare.host.streamsView().length === 1,
    );
    expect(asked).toEqual([1]);
    await publishing;
    await Promise.all(viewers.map((v) => v.ended));

    for (const v of onD1) {
      expect(v.player.stats.attachedTo.length).toBeGreaterThanOrEqual(2);
      expect(v.player.stats.attachedTo.at(-1)).not.toBe(hexOf(d1.identity.publicKey));
      let gap = 0;
      for (let i = 1; i < v.producedAt.length; i++) gap = Math.max(gap, v.producedAt[i]! - v.producedAt[i - 1]!);
      expect(gap).toBeLessThan(2000);
      const file = join(dir, `failover-${v.player.stats.attachedTo.length}-${v.chunks.length}.ts`);
      writeFileSync(file, Buffer.concat(v.chunks));
      expect(countFrames(file)).toBeGreaterThan(SECONDS * 25 * 0.8);
    }
  }, 90_000);

  it("refuses replayed, forged, expired and revoked receipts, forged and expired session ids and a wrong publish token, each with a typed reason", async () => {
    const landing = await startMediaNode("landing-3");
    const causeKind = async (p: Promise<unknown>): Promise<string> => {
      try {
        await p;
        return "accepted";
      } catch (err) {
        expect(err).toBeInstanceOf(StreamMediaError);
        const cause = (err as StreamMediaError).cause;
        return `${(err as StreamMediaError).kind}${cause instanceof StreamError ? `/${cause.kind}` : ""}`;
      }
    };
    const request = (bytes: Uint8Array) => ({ receipt: bytes, kbps: 1000, durationS: 60, public: false, distribution: [] });
    const good = receipt();
    expect(await causeKind(landing.host.create(request(good.bytes)))).toBe("accepted");
    expect(await causeKind(landing.host.create(request(good.bytes)))).toBe("replayed");
    // The replay record is durable: a fresh host on the same file still refuses it.
    const again = new StreamHost({
      identity: landing.identity,
      admission,
      replayStore: new ReceiptReplayStore(join(dir, "landing-3-receipts.db")),
      advertised: landing.entry,
    });
    expect(await causeKind(again.create(request(good.bytes)))).toBe("replayed");
    again.close();
    const stranger = generateEd25519KeyPair();
    expect(await causeKind(landing.host.create(request(receipt({ secretKey: stranger.secretKey }).bytes)))).toBe("bad-receipt/unknown-oracle");
    const tampered = receipt().bytes.slice();
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    expect(await causeKind(landing.host.create(request(tampered)))).toBe("bad-receipt/forged");
    expect(await causeKind(landing.host.create(request(receipt({ issuedAt: nowS() - 7200, expiresAt: nowS() - 3600 }).bytes)))).toBe("bad-receipt/expired");
    const toRevoke = receipt();
    revoked.add(toRevoke.receiptHash);
    expect(await causeKind(landing.host.create(request(toRevoke.bytes)))).toBe("bad-receipt/revoked");
    expect(await causeKind(landing.host.create({ ...request(receipt().bytes), kbps: 9000 }))).toBe("over-limit");

    const { ticket, token } = await createStream(landing, []);
    const wrongToken = token.slice();
    wrongToken[0] = (wrongToken[0] as number) ^ 1;
    const publishRefusal = await causeKind(openPublisher({ ticket, token: wrongToken }));
    expect(publishRefusal).toBe("bad-token");
    const play = (s: Uint8Array) => causeKind(playStream({ ticket, session: () => s, reattachTimeoutMs: 2000 }));
    expect(await play(session({ secretKey: stranger.secretKey }))).toBe("bad-session");
    expect(await play(session({ issuedAt: nowS() - 7200, expiresAt: nowS() - 3600 }))).toBe("bad-session");
    const forgedSession = session().slice();
    forgedSession[forgedSession.length - 1] = (forgedSession[forgedSession.length - 1] as number) ^ 1;
    expect(await play(forgedSession)).toBe("bad-session");
    expect(landing.host.counters.refusals["bad-session"]).toBe(3);
    expect(landing.host.counters.refusals["bad-token"]).toBe(1);
    // The refusal text carries the oracle side's reason.
    const link = await connectStreamLink({ host: ticket.host, port: ticket.port, expectedIdentity: ticket.landing });
    link.send({ type: "attach", streamId: ticket.streamId, session: session({ issuedAt: nowS() - 7200, expiresAt: nowS() - 3600 }) });
    const refusal = await link.nextFrame(5000);
    expect(refusal).toMatchObject({ type: "refuse", kind: "bad-session" });
    expect(refusal.type === "refuse" && refusal.text).toMatch(/expired/);
    // A producer's link carries no identity: the landing node never proved one from it.
    const publisher = await openPublisher({ ticket, token });
    publisher.write(Uint8Array.of(0x47));
    publisher.end();
  }, 60_000);

  it("a hostile stream link gets a typed refusal and the node keeps serving: garbage, an oversized frame, FEED without a node proof, an unknown stream, a forged node proof", async () => {
    const node = await startMediaNode("hostile");
    const dial = () => connectStreamLink({ host: node.entry.host, port: node.entry.port, expectedIdentity: node.identity.publicKey });
    const refusalOf = async (send: (l: Awaited<ReturnType<typeof dial>>) => void): Promise<string> => {
      const l = await dial();
      send(l);
      const f = await l.nextFrame(5000).catch((e: unknown) => e);
      l.destroy();
      const frame = f as { type?: string; kind?: string };
      return frame.type === "refuse" ? String(frame.kind) : `no refusal: ${String(f)}`;
    };
    expect(await refusalOf((l) => l.sendBytes(Uint8Array.of(0, 0, 0, 1, 0xee)))).toBe("malformed");
    expect(await refusalOf((l) => l.sendBytes(Uint8Array.of(0, 2, 0, 0, 7)))).toBe("oversized");
    expect(await refusalOf((l) => l.send({ type: "feed", streamId: new Uint8Array(16) }))).toBe("malformed");
    expect(await refusalOf((l) => l.send({ type: "attach", streamId: new Uint8Array(16), session: session() }))).toBe("unknown-stream");
    expect(await refusalOf((l) => l.send({ type: "node-proof", identity: generateEd25519KeyPair().publicKey, signature: new Uint8Array(64) }))).toBe(
      "node-auth-failed",
    );
    // The same node still creates and serves a stream.
    const { ticket, token } = await createStream(node, []);
    const viewer = await view_(ticket);
    const publisher = await openPublisher({ ticket, token });
    publisher.write(Uint8Array.of(1, 2, 3));
    publisher.end();
    await viewer.ended;
    expect(viewer.chunks.map((c) => [...c])).toEqual([[1, 2, 3]]);
  }, 30_000);

  it("a landing node whose access points report too little spare bandwidth asks the producer for one more and feeds it", async () => {
    const landing = await startMediaNode("landing-5");
    const small = await startMediaNode("small-5", 100); // reports at most 100 kbit/s spare, below the stream's 3000
    const spare = await startMediaNode("spare-5");
    const { ticket, token } = await createStream(landing, [small]);
    await waitFor("the feed", feedsUp(landing, ticket.streamId, 1));
    const asked: number[] = [];
    const publisher = await openPublisher({
      ticket,
      token,
      moreNodes: (count) => {
        asked.push(count);
        return Promise.resolve([spare.entry]);
      },
    });
    await waitFor("the spare node fed", () => landing.host.streamsView()[0]!.feeds.some((f) => bytesEqual(f.identity, spare.identity.publicKey)));
    expect(asked[0]).toBe(1);
    publisher.end();
  }, 30_000);

  it("a tree: beyond its direct feeds the landing node has a distribution node feed the next one, lists it as an access point, and chunks flow through both hops", async () => {
    const landing = await startMediaNode("landing-6", undefined, 1);
    const d1 = await startMediaNode("d1-6");
    const d2 = await startMediaNode("d2-6");
    const { ticket, token } = await createStream(landing, [d1]);
    await waitFor("the direct feed", feedsUp(landing, ticket.streamId, 1));
    const publisher = await openPublisher({ ticket, token });
    // The producer names one more node; the landing node (1 direct feed at most) hands it to d1.
    publisher.addNodes([d2.entry]);
    await waitFor(
      "d2 fed by d1 and listed",
      () =>
        d2.host.streamsView().length === 1 &&
        landing.host.streamsView()[0]!.feeds.length === 1 &&
        landing.host.streamsView()[0]!.feeds.every((f) => bytesEqual(f.identity, d1.identity.publicKey)),
    );
    let points = await fetchAccessPoints(ticket);
    for (let i = 0; i < 50 && points.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      points = await fetchAccessPoints(ticket);
    }
    expect(points.map((p) => hexOf(p.identity)).sort()).toEqual([hexOf(d1.identity.publicKey), hexOf(d2.identity.publicKey)].sort());
    // A viewer at the grandchild gets the chunks through landing → d1 → d2.
    const raw = await connectStreamLink({ host: d2.entry.host, port: d2.entry.port, expectedIdentity: d2.identity.publicKey });
    raw.send({ type: "attach", streamId: ticket.streamId, session: session() });
    expect((await raw.nextFrame(5000)).type).toBe("accept");
    const seqs: bigint[] = [];
    raw.on("frame", (f) => f.type === "chunk" && seqs.push(f.seq));
    for (let i = 0; i < 5; i++) publisher.write(Uint8Array.of(i));
    await waitFor("chunks at the grandchild", () => seqs.length === 5);
    expect(seqs).toEqual([0n, 1n, 2n, 3n, 4n]);
    raw.close();
    publisher.end();
  }, 30_000);
});

/**
 * The landing and distribution roles of a node: the streams it hosts, the
 * stream links it accepts (handed over by the link listener for ALPN
 * psp-stream/1) and the feeds it opens (docs/spec/streaming.md).
 *
 * Owns: stream creation at a landing node (receipt checked through
 * StreamAdmission, replay refused through ReceiptReplayStore, parameters
 * within the receipt's, a random stream id and publish token; the node
 * learns no identity of the producer: the request comes through a circuit
 * and the producer's stream link is anonymous), the producer's link
 * (PUBLISH with the token; chunks held to the receipt's bitrate and
 * duration), feeds to distribution nodes (this node proves its identity;
 * they report LOAD back), access points for viewers (POINTS, least loaded
 * first), viewers (ATTACH with a session id checked through
 * StreamAdmission), usage for rewards when given a UsageMeter (usage.ts:
 * CHUNK frame bytes written to each viewer, under the sid of the session it
 * attached with, and to each fed node, under its proven key; bytes received
 * from the feeding node under its key; a landing node anchors each stream
 * with its creation receipt and bitrate), asking the producer for more distribution nodes
 * (NEED_NODES) when the live ones run short, dropping idle ones, and
 * per-stream fan-out through FanoutEngine. A distribution node hosts a
 * stream only while a node feeds it.
 *
 * Stores: stream id, publish token, limits, the access points' identities
 * and addresses, a viewer's session sid while it is attached (and in the
 * meter's window). Never a producer or viewer identity; never a stream key
 * (chunks are opaque sealed bytes, forwarded as received).
 *
 * Trusts: StreamAdmission for receipts and sessions; a feeding node's
 * proof of identity (stream-link.ts). Nothing else a peer sends.
 */
import type { TLSSocket } from "node:tls";
import { randomBytes } from "node:crypto";
import { bytesEqual } from "../base/bytes.js";
import { hexOf } from "../base/hex.js";
import { TokenBucket } from "../base/token-bucket.js";
import { constantTimeEqual } from "../crypto/compare.js";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import type { DhtRecord } from "../dht/record.js";
import type { ReceiptReplayStore, StreamAdmission } from "./admission.js";
import { signPublicStreamRecord } from "./public-record.js";
import { FanoutEngine } from "./fanout.js";
import type { FanoutOptions, FanoutSend } from "./fanout.js";
import { encodeFrame, MAX_POINTS, PUBLISH_TOKEN_LEN, STREAM_ID_LEN } from "./frames.js";
import type { NodeEntry, StreamFrame } from "./frames.js";
import { StreamMediaError } from "./media-errors.js";
import { checkNodeProof, connectStreamLink, makeNodeProof, refusalError, StreamLink } from "./stream-link.js";
import { chunkFrameBytes } from "./usage.js";
import type { UsageMeter } from "./usage.js";

/** What a producer asks a landing node for (creation.ts carries it through a circuit). */
export interface CreateStreamRequest {
  receipt: Uint8Array;
  /** Wanted bitrate cap, kbit/s (at most the receipt's). */
  kbps: number;
  /** Wanted duration, seconds (at most the receipt's). */
  durationS: number;
  public: boolean;
  /** Distribution nodes to feed (identity, host, port). */
  distribution: NodeEntry[];
}

export interface CreatedStream {
  streamId: Uint8Array;
  token: Uint8Array;
  /** ms since the epoch. */
  expiresAt: number;
}

export interface StreamHostOptions {
  identity: Ed25519KeyPair;
  admission: StreamAdmission;
  replayStore: ReceiptReplayStore;
  /** Where this node's listener is reachable, for POINTS when it serves viewers itself. */
  advertised: { host: string; port: number };
  fanout?: FanoutOptions;
  /** Streams hosted at once, landing and distribution (default 64). */
  maxStreams?: number;
  /** Viewers of one stream at this node (default 2000). */
  maxViewersPerStream?: number;
  /** Egress this node offers to streams, kbit/s, for LOAD reports (default 1,000,000). */
  capacityKbps?: number;
  /** How often distribution nodes report LOAD and the landing node reviews its access points (default 500 ms). */
  tickMs?: number;
  /** A feed with no viewers this long is dropped while the stream has more than it asked for (default 30 s). */
  idleFeedMs?: number;
  /** Feeds a landing node opens itself; nodes the producer adds beyond are fed by its least-loaded distribution node (a tree; default 8). */
  maxDirectFeeds?: number;
  /** Stream links open at once, producers, viewers and feeds (default 8192); one more is closed at accept. */
  maxLinks?: number;
  /** Deadline for a stream link's first frame (default 5 s). */
  firstFrameTimeoutMs?: number;
  /** Publishes a public stream's DHT record (public-record.ts) at creation and when its access points change; absent: not published. */
  publishPublic?: (record: DhtRecord) => Promise<unknown>;
  /** ms since the epoch (default Date.now): receipts, sessions and stream expiry. */
  clock?: () => number;
  /** Counts the bytes of chunks sent and received per stream and peer, for usage reports (absent: nothing is counted). */
  usage?: UsageMeter;
  logger?: Logger;
}

export interface HostCounters {
  streamsCreated: number;
  chunksIn: number;
  chunksOut: number;
  /** CHUNK frame bytes received from producers and feeding nodes (late ones included). */
  bytesIn: number;
  /** CHUNK frame bytes written to viewers and fed nodes. */
  bytesOut: number;
  chunksDropped: number;
  late: number;
  liveEdgeJumps: number;
  overRate: number;
  refusals: Partial<Record<string, number>>;
}

interface Feed {
  entry: NodeEntry;
  link: StreamLink | undefined;
  accepted: boolean;
  load: number;
  spareKbps: number;
  idleSince: number | undefined;
  /** Nodes this distribution node feeds in turn (its POINTS reports): the tree below it. */
  children: NodeEntry[];
}

interface HostedStream {
  id: Uint8Array;
  hex: string;
  role: "landing" | "distribution";
  token: Uint8Array | undefined;
  expiresAt: number;
  kbps: number;
  isPublic: boolean;
  engine: FanoutEngine;
  rate: TokenBucket | undefined;
  producer: StreamLink | undefined;
  upstream: StreamLink | undefined;
  sinks: Map<string, StreamLink>;
  /** Who each sink is, for the meter: a viewer's session sid, a fed node's key. */
  sinkPeers: Map<string, Uint8Array>;
  feeds: Map<string, Feed>;
  wantedFeeds: number;
  askedForNodes: boolean;
  ended: boolean;
  formatFlags: number;
  /** The access points last published in the DHT (public streams), when, and the record's seq. */
  published: { points: string; at: number; seq: number } | undefined;
}

/** What a test (or the metrics) can see a node hold for one stream: nothing more is stored. */
export interface HostedStreamView {
  streamId: Uint8Array;
  role: "landing" | "distribution";
  hasToken: boolean;
  expiresAt: number;
  kbps: number;
  isPublic: boolean;
  viewers: number;
  feeds: NodeEntry[];
  producerAttached: boolean;
  newestSeq: bigint;
}

export class StreamHost {
  readonly counters: HostCounters = { streamsCreated: 0, chunksIn: 0, chunksOut: 0, bytesIn: 0, bytesOut: 0, chunksDropped: 0, late: 0, liveEdgeJumps: 0, overRate: 0, refusals: {} };
  private readonly streams = new Map<string, HostedStream>();
  private readonly links = new Set<StreamLink>();
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly timer: NodeJS.Timeout;
  private nextSink = 0;
  private closed = false;
  private egressBytes = 0;
  private egressKbps = 0;
  private lastTick: number;

  constructor(private readonly options: StreamHostOptions) {
    this.log = childLogger(options.logger, "stream.host");
    this.clock = options.clock ?? Date.now;
    this.lastTick = performance.now();
    this.timer = setInterval(() => this.tick(), options.tickMs ?? 500);
    this.timer.unref();
  }

  get identity(): Uint8Array {
    return this.options.identity.publicKey;
  }

  /** The streams this node hosts, as stored. */
  streamsView(): HostedStreamView[] {
    return [...this.streams.values()].map((s) => ({
      streamId: s.id.slice(),
      role: s.role,
      hasToken: s.token !== undefined,
      expiresAt: s.expiresAt,
      kbps: s.kbps,
      isPublic: s.isPublic,
      viewers: s.engine.countOf("viewer"),
      feeds: [...s.feeds.values()].map((f) => ({ ...f.entry, load: f.load })),
      producerAttached: s.producer?.isOpen === true,
      newestSeq: s.engine.newestSeq,
    }));
  }

  // ------------------------------------------------------------ creation

  /** Creates a stream at this landing node from a producer's request (creation.ts calls it at the end of a circuit). */
  async create(request: CreateStreamRequest): Promise<CreatedStream> {
    if (this.closed) throw new StreamMediaError("closed", "this node no longer hosts streams");
    if (this.streams.size >= (this.options.maxStreams ?? 64))
      throw new StreamMediaError("busy", "this node hosts its maximum of streams", { retryAfterMs: 60_000 });
    const now = this.clock();
    let admitted;
    try {
      admitted = await this.options.admission.checkReceipt(request.receipt, now);
    } catch (err) {
      throw new StreamMediaError("bad-receipt", `the creation receipt was refused: ${(err as Error).message}`, { cause: err });
    }
    const p = admitted.params;
    if (p.expiresAt <= now) throw new StreamMediaError("bad-receipt", "the creation receipt has expired");
    if (request.kbps < 1 || request.kbps > p.maxKbps)
      throw new StreamMediaError("over-limit", `the bitrate ${request.kbps} kbit/s is outside 1..${p.maxKbps} the receipt allows`);
    if (request.durationS < 1 || request.durationS > p.maxDurationS)
      throw new StreamMediaError("over-limit", `the duration ${request.durationS} s is outside 1..${p.maxDurationS} the receipt allows`);
    if (request.distribution.length > MAX_POINTS) throw new StreamMediaError("over-limit", `at most ${MAX_POINTS} distribution nodes`);
    // Last check before the stream exists, so a refused request does not burn the receipt.
    if (!this.options.replayStore.claim(admitted.receiptId, Math.max(p.expiresAt, now + request.durationS * 1000), now)) {
      throw new StreamMediaError("replayed", "this creation receipt was used before");
    }
    const id = new Uint8Array(randomBytes(STREAM_ID_LEN));
    const token = new Uint8Array(randomBytes(PUBLISH_TOKEN_LEN));
    const stream = this.newStream(id, "landing", now + request.durationS * 1000, request.kbps, request.public, token);
    stream.wantedFeeds = request.distribution.length;
    stream.formatFlags = p.formatFlags;
    this.counters.streamsCreated++;
    this.options.usage?.anchor(id, request.receipt, request.kbps);
    for (const entry of request.distribution) this.addFeed(stream, entry);
    this.publishIfChanged(stream, performance.now());
    this.log.info({ stream: stream.hex, kbps: request.kbps, durationS: request.durationS, distribution: request.distribution.length }, "stream created");
    return { streamId: id, token, expiresAt: stream.expiresAt };
  }

  private newStream(id: Uint8Array, role: HostedStream["role"], expiresAt: number, kbps: number, isPublic: boolean, token?: Uint8Array): HostedStream {
    const stream: HostedStream = {
      id,
      hex: hexOf(id),
      role,
      token,
      expiresAt,
      kbps,
      isPublic,
      engine: new FanoutEngine(this.options.fanout),
      rate: undefined,
      producer: undefined,
      upstream: undefined,
      sinks: new Map(),
      sinkPeers: new Map(),
      feeds: new Map(),
      wantedFeeds: 0,
      askedForNodes: false,
      ended: false,
      formatFlags: 0,
      published: undefined,
    };
    if (role === "landing") {
      // The receipt's bitrate, with a 2 s burst and 50 % headroom for the media's own variation.
      const bytesPerSecond = (kbps * 1000 * 1.5) / 8;
      stream.rate = new TokenBucket({ bytesPerSecond, burstBytes: bytesPerSecond * 2 + 128 * 1024, now: performance.now() });
    }
    this.streams.set(stream.hex, stream);
    return stream;
  }

  // ------------------------------------------------------------ inbound stream links

  /** Takes a TLS socket the link listener accepted with ALPN psp-stream/1 (ConnectionManager.setStreamHandler). */
  handleSocket(socket: TLSSocket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.links.size >= (this.options.maxLinks ?? 8192)) {
      this.counters.refusals["busy"] = (this.counters.refusals["busy"] ?? 0) + 1;
      socket.destroy();
      return;
    }
    const link = new StreamLink(socket);
    this.track(link);
    try {
      link.send(makeNodeProof(socket, "responder", this.options.identity));
    } catch (err) {
      logFailure(this.log, err, "prove identity on a stream link", "debug");
      link.destroy();
      return;
    }
    const timeoutMs = this.options.firstFrameTimeoutMs ?? 5000;
    link
      .nextFrame(timeoutMs)
      .then(async (first) => {
        if (first.type === "node-proof") {
          link.peerIdentity = checkNodeProof(socket, "initiator", first);
          const second = await link.nextFrame(timeoutMs);
          if (second.type !== "feed") throw new StreamMediaError("malformed", `a node's stream link carries FEED after its proof, got ${second.type}`);
          this.onFeed(link, second.streamId);
          return;
        }
        this.onFirstFrame(link, first);
      })
      .catch((err: unknown) => this.refuse(link, err, "stream link"));
  }

  private track(link: StreamLink): void {
    this.links.add(link);
    link.once("close", () => this.links.delete(link));
  }

  private refuse(link: StreamLink, err: unknown, what: string): void {
    const e = err instanceof StreamMediaError ? err : new StreamMediaError("malformed", `${what}: ${(err as Error).message}`, { cause: err });
    this.counters.refusals[e.kind] = (this.counters.refusals[e.kind] ?? 0) + 1;
    logFailure(this.log, e, `accept ${what}`, "debug", { from: link.remoteAddress });
    link.refuse(e);
  }

  private streamOf(id: Uint8Array): HostedStream {
    const s = this.streams.get(hexOf(id));
    if (!s || s.ended) throw new StreamMediaError("unknown-stream", "this node hosts no such stream");
    return s;
  }

  private onFirstFrame(link: StreamLink, frame: StreamFrame): void {
    switch (frame.type) {
      case "publish":
        return this.onPublish(link, frame.streamId, frame.token);
      case "attach":
        return this.onAttach(link, frame.streamId, frame.session);
      case "points-request": {
        const stream = this.streamOf(frame.streamId);
        link.send({ type: "points", points: this.accessPoints(stream) });
        link.close();
        return;
      }
      default:
        throw new StreamMediaError("malformed", `a stream link cannot start with a ${frame.type} frame`);
    }
  }

  private onPublish(link: StreamLink, id: Uint8Array, token: Uint8Array): void {
    const stream = this.streamOf(id);
    if (stream.role !== "landing" || !stream.token || !constantTimeEqual(stream.token, token))
      throw new StreamMediaError("bad-token", "wrong publish token for this stream");
    if (stream.producer?.isOpen) throw new StreamMediaError("busy", "the stream already has a producer attached");
    stream.producer = link;
    link.send({ type: "accept", streamId: stream.id });
    link.on("frame", (f) => {
      try {
        if (f.type === "chunk") this.onProducerChunk(stream, f.seq, f.sealed);
        else if (f.type === "add-nodes") {
          stream.askedForNodes = false;
          for (const entry of f.nodes) {
            if (stream.feeds.size >= MAX_POINTS) break;
            if (stream.feeds.size < (this.options.maxDirectFeeds ?? 8)) {
              stream.wantedFeeds++;
              this.addFeed(stream, entry);
            } else this.delegateFeed(stream, entry);
          }
        } else if (f.type === "end") this.endStream(stream, "the producer ended it");
        else throw new StreamMediaError("malformed", `a producer does not send ${f.type} frames`);
      } catch (err) {
        this.refuse(link, err, "producer frame");
      }
    });
    link.once("close", () => {
      if (stream.producer === link) stream.producer = undefined;
    });
    this.log.debug({ stream: stream.hex }, "producer attached");
  }

  private onProducerChunk(stream: HostedStream, seq: bigint, sealed: Uint8Array): void {
    if (this.clock() > stream.expiresAt) {
      this.endStream(stream, "its duration is over");
      return;
    }
    if (stream.rate && !stream.rate.tryTake(sealed.length, performance.now())) {
      this.counters.overRate++;
      return;
    }
    this.forward(stream, seq, sealed);
  }

  private forward(stream: HostedStream, seq: bigint, sealed: Uint8Array): void {
    const { late: before, dropped, liveEdgeJumps } = stream.engine.counters;
    const frame = encodeFrame({ type: "chunk", seq, sealed });
    this.counters.bytesIn += frame.length;
    const sends = stream.engine.chunk(seq, frame, performance.now());
    if (stream.engine.counters.late !== before) this.counters.late++;
    else this.counters.chunksIn++;
    this.countDrops(stream, dropped, liveEdgeJumps);
    this.write(stream, sends);
  }

  /** The engine's drops and live-edge jumps since the given counts, into this node's counters. */
  private countDrops(stream: HostedStream, dropped: number, liveEdgeJumps: number): void {
    this.counters.chunksDropped += stream.engine.counters.dropped - dropped;
    this.counters.liveEdgeJumps += stream.engine.counters.liveEdgeJumps - liveEdgeJumps;
  }

  private write(stream: HostedStream, sends: FanoutSend[]): void {
    const usage = this.options.usage;
    for (const s of sends) {
      const link = stream.sinks.get(s.to);
      if (!link) continue;
      this.counters.chunksOut++;
      this.counters.bytesOut += s.bytes.length;
      this.egressBytes += s.bytes.length;
      // Counted when the socket takes the bytes (a closed link takes none); a full socket still buffers them.
      if (usage && link.isOpen) {
        const peer = stream.sinkPeers.get(s.to);
        if (peer) usage.add(stream.id, peer, "sent", s.bytes.length);
      }
      // One drain listener per blocked spell: the rest of a drained batch goes behind the first write that filled the socket, without a listener each
      // (a stale listener would mark the sink unblocked while its socket is still full).
      if (!link.sendBytes(s.bytes) && !stream.engine.sinkState(s.to)?.blocked) {
        stream.engine.blocked(s.to);
        link.once("drain", () => {
          const { dropped, liveEdgeJumps } = stream.engine.counters;
          const queued = stream.engine.drained(s.to, performance.now());
          this.countDrops(stream, dropped, liveEdgeJumps);
          this.write(stream, queued);
        });
      }
    }
  }

  private addSink(stream: HostedStream, link: StreamLink, kind: "viewer" | "feed", peer: Uint8Array | undefined): string {
    const id = `${kind}-${this.nextSink++}`;
    stream.sinks.set(id, link);
    if (peer) stream.sinkPeers.set(id, peer);
    stream.engine.addSink(id, kind);
    link.once("close", () => {
      stream.sinks.delete(id);
      stream.sinkPeers.delete(id);
      stream.engine.removeSink(id);
    });
    return id;
  }

  private onAttach(link: StreamLink, id: Uint8Array, session: Uint8Array): void {
    const stream = this.streamOf(id);
    let sid: Uint8Array;
    try {
      sid = this.options.admission.checkSession(session, this.clock()).sessionId;
    } catch (err) {
      throw new StreamMediaError("bad-session", `the session id was refused: ${(err as Error).message}`, { cause: err });
    }
    if (stream.engine.countOf("viewer") >= (this.options.maxViewersPerStream ?? 2000)) {
      throw new StreamMediaError("busy", "this access point serves its maximum of viewers for the stream", { retryAfterMs: 1000 });
    }
    link.send({ type: "accept", streamId: stream.id });
    this.addSink(stream, link, "viewer", sid);
    // A distribution node tells its feeder at once, so the next viewer goes to the least loaded point.
    this.reportLoad(stream);
    link.once("close", () => this.reportLoad(stream));
    // A viewer sends nothing after ATTACH; anything else is a protocol error.
    link.on("frame", (f) => this.refuse(link, new StreamMediaError("malformed", `a viewer does not send ${f.type} frames`), "viewer frame"));
  }

  /** A node (proven identity) feeds us a stream: we host it as a distribution node while the feed lasts. */
  private onFeed(link: StreamLink, id: Uint8Array): void {
    const hex = hexOf(id);
    let stream = this.streams.get(hex);
    if (stream && stream.role === "landing") throw new StreamMediaError("malformed", "this node is the stream's landing node");
    if (!stream) {
      if (this.streams.size >= (this.options.maxStreams ?? 64))
        throw new StreamMediaError("busy", "this node hosts its maximum of streams", { retryAfterMs: 60_000 });
      stream = this.newStream(id.slice(), "distribution", Number.MAX_SAFE_INTEGER, 0, false);
    }
    const s = stream;
    s.ended = false;
    if (s.upstream?.isOpen) s.upstream.close();
    s.upstream = link;
    link.send({ type: "accept", streamId: s.id });
    this.reportLoad(s);
    link.on("frame", (f) => {
      try {
        if (f.type === "chunk") {
          if (link.peerIdentity) this.options.usage?.add(s.id, link.peerIdentity, "received", chunkFrameBytes(f.sealed.length));
          this.forward(s, f.seq, f.sealed);
        } else if (f.type === "add-nodes") {
          // Our feeder hands us nodes to feed in turn: the stream's tree grows below us.
          for (const entry of f.nodes) if (s.feeds.size < MAX_POINTS) this.addFeed(s, entry);
        } else if (f.type === "end") this.endStream(s, "its landing node ended it");
        else throw new StreamMediaError("malformed", `a feeding node does not send ${f.type} frames`);
      } catch (err) {
        this.refuse(link, err, "feed frame");
      }
    });
    link.once("close", () => {
      if (s.upstream !== link) return;
      s.upstream = undefined;
      // Without a feed the stream is gone from here: its viewers move to another access point.
      this.endStream(s, "its feed closed", false);
    });
    this.log.debug({ stream: s.hex, from: link.peerIdentity && hexOf(link.peerIdentity) }, "feeding a stream");
  }

  // ------------------------------------------------------------ feeds (landing → distribution)

  private addFeed(stream: HostedStream, entry: NodeEntry): void {
    const key = hexOf(entry.identity);
    if (stream.feeds.has(key) || bytesEqual(entry.identity, this.identity)) return;
    const feed: Feed = { entry: { ...entry, load: 0 }, link: undefined, accepted: false, load: 0, spareKbps: 0, idleSince: undefined, children: [] };
    stream.feeds.set(key, feed);
    void this.openFeed(stream, feed).catch((err: unknown) => {
      logFailure(this.log, err, "feed a distribution node", "info", { stream: stream.hex, node: key });
      if (stream.feeds.get(key) === feed) stream.feeds.delete(key);
    });
  }

  private async openFeed(stream: HostedStream, feed: Feed): Promise<void> {
    const link = await connectStreamLink({
      host: feed.entry.host,
      port: feed.entry.port,
      expectedIdentity: feed.entry.identity,
      identity: this.options.identity,
    });
    this.track(link);
    feed.link = link;
    if (stream.ended || this.closed) {
      link.close();
      return;
    }
    link.send({ type: "feed", streamId: stream.id });
    const answer = await link.nextFrame(this.options.firstFrameTimeoutMs ?? 5000);
    if (answer.type !== "accept") {
      link.close();
      throw refusalError(answer, "the distribution node");
    }
    feed.accepted = true;
    this.addSink(stream, link, "feed", feed.entry.identity);
    // A distribution node tells its feeder about the node below it at once.
    if (stream.role === "distribution") this.reportLoad(stream);
    link.on("frame", (f) => {
      if (f.type === "load") {
        feed.load = f.viewers;
        feed.spareKbps = f.spareKbps;
        feed.idleSince = f.viewers > 0 ? undefined : (feed.idleSince ?? performance.now());
      } else if (f.type === "points") feed.children = f.points;
    });
    link.once("close", () => {
      const key = hexOf(feed.entry.identity);
      if (stream.feeds.get(key) === feed) stream.feeds.delete(key);
      this.log.info({ stream: stream.hex, node: key }, "a distribution node of the stream is gone");
      this.askForNodes(stream);
    });
  }

  /** Hands `entry` to the least-loaded live distribution node of the stream, which feeds it (ADD_NODES on its feed link). */
  private delegateFeed(stream: HostedStream, entry: NodeEntry): void {
    const live = [...stream.feeds.values()].filter((f) => f.accepted && f.link?.isOpen).sort((a, b) => a.load - b.load);
    const parent = live[0];
    if (!parent) {
      stream.wantedFeeds++;
      this.addFeed(stream, entry);
      return;
    }
    parent.link?.send({ type: "add-nodes", nodes: [entry] });
    this.log.debug({ stream: stream.hex, parent: hexOf(parent.entry.identity), child: hexOf(entry.identity) }, "a distribution node feeds another");
  }

  /** NEED_NODES to the producer when the live feeds are fewer than wanted (once until it answers). */
  private askForNodes(stream: HostedStream, extra = 0): void {
    const missing = stream.wantedFeeds - stream.feeds.size + extra;
    if (stream.ended || missing < 1 || stream.askedForNodes || !stream.producer?.isOpen) return;
    stream.askedForNodes = true;
    stream.producer.send({ type: "need-nodes", count: Math.min(missing, MAX_POINTS) });
  }

  /** The access points of a stream, least loaded first; this node itself when it feeds none. */
  accessPoints(stream: HostedStream): NodeEntry[] {
    const live = [...stream.feeds.values()].filter((f) => f.accepted && f.link?.isOpen);
    if (live.length === 0)
      return [{ identity: this.identity, host: this.options.advertised.host, port: this.options.advertised.port, load: stream.engine.countOf("viewer") }];
    const points = live.flatMap((f) => [{ ...f.entry, load: f.load }, ...f.children]);
    return points.slice(0, MAX_POINTS).sort((a, b) => a.load - b.load);
  }

  // ------------------------------------------------------------ load, idle feeds, expiry

  private reportLoad(stream: HostedStream): void {
    if (!stream.upstream?.isOpen) return;
    const capacity = this.options.capacityKbps ?? 1_000_000;
    stream.upstream.send({ type: "load", viewers: stream.engine.countOf("viewer"), spareKbps: Math.max(0, Math.floor(capacity - this.egressKbps)) });
    // The tree below us, so the landing node can list it as access points.
    const children = [...stream.feeds.values()].filter((f) => f.accepted && f.link?.isOpen).flatMap((f) => [{ ...f.entry, load: f.load }, ...f.children]);
    if (children.length > 0 || stream.feeds.size > 0) stream.upstream.send({ type: "points", points: children.slice(0, MAX_POINTS) });
  }

  private tick(): void {
    const now = performance.now();
    const elapsed = Math.max(1, now - this.lastTick);
    this.egressKbps = (this.egressBytes * 8) / elapsed;
    this.egressBytes = 0;
    this.lastTick = now;
    const idleMs = this.options.idleFeedMs ?? 30_000;
    for (const stream of this.streams.values()) {
      if (stream.ended) continue;
      if (stream.role === "distribution") {
        this.reportLoad(stream);
        continue;
      }
      if (this.clock() > stream.expiresAt) {
        this.endStream(stream, "its duration is over");
        continue;
      }
      this.publishIfChanged(stream, now);
      const live = [...stream.feeds.values()].filter((f) => f.accepted && f.link?.isOpen);
      // Short of capacity: every live access point has less spare bandwidth than one more viewer needs.
      if (live.length > 0 && live.every((f) => f.spareKbps < stream.kbps)) this.askForNodes(stream, 1);
      // Idle: beyond the count the producer asked for, a feed nobody watches is dropped.
      if (live.length > stream.wantedFeeds || live.length > 1) {
        for (const f of live) {
          if (f.idleSince !== undefined && now - f.idleSince > idleMs && live.length > 1 && stream.feeds.size > Math.max(1, stream.wantedFeeds)) {
            f.link?.send({ type: "end" });
            f.link?.close();
            stream.feeds.delete(hexOf(f.entry.identity));
            stream.wantedFeeds = Math.max(0, stream.wantedFeeds - 1);
          }
        }
      }
    }
  }

  /** A public stream's DHT record, again when its access points changed or a minute passed. */
  private publishIfChanged(stream: HostedStream, now: number): void {
    if (!stream.isPublic || !this.options.publishPublic) return;
    const points = this.accessPoints(stream);
    const key = points.map((p) => hexOf(p.identity)).join(",");
    if (stream.published && stream.published.points === key && now - stream.published.at < 60_000) return;
    const seq = Math.max((stream.published?.seq ?? 0) + 1, this.clock());
    stream.published = { points: key, at: now, seq };
    const record = signPublicStreamRecord(
      this.options.identity.secretKey,
      { streamId: stream.id, formatFlags: stream.formatFlags, kbps: stream.kbps, expiresAt: stream.expiresAt, points },
      seq,
    );
    this.options.publishPublic(record).catch((err: unknown) => logFailure(this.log, err, "publish a public stream's record", "info", { stream: stream.hex }));
  }

  private endStream(stream: HostedStream, why: string, tellSinks = true): void {
    if (stream.ended) return;
    stream.ended = true;
    this.log.info({ stream: stream.hex, role: stream.role }, `stream ended: ${why}`);
    for (const link of stream.sinks.values()) {
      if (tellSinks) link.send({ type: "end" });
      link.close();
    }
    stream.producer?.close();
    if (stream.role === "landing") this.options.usage?.release(stream.id);
    this.streams.delete(stream.hex);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const link of this.links) link.destroy();
    this.streams.clear();
  }
}

/**
 * The viewer's side of the media path: access points from the landing
 * node, ATTACH at the least loaded one with an oracle session id, chunks
 * opened with the stream key, and re-attaching elsewhere when the access
 * point goes away (docs/spec/streaming.md "Playing").
 *
 * Owns: the order of attempts (least loaded first, a failed point is tried
 * last), dropping repeats after a switch (seq not above the last one
 * delivered), and the switch budget (an access point that dies is replaced
 * within `reattachTimeoutMs`, or the player fails "unreachable"), and the
 * viewer's usage meter (usage.ts): the CHUNK frame bytes received from each
 * access point, counted only for chunks that open under the stream key
 * (bytes a node altered, injected or repeated are not counted, so a node
 * cannot raise what its viewer confirms). viewer-usage.ts reports it.
 *
 * A player given a StreamLocator (a ticket without its key) cannot open
 * chunks: it hands each new one on sealed ("sealed" event, seq above the last
 * one handed on) and counts no usage, since it cannot tell which chunks a
 * node altered. The browser gateway (api/stream-gateway.ts) plays that way:
 * the page that holds the ticket opens them.
 *
 * Trusts: every node's proof of identity (stream-link.ts); chunks only once
 * they open under the stream key (a node cannot alter or inject media).
 */
import { EventEmitter } from "node:events";
import { hexOf } from "../base/hex.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { StreamCipher } from "./crypto.js";
import type { OpenedChunk } from "./crypto.js";
import type { NodeEntry } from "./frames.js";
import { StreamMediaError } from "./media-errors.js";
import { connectStreamLink, refusalError } from "./stream-link.js";
import type { StreamLink } from "./stream-link.js";
import type { StreamTicket } from "./ticket.js";
import { chunkFrameBytes, UsageMeter } from "./usage.js";

/** Where a stream lives without its key: a ticket minus the stream key (what a gateway that forwards sealed chunks knows). */
export type StreamLocator = Omit<StreamTicket, "streamKey">;

export interface PlayerOptions {
  /** With the stream key, chunks are opened ("media"); a locator without it hands them on sealed ("sealed"). */
  ticket: StreamTicket | StreamLocator;
  /** A session id from an oracle (asked again before each attach; it may return the same one while valid). */
  session: () => Promise<Uint8Array> | Uint8Array;
  /** Give up when no access point takes us within this long after losing one (default 10 s). */
  reattachTimeoutMs?: number;
  /** Where the bytes received per access point are counted (default: a meter of the player's own, `player.usage`). */
  usage?: UsageMeter;
  logger?: Logger;
}

export interface PlayerStats {
  chunks: number;
  bytes: number;
  /** Chunks that did not open (dropped; a node altered or injected them). */
  rejected: number;
  /** Repeats after a switch (dropped). */
  repeats: number;
  /** Access points attached to, in order (hex identities). */
  attachedTo: string[];
}

/** A chunk as it arrived (CHUNK frame body), for a player without the key. */
export interface SealedChunk {
  seq: bigint;
  sealed: Uint8Array;
}

export interface PlayerEvents {
  media: [OpenedChunk];
  /** Only for a player without the stream key: a chunk newer than the last one handed on, unopened. */
  sealed: [SealedChunk];
  /** Attached to an access point (again, after a switch). */
  attached: [NodeEntry];
  /** The stream ended (END from the node) or the player was closed: no more media. */
  end: [];
  /** The player failed for good (no access point, refused session). */
  error: [StreamMediaError];
}

/** Asks a stream's landing node for its access points. */
export async function fetchAccessPoints(ticket: StreamLocator, timeoutMs = 5000): Promise<NodeEntry[]> {
  const link = await connectStreamLink({ host: ticket.host, port: ticket.port, expectedIdentity: ticket.landing, timeoutMs });
  try {
    link.send({ type: "points-request", streamId: ticket.streamId });
    const answer = await link.nextFrame(timeoutMs);
    if (answer.type !== "points") throw refusalError(answer, "the access-point request");
    return answer.points;
  } finally {
    link.close();
  }
}

export class Player extends EventEmitter<PlayerEvents> {
  readonly stats: PlayerStats = { chunks: 0, bytes: 0, rejected: 0, repeats: 0, attachedTo: [] };
  /** Bytes received per access point (peer = its node key), for the viewer's usage reports. */
  readonly usage: UsageMeter;
  private readonly cipher: StreamCipher | undefined;
  private readonly log: Logger;
  private link: StreamLink | undefined;
  private lastSeq = -1n;
  private closed = false;
  private readonly failed = new Map<string, number>();

  constructor(private readonly options: PlayerOptions) {
    super();
    const key = (options.ticket as Partial<StreamTicket>).streamKey;
    this.cipher = key === undefined ? undefined : new StreamCipher(options.ticket.streamId, key);
    this.log = childLogger(options.logger, "stream.player");
    this.usage = options.usage ?? new UsageMeter();
  }

  /** Attaches to an access point; resolves once one accepted us. */
  async start(): Promise<void> {
    await this.attach(Date.now() + (this.options.reattachTimeoutMs ?? 10_000));
  }

  private async attach(deadline: number): Promise<void> {
    let lastError: unknown;
    while (!this.closed && Date.now() < deadline) {
      let points: NodeEntry[];
      try {
        points = await fetchAccessPoints(this.options.ticket);
      } catch (err) {
        if (err instanceof StreamMediaError && err.kind === "unknown-stream") throw err;
        lastError = err;
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      // Least loaded first; recently failed points last.
      const ordered = [...points].sort((a, b) => (this.failed.get(hexOf(a.identity)) ?? 0) - (this.failed.get(hexOf(b.identity)) ?? 0) || a.load - b.load);
      for (const point of ordered) {
        if (this.closed) return;
        try {
          await this.attachTo(point);
          return;
        } catch (err) {
          if (err instanceof StreamMediaError && err.kind === "bad-session") throw err;
          lastError = err;
          this.failed.set(hexOf(point.identity), Date.now());
          logFailure(this.log, err, "attach to an access point", "debug", { node: hexOf(point.identity) });
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (this.closed) return;
    throw new StreamMediaError("unreachable", `no access point of the stream took us: ${(lastError as Error | undefined)?.message ?? "none listed"}`, {
      cause: lastError,
    });
  }

  private async attachTo(point: NodeEntry): Promise<void> {
    const link = await connectStreamLink({ host: point.host, port: point.port, expectedIdentity: point.identity });
    try {
      link.send({ type: "attach", streamId: this.options.ticket.streamId, session: await this.options.session() });
      const answer = await link.nextFrame(5000);
      if (answer.type !== "accept") throw refusalError(answer, "attaching");
    } catch (err) {
      link.destroy();
      throw err;
    }
    this.link = link;
    this.stats.attachedTo.push(hexOf(point.identity));
    let ended = false;
    link.on("frame", (f) => {
      if (f.type === "chunk") this.onChunk(f.seq, f.sealed, point.identity);
      else if (f.type === "end") {
        ended = true;
        this.finish();
      }
    });
    link.once("close", () => {
      if (this.closed || ended || this.link !== link) return;
      this.link = undefined;
      this.failed.set(hexOf(point.identity), Date.now());
      this.log.info({ node: hexOf(point.identity) }, "access point lost; attaching to another");
      this.attach(Date.now() + (this.options.reattachTimeoutMs ?? 10_000)).catch((err: unknown) => {
        this.emit("error", err instanceof StreamMediaError ? err : new StreamMediaError("unreachable", String(err)));
        this.finish();
      });
    });
    this.emit("attached", point);
  }

  private onChunk(seq: bigint, sealed: Uint8Array, from: Uint8Array): void {
    if (seq <= this.lastSeq) {
      this.stats.repeats++;
      return;
    }
    if (!this.cipher) {
      // No key: hand it on as it came; the holder of the ticket opens it (and drops what does not open).
      this.lastSeq = seq;
      this.stats.chunks++;
      this.stats.bytes += sealed.length;
      this.emit("sealed", { seq, sealed });
      return;
    }
    let opened: OpenedChunk;
    try {
      opened = this.cipher.open(seq, sealed);
    } catch (err) {
      this.stats.rejected++;
      logFailure(this.log, err, "open a chunk", "debug");
      return;
    }
    this.lastSeq = seq;
    this.usage.add(this.options.ticket.streamId, from, "received", chunkFrameBytes(sealed.length));
    this.stats.chunks++;
    this.stats.bytes += opened.media.length;
    this.emit("media", opened);
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.link?.close();
    this.emit("end");
  }

  close(): void {
    this.finish();
  }
}

/** Starts playing a stream; resolves once attached to an access point. */
export async function playStream(options: PlayerOptions): Promise<Player> {
  const player = new Player(options);
  await player.start();
  return player;
}

/**
 * The producer's side of the media path: a stream link to the landing node,
 * PUBLISH with the publish token, then sealed chunks (docs/spec/streaming.md
 * "Publishing").
 *
 * Owns: sequence numbers (from 0, +1 per chunk), sealing with StreamCipher
 * (producer time inside the seal), answering NEED_NODES with ADD_NODES
 * through a callback, and cutting a byte stream (MPEG-TS from ffmpeg) into
 * chunks on 188-byte packet boundaries, flushed every flushMs so a slow
 * source still flows in real time.
 *
 * Trusts: the landing node's proof of identity (stream-link.ts); the
 * landing node learns our address, never an identity.
 */
import { EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { StreamCipher } from "./crypto.js";
import type { NodeEntry } from "./frames.js";
import { StreamMediaError } from "./media-errors.js";
import { connectStreamLink, refusalError } from "./stream-link.js";
import type { StreamLink } from "./stream-link.js";
import type { StreamTicket } from "./ticket.js";

/** 87 MPEG-TS packets: 16,356 bytes, about 65 ms at 2 Mbit/s. */
export const DEFAULT_CHUNK_BYTES = 188 * 87;
export const DEFAULT_FLUSH_MS = 40;
const TS_PACKET = 188;

export interface PublisherOptions {
  ticket: StreamTicket;
  token: Uint8Array;
  /** Called when the landing node asks for more distribution nodes. */
  moreNodes?: (count: number) => Promise<NodeEntry[]>;
  clock?: () => number;
  logger?: Logger;
}

export interface PublisherEvents {
  close: [StreamMediaError | undefined];
}

export class Publisher extends EventEmitter<PublisherEvents> {
  chunksSent = 0;
  bytesSent = 0;
  private seq = 0n;
  private readonly cipher: StreamCipher;
  private readonly clock: () => number;

  constructor(
    private readonly link: StreamLink,
    options: PublisherOptions,
    private readonly log: Logger,
  ) {
    super();
    this.cipher = new StreamCipher(options.ticket.streamId, options.ticket.streamKey);
    this.clock = options.clock ?? Date.now;
    link.on("frame", (f) => {
      if (f.type === "need-nodes" && options.moreNodes) {
        options.moreNodes(f.count).then(
          (nodes) => {
            if (nodes.length > 0) link.send({ type: "add-nodes", nodes });
          },
          (err: unknown) => logFailure(this.log, err, "name more distribution nodes", "warn"),
        );
      } else if (f.type === "refuse") {
        logFailure(this.log, refusalError(f, "the landing node"), "publish", "warn");
      }
    });
    link.once("close", (err) => this.emit("close", err));
  }

  get isOpen(): boolean {
    return this.link.isOpen;
  }

  /** Bytes written to the link and not yet sent. */
  get bufferedBytes(): number {
    return this.link.socket.writableLength;
  }

  /** Seals and sends one chunk of media; false when the link's buffer is full (the caller may wait for drain()). */
  write(media: Uint8Array): boolean {
    if (!this.link.isOpen) throw new StreamMediaError("closed", "the landing node closed the publishing link");
    const sealed = this.cipher.seal(this.seq, media, this.clock());
    const ok = this.link.send({ type: "chunk", seq: this.seq, sealed });
    this.seq++;
    this.chunksSent++;
    this.bytesSent += media.length;
    return ok;
  }

  /** Names more distribution nodes without being asked (ADD_NODES); the landing node feeds them or has a distribution node feed them. */
  addNodes(nodes: NodeEntry[]): void {
    if (nodes.length > 0) this.link.send({ type: "add-nodes", nodes });
  }

  /** Resolves once the link's buffer has room again. */
  drain(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.link.isOpen || this.link.socket.writableLength === 0) return resolve();
      // Whichever comes first removes the other, so a producer that waits often leaves no listeners behind.
      const done = (): void => {
        this.link.off("drain", done);
        this.link.off("close", done);
        resolve();
      };
      this.link.once("drain", done);
      this.link.once("close", done);
    });
  }

  /** Ends the stream (END) and closes the link. */
  end(): void {
    if (this.link.isOpen) this.link.send({ type: "end" });
    this.link.close();
  }
}

/** Opens the publishing link to the ticket's landing node. Refusals ("bad-token", "unknown-stream", "busy") are typed. */
export async function openPublisher(options: PublisherOptions): Promise<Publisher> {
  const log = childLogger(options.logger, "stream.publisher");
  const { ticket } = options;
  const link = await connectStreamLink({ host: ticket.host, port: ticket.port, expectedIdentity: ticket.landing });
  link.send({ type: "publish", streamId: ticket.streamId, token: options.token });
  const answer = await link.nextFrame(5000).catch((err: unknown) => {
    link.destroy();
    throw err;
  });
  if (answer.type !== "accept") {
    link.destroy();
    throw refusalError(answer, "publishing");
  }
  return new Publisher(link, options, log);
}

/**
 * Publishes a byte stream (e.g. ffmpeg's stdout) until it ends: chunks of at
 * most `chunkBytes` cut on 188-byte boundaries, and whatever whole packets
 * are buffered every `flushMs`. Ends the stream when the input ends.
 */
export async function publishReadable(publisher: Publisher, input: Readable, options: { chunkBytes?: number; flushMs?: number } = {}): Promise<void> {
  const chunkBytes = Math.max(TS_PACKET, Math.floor((options.chunkBytes ?? DEFAULT_CHUNK_BYTES) / TS_PACKET) * TS_PACKET);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = (all: boolean): void => {
    if (pendingBytes === 0) return;
    let data = Buffer.concat(pending, pendingBytes);
    while (data.length >= chunkBytes) {
      publisher.write(data.subarray(0, chunkBytes));
      data = data.subarray(chunkBytes);
    }
    const whole = all ? data.length : data.length - (data.length % TS_PACKET);
    if (whole > 0) publisher.write(data.subarray(0, whole));
    data = data.subarray(whole);
    pending = data.length > 0 ? [Buffer.from(data)] : [];
    pendingBytes = data.length;
  };
  const timer = setInterval(() => {
    if (publisher.isOpen) flush(false);
  }, options.flushMs ?? DEFAULT_FLUSH_MS);
  try {
    for await (const piece of input) {
      const buf = piece as Buffer;
      pending.push(buf);
      pendingBytes += buf.length;
      if (pendingBytes >= chunkBytes) flush(false);
      if (publisher.isOpen && publisher.bufferedBytes > 4 * 1024 * 1024) await publisher.drain();
    }
    flush(true);
  } finally {
    clearInterval(timer);
  }
  publisher.end();
}

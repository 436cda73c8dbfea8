/**
 * A private channel between two users, over a spliced rendezvous stream
 * (docs/spec/presence.md "Channels").
 *
 * Each message travels as one ratchet frame (ratchet.ts: a fresh key per
 * message, old keys erased) and is acknowledged by the other end once it
 * has been received and handed to the app, so `send` resolves on delivery.
 * Frames that do not open (altered, replayed, from another channel) are
 * dropped and counted; they never reach the app. Messages wait, bounded,
 * for a reader (`messages()` or the "message" event); the app reading too
 * slowly past the bound closes the channel rather than buffering forever.
 * A channel that has sent nothing for `keepaliveMs` sends a keepalive frame,
 * so relays do not close its circuits as idle (they do after 10 minutes).
 *
 * Trusts the ratchet for confidentiality and integrity; the rendezvous node
 * and every hop see only frames.
 */
import { EventEmitter } from "node:events";
import type { OnionStream } from "../onion/onion-client.js";
import { PresenceError } from "./errors.js";
import { decodeChannelPayload, encodeChannelPayload, MAX_CHANNEL_BODY } from "./messages.js";
import type { ChannelRatchet } from "./ratchet.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";

/** One message as the app receives it. */
export interface ChannelMessage {
  /** The peer's identity string. */
  from: string;
  /** Sequence number the sender gave it (0, 1, 2, ...). */
  id: number;
  body: Uint8Array;
  /** The body as UTF-8 text. */
  readonly text: string;
}

export interface PresenceChannelEvents {
  message: [ChannelMessage];
  close: [PresenceError | undefined];
  /** A frame that did not open (dropped). */
  dropped: [PresenceError];
}

export interface PresenceChannelOptions {
  /** How long `send` waits for the peer's acknowledgement (default 30 s). */
  ackTimeoutMs?: number;
  /** Messages held for a reader before the channel closes (default 1024). */
  maxBuffered?: number;
  /**
   * A keepalive frame goes out after this long without sending anything
   * (default 4 min: under half the relays' 10-minute idle timeout, so one
   * lost keepalive does not end the channel). 0 turns keepalives off.
   */
  keepaliveMs?: number;
  /** Where failed acknowledgements, keepalives and close notices are logged (debug, counted); silent when absent. */
  logger?: Logger;
}

interface Waiting {
  resolve: () => void;
  reject: (err: PresenceError) => void;
  timer: NodeJS.Timeout;
}

const utf8 = new TextDecoder();

/** Keepalive interval: under half the relays' idle timeout (onion/constants.ts relayCircuitIdleMs, 10 min). */
export const DEFAULT_KEEPALIVE_MS = 4 * 60_000;

export class PresenceChannel extends EventEmitter<PresenceChannelEvents> {
  /** Resolves when the channel ends, with the error (undefined for an orderly close by either end). */
  readonly closed: Promise<PresenceError | undefined>;
  /** Frames dropped because they did not open. */
  droppedFrames = 0;
  private nextId = 0;
  private readonly waiting = new Map<number, Waiting>();
  private readonly inbox: ChannelMessage[] = [];
  private readonly readers: { resolve: (r: IteratorResult<ChannelMessage>) => void; reject: (e: unknown) => void }[] = [];
  private isClosed = false;
  private closeError: PresenceError | undefined;
  private resolveClosed!: (err: PresenceError | undefined) => void;
  private readonly ackTimeoutMs: number;
  private readonly maxBuffered: number;
  private readonly log: Logger;
  private readonly keepaliveMs: number;
  private keepaliveTimer: NodeJS.Timeout | undefined;

  /** @internal made by the presence client once a rendezvous completes */
  constructor(
    private readonly stream: OnionStream,
    private readonly ratchet: ChannelRatchet,
    /** The peer's identity string. */
    readonly peer: string,
    options: PresenceChannelOptions = {},
  ) {
    super();
    this.ackTimeoutMs = options.ackTimeoutMs ?? 30_000;
    this.maxBuffered = options.maxBuffered ?? 1024;
    this.log = childLogger(options.logger, "presence.channel");
    this.keepaliveMs = options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
    if (!Number.isSafeInteger(this.keepaliveMs) || this.keepaliveMs < 0) throw new PresenceError("bad-argument", "keepaliveMs must be a non-negative integer");
    this.armKeepalive();
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    for (const frame of stream.takeBuffered()) this.onFrame(frame);
    stream.on("message", (frame) => this.onFrame(frame));
    void stream.closed.then((err) => this.finish(err ? new PresenceError("closed", `the channel's route closed: ${err.message}`, { cause: err }) : undefined));
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** The role this end plays (the initiator sent the introduction). */
  get role(): "initiator" | "responder" {
    return this.ratchet.role;
  }

  /**
   * Sends one message (text as UTF-8, at most 60 KiB) and resolves once the
   * peer acknowledged it. Rejects with PresenceError "closed" or "timeout".
   */
  async send(body: Uint8Array | string): Promise<void> {
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    if (!(bytes instanceof Uint8Array)) throw new PresenceError("bad-argument", "send takes a string or a Uint8Array");
    if (bytes.length > MAX_CHANNEL_BODY) throw new PresenceError("bad-argument", `a channel message is at most ${MAX_CHANNEL_BODY} bytes; split it`);
    this.assertOpen();
    const id = this.nextId++;
    const acked = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new PresenceError("timeout", `the peer did not acknowledge message ${id} within ${this.ackTimeoutMs} ms`));
      }, this.ackTimeoutMs);
      this.waiting.set(id, { resolve, reject, timer });
    });
    acked.catch(() => undefined); // observed by the caller's await below
    const sent = this.sendFrame(encodeChannelPayload({ t: "msg", id, body: bytes }));
    // The acknowledgement settles it: a write still waiting for room on the route must not hold a delivered message.
    await Promise.race([acked, sent.then(() => acked)]);
  }

  /** Messages as they arrive; ends when the channel closes. One reader at a time. */
  async *messages(): AsyncGenerator<ChannelMessage, void, undefined> {
    for (;;) {
      const next = this.inbox.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.isClosed) return;
      const result = await new Promise<IteratorResult<ChannelMessage>>((resolve, reject) => this.readers.push({ resolve, reject }));
      if (result.done) return;
      yield result.value;
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<ChannelMessage, void, undefined> {
    return this.messages();
  }

  /** Closes the channel: tells the peer, erases the keys, ends the route. */
  close(): void {
    if (this.isClosed) return;
    try {
      // The peer learns of the close from the route's end too; a lost notice only costs it that wait.
      this.stream
        .send(this.ratchet.seal(encodeChannelPayload({ t: "close" })))
        .catch((err: unknown) => logFailure(this.log, err, "send close notice", "debug"));
    } catch {
      // closing anyway
    }
    this.stream.close();
    this.finish(undefined);
  }

  /** (Re)starts the keepalive countdown: called on every frame sent. */
  private armKeepalive(): void {
    if (this.keepaliveMs === 0 || this.isClosed) return;
    clearTimeout(this.keepaliveTimer);
    this.keepaliveTimer = setTimeout(() => {
      if (this.isClosed) return;
      // A lost keepalive shows up as the route closing; the next one is armed by this send.
      this.sendFrame(encodeChannelPayload({ t: "keepalive" })).catch((err: unknown) => logFailure(this.log, err, "send keepalive", "debug"));
    }, this.keepaliveMs);
    this.keepaliveTimer.unref?.();
  }

  private async sendFrame(payload: Uint8Array): Promise<void> {
    const frame = this.ratchet.seal(payload);
    this.armKeepalive();
    try {
      await this.stream.send(frame);
    } catch (err) {
      const closed = new PresenceError("closed", `the channel's route closed: ${(err as Error).message}`, { cause: err });
      this.finish(closed);
      throw closed;
    }
  }

  private onFrame(frame: Uint8Array): void {
    if (this.isClosed) return;
    let plaintext: Uint8Array;
    try {
      plaintext = this.ratchet.open(frame).plaintext;
    } catch (err) {
      this.droppedFrames++;
      if (err instanceof PresenceError) this.emit("dropped", err);
      return;
    }
    let payload;
    try {
      payload = decodeChannelPayload(plaintext);
    } catch (err) {
      this.droppedFrames++;
      if (err instanceof PresenceError) this.emit("dropped", err);
      return;
    }
    if (payload.t === "ack") {
      const w = this.waiting.get(payload.id);
      if (!w) return;
      this.waiting.delete(payload.id);
      clearTimeout(w.timer);
      w.resolve();
      return;
    }
    if (payload.t === "close") {
      this.stream.close();
      this.finish(undefined);
      return;
    }
    if (payload.t === "keepalive") return; // its cells kept the route's relays from closing it as idle
    const body = payload.body;
    const message: ChannelMessage = {
      from: this.peer,
      id: payload.id,
      body,
      get text() {
        return utf8.decode(body);
      },
    };
    if (this.inbox.length >= this.maxBuffered && this.readers.length === 0 && this.listenerCount("message") === 0) {
      this.finish(new PresenceError("busy", `${this.maxBuffered} messages wait unread: the channel was closed`));
      this.stream.close();
      return;
    }
    // A lost acknowledgement shows up at the sender as its own timeout.
    this.sendFrame(encodeChannelPayload({ t: "ack", id: payload.id })).catch((err: unknown) => logFailure(this.log, err, "send acknowledgement", "debug"));
    this.emit("message", message);
    const reader = this.readers.shift();
    if (reader) reader.resolve({ value: message, done: false });
    else if (this.listenerCount("message") === 0) this.inbox.push(message);
  }

  private assertOpen(): void {
    if (this.isClosed) throw this.closeError ?? new PresenceError("closed", "the channel is closed");
  }

  private finish(err: PresenceError | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeError = err;
    clearTimeout(this.keepaliveTimer);
    for (const [, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(err ?? new PresenceError("closed", "the channel closed before the peer acknowledged"));
    }
    this.waiting.clear();
    for (const r of this.readers.splice(0)) r.resolve({ value: undefined, done: true });
    this.ratchet.destroy();
    this.emit("close", err);
    this.resolveClosed(err);
  }
}

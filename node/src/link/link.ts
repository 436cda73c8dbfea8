/**
 * One authenticated link: a TLS 1.3 socket carrying 512-byte cells.
 *
 * Owns, for one socket: driving the pure handshake (handshake.ts) with the
 * socket's bytes and a deadline timer; then framing the byte stream into
 * cells and handing each to one cell handler; send batching (cells sent in
 * one tick leave in one socket write); the bounded send queue and the read
 * pause that together make backpressure; keepalive PADDING, the silent-peer
 * and idle timers; and closing with a CLOSE cell that says why.
 *
 * Trusts: node:tls for the TLS session and the connection manager for the
 * options. Trusts nothing the peer sends: every bad byte ends in a CLOSE with
 * a reason and a typed LinkError in `closeInfo.error`, never a throw.
 */
import { EventEmitter } from "node:events";
import type { TLSSocket } from "node:tls";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import { logFailure, silentLogger } from "../log.js";
import type { Logger } from "../log.js";
import { CELL_LEN, CellCommand, cellCommandName, checkEncodedCells, decodeCell, encodeCell, encodeCellInto } from "../wire/cell.js";
import type { Cell } from "../wire/cell.js";
import { WireError } from "../wire/errors.js";
import { CellFramer, encodeCloseCell, parseClosePayload } from "./cells.js";
import { CloseReason, LinkError, closeReasonForKind, closeReasonName } from "./errors.js";
import type { CloseReasonCode } from "./errors.js";
import { EKM_LABEL, EKM_LEN, LinkHandshake } from "./handshake.js";
import type { HandshakeStep, LinkRole } from "./handshake.js";

/** Timers and limits of one link; every field has a default (DEFAULT_LINK_OPTIONS). */
export interface LinkOptions {
  /** TCP connect + TLS + VERSIONS/AUTH must finish within this (ms). */
  handshakeTimeoutMs: number;
  /** Send a PADDING cell when we have sent nothing for this long (ms). 0: never. */
  keepaliveMs: number;
  /** Close ("peer-silent") when nothing at all arrived for this long (ms). 0: never. */
  silenceTimeoutMs: number;
  /** Close (IDLE) when no holder uses the link and no cell but PADDING moved for this long (ms). 0: never. */
  idleTimeoutMs: number;
  /** Bytes of cells we queue while the socket refuses more; past this the link closes (QUEUE_OVERFLOW). */
  maxQueuedBytes: number;
  /**
   * Bytes the socket may hold before sends report pressure and start queueing
   * here. Above the socket's own 16 KiB mark, so batches of up to this size
   * pass straight through.
   */
  socketHighWaterBytes: number;
  /** A link retired as a duplicate closes (DUPLICATE_LINK) after this long without holders or traffic (ms). */
  duplicateGraceMs: number;
  /** After a CLOSE cell, how long we wait for the socket to flush before destroying it (ms). */
  closeGraceMs: number;
  /** Link protocol versions offered, any order. */
  versions: readonly number[];
  /** Responder: accept anonymous client initiators. */
  acceptAnonymous: boolean;
}

export const DEFAULT_LINK_OPTIONS: LinkOptions = {
  handshakeTimeoutMs: 10_000,
  keepaliveMs: 60_000,
  silenceTimeoutMs: 200_000,
  idleTimeoutMs: 180_000,
  maxQueuedBytes: 1 << 20,
  socketHighWaterBytes: 256 * 1024,
  closeGraceMs: 2_000,
  duplicateGraceMs: 1_000,
  versions: [1],
  acceptAnonymous: true,
};

export type LinkState = "handshaking" | "open" | "closing" | "closed";

/** Why and by whom a link ended. */
export interface LinkCloseInfo {
  /** "local": we closed it (asked or on error); "peer": it sent CLOSE; "transport": TCP/TLS ended or failed. */
  initiatedBy: "local" | "peer" | "transport";
  /** CLOSE reason code (sent or received); for transport ends, INTERNAL or DONE. */
  reason: number;
  reasonName: string;
  message: string;
  /** The typed error when the close was not an orderly DONE/IDLE/SHUTDOWN/DUPLICATE. */
  error?: LinkError;
}

export interface LinkStats {
  cellsSent: number;
  cellsReceived: number;
  paddingSent: number;
  paddingReceived: number;
  bytesWritten: number;
  bytesRead: number;
  /** Times a send found the socket full and queued. */
  pressureEvents: number;
}

/** Called for every non-link-control cell received on an open link. Payload views stay valid. */
export type LinkCellHandler = (cell: Cell, link: Link) => void;

export interface LinkEvents {
  open: [];
  drain: [];
  close: [LinkCloseInfo];
}

const BATCH_BYTES = 64 * CELL_LEN;
/** Pre-encoded runs at least this long are written as they are instead of copied into the batch. */
const DIRECT_WRITE_BYTES = 16 * CELL_LEN;
const ORDERLY: ReadonlySet<number> = new Set([CloseReason.DONE, CloseReason.IDLE, CloseReason.SHUTDOWN, CloseReason.DUPLICATE_LINK]);

let nextLinkId = 1;

export interface LinkInit {
  socket: TLSSocket;
  role: LinkRole;
  identity: Ed25519KeyPair | undefined;
  /** Initiator: the identity the peer must prove. */
  expectedPeer?: Uint8Array;
  options: LinkOptions;
  /** When the dial (or accept) began, on the performance.now() clock: the handshake deadline counts from here. */
  startedAt?: number;
  /** Where the link reports how it ended (the connection manager's logger); silent when absent. */
  logger?: Logger;
}

/**
 * For `link.ready.catch(...)`: a failed handshake rejects `ready` and also
 * ends the link, and the link logs and counts it once, when it closes
 * (`closed`), so whoever leaves `ready` unawaited loses nothing.
 */
export function handshakeFailureReportedOnClose(): void {}

/**
 * A link. Created by the connection manager around a TLS socket whose TLS
 * handshake is done; `ready` resolves once VERSIONS/AUTH succeed.
 */
export class Link extends EventEmitter<LinkEvents> {
  readonly id = nextLinkId++;
  readonly role: LinkRole;
  readonly stats: LinkStats = {
    cellsSent: 0,
    cellsReceived: 0,
    paddingSent: 0,
    paddingReceived: 0,
    bytesWritten: 0,
    bytesRead: 0,
    pressureEvents: 0,
  };
  /** Resolves when the link is open; rejects with the LinkError that ended the handshake. */
  readonly ready: Promise<Link>;
  /** Resolves (never rejects) when the socket is gone. */
  readonly closed: Promise<LinkCloseInfo>;

  private readonly socket: TLSSocket;
  private readonly options: LinkOptions;
  private readonly log: Logger;
  private handshake: LinkHandshake | undefined;
  private readonly framer = new CellFramer();
  private cellHandler: LinkCellHandler | undefined;
  private linkState: LinkState = "handshaking";
  private negotiatedVersion = 0;
  private peer: Uint8Array | undefined;
  private closeInfo: LinkCloseInfo | undefined;
  private pendingClose: LinkCloseInfo | undefined;

  // Send path: cells accumulate in `batch` from `batchStart` to `batchEnd`
  // and leave in one write at the end of the tick (or when the batch fills).
  private batch = Buffer.allocUnsafe(BATCH_BYTES);
  private batchStart = 0;
  private batchEnd = 0;
  private flushScheduled = false;
  private pressure = false;
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private drainWaiters: { resolve: () => void; reject: (e: LinkError) => void }[] = [];

  // Reading, use and timers.
  private readPauses = 0;
  private isRetired = false;
  private holders = 0;
  private usedSinceTick = false;
  private lastWriteAt: number;
  private lastReadAt: number;
  private lastUseAt: number;
  private timer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;

  private resolveReady!: (link: Link) => void;
  private rejectReady!: (err: LinkError) => void;
  private resolveClosed!: (info: LinkCloseInfo) => void;
  private readonly flushBound = (): void => this.flushScheduledBatch();

  constructor(init: LinkInit) {
    super();
    this.socket = init.socket;
    this.role = init.role;
    this.options = init.options;
    this.log = init.logger ?? silentLogger();
    const started = init.startedAt ?? performance.now();
    this.lastWriteAt = this.lastReadAt = this.lastUseAt = performance.now();
    this.ready = new Promise<Link>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(handshakeFailureReportedOnClose);
    this.closed = new Promise<LinkCloseInfo>((resolve) => (this.resolveClosed = resolve));

    this.socket.setNoDelay(true);
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    this.socket.on("drain", () => this.onSocketDrain());
    this.socket.on("error", (err) => this.onSocketError(err));
    this.socket.on("end", () => this.onSocketEnd());
    this.socket.on("close", () => this.onSocketClose());

    let ekm: Buffer;
    try {
      ekm = this.socket.exportKeyingMaterial(EKM_LEN, EKM_LABEL, Buffer.alloc(0));
      this.handshake = new LinkHandshake({
        role: init.role,
        identity: init.identity,
        expectedPeer: init.expectedPeer,
        versions: init.options.versions,
        acceptAnonymous: init.options.acceptAnonymous,
        ekm,
        startedAt: started,
        timeoutMs: init.options.handshakeTimeoutMs,
      });
    } catch (err) {
      const error = err instanceof LinkError ? err : new LinkError("transport", `TLS session unusable: ${(err as Error).message}`, { cause: err });
      this.handshake = undefined;
      queueMicrotask(() => this.fail(error));
      return;
    }
    this.applyHandshakeStep(this.handshake.start());
    const remaining = Math.max(0, this.handshake.deadline - performance.now());
    this.timer = setTimeout(() => this.onHandshakeTimer(), remaining + 1);
    this.timer.unref();
  }

  /** "handshaking" → "open" → "closing" → "closed" (or straight to closing on failure). */
  get state(): LinkState {
    return this.linkState;
  }

  get isOpen(): boolean {
    return this.linkState === "open";
  }

  /** The peer's proven Ed25519 identity (32 bytes); undefined for an anonymous client link. */
  get peerIdentity(): Uint8Array | undefined {
    return this.peer;
  }

  /** True when the peer is an anonymous client (it did not authenticate). */
  get isClientLink(): boolean {
    return this.linkState !== "handshaking" && this.negotiatedVersion !== 0 && this.peer === undefined;
  }

  /** The negotiated link protocol version (0 before the handshake finished). */
  get version(): number {
    return this.negotiatedVersion;
  }

  get remoteAddress(): { host: string; port: number } {
    return { host: this.socket.remoteAddress ?? "", port: this.socket.remotePort ?? 0 };
  }

  /** True while sends are being queued because the socket is full: wait for `drain()`. */
  get underPressure(): boolean {
    return this.pressure;
  }

  /** Bytes queued above the socket (not counting the socket's own buffer). */
  get queuedSendBytes(): number {
    return this.queuedBytes + (this.pressure ? this.batchEnd - this.batchStart : 0);
  }

  /** How the link ended, once it has. */
  get closeReason(): LinkCloseInfo | undefined {
    return this.closeInfo;
  }

  /** Sets the one receiver of cells (the connection manager's dispatcher, or a test). */
  setCellHandler(handler: LinkCellHandler | undefined): void {
    this.cellHandler = handler;
  }

  // ------------------------------------------------------------ sending

  /**
   * Queues one cell; it leaves with every other cell sent in this tick in one
   * socket write. Returns false when the socket is full and cells are being
   * queued: stop and `await drain()`. Throws LinkError "closed" on a link that
   * is not open, "send-queue-full" (and closes the link) when the queue passes
   * its cap, and WireError for a malformed cell (nothing is queued then).
   */
  send(cell: Cell): boolean {
    this.assertOpen();
    if (this.batchEnd + CELL_LEN > this.batch.length) this.flushBatch();
    encodeCellInto(cell, this.batch, this.batchEnd);
    this.batchEnd += CELL_LEN;
    return this.afterEnqueue(1, cell.command);
  }

  /**
   * Sends many cells as one buffer in one socket write (the onion layer's
   * batches). Same return value and errors as `send`; all or none are queued.
   */
  sendMany(cells: readonly Cell[]): boolean {
    this.assertOpen();
    const bytes = cells.length * CELL_LEN;
    if (bytes === 0) return !this.pressure;
    if (bytes > BATCH_BYTES) {
      const buf = Buffer.allocUnsafe(bytes);
      for (let i = 0; i < cells.length; i++) encodeCellInto(cells[i] as Cell, buf, i * CELL_LEN);
      this.flushBatch();
      this.write(buf);
    } else {
      if (this.batchEnd + bytes > this.batch.length) {
        this.flushBatch();
        if (this.batchEnd + bytes > this.batch.length) this.newBatch();
      }
      for (let i = 0; i < cells.length; i++) encodeCellInto(cells[i] as Cell, this.batch, this.batchEnd + i * CELL_LEN);
      this.batchEnd += bytes;
    }
    return this.afterEnqueue(cells.length, -1);
  }

  /**
   * Sends pre-encoded cells (512 bytes each, back to back, e.g. a relay's
   * batch of one circuit) as they are: small runs join this tick's batch,
   * large ones go to the socket without a copy, after what is batched. The
   * caller must not modify `bytes` afterwards. Same return value and errors as
   * `sendMany` (WireError, and nothing queued, for bytes that are not whole
   * cells with known commands and fitting circuit ids).
   */
  sendCellBytes(bytes: Uint8Array): boolean {
    this.assertOpen();
    checkEncodedCells(bytes);
    const count = bytes.length / CELL_LEN;
    if (count === 0) return !this.pressure;
    if (bytes.length >= DIRECT_WRITE_BYTES) {
      this.flushBatch();
      this.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } else {
      if (this.batchEnd + bytes.length > this.batch.length) {
        this.flushBatch();
        if (this.batchEnd + bytes.length > this.batch.length) this.newBatch();
      }
      this.batch.set(bytes, this.batchEnd);
      this.batchEnd += bytes.length;
    }
    return this.afterEnqueue(count, -1);
  }

  /** Resolves when queued cells have gone to the socket and it accepts more; rejects if the link closes first. */
  drain(): Promise<void> {
    if (this.linkState === "closed" || this.linkState === "closing") {
      return Promise.reject(new LinkError("closed", "the link is closed; nothing will drain"));
    }
    if (!this.pressure) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  private afterEnqueue(count: number, command: number): boolean {
    this.stats.cellsSent += count;
    if (command !== CellCommand.PADDING) this.usedSinceTick = true;
    if (this.pressure && this.queuedSendBytes > this.options.maxQueuedBytes) {
      const error = new LinkError(
        "send-queue-full",
        `send queue passed its cap of ${this.options.maxQueuedBytes} bytes: the peer is not reading; closing the link`,
        { closeReason: CloseReason.QUEUE_OVERFLOW },
      );
      this.fail(error);
      throw error;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushBound);
    }
    return !this.pressure;
  }

  private assertOpen(): void {
    if (this.linkState !== "open") {
      throw new LinkError(
        "closed",
        this.linkState === "handshaking" ? "the link is still handshaking: await link.ready before sending" : `the link is ${this.linkState}; get a new one from the connection manager`,
      );
    }
  }

  private flushScheduledBatch(): void {
    this.flushScheduled = false;
    if (this.linkState === "open" || this.linkState === "closing") this.flushBatch();
  }

  /** Moves the cells batched so far to the socket (or the queue). */
  private flushBatch(): void {
    if (this.batchEnd === this.batchStart) return;
    const chunk = this.batch.subarray(this.batchStart, this.batchEnd);
    if (this.batchEnd + CELL_LEN > this.batch.length) this.newBatch();
    else this.batchStart = this.batchEnd;
    this.write(chunk);
  }

  /** Starts a fresh batch buffer: bytes already handed to the socket are never overwritten. */
  private newBatch(): void {
    this.batch = Buffer.allocUnsafe(BATCH_BYTES);
    this.batchStart = this.batchEnd = 0;
  }

  private write(chunk: Buffer): void {
    if (this.pressure) {
      this.queue.push(chunk);
      this.queuedBytes += chunk.length;
      return;
    }
    this.stats.bytesWritten += chunk.length;
    this.lastWriteAt = performance.now();
    // The socket's 'drain' fires once its buffer empties after passing its own
    // 16 KiB mark; our mark is higher, so a drain always follows pressure.
    if (!this.socket.write(chunk) && this.socket.writableLength >= this.options.socketHighWaterBytes) {
      this.pressure = true;
      this.stats.pressureEvents++;
    }
  }

  private onSocketDrain(): void {
    if (!this.pressure) return;
    // Drain fires when the socket's buffer is empty.
    this.pressure = false;
    if (this.queue.length > 0) {
      const chunk = this.queue.length === 1 ? (this.queue[0] as Buffer) : Buffer.concat(this.queue, this.queuedBytes);
      this.queue.length = 0;
      this.queuedBytes = 0;
      this.write(chunk);
    }
    if (!this.pressure) {
      if (this.linkState === "closing" && this.pendingClose) {
        this.finishGracefulClose();
        return;
      }
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w.resolve();
      this.emit("drain");
    }
  }

  // ------------------------------------------------------------ receiving

  /**
   * Stops reading from the socket until the returned function is called
   * (pauses nest: reading resumes when every pause is released). The peer's
   * sends then back up into its own capped queue.
   */
  pauseReading(): () => void {
    let released = false;
    if (this.readPauses++ === 0) this.socket.pause();
    return () => {
      if (released) return;
      released = true;
      if (--this.readPauses === 0 && this.linkState !== "closed") this.socket.resume();
    };
  }

  /** Marks the link as in use (a circuit, a pending request); it will not idle-close until released. */
  acquire(): () => void {
    let released = false;
    this.holders++;
    return () => {
      if (released) return;
      released = true;
      this.holders--;
      this.lastUseAt = performance.now();
    };
  }

  get holderCount(): number {
    return this.holders;
  }

  private onData(chunk: Buffer): void {
    this.stats.bytesRead += chunk.length;
    this.lastReadAt = performance.now();
    if (this.linkState === "handshaking") {
      if (!this.handshake) return;
      const step = this.handshake.receive(chunk, this.lastReadAt);
      this.applyHandshakeStep(step);
      if (step.status === "done" && step.remainder && step.remainder.length > 0 && (this.linkState as LinkState) === "open") {
        this.framer.push(step.remainder, this.onFrameBound);
      }
      return;
    }
    if (this.linkState !== "open") return; // closing: ignore what is still in flight
    this.framer.push(chunk, this.onFrameBound);
  }

  private readonly onFrameBound = (bytes: Uint8Array, offset: number): boolean => this.onFrame(bytes, offset);

  private onFrame(bytes: Uint8Array, offset: number): boolean {
    let cell: Cell;
    try {
      cell = decodeCell(bytes, offset);
    } catch (err) {
      const kind = err instanceof WireError && err.kind === "unknown-command" ? "unknown-command" : "protocol";
      this.fail(new LinkError(kind, `bad cell from peer: ${(err as Error).message}`, { closeReason: closeReasonForKind(kind), cause: err }));
      return false;
    }
    this.stats.cellsReceived++;
    switch (cell.command) {
      case CellCommand.PADDING:
        this.stats.paddingReceived++;
        return true;
      case CellCommand.CLOSE:
        this.onPeerClose(cell.payload);
        return false;
      case CellCommand.VERSIONS:
      case CellCommand.AUTH:
        this.fail(
          new LinkError("protocol", `${cellCommandName(cell.command)} cell after the link handshake`, {
            closeReason: CloseReason.PROTOCOL_VIOLATION,
          }),
        );
        return false;
    }
    this.usedSinceTick = true;
    const handler = this.cellHandler;
    if (handler) {
      try {
        handler(cell, this);
      } catch (err) {
        // A bug above us must not take the process down; it does end this link.
        logFailure(this.log, err, "cell handler", "error", { link: this.id, command: cellCommandName(cell.command) });
        this.fail(new LinkError("protocol", `cell handler threw: ${(err as Error).message}`, { closeReason: CloseReason.INTERNAL, cause: err }));
        return false;
      }
    }
    return this.linkState === "open";
  }

  private onPeerClose(payload: Uint8Array): void {
    const body = parseClosePayload(payload);
    const name = closeReasonName(body.reason);
    const info: LinkCloseInfo = {
      initiatedBy: "peer",
      reason: body.reason,
      reasonName: name,
      message: body.message,
    };
    if (!ORDERLY.has(body.reason)) {
      info.error = new LinkError("peer-closed", `peer closed the link: ${name}${body.message ? ` (${body.message})` : ""}`, {
        closeReason: body.reason,
      });
    }
    this.beginClose(info, false, false);
  }

  // ------------------------------------------------------------ handshake

  private applyHandshakeStep(step: HandshakeStep): void {
    for (const out of step.output) this.writeRaw(out);
    if (step.status === "done" && step.result) {
      this.negotiatedVersion = step.result.version;
      this.peer = step.result.peerIdentity;
      this.handshake = undefined;
      this.linkState = "open";
      this.lastUseAt = performance.now();
      this.startTimers();
      this.resolveReady(this);
      this.emit("open");
    } else if (step.status === "failed" && step.error) {
      // Our CLOSE cell, if one is due, was in step.output and is written already.
      this.beginClose(this.infoFor(step.error, step.closedByPeer ? "peer" : "local"), false, false);
    }
  }

  private onHandshakeTimer(): void {
    this.timer = undefined;
    if (this.linkState !== "handshaking" || !this.handshake) return;
    this.applyHandshakeStep(this.handshake.tick(Math.max(performance.now(), this.handshake.deadline)));
  }

  private writeRaw(bytes: Uint8Array): void {
    this.stats.bytesWritten += bytes.length;
    this.lastWriteAt = performance.now();
    this.socket.write(bytes);
  }

  // ------------------------------------------------------------ timers

  /**
   * Marks the link as a duplicate that lost (the manager's rule): nobody new
   * gets it, and it closes with DUPLICATE_LINK once it has had no holders and
   * no traffic for duplicateGraceMs, so users it already had finish first.
   */
  retire(): void {
    if (this.isRetired || this.linkState !== "open") return;
    this.isRetired = true;
    this.lastUseAt = performance.now();
    this.startTimers();
  }

  /** True once the manager retired this link as a duplicate. */
  get retired(): boolean {
    return this.isRetired;
  }

  private startTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const periods = [this.options.keepaliveMs, this.options.silenceTimeoutMs, this.options.idleTimeoutMs, this.isRetired ? this.options.duplicateGraceMs : 0].filter((p) => p > 0);
    if (periods.length === 0) return;
    // Check four times per shortest period: timers fire at most a quarter-period late.
    const tick = Math.max(5, Math.min(...periods) / 4);
    this.timer = setInterval(() => this.onTick(), tick);
    this.timer.unref();
  }

  private onTick(): void {
    if (this.linkState !== "open") return;
    const now = performance.now();
    if (this.usedSinceTick || this.holders > 0 || this.readPauses > 0) {
      this.usedSinceTick = false;
      this.lastUseAt = now;
    }
    const { keepaliveMs, silenceTimeoutMs, idleTimeoutMs } = this.options;
    if (this.isRetired && now - this.lastUseAt >= this.options.duplicateGraceMs) {
      this.close(CloseReason.DUPLICATE_LINK, "another link to the same peer is kept");
      return;
    }
    if (idleTimeoutMs > 0 && now - this.lastUseAt >= idleTimeoutMs) {
      this.close(CloseReason.IDLE, `no use for ${Math.round(idleTimeoutMs)} ms`);
      return;
    }
    // While we hold reads back, silence is our doing, not the peer's.
    if (silenceTimeoutMs > 0 && this.readPauses === 0 && now - this.lastReadAt >= silenceTimeoutMs) {
      this.fail(new LinkError("peer-silent", `nothing received for ${Math.round(now - this.lastReadAt)} ms, not even keepalives`, { closeReason: CloseReason.PEER_SILENT }));
      return;
    }
    if (keepaliveMs > 0 && now - this.lastWriteAt >= keepaliveMs && !this.pressure) {
      this.stats.paddingSent++;
      this.stats.cellsSent++;
      this.writeRaw(encodeCell({ circId: 0, command: CellCommand.PADDING, payload: new Uint8Array(0) }));
    }
  }

  // ------------------------------------------------------------ closing

  /**
   * Closes the link: cells already sent are flushed, then a CLOSE cell with
   * `reason` and `message`, then the TLS close. Resolves when the socket is
   * gone (at most closeGraceMs later). Safe to call more than once.
   */
  close(reason: CloseReasonCode = CloseReason.DONE, message = ""): Promise<LinkCloseInfo> {
    const info: LinkCloseInfo = { initiatedBy: "local", reason, reasonName: closeReasonName(reason), message };
    if (!ORDERLY.has(reason)) {
      info.error = new LinkError("closed", `link closed locally: ${info.reasonName}${message ? ` (${message})` : ""}`, { closeReason: reason });
    }
    this.beginClose(info, true, true);
    return this.closed;
  }

  /** Ends the link on an error: drops queued cells, sends CLOSE with the error's reason. */
  fail(error: LinkError): void {
    this.beginClose(this.infoFor(error, "local"), true, false);
  }

  /** Destroys the socket at once, without a CLOSE cell (for tests of abrupt loss and for shutdown). */
  destroy(): void {
    if (this.linkState === "closed") return;
    const error = new LinkError("closed", "link destroyed locally without a CLOSE cell", { closeReason: CloseReason.SHUTDOWN });
    this.beginClose(this.infoFor(error, "local"), false, false);
    this.socket.destroy();
  }

  private infoFor(error: LinkError, by: LinkCloseInfo["initiatedBy"]): LinkCloseInfo {
    const reason = error.closeReason ?? closeReasonForKind(error.kind);
    return { initiatedBy: by, reason, reasonName: closeReasonName(reason), message: error.message, error };
  }

  /**
   * Common close path. `sendClose`: write a CLOSE cell. `keepQueued`: deliver
   * what is queued first (orderly close); otherwise queued cells are dropped.
   */
  private beginClose(info: LinkCloseInfo, sendClose: boolean, keepQueued: boolean): void {
    if (this.linkState === "closing" || this.linkState === "closed") return;
    const wasHandshaking = this.linkState === "handshaking";
    this.linkState = "closing";
    this.pendingClose = info;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (wasHandshaking) this.rejectReady(info.error ?? new LinkError("closed", `link closed during the handshake: ${info.reasonName}`));
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w.reject(new LinkError("closed", `the link closed: ${info.reasonName}`));

    this.graceTimer = setTimeout(() => this.socket.destroy(), this.options.closeGraceMs);
    this.graceTimer.unref();
    if (!keepQueued) {
      this.queue.length = 0;
      this.queuedBytes = 0;
      this.batchStart = this.batchEnd = 0;
      this.pressure = false;
    } else {
      this.flushBatch();
    }
    if (sendClose && !this.socket.destroyed) {
      const closeCell = encodeCloseCell(info.reason, info.message);
      if (keepQueued && this.pressure) {
        this.queue.push(Buffer.from(closeCell));
        this.queuedBytes += closeCell.length;
        return; // onSocketDrain finishes the close once the queue is out
      }
      this.writeRaw(closeCell);
    }
    this.socket.end();
  }

  private finishGracefulClose(): void {
    this.socket.end();
  }

  private onSocketError(err: Error): void {
    if (this.linkState === "closing" || this.linkState === "closed") return;
    const error = new LinkError("transport", `link socket failed: ${err.message}`, { cause: err });
    const info = this.infoFor(error, "transport");
    info.reason = CloseReason.INTERNAL;
    info.reasonName = closeReasonName(CloseReason.INTERNAL);
    this.beginClose(info, false, false);
  }

  private onSocketEnd(): void {
    if (this.linkState === "closing" || this.linkState === "closed") return;
    const error =
      this.framer.bufferedBytes > 0
        ? new LinkError("truncated", `the peer ended the connection ${this.framer.bufferedBytes} bytes into a cell`)
        : new LinkError("transport", "the peer ended the connection without a CLOSE cell");
    const info = this.infoFor(error, "transport");
    this.beginClose(info, false, false);
  }

  /**
   * One record of how the link ended. A failure is the peer's or the
   * network's doing (a bug of ours was logged where it happened), so it is a
   * debug line: counted, not printed by default, so a scanner cannot flood
   * the log.
   */
  private logClose(info: LinkCloseInfo): void {
    const fields = { link: this.id, peer: this.peer ? Buffer.from(this.peer.subarray(0, 8)).toString("hex") : null, reason: info.reasonName, by: info.initiatedBy };
    if (info.error) logFailure(this.log, info.error, this.negotiatedVersion === 0 ? "link handshake" : "link", "debug", fields);
    else this.log.debug(fields, "link closed");
  }

  private onSocketClose(): void {
    if (this.linkState === "closed") return;
    if (this.linkState !== "closing") {
      this.onSocketEnd();
    }
    this.linkState = "closed";
    if (this.timer) clearTimeout(this.timer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.timer = this.graceTimer = undefined;
    const info = this.pendingClose ?? { initiatedBy: "transport", reason: CloseReason.INTERNAL, reasonName: "INTERNAL", message: "socket closed" };
    this.closeInfo = info;
    this.cellHandler = undefined;
    this.logClose(info);
    this.resolveClosed(info);
    this.emit("close", info);
  }
}

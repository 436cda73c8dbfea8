/**
 * The stream player of a web page: a browser as a PSP viewer
 * (docs/CLIENT.md "Viewing in a browser"). `attachStreamPlayer(video, {
 * gatewayUrl, ticket })` opens the gateway's WebSocket for the ticket's
 * stream (api/stream-gateway.ts: it attaches to the stream's access point
 * and forwards chunks still sealed), opens each chunk with the ticket's key
 * (chunk.ts, @noble), drops what does not open and repeats, and feeds the
 * plaintext MPEG-TS (H.264) to mpegts.js through a custom loader, which
 * remuxes it for Media Source Extensions; live, low latency.
 *
 * Owns: the page's side of the gateway framing, the order of media handed to
 * mpegts.js (chunks with seq above the last opened one), and `stats`.
 * Trusts: the ticket (the user pasted it); nothing from the gateway until it
 * opens under the key: the gateway never has the key and cannot read or
 * forge media. Browser code: no node:* imports.
 */
import mpegts from "mpegts.js";
import { hexOf } from "../../../node/src/base/hex.js";
import { ChunkOpener, parseGatewayChunk } from "./chunk.js";
import { PlayerError } from "./errors.js";
import { decodePageTicket } from "./ticket.js";

export interface StreamPlayerOptions {
  /** The gateway's base URL (http(s):// or ws(s)://); the player adds /v1/streams/<stream id>/sealed. */
  gatewayUrl: string;
  /** The stream's ticket (pspstream1:…): the stream key never leaves the page. */
  ticket: string;
  /** True when the stream carries audio (the devnet's test source has none). */
  audio?: boolean;
  /** Called once when the player stops for good: the stream ended (undefined) or a failure. */
  onEnd?: (error: PlayerError | undefined) => void;
}

export type StreamPlayerState = "connecting" | "attached" | "playing" | "ended" | "failed";

export interface StreamPlayerStats {
  state: StreamPlayerState;
  /** Chunks that opened and went to the decoder. */
  chunks: number;
  /** Media bytes (plaintext) handed to the decoder. */
  bytes: number;
  /** Chunks that did not open under the ticket's key (dropped). */
  failedChunks: number;
  /** Gateway messages not of the framing (dropped). */
  malformed: number;
  /** Chunks not newer than the last one opened (dropped). */
  repeats: number;
  /** Now minus the producer's clock in the newest chunk, ms (clocks may differ). */
  delayMs: number | undefined;
  /** Frames the video element decoded so far. */
  decodedFrames: number;
  /** The last failure, if any. */
  error: { kind: string; message: string } | undefined;
}

export interface StreamPlayer {
  readonly stats: StreamPlayerStats;
  close(): void;
}

type LoaderCallback = ((...args: never[]) => void) | null;

/** The gateway's WebSocket URL for a stream. */
export function gatewaySocketUrl(gatewayUrl: string, streamIdHex: string): string {
  const url = new URL(`/v1/streams/${streamIdHex}/sealed`, gatewayUrl);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  return url.toString();
}

export function attachStreamPlayer(video: HTMLVideoElement, options: StreamPlayerOptions): StreamPlayer {
  const ticket = decodePageTicket(options.ticket);
  const opener = new ChunkOpener(ticket.streamId, ticket.streamKey);
  const stats: StreamPlayerStats = {
    state: "connecting",
    chunks: 0,
    bytes: 0,
    failedChunks: 0,
    malformed: 0,
    repeats: 0,
    delayMs: undefined,
    error: undefined,
    get decodedFrames(): number {
      return video.getVideoPlaybackQuality?.().totalVideoFrames ?? 0;
    },
  };
  let closed = false;
  let lastSeq = -1n;
  // Plaintext waiting for the decoder's loader to open; then handed on at once.
  let pending: Uint8Array[] = [];
  let deliver: ((media: Uint8Array) => void) | undefined;

  // mpegts.js makes the loader itself (config.customLoader): this class is its door to our socket.
  class PspLoader {
    _status = 0;
    _needStash = false;
    readonly type = "psp-gateway";
    onContentLengthKnown: LoaderCallback = null;
    onURLRedirect: LoaderCallback = null;
    onDataArrival: ((chunk: ArrayBuffer, byteStart: number, receivedLength?: number) => void) | null = null;
    onError: LoaderCallback = null;
    onComplete: LoaderCallback = null;
    private received = 0;
    get status(): number {
      return this._status;
    }
    get needStashBuffer(): boolean {
      return this._needStash;
    }
    isWorking(): boolean {
      return this._status === 1 || this._status === 2;
    }
    open(): void {
      this._status = 2;
      deliver = (media) => {
        const start = this.received;
        this.received += media.length;
        const copy = media.slice().buffer;
        this.onDataArrival?.(copy, start, this.received);
      };
      const queued = pending;
      pending = [];
      for (const m of queued) deliver(m);
    }
    abort(): void {
      this._status = 4;
      deliver = undefined;
    }
    destroy(): void {
      this.abort();
      this._status = 0;
      this.onDataArrival = null;
    }
  }

  if (!mpegts.isSupported()) throw new PlayerError("unsupported", "this browser has no Media Source Extensions: it cannot play the stream");
  const decoder = mpegts.createPlayer(
    { type: "mpegts", isLive: true, hasAudio: options.audio ?? false, hasVideo: true, url: `psp://${hexOf(ticket.streamId)}` },
    {
      enableWorker: false,
      enableStashBuffer: false,
      lazyLoad: false,
      liveBufferLatencyChasing: true,
      liveBufferLatencyMaxLatency: 3,
      liveBufferLatencyMinRemain: 0.5,
      autoCleanupSourceBuffer: true,
      customLoader: PspLoader as unknown as mpegts.CustomLoaderConstructor,
    },
  );
  video.muted = true;
  decoder.attachMediaElement(video);
  decoder.load();

  const stop = (error: PlayerError | undefined): void => {
    if (closed) return;
    closed = true;
    stats.state = error ? "failed" : "ended";
    if (error) stats.error = { kind: error.kind, message: error.message };
    if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING) socket.close(1000);
    options.onEnd?.(error);
  };

  decoder.on(mpegts.Events.ERROR, (type: string, detail: string, info: unknown) => {
    stats.error = { kind: "decoder", message: `${type}: ${detail} ${JSON.stringify(info ?? "")}` };
  });

  const socket = new WebSocket(gatewaySocketUrl(options.gatewayUrl, hexOf(ticket.streamId)));
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event: MessageEvent) => {
    if (closed) return;
    if (typeof event.data === "string") return onControl(event.data);
    let chunk;
    try {
      chunk = parseGatewayChunk(new Uint8Array(event.data as ArrayBuffer));
    } catch {
      stats.malformed++;
      return;
    }
    if (chunk.seq <= lastSeq) {
      stats.repeats++;
      return;
    }
    let opened;
    try {
      opened = opener.open(chunk.seq, chunk.sealed);
    } catch (err) {
      stats.failedChunks++;
      stats.error = { kind: "chunk-auth-failed", message: (err as Error).message };
      return;
    }
    lastSeq = chunk.seq;
    stats.chunks++;
    stats.bytes += opened.media.length;
    stats.delayMs = Date.now() - opened.producedAt;
    if (deliver) deliver(opened.media);
    else pending.push(opened.media);
  };
  const onControl = (text: string): void => {
    let message: { type?: unknown; error?: { kind?: unknown; message?: unknown } };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      stats.malformed++;
      return;
    }
    if (message.error) stop(new PlayerError("gateway", `the gateway failed (${String(message.error.kind)}): ${String(message.error.message)}`));
    else if (message.type === "attached") stats.state = stats.chunks > 0 ? "playing" : "attached";
    else if (message.type === "end") stop(undefined);
  };
  socket.onclose = (event: CloseEvent) => {
    if (!closed) stop(event.code === 1000 ? undefined : new PlayerError("gateway", `the gateway's socket closed (${event.code} ${event.reason})`));
  };
  video.addEventListener("playing", () => {
    if (!closed) stats.state = "playing";
  });
  void video.play()?.catch(() => undefined);

  return {
    stats,
    close() {
      stop(undefined);
      deliver = undefined;
      decoder.pause();
      decoder.unload();
      decoder.detachMediaElement();
      decoder.destroy();
    },
  };
}

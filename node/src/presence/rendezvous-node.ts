/**
 * The rendezvous node's side (docs/spec/presence.md, "Rendezvous node"): the "rendezvous" service
 * where two circuits meet (docs/spec/presence.md "Rendezvous node").
 *
 * The initiator establishes a one-time cookie on its stream; the peer, on
 * accepting the introduction, joins with the cookie and its hs-ntor reply.
 * The node hands the reply to the initiator and from then on splices the two
 * streams: every message from one goes out on the other unread (channel
 * frames, end-to-end encrypted). It never learns either identity, nor where
 * either party is (both reach it through circuits). The peer's requested
 * rate (bytes per second, capped by the node) is enforced per direction;
 * a direction that is over it, or whose other side is not reading, is
 * paused (flow control backs up to the sender) and resumed on a timer or
 * when the other side drains. Either side ending ends the other.
 *
 * Trusts nothing; holds at most `maxCookies` cookies, each for `cookieTtlMs`.
 */
import { unrefTimer } from "../base/timeout.js";
import type { CancellableTimer, SetTimer } from "../base/timeout.js";
import { childLogger } from "../log.js";
import type { Logger } from "../log.js";
import { EndReason } from "../onion/constants.js";
import { TokenBucket } from "../base/token-bucket.js";
import { hexOf } from "../base/hex.js";
import type { LocalService, ServiceHandler, ServiceStream } from "../onion/types.js";
import { AEAD_TAG_LEN } from "../crypto/aead.js";
import type { PresenceErrorKind } from "./errors.js";
import { decodeRendezvousMessage, encodeRendezvousMessage } from "./messages.js";
import { CHANNEL_HEADER_LEN, CHANNEL_MAX_PLAINTEXT } from "./ratchet.js";

export const RENDEZVOUS_SERVICE = "rendezvous";
/**
 * The largest frame a channel sends (ratchet.ts). A direction's burst is at
 * least this (within maxBurst): a frame larger than the burst could never
 * pass, and the channel would end the first time its app sent a long message.
 */
export const MAX_CHANNEL_FRAME = CHANNEL_HEADER_LEN + CHANNEL_MAX_PLAINTEXT + AEAD_TAG_LEN;

export interface RendezvousNodeLimits {
  maxCookies: number;
  cookieTtlMs: number;
  /** Highest rate a joined channel may ask for, bytes per second per direction. */
  maxRate: number;
  /** Burst per direction, bytes. */
  maxBurst: number;
  /** Cells queued toward one side before its source is paused. */
  highWaterCells: number;
}

export const DEFAULT_RENDEZVOUS_LIMITS: RendezvousNodeLimits = {
  maxCookies: 4096,
  cookieTtlMs: 60_000,
  maxRate: 256 * 1024,
  maxBurst: 512 * 1024,
  highWaterCells: 256,
};

export interface RendezvousNodeOptions {
  flush?: () => void;
  limits?: Partial<RendezvousNodeLimits>;
  now?: () => number;
  logger?: Logger;
  setTimer?: SetTimer;
}

export interface RendezvousNodeStats {
  established: number;
  joined: number;
  refused: number;
  expired: number;
  /** Messages and bytes passed through spliced channels. */
  relayedMessages: number;
  relayedBytes: number;
  /** Times a direction was paused for its rate or a full other side. */
  throttled: number;
}

interface Side {
  stream: ServiceStream;
  other?: Side;
  bucket?: TokenBucket;
  /** Messages held while this direction is paused, in order. */
  held: Uint8Array[];
  timer?: CancellableTimer;
  ended: boolean;
}

interface Cookie {
  side: Side;
  expires: number;
}

export interface RendezvousNode {
  readonly service: LocalService;
  readonly stats: RendezvousNodeStats;
  /** Cookies waiting for a join. */
  readonly waiting: number;
  close(): void;
}

export function createRendezvousNode(options: RendezvousNodeOptions = {}): RendezvousNode {
  const limits: RendezvousNodeLimits = { ...DEFAULT_RENDEZVOUS_LIMITS, ...options.limits };
  const now = options.now ?? (() => performance.now());
  const flush = options.flush ?? (() => undefined);
  const log = childLogger(options.logger, "rendezvous");
  const setTimer = options.setTimer ?? unrefTimer;
  const stats: RendezvousNodeStats = { established: 0, joined: 0, refused: 0, expired: 0, relayedMessages: 0, relayedBytes: 0, throttled: 0 };
  const cookies = new Map<string, Cookie>();
  let closed = false;

  const sweep = (t: number): void => {
    for (const [key, c] of cookies) {
      if (c.expires > t) break; // insertion order is expiry order
      cookies.delete(key);
      stats.expired++;
      refuse(c.side.stream, "timeout", "nobody joined this rendezvous in time");
    }
  };

  const refuse = (stream: ServiceStream, kind: PresenceErrorKind, message: string): void => {
    stats.refused++;
    try {
      stream.send(encodeRendezvousMessage({ t: "refused", kind, message }));
    } catch {
      // closing anyway
    }
    stream.end(EndReason.DONE);
  };

  const endBoth = (side: Side): void => {
    for (const s of [side, side.other]) {
      if (!s || s.ended) continue;
      s.ended = true;
      s.timer?.cancel();
      s.stream.end(EndReason.DONE);
    }
  };

  /** Moves held messages of `from` to its other side while rate and room allow. */
  const forward = (from: Side): void => {
    const to = from.other;
    if (!to || from.ended || to.ended) return;
    while (from.held.length > 0) {
      const message = from.held[0] as Uint8Array;
      if (to.stream.queuedCells > limits.highWaterCells) {
        // The other side is not reading: stop reading this one; its drain resumes us.
        stats.throttled++;
        from.stream.pause();
        return;
      }
      const t = now();
      if (from.bucket && !from.bucket.tryTake(message.length, t)) {
        stats.throttled++;
        from.stream.pause();
        if (!from.timer) {
          const at = from.bucket.readyAt(message.length, t);
          // A message larger than the burst can never pass: the channel asked for too little.
          if (!Number.isFinite(at)) return endBoth(from);
          from.timer = setTimer(
            () => {
              from.timer = undefined;
              forward(from);
              flush();
            },
            Math.max(1, at - t),
          );
        }
        return;
      }
      from.held.shift();
      try {
        to.stream.send(message);
      } catch {
        return endBoth(from);
      }
      stats.relayedMessages++;
      stats.relayedBytes += message.length;
    }
    from.stream.resume();
  };

  const service: LocalService = (stream) => {
    if (closed) return EndReason.RESOURCELIMIT;
    const side: Side = { stream, held: [], ended: false };
    let cookieKey: string | undefined;
    /** Refuses and ends this stream; ending it ourselves does not call onEnd, so its cookie goes here. */
    const refuseHere = (kind: PresenceErrorKind, message: string): void => {
      if (cookieKey !== undefined && cookies.get(cookieKey)?.side === side) cookies.delete(cookieKey);
      side.ended = true;
      refuse(stream, kind, message);
    };
    const handler: ServiceHandler = {
      onMessage(message) {
        if (side.other) {
          side.held.push(message);
          forward(side);
          return;
        }
        let m;
        try {
          m = decodeRendezvousMessage(message);
        } catch (err) {
          return refuseHere("malformed", (err as Error).message);
        }
        const t = now();
        sweep(t);
        if (m.t === "establish") {
          if (cookieKey !== undefined) return refuseHere("malformed", "one cookie per rendezvous stream");
          const key = hexOf(m.cookie);
          if (cookies.has(key)) return refuse(stream, "replayed", "that cookie is already waiting here: pick a fresh random one");
          if (cookies.size >= limits.maxCookies) return refuse(stream, "busy", "this rendezvous node holds all the cookies it serves: use another node");
          cookieKey = key;
          cookies.set(key, { side, expires: t + limits.cookieTtlMs });
          stats.established++;
          stream.send(encodeRendezvousMessage({ t: "established" }));
          return;
        }
        if (m.t === "join") {
          if (cookieKey !== undefined) return refuseHere("malformed", "a stream that established a cookie cannot join one");
          const waiting = cookies.get(hexOf(m.cookie));
          if (!waiting) return refuse(stream, "rendezvous-failed", "no rendezvous is waiting under that cookie");
          cookies.delete(hexOf(m.cookie));
          const initiator = waiting.side;
          const rate = Math.min(m.rate || limits.maxRate, limits.maxRate);
          const burst = Math.min(Math.max(m.burst || limits.maxBurst, MAX_CHANNEL_FRAME), limits.maxBurst);
          side.other = initiator;
          initiator.other = side;
          side.bucket = new TokenBucket({ bytesPerSecond: rate, burstBytes: burst, now: t });
          initiator.bucket = new TokenBucket({ bytesPerSecond: rate, burstBytes: burst, now: t });
          stats.joined++;
          try {
            initiator.stream.send(encodeRendezvousMessage({ t: "joined", reply: m.reply }));
            stream.send(encodeRendezvousMessage({ t: "joined" }));
          } catch {
            endBoth(side);
          }
          return;
        }
        refuseHere("malformed", `"${m.t}" is not a request`);
      },
      onEnd() {
        if (cookieKey !== undefined && cookies.get(cookieKey)?.side === side) cookies.delete(cookieKey);
        side.ended = true;
        side.timer?.cancel();
        if (side.other) endBoth(side.other);
      },
      onDrain() {
        // Our queue emptied: the other side may send again.
        if (side.other && !side.other.timer) forward(side.other);
      },
    };
    return handler;
  };

  return {
    service,
    stats,
    get waiting() {
      return cookies.size;
    },
    close() {
      closed = true;
      for (const c of cookies.values()) c.side.stream.end(EndReason.DONE);
      cookies.clear();
      log.debug("rendezvous service closed");
      flush();
    },
  };
}

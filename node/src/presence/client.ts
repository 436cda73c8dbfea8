/**
 * The user's side of presence and private messaging (docs/spec/presence.md;
 * docs/spec/presence.md "Client"): what `createPspClient` exposes as
 * `presence.announce()`, `lookup()`, `connect()` and the "introduction"
 * event.
 *
 * Announcing keeps several presence points (three by default), each a
 * registration at a different presence node over a circuit of its own that
 * ends there: the user's identity is revealed to that node only, and it
 * never learns the user's address (public presence uses a one-hop circuit
 * instead and reveals it). Points are renewed before their records expire,
 * moved to the new period's key when the period turns, and replaced on
 * another node when their circuit or node dies. Introductions arrive over
 * the point's circuit; the app accepts or refuses each (nobody listening
 * refuses); an introduction that does not verify tears the introducer's
 * route down.
 *
 * Connecting looks the peer up through a circuit, establishes a rendezvous
 * cookie at a node of its own choosing, and introduces itself to the
 * freshest reachable point; on acceptance the peer joins the rendezvous and
 * both ends derive the channel's keys. A point that is busy, full, gone or
 * asks for a proof of work is handled here (solve and retry, or the next
 * point); only the peer's refusal, or no reachable point, fails a connect.
 *
 * Trusts: the onion layer for circuits, the DHT client for verified records,
 * the certificate check it is given; nothing a node or peer sends until
 * checked.
 */
import { EventEmitter } from "node:events";
import { randomBytes } from "../crypto/backend.js";
import { generateEd25519KeyPair, ed25519Sign } from "../crypto/ed25519.js";
import { subcredential } from "../crypto/blinding.js";
import { powSolve } from "../crypto/equix.js";
import { CryptoError } from "../crypto/errors.js";
import { parseIdentity } from "../crypto/identity.js";
import { generateX25519KeyPair } from "../crypto/x25519.js";
import type { DhtRecord } from "../dht/record.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { CircuitError } from "../onion/errors.js";
import type { OnionCircuit, OnionStream } from "../onion/onion-client.js";
import { isInternalNode } from "../onion/path.js";
import type { PathNode } from "../onion/path.js";
import { PresenceChannel } from "./channel.js";
import type { PresenceChannelOptions } from "./channel.js";
import { bytesEqual } from "../base/bytes.js";
import { hexOf } from "../base/hex.js";
import { withTimeout } from "../base/timeout.js";
import { PresenceError } from "./errors.js";
import { answerIntroduction, buildIntroduction, finishIntroduction, openIntroduction } from "./introduction.js";
import type { IntroducerCertificate, OpenedIntroduction } from "./introduction.js";
import {
  decodeIntroduceReply,
  decodePresenceNotice,
  decodeRendezvousMessage,
  encodeIntroduceRequest,
  encodePresenceRequest,
  encodeRendezvousMessage,
  registrationSigningPayload,
  RENDEZVOUS_COOKIE_LEN,
} from "./messages.js";
import type { CapName, IntroduceRequest, PresenceLimits, PresenceNotice, PresenceRequest, RendezvousMessage } from "./messages.js";
import { INTRODUCE_SERVICE, PRESENCE_SERVICE } from "./presence-node.js";
import { createChannelRatchet } from "./ratchet.js";
import { MAX_PRESENCE_SLOTS, PRESENCE_FLAG_PUBLIC, presenceLocation, presencePeriod, readPresenceRecord, signPresenceRecord } from "./record.js";
import type { PresencePoint } from "./record.js";
import { RENDEZVOUS_SERVICE } from "./rendezvous-node.js";

/** Tor's default period; every user and presence node of a network must use the same. */
export const DEFAULT_PRESENCE_PERIOD_MINUTES = 1440;
export const DEFAULT_PRESENCE_POINTS = 3;
export const DEFAULT_RECORD_TTL_MS = 10 * 60_000;
export const DEFAULT_PRESENCE_LIMITS: PresenceLimits = { maxPending: 16, maxChannels: 10_000, introsPerSecond: 20, introBurst: 40 };
/** Rendezvous channels ask their node for this rate per direction (bytes per second). */
export const DEFAULT_CHANNEL_RATE = 64 * 1024;
/** Highest proof-of-work effort a connect will spend on one point before trying the next. */
export const DEFAULT_MAX_POW_EFFORT = 64;

export interface PresenceIdentity {
  text: string;
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

/** What the presence client needs from the client that owns it. */
export interface PresenceClientDeps {
  identity: PresenceIdentity;
  /** The identity's access certificate (renewed by the owner before it expires). */
  certificate(): Promise<{ bytes: Uint8Array; notAfter: number }>;
  /** Every valid record under a DHT key, through a circuit. */
  dhtGetAll(key: Uint8Array): Promise<DhtRecord[]>;
  /** A circuit: an exact path, or a chosen one ending at `lastHop`. */
  buildCircuit(options: { path?: readonly PathNode[]; lastHop?: PathNode }): Promise<OnionCircuit>;
  /** Onion relays of the current consensus (presence, introduction and rendezvous candidates). */
  nodes(): readonly PathNode[];
  /** Checks another user's access certificate against the current authorities. */
  verifyCertificate(cert: Uint8Array): IntroducerCertificate;
  /** Network parameter: presence period length in minutes (default 1440). */
  periodLength?: number;
  /** Wall clock, ms since the epoch. */
  now?: () => number;
  logger?: Logger;
  random?: () => number;
}

export interface AnnounceOptions {
  /** Presence points kept (default 3, at most 8). */
  points?: number;
  /** Public presence: one-hop circuits to the presence nodes, which then learn the user's address. */
  public?: boolean;
  /** What each presence node enforces for this user. */
  limits?: Partial<PresenceLimits>;
  /** Lifetime of each record; renewed at a third of it (default 10 min). */
  recordTtlMs?: number;
  /** Open another point when one reports a full cap (default true, up to 8 points). */
  expandOnCap?: boolean;
  /** Rendezvous rate per direction the user's channels ask for (bytes/s). */
  channelRate?: number;
}

export interface PointInfo {
  slot: number;
  /** The presence node's identity key, hex. */
  node: string;
  state: "registering" | "up" | "lost";
  /** When its record expires, ms since the epoch. */
  expiresAt: number;
  /** DHT nodes that stored the last version. */
  stored: number;
  /** Introductions delivered through it. */
  introductions: number;
}

/** An introduction waiting for the app's answer. */
export interface IncomingIntroduction {
  /** Who asks (verified: certificate, signature and time). */
  readonly from: string;
  /** Unix seconds at which the introducer's certificate expires. */
  readonly certificateNotAfter: number;
  /** The presence point it arrived at. */
  readonly slot: number;
  /** Accepts: joins the introducer's rendezvous and resolves with the channel. */
  accept(options?: PresenceChannelOptions): Promise<PresenceChannel>;
  /** Refuses politely: the introducer learns "refused". */
  refuse(): void;
  /** Tears the introducer's route down at once (the presence node destroys its circuit). */
  cancel(): void;
}

export interface ConnectOptions {
  /** One-hop circuits to the rendezvous and presence nodes: they learn this user's address, never its identity (§7.2). */
  direct?: boolean;
  /** Whole connect deadline (default 30 s). */
  timeoutMs?: number;
  /** Most proof-of-work effort to spend per point (default 64). */
  maxPowEffort?: number;
  channel?: PresenceChannelOptions;
}

export interface FoundPoint extends PresencePoint {
  period: number;
  /** The subcredential an introduction to it uses. */
  subcredential: Uint8Array;
}

export interface PresenceClientEvents {
  introduction: [IncomingIntroduction];
  /** A point came up, was lost or replaced. */
  point: [PointInfo];
  /** A presence node reports that one of this user's caps was reached. */
  "cap-reached": [{ slot: number; cap: CapName; limit: number }];
  /** An introduction that did not verify (its route was torn down). */
  "bad-introduction": [PresenceError];
  channel: [PresenceChannel];
  warning: [Error];
}

interface Point {
  slot: number;
  node: PathNode;
  authSecret: Uint8Array;
  authKey: Uint8Array;
  encSecret: Uint8Array;
  encKey: Uint8Array;
  circuit?: OnionCircuit;
  stream?: OnionStream;
  /** Periods registered with this point's keys, newest last (introductions may name either). */
  periods: number[];
  registeredCertNotAfter: number;
  state: PointInfo["state"];
  expiresAt: number;
  stored: number;
  introductions: number;
  renewTimer?: NodeJS.Timeout;
  /** When the point last registered again after losing its circuit (ms, monotonic): bounds how often it does. */
  reattachedAt: number[];
  /** The answer to the request in flight (register or renew). */
  waiting?: { resolve: (n: PresenceNotice) => void; reject: (e: PresenceError) => void };
}

/** A point registers again at its node at most this many times per REATTACH_WINDOW_MS; past that, a node that keeps dropping it is left for another. */
const MAX_REATTACHES = 3;
const REATTACH_WINDOW_MS = 10 * 60_000;

/** Lookups a connect makes before it gives up when no point could introduce it (the first included). */
const CONNECT_ROUNDS = 3;
/** Pause before the second lookup; the third waits twice as long. */
const CONNECT_ROUND_PAUSE_MS = 1_000;

interface Rendezvous {
  circuit: OnionCircuit;
  stream: OnionStream;
  node: PathNode;
  cookie: Uint8Array;
  joined: Promise<RendezvousMessage>;
}

const deadline = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  withTimeout(promise, ms, () => new PresenceError("timeout", `${what}: no answer within ${ms} ms`));

/** The next message on a stream, decoded; a closed stream is PresenceError "unreachable". */
async function receive<T>(stream: OnionStream, decode: (b: Uint8Array) => T, what: string): Promise<T> {
  let bytes: Uint8Array;
  try {
    bytes = await stream.receive();
  } catch (err) {
    throw new PresenceError("unreachable", `${what}: the stream closed (${(err as Error).message})`, { cause: err });
  }
  return decode(bytes);
}

export class PresenceClient extends EventEmitter<PresenceClientEvents> {
  private readonly points = new Map<number, Point>();
  private announced: (Required<Omit<AnnounceOptions, "limits">> & { limits: PresenceLimits }) | undefined;
  private closed = false;
  private readonly log: Logger;
  private readonly periodLength: number;
  private readonly now: () => number;
  private readonly random: () => number;

  /** Channels log beneath the client's logger (the app's options may name none). */
  private channelLogger(): { logger?: Logger } {
    return this.deps.logger ? { logger: this.deps.logger } : {};
  }

  constructor(private readonly deps: PresenceClientDeps) {
    super();
    this.log = childLogger(deps.logger, "presence.client");
    this.periodLength = deps.periodLength ?? DEFAULT_PRESENCE_PERIOD_MINUTES;
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
  }

  /** The presence points now (empty before announce). */
  status(): PointInfo[] {
    return [...this.points.values()].map((p) => this.info(p));
  }

  // ---------------------------------------------------------------- announcing

  /**
   * Announces presence: registers `points` presence points and keeps them.
   * Resolves once at least one is up; rejects with the first point's error
   * when none could be registered. Calling it again changes nothing but the
   * options of later replacements.
   */
  async announce(options: AnnounceOptions = {}): Promise<PointInfo[]> {
    this.assertOpen();
    const count = options.points ?? DEFAULT_PRESENCE_POINTS;
    if (!Number.isInteger(count) || count < 1 || count > MAX_PRESENCE_SLOTS)
      throw new PresenceError("bad-argument", `points must be an integer in 1..${MAX_PRESENCE_SLOTS}`);
    const ttl = options.recordTtlMs ?? DEFAULT_RECORD_TTL_MS;
    if (!Number.isSafeInteger(ttl) || ttl < 10_000 || ttl > 15 * 60_000) throw new PresenceError("bad-argument", "recordTtlMs must be between 10 s and 15 min");
    const limits: PresenceLimits = { ...DEFAULT_PRESENCE_LIMITS, ...options.limits };
    for (const [k, v] of Object.entries(limits))
      if (!Number.isSafeInteger(v) || v < 1) throw new PresenceError("bad-argument", `limits.${k} must be a positive integer`);
    this.announced = {
      points: count,
      public: options.public ?? false,
      recordTtlMs: ttl,
      expandOnCap: options.expandOnCap ?? true,
      channelRate: options.channelRate ?? DEFAULT_CHANNEL_RATE,
      limits,
    };
    const opened: { slot: number; done: Promise<void> }[] = [];
    for (let slot = 0; slot < count; slot++) if (!this.points.has(slot)) opened.push({ slot, done: this.openPoint(slot) });
    const results = await Promise.allSettled(opened.map((o) => o.done));
    // Slots that failed now keep trying in the background while presence is announced.
    results.forEach((r, i) => {
      if (r.status === "rejected") this.replaceLater((opened[i] as { slot: number }).slot, [], 1_000);
    });
    const up = this.status().filter((p) => p.state === "up");
    if (up.length === 0) {
      const first = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      throw first?.reason instanceof Error ? first.reason : new PresenceError("unreachable", "no presence point could be registered");
    }
    return this.status();
  }

  /** Withdraws every point (their records expire on their own) and ends their circuits. */
  withdraw(): void {
    this.announced = undefined;
    for (const p of this.points.values()) this.dropPoint(p);
    this.points.clear();
  }

  private info(p: Point): PointInfo {
    return { slot: p.slot, node: hexOf(p.node.identity), state: p.state, expiresAt: p.expiresAt, stored: p.stored, introductions: p.introductions };
  }

  private pickNode(exclude: readonly Uint8Array[]): PathNode {
    const used = new Set([...exclude.map(hexOf), ...[...this.points.values()].filter((p) => p.state !== "lost").map((p) => hexOf(p.node.identity))]);
    const candidates = this.deps.nodes().filter((n) => !used.has(hexOf(n.identity)));
    const pool = candidates.length > 0 ? candidates : [...this.deps.nodes()];
    const node = pool[Math.floor(this.random() * pool.length)];
    if (!node) throw new PresenceError("unreachable", "the consensus lists no node to hold a presence point");
    return node;
  }

  /** Registers slot `slot` at a node not in `exclude`; on failure the point is dropped and the error thrown. */
  private async openPoint(slot: number, exclude: readonly Uint8Array[] = []): Promise<void> {
    const announced = this.announced;
    if (!announced || this.closed) return;
    const node = this.pickNode(exclude);
    const auth = generateEd25519KeyPair();
    const enc = generateX25519KeyPair();
    const point: Point = {
      slot,
      node,
      authSecret: auth.secretKey,
      authKey: auth.publicKey,
      encSecret: enc.secretKey,
      encKey: enc.publicKey,
      periods: [],
      reattachedAt: [],
      registeredCertNotAfter: 0,
      state: "registering",
      expiresAt: 0,
      stored: 0,
      introductions: 0,
    };
    if (this.points.get(slot)?.state === "up") return;
    this.points.set(slot, point);
    try {
      await this.attach(point, announced.public);
      this.log.info({ slot, node: hexOf(node.identity).slice(0, 16) }, "presence point up");
    } catch (err) {
      this.dropPoint(point);
      throw err;
    }
  }

  /** Registers `point` (its node and keys) over a new circuit and stream; the point is up when this resolves. */
  private async attach(point: Point, direct: boolean): Promise<void> {
    const circuit = await this.circuitTo(point.node, direct);
    point.circuit = circuit;
    if (this.closed || this.points.get(point.slot) !== point || point.state !== "registering") {
      circuit.close();
      throw new PresenceError("closed", "presence was withdrawn");
    }
    const stream = await circuit.openStream(PRESENCE_SERVICE);
    point.stream = stream;
    stream.on("message", (bytes) => this.onNotice(point, bytes, stream));
    // Only the point's current stream speaks for it: an old one closing after a reattach changes nothing.
    void stream.closed.then((err) => point.stream === stream && this.pointLost(point, err));
    await this.register(point);
    point.state = "up";
    this.scheduleRenewal(point);
    this.emit("point", this.info(point));
  }

  /** Opens slot `slot` again after `delayMs`, on another node, backing off while it fails, as long as presence is announced. */
  private replaceLater(slot: number, exclude: readonly Uint8Array[], delayMs: number): void {
    const timer = setTimeout(() => {
      if (this.closed || !this.announced || this.points.get(slot)?.state === "up" || this.points.get(slot)?.state === "registering") return;
      this.openPoint(slot, exclude).catch((err: unknown) => {
        logFailure(this.log, err, `replace presence point ${slot}`);
        this.replaceLater(slot, exclude, Math.min(delayMs * 2, 30_000));
      });
    }, delayMs);
    timer.unref?.();
  }

  private async register(point: Point): Promise<void> {
    const announced = this.announced;
    if (!announced || !point.stream) throw new PresenceError("closed", "presence was withdrawn");
    const cert = await this.deps.certificate();
    const wall = this.now();
    const period = presencePeriod(wall, this.periodLength);
    const record = this.record(point, period, wall);
    const unsigned = {
      t: "register" as const,
      node: point.node.identity,
      identity: this.deps.identity.text,
      cert: cert.bytes,
      period,
      periodLength: this.periodLength,
      slot: point.slot,
      authKey: point.authKey,
      record,
      limits: announced.limits,
      time: wall,
      sig: new Uint8Array(64),
    };
    const request: PresenceRequest = { ...unsigned, sig: ed25519Sign(this.deps.identity.secretKey, registrationSigningPayload(unsigned)) };
    await this.request(point, request);
    if (!point.periods.includes(period)) point.periods.push(period);
    if (point.periods.length > 2) point.periods.shift();
    point.registeredCertNotAfter = cert.notAfter;
  }

  private record(point: Point, period: number, wall: number) {
    const announced = this.announced;
    if (!announced) throw new PresenceError("closed", "presence was withdrawn");
    return signPresenceRecord({
      identitySecret: this.deps.identity.secretKey,
      identityKey: this.deps.identity.publicKey,
      period,
      periodLength: this.periodLength,
      slot: point.slot,
      point: {
        node: point.node.identity,
        authKey: point.authKey,
        encKey: point.encKey,
        flags: announced.public ? PRESENCE_FLAG_PUBLIC : 0,
        points: Math.max(announced.points, this.points.size),
        issuedAt: wall,
      },
      seq: wall,
      expiresAt: wall + announced.recordTtlMs,
    });
  }

  /** Sends a register or renew and waits for "registered"; a refusal rejects with its kind. */
  private async request(point: Point, request: PresenceRequest): Promise<void> {
    const stream = point.stream;
    if (!stream) throw new PresenceError("closed", "the presence point has no stream");
    const answer = new Promise<PresenceNotice>((resolve, reject) => (point.waiting = { resolve, reject }));
    answer.catch(() => undefined);
    try {
      await stream.send(encodePresenceRequest(request));
    } catch (err) {
      throw new PresenceError("unreachable", `the presence node could not be reached: ${(err as Error).message}`, { cause: err });
    }
    const notice = await deadline(answer, 20_000, `presence ${request.t} at ${hexOf(point.node.identity).slice(0, 16)}…`);
    if (notice.t === "refused") throw new PresenceError(notice.kind, `the presence node refused: ${notice.message}`);
    if (notice.t === "registered") {
      point.expiresAt = notice.expiresAt;
      point.stored = notice.stored;
    }
  }

  private scheduleRenewal(point: Point): void {
    const announced = this.announced;
    if (!announced) return;
    clearTimeout(point.renewTimer);
    point.renewTimer = setTimeout(() => void this.renew(point), Math.floor(announced.recordTtlMs / 3));
    point.renewTimer.unref?.();
  }

  private async renew(point: Point): Promise<void> {
    if (point.state !== "up" || !this.announced) return;
    try {
      const wall = this.now();
      const period = presencePeriod(wall, this.periodLength);
      if (period !== point.periods[point.periods.length - 1]) {
        await this.register(point);
      } else {
        const cert = await this.deps.certificate();
        const fresh = cert.notAfter !== point.registeredCertNotAfter;
        await this.request(point, { t: "renew", record: this.record(point, period, wall), ...(fresh ? { cert: cert.bytes } : {}) });
        if (fresh) point.registeredCertNotAfter = cert.notAfter;
      }
      this.scheduleRenewal(point);
    } catch (err) {
      logFailure(this.log, err, `renew presence point ${point.slot}`);
      this.emit("warning", err instanceof Error ? err : new Error(String(err)));
      // A point its node will not renew is replaced on another node rather than left to expire.
      this.replacePoint(point, err);
    }
  }

  /** Ends a point on purpose (withdrawn, failed, not renewable): no replacement from its closing circuit. */
  private dropPoint(point: Point): void {
    const wasUp = point.state === "up";
    point.state = "lost";
    clearTimeout(point.renewTimer);
    point.waiting?.reject(new PresenceError("closed", "the presence point closed"));
    point.waiting = undefined;
    point.circuit?.close();
    point.encSecret.fill(0);
    point.authSecret.fill(0);
    if (wasUp) this.emit("point", this.info(point));
  }

  /**
   * A point's stream closed under it. Most often a relay of its circuit died
   * and the presence node is fine: the point registers again at the same node
   * with the same keys over a new circuit, so the record peers hold stays good
   * (as Tor retries an introduction point before giving it up). When the node
   * cannot be reached, the point is replaced on another node.
   */
  private pointLost(point: Point, err: unknown): void {
    const t = performance.now();
    point.reattachedAt = point.reattachedAt.filter((at) => t - at < REATTACH_WINDOW_MS);
    if (point.state !== "up" || this.closed || !this.announced || this.points.get(point.slot) !== point || point.reattachedAt.length >= MAX_REATTACHES)
      return this.replacePoint(point, err);
    point.reattachedAt.push(t);
    const node = hexOf(point.node.identity).slice(0, 16);
    this.log.info({ slot: point.slot, node, err }, "presence point's circuit closed: registering it again at the same node");
    point.state = "registering";
    clearTimeout(point.renewTimer);
    point.waiting?.reject(new PresenceError("unreachable", "the presence point's circuit closed"));
    point.waiting = undefined;
    point.circuit?.close();
    point.stream = undefined;
    this.emit("point", this.info(point));
    this.attach(point, this.announced.public).then(
      () => this.log.info({ slot: point.slot, node }, "presence point up again"),
      (error: unknown) => {
        logFailure(this.log, error, `register presence point ${point.slot} again at its node`, "debug");
        this.replacePoint(point, error);
      },
    );
  }

  /** Gives a point up and opens its slot again on another node. */
  private replacePoint(point: Point, err: unknown): void {
    if (point.state === "lost") return;
    const wasUp = point.state === "up";
    this.dropPoint(point);
    if (!wasUp) this.emit("point", this.info(point));
    if (this.closed || !this.announced || this.points.get(point.slot) !== point) return;
    this.log.info({ slot: point.slot, node: hexOf(point.node.identity).slice(0, 16), err }, "presence point lost: replacing it on another node");
    this.replaceLater(point.slot, [point.node.identity], 250);
  }

  private onNotice(point: Point, bytes: Uint8Array, from: OnionStream): void {
    let notice: PresenceNotice;
    try {
      notice = decodePresenceNotice(bytes);
    } catch (err) {
      logFailure(this.log, err, "decode presence notice");
      return;
    }
    if (notice.t === "registered" || notice.t === "refused") {
      const waiting = point.waiting;
      point.waiting = undefined;
      waiting?.resolve(notice);
      return;
    }
    if (notice.t === "notice") {
      this.emit("cap-reached", { slot: point.slot, cap: notice.cap, limit: notice.limit });
      const announced = this.announced;
      if (announced?.expandOnCap && notice.cap !== "rate" && this.points.size < MAX_PRESENCE_SLOTS) {
        const slot = [...Array(MAX_PRESENCE_SLOTS).keys()].find((s) => !this.points.has(s));
        if (slot !== undefined) this.openPoint(slot).catch((err: unknown) => logFailure(this.log, err, "open an extra presence point"));
      }
      return;
    }
    this.onIntroduction(point, notice, from);
  }

  /** Answers introduction `id` on `stream`, the registration it came from (the point may since have moved to a new one, which does not know the id). */
  private decide(stream: OnionStream | undefined, id: number, verdict: "accept" | "refuse" | "cancel"): void {
    const request: PresenceRequest = verdict === "cancel" ? { t: "cancel", id } : { t: "decide", id, accept: verdict === "accept" };
    stream?.send(encodePresenceRequest(request)).catch((err: unknown) => logFailure(this.log, err, `answer introduction ${id}`));
  }

  private onIntroduction(point: Point, notice: Extract<PresenceNotice, { t: "introduce" }>, from: OnionStream): void {
    point.introductions++;
    let opened: OpenedIntroduction;
    try {
      opened = openIntroduction({
        authKey: point.authKey,
        encSecret: point.encSecret,
        encKey: point.encKey,
        subcredentials: [...point.periods]
          .reverse()
          .map((p) => subcredential(this.deps.identity.publicKey, presenceLocation(this.deps.identity.publicKey, p, this.periodLength, point.slot).blinded)),
        x: notice.x,
        ct: notice.ct,
        mac: notice.mac,
        verifyCertificate: (cert) => this.deps.verifyCertificate(cert),
        now: this.now(),
      });
    } catch (err) {
      const error = err instanceof PresenceError ? err : new PresenceError("malformed", (err as Error).message, { cause: err });
      this.log.debug({ kind: error.kind }, `introduction refused: ${error.message}`);
      this.emit("bad-introduction", error);
      // Whoever sent it does not hold a valid identity: end its route rather than answer.
      this.decide(from, notice.id, "cancel");
      return;
    }
    let answered = false;
    const once = (): boolean => {
      if (answered) return false;
      answered = true;
      return true;
    };
    const incoming: IncomingIntroduction = {
      from: opened.identity,
      certificateNotAfter: opened.certificate.notAfter,
      slot: point.slot,
      accept: async (options) => {
        if (!once()) throw new PresenceError("bad-argument", "this introduction was already answered");
        this.decide(from, notice.id, "accept");
        const channel = await this.joinRendezvous(point, opened, notice.x, options);
        this.emit("channel", channel);
        return channel;
      },
      refuse: () => {
        if (once()) this.decide(from, notice.id, "refuse");
      },
      cancel: () => {
        if (once()) this.decide(from, notice.id, "cancel");
      },
    };
    if (this.listenerCount("introduction") === 0) {
      incoming.refuse();
      return;
    }
    this.emit("introduction", incoming);
  }

  private async joinRendezvous(point: Point, opened: OpenedIntroduction, x: Uint8Array, options?: PresenceChannelOptions): Promise<PresenceChannel> {
    const node = this.deps.nodes().find((n) => bytesEqual(n.identity, opened.rdv));
    if (!node) throw new PresenceError("rendezvous-failed", "the introducer's rendezvous node is not in this client's consensus");
    const { reply, keySeed } = answerIntroduction({
      authKey: point.authKey,
      encSecret: point.encSecret,
      encKey: point.encKey,
      subcredential: opened.subcredential,
      x,
    });
    const direct = this.announced?.public ?? false;
    const circuit = await this.circuitTo(node, direct);
    try {
      const stream = await circuit.openStream(RENDEZVOUS_SERVICE);
      void stream.closed.then(() => circuit.close());
      const rate = this.announced?.channelRate ?? DEFAULT_CHANNEL_RATE;
      await stream.send(encodeRendezvousMessage({ t: "join", cookie: opened.cookie, reply, rate, burst: rate * 2 }));
      const joined = await deadline(receive(stream, decodeRendezvousMessage, "rendezvous join"), 20_000, "rendezvous join");
      if (joined.t === "refused") throw new PresenceError(joined.kind, `the rendezvous node refused: ${joined.message}`);
      if (joined.t !== "joined") throw new PresenceError("malformed", `the rendezvous node answered "${joined.t}" to a join`);
      return new PresenceChannel(stream, createChannelRatchet({ keySeed, role: "responder" }), opened.identity, { ...options, ...this.channelLogger() });
    } catch (err) {
      circuit.close();
      throw err;
    } finally {
      keySeed.fill(0);
    }
  }

  /**
   * A circuit ending at `node` (one hop when `direct`, unless the node is
   * internal and has no address). A chosen path can run
   * through a relay that died since the consensus was made: such a build is
   * tried again (three times at most) on a fresh path; a direct one is not.
   */
  private async circuitTo(node: PathNode, direct: boolean): Promise<OnionCircuit> {
    // An internal node has no address to dial: it is reached through other hops even when one hop was asked for.
    if (direct && isInternalNode(node)) direct = false;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.deps.buildCircuit(direct ? { path: [node] } : { lastHop: node });
      } catch (err) {
        if (direct || attempt >= 3 || !CircuitError.is(err) || err.category === "bug") throw err;
        logFailure(this.log, err, `build a circuit to ${hexOf(node.identity).slice(0, 16)}… (attempt ${attempt})`, "debug");
      }
    }
  }

  // ---------------------------------------------------------------- looking up

  /**
   * The identity's presence points, freshest first, read from the DHT
   * through a circuit (current period, then the previous one). Rejects with
   * PresenceError "not-found" when none is published.
   */
  async lookup(identity: string): Promise<FoundPoint[]> {
    this.assertOpen();
    let key: Uint8Array;
    try {
      key = parseIdentity(identity).publicKey;
    } catch (err) {
      throw new PresenceError("bad-argument", `not an identity: ${(err as Error).message}`, { cause: err });
    }
    const current = presencePeriod(this.now(), this.periodLength);
    for (const period of [current, current - 1]) {
      const found = await this.lookupPeriod(key, period, 0, DEFAULT_PRESENCE_POINTS);
      if (found.length === 0) continue;
      const wanted = Math.max(...found.map((f) => f.points));
      if (wanted > DEFAULT_PRESENCE_POINTS)
        found.push(...(await this.lookupPeriod(key, period, DEFAULT_PRESENCE_POINTS, Math.min(wanted, MAX_PRESENCE_SLOTS))));
      return found.sort((a, b) => b.issuedAt - a.issuedAt);
    }
    throw new PresenceError("not-found", `no presence record of ${identity.slice(0, 40)}… in the DHT: the user is not announced`);
  }

  private async lookupPeriod(identityKey: Uint8Array, period: number, fromSlot: number, toSlot: number): Promise<FoundPoint[]> {
    const slots = [...Array(toSlot - fromSlot).keys()].map((i) => fromSlot + i);
    const results = await Promise.allSettled(
      slots.map(async (slot) => {
        const location = presenceLocation(identityKey, period, this.periodLength, slot);
        const records = await this.deps.dhtGetAll(location.key);
        for (const record of records) {
          try {
            const point = readPresenceRecord(identityKey, location, record);
            return { ...point, period, subcredential: subcredential(identityKey, location.blinded) } satisfies FoundPoint;
          } catch (err) {
            logFailure(this.log, err, `read presence record of slot ${slot}`, "debug");
          }
        }
        return undefined;
      }),
    );
    const found: FoundPoint[] = [];
    for (const r of results) {
      if (r.status === "fulfilled" && r.value) found.push(r.value);
      else if (r.status === "rejected") logFailure(this.log, r.reason, "presence lookup", "debug");
    }
    // Nothing found because every lookup failed is not "not announced": say why.
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    if (found.length === 0 && failed.length === results.length && failed[0]) {
      const cause = failed[0].reason as unknown;
      throw new PresenceError("unreachable", `the presence lookup failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
    return found;
  }

  // ---------------------------------------------------------------- connecting

  /**
   * Opens a private channel to `identity`: lookup, rendezvous, introduction,
   * the peer's acceptance. Rejects with PresenceError "refused" (the peer
   * said no), "not-found", "unreachable" (no point answered), "timeout".
   */
  async connect(identity: string, options: ConnectOptions = {}): Promise<PresenceChannel> {
    this.assertOpen();
    const timeoutMs = options.timeoutMs ?? 30_000;
    const progress = { phase: "looking up the peer's presence records", timedOut: false };
    const attempt = this.connectOnce(identity, options, progress);
    // A connect that completes after its deadline hands its channel to nobody: close it.
    attempt.then(
      (channel) => progress.timedOut && channel.close(),
      () => undefined,
    );
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        progress.timedOut = true;
        reject(new PresenceError("timeout", `connect to ${identity.slice(0, 40)}…: no channel within ${timeoutMs} ms (still ${progress.phase})`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([attempt, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Lookup, rendezvous and introductions, point by point. When no point could
   * introduce us for a reason that may pass (a point just moved or was
   * replaced, its node died, it was busy), the records are looked up again
   * after a pause, CONNECT_ROUNDS times in all: a peer that is re-registering
   * is reached, and one that is gone fails within seconds, not at the deadline.
   */
  private async connectOnce(identity: string, options: ConnectOptions, progress: { phase: string; timedOut: boolean }): Promise<PresenceChannel> {
    const direct = options.direct ?? false;
    // The rendezvous is set up while the lookup runs: both sit on the connect path.
    const lookingUp = Promise.all([this.deps.certificate(), this.lookup(identity)]);
    const establishing = this.establishRendezvous(direct);
    // A failed lookup leaves nobody to meet: close the rendezvous circuit.
    establishing.then(
      (r) => lookingUp.catch(() => r.circuit.close()),
      () => undefined,
    );
    const looked = await lookingUp;
    const cert = looked[0];
    let found = looked[1];
    progress.phase = "establishing a rendezvous";
    let rendezvous = await establishing;
    try {
      for (let round = 1; ; round++) {
        let lastError: unknown;
        for (const point of found) {
          const node = this.deps.nodes().find((n) => bytesEqual(n.identity, point.node));
          if (!node) {
            lastError = new PresenceError("unreachable", "a presence point's node is not in the consensus");
            continue;
          }
          if (!rendezvous.circuit.isOpen) {
            progress.phase = "establishing a rendezvous again";
            rendezvous = await this.establishRendezvous(direct, [rendezvous.node.identity]);
          }
          try {
            progress.phase = `introducing at presence point ${point.slot}`;
            const clientSecret = await this.introduce(point, node, rendezvous, cert.bytes, direct, options.maxPowEffort ?? DEFAULT_MAX_POW_EFFORT);
            progress.phase = "waiting for the peer to join the rendezvous";
            const joined = await rendezvous.joined;
            if (joined.t === "refused") throw new PresenceError(joined.kind, `the rendezvous node refused: ${joined.message}`);
            if (joined.t !== "joined" || !joined.reply) throw new PresenceError("rendezvous-failed", "the rendezvous node did not pass on the peer's reply");
            const keySeed = finishIntroduction({ authKey: point.authKey, encKey: point.encKey, clientSecret, reply: joined.reply });
            clientSecret.fill(0);
            const channel = new PresenceChannel(rendezvous.stream, createChannelRatchet({ keySeed, role: "initiator" }), identity, {
              ...options.channel,
              ...this.channelLogger(),
            });
            keySeed.fill(0);
            return channel;
          } catch (err) {
            lastError = err;
            // The peer's own refusal ends the attempt; anything else tries the next point.
            if (PresenceError.is(err, "refused", "rendezvous-failed", "bad-argument")) throw err;
            logFailure(this.log, err, `introduction at point ${point.slot}`, "debug");
          }
        }
        if (round >= CONNECT_ROUNDS || progress.timedOut) {
          throw lastError instanceof PresenceError
            ? new PresenceError("unreachable", `no presence point of the peer could introduce us: ${lastError.message}`, { cause: lastError })
            : new PresenceError("unreachable", "no presence point of the peer could introduce us", { cause: lastError });
        }
        progress.phase = `waiting to look the peer up again (round ${round + 1} of ${CONNECT_ROUNDS})`;
        await new Promise((resolve) => setTimeout(resolve, CONNECT_ROUND_PAUSE_MS * round));
        if (progress.timedOut) throw new PresenceError("timeout", "connect gave up at its deadline");
        progress.phase = "looking up the peer's presence records again";
        found = await this.lookup(identity);
      }
    } catch (err) {
      rendezvous.circuit.close();
      throw err;
    }
  }

  /** A rendezvous at a node of our choosing; a node that cannot be reached (it may have died since the consensus) is traded for another, three at most. */
  private async establishRendezvous(direct: boolean, avoid: readonly Uint8Array[] = []): Promise<Rendezvous> {
    const unreachable = [...avoid];
    for (let attempt = 1; ; attempt++) {
      const node = this.pickRendezvous(unreachable);
      let circuit: OnionCircuit;
      try {
        circuit = await this.circuitTo(node, direct);
      } catch (err) {
        if (attempt >= 3 || !CircuitError.is(err) || err.category === "bug") throw err;
        logFailure(this.log, err, `reach rendezvous node ${hexOf(node.identity).slice(0, 16)}… (attempt ${attempt})`, "debug");
        unreachable.push(node.identity);
        continue;
      }
      return await this.establishAt(node, circuit);
    }
  }

  private async establishAt(node: PathNode, circuit: OnionCircuit): Promise<Rendezvous> {
    try {
      const stream = await circuit.openStream(RENDEZVOUS_SERVICE);
      void stream.closed.then(() => circuit.close());
      const cookie = randomBytes(RENDEZVOUS_COOKIE_LEN);
      await stream.send(encodeRendezvousMessage({ t: "establish", cookie }));
      const established = await deadline(receive(stream, decodeRendezvousMessage, "rendezvous establish"), 20_000, "rendezvous establish");
      if (established.t === "refused")
        throw new PresenceError(
          established.kind === "replayed" ? "rendezvous-failed" : established.kind,
          `the rendezvous node refused: ${established.message}`,
        );
      if (established.t !== "established") throw new PresenceError("malformed", `the rendezvous node answered "${established.t}" to establish`);
      const joined = receive(stream, decodeRendezvousMessage, "rendezvous");
      joined.catch(() => undefined);
      return { circuit, stream, node, cookie, joined };
    } catch (err) {
      circuit.close();
      throw err;
    }
  }

  private pickRendezvous(avoid: readonly Uint8Array[]): PathNode {
    const skip = new Set(avoid.map(hexOf));
    const nodes = this.deps.nodes();
    const pool = nodes.filter((n) => !skip.has(hexOf(n.identity)));
    const chosen = (pool.length > 0 ? pool : nodes)[Math.floor(this.random() * (pool.length > 0 ? pool.length : nodes.length))];
    if (!chosen) throw new PresenceError("unreachable", "the consensus lists no node to meet at");
    return chosen;
  }

  /** Sends one introduction (solving a proof of work when the point asks) and resolves with the hs-ntor secret once the point acknowledged it. */
  private async introduce(
    point: FoundPoint,
    node: PathNode,
    rendezvous: { node: PathNode; cookie: Uint8Array },
    cert: Uint8Array,
    direct: boolean,
    maxEffort: number,
  ): Promise<Uint8Array> {
    let pow: IntroduceRequest["pow"];
    for (let round = 0; round < 3; round++) {
      const built = buildIntroduction({
        authKey: point.authKey,
        encKey: point.encKey,
        subcredential: point.subcredential,
        identity: this.deps.identity.text,
        identitySecret: this.deps.identity.secretKey,
        cert,
        rdv: rendezvous.node.identity,
        cookie: rendezvous.cookie,
        now: this.now(),
      });
      const circuit = await this.circuitTo(node, direct);
      let reply;
      try {
        const stream = await circuit.openStream(INTRODUCE_SERVICE);
        await stream.send(encodeIntroduceRequest({ ...built.request, ...(pow ? { pow } : {}) }));
        reply = await deadline(receive(stream, decodeIntroduceReply, "introduction"), 35_000, "introduction");
      } finally {
        circuit.close();
      }
      if (reply.t === "ack") return built.clientSecret;
      built.clientSecret.fill(0);
      if (reply.kind === "pow-required" && reply.pow && reply.pow.effort <= maxEffort) {
        pow = await solvePow(point.authKey, reply.pow.seed, reply.pow.effort);
        continue;
      }
      throw new PresenceError(reply.kind, `the presence point refused the introduction: ${reply.message}`);
    }
    throw new PresenceError("busy", "the presence point kept asking for more proof of work");
  }

  /** Ends every point, its circuits and timers. Channels already open stay open. */
  close(): void {
    if (this.closed) return;
    this.withdraw();
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new PresenceError("closed", "the presence client was closed");
  }
}

/**
 * Solves a proof of work one Equi-X attempt at a time, yielding to the event
 * loop between attempts so circuits keep running (each attempt takes about
 * a third of a second of JavaScript here).
 */
async function solvePow(authKey: Uint8Array, seed: Uint8Array, effort: number): Promise<NonNullable<IntroduceRequest["pow"]>> {
  let nonce = randomBytes(16);
  for (;;) {
    try {
      const s = powSolve({ seed, serviceBlindedId: authKey, effort, nonce, maxAttempts: 1 });
      return { nonce: s.nonce, effort: s.effort, seedHead: s.seedHead, solution: s.proof };
    } catch (err) {
      if (!CryptoError.is(err, "pow-effort-failed")) throw err;
    }
    nonce = incremented(nonce);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

function incremented(nonce: Uint8Array): Uint8Array {
  const next = nonce.slice();
  for (let i = 0; i < next.length; i++) {
    next[i] = ((next[i] as number) + 1) & 0xff;
    if (next[i] !== 0) break;
  }
  return next;
}

/**
 * The presence node's side (docs/spec/presence.md): the "presence" service
 * where a user registers a presence point over its circuit, and the
 * "introduce" service where anyone asks to be introduced to that point
 * (docs/spec/presence.md "Presence node").
 *
 * A registration reveals the user's identity to this node only (the user
 * reaches it through a circuit, so the node does not learn where the user
 * is). The node checks the user's access certificate and signature, that
 * the presence record it is handed is the identity's for this period, slot
 * and node, co-signs the record and publishes it into the DHT. Renewals
 * over the same stream keep it alive; when the stream ends the point is
 * gone (its record expires on its own).
 *
 * An introduction names a point by its introduction key. It is forwarded
 * over the user's presence stream without this node learning who sent it
 * (the body is encrypted to the user), and held until the user decides:
 * accept or refuse answer the introducer, cancel tears its route down. The
 * user's limits hold here: pending introductions, introductions over the
 * point's life (channels), introductions per second; a point that reaches
 * one is told once ("notice"). Introductions that must wait queue by the
 * effort of their proof of work (pow.ts); a replayed introduction (same
 * handshake key) or proof is dropped.
 *
 * Trusts: the certificate check and DHT publisher it is given; nothing in
 * any message until checked.
 */
import { unrefTimer } from "../base/timeout.js";
import type { CancellableTimer, SetTimer } from "../base/timeout.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { parseIdentity } from "../crypto/identity.js";
import { ed25519Verify } from "../crypto/ed25519.js";
import { DhtError } from "../dht/errors.js";
import type { DhtRecord, OwnerSignedRecord } from "../dht/record.js";
import { DestroyReason, EndReason } from "../onion/constants.js";
import { TokenBucket } from "../base/token-bucket.js";
import type { LocalService, ServiceHandler, ServiceStream } from "../onion/types.js";
import { hexOf } from "../base/hex.js";
import { PresenceError } from "./errors.js";
import type { PresenceErrorKind } from "./errors.js";
import type { IntroducerCertificate } from "./introduction.js";
import { decodeIntroduceRequest, decodePresenceRequest, encodeIntroduceReply, encodePresenceNotice, registrationSigningPayload } from "./messages.js";
import type { CapName, IntroduceReply, IntroduceRequest, PresenceLimits, PresenceNotice, PresenceRequest } from "./messages.js";
import { PowQueue } from "./pow.js";
import { presenceLocation, presencePeriod, readPresenceRecord } from "./record.js";

export const PRESENCE_SERVICE = "presence";
export const INTRODUCE_SERVICE = "introduce";

export interface PresenceNodeLimits {
  /** Presence points this node holds at once. */
  maxRegistrations: number;
  /** Caps on what a registration may ask for. */
  maxPendingPerPoint: number;
  maxIntrosPerSecond: number;
  /** Longest record lifetime accepted (renewals keep it going). */
  maxRecordTtlMs: number;
  /** How long an introduction waits for the user's decision. */
  decisionTimeoutMs: number;
  /** Introductions waiting for a rate token per point (the PoW priority queue). */
  queueCapacity: number;
  /** Clock window for registrations. */
  maxSkewMs: number;
  /** Introduction handshake keys remembered per point, to drop replays. */
  replayCacheSize: number;
}

export const DEFAULT_PRESENCE_NODE_LIMITS: PresenceNodeLimits = {
  maxRegistrations: 10_000,
  maxPendingPerPoint: 64,
  maxIntrosPerSecond: 100,
  maxRecordTtlMs: 15 * 60_000,
  decisionTimeoutMs: 30_000,
  queueCapacity: 64,
  maxSkewMs: 5 * 60_000,
  replayCacheSize: 4096,
};

export interface PresenceNodeOptions {
  /** This node's identity key (registrations must name it). */
  nodeKey: Uint8Array;
  /** Co-signs and publishes a presence record; resolves with how many DHT nodes stored it. */
  publish: (record: OwnerSignedRecord) => Promise<{ stored: number; record: DhtRecord }>;
  /** Checks a user's access certificate against the current authorities; throws for a bad one. */
  verifyCertificate: (cert: Uint8Array) => IntroducerCertificate;
  /** Sends what services queued outside the relay's own round (startNode: `() => driver.run(() => undefined)`). */
  flush?: () => void;
  limits?: Partial<PresenceNodeLimits>;
  /** Monotonic clock, ms (default performance.now). */
  now?: () => number;
  /** Wall clock, ms since the epoch (default Date.now). */
  wallClock?: () => number;
  logger?: Logger;
  /** Timers (tests drive them by hand). */
  setTimer?: SetTimer;
}

export interface PresenceNodeStats {
  registrations: number;
  registered: number;
  refusedRegistrations: number;
  renewals: number;
  introductions: number;
  delivered: number;
  accepted: number;
  refused: number;
  cancelled: number;
  timedOut: number;
  replayed: number;
  capReached: number;
  queued: number;
  powRequired: number;
  powInvalid: number;
  unknownPoint: number;
}

interface Pending {
  id: number;
  stream: ServiceStream;
  effort: number;
  timer?: CancellableTimer;
  state: "queued" | "delivered" | "done";
  request: IntroduceRequest;
}

interface Registration {
  stream: ServiceStream;
  identity: string;
  identityKey: Uint8Array;
  authKey: Uint8Array;
  authHex: string;
  slot: number;
  blinded: Uint8Array;
  period: number;
  periodLength: number;
  limits: PresenceLimits;
  bucket: TokenBucket;
  certNotAfter: number;
  pending: Map<number, Pending>;
  queue: PowQueue<Pending>;
  delivered: number;
  seenHandshakes: Set<string>;
  notified: Set<CapName>;
  drainTimer?: CancellableTimer;
  closed: boolean;
}

export interface PresenceNode {
  readonly services: { [PRESENCE_SERVICE]: LocalService; [INTRODUCE_SERVICE]: LocalService };
  readonly stats: PresenceNodeStats;
  /** Presence points held now. */
  readonly points: number;
  /** Ends every registration and pending introduction. */
  close(): void;
}

export function createPresenceNode(options: PresenceNodeOptions): PresenceNode {
  const limits: PresenceNodeLimits = { ...DEFAULT_PRESENCE_NODE_LIMITS, ...options.limits };
  const now = options.now ?? (() => performance.now());
  const wallClock = options.wallClock ?? Date.now;
  const flush = options.flush ?? (() => undefined);
  const log = childLogger(options.logger, "presence");
  const setTimer = options.setTimer ?? unrefTimer;
  const stats: PresenceNodeStats = {
    registrations: 0,
    registered: 0,
    refusedRegistrations: 0,
    renewals: 0,
    introductions: 0,
    delivered: 0,
    accepted: 0,
    refused: 0,
    cancelled: 0,
    timedOut: 0,
    replayed: 0,
    capReached: 0,
    queued: 0,
    powRequired: 0,
    powInvalid: 0,
    unknownPoint: 0,
  };
  const byAuthKey = new Map<string, Registration>();
  /** Signatures of registrations seen within the clock window: a registration is accepted once. */
  const seenRegistrations = new Map<string, number>();
  const rememberRegistration = (sig: Uint8Array, wall: number): boolean => {
    for (const [key, until] of seenRegistrations) {
      if (until > wall && seenRegistrations.size < limits.maxRegistrations * 4) break;
      seenRegistrations.delete(key);
    }
    const key = hexOf(sig);
    if (seenRegistrations.has(key)) return false;
    seenRegistrations.set(key, wall + 2 * limits.maxSkewMs);
    return true;
  };
  let nextIntroId = 1;
  let closed = false;

  const notify = (reg: Registration, notice: PresenceNotice): void => {
    if (reg.closed) return;
    try {
      reg.stream.send(encodePresenceNotice(notice));
    } catch (err) {
      // The user's circuit cannot take more: it is not reading. Its point goes
      // (ending the stream ourselves does not call our onEnd, so close it here).
      logFailure(log, err, "notify presence point", "debug");
      closeRegistration(reg, "its stream cannot take more");
      reg.stream.end(EndReason.RESOURCELIMIT);
    }
  };

  const refuseRegistration = (stream: ServiceStream, kind: PresenceErrorKind, message: string): void => {
    stats.refusedRegistrations++;
    log.debug({ kind }, `presence registration refused: ${message}`);
    try {
      stream.send(encodePresenceNotice({ t: "refused", kind, message }));
    } catch {
      stream.end(EndReason.RESOURCELIMIT);
    }
  };

  // ---------------------------------------------------------------- introductions

  const answer = (p: Pending, reply: IntroduceReply): void => {
    if (p.state === "done") return;
    p.state = "done";
    p.timer?.cancel();
    try {
      p.stream.send(encodeIntroduceReply(reply));
    } catch {
      // The introducer's stream is gone or full; ending it is all that is left.
    }
    p.stream.end(EndReason.DONE);
  };

  const noticeOnce = (reg: Registration, cap: CapName, limit: number): void => {
    stats.capReached++;
    if (reg.notified.has(cap)) return;
    reg.notified.add(cap);
    notify(reg, { t: "notice", cap, limit });
  };

  const deliver = (reg: Registration, p: Pending): void => {
    p.state = "delivered";
    reg.pending.set(p.id, p);
    reg.delivered++;
    stats.delivered++;
    notify(reg, { t: "introduce", id: p.id, x: p.request.x, ct: p.request.ct, mac: p.request.mac, effort: p.effort });
    if (reg.closed) return; // the notice could not be sent: the point closed and answered p
    p.timer = setTimer(() => {
      if (p.state !== "delivered") return;
      reg.pending.delete(p.id);
      stats.timedOut++;
      answer(p, { t: "refused", kind: "timeout", message: "the user did not answer in time" });
      pump(reg);
      flush();
    }, limits.decisionTimeoutMs);
  };

  /** Delivers queued introductions while the point's rate and pending cap allow; re-arms itself for the next token. */
  const pump = (reg: Registration): void => {
    if (reg.closed) return;
    while (reg.queue.length > 0) {
      if (reg.delivered >= reg.limits.maxChannels) {
        // The point took all the channels its user allows: nothing waiting can be delivered any more.
        noticeOnce(reg, "channels", reg.limits.maxChannels);
        for (const p of reg.queue.drain())
          answer(p, { t: "refused", kind: "cap-reached", message: "this presence point has taken all the channels its user allows: try another point" });
        return;
      }
      if (reg.pending.size >= reg.limits.maxPending) return;
      const t = now();
      if (!reg.bucket.tryTake(1, t)) {
        if (!reg.drainTimer) {
          const wait = Math.max(1, reg.bucket.readyAt(1, t) - t);
          reg.drainTimer = setTimer(() => {
            reg.drainTimer = undefined;
            pump(reg);
            flush();
          }, wait);
        }
        return;
      }
      const next = reg.queue.dequeue(t);
      if (next) deliver(reg, next);
    }
  };

  const handleIntroduction = (stream: ServiceStream, bytes: Uint8Array): Pending | undefined => {
    stats.introductions++;
    const refuse = (kind: PresenceErrorKind, message: string, pow?: { seed: Uint8Array; effort: number }): undefined => {
      try {
        stream.send(encodeIntroduceReply({ t: "refused", kind, message, ...(pow ? { pow } : {}) }));
      } catch {
        // nothing more to say to it
      }
      stream.end(EndReason.DONE);
      return undefined;
    };
    let request: IntroduceRequest;
    try {
      request = decodeIntroduceRequest(bytes);
    } catch (err) {
      return refuse("malformed", (err as Error).message);
    }
    const reg = byAuthKey.get(hexOf(request.authKey));
    if (!reg || reg.closed) {
      stats.unknownPoint++;
      return refuse("unknown-presence", "no presence point with that introduction key is held here");
    }
    if (wallClock() / 1000 >= reg.certNotAfter + limits.maxSkewMs / 1000) {
      // The user's certificate ran out and was not renewed: the point no longer speaks for anyone.
      closeRegistration(reg, "its access certificate expired");
      reg.stream.end(EndReason.DONE);
      stats.unknownPoint++;
      return refuse("unknown-presence", "no presence point with that introduction key is held here");
    }
    const t = now();
    const handshake = hexOf(request.x);
    if (reg.seenHandshakes.has(handshake)) {
      stats.replayed++;
      return refuse("replayed", "this introduction was seen before");
    }
    let effort = 0;
    if (request.pow) {
      const checked = reg.queue.check(request.authKey, request.pow, t);
      if (!checked.ok) {
        if (checked.reason === "replayed") stats.replayed++;
        else stats.powInvalid++;
        return refuse(checked.reason, checked.message, reg.queue.params(t));
      }
      effort = checked.effort;
    }
    reg.seenHandshakes.add(handshake);
    if (reg.seenHandshakes.size > limits.replayCacheSize) {
      // Bounded: the oldest handshake key goes (Sets iterate in insertion order).
      const oldest = reg.seenHandshakes.values().next().value as string;
      reg.seenHandshakes.delete(oldest);
    }
    // Queued introductions count too: each may yet be delivered, and delivery does not check the cap again.
    if (reg.delivered + reg.queue.length >= reg.limits.maxChannels) {
      noticeOnce(reg, "channels", reg.limits.maxChannels);
      return refuse("cap-reached", "this presence point has taken all the channels its user allows: try another point");
    }
    const pending: Pending = { id: nextIntroId++ >>> 0, stream, effort, state: "queued", request };
    if (reg.queue.length === 0 && reg.pending.size < reg.limits.maxPending && reg.bucket.tryTake(1, t)) {
      deliver(reg, pending);
      return pending;
    }
    if (reg.pending.size >= reg.limits.maxPending) noticeOnce(reg, "pending", reg.limits.maxPending);
    else noticeOnce(reg, "rate", reg.limits.introsPerSecond);
    if (reg.closed) return refuse("unknown-presence", "the presence point closed");
    const queued = reg.queue.enqueue(pending, effort, t);
    if (!queued.queued) {
      stats.powRequired++;
      return refuse("pow-required", "this presence point is busy: retry with a proof of work of the effort given", reg.queue.params(t));
    }
    stats.queued++;
    if (queued.displaced) {
      stats.powRequired++;
      answer(queued.displaced, { t: "refused", kind: "pow-required", message: "displaced by introductions with more proof of work", pow: reg.queue.params(t) });
    }
    pump(reg);
    return pending;
  };

  const introduceService: LocalService = (stream) => {
    if (closed) return EndReason.RESOURCELIMIT;
    let mine: Pending | undefined;
    let got = false;
    /** The introducer went away: its introduction leaves the queue or the user's pending set. */
    const withdraw = (): void => {
      if (!mine || mine.state === "done") return;
      const reg = byAuthKey.get(hexOf(mine.request.authKey));
      mine.state = "done";
      mine.timer?.cancel();
      if (reg) {
        reg.pending.delete(mine.id);
        reg.queue.remove(mine);
        pump(reg);
      }
    };
    const handler: ServiceHandler = {
      onMessage(message) {
        if (got) {
          // One introduction per stream. Ending it ourselves does not call onEnd: withdraw here.
          withdraw();
          stream.end(EndReason.PROTOCOL);
          return;
        }
        got = true;
        mine = handleIntroduction(stream, message);
      },
      onEnd() {
        withdraw();
      },
    };
    return handler;
  };

  // ---------------------------------------------------------------- registrations

  const closeRegistration = (reg: Registration, reason: string): void => {
    if (reg.closed) return;
    reg.closed = true;
    reg.drainTimer?.cancel();
    if (byAuthKey.get(reg.authHex) === reg) byAuthKey.delete(reg.authHex);
    for (const p of [...reg.pending.values(), ...reg.queue.drain()])
      answer(p, { t: "refused", kind: "unknown-presence", message: "the presence point closed" });
    reg.pending.clear();
    log.debug({ slot: reg.slot }, `presence point closed: ${reason}`);
  };

  /** Checks a record handed in for `reg` (register or renew) and returns its expiry. */
  const checkRecord = (identityKey: Uint8Array, period: number, periodLength: number, slot: number, authKey: Uint8Array, record: OwnerSignedRecord): void => {
    const location = presenceLocation(identityKey, period, periodLength, slot);
    const point = readPresenceRecord(identityKey, location, record);
    if (hexOf(point.node) !== hexOf(options.nodeKey)) throw new PresenceError("wrong-binding", "the presence record names another presence node");
    if (hexOf(point.authKey) !== hexOf(authKey))
      throw new PresenceError("wrong-binding", "the presence record carries another introduction key than the registration");
    const wall = wallClock();
    if (record.expiresAt <= wall) throw new PresenceError("stale", "the presence record has already expired");
    if (record.expiresAt > wall + limits.maxRecordTtlMs + limits.maxSkewMs) {
      throw new PresenceError("malformed", `the presence record lives longer than ${limits.maxRecordTtlMs / 60_000} minutes: renew more often`);
    }
  };

  const checkCertificate = (cert: Uint8Array, identity: string, identityKey: Uint8Array): IntroducerCertificate => {
    let checked: IntroducerCertificate;
    try {
      checked = options.verifyCertificate(cert);
    } catch (err) {
      throw new PresenceError("bad-certificate", `access certificate refused: ${(err as Error).message}`, { cause: err });
    }
    if (checked.identity !== identity || hexOf(checked.key) !== hexOf(identityKey))
      throw new PresenceError("bad-certificate", "the access certificate is for another identity");
    return checked;
  };

  const publish = async (reg: Registration, record: OwnerSignedRecord): Promise<void> => {
    const published = await options.publish(record);
    if (reg.closed) return;
    notify(reg, { t: "registered", expiresAt: published.record.expiresAt, stored: published.stored });
  };

  const register = async (stream: ServiceStream, r: Extract<PresenceRequest, { t: "register" }>, existing: Registration | undefined): Promise<Registration> => {
    if (hexOf(r.node) !== hexOf(options.nodeKey)) throw new PresenceError("wrong-binding", "the registration names another presence node");
    const wall = wallClock();
    if (Math.abs(r.time - wall) > limits.maxSkewMs) throw new PresenceError("stale", "the registration's time is too far from this node's clock");
    let identityKey: Uint8Array;
    try {
      identityKey = parseIdentity(r.identity).publicKey;
    } catch (err) {
      throw new PresenceError("malformed", `registration names a malformed identity: ${(err as Error).message}`, { cause: err });
    }
    const cert = checkCertificate(r.cert, r.identity, identityKey);
    if (!ed25519Verify(identityKey, registrationSigningPayload(r), r.sig))
      throw new PresenceError("bad-signature", "the registration is not signed by its identity");
    if (!rememberRegistration(r.sig, wall)) throw new PresenceError("replayed", "this registration was received before");
    const current = presencePeriod(wall, r.periodLength);
    if (Math.abs(r.period - current) > 1)
      throw new PresenceError("wrong-binding", `the registration is for period ${r.period}; this node is in period ${current}`);
    checkRecord(identityKey, r.period, r.periodLength, r.slot, r.authKey, r.record);
    if (r.limits.maxPending < 1 || r.limits.maxChannels < 1 || r.limits.introsPerSecond < 1 || r.limits.introBurst < 1) {
      throw new PresenceError("malformed", "registration limits must each be at least 1");
    }
    const authHex = hexOf(r.authKey);
    if (existing && existing.authHex !== authHex)
      throw new PresenceError("wrong-binding", "a presence stream holds one point: open another stream for another introduction key");
    const holder = byAuthKey.get(authHex);
    if (holder && holder !== existing) {
      if (holder.identity !== r.identity) throw new PresenceError("wrong-binding", "that introduction key is registered by another identity");
      // The same user moved its point to a new circuit: the old stream's registration ends.
      closeRegistration(holder, "re-registered on another stream");
    }
    if (!existing && byAuthKey.size >= limits.maxRegistrations)
      throw new PresenceError("cap-reached", "this node holds as many presence points as it serves: use another node");
    const rate = Math.min(r.limits.introsPerSecond, limits.maxIntrosPerSecond);
    const reg: Registration = existing ?? {
      stream,
      identity: r.identity,
      identityKey,
      authKey: r.authKey,
      authHex,
      slot: r.slot,
      blinded: r.record.owner,
      period: r.period,
      periodLength: r.periodLength,
      limits: { ...r.limits, maxPending: Math.min(r.limits.maxPending, limits.maxPendingPerPoint), introsPerSecond: rate },
      bucket: new TokenBucket({ bytesPerSecond: rate, burstBytes: Math.max(1, r.limits.introBurst), now: now() }),
      certNotAfter: cert.notAfter,
      pending: new Map(),
      queue: new PowQueue<Pending>({ capacity: limits.queueCapacity, now: now() }),
      delivered: 0,
      seenHandshakes: new Set(),
      notified: new Set(),
      closed: false,
    };
    // A re-registration on the same stream moves the point to a new period (or slot record).
    reg.slot = r.slot;
    reg.blinded = r.record.owner;
    reg.period = r.period;
    reg.periodLength = r.periodLength;
    reg.certNotAfter = cert.notAfter;
    byAuthKey.set(authHex, reg);
    return reg;
  };

  const renew = (reg: Registration, r: Extract<PresenceRequest, { t: "renew" }>): void => {
    if (r.cert) reg.certNotAfter = checkCertificate(r.cert, reg.identity, reg.identityKey).notAfter;
    else if (wallClock() / 1000 >= reg.certNotAfter + limits.maxSkewMs / 1000)
      throw new PresenceError("bad-certificate", "the access certificate of this point expired: renew with a fresh one");
    checkRecord(reg.identityKey, reg.period, reg.periodLength, reg.slot, reg.authKey, r.record);
    if (hexOf(r.record.owner) !== hexOf(reg.blinded))
      throw new PresenceError("wrong-binding", "renewals keep the registered period's key: register again for a new period");
  };

  const presenceService: LocalService = (stream) => {
    if (closed) return EndReason.RESOURCELIMIT;
    let reg: Registration | undefined;
    let chain = Promise.resolve();
    const run = (task: () => Promise<void>): void => {
      chain = chain.then(task).then(flush, (err: unknown) => {
        logFailure(log, err, "presence request");
        flush();
      });
    };
    stats.registrations++;
    const handler: ServiceHandler = {
      onMessage(message) {
        let request: PresenceRequest;
        try {
          request = decodePresenceRequest(message);
        } catch (err) {
          refuseRegistration(stream, "malformed", (err as Error).message);
          return;
        }
        if (request.t === "decide" || request.t === "cancel") {
          const p = reg?.pending.get(request.id);
          if (!reg || !p) return; // already answered, timed out or gone
          reg.pending.delete(request.id);
          if (request.t === "cancel") {
            stats.cancelled++;
            p.state = "done";
            p.timer?.cancel();
            p.stream.destroyCircuit(DestroyReason.REQUESTED);
          } else if (request.accept) {
            stats.accepted++;
            answer(p, { t: "ack" });
          } else {
            stats.refused++;
            answer(p, { t: "refused", kind: "refused", message: "the user refused the introduction" });
          }
          pump(reg);
          return;
        }
        run(async () => {
          try {
            if (request.t === "register") {
              reg = await register(stream, request, reg);
              stats.registered++;
              await publish(reg, request.record);
            } else {
              if (!reg || reg.closed) throw new PresenceError("unknown-presence", "renew before register: register this point first");
              renew(reg, request);
              stats.renewals++;
              await publish(reg, request.record);
            }
          } catch (err) {
            if (err instanceof PresenceError) return refuseRegistration(stream, err.kind, err.message);
            if (DhtError.is(err, "stale-sequence"))
              return refuseRegistration(stream, "replayed", `the DHT holds a newer version of this record: ${err.message}`);
            if (DhtError.is(err) && err.category === "peer") return refuseRegistration(stream, "record-invalid", `the DHT refuses the record: ${err.message}`);
            refuseRegistration(stream, "busy", `the record could not be published: ${(err as Error).message}`);
            logFailure(log, err, "publish presence record");
          }
        });
      },
      onEnd() {
        if (reg) closeRegistration(reg, "its stream ended");
      },
    };
    return handler;
  };

  return {
    services: { [PRESENCE_SERVICE]: presenceService, [INTRODUCE_SERVICE]: introduceService },
    stats,
    get points() {
      return byAuthKey.size;
    },
    close() {
      closed = true;
      for (const reg of [...byAuthKey.values()]) {
        closeRegistration(reg, "the node is stopping");
        reg.stream.end(EndReason.DONE);
      }
      flush();
    },
  };
}

/**
 * The presence node's services (node/src/presence/presence-node.ts) over
 * fake ServiceStreams, with a fake publisher and certificate check and the
 * clock and timers driven by hand: registrations (published and answered,
 * or refused with their kind and nothing published), introductions
 * (delivery, accept, refuse, cancel, timeout, replay), the user's caps and
 * rate with the PoW queue, and what happens when either side goes away.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { powSolve } from "../../../node/src/crypto/equix.js";
import { ed25519Sign, generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { generateX25519KeyPair } from "../../../node/src/crypto/x25519.js";
import { coSignRecord } from "../../../node/src/dht/record.js";
import type { OwnerSignedRecord } from "../../../node/src/dht/record.js";
import { DestroyReason, EndReason } from "../../../node/src/onion/constants.js";
import type { IntroducerCertificate } from "../../../node/src/presence/introduction.js";
import {
  decodeIntroduceReply,
  decodePresenceNotice,
  encodeIntroduceRequest,
  encodePresenceRequest,
  registrationSigningPayload,
} from "../../../node/src/presence/messages.js";
import type { IntroduceReply, IntroduceRequest, PresenceLimits, PresenceNotice, PresenceRequest, PowProof } from "../../../node/src/presence/messages.js";
import { createPresenceNode, DEFAULT_PRESENCE_NODE_LIMITS } from "../../../node/src/presence/presence-node.js";
import type { PresenceNodeLimits } from "../../../node/src/presence/presence-node.js";
import { presencePeriod, signPresenceRecord } from "../../../node/src/presence/record.js";
import { FakeServiceStream, hex, makeUser, ManualClock } from "./helpers.js";
import type { User } from "./helpers.js";

const PERIOD_LENGTH = 1440;
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
const bytes = (n: number) => new Uint8Array(randomBytes(n));

type Register = Extract<PresenceRequest, { t: "register" }>;

interface RegisterOptions {
  user?: User;
  signer?: Uint8Array;
  node?: Uint8Array;
  time?: number;
  period?: number;
  slot?: number;
  authKey?: Uint8Array;
  cert?: Uint8Array;
  limits?: Partial<PresenceLimits>;
  /** What the record itself says, when it should disagree with the registration. */
  record?: { slot?: number; authKey?: Uint8Array; node?: Uint8Array; period?: number; ttlMs?: number; user?: User };
}

function setup(o: { limits?: Partial<PresenceNodeLimits>; publishFails?: boolean } = {}) {
  const clock = new ManualClock();
  const nodeKeys = generateEd25519KeyPair();
  const published: OwnerSignedRecord[] = [];
  /** Certificates are opaque: "cert:<identity>[:<notAfter seconds>]"; anything else is refused. */
  const users = new Map<string, User>();
  const certFor = (user: User, notAfterSeconds = Math.floor(clock.wall / 1000) + 3600) => {
    users.set(user.text, user);
    return new TextEncoder().encode(`cert:${user.text}:${notAfterSeconds}`);
  };
  const verifyCertificate = (cert: Uint8Array): IntroducerCertificate => {
    const [tag, identity, notAfter] = new TextDecoder().decode(cert).split(":");
    const user = users.get(identity ?? "");
    if (tag !== "cert" || !user) throw new Error("certificate refused");
    if (Number(notAfter) <= clock.wall / 1000) throw new Error("certificate expired");
    return { identity: user.text, key: user.publicKey, notAfter: Number(notAfter) };
  };
  const presence = createPresenceNode({
    nodeKey: nodeKeys.publicKey,
    publish: async (record) => {
      if (o.publishFails) throw new Error("the DHT is not running");
      published.push(record);
      return { stored: 3, record: coSignRecord(record, nodeKeys.secretKey) };
    },
    verifyCertificate,
    limits: o.limits ?? {},
    now: clock.now,
    wallClock: clock.wallClock,
    setTimer: clock.setTimer,
  });

  const registerRequest = (r: RegisterOptions = {}): Register => {
    const user = r.user ?? makeUser();
    const wall = clock.wall;
    const period = r.period ?? presencePeriod(wall, PERIOD_LENGTH);
    const authKey = r.authKey ?? generateEd25519KeyPair().publicKey;
    const slot = r.slot ?? 0;
    const rec = r.record ?? {};
    const recordUser = rec.user ?? user;
    const record = signPresenceRecord({
      identitySecret: recordUser.secretKey,
      identityKey: recordUser.publicKey,
      period: rec.period ?? period,
      periodLength: PERIOD_LENGTH,
      slot: rec.slot ?? slot,
      point: { node: rec.node ?? nodeKeys.publicKey, authKey: rec.authKey ?? authKey, encKey: generateX25519KeyPair().publicKey, flags: 0, points: 3, issuedAt: wall },
      seq: wall,
      expiresAt: wall + (rec.ttlMs ?? 10 * 60_000),
    });
    const unsigned: Register = {
      t: "register",
      node: r.node ?? nodeKeys.publicKey,
      identity: user.text,
      cert: r.cert ?? certFor(user),
      period,
      periodLength: PERIOD_LENGTH,
      slot,
      authKey,
      record,
      limits: { maxPending: 8, maxChannels: 100, introsPerSecond: 50, introBurst: 50, ...r.limits },
      time: r.time ?? wall,
      sig: new Uint8Array(64),
    };
    return { ...unsigned, sig: ed25519Sign(r.signer ?? user.secretKey, registrationSigningPayload(unsigned)) };
  };

  /** Opens a presence stream and sends `request`; resolves once the node answered (or not). */
  const register = async (request: Register = registerRequest(), stream = new FakeServiceStream("presence").open(presence.services.presence)) => {
    stream.receive(encodePresenceRequest(request));
    await settle();
    return { stream, request, notices: () => stream.sent.map(decodePresenceNotice) };
  };

  /** A registered point: its user stream and introduction key. */
  const point = async (limits: Partial<PresenceLimits> = {}, user = makeUser()) => {
    const r = await register(registerRequest({ user, limits }));
    expect(r.notices()).toEqual([expect.objectContaining({ t: "registered" })]);
    r.stream.sent.length = 0;
    return { ...r, user, authKey: r.request.authKey };
  };

  /** Opens an introduce stream and sends one introduction to `authKey`. */
  const introduce = (authKey: Uint8Array, extra: Partial<IntroduceRequest> = {}) => {
    const stream = new FakeServiceStream("introduce").open(presence.services.introduce);
    const request: IntroduceRequest = { t: "introduce", authKey, x: bytes(32), ct: bytes(40), mac: bytes(32), ...extra };
    stream.receive(encodeIntroduceRequest(request));
    return { stream, request, replies: (): IntroduceReply[] => stream.sent.map(decodeIntroduceReply) };
  };

  /** What the user's presence stream received. */
  const noticesOf = (stream: FakeServiceStream): PresenceNotice[] => stream.sent.map(decodePresenceNotice);
  const introductionsTo = (stream: FakeServiceStream) => noticesOf(stream).filter((n): n is Extract<PresenceNotice, { t: "introduce" }> => n.t === "introduce");
  const decide = (stream: FakeServiceStream, request: PresenceRequest) => stream.receive(encodePresenceRequest(request));

  return { clock, nodeKeys, presence, published, certFor, registerRequest, register, point, introduce, noticesOf, introductionsTo, decide };
}

const replyKind = (reply: IntroduceReply | undefined) => (reply?.t === "refused" ? reply.kind : reply?.t);
const refusalOf = (notices: PresenceNotice[]) => notices.map((n) => (n.t === "refused" ? n.kind : n.t));

describe("presence node: registration", () => {
  it("a valid registration is published and answered registered with the DHT's answer", async () => {
    const t = setup();
    const { request, notices } = await t.register();
    expect(t.published).toHaveLength(1);
    expect(hex(t.published[0]!.ownerSig)).toBe(hex(request.record.ownerSig));
    expect(notices()).toEqual([{ t: "registered", expiresAt: request.record.expiresAt, stored: 3 }]);
    expect(t.presence.points).toBe(1);
    expect(t.presence.stats.registered).toBe(1);
  });

  const refusals: [string, string, (t: ReturnType<typeof setup>) => Register][] = [
    ["names another presence node", "wrong-binding", (t) => t.registerRequest({ node: generateEd25519KeyPair().publicKey })],
    ["is dated outside the clock window", "stale", (t) => t.registerRequest({ time: t.clock.wall - DEFAULT_PRESENCE_NODE_LIMITS.maxSkewMs - 1 })],
    ["is dated in the future beyond the window", "stale", (t) => t.registerRequest({ time: t.clock.wall + DEFAULT_PRESENCE_NODE_LIMITS.maxSkewMs + 1 })],
    ["carries a certificate the check refuses", "bad-certificate", (t) => t.registerRequest({ cert: new TextEncoder().encode("forged") })],
    ["carries another identity's certificate", "bad-certificate", (t) => t.registerRequest({ cert: t.certFor(makeUser()) })],
    ["is signed by another key", "bad-signature", (t) => t.registerRequest({ signer: generateEd25519KeyPair().secretKey })],
    ["is for a period two away", "wrong-binding", (t) => t.registerRequest({ period: presencePeriod(t.clock.wall, PERIOD_LENGTH) + 2 })],
    ["hands a record of another slot", "record-invalid", (t) => t.registerRequest({ slot: 1, record: { slot: 2 } })],
    ["hands a record of another period", "record-invalid", (t) => t.registerRequest({ record: { period: presencePeriod(t.clock.wall, PERIOD_LENGTH) + 1 } })],
    ["hands another identity's record", "record-invalid", (t) => t.registerRequest({ record: { user: makeUser() } })],
    ["hands a record with another introduction key", "wrong-binding", (t) => t.registerRequest({ record: { authKey: generateEd25519KeyPair().publicKey } })],
    ["hands a record naming another presence node", "wrong-binding", (t) => t.registerRequest({ record: { node: generateEd25519KeyPair().publicKey } })],
    ["hands a record that lives too long", "malformed", (t) => t.registerRequest({ record: { ttlMs: DEFAULT_PRESENCE_NODE_LIMITS.maxRecordTtlMs + DEFAULT_PRESENCE_NODE_LIMITS.maxSkewMs + 1 } })],
    ["hands a record that already expired", "stale", (t) => t.registerRequest({ record: { ttlMs: 0 } })],
    ["asks for a zero limit", "malformed", (t) => t.registerRequest({ limits: { maxChannels: 0 } })],
  ];
  for (const [what, kind, make] of refusals) {
    it(`a registration that ${what} is refused ${kind} and nothing is published`, async () => {
      const t = setup();
      const { notices, stream } = await t.register(make(t));
      expect(refusalOf(notices())).toEqual([kind]);
      expect(t.published).toHaveLength(0);
      expect(t.presence.points).toBe(0);
      // The stream stays usable: a valid registration on it then succeeds.
      expect(stream.isOpen).toBe(true);
    });
  }

  it("bytes that are no request are refused malformed", async () => {
    const t = setup();
    const stream = new FakeServiceStream("presence").open(t.presence.services.presence);
    stream.receive(Uint8Array.of(1, 2, 3));
    await settle();
    expect(refusalOf(t.noticesOf(stream))).toEqual(["malformed"]);
  });

  it("a publisher failure is answered busy, not registered", async () => {
    const t = setup({ publishFails: true });
    const { notices } = await t.register();
    expect(refusalOf(notices())).toEqual(["busy"]);
  });

  it("renew before register is unknown-presence; a renewal with a fresh record is published", async () => {
    const t = setup();
    const stream = new FakeServiceStream("presence").open(t.presence.services.presence);
    const request = t.registerRequest();
    stream.receive(encodePresenceRequest({ t: "renew", record: request.record }));
    await settle();
    expect(refusalOf(t.noticesOf(stream))).toEqual(["unknown-presence"]);
    await t.register(request, stream);
    t.clock.advance(60_000);
    const fresh = t.registerRequest({ authKey: request.authKey, user: makeUser() });
    // Another identity's record is refused on renewal.
    stream.receive(encodePresenceRequest({ t: "renew", record: fresh.record }));
    await settle();
    expect(refusalOf(t.noticesOf(stream))).toEqual(["unknown-presence", "registered", "record-invalid"]);
    expect(t.published).toHaveLength(1);
  });

  it("the same identity re-registering its point on a new stream takes it over; another identity cannot", async () => {
    const t = setup();
    const user = makeUser();
    const first = await t.register(t.registerRequest({ user }));
    const pending = t.introduce(first.request.authKey);
    const second = await t.register(t.registerRequest({ user, authKey: first.request.authKey }));
    expect(refusalOf(second.notices())).toEqual(["registered"]);
    expect(t.presence.points).toBe(1);
    // The old point's introducer is told it is gone.
    expect(pending.replies()).toEqual([expect.objectContaining({ t: "refused", kind: "unknown-presence" })]);
    const thief = await t.register(t.registerRequest({ authKey: first.request.authKey }));
    expect(refusalOf(thief.notices())).toEqual(["wrong-binding"]);
  });

  it("accepts the neighbouring periods (a client near a period boundary)", async () => {
    for (const delta of [-1, 1]) {
      const t = setup();
      const { notices } = await t.register(t.registerRequest({ period: presencePeriod(t.clock.wall, PERIOD_LENGTH) + delta }));
      expect(refusalOf(notices())).toEqual(["registered"]);
    }
  });

  it("re-registering on the same stream moves the point to the next period, keeping its introductions flowing", async () => {
    const t = setup();
    const user = makeUser();
    const p = await t.point({}, user);
    t.clock.advance(24 * 3600_000);
    await t.register(t.registerRequest({ user, authKey: p.authKey }), p.stream);
    expect(refusalOf(t.noticesOf(p.stream))).toEqual(["registered"]);
    expect(t.published).toHaveLength(2);
    expect(hex(t.published[1]!.owner)).not.toBe(hex(t.published[0]!.owner));
    expect(t.presence.points).toBe(1);
    t.introduce(p.authKey);
    expect(t.introductionsTo(p.stream)).toHaveLength(1);
  });

  it("a stream holds one point: registering another introduction key on it is wrong-binding", async () => {
    const t = setup();
    const user = makeUser();
    const p = await t.point({}, user);
    await t.register(t.registerRequest({ user }), p.stream);
    expect(refusalOf(t.noticesOf(p.stream))).toEqual(["wrong-binding"]);
    expect(t.presence.points).toBe(1);
  });

  it("a renewal brings a fresh certificate or keeps the registered one; a refused certificate is bad-certificate", async () => {
    const t = setup();
    const user = makeUser();
    const p = await t.point({}, user);
    const renew = (cert?: Uint8Array) => {
      const fresh = t.registerRequest({ user, authKey: p.authKey });
      t.decide(p.stream, { t: "renew", record: fresh.record, ...(cert ? { cert } : {}) });
    };
    renew();
    await settle();
    renew(t.certFor(user));
    await settle();
    renew(new TextEncoder().encode("forged"));
    await settle();
    expect(refusalOf(t.noticesOf(p.stream))).toEqual(["registered", "registered", "bad-certificate"]);
    expect(t.published).toHaveLength(3);
  });

  it("a node full of registrations refuses the next with cap-reached", async () => {
    const t = setup({ limits: { maxRegistrations: 1 } });
    await t.point();
    const { notices } = await t.register();
    expect(refusalOf(notices())).toEqual(["cap-reached"]);
  });
});

describe("presence node: introductions", () => {
  it("an introduction is delivered to the user's stream as it came (the node cannot read it)", async () => {
    const t = setup();
    const p = await t.point();
    const intro = t.introduce(p.authKey);
    const delivered = t.introductionsTo(p.stream);
    expect(delivered).toHaveLength(1);
    expect([hex(delivered[0]!.x), hex(delivered[0]!.ct), hex(delivered[0]!.mac), delivered[0]!.effort]).toEqual([
      hex(intro.request.x),
      hex(intro.request.ct),
      hex(intro.request.mac),
      0,
    ]);
    expect(intro.stream.sent).toHaveLength(0);
    expect(intro.stream.isOpen).toBe(true);
  });

  it("accept answers the introducer ack and ends its stream", async () => {
    const t = setup();
    const p = await t.point();
    const intro = t.introduce(p.authKey);
    t.decide(p.stream, { t: "decide", id: t.introductionsTo(p.stream)[0]!.id, accept: true });
    expect(intro.replies()).toEqual([{ t: "ack" }]);
    expect(intro.stream.ended).toBe(EndReason.DONE);
    expect(t.clock.pendingTimers).toBe(0);
  });

  it("refuse answers the introducer refused/refused", async () => {
    const t = setup();
    const p = await t.point();
    const intro = t.introduce(p.authKey);
    t.decide(p.stream, { t: "decide", id: t.introductionsTo(p.stream)[0]!.id, accept: false });
    expect(intro.replies()).toEqual([expect.objectContaining({ t: "refused", kind: "refused" })]);
    expect(intro.stream.ended).toBe(EndReason.DONE);
  });

  it("cancel destroys the introducer's circuit at once, without an answer", async () => {
    const t = setup();
    const p = await t.point();
    const intro = t.introduce(p.authKey);
    t.decide(p.stream, { t: "cancel", id: t.introductionsTo(p.stream)[0]!.id });
    expect(intro.stream.destroyed).toBe(DestroyReason.REQUESTED);
    expect(intro.stream.sent).toHaveLength(0);
    expect(t.presence.stats.cancelled).toBe(1);
    expect(t.clock.pendingTimers).toBe(0);
  });

  it("a decision that does not come in time answers the introducer timeout", async () => {
    const t = setup({ limits: { decisionTimeoutMs: 10_000 } });
    const p = await t.point();
    const intro = t.introduce(p.authKey);
    t.clock.advance(9_999);
    expect(intro.stream.sent).toHaveLength(0);
    t.clock.advance(1);
    expect(intro.replies()).toEqual([expect.objectContaining({ t: "refused", kind: "timeout" })]);
    // A late decision changes nothing.
    t.decide(p.stream, { t: "decide", id: t.introductionsTo(p.stream)[0]!.id, accept: true });
    expect(intro.replies()).toHaveLength(1);
  });

  it("a replayed introduction (same handshake key) is refused replayed and not delivered", async () => {
    const t = setup();
    const p = await t.point();
    const first = t.introduce(p.authKey);
    const replay = t.introduce(p.authKey, { x: first.request.x, ct: first.request.ct, mac: first.request.mac });
    expect(replay.replies()).toEqual([expect.objectContaining({ t: "refused", kind: "replayed" })]);
    expect(t.introductionsTo(p.stream)).toHaveLength(1);
  });

  it("an introduction for an unknown key is refused unknown-presence; a malformed one malformed", async () => {
    const t = setup();
    await t.point();
    expect(t.introduce(bytes(32)).replies()).toEqual([expect.objectContaining({ kind: "unknown-presence" })]);
    const stream = new FakeServiceStream("introduce").open(t.presence.services.introduce);
    stream.receive(Uint8Array.of(0xa0));
    expect(stream.sent.map(decodeIntroduceReply)).toEqual([expect.objectContaining({ kind: "malformed" })]);
    expect(stream.ended).toBe(EndReason.DONE);
  });

  it("the channel cap refuses cap-reached and tells the user exactly once", async () => {
    const t = setup();
    const p = await t.point({ maxChannels: 2 });
    for (let i = 0; i < 2; i++) {
      t.introduce(p.authKey);
      t.decide(p.stream, { t: "decide", id: t.introductionsTo(p.stream)[i]!.id, accept: true });
    }
    const refused = [t.introduce(p.authKey), t.introduce(p.authKey), t.introduce(p.authKey)];
    for (const r of refused) expect(r.replies()).toEqual([expect.objectContaining({ kind: "cap-reached" })]);
    expect(t.noticesOf(p.stream).filter((n) => n.t === "notice")).toEqual([{ t: "notice", cap: "channels", limit: 2 }]);
    expect(t.introductionsTo(p.stream)).toHaveLength(2);
  });

  it("the channel cap also holds for introductions that waited in the queue", async () => {
    const t = setup();
    const p = await t.point({ maxChannels: 2, maxPending: 1 });
    const intros = [0, 1, 2, 3].map(() => t.introduce(p.authKey));
    for (let i = 0; i < 4; i++) {
      const pending = t.introductionsTo(p.stream)[i];
      if (pending) t.decide(p.stream, { t: "decide", id: pending.id, accept: true });
    }
    expect(t.introductionsTo(p.stream)).toHaveLength(2);
    expect(intros.map((i) => replyKind(i.replies()[0]))).toEqual(["ack", "ack", "cap-reached", "cap-reached"]);
  });

  it("past the pending cap introductions wait (the user is told once) and are delivered as decisions free room", async () => {
    const t = setup();
    const p = await t.point({ maxPending: 1 });
    const first = t.introduce(p.authKey);
    const second = t.introduce(p.authKey);
    const third = t.introduce(p.authKey);
    expect(t.introductionsTo(p.stream)).toHaveLength(1);
    expect(t.noticesOf(p.stream).filter((n) => n.t === "notice")).toEqual([{ t: "notice", cap: "pending", limit: 1 }]);
    expect([second.stream.sent.length, third.stream.sent.length]).toEqual([0, 0]);
    t.decide(p.stream, { t: "decide", id: t.introductionsTo(p.stream)[0]!.id, accept: false });
    expect(first.replies()[0]).toMatchObject({ kind: "refused" });
    const delivered = t.introductionsTo(p.stream);
    expect(delivered.map((d) => hex(d.x))).toEqual([first, second].map((i) => hex(i.request.x)));
    t.decide(p.stream, { t: "decide", id: delivered[1]!.id, accept: true });
    expect(t.introductionsTo(p.stream).map((d) => hex(d.x))).toEqual([first, second, third].map((i) => hex(i.request.x)));
  });

  it("past the rate introductions wait for a token, delivered when the clock brings one", async () => {
    const t = setup();
    const p = await t.point({ introsPerSecond: 2, introBurst: 1 });
    t.introduce(p.authKey);
    const waiting = t.introduce(p.authKey);
    expect(t.introductionsTo(p.stream)).toHaveLength(1);
    expect(t.noticesOf(p.stream).filter((n) => n.t === "notice")).toEqual([{ t: "notice", cap: "rate", limit: 2 }]);
    t.clock.advance(499);
    expect(t.introductionsTo(p.stream)).toHaveLength(1);
    t.clock.advance(1);
    expect(t.introductionsTo(p.stream).map((d) => hex(d.x))[1]).toBe(hex(waiting.request.x));
  });

  it("a full queue refuses pow-required with the seed and effort to retry with", async () => {
    const t = setup({ limits: { queueCapacity: 2 } });
    const p = await t.point({ maxPending: 1 });
    t.introduce(p.authKey);
    const queued = [t.introduce(p.authKey), t.introduce(p.authKey)];
    const overflow = t.introduce(p.authKey);
    for (const q of queued) expect(q.stream.sent).toHaveLength(0);
    const reply = overflow.replies()[0];
    expect(reply).toMatchObject({ t: "refused", kind: "pow-required" });
    expect(reply?.t === "refused" && reply.pow?.seed.length).toBe(32);
    expect(reply?.t === "refused" && reply.pow?.effort).toBeGreaterThanOrEqual(1);
    expect(overflow.stream.ended).toBe(EndReason.DONE);
  });

  it("a proof of work lets an introduction displace a lower one from a full queue; the same proof again is replayed", async () => {
    const t = setup({ limits: { queueCapacity: 1 } });
    const p = await t.point({ maxPending: 1 });
    t.introduce(p.authKey);
    const lowly = t.introduce(p.authKey);
    const refused = t.introduce(p.authKey).replies()[0];
    if (refused?.t !== "refused" || !refused.pow) throw new Error("expected pow-required with parameters");
    const s = powSolve({ seed: refused.pow.seed, serviceBlindedId: p.authKey, effort: 1, nonce: new Uint8Array(16) });
    const pow: PowProof = { nonce: s.nonce, effort: s.effort, seedHead: s.seedHead, solution: s.proof };
    const worthy = t.introduce(p.authKey, { pow });
    expect(worthy.stream.sent).toHaveLength(0);
    expect(lowly.replies()).toEqual([expect.objectContaining({ kind: "pow-required" })]);
    const again = t.introduce(p.authKey, { pow }).replies()[0];
    expect(again).toMatchObject({ kind: "replayed" });
    const forged = t.introduce(p.authKey, { pow: { ...pow, nonce: new Uint8Array(16).fill(1) } }).replies()[0];
    expect(forged).toMatchObject({ kind: "pow-invalid" });
    // Once room frees, the worthy one is delivered with its effort.
    t.decide(p.stream, { t: "decide", id: t.introductionsTo(p.stream)[0]!.id, accept: true });
    expect(t.introductionsTo(p.stream)[1]).toMatchObject({ effort: 1 });
    expect(hex(t.introductionsTo(p.stream)[1]!.x)).toBe(hex(worthy.request.x));
  });
});

describe("presence node: either side going away", () => {
  it("an introducer whose stream ends while queued is never delivered", async () => {
    const t = setup();
    const p = await t.point({ maxPending: 1 });
    t.introduce(p.authKey);
    const leaving = t.introduce(p.authKey);
    const staying = t.introduce(p.authKey);
    leaving.stream.remoteEnd();
    t.decide(p.stream, { t: "decide", id: t.introductionsTo(p.stream)[0]!.id, accept: true });
    expect(t.introductionsTo(p.stream).map((d) => hex(d.x))[1]).toBe(hex(staying.request.x));
    expect(t.introductionsTo(p.stream)).toHaveLength(2);
  });

  it("an introducer whose stream ends after delivery frees its pending place and its timer", async () => {
    const t = setup();
    const p = await t.point({ maxPending: 1 });
    const leaving = t.introduce(p.authKey);
    const next = t.introduce(p.authKey);
    leaving.stream.remoteEnd();
    expect(t.introductionsTo(p.stream).map((d) => hex(d.x))).toEqual([leaving, next].map((i) => hex(i.request.x)));
    expect(t.clock.pendingTimers).toBe(1);
    // A decision about the gone introduction is ignored.
    t.decide(p.stream, { t: "decide", id: t.introductionsTo(p.stream)[0]!.id, accept: true });
    expect(leaving.stream.sent).toHaveLength(0);
  });

  it("an introducer sending a second message is ended and its introduction withdrawn", async () => {
    const t = setup();
    const p = await t.point({ maxPending: 1 });
    t.introduce(p.authKey);
    const greedy = t.introduce(p.authKey);
    greedy.stream.receive(Uint8Array.of(1));
    expect(greedy.stream.ended).toBe(EndReason.PROTOCOL);
    const next = t.introduce(p.authKey);
    t.decide(p.stream, { t: "decide", id: t.introductionsTo(p.stream)[0]!.id, accept: true });
    expect(t.introductionsTo(p.stream).map((d) => hex(d.x))[1]).toBe(hex(next.request.x));
  });

  it("the user's stream ending answers every pending and queued introduction unknown-presence and drops the point", async () => {
    const t = setup();
    const p = await t.point({ maxPending: 1 });
    const intros = [t.introduce(p.authKey), t.introduce(p.authKey)];
    p.stream.remoteEnd();
    for (const i of intros) {
      expect(i.replies()).toEqual([expect.objectContaining({ kind: "unknown-presence" })]);
      expect(i.stream.ended).toBe(EndReason.DONE);
    }
    expect(t.presence.points).toBe(0);
    expect(t.clock.pendingTimers).toBe(0);
    expect(t.introduce(p.authKey).replies()).toEqual([expect.objectContaining({ kind: "unknown-presence" })]);
  });

  it("a user stream that cannot take a notice drops the point instead of delivering into it", async () => {
    const t = setup();
    const p = await t.point();
    p.stream.sendFails = true;
    const lost = t.introduce(p.authKey);
    expect(p.stream.ended).toBe(EndReason.RESOURCELIMIT);
    expect(lost.replies()).toEqual([expect.objectContaining({ kind: "unknown-presence" })]);
    expect(t.presence.points).toBe(0);
    expect(t.introduce(p.authKey).replies()).toEqual([expect.objectContaining({ kind: "unknown-presence" })]);
    expect(t.clock.pendingTimers).toBe(0);
  });

  it("a user stream that cannot take a cap notice drops the point and answers the waiting introducer too", async () => {
    const t = setup();
    const p = await t.point({ introsPerSecond: 1, introBurst: 1 });
    const delivered = t.introduce(p.authKey);
    p.stream.sendFails = true;
    const limited = t.introduce(p.authKey);
    for (const i of [delivered, limited]) expect(i.replies()).toEqual([expect.objectContaining({ kind: "unknown-presence" })]);
    expect(t.presence.points).toBe(0);
    expect(t.clock.pendingTimers).toBe(0);
  });

  it("a point whose user's certificate expired refuses introductions and ends the user's stream", async () => {
    const t = setup();
    const user = makeUser();
    const notAfter = Math.floor(t.clock.wall / 1000) + 60;
    const r = await t.register(t.registerRequest({ user, cert: t.certFor(user, notAfter) }));
    expect(refusalOf(r.notices())).toEqual(["registered"]);
    t.clock.advance(60_000 + DEFAULT_PRESENCE_NODE_LIMITS.maxSkewMs);
    expect(t.introduce(r.request.authKey).replies()).toEqual([expect.objectContaining({ kind: "unknown-presence" })]);
    expect(r.stream.ended).toBe(EndReason.DONE);
    expect(t.presence.points).toBe(0);
  });

  it("close ends every point and answers every introducer", async () => {
    const t = setup();
    const p = await t.point();
    const intro = t.introduce(p.authKey);
    t.presence.close();
    expect(intro.replies()).toEqual([expect.objectContaining({ kind: "unknown-presence" })]);
    expect(p.stream.ended).toBe(EndReason.DONE);
    expect(t.presence.points).toBe(0);
    expect(t.presence.services.presence(new FakeServiceStream("presence"), 0)).toBe(EndReason.RESOURCELIMIT);
  });
});

/**
 * Presence and private messaging (issue 14's figures), each against a
 * baseline measured in the same run:
 *
 * - connect, cold (lookup of a fresh record through a circuit, rendezvous,
 *   introduction, the peer's acceptance, its circuit to the rendezvous):
 *   against building a 3-hop circuit and opening a stream on it;
 * - a 64-byte round trip over an open channel (six hops and the ratchet):
 *   against the same round trip to an echo service over a 3-hop circuit;
 * - introductions one presence node fully handles per second (the node
 *   forwards, the user decrypts, checks certificate and signature, decides,
 *   the node answers): in one process without the network, against the
 *   crypto floor of an introduction (two Ed25519 verifies and one X25519);
 *   and over the network, against that in-process rate;
 * - the time a client with a solved puzzle needs to get through a flood of
 *   ten times the rate the point lets through, against a client without one
 *   arriving at the same moment.
 *
 * The network figures run on a seven-node network in this process (real
 * TLS links on loopback, scripts/lib/local-network.ts). Tor 0.4.9 measured
 * on this machine's loopback (docs, DESIGN facts) is the outside reference.
 * Run alone with `npx tsx scripts/bench.ts presence`.
 */
import { assembleCertificate, buildCertificateBody, signCertificateBody, verifyAccessCertificate } from "../../node/src/authority/certificate.js";
import { ed25519Verify } from "../../node/src/crypto/ed25519.js";
import { generateX25519KeyPair, x25519SharedSecret } from "../../node/src/crypto/x25519.js";
import { generateEd25519KeyPair, ed25519Sign } from "../../node/src/crypto/ed25519.js";
import { formatIdentity } from "../../node/src/crypto/identity.js";
import { subcredential } from "../../node/src/crypto/blinding.js";
import { powSolve } from "../../node/src/crypto/equix.js";
import type { DhtRecord, OwnerSignedRecord } from "../../node/src/dht/record.js";
import { EndReason } from "../../node/src/onion/constants.js";
import type { ServiceHandler, ServiceStream } from "../../node/src/onion/types.js";
import { buildIntroduction, openIntroduction } from "../../node/src/presence/introduction.js";
import {
  decodeIntroduceReply,
  decodePresenceNotice,
  encodeIntroduceRequest,
  encodePresenceRequest,
  registrationSigningPayload,
} from "../../node/src/presence/messages.js";
import type { IntroduceRequest, PresenceLimits } from "../../node/src/presence/messages.js";
import { createPresenceNode } from "../../node/src/presence/presence-node.js";
import { presenceLocation, presencePeriod, signPresenceRecord } from "../../node/src/presence/record.js";
import { startLocalNetwork } from "../lib/local-network.js";
import type { LocalNetwork } from "../lib/local-network.js";
import { fmt, opsPerSecond, table } from "./types.js";
import type { BenchSection } from "./types.js";

const TOR = { connectMs: 261, roundTripMs: 16.2, introsPerSecond: 180 };
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const quantile = (xs: readonly number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))] ?? Number.NaN;
const text = new TextEncoder();
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

// ---------------------------------------------------------------- the core, without a network

/** A ServiceStream that records what the service sends, for driving a presence node in one process. */
class FakeStream implements ServiceStream {
  readonly sent: Uint8Array[] = [];
  ended: EndReason | undefined;
  destroyed = false;
  handler: ServiceHandler | undefined;
  onSend: ((m: Uint8Array) => void) | undefined;
  readonly previousHop = new Uint8Array(32).fill(1);
  readonly queuedCells = 0;
  constructor(
    readonly circuitId: number,
    readonly service: string,
    readonly streamId = 1,
  ) {}
  send(message: Uint8Array): void {
    this.sent.push(message);
    this.onSend?.(message);
  }
  pause(): void {}
  resume(): void {}
  end(reason: EndReason = EndReason.DONE): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    this.handler?.onEnd?.(reason, performance.now());
  }
  destroyCircuit(): void {
    this.destroyed = true;
    this.end(EndReason.DESTROY);
  }
}

interface CorePoint {
  node: ReturnType<typeof createPresenceNode>;
  user: FakeStream;
  authKey: Uint8Array;
  encKey: Uint8Array;
  encSecret: Uint8Array;
  subcredential: Uint8Array;
}

/** A presence node in this process with one registered point whose user answers through `decide`. */
async function corePoint(certs: ReturnType<typeof certificates>, limits: PresenceLimits, decide: (id: number, bytes: Uint8Array) => void): Promise<CorePoint> {
  const userKeys = generateEd25519KeyPair();
  const nodeKeys = generateEd25519KeyPair();
  const identity = formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: userKeys.publicKey });
  const { mintCertificate, verify } = certs;
  const node = createPresenceNode({
    nodeKey: nodeKeys.publicKey,
    publish: async (record: OwnerSignedRecord) => ({
      stored: 1,
      record: { ...record, publisher: nodeKeys.publicKey, publisherSig: new Uint8Array(64) } as DhtRecord,
    }),
    verifyCertificate: verify,
    limits: { maxPendingPerPoint: 4096, maxIntrosPerSecond: 100_000 },
  });
  const auth = generateEd25519KeyPair();
  const enc = generateX25519KeyPair();
  const wall = Date.now();
  const period = presencePeriod(wall, 1440);
  const record = signPresenceRecord({
    identitySecret: userKeys.secretKey,
    identityKey: userKeys.publicKey,
    period,
    periodLength: 1440,
    slot: 0,
    point: { node: nodeKeys.publicKey, authKey: auth.publicKey, encKey: enc.publicKey, flags: 0, points: 1, issuedAt: wall },
    seq: wall,
    expiresAt: wall + 600_000,
  });
  const unsigned = {
    t: "register" as const,
    node: nodeKeys.publicKey,
    identity,
    cert: mintCertificate(identity),
    period,
    periodLength: 1440,
    slot: 0,
    authKey: auth.publicKey,
    record,
    limits,
    time: wall,
    sig: new Uint8Array(64),
  };
  const user = new FakeStream(1, "presence");
  const handler = node.services.presence(user, performance.now()) as ServiceHandler;
  user.handler = handler;
  const registered = new Promise<void>((resolve) => {
    user.onSend = (m) => {
      const notice = decodePresenceNotice(m);
      if (notice.t === "registered") resolve();
      else if (notice.t === "introduce") decide(notice.id, m);
    };
  });
  handler.onMessage(encodePresenceRequest({ ...unsigned, sig: ed25519Sign(userKeys.secretKey, registrationSigningPayload(unsigned)) }), performance.now());
  await registered;
  return {
    node,
    user,
    authKey: auth.publicKey,
    encKey: enc.publicKey,
    encSecret: enc.secretKey,
    subcredential: subcredential(userKeys.publicKey, presenceLocation(userKeys.publicKey, period, 1440, 0).blinded),
  };
}

/** Certificates signed by one local authority key, and their check, as a network without a chain has them. */
function certificates(authority: { secretKey: Uint8Array; publicKey: Uint8Array }) {
  return {
    mintCertificate: (identity: string): Uint8Array => {
      const now = Math.floor(Date.now() / 1000);
      const { bodyBytes } = buildCertificateBody({
        identity,
        chainId: 31337,
        registry: "0x00000000000000000000000000000000000000aa",
        notBefore: now - 60,
        notAfter: now + 3540,
      });
      return assembleCertificate(bodyBytes, [signCertificateBody(bodyBytes, authority.secretKey)]);
    },
    verify: (cert: Uint8Array) => verifyAccessCertificate(cert, { now: Date.now(), authorities: [authority.publicKey], threshold: 1 }),
  };
}

/** An introducer: identity, certificate, and a fresh introduction for a point each call. */
function introducer(point: Pick<CorePoint, "authKey" | "encKey" | "subcredential">, mintCertificate: (identity: string) => Uint8Array) {
  const keys = generateEd25519KeyPair();
  const identity = formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: keys.publicKey });
  const cert = mintCertificate(identity);
  return (): IntroduceRequest =>
    buildIntroduction({
      authKey: point.authKey,
      encKey: point.encKey,
      subcredential: point.subcredential,
      identity,
      identitySecret: keys.secretKey,
      cert,
      rdv: new Uint8Array(32).fill(9),
      cookie: crypto.getRandomValues(new Uint8Array(20)),
      now: Date.now(),
    }).request;
}

/** Introductions one presence node and its user fully handle per second, in one process. */
async function coreIntroRate(count: number): Promise<number> {
  const certs = certificates(generateEd25519KeyPair());
  const verifyCert = (cert: Uint8Array) => {
    const v = certs.verify(cert);
    return { identity: v.identity, key: v.key, notAfter: v.notAfter };
  };
  const point: CorePoint = await corePoint(certs, { maxPending: 4096, maxChannels: 1_000_000, introsPerSecond: 10_000, introBurst: 10_000 }, (id, bytes) => {
    // The user's side: decrypt, check certificate, signature and time, then refuse.
    const notice = decodePresenceNotice(bytes);
    if (notice.t !== "introduce") return;
    openIntroduction({
      authKey: point.authKey,
      encSecret: point.encSecret,
      encKey: point.encKey,
      subcredentials: [point.subcredential],
      x: notice.x,
      ct: notice.ct,
      mac: notice.mac,
      verifyCertificate: verifyCert,
      now: Date.now(),
    });
    point.user.handler!.onMessage(encodePresenceRequest({ t: "decide", id, accept: false }), performance.now());
  });
  const next = introducer(point, certs.mintCertificate);
  const requests = Array.from({ length: count }, () => encodeIntroduceRequest(next()));
  let answered = 0;
  const started = performance.now();
  for (const [i, bytes] of requests.entries()) {
    const stream = new FakeStream(100 + i, "introduce");
    stream.onSend = (m) => {
      if (decodeIntroduceReply(m).t === "refused") answered++;
    };
    const h = point.node.services.introduce(stream, performance.now()) as ServiceHandler;
    stream.handler = h;
    h.onMessage(bytes, performance.now());
  }
  const seconds = (performance.now() - started) / 1000;
  point.node.close();
  if (answered !== count) throw new Error(`core intro bench: ${answered} of ${count} answered`);
  return count / seconds;
}

/** The crypto floor of one introduction at the user: two Ed25519 verifies (certificate, signature) and one X25519. */
function cryptoFloorRate(): number {
  const k = generateEd25519KeyPair();
  const msg = text.encode("introduction");
  const sig = ed25519Sign(k.secretKey, msg);
  const a = generateX25519KeyPair();
  const b = generateX25519KeyPair();
  return opsPerSecond(() => {
    ed25519Verify(k.publicKey, msg, sig);
    ed25519Verify(k.publicKey, msg, sig);
    x25519SharedSecret(a.secretKey, b.publicKey);
  }, 400);
}

/**
 * A point that lets `rate` introductions per second through, flooded at ten
 * times that with no proof of work for `floodMs`; halfway a client arrives
 * without a puzzle and one with a puzzle solved at the effort the point
 * suggests. Returns how long each took to reach the user (or undefined).
 */
async function powUnderFlood(
  rate: number,
  floodMs: number,
): Promise<{ solveMs: number; effort: number; withPowMs: number | undefined; withoutPowMs: number | undefined; refusedFlood: number; deliveredFlood: number }> {
  const certs = certificates(generateEd25519KeyPair());
  const deliveredAt = new Map<string, number>();
  const point: CorePoint = await corePoint(
    certs,
    { maxPending: 4, maxChannels: 1_000_000, introsPerSecond: rate, introBurst: Math.max(1, Math.floor(rate / 10)) },
    (id, bytes) => {
      const notice = decodePresenceNotice(bytes);
      if (notice.t === "introduce") deliveredAt.set(hex(notice.x), performance.now());
      // The user answers at once (refuses), so only the point's rate limits the flow.
      setImmediate(() => point.user.handler!.onMessage(encodePresenceRequest({ t: "decide", id, accept: false }), performance.now()));
    },
  );
  const next = introducer(point, certs.mintCertificate);
  let refusedFlood = 0;
  let streamId = 1000;
  let powParams: { seed: Uint8Array; effort: number } | undefined;
  const send = (request: IntroduceRequest, onReply?: (kind: string) => void): void => {
    const stream = new FakeStream(streamId++, "introduce");
    stream.onSend = (m) => {
      const reply = decodeIntroduceReply(m);
      if (reply.t === "refused" && reply.pow) powParams = reply.pow;
      onReply?.(reply.t === "ack" ? "ack" : reply.kind);
    };
    const h = point.node.services.introduce(stream, performance.now()) as ServiceHandler;
    stream.handler = h;
    h.onMessage(encodeIntroduceRequest(request), performance.now());
  };
  // Pre-built flood requests (building them is the flooder's cost, not the point's).
  const floodRate = rate * 10;
  const flood = Array.from({ length: Math.ceil((floodRate * floodMs) / 1000) + 10 }, () => next());
  const floodStarted = performance.now();
  let sentFlood = 0;
  const floodTimer = setInterval(() => {
    const due = Math.min(flood.length, Math.floor(((performance.now() - floodStarted) * floodRate) / 1000));
    for (; sentFlood < due; sentFlood++) send(flood[sentFlood]!, (kind) => kind !== "refused" && refusedFlood++);
  }, 10);
  await new Promise((r) => setTimeout(r, floodMs / 3));
  // Two clients arrive together: one without a puzzle, one that solves the effort the point's refusals suggest.
  const plain = next();
  const withPow = next();
  const arrived = performance.now();
  send(plain);
  const params = powParams ?? { seed: new Uint8Array(32), effort: 1 };
  const solveStarted = performance.now();
  const solved = powSolve({ seed: params.seed, serviceBlindedId: point.authKey, effort: params.effort });
  const solveMs = performance.now() - solveStarted;
  const powSent = performance.now();
  send({ ...withPow, pow: { nonce: solved.nonce, effort: solved.effort, seedHead: solved.seedHead, solution: solved.proof } });
  const effort = params.effort;
  await new Promise((r) => setTimeout(r, Math.max(0, floodMs - (performance.now() - floodStarted))));
  clearInterval(floodTimer);
  await new Promise((r) => setTimeout(r, 500));
  const powAt = deliveredAt.get(hex(withPow.x));
  const plainAt = deliveredAt.get(hex(plain.x));
  point.node.close();
  return {
    solveMs,
    effort,
    withPowMs: powAt === undefined ? undefined : powAt - powSent,
    withoutPowMs: plainAt === undefined ? undefined : plainAt - arrived,
    refusedFlood,
    deliveredFlood: deliveredAt.size,
  };
}

// ---------------------------------------------------------------- over the network

async function networkFigures(net: LocalNetwork, rounds: number) {
  const alice = await net.user("alice");
  const carol = await net.user("carol");
  alice.presence.on("introduction", (intro) => {
    intro.accept().then(
      async (channel) => {
        for await (const m of channel.messages()) await channel.send(m.body).catch(() => undefined);
      },
      () => undefined,
    );
  });
  await alice.presence.announce({ points: 3 });
  const relays = net.pathNodes();
  // Warm: links open, one connect done.
  (await carol.presence.connect(alice.identity)).close();

  const circuitMs: number[] = [];
  const connectMs: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const circuit = await carol.onion.buildCircuit({ lastHop: relays[i % relays.length]! });
    await circuit.openStream("echo");
    const base = performance.now() - t0;
    circuit.close();
    const t1 = performance.now();
    const channel = await carol.presence.connect(alice.identity);
    const connect = performance.now() - t1;
    channel.close();
    circuitMs.push(base);
    connectMs.push(connect);
    ratios.push(connect / base);
  }

  // Round trips: 64 bytes over an open channel, against 64 bytes to an echo service over a 3-hop circuit.
  const payload = new Uint8Array(64).fill(0x61);
  const channel = await carol.presence.connect(alice.identity);
  const replies = channel.messages();
  const circuit = await carol.onion.buildCircuit();
  const echo = await circuit.openStream("echo");
  const rtt: number[] = [];
  const echoRtt: number[] = [];
  for (let i = 0; i < 100; i++) {
    const t0 = performance.now();
    void channel.send(payload);
    await replies.next();
    rtt.push(performance.now() - t0);
    const t1 = performance.now();
    await echo.send(payload);
    await echo.receive();
    echoRtt.push(performance.now() - t1);
  }
  channel.close();
  circuit.close();

  // Introductions handled per second by one presence node over the network: pre-built circuits fire at once.
  const bob = await net.user("bob");
  bob.presence.on("introduction", (intro) => intro.refuse());
  await bob.presence.announce({ points: 1, limits: { maxPending: 4096, maxChannels: 1_000_000, introsPerSecond: 10_000, introBurst: 10_000 } });
  const [point] = await carol.presence.lookup(bob.identity);
  const node = relays.find((n) => hex(n.identity) === hex(point!.node))!;
  const flooders = await Promise.all([0, 1, 2, 3].map((i) => net.user(`flooder-${i}`)));
  const count = 48;
  const streams = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const f = flooders[i % flooders.length]!;
      const c = await f.onion.buildCircuit({ lastHop: node });
      return { circuit: c, stream: await c.openStream("introduce"), f };
    }),
  );
  const requests = streams.map(({ f }) =>
    encodeIntroduceRequest(
      buildIntroduction({
        authKey: point!.authKey,
        encKey: point!.encKey,
        subcredential: point!.subcredential,
        identity: f.identity,
        identitySecret: f.keys.secretKey,
        cert: f.cert.bytes,
        rdv: relays[0]!.identity,
        cookie: crypto.getRandomValues(new Uint8Array(20)),
        now: Date.now(),
      }).request,
    ),
  );
  const t0 = performance.now();
  const replied = await Promise.all(streams.map(async ({ stream }, i) => (await stream.send(requests[i]!), decodeIntroduceReply(await stream.receive()))));
  const networkIntroRate = count / ((performance.now() - t0) / 1000);
  for (const { circuit: c } of streams) c.close();
  const refused = replied.filter((r) => r.t === "refused" && r.kind === "refused").length;

  return {
    circuitMs: median(circuitMs),
    connectMs: median(connectMs),
    connectP90Ms: quantile(connectMs, 0.9),
    connectRatio: median(ratios),
    rttMs: median(rtt),
    rttP90Ms: quantile(rtt, 0.9),
    echoRttMs: median(echoRtt),
    networkIntroRate,
    networkIntrosAnsweredByUser: refused,
    networkIntroCount: count,
  };
}

export async function run(): Promise<BenchSection> {
  const floor = cryptoFloorRate();
  const core = median([await coreIntroRate(200), await coreIntroRate(200), await coreIntroRate(200)]);
  const net = await startLocalNetwork({ instance: 7 });
  let nf: Awaited<ReturnType<typeof networkFigures>>;
  try {
    nf = await networkFigures(net, 15);
  } finally {
    await net.close();
  }
  const floodRate = 20;
  const pow = await powUnderFlood(floodRate, 9_000);

  const figures = {
    connectMedianMs: nf.connectMs,
    connectP90Ms: nf.connectP90Ms,
    circuitBaselineMs: nf.circuitMs,
    connectVsCircuit: nf.connectRatio,
    connectVsTor: nf.connectMs / TOR.connectMs,
    roundTripMedianMs: nf.rttMs,
    roundTripP90Ms: nf.rttP90Ms,
    echoRoundTripMs: nf.echoRttMs,
    roundTripVsEcho: nf.rttMs / nf.echoRttMs,
    roundTripVsTor: nf.rttMs / TOR.roundTripMs,
    coreIntrosPerSecond: core,
    cryptoFloorPerSecond: floor,
    coreVsFloor: core / floor,
    networkIntrosPerSecond: nf.networkIntroRate,
    networkVsCore: nf.networkIntroRate / core,
    floodRate: floodRate * 10,
    pointRate: floodRate,
    pow,
  };
  const ms = (x: number | undefined) => (x === undefined ? "not through" : `${fmt(x, 0)} ms`);
  const markdown = [
    "Seven nodes in one process (three discovery, four onion) with real TLS links on loopback; users are full presence clients.",
    "Every figure is the median of its samples, beside a baseline measured in the same run. Tor 0.4.9 on this machine's loopback is the outside reference (not re-measured here).",
    "",
    table(
      ["figure", "PSP", "baseline in the same run", "ratio", "Tor 0.4.9 here", "target"],
      [
        [
          "connect, cold: lookup + rendezvous + introduction + acceptance (median of 15)",
          `${fmt(nf.connectMs, 1)} ms (p90 ${fmt(nf.connectP90Ms, 1)})`,
          `3-hop circuit + stream: ${fmt(nf.circuitMs, 1)} ms`,
          `${fmt(nf.connectRatio, 2)} ×`,
          `${TOR.connectMs} ms`,
          `≤ 100 ms: ${nf.connectMs <= 100 ? "met" : "not met"}`,
        ],
        [
          "64-byte round trip over an open channel (median of 100)",
          `${fmt(nf.rttMs, 2)} ms (p90 ${fmt(nf.rttP90Ms, 2)})`,
          `3-hop echo: ${fmt(nf.echoRttMs, 2)} ms`,
          `${fmt(nf.rttMs / nf.echoRttMs, 2)} ×`,
          `${TOR.roundTripMs} ms`,
          `≤ 5 ms: ${nf.rttMs <= 5 ? "met" : "not met"}`,
        ],
        [
          "introductions fully handled per second, one presence node and its user, in one process",
          fmt(core, 0),
          `crypto floor (2 Ed25519 verify + 1 X25519): ${fmt(floor, 0)}/s`,
          `${fmt(core / floor, 2)} ×`,
          `${TOR.introsPerSecond}/s (proposal 327)`,
          "",
        ],
        [
          `the same over the network (${nf.networkIntroCount} introducers on pre-built circuits at once)`,
          fmt(nf.networkIntroRate, 0),
          `in-process rate: ${fmt(core, 0)}/s`,
          `${fmt(nf.networkIntroRate / core, 2)} ×`,
          "",
          "",
        ],
      ],
    ),
    "",
    `Under flood: a point that lets ${floodRate} introductions per second through is flooded at ${floodRate * 10}/s without proof of work for 9 s (${pow.deliveredFlood} delivered, ${pow.refusedFlood} refused or displaced).`,
    `A client that solves the point's suggested effort (${pow.effort}, ${fmt(pow.solveMs, 0)} ms of Equi-X in JavaScript) reaches the user ${ms(pow.withPowMs)} after sending; a client arriving at the same moment without a puzzle: ${ms(pow.withoutPowMs)}.`,
  ].join("\n");
  return { title: "Presence, introductions and private channels", markdown, figures };
}

/**
 * Fuzz properties of node/src/presence/messages.ts: every decoder of
 * PRESENCE_DECODERS, fed random bytes, mutated valid encodings and valid maps
 * with one field replaced by any CBOR value, either decodes or throws
 * PresenceError "malformed", never another error or kind; what decodes
 * re-encodes to the same bytes. And the presence and rendezvous services,
 * fed any sequence of such messages on several streams (around one valid
 * registered point), never throw and only ever send messages their peers'
 * decoders accept, at most one answer per introduction. Run briefly by
 * test/unit/presence/fuzz.test.ts and at length by scripts/fuzz-presence.ts.
 */
import fc from "fast-check";
import { ed25519Sign, generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { generateX25519KeyPair } from "../../node/src/crypto/x25519.js";
import { coSignRecord } from "../../node/src/dht/record.js";
import { PresenceError } from "../../node/src/presence/errors.js";
import { createPresenceNode } from "../../node/src/presence/presence-node.js";
import { presencePeriod, signPresenceRecord } from "../../node/src/presence/record.js";
import { createRendezvousNode } from "../../node/src/presence/rendezvous-node.js";
import {
  PRESENCE_DECODERS,
  registrationSigningPayload,
  encodeChannelPayload,
  encodeIntroPlaintext,
  encodeIntroduceReply,
  encodeIntroduceRequest,
  encodePresenceNotice,
  encodePresenceRequest,
  encodeRendezvousMessage,
} from "../../node/src/presence/messages.js";
import type { OwnerSignedRecord } from "../../node/src/dht/record.js";
import { decodeCanonical, encodeCanonical } from "../../node/src/wire/canonical.js";
import type { CanonicalValue } from "../../node/src/wire/canonical.js";
import { FakeServiceStream, ManualClock, makeUser } from "../unit/presence/helpers.js";
import { check, mutate, target, typedOnly, type FuzzTarget } from "./common.js";

export type DecoderName = keyof typeof PRESENCE_DECODERS;
const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

/** Each decoder's encoder (the decoded value of a valid input encodes back to the same bytes). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const PRESENCE_ENCODERS: Record<DecoderName, (value: any) => Uint8Array> = {
  presenceRequest: encodePresenceRequest,
  presenceNotice: encodePresenceNotice,
  introduceRequest: encodeIntroduceRequest,
  introduceReply: encodeIntroduceReply,
  rendezvousMessage: encodeRendezvousMessage,
  introPlaintext: encodeIntroPlaintext,
  channelPayload: encodeChannelPayload,
};

const SAMPLE_IDENTITY = "peerstream.client.account.2Kny61sample";
const sampleRecord: OwnerSignedRecord = {
  key: bytes(32, 1),
  name: "presence/0",
  value: bytes(60, 2),
  owner: bytes(32, 3),
  seq: 7,
  expiresAt: 1_700_000_600_000,
  ownerSig: bytes(64, 4),
};

/** One valid value of every message type, by decoder (shape-valid: the decoders check shapes, not signatures). */
export const PRESENCE_SAMPLES: Record<DecoderName, readonly unknown[]> = {
  presenceRequest: [
    {
      t: "register",
      node: bytes(32, 5),
      identity: SAMPLE_IDENTITY,
      cert: bytes(100, 6),
      period: 20_000,
      periodLength: 1440,
      slot: 2,
      authKey: bytes(32, 7),
      record: sampleRecord,
      limits: { maxPending: 8, maxChannels: 100, introsPerSecond: 5, introBurst: 10 },
      time: 1_700_000_000_000,
      sig: bytes(64, 8),
    },
    { t: "renew", record: sampleRecord },
    { t: "renew", record: sampleRecord, cert: bytes(10, 9) },
    { t: "decide", id: 42, accept: true },
    { t: "decide", id: 0, accept: false },
    { t: "cancel", id: 0xffff_ffff },
  ],
  presenceNotice: [
    { t: "registered", expiresAt: 1_700_000_600_000, stored: 3 },
    { t: "refused", kind: "stale", message: "too old" },
    { t: "introduce", id: 9, x: bytes(32, 1), ct: bytes(300, 2), mac: bytes(32, 3), effort: 16 },
    { t: "notice", cap: "pending", limit: 8 },
    { t: "notice", cap: "channels", limit: 100 },
    { t: "notice", cap: "rate", limit: 5 },
  ],
  introduceRequest: [
    { t: "introduce", authKey: bytes(32, 1), x: bytes(32, 2), ct: bytes(200, 3), mac: bytes(32, 4) },
    { t: "introduce", authKey: bytes(32, 1), x: bytes(32, 2), ct: bytes(1, 3), mac: bytes(32, 4), pow: { nonce: bytes(16, 5), effort: 3, seedHead: bytes(4, 6), solution: bytes(16, 7) } },
  ],
  introduceReply: [
    { t: "ack" },
    { t: "refused", kind: "refused", message: "" },
    { t: "refused", kind: "pow-required", message: "busy", pow: { seed: bytes(32, 1), effort: 4 } },
  ],
  rendezvousMessage: [
    { t: "establish", cookie: bytes(20, 1) },
    { t: "established" },
    { t: "join", cookie: bytes(20, 1), reply: bytes(64, 2), rate: 1000, burst: 2000 },
    { t: "joined" },
    { t: "joined", reply: bytes(64, 2) },
    { t: "refused", kind: "rendezvous-failed", message: "no cookie" },
  ],
  introPlaintext: [{ identity: SAMPLE_IDENTITY, cert: bytes(100, 1), rdv: bytes(32, 2), cookie: bytes(20, 3), time: 1_700_000_000_000, sig: bytes(64, 4) }],
  channelPayload: [{ t: "msg", id: 3, body: new TextEncoder().encode("hello") }, { t: "msg", id: 0, body: new Uint8Array(0) }, { t: "ack", id: 3 }, { t: "close" }, { t: "keepalive" }],
};

export const DECODER_NAMES = Object.keys(PRESENCE_DECODERS) as DecoderName[];

/** Every (decoder, valid encoding) pair. */
export const VALID_ENCODINGS: readonly { name: DecoderName; bytes: Uint8Array }[] = DECODER_NAMES.flatMap((name) =>
  PRESENCE_SAMPLES[name].map((value) => ({ name, bytes: PRESENCE_ENCODERS[name](value) })),
);

/**
 * Decodes with `name`'s decoder: returns undefined when it decoded (after
 * checking it re-encodes to the same bytes), the kind when it refused;
 * throws (failing the property) on an untyped error or a kind other than "malformed".
 */
export function decodeOrMalformed(name: DecoderName, input: Uint8Array): string | undefined {
  let decoded: unknown;
  const kind = typedOnly([PresenceError], () => {
    decoded = PRESENCE_DECODERS[name](input);
  });
  if (kind !== undefined) {
    check(kind === "malformed", `${name} threw PresenceError "${kind}", not "malformed"`);
    return kind;
  }
  const again = PRESENCE_ENCODERS[name](decoded);
  check(Buffer.from(again).equals(Buffer.from(input)), `${name} decoded bytes that do not re-encode to themselves`);
  return undefined;
}

/** Field names the decoders read, plus names that trip up careless string conversions and prototype handling. */
const FIELD_NAMES = [
  "t", "v", "kind", "message", "pow", "seed", "effort", "cookie", "reply", "rate", "burst", "id", "accept", "record", "limits", "cert",
  "identity", "node", "period", "periodLength", "slot", "authKey", "time", "sig", "x", "ct", "mac", "body", "cap", "limit", "expiresAt",
  "stored", "nonce", "solution", "rdv", "pending", "channels", "k", "n", "o", "s", "e", "os", "p", "ps",
  "toString", "valueOf", "__proto__", "constructor", "toJSON",
];

/** A map whose keys are set as own properties (so "__proto__" is a key, as the CBOR decoder makes it). */
function ownMap(entries: [string, CanonicalValue][]): { [key: string]: CanonicalValue } {
  const m: { [key: string]: CanonicalValue } = {};
  for (const [k, v] of entries) Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true });
  return m;
}

/** Any value canonical CBOR carries, maps keyed by the decoders' field names. */
export const canonicalValue: fc.Arbitrary<CanonicalValue> = fc.letrec<{ value: CanonicalValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.constantFrom(0, 1, 7, 15, 16, 255, 4096, 14_400, 0xffff_ffff, 2 ** 32, Number.MAX_SAFE_INTEGER, -1),
    fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }).filter((b) => b > BigInt(Number.MAX_SAFE_INTEGER) || b < BigInt(Number.MIN_SAFE_INTEGER)),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
    fc.string({ maxLength: 20 }),
    fc.constantFrom("register", "renew", "decide", "cancel", "introduce", "ack", "refused", "join", "joined", "establish", "msg", "close", "malformed"),
    fc.uint8Array({ maxLength: 70 }),
    fc.constantFrom(4, 16, 20, 32, 64).map((n) => new Uint8Array(n)),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.uniqueArray(fc.tuple(fc.constantFrom(...FIELD_NAMES), tie("value")), { maxLength: 4, selector: ([k]) => k }).map(ownMap),
  ),
})).value;

/** A valid sample's structure with one field (top level or one map down) replaced, removed or added. */
export const fieldEdit = fc
  .tuple(
    fc.constantFrom(...VALID_ENCODINGS),
    fc.nat(),
    fc.nat(),
    fc.oneof(
      canonicalValue.map((v) => ({ op: "set" as const, v })),
      fc.constant({ op: "delete" as const }),
      fc.tuple(fc.constantFrom(...FIELD_NAMES), canonicalValue).map(([k, v]) => ({ op: "add" as const, k, v })),
    ),
  )
  .map(([{ name, bytes }, a, b, edit]) => {
    const root = decodeCanonical(bytes, { maxBytes: 1 << 20 }) as { [key: string]: CanonicalValue };
    const keys = Object.keys(root);
    let target = root;
    let key = keys[a % keys.length] as string;
    const inner = root[key];
    if (b % 3 === 0 && inner !== null && typeof inner === "object" && !Array.isArray(inner) && !(inner instanceof Uint8Array)) {
      const innerKeys = Object.keys(inner);
      if (innerKeys.length > 0) {
        target = inner;
        key = innerKeys[b % innerKeys.length] as string;
      }
    }
    if (edit.op === "set") Object.defineProperty(target, key, { value: edit.v, enumerable: true, writable: true, configurable: true });
    else if (edit.op === "delete") delete target[key];
    else Object.defineProperty(target, edit.k, { value: edit.v, enumerable: true, writable: true, configurable: true });
    return { name, bytes: encodeCanonical(root) };
  });

// ---------------------------------------------------------------- services

type ServiceName = "presence" | "introduce" | "rendezvous";
const SERVICE_DECODERS: Record<ServiceName, DecoderName> = { presence: "presenceNotice", introduce: "introduceReply", rendezvous: "rendezvousMessage" };

/** One valid registered point at a node with a fixed key and clock, and valid messages for each service to mutate. */
function serviceWorld() {
  const wall = Date.UTC(2025, 0, 15, 12, 0, 0);
  const nodeKeys = generateEd25519KeyPair();
  const user = makeUser();
  const cert = new TextEncoder().encode(`cert:${user.text}`);
  const authKey = generateEd25519KeyPair().publicKey;
  const period = presencePeriod(wall, 1440);
  const record = signPresenceRecord({
    identitySecret: user.secretKey,
    identityKey: user.publicKey,
    period,
    periodLength: 1440,
    slot: 0,
    point: { node: nodeKeys.publicKey, authKey, encKey: generateX25519KeyPair().publicKey, flags: 0, points: 3, issuedAt: wall },
    seq: wall,
    expiresAt: wall + 600_000,
  });
  const unsigned = {
    t: "register" as const,
    node: nodeKeys.publicKey,
    identity: user.text,
    cert,
    period,
    periodLength: 1440,
    slot: 0,
    authKey,
    record,
    limits: { maxPending: 1, maxChannels: 3, introsPerSecond: 1, introBurst: 1 },
    time: wall,
    sig: new Uint8Array(64),
  };
  const register = encodePresenceRequest({ ...unsigned, sig: ed25519Sign(user.secretKey, registrationSigningPayload(unsigned)) });
  const cookie = new Uint8Array(20).fill(1);
  const valid: Record<ServiceName, Uint8Array[]> = {
    presence: [register, encodePresenceRequest({ t: "renew", record }), ...[1, 2, 3].map((id) => encodePresenceRequest({ t: "decide", id, accept: id !== 2 })), encodePresenceRequest({ t: "cancel", id: 1 })],
    introduce: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => encodeIntroduceRequest({ t: "introduce", authKey, x: new Uint8Array(32).fill(i), ct: new Uint8Array(48).fill(i), mac: new Uint8Array(32) })),
    rendezvous: [encodeRendezvousMessage({ t: "establish", cookie }), encodeRendezvousMessage({ t: "join", cookie, reply: new Uint8Array(64), rate: 100, burst: 100 })],
  };
  const start = () => {
    const clock = new ManualClock(wall);
    const presence = createPresenceNode({
      nodeKey: nodeKeys.publicKey,
      publish: async (r) => ({ stored: 1, record: coSignRecord(r, nodeKeys.secretKey) }),
      verifyCertificate: (c) => {
        if (Buffer.from(c).equals(Buffer.from(cert))) return { identity: user.text, key: user.publicKey, notAfter: wall / 1000 + 3600 };
        throw new Error("certificate refused");
      },
      now: clock.now,
      wallClock: clock.wallClock,
      setTimer: clock.setTimer,
      limits: { queueCapacity: 2, decisionTimeoutMs: 1000 },
    });
    const rendezvous = createRendezvousNode({ now: clock.now, setTimer: clock.setTimer });
    const services = { presence: presence.services.presence, introduce: presence.services.introduce, rendezvous: rendezvous.service };
    return { clock, services };
  };
  return { valid, start };
}

const serviceOp = (valid: Record<ServiceName, Uint8Array[]>) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom<ServiceName>("presence", "introduce", "introduce", "rendezvous").chain((service) =>
      fc.record({
        op: fc.constant("send" as const),
        service: fc.constant(service),
        slot: fc.nat(2),
        bytes: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...valid[service]) }, { weight: 2, arbitrary: fc.constantFrom(...valid[service]).chain(mutate) }, fc.uint8Array({ maxLength: 80 })),
      }),
    ) },
    fc.record({ op: fc.constant("end" as const), service: fc.constantFrom<ServiceName>("presence", "introduce", "rendezvous"), slot: fc.nat(2) }),
    fc.record({ op: fc.constant("drain" as const), service: fc.constant<ServiceName>("rendezvous"), slot: fc.nat(2) }),
    fc.nat(3000).map((ms) => ({ op: "time" as const, ms })),
  );

let world: ReturnType<typeof serviceWorld> | undefined;
/** The registration's channel cap (serviceWorld's limits). */
const MAX_CHANNELS = 3;

export const presenceTargets: FuzzTarget[] = [
  target("presence decoders: random bytes decode and re-encode, or are refused malformed", () =>
    fc.property(fc.constantFrom(...DECODER_NAMES), fc.uint8Array({ maxLength: 600 }), (name, input) => {
      decodeOrMalformed(name, input);
    }),
  ),
  target("presence decoders: mutated valid encodings decode and re-encode, or are refused malformed", () =>
    fc.property(
      fc.constantFrom(...VALID_ENCODINGS).chain(({ name, bytes }) => mutate(bytes).map((input) => ({ name, input }))),
      ({ name, input }) => {
        decodeOrMalformed(name, input);
      },
    ),
  ),
  target("presence decoders: valid maps with one field replaced by any CBOR value are refused malformed or still valid", () =>
    fc.property(fieldEdit, ({ name, bytes: input }) => {
      decodeOrMalformed(name, input);
    }),
  ),
  target("presence decoders: any CBOR value fed to every decoder", () =>
    fc.property(canonicalValue, (value) => {
      const input = encodeCanonical(value);
      for (const name of DECODER_NAMES) decodeOrMalformed(name, input);
    }),
  ),
  target(
    "presence and rendezvous services: any messages on any streams are answered only with messages the peers' decoders accept",
    () => {
      world ??= serviceWorld();
      const { valid, start } = world;
      return fc.asyncProperty(fc.array(serviceOp(valid), { minLength: 1, maxLength: 40 }), async (ops) => {
        const { clock, services } = start();
        const user = new FakeServiceStream("presence").open(services.presence);
        const streams = new Map<string, { service: ServiceName; stream: FakeServiceStream }>([["presence/0", { service: "presence", stream: user }]]);
        const all: { service: ServiceName; stream: FakeServiceStream }[] = [...streams.values()];
        // The point is registered before anything else happens.
        user.receive(valid.presence[0] as Uint8Array);
        await new Promise<void>((resolve) => setImmediate(resolve));
        const into = new Set<string>(); // bytes sent into rendezvous streams: relayed frames come out unchanged
        const streamAt = (service: ServiceName, slot: number) => {
          const key = `${service}/${slot}`;
          let s = streams.get(key);
          if (!s || !s.stream.isOpen) {
            s = { service, stream: new FakeServiceStream(service).open(services[service]) };
            streams.set(key, s);
            all.push(s);
          }
          return s.stream;
        };
        const verify = () => {
          for (const { service, stream } of all) {
            for (const m of stream.sent) {
              if (service === "rendezvous" && into.has(Buffer.from(m).toString("hex"))) continue;
              decodeOrMalformed(SERVICE_DECODERS[service], m);
              check(typedOnly([PresenceError], () => PRESENCE_DECODERS[SERVICE_DECODERS[service]](m)) === undefined, `the ${service} service sent a message its peer refuses`);
            }
            if (service === "introduce") check(stream.sent.length <= 1, "an introducer got more than one answer");
            if (service === "presence") {
              const delivered = stream.sent.filter((m) => PRESENCE_DECODERS.presenceNotice(m).t === "introduce").length;
              check(delivered <= MAX_CHANNELS, `a point took ${delivered} introductions; its user allows ${MAX_CHANNELS}`);
            }
          }
        };
        for (const o of ops) {
          if (o.op === "time") clock.advance(o.ms);
          else if (o.op === "end") streams.get(`${o.service}/${o.slot}`)?.stream.remoteEnd();
          else if (o.op === "drain") streams.get(`${o.service}/${o.slot}`)?.stream.drain();
          else {
            const stream = streamAt(o.service, o.slot);
            if (o.service === "rendezvous") into.add(Buffer.from(o.bytes).toString("hex"));
            stream.receive(o.bytes);
          }
          await new Promise<void>((resolve) => setImmediate(resolve));
          verify();
        }
        clock.advance(60_000);
        verify();
        // Nobody is left hanging: every introducer that stayed got its one answer (or its circuit was cancelled).
        for (const { service, stream } of all) if (service === "introduce") check(!stream.isOpen, "an introducer still waits after every timeout passed");
      });
    },
    0.1,
  ),
];

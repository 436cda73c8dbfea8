/**
 * Fuzz properties of node/src/presence/messages.ts: every decoder of
 * PRESENCE_DECODERS, fed random bytes, mutated valid encodings and valid maps
 * with one field replaced by any CBOR value, either decodes or throws
 * PresenceError "malformed", never another error or kind; what decodes
 * re-encodes to the same bytes. Run briefly by test/unit/presence/fuzz.test.ts
 * and at length by scripts/fuzz-presence.ts.
 */
import fc from "fast-check";
import { PresenceError } from "../../node/src/presence/errors.js";
import {
  PRESENCE_DECODERS,
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
  channelPayload: [{ t: "msg", id: 3, body: new TextEncoder().encode("hello") }, { t: "msg", id: 0, body: new Uint8Array(0) }, { t: "ack", id: 3 }, { t: "close" }],
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
];

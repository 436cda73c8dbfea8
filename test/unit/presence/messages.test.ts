/**
 * Presence-layer message codecs (node/src/presence/messages.ts): every
 * message type round-trips; the decoders refuse oversized input, unknown
 * types and fields, and hostile values with PresenceError "malformed" only.
 * The random-input properties are in fuzz.test.ts (test/properties/presence.ts).
 */
import { describe, expect, it } from "vitest";
import { isPspError } from "../../../node/src/errors.js";
import {
  MAX_CHANNEL_BODY,
  MAX_PRESENCE_MESSAGE_BYTES,
  MAX_RENDEZVOUS_MESSAGE_BYTES,
  MAX_INTRO_CIPHERTEXT_BYTES,
  PRESENCE_DECODERS,
  decodeChannelPayload,
  decodeIntroduceReply,
  decodePresenceNotice,
  decodePresenceRequest,
  encodeChannelPayload,
  encodeIntroduceReply,
  encodePresenceNotice,
  encodeRendezvousMessage,
  decodeRendezvousMessage,
  introductionSigningPayload,
  registrationSigningPayload,
} from "../../../node/src/presence/messages.js";
import type { PresenceRequest } from "../../../node/src/presence/messages.js";
import { decodeCanonical, encodeCanonical } from "../../../node/src/wire/canonical.js";
import type { CanonicalValue } from "../../../node/src/wire/canonical.js";
import { DECODER_NAMES, PRESENCE_ENCODERS, PRESENCE_SAMPLES, VALID_ENCODINGS, type DecoderName } from "../../properties/presence.js";

/** The PresenceError kind `fn` throws; fails the test on any other error. */
function kindOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isPspError(err) && err.layer === "presence") return err.kind;
    throw err;
  }
  return "no error";
}

const limitOf: Record<DecoderName, number> = {
  presenceRequest: MAX_PRESENCE_MESSAGE_BYTES,
  presenceNotice: MAX_PRESENCE_MESSAGE_BYTES,
  introduceRequest: MAX_PRESENCE_MESSAGE_BYTES,
  introduceReply: MAX_PRESENCE_MESSAGE_BYTES,
  rendezvousMessage: MAX_RENDEZVOUS_MESSAGE_BYTES,
  introPlaintext: MAX_INTRO_CIPHERTEXT_BYTES,
  channelPayload: MAX_CHANNEL_BODY + 64,
};

/** A valid sample of `name` decoded to its CBOR map, edited, and encoded again. */
function edited(name: DecoderName, index: number, edit: (m: { [key: string]: CanonicalValue }) => void): Uint8Array {
  const m = decodeCanonical(PRESENCE_ENCODERS[name](PRESENCE_SAMPLES[name][index]), { maxBytes: 1 << 20 }) as { [key: string]: CanonicalValue };
  edit(m);
  return encodeCanonical(m);
}

/** Whether a message type may leave `field` out (renew's cert, introduce's and a refusal's pow, joined's reply). */
const optional = (sample: unknown, field: string): boolean => {
  const t = (sample as { t?: string }).t;
  return field === "pow" || (t === "renew" && field === "cert") || (t === "joined" && field === "reply");
};

/** An object with a "toString" that is not a function: String() and template literals throw TypeError on it. */
const trap = (): { [key: string]: CanonicalValue } => ({ toString: null, valueOf: null });

describe("presence messages: round trips", () => {
  for (const name of DECODER_NAMES) {
    it(`every ${name} sample decodes to itself and re-encodes to the same bytes`, () => {
      for (const value of PRESENCE_SAMPLES[name]) {
        const bytes = PRESENCE_ENCODERS[name](value);
        const decoded = PRESENCE_DECODERS[name](bytes);
        expect(decoded).toEqual(value);
        expect(Buffer.from(PRESENCE_ENCODERS[name](decoded)).equals(Buffer.from(bytes))).toBe(true);
      }
    });
  }

  it("the samples cover every message type of every decoder", () => {
    const types = (name: DecoderName) => new Set(PRESENCE_SAMPLES[name].map((v) => (v as { t?: string }).t ?? "-"));
    expect([...types("presenceRequest")].sort()).toEqual(["cancel", "decide", "register", "renew"]);
    expect([...types("presenceNotice")].sort()).toEqual(["introduce", "notice", "refused", "registered"]);
    expect([...types("introduceReply")].sort()).toEqual(["ack", "refused"]);
    expect([...types("rendezvousMessage")].sort()).toEqual(["establish", "established", "join", "joined", "refused"]);
    expect([...types("channelPayload")].sort()).toEqual(["ack", "close", "keepalive", "msg"]);
  });

  it("a channel message of the largest body a channel sends decodes", () => {
    const body = new Uint8Array(MAX_CHANNEL_BODY).fill(0xab);
    const decoded = decodeChannelPayload(encodeChannelPayload({ t: "msg", id: 0xffff_ffff, body }));
    expect(decoded.t === "msg" && decoded.body.length).toBe(MAX_CHANNEL_BODY);
  });

  it("a refusal's long message is clipped to what the wire carries and still decodes, even when cut inside a surrogate pair", () => {
    const long = `${"a".repeat(254)}😀${"b".repeat(100)}`;
    for (const bytes of [
      encodePresenceNotice({ t: "refused", kind: "busy", message: long }),
      encodeIntroduceReply({ t: "refused", kind: "busy", message: long }),
      encodeRendezvousMessage({ t: "refused", kind: "busy", message: long }),
    ]) {
      const m = (decodeCanonical(bytes, { maxBytes: 4096 }) as { message: string }).message;
      expect(m.length).toBeLessThanOrEqual(256);
      expect(m.startsWith("a".repeat(254))).toBe(true);
    }
    expect(decodePresenceNotice(encodePresenceNotice({ t: "refused", kind: "busy", message: long }))).toMatchObject({ t: "refused", kind: "busy" });
  });
});

describe("presence messages: refusals", () => {
  for (const name of DECODER_NAMES) {
    it(`${name}: input over ${limitOf[name]} bytes is refused malformed before decoding`, () => {
      const over = new Uint8Array(limitOf[name] + 1);
      expect(kindOf(() => PRESENCE_DECODERS[name](over))).toBe("malformed");
    });

    it(`${name}: a sample with an unknown field, or lacking a field, is refused malformed`, () => {
      PRESENCE_SAMPLES[name].forEach((sample, i) => {
        expect(kindOf(() => PRESENCE_DECODERS[name](edited(name, i, (m) => (m["extra"] = 1))))).toBe("malformed");
        const fields = Object.keys(decodeCanonical(PRESENCE_ENCODERS[name](sample), { maxBytes: 1 << 20 }) as object);
        for (const field of fields.filter((f) => !optional(sample, f)))
          expect([field, kindOf(() => PRESENCE_DECODERS[name](edited(name, i, (m) => delete m[field])))]).toEqual([field, "malformed"]);
      });
    });

    it(`${name}: non-canonical, non-map and non-bytes input is refused malformed`, () => {
      expect(kindOf(() => PRESENCE_DECODERS[name](Uint8Array.of(0xa1, 0x61, 0x74)))).toBe("malformed"); // truncated
      expect(kindOf(() => PRESENCE_DECODERS[name](encodeCanonical([1, 2])))).toBe("malformed");
      expect(kindOf(() => PRESENCE_DECODERS[name](encodeCanonical(new Uint8Array(3))))).toBe("malformed");
      // 1 written in two bytes instead of one: same value, not canonical.
      expect(kindOf(() => PRESENCE_DECODERS[name](Uint8Array.of(0xa1, 0x61, 0x74, 0x18, 0x01)))).toBe("malformed");
      expect(kindOf(() => PRESENCE_DECODERS[name]("not bytes" as unknown as Uint8Array))).toBe("malformed");
    });

    it(`${name}: a type field that is a map with a non-function toString is refused malformed, not a TypeError`, () => {
      expect(kindOf(() => PRESENCE_DECODERS[name](encodeCanonical({ t: trap() })))).toBe("malformed");
    });
  }

  it("a version that is a map with a non-function toString is refused malformed in register, introduce and the plaintext", () => {
    expect(kindOf(() => decodePresenceRequest(edited("presenceRequest", 0, (m) => (m["v"] = trap()))))).toBe("malformed");
    expect(kindOf(() => PRESENCE_DECODERS.introduceRequest(edited("introduceRequest", 0, (m) => (m["v"] = trap()))))).toBe("malformed");
    expect(kindOf(() => PRESENCE_DECODERS.introPlaintext(edited("introPlaintext", 0, (m) => (m["v"] = trap()))))).toBe("malformed");
  });

  it("another protocol version is refused malformed", () => {
    expect(kindOf(() => decodePresenceRequest(edited("presenceRequest", 0, (m) => (m["v"] = 2))))).toBe("malformed");
    expect(kindOf(() => PRESENCE_DECODERS.introduceRequest(edited("introduceRequest", 0, (m) => (m["v"] = 2))))).toBe("malformed");
    expect(kindOf(() => PRESENCE_DECODERS.introPlaintext(edited("introPlaintext", 0, (m) => (m["v"] = 0))))).toBe("malformed");
  });

  it("a refusal kind that is not a wire kind is refused", () => {
    for (const kind of ["bad-argument", "channel-replayed", "closed", "no-such-kind"]) {
      expect(kindOf(() => decodeIntroduceReply(encodeCanonical({ t: "refused", kind, message: "" })))).toBe("malformed");
      expect(kindOf(() => decodePresenceNotice(encodeCanonical({ t: "refused", kind, message: "" })))).toBe("malformed");
      expect(kindOf(() => decodeRendezvousMessage(encodeCanonical({ t: "refused", kind, message: "" })))).toBe("malformed");
    }
  });

  it("register refuses a period length of 0 minutes (no time period has length 0) and slots no record can name", () => {
    expect(kindOf(() => decodePresenceRequest(edited("presenceRequest", 0, (m) => (m["periodLength"] = 0))))).toBe("malformed");
    expect(kindOf(() => decodePresenceRequest(edited("presenceRequest", 0, (m) => (m["slot"] = 8))))).toBe("malformed");
    expect(decodePresenceRequest(edited("presenceRequest", 0, (m) => (m["slot"] = 7)))).toMatchObject({ t: "register", slot: 7 });
  });

  it("fixed-length fields of the wrong length are refused", () => {
    expect(kindOf(() => decodeRendezvousMessage(encodeCanonical({ t: "establish", cookie: new Uint8Array(19) })))).toBe("malformed");
    expect(kindOf(() => PRESENCE_DECODERS.introduceRequest(edited("introduceRequest", 0, (m) => (m["x"] = new Uint8Array(31)))))).toBe("malformed");
    expect(kindOf(() => PRESENCE_DECODERS.introduceRequest(edited("introduceRequest", 0, (m) => (m["ct"] = new Uint8Array(0)))))).toBe("malformed");
    expect(kindOf(() => decodePresenceRequest(edited("presenceRequest", 0, (m) => (m["sig"] = new Uint8Array(63)))))).toBe("malformed");
  });

  it("every sample of the property file is a valid encoding", () => {
    for (const { name, bytes } of VALID_ENCODINGS) expect(kindOf(() => PRESENCE_DECODERS[name](bytes))).toBe("no error");
  });
});

describe("presence messages: signed payloads", () => {
  const register = PRESENCE_SAMPLES.presenceRequest[0] as Extract<PresenceRequest, { t: "register" }>;

  it("the registration payload changes with every field it binds, and not with the signature", () => {
    const base = Buffer.from(registrationSigningPayload(register)).toString("hex");
    const variants: Partial<typeof register>[] = [
      { node: new Uint8Array(32).fill(9) },
      { identity: "peerstream.client.account.other" },
      { period: register.period + 1 },
      { periodLength: 60 },
      { slot: 1 },
      { authKey: new Uint8Array(32).fill(9) },
      { record: { ...register.record, ownerSig: new Uint8Array(64).fill(9) } },
      { limits: { ...register.limits, maxChannels: 1 } },
      { time: register.time + 1 },
    ];
    for (const v of variants) expect(Buffer.from(registrationSigningPayload({ ...register, ...v })).toString("hex")).not.toBe(base);
    expect(Buffer.from(registrationSigningPayload({ ...register, sig: new Uint8Array(64) })).toString("hex")).toBe(base);
  });

  it("the introduction payload changes with every field it binds", () => {
    const p = { authKey: new Uint8Array(32), x: new Uint8Array(32).fill(1), rdv: new Uint8Array(32).fill(2), cookie: new Uint8Array(20).fill(3), time: 5 };
    const base = Buffer.from(introductionSigningPayload(p)).toString("hex");
    for (const v of [{ authKey: new Uint8Array(32).fill(9) }, { x: new Uint8Array(32) }, { rdv: new Uint8Array(32) }, { cookie: new Uint8Array(20) }, { time: 6 }])
      expect(Buffer.from(introductionSigningPayload({ ...p, ...v })).toString("hex")).not.toBe(base);
  });
});

/**
 * Introductions (node/src/presence/introduction.ts): build → open → answer
 * → finish gives both ends the same key seed; every way an introduction can
 * be wrong is refused with its own kind (intro-auth-failed, bad-certificate,
 * bad-signature, stale, malformed), and the rendezvous reply authenticates
 * only with the point's keys.
 */
import { describe, expect, it } from "vitest";
import { aeadSeal } from "../../../node/src/crypto/aead.js";
import { subcredential } from "../../../node/src/crypto/blinding.js";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { hsMac, hsNtorClientIntroduceKeys } from "../../../node/src/crypto/hs-ntor.js";
import { generateX25519KeyPair } from "../../../node/src/crypto/x25519.js";
import { answerIntroduction, buildIntroduction, DEFAULT_INTRO_MAX_SKEW_MS, finishIntroduction, openIntroduction } from "../../../node/src/presence/introduction.js";
import type { BuildIntroductionOptions, IntroducerCertificate, OpenIntroductionOptions } from "../../../node/src/presence/introduction.js";
import { presenceLocation, presencePeriod } from "../../../node/src/presence/record.js";
import { encodeCanonical } from "../../../node/src/wire/canonical.js";
import { flipped, hex, makeUser, presenceKind } from "./helpers.js";

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
const PERIOD_LENGTH = 1440;
const PERIOD = presencePeriod(NOW, PERIOD_LENGTH);

// The peer (who is introduced to) and its presence point; the initiator (who asks).
const bob = makeUser();
const alice = makeUser();
const mallory = makeUser();
const authKey = generateEd25519KeyPair().publicKey;
const enc = generateX25519KeyPair();
const subFor = (period: number) => subcredential(bob.publicKey, presenceLocation(bob.publicKey, period, PERIOD_LENGTH, 0).blinded);
const SUB = subFor(PERIOD);
const rdv = new Uint8Array(32).fill(0x5d);
const cookie = new Uint8Array(20).fill(0xc0);

/** Certificates are opaque here: "cert:<identity>" verifies to that identity; "expired" throws. */
const certFor = (user: { text: string }) => new TextEncoder().encode(`cert:${user.text}`);
const users = new Map([alice, bob, mallory].map((u) => [u.text, u]));
function verifyCertificate(cert: Uint8Array): IntroducerCertificate {
  const text = new TextDecoder().decode(cert);
  if (!text.startsWith("cert:")) throw new Error("not a certificate");
  const user = users.get(text.slice(5));
  if (!user) throw new Error("unknown identity");
  return { identity: user.text, key: user.publicKey, notAfter: NOW / 1000 + 3600 };
}

function build(o: Partial<BuildIntroductionOptions> = {}) {
  return buildIntroduction({
    authKey,
    encKey: enc.publicKey,
    subcredential: SUB,
    identity: alice.text,
    identitySecret: alice.secretKey,
    cert: certFor(alice),
    rdv,
    cookie,
    now: NOW,
    ...o,
  });
}

function open(request: { x: Uint8Array; ct: Uint8Array; mac: Uint8Array }, o: Partial<OpenIntroductionOptions> = {}) {
  return openIntroduction({
    authKey,
    encSecret: enc.secretKey,
    encKey: enc.publicKey,
    subcredentials: [SUB],
    x: request.x,
    ct: request.ct,
    mac: request.mac,
    verifyCertificate,
    now: NOW,
    ...o,
  });
}

const openKind = (request: { x: Uint8Array; ct: Uint8Array; mac: Uint8Array }, o: Partial<OpenIntroductionOptions> = {}) => presenceKind(() => open(request, o));

/** An introduction whose MAC is right for an arbitrary ciphertext: what a sender holding the keys could make. */
function withCiphertext(makeCt: (encKey: Uint8Array, x: Uint8Array) => Uint8Array) {
  const keys = hsNtorClientIntroduceKeys({ introAuthKey: authKey, introEncKey: enc.publicKey, subcredential: SUB });
  const x = keys.clientPublic;
  const ct = makeCt(keys.encKey, x);
  return { x, ct, mac: hsMac(keys.macKey, new Uint8Array([...authKey, ...x, ...ct])) };
}

describe("introductions", () => {
  it("build → open → answer → finish gives both ends the same key seed", () => {
    const built = build();
    const opened = open(built.request);
    expect(opened.identity).toBe(alice.text);
    expect(hex(opened.identityKey)).toBe(hex(alice.publicKey));
    expect([hex(opened.rdv), hex(opened.cookie), opened.time, hex(opened.subcredential)]).toEqual([hex(rdv), hex(cookie), NOW, hex(SUB)]);
    const answer = answerIntroduction({ authKey, encSecret: enc.secretKey, encKey: enc.publicKey, subcredential: opened.subcredential, x: built.request.x });
    const seed = finishIntroduction({ authKey, encKey: enc.publicKey, clientSecret: built.clientSecret, reply: answer.reply });
    expect(seed.length).toBe(32);
    expect(hex(seed)).toBe(hex(answer.keySeed));
    // Every introduction is a fresh handshake.
    expect(hex(build().request.x)).not.toBe(hex(built.request.x));
  });

  it("the presence node sees only ciphertext: neither the identity nor the cookie appears in the request", () => {
    const { request } = build();
    const wire = Buffer.from([...request.x, ...request.ct, ...request.mac]);
    expect(wire.includes(Buffer.from(alice.text))).toBe(false);
    expect(wire.includes(Buffer.from(cookie))).toBe(false);
  });

  it("the second of two subcredentials opens it (a point published under two periods)", () => {
    const built = build({ subcredential: subFor(PERIOD + 1) });
    expect(openKind(built.request)).toBe("intro-auth-failed");
    const opened = open(built.request, { subcredentials: [SUB, subFor(PERIOD + 1)] });
    expect(hex(opened.subcredential)).toBe(hex(subFor(PERIOD + 1)));
    const answer = answerIntroduction({ authKey, encSecret: enc.secretKey, encKey: enc.publicKey, subcredential: opened.subcredential, x: built.request.x });
    expect(hex(finishIntroduction({ authKey, encKey: enc.publicKey, clientSecret: built.clientSecret, reply: answer.reply }))).toBe(hex(answer.keySeed));
  });

  it("a wrong subcredential, or none, is intro-auth-failed", () => {
    const { request } = build();
    expect(openKind(request, { subcredentials: [subFor(PERIOD - 1)] })).toBe("intro-auth-failed");
    expect(openKind(request, { subcredentials: [] })).toBe("intro-auth-failed");
  });

  it("a flipped MAC, ciphertext or handshake key, another point's keys are intro-auth-failed", () => {
    const { request } = build();
    expect(openKind({ ...request, mac: flipped(request.mac, 31) })).toBe("intro-auth-failed");
    expect(openKind({ ...request, ct: flipped(request.ct, 0) })).toBe("intro-auth-failed");
    expect(openKind({ ...request, ct: flipped(request.ct, request.ct.length - 1) })).toBe("intro-auth-failed");
    expect(openKind({ ...request, x: flipped(request.x, 5) })).toBe("intro-auth-failed");
    expect(openKind(request, { authKey: generateEd25519KeyPair().publicKey })).toBe("intro-auth-failed");
    const other = generateX25519KeyPair();
    expect(openKind(request, { encSecret: other.secretKey, encKey: other.publicKey })).toBe("intro-auth-failed");
  });

  it("a low-order handshake key is intro-auth-failed, not a crypto error", () => {
    const { request } = build();
    expect(openKind({ ...request, x: new Uint8Array(32) })).toBe("intro-auth-failed");
  });

  it("a ciphertext whose MAC verifies but that does not decrypt is intro-auth-failed; one that decrypts to garbage is malformed", () => {
    expect(openKind(withCiphertext(() => new Uint8Array(40).fill(9)))).toBe("intro-auth-failed");
    const garbage = withCiphertext((k) => aeadSeal(k, new Uint8Array(12), encodeCanonical({ nonsense: true }), new Uint8Array(0)));
    // Sealed without the (authKey ‖ X) associated data: does not open.
    expect(openKind(garbage)).toBe("intro-auth-failed");
    const decryptsToGarbage = withCiphertext((k, x) => aeadSeal(k, new Uint8Array(12), encodeCanonical({ nonsense: true }), new Uint8Array([...authKey, ...x])));
    expect(openKind(decryptsToGarbage)).toBe("malformed");
  });

  it("a plaintext naming a malformed identity is malformed", () => {
    const { request } = build({ identity: "not.an.identity" });
    expect(openKind(request)).toBe("malformed");
  });

  it("a certificate for another identity, or one the verifier refuses, is bad-certificate", () => {
    expect(openKind(build({ cert: certFor(mallory) }).request)).toBe("bad-certificate");
    expect(openKind(build({ cert: new TextEncoder().encode("forged") }).request)).toBe("bad-certificate");
    const throwing = () => {
      throw new Error("expired");
    };
    expect(openKind(build().request, { verifyCertificate: throwing })).toBe("bad-certificate");
    // Same identity string, another key: still another identity.
    const otherKey = () => ({ identity: alice.text, key: mallory.publicKey, notAfter: 0 });
    expect(openKind(build().request, { verifyCertificate: otherKey })).toBe("bad-certificate");
  });

  it("a signature by another key than the identity's is bad-signature", () => {
    expect(openKind(build({ identitySecret: mallory.secretKey }).request)).toBe("bad-signature");
  });

  it("a time outside the window is stale, in both directions; the edge of the window is accepted", () => {
    const { request } = build();
    expect(openKind(request, { now: NOW + DEFAULT_INTRO_MAX_SKEW_MS + 1 })).toBe("stale");
    expect(openKind(request, { now: NOW - DEFAULT_INTRO_MAX_SKEW_MS - 1 })).toBe("stale");
    expect(openKind(request, { now: NOW + DEFAULT_INTRO_MAX_SKEW_MS })).toBe("no error");
    expect(openKind(request, { now: NOW + 1000, maxSkewMs: 999 })).toBe("stale");
  });

  it("the rendezvous reply authenticates only with the point's keys and the introduction's secret", () => {
    const built = build();
    const opened = open(built.request);
    const { reply } = answerIntroduction({ authKey, encSecret: enc.secretKey, encKey: enc.publicKey, subcredential: opened.subcredential, x: built.request.x });
    const finish = (o: Partial<Parameters<typeof finishIntroduction>[0]>) =>
      presenceKind(() => finishIntroduction({ authKey, encKey: enc.publicKey, clientSecret: built.clientSecret, reply, ...o }));
    expect(finish({ reply: flipped(reply, 40) })).toBe("rendezvous-failed");
    expect(finish({ reply: flipped(reply, 0) })).toBe("rendezvous-failed");
    expect(finish({ clientSecret: build().clientSecret })).toBe("rendezvous-failed");
    expect(finish({ encKey: generateX25519KeyPair().publicKey })).toBe("rendezvous-failed");
    expect(finish({ reply: new Uint8Array(64) })).toBe("rendezvous-failed");
    expect(finish({})).toBe("no error");
  });

  it("a given handshake secret makes the request reproducible, and the caller's copy is left alone", () => {
    const clientSecret = new Uint8Array(32).fill(0x42);
    const a = build({ clientSecret });
    const b = build({ clientSecret });
    expect([hex(a.request.x), hex(a.request.ct), hex(a.request.mac)]).toEqual([hex(b.request.x), hex(b.request.ct), hex(b.request.mac)]);
    a.clientSecret.fill(0);
    expect(hex(clientSecret)).toBe("42".repeat(32));
  });
});

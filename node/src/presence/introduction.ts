/**
 * Introductions and the rendezvous handshake (docs/spec/presence.md
 * "Introduction" and "Rendezvous"), rend-spec-v3's hs-ntor under PSP's
 * protocol id.
 *
 * The initiator encrypts its identity, access certificate, rendezvous node
 * and one-time cookie to the peer's announcement key (the presence point's
 * encKey) with the hs-ntor INTRODUCE keys, and MACs the whole request; it
 * signs the handshake with its identity key so a copied certificate proves
 * nothing. The presence node forwards the request without being able to
 * read it. The peer opens it, checks certificate, signature and time, and
 * on acceptance answers through the rendezvous node with Y ‖ AUTH; both
 * ends then hold the same NTOR_KEY_SEED, which seeds the channel ratchet.
 *
 * Pure functions; the caller supplies the clock and the certificate check.
 * Trusts: crypto/hs-ntor.ts, and the certificate check it is given.
 */
import { aeadOpen, aeadSeal, AEAD_NONCE_LEN } from "../crypto/aead.js";
import { constantTimeEqual } from "../crypto/compare.js";
import { ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import { CryptoError } from "../crypto/errors.js";
import { hsMac, hsNtorClientIntroduceKeys, hsNtorClientRendezvous, hsNtorServiceIntroduceKeys, hsNtorServiceRendezvous } from "../crypto/hs-ntor.js";
import { parseIdentity } from "../crypto/identity.js";
import { concatBytes } from "../base/bytes.js";
import { PresenceError } from "./errors.js";
import { decodeIntroPlaintext, encodeIntroPlaintext, introductionSigningPayload } from "./messages.js";
import type { IntroduceRequest } from "./messages.js";

/** Introductions dated further than this from the peer's clock are refused "stale". */
export const DEFAULT_INTRO_MAX_SKEW_MS = 5 * 60_000;
/** ENC_KEY seals exactly one introduction, so a zero nonce is safe. */
const ZERO_NONCE = new Uint8Array(AEAD_NONCE_LEN);

export interface BuildIntroductionOptions {
  /** The presence point's introduction key and announcement encryption key. */
  authKey: Uint8Array;
  encKey: Uint8Array;
  /** subcredential(peer identity key, blinded key of the period the point's record was found under). */
  subcredential: Uint8Array;
  /** The initiator: identity string, Ed25519 seed and access certificate. */
  identity: string;
  identitySecret: Uint8Array;
  cert: Uint8Array;
  /** Where the channel will meet: the rendezvous node's identity key and the cookie established there. */
  rdv: Uint8Array;
  cookie: Uint8Array;
  /** Wall clock, ms since the epoch. */
  now: number;
  /** The hs-ntor secret x; random when omitted (given only by test vectors). */
  clientSecret?: Uint8Array;
}

export interface BuiltIntroduction {
  request: IntroduceRequest;
  /** The hs-ntor secret x: keep it to finish the rendezvous, then erase it. */
  clientSecret: Uint8Array;
}

/** Initiator side: the INTRODUCE request for one presence point. */
export function buildIntroduction(o: BuildIntroductionOptions): BuiltIntroduction {
  const keys = hsNtorClientIntroduceKeys({
    introAuthKey: o.authKey,
    introEncKey: o.encKey,
    subcredential: o.subcredential,
    ...(o.clientSecret ? { clientSecret: o.clientSecret.slice() } : {}),
  });
  const x = keys.clientPublic;
  const sig = ed25519Sign(o.identitySecret, introductionSigningPayload({ authKey: o.authKey, x, rdv: o.rdv, cookie: o.cookie, time: o.now }));
  const plaintext = encodeIntroPlaintext({ identity: o.identity, cert: o.cert, rdv: o.rdv, cookie: o.cookie, time: o.now, sig });
  const ct = aeadSeal(keys.encKey, ZERO_NONCE, plaintext, concatBytes(o.authKey, x));
  const mac = hsMac(keys.macKey, concatBytes(o.authKey, x, ct));
  keys.encKey.fill(0);
  keys.macKey.fill(0);
  return { request: { t: "introduce", authKey: o.authKey, x, ct, mac }, clientSecret: keys.clientSecret };
}

/** The certificate as the receiving end checked it. */
export interface IntroducerCertificate {
  identity: string;
  key: Uint8Array;
  notAfter: number;
}

export interface OpenIntroductionOptions {
  authKey: Uint8Array;
  /** The point's announcement key pair. */
  encSecret: Uint8Array;
  encKey: Uint8Array;
  /** Subcredentials of the periods the point was published under, tried in order. */
  subcredentials: readonly Uint8Array[];
  x: Uint8Array;
  ct: Uint8Array;
  mac: Uint8Array;
  /** Checks an access certificate (threshold of current authorities, expiry); throws for a bad one. */
  verifyCertificate: (cert: Uint8Array) => IntroducerCertificate;
  now: number;
  maxSkewMs?: number;
}

export interface OpenedIntroduction {
  /** Who asks: verified against the certificate and the signature. */
  identity: string;
  identityKey: Uint8Array;
  certificate: IntroducerCertificate;
  rdv: Uint8Array;
  cookie: Uint8Array;
  time: number;
  /** The subcredential that opened it (the rendezvous reply uses the same keys). */
  subcredential: Uint8Array;
}

/**
 * Receiving side: decrypts and checks an introduction. Throws PresenceError
 * "intro-auth-failed" (MAC or decryption), "malformed", "bad-certificate",
 * "bad-signature" or "stale"; the caller then refuses it.
 */
export function openIntroduction(o: OpenIntroductionOptions): OpenedIntroduction {
  let plaintext: Uint8Array | undefined;
  let usedSubcredential: Uint8Array | undefined;
  const macInput = concatBytes(o.authKey, o.x, o.ct);
  for (const sub of o.subcredentials) {
    let keys;
    try {
      keys = hsNtorServiceIntroduceKeys({ introAuthKey: o.authKey, introEncSecret: o.encSecret, introEncKey: o.encKey, clientPublic: o.x, subcredential: sub });
    } catch (err) {
      // A low-order X gives an all-zero shared secret: the introducer's fault.
      if (CryptoError.is(err)) throw new PresenceError("intro-auth-failed", "introduction key exchange failed", { cause: err });
      throw err;
    }
    const macOk = constantTimeEqual(hsMac(keys.macKey, macInput), o.mac);
    if (macOk) {
      try {
        plaintext = aeadOpen(keys.encKey, ZERO_NONCE, o.ct, concatBytes(o.authKey, o.x));
        usedSubcredential = sub;
      } catch (err) {
        throw new PresenceError("intro-auth-failed", "introduction does not decrypt", { cause: err });
      }
    }
    keys.encKey.fill(0);
    keys.macKey.fill(0);
    if (plaintext) break;
  }
  if (!plaintext || !usedSubcredential) throw new PresenceError("intro-auth-failed", "introduction MAC does not verify for this presence point");
  const p = decodeIntroPlaintext(plaintext);
  let identityKey: Uint8Array;
  try {
    identityKey = parseIdentity(p.identity).publicKey;
  } catch (err) {
    throw new PresenceError("malformed", `introduction names a malformed identity: ${(err as Error).message}`, { cause: err });
  }
  let certificate: IntroducerCertificate;
  try {
    certificate = o.verifyCertificate(p.cert);
  } catch (err) {
    throw new PresenceError("bad-certificate", `introduction's access certificate is refused: ${(err as Error).message}`, { cause: err });
  }
  if (certificate.identity !== p.identity || !constantTimeEqual(certificate.key, identityKey)) {
    throw new PresenceError("bad-certificate", "introduction's access certificate is for another identity");
  }
  if (!ed25519Verify(identityKey, introductionSigningPayload({ authKey: o.authKey, x: o.x, rdv: p.rdv, cookie: p.cookie, time: p.time }), p.sig)) {
    throw new PresenceError("bad-signature", "introduction is not signed by the identity it names");
  }
  const skew = o.maxSkewMs ?? DEFAULT_INTRO_MAX_SKEW_MS;
  if (Math.abs(o.now - p.time) > skew)
    throw new PresenceError("stale", `introduction is dated ${Math.round((p.time - o.now) / 1000)} s from now; at most ${skew / 1000} s is accepted`);
  return { identity: p.identity, identityKey, certificate, rdv: p.rdv, cookie: p.cookie, time: p.time, subcredential: usedSubcredential };
}

/** Receiving side, on acceptance: the RENDEZVOUS reply (Y ‖ AUTH) and the channel's key seed. */
export function answerIntroduction(o: { authKey: Uint8Array; encSecret: Uint8Array; encKey: Uint8Array; subcredential: Uint8Array; x: Uint8Array }): {
  reply: Uint8Array;
  keySeed: Uint8Array;
} {
  const r = hsNtorServiceRendezvous({
    introAuthKey: o.authKey,
    introEncSecret: o.encSecret,
    introEncKey: o.encKey,
    clientPublic: o.x,
    subcredential: o.subcredential,
  });
  r.encKey.fill(0);
  r.macKey.fill(0);
  return { reply: r.reply, keySeed: r.keySeed };
}

/** Initiator side: checks the peer's reply and derives the channel's key seed; "rendezvous-failed" when it does not authenticate. */
export function finishIntroduction(o: { authKey: Uint8Array; encKey: Uint8Array; clientSecret: Uint8Array; reply: Uint8Array }): Uint8Array {
  try {
    return hsNtorClientRendezvous({ introAuthKey: o.authKey, introEncKey: o.encKey, clientSecret: o.clientSecret, reply: o.reply });
  } catch (err) {
    if (CryptoError.is(err))
      throw new PresenceError("rendezvous-failed", "the peer's rendezvous reply does not authenticate: it was not made with the point's keys", { cause: err });
    throw err;
  }
}

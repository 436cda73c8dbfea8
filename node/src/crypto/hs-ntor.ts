/**
 * hs-ntor: rend-spec-v3 §3.3.2 [NTOR-WITH-EXTRA-DATA], the handshake of
 * introduction and rendezvous, parameterised by protocol id, as pure
 * functions over bytes.
 *
 * Owns the maths and the byte layouts, named as in rend-spec-v3:
 *   AUTH_KEY (32, Ed25519 key of the introduction point), B / b (the X25519
 *   introduction encryption key), X / x (the client's ephemeral key),
 *   Y / y (the service's ephemeral key), N_hs_subcred (32).
 *
 *   MAC(k, m) = SHA3-256(INT_8(len(k)) ‖ k ‖ m)                     hsMac
 *   KDF(m, n) = SHAKE-256(m), first n bytes
 *
 *   INTRODUCE1 keys (client with EXP(B,x), service with EXP(X,b)):
 *     intro_secret = EXP(B,x) ‖ AUTH_KEY ‖ X ‖ B ‖ PROTOID
 *     ENC_KEY ‖ MAC_KEY = KDF(intro_secret ‖ t_hsenc ‖ m_hsexpand ‖ N_hs_subcred, 64)
 *   RENDEZVOUS1 (service with EXP(X,y), EXP(X,b); client with EXP(Y,x), EXP(B,x)):
 *     rend_secret   = EXP(X,y) ‖ EXP(X,b) ‖ AUTH_KEY ‖ B ‖ X ‖ Y ‖ PROTOID
 *     NTOR_KEY_SEED = MAC(rend_secret, t_hsenc)
 *     verify        = MAC(rend_secret, t_hsverify)
 *     AUTH          = MAC(verify ‖ AUTH_KEY ‖ B ‖ Y ‖ X ‖ PROTOID ‖ "Server", t_hsmac)
 *     reply         = Y (32) ‖ AUTH (32)
 *   with t_hsenc = PROTOID ":hs_key_extract", t_hsverify = PROTOID ":hs_verify",
 *   t_hsmac = PROTOID ":hs_mac", m_hsexpand = PROTOID ":hs_key_expand".
 *
 * With protoId "tor-hs-ntor-curve25519-sha3-256-1" this reproduces Tor's
 * hs-ntor byte for byte (rend-spec-v3 Appendix G.1, tested). PSP's default
 * protocol id keeps PSP's handshakes from ever verifying as Tor's.
 *
 * The rendezvous keys do not depend on the subcredential (as in Tor): the
 * subcredential is bound into the handshake by the INTRODUCE1 MAC instead.
 *
 * Trusts: nothing it receives. All-zero DH results (low-order points) are
 * rejected on both sides; AUTH is compared in constant time.
 */
import { sha3_256 as nobleSha3_256, shake256 as nobleShake256 } from "@noble/hashes/sha3.js";
import { constantTimeEqual } from "./compare.js";
import { CryptoError } from "./errors.js";
import { concatBytes, nodeCrypto } from "./backend.js";
import type { BackendName } from "./backend.js";
import { X25519_KEY_LEN, generateX25519KeyPair, isAllZero, x25519 } from "./x25519.js";
import type { X25519KeyPair } from "./x25519.js";

/** PSP's hs-ntor protocol id (the default). */
export const PSP_HS_NTOR_PROTOID = "psp-hs-ntor-curve25519-sha3-256-1";
/** Tor's hs-ntor protocol id, for interoperability tests against Tor's vectors. */
export const TOR_HS_NTOR_PROTOID = "tor-hs-ntor-curve25519-sha3-256-1";
/** Y (32) ‖ AUTH (32). */
export const HS_NTOR_REPLY_LEN = 64;
export const HS_NTOR_KEY_SEED_LEN = 32;
export const HS_NTOR_ENC_KEY_LEN = 32;
export const HS_NTOR_MAC_KEY_LEN = 32;
export const HS_MAC_LEN = 32;
export const HS_SUBCREDENTIAL_LEN = 32;
/** The introduction point's AUTH_KEY is an Ed25519 public key. */
export const HS_AUTH_KEY_LEN = 32;
/** rend-spec-v3 §4.2.1: Df (32) ‖ Db (32) ‖ Kf (32) ‖ Kb (32). */
export const HS_NTOR_CIRCUIT_KEYS_LEN = 128;
/** Upper bound for hsNtorExpandKeys, far beyond any use; keeps a typo from allocating gigabytes. */
export const HS_NTOR_EXPAND_MAX_LEN = 8192;

/** SHA3-256 and SHAKE-256; node:crypto when present, @noble/hashes otherwise (identical bytes, tested). */
export interface Sha3Backend {
  readonly name: BackendName;
  sha3_256(...parts: Uint8Array[]): Uint8Array;
  shake256(length: number, ...parts: Uint8Array[]): Uint8Array;
}

export const nobleSha3Backend: Sha3Backend = {
  name: "noble",
  sha3_256(...parts) {
    const h = nobleSha3_256.create();
    for (const p of parts) h.update(p);
    return h.digest();
  },
  shake256(length, ...parts) {
    const h = nobleShake256.create({ dkLen: length });
    for (const p of parts) h.update(p);
    return h.digest();
  },
};

function makeNodeSha3Backend(nc: NonNullable<typeof nodeCrypto>): Sha3Backend | undefined {
  try {
    nc.createHash("sha3-256");
    nc.createHash("shake256", { outputLength: 32 });
  } catch {
    return undefined; // an OpenSSL build without SHA-3
  }
  const view = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return {
    name: "node",
    sha3_256(...parts) {
      const h = nc.createHash("sha3-256");
      for (const p of parts) h.update(p);
      return view(h.digest());
    },
    shake256(length, ...parts) {
      const h = nc.createHash("shake256", { outputLength: length });
      for (const p of parts) h.update(p);
      return view(h.digest());
    },
  };
}

export const nodeSha3Backend: Sha3Backend | undefined = nodeCrypto ? makeNodeSha3Backend(nodeCrypto) : undefined;

export const sha3Backends: { node?: Sha3Backend; noble: Sha3Backend } = {
  noble: nobleSha3Backend,
  ...(nodeSha3Backend ? { node: nodeSha3Backend } : {}),
};

/** The backend the functions below use. */
export const sha3: Sha3Backend = nodeSha3Backend ?? nobleSha3Backend;

const encoder = new TextEncoder();
const SERVER = encoder.encode("Server");

interface Tweaks {
  protoId: Uint8Array;
  hsEnc: Uint8Array;
  hsVerify: Uint8Array;
  hsMac: Uint8Array;
  hsExpand: Uint8Array;
}

const tweakCache = new Map<string, Tweaks>();

function tweaks(protoId: string | undefined): Tweaks {
  const id = protoId ?? PSP_HS_NTOR_PROTOID;
  if (typeof id !== "string" || id.length === 0 || id.length > 255) {
    throw new CryptoError("hs-ntor-bad-message", "hs-ntor protocol id must be a non-empty string of at most 255 characters");
  }
  let t = tweakCache.get(id);
  if (!t) {
    t = {
      protoId: encoder.encode(id),
      hsEnc: encoder.encode(`${id}:hs_key_extract`),
      hsVerify: encoder.encode(`${id}:hs_verify`),
      hsMac: encoder.encode(`${id}:hs_mac`),
      hsExpand: encoder.encode(`${id}:hs_key_expand`),
    };
    if (tweakCache.size < 16) tweakCache.set(id, t);
  }
  return t;
}

function describe(value: unknown): string {
  return value instanceof Uint8Array ? `${value.length} bytes` : typeof value;
}

function checkBytes(value: Uint8Array, length: number, what: string): void {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new CryptoError("bad-key-length", `hs-ntor ${what} must be ${length} bytes, got ${describe(value)}`);
  }
}

/** A fresh ephemeral key pair, or the one of `secret` when a caller fixed it (test vectors). */
function keyPairFor(secret: Uint8Array | undefined, what: string): X25519KeyPair {
  if (secret === undefined) return generateX25519KeyPair();
  checkBytes(secret, X25519_KEY_LEN, what);
  return { secretKey: secret, publicKey: x25519.publicKey(secret) };
}

function dh(secret: Uint8Array, pub: Uint8Array, what: string): Uint8Array {
  const out = x25519.scalarMult(secret, pub);
  if (isAllZero(out)) throw new CryptoError("zero-shared-secret", `hs-ntor: ${what} is all zero (low-order public key)`);
  return out;
}

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

/**
 * rend-spec-v3's MAC: SHA3-256(INT_8(len(key)) ‖ key ‖ message). Used for
 * the INTRODUCE1 MAC (key = MAC_KEY) and inside the handshake.
 */
export function hsMac(key: Uint8Array, message: Uint8Array, backend: Sha3Backend = sha3): Uint8Array {
  if (!(key instanceof Uint8Array)) throw new CryptoError("bad-length", `hsMac key must be a Uint8Array, got ${describe(key)}`);
  if (!(message instanceof Uint8Array)) throw new CryptoError("bad-length", `hsMac message must be a Uint8Array, got ${describe(message)}`);
  return backend.sha3_256(u64be(key.length), key, message);
}

/** ENC_KEY ‖ MAC_KEY from EXP(B,x) = EXP(X,b); same on both sides. */
function introduceKeys(t: Tweaks, bx: Uint8Array, authKey: Uint8Array, x: Uint8Array, b: Uint8Array, subcredential: Uint8Array): { encKey: Uint8Array; macKey: Uint8Array } {
  const secret = concatBytes(bx, authKey, x, b, t.protoId);
  const keys = sha3.shake256(HS_NTOR_ENC_KEY_LEN + HS_NTOR_MAC_KEY_LEN, secret, t.hsEnc, t.hsExpand, subcredential);
  secret.fill(0);
  const encKey = keys.slice(0, HS_NTOR_ENC_KEY_LEN);
  const macKey = keys.slice(HS_NTOR_ENC_KEY_LEN);
  keys.fill(0);
  return { encKey, macKey };
}

/** NTOR_KEY_SEED and AUTH from the two DH results; same on both sides. */
function rendezvousKeys(t: Tweaks, dh1: Uint8Array, dh2: Uint8Array, authKey: Uint8Array, b: Uint8Array, x: Uint8Array, y: Uint8Array): { keySeed: Uint8Array; auth: Uint8Array } {
  const secret = concatBytes(dh1, dh2, authKey, b, x, y, t.protoId);
  const keySeed = hsMac(secret, t.hsEnc);
  const verify = hsMac(secret, t.hsVerify);
  secret.fill(0);
  const auth = hsMac(concatBytes(verify, authKey, b, y, x, t.protoId, SERVER), t.hsMac);
  return { keySeed, auth };
}

export interface HsNtorClientIntroduceOptions {
  /** Protocol id string; PSP_HS_NTOR_PROTOID by default. */
  protoId?: string;
  /** AUTH_KEY: the introduction point's 32-byte Ed25519 key, as published. */
  introAuthKey: Uint8Array;
  /** B: the service's X25519 encryption key for this introduction point. */
  introEncKey: Uint8Array;
  /** x: our ephemeral X25519 secret; random when omitted. Keep it for hsNtorClientRendezvous. */
  clientSecret?: Uint8Array;
  /** N_hs_subcred (32 bytes). */
  subcredential: Uint8Array;
}

export interface HsNtorIntroduceKeys {
  /** ENC_KEY: encrypts the INTRODUCE1 payload. */
  encKey: Uint8Array;
  /** MAC_KEY: the hsMac key over the INTRODUCE1 cell. */
  macKey: Uint8Array;
}

export interface HsNtorClientIntroduceResult extends HsNtorIntroduceKeys {
  /** X, sent in the INTRODUCE1 cell as CLIENT_PK. */
  clientPublic: Uint8Array;
  /** x, the secret behind X (the one given, or the one generated). */
  clientSecret: Uint8Array;
}

/** Client, before INTRODUCE1: ENC_KEY, MAC_KEY and X (Tor's hs_ntor_client_get_introduce1_keys). */
export function hsNtorClientIntroduceKeys(options: HsNtorClientIntroduceOptions): HsNtorClientIntroduceResult {
  const t = tweaks(options.protoId);
  checkBytes(options.introAuthKey, HS_AUTH_KEY_LEN, "introduction auth key");
  checkBytes(options.introEncKey, X25519_KEY_LEN, "introduction encryption key");
  checkBytes(options.subcredential, HS_SUBCREDENTIAL_LEN, "subcredential");
  const { secretKey: clientSecret, publicKey: clientPublic } = keyPairFor(options.clientSecret, "client secret");
  const bx = dh(clientSecret, options.introEncKey, "EXP(B,x)");
  const keys = introduceKeys(t, bx, options.introAuthKey, clientPublic, options.introEncKey, options.subcredential);
  bx.fill(0);
  return { ...keys, clientPublic, clientSecret };
}

export interface HsNtorServiceIntroduceOptions {
  protoId?: string;
  introAuthKey: Uint8Array;
  /** b: our X25519 encryption secret for this introduction point. */
  introEncSecret: Uint8Array;
  /** B; derived from introEncSecret when omitted (one scalar multiplication). */
  introEncKey?: Uint8Array;
  /** X, from the INTRODUCE2 cell. */
  clientPublic: Uint8Array;
  subcredential: Uint8Array;
}

/** Checks what both service steps take and returns B (introEncKey, derived from b when not given). */
function checkServiceInputs(options: HsNtorServiceIntroduceOptions): Uint8Array {
  checkBytes(options.introAuthKey, HS_AUTH_KEY_LEN, "introduction auth key");
  checkBytes(options.introEncSecret, X25519_KEY_LEN, "introduction encryption secret");
  checkBytes(options.clientPublic, X25519_KEY_LEN, "client public key");
  checkBytes(options.subcredential, HS_SUBCREDENTIAL_LEN, "subcredential");
  const introEncKey = options.introEncKey ?? x25519.publicKey(options.introEncSecret);
  checkBytes(introEncKey, X25519_KEY_LEN, "introduction encryption key");
  return introEncKey;
}

/**
 * Service, on INTRODUCE2: the ENC_KEY and MAC_KEY the client used, to check
 * the cell's MAC and decrypt it (Tor's hs_ntor_service_get_introduce1_keys).
 */
export function hsNtorServiceIntroduceKeys(options: HsNtorServiceIntroduceOptions): HsNtorIntroduceKeys {
  const t = tweaks(options.protoId);
  const introEncKey = checkServiceInputs(options);
  const xb = dh(options.introEncSecret, options.clientPublic, "EXP(X,b)");
  const keys = introduceKeys(t, xb, options.introAuthKey, options.clientPublic, introEncKey, options.subcredential);
  xb.fill(0);
  return keys;
}

export interface HsNtorServiceRendezvousOptions extends HsNtorServiceIntroduceOptions {
  /** y: our ephemeral X25519 secret; random when omitted (set only in tests). */
  serviceSecret?: Uint8Array;
}

export interface HsNtorServiceRendezvousResult extends HsNtorIntroduceKeys {
  /** Y ‖ AUTH: the HANDSHAKE_INFO of RENDEZVOUS1. */
  reply: Uint8Array;
  /** NTOR_KEY_SEED: expand with hsNtorExpandKeys. */
  keySeed: Uint8Array;
}

/**
 * Service, answering an approved introduction: the RENDEZVOUS1 reply and
 * NTOR_KEY_SEED (Tor's hs_ntor_service_get_rendezvous1_keys), plus the
 * introduction keys, which share the EXP(X,b) computation.
 */
export function hsNtorServiceRendezvous(options: HsNtorServiceRendezvousOptions): HsNtorServiceRendezvousResult {
  const t = tweaks(options.protoId);
  const introEncKey = checkServiceInputs(options);
  const { secretKey: serviceSecret, publicKey: y } = keyPairFor(options.serviceSecret, "service secret");
  const xy = dh(serviceSecret, options.clientPublic, "EXP(X,y)");
  const xb = dh(options.introEncSecret, options.clientPublic, "EXP(X,b)");
  const intro = introduceKeys(t, xb, options.introAuthKey, options.clientPublic, introEncKey, options.subcredential);
  const { keySeed, auth } = rendezvousKeys(t, xy, xb, options.introAuthKey, introEncKey, options.clientPublic, y);
  xy.fill(0);
  xb.fill(0);
  if (!options.serviceSecret) serviceSecret.fill(0);
  return { ...intro, reply: concatBytes(y, auth), keySeed };
}

export interface HsNtorClientRendezvousOptions {
  protoId?: string;
  introAuthKey: Uint8Array;
  introEncKey: Uint8Array;
  /** x, the secret hsNtorClientIntroduceKeys used. */
  clientSecret: Uint8Array;
  /** X; derived from clientSecret when omitted. */
  clientPublic?: Uint8Array;
  /** Y ‖ AUTH from RENDEZVOUS2. */
  reply: Uint8Array;
  /** Accepted (length-checked) for symmetry with the introduce call; the rendezvous keys do not depend on it. */
  subcredential?: Uint8Array;
}

/**
 * Client, on RENDEZVOUS2: checks AUTH and returns NTOR_KEY_SEED (Tor's
 * hs_ntor_client_get_rendezvous1_keys). Throws CryptoError
 * "hs-ntor-auth-failed" when AUTH does not verify, "hs-ntor-bad-message"
 * for a reply that is not 64 bytes, "zero-shared-secret" for a low-order Y.
 */
export function hsNtorClientRendezvous(options: HsNtorClientRendezvousOptions): Uint8Array {
  const t = tweaks(options.protoId);
  checkBytes(options.introAuthKey, HS_AUTH_KEY_LEN, "introduction auth key");
  checkBytes(options.introEncKey, X25519_KEY_LEN, "introduction encryption key");
  checkBytes(options.clientSecret, X25519_KEY_LEN, "client secret");
  if (options.subcredential !== undefined) checkBytes(options.subcredential, HS_SUBCREDENTIAL_LEN, "subcredential");
  const reply = options.reply;
  if (!(reply instanceof Uint8Array) || reply.length !== HS_NTOR_REPLY_LEN) {
    throw new CryptoError("hs-ntor-bad-message", `hs-ntor reply must be ${HS_NTOR_REPLY_LEN} bytes (Y ‖ AUTH), got ${describe(reply)}`);
  }
  const clientPublic = options.clientPublic ?? x25519.publicKey(options.clientSecret);
  checkBytes(clientPublic, X25519_KEY_LEN, "client public key");
  const y = reply.subarray(0, X25519_KEY_LEN);
  const serviceAuth = reply.subarray(X25519_KEY_LEN);
  const yx = dh(options.clientSecret, y, "EXP(Y,x)");
  const bx = dh(options.clientSecret, options.introEncKey, "EXP(B,x)");
  const { keySeed, auth } = rendezvousKeys(t, yx, bx, options.introAuthKey, options.introEncKey, clientPublic, y);
  yx.fill(0);
  bx.fill(0);
  if (!constantTimeEqual(auth, serviceAuth)) {
    keySeed.fill(0);
    throw new CryptoError("hs-ntor-auth-failed", "hs-ntor: the service's AUTH does not verify (wrong introduction keys or a forged RENDEZVOUS reply)");
  }
  return keySeed;
}

/**
 * rend-spec-v3 §4.2.1 key expansion: KDF(NTOR_KEY_SEED ‖ m_hsexpand, length).
 * Tor's circuit keys are the first 128 bytes: Df ‖ Db ‖ Kf ‖ Kb.
 */
export function hsNtorExpandKeys(keySeed: Uint8Array, length: number = HS_NTOR_CIRCUIT_KEYS_LEN, protoId?: string): Uint8Array {
  const t = tweaks(protoId);
  checkBytes(keySeed, HS_NTOR_KEY_SEED_LEN, "key seed");
  if (!Number.isInteger(length) || length < 1 || length > HS_NTOR_EXPAND_MAX_LEN) {
    throw new CryptoError("bad-length", `hs-ntor expansion length must be an integer in 1..${HS_NTOR_EXPAND_MAX_LEN}, got ${String(length)}`);
  }
  return sha3.shake256(length, keySeed, t.hsExpand);
}

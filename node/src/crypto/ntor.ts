/**
 * The ntor handshake (tor-spec §5.1.4), parameterised by protocol id and
 * identity length, as pure functions over bytes.
 *
 * Owns the handshake maths and message layouts:
 *   onionskin (client → server) = ID (idLength) ‖ B (32) ‖ X (32)
 *   reply     (server → client) = Y (32) ‖ AUTH (32)
 * with, for PROTOID the protocol id string,
 *   secret_input = EXP(X,y) ‖ EXP(X,b) ‖ ID ‖ B ‖ X ‖ Y ‖ PROTOID
 *   KEY_SEED     = HMAC-SHA256(key = PROTOID ":key_extract", secret_input)
 *   verify       = HMAC-SHA256(key = PROTOID ":verify", secret_input)
 *   auth_input   = verify ‖ ID ‖ B ‖ Y ‖ X ‖ PROTOID ‖ "Server"
 *   AUTH         = HMAC-SHA256(key = PROTOID ":mac", auth_input)
 *   keys         = HKDF-SHA256(IKM = secret_input, salt = PROTOID ":key_extract",
 *                              info = PROTOID ":key_expand", keyLength)
 * (HKDF-Extract with that salt is exactly KEY_SEED, so this is tor-spec's
 * KDF-RFC5869 expansion of KEY_SEED.) With protoId "ntor-curve25519-sha256-1"
 * and a 20-byte id this reproduces Tor's handshake byte for byte.
 *
 * Trusts: nothing it receives. All-zero DH results (low-order points) are
 * rejected on both sides; AUTH is compared in constant time.
 */
import { constantTimeEqual } from "./compare.js";
import { CryptoError } from "./errors.js";
import { HKDF_SHA256_MAX_LEN, hashes } from "./kdf.js";
import { concatBytes } from "./backend.js";
import { X25519_KEY_LEN, generateX25519KeyPair, isAllZero, x25519 } from "./x25519.js";
import type { X25519KeyPair } from "./x25519.js";

/** PSP's protocol id: keeps PSP handshakes from ever being confused with Tor's. */
export const PSP_NTOR_PROTOID = "psp-ntor-curve25519-sha256-1";
/** Tor's protocol id, for interoperability tests against Tor's vectors. */
export const TOR_NTOR_PROTOID = "ntor-curve25519-sha256-1";
/** PSP node ids in ntor are the node's 32-byte Ed25519 identity key. */
export const PSP_NTOR_ID_LEN = 32;
/** Tor node ids are 20-byte RSA identity digests. */
export const TOR_NTOR_ID_LEN = 20;
export const NTOR_REPLY_LEN = 64;
const AUTH_LEN = 32;
const MAX_ID_LEN = 64;

export interface NtorClientState {
  protoId: string;
  id: Uint8Array;
  onionPublic: Uint8Array;
  clientSecret: Uint8Array;
  clientPublic: Uint8Array;
}

export interface NtorClientCreateOptions {
  /** Protocol id string; PSP_NTOR_PROTOID by default. */
  protoId?: string;
  /** The server's identity (idLength bytes). */
  id: Uint8Array;
  /** The server's X25519 onion key B. */
  onionPublic: Uint8Array;
  /** Our ephemeral secret x; random when omitted (set only in tests). */
  clientSecret?: Uint8Array;
  /** Expected length of `id`; PSP_NTOR_ID_LEN by default (use TOR_NTOR_ID_LEN for Tor). */
  idLength?: number;
}

export interface NtorServerRespondOptions {
  protoId?: string;
  /** Our identity (idLength bytes), as the client named it in the onionskin. */
  id: Uint8Array;
  /** Our onion secret b. */
  onionSecret: Uint8Array;
  /** Our onion public key B; derived from onionSecret when omitted (costs one scalar multiplication). */
  onionPublic?: Uint8Array;
  /** The client's ephemeral X from the onionskin. */
  clientPublic: Uint8Array;
  /** Our ephemeral secret y; random when omitted (set only in tests). */
  ephemeralSecret?: Uint8Array;
  /** Bytes of key material to derive (1..8160). */
  keyLength: number;
  idLength?: number;
}

export interface NtorClientFinishOptions {
  protoId?: string;
  id: Uint8Array;
  onionPublic: Uint8Array;
  clientSecret: Uint8Array;
  /** Our X; derived from clientSecret when omitted. Pass `...state` from ntorClientCreate to reuse it. */
  clientPublic?: Uint8Array;
  /** The server's Y ‖ AUTH. */
  reply: Uint8Array;
  keyLength: number;
  idLength?: number;
}

export interface ParsedOnionskin {
  id: Uint8Array;
  onionPublic: Uint8Array;
  clientPublic: Uint8Array;
}

interface Tweaks {
  protoId: Uint8Array;
  mac: Uint8Array;
  keyExtract: Uint8Array;
  verify: Uint8Array;
  keyExpand: Uint8Array;
}

const encoder = new TextEncoder();
const SERVER = encoder.encode("Server");
const tweakCache = new Map<string, Tweaks>();

function tweaks(protoId: string | undefined): Tweaks {
  const id = protoId ?? PSP_NTOR_PROTOID;
  if (typeof id !== "string" || id.length === 0 || id.length > 255) {
    throw new CryptoError("ntor-bad-message", "ntor protocol id must be a non-empty string of at most 255 characters");
  }
  let t = tweakCache.get(id);
  if (!t) {
    t = {
      protoId: encoder.encode(id),
      mac: encoder.encode(`${id}:mac`),
      keyExtract: encoder.encode(`${id}:key_extract`),
      verify: encoder.encode(`${id}:verify`),
      keyExpand: encoder.encode(`${id}:key_expand`),
    };
    if (tweakCache.size < 16) tweakCache.set(id, t);
  }
  return t;
}

function checkIdLength(idLength: number | undefined): number {
  const len = idLength ?? PSP_NTOR_ID_LEN;
  if (!Number.isInteger(len) || len < 1 || len > MAX_ID_LEN) {
    throw new CryptoError("bad-length", `ntor idLength must be an integer in 1..${MAX_ID_LEN}, got ${String(idLength)}`);
  }
  return len;
}

function checkBytes(value: Uint8Array, length: number, what: string): void {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new CryptoError(
      "bad-key-length",
      `ntor ${what} must be ${length} bytes, got ${value instanceof Uint8Array ? value.length : typeof value}`,
    );
  }
}

/** A fresh ephemeral key pair, or the one of `secret` when a caller fixed it (test vectors). */
function keyPairFor(secret: Uint8Array | undefined, what: string): X25519KeyPair {
  if (secret === undefined) return generateX25519KeyPair();
  checkBytes(secret, X25519_KEY_LEN, what);
  return { secretKey: secret, publicKey: x25519.publicKey(secret) };
}

function checkKeyLength(keyLength: number): void {
  if (!Number.isInteger(keyLength) || keyLength < 1 || keyLength > HKDF_SHA256_MAX_LEN) {
    throw new CryptoError("bad-length", `ntor keyLength must be an integer in 1..${HKDF_SHA256_MAX_LEN}, got ${String(keyLength)}`);
  }
}

function dh(secret: Uint8Array, pub: Uint8Array, what: string): Uint8Array {
  const out = x25519.scalarMult(secret, pub);
  if (isAllZero(out)) {
    throw new CryptoError("zero-shared-secret", `ntor: ${what} is all zero (low-order public key)`);
  }
  return out;
}

/** secret_input, AUTH and keys from the two DH results (same on both sides). */
function derive(
  t: Tweaks,
  dh1: Uint8Array,
  dh2: Uint8Array,
  id: Uint8Array,
  b: Uint8Array,
  x: Uint8Array,
  y: Uint8Array,
  keyLength: number,
): { auth: Uint8Array; keys: Uint8Array } {
  const secretInput = concatBytes(dh1, dh2, id, b, x, y, t.protoId);
  const verify = hashes.hmacSha256(t.verify, secretInput);
  const auth = hashes.hmacSha256(t.mac, concatBytes(verify, id, b, y, x, t.protoId, SERVER));
  const keys = hashes.hkdfSha256(secretInput, t.keyExtract, t.keyExpand, keyLength);
  secretInput.fill(0);
  return { auth, keys };
}

/** Client step 1: makes the onionskin ID ‖ B ‖ X and the state to finish with. */
export function ntorClientCreate(options: NtorClientCreateOptions): { state: NtorClientState; onionskin: Uint8Array } {
  const t = tweaks(options.protoId);
  const idLength = checkIdLength(options.idLength);
  checkBytes(options.id, idLength, "identity");
  checkBytes(options.onionPublic, X25519_KEY_LEN, "onion public key");
  const { secretKey: clientSecret, publicKey: clientPublic } = keyPairFor(options.clientSecret, "client secret");
  const state: NtorClientState = {
    protoId: new TextDecoder().decode(t.protoId),
    id: options.id.slice(),
    onionPublic: options.onionPublic.slice(),
    clientSecret,
    clientPublic,
  };
  return { state, onionskin: concatBytes(options.id, options.onionPublic, clientPublic) };
}

/** Splits an onionskin into ID, B and X; throws CryptoError "ntor-bad-message" on a wrong length. */
export function ntorParseOnionskin(onionskin: Uint8Array, idLength: number = PSP_NTOR_ID_LEN): ParsedOnionskin {
  const len = checkIdLength(idLength);
  if (!(onionskin instanceof Uint8Array) || onionskin.length !== len + 2 * X25519_KEY_LEN) {
    throw new CryptoError(
      "ntor-bad-message",
      `ntor onionskin must be ${len + 2 * X25519_KEY_LEN} bytes (ID ‖ B ‖ X), got ${onionskin instanceof Uint8Array ? onionskin.length : typeof onionskin}`,
    );
  }
  return {
    id: onionskin.slice(0, len),
    onionPublic: onionskin.slice(len, len + X25519_KEY_LEN),
    clientPublic: onionskin.slice(len + X25519_KEY_LEN),
  };
}

/** Server step: returns the reply Y ‖ AUTH and the derived key material. */
export function ntorServerRespond(options: NtorServerRespondOptions): { reply: Uint8Array; keys: Uint8Array } {
  const t = tweaks(options.protoId);
  const idLength = checkIdLength(options.idLength);
  checkBytes(options.id, idLength, "identity");
  checkBytes(options.onionSecret, X25519_KEY_LEN, "onion secret key");
  checkBytes(options.clientPublic, X25519_KEY_LEN, "client public key");
  checkKeyLength(options.keyLength);
  const onionPublic = options.onionPublic ?? x25519.publicKey(options.onionSecret);
  checkBytes(onionPublic, X25519_KEY_LEN, "onion public key");
  const { secretKey: ephemeralSecret, publicKey: y } = keyPairFor(options.ephemeralSecret, "ephemeral secret");
  const xy = dh(ephemeralSecret, options.clientPublic, "EXP(X,y)");
  const xb = dh(options.onionSecret, options.clientPublic, "EXP(X,b)");
  const { auth, keys } = derive(t, xy, xb, options.id, onionPublic, options.clientPublic, y, options.keyLength);
  xy.fill(0);
  xb.fill(0);
  return { reply: concatBytes(y, auth), keys };
}

/**
 * Client step 2: checks the server's AUTH and returns the key material.
 * Throws CryptoError "ntor-auth-failed" when AUTH does not verify (wrong
 * server, wrong onion key or a tampered reply), "zero-shared-secret" for a
 * low-order Y, "ntor-bad-message" for a reply of the wrong length.
 */
export function ntorClientFinish(options: NtorClientFinishOptions): Uint8Array {
  const t = tweaks(options.protoId);
  const idLength = checkIdLength(options.idLength);
  checkBytes(options.id, idLength, "identity");
  checkBytes(options.onionPublic, X25519_KEY_LEN, "onion public key");
  checkBytes(options.clientSecret, X25519_KEY_LEN, "client secret");
  checkKeyLength(options.keyLength);
  const reply = options.reply;
  if (!(reply instanceof Uint8Array) || reply.length !== NTOR_REPLY_LEN) {
    throw new CryptoError(
      "ntor-bad-message",
      `ntor reply must be ${NTOR_REPLY_LEN} bytes (Y ‖ AUTH), got ${reply instanceof Uint8Array ? reply.length : typeof reply}`,
    );
  }
  const clientPublic = options.clientPublic ?? x25519.publicKey(options.clientSecret);
  checkBytes(clientPublic, X25519_KEY_LEN, "client public key");
  const y = reply.subarray(0, X25519_KEY_LEN);
  const serverAuth = reply.subarray(X25519_KEY_LEN, X25519_KEY_LEN + AUTH_LEN);
  const yx = dh(options.clientSecret, y, "EXP(Y,x)");
  const bx = dh(options.clientSecret, options.onionPublic, "EXP(B,x)");
  const { auth, keys } = derive(t, yx, bx, options.id, options.onionPublic, clientPublic, y, options.keyLength);
  yx.fill(0);
  bx.fill(0);
  if (!constantTimeEqual(auth, serverAuth)) {
    keys.fill(0);
    throw new CryptoError("ntor-auth-failed", "ntor: server AUTH does not verify (wrong server identity or onion key, or a forged reply)");
  }
  return keys;
}

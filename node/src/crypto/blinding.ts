/**
 * Per-period blinded Ed25519 keys and subcredentials (rend-spec-v3 §2.1,
 * §2.2.1 and appendix A.2, "Tor's key derivation scheme").
 *
 * Owns the derivation, byte for byte as Tor does it:
 *   N     = "key-blind" ‖ INT_8(periodNumber) ‖ INT_8(periodLengthMinutes)
 *   param = SHA3-256("Derive temporary signing key" 0x00 ‖ A ‖ [secret] ‖ BASEPOINT ‖ N)
 *   h     = param clamped (h[0] &= 248, h[31] &= 63, h[31] |= 64), little-endian
 *   A'    = h·A                                                 (blinded public key)
 *   a'    = h·a mod l;  RH' = SHA-512("Derive temporary signing key hash input" ‖ RH)[0..32]
 * where (a ‖ RH) is the 64-byte expanded Ed25519 secret key (RFC 8032 §5.1.5:
 * SHA-512 of the seed, first half clamped) and BASEPOINT is the decimal
 * string "(15112…2202, 46316…5960)" of the Ed25519 base point. The blinded
 * key pair (a', RH') signs like ordinary Ed25519 and verifies with any
 * RFC 8032 verifier against A'. Neither node:crypto nor @noble/curves
 * signs with an expanded secret (both take only a seed), so
 * `ed25519SignExpanded` performs RFC 8032 §5.1.6 itself on @noble's points.
 *
 *   N_hs_cred    = SHA3-256("credential" ‖ A)
 *   N_hs_subcred = SHA3-256("subcredential" ‖ N_hs_cred ‖ A')
 *
 * Time periods (§2.2.1): periodNumber = floor((floor(unix / 60) − offset) / length),
 * with the 12-hour rotation offset (720 minutes) and length in minutes
 * (Tor's default 1440).
 *
 * Trusts: nothing about its inputs; public keys that are not canonical
 * curve points, or are of small order, are refused ("bad-public-key").
 */
import { ed25519 as nobleEd25519 } from "@noble/curves/ed25519.js";
import { bytesToNumberLE, numberToBytesLE } from "@noble/curves/utils.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { CryptoError } from "./errors.js";
import { concatBytes } from "./backend.js";
import { sha3 } from "./hs-ntor.js";

export const ED25519_EXPANDED_SECRET_KEY_LEN = 64;
export const BLINDING_PARAM_LEN = 32;
/** Tor's default time period length (consensus parameter hsdir-interval), in minutes. */
export const DEFAULT_PERIOD_LENGTH_MINUTES = 1440;
/** rend-spec-v3 §2.2.1: periods start 12 voting periods (12 hours) after the epoch's midnight. */
export const PERIOD_ROTATION_OFFSET_MINUTES = 12 * 60;
/** Tor allows 30..14400 minutes; PSP allows shorter periods for tests and small networks. */
export const MAX_PERIOD_LENGTH_MINUTES = 14400;

const encoder = new TextEncoder();
const BLIND_STRING = concatBytes(encoder.encode("Derive temporary signing key"), Uint8Array.of(0));
const RH_BLIND_STRING = encoder.encode("Derive temporary signing key hash input");
const BASEPOINT_STRING = encoder.encode(
  "(15112221349535400772501151409588531511454012693041857206046113283949847762202, 46316835694926478169428394003475163141307993866256225615783033603165251855960)",
);
const NONCE_PREFIX = encoder.encode("key-blind");
const CREDENTIAL_PREFIX = encoder.encode("credential");
const SUBCREDENTIAL_PREFIX = encoder.encode("subcredential");

const Point = nobleEd25519.Point;
/** The prime order l of the Ed25519 base point. */
const L = Point.Fn.ORDER;

function describe(value: unknown): string {
  return value instanceof Uint8Array ? `${value.length} bytes` : typeof value;
}

function checkBytes(value: Uint8Array, length: number, what: string): void {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new CryptoError("bad-key-length", `${what} must be ${length} bytes, got ${describe(value)}`);
  }
}

function checkPeriodLength(minutes: number): void {
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_PERIOD_LENGTH_MINUTES) {
    throw new CryptoError("bad-time-period", `period length must be an integer number of minutes in 1..${MAX_PERIOD_LENGTH_MINUTES}, got ${String(minutes)}`);
  }
}

function checkPeriodNumber(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new CryptoError("bad-time-period", `period number must be a non-negative safe integer, got ${String(n)}`);
}

function checkOffset(minutes: number): void {
  if (!Number.isSafeInteger(minutes) || minutes < 0) throw new CryptoError("bad-time-period", `rotation offset must be a non-negative integer of minutes, got ${String(minutes)}`);
}

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

/** A canonical Ed25519 point of large order, or CryptoError "bad-public-key". */
function decodePoint(publicKey: Uint8Array, what: string): InstanceType<typeof Point> {
  checkBytes(publicKey, 32, what);
  let p: InstanceType<typeof Point>;
  try {
    p = Point.fromBytes(publicKey, false);
  } catch {
    throw new CryptoError("bad-public-key", `${what} is not a canonical Ed25519 point`);
  }
  if (p.isSmallOrder()) throw new CryptoError("bad-public-key", `${what} is a small-order point`);
  return p;
}

/** The clamped blinding factor h as an integer. */
function clampedFactor(param: Uint8Array): bigint {
  const h = param.slice();
  h[0] = (h[0] as number) & 248;
  h[31] = ((h[31] as number) & 63) | 64;
  const k = bytesToNumberLE(h);
  h.fill(0);
  return k;
}

// ---------------------------------------------------------------- time periods

/**
 * The time period a unix time (seconds) falls in (rend-spec-v3 §2.2.1).
 * Example from the spec: 2016-04-13 11:15:01 UTC with 1440-minute periods is period 16903.
 */
export function timePeriodNumber(
  unixSeconds: number,
  periodLengthMinutes: number = DEFAULT_PERIOD_LENGTH_MINUTES,
  rotationOffsetMinutes: number = PERIOD_ROTATION_OFFSET_MINUTES,
): number {
  checkPeriodLength(periodLengthMinutes);
  checkOffset(rotationOffsetMinutes);
  if (!Number.isFinite(unixSeconds) || unixSeconds < rotationOffsetMinutes * 60) {
    throw new CryptoError("bad-time-period", `unix time must be a finite number of seconds at or after the rotation offset, got ${String(unixSeconds)}`);
  }
  const minutes = Math.floor(unixSeconds / 60) - rotationOffsetMinutes;
  return Math.floor(minutes / periodLengthMinutes);
}

/** The unix time (seconds) at which a time period starts; the next one starts at periodNumber + 1. */
export function timePeriodStart(
  periodNumber: number,
  periodLengthMinutes: number = DEFAULT_PERIOD_LENGTH_MINUTES,
  rotationOffsetMinutes: number = PERIOD_ROTATION_OFFSET_MINUTES,
): number {
  checkPeriodNumber(periodNumber);
  checkPeriodLength(periodLengthMinutes);
  checkOffset(rotationOffsetMinutes);
  return (periodNumber * periodLengthMinutes + rotationOffsetMinutes) * 60;
}

// ---------------------------------------------------------------- expanded keys

/** RFC 8032 §5.1.5: SHA-512(seed), first half clamped: the 64-byte a ‖ RH form Tor stores. */
export function expandEd25519SecretKey(seed: Uint8Array): Uint8Array {
  checkBytes(seed, 32, "Ed25519 seed");
  const out = sha512(seed);
  out[0] = (out[0] as number) & 248;
  out[31] = ((out[31] as number) & 127) | 64;
  return out;
}

function expanded(secretKey: Uint8Array): Uint8Array {
  if (secretKey instanceof Uint8Array && secretKey.length === 32) return expandEd25519SecretKey(secretKey);
  if (secretKey instanceof Uint8Array && secretKey.length === ED25519_EXPANDED_SECRET_KEY_LEN) return secretKey.slice();
  throw new CryptoError("bad-key-length", `Ed25519 secret key must be a 32-byte seed or a 64-byte expanded key, got ${describe(secretKey)}`);
}

function scalarOf(expandedKey: Uint8Array): bigint {
  return bytesToNumberLE(expandedKey.subarray(0, 32)) % L;
}

/** The public key of a 64-byte expanded secret key (a·B). */
export function ed25519PublicKeyFromExpanded(expandedKey: Uint8Array): Uint8Array {
  checkBytes(expandedKey, ED25519_EXPANDED_SECRET_KEY_LEN, "expanded Ed25519 secret key");
  const a = scalarOf(expandedKey);
  if (a === 0n) throw new CryptoError("bad-public-key", "expanded Ed25519 secret scalar is zero mod l");
  return Point.BASE.multiply(a).toBytes();
}

/**
 * RFC 8032 §5.1.6 signing with a 64-byte expanded secret key a ‖ RH, as
 * Tor's ed25519_sign does; this is how a blinded key signs. The signature
 * verifies with ordinary Ed25519 (ed25519Verify) against the matching public key.
 */
export function ed25519SignExpanded(expandedKey: Uint8Array, message: Uint8Array, publicKey?: Uint8Array): Uint8Array {
  checkBytes(expandedKey, ED25519_EXPANDED_SECRET_KEY_LEN, "expanded Ed25519 secret key");
  if (!(message instanceof Uint8Array)) throw new CryptoError("bad-length", `message must be a Uint8Array, got ${describe(message)}`);
  const a = scalarOf(expandedKey);
  if (a === 0n) throw new CryptoError("bad-public-key", "expanded Ed25519 secret scalar is zero mod l");
  const pub = publicKey ?? Point.BASE.multiply(a).toBytes();
  checkBytes(pub, 32, "Ed25519 public key");
  const r = bytesToNumberLE(sha512(concatBytes(expandedKey.subarray(32), message))) % L;
  // r = 0 has probability 2^-252; RFC 8032 does not special-case it, noble's multiply needs r ≥ 1.
  const R = (r === 0n ? Point.ZERO : Point.BASE.multiply(r)).toBytes();
  const k = bytesToNumberLE(sha512(concatBytes(R, pub, message))) % L;
  const s = (r + k * a) % L;
  return concatBytes(R, numberToBytesLE(s, 32));
}

// ---------------------------------------------------------------- blinding

export interface BlindingOptions {
  /** rend-spec-v3's optional secret s in the blinding factor (Tor passes none). */
  secret?: Uint8Array;
}

/** The blinding parameter (Tor's build_blinded_key_param): SHA3-256 over the identity key, the base point and the period; unclamped. */
export function blindingParam(identityKey: Uint8Array, periodNumber: number, periodLengthMinutes: number, options: BlindingOptions = {}): Uint8Array {
  checkBytes(identityKey, 32, "identity public key");
  checkPeriodNumber(periodNumber);
  checkPeriodLength(periodLengthMinutes);
  if (options.secret !== undefined && !(options.secret instanceof Uint8Array)) {
    throw new CryptoError("bad-length", `blinding secret must be a Uint8Array, got ${describe(options.secret)}`);
  }
  const nonce = concatBytes(NONCE_PREFIX, u64be(periodNumber), u64be(periodLengthMinutes));
  return sha3.sha3_256(BLIND_STRING, identityKey, options.secret ?? new Uint8Array(0), BASEPOINT_STRING, nonce);
}

/** A' = h·A for a given 32-byte blinding parameter (Tor's ed25519_public_blind). */
export function blindPublicKeyWithParam(publicKey: Uint8Array, param: Uint8Array): Uint8Array {
  checkBytes(param, BLINDING_PARAM_LEN, "blinding parameter");
  const p = decodePoint(publicKey, "Ed25519 public key");
  // h is a multiple of 8, so h·A = (h/8)·(8A) exactly, and 8A lies in the prime-order subgroup,
  // where (h/8) can be reduced mod l. This equals Tor's full 256-bit multiplication even for
  // keys with a torsion component.
  const k = (clampedFactor(param) >> 3n) % L;
  return p.clearCofactor().multiplyUnsafe(k).toBytes();
}

/** (a', RH') for a given blinding parameter (Tor's ed25519_keypair_blind / ed25519_ref10_blind_secret_key). */
export function blindSecretKeyWithParam(expandedKey: Uint8Array, param: Uint8Array): Uint8Array {
  checkBytes(expandedKey, ED25519_EXPANDED_SECRET_KEY_LEN, "expanded Ed25519 secret key");
  checkBytes(param, BLINDING_PARAM_LEN, "blinding parameter");
  const a = bytesToNumberLE(expandedKey.subarray(0, 32));
  const blinded = (clampedFactor(param) * a) % L;
  const rh = sha512(concatBytes(RH_BLIND_STRING, expandedKey.subarray(32))).subarray(0, 32);
  return concatBytes(numberToBytesLE(blinded, 32), rh);
}

/** The blinded public key for a period: what anyone who knows the identity key can compute. */
export function blindPublicKey(
  identityKey: Uint8Array,
  periodNumber: number,
  periodLengthMinutes: number = DEFAULT_PERIOD_LENGTH_MINUTES,
  options: BlindingOptions = {},
): Uint8Array {
  const param = blindingParam(identityKey, periodNumber, periodLengthMinutes, options);
  return blindPublicKeyWithParam(identityKey, param);
}

export interface BlindedKeyPair {
  /** 64-byte expanded secret a' ‖ RH'; sign with ed25519SignExpanded. Keep secret. */
  secretKey: Uint8Array;
  /** A', equal to blindPublicKey(identity, period, length). */
  publicKey: Uint8Array;
}

/**
 * The blinded key pair for a period, from the identity's secret key (a
 * 32-byte seed, PSP's key format, or a 64-byte expanded key, Tor's).
 */
export function blindSecretKey(
  secretKey: Uint8Array,
  periodNumber: number,
  periodLengthMinutes: number = DEFAULT_PERIOD_LENGTH_MINUTES,
  options: BlindingOptions = {},
): BlindedKeyPair {
  const exp = expanded(secretKey);
  const identityKey = ed25519PublicKeyFromExpanded(exp);
  const param = blindingParam(identityKey, periodNumber, periodLengthMinutes, options);
  const blindedSecret = blindSecretKeyWithParam(exp, param);
  exp.fill(0);
  return { secretKey: blindedSecret, publicKey: ed25519PublicKeyFromExpanded(blindedSecret) };
}

// ---------------------------------------------------------------- credentials

/** N_hs_cred = SHA3-256("credential" ‖ A). */
export function credential(identityKey: Uint8Array): Uint8Array {
  checkBytes(identityKey, 32, "identity public key");
  return sha3.sha3_256(CREDENTIAL_PREFIX, identityKey);
}

/** N_hs_subcred = SHA3-256("subcredential" ‖ N_hs_cred ‖ A'): the hs-ntor subcredential for one period. */
export function subcredential(identityKey: Uint8Array, blindedKey: Uint8Array): Uint8Array {
  checkBytes(blindedKey, 32, "blinded public key");
  return sha3.sha3_256(SUBCREDENTIAL_PREFIX, credential(identityKey), blindedKey);
}

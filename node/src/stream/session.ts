/**
 * Viewer session ids (whitepaper §8.3): a short-lived token an oracle signs
 * for whoever solves its puzzle through a circuit, unrelated to any
 * identity; a distribution node admits a viewer that shows one.
 *
 * Owns the byte layout, a signed document (wire/document.ts) of type
 * "stream-session" whose body is
 *   { "exp": uint, "iat": uint, "k": bstr(32), "o": bstr(32), "sid": bstr(16), "v": 1 }
 * sid = 16 random bytes, o = the issuing oracle's node identity key (equal
 * to the envelope's signer), iat/exp = unix seconds, k = the viewer's
 * ephemeral Ed25519 public key (it signs the viewer's usage reports,
 * rewards/report.ts; the viewer made it for this session alone).
 *
 * `verifySessionId` trusts only the oracle keys it is given (the current
 * on-chain oracle set) and `now`: it throws StreamError "malformed",
 * "forged", "unknown-oracle", "expired" or "not-yet-valid".
 */
import { randomBytes } from "node:crypto";
import { bytesEqual } from "../base/bytes.js";
import { ED25519_PUBLIC_KEY_LEN, ed25519PublicKey } from "../crypto/ed25519.js";
import { openDocument, signDocument } from "../wire/document.js";
import { WireError } from "../wire/errors.js";
import { cborReaders } from "../wire/fields.js";
import { StreamError } from "./errors.js";
import { DEFAULT_STREAM_CLOCK_SKEW_SECONDS, checkValidityTime } from "./receipt.js";

export const SESSION_TYPE = "stream-session";
export const SESSION_VERSION = 1;
export const SESSION_ID_LEN = 16;
/** Largest encoded session id accepted (a real one is about 235 bytes). */
export const MAX_SESSION_BYTES = 384;
/** What an oracle issues. */
export const DEFAULT_SESSION_VALIDITY_SECONDS = 3600;
/** Longest window a verifier accepts. */
export const MAX_SESSION_VALIDITY_SECONDS = 6 * 3600;
const MAX_UNIX_SECONDS = 2 ** 40;

export interface SessionId {
  sid: Uint8Array;
  issuedAt: number;
  expiresAt: number;
  oracle: Uint8Array;
  /** The viewer's ephemeral Ed25519 public key, which signs its usage reports under this session. */
  viewerKey: Uint8Array;
  bytes: Uint8Array;
}

const malformed = (message: string) => new StreamError("malformed", `session id: ${message}`);
const { readBytes, readMap, readUint } = cborReaders(malformed);

export interface SignSessionInput {
  issuedAt: number;
  expiresAt: number;
  /** The oracle's 32-byte Ed25519 node identity seed. */
  secretKey: Uint8Array;
  /** Fixed sid for vectors; random otherwise. */
  sid?: Uint8Array;
  /**
   * The viewer's ephemeral Ed25519 public key (32 bytes), from its session-request.
   * Omitted only by tests and benches whose viewers never report: a fresh random
   * key then stands in, one nobody holds the secret of.
   */
  viewerKey?: Uint8Array;
}

export function signSessionId(input: SignSessionInput): SessionId {
  const bad = (m: string) => new StreamError("bad-argument", `session id: ${m}`);
  const sid = input.sid ?? new Uint8Array(randomBytes(SESSION_ID_LEN));
  if (sid.length !== SESSION_ID_LEN) throw bad(`sid must be ${SESSION_ID_LEN} bytes`);
  const viewerKey = input.viewerKey ?? ed25519PublicKey(new Uint8Array(randomBytes(32)));
  if (!(viewerKey instanceof Uint8Array) || viewerKey.length !== ED25519_PUBLIC_KEY_LEN) throw bad(`viewer key must be ${ED25519_PUBLIC_KEY_LEN} bytes`);
  for (const t of [input.issuedAt, input.expiresAt]) if (!Number.isSafeInteger(t) || t < 0 || t > MAX_UNIX_SECONDS) throw bad("times must be unix seconds");
  if (input.expiresAt <= input.issuedAt || input.expiresAt - input.issuedAt > MAX_SESSION_VALIDITY_SECONDS) throw bad("bad validity window");
  const bytes = signDocument({
    type: SESSION_TYPE,
    secretKey: input.secretKey,
    body: {
      exp: input.expiresAt,
      iat: input.issuedAt,
      k: new Uint8Array(viewerKey),
      o: ed25519PublicKey(input.secretKey),
      sid: new Uint8Array(sid),
      v: SESSION_VERSION,
    },
  });
  return decodeSessionId(bytes);
}

/** Decodes a session id and checks its signature by the key it names. */
export function decodeSessionId(bytes: Uint8Array): SessionId {
  if (!(bytes instanceof Uint8Array) || bytes.length > MAX_SESSION_BYTES) throw malformed(`larger than ${MAX_SESSION_BYTES} bytes`);
  let opened;
  try {
    opened = openDocument(bytes, { type: SESSION_TYPE, maxBytes: MAX_SESSION_BYTES, maxDepth: 1 });
  } catch (err) {
    if (WireError.is(err, "bad-signature")) throw new StreamError("forged", "session id: signature does not verify", { cause: err });
    throw new StreamError("malformed", `session id: ${(err as Error).message}`, { cause: err });
  }
  const body = readMap(opened.body, "session body", ["exp", "iat", "k", "o", "sid", "v"]);
  if (body.v !== SESSION_VERSION) throw malformed(`version ${String(body.v)} is not ${SESSION_VERSION}`);
  const sid = readBytes(body.sid, "sid", SESSION_ID_LEN);
  const oracle = readBytes(body.o, "oracle key", ED25519_PUBLIC_KEY_LEN);
  const viewerKey = readBytes(body.k, "viewer key", ED25519_PUBLIC_KEY_LEN);
  const issuedAt = readUint(body.iat, "issued-at", MAX_UNIX_SECONDS);
  const expiresAt = readUint(body.exp, "expires-at", MAX_UNIX_SECONDS);
  if (expiresAt <= issuedAt) throw malformed("expiry must be after issue");
  if (!bytesEqual(oracle, opened.signer)) throw new StreamError("forged", "session id is signed by another key than the oracle it names");
  return { sid, issuedAt, expiresAt, oracle, viewerKey, bytes };
}

export interface VerifySessionOptions {
  oracleKeys: Iterable<Uint8Array>;
  now: number;
  skewSeconds?: number;
}

/** Signature by a current oracle and validity time. */
export function verifySessionId(bytes: Uint8Array, options: VerifySessionOptions): SessionId {
  const session = decodeSessionId(bytes);
  if (session.expiresAt - session.issuedAt > MAX_SESSION_VALIDITY_SECONDS)
    throw new StreamError("expired", "session id validity window is longer than allowed");
  let known = false;
  for (const k of options.oracleKeys) if (bytesEqual(k, session.oracle)) known = true;
  if (!known)
    throw new StreamError("unknown-oracle", "session id is signed by a node that is not a current oracle", {
      fix: "obtain a session id from a current oracle",
    });
  checkValidityTime("session id", session.issuedAt, session.expiresAt, options.now, options.skewSeconds ?? DEFAULT_STREAM_CLOCK_SKEW_SECONDS);
  return session;
}

/**
 * The commercial open handshake (docs/spec/commercial.md "Wire"): the first
 * message a client sends on a stream to onion service "commercial", and the
 * node's one reply, before the application's own messages flow.
 *
 * Owns the layouts (canonical CBOR maps) and the identity proof:
 *   open    { t: "open", v: 1, app: bstr(32), svc: tstr, id?: proof }
 *   proof   { cert: bstr (<= 4096), n: bstr(16), sig: bstr(64), ts: uint }
 *           sig = Ed25519 by the certificate's identity key over
 *           "psp-commercial-open-v1" || canonical({ app, n, node, svc, ts })
 *           (node = the commercial node's 32-byte identity), so a proof is
 *           bound to one node, application and service and cannot be
 *           replayed elsewhere; the node keeps seen nonces for the window.
 *   ok      { t: "ok", v: 1, mode: "request" | "duplex", max: uint }
 *   refused { t: "refused", v: 1, kind: tstr, msg: tstr (<= 512), retry?: uint }
 *
 * Trusts nothing: every decoder checks size, shape and values and throws
 * CommercialError "malformed" or "too-large".
 */
import { concatBytes } from "@noble/hashes/utils.js";
import { ed25519PublicKey, ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import { decodeCanonical, encodeCanonical } from "../wire/canonical.js";
import { cborReaders } from "../wire/fields.js";
import { WireError } from "../wire/errors.js";
import { CommercialError, WIRE_REFUSAL_KINDS } from "./errors.js";
import type { CommercialErrorKind } from "./errors.js";

/** The onion service name commercial nodes offer at the end of circuits. */
export const COMMERCIAL_SERVICE = "commercial";
export const COMMERCIAL_VERSION = 1;
/** Largest open message: a certificate (<= 4096) plus the rest. */
export const MAX_OPEN_BYTES = 6144;
export const MAX_CERTIFICATE_BYTES = 4096;
/** Largest reply to an open message. */
export const MAX_OPEN_REPLY_BYTES = 1024;
const MAX_REFUSAL_TEXT = 512;
/** Service names as CommercialNodes checks them. */
export const SERVICE_PATTERN = /^[a-z0-9-]{1,32}$/;
const KIND_PATTERN = /^[a-z-]{1,32}$/;
const OPEN_PROOF_PREFIX = new TextEncoder().encode("psp-commercial-open-v1");

/** How a service exchanges messages once open. */
export type ServiceMode = "request" | "duplex";

/** The identity a client proves in an open message. */
export interface OpenProof {
  /** The access certificate, as authorities issued it. */
  cert: Uint8Array;
  /** Milliseconds since the Unix epoch. */
  ts: number;
  /** 16 random bytes. */
  nonce: Uint8Array;
  sig: Uint8Array;
}

export interface OpenMessage {
  /** Application id (IdentityRegistry.applicationIdOf), 32 bytes. */
  app: Uint8Array;
  service: string;
  proof?: OpenProof;
}

export type OpenReply =
  { t: "ok"; mode: ServiceMode; maxMessageBytes: number } | { t: "refused"; kind: CommercialErrorKind; message: string; retryAfterMs?: number };

const malformed = (message: string) => new CommercialError("malformed", message);
const { readMap, readBytes, readUint, readString, readText } = cborReaders(malformed);

function decode(bytes: Uint8Array, maxBytes: number, what: string): unknown {
  if (!(bytes instanceof Uint8Array)) throw malformed(`${what} must be bytes`);
  if (bytes.length > maxBytes) throw new CommercialError("too-large", `${what} is ${bytes.length} bytes; the limit is ${maxBytes}`);
  try {
    return decodeCanonical(bytes, { maxBytes, maxDepth: 2 });
  } catch (err) {
    if (err instanceof WireError) throw new CommercialError("malformed", `${what}: ${err.message}`, { cause: err });
    throw err;
  }
}

function encode(value: unknown): Uint8Array {
  try {
    return encodeCanonical(value);
  } catch (err) {
    if (err instanceof WireError) throw new CommercialError("bad-argument", err.message, { cause: err });
    throw err;
  }
}

/** The bytes the identity key signs for an open message to `node`. */
export function openProofMessage(args: { node: Uint8Array; app: Uint8Array; service: string; ts: number; nonce: Uint8Array }): Uint8Array {
  return concatBytes(OPEN_PROOF_PREFIX, encode({ app: args.app, n: args.nonce, node: args.node, svc: args.service, ts: args.ts }));
}

/** A proof for `node`, signed with the identity's 32-byte Ed25519 seed. */
export function signOpenProof(args: {
  secretKey: Uint8Array;
  cert: Uint8Array;
  node: Uint8Array;
  app: Uint8Array;
  service: string;
  ts: number;
  nonce: Uint8Array;
}): OpenProof {
  if (!(args.nonce instanceof Uint8Array) || args.nonce.length !== 16) throw new CommercialError("bad-argument", "the nonce must be 16 random bytes");
  return { cert: args.cert, ts: args.ts, nonce: args.nonce, sig: ed25519Sign(args.secretKey, openProofMessage(args)) };
}

/** True when `proof.sig` is `identityKey`'s signature for this node, app and service. */
export function checkOpenProof(proof: OpenProof, identityKey: Uint8Array, args: { node: Uint8Array; app: Uint8Array; service: string }): boolean {
  return ed25519Verify(identityKey, openProofMessage({ ...args, ts: proof.ts, nonce: proof.nonce }), proof.sig);
}

/** The public key of a seed (re-exported for callers building proofs in tests). */
export const identityKeyOf = ed25519PublicKey;

export function encodeOpen(open: OpenMessage): Uint8Array {
  if (!(open.app instanceof Uint8Array) || open.app.length !== 32) throw new CommercialError("bad-argument", "the application id must be 32 bytes");
  if (typeof open.service !== "string" || !SERVICE_PATTERN.test(open.service)) {
    throw new CommercialError("bad-argument", `service ${JSON.stringify(open.service)} must be 1..32 characters of a-z, 0-9 and -`);
  }
  const body: Record<string, unknown> = { app: open.app, svc: open.service, t: "open", v: COMMERCIAL_VERSION };
  if (open.proof) body["id"] = { cert: open.proof.cert, n: open.proof.nonce, sig: open.proof.sig, ts: open.proof.ts };
  const bytes = encode(body);
  if (bytes.length > MAX_OPEN_BYTES) throw new CommercialError("too-large", `the open message would be ${bytes.length} bytes; the limit is ${MAX_OPEN_BYTES}`);
  return bytes;
}

/** Decodes an open message. Throws CommercialError "malformed" or "too-large". */
export function decodeOpen(bytes: Uint8Array): OpenMessage {
  const m = readMap(decode(bytes, MAX_OPEN_BYTES, "open message"), "open message", ["app", "svc", "t", "v"], ["id"]);
  if (m["t"] !== "open") throw malformed('the first message on a commercial stream must be an open message (t: "open")');
  if (m["v"] !== COMMERCIAL_VERSION) throw malformed(`open message version ${String(m["v"])}; this node speaks ${COMMERCIAL_VERSION}`);
  const open: OpenMessage = { app: readBytes(m["app"], "open app", 32), service: readString(m["svc"], "open svc", SERVICE_PATTERN) };
  if (m["id"] !== undefined) {
    const p = readMap(m["id"], "open id", ["cert", "n", "sig", "ts"]);
    const cert = p["cert"];
    if (!(cert instanceof Uint8Array) || cert.length === 0 || cert.length > MAX_CERTIFICATE_BYTES)
      throw malformed(`open id cert must be 1..${MAX_CERTIFICATE_BYTES} bytes`);
    open.proof = { cert, ts: readUint(p["ts"], "open id ts"), nonce: readBytes(p["n"], "open id n", 16), sig: readBytes(p["sig"], "open id sig", 64) };
  }
  return open;
}

export function encodeOpenReply(reply: OpenReply): Uint8Array {
  if (reply.t === "ok") return encode({ max: reply.maxMessageBytes, mode: reply.mode, t: "ok", v: COMMERCIAL_VERSION });
  const kind = WIRE_REFUSAL_KINDS.includes(reply.kind) ? reply.kind : "refused";
  const text = new TextEncoder().encode(reply.message).length > MAX_REFUSAL_TEXT ? `${reply.message.slice(0, MAX_REFUSAL_TEXT / 4)}…` : reply.message;
  return encode({ kind, msg: text, retry: reply.retryAfterMs === undefined ? undefined : Math.ceil(reply.retryAfterMs), t: "refused", v: COMMERCIAL_VERSION });
}

/** Decodes the node's reply. Throws CommercialError "malformed" or "too-large". */
export function decodeOpenReply(bytes: Uint8Array): OpenReply {
  const value = decode(bytes, MAX_OPEN_REPLY_BYTES, "open reply");
  const t = (value as Record<string, unknown> | null)?.["t"];
  if (t === "ok") {
    const m = readMap(value, "open reply", ["max", "mode", "t", "v"]);
    if (m["v"] !== COMMERCIAL_VERSION) throw malformed(`open reply version ${String(m["v"])}`);
    if (m["mode"] !== "request" && m["mode"] !== "duplex") throw malformed('open reply mode must be "request" or "duplex"');
    const max = readUint(m["max"], "open reply max", 2 ** 31);
    if (max < 1) throw malformed("open reply max must be at least 1");
    return { t: "ok", mode: m["mode"], maxMessageBytes: max };
  }
  if (t === "refused") {
    const m = readMap(value, "open reply", ["kind", "msg", "t", "v"], ["retry"]);
    if (m["v"] !== COMMERCIAL_VERSION) throw malformed(`open reply version ${String(m["v"])}`);
    const kind = readString(m["kind"], "open reply kind", KIND_PATTERN) as CommercialErrorKind;
    if (!WIRE_REFUSAL_KINDS.includes(kind)) throw malformed(`open reply kind ${kind} is not a refusal kind`);
    const reply: OpenReply = { t: "refused", kind, message: readText(m["msg"], "open reply msg", MAX_REFUSAL_TEXT) };
    if (m["retry"] !== undefined) reply.retryAfterMs = readUint(m["retry"], "open reply retry", 86_400_000);
    return reply;
  }
  throw malformed('an open reply has t "ok" or "refused"');
}

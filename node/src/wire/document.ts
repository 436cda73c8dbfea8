/**
 * The signed document envelope: how every signed PSP object (descriptor,
 * vote, consensus, certificate, receipt, DHT record) is packaged.
 *
 * Owns the layout, a canonical CBOR map (see canonical.ts):
 *   { "body": bstr (canonical CBOR of the body), "sig": bstr(64),
 *     "signer": bstr(32), "type": tstr, "v": 1 }
 * and the signed message
 *   "psp-doc-v1" ‖ 0x00 ‖ type (UTF-8) ‖ 0x00 ‖ body bytes
 * so a signature over one document type can never be replayed as another
 * (type is a label of [a-z0-9.-], so it cannot contain the 0x00 separator).
 * The body travels as bytes, so the verifier checks the signature over exactly
 * what was signed, then decodes the body canonically.
 *
 * Trusts nothing: openDocument checks size, canonical form of envelope and
 * body, type and signature, in that order, throwing WireError "too-large",
 * "malformed", "non-canonical", "wrong-type" or "bad-signature".
 */
import { bytesEqual, concatBytes } from "../base/bytes.js";
import { ED25519_PUBLIC_KEY_LEN, ED25519_SIGNATURE_LEN, ed25519PublicKey, ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import { decodeCanonical, encodeCanonical } from "./canonical.js";
import type { CanonicalValue } from "./canonical.js";
import { WireError } from "./errors.js";
import { isCborMap } from "./fields.js";

export const DOCUMENT_VERSION = 1;
const DOMAIN = new TextEncoder().encode("psp-doc-v1");
const TYPE_LABEL = /^[a-z0-9][a-z0-9.-]{0,63}$/;
const ENVELOPE_KEYS = ["body", "sig", "signer", "type", "v"];

export interface SignDocumentOptions {
  /** Document type label, e.g. "descriptor", "consensus", "dht-record". */
  type: string;
  /** The body: any value encodeCanonical accepts. */
  body: unknown;
  /** The signer's 32-byte Ed25519 seed. */
  secretKey: Uint8Array;
}

export interface OpenDocumentOptions {
  /** The type the caller expects; anything else is "wrong-type". */
  type: string;
  /** Largest envelope accepted, in bytes. */
  maxBytes: number;
  /** When given, the document must be signed by this key ("bad-signature" otherwise). */
  signer?: Uint8Array;
  /** Nesting limit for the body (default as decodeCanonical). */
  maxDepth?: number;
}

export interface OpenedDocument {
  body: CanonicalValue;
  /** The signer's 32-byte Ed25519 public key. */
  signer: Uint8Array;
  /** The canonical body bytes that were signed (e.g. for hashing). */
  bodyBytes: Uint8Array;
}

function checkType(type: unknown): string {
  if (typeof type !== "string" || !TYPE_LABEL.test(type)) {
    throw new WireError("bad-field", `document type must be 1-64 characters of a-z, 0-9, "." and "-", got ${JSON.stringify(type)}`);
  }
  return type;
}

/** The exact bytes a document signature covers. */
export function documentSigningMessage(type: string, bodyBytes: Uint8Array): Uint8Array {
  return concatBytes(DOMAIN, Uint8Array.of(0), new TextEncoder().encode(checkType(type)), Uint8Array.of(0), bodyBytes);
}

/** Signs `body` as a document of `type`; returns the canonical envelope bytes. */
export function signDocument(options: SignDocumentOptions): Uint8Array {
  const type = checkType(options.type);
  const bodyBytes = encodeCanonical(options.body);
  const signer = ed25519PublicKey(options.secretKey);
  const sig = ed25519Sign(options.secretKey, documentSigningMessage(type, bodyBytes));
  return encodeCanonical({ body: bodyBytes, sig, signer, type, v: DOCUMENT_VERSION });
}

/** Verifies and opens a signed document. */
export function openDocument(bytes: Uint8Array, options: OpenDocumentOptions): OpenedDocument {
  const expectedType = checkType(options.type);
  const envelope = decodeCanonical(bytes, { maxBytes: options.maxBytes, maxDepth: 2 });
  if (!isCborMap(envelope)) throw new WireError("malformed", "a signed document must be a CBOR map");
  const keys = Object.keys(envelope).sort();
  if (keys.length !== ENVELOPE_KEYS.length || keys.some((k, i) => k !== ENVELOPE_KEYS[i])) {
    throw new WireError("malformed", `a signed document has exactly the fields ${ENVELOPE_KEYS.join(", ")}; got ${keys.join(", ")}`);
  }
  const { body, sig, signer, type, v } = envelope as Record<string, CanonicalValue>;
  if (v !== DOCUMENT_VERSION) throw new WireError("malformed", `unsupported document version ${String(v)}; this software reads ${DOCUMENT_VERSION}`);
  if (typeof type !== "string") throw new WireError("malformed", "document type must be a text string");
  if (!(body instanceof Uint8Array)) throw new WireError("malformed", "document body must be a byte string");
  if (!(sig instanceof Uint8Array) || sig.length !== ED25519_SIGNATURE_LEN) {
    throw new WireError("malformed", `document signature must be ${ED25519_SIGNATURE_LEN} bytes`);
  }
  if (!(signer instanceof Uint8Array) || signer.length !== ED25519_PUBLIC_KEY_LEN) {
    throw new WireError("malformed", `document signer must be a ${ED25519_PUBLIC_KEY_LEN}-byte Ed25519 key`);
  }
  if (type !== expectedType) {
    throw new WireError("wrong-type", `expected a "${expectedType}" document, got ${JSON.stringify(type.slice(0, 64))}`);
  }
  const decodedBody = decodeCanonical(body, { maxBytes: options.maxBytes, maxDepth: options.maxDepth });
  if (options.signer !== undefined && !bytesEqual(options.signer, signer)) {
    throw new WireError("bad-signature", "document is signed by a different key than the one required");
  }
  if (!ed25519Verify(signer, documentSigningMessage(type, body), sig)) {
    throw new WireError("bad-signature", `signature on the "${type}" document does not verify`);
  }
  return { body: decodedBody, signer, bodyBytes: body };
}

/**
 * Identity strings: the human-visible name of an account, node or group.
 *
 * Owns the grammar
 *   identity = namespace "." application "." kind "." base58(publicKey ‖ checksum)
 *   label    = 1..32 of [a-z0-9-], not starting or ending with "-"
 *   kind     = "account" | "node" | "group"
 *   checksum = SHA-256("psp-identity-v1" ‖ prefix ‖ publicKey)[0..4]
 *   prefix   = UTF-8 of namespace "." application "." kind
 * e.g. `peerstream.client.account.2Kny61…`. The checksum commits to the
 * prefix and the key, so a typo anywhere (or moving a key to another kind or
 * application) is caught with a precise error instead of naming someone else.
 *
 * Trusts nothing: parseIdentity checks every part and throws CryptoError
 * ("bad-identity", "unknown-identity-kind", "identity-checksum-mismatch").
 */
import { base58 } from "@scure/base";
import { constantTimeEqual } from "./compare.js";
import { CryptoError } from "./errors.js";
import { concatBytes } from "./backend.js";
import { ED25519_PUBLIC_KEY_LEN } from "./ed25519.js";
import { sha256 } from "./kdf.js";

export const IDENTITY_KINDS = ["account", "node", "group"] as const;
export type IdentityKind = (typeof IDENTITY_KINDS)[number];
export const IDENTITY_CHECKSUM_LEN = 4;
export const IDENTITY_LABEL_MAX_LEN = 32;
/** Longest possible identity string: two labels, the longest kind, 50 base58 chars, dots. */
export const IDENTITY_MAX_LEN = 2 * IDENTITY_LABEL_MAX_LEN + "account".length + 50 + 3;
const DOMAIN = new TextEncoder().encode("psp-identity-v1");
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

export interface Identity {
  namespace: string;
  application: string;
  kind: IdentityKind;
  /** The 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
}

export function isIdentityKind(value: string): value is IdentityKind {
  return (IDENTITY_KINDS as readonly string[]).includes(value);
}

function checkLabel(value: unknown, what: string): string {
  if (typeof value !== "string" || !LABEL.test(value)) {
    throw new CryptoError(
      "bad-identity",
      `identity ${what} ${JSON.stringify(value)} is not a valid label: use 1-${IDENTITY_LABEL_MAX_LEN} characters of a-z, 0-9 and "-", not starting or ending with "-"`,
    );
  }
  return value;
}

function checksum(prefix: string, publicKey: Uint8Array): Uint8Array {
  return sha256(concatBytes(DOMAIN, new TextEncoder().encode(prefix), publicKey)).subarray(0, IDENTITY_CHECKSUM_LEN);
}

/** The identity string of a public key under a namespace, application and kind. */
export function formatIdentity(identity: Identity): string {
  const namespace = checkLabel(identity.namespace, "namespace");
  const application = checkLabel(identity.application, "application");
  if (typeof identity.kind !== "string" || !isIdentityKind(identity.kind)) {
    throw new CryptoError("unknown-identity-kind", `identity kind ${JSON.stringify(identity.kind)} is not one of ${IDENTITY_KINDS.join(", ")}`);
  }
  const { publicKey } = identity;
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_LEN) {
    throw new CryptoError("bad-key-length", `identity public key must be ${ED25519_PUBLIC_KEY_LEN} bytes`);
  }
  const prefix = `${namespace}.${application}.${identity.kind}`;
  return `${prefix}.${base58.encode(concatBytes(publicKey, checksum(prefix, publicKey)))}`;
}

/** Parses and checks an identity string. */
export function parseIdentity(text: string): Identity {
  if (typeof text !== "string") throw new CryptoError("bad-identity", `an identity must be a string, got ${typeof text}`);
  if (text.length > IDENTITY_MAX_LEN) {
    throw new CryptoError("bad-identity", `identity string is ${text.length} characters; at most ${IDENTITY_MAX_LEN} are possible`);
  }
  const parts = text.split(".");
  if (parts.length !== 4) {
    throw new CryptoError(
      "bad-identity",
      `identity must have 4 dot-separated parts (namespace.application.kind.key), got ${parts.length}`,
    );
  }
  const [rawNamespace, rawApplication, kind, encoded] = parts as [string, string, string, string];
  const namespace = checkLabel(rawNamespace, "namespace");
  const application = checkLabel(rawApplication, "application");
  if (!isIdentityKind(kind)) {
    throw new CryptoError("unknown-identity-kind", `identity kind ${JSON.stringify(kind)} is not one of ${IDENTITY_KINDS.join(", ")}`);
  }
  let decoded: Uint8Array;
  try {
    decoded = base58.decode(encoded);
  } catch {
    throw new CryptoError("bad-identity", `identity key part ${JSON.stringify(encoded)} is not valid base58 (no 0, O, I or l)`);
  }
  if (decoded.length !== ED25519_PUBLIC_KEY_LEN + IDENTITY_CHECKSUM_LEN) {
    throw new CryptoError(
      "bad-identity",
      `identity key part decodes to ${decoded.length} bytes, expected ${ED25519_PUBLIC_KEY_LEN + IDENTITY_CHECKSUM_LEN} (key and checksum): truncated or extra characters`,
    );
  }
  const publicKey = decoded.slice(0, ED25519_PUBLIC_KEY_LEN);
  const prefix = `${namespace}.${application}.${kind}`;
  if (!constantTimeEqual(checksum(prefix, publicKey), decoded.subarray(ED25519_PUBLIC_KEY_LEN))) {
    throw new CryptoError(
      "identity-checksum-mismatch",
      `identity checksum does not match "${prefix}" and its key: the identity was mistyped or altered`,
    );
  }
  return { namespace, application, kind, publicKey };
}

/** True when `text` parses as an identity. */
export function isValidIdentity(text: string): boolean {
  try {
    parseIdentity(text);
    return true;
  } catch {
    return false;
  }
}

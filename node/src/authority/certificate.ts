/**
 * Access certificates: short-lived proof that an identity is registered and
 * active in the on-chain PKI, signed by a threshold of current authorities.
 *
 * Owns the byte layout (canonical CBOR, see wire/canonical.ts):
 *
 *   body        = { "chain": uint, "id": bstr(32), "identity": tstr, "key": bstr(32),
 *                   "na": uint, "nb": uint, "registry": bstr(20), "v": 1 }
 *   endorsement = { "authority": bstr(32), "cert": bstr(body) }
 *                 signed with the authority's Ed25519 node key as a signed-document
 *                 message of type "access-cert-endorsement" (wire/document.ts), so the
 *                 issuing authority's key is inside what it signs
 *   certificate = { "body": bstr(body), "sigs": [ { "a": bstr(32), "s": bstr(64) }, ... ],
 *                   "type": "access-cert", "v": 1 }
 *
 * `sigs` is sorted by strictly ascending authority key (no duplicates), so a
 * certificate has one encoding. `nb`/`na` are unix seconds; `id` is the
 * IdentityRegistry identity id of (namespace, application, kind, key), all
 * of which the identity string carries, and decoding checks they agree.
 *
 * `verifyAccessCertificate` is the one check every node runs. It trusts only
 * the authority set it is given (the current on-chain set from the Pki) and
 * the clock; everything in the bytes is checked, and each way to fail is its
 * own CertificateError kind.
 */
import { bytesToHex, getAddress, hexToBytes, isAddress, type Address, type Hex } from "viem";
import { bytesEqual } from "../base/bytes.js";
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";
import { ED25519_PUBLIC_KEY_LEN, ED25519_SIGNATURE_LEN, ed25519PublicKey, ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import { parseIdentity } from "../crypto/identity.js";
import { decodeCanonical, encodeCanonical, type CanonicalValue } from "../wire/canonical.js";
import { documentSigningMessage } from "../wire/document.js";
import { cborReaders } from "../wire/fields.js";
import { keccak_256 } from "@noble/hashes/sha3.js";
import { IDENTITY_KIND, assertValidName } from "../chain/attestation.js";
import { NodeFlag } from "../directory/config.js";

const AUTHORITY_FLAG = NodeFlag.authority;

export const ACCESS_CERT_TYPE = "access-cert";
export const CERT_ENDORSEMENT_TYPE = "access-cert-endorsement";
export const ACCESS_CERT_VERSION = 1;
/** Largest encoded certificate accepted. */
export const MAX_CERT_BYTES = 4096;
/** Most authority signatures one certificate may carry. */
export const MAX_CERT_SIGNATURES = 32;
/** What authorities issue: about an hour. */
export const DEFAULT_CERT_VALIDITY_SECONDS = 3600;
/** Longest window a verifier accepts (an authority never signs longer). */
export const MAX_CERT_VALIDITY_SECONDS = 2 * 3600;
/** Clock difference tolerated at both ends of the window. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 60;

export type CertificateErrorKind =
  /** Larger than MAX_CERT_BYTES. */
  | "too-large"
  /** Not a well-formed canonical certificate, or its fields disagree with each other. */
  | "malformed"
  /** Bound to another chain or IdentityRegistry than the verifier's. */
  | "wrong-chain"
  /** notAfter not after notBefore, or a window longer than allowed. */
  | "bad-validity"
  /** Past notAfter (plus skew): request a fresh certificate. */
  | "expired"
  /** Before notBefore (minus skew): a clock is wrong. */
  | "not-yet-valid"
  /** A signature attributed to a current authority does not verify. */
  | "forged"
  /** Fewer distinct current authorities signed than the threshold. */
  | "below-threshold"
  /** A caller passed an unusable argument (a bug, not hostile input). */
  | "bad-argument";

/** A certificate that fails a check was presented by someone else; a bad argument is the caller's. */
const CERTIFICATE_CATEGORIES = {
  "too-large": "peer",
  malformed: "peer",
  "wrong-chain": "peer",
  "bad-validity": "peer",
  expired: "peer",
  "not-yet-valid": "peer",
  forged: "peer",
  "below-threshold": "peer",
  "bad-argument": "bug",
} as const satisfies KindCategories<CertificateErrorKind>;

/** Why an access certificate was refused (certificate.ts); AuthorityError is the service's. */
export class CertificateError extends layerError<CertificateErrorKind>("authority", CERTIFICATE_CATEGORIES) {}

export interface AccessCertificateBody {
  /** `<namespace>.<application>.<kind>.<base58>` */
  identity: string;
  /** The identity's 32-byte Ed25519 key. */
  key: Uint8Array;
  /** IdentityRegistry id (bytes32, lower-case hex). */
  identityId: Hex;
  chainId: number;
  /** The IdentityRegistry the identity was checked in. */
  registry: Address;
  /** Unix seconds. */
  notBefore: number;
  /** Unix seconds, exclusive. */
  notAfter: number;
}

export interface AuthoritySignature {
  /** The authority's Ed25519 node key (its NodeRegistry key). */
  authority: Uint8Array;
  signature: Uint8Array;
}

export interface AccessCertificate {
  body: AccessCertificateBody;
  /** Canonical bytes of the body, exactly as signed. */
  bodyBytes: Uint8Array;
  signatures: AuthoritySignature[];
}

export interface VerifiedCertificate extends AccessCertificateBody {
  /** The distinct current authorities whose signatures were checked and counted. */
  authorities: Uint8Array[];
}

const BODY_KEYS = ["chain", "id", "identity", "key", "na", "nb", "registry", "v"];
const CERT_KEYS = ["body", "sigs", "type", "v"];
const MAX_UNIX_SECONDS = 2 ** 40;

const malformed = (message: string) => new CertificateError("malformed", `access certificate: ${message}`);
const { readArray, readBytes, readMap } = cborReaders(malformed);

// ---------------------------------------------------------------- body

export interface CertificateBodyInput {
  identity: string;
  chainId: number;
  registry: Address;
  notBefore: number;
  notAfter: number;
}

/** Builds and encodes a certificate body; key and identity id are derived from the identity string. */
export function buildCertificateBody(input: CertificateBodyInput): { body: AccessCertificateBody; bodyBytes: Uint8Array } {
  let parsed;
  try {
    parsed = parseIdentity(input.identity);
  } catch (err) {
    throw new CertificateError("bad-argument", `identity ${JSON.stringify(input.identity)} is not a valid identity string`, { cause: err });
  }
  const body: AccessCertificateBody = {
    identity: input.identity,
    key: parsed.publicKey,
    identityId: computeIdentityId({ namespace: parsed.namespace, application: parsed.application, kind: IDENTITY_KIND[parsed.kind], key: parsed.publicKey }),
    chainId: input.chainId,
    registry: input.registry,
    notBefore: input.notBefore,
    notAfter: input.notAfter,
  };
  checkBodyNumbers(body, (m) => new CertificateError("bad-argument", m));
  if (!isAddress(input.registry, { strict: false })) throw new CertificateError("bad-argument", `registry ${JSON.stringify(input.registry)} is not an address`);
  return { body, bodyBytes: encodeCertificateBody(body) };
}

export function encodeCertificateBody(body: AccessCertificateBody): Uint8Array {
  return encodeCanonical({
    chain: body.chainId,
    id: hexToBytes(body.identityId),
    identity: body.identity,
    key: body.key,
    na: body.notAfter,
    nb: body.notBefore,
    registry: hexToBytes(getAddress(body.registry)),
    v: ACCESS_CERT_VERSION,
  });
}

function checkBodyNumbers(body: { chainId: unknown; notBefore: unknown; notAfter: unknown }, fail: (m: string) => CertificateError): void {
  if (!Number.isSafeInteger(body.chainId) || (body.chainId as number) <= 0) throw fail("chain id must be a positive integer");
  for (const [name, t] of [["notBefore", body.notBefore], ["notAfter", body.notAfter]] as const) {
    if (!Number.isSafeInteger(t) || (t as number) < 0 || (t as number) > MAX_UNIX_SECONDS) throw fail(`${name} must be unix seconds`);
  }
}

/** Decodes a body and checks that identity string, key and identity id agree. */
export function decodeCertificateBody(bytes: Uint8Array): AccessCertificateBody {
  let raw: CanonicalValue;
  try {
    raw = decodeCanonical(bytes, { maxBytes: MAX_CERT_BYTES, maxDepth: 2 });
  } catch (err) {
    throw new CertificateError("malformed", `access certificate body is not canonical CBOR: ${(err as Error).message}`, { cause: err });
  }
  const map = readMap(raw, "body", BODY_KEYS);
  if (map.v !== ACCESS_CERT_VERSION) throw malformed(`body version ${String(map.v)} is not ${ACCESS_CERT_VERSION}`);
  const { chain, id, identity, key, na, nb, registry } = map;
  if (typeof identity !== "string") throw malformed("identity must be a text string");
  const keyBytes = readBytes(key, "key", ED25519_PUBLIC_KEY_LEN);
  const idBytes = readBytes(id, "id", 32);
  const registryBytes = readBytes(registry, "registry", 20);
  checkBodyNumbers({ chainId: chain, notBefore: nb, notAfter: na }, malformed);
  let parsed;
  try {
    parsed = parseIdentity(identity);
  } catch (err) {
    throw new CertificateError("malformed", `access certificate identity is invalid: ${(err as Error).message}`, { cause: err });
  }
  if (!bytesEqual(parsed.publicKey, keyBytes)) throw malformed("key does not match the identity string");
  const identityId = bytesToHex(idBytes);
  let expectedId: Hex;
  try {
    expectedId = computeIdentityId({ namespace: parsed.namespace, application: parsed.application, kind: IDENTITY_KIND[parsed.kind], key: keyBytes });
  } catch (err) {
    throw new CertificateError("malformed", `access certificate identity cannot be registered on chain: ${(err as Error).message}`, { cause: err });
  }
  if (expectedId !== identityId) throw malformed("identity id does not match the identity string");
  return {
    identity,
    key: keyBytes,
    identityId,
    chainId: chain as number,
    registry: getAddress(bytesToHex(registryBytes)),
    notBefore: nb as number,
    notAfter: na as number,
  };
}

// ---------------------------------------------------------------- signing

/** The bytes an authority's node key signs for `bodyBytes`. */
export function endorsementMessage(authority: Uint8Array, bodyBytes: Uint8Array): Uint8Array {
  return documentSigningMessage(CERT_ENDORSEMENT_TYPE, encodeCanonical({ authority, cert: bodyBytes }));
}

/** Signs a certificate body with an authority's Ed25519 node key (32-byte seed). */
export function signCertificateBody(bodyBytes: Uint8Array, authoritySecretKey: Uint8Array): AuthoritySignature {
  const authority = ed25519PublicKey(authoritySecretKey);
  return { authority, signature: ed25519Sign(authoritySecretKey, endorsementMessage(authority, bodyBytes)) };
}

/** True when `sig` is `sig.authority`'s signature over `bodyBytes`. */
export function verifyEndorsement(bodyBytes: Uint8Array, sig: AuthoritySignature): boolean {
  return ed25519Verify(sig.authority, endorsementMessage(sig.authority, bodyBytes), sig.signature);
}

/** Encodes a certificate from a body and endorsements (deduplicated and sorted by authority key). */
export function assembleCertificate(bodyBytes: Uint8Array, signatures: readonly AuthoritySignature[]): Uint8Array {
  const byKey = new Map<string, AuthoritySignature>();
  for (const sig of signatures) {
    if (sig.authority.length !== ED25519_PUBLIC_KEY_LEN || sig.signature.length !== ED25519_SIGNATURE_LEN) {
      throw new CertificateError("bad-argument", "an authority signature is a 32-byte key and a 64-byte signature");
    }
    byKey.set(bytesToHex(sig.authority), sig);
  }
  if (byKey.size > MAX_CERT_SIGNATURES) throw new CertificateError("bad-argument", `at most ${MAX_CERT_SIGNATURES} signatures fit in a certificate`);
  const sorted = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, s]) => s);
  const bytes = encodeCanonical({
    body: bodyBytes,
    sigs: sorted.map((s) => ({ a: s.authority, s: s.signature })),
    type: ACCESS_CERT_TYPE,
    v: ACCESS_CERT_VERSION,
  });
  if (bytes.length > MAX_CERT_BYTES) throw new CertificateError("bad-argument", `certificate is ${bytes.length} bytes, above ${MAX_CERT_BYTES}`);
  return bytes;
}

/** Decodes a certificate's structure (no signature or time checks). */
export function decodeAccessCertificate(bytes: Uint8Array): AccessCertificate {
  if (!(bytes instanceof Uint8Array)) throw malformed(`expected bytes, got ${typeof bytes}`);
  if (bytes.length > MAX_CERT_BYTES) throw new CertificateError("too-large", `access certificate is ${bytes.length} bytes, above the ${MAX_CERT_BYTES}-byte limit`);
  let raw: CanonicalValue;
  try {
    raw = decodeCanonical(bytes, { maxBytes: MAX_CERT_BYTES, maxDepth: 3 });
  } catch (err) {
    throw new CertificateError("malformed", `access certificate is not canonical CBOR: ${(err as Error).message}`, { cause: err });
  }
  const map = readMap(raw, "certificate", CERT_KEYS);
  if (map.v !== ACCESS_CERT_VERSION) throw malformed(`version ${String(map.v)} is not ${ACCESS_CERT_VERSION}`);
  if (map.type !== ACCESS_CERT_TYPE) throw malformed(`type must be "${ACCESS_CERT_TYPE}"`);
  if (!(map.body instanceof Uint8Array)) throw malformed("body must be a byte string");
  const body = decodeCertificateBody(map.body);
  const sigs = readArray(map.sigs, "sigs", MAX_CERT_SIGNATURES);
  const signatures: AuthoritySignature[] = [];
  let previous = "";
  for (const [i, entry] of sigs.entries()) {
    const sig = readMap(entry, `sigs[${i}]`, ["a", "s"]);
    const authority = readBytes(sig.a, `sigs[${i}].a`, ED25519_PUBLIC_KEY_LEN);
    const signature = readBytes(sig.s, `sigs[${i}].s`, ED25519_SIGNATURE_LEN);
    const hex = bytesToHex(authority);
    if (hex <= previous) throw malformed("signatures must be sorted by strictly ascending authority key");
    previous = hex;
    signatures.push({ authority, signature });
  }
  return { body, bodyBytes: map.body, signatures };
}

// ---------------------------------------------------------------- verification

export interface VerifyCertificateOptions {
  /** Current time in milliseconds (Date.now()). */
  now: number;
  /** Node keys of the current authority set (from Pki.currentAuthorities()). */
  authorities: readonly (Uint8Array | Hex)[];
  /** Distinct current authorities required; see defaultCertificateThreshold. */
  threshold: number;
  /** When given, the certificate must be bound to this chain ... */
  chainId?: number;
  /** ... and this IdentityRegistry. */
  registry?: Address;
  clockSkewSeconds?: number;
}

/** A majority of the authority set (at least 1). */
export function defaultCertificateThreshold(authorityCount: number): number {
  return Math.floor(Math.max(0, authorityCount) / 2) + 1;
}

/**
 * The one check every node runs on an access certificate. Counts only
 * distinct members of `authorities`; signatures by anyone else are ignored.
 * Checks, in order: structure, chain binding, window, then signatures until
 * the threshold is reached (a current authority's bad signature is "forged").
 */
export function verifyAccessCertificate(cert: Uint8Array | AccessCertificate, opts: VerifyCertificateOptions): VerifiedCertificate {
  if (!Number.isSafeInteger(opts.threshold) || opts.threshold < 1) {
    throw new CertificateError("bad-argument", `threshold must be a positive integer, got ${String(opts.threshold)}`);
  }
  if (!Number.isFinite(opts.now)) throw new CertificateError("bad-argument", "now must be a time in milliseconds");
  const decoded = cert instanceof Uint8Array ? decodeAccessCertificate(cert) : cert;
  const { body } = decoded;
  if (opts.chainId !== undefined && body.chainId !== opts.chainId) {
    throw new CertificateError("wrong-chain", `certificate is for chain ${body.chainId}, this node follows chain ${opts.chainId}`);
  }
  if (opts.registry !== undefined && getAddress(opts.registry) !== body.registry) {
    throw new CertificateError("wrong-chain", `certificate is for IdentityRegistry ${body.registry}, this node uses ${getAddress(opts.registry)}`);
  }
  if (body.notAfter <= body.notBefore || body.notAfter - body.notBefore > MAX_CERT_VALIDITY_SECONDS) {
    throw new CertificateError("bad-validity", `certificate window ${body.notBefore}..${body.notAfter} is empty or longer than ${MAX_CERT_VALIDITY_SECONDS} s`);
  }
  const skew = opts.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  const nowSeconds = Math.floor(opts.now / 1000);
  if (nowSeconds >= body.notAfter + skew) {
    throw new CertificateError("expired", `certificate expired at ${new Date(body.notAfter * 1000).toISOString()}: request a fresh one`);
  }
  if (nowSeconds < body.notBefore - skew) {
    throw new CertificateError("not-yet-valid", `certificate is valid from ${new Date(body.notBefore * 1000).toISOString()}: check this machine's clock`);
  }
  // Verify under the caller's long-lived key arrays, not the decoded copies: the
  // Ed25519 backend caches its parsed key per array object.
  const current = new Map<string, Uint8Array>();
  for (const a of opts.authorities) {
    if (typeof a === "string") current.set(a.toLowerCase(), keyBytesOf(a.toLowerCase() as Hex));
    else current.set(bytesToHex(a), a);
  }
  const counted: Uint8Array[] = [];
  for (const sig of decoded.signatures) {
    if (counted.length >= opts.threshold) break;
    const authority = current.get(bytesToHex(sig.authority));
    if (authority === undefined) continue;
    if (!verifyEndorsement(decoded.bodyBytes, { authority, signature: sig.signature })) {
      throw new CertificateError("forged", `the signature attributed to authority ${bytesToHex(sig.authority)} does not verify`);
    }
    counted.push(sig.authority);
  }
  if (counted.length < opts.threshold) {
    throw new CertificateError(
      "below-threshold",
      `certificate carries ${counted.length} valid signature(s) from current authorities, ${opts.threshold} needed: gather more endorsements`,
    );
  }
  return { ...body, authorities: counted };
}

// ---------------------------------------------------------------- helpers

const nameHashes = new Map<string, Uint8Array>();
const authorityKeys = new Map<string, Uint8Array>();

/** One stable byte array per authority key given as hex (bounded). */
function keyBytesOf(hex: Hex): Uint8Array {
  let bytes = authorityKeys.get(hex);
  if (!bytes) {
    if (!/^0x[0-9a-f]{64}$/.test(hex)) throw new CertificateError("bad-argument", `authority key ${JSON.stringify(hex)} is not 32 bytes of hex`);
    bytes = hexToBytes(hex);
    if (authorityKeys.size >= 1024) authorityKeys.clear();
    authorityKeys.set(hex, bytes);
  }
  return bytes;
}
const utf8 = new TextEncoder();

function nameHash(name: string): Uint8Array {
  let hash = nameHashes.get(name);
  if (!hash) {
    hash = keccak_256(utf8.encode(name));
    if (nameHashes.size >= 1024) nameHashes.clear();
    nameHashes.set(name, hash);
  }
  return hash;
}

/**
 * `IdentityRegistry.identityIdOf`, i.e. keccak256(abi.encode(keccak256(ns),
 * keccak256(app), uint8 kind, bytes32 key)), without viem's generic ABI
 * encoder: it sits on the verification hot path (same result as
 * attestation.identityId, which the tests cross-check).
 */
function computeIdentityId(params: { namespace: string; application: string; kind: number; key: Uint8Array }): Hex {
  assertValidName(params.namespace, "namespace");
  assertValidName(params.application, "application");
  const encoded = new Uint8Array(128);
  encoded.set(nameHash(params.namespace), 0);
  encoded.set(nameHash(params.application), 32);
  encoded[95] = params.kind;
  encoded.set(params.key, 96);
  return bytesToHex(keccak_256(encoded));
}
// ---------------------------------------------------------------- against a consensus

/** The part of a consensus certificate checks read: which listed nodes carry the authority flag. */
export interface AuthorityListing {
  entries: readonly { identity: Uint8Array; flags: number }[];
}

/**
 * Checks a certificate against the authorities a verified consensus lists
 * (the view clients and nodes share without reading the chain): a majority
 * of them must have endorsed it (defaultCertificateThreshold). Throws
 * CertificateError, "below-threshold" when no consensus is held.
 */
export function verifyAccessCertificateWithConsensus(
  cert: Uint8Array,
  consensus: AuthorityListing | undefined,
  opts: { now: number; chainId?: number; registry?: Address },
): VerifiedCertificate {
  const authorities = consensus ? consensus.entries.filter((e) => (e.flags & AUTHORITY_FLAG) !== 0).map((e) => e.identity) : [];
  if (authorities.length === 0) throw new CertificateError("below-threshold", "no consensus listing authorities is held yet, so no certificate can be counted: retry once bootstrapped");
  return verifyAccessCertificate(cert, {
    now: opts.now,
    authorities,
    threshold: defaultCertificateThreshold(authorities.length),
    ...(opts.chainId === undefined ? {} : { chainId: opts.chainId }),
    ...(opts.registry === undefined ? {} : { registry: opts.registry }),
  });
}

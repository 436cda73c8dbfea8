/**
 * Node descriptors: what every node signs about itself and reports to each
 * discovery node it reaches (docs/spec/directory.md §2).
 *
 * Owns the descriptor layout, a signed document (wire/document.ts) of type
 * "descriptor" whose signer is the node's Ed25519 identity key and whose body
 * is the canonical CBOR map
 *   addrs   [bstr]   1..4 addresses (address.ts: 6-byte IPv4 or 18-byte IPv6 + port), distinct;
 *                    0..4 with int: an empty list is an outbound-only internal node, which
 *                    accepts no links and is reached over the links it opens (§12)
 *   apps    [bstr]   optional: 1..8 application ids (32 bytes each, ascending, distinct) the
 *                    node serves as a commercial node (issue 17); discovery nodes keep only
 *                    those CommercialNodes confirms. Omitted when none, so other descriptors'
 *                    bytes are unchanged.
 *   bridge  bool     true for a bridge (never listed in a consensus)
 *   bw      uint     advertised bandwidth, bytes/s, <= 2^40
 *   cc      tstr     ISO 3166-1 alpha-2 country code, upper case ("ZZ" = unknown)
 *   fam     tstr     optional operator family label (1..64 printable ASCII)
 *   int     bool     optional, present only as true: an internal node (interim or final
 *                    hop only, never an entry; the consensus lists it without addresses).
 *                    Omitted when false, so a public node's descriptor bytes are unchanged.
 *   okey    bstr(32) current X25519 onion key
 *   pub     uint     publication time, ms since the Unix epoch
 *   roles   uint     role bits the node claims (ChainRole; the chain decides which count)
 *   ver     tstr     software version (1..32 printable ASCII)
 *
 * Trusts nothing: verifyDescriptor checks size, envelope, signature, shape,
 * age and chain registration (an injected predicate, so this stays I/O free)
 * and throws DirectoryError with a kind the caller can act on.
 */
import { sha256 } from "../crypto/kdf.js";
import { signDocument, openDocument } from "../wire/document.js";
import { decodeAddress, encodeAddress } from "./address.js";
import type { NodeAddress } from "./address.js";
import {
  ALL_CHAIN_ROLES,
  DEFAULT_DESCRIPTOR_MAX_AGE_MS,
  DEFAULT_LIMITS,
  DEFAULT_MAX_SKEW_MS,
  MAX_ADDRESSES,
  MAX_APPS,
  MAX_BANDWIDTH,
  MAX_FAMILY_CHARS,
  MAX_VERSION_CHARS,
  bytesToHexFast,
} from "./config.js";
import { DirectoryError } from "./errors.js";
import { bytesEqual, compareBytes } from "../base/bytes.js";
import { fromWire, malformed, readArray, readBytes, readMap, readString, readUint } from "./fields.js";

export const DESCRIPTOR_TYPE = "descriptor";
export const COUNTRY_PATTERN = /^[A-Z]{2}$/;
export const VERSION_PATTERN = new RegExp(`^[\\x21-\\x7e]{1,${MAX_VERSION_CHARS}}$`);
export const FAMILY_PATTERN = new RegExp(`^[\\x21-\\x7e]{1,${MAX_FAMILY_CHARS}}$`);

/** What a node states about itself. */
export interface DescriptorFields {
  /** Current X25519 onion key (32 bytes). */
  onionKey: Uint8Array;
  /** Where the node listens, in order of preference. */
  addresses: NodeAddress[];
  /** Role bits claimed (ChainRole). */
  roles: number;
  /** True for a bridge: known to discovery nodes, never listed in a consensus. */
  bridge: boolean;
  /** Advertised bandwidth, bytes per second. */
  bandwidth: number;
  /** ISO 3166-1 alpha-2 country code, upper case; "ZZ" when unknown. */
  country: string;
  /** Software version, e.g. "psp/0.1.0". */
  version: string;
  /** Publication time, ms since the Unix epoch. */
  publishedAt: number;
  /** Operator family: nodes sharing one never share a circuit. */
  family?: string;
  /**
   * True for an internal node: only an interim or final hop, never an entry;
   * its addresses reach discovery nodes and (through the node-only view)
   * nodes, never clients. Absent or false: a public node.
   */
  internal?: boolean;
  /**
   * Application ids (32 bytes each) this node serves as a commercial node,
   * as the node claims them; empty or absent: none.
   */
  apps?: Uint8Array[];
}

/** A verified descriptor. */
export interface Descriptor extends DescriptorFields {
  /** The node's Ed25519 identity key (the signer). */
  identity: Uint8Array;
  /** The addresses in their byte form (same order). */
  encodedAddresses: Uint8Array[];
  /** SHA-256 of the signed body bytes: names this exact descriptor in votes. */
  digest: Uint8Array;
  /** The signed document, as received. */
  bytes: Uint8Array;
}

export interface CreateDescriptorOptions extends DescriptorFields {
  /** The node's 32-byte Ed25519 identity seed. */
  secretKey: Uint8Array;
}

/** Either a predicate on the identity key or a set of identity keys in lower-case hex. */
export type RegistrationCheck = ((identity: Uint8Array) => boolean) | ReadonlySet<string>;

export interface VerifyDescriptorOptions {
  /** Current time, ms since the Unix epoch. */
  now: number;
  /** Oldest publication accepted, as an age in ms (default 3 h). */
  maxAge?: number;
  /** Tolerated clock skew for future publication times, ms (default 5 min). */
  maxSkew?: number;
  /** Whether the identity is registered and staked on chain. */
  isRegisteredAndStaked: RegistrationCheck;
  /** Largest descriptor accepted (default 2048 bytes). */
  maxBytes?: number;
}

function descriptorBody(fields: DescriptorFields): Record<string, unknown> {
  checkFields(fields);
  return {
    addrs: fields.addresses.map(encodeAddress),
    // Omitted when empty, so a node that serves no application signs the same bytes as before the field existed.
    apps: fields.apps !== undefined && fields.apps.length > 0 ? sortedApps(fields.apps) : undefined,
    bridge: fields.bridge,
    bw: fields.bandwidth,
    cc: fields.country,
    fam: fields.family,
    // Omitted unless true: one encoding per descriptor, and public nodes' bytes as before the field existed.
    int: fields.internal === true ? true : undefined,
    okey: fields.onionKey,
    pub: fields.publishedAt,
    roles: fields.roles,
    ver: fields.version,
  };
}

function checkFields(f: DescriptorFields): void {
  const fail = (message: string) => new DirectoryError("malformed", `descriptor: ${message}`);
  if (!(f.onionKey instanceof Uint8Array) || f.onionKey.length !== 32) throw fail("onionKey must be a 32-byte X25519 public key");
  // No address at all only for an internal node with outbound links only (it accepts no links; docs/spec/directory.md §12).
  const minAddresses = f.internal === true ? 0 : 1;
  if (!Array.isArray(f.addresses) || f.addresses.length < minAddresses || f.addresses.length > MAX_ADDRESSES)
    throw fail(`give ${minAddresses}..${MAX_ADDRESSES} addresses${minAddresses === 1 ? " (none only for an internal node)" : ""}`);
  if (!Number.isInteger(f.roles) || f.roles < 0 || (f.roles & ~ALL_CHAIN_ROLES) !== 0) throw fail(`roles must be a combination of the bits in ChainRole (0..${ALL_CHAIN_ROLES})`);
  if (typeof f.bridge !== "boolean") throw fail("bridge must be a boolean");
  if (!Number.isSafeInteger(f.bandwidth) || f.bandwidth < 0 || f.bandwidth > MAX_BANDWIDTH) throw fail(`bandwidth must be an integer in 0..2^40 bytes/s`);
  if (typeof f.country !== "string" || !COUNTRY_PATTERN.test(f.country)) throw fail(`country must be an upper-case ISO 3166-1 alpha-2 code ("ZZ" if unknown)`);
  if (typeof f.version !== "string" || !VERSION_PATTERN.test(f.version)) throw fail(`version must be 1..${MAX_VERSION_CHARS} printable ASCII characters without spaces`);
  if (!Number.isSafeInteger(f.publishedAt) || f.publishedAt < 0) throw fail("publishedAt must be a non-negative integer (ms since the Unix epoch)");
  if (f.family !== undefined && (typeof f.family !== "string" || !FAMILY_PATTERN.test(f.family))) throw fail(`family must be 1..${MAX_FAMILY_CHARS} printable ASCII characters`);
  if (f.internal !== undefined && typeof f.internal !== "boolean") throw fail("internal must be a boolean");
  // A bridge is an unlisted entry; an internal node is never an entry: the two cannot both hold.
  if (f.internal === true && f.bridge) throw fail("a node cannot be both a bridge and internal");
  if (f.apps !== undefined) {
    if (!Array.isArray(f.apps) || f.apps.length > MAX_APPS) throw fail(`apps must be a list of at most ${MAX_APPS} application ids`);
    for (const a of f.apps) if (!(a instanceof Uint8Array) || a.length !== 32) throw fail("each application id must be 32 bytes");
  }
}

/** Application ids in ascending byte order; DirectoryError "malformed" for a duplicate. */
export function sortedApps(apps: readonly Uint8Array[]): Uint8Array[] {
  const sorted = [...apps].sort(compareBytes);
  for (let i = 1; i < sorted.length; i++) {
    if (bytesEqual(sorted[i - 1] as Uint8Array, sorted[i] as Uint8Array)) throw new DirectoryError("malformed", "descriptor: an application id is listed twice");
  }
  return sorted;
}

/**
 * Reads an `apps` list: 1..MAX_APPS 32-byte ids in strictly ascending order
 * (one encoding per set). Throws DirectoryError "malformed".
 */
export function readApps(value: unknown, what: string): Uint8Array[] {
  const apps = readArray(value, `${what} apps`, MAX_APPS, 1).map((a, i) => readBytes(a, `${what} apps #${i}`, 32));
  for (let i = 1; i < apps.length; i++) {
    if (compareBytes(apps[i - 1] as Uint8Array, apps[i] as Uint8Array) >= 0) throw malformed(`${what} apps must be ascending, each id once`);
  }
  return apps;
}

/** Signs a descriptor with the node's identity key; returns the document bytes. */
export function createDescriptor(options: CreateDescriptorOptions): Uint8Array {
  const body = descriptorBody(options);
  const encoded = body["addrs"] as Uint8Array[];
  const seen = new Set(encoded.map(bytesToHexFast));
  if (seen.size !== encoded.length) throw new DirectoryError("malformed", "descriptor: addresses must be distinct");
  return fromWire("descriptor", () => signDocument({ type: DESCRIPTOR_TYPE, body, secretKey: options.secretKey }));
}

function isRegistered(check: RegistrationCheck, identity: Uint8Array): boolean {
  if (typeof check === "function") return check(identity);
  if (check instanceof Set) return check.has(bytesToHexFast(identity));
  throw new DirectoryError("bad-config", "isRegisteredAndStaked must be a predicate or a Set of hex identity keys");
}

/** Parses a signed descriptor without time or chain checks (signature and shape only). */
export function openDescriptor(bytes: Uint8Array, maxBytes: number = DEFAULT_LIMITS.maxDescriptorBytes): Descriptor {
  const opened = fromWire("descriptor", () => openDocument(bytes, { type: DESCRIPTOR_TYPE, maxBytes, maxDepth: 3 }));
  const m = readMap(opened.body, "descriptor", ["addrs", "bridge", "bw", "cc", "okey", "pub", "roles", "ver"], ["apps", "fam", "int"]);
  const encodedAddresses = readArray(m["addrs"], "descriptor addrs", MAX_ADDRESSES, 0).map((a) => {
    if (!(a instanceof Uint8Array)) throw malformed("descriptor addresses must be byte strings");
    return a;
  });
  const addresses = encodedAddresses.map(decodeAddress);
  for (let i = 1; i < encodedAddresses.length; i++) {
    for (let j = 0; j < i; j++) if (bytesEqual(encodedAddresses[i] as Uint8Array, encodedAddresses[j] as Uint8Array)) throw malformed("descriptor addresses must be distinct");
  }
  if (typeof m["bridge"] !== "boolean") throw malformed("descriptor bridge must be a boolean");
  const roles = readUint(m["roles"], "descriptor roles", ALL_CHAIN_ROLES);
  const descriptor: Descriptor = {
    identity: opened.signer,
    onionKey: readBytes(m["okey"], "descriptor okey", 32),
    addresses,
    encodedAddresses,
    roles,
    bridge: m["bridge"],
    bandwidth: readUint(m["bw"], "descriptor bw", MAX_BANDWIDTH),
    country: readString(m["cc"], "descriptor cc", COUNTRY_PATTERN),
    version: readString(m["ver"], "descriptor ver", VERSION_PATTERN),
    publishedAt: readUint(m["pub"], "descriptor pub"),
    digest: sha256(opened.bodyBytes),
    bytes,
  };
  if (m["fam"] !== undefined) descriptor.family = readString(m["fam"], "descriptor fam", FAMILY_PATTERN);
  if (m["apps"] !== undefined) descriptor.apps = readApps(m["apps"], "descriptor");
  if (m["int"] !== undefined) {
    // Only `true` is ever written (false is omitted), so anything else is not a canonical descriptor.
    if (m["int"] !== true) throw malformed("descriptor int must be true when present (omit it for a public node)");
    if (descriptor.bridge) throw malformed("descriptor cannot be both a bridge and internal");
    descriptor.internal = true;
  }
  // An empty addrs is an outbound-only internal node; a public node must say where it is reached.
  if (addresses.length === 0 && descriptor.internal !== true) throw malformed("descriptor addrs is empty: only an internal node (int) may list no address");
  return descriptor;
}

/**
 * Verifies a signed descriptor: size, signature, shape, not older than
 * maxAge, not dated beyond now + maxSkew, and the node registered and staked.
 * Throws DirectoryError "too-large", "malformed", "bad-signature", "stale",
 * "future-dated" or "not-registered".
 */
export function verifyDescriptor(bytes: Uint8Array, options: VerifyDescriptorOptions): Descriptor {
  const { now } = options;
  const maxAge = options.maxAge ?? DEFAULT_DESCRIPTOR_MAX_AGE_MS;
  const maxSkew = options.maxSkew ?? DEFAULT_MAX_SKEW_MS;
  if (!Number.isFinite(now) || !Number.isFinite(maxAge) || maxAge < 0 || !Number.isFinite(maxSkew) || maxSkew < 0) {
    throw new DirectoryError("bad-config", "verifyDescriptor needs a finite now and non-negative maxAge and maxSkew (ms)");
  }
  const descriptor = openDescriptor(bytes, options.maxBytes ?? DEFAULT_LIMITS.maxDescriptorBytes);
  if (descriptor.publishedAt > now + maxSkew) {
    throw new DirectoryError("future-dated", `descriptor is published ${descriptor.publishedAt - now} ms in the future (tolerance ${maxSkew} ms): check the node's clock`);
  }
  if (descriptor.publishedAt < now - maxAge) {
    throw new DirectoryError("stale", `descriptor is ${now - descriptor.publishedAt} ms old (limit ${maxAge} ms): the node must publish a fresh one`);
  }
  if (!isRegistered(options.isRegisteredAndStaked, descriptor.identity)) {
    throw new DirectoryError("not-registered", `node ${bytesToHexFast(descriptor.identity)} is not registered and staked on chain`);
  }
  return descriptor;
}

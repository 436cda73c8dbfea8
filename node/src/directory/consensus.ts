/**
 * The consensus: the node list every client trusts, computed
 * deterministically from the discovery nodes' votes and signed by each.
 *
 * Owns the voting rules, the consensus layout and its verification.
 *
 * Rules (N = the configured discovery set size, not the votes received):
 * - a consensus is computed only from more than N/2 votes, all for the same
 *   valid-after, one per voter;
 * - a node is listed when more than N/2 votes list it;
 * - a flag is set when more than half of the votes listing the node set it;
 * - onion key, addresses, country, version and family come from the most
 *   common descriptor among those votes (by descriptor digest; ties go to the
 *   later publication time, then the bytewise smaller digest), so the values
 *   always belong together;
 * - bandwidth is the low median of the voted values (one voter cannot inflate it);
 * - bridges never appear (votes never list them);
 * - an application id is listed for a node when more than half of the votes
 *   listing the node carry it (each voter confirmed it on chain); the
 *   `commercial` flag is set exactly when at least one id is listed;
 * - a node whose consensus flags include `internal` is listed with no
 *   addresses (everyone, clients included, fetches this document; nodes learn
 *   internal nodes' addresses from the node-only view) and never `guard`.
 *
 * Layout. Body (canonical CBOR map):
 *   fu uint, n uint (discovery set size), nodes [entry] sorted by id,
 *   va uint, vu uint, voters [bstr(32)] sorted
 * entry: addrs [bstr], apps [bstr(32)] (optional), bw uint, cc tstr, f uint,
 *   fam tstr (optional), id bstr(32), okey bstr(32), ver tstr. addrs is empty
 *   exactly when f has the internal bit, else it holds 1..4 addresses; apps
 *   (1..8 ascending application ids) is present exactly when f has the
 *   commercial bit, so entries of other nodes encode as before.
 * Document (canonical CBOR map):
 *   { body: bstr, sigs: [{ sig: bstr(64), signer: bstr(32) }] sorted by signer,
 *     type: "consensus", v: 1 }
 * Each signature covers documentSigningMessage("consensus", body), the same
 * message a single-signer document would have, so detached signatures made by
 * different discovery nodes over the same body bytes combine.
 *
 * Trusts nothing: verifyConsensus checks size, layout, K valid signatures from
 * distinct trusted keys, every field, and liveness.
 */
import { ed25519Sign, ed25519Verify, ed25519PublicKey } from "../crypto/ed25519.js";
import { sha256 } from "../crypto/kdf.js";
import { decodeCanonical, encodeCanonical } from "../wire/canonical.js";
import { DOCUMENT_VERSION, documentSigningMessage } from "../wire/document.js";
import { decodeAddress } from "./address.js";
import type { NodeAddress } from "./address.js";
import {
  ALL_NODE_FLAGS,
  DEFAULT_LIMITS,
  MAX_ADDRESSES,
  MAX_BANDWIDTH,
  MAX_DISCOVERY_NODES,
  NodeFlag,
  builtInDiscoveryTrust,
  bytesToHexFast,
  resolveTrust,
} from "./config.js";
import type { VotingSchedule } from "./config.js";
import { COUNTRY_PATTERN, FAMILY_PATTERN, VERSION_PATTERN, readApps } from "./descriptor.js";
import { DirectoryError } from "./errors.js";
import { bytesEqual, compareBytes } from "../base/bytes.js";
import { fromWire, malformed, readArray, readBytes, readMap, readString, readUint } from "./fields.js";
import type { Vote, VoteEntry } from "./vote.js";

export const CONSENSUS_TYPE = "consensus";
export const CONSENSUS_SIGNATURE_TYPE = "consensus-sig";

/** One node as the consensus lists it. */
export interface ConsensusEntry {
  identity: Uint8Array;
  onionKey: Uint8Array;
  /** Byte form (address.ts), in the node's order of preference. */
  encodedAddresses: Uint8Array[];
  country: string;
  version: string;
  bandwidth: number;
  /** NodeFlag bits. */
  flags: number;
  family?: string;
  /** Application ids the node serves (ascending), present exactly with the commercial flag. */
  apps?: Uint8Array[];
}

export interface ConsensusBody {
  validAfter: number;
  freshUntil: number;
  validUntil: number;
  /** N: the configured size of the discovery set. */
  discoverySetSize: number;
  /** Keys of the discovery nodes whose votes were counted, sorted. */
  voters: Uint8Array[];
  /** Sorted by identity. */
  entries: ConsensusEntry[];
}

/** A computed (unsigned) consensus. */
export interface ComputedConsensus {
  body: ConsensusBody;
  /** The canonical body bytes every discovery node signs. */
  bodyBytes: Uint8Array;
  /** SHA-256 of bodyBytes. */
  digest: Uint8Array;
}

export interface ConsensusSignature {
  signer: Uint8Array;
  sig: Uint8Array;
}

// ------------------------------------------------------------------ computing

export interface ComputeConsensusOptions {
  /** N, the configured discovery set size. */
  discoverySetSize: number;
  schedule: Pick<VotingSchedule, "periodMs" | "validPeriods">;
}

function chooseDescriptor(listing: VoteEntry[]): VoteEntry {
  const groups = new Map<string, { entry: VoteEntry; count: number }>();
  for (const e of listing) {
    const key = bytesToHexFast(e.descriptorDigest);
    const g = groups.get(key);
    if (g) g.count++;
    else groups.set(key, { entry: e, count: 1 });
  }
  let best: { entry: VoteEntry; count: number } | undefined;
  for (const g of groups.values()) {
    if (
      !best ||
      g.count > best.count ||
      (g.count === best.count &&
        (g.entry.publishedAt > best.entry.publishedAt ||
          (g.entry.publishedAt === best.entry.publishedAt && compareBytes(g.entry.descriptorDigest, best.entry.descriptorDigest) < 0)))
    ) {
      best = g;
    }
  }
  return (best as { entry: VoteEntry }).entry;
}

/** Application ids carried by more than half of the votes listing one node, ascending. */
function majorityApps(listing: readonly VoteEntry[]): Uint8Array[] {
  const counts = new Map<string, { id: Uint8Array; count: number }>();
  for (const e of listing) {
    for (const id of e.apps ?? []) {
      const key = bytesToHexFast(id);
      const c = counts.get(key);
      if (c) c.count++;
      else counts.set(key, { id, count: 1 });
    }
  }
  return [...counts.values()].filter((c) => 2 * c.count > listing.length).map((c) => c.id).sort(compareBytes);
}

/**
 * Computes the consensus body from verified votes. Deterministic: the same
 * votes in any order give the same bytes. Throws DirectoryError
 * "insufficient-votes", "conflicting-vote" or "wrong-period".
 */
export function computeConsensus(votes: readonly Vote[], options: ComputeConsensusOptions): ComputedConsensus {
  const n = options.discoverySetSize;
  if (!Number.isInteger(n) || n < 1 || n > MAX_DISCOVERY_NODES) {
    throw new DirectoryError("bad-config", `discoverySetSize must be an integer in 1..${MAX_DISCOVERY_NODES}, got ${String(n)}`);
  }
  if (2 * votes.length <= n) {
    throw new DirectoryError("insufficient-votes", `${votes.length} votes of a discovery set of ${n}: more than ${Math.floor(n / 2)} are needed`);
  }
  const validAfter = (votes[0] as Vote).validAfter;
  const voterKeys = new Set<string>();
  for (const v of votes) {
    if (v.validAfter !== validAfter) throw new DirectoryError("wrong-period", `votes are for different periods (${validAfter} and ${v.validAfter})`);
    const k = bytesToHexFast(v.voter);
    if (voterKeys.has(k)) throw new DirectoryError("conflicting-vote", `two votes from discovery node ${k}`);
    voterKeys.add(k);
  }
  // Group every vote's entries by node identity.
  const listings = new Map<string, VoteEntry[]>();
  for (const v of votes) {
    for (const e of v.entries) {
      const k = bytesToHexFast(e.identity);
      const list = listings.get(k);
      if (list) list.push(e);
      else listings.set(k, [e]);
    }
  }
  const entries: ConsensusEntry[] = [];
  for (const listing of listings.values()) {
    const count = listing.length;
    if (2 * count <= n) continue;
    const chosen = chooseDescriptor(listing);
    let flags = 0;
    for (let bit = 1; bit <= ALL_NODE_FLAGS; bit *= 2) {
      if ((ALL_NODE_FLAGS & bit) === 0) continue;
      let withBit = 0;
      for (const e of listing) if ((e.flags & bit) !== 0) withBit++;
      if (2 * withBit > count) flags |= bit;
    }
    // Honest voters never set both; split votes could, and an internal node must never be an entry.
    const internal = (flags & NodeFlag.internal) !== 0;
    if (internal) flags &= ~NodeFlag.guard;
    // Split votes could pick an outbound-only internal node's address-less descriptor for an entry not flagged internal: not listable.
    if (!internal && chosen.addresses.length === 0) continue;
    const apps = majorityApps(listing);
    flags &= ~NodeFlag.commercial;
    if (apps.length > 0) flags |= NodeFlag.commercial;
    const bandwidths = listing.map((e) => e.bandwidth).sort((a, b) => a - b);
    const entry: ConsensusEntry = {
      identity: chosen.identity,
      onionKey: chosen.onionKey,
      // What clients fetch never names where an internal node listens.
      encodedAddresses: internal ? [] : chosen.addresses,
      country: chosen.country,
      version: chosen.version,
      bandwidth: bandwidths[Math.floor((count - 1) / 2)] as number,
      flags,
    };
    if (chosen.family !== undefined) entry.family = chosen.family;
    if (apps.length > 0) entry.apps = apps;
    entries.push(entry);
  }
  entries.sort((a, b) => compareBytes(a.identity, b.identity));
  const { periodMs, validPeriods } = options.schedule;
  const body: ConsensusBody = {
    validAfter,
    freshUntil: validAfter + periodMs,
    validUntil: validAfter + validPeriods * periodMs,
    discoverySetSize: n,
    voters: votes.map((v) => v.voter).sort(compareBytes),
    entries,
  };
  const bodyBytes = encodeConsensusBody(body);
  return { body, bodyBytes, digest: sha256(bodyBytes) };
}

function entryToCbor(e: ConsensusEntry): Record<string, unknown> {
  return { addrs: e.encodedAddresses, apps: e.apps !== undefined && e.apps.length > 0 ? e.apps : undefined, bw: e.bandwidth, cc: e.country, f: e.flags, fam: e.family, id: e.identity, okey: e.onionKey, ver: e.version };
}

/** The canonical body bytes of a consensus. */
export function encodeConsensusBody(body: ConsensusBody): Uint8Array {
  return fromWire("consensus body", () =>
    encodeCanonical({
      fu: body.freshUntil,
      n: body.discoverySetSize,
      nodes: body.entries.map(entryToCbor),
      va: body.validAfter,
      voters: body.voters,
      vu: body.validUntil,
    }),
  );
}

// ------------------------------------------------------------------ signing

/** A detached signature over consensus body bytes. */
export function signConsensus(bodyBytes: Uint8Array, secretKey: Uint8Array): ConsensusSignature {
  return { signer: ed25519PublicKey(secretKey), sig: ed25519Sign(secretKey, documentSigningMessage(CONSENSUS_TYPE, bodyBytes)) };
}

/** True when `signature` is a valid signature of these body bytes. */
export function checkConsensusSignature(bodyBytes: Uint8Array, signature: ConsensusSignature): boolean {
  return ed25519Verify(signature.signer, documentSigningMessage(CONSENSUS_TYPE, bodyBytes), signature.sig);
}

/** The consensus document: body bytes plus signatures (deduplicated by signer, sorted). */
export function assembleConsensus(bodyBytes: Uint8Array, signatures: readonly ConsensusSignature[]): Uint8Array {
  const bySigner = new Map<string, ConsensusSignature>();
  for (const s of signatures) {
    if (!(s.signer instanceof Uint8Array) || s.signer.length !== 32 || !(s.sig instanceof Uint8Array) || s.sig.length !== 64) {
      throw new DirectoryError("malformed", "a consensus signature is a 32-byte signer key and a 64-byte signature");
    }
    bySigner.set(bytesToHexFast(s.signer), s);
  }
  if (bySigner.size > MAX_DISCOVERY_NODES) throw new DirectoryError("malformed", `at most ${MAX_DISCOVERY_NODES} signatures`);
  const sigs = [...bySigner.values()].sort((a, b) => compareBytes(a.signer, b.signer)).map((s) => ({ sig: s.sig, signer: s.signer }));
  return fromWire("consensus", () => encodeCanonical({ body: bodyBytes, sigs, type: CONSENSUS_TYPE, v: DOCUMENT_VERSION }));
}

/** The message one discovery node sends the others with its signature. */
export interface ConsensusSignatureMessage extends ConsensusSignature {
  validAfter: number;
  /** SHA-256 of the body bytes signed. */
  digest: Uint8Array;
}

export function encodeConsensusSignature(message: ConsensusSignatureMessage): Uint8Array {
  return fromWire("consensus signature", () =>
    encodeCanonical({ d: message.digest, sig: message.sig, signer: message.signer, type: CONSENSUS_SIGNATURE_TYPE, va: message.validAfter }),
  );
}

/** Parses a signature message (shape only; the receiver checks it against its own body). */
export function decodeConsensusSignature(bytes: Uint8Array): ConsensusSignatureMessage {
  const value = fromWire("consensus signature", () => decodeCanonical(bytes, { maxBytes: 256, maxDepth: 1 }));
  const m = readMap(value, "consensus signature", ["d", "sig", "signer", "type", "va"]);
  if (m["type"] !== CONSENSUS_SIGNATURE_TYPE) throw malformed(`expected a "${CONSENSUS_SIGNATURE_TYPE}" message`);
  return {
    digest: readBytes(m["d"], "consensus signature d", 32),
    sig: readBytes(m["sig"], "consensus signature sig", 64),
    signer: readBytes(m["signer"], "consensus signature signer", 32),
    validAfter: readUint(m["va"], "consensus signature va"),
  };
}

// ------------------------------------------------------------------ verifying

export interface VerifyConsensusOptions {
  /** Trusted discovery keys; default the built-in set. */
  trustedKeys?: readonly Uint8Array[];
  /** K; default a strict majority of trustedKeys. */
  threshold?: number;
  /** Current time, ms since the Unix epoch. */
  now: number;
  /** Tolerated clock skew at both ends of the validity window (default 0). */
  clockSkewMs?: number;
  maxBytes?: number;
  maxNodes?: number;
}

export interface VerifiedConsensus extends ConsensusBody {
  /** Trusted keys whose signatures verified, sorted. */
  signers: Uint8Array[];
  bodyBytes: Uint8Array;
  digest: Uint8Array;
  /** The document as received (what a cache serves). */
  bytes: Uint8Array;
}

interface ParsedConsensus {
  bodyBytes: Uint8Array;
  signatures: ConsensusSignature[];
}

/** Parses the document envelope (no signature checks). */
export function parseConsensusDocument(bytes: Uint8Array, maxBytes: number = DEFAULT_LIMITS.maxConsensusBytes): ParsedConsensus {
  const value = fromWire("consensus", () => decodeCanonical(bytes, { maxBytes, maxDepth: 3 }));
  const m = readMap(value, "consensus", ["body", "sigs", "type", "v"]);
  if (m["type"] !== CONSENSUS_TYPE) throw malformed(`expected a "${CONSENSUS_TYPE}" document`);
  if (m["v"] !== DOCUMENT_VERSION) throw malformed(`unsupported consensus version ${String(m["v"])}; this software reads ${DOCUMENT_VERSION}`);
  if (!(m["body"] instanceof Uint8Array)) throw malformed("consensus body must be a byte string");
  const signatures = readArray(m["sigs"], "consensus sigs", MAX_DISCOVERY_NODES).map((s, i) => {
    const sm = readMap(s, `consensus signature #${i}`, ["sig", "signer"]);
    return { signer: readBytes(sm["signer"], `consensus signature #${i} signer`, 32), sig: readBytes(sm["sig"], `consensus signature #${i} sig`, 64) };
  });
  for (let i = 1; i < signatures.length; i++) {
    if (compareBytes((signatures[i - 1] as ConsensusSignature).signer, (signatures[i] as ConsensusSignature).signer) >= 0) {
      throw malformed("consensus signatures must be sorted by signer, one per signer");
    }
  }
  return { bodyBytes: m["body"], signatures };
}

function readConsensusEntry(value: unknown, i: number): ConsensusEntry {
  const what = `consensus node #${i}`;
  const m = readMap(value, what, ["addrs", "bw", "cc", "f", "id", "okey", "ver"], ["apps", "fam"]);
  const encodedAddresses = readArray(m["addrs"], `${what} addrs`, MAX_ADDRESSES).map((a) => {
    if (!(a instanceof Uint8Array)) throw malformed(`${what} addresses must be byte strings`);
    decodeAddress(a);
    return a;
  });
  const flags = readUint(m["f"], `${what} f`, 0xffffffff);
  // Addresses are absent exactly for internal nodes: a public node needs one to be reached, an internal one must not leak it.
  const internal = (flags & NodeFlag.internal) !== 0;
  if (internal && encodedAddresses.length > 0) throw malformed(`${what} is internal but lists addresses`);
  if (!internal && encodedAddresses.length === 0) throw malformed(`${what} needs at least one address (only internal nodes are listed without)`);
  const entry: ConsensusEntry = {
    identity: readBytes(m["id"], `${what} id`, 32),
    onionKey: readBytes(m["okey"], `${what} okey`, 32),
    encodedAddresses,
    country: readString(m["cc"], `${what} cc`, COUNTRY_PATTERN),
    version: readString(m["ver"], `${what} ver`, VERSION_PATTERN),
    bandwidth: readUint(m["bw"], `${what} bw`, MAX_BANDWIDTH),
    flags,
  };
  if (m["fam"] !== undefined) entry.family = readString(m["fam"], `${what} fam`, FAMILY_PATTERN);
  if (((flags & NodeFlag.commercial) !== 0) !== (m["apps"] !== undefined)) throw malformed(`${what}: application ids go with the commercial flag, and only with it`);
  if (m["apps"] !== undefined) entry.apps = readApps(m["apps"], what);
  return entry;
}

/** Decodes and checks consensus body bytes. Throws DirectoryError "malformed" / "too-large". */
export function decodeConsensusBody(bodyBytes: Uint8Array, options: { maxBytes?: number; maxNodes?: number } = {}): ConsensusBody {
  const value = fromWire("consensus body", () => decodeCanonical(bodyBytes, { maxBytes: options.maxBytes ?? DEFAULT_LIMITS.maxConsensusBytes, maxDepth: 4 }));
  const m = readMap(value, "consensus body", ["fu", "n", "nodes", "va", "voters", "vu"]);
  const validAfter = readUint(m["va"], "consensus va");
  const freshUntil = readUint(m["fu"], "consensus fu");
  const validUntil = readUint(m["vu"], "consensus vu");
  if (!(validAfter < freshUntil && freshUntil <= validUntil)) throw malformed("consensus times must satisfy valid-after < fresh-until <= valid-until");
  const discoverySetSize = readUint(m["n"], "consensus n", MAX_DISCOVERY_NODES);
  if (discoverySetSize < 1) throw malformed("consensus n must be at least 1");
  const voters = readArray(m["voters"], "consensus voters", discoverySetSize, 1).map((v, i) => readBytes(v, `consensus voter #${i}`, 32));
  for (let i = 1; i < voters.length; i++) {
    if (compareBytes(voters[i - 1] as Uint8Array, voters[i] as Uint8Array) >= 0) throw malformed("consensus voters must be sorted, each once");
  }
  const entries = readArray(m["nodes"], "consensus nodes", options.maxNodes ?? DEFAULT_LIMITS.maxNodes).map(readConsensusEntry);
  for (let i = 1; i < entries.length; i++) {
    if (compareBytes((entries[i - 1] as ConsensusEntry).identity, (entries[i] as ConsensusEntry).identity) >= 0) {
      throw malformed("consensus nodes must be sorted by id, each id once");
    }
  }
  return { validAfter, freshUntil, validUntil, discoverySetSize, voters, entries };
}

/**
 * Verifies a consensus document as a client: at least K valid signatures from
 * distinct trusted keys, a well-formed body, and live at `now`
 * (valid-after <= now <= valid-until). Signatures from unknown keys are
 * ignored when K trusted ones verify. Throws DirectoryError "too-large",
 * "malformed", "unknown-signer" (no trusted signer at all), "under-signed",
 * "future-dated" (not valid yet), "expired", or "bad-config".
 */
export function verifyConsensus(bytes: Uint8Array, options: VerifyConsensusOptions): VerifiedConsensus {
  const trust =
    options.trustedKeys === undefined
      ? builtInDiscoveryTrust()
      : resolveTrust({ keys: options.trustedKeys, threshold: options.threshold ?? Math.floor(options.trustedKeys.length / 2) + 1 });
  const { now } = options;
  const skew = options.clockSkewMs ?? 0;
  if (!Number.isFinite(now) || !Number.isFinite(skew) || skew < 0) throw new DirectoryError("bad-config", "verifyConsensus needs a finite now and a non-negative clockSkewMs");
  const maxBytes = options.maxBytes ?? DEFAULT_LIMITS.maxConsensusBytes;
  const { bodyBytes, signatures } = parseConsensusDocument(bytes, maxBytes);

  const trusted = new Set(trust.keys.map(bytesToHexFast));
  const message = documentSigningMessage(CONSENSUS_TYPE, bodyBytes);
  const signers: Uint8Array[] = [];
  let fromTrusted = 0;
  for (const s of signatures) {
    if (!trusted.has(bytesToHexFast(s.signer))) continue;
    fromTrusted++;
    if (ed25519Verify(s.signer, message, s.sig)) signers.push(s.signer);
  }
  if (signers.length < trust.threshold) {
    if (fromTrusted === 0) {
      throw new DirectoryError("unknown-signer", `none of the ${signatures.length} signatures is from a trusted discovery key: wrong network, or a forged consensus`);
    }
    throw new DirectoryError(
      "under-signed",
      `consensus has ${signers.length} valid signatures from trusted discovery keys; ${trust.threshold} are required (${fromTrusted} trusted signatures present)`,
    );
  }
  const body = decodeConsensusBody(bodyBytes, { maxBytes, maxNodes: options.maxNodes });
  if (now + skew < body.validAfter) {
    throw new DirectoryError("future-dated", `consensus is valid only from ${new Date(body.validAfter).toISOString()}, ${body.validAfter - now} ms from now: check the clock`);
  }
  if (now - skew > body.validUntil) {
    throw new DirectoryError("expired", `consensus expired at ${new Date(body.validUntil).toISOString()}, ${now - body.validUntil} ms ago: fetch a fresh one`);
  }
  return { ...body, signers: signers.sort(compareBytes), bodyBytes, digest: sha256(bodyBytes), bytes };
}

/** The addresses of a consensus entry as { host, port }. */
export function entryAddresses(entry: ConsensusEntry): NodeAddress[] {
  return entry.encodedAddresses.map(decodeAddress);
}

/** True when both consensus documents carry the same body. */
export function sameConsensusBody(a: { digest: Uint8Array }, b: { digest: Uint8Array }): boolean {
  return bytesEqual(a.digest, b.digest);
}

/**
 * Votes: one discovery node's signed view of the network for one period.
 *
 * Owns the vote layout, a signed document (wire/document.ts) of type "vote",
 * signed by the voting discovery node, with the canonical CBOR body
 *   va     uint    valid-after of the consensus this vote is for (ms)
 *   pub    uint    when the vote was made (ms)
 *   nodes  [entry] the nodes the voter accepts, sorted by id, ids distinct
 * and each entry the map
 *   addrs [bstr] (1..4; 0..4 when f has the internal bit), apps [bstr(32)] (optional, 1..8 ascending application ids the
 *   voter confirmed on chain; present exactly when f has the commercial bit),
 *   bw uint, cc tstr, d bstr(32) (descriptor digest),
 *   f uint (NodeFlag bits), fam tstr (optional), id bstr(32) (identity key),
 *   okey bstr(32), pub uint (descriptor publication time), ver tstr
 * with the same rules as the descriptor fields (descriptor.ts).
 *
 * Trusts nothing: openVote checks size, signature, that the signer is in the
 * discovery set, and every field, throwing DirectoryError.
 */
import { sha256 } from "../crypto/kdf.js";
import { openDocument, signDocument } from "../wire/document.js";
import { decodeAddress } from "./address.js";
import { ALL_NODE_FLAGS, DEFAULT_LIMITS, MAX_ADDRESSES, MAX_BANDWIDTH, NodeFlag, bytesToHexFast } from "./config.js";
import { COUNTRY_PATTERN, FAMILY_PATTERN, VERSION_PATTERN, readApps } from "./descriptor.js";
import { DirectoryError } from "./errors.js";
import { bytesEqual, compareBytes } from "../base/bytes.js";
import { fromWire, malformed, readArray, readBytes, readMap, readString, readUint } from "./fields.js";

export const VOTE_TYPE = "vote";

/** One node as a vote lists it. */
export interface VoteEntry {
  identity: Uint8Array;
  /** Digest of the descriptor the voter holds for the node. */
  descriptorDigest: Uint8Array;
  onionKey: Uint8Array;
  /** Addresses in byte form (address.ts). */
  addresses: Uint8Array[];
  country: string;
  version: string;
  bandwidth: number;
  /** NodeFlag bits the voter assigns. */
  flags: number;
  /** The descriptor's publication time. */
  publishedAt: number;
  family?: string;
  /** Application ids the voter confirmed on chain (ascending); present exactly with the commercial flag. */
  apps?: Uint8Array[];
}

export interface Vote {
  voter: Uint8Array;
  validAfter: number;
  publishedAt: number;
  /** Sorted by identity. */
  entries: VoteEntry[];
  /** SHA-256 of the signed body bytes. */
  digest: Uint8Array;
  /** The signed document. */
  bytes: Uint8Array;
}

export interface CreateVoteOptions {
  /** The discovery node's 32-byte Ed25519 seed. */
  secretKey: Uint8Array;
  validAfter: number;
  publishedAt: number;
  /** In any order; sorted here. */
  entries: readonly VoteEntry[];
}

export interface OpenVoteOptions {
  /** Keys of the discovery set in lower-case hex; a vote from any other key is "unknown-signer". */
  discoverySet: ReadonlySet<string>;
  maxBytes?: number;
  maxNodes?: number;
}

function voteEntryToCbor(e: VoteEntry): Record<string, unknown> {
  return {
    addrs: e.addresses,
    apps: e.apps !== undefined && e.apps.length > 0 ? e.apps : undefined,
    bw: e.bandwidth,
    cc: e.country,
    d: e.descriptorDigest,
    f: e.flags,
    fam: e.family,
    id: e.identity,
    okey: e.onionKey,
    pub: e.publishedAt,
    ver: e.version,
  };
}

/** Signs a vote; returns the document bytes. */
export function createVote(options: CreateVoteOptions): Uint8Array {
  const entries = [...options.entries].sort((a, b) => compareBytes(a.identity, b.identity));
  for (let i = 1; i < entries.length; i++) {
    if (bytesEqual((entries[i] as VoteEntry).identity, (entries[i - 1] as VoteEntry).identity)) {
      throw new DirectoryError("malformed", "a vote lists each node once");
    }
  }
  const body = { nodes: entries.map(voteEntryToCbor), pub: options.publishedAt, va: options.validAfter };
  return fromWire("vote", () => signDocument({ type: VOTE_TYPE, body, secretKey: options.secretKey }));
}

function readEntry(value: unknown, i: number): VoteEntry {
  const what = `vote node #${i}`;
  const m = readMap(value, what, ["addrs", "bw", "cc", "d", "f", "id", "okey", "pub", "ver"], ["apps", "fam"]);
  const addresses = readArray(m["addrs"], `${what} addrs`, MAX_ADDRESSES, 0).map((a) => {
    if (!(a instanceof Uint8Array)) throw malformed(`${what} addresses must be byte strings`);
    decodeAddress(a);
    return a;
  });
  const flags = readUint(m["f"], `${what} flags`, 0xffffffff);
  if ((flags & ~ALL_NODE_FLAGS) !== 0) throw malformed(`${what} has undefined flag bits ${flags & ~ALL_NODE_FLAGS}`);
  // Only an internal node may be voted for with no address (one with outbound links only, directory.md §12).
  if (addresses.length === 0 && (flags & NodeFlag.internal) === 0) throw malformed(`${what} lists no address but is not internal`);
  const entry: VoteEntry = {
    identity: readBytes(m["id"], `${what} id`, 32),
    descriptorDigest: readBytes(m["d"], `${what} d`, 32),
    onionKey: readBytes(m["okey"], `${what} okey`, 32),
    addresses,
    country: readString(m["cc"], `${what} cc`, COUNTRY_PATTERN),
    version: readString(m["ver"], `${what} ver`, VERSION_PATTERN),
    bandwidth: readUint(m["bw"], `${what} bw`, MAX_BANDWIDTH),
    flags,
    publishedAt: readUint(m["pub"], `${what} pub`),
  };
  if (m["fam"] !== undefined) entry.family = readString(m["fam"], `${what} fam`, FAMILY_PATTERN);
  const commercial = (flags & NodeFlag.commercial) !== 0;
  if (commercial !== (m["apps"] !== undefined)) throw malformed(`${what}: application ids go with the commercial flag, and only with it`);
  if (m["apps"] !== undefined) entry.apps = readApps(m["apps"], what);
  return entry;
}

/** Verifies and parses a vote. Throws DirectoryError "too-large", "malformed", "bad-signature" or "unknown-signer". */
export function openVote(bytes: Uint8Array, options: OpenVoteOptions): Vote {
  const maxNodes = options.maxNodes ?? DEFAULT_LIMITS.maxNodes;
  const opened = fromWire("vote", () => openDocument(bytes, { type: VOTE_TYPE, maxBytes: options.maxBytes ?? DEFAULT_LIMITS.maxVoteBytes, maxDepth: 4 }));
  if (!options.discoverySet.has(bytesToHexFast(opened.signer))) {
    throw new DirectoryError("unknown-signer", `vote is signed by ${bytesToHexFast(opened.signer)}, which is not in the discovery set`);
  }
  const m = readMap(opened.body, "vote", ["nodes", "pub", "va"]);
  const entries = readArray(m["nodes"], "vote nodes", maxNodes).map(readEntry);
  for (let i = 1; i < entries.length; i++) {
    if (compareBytes((entries[i - 1] as VoteEntry).identity, (entries[i] as VoteEntry).identity) >= 0) {
      throw malformed("vote nodes must be sorted by id, each id once");
    }
  }
  return {
    voter: opened.signer,
    validAfter: readUint(m["va"], "vote va"),
    publishedAt: readUint(m["pub"], "vote pub"),
    entries,
    digest: sha256(opened.bodyBytes),
    bytes,
  };
}

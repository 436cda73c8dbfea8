/**
 * Directory constants and configuration: flags, chain role bits, voting
 * schedule, acceptance limits and the built-in discovery trust set.
 *
 * Owns every number the descriptor, vote and consensus rules depend on, so
 * all discovery nodes of one network can be checked to run the same rules.
 * Trusts nothing; resolve* functions validate caller-supplied values and
 * throw DirectoryError "bad-config" naming the fix.
 */
import { hexOf, parseHex } from "../base/hex.js";
import { DirectoryError } from "./errors.js";

/**
 * Node flags as bits of the `f` field of votes and the consensus. Names are
 * what the onion layer's path selection matches on (PathNode.flags).
 */
export const NodeFlag = {
  /** Reachable by the voting discovery node this period. */
  running: 1,
  /** Fresh, well-signed descriptor from a node registered and staked on chain. */
  valid: 2,
  /** Advertised bandwidth at or above the fast threshold. */
  fast: 4,
  /** Seen running continuously for at least the stable threshold. */
  stable: 8,
  /** Entry (guard-like): running, fast, stable onion relay reachable from outside. */
  guard: 16,
  /** Holds the onion-relay role on chain and claims it. */
  onion: 32,
  /** Holds the discovery role on chain and claims it. */
  discovery: 64,
  /** Holds the authority role on chain and claims it. */
  authority: 128,
  /** Holds the oracle role on chain and claims it. */
  oracle: 256,
  /**
   * Internal node (its descriptor says so): only an interim or final hop,
   * never an entry, never guard; its consensus entry carries no addresses.
   */
  internal: 512,
  /**
   * Commercial node (issue 17): serves one or more applications' custom
   * protocols, each application id claimed in its descriptor and confirmed on
   * chain (CommercialNodes) by the voter; the consensus entry carries the ids.
   */
  commercial: 1024,
} as const;
export type NodeFlagName = keyof typeof NodeFlag;
export const NODE_FLAG_NAMES = Object.keys(NodeFlag) as NodeFlagName[];
/** Every defined flag bit; votes with other bits are refused. */
export const ALL_NODE_FLAGS = NODE_FLAG_NAMES.reduce((mask, name) => mask | NodeFlag[name], 0);

/** Role bits as NodeRegistry.sol defines them (ROLE_ONION .. ROLE_ORACLE). */
export const ChainRole = { onion: 1, discovery: 2, authority: 4, oracle: 8 } as const;
export const ALL_CHAIN_ROLES = 15;

/** The flag that a chain role grants, when the descriptor also claims the role. */
export const ROLE_FLAGS: ReadonlyArray<readonly [number, number]> = [
  [ChainRole.onion, NodeFlag.onion],
  [ChainRole.discovery, NodeFlag.discovery],
  [ChainRole.authority, NodeFlag.authority],
  [ChainRole.oracle, NodeFlag.oracle],
];

/** Flag names of a bit mask, in NODE_FLAG_NAMES order; unknown bits are skipped. */
export function flagNames(mask: number): NodeFlagName[] {
  return NODE_FLAG_NAMES.filter((name) => (mask & NodeFlag[name]) !== 0);
}

/** The bit mask of flag names. Throws DirectoryError "bad-config" for an unknown name. */
export function flagMask(names: readonly string[]): number {
  let mask = 0;
  for (const name of names) {
    if (!Object.hasOwn(NodeFlag, name)) throw new DirectoryError("bad-config", `unknown node flag ${JSON.stringify(name)}; known: ${NODE_FLAG_NAMES.join(", ")}`);
    mask |= NodeFlag[name as NodeFlagName];
  }
  return mask;
}

// ------------------------------------------------------------------ schedule

/**
 * The voting schedule, shared by every discovery node of a network. For the
 * consensus valid from T (a multiple of periodMs since the Unix epoch):
 *   T - voteDelayMs - distDelayMs  each discovery node signs and sends its vote
 *   T - voteDelayMs/2 - distDelayMs  it asks for the votes it is missing
 *   T - distDelayMs                computes the consensus, sends its signature
 *   T                              publishes it with the signatures it holds (>= K)
 * fresh-until = T + periodMs, valid-until = T + validPeriods * periodMs.
 */
export interface VotingSchedule {
  periodMs: number;
  voteDelayMs: number;
  distDelayMs: number;
  validPeriods: number;
}

export const DEFAULT_SCHEDULE: Readonly<VotingSchedule> = Object.freeze({
  periodMs: 15 * 60_000,
  voteDelayMs: 2 * 60_000,
  distDelayMs: 2 * 60_000,
  validPeriods: 3,
});

export function resolveSchedule(partial: Partial<VotingSchedule> = {}): VotingSchedule {
  const s = { ...DEFAULT_SCHEDULE, ...partial };
  for (const key of ["periodMs", "voteDelayMs", "distDelayMs", "validPeriods"] as const) {
    if (!Number.isSafeInteger(s[key]) || s[key] <= 0) throw new DirectoryError("bad-config", `schedule.${key} must be a positive integer, got ${String(s[key])}`);
  }
  if (s.voteDelayMs + s.distDelayMs >= s.periodMs) {
    throw new DirectoryError("bad-config", `voteDelayMs + distDelayMs (${s.voteDelayMs + s.distDelayMs}) must be shorter than periodMs (${s.periodMs})`);
  }
  if (s.validPeriods < 2) throw new DirectoryError("bad-config", "schedule.validPeriods must be at least 2, so a consensus stays valid while the next one is fetched");
  return s;
}

// ------------------------------------------------------------------ flag thresholds

export interface FlagThresholds {
  /** Advertised bytes per second for the fast flag. */
  fastMinBandwidth: number;
  /** Continuous running time, as this discovery node observed it, for the stable flag. */
  stableMinUptimeMs: number;
}

export const DEFAULT_FLAG_THRESHOLDS: Readonly<FlagThresholds> = Object.freeze({
  fastMinBandwidth: 100_000,
  stableMinUptimeMs: 2 * 3600_000,
});

// ------------------------------------------------------------------ limits

export interface DirectoryLimits {
  /** Largest signed descriptor accepted, in bytes. */
  maxDescriptorBytes: number;
  /** Largest signed vote accepted, in bytes. */
  maxVoteBytes: number;
  /** Largest consensus accepted, in bytes. */
  maxConsensusBytes: number;
  /** Most nodes one vote may list. */
  maxNodes: number;
}

export const DEFAULT_LIMITS: Readonly<DirectoryLimits> = Object.freeze({
  maxDescriptorBytes: 2048,
  maxVoteBytes: 16 * 1024 * 1024,
  maxConsensusBytes: 16 * 1024 * 1024,
  maxNodes: 65_536,
});

export const MAX_ADDRESSES = 4;
/** Most application ids a descriptor, vote entry or consensus entry carries (CommercialNodes.MAX_APPS_PER_NODE). */
export const MAX_APPS = 8;
export const MAX_VERSION_CHARS = 32;
export const MAX_FAMILY_CHARS = 64;
/** Upper bound on advertised bandwidth: 2^40 bytes/s (about 1 TB/s). */
export const MAX_BANDWIDTH = 2 ** 40;
/** Same bound as NodeRegistry.MAX_DISCOVERY_NODES. */
export const MAX_DISCOVERY_NODES = 128;
/** Defaults for descriptor acceptance. */
export const DEFAULT_DESCRIPTOR_MAX_AGE_MS = 3 * 3600_000;
export const DEFAULT_MAX_SKEW_MS = 5 * 60_000;

// ------------------------------------------------------------------ trust

/** Which discovery keys a client trusts, and how many must sign a consensus. */
export interface DiscoveryTrust {
  /** 32-byte Ed25519 keys of the discovery nodes. */
  keys: readonly Uint8Array[];
  /** K: valid signatures from distinct keys of `keys` a consensus needs. */
  threshold: number;
}

/**
 * The built-in discovery keys (hex). Empty until the public network's
 * discovery set is elected: there is no key anyone could honestly ship yet.
 * A deployment replaces it through configuration (see discoveryTrustFromKeys,
 * e.g. fed from NodeRegistry.discoverySet()).
 */
export const BUILT_IN_DISCOVERY_KEYS: readonly string[] = Object.freeze([]);

/** K for N discovery keys: a strict majority, so two conflicting consensuses cannot both be accepted. */
export function majorityThreshold(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** A trust set from keys (bytes or hex), with K defaulting to a strict majority. */
export function discoveryTrustFromKeys(keys: ReadonlyArray<Uint8Array | string>, threshold?: number): DiscoveryTrust {
  const parsed = keys.map((k, i) => {
    const bytes = typeof k === "string" ? hexToBytesStrict(k.startsWith("0x") ? k.slice(2) : k) : k;
    if (!(bytes instanceof Uint8Array) || bytes.length !== 32) throw new DirectoryError("bad-config", `discovery key #${i} must be 32 bytes (64 hex digits)`);
    return bytes;
  });
  return resolveTrust({ keys: parsed, threshold: threshold ?? majorityThreshold(parsed.length) });
}

/** The built-in trust set. Throws "bad-config" while it is empty. */
export function builtInDiscoveryTrust(): DiscoveryTrust {
  return discoveryTrustFromKeys(BUILT_IN_DISCOVERY_KEYS);
}

/** Checks a trust set: 1..128 distinct 32-byte keys, 1 <= K <= N. */
export function resolveTrust(trust: DiscoveryTrust): DiscoveryTrust {
  const keys = trust?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new DirectoryError(
      "bad-config",
      "no trusted discovery keys: the built-in set is empty until the public network launches; pass trustedKeys from your network's configuration (e.g. NodeRegistry.discoverySet())",
    );
  }
  if (keys.length > MAX_DISCOVERY_NODES) throw new DirectoryError("bad-config", `at most ${MAX_DISCOVERY_NODES} discovery keys, got ${keys.length}`);
  const seen = new Set<string>();
  for (const key of keys) {
    if (!(key instanceof Uint8Array) || key.length !== 32) throw new DirectoryError("bad-config", "every trusted discovery key must be a 32-byte Uint8Array");
    const h = bytesToHexFast(key);
    if (seen.has(h)) throw new DirectoryError("bad-config", `discovery key ${h} is listed twice`);
    seen.add(h);
  }
  const k = trust.threshold;
  if (!Number.isInteger(k) || k < 1 || k > keys.length) {
    throw new DirectoryError("bad-config", `threshold K must be an integer in 1..${keys.length} (the number of trusted keys), got ${String(k)}`);
  }
  return { keys: keys.slice(), threshold: k };
}

/** Lower-case hex of bytes (no Buffer, so it runs in browsers too). */
export const bytesToHexFast: (bytes: Uint8Array) => string = hexOf;

function hexToBytesStrict(hex: string): Uint8Array {
  const bytes = parseHex(hex);
  if (bytes === undefined) throw new DirectoryError("bad-config", `not a hex string: ${JSON.stringify(String(hex).slice(0, 80))}`);
  return bytes;
}

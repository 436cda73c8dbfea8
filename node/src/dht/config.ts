/**
 * DHT parameters with their defaults and range checks, in one place so the
 * node, the simulator and the CLI agree.
 */
import { DhtError } from "./errors.js";
import { checkLookupOptions } from "./lookup.js";
import { DEFAULT_RECORD_LIMITS } from "./record.js";
import type { RecordLimits } from "./record.js";
import { DEFAULT_ROUTING_TABLE_OPTIONS } from "./routing-table.js";
import type { RoutingTableOptions } from "./routing-table.js";
import type { PuzzleDifficulty } from "./contact.js";
import { DEFAULT_REPLAY_LIMITS } from "./messages.js";
import type { ReplayLimits } from "./messages.js";
import { DEFAULT_SENDER_QUOTA, checkSenderQuota } from "./sender-quota.js";
import type { SenderQuotaLimits } from "./sender-quota.js";

export interface DhtConfig extends RoutingTableOptions, PuzzleDifficulty {
  /** d: disjoint lookup paths. */
  disjointPaths: number;
  /** Queries in flight per path. */
  alpha: number;
  /**
   * w: a lookup path ends once the w closest entries of its shortlist
   * answered it (Kademlia's rule is w = k). Publishing and re-replication,
   * which need the k closest nodes rather than the target, always use w = k.
   */
  lookupWindow: number;
  /** b: each path also queries the b closest referrals of its initial contacts' replies (0 = off). */
  firstReplyBreadth: number;
  /** Per-RPC timeout. */
  rpcTimeoutMs: number;
  /** Cap on queries per lookup. */
  maxMessagesPerLookup: number;
  /** Accepted clock difference for message timestamps. */
  maxClockSkewMs: number;
  /** Record size and TTL limits. */
  records: RecordLimits;
  /**
   * A STORE is accepted only when fewer than this many contacts of the
   * node's own table are closer to the key than the node itself (it is
   * "plausibly among the k closest"). Default 2k: tables are partial views,
   * so a publisher's k closest can include nodes that know a few more
   * closer nodes than the publisher found.
   */
  storeWindow: number;
  /** Replay cache bounds: per sender node id and in total (messages.ts, ReplayGuard). */
  replay: ReplayLimits;
  /** Storage quotas per node that sent a STORE and per source address (sender-quota.ts), on top of the store's per-owner quota. */
  senderQuota: SenderQuotaLimits;
}

export const DEFAULT_DHT_CONFIG: DhtConfig = {
  ...DEFAULT_ROUTING_TABLE_OPTIONS,
  staticDifficulty: 12,
  dynamicDifficulty: 16,
  disjointPaths: 4,
  alpha: 1,
  lookupWindow: 2,
  firstReplyBreadth: 3,
  rpcTimeoutMs: 3000,
  maxMessagesPerLookup: 256,
  maxClockSkewMs: 60_000,
  records: DEFAULT_RECORD_LIMITS,
  storeWindow: 2 * DEFAULT_ROUTING_TABLE_OPTIONS.bucketSize,
  replay: DEFAULT_REPLAY_LIMITS,
  senderQuota: DEFAULT_SENDER_QUOTA,
};

/** Defaults overlaid with `partial`, checked. Throws DhtError "bad-config" naming the field. */
export function resolveDhtConfig(partial: Partial<DhtConfig> = {}): DhtConfig {
  const bucketSize = partial.bucketSize ?? DEFAULT_DHT_CONFIG.bucketSize;
  const config: DhtConfig = {
    ...DEFAULT_DHT_CONFIG,
    storeWindow: 2 * bucketSize,
    lookupWindow: Math.min(DEFAULT_DHT_CONFIG.lookupWindow, bucketSize),
    firstReplyBreadth: Math.min(DEFAULT_DHT_CONFIG.firstReplyBreadth, bucketSize),
    ...partial,
    records: { ...DEFAULT_RECORD_LIMITS, ...partial.records },
    replay: { ...DEFAULT_REPLAY_LIMITS, ...partial.replay },
    senderQuota: checkSenderQuota({ ...DEFAULT_SENDER_QUOTA, ...partial.senderQuota }),
  };
  for (const [name, v] of Object.entries(config.replay)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new DhtError("bad-config", `replay.${name} must be a positive integer, got ${String(v)}`);
  }
  if (config.replay.maxNoncesPerSender > config.replay.maxEntries) {
    throw new DhtError(
      "bad-config",
      `replay.maxNoncesPerSender (${config.replay.maxNoncesPerSender}) must not exceed replay.maxEntries (${config.replay.maxEntries})`,
    );
  }
  if (!Number.isInteger(config.storeWindow) || config.storeWindow < config.bucketSize) {
    throw new DhtError("bad-config", `storeWindow must be an integer >= bucketSize (${config.bucketSize}), got ${config.storeWindow}`);
  }
  checkLookupOptions({
    disjointPaths: config.disjointPaths,
    alpha: config.alpha,
    resultSize: config.bucketSize,
    maxMessages: config.maxMessagesPerLookup,
    window: config.lookupWindow,
    firstReplyBreadth: config.firstReplyBreadth,
  });
  for (const [name, v] of [
    ["staticDifficulty", config.staticDifficulty],
    ["dynamicDifficulty", config.dynamicDifficulty],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 64) throw new DhtError("bad-config", `${name} must be an integer in 0..64, got ${v}`);
  }
  if (!(config.rpcTimeoutMs > 0)) throw new DhtError("bad-config", `rpcTimeoutMs must be positive, got ${config.rpcTimeoutMs}`);
  if (!(config.maxClockSkewMs > 0)) throw new DhtError("bad-config", `maxClockSkewMs must be positive, got ${config.maxClockSkewMs}`);
  return config;
}

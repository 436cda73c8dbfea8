/**
 * The reachable set a discovery node votes with, as a pure record of probe
 * results over time.
 *
 * Owns the rule for turning probes into "running": a node counts as
 * reachable while its last successful probe is at most `graceMs` old. One
 * failed or slow probe (a loaded machine, a dropped packet) therefore does
 * not drop a node that answered the sweep before, while a node that stays
 * down leaves the set once the grace has passed. Tor's authorities use the
 * same idea (a relay is Running if reached within the last 45 minutes).
 *
 * Trusts: its callers for the probe results and the clock.
 */

export interface ReachableEntry {
  identity: Uint8Array;
  /** When the last successful probe finished (ms). */
  okAt: number;
}

/** Keyed by identity hex. */
export type ReachableSet = Map<string, ReachableEntry>;

export interface ProbeResult {
  key: string;
  identity: Uint8Array;
  ok: boolean;
}

/**
 * The set after a sweep: every node whose probe succeeded now, plus every
 * node tested now whose previous success is within `graceMs`. Nodes not
 * tested in this sweep (no longer held) leave the set.
 */
export function afterSweep(previous: ReachableSet, results: readonly ProbeResult[], now: number, graceMs: number): ReachableSet {
  const next: ReachableSet = new Map();
  for (const r of results) {
    if (r.ok) next.set(r.key, { identity: r.identity, okAt: now });
    else {
      const before = previous.get(r.key);
      if (before && now - before.okAt <= graceMs) next.set(r.key, before);
    }
  }
  return next;
}

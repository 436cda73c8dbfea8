/**
 * Introduction proof of work at a presence point: Tor's onion-service PoW
 * (proposal 327, crypto/equix.ts's v1 wrapper) under a priority queue with
 * an adaptive suggested effort (docs/spec/presence.md "Under flood").
 *
 * Each presence point has a seed (rotated, the previous one still accepted)
 * and a suggested effort, 0 while the point keeps up. Introductions that
 * cannot be delivered at once wait in a bounded queue ordered by the effort
 * their proof shows (highest first, then oldest). When the queue is full a
 * newcomer displaces the lowest-effort entry only if it shows more effort;
 * otherwise it is refused with the seed and the effort to retry with. Every
 * `updateMs` the suggested effort is re-set: doubled (at least 1) if the
 * queue overflowed in that interval, cut by a third once it ran empty
 * (additive-increase was too slow against floods of tens per second).
 *
 * Pure: time comes in, decisions go out. Trusts crypto/equix.ts's checks.
 */
import { randomBytes } from "../crypto/backend.js";
import { POW_V1_SEED_LEN, powVerify } from "../crypto/equix.js";
import type { PowProof } from "./messages.js";

export interface PowQueueOptions {
  /** Entries waiting at most (default 64). */
  capacity?: number;
  /** How often the suggested effort is re-set, ms (default 5 s). */
  updateMs?: number;
  /** How often the seed rotates, ms (default 10 min). */
  seedLifetimeMs?: number;
  /** Largest suggested effort (default 10,000: about an hour of JavaScript solving). */
  maxEffort?: number;
  now: number;
  random?: (n: number) => Uint8Array;
}

export type PowCheck = { ok: true; effort: number } | { ok: false; reason: "pow-invalid" | "replayed"; message: string };

interface Entry<T> {
  effort: number;
  arrival: number;
  item: T;
}

export type EnqueueResult<T> = { queued: true; displaced?: T } | { queued: false };

export class PowQueue<T> {
  private seed: Uint8Array;
  private previousSeed: Uint8Array | undefined;
  private seedSince: number;
  private readonly usedNonces = new Set<string>();
  private readonly previousNonces = new Set<string>();
  private readonly entries: Entry<T>[] = [];
  private arrivals = 0;
  private effort = 0;
  private lastUpdate: number;
  private overflowed = false;
  private ranEmpty = false;
  private readonly capacity: number;
  private readonly updateMs: number;
  private readonly seedLifetimeMs: number;
  private readonly maxEffort: number;
  private readonly random: (n: number) => Uint8Array;

  constructor(options: PowQueueOptions) {
    this.capacity = options.capacity ?? 64;
    this.updateMs = options.updateMs ?? 5_000;
    this.seedLifetimeMs = options.seedLifetimeMs ?? 600_000;
    this.maxEffort = options.maxEffort ?? 10_000;
    this.random = options.random ?? randomBytes;
    this.seed = this.random(POW_V1_SEED_LEN);
    this.seedSince = options.now;
    this.lastUpdate = options.now;
  }

  /** The seed and effort a refused introducer should retry with. */
  params(now: number): { seed: Uint8Array; effort: number } {
    this.tick(now);
    return { seed: this.seed, effort: Math.max(1, this.effort) };
  }

  /** The effort suggested now (0 while the point keeps up). */
  suggestedEffort(now: number): number {
    this.tick(now);
    return this.effort;
  }

  get length(): number {
    return this.entries.length;
  }

  /**
   * Checks a proof against the current or previous seed for `pointId` (the
   * point's authKey) and remembers its nonce, so one proof buys one entry.
   */
  check(pointId: Uint8Array, proof: PowProof, now: number): PowCheck {
    this.tick(now);
    const seed = [this.seed, this.previousSeed].find(
      (s) => s !== undefined && s[0] === proof.seedHead[0] && s[1] === proof.seedHead[1] && s[2] === proof.seedHead[2] && s[3] === proof.seedHead[3],
    );
    if (!seed) return { ok: false, reason: "pow-invalid", message: "proof of work names an unknown or expired seed: ask again" };
    const nonceKey = `${Buffer.from(proof.seedHead).toString("hex")}:${Buffer.from(proof.nonce).toString("hex")}`;
    const used = seed === this.seed ? this.usedNonces : this.previousNonces;
    if (used.has(nonceKey)) return { ok: false, reason: "replayed", message: "this proof of work was used before" };
    const verdict = powVerify({
      seed,
      serviceBlindedId: pointId,
      solution: { nonce: proof.nonce, effort: proof.effort, seedHead: proof.seedHead, proof: proof.solution },
    });
    if (!verdict.ok) return { ok: false, reason: "pow-invalid", message: `proof of work refused (${verdict.reason})` };
    used.add(nonceKey);
    return { ok: true, effort: proof.effort };
  }

  /** Queues an item; a full queue displaces its lowest-effort entry only for a higher effort. */
  enqueue(item: T, effort: number, now: number): EnqueueResult<T> {
    this.tick(now);
    const entry: Entry<T> = { effort, arrival: this.arrivals++, item };
    if (this.entries.length < this.capacity) {
      this.insert(entry);
      return { queued: true };
    }
    this.overflowed = true;
    const lowest = this.entries[this.entries.length - 1] as Entry<T>;
    if (effort <= lowest.effort) return { queued: false };
    this.entries.pop();
    this.insert(entry);
    return { queued: true, displaced: lowest.item };
  }

  /** The highest-effort (then oldest) entry, removed. */
  dequeue(now: number): T | undefined {
    this.tick(now);
    const entry = this.entries.shift();
    if (this.entries.length === 0) this.ranEmpty = true;
    return entry?.item;
  }

  /** Removes an entry (its introducer went away). */
  remove(item: T): boolean {
    const index = this.entries.findIndex((e) => e.item === item);
    if (index < 0) return false;
    this.entries.splice(index, 1);
    return true;
  }

  /** Every entry, in queue order (for teardown). */
  drain(): T[] {
    return this.entries.splice(0).map((e) => e.item);
  }

  private insert(entry: Entry<T>): void {
    // Highest effort first; equal efforts in arrival order. Binary search keeps it O(log n) to find.
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.entries[mid] as Entry<T>).effort >= entry.effort) lo = mid + 1;
      else hi = mid;
    }
    this.entries.splice(lo, 0, entry);
  }

  private tick(now: number): void {
    if (now - this.seedSince >= this.seedLifetimeMs) {
      this.previousSeed = this.seed;
      this.previousNonces.clear();
      for (const n of this.usedNonces) this.previousNonces.add(n);
      this.usedNonces.clear();
      this.seed = this.random(POW_V1_SEED_LEN);
      this.seedSince = now;
    }
    const steps = Math.floor((now - this.lastUpdate) / this.updateMs);
    if (steps <= 0) return;
    this.lastUpdate += steps * this.updateMs;
    if (this.overflowed) this.effort = Math.min(this.maxEffort, Math.max(1, this.effort * 2));
    else if (this.ranEmpty || this.entries.length === 0) this.effort = Math.floor((this.effort * 2) / 3);
    // Intervals that passed with nobody asking: keep decaying (bounded, an idle hour is enough).
    for (let i = 1; i < Math.min(steps, 64) && this.entries.length === 0; i++) this.effort = Math.floor((this.effort * 2) / 3);
    this.overflowed = false;
    this.ranEmpty = this.entries.length === 0;
  }
}

/**
 * Time arithmetic of the voting schedule and of consensus refreshes.
 *
 * Owns: which period a time falls in, when each step of a voting round is
 * due (see VotingSchedule in config.ts), and when a client or cache should
 * fetch the next consensus. Pure functions; the random source is injected.
 */
import type { VotingSchedule } from "./config.js";
import { DirectoryError } from "./errors.js";

/** The valid-after of the consensus in force at `now` (the start of its period). */
export function currentValidAfter(now: number, schedule: Pick<VotingSchedule, "periodMs">): number {
  return Math.floor(now / schedule.periodMs) * schedule.periodMs;
}

/** The valid-after of the next consensus (the next period boundary after `now`). */
export function nextValidAfter(now: number, schedule: Pick<VotingSchedule, "periodMs">): number {
  return currentValidAfter(now, schedule) + schedule.periodMs;
}

/** The times of each step of the round for the consensus valid from `validAfter`. */
export function roundTimes(validAfter: number, schedule: VotingSchedule): { voteAt: number; fetchAt: number; computeAt: number; publishAt: number } {
  const computeAt = validAfter - schedule.distDelayMs;
  const voteAt = computeAt - schedule.voteDelayMs;
  return { voteAt, fetchAt: voteAt + Math.floor(schedule.voteDelayMs / 2), computeAt, publishAt: validAfter };
}

export type RefreshRole = "client" | "cache";

export interface RefreshOptions {
  /** Uniform random in [0, 1); default crypto-random. */
  random?: () => number;
  /**
   * "cache" (a node proxying the consensus) fetches early, in the first half
   * between fresh-until and valid-until; "client" fetches later, between 1/2
   * and 7/8 of it, so most clients find the new consensus already cached and
   * no two fetch at the same moment.
   */
  role?: RefreshRole;
}

function defaultRandom(): number {
  const buf = new Uint32Array(2);
  globalThis.crypto.getRandomValues(buf);
  return ((buf[0] as number) * 2 ** 21 + ((buf[1] as number) >>> 11)) / 2 ** 53;
}

/**
 * A random time, after fresh-until and before valid-until, to fetch the next
 * consensus. Throws DirectoryError "bad-config" when the random source
 * returns something outside [0, 1).
 */
export function nextRefreshTime(consensus: { freshUntil: number; validUntil: number }, options: RefreshOptions = {}): number {
  const r = (options.random ?? defaultRandom)();
  if (typeof r !== "number" || !(r >= 0 && r < 1)) throw new DirectoryError("bad-config", `random() must return a number in [0, 1), got ${String(r)}`);
  const span = consensus.validUntil - consensus.freshUntil;
  const [from, to] = (options.role ?? "client") === "cache" ? [0, 1 / 2] : [1 / 2, 7 / 8];
  return consensus.freshUntil + Math.floor(span * (from + r * (to - from)));
}

/**
 * RewardsError: the typed error of the rewards layer (usage reports, their
 * normalization, the reward tree). Every function in node/src/rewards and
 * oracle/normalize.ts throws only this error for bad input, so a caller can
 * switch on `kind`; the oracle wraps a refused report in OracleError
 * "bad-report" with this error as its cause.
 */
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

export type RewardsErrorKind =
  /** An argument is out of range (a window, an entry, a key length, a price): a caller bug. */
  | "bad-argument"
  /** A usage report is larger than MAX_USAGE_REPORT_BYTES. */
  | "too-large"
  /** A usage report is not canonical CBOR of the documented shape, or breaks a limit (entries, window, duplicates). */
  | "malformed"
  /** A usage report's signature does not verify, or a viewer report is signed by another key than its session names. */
  | "forged"
  /** A viewer report's session id does not decode or verify (its cause is the StreamError). */
  | "bad-session";

const REWARDS_CATEGORIES = {
  "bad-argument": "bug",
  "too-large": "peer",
  malformed: "peer",
  forged: "peer",
  "bad-session": "peer",
} as const satisfies KindCategories<RewardsErrorKind>;

export class RewardsError extends layerError<RewardsErrorKind>("rewards", REWARDS_CATEGORIES) {}

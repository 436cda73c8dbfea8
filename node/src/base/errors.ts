/**
 * BaseError: the typed error of the shared primitives (node/src/base).
 *
 * A primitive fails only when its caller breaks its contract (a rate that
 * is not positive, a code table with two names for one code), so its one
 * kind is a bug in the caller.
 */
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

export type BaseErrorKind =
  /** An argument is out of range or of the wrong shape; the message names it. */
  "bad-argument";

const BASE_CATEGORIES = {
  "bad-argument": "bug",
} as const satisfies KindCategories<BaseErrorKind>;

export class BaseError extends layerError<BaseErrorKind>("base", BASE_CATEGORIES) {}

/**
 * ApiError, the client daemon's own refusals, and how any error becomes an
 * HTTP answer: a status and the body `{ error: { kind, message, layer? } }`
 * every route of `psp client run` returns on failure.
 *
 * Errors of the layers below keep their kind (a peer's refusal stays
 * `refused`), so an app switches on the same names a TypeScript app would;
 * the status follows the kind where one fits and the error's category
 * otherwise.
 */
import { isPspError, layerError } from "../errors.js";
import type { ErrorCategory, KindCategories } from "../errors.js";

export type ApiErrorKind =
  /** The request carries no token, or the wrong one. */
  | "unauthorized"
  /** The body, a parameter or a socket message is malformed (the message names the field). */
  | "bad-request"
  /** No such route, channel or pending introduction. */
  | "not-found"
  /** The request does not fit the daemon's state (an introduction already answered, no app listening). */
  | "conflict"
  /** The API cannot be served as configured (a bind beyond loopback without a token, an unreadable token file); the message names the fix. */
  | "bad-config";

const API_CATEGORIES = {
  unauthorized: "config",
  "bad-request": "bug",
  "not-found": "refused",
  conflict: "refused",
  "bad-config": "config",
} as const satisfies KindCategories<ApiErrorKind>;

export class ApiError extends layerError<ApiErrorKind>("api", API_CATEGORIES) {}

/** What an HTTP client gets for an error. */
export interface ErrorAnswer {
  status: number;
  body: { error: { kind: string; message: string; layer?: string } };
}

/** Statuses of kinds whose meaning is the same in every layer. */
const STATUS_OF_KIND: Readonly<Record<string, number>> = {
  unauthorized: 401,
  "bad-request": 400,
  "bad-argument": 400,
  "bad-option": 400,
  "not-found": 404,
  conflict: 409,
  "no-identity": 409,
  refused: 403,
  closed: 410,
  timeout: 504,
  "no-consensus": 503,
  "no-circuit": 503,
  "no-authorities": 503,
};

const STATUS_OF_CATEGORY: Readonly<Record<ErrorCategory, number>> = {
  peer: 502,
  refused: 403,
  transient: 503,
  config: 500,
  bug: 500,
  shutdown: 503,
};

/** Retry-After (seconds) when no error says how long: long enough not to hammer a node that is re-seeding or shedding load. */
export const DEFAULT_RETRY_AFTER_SECONDS = 5;

/**
 * For an error that a retry can cure (category transient or shutdown: no
 * contacts yet, busy, overloaded, a timeout), the Retry-After hint in whole
 * seconds (from `retryAfterMs`, else DEFAULT_RETRY_AFTER_SECONDS); undefined
 * for any other error. Such an error is a 503, never a 500.
 */
export function retryAfterSeconds(err: unknown): number | undefined {
  if (!isPspError(err) || (err.category !== "transient" && err.category !== "shutdown")) return undefined;
  const ms = err.retryAfterMs;
  return ms !== undefined && ms > 0 ? Math.max(1, Math.ceil(ms / 1000)) : DEFAULT_RETRY_AFTER_SECONDS;
}

/** The HTTP answer for `err`: a PspError by its kind or category, fastify's own 4xx as `bad-request`, anything else a 500. */
export function errorAnswer(err: unknown): ErrorAnswer {
  if (isPspError(err)) {
    const status = STATUS_OF_KIND[err.kind] ?? STATUS_OF_CATEGORY[err.category];
    return { status, body: { error: { kind: err.kind, message: err.message, layer: err.layer } } };
  }
  const e = (err ?? {}) as { statusCode?: unknown; message?: unknown };
  const message = typeof e.message === "string" ? e.message : String(err);
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500)
    return { status: e.statusCode, body: { error: { kind: "bad-request", message } } };
  return { status: 500, body: { error: { kind: "internal", message } } };
}

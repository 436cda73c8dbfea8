/**
 * ApiError, the control APIs' own refusals, and how any error becomes an
 * HTTP answer: a status and the one error body every PSP control API
 * answers (the node's, discovery's, any process's base API in server.ts,
 * and the client daemon of `psp client run`):
 *
 *   `{ error: { kind, message, fix?, layer?, routes? } }`
 *
 * `kind` is machine-readable, `message` says what was wrong, `fix` what to
 * do, `layer` which layer raised it ("api" for the API's own refusals;
 * absent for fastify's and for internal errors), `routes` (404 only) the routes the server has. errorBody builds
 * every such body; ERROR_RESPONSE_SCHEMA is its JSON schema, referenced by
 * every route's 4xx/5xx responses. Fastify's own failures (a parameter or
 * body against its schema, an unparsable body) are kind `bad-request` and
 * name the field.
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
  | "bad-config"
  /** What the route reads is not there yet or not configured here (no consensus held, no directory): a 503. */
  | "unavailable";

const API_CATEGORIES = {
  unauthorized: "config",
  "bad-request": "bug",
  "not-found": "refused",
  conflict: "refused",
  "bad-config": "config",
  unavailable: "transient",
} as const satisfies KindCategories<ApiErrorKind>;

export class ApiError extends layerError<ApiErrorKind>("api", API_CATEGORIES) {}

/** The error body of every PSP control API. */
export interface ErrorBody {
  error: {
    kind: string;
    message: string;
    /** What the caller should do. */
    fix?: string;
    /** The layer that raised it ("api" for the API's own refusals); absent for fastify's own refusals and internal errors. */
    layer?: string;
    /** 404 only: the routes this server has ("GET /v1/status", ...). */
    routes?: string[];
  };
}

/** What an HTTP client gets for an error. */
export interface ErrorAnswer {
  status: number;
  body: ErrorBody;
}

/** Builds the one error body; absent optional fields stay out of the JSON. */
export function errorBody(kind: string, message: string, extra: { fix?: string | undefined; layer?: string | undefined; routes?: string[] | undefined } = {}): ErrorBody {
  return {
    error: {
      kind,
      message,
      ...(extra.fix !== undefined ? { fix: extra.fix } : {}),
      ...(extra.layer !== undefined ? { layer: extra.layer } : {}),
      ...(extra.routes !== undefined ? { routes: extra.routes } : {}),
    },
  };
}

/** The JSON schema of ErrorBody (OpenAPI component "Error"; every route's 4xx/5xx). */
export const ERROR_RESPONSE_SCHEMA = {
  $id: "PspError",
  type: "object",
  description: "The error body of every PSP control API: switch on error.kind; error.message says what was wrong, error.fix what to do.",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["kind", "message"],
      properties: {
        kind: { type: "string", description: "machine-readable reason: bad-request, unauthorized, not-found, unavailable, a layer's own kind (refused, timeout, ...), internal" },
        message: { type: "string", description: "what was wrong, for a person" },
        fix: { type: "string", description: "what to do about it" },
        layer: { type: "string", description: "the layer that raised it (api, dht, directory, presence, ...); absent for fastify's own refusals and internal errors" },
        routes: { type: "array", items: { type: "string" }, description: "404 only: the routes this server has" },
      },
    },
  },
} as const;

/** A reference to ERROR_RESPONSE_SCHEMA, for a route's `response` map (register the schema with app.addSchema first). */
export const ERROR_RESPONSE_REF = { $ref: "PspError#" } as const;

/** The 4xx/5xx responses every route declares (the one error shape). */
export const ERROR_RESPONSES = { "4xx": ERROR_RESPONSE_REF, "5xx": ERROR_RESPONSE_REF } as const;

/** Statuses of kinds whose meaning is the same in every layer. */
const STATUS_OF_KIND: Readonly<Record<string, number>> = {
  unauthorized: 401,
  "bad-request": 400,
  "bad-argument": 400,
  "bad-option": 400,
  "not-found": 404,
  unavailable: 503,
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

/** Fastify's schema failure, e.g. `params/key must match pattern "^[0-9a-f]{64}$"`: the field named, the rule it broke. */
function validationMessage(e: { validation?: unknown; validationContext?: unknown; message?: unknown }): string | undefined {
  if (!Array.isArray(e.validation) || e.validation.length === 0) return undefined;
  const context = typeof e.validationContext === "string" ? e.validationContext : "request";
  return (e.validation as { instancePath?: string; message?: string; params?: Record<string, unknown> }[])
    .map((v) => {
      const missing = typeof v.params?.["missingProperty"] === "string" ? `/${v.params["missingProperty"]}` : "";
      const extra = typeof v.params?.["additionalProperty"] === "string" ? ` (${v.params["additionalProperty"]})` : "";
      return `${context}${v.instancePath ?? ""}${missing} ${v.message ?? "is invalid"}${extra}`;
    })
    .join("; ");
}

/**
 * The HTTP answer for `err`: a PspError by its kind or category (its fix
 * and layer carried), fastify's own 4xx as `bad-request` (a schema failure
 * naming the field), anything else a 500 `internal`.
 */
export function errorAnswer(err: unknown): ErrorAnswer {
  if (isPspError(err)) {
    const status = STATUS_OF_KIND[err.kind] ?? STATUS_OF_CATEGORY[err.category];
    return { status, body: errorBody(err.kind, err.message, { fix: err.fix, layer: err.layer }) };
  }
  const e = (err ?? {}) as { statusCode?: unknown; message?: unknown; validation?: unknown; validationContext?: unknown };
  const message = validationMessage(e) ?? (typeof e.message === "string" ? e.message : String(err));
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) return { status: e.statusCode, body: errorBody("bad-request", message) };
  return { status: 500, body: errorBody("internal", message) };
}

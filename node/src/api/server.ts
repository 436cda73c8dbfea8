/**
 * The control API base every PSP process serves: a fastify app on loopback
 * with `GET /v1/status`, `GET /metrics` (Prometheus text format, from a
 * prom-client registry of the process's own) and JSON errors that say what
 * was wrong. Layers add their routes through `routes`.
 *
 * Every error is the one body of errors.ts, `{ error: { kind, message,
 * fix?, layer?, routes? } }`: a thrown PspError keeps its kind, fix and
 * layer (its status from errors.ts errorAnswer), fastify's own refusals
 * (a parameter against its schema, a body too large) are `bad-request`
 * naming the field, an unknown route a 404 `not-found` whose
 * `error.routes` lists the routes served.
 *
 * Trusts nothing from requests: fastify validates parameters against each
 * route's JSON schema. A request that fails is logged (component "api"): a
 * 5xx at error, a 4xx at debug; fastify's own request logging stays off. An
 * error a retry can cure (a PspError of category transient or shutdown:
 * "no-contacts", "busy", "overloaded") is a 503 with a Retry-After header,
 * logged at warn; kind "unavailable" (what the route reads is not there yet)
 * is a 503 with Retry-After logged at debug.
 *
 * Every route is documented as OpenAPI 3 (`@fastify/swagger`, registered
 * before any route): the document at `GET /docs/json`, a UI at `/docs`.
 * Routes give a `schema` with a summary, description, tags, what they
 * validate and a `response` schema for 200 and (ERROR_RESPONSES, the shared
 * schema "PspError") for 4xx/5xx. Fastify serializes a response through its
 * schema and drops what the schema does not declare, so open-ended sections
 * say `additionalProperties: true`; a bigint in a declared string field
 * becomes its decimal text, as the reply serializer does for schema-less
 * replies.
 *
 * Loopback binds serve without a token. A bind beyond loopback needs
 * `token`: every route, /metrics and /docs included, then answers 401
 * `{ error: { kind: "unauthorized", message, fix } }` unless the request
 * carries `Authorization: Bearer <token>` (compared in constant time,
 * token.ts); without a token such a bind refuses to start (ApiError
 * "bad-config").
 */
import fastifySwagger from "@fastify/swagger";
import fastifyWebsocket from "@fastify/websocket";
import fastifySwaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyInstance } from "fastify";
import { Registry, collectDefaultMetrics } from "prom-client";
import { childLogger, logFailure } from "../log.js";
import { ApiError, ERROR_RESPONSE_SCHEMA, ERROR_RESPONSES, errorAnswer, errorBody, retryAfterSeconds } from "./errors.js";
import { bearerToken, isLoopbackHost, tokenDigest, tokenMatches } from "./token.js";
import type { Logger } from "../log.js";

export interface ControlApiOptions {
  /** Defaults to 127.0.0.1: the API is for the operator, not the network. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** What `GET /v1/status` returns (called on every request). */
  status: () => unknown | Promise<unknown>;
  /**
   * The JSON schema of the status (documentation and serialization: fastify
   * drops properties it does not declare). Default: an open object.
   */
  statusSchema?: Record<string, unknown>;
  /** Adds the layer-specific routes. */
  routes?: (app: FastifyInstance, metrics: Registry) => void | Promise<void>;
  /** Extra labels on every metric, e.g. { node: "authority-1" }. */
  metricLabels?: Record<string, string>;
  /** Logs failed requests as component "api"; silent when absent. */
  logger?: Logger;
  /**
   * The bearer token every request must carry. Required when `host` is not
   * loopback (isLoopbackHost); on loopback, optional (then enforced too).
   */
  token?: string;
  /** The OpenAPI document's title (default "PSP control API"). */
  title?: string;
}

/** Where the OpenAPI UI is served; the JSON document is at `${DOCS_PREFIX}/json`. */
export const DOCS_PREFIX = "/docs";

/** The 401's fix: a node keeps its token in its data directory. */
export const NODE_TOKEN_FIX = "send the node's control API token as Authorization: Bearer <token>; it is in <dataDir>/api-token on the node's machine";

/** JSON.stringify's replacer for bigints (chain amounts): their decimal text. */
const bigintAsString = (_key: string, value: unknown): unknown => (typeof value === "bigint" ? value.toString() : value);

/** `value` as plain JSON, bigints as decimal strings: what a route with an open response schema returns (that schema's serializer would throw on a bigint). */
export const jsonValue = (value: unknown): unknown => JSON.parse(JSON.stringify(value, bigintAsString)) as unknown;

export interface ControlApi {
  app: FastifyInstance;
  metrics: Registry;
  url: string;
  close(): Promise<void>;
}

let processMetrics: Registry | undefined;

/**
 * prom-client's default process and Node.js metrics, collected once per
 * process and shared by every control API in it. Its collectors (a GC
 * PerformanceObserver, an event-loop delay monitor) have no off switch, so
 * one per API outlived its node: every node a process started and closed
 * left them running (with the heap it held), and each GC was reported to
 * all of them: the onion bench starts eight networks before it measures.
 */
function sharedProcessMetrics(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry();
    collectDefaultMetrics({ register: processMetrics, prefix: "psp_process_" });
  }
  return processMetrics;
}

export async function startControlApi(opts: ControlApiOptions): Promise<ControlApi> {
  const metrics = new Registry();
  if (opts.metricLabels) metrics.setDefaultLabels(opts.metricLabels);
  const shared = sharedProcessMetrics();
  for (const { name } of shared.getMetricsAsArray()) {
    const metric = shared.getSingleMetric(name);
    if (metric) metrics.registerMetric(metric);
  }

  const host = opts.host ?? "127.0.0.1";
  const loopback = isLoopbackHost(host);
  if (!loopback && (opts.token === undefined || opts.token.length === 0)) {
    throw new ApiError(
      "bad-config",
      `the control API on ${host} is reachable beyond this machine and needs a bearer token: give the node a dataDir (its token goes in <dataDir>/api-token), or bind api.host to 127.0.0.1`,
      {
        fix: "set dataDir, or bind the API to 127.0.0.1",
      },
    );
  }
  const log = childLogger(opts.logger, "api");
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  // JSON for bigint values (chain amounts) as decimal strings: routes without a response schema.
  app.setReplySerializer((payload) => JSON.stringify(payload, bigintAsString));
  app.setErrorHandler((err: unknown, request, reply) => {
    const answer = errorAnswer(err);
    const retryAfter = retryAfterSeconds(err);
    // A cure-by-retry failure is a 503 whatever its kind (a lookup timeout too): the client retries after Retry-After.
    const status = retryAfter !== undefined ? 503 : answer.status;
    if (retryAfter !== undefined) void reply.header("retry-after", String(retryAfter));
    // A 5xx is ours to fix (a 503 only passes: a warning); a 4xx is the caller's, kept to a debug line.
    // "unavailable" (no consensus held yet, no directory here) is the state the route reports, not a failure: a debug line too.
    const level = answer.body.error.kind === "unavailable" ? "debug" : retryAfter !== undefined ? "warn" : status >= 500 ? "error" : "debug";
    logFailure(log, err, "answer API request", level, { method: request.method, route: request.routeOptions.url, status });
    void reply.status(status).send(answer.body);
  });
  app.setNotFoundHandler((request, reply) => {
    const routes = app
      .printRoutes({ commonPrefix: false })
      .split("\n")
      .filter(Boolean)
      .map((line) => line.replace(/^[\s│├└─]+/, "").trim());
    const path = request.url.split("?")[0] ?? request.url;
    void reply.status(404).send(errorBody("not-found", `no route ${request.method} ${path}`, { fix: "see error.routes, or the OpenAPI document at /docs/json", routes }));
  });
  // The error body's schema, referenced by every route's 4xx/5xx responses (and an OpenAPI component).
  app.addSchema(ERROR_RESPONSE_SCHEMA);

  // WebSocket routes (a node's /v1/events): registered before the token check, so the plugin's own
  // onRequest hook marks upgrade requests first and a refused one gets its 401 and a closed socket.
  await app.register(fastifyWebsocket, { options: { maxPayload: 4096 } });
  // First, so it guards every route registered after it: the documentation's too.
  if (opts.token !== undefined) {
    const expected = tokenDigest(opts.token);
    app.addHook("onRequest", async (request, reply) => {
      if (tokenMatches(bearerToken(request.headers.authorization), expected)) return;
      const given = request.headers.authorization === undefined ? "carries no Authorization header" : "carries a wrong or malformed bearer token";
      log.debug({ method: request.method, url: request.url.split("?")[0] }, "refused an API request without the token");
      return reply
        .status(401)
        .header("www-authenticate", 'Bearer realm="psp"')
        .send(errorBody("unauthorized", `this API needs a bearer token and the request ${given}`, { fix: NODE_TOKEN_FIX }));
    });
  }
  // Before any route, so its onRoute hook sees them all.
  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: opts.title ?? "PSP control API",
        version: "1",
        description:
          "A PSP process's operator API: status, metrics and its layers' routes. Every error is JSON `{ error: { kind, message, fix?, layer?, routes? } }` (schema PspError): switch on `error.kind`; a 404 lists the routes in `error.routes`; a 503 carries Retry-After.",
      },
      ...(opts.token !== undefined ? { components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } }, security: [{ bearer: [] }] } : {}),
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: DOCS_PREFIX });

  app.get(
    "/v1/status",
    {
      schema: {
        summary: "The process's status",
        description: "Identity, roles, addresses, uptime and each layer's summary (docs/spec/node.md, Control API).",
        tags: ["status"],
        response: { 200: opts.statusSchema ?? { type: "object", additionalProperties: true }, ...ERROR_RESPONSES },
      },
    },
    // A response schema bypasses the reply serializer, and an open one stringifies with JSON.stringify, which throws on a bigint: converted first.
    async () => jsonValue(await opts.status()),
  );
  const metricsSchema = {
    summary: "Prometheus metrics",
    description: "Prometheus text format: the process's metrics (psp_process_*) and each layer's (docs/METRICS.md lists every name).",
    tags: ["status"],
    response: {
      200: { description: "Prometheus text exposition format 0.0.4", content: { "text/plain": { schema: { type: "string" } } } },
      ...ERROR_RESPONSES,
    },
  };
  app.get("/metrics", { schema: metricsSchema }, async (_request, reply) => {
    void reply.header("content-type", metrics.contentType);
    return await metrics.metrics();
  });
  await opts.routes?.(app, metrics);

  if (!loopback) log.warn({ host }, "the control API listens beyond loopback: requests need its token, and travel unencrypted (put a TLS proxy in front)");
  await app.listen({ host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  return { app, metrics, url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`, close: () => app.close() };
}

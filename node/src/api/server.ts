/**
 * The control API base every PSP process serves: a fastify app on loopback
 * with `GET /v1/status`, `GET /metrics` (Prometheus text format, from a
 * prom-client registry of the process's own) and JSON errors that say what
 * was wrong. Layers add their routes through `routes`.
 *
 * Trusts nothing from requests: fastify validates parameters against each
 * route's JSON schema and unknown routes get a 404 with the route list.
 * A request that fails is logged (component "api"): a 5xx at error, a 4xx
 * at debug; fastify's own request logging stays off. An error a retry can
 * cure (a PspError of category transient or shutdown: "no-contacts", "busy",
 * "overloaded") is a 503 with a Retry-After header, logged at warn.
 */
import Fastify, { type FastifyInstance } from "fastify";
import { Registry, collectDefaultMetrics } from "prom-client";
import { childLogger, logFailure } from "../log.js";
import { retryAfterSeconds } from "./errors.js";
import type { Logger } from "../log.js";

export interface ControlApiOptions {
  /** Defaults to 127.0.0.1: the API is for the operator, not the network. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** What `GET /v1/status` returns (called on every request). */
  status: () => unknown | Promise<unknown>;
  /** Adds the layer-specific routes. */
  routes?: (app: FastifyInstance, metrics: Registry) => void | Promise<void>;
  /** Extra labels on every metric, e.g. { node: "authority-1" }. */
  metricLabels?: Record<string, string>;
  /** Logs failed requests as component "api"; silent when absent. */
  logger?: Logger;
}

export interface ControlApi {
  app: FastifyInstance;
  metrics: Registry;
  url: string;
  close(): Promise<void>;
}

export async function startControlApi(opts: ControlApiOptions): Promise<ControlApi> {
  const metrics = new Registry();
  if (opts.metricLabels) metrics.setDefaultLabels(opts.metricLabels);
  collectDefaultMetrics({ register: metrics, prefix: "psp_process_" });

  const log = childLogger(opts.logger, "api");
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  // JSON for bigint values (chain amounts) as decimal strings.
  app.setReplySerializer((payload) => JSON.stringify(payload, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value)));
  app.setErrorHandler((err: unknown, request, reply) => {
    const e = (err ?? {}) as { statusCode?: unknown; message?: unknown; kind?: unknown };
    const retryAfter = retryAfterSeconds(err);
    const status = typeof e.statusCode === "number" && e.statusCode >= 400 ? e.statusCode : retryAfter !== undefined ? 503 : 500;
    if (retryAfter !== undefined) void reply.header("retry-after", String(retryAfter));
    // A 5xx is ours to fix (a 503 only passes: a warning); a 4xx is the caller's, kept to a debug line.
    const level = retryAfter !== undefined ? "warn" : status >= 500 ? "error" : "debug";
    logFailure(log, err, "answer API request", level, { method: request.method, route: request.routeOptions.url, status });
    const message = typeof e.message === "string" ? e.message : "internal error";
    void reply.status(status).send({ error: message, ...(typeof e.kind === "string" ? { kind: e.kind } : {}) });
  });
  app.setNotFoundHandler((request, reply) => {
    const routes = app
      .printRoutes({ commonPrefix: false })
      .split("\n")
      .filter(Boolean)
      .map((line) => line.replace(/^[\s│├└─]+/, "").trim());
    void reply.status(404).send({ error: `no route ${request.method} ${request.url}`, routes });
  });

  app.get("/v1/status", async () => await opts.status());
  app.get("/metrics", async (_request, reply) => {
    void reply.header("content-type", metrics.contentType);
    return await metrics.metrics();
  });
  await opts.routes?.(app, metrics);

  const host = opts.host ?? "127.0.0.1";
  await app.listen({ host, port: opts.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  return { app, metrics, url: `http://${host}:${port}`, close: () => app.close() };
}

/**
 * Issue 19: an error a retry can cure (no DHT contacts yet, this node's own
 * limits met) is a 503 with Retry-After on every control API route, never a
 * 500; other failures keep their status. Every error is the one body
 * `{ error: { kind, message, ... } }` (issue 18), and a bigint in a status
 * answers as its decimal text through the status route's response schema.
 * Process metrics are collected once per process, not once per API.
 */
import { afterAll, describe, expect, it } from "vitest";
import { retryAfterSeconds } from "../../../node/src/api/errors.js";
import { startControlApi } from "../../../node/src/api/server.js";
import type { ControlApi } from "../../../node/src/api/server.js";
import { DhtError } from "../../../node/src/dht/errors.js";

const apis: ControlApi[] = [];
afterAll(async () => {
  await Promise.all(apis.map((a) => a.close()));
});

describe("control API and transient errors", () => {
  it("retryAfterSeconds: transient and shutdown errors only, from retryAfterMs or a default", () => {
    expect(retryAfterSeconds(new DhtError("no-contacts", "empty table"))).toBe(5);
    expect(retryAfterSeconds(new DhtError("overloaded", "full", { retryAfterMs: 1500 }))).toBe(2);
    expect(retryAfterSeconds(new DhtError("quota-exceeded", "over"))).toBeUndefined();
    expect(retryAfterSeconds(new DhtError("bad-config", "x"))).toBeUndefined();
    expect(retryAfterSeconds(new Error("plain"))).toBeUndefined();
  });

  it("a route throwing no-contacts answers 503 with Retry-After and the kind; a bug is still a 500", async () => {
    const api = await startControlApi({
      port: 0,
      status: () => ({}),
      routes: (app) => {
        app.get("/lookup", async () => {
          throw new DhtError("no-contacts", "routing table is empty; bootstrap from the consensus first");
        });
        app.get("/bug", async () => {
          throw new DhtError("bad-config", "a bug");
        });
      },
    });
    apis.push(api);
    const res = await fetch(`${api.url}/lookup`);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(await res.json()).toEqual({ error: { kind: "no-contacts", message: "routing table is empty; bootstrap from the consensus first", layer: "dht" } });
    expect((await fetch(`${api.url}/bug`)).status).toBe(500);
  });

  it("every control API in a process shares one set of process metrics: a closed API leaves no collector behind", async () => {
    const first = await startControlApi({ port: 0, status: () => ({}) });
    const second = await startControlApi({ port: 0, status: () => ({}) });
    apis.push(first, second);
    const name = "psp_process_nodejs_gc_duration_seconds";
    const shared = first.metrics.getSingleMetric(name);
    expect(shared?.constructor.name).toBe("Histogram");
    expect(second.metrics.getSingleMetric(name)).toBe(shared);
    const text = await (await fetch(`${second.url}/metrics`)).text();
    expect(text).toContain("psp_process_process_cpu_user_seconds_total");
    expect(text).toContain("psp_process_nodejs_eventloop_lag_seconds");
  });

  it("a status holding bigints answers them as decimal strings through the status route's response schema", async () => {
    const api = await startControlApi({ port: 0, status: () => ({ balance: 10n ** 20n, nested: { stake: 5n } }) });
    apis.push(api);
    expect(await (await fetch(`${api.url}/v1/status`)).json()).toEqual({ balance: "100000000000000000000", nested: { stake: "5" } });
  });

  it("answers an unknown route 404 not-found with the routes, and a bad body 400 bad-request naming the field, in the one error body", async () => {
    const api = await startControlApi({
      port: 0,
      status: () => ({}),
      routes: (app) => {
        app.post("/echo", { schema: { body: { type: "object", required: ["n"], properties: { n: { type: "integer" } } } } }, async (request) => request.body);
      },
    });
    apis.push(api);
    const missing = await fetch(`${api.url}/nope?x=1`);
    expect(missing.status).toBe(404);
    const body = (await missing.json()) as { error: { kind: string; message: string; routes: string[] } };
    expect(body.error).toMatchObject({ kind: "not-found", message: "no route GET /nope" });
    expect(body.error.routes).toEqual(expect.arrayContaining(["/v1/status (GET, HEAD)", "/metrics (GET, HEAD)", "/echo (POST)"]));
    const bad = await fetch(`${api.url}/echo`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ n: "x" }) });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: { kind: "bad-request", message: "body/n must be integer" } });
  });
});

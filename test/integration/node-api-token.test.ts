/**
 * The node's control API beyond loopback (issue 18, "Control API"): a node
 * whose API binds 0.0.0.0 makes a bearer token on first start in
 * <dataDir>/api-token (mode 0600), refuses every route without it or with a
 * wrong one (401, typed body naming the fix), serves with it, and reuses
 * the same token after a restart; a node without dataDir refuses such a
 * bind at config time. A loopback node needs no token. Both serve an
 * OpenAPI 3 document at /docs/json listing the base and node routes.
 *
 * Real nodes (startNode), real fastify, real HTTP: requests go to the
 * machine's non-loopback address when it has one, else to 127.0.0.1.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../../node/src/api/errors.js";
import { startControlApi } from "../../node/src/api/server.js";
import { API_TOKEN_FILE, bearerToken, isLoopbackHost, loadOrCreateApiToken, tokenDigest, tokenMatches } from "../../node/src/api/token.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import type { TlsCredentials } from "../../node/src/link/index.js";
import { NodeError, parseNodeConfig } from "../../node/src/node/config.js";
import { dhtStats, nodeStatus } from "../../node/src/node/api.js";
import { startNode } from "../../node/src/node/node.js";
import type { RunningNode } from "../../node/src/node/node.js";

const dir = mkdtempSync(join(tmpdir(), "psp-node-api-token-"));
const secret = (label: string): string => Buffer.from(sha256(new TextEncoder().encode(`node-api-token/${label}`))).toString("hex");
const DHT = { staticDifficulty: 0, dynamicDifficulty: 4 };
/** A non-loopback IPv4 address of this machine: requests to it do not take the loopback path. */
const external = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === "IPv4" && !a.internal)?.address;
const reachAt = external ?? "127.0.0.1";
let credentials: TlsCredentials;
const running: RunningNode[] = [];

function config(name: string, api: { host: string; port: number }, withDataDir = true) {
  return {
    listen: { host: "127.0.0.1", port: 0 },
    identity: { secretKeyHex: secret(name) },
    dht: DHT,
    api,
    ...(withDataDir ? { dataDir: join(dir, name) } : {}),
  };
}

async function start(cfg: unknown): Promise<RunningNode> {
  const node = await startNode(cfg, { tlsCredentials: credentials });
  running.push(node);
  return node;
}

async function stop(node: RunningNode): Promise<void> {
  running.splice(running.indexOf(node), 1);
  await node.close();
}

/** The API's port, to reach it at `reachAt` (the node reports the bound host, 0.0.0.0). */
/** Every key path of a JSON value ("linkLimits.refusals.links", "roles[]"): what a response schema could drop. */
function keyPaths(value: unknown, prefix = ""): string[] {
  if (Array.isArray(value)) return [`${prefix}[]`, ...value.flatMap((v) => keyPaths(v, `${prefix}[]`))].filter((p, i, all) => all.indexOf(p) === i);
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) => [`${prefix}${k}`, ...keyPaths(v, `${prefix}${k}.`)]);
}

const portOf = (node: RunningNode): number => Number(new URL(node.info.controlApi!).port);

async function get(node: RunningNode, path: string, authorization?: string) {
  const res = await fetch(`http://${reachAt}:${portOf(node)}${path}`, authorization === undefined ? {} : { headers: { authorization } });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Prometheus text stays text.
  }
  return { status: res.status, headers: res.headers, body: body as Record<string, unknown> };
}

beforeAll(async () => {
  credentials = await generateTlsCredentials();
}, 30_000);

afterAll(async () => {
  await Promise.all(running.map((n) => n.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe("which binds need a token", () => {
  it("loopback addresses and localhost are loopback; wildcard, LAN and other names are not", () => {
    for (const host of ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"]) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ["0.0.0.0", "::", "192.0.2.2", "10.0.0.1", "fd00::2", "::ffff:10.0.0.1", "example.org", "localhost.example.org", "128.0.0.1"])
      expect(isLoopbackHost(host), host).toBe(false);
  });

  it("a node config binding the API beyond loopback without dataDir is refused, naming the fix", () => {
    let err: unknown;
    try {
      parseNodeConfig(config("no-data", { host: "0.0.0.0", port: 0 }, false));
    } catch (e) {
      err = e;
    }
    expect(NodeError.is(err, "bad-config")).toBe(true);
    expect((err as Error).message).toMatch(/api\.host.*set dataDir, or bind api\.host to 127\.0\.0\.1/);
    // Loopback without dataDir, and beyond loopback with it, parse.
    expect(() => parseNodeConfig(config("loop", { host: "127.0.0.1", port: 0 }, false))).not.toThrow();
    expect(() => parseNodeConfig(config("lan", { host: "0.0.0.0", port: 0 }))).not.toThrow();
  });

  it("the API base itself refuses a bind beyond loopback without a token", async () => {
    await expect(startControlApi({ host: "0.0.0.0", port: 0, status: () => ({}) })).rejects.toSatisfy((e: unknown) => ApiError.is(e, "bad-config"));
  });

  it("tokens compare by digest; only a Bearer header carries one", () => {
    const expected = tokenDigest("a".repeat(64));
    expect(tokenMatches("a".repeat(64), expected)).toBe(true);
    expect(tokenMatches("a".repeat(63), expected)).toBe(false);
    expect(tokenMatches(`${"a".repeat(63)}b`, expected)).toBe(false);
    expect(tokenMatches(undefined, expected)).toBe(false);
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer abc")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken("Bearer a b")).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});

describe("a node's control API on 0.0.0.0", () => {
  let node: RunningNode;
  let token: string;
  const tokenPath = join(dir, "lan", API_TOKEN_FILE);

  beforeAll(async () => {
    node = await start(config("lan", { host: "0.0.0.0", port: 0 }));
    token = readFileSync(tokenPath, "utf8").trim();
  }, 30_000);

  it("made a 32-byte hex token in <dataDir>/api-token, mode 0600", () => {
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(tokenPath).mode & 0o777).toBe(0o600);
  });

  it("refuses every route without the token: 401, a typed body with the fix, WWW-Authenticate", async () => {
    for (const path of ["/v1/status", "/metrics", "/v1/dht/stats", "/v1/consensus", "/docs/json", "/docs", "/no/such/route"]) {
      const res = await get(node, path);
      expect(res.status, path).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="psp"');
      expect(res.body).toMatchObject({
        error: {
          kind: "unauthorized",
          message: expect.stringMatching(/no Authorization header/) as string,
          fix: expect.stringMatching(/Authorization: Bearer <token>.*<dataDir>\/api-token/) as string,
        },
      });
      // A refused caller learns nothing about the routes.
      expect(res.body.error).not.toHaveProperty("routes");
    }
  });

  it("refuses a wrong token, another scheme and a token off by one digit", async () => {
    const flipped = `${token.slice(0, -1)}${token.endsWith("0") ? "1" : "0"}`;
    for (const authorization of [`Bearer ${"0".repeat(64)}`, `Bearer ${flipped}`, `Bearer ${token}x`, `Basic ${token}`, "Bearer"]) {
      const res = await get(node, "/v1/status", authorization);
      expect(res.status, authorization).toBe(401);
      expect(res.body).toMatchObject({ error: { kind: "unauthorized" } });
    }
  });

  it("serves with the token, including /metrics and the OpenAPI document (which declares the bearer scheme)", async () => {
    const auth = `Bearer ${token}`;
    const status = await get(node, "/v1/status", auth);
    expect(status.status).toBe(200);
    expect(status.body.identity).toBe(node.info.identity);
    const metrics = await get(node, "/metrics", auth);
    expect(metrics.status).toBe(200);
    expect(String(metrics.body)).toContain("psp_node_uptime_seconds");
    const docs = await get(node, "/docs/json", auth);
    expect(docs.status).toBe(200);
    expect(docs.body).toMatchObject({ components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } }, security: [{ bearer: [] }] });
    // Checked parameters still answer in the API's error shape behind the token.
    expect((await get(node, "/v1/dht/records/zz", auth)).body).toMatchObject({ error: { kind: "bad-request" } });
  });

  it("reuses the token after a restart, and narrows a file others could read back to 0600", async () => {
    await stop(node);
    chmodSync(tokenPath, 0o644);
    node = await start(config("lan", { host: "0.0.0.0", port: 0 }));
    expect(readFileSync(tokenPath, "utf8").trim()).toBe(token);
    expect(statSync(tokenPath).mode & 0o777).toBe(0o600);
    expect((await get(node, "/v1/status", `Bearer ${token}`)).status).toBe(200);
    expect((await get(node, "/v1/status")).status).toBe(401);
  }, 30_000);

  it("a token file holding no token stops the start with a config error naming the fix", async () => {
    const dataDir = join(dir, "broken");
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, API_TOKEN_FILE), "not a token\n", { mode: 0o600 });
    await expect(loadOrCreateApiToken(dataDir)).rejects.toSatisfy((e: unknown) => ApiError.is(e, "bad-config"));
    await expect(startNode(config("broken", { host: "0.0.0.0", port: 0 }), { tlsCredentials: credentials })).rejects.toSatisfy(
      (e: unknown) => ApiError.is(e, "bad-config") && /delete it and restart the node/.test((e as Error).message),
    );
  }, 30_000);
});

describe("a node's control API on loopback", () => {
  let node: RunningNode;

  beforeAll(async () => {
    node = await start(config("loopback", { host: "127.0.0.1", port: 0 }, false));
  }, 30_000);

  it("answers every property the code produces: the response schemas drop nothing (status, DHT stats)", async () => {
    const body = (await (await fetch(`${node.info.controlApi}/v1/status`)).json()) as Record<string, unknown>;
    const produced = nodeStatus({ ...node, startedAt: Date.now() });
    expect(keyPaths(body).sort()).toEqual(keyPaths(JSON.parse(JSON.stringify(produced))).sort());
    expect(body).toMatchObject({ identity: node.info.identity, onionKey: node.info.onionKey, roles: node.info.roles, consensus: null });
    expect(body["presence"]).toBeTypeOf("object");
    const stats = (await (await fetch(`${node.info.controlApi}/v1/dht/stats`)).json()) as Record<string, unknown>;
    expect(keyPaths(stats).sort()).toEqual(keyPaths(JSON.parse(JSON.stringify(dhtStats(node.dht)))).sort());
  });

  it("needs no token", async () => {
    const res = await fetch(`${node.info.controlApi}/v1/status`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { identity: string }).identity).toBe(node.info.identity);
  });

  it("serves an OpenAPI 3 document at /docs/json listing the base and node routes, and the UI at /docs", async () => {
    const res = await fetch(`${node.info.controlApi}/docs/json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<
        string,
        Record<string, { summary?: string; description?: string; responses?: object; parameters?: { in: string; name: string; required?: boolean }[] }>
      >;
      components?: { securitySchemes?: object };
    };
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(typeof doc.info.title).toBe("string");
    expect(typeof doc.info.version).toBe("string");
    expect(Object.keys(doc.paths).sort()).toEqual(["/metrics", "/v1/consensus", "/v1/dht/records/{key}", "/v1/dht/stats", "/v1/status"]);
    // What OpenAPI 3 requires of each operation, and what we promise: a summary and a description.
    for (const [path, ops] of Object.entries(doc.paths)) {
      expect(path.startsWith("/") && !path.includes(":"), path).toBe(true);
      for (const [method, op] of Object.entries(ops)) {
        expect(method).toBe("get");
        expect(op.responses, path).toBeTypeOf("object");
        expect(op.summary, path).toMatch(/\w{3,}/);
        expect(op.description, path).toMatch(/\w{3,}/);
        // Every {name} of the path is a required path parameter.
        for (const [, name] of path.matchAll(/\{([^}]+)\}/g))
          expect(op.parameters).toContainEqual(expect.objectContaining({ in: "path", name, required: true }));
      }
    }
    expect(doc.paths["/v1/dht/records/{key}"]!.get!.parameters![0]).toMatchObject({ schema: { pattern: "^[0-9a-fA-F]{64}$" } });
    // Every route declares a 200 body and the one error body (component PspError) for 4xx and 5xx.
    const full = (await (await fetch(`${node.info.controlApi}/docs/json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }> }>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    for (const [path, ops] of Object.entries(full.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const where = `${method} ${path}`;
        expect(Object.keys(op.responses).sort(), where).toEqual(["200", "4XX", "5XX"]);
        expect(Object.values(op.responses["200"]!.content ?? {})[0]?.schema, where).toBeTypeOf("object");
        for (const status of ["4XX", "5XX"]) {
          const ref = op.responses[status]!.content!["application/json"]!.schema!.$ref!;
          expect(full.components.schemas[ref.split("/").pop()!]?.properties, `${where} ${status}`).toHaveProperty("error");
        }
      }
    }
    // No token on loopback: no security scheme either.
    expect(doc.components?.securitySchemes).toBeUndefined();
    const ui = await fetch(`${node.info.controlApi}/docs`, { redirect: "follow" });
    expect(ui.status).toBe(200);
    expect(await ui.text()).toMatch(/swagger/i);
  });
});

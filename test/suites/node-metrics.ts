/**
 * Keeps docs/METRICS.md honest (run by devnet.test.ts on its devnet, so no
 * devnet of its own): a devnet (real chain, eleven `psp node run`
 * processes of every role: authority, oracle with its service, discovery,
 * onion relays with presence, streams and usage reporting, an internal
 * node) is scraped, and every psp_* metric any node exposes must be in the
 * table with its type, and every name in the table must be exposed by some
 * node. Also checks the node API's one error body and its OpenAPI document
 * on these processes: every route has a 200 schema and the shared error
 * schema for 4xx/5xx, and a status body carries each role's section.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Registry } from "prom-client";
import { beforeAll, describe, expect, it } from "vitest";
import { registerDirectoryMetrics } from "../../node/src/directory/api.js";
import type { DevnetState } from "../../scripts/lib/devnet.js";

interface DocumentedMetric {
  name: string;
  type: string;
  labels: string[];
}

/** The rows of docs/METRICS.md's tables: | `name` | type | labels | meaning |; a name ending in `*` is a prefix. */
function documentedMetrics(): DocumentedMetric[] {
  const text = readFileSync(join(import.meta.dirname, "..", "..", "docs", "METRICS.md"), "utf8");
  const rows: DocumentedMetric[] = [];
  for (const line of text.split("\n")) {
    const m = /^\|\s*`(psp_[a-z0-9_]+\*?)`\s*\|\s*(counter|gauge|histogram|summary|various)\s*\|\s*([^|]*)\|/.exec(line);
    if (!m) continue;
    const labels = [...m[3]!.matchAll(/`([a-z_]+)`/g)].map((l) => l[1]!);
    rows.push({ name: m[1]!, type: m[2]!, labels });
  }
  return rows;
}

/** Metric names and types a scrape declares (# TYPE lines), and the label names its samples carry. */
function exposed(text: string): Map<string, { type: string; labels: Set<string> }> {
  const out = new Map<string, { type: string; labels: Set<string> }>();
  for (const line of text.split("\n")) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) out.set(t[1]!, { type: t[2]!, labels: new Set() });
  }
  for (const line of text.split("\n")) {
    const s = /^([a-z_:][a-z0-9_:]*)\{([^}]*)\}/.exec(line);
    if (!s) continue;
    const metric = out.get(s[1]!) ?? out.get(s[1]!.replace(/_(bucket|sum|count)$/, ""));
    for (const [, label] of s[2]!.matchAll(/([a-z_]+)="/g)) metric?.labels.add(label!);
  }
  return out;
}

/** Declares the metrics suite; call inside the describe whose beforeAll starts the devnet `state()` returns. */
export function describeNodeMetrics(state: () => DevnetState): void {
  describe("node metrics against docs/METRICS.md", () => {
    const scraped = new Map<string, { roles: string[]; metrics: Map<string, { type: string; labels: Set<string> }> }>();
    beforeAll(async () => {
      for (const node of state().nodes) {
        const res = await fetch(`${node.controlApi!}/metrics`);
        expect(res.status, node.name).toBe(200);
        scraped.set(node.name, { roles: node.roles, metrics: exposed(await res.text()) });
      }
    }, 120_000);

    it("documents every psp_* metric a node of any role exposes, with its type and labels", () => {
      const docs = documentedMetrics();
      expect(docs.length).toBeGreaterThan(50);
      const byName = new Map(docs.map((d) => [d.name, d]));
      const prefixes = docs.filter((d) => d.name.endsWith("*")).map((d) => d.name.slice(0, -1));
      const undocumented: string[] = [];
      for (const [node, { metrics }] of scraped) {
        for (const [name, { type, labels }] of metrics) {
          if (!name.startsWith("psp_")) continue;
          const doc = byName.get(name);
          if (!doc) {
            if (!prefixes.some((p) => name.startsWith(p))) undocumented.push(`${name} (${node})`);
            continue;
          }
          expect(type, name).toBe(doc.type);
          // Labels a node sets besides the documented ones (metricLabels are none on a devnet) would be undocumented.
          for (const label of labels) expect(doc.labels, `${name} label ${label}`).toContain(label);
        }
      }
      expect([...new Set(undocumented)].sort()).toEqual([]);
    });

    it("every documented name is exposed by some node of the devnet (or, outbound-only internal nodes' two, by the directory's own registration)", async () => {
      const all = new Set([...scraped.values()].flatMap((s) => [...s.metrics.keys()]));
      // The devnet has no outbound-only internal node: its two metrics, registered as startNode registers them for one.
      const outbound = new Registry();
      registerDirectoryMetrics(outbound, { outbound: { neighbours: 2, linksHeld: 1, dials: 3, dialFailures: 1, linksDropped: 0 } });
      const outboundOnly = [...exposed(await outbound.metrics()).keys()];
      expect(outboundOnly.sort()).toEqual([
        "psp_directory_consensus_age_seconds",
        "psp_directory_consensus_nodes",
        "psp_directory_consensus_signatures",
        "psp_directory_outbound_link_events_total",
        "psp_directory_outbound_links",
      ]);
      for (const name of outboundOnly) all.add(name);
      const missing = documentedMetrics()
        .map((d) => d.name)
        .filter((name) => (name.endsWith("*") ? ![...all].some((n) => n.startsWith(name.slice(0, -1))) : !all.has(name)));
      expect(missing).toEqual([]);
    });

    it("exposes each role's metrics on the nodes of that role", () => {
      const has = (roleOrName: (r: { name: string; roles: string[] }) => boolean, metric: string) =>
        [...scraped.entries()].filter(([name, s]) => roleOrName({ name, roles: s.roles })).every(([, s]) => s.metrics.has(metric));
      expect(has((n) => n.roles.includes("authority"), "psp_authority_requests_total")).toBe(true);
      expect(has((n) => n.roles.includes("oracle"), "psp_oracle_receipts_issued_total")).toBe(true);
      expect(has((n) => n.roles.includes("oracle"), "psp_oracle_settlement_last_computed_epoch")).toBe(true);
      expect(has((n) => n.roles.includes("discovery"), "psp_directory_votes_total")).toBe(true);
      expect(has(() => true, "psp_presence_points")).toBe(true);
      expect(has(() => true, "psp_stream_hosted")).toBe(true);
      expect(has(() => true, "psp_usage_reports_pending")).toBe(true);
      expect(has(() => true, "psp_chain_rpc_requests_total")).toBe(true);
      expect(has(() => true, "psp_onion_circuits_destroyed_total")).toBe(true);
    });

    it("a node process reads the chain: its endpoint's calls counted, a head block seen", async () => {
      const node = state().nodes.find((n) => n.roles.includes("oracle"))!;
      const text = await (await fetch(`${node.controlApi!}/metrics`)).text();
      expect(Number(/^psp_chain_rpc_requests_total (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
      expect(Number(/^psp_chain_head_block (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
      expect(Number(/^psp_chain_last_success_age_seconds ([\d.]+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(0);
    });

    it("every route of a node's OpenAPI document has a 200 schema and the shared error schema for 4xx and 5xx", async () => {
      for (const node of state().nodes.slice(0, 1)) {
        const doc = (await (await fetch(`${node.controlApi!}/docs/json`)).json()) as {
          paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: object }> }> }>>;
          components: { schemas: Record<string, { properties?: { error?: { required?: string[] } } }> };
        };
        const errorSchemas = Object.values(doc.components.schemas).filter((s) => s.properties?.error?.required?.includes("kind"));
        expect(errorSchemas).toHaveLength(1);
        for (const [path, ops] of Object.entries(doc.paths)) {
          for (const [method, op] of Object.entries(ops)) {
            const where = `${method.toUpperCase()} ${path}`;
            expect(Object.keys(op.responses), where).toEqual(expect.arrayContaining(["200", "4XX", "5XX"]));
            expect(Object.values(op.responses["200"]!.content ?? {})[0]?.schema, where).toBeTypeOf("object");
            for (const status of ["4XX", "5XX"]) expect(JSON.stringify(op.responses[status]), `${where} ${status}`).toMatch(/"kind"|\$ref/);
          }
        }
      }
    });

    it("a status body carries each role's section, and errors answer the one shape", async () => {
      const section = { authority: "authority", oracle: "oracle", discovery: "discovery" } as const;
      for (const node of state().nodes) {
        const status = (await (await fetch(`${node.controlApi!}/v1/status`)).json()) as Record<string, unknown>;
        expect(status["identity"], node.name).toMatch(/^[0-9a-f]{64}$/);
        expect(status["presence"], node.name).toMatchObject({ points: expect.any(Number) as number, rendezvous: expect.any(Object) as object });
        for (const [role, key] of Object.entries(section)) if (node.roles.includes(role)) expect(status[key], `${node.name} ${key}`).toBeTypeOf("object");
      }
      const node = state().nodes[0]!;
      const missing = await fetch(`${node.controlApi!}/v1/nothing`);
      expect(missing.status).toBe(404);
      const body = (await missing.json()) as { error: { kind: string; message: string; routes: string[] } };
      expect(body.error).toMatchObject({ kind: "not-found", message: "no route GET /v1/nothing" });
      expect(body.error.routes).toContain("/v1/status (GET, HEAD)");
      const bad = await fetch(`${node.controlApi!}/v1/dht/records/xyz`);
      expect(bad.status).toBe(400);
      expect(await bad.json()).toMatchObject({ error: { kind: "bad-request", message: expect.stringMatching(/^key must be a record key/) as string } });
    });
  });
}

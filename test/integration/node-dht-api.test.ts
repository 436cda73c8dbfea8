/**
 * Node processes composed by startNode, in one process on loopback: four
 * nodes that find each other in the DHT from one seed, a record stored
 * through one node found through another's control API, real figures on
 * /v1/status, /v1/dht/stats and /metrics, typed 4xx errors, and a node
 * restarted on its data directory that still holds its DHT records.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { sha256 } from "@noble/hashes/sha2.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { coSignRecord, signRecordAsOwner } from "../../node/src/dht/record.js";
import { createLogger } from "../../node/src/log.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import type { TlsCredentials } from "../../node/src/link/index.js";
import { startNode } from "../../node/src/node/node.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { waitFor } from "../helpers/index.js";

const dir = mkdtempSync(join(tmpdir(), "psp-node-dht-"));
const secret = (label: string): Uint8Array => sha256(new TextEncoder().encode(`node-dht-api/${label}`));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const DHT = { staticDifficulty: 0, dynamicDifficulty: 4, bucketSize: 8, disjointPaths: 2, alpha: 2, rpcTimeoutMs: 5000 };
const nodes: RunningNode[] = [];
let credentials: TlsCredentials;

function configFor(i: number, seed: RunningNode | undefined, port = 0) {
  return {
    listen: { host: "127.0.0.1", port },
    identity: { secretKeyHex: hexOf(secret(`node-${i}`)) },
    dataDir: join(dir, `node-${i}`),
    dht: { ...DHT, ...(seed ? { seeds: [{ identity: seed.info.identity, host: seed.info.host, port: seed.info.port }] } : {}) },
  };
}

const getJson = async (node: RunningNode, path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
  const res = await fetch(`${node.info.controlApi}${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

beforeAll(async () => {
  credentials = await generateTlsCredentials();
  nodes.push(await startNode(configFor(0, undefined), { tlsCredentials: credentials }));
  for (let i = 1; i < 4; i++) nodes.push(await startNode(configFor(i, nodes[0]), { tlsCredentials: credentials }));
  await waitFor("every routing table to hold the other three", () => nodes.every((n) => n.dht.node.table.size === 3));
}, 30_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe("node process: DHT and control API", () => {
  it("a record published through one node is found through another node's API; stats and metrics show it", async () => {
    const owner = secret("owner");
    const record = coSignRecord(
      signRecordAsOwner({
        ownerSecretKey: owner,
        name: "presence/0",
        value: new TextEncoder().encode("hello from node 1"),
        seq: 1,
        expiresAt: Date.now() + 3600_000,
      }),
      secret("node-1"),
    );
    const published = await nodes[1]!.dht.node.publish(record);
    expect(published.failed).toEqual([]);
    expect(published.stored.length).toBeGreaterThanOrEqual(3);

    const found = await getJson(nodes[3]!, `/v1/dht/records/${hexOf(record.key)}`);
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ name: "presence/0", owner: hexOf(ed25519PublicKey(owner)), publisher: nodes[1]!.info.identity, seq: 1 });
    expect(Buffer.from(found.body.valueHex as string, "hex").toString()).toBe("hello from node 1");

    const stats = await getJson(nodes[3]!, "/v1/dht/stats");
    expect(stats.status).toBe(200);
    expect(stats.body.tableSize).toBe(3);
    expect(stats.body.storedRecords).toBeGreaterThanOrEqual(1);
    expect(stats.body.lookups as number).toBeGreaterThanOrEqual(2); // its bootstrap and the record lookup
    expect(stats.body.requestsServed as number).toBeGreaterThan(0);

    const status = await getJson(nodes[2]!, "/v1/status");
    expect(status.body).toMatchObject({
      identity: nodes[2]!.info.identity,
      roles: ["onion"],
      addresses: [`127.0.0.1:${nodes[2]!.info.port}`],
      consensus: null,
    });
    expect(status.body.links as number).toBeGreaterThanOrEqual(1);
    expect((status.body.dht as { tableSize: number }).tableSize).toBe(3);
    expect(typeof status.body.uptimeSeconds).toBe("number");

    const metrics = await (await fetch(`${nodes[3]!.info.controlApi}/metrics`)).text();
    expect(metrics).toMatch(/^psp_dht_table_size 3$/m);
    const lookups = /^psp_dht_lookups_total (\d+)$/m.exec(metrics);
    expect(Number(lookups?.[1])).toBe((await getJson(nodes[3]!, "/v1/dht/stats")).body.lookups);
    expect(metrics).toMatch(/^psp_link_open [1-9]\d*$/m);
    // Issue 19: what a node sheds is exported by cap and class, zero while nobody attacks.
    expect(metrics).toMatch(/^psp_link_refusals_total\{cap="per-address",class="inbound"\} 0$/m);
    expect(metrics).toMatch(/^psp_rpc_refusals_total\{budget="class-serving",class="anonymous"\} 0$/m);
    expect(metrics).toMatch(/^psp_link_pending_inbound \d+$/m);
    expect(metrics).toMatch(/^psp_onion_circuits 0$/m);
  });

  it("bad requests get a 4xx JSON error that says what was wrong", async () => {
    const bad = await getJson(nodes[0]!, "/v1/dht/records/not-a-key");
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ error: { kind: "bad-request", message: expect.stringMatching(/64 hex digits/) as string } });
    const missing = await getJson(nodes[0]!, `/v1/dht/records/${"ab".repeat(32)}`);
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ error: { kind: "not-found", layer: "api" } });
    const unknown = await getJson(nodes[0]!, "/v1/nope");
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error: { kind: "not-found", message: "no route GET /v1/nope" } });
    expect((unknown.body.error as { routes: string[] }).routes).toContain("/v1/dht/stats (GET, HEAD)");
    const noDirectory = await getJson(nodes[0]!, "/v1/consensus");
    expect(noDirectory.status).toBe(503);
    expect(noDirectory.body).toMatchObject({ error: { kind: "unavailable", layer: "directory", fix: expect.stringMatching(/directory/) as string } });
  });

  it("a node restarted on its data directory keeps its DHT records and rejoins", async () => {
    const owner = secret("owner-2");
    const record = coSignRecord(
      signRecordAsOwner({ ownerSecretKey: owner, name: "restart/0", value: new TextEncoder().encode("kept"), seq: 1, expiresAt: Date.now() + 3600_000 }),
      secret("node-0"),
    );
    const target = nodes[2]!;
    expect(await nodes[0]!.dht.node.rpc(target.dht.node.contact, { type: "STORE", record })).toMatchObject({ type: "STORED" });
    const port = target.info.port;
    await target.close();
    nodes[2] = await startNode(configFor(2, nodes[0], port), { tlsCredentials: credentials });
    const restarted = nodes[2];
    expect(restarted.info.identity).toBe(target.info.identity);
    expect(restarted.dht.store.get(record.key, Date.now())?.value).toEqual(record.value);
    const stats = await getJson(restarted, "/v1/dht/stats");
    expect(stats.body.storedRecords as number).toBeGreaterThanOrEqual(1);
    // Another node reaches it again over a new link and gets the record from it.
    const body = await nodes[3]!.dht.node.rpc(restarted.dht.node.contact, { type: "FIND_VALUE", key: record.key });
    expect(body.type === "VALUE" ? body.record.value : undefined).toEqual(record.value);
  });

  it("a record lookup on a node with no contacts is a 503 with Retry-After, not a 500 (issue 19)", async () => {
    const lone = await startNode(
      { listen: { host: "127.0.0.1", port: 0 }, identity: { secretKeyHex: hexOf(secret("lone")) }, dht: DHT },
      { tlsCredentials: credentials },
    );
    try {
      const res = await fetch(`${lone.info.controlApi}/v1/dht/records/${"cd".repeat(32)}`);
      expect(res.status).toBe(503);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(await res.json()).toMatchObject({ error: { kind: "no-contacts", layer: "dht" } });
    } finally {
      await lone.close();
    }
  });

  it("one sender's fresh owner keys stop at its per-sender quota over real links while another sender's record is stored (issue 19)", async () => {
    const target = await startNode(
      {
        ...configFor(9, nodes[0]),
        dht: { ...DHT, maxRecordsPerSender: 3, seeds: [{ identity: nodes[0]!.info.identity, host: nodes[0]!.info.host, port: nodes[0]!.info.port }] },
      },
      // A logger that prints nothing but feeds psp_log_events_total: every refusal is counted there by kind.
      { tlsCredentials: credentials, logger: createLogger({ level: "silent", destination: new PassThrough() }) },
    );
    try {
      const contact = target.dht.node.contact;
      const kinds: string[] = [];
      for (let i = 0; i < 10; i++) {
        const record = coSignRecord(
          signRecordAsOwner({
            ownerSecretKey: secret(`fresh-owner-${i}`),
            name: `spam/${i}`,
            value: new Uint8Array(512),
            seq: 1,
            expiresAt: Date.now() + 3600_000,
          }),
          secret("node-1"),
        );
        const body = await nodes[1]!.dht.node.rpc(contact, { type: "STORE", record });
        kinds.push(body.type === "ERROR" ? body.kind : body.type);
      }
      expect(kinds).toEqual([...Array<string>(3).fill("STORED"), ...Array<string>(7).fill("quota-exceeded")]);
      const honest = coSignRecord(
        signRecordAsOwner({ ownerSecretKey: secret("honest-owner"), name: "presence/0", value: new Uint8Array(64), seq: 1, expiresAt: Date.now() + 3600_000 }),
        secret("node-3"),
      );
      expect(await nodes[3]!.dht.node.rpc(contact, { type: "STORE", record: honest })).toMatchObject({ type: "STORED" });
      const stats = await getJson(target, "/v1/dht/stats");
      expect(stats.body.refused).toMatchObject({ "quota-exceeded": 7 });
      const metrics = await (await fetch(`${target.info.controlApi}/metrics`)).text();
      expect(metrics).toMatch(/psp_dht_refusals_total\{kind="quota-exceeded"[^}]*\} 7/);
      expect(metrics).toMatch(/psp_log_events_total\{[^}]*component="dht"[^}]*kind="dht\/quota-exceeded"[^}]*\} 7/);
    } finally {
      await target.close();
    }
  });

  it("DHT and relay limits out of range are refused with the field named", async () => {
    await expect(startNode({ listen: { host: "127.0.0.1", port: 0 }, dht: { maxRecordsPerSender: 0 } })).rejects.toMatchObject({
      kind: "bad-config",
      message: expect.stringContaining("dht.maxRecordsPerSender"),
    });
    await expect(startNode({ listen: { host: "127.0.0.1", port: 0 }, onion: { limits: { createsPerSecondPerLink: 0 } } })).rejects.toMatchObject({
      kind: "bad-config",
      message: expect.stringContaining("onion.limits.createsPerSecondPerLink"),
    });
  });

  it("a config with an unknown field or a bad DHT seed is refused with the field named", async () => {
    await expect(startNode({ listen: { host: "127.0.0.1", port: 0 }, dht: { seeds: [{ identity: "xyz", host: "a", port: 1 }] } })).rejects.toMatchObject({
      kind: "bad-config",
      message: expect.stringContaining("dht.seeds[0].identity"),
    });
    await expect(
      startNode({ listen: { host: "127.0.0.1", port: 0 }, dht: { staticDifficulty: 24 }, identity: { secretKeyHex: hexOf(secret("weak")) } }),
    ).rejects.toMatchObject({
      kind: "key-load",
      message: expect.stringContaining("static puzzle"),
    });
  });
});

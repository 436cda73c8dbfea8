import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { startControlApi } from "../../../node/src/api/server.js";
import { consensusToJson, mountConsensusRoute, registerDirectoryMetrics } from "../../../node/src/directory/api.js";
import { ConsensusCache } from "../../../node/src/directory/cache.js";
import type { ConsensusClient } from "../../../node/src/directory/client.js";
import { bytesToHexFast } from "../../../node/src/directory/config.js";
import { DirectorySimulation } from "../../../node/src/directory/sim.js";

describe("directory control API", () => {
  it("serves the verified consensus as JSON and exposes its age and signatures as metrics", async () => {
    const start = 1_800_000_000_000;
    const sim = new DirectorySimulation({ discoveryNodes: 3, relays: 5, start, schedule: { periodMs: 60_000, voteDelayMs: 10_000, distDelayMs: 10_000 } });
    sim.publishDescriptors();
    sim.probeReachability();
    sim.runUntil(start + 120_000);
    const cache = new ConsensusCache({ trustedKeys: sim.trust().keys });
    const now = sim.now;
    expect(cache.offer(sim.latestConsensus()!, now)).toBe("accepted");
    const held = cache.current(now)!;

    let source: { current(): ReturnType<typeof cache.current> } = { current: () => undefined };
    // On the API base every process serves: its error handler answers the one error body.
    const api = await startControlApi({ port: 0, status: () => ({}), routes: (app) => mountConsensusRoute(app, { current: () => source.current() }) });
    const app = api.app;
    const none = await app.inject({ method: "GET", url: "/v1/consensus" });
    expect(none.statusCode).toBe(503);
    expect(none.headers["retry-after"]).toMatch(/^[1-9][0-9]*$/);
    expect(none.json()).toMatchObject({ error: { kind: "unavailable", layer: "directory", message: expect.stringMatching(/no verified consensus/) as string } });
    source = { current: () => held };
    const body = (await app.inject({ method: "GET", url: "/v1/consensus" })).json() as { validAfter: number; signers: string[]; nodes: { identity: string; addresses: string[]; flags: string[] }[] };
    expect(body.validAfter).toBe(held.validAfter);
    expect(body.signers).toHaveLength(3);
    expect(body.nodes.map((n) => n.identity)).toEqual(held.entries.map((e) => bytesToHexFast(e.identity)));
    expect(body.nodes[0]!.addresses[0]).toMatch(/^10\.\d+\.\d+\.\d+:9001$/);
    expect(body.nodes[0]!.flags).toContain("onion");
    // The response schema drops nothing consensusToJson produces.
    expect(body).toEqual(JSON.parse(JSON.stringify(consensusToJson(held))));
    await api.close();

    const registry = new Registry();
    const client = { current: () => held, stats: { fetches: 1, accepted: 1, notModified: 0, failures: { expired: 2 } } } as unknown as ConsensusClient;
    registerDirectoryMetrics(registry, { client, now: () => held.validAfter + 30_000 });
    const text = await registry.metrics();
    expect(text).toMatch(/psp_directory_consensus_age_seconds 30/);
    expect(text).toMatch(/psp_directory_consensus_signatures 3/);
    expect(text).toMatch(/psp_directory_fetch_failures_total\{reason="expired"\} 2/);
  });
});

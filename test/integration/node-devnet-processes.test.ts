/**
 * scripts/lib/devnet-nodes.ts without a chain: devnet-style key files for
 * three discovery nodes, two onion nodes and an authority node (in the
 * registry, not run), started as `psp node run` processes with 2-second
 * voting periods. The onion nodes' control APIs serve the consensus the
 * discovery processes signed, and stop() ends every process.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { afterAll, describe, expect, it } from "vitest";
import { startDevnetNodes } from "../../scripts/lib/devnet-nodes.js";
import type { DevnetNodes } from "../../scripts/lib/devnet-nodes.js";

const dir = mkdtempSync(join(tmpdir(), "psp-devnet-nodes-"));
let running: DevnetNodes | undefined;

afterAll(async () => {
  await running?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("devnet nodes as processes", () => {
  it("starts discovery and onion nodes from key files; a consensus forms and is served by an onion node", async () => {
    mkdirSync(join(dir, "keys"));
    const specs = [
      { name: "authority-1", roles: ["onion", "authority"] },
      { name: "discovery-1", roles: ["onion", "discovery"] },
      { name: "discovery-2", roles: ["onion", "discovery"] },
      { name: "discovery-3", roles: ["onion", "discovery"] },
      { name: "onion-1", roles: ["onion"] },
      { name: "onion-2", roles: ["onion"] },
    ];
    const nodes = specs.map((s) => {
      const keyFile = join(dir, "keys", `${s.name}.json`);
      const secret = Buffer.from(sha256(new TextEncoder().encode(`devnet-nodes/${s.name}`))).toString("hex");
      writeFileSync(keyFile, JSON.stringify({ identitySecretKey: `0x${secret}` }));
      return { ...s, keyFile };
    });
    running = await startDevnetNodes({ dir, nodes, schedule: { periodMs: 2000, voteDelayMs: 600, distDelayMs: 600, validPeriods: 3 }, publishIntervalMs: 1000 });
    expect(running.nodes.map((n) => n.name)).toEqual(["discovery-1", "discovery-2", "discovery-3", "onion-1", "onion-2"]);
    for (const n of running.nodes) {
      expect(n.controlApi).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(n.addresses[0]).toMatch(/^127\.\d+\.0\.1:\d+$/);
    }
    const onion = running.nodes[4]!;
    const deadline = Date.now() + 25_000;
    let listed: string[] = [];
    while (Date.now() < deadline) {
      const res = await fetch(`${onion.controlApi}/v1/consensus`);
      if (res.status === 200) {
        listed = ((await res.json()) as { nodes: { identity: string }[] }).nodes.map((e) => e.identity);
        if (listed.length === 5) break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(listed.sort()).toEqual(running.nodes.map((n) => n.identity).sort());
    const pids = running.nodes.map((n) => n.pid);
    await running.stop();
    running = undefined;
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  }, 60_000);
});

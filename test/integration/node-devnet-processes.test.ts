/**
 * scripts/lib/devnet-nodes.ts without a chain: devnet-style key files for
 * three discovery nodes, two onion nodes and an authority node (in the
 * registry, not run), started as `psp node run` processes with 2-second
 * voting periods. The onion nodes' control APIs serve the consensus the
 * discovery processes signed; a node killed while the devnet runs is an
 * error line at once, and stop() ends every process.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { PassThrough } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { createLogger } from "../../node/src/log.js";
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
    const lines: string[] = [];
    const destination = new PassThrough();
    destination.on("data", (chunk: Buffer) => lines.push(...chunk.toString().split("\n").filter(Boolean)));
    const logger = createLogger({ level: "info", pretty: false, destination });
    running = await startDevnetNodes({ dir, nodes, logger, schedule: { periodMs: 2000, voteDelayMs: 600, distDelayMs: 600, validPeriods: 3 }, publishIntervalMs: 1000 });
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
    // A node dying under the devnet is said, with its name and where its log is.
    process.kill(onion.pid, "SIGKILL");
    const died = Date.now() + 10_000;
    const deathLine = () => lines.map((l) => JSON.parse(l) as { level: number; node?: string; msg: string }).find((l) => l.level === 50 && l.node === "onion-2");
    while (!deathLine() && Date.now() < died) await new Promise((r) => setTimeout(r, 50));
    expect(deathLine()?.msg).toMatch(/onion-2 exited \(SIGKILL\) while the devnet runs: see .*onion-2.*node\.log/);
    const pids = running.nodes.map((n) => n.pid);
    await running.stop();
    running = undefined;
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  }, 60_000);
});

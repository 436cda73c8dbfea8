/**
 * Nothing fails silently: a node whose discovery node cannot be reached logs
 * the failed consensus refresh as a JSON line naming its component and
 * operation, and counts it (and the debug-level failures it did not print)
 * in psp_log_events_total on /metrics; `psp node run` writes every stdout
 * line as a JSON log line with a level and a component, the ready line
 * among them; a client given a logger logs each warning it emits; a local
 * service that throws is an error line of the onion driver.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { sha256 } from "@noble/hashes/sha2.js";
import { afterAll, describe, expect, it } from "vitest";
import { createPspClient } from "../../node/src/client/client.js";
import { resolveLogLevel } from "../../node/src/cli/node.js";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { createLogger } from "../../node/src/log.js";
import { startNode } from "../../node/src/node/node.js";
import { createOnionClient } from "../../node/src/onion/onion-client.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { freePort, waiter } from "../helpers/index.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const pspBin = join(root, "node", "bin", "psp.js");
const dir = mkdtempSync(join(tmpdir(), "psp-node-logs-"));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const secretHex = (label: string): string => hexOf(sha256(new TextEncoder().encode(`node-logs/${label}`)));
/** A discovery node that is never started: every fetch from it and every publication to it fails. */
const absentDiscovery = { identity: hexOf(ed25519PublicKey(sha256(new TextEncoder().encode("node-logs/absent")))), host: "127.0.0.1" };
let node: RunningNode | undefined;
let serviceNode: RunningNode | undefined;

afterAll(async () => {
  await node?.close();
  await serviceNode?.close();
  rmSync(dir, { recursive: true, force: true });
});

type LogLine = Record<string, unknown> & { level: number; component?: string; operation?: string; msg: string };

/** A writable that keeps every JSON line written to it. */
function lineSink(): { stream: Writable; lines: LogLine[] } {
  const lines: LogLine[] = [];
  let rest = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const parts = (rest + chunk.toString()).split("\n");
      rest = parts.pop() ?? "";
      for (const part of parts) if (part) lines.push(JSON.parse(part) as LogLine);
      done();
    },
  });
  return { stream, lines };
}

const waitFor = waiter({ timeoutMs: 30_000, intervalMs: 100 });

/** The value of the psp_log_events_total series whose labels include every pair of `labels`. */
function logEvents(metrics: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of metrics.split("\n")) {
    if (!line.startsWith("psp_log_events_total{")) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

function nodeConfig(label: string, discoveryPort: number, listenPort = 0) {
  return {
    listen: { host: "127.0.0.1", port: listenPort },
    identity: { secretKeyHex: secretHex(label) },
    api: { host: "127.0.0.1", port: 0 },
    dht: { staticDifficulty: 0, dynamicDifficulty: 4 },
    directory: { discovery: [{ ...absentDiscovery, port: discoveryPort }], retryMs: 500, publishIntervalMs: 60_000 },
    log: { name: label },
  };
}

describe("node logs", () => {
  it("a failed consensus refresh is a JSON warn line with its component and operation, and is counted in /metrics with the debug failures it did not print", async () => {
    const sink = lineSink();
    node = await startNode(nodeConfig("in-process", await freePort("127.0.0.1")), { logger: createLogger({ destination: sink.stream, pretty: false, level: "info" }) });
    const refresh = await waitFor("a logged refresh failure", () => sink.lines.find((l) => l.operation === "refresh consensus"));
    expect(refresh).toMatchObject({ level: 40, component: "directory.consensus", name: "in-process", node: node.info.identity.slice(0, 16), err: { kind: "unavailable" } });
    expect(refresh.msg).toMatch(/^refresh consensus failed: /);
    // Debug lines are not printed at info, but the failures they report are counted.
    expect(sink.lines.filter((l) => l.level < 30)).toEqual([]);
    const metrics = await (await fetch(`${node.info.controlApi}/metrics`)).text();
    expect(logEvents(metrics, { level: "warn", component: "directory.consensus", operation: "refresh consensus" })).toBeGreaterThanOrEqual(1);
    expect(logEvents(metrics, { level: "debug", component: "directory.consensus", operation: "fetch consensus from a source" })).toBeGreaterThanOrEqual(1);
    expect(metrics).toMatch(/psp_log_events_total\{[^}]*kind="[a-z]+\/unavailable"/);
  });

  it("`psp node run` writes JSON log lines with a level and a component, the ready line among them; --log-level wins over PSP_LOG_LEVEL", async () => {
    const file = join(dir, "node.json");
    writeFileSync(file, JSON.stringify(nodeConfig("spawned", await freePort("127.0.0.1"))));
    const child = spawn(process.execPath, [pspBin, "node", "run", "--config", file, "--log-level", "debug"], {
      cwd: root,
      env: { ...process.env, PSP_LOG_LEVEL: "error" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const lines: LogLine[] = [];
    createInterface({ input: child.stdout }).on("line", (line) => lines.push(JSON.parse(line) as LogLine));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      const ready = await waitFor("the ready line", () => lines.find((l) => l.event === "ready"));
      expect(ready).toMatchObject({ level: 30, component: "node", name: "spawned", msg: "ready", host: "127.0.0.1" });
      expect(ready.identity).toMatch(/^[0-9a-f]{64}$/);
      await waitFor("a logged refresh failure", () => lines.find((l) => l.operation === "refresh consensus"));
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(stderr).toBe("");
    for (const line of lines) {
      expect(typeof line.level).toBe("number");
      expect(typeof line.component).toBe("string");
      expect(line.node).toBe((lines.find((l) => l.event === "ready")?.identity as string).slice(0, 16));
    }
    expect(lines.some((l) => l.level === 20)).toBe(true);
    expect(lines.some((l) => l.component === "directory.publisher")).toBe(true);
  }, 60_000);

  it("picks the log level from the flag, then PSP_LOG_LEVEL, then the config; a name that is no level is bad-config", () => {
    const config = { listen: { host: "127.0.0.1", port: 0 }, log: { level: "error" as const } };
    expect(resolveLogLevel(config, "debug", "warn")).toBe("debug");
    expect(resolveLogLevel(config, undefined, "warn")).toBe("warn");
    expect(resolveLogLevel(config, undefined, undefined)).toBe("error");
    expect(resolveLogLevel({ listen: config.listen }, undefined, "")).toBe("info");
    expect(() => resolveLogLevel(config, undefined, "loud")).toThrow(expect.objectContaining({ kind: "bad-config", message: expect.stringMatching(/PSP_LOG_LEVEL "loud"/) }) as Error);
  });

  it("a client given a logger logs each warning it emits, with the operation that failed", async () => {
    const sink = lineSink();
    const warnings: Error[] = [];
    const client = await createPspClient({
      bootstrap: { nodes: [{ ...absentDiscovery, port: await freePort("127.0.0.1") }], discovery: { keys: [absentDiscovery.identity] } },
      readyTimeoutMs: 1500,
      logger: createLogger({ destination: sink.stream, pretty: false, level: "warn" }),
    });
    client.on("warning", (err) => warnings.push(err));
    try {
      await expect(client.ready).rejects.toMatchObject({ kind: "no-consensus" });
      await waitFor("the bootstrap warning logged", () => sink.lines.find((l) => l.component === "client" && l.operation === "bootstrap"));
    } finally {
      await client.close();
    }
    const fetchWarnings = sink.lines.filter((l) => l.component === "client" && l.operation === "fetch consensus");
    expect(fetchWarnings.length).toBeGreaterThanOrEqual(1);
    expect(fetchWarnings[0]).toMatchObject({ level: 40, err: { kind: "no-consensus" } });
    // Every warning an app hears of is also in the log.
    const logged = sink.lines.filter((l) => l.component === "client").map((l) => (l.err as { message: string }).message);
    for (const warning of warnings) expect(logged).toContain(warning.message);
  });

  it("a local service that throws is an error line of the onion driver, with the service and the stage", async () => {
    const sink = lineSink();
    serviceNode = await startNode(
      {
        listen: { host: "127.0.0.1", port: 0 },
        identity: { secretKeyHex: secretHex("service") },
        api: false,
        dht: { staticDifficulty: 0, dynamicDifficulty: 4 },
        onion: { allowStreamsAtFirstHop: true },
      },
      {
        logger: createLogger({ destination: sink.stream, pretty: false, level: "info" }),
        services: {
          broken: () => {
            throw new TypeError("the service's own bug");
          },
        },
      },
    );
    const client = await createOnionClient({ nodes: [serviceNode.pathNode] });
    try {
      const circuit = await client.buildCircuit({ path: [serviceNode.pathNode] });
      await expect(circuit.openStream("broken")).rejects.toMatchObject({ kind: "stream-refused" });
    } finally {
      await client.close();
    }
    const line = await waitFor("the service error line", () => sink.lines.find((l) => l.operation === "run a local service"));
    expect(line).toMatchObject({ level: 50, component: "onion", service: "broken", stage: "accept", err: { type: "TypeError", message: "the service's own bug" } });
  });
});

/**
 * Relays in separate processes: `psp node run --config <file>` spawned with
 * Node 22 (process.execPath under vitest), one in-process entry
 * relay and an in-process client. The middle relay is then killed with
 * SIGKILL mid-circuit.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { generateTlsCredentials } from "../../node/src/link/index.js";
import { pathNodeFromInfo, startNode } from "../../node/src/node/index.js";
import type { NodeInfo, RunningNode } from "../../node/src/node/index.js";
import { DestroyReason } from "../../node/src/onion/index.js";
import { createOnionClient } from "../../node/src/onion/onion-client.js";
import type { OnionClientHandle } from "../../node/src/onion/onion-client.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
// The `psp` bin registers tsx in-process, so the child's pid is the node itself (SIGKILL reaches it).
const pspBin = join(root, "node", "bin", "psp.js");
const children: ChildProcess[] = [];
let dir: string | undefined;
let entry: RunningNode | undefined;
let client: OnionClientHandle | undefined;

afterAll(async () => {
  await client?.close();
  await entry?.close();
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Starts `psp node run` in its own process and resolves with the node info it prints. */
async function spawnRelay(host: string): Promise<{ child: ChildProcess; info: NodeInfo }> {
  const file = join(dir as string, `${host}.json`);
  await writeFile(file, JSON.stringify({ listen: { host, port: 0 }, onion: { services: ["echo"] } }));
  const child = spawn(process.execPath, [pspBin, "node", "run", "--config", file], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const info = await new Promise<NodeInfo>((resolve, reject) => {
    // Every stdout line is a JSON log line; the ready line is the one with event "ready".
    lines.on("line", (line) => {
      const parsed = JSON.parse(line) as NodeInfo & { event?: string };
      if (parsed.event === "ready") resolve(parsed);
    });
    child.once("exit", (code) => reject(new Error(`psp node run exited with ${code}: ${stderr}`)));
  });
  return { child, info };
}

describe("relays in separate processes", () => {
  it("a circuit through two `psp node run` processes carries data; SIGKILL of the middle one is a clean CHANNEL_CLOSED", async () => {
    dir = await mkdtemp(join(tmpdir(), "psp-onion-"));
    const [middle, last] = await Promise.all([spawnRelay("127.2.0.1"), spawnRelay("127.3.0.1")]);
    expect(middle.info.port).toBeGreaterThan(0);
    entry = await startNode({ listen: { host: "127.1.0.1", port: 0 } }, { tlsCredentials: await generateTlsCredentials() });
    const path = [entry.pathNode, pathNodeFromInfo(middle.info), pathNodeFromInfo(last.info)];
    client = await createOnionClient({ nodes: path });
    const circuit = await client.buildCircuit({ path });
    const stream = await circuit.openStream("echo");
    const message = new TextEncoder().encode("across processes ".repeat(200));
    await stream.send(message);
    expect(Buffer.from(await stream.receive()).equals(Buffer.from(message))).toBe(true);

    middle.child.kill("SIGKILL");
    const error = await circuit.closed;
    expect(error?.kind).toBe("circuit-destroyed");
    expect(error?.destroyReason).toBe(DestroyReason.CHANNEL_CLOSED);
    await expect(stream.receive()).rejects.toMatchObject({ kind: "stream-closed" });
    // The entry relay forgot the circuit; the surviving child relay still answers.
    expect(entry.relay.stats().circuits).toBe(0);
    const short = await client.buildCircuit({ path: [entry.pathNode, pathNodeFromInfo(last.info)] });
    const s2 = await short.openStream("echo");
    await s2.send(message);
    expect((await s2.receive()).length).toBe(message.length);
  });
});

describe("psp bench onion", () => {
  it("prints one JSON object with the issue's figures, through the psp bin (relays in a worker thread included)", async () => {
    const child = spawn(process.execPath, [pspBin, "bench", "onion", "--json", "--builds", "2", "--cold", "1", "--mib", "1", "--rounds", "1"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    const figures = JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as Record<string, unknown>;
    const keys = [
      "circuitBuildMsMedian",
      "circuitBuildMsP90",
      "circuitBuildColdMsMedian",
      "throughput3HopMBps",
      "rawTlsMBps",
      "cpuMsPerMB",
      "prototypeMBps",
      "prototypeCpuMsPerMB",
      "cpuVsPrototype",
      "throughputVsPrototype",
      "busyMsPerMB",
      "prototypeBusyMsPerMB",
      "eventLoopUtilization",
      "cellPrototypeMBps",
      "cellPrototypeVsPrototype",
      "throughputVsCellPrototype",
      "cellPrototypeBusyMsPerMB",
    ];
    for (const key of keys) {
      expect(typeof figures[key]).toBe("number");
      expect(figures[key] as number).toBeGreaterThan(0);
    }
    expect((figures.relaysInWorker as { throughput3HopMBps: number }).throughput3HopMBps).toBeGreaterThan(0);
  }, 60_000);
});

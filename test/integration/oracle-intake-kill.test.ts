/**
 * Durable intake (issue 16): an oracle process killed with SIGKILL in the
 * middle of taking usage reports restarts with every report it had
 * acknowledged, its replication outbox for each, and nothing half-written
 * (SQLite's integrity check passes and every stored report still decodes).
 * The intake is oracle/usage.ts on a real store file, in a child process
 * (test/helpers/oracle-intake-child.ts) that is really killed.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import Database from "better-sqlite3";
import { afterAll, beforeAll, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { decodeUsageReport, signUsageReport } from "../../node/src/rewards/report.js";
import { OracleStore } from "../../oracle/store.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "psp-intake-kill-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("keeps every acknowledged report (and its outbox rows) across a SIGKILL mid-intake, with nothing half-written", async () => {
  const node = generateEd25519KeyPair();
  const storePath = join(dir, "oracle.sqlite");
  const t0 = Math.floor(Date.now() / 1000) - 100_000;
  // 400 one-second windows, each with 40 entries: far more than the child takes in before it is killed.
  const reports = Array.from({ length: 400 }, (_, i) =>
    signUsageReport({
      kind: "node",
      secretKey: node.secretKey,
      from: t0 + i,
      to: t0 + i + 1,
      entries: Array.from({ length: 40 }, (_, j) => ({
        stream: new Uint8Array(16).fill(j),
        peer: new Uint8Array(16).fill(i % 251),
        direction: "sent" as const,
        bytes: i * 100 + j,
      })),
    }),
  );
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(import.meta.dirname, "..", "helpers", "oracle-intake-child.ts"), storePath, Buffer.from(node.publicKey).toString("hex")],
    {
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  const acked: string[] = [];
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
  const lines = createInterface({ input: child.stdout });
  await new Promise<void>((resolve) => lines.once("line", () => resolve())); // "ready"
  lines.on("line", (line) => {
    if (line.startsWith("ack ")) acked.push(line.slice(4));
    // Killed while reports are still arriving and being written: the next one may be mid-transaction.
    if (acked.length === 100) child.kill("SIGKILL");
  });
  child.stdin.on("error", () => undefined); // the pipe breaks when the child dies
  for (const r of reports) child.stdin.write(`${Buffer.from(r.bytes).toString("hex")}\n`);
  expect(await exited).toBe("SIGKILL");
  expect(acked.length).toBeGreaterThanOrEqual(100);
  expect(acked.length).toBeLessThan(reports.length);

  const db = new Database(storePath, { readonly: true });
  expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
  db.close();
  const store = new OracleStore(storePath);
  try {
    for (const hash of acked) expect(store.hasReport(hash as `0x${string}`)).toBe(true);
    const held = store.reportsOf(0);
    expect(held.length).toBeGreaterThanOrEqual(acked.length);
    // Whole reports only, each queued for both peers in the same transaction.
    for (const doc of held) expect(reports.some((r) => r.hash === decodeUsageReport(doc).hash)).toBe(true);
    expect(store.reportOutbox().size()).toBe(2 * held.length);
  } finally {
    store.close();
  }
}, 120_000);

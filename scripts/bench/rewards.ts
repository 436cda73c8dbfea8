/**
 * Issue 16's figures: usage reports taken in per second by one oracle
 * (oracle/usage.ts on a real SQLite file), against raw Ed25519 verification
 * of the same reports and a raw SQLite insert of the same rows, measured in
 * the same run; and the time to compute an epoch's root for 10,000 nodes and
 * 100,000 viewer sessions (normalization, oracle/normalize.ts, plus the
 * cumulative reward tree, node/src/rewards/merkle.ts), against one plain pass
 * that sums the same entries per sender. Claim gas is gas-core.ts's.
 *
 * One intake is the whole path of a node's report over its link, minus the
 * link: decode and signature (rewards/report.ts), the epoch and listing
 * checks, the store's transaction (report row, duplicate and overlap checks,
 * outbox rows for two peers; WAL, synchronous FULL, so each one is synced
 * before it is acknowledged). Reports carry 16 entries, as a distribution
 * node with 16 viewers sends them.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { getAddress } from "viem";
import { ed25519Sign, ed25519Verify, generateEd25519KeyPair, type Ed25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { buildRewardTree } from "../../node/src/rewards/merkle.js";
import { signUsageReport, USAGE_REPORT_TYPE, type UsageReport } from "../../node/src/rewards/report.js";
import { documentSigningMessage, openDocument } from "../../node/src/wire/document.js";
import { normalizeUsage } from "../../oracle/normalize.js";
import { simulateEpoch } from "../../oracle/normalize-sim.js";
import { OracleStore } from "../../oracle/store.js";
import { offlineUsageIntake } from "../../test/helpers/oracle-intake.js";
import { fmt, table, type BenchSection } from "./types.js";

const ENTRIES = 16;

function reportsOf(count: number): { reports: UsageReport[]; node: Ed25519KeyPair } {
  const node = generateEd25519KeyPair();
  const t0 = Math.floor(Date.now() / 1000) - 10 * count;
  const reports = Array.from({ length: count }, (_, i) =>
    signUsageReport({
      kind: "node",
      secretKey: node.secretKey,
      from: t0 + i * 10,
      to: t0 + i * 10 + 10,
      entries: Array.from({ length: ENTRIES }, (_, j) => ({
        stream: new Uint8Array(16).fill(j),
        peer: new Uint8Array(16).fill((i + j) % 256),
        direction: "sent" as const,
        bytes: 1000 + i,
      })),
    }),
  );
  return { reports, node };
}

async function intakeRate(dir: string, reports: UsageReport[], node: string): Promise<number> {
  const store = new OracleStore(join(dir, "intake.sqlite"));
  try {
    const intake = offlineUsageIntake(store, node);
    const start = performance.now();
    for (const r of reports) await intake.submit(r.bytes);
    return (reports.length * 1000) / (performance.now() - start);
  } finally {
    store.close();
  }
}

/** Ed25519 verification alone, over the exact messages the reports' signatures cover. */
function verifyRate(reports: UsageReport[], node: Ed25519KeyPair): number {
  const messages = reports.map((r) =>
    documentSigningMessage(USAGE_REPORT_TYPE, openDocument(r.bytes, { type: USAGE_REPORT_TYPE, maxBytes: 48 * 1024, maxDepth: 4 }).bodyBytes),
  );
  const signed = messages.map((m) => ({ m, sig: ed25519Sign(node.secretKey, m) }));
  const start = performance.now();
  for (const { m, sig } of signed) if (!ed25519Verify(node.publicKey, m, sig)) throw new Error("bench: a report does not verify");
  return (signed.length * 1000) / (performance.now() - start);
}

function insertRate(dir: string, reports: UsageReport[]): number {
  const db = new Database(join(dir, "raw.sqlite"));
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.exec("CREATE TABLE r (hash TEXT PRIMARY KEY, doc BLOB NOT NULL)");
    const insert = db.prepare("INSERT INTO r (hash, doc) VALUES (?, ?)");
    const start = performance.now();
    for (const r of reports) insert.run(r.hash, r.bytes);
    return (reports.length * 1000) / (performance.now() - start);
  } finally {
    db.close();
  }
}

export async function run(): Promise<BenchSection> {
  const dir = mkdtempSync(join(tmpdir(), "psp-bench-rewards-"));
  try {
    const { reports, node } = reportsOf(1500);
    const intake = await intakeRate(dir, reports, Buffer.from(node.publicKey).toString("hex"));
    const verify = verifyRate(reports, node);
    const insert = insertRate(dir, reports);

    // An epoch of 10,000 nodes and 100,000 sessions from the normalization's own simulator.
    const sim = simulateEpoch({ nodes: 10_000, sessions: 100_000, seed: 16 });
    let entries = 0;
    for (const r of sim.reports) entries += r.entries.length;
    const t0 = performance.now();
    const result = normalizeUsage({ reports: sim.reports, caps: sim.caps, operators: sim.operators, weiPerByte: 1_000_000n, epochBudget: 10n ** 30n });
    const t1 = performance.now();
    const tree = buildRewardTree(result.perOperator);
    const t2 = performance.now();
    // Baseline: one pass summing every entry's bytes per sender key, the least any rule over these reports does.
    const sums = new Map<string, number>();
    const b0 = performance.now();
    for (const r of sim.reports) {
      const key = Buffer.from(r.reporter).toString("hex");
      for (const e of r.entries) if (e.direction === "sent") sums.set(key, (sums.get(key) ?? 0) + e.bytes);
    }
    const baselineMs = performance.now() - b0;
    const normalizeMs = t1 - t0;
    const treeMs = t2 - t1;
    const operators = new Set([...sim.operators.values()].map((a) => getAddress(a))).size;

    const markdown = [
      `Usage intake by one oracle (${ENTRIES}-entry node reports, ${fmt(reports.length)} in a row, each synced to SQLite before it is acknowledged) against the same run's raw Ed25519 verification and raw SQLite insert (WAL, synchronous FULL, one transaction per row):`,
      "",
      table(
        ["measure", "per second", "intake ÷ it"],
        [
          ["intake (decode, verify, checks, store + 2 outbox rows)", fmt(intake), "1.00"],
          ["raw Ed25519 verify of the same reports", fmt(verify), fmt(intake / verify, 3)],
          ["raw SQLite insert of the same rows", fmt(insert), fmt(intake / insert, 3)],
        ],
      ),
      "",
      `An epoch's root for ${fmt(10_000)} nodes and ${fmt(100_000)} viewer sessions (${fmt(sim.reports.length)} reports, ${fmt(entries)} entries, ${fmt(result.edges)} paying edges, ${fmt(operators)} operators), against one pass summing the same entries per sender:`,
      "",
      table(
        ["step", "ms", "÷ baseline"],
        [
          ["normalization (normalizeUsage)", fmt(normalizeMs), fmt(normalizeMs / baselineMs, 1)],
          ["cumulative reward tree (buildRewardTree)", fmt(treeMs), fmt(treeMs / baselineMs, 1)],
          ["root, total", fmt(normalizeMs + treeMs), fmt((normalizeMs + treeMs) / baselineMs, 1)],
          ["baseline: sum per sender", fmt(baselineMs, 1), "1.0"],
        ],
      ),
    ].join("\n");
    return {
      title: "Usage reports and reward roots (issue 16)",
      markdown,
      figures: {
        intakePerSecond: intake,
        verifyPerSecond: verify,
        insertPerSecond: insert,
        intakeVsInsert: intake / insert,
        epochRoot: { nodes: 10_000, sessions: 100_000, reports: sim.reports.length, entries, normalizeMs, treeMs, baselineMs, root: tree.root },
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

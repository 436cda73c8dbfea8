/**
 * A child process for the SIGKILL test (test/integration/oracle-intake-kill.test.ts):
 * an oracle's usage intake on a real SQLite store at argv[2], fed one hex
 * report per stdin line, printing "ack <hash>" only once `submit` resolved
 * (the oracle's acknowledgement). Its chain facts are fixed: one epoch
 * spanning every window the parent signs, the parent's node listed.
 */
import { createInterface } from "node:readline";
import { silentLogger } from "../../node/src/log.js";
import { OracleStore } from "../../oracle/store.js";
import { createUsageIntake } from "../../oracle/usage.js";

const [storePath, listedNode] = process.argv.slice(2) as [string, string];
const store = new OracleStore(storePath);
const intake = createUsageIntake({
  store,
  clock: async () => ({ genesis: 0, epochLength: 2 ** 31 }),
  oracleKeys: async () => new Set<string>(),
  // Two peers, so every report is also queued for replication in the same transaction.
  peers: async () => ["aa".repeat(32), "bb".repeat(32)],
  isListedNode: (key) => key === listedNode,
  receipts: {
    oracleKeys: async () => [],
    verifyInclusion: async () => false,
    isRevoked: async () => false,
    blindKey: async () => undefined,
    isOracleSigner: async () => false,
  },
  logger: silentLogger(),
});
process.stdout.write("ready\n");
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const { hash } = await intake.submit(new Uint8Array(Buffer.from(line.trim(), "hex")));
  process.stdout.write(`ack ${hash}\n`);
}

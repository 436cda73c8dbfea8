/**
 * A child process for the SIGKILL test (test/integration/oracle-intake-kill.test.ts):
 * an oracle's usage intake on a real SQLite store at argv[2], fed one hex
 * report per stdin line, printing "ack <hash>" only once `submit` resolved
 * (the oracle's acknowledgement). Its chain facts are fixed (oracle-intake.ts).
 */
import { createInterface } from "node:readline";
import { OracleStore } from "../../oracle/store.js";
import { offlineUsageIntake } from "./oracle-intake.js";

const [storePath, listedNode] = process.argv.slice(2) as [string, string];
const store = new OracleStore(storePath);
const intake = offlineUsageIntake(store, listedNode);
process.stdout.write("ready\n");
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const { hash } = await intake.submit(new Uint8Array(Buffer.from(line.trim(), "hex")));
  process.stdout.write(`ack ${hash}\n`);
}

/**
 * An oracle's usage intake (oracle/usage.ts) on a real store with fixed chain
 * facts, for the SIGKILL test's child process and the intake benchmark: one
 * epoch spanning every window anyone signs, one listed node, two peers to
 * queue each report for, no oracle set and no receipts (node reports without
 * anchors need neither).
 */
import { silentLogger } from "../../node/src/log.js";
import type { OracleStore } from "../../oracle/store.js";
import { createUsageIntake, type UsageIntake } from "../../oracle/usage.js";

export function offlineUsageIntake(store: OracleStore, listedNodeHex: string): UsageIntake {
  return createUsageIntake({
    store,
    clock: async () => ({ genesis: 0, epochLength: 2 ** 31 }),
    oracleKeys: async () => new Set<string>(),
    peers: async () => ["aa".repeat(32), "bb".repeat(32)],
    isListedNode: (key) => key === listedNodeHex,
    receipts: {
      oracleKeys: async () => [],
      verifyInclusion: async () => false,
      isRevoked: async () => false,
      blindKey: async () => undefined,
      isOracleSigner: async () => false,
    },
    logger: silentLogger(),
  });
}

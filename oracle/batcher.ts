/**
 * Commits this oracle's linkable receipts to OracleReceipts in Merkle
 * batches, and keeps each receipt's inclusion proof for its producer.
 *
 * Owns the batch: the receipt hashes not yet committed (oldest first, at
 * most `maxBatch`), as an OpenZeppelin StandardMerkleTree over ["bytes32"]
 * (leaf keccak256(keccak256(abi.encode(hash))), pairs sorted: exactly
 * OracleReceipts.receiptLeaf and MerkleProof), committed with
 * `commitBatch(root, count)` every `intervalMs`, or sooner once `maxBatch`
 * are waiting. The batch id the chain assigns and every proof are written to
 * the store in one transaction after the transaction is mined.
 *
 * A failed commit is logged and retried next tick. A crash after the
 * transaction is mined but before the store is written commits those
 * receipts again in a later batch (two valid inclusions; harmless).
 *
 * Trusts: the chain writer it is given (the oracle's signer) and the store.
 */
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import type { Hex } from "viem";
import { logFailure, type Logger } from "../node/src/log.js";
import type { OracleStore } from "./store.js";

export const DEFAULT_BATCH_INTERVAL_MS = 10_000;
export const DEFAULT_MAX_BATCH = 1024;

export interface BatcherOptions {
  store: OracleStore;
  /** This oracle's node key, hex without 0x (its own rows only are committed). */
  oracle: string;
  /** Sends commitBatch(root, count), waits for it to be mined, returns the batch id. */
  commit: (root: Hex, count: number) => Promise<bigint>;
  intervalMs?: number;
  maxBatch?: number;
  now?: () => number;
  logger: Logger;
}

export interface Batcher {
  /** Commits what is pending now (one batch at a time); resolves with the batch id, or undefined when nothing was pending or the commit failed. */
  flush(): Promise<bigint | undefined>;
  /** A receipt was stored: commit early once maxBatch are waiting. */
  poke(): void;
  stats(): { batches: number; committed: number; failures: number };
  close(): void;
}

/** The tree of a batch (exported for tests and the bench). */
export function receiptTree(hashes: readonly Hex[]): StandardMerkleTree<[Hex]> {
  return StandardMerkleTree.of(
    hashes.map((h) => [h] as [Hex]),
    ["bytes32"],
  );
}

export function createBatcher(opts: BatcherOptions): Batcher {
  const maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
  const now = opts.now ?? Date.now;
  const stats = { batches: 0, committed: 0, failures: 0 };
  let running: Promise<bigint | undefined> | undefined;
  let pending = 0;

  const once = async (): Promise<bigint | undefined> => {
    const rows = opts.store.uncommitted(opts.oracle, maxBatch);
    if (rows.length === 0) return undefined;
    const tree = receiptTree(rows.map((r) => r.receiptHash));
    try {
      const batchId = await opts.commit(tree.root as Hex, rows.length);
      opts.store.recordBatch(
        batchId,
        tree.root as Hex,
        Math.floor(now() / 1000),
        rows.map((r, i) => ({ rowId: r.rowId, proof: tree.getProof(i) as Hex[] })),
      );
      stats.batches++;
      stats.committed += rows.length;
      pending = 0;
      opts.logger.info({ batchId: batchId.toString(), count: rows.length }, "committed a receipt batch");
      return batchId;
    } catch (err) {
      stats.failures++;
      logFailure(opts.logger, err, "commit a receipt batch", "warn", { count: rows.length });
      return undefined;
    }
  };
  const flush = (): Promise<bigint | undefined> => {
    if (running) return running.then(() => flush());
    running = once().finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => void flush(), opts.intervalMs ?? DEFAULT_BATCH_INTERVAL_MS);
  timer.unref();
  return {
    flush,
    poke() {
      if (++pending >= maxBatch) void flush();
    },
    stats: () => ({ ...stats }),
    close: () => clearInterval(timer),
  };
}

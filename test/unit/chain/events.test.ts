/**
 * Confirmation-depth logic of node/src/chain/events.ts: the pure planner and
 * decision function, and the poller against a simulated chain that reorgs.
 */
import { describe, expect, it } from "vitest";
import { keccak256, toHex, type Address, type Hex } from "viem";
import { applyPoll, confirmedLogs, createEventFollower, planPoll, selectLogs, type BlockRef, type ChainLog, type EventSource } from "../../../node/src/chain/events.js";

interface SimLog extends ChainLog {
  transactionHash: Hex;
}

/** A chain of blocks, each with a hash and the transactions (one log each) it holds. */
class SimChain implements EventSource<SimLog> {
  blocks: { hash: Hex; txs: string[] }[] = [{ hash: keccak256(toHex("genesis")), txs: [] }];
  private salt = 0;

  mine(txs: string[] = []): void {
    this.blocks.push({ hash: keccak256(toHex(`block-${this.blocks.length}-${this.salt++}`)), txs });
  }

  /** Drops every block from `fromBlock` on and mines `replacement` in their place. */
  reorg(fromBlock: number, replacement: string[][]): void {
    this.blocks.length = fromBlock;
    for (const txs of replacement) this.mine(txs);
  }

  async getBlockNumber(): Promise<bigint> {
    return BigInt(this.blocks.length - 1);
  }

  async getBlock({ blockNumber }: { blockNumber: bigint }) {
    const block = this.blocks[Number(blockNumber)];
    if (!block) throw new Error(`no block ${blockNumber}`);
    return { number: blockNumber, hash: block.hash };
  }

  async getLogs({ fromBlock, toBlock }: { address: Address | Address[]; fromBlock: bigint; toBlock: bigint }): Promise<SimLog[]> {
    const out: SimLog[] = [];
    for (let n = Number(fromBlock); n <= Number(toBlock) && n < this.blocks.length; n++) {
      const block = this.blocks[n]!;
      block.txs.forEach((tx, i) => out.push({ blockNumber: BigInt(n), blockHash: block.hash, logIndex: i, transactionHash: toHex(tx, { size: 32 }) }));
    }
    return out;
  }
}

const txName = (log: SimLog) => Buffer.from(log.transactionHash.slice(2), "hex").toString("utf8").replace(/\0+$/, "");
const address = "0x0000000000000000000000000000000000000001" as Address;

function follow(chain: SimChain, confirmations: number) {
  const delivered: string[] = [];
  const reorgs: BlockRef[] = [];
  const follower = createEventFollower({
    source: chain,
    address,
    confirmations,
    startBlock: 1n,
    onLogs: (logs) => delivered.push(...logs.map(txName)),
    onDeepReorg: (at) => reorgs.push(at),
  });
  return { follower, delivered, reorgs };
}

describe("planPoll", () => {
  it("waits until a block is `confirmations` deep, then fetches in bounded ranges", () => {
    const opts = { confirmations: 3, startBlock: 10n };
    expect(planPoll({ delivered: null }, 12n, opts)).toEqual({ kind: "idle", reason: "not-deep-enough" });
    expect(planPoll({ delivered: null }, 13n, opts)).toEqual({ kind: "fetch", fromBlock: 10n, toBlock: 10n });
    expect(planPoll({ delivered: { number: 10n, hash: "0x01" } }, 13n, opts)).toEqual({ kind: "idle", reason: "not-deep-enough" });
    expect(planPoll({ delivered: { number: 10n, hash: "0x01" } }, 5000n, { ...opts, maxRange: 100n })).toEqual({ kind: "fetch", fromBlock: 11n, toBlock: 110n });
    expect(planPoll({ delivered: null }, 10n, { confirmations: 0, startBlock: 10n })).toEqual({ kind: "fetch", fromBlock: 10n, toBlock: 10n });
    expect(() => planPoll({ delivered: null }, 10n, { confirmations: -1, startBlock: 0n })).toThrow(/non-negative/);
  });
});

describe("applyPoll and selectLogs", () => {
  const log = (n: bigint, hash: Hex, i: number, removed = false): ChainLog => ({ blockNumber: n, blockHash: hash, logIndex: i, transactionHash: "0xaa", removed });

  it("delivers mined, in-range, non-removed logs once, in chain order", () => {
    const logs = [log(5n, "0x05", 1), log(4n, "0x04", 0), log(5n, "0x05", 0), log(5n, "0x05", 0), log(6n, "0x06", 0), log(4n, "0x04", 1, true)];
    expect(selectLogs(logs, 4n, 5n).map((l) => [l.blockNumber, l.logIndex])).toEqual([[4n, 0], [5n, 0], [5n, 1]]);
    const outcome = applyPoll({ delivered: null }, { plan: { fromBlock: 4n, toBlock: 5n }, logs, toBlock: { number: 5n, hash: "0x05" }, deliveredHashNow: null });
    expect(outcome.kind).toBe("deliver");
    expect(outcome.state).toEqual({ delivered: { number: 5n, hash: "0x05" } });
  });

  it("asks to retry when the header of the last block disagrees with its logs", () => {
    const outcome = applyPoll({ delivered: null }, { plan: { fromBlock: 4n, toBlock: 5n }, logs: [log(5n, "0x05", 0)], toBlock: { number: 5n, hash: "0xff" }, deliveredHashNow: null });
    expect(outcome).toMatchObject({ kind: "retry", state: { delivered: null } });
  });

  it("reports a deep reorg when the last delivered block is no longer canonical", () => {
    const state = { delivered: { number: 7n, hash: "0x07" as Hex } };
    const outcome = applyPoll(state, { plan: { fromBlock: 8n, toBlock: 9n }, logs: [], toBlock: { number: 9n, hash: "0x09" }, deliveredHashNow: "0x77" });
    expect(outcome).toEqual({ kind: "deep-reorg", at: state.delivered, state: { delivered: null } });
  });

  it("confirmedLogs keeps only deep logs whose block is still canonical", () => {
    const canonical = new Map<bigint, Hex>([[3n, "0x03"], [4n, "0x04"], [5n, "0x05"]]);
    const logs = [log(3n, "0x03", 0), log(4n, "0xdead", 0), log(4n, "0x04", 2), log(5n, "0x05", 0)];
    const kept = confirmedLogs(logs, 6n, 2, (n) => canonical.get(n));
    expect(kept.map((l) => [l.blockNumber, l.blockHash])).toEqual([[3n, "0x03"], [4n, "0x04"]]);
  });
});

describe("event follower on a chain that reorgs", () => {
  it("never acts on a transaction dropped by a reorg shallower than the confirmation depth", async () => {
    const chain = new SimChain();
    const { follower, delivered, reorgs } = follow(chain, 3);
    chain.mine(["a1"]);
    chain.mine();
    chain.mine(["dropped"]);
    chain.mine();
    await follower.pollOnce();
    expect(delivered).toEqual(["a1"]); // head 4: only blocks <= 1 are 3 deep
    // A 2-block reorg replaces blocks 3 and 4: "dropped" vanishes, "b1" and "b2" appear.
    chain.reorg(3, [["b1"], ["b2"]]);
    await follower.pollOnce();
    expect(delivered).toEqual(["a1"]);
    for (let i = 0; i < 3; i++) chain.mine();
    await follower.pollOnce();
    expect(delivered).toEqual(["a1", "b1", "b2"]);
    expect(reorgs).toEqual([]);
    expect(follower.state.delivered?.number).toBe(4n);
  });

  it("reports a reorg deeper than the depth and re-delivers from the start", async () => {
    const chain = new SimChain();
    const { follower, delivered, reorgs } = follow(chain, 1);
    chain.mine(["x1"]);
    chain.mine(["x2"]);
    chain.mine();
    await follower.pollOnce();
    expect(delivered).toEqual(["x1", "x2"]);
    const orphaned = follower.state.delivered!;
    chain.reorg(2, [["y2"], [], []]);
    await follower.pollOnce();
    expect(reorgs).toEqual([orphaned]);
    expect(delivered).toEqual(["x1", "x2", "x1", "y2"]);
  });

  it("with depth 0 delivers the head's logs at once", async () => {
    const chain = new SimChain();
    const { follower, delivered } = follow(chain, 0);
    chain.mine(["now"]);
    await follower.pollOnce();
    expect(delivered).toEqual(["now"]);
  });
});

/**
 * OracleReceipts: batch commitments by current oracles, Merkle verification, and
 * revocation (the committing oracle at once, any other receipt by a quorum of oracle nodes).
 */
import { describe, expect, it } from "vitest";
import { keccak256, parseEther, toHex, type Hex } from "viem";
import { addNode, addOracles, deployCore, ROLE_AUTHORITY } from "./helpers/core.js";
import { buildTree, receiptLeaf } from "./helpers/merkle.js";

const receipts = Array.from({ length: 7 }, (_, i) => keccak256(toHex(`receipt-${i}`)));

describe("OracleReceipts", () => {
  it("commits, verifies and revokes receipts", async () => {
    const core = await deployCore();
    const [oracleA, oracleB, oracleC, oracleD] = await addOracles(core, 4); // revocation quorum ceil(4 * 0.6667) = 3
    const c = core.receipts;
    const a = core.viem.assertions;
    const tree = buildTree(receipts.map(receiptLeaf));
    expect(await c.read.receiptLeaf([receipts[0]!])).toBe(receiptLeaf(receipts[0]!));

    await a.emitWithArgs(c.write.commitBatch([tree.root, 7], { account: oracleA!.account }), c, "BatchCommitted", [
      1n,
      oracleA!.account.address,
      tree.root,
      7,
    ]);
    expect(await c.read.batchCount()).toBe(1n);
    const batch = await c.read.getBatch([1n]);
    expect(batch.root).toBe(tree.root);
    expect(batch.count).toBe(7);
    expect(batch.oracle.toLowerCase()).toBe(oracleA!.account.address.toLowerCase());

    for (const [i, r] of receipts.entries()) expect(await c.read.verifyReceipt([1n, r, tree.proof(i)])).toBe(true);
    const stranger: Hex = keccak256(toHex("not-a-receipt"));
    expect(await c.read.verifyReceipt([1n, stranger, tree.proof(0)])).toBe(false);
    expect(await c.read.verifyReceipt([1n, receipts[1]!, tree.proof(0)])).toBe(false);
    expect(await c.read.verifyReceipt([2n, receipts[0]!, tree.proof(0)])).toBe(false);

    await a.revertWithCustomError(c.write.revokeReceipt([1n, stranger, tree.proof(0)], { account: oracleB!.account }), c, "InvalidProof");
    await a.revertWithCustomError(c.write.revokeReceipt([9n, receipts[0]!, tree.proof(0)], { account: oracleB!.account }), c, "UnknownBatch");
    // The committing oracle revokes its own receipt at once.
    await a.emitWithArgs(c.write.revokeReceipt([1n, receipts[3]!, tree.proof(3)], { account: oracleA!.account }), c, "ReceiptRevoked", [
      1n,
      receipts[3]!,
      oracleA!.account.address,
    ]);
    expect(await c.read.isRevoked([1n, receipts[3]!])).toBe(true);
    expect(await c.read.verifyReceipt([1n, receipts[3]!, tree.proof(3)])).toBe(false);
    expect(await c.read.verifyReceipt([1n, receipts[4]!, tree.proof(4)])).toBe(true);
    await a.revertWithCustomError(c.write.revokeReceipt([1n, receipts[3]!, tree.proof(3)], { account: oracleB!.account }), c, "AlreadyRevoked");
    // Another oracle's receipt needs a quorum of oracle nodes: two votes do not revoke, the third does.
    const nodeB = await core.registry.read.nodeKeyOfSigner([oracleB!.account.address]);
    await a.emitWithArgs(c.write.revokeReceipt([1n, receipts[4]!, tree.proof(4)], { account: oracleB!.account }), c, "RevocationVoted", [1n, receipts[4]!, nodeB, 1n]);
    await a.revertWithCustomErrorWithArgs(c.write.revokeReceipt([1n, receipts[4]!, tree.proof(4)], { account: oracleB!.account }), c, "AlreadyVoted", [nodeB]);
    await c.write.revokeReceipt([1n, receipts[4]!, tree.proof(4)], { account: oracleC!.account });
    expect(await c.read.isRevoked([1n, receipts[4]!])).toBe(false);
    expect(await c.read.revocationVotes([1n, receipts[4]!])).toBe(2n);
    await a.emitWithArgs(c.write.revokeReceipt([1n, receipts[4]!, tree.proof(4)], { account: oracleD!.account }), c, "ReceiptRevoked", [
      1n,
      receipts[4]!,
      oracleD!.account.address,
    ]);
    expect(await c.read.isRevoked([1n, receipts[4]!])).toBe(true);

    const second = await c.simulate.commitBatch([tree.root, 1], { account: oracleB!.account.address });
    expect(second.result).toBe(2n);
  });

  it("rejects non-oracles and empty batches", async () => {
    const core = await deployCore();
    const [oracle] = await addOracles(core, 1);
    const authority = core.users[5]!;
    await addNode(core, { operator: authority, roles: ROLE_AUTHORITY, stake: parseEther("5000") });
    const c = core.receipts;
    const a = core.viem.assertions;
    const root = keccak256(toHex("root"));
    await a.revertWithCustomErrorWithArgs(c.write.commitBatch([root, 1], { account: authority.account }), c, "NotOracle", [
      authority.account.address,
    ]);
    await a.revertWithCustomError(c.write.commitBatch([`0x${"00".repeat(32)}`, 1], { account: oracle!.account }), c, "EmptyRoot");
    await a.revertWithCustomError(c.write.commitBatch([root, 0], { account: oracle!.account }), c, "EmptyBatch");
    await a.revertWithCustomError(c.read.getBatch([1n]), c, "UnknownBatch");
    await c.write.commitBatch([root, 1], { account: oracle!.account });
    await a.revertWithCustomError(c.write.revokeReceipt([1n, root, []], { account: authority.account }), c, "NotOracle");
    // An oracle that unstakes below the minimum loses the right to commit.
    await core.registry.write.requestUnstake([(await core.registry.read.nodeKeyOfSigner([oracle!.account.address])), 1n], {
      account: oracle!.account,
    });
    await a.revertWithCustomError(c.write.commitBatch([root, 1], { account: oracle!.account }), c, "NotOracle");
  });
});

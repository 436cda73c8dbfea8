/**
 * OracleReceipts' blind key registry: a current oracle publishes an RFC 9474
 * RSA key (DER SPKI) for one parameter class and window; the key id is
 * keccak256(spki); only its publisher revokes it; `isBlindKeyValid` holds only
 * while the key is unrevoked, in its window and its oracle in the set.
 */
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { bytesToHex, keccak256, parseEther } from "viem";
import { ROLE_AUTHORITY, addNode, addOracles, deployCore, nodeKeyOf } from "./helpers/core.js";

const spkiOf = (bits: number) => bytesToHex(generateKeyPairSync("rsa", { modulusLength: bits }).publicKey.export({ format: "der", type: "spki" }));

describe("OracleReceipts blind keys", () => {
  it("registers, reads, validates by window and revokes", async () => {
    const core = await deployCore();
    const [oracleA, oracleB] = await addOracles(core, 2);
    const c = core.receipts;
    const a = core.viem.assertions;
    const now = BigInt(await core.networkHelpers.time.latest());
    const spki = spkiOf(2048);
    const keyId = keccak256(spki);
    const from = now;
    const until = now + 86400n;
    await a.emitWithArgs(c.write.registerBlindKey([spki, 2500, 7200, 5, from, until], { account: oracleA!.account }), c, "BlindKeyRegistered", [
      keyId,
      oracleA!.account.address,
      2500,
      7200,
      5,
      from,
      until,
    ]);
    const key = await c.read.getBlindKey([keyId]);
    expect(key.spki).toBe(spki);
    expect(key.oracle.toLowerCase()).toBe(oracleA!.account.address.toLowerCase());
    expect([key.bitrateKbps, key.maxDurationSeconds, key.formatFlags, key.validFrom, key.validUntil, key.revoked]).toEqual([2500, 7200, 5, from, until, false]);
    expect(await c.read.isBlindKeyValid([keyId, now + 10n])).toBe(true);
    expect(await c.read.isBlindKeyValid([keyId, from - 1n])).toBe(false);
    expect(await c.read.isBlindKeyValid([keyId, until])).toBe(false);
    await a.revertWithCustomErrorWithArgs(c.write.registerBlindKey([spki, 1, 1, 1, from, until], { account: oracleB!.account }), c, "BlindKeyExists", [keyId]);
    // Another oracle cannot revoke it; its publisher can, once.
    await a.revertWithCustomErrorWithArgs(c.write.revokeBlindKey([keyId], { account: oracleB!.account }), c, "NotBlindKeyOwner", [
      keyId,
      oracleB!.account.address,
    ]);
    await a.emitWithArgs(c.write.revokeBlindKey([keyId], { account: oracleA!.account }), c, "BlindKeyRevoked", [keyId, oracleA!.account.address]);
    expect(await c.read.isBlindKeyValid([keyId, now + 10n])).toBe(false);
    expect((await c.read.getBlindKey([keyId])).revoked).toBe(true);
    await a.revertWithCustomError(c.write.revokeBlindKey([keyId], { account: oracleA!.account }), c, "BlindKeyAlreadyRevoked");
    const unknown = keccak256("0x01");
    await a.revertWithCustomErrorWithArgs(c.read.getBlindKey([unknown]), c, "UnknownBlindKey", [unknown]);
    await a.revertWithCustomError(c.write.revokeBlindKey([unknown], { account: oracleA!.account }), c, "UnknownBlindKey");
  });

  it("refuses non-oracles, bad lengths and bad windows; a key stops being valid when its oracle leaves the set", async () => {
    const core = await deployCore();
    const [oracle] = await addOracles(core, 1);
    const authority = core.users[5]!;
    await addNode(core, { operator: authority, roles: ROLE_AUTHORITY, stake: parseEther("5000") });
    const c = core.receipts;
    const a = core.viem.assertions;
    const now = BigInt(await core.networkHelpers.time.latest());
    const spki = spkiOf(2048);
    await a.revertWithCustomErrorWithArgs(c.write.registerBlindKey([spki, 1, 1, 1, now, now + 60n], { account: authority.account }), c, "NotOracle", [
      authority.account.address,
    ]);
    await a.revertWithCustomError(c.write.registerBlindKey(["0x1234", 1, 1, 1, now, now + 60n], { account: oracle!.account }), c, "InvalidBlindKeyLength");
    await a.revertWithCustomError(c.write.registerBlindKey([spki, 1, 1, 1, now, now], { account: oracle!.account }), c, "InvalidBlindKeyWindow");
    await a.revertWithCustomError(c.write.registerBlindKey([spki, 1, 1, 1, now - 100n, now - 1n], { account: oracle!.account }), c, "InvalidBlindKeyWindow");
    await a.revertWithCustomError(c.write.registerBlindKey([spki, 1, 1, 1, now, now + 31n * 86400n], { account: oracle!.account }), c, "InvalidBlindKeyWindow");
    const big = spkiOf(4096);
    await c.write.registerBlindKey([big, 1, 1, 1, now, now + 600n], { account: oracle!.account });
    const keyId = keccak256(big);
    expect(await c.read.isBlindKeyValid([keyId, now + 5n])).toBe(true);
    // Unbonding all of its stake takes the oracle out of the set.
    await core.registry.write.requestUnstake([nodeKeyOf("oracle-0"), core.params.minStakeOracle], { account: oracle!.account });
    expect(await core.registry.read.isOracleSigner([oracle!.account.address])).toBe(false);
    expect(await c.read.isBlindKeyValid([keyId, now + 5n])).toBe(false);
  });
});

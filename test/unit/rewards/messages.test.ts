/**
 * Issue 16's oracle messages (node/src/stream/oracle-messages.ts): the usage
 * report, its acknowledgement and replication, reward proofs, and the viewer
 * key in session-request round-trip; amounts are minimal big-endian uint256;
 * the node-link size cap admits a full report that the circuit cap refuses;
 * malformed ones are refused with typed kinds.
 */
import { getAddress } from "viem";
import { describe, expect, it } from "vitest";
import { OracleError } from "../../../node/src/stream/oracle-errors.js";
import {
  amountToBytes,
  decodeOracleRequest,
  decodeOracleResponse,
  encodeOracleMessage,
  MAX_ORACLE_LINK_MESSAGE_BYTES,
  type OracleRequest,
  type OracleResponse,
} from "../../../node/src/stream/oracle-messages.js";
import { encodeCanonical } from "../../../node/src/wire/canonical.js";

const kindOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof OracleError) return err.kind;
    throw err;
  }
};

describe("issue 16 oracle messages", () => {
  it("requests round-trip", () => {
    const requests: OracleRequest[] = [
      { t: "session-request", seed: new Uint8Array(32).fill(1), x: new Uint8Array(32).fill(2), viewerKey: new Uint8Array(32).fill(3) },
      { t: "usage-report", report: new Uint8Array(300).fill(4) },
      { t: "reports-replicate", reports: [new Uint8Array(10).fill(5), new Uint8Array(20).fill(6)] },
      { t: "reward-proof-request", account: getAddress("0xabcdef0123456789abcdef0123456789abcdef01") },
    ];
    for (const r of requests) expect(decodeOracleRequest(encodeOracleMessage(r))).toEqual(r);
  });

  it("responses round-trip; amounts are minimal big-endian uint256", () => {
    const responses: OracleResponse[] = [
      { t: "report-ack", hash: `0x${"ab".repeat(32)}`, dup: false },
      { t: "ack", n: 64 },
      {
        t: "reward-proof",
        epoch: 7,
        amount: (1n << 256n) - 1n,
        proof: [`0x${"01".repeat(32)}`],
        root: `0x${"02".repeat(32)}`,
        epochs: [
          { epoch: 6, amount: 0n },
          { epoch: 7, amount: 256n },
        ],
      },
    ];
    for (const r of responses) expect(decodeOracleResponse(encodeOracleMessage(r))).toEqual(r);
    expect(amountToBytes(0n)).toEqual(new Uint8Array(0));
    expect(amountToBytes(256n)).toEqual(Uint8Array.of(1, 0));
    expect(kindOf(() => amountToBytes(1n << 256n))).toBe("bad-argument");
    expect(kindOf(() => amountToBytes(-1n))).toBe("bad-argument");
  });

  it("a 48 KiB report fits the node-link cap, not the circuit cap; malformed messages are refused", () => {
    const big = encodeOracleMessage({ t: "usage-report", report: new Uint8Array(48 * 1024).fill(1) });
    expect(kindOf(() => decodeOracleRequest(big))).toBe("too-large");
    expect(decodeOracleRequest(big, { maxBytes: MAX_ORACLE_LINK_MESSAGE_BYTES }).t).toBe("usage-report");
    const over = encodeOracleMessage({ t: "usage-report", report: new Uint8Array(48 * 1024 + 1) });
    expect(kindOf(() => decodeOracleRequest(over, { maxBytes: MAX_ORACLE_LINK_MESSAGE_BYTES }))).toBe("malformed-request");
    const bad: Record<string, unknown>[] = [
      { t: "session-request", v: 1, seed: new Uint8Array(32), x: new Uint8Array(32) }, // no viewer key
      { t: "usage-report", v: 1, report: new Uint8Array(0) },
      { t: "reports-replicate", v: 1, reports: [] },
      { t: "reports-replicate", v: 1, reports: Array.from({ length: 65 }, () => new Uint8Array(1)) },
      { t: "reward-proof-request", v: 1, account: new Uint8Array(19) },
    ];
    for (const m of bad)
      expect(
        kindOf(() => decodeOracleRequest(encodeCanonical(m))),
        String(m.t),
      ).toBe("malformed-request");
    const proof = { t: "reward-proof", v: 1, amount: new Uint8Array(0), epoch: 1, epochs: [], proof: [], root: new Uint8Array(32) };
    expect(decodeOracleResponse(encodeCanonical(proof)).t).toBe("reward-proof");
    for (const m of [
      { ...proof, amount: Uint8Array.of(0, 1) }, // leading zero
      { ...proof, amount: new Uint8Array(33).fill(1) },
      { ...proof, proof: Array.from({ length: 33 }, () => new Uint8Array(32)) },
      { ...proof, epochs: [{ amount: new Uint8Array(0) }] },
      { t: "report-ack", v: 1, dup: 1, hash: new Uint8Array(32) },
    ])
      expect(kindOf(() => decodeOracleResponse(encodeCanonical(m)))).toBe("bad-response");
  });
});

/**
 * A node's stream admission without a reachable chain (node/stream.ts): it
 * is made without waiting for the chain (the node still starts); a
 * well-signed session id is refused "unknown-oracle" while no oracle set has
 * been read; a well-signed receipt is refused with the chain failure; closing
 * stops the re-reads.
 */
import { describe, expect, it } from "vitest";
import { ChainError } from "../../../node/src/chain/errors.js";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { startNodeStreamAdmission } from "../../../node/src/node/stream.js";
import { StreamError } from "../../../node/src/stream/errors.js";
import { signReceipt } from "../../../node/src/stream/receipt.js";
import { signSessionId } from "../../../node/src/stream/session.js";

describe("node stream admission", () => {
  it("starts without a chain, refuses session ids on an unread oracle set and receipts with the chain's error", async () => {
    const started = startNodeStreamAdmission({ chain: { rpcUrl: "http://127.0.0.1:9", deploymentFile: "/nonexistent/psp-deployment.json", refreshMs: 50 } });
    try {
      const oracle = generateEd25519KeyPair();
      const now = Math.floor(Date.now() / 1000);
      const session = signSessionId({ issuedAt: now, expiresAt: now + 600, secretKey: oracle.secretKey });
      let refusal: unknown;
      try {
        started.admission.checkSession(session.bytes, Date.now());
      } catch (err) {
        refusal = err;
      }
      expect(refusal).toBeInstanceOf(StreamError);
      expect((refusal as StreamError).kind).toBe("unknown-oracle");
      const receipt = signReceipt({
        params: { bitrateKbps: 1000, maxDurationSeconds: 600, formatFlags: 0 },
        issuedAt: now,
        expiresAt: now + 600,
        secretKey: oracle.secretKey,
      });
      const receiptRefusal = await started.admission.checkReceipt(receipt.bytes, Date.now()).catch((err: unknown) => err);
      expect(receiptRefusal).toBeInstanceOf(ChainError);
      await new Promise((r) => setTimeout(r, 200));
      expect(started.oracleKeyCount()).toBe(0);
    } finally {
      started.close();
    }
  });
});

/**
 * Stream-creation receipts and viewer session ids (node/src/stream/receipt.ts,
 * session.ts): they round-trip, and every verifier refuses with its typed
 * kind what a landing or distribution node must refuse: malformed, forged,
 * expired, not yet valid, signed by a node outside the oracle set, revoked,
 * uncommitted after the grace period; blind receipts under an unknown,
 * revoked, out-of-window or orphaned key. Times are fixed numbers, never the clock.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { blindRsaBlindSign, generateBlindRsaKey } from "../../node/src/crypto/blind-rsa.js";
import { StreamError, type StreamErrorKind } from "../../node/src/stream/errors.js";
import {
  blindKeyId,
  checkReceiptCommitment,
  decodeBlindReceipt,
  decodeReceipt,
  encodeBlindReceipt,
  finishBlindReceipt,
  inclusionFromCbor,
  inclusionToCbor,
  prepareBlindReceipt,
  receiptReplayKey,
  signReceipt,
  verifyBlindReceipt,
  verifyReceipt,
  verifyReceiptAgainstChain,
  type BlindKeyRecord,
  type ReceiptChainView,
} from "../../node/src/stream/receipt.js";
import { signSessionId, verifySessionId } from "../../node/src/stream/session.js";
import { keccak256 } from "viem";
import { documentSigningMessage } from "../../node/src/wire/document.js";
import { decodeCanonical } from "../../node/src/wire/canonical.js";

const seed = (label: string) => new Uint8Array(createHash("sha256").update(label).digest());
const oracleSeed = seed("oracle-1");
const oracleKey = ed25519PublicKey(oracleSeed);
const otherSeed = seed("not-an-oracle");
const params = { bitrateKbps: 2500, maxDurationSeconds: 7200, formatFlags: 5 };
const T = 1_800_000_000;

function kindOf(fn: () => unknown): StreamErrorKind | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof StreamError) return err.kind;
    throw err;
  }
}
async function kindOfAsync(fn: () => Promise<unknown>): Promise<StreamErrorKind | undefined> {
  try {
    await fn();
    return undefined;
  } catch (err) {
    if (err instanceof StreamError) return err.kind;
    throw err;
  }
}

describe("linkable receipt", () => {
  const r = signReceipt({ params, issuedAt: T, expiresAt: T + 3600, secretKey: oracleSeed });

  it("round-trips and names no identity", () => {
    const d = decodeReceipt(r.bytes);
    expect(d.params).toEqual(params);
    expect(d.id.length).toBe(16);
    expect(d.oracle).toEqual(oracleKey);
    expect(d.receiptHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(r.bytes.length).toBeLessThan(300);
    expect(receiptReplayKey(d)).toBe(`l:0x${Buffer.from(d.id).toString("hex")}`);
  });

  it("receiptHash is keccak256 of the signed message", () => {
    const body = decodeCanonicalBody(r.bytes);
    expect(r.receiptHash).toBe(keccak256(documentSigningMessage("stream-receipt", body)));
  });

  it("verifies for a current oracle within its window", () => {
    expect(verifyReceipt(r.bytes, { oracleKeys: [oracleKey], now: T + 10 }).receiptHash).toBe(r.receiptHash);
  });

  it("refuses forged, expired, not-yet-valid, unknown-oracle and malformed", () => {
    const forged = r.bytes.slice();
    forged[forged.length - 40]! ^= 1; // inside the signature or signer
    expect(kindOf(() => verifyReceipt(forged, { oracleKeys: [oracleKey], now: T }))).toMatch(/forged|malformed/);
    const sigAt = Buffer.from(r.bytes).indexOf(Buffer.from("sig")) + 5; // "sig" then a 2-byte bstr header
    const badSig = r.bytes.slice();
    badSig[sigAt]! ^= 0x80;
    expect(kindOf(() => verifyReceipt(badSig, { oracleKeys: [oracleKey], now: T }))).toBe("forged");
    expect(kindOf(() => verifyReceipt(r.bytes, { oracleKeys: [oracleKey], now: T + 3600 + 61 }))).toBe("expired");
    expect(kindOf(() => verifyReceipt(r.bytes, { oracleKeys: [oracleKey], now: T - 120 }))).toBe("not-yet-valid");
    expect(kindOf(() => verifyReceipt(r.bytes, { oracleKeys: [ed25519PublicKey(otherSeed)], now: T }))).toBe("unknown-oracle");
    const notOracle = signReceipt({ params, issuedAt: T, expiresAt: T + 60, secretKey: otherSeed });
    expect(kindOf(() => verifyReceipt(notOracle.bytes, { oracleKeys: [oracleKey], now: T }))).toBe("unknown-oracle");
    expect(kindOf(() => verifyReceipt(new Uint8Array([0xa0]), { oracleKeys: [oracleKey], now: T }))).toBe("malformed");
    expect(kindOf(() => verifyReceipt(new Uint8Array(600), { oracleKeys: [oracleKey], now: T }))).toBe("malformed");
  });

  it("commitment: accepted when committed or within grace, refused when revoked or uncommitted after grace", () => {
    expect(kindOf(() => checkReceiptCommitment(r, { committed: true, revoked: false }, T + 100_000))).toBeUndefined();
    expect(kindOf(() => checkReceiptCommitment(r, { committed: false, revoked: false }, T + 599, 600))).toBeUndefined();
    expect(kindOf(() => checkReceiptCommitment(r, { committed: false, revoked: false }, T + 600, 600))).toBe("uncommitted");
    expect(kindOf(() => checkReceiptCommitment(r, { committed: true, revoked: true }, T))).toBe("revoked");
  });

  it("inclusion proofs round-trip through CBOR and refuse batch 0", () => {
    const inc = { batchId: 7n, proof: [`0x${"ab".repeat(32)}` as const] };
    expect(inclusionFromCbor(inclusionToCbor(inc))).toEqual(inc);
    expect(kindOf(() => inclusionFromCbor({ b: 0, p: [] }))).toBe("malformed");
  });
});

function decodeCanonicalBody(bytes: Uint8Array): Uint8Array {
  const envelope = decodeCanonical(bytes, { maxBytes: 1024 }) as { body: Uint8Array };
  return envelope.body;
}

describe("blind receipt", () => {
  const sk = generateBlindRsaKey(2048);
  const keyId = blindKeyId(sk.publicKey.spki);
  const record: BlindKeyRecord = {
    keyId,
    spki: sk.publicKey.spki,
    oracle: "0x00000000000000000000000000000000000000aa",
    params,
    validFrom: T,
    validUntil: T + 86400,
    revoked: false,
  };
  const request = prepareBlindReceipt(sk.publicKey.spki);
  const receipt = finishBlindReceipt(request, blindRsaBlindSign(sk, request.blindedMsg));

  it("round-trips; the oracle saw only the blinded message", () => {
    expect(Buffer.from(request.blindedMsg).includes(Buffer.from(request.token))).toBe(false);
    const v = verifyBlindReceipt(receipt.bytes, { key: record, oracleCurrent: true, now: T + 10 });
    expect(v.params).toEqual(params);
    expect(v.token).toEqual(request.token);
    expect(decodeBlindReceipt(receipt.bytes).keyId).toBe(keyId);
    expect(receiptReplayKey(v)).toMatch(/^b:0x/);
  });

  it("refuses unknown, revoked, out-of-window and orphaned keys, and forgeries", () => {
    const opts = { key: record, oracleCurrent: true, now: T + 10 };
    expect(kindOf(() => verifyBlindReceipt(receipt.bytes, { ...opts, key: undefined }))).toBe("unknown-key");
    expect(kindOf(() => verifyBlindReceipt(receipt.bytes, { ...opts, key: { ...record, revoked: true } }))).toBe("revoked");
    expect(kindOf(() => verifyBlindReceipt(receipt.bytes, { ...opts, now: T + 86400 + 61 }))).toBe("expired");
    expect(kindOf(() => verifyBlindReceipt(receipt.bytes, { ...opts, now: T - 61 }))).toBe("not-yet-valid");
    expect(kindOf(() => verifyBlindReceipt(receipt.bytes, { ...opts, oracleCurrent: false }))).toBe("unknown-oracle");
    const otherToken = encodeBlindReceipt({ ...receipt, token: new Uint8Array(32).fill(9) });
    expect(kindOf(() => verifyBlindReceipt(otherToken, opts))).toBe("forged");
    const otherKey = generateBlindRsaKey(2048);
    const underOther = { ...record, keyId: blindKeyId(otherKey.publicKey.spki), spki: otherKey.publicKey.spki };
    const moved = encodeBlindReceipt({ ...receipt, keyId: underOther.keyId });
    expect(kindOf(() => verifyBlindReceipt(moved, { ...opts, key: underOther }))).toBe("forged");
    expect(kindOf(() => verifyBlindReceipt(new Uint8Array(10), opts))).toBe("malformed");
  });

  it("finish refuses a blind signature by another key", () => {
    const other = generateBlindRsaKey(2048);
    const req = prepareBlindReceipt(sk.publicKey.spki);
    const b = req.blindedMsg.slice();
    b[0] = 0;
    expect(kindOf(() => finishBlindReceipt(req, blindRsaBlindSign(other, b)))).toBe("forged");
  });

  it("verifyReceiptAgainstChain dispatches on kind and consults the chain", async () => {
    const linkable = signReceipt({ params, issuedAt: T, expiresAt: T + 3600, secretKey: oracleSeed });
    const state = { revoked: new Set<string>(), committed: new Set<string>() };
    const view: ReceiptChainView = {
      oracleKeys: async () => [oracleKey],
      verifyInclusion: async (_inc, h) => state.committed.has(h) && !state.revoked.has(h),
      isRevoked: async (h) => state.revoked.has(h),
      blindKey: async (id) => (id === keyId ? record : undefined),
      isOracleSigner: async (a) => a === record.oracle,
    };
    const inclusion = { batchId: 1n, proof: [] };
    expect((await verifyReceiptAgainstChain(receipt.bytes, { view, now: T + 5 })).kind).toBe("blind");
    expect((await verifyReceiptAgainstChain(linkable.bytes, { view, now: T + 5 })).kind).toBe("linkable");
    expect(await kindOfAsync(() => verifyReceiptAgainstChain(linkable.bytes, { view, now: T + 5, inclusion }))).toBe("uncommitted");
    expect(await kindOfAsync(() => verifyReceiptAgainstChain(linkable.bytes, { view, now: T + 1000 }))).toBe("uncommitted");
    state.committed.add(linkable.receiptHash);
    expect((await verifyReceiptAgainstChain(linkable.bytes, { view, now: T + 1000, inclusion })).params).toEqual(params);
    state.revoked.add(linkable.receiptHash);
    expect(await kindOfAsync(() => verifyReceiptAgainstChain(linkable.bytes, { view, now: T + 1000, inclusion }))).toBe("revoked");
    expect(await kindOfAsync(() => verifyReceiptAgainstChain(linkable.bytes, { view, now: T + 5 }))).toBe("revoked");
  });
});

describe("session id", () => {
  const s = signSessionId({ issuedAt: T, expiresAt: T + 3600, secretKey: oracleSeed });

  it("verifies for a current oracle; refuses forged, expired, unknown oracle, malformed", () => {
    expect(verifySessionId(s.bytes, { oracleKeys: [oracleKey], now: T + 1 }).sid).toEqual(s.sid);
    const sigAt = Buffer.from(s.bytes).indexOf(Buffer.from("sig")) + 5;
    const forged = s.bytes.slice();
    forged[sigAt]! ^= 1;
    expect(kindOf(() => verifySessionId(forged, { oracleKeys: [oracleKey], now: T }))).toBe("forged");
    expect(kindOf(() => verifySessionId(s.bytes, { oracleKeys: [oracleKey], now: T + 3600 + 61 }))).toBe("expired");
    expect(kindOf(() => verifySessionId(s.bytes, { oracleKeys: [], now: T }))).toBe("unknown-oracle");
    expect(kindOf(() => verifySessionId(new Uint8Array([1, 2, 3]), { oracleKeys: [oracleKey], now: T }))).toBe("malformed");
    const receipt = signReceipt({ params, issuedAt: T, expiresAt: T + 60, secretKey: oracleSeed });
    expect(kindOf(() => verifySessionId(receipt.bytes, { oracleKeys: [oracleKey], now: T }))).toBe("malformed");
  });
});

describe("frozen vectors (test/vectors/stream-receipt.json)", () => {
  interface StreamVector {
    input: {
      oracleSeed: string;
      receiptId: string;
      sessionId: string;
      viewerKey: string;
      params: typeof params;
      issuedAt: number;
      expiresAt: number;
    };
    oracle: string;
    receiptHex: string;
    receiptHash: string;
    sessionHex: string;
  }
  const v = JSON.parse(readFileSync(new URL("../vectors/stream-receipt.json", import.meta.url), "utf8")) as StreamVector;
  const unhex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

  it("decodes the frozen receipt and session id and re-encodes the inputs to the same bytes", () => {
    const r = decodeReceipt(unhex(v.receiptHex));
    expect(Buffer.from(r.id).toString("hex")).toBe(v.input.receiptId);
    expect(r.params).toEqual(v.input.params);
    expect([r.issuedAt, r.expiresAt]).toEqual([v.input.issuedAt, v.input.expiresAt]);
    expect(Buffer.from(r.oracle).toString("hex")).toBe(v.oracle);
    expect(r.receiptHash).toBe(v.receiptHash);
    const again = signReceipt({
      params: v.input.params,
      issuedAt: v.input.issuedAt,
      expiresAt: v.input.expiresAt,
      secretKey: unhex(v.input.oracleSeed),
      id: unhex(v.input.receiptId),
    });
    expect(Buffer.from(again.bytes).toString("hex")).toBe(v.receiptHex);
    const s = verifySessionId(unhex(v.sessionHex), { oracleKeys: [unhex(v.oracle)], now: v.input.issuedAt + 1 });
    expect(Buffer.from(s.sid).toString("hex")).toBe(v.input.sessionId);
    expect(Buffer.from(s.viewerKey).toString("hex")).toBe(v.input.viewerKey);
    const sAgain = signSessionId({
      issuedAt: v.input.issuedAt,
      expiresAt: v.input.expiresAt,
      secretKey: unhex(v.input.oracleSeed),
      sid: unhex(v.input.sessionId),
      viewerKey: unhex(v.input.viewerKey),
    });
    expect(Buffer.from(sAgain.bytes).toString("hex")).toBe(v.sessionHex);
  });
});

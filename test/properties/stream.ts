/**
 * Fuzz properties of the stream-creation receipt and session id decoders
 * (node/src/stream/receipt.ts, session.ts): fed random bytes or mutations of a
 * valid encoding, each decoder either decodes or throws StreamError
 * "malformed" or "forged", never another error; what decodes carries the
 * exact bytes it was given. The oracle message decoders, fed the same, either
 * decode to a message that re-encodes to the same bytes or throw OracleError
 * "malformed-request"/"too-large" (requests) or "bad-response" (responses);
 * the samples they mutate include issue 16's messages (session-request with
 * its viewer key, usage-report, reports-replicate, reward-proof-request,
 * report-ack, reward-proof), also at the node-link size cap.
 * Run briefly by test/unit/stream-receipt-fuzz.test.ts.
 */
import fc from "fast-check";
import { createHash } from "node:crypto";
import { StreamError } from "../../node/src/stream/errors.js";
import { decodeBlindReceipt, decodeReceipt, encodeBlindReceipt, inclusionFromCbor, signReceipt } from "../../node/src/stream/receipt.js";
import { decodeSessionId, signSessionId } from "../../node/src/stream/session.js";
import { decodeCanonical } from "../../node/src/wire/canonical.js";
import { OracleError } from "../../node/src/stream/oracle-errors.js";
import { decodeOracleRequest, decodeOracleResponse, encodeOracleMessage, MAX_ORACLE_LINK_MESSAGE_BYTES } from "../../node/src/stream/oracle-messages.js";
import { bytesOr, check, mutate, target, typedOnly, type FuzzTarget } from "./common.js";

const seed = new Uint8Array(createHash("sha256").update("psp-fuzz-oracle").digest());
const receipt = signReceipt({
  params: { bitrateKbps: 2000, maxDurationSeconds: 3600, formatFlags: 5 },
  issuedAt: 1000,
  expiresAt: 4600,
  secretKey: seed,
}).bytes;
const session = signSessionId({ issuedAt: 1000, expiresAt: 4600, secretKey: seed }).bytes;
const blind = encodeBlindReceipt({
  keyId: `0x${"11".repeat(32)}`,
  token: new Uint8Array(32).fill(2),
  prefix: new Uint8Array(32).fill(3),
  signature: new Uint8Array(256).fill(4),
});

function typedKind(fn: () => { bytes?: Uint8Array }, input: Uint8Array): void {
  const kind = typedOnly([StreamError], () => {
    const out = fn();
    if (out.bytes !== undefined) check(Buffer.compare(out.bytes, input) === 0, "decoded value does not keep its bytes");
  });
  check(kind === undefined || kind === "malformed" || kind === "forged", `unexpected kind ${kind}`);
}

const sampleRequest = encodeOracleMessage({
  t: "receipt-request",
  cert: new Uint8Array(300).fill(1),
  nonce: new Uint8Array(32),
  proof: new Uint8Array(64),
  blinded: new Uint8Array(256).fill(2),
  key: `0x${"22".repeat(32)}`,
});
const sampleResponse = encodeOracleMessage({
  t: "keys",
  keys: [
    {
      keyId: `0x${"33".repeat(32)}`,
      spki: new Uint8Array(294).fill(3),
      params: { bitrateKbps: 1, maxDurationSeconds: 2, formatFlags: 3 },
      validFrom: 4,
      validUntil: 5,
    },
  ],
});

const moreRequests = [
  encodeOracleMessage({ t: "session-request", seed: new Uint8Array(32).fill(5), x: new Uint8Array(32).fill(6), viewerKey: new Uint8Array(32).fill(7) }),
  encodeOracleMessage({ t: "usage-report", report: session }),
  encodeOracleMessage({ t: "reports-replicate", reports: [session, receipt] }),
  encodeOracleMessage({ t: "reward-proof-request", account: `0x${"ab".repeat(20)}` }),
];
const moreResponses = [
  encodeOracleMessage({ t: "report-ack", hash: `0x${"44".repeat(32)}`, dup: true }),
  encodeOracleMessage({
    t: "reward-proof",
    epoch: 12,
    amount: 10n ** 20n,
    proof: [`0x${"55".repeat(32)}`, `0x${"66".repeat(32)}`],
    root: `0x${"77".repeat(32)}`,
    epochs: [
      { epoch: 11, amount: 0n },
      { epoch: 12, amount: 255n },
    ],
  }),
];
/** Random bytes, or a mutation of any of the samples. */
const anyOf = (samples: Uint8Array[], maxLength: number) => fc.oneof(fc.uint8Array({ maxLength }), ...samples.map((x) => mutate(x)));

function oracleDecoder(decode: (b: Uint8Array) => Parameters<typeof encodeOracleMessage>[0], allowed: string[], input: Uint8Array): void {
  let decoded: Parameters<typeof encodeOracleMessage>[0] | undefined;
  const kind = typedOnly([OracleError], () => (decoded = decode(input)));
  if (kind !== undefined) return check(allowed.includes(kind), `unexpected kind ${kind}`);
  check(Buffer.compare(encodeOracleMessage(decoded!), input) === 0, "decoded message does not re-encode to its bytes");
}

export const streamTargets: FuzzTarget[] = [
  target("oracle request decoder", () =>
    fc.property(bytesOr(sampleRequest, 1200), (b) => oracleDecoder(decodeOracleRequest, ["malformed-request", "too-large"], b)),
  ),
  target("oracle response decoder", () =>
    fc.property(bytesOr(sampleResponse, 1200), (b) => oracleDecoder(decodeOracleResponse, ["bad-response", "too-large"], b)),
  ),
  target("oracle request decoder, issue 16 messages (node-link cap)", () =>
    fc.property(anyOf(moreRequests, 1200), (b) =>
      oracleDecoder((x) => decodeOracleRequest(x, { maxBytes: MAX_ORACLE_LINK_MESSAGE_BYTES }), ["malformed-request", "too-large"], b),
    ),
  ),
  target("oracle response decoder, issue 16 messages", () =>
    fc.property(anyOf(moreResponses, 1200), (b) => oracleDecoder(decodeOracleResponse, ["bad-response", "too-large"], b)),
  ),
  target("stream receipt decoder", () => fc.property(bytesOr(receipt, 600), (b) => typedKind(() => decodeReceipt(b), b))),
  target("blind receipt decoder", () => fc.property(bytesOr(blind, 800), (b) => typedKind(() => decodeBlindReceipt(b), b))),
  target("session id decoder", () => fc.property(bytesOr(session, 400), (b) => typedKind(() => decodeSessionId(b), b))),
  target("inclusion proof decoder", () =>
    fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      let value;
      try {
        value = decodeCanonical(b, { maxBytes: 2048 });
      } catch {
        return;
      }
      typedKind(() => (inclusionFromCbor(value), {}), b);
    }),
  ),
];

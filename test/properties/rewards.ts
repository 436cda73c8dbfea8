/**
 * Fuzz properties of the usage-report decoder (node/src/rewards/report.ts):
 * fed random bytes, mutations of a valid node or viewer report, or a valid
 * body with one field replaced by an arbitrary CBOR value (re-signed, so the
 * shape checks behind the signature are reached), it either decodes (keeping
 * the exact bytes, hash = keccak256 of them) or throws RewardsError
 * "too-large", "malformed", "forged" or "bad-session", never another error.
 * Run briefly by test/unit/rewards/fuzz.test.ts.
 */
import fc from "fast-check";
import { createHash } from "node:crypto";
import { keccak256 } from "viem";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { RewardsError } from "../../node/src/rewards/errors.js";
import { decodeUsageReport, signUsageReport } from "../../node/src/rewards/report.js";
import { signSessionId } from "../../node/src/stream/session.js";
import { signDocument } from "../../node/src/wire/document.js";
import { bytesOr, check, target, typedOnly, type FuzzTarget } from "./common.js";

const seed = (label: string) => new Uint8Array(createHash("sha256").update(label).digest());
const nodeSeed = seed("psp-fuzz-report-node");
const viewerSeed = seed("psp-fuzz-report-viewer");
const session = signSessionId({ issuedAt: 1000, expiresAt: 4600, secretKey: seed("psp-fuzz-report-oracle"), viewerKey: ed25519PublicKey(viewerSeed) });
const stream = new Uint8Array(16).fill(1);
const nodeKey = ed25519PublicKey(nodeSeed);

const nodeReport = signUsageReport({
  kind: "node",
  secretKey: nodeSeed,
  from: 1200,
  to: 1500,
  entries: [
    { stream, peer: session.sid, direction: "sent", bytes: 123_456 },
    { stream, peer: new Uint8Array(32).fill(9), direction: "received", bytes: 654_321 },
  ],
  anchors: [{ stream, receipt: new Uint8Array(200).fill(4), kbps: 1500 }],
}).bytes;
const viewerReport = signUsageReport({
  kind: "viewer",
  secretKey: viewerSeed,
  from: 1200,
  to: 1500,
  entries: [{ stream, peer: nodeKey, direction: "received", bytes: 123_000 }],
  session: session.bytes,
}).bytes;

const body = {
  a: [{ k: 1500, r: new Uint8Array(200).fill(4), s: stream }],
  e: [{ b: 5, d: 0, p: session.sid, s: stream }],
  from: 1200,
  kind: "node",
  part: 0,
  sess: new Uint8Array(0),
  to: 1500,
  v: 1,
};
const cborValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -10, max: 2 ** 49 }),
    fc.string({ maxLength: 12 }),
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom("b", "d", "p", "s", "k", "r", "x"), tie("value"), { maxKeys: 4 }),
  ),
})).value;

function decodes(input: Uint8Array): void {
  const kind = typedOnly([RewardsError], () => {
    const r = decodeUsageReport(input);
    check(Buffer.compare(r.bytes, input) === 0, "decoded report does not keep its bytes");
    check(r.hash === keccak256(input), "hash is not keccak256 of the bytes");
  });
  check(kind === undefined || ["too-large", "malformed", "forged", "bad-session"].includes(kind), `unexpected kind ${kind}`);
}

export const rewardsTargets: FuzzTarget[] = [
  target("usage report decoder (node report)", () => fc.property(bytesOr(nodeReport, 1500), decodes)),
  target("usage report decoder (viewer report)", () => fc.property(bytesOr(viewerReport, 1000), decodes)),
  target("usage report decoder (one field replaced, re-signed)", () =>
    fc.property(fc.constantFrom(...Object.keys(body)), cborValue, fc.boolean(), (field, value, asViewer) => {
      const replaced = { ...body, ...(asViewer ? { kind: "viewer", sess: session.bytes, a: [] } : {}), [field]: value };
      decodes(signDocument({ type: "usage-report", secretKey: asViewer ? viewerSeed : nodeSeed, body: replaced }));
    }),
  ),
];

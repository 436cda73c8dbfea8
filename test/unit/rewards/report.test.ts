/**
 * Usage reports (node/src/rewards/report.ts): node and viewer reports sign
 * and decode to the same values; every limit and shape rule refuses with a
 * typed RewardsError kind; a viewer report is bound to its session's key;
 * splitUsage always gives parts that sign; the frozen vector
 * (test/vectors/usage-report.json) decodes and re-signs to the same bytes.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { keccak256 } from "viem";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { RewardsError } from "../../../node/src/rewards/errors.js";
import {
  decodeUsageReport,
  MAX_REPORT_ANCHORS,
  MAX_REPORT_ENTRIES,
  MAX_USAGE_REPORT_BYTES,
  signUsageReport,
  splitUsage,
  type SignUsageReportInput,
  type UsageEntry,
} from "../../../node/src/rewards/report.js";
import { signSessionId } from "../../../node/src/stream/session.js";
import { encodeCanonical } from "../../../node/src/wire/canonical.js";
import { signDocument } from "../../../node/src/wire/document.js";

const T = 1_800_000_000;
const node = generateEd25519KeyPair();
const oracle = generateEd25519KeyPair();
const viewerKeys = generateEd25519KeyPair();
const session = signSessionId({ issuedAt: T, expiresAt: T + 3600, secretKey: oracle.secretKey, viewerKey: viewerKeys.publicKey });
const stream = new Uint8Array(16).fill(1);
const peerNode = new Uint8Array(32).fill(2);
const receipt = new Uint8Array(230).fill(3);

const kindOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof RewardsError) return err.kind;
    throw err;
  }
};

/** Signs a body as-is (bypassing signUsageReport's checks) to test the decoder. */
const raw = (body: Record<string, unknown>, secretKey = node.secretKey) =>
  signDocument({
    type: "usage-report",
    secretKey,
    body: { a: [], e: [], from: T, kind: "node", part: 0, sess: new Uint8Array(0), to: T + 300, v: 1, ...body },
  });

describe("usage report", () => {
  const entries: UsageEntry[] = [
    { stream, peer: session.sid, direction: "sent", bytes: 1_000_000 },
    { stream, peer: peerNode, direction: "sent", bytes: 2_000_000 },
    { stream, peer: peerNode, direction: "received", bytes: 3_000_000 },
  ];

  it("a node report signs and decodes to the same values, entries in byte order, hash = keccak256(bytes)", () => {
    const r = signUsageReport({ kind: "node", secretKey: node.secretKey, from: T, to: T + 300, part: 2, entries, anchors: [{ stream, receipt, kbps: 2500 }] });
    const d = decodeUsageReport(r.bytes);
    expect(d).toEqual(r);
    expect(d.kind).toBe("node");
    expect(d.reporter).toEqual(node.publicKey);
    expect([d.from, d.to, d.part]).toEqual([T, T + 300, 2]);
    expect(d.entries).toHaveLength(3);
    expect(new Set(d.entries.map((e) => `${e.direction}${e.bytes}`))).toEqual(new Set(["sent1000000", "sent2000000", "received3000000"]));
    expect(d.anchors).toEqual([{ stream, receipt, kbps: 2500 }]);
    expect(d.session).toBeUndefined();
    expect(d.hash).toBe(keccak256(r.bytes));
    const reordered = signUsageReport({
      kind: "node",
      secretKey: node.secretKey,
      from: T,
      to: T + 300,
      part: 2,
      entries: [...entries].reverse(),
      anchors: [{ stream, receipt, kbps: 2500 }],
    });
    expect(reordered.bytes).toEqual(r.bytes);
  });

  it("a viewer report carries its session id and is signed by the session's viewer key", () => {
    const input: SignUsageReportInput = {
      kind: "viewer",
      secretKey: viewerKeys.secretKey,
      from: T,
      to: T + 300,
      entries: [{ stream, peer: peerNode, direction: "received", bytes: 5 }],
      session: session.bytes,
    };
    const r = decodeUsageReport(signUsageReport(input).bytes);
    expect(r.session?.sid).toEqual(session.sid);
    expect(r.reporter).toEqual(viewerKeys.publicKey);
    // Another key than the session names: forged (signUsageReport refuses it as a bad argument).
    expect(kindOf(() => signUsageReport({ ...input, secretKey: node.secretKey }))).toBe("bad-argument");
    const stolen = raw({ kind: "viewer", sess: session.bytes, e: [{ b: 5, d: 1, p: peerNode, s: stream }] }, node.secretKey);
    expect(kindOf(() => decodeUsageReport(stolen))).toBe("forged");
    // Viewers report received bytes only, from nodes, with no anchors; a bad session is bad-session.
    expect(
      kindOf(() => decodeUsageReport(raw({ kind: "viewer", sess: session.bytes, e: [{ b: 5, d: 0, p: peerNode, s: stream }] }, viewerKeys.secretKey))),
    ).toBe("malformed");
    expect(kindOf(() => decodeUsageReport(raw({ kind: "viewer", sess: session.bytes, a: [{ k: 1, r: receipt, s: stream }] }, viewerKeys.secretKey)))).toBe(
      "malformed",
    );
    const badSession = session.bytes.slice();
    badSession[badSession.length - 3]! ^= 1;
    expect(kindOf(() => decodeUsageReport(raw({ kind: "viewer", sess: badSession }, viewerKeys.secretKey)))).toBe("bad-session");
    expect(kindOf(() => decodeUsageReport(raw({ kind: "viewer" }, viewerKeys.secretKey)))).toBe("bad-session");
    expect(kindOf(() => decodeUsageReport(raw({ sess: session.bytes })))).toBe("malformed");
  });

  it("refuses bad signatures, windows, sizes, duplicates, wrong peers and unknown fields with typed kinds", () => {
    const good = raw({ e: [{ b: 1, d: 0, p: peerNode, s: stream }] });
    expect(decodeUsageReport(good).entries).toHaveLength(1);
    const sigAt = Buffer.from(good).indexOf(Buffer.from("sig")) + 5;
    const forged = good.slice();
    forged[sigAt]! ^= 1;
    expect(kindOf(() => decodeUsageReport(forged))).toBe("forged");
    const cases: Record<string, unknown>[] = [
      { v: 2 },
      { kind: "relay" },
      { to: T },
      { to: T + 3601 },
      { part: 256 },
      { e: [{ b: 1, d: 0, p: peerNode, s: new Uint8Array(15) }] },
      { e: [{ b: 1, d: 2, p: peerNode, s: stream }] },
      { e: [{ b: 1, d: 0, p: new Uint8Array(20), s: stream }] },
      { e: [{ b: 1, d: 1, p: session.sid, s: stream }] }, // received from a session: not a node
      { e: [{ b: 2 ** 48, d: 0, p: peerNode, s: stream }] },
      { e: [{ b: -1, d: 0, p: peerNode, s: stream }] },
      { e: [{ b: 1, d: 0, p: peerNode, s: stream, x: 1 }] },
      {
        e: [
          { b: 1, d: 0, p: peerNode, s: stream },
          { b: 2, d: 0, p: peerNode, s: stream },
        ],
      },
      {
        e: Array.from({ length: MAX_REPORT_ENTRIES + 1 }, (_, i) => ({
          b: 1,
          d: 0,
          p: peerNode,
          s: new Uint8Array(16).fill(i % 256).map((x, j) => (j === 0 ? i >> 8 : x)),
        })),
      },
      { a: [{ k: 0, r: receipt, s: stream }] },
      { a: [{ k: 1, r: new Uint8Array(0), s: stream }] },
      { a: [{ k: 1, r: new Uint8Array(1025), s: stream }] },
      {
        a: [
          { k: 1, r: receipt, s: stream },
          { k: 2, r: receipt, s: stream },
        ],
      },
      { a: Array.from({ length: MAX_REPORT_ANCHORS + 1 }, (_, i) => ({ k: 1, r: new Uint8Array(1), s: new Uint8Array(16).fill(i) })) },
      { sess: new Uint8Array(1) },
      { extra: 1 },
    ];
    for (const c of cases)
      expect(
        kindOf(() => decodeUsageReport(raw(c))),
        JSON.stringify(Object.keys(c)),
      ).toBe("malformed");
    expect(kindOf(() => decodeUsageReport(new Uint8Array(MAX_USAGE_REPORT_BYTES + 1)))).toBe("too-large");
    expect(kindOf(() => decodeUsageReport(encodeCanonical({ a: 1 })))).toBe("malformed");
    expect(kindOf(() => decodeUsageReport(session.bytes))).toBe("malformed"); // another document type
  });

  it("signUsageReport refuses input that breaks the layout with bad-argument", () => {
    const base = { kind: "node" as const, secretKey: node.secretKey, from: T, to: T + 300, entries };
    expect(kindOf(() => signUsageReport({ ...base, to: T }))).toBe("bad-argument");
    expect(kindOf(() => signUsageReport({ ...base, entries: [...entries, entries[0]!] }))).toBe("bad-argument");
    expect(kindOf(() => signUsageReport({ ...base, session: session.bytes }))).toBe("bad-argument");
    expect(kindOf(() => signUsageReport({ ...base, kind: "viewer" }))).toBe("bad-argument");
    expect(kindOf(() => signUsageReport({ ...base, entries: [{ ...entries[0]!, bytes: 1.5 }] }))).toBe("bad-argument");
  });

  it("splitUsage cuts a large window into parts that each sign within the limits", () => {
    const many: UsageEntry[] = Array.from({ length: 1300 }, (_, i) => ({
      stream,
      peer: new Uint8Array(16).map((_, j) => (j < 2 ? (i >> (8 * j)) & 0xff : 7)),
      direction: "sent",
      bytes: 2 ** 47 + i,
    }));
    const anchors = Array.from({ length: 70 }, (_, i) => ({ stream: new Uint8Array(16).fill(i), receipt: new Uint8Array(768).fill(5), kbps: 4000 }));
    const parts = splitUsage(many, anchors);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    expect(parts.flatMap((p) => p.entries)).toEqual(many);
    expect(parts.flatMap((p) => p.anchors)).toEqual(anchors);
    parts.forEach((p, part) => {
      const r = signUsageReport({ kind: "node", secretKey: node.secretKey, from: T, to: T + 300, part, entries: p.entries, anchors: p.anchors });
      expect(r.bytes.length).toBeLessThanOrEqual(MAX_USAGE_REPORT_BYTES);
    });
    expect(splitUsage([])).toEqual([{ entries: [], anchors: [] }]);
  });
});

describe("frozen vector (test/vectors/usage-report.json)", () => {
  interface Vector {
    input: {
      nodeSeed: string;
      viewerSeed: string;
      oracleSeed: string;
      from: number;
      to: number;
      sid: string;
      stream: string;
      receiptHex: string;
      issuedAt: number;
      expiresAt: number;
    };
    nodeReportHex: string;
    nodeReportHash: string;
    sessionHex: string;
    viewerReportHex: string;
  }
  const v = JSON.parse(readFileSync(new URL("../../vectors/usage-report.json", import.meta.url), "utf8")) as Vector;
  const unhex = (h: string) => new Uint8Array(Buffer.from(h, "hex"));

  it("decodes the frozen node and viewer reports and re-signs the inputs to the same bytes", () => {
    const n = decodeUsageReport(unhex(v.nodeReportHex));
    expect(n.hash).toBe(v.nodeReportHash);
    const viewer = decodeUsageReport(unhex(v.viewerReportHex));
    expect(Buffer.from(viewer.session!.sid).toString("hex")).toBe(v.input.sid);
    const again = signUsageReport({
      kind: "node",
      secretKey: unhex(v.input.nodeSeed),
      from: n.from,
      to: n.to,
      part: n.part,
      entries: n.entries,
      anchors: n.anchors,
    });
    expect(Buffer.from(again.bytes).toString("hex")).toBe(v.nodeReportHex);
    const againViewer = signUsageReport({
      kind: "viewer",
      secretKey: unhex(v.input.viewerSeed),
      from: viewer.from,
      to: viewer.to,
      entries: viewer.entries,
      session: unhex(v.sessionHex),
    });
    expect(Buffer.from(againViewer.bytes).toString("hex")).toBe(v.viewerReportHex);
  });
});

/**
 * Usage reports (whitepaper §8.3, issue 16): what a node or a viewer tells
 * the oracles it carried or received per stream and peer over one window.
 *
 * Owns the layout, a signed document (wire/document.ts) of type
 * "usage-report" whose body is the canonical CBOR map
 *   { a: [ { k: uint kbps, r: bstr receipt, s: bstr(16) stream } ],   (landing nodes only)
 *     e: [ { b: uint bytes, d: 0 sent | 1 received, p: bstr(32 node key | 16 session sid), s: bstr(16) } ],
 *     from: uint, kind: "node" | "viewer", part: uint, sess: bstr, to: uint, v: 1 }
 * - from/to: unix seconds, from < to, to − from ≤ MAX_REPORT_WINDOW_SECONDS;
 *   part numbers the pieces of one window too large for one report.
 * - node: signer = the node's identity key; "sent" entries name a viewer's
 *   session sid (16) or a fed node's key (32); "received" entries the feeding
 *   node's key (32); sess is empty.
 * - viewer: signer = the session's viewer key; sess = the oracle-signed
 *   session id (stream/session.ts) whose "k" is the signer; only "received"
 *   entries, each naming the node the viewer was attached to; no anchors.
 * - at most MAX_REPORT_ENTRIES entries, MAX_REPORT_ANCHORS anchors, no two
 *   entries with the same (s, p, d), no two anchors for one stream,
 *   bytes < 2^48, MAX_USAGE_REPORT_BYTES in all.
 *
 * Trusts nothing about the bytes: decodeUsageReport checks shape, limits, the
 * signature and, for a viewer, the session id's own signature and key, and
 * throws RewardsError "too-large", "malformed", "forged" or "bad-session".
 * It does not know the time, the epoch or the oracle set: whether the window
 * falls in an open epoch, the session's oracle is current and valid over the
 * window, and the anchors' receipts verify are the oracle's checks.
 */
import { keccak256, type Hex } from "viem";
import { bytesEqual, compareBytes } from "../base/bytes.js";
import { hexOf } from "../base/hex.js";
import { ED25519_PUBLIC_KEY_LEN } from "../crypto/ed25519.js";
import { StreamError } from "../stream/errors.js";
import { decodeSessionId, SESSION_ID_LEN, type SessionId } from "../stream/session.js";
import { encodeCanonical } from "../wire/canonical.js";
import { openDocument, signDocument } from "../wire/document.js";
import { WireError } from "../wire/errors.js";
import { cborReaders } from "../wire/fields.js";
import {
  MAX_ENTRY_BYTES,
  MAX_REPORT_ANCHORS,
  MAX_REPORT_ENTRIES,
  MAX_REPORT_WINDOW_SECONDS,
  MAX_USAGE_REPORT_BYTES,
  type StreamAnchor,
  type UsageEntry,
} from "../stream/usage.js";
import { RewardsError } from "./errors.js";

// The entries, anchors and limits are the meters' (stream/usage.ts), so what a meter cuts always fits a report.
export { MAX_ENTRY_BYTES, MAX_REPORT_ANCHORS, MAX_REPORT_ENTRIES, MAX_REPORT_WINDOW_SECONDS, MAX_USAGE_REPORT_BYTES };
export type { StreamAnchor, UsageDirection, UsageEntry } from "../stream/usage.js";

export const USAGE_REPORT_TYPE = "usage-report";
export const USAGE_REPORT_VERSION = 1;
/** Highest part number of one window. */
export const MAX_REPORT_PART = 255;
/** Largest receipt an anchor carries (a blind receipt is at most 768 bytes, a linkable one 512). */
export const MAX_ANCHOR_RECEIPT_BYTES = 1024;
export const STREAM_ID_LEN = 16;
const MAX_UNIX_SECONDS = 2 ** 40;
const MAX_KBPS = 0xffff_ffff;

export interface UsageReport {
  kind: "node" | "viewer";
  /** The signer's Ed25519 public key: the node key, or the session's viewer key. */
  reporter: Uint8Array;
  from: number;
  to: number;
  part: number;
  entries: UsageEntry[];
  anchors: StreamAnchor[];
  /** The decoded session id (viewer reports only). */
  session?: SessionId;
  bytes: Uint8Array;
  /** keccak256 of `bytes`: the report's id at the oracles. */
  hash: Hex;
}

export interface SignUsageReportInput {
  kind: "node" | "viewer";
  /** The node's identity seed, or the viewer session's secret key. */
  secretKey: Uint8Array;
  from: number;
  to: number;
  part?: number;
  entries: readonly UsageEntry[];
  anchors?: readonly StreamAnchor[];
  /** The session id's bytes (viewer reports only). */
  session?: Uint8Array;
}

const malformed = (message: string) => new RewardsError("malformed", `usage report: ${message}`);
const { readArray, readBytes, readMap, readUint } = cborReaders(malformed);

const entryKey = (stream: Uint8Array, peer: Uint8Array, d: number): string => `${hexOf(stream)}:${hexOf(peer)}:${d}`;

/** Signs a report; RewardsError "bad-argument" (cause: what the decoder refused) when the input breaks the layout or limits. */
export function signUsageReport(input: SignUsageReportInput): UsageReport {
  const bad = (m: string, cause?: unknown) => new RewardsError("bad-argument", `usage report: ${m}`, cause === undefined ? undefined : { cause });
  if (input.kind !== "node" && input.kind !== "viewer") throw bad('kind must be "node" or "viewer"');
  if (input.kind === "viewer" && input.session === undefined) throw bad("a viewer report carries its session id");
  if (input.kind === "node" && input.session !== undefined) throw bad("a node report carries no session id");
  for (const e of input.entries)
    if (e.direction !== "sent" && e.direction !== "received") throw bad(`direction must be "sent" or "received", got ${String(e.direction)}`);
  // Entries and anchors in byte order: the same usage always signs to the same bytes.
  const entries = [...input.entries]
    .map((e) => ({ b: e.bytes, d: e.direction === "sent" ? 0 : 1, p: e.peer, s: e.stream }))
    .sort((x, y) => compareBytes(x.s, y.s) || compareBytes(x.p, y.p) || x.d - y.d);
  const anchors = [...(input.anchors ?? [])].map((a) => ({ k: a.kbps, r: a.receipt, s: a.stream })).sort((x, y) => compareBytes(x.s, y.s));
  let bytes: Uint8Array;
  try {
    bytes = signDocument({
      type: USAGE_REPORT_TYPE,
      secretKey: input.secretKey,
      body: {
        a: anchors,
        e: entries,
        from: input.from,
        kind: input.kind,
        part: input.part ?? 0,
        sess: input.session ?? new Uint8Array(0),
        to: input.to,
        v: USAGE_REPORT_VERSION,
      },
    });
  } catch (err) {
    throw bad(`cannot encode: ${(err as Error).message}`, err);
  }
  try {
    return decodeUsageReport(bytes);
  } catch (err) {
    throw bad((err as Error).message, err);
  }
}

/** Decodes and checks a usage report (shape, limits, signature, a viewer's session). */
export function decodeUsageReport(bytes: Uint8Array): UsageReport {
  if (!(bytes instanceof Uint8Array)) throw malformed("must be bytes");
  if (bytes.length > MAX_USAGE_REPORT_BYTES) throw new RewardsError("too-large", `usage report of ${bytes.length} bytes is over ${MAX_USAGE_REPORT_BYTES}`);
  let opened;
  try {
    opened = openDocument(bytes, { type: USAGE_REPORT_TYPE, maxBytes: MAX_USAGE_REPORT_BYTES, maxDepth: 3 });
  } catch (err) {
    if (WireError.is(err, "bad-signature")) throw new RewardsError("forged", "usage report: signature does not verify", { cause: err });
    throw new RewardsError("malformed", `usage report: ${(err as Error).message}`, { cause: err });
  }
  const body = readMap(opened.body, "report body", ["a", "e", "from", "kind", "part", "sess", "to", "v"]);
  if (body.v !== USAGE_REPORT_VERSION) throw malformed(`version ${String(body.v)} is not ${USAGE_REPORT_VERSION}`);
  if (body.kind !== "node" && body.kind !== "viewer") throw malformed('kind must be "node" or "viewer"');
  const kind = body.kind;
  const from = readUint(body.from, "from", MAX_UNIX_SECONDS);
  const to = readUint(body.to, "to", MAX_UNIX_SECONDS);
  if (to <= from || to - from > MAX_REPORT_WINDOW_SECONDS) throw malformed(`the window must be 1..${MAX_REPORT_WINDOW_SECONDS} s, is ${from}..${to}`);
  const part = readUint(body.part, "part", MAX_REPORT_PART);

  const seen = new Set<string>();
  const entries: UsageEntry[] = readArray(body.e, "entries", MAX_REPORT_ENTRIES).map((item) => {
    const m = readMap(item, "entry", ["b", "d", "p", "s"]);
    const stream = readBytes(m.s, "entry stream", STREAM_ID_LEN);
    const d = readUint(m.d, "entry direction", 1);
    const peer = m.p;
    if (!(peer instanceof Uint8Array) || (peer.length !== ED25519_PUBLIC_KEY_LEN && peer.length !== SESSION_ID_LEN))
      throw malformed(`an entry's peer must be a ${ED25519_PUBLIC_KEY_LEN}-byte node key or a ${SESSION_ID_LEN}-byte session sid`);
    if (kind === "viewer" && d !== 1) throw malformed("a viewer reports received bytes only");
    if (d === 1 && peer.length !== ED25519_PUBLIC_KEY_LEN) throw malformed("received bytes come from a node: the peer must be a node key");
    const key = entryKey(stream, peer, d);
    if (seen.has(key)) throw malformed("two entries for the same stream, peer and direction");
    seen.add(key);
    return { stream, peer, direction: d === 0 ? "sent" : "received", bytes: readUint(m.b, "entry bytes", MAX_ENTRY_BYTES) };
  });

  const anchored = new Set<string>();
  const anchors: StreamAnchor[] = readArray(body.a, "anchors", MAX_REPORT_ANCHORS).map((item) => {
    const m = readMap(item, "anchor", ["k", "r", "s"]);
    const stream = readBytes(m.s, "anchor stream", STREAM_ID_LEN);
    const receipt = m.r;
    if (!(receipt instanceof Uint8Array) || receipt.length === 0 || receipt.length > MAX_ANCHOR_RECEIPT_BYTES)
      throw malformed(`an anchor's receipt must be 1..${MAX_ANCHOR_RECEIPT_BYTES} bytes`);
    const kbps = readUint(m.k, "anchor kbps", MAX_KBPS);
    if (kbps === 0) throw malformed("an anchor's kbps must be at least 1");
    if (anchored.has(hexOf(stream))) throw malformed("two anchors for one stream");
    anchored.add(hexOf(stream));
    return { stream, receipt, kbps };
  });

  const sess = body.sess;
  if (!(sess instanceof Uint8Array)) throw malformed("sess must be a byte string");
  const report: UsageReport = { kind, reporter: opened.signer, from, to, part, entries, anchors, bytes, hash: keccak256(bytes) };
  if (kind === "node") {
    if (sess.length !== 0) throw malformed("a node report carries no session id");
    return report;
  }
  if (anchors.length !== 0) throw malformed("a viewer report carries no anchors");
  try {
    report.session = decodeSessionId(sess);
  } catch (err) {
    if (err instanceof StreamError) throw new RewardsError("bad-session", `usage report: ${err.message}`, { cause: err });
    throw err;
  }
  if (!bytesEqual(report.session.viewerKey, opened.signer))
    throw new RewardsError("forged", "usage report: signed by another key than its session's viewer key");
  return report;
}

/** Encoded size of one entry or anchor inside the body (for splitting a window into parts). */
const entrySize = (e: UsageEntry): number => encodeCanonical({ b: e.bytes, d: 0, p: e.peer, s: e.stream }).length;
const anchorSize = (a: StreamAnchor): number => encodeCanonical({ k: a.kbps, r: a.receipt, s: a.stream }).length;
/** Envelope, signature, keys and a session id: everything in a report but its entries and anchors, with room to spare. */
const REPORT_OVERHEAD_BYTES = 1024;

/**
 * Splits one window's usage into parts that each fit a report (entry and
 * anchor counts, MAX_USAGE_REPORT_BYTES); part i of the result is report
 * part i. Always at least one part (an empty window gives one empty part).
 */
export function splitUsage(entries: readonly UsageEntry[], anchors: readonly StreamAnchor[] = []): { entries: UsageEntry[]; anchors: StreamAnchor[] }[] {
  const parts: { entries: UsageEntry[]; anchors: StreamAnchor[]; size: number }[] = [];
  let current = { entries: [] as UsageEntry[], anchors: [] as StreamAnchor[], size: REPORT_OVERHEAD_BYTES };
  const room = (size: number) => current.size + size <= MAX_USAGE_REPORT_BYTES;
  for (const a of anchors) {
    const size = anchorSize(a);
    if (current.anchors.length >= MAX_REPORT_ANCHORS || !room(size)) {
      parts.push(current);
      current = { entries: [], anchors: [], size: REPORT_OVERHEAD_BYTES };
    }
    current.anchors.push(a);
    current.size += size;
  }
  for (const e of entries) {
    const size = entrySize(e);
    if (current.entries.length >= MAX_REPORT_ENTRIES || !room(size)) {
      parts.push(current);
      current = { entries: [], anchors: [], size: REPORT_OVERHEAD_BYTES };
    }
    current.entries.push(e);
    current.size += size;
  }
  parts.push(current);
  if (parts.length > MAX_REPORT_PART + 1)
    throw new RewardsError("bad-argument", `one window's usage needs ${parts.length} reports, over ${MAX_REPORT_PART + 1}: report more often`);
  return parts.map(({ entries: e, anchors: a }) => ({ entries: e, anchors: a }));
}

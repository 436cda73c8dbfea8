/**
 * The DHT record of a public stream (docs/spec/streaming.md "Public
 * streams"): how anyone finds a public stream's access points and format
 * without asking its landing node.
 *
 * Owns the record: name "stream/<stream id, 32 hex digits>", owned and
 * co-signed by the landing node's identity (so it is the landing node that
 * vouches for it, and only it can replace it), value canonical CBOR
 * `{ v: 1, id: bytes (16), f: format flags, kbps, exp (ms), pts: [[identity
 * (32), host, port, load], …] (≤ 8) }`, expiring with the stream.
 *
 * Trusts: the DHT record checks (signatures, expiry) for the record itself;
 * checks here that the owner is the landing node asked about, the name and
 * id match, and every field is in range. The record holds no producer or
 * viewer identity and no key.
 */
import { hexOf } from "../base/hex.js";
import { bytesEqual } from "../base/bytes.js";
import { coSignRecord, recordKey, signRecordAsOwner } from "../dht/record.js";
import type { DhtRecord } from "../dht/record.js";
import { decodeCanonical, encodeCanonical } from "../wire/canonical.js";
import { cborReaders } from "../wire/fields.js";
import { MAX_HOST_LEN, NODE_IDENTITY_LEN, STREAM_ID_LEN } from "./frames.js";
import type { NodeEntry } from "./frames.js";
import { StreamMediaError } from "./media-errors.js";

export const STREAM_RECORD_PREFIX = "stream/";
/** Access points a record lists at most. */
export const MAX_RECORD_POINTS = 8;
const VERSION = 1;
const read = cborReaders((message) => new StreamMediaError("malformed", `public stream record: ${message}`));

export interface PublicStreamInfo {
  streamId: Uint8Array;
  formatFlags: number;
  kbps: number;
  /** ms since the epoch. */
  expiresAt: number;
  points: NodeEntry[];
}

export function publicStreamRecordName(streamId: Uint8Array): string {
  return `${STREAM_RECORD_PREFIX}${hexOf(streamId)}`;
}

/** The DHT key of a public stream's record. */
export function publicStreamRecordKey(landing: Uint8Array, streamId: Uint8Array): Uint8Array {
  return recordKey(landing, publicStreamRecordName(streamId));
}

/** The landing node's record of a public stream (owner and publisher: the landing node). */
export function signPublicStreamRecord(landingSecretKey: Uint8Array, info: PublicStreamInfo, seq: number): DhtRecord {
  const value = encodeCanonical({
    v: VERSION,
    id: info.streamId,
    f: info.formatFlags,
    kbps: info.kbps,
    exp: info.expiresAt,
    pts: info.points.slice(0, MAX_RECORD_POINTS).map((p) => [p.identity, p.host, p.port, p.load]),
  });
  const owned = signRecordAsOwner({ ownerSecretKey: landingSecretKey, name: publicStreamRecordName(info.streamId), value, seq, expiresAt: info.expiresAt });
  return coSignRecord(owned, landingSecretKey);
}

/** Reads a public stream's record found under publicStreamRecordKey(landing, streamId); "malformed" unless it is that stream's, by that landing node. */
export function readPublicStreamRecord(record: DhtRecord, landing: Uint8Array, streamId: Uint8Array): PublicStreamInfo {
  if (!bytesEqual(record.owner, landing) || !bytesEqual(record.publisher, landing)) {
    throw new StreamMediaError("malformed", "public stream record: not owned and published by the landing node");
  }
  if (record.name !== publicStreamRecordName(streamId)) throw new StreamMediaError("malformed", "public stream record: another stream's name");
  let value;
  try {
    value = decodeCanonical(record.value, { maxBytes: 4096, maxDepth: 3 });
  } catch (err) {
    throw new StreamMediaError("malformed", `public stream record: not canonical CBOR: ${(err as Error).message}`, { cause: err });
  }
  const m = read.readMap(value, "value", ["v", "id", "f", "kbps", "exp", "pts"]);
  if (read.readUint(m["v"], "v", 255) !== VERSION) throw new StreamMediaError("malformed", "public stream record: unknown version");
  const id = read.readBytes(m["id"], "id", STREAM_ID_LEN);
  if (!bytesEqual(id, streamId)) throw new StreamMediaError("malformed", "public stream record: another stream's id");
  const points = read.readArray(m["pts"], "pts", MAX_RECORD_POINTS).map((p, i) => {
    const [identity, host, port, load] = read.readArray(p, `pts[${i}]`, 4, 4);
    return {
      identity: read.readBytes(identity, `pts[${i}] identity`, NODE_IDENTITY_LEN).slice(),
      host: read.readText(host, `pts[${i}] host`, MAX_HOST_LEN),
      port: read.readUint(port, `pts[${i}] port`, 0xffff),
      load: read.readUint(load, `pts[${i}] load`, 0xffffffff),
    };
  });
  return {
    streamId: id.slice(),
    formatFlags: read.readUint(m["f"], "f", 0xffffffff),
    kbps: read.readUint(m["kbps"], "kbps", 0xffffffff),
    expiresAt: read.readUint(m["exp"], "exp"),
    points,
  };
}

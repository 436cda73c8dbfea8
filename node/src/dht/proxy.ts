/**
 * The DHT for clients through circuits: service "dht" a node offers at the
 * end of 3-hop circuits, so a client reads and publishes records without
 * revealing its address to any DHT node (docs/spec/dht.md "Clients through
 * circuits").
 *
 * Owns the two operations and their canonical CBOR messages, carried by the
 * onion stream RPC (onion/stream-rpc.ts):
 * - GET(key): the node runs the disjoint-path value lookup for the client
 *   and answers with the valid records it found, highest sequence first;
 * - PUT(owner-signed record): the node checks the owner signature, co-signs
 *   as publisher (as the presence layer will have its presence
 *   node co-sign the announcement), validates the result like any record and publishes it to
 *   the k closest nodes, answering how many stored it and the co-signed
 *   record.
 * Plus their limits: message size, a per-stream token bucket, and every
 * refusal as a DhtError kind (sent as a stream-RPC "refused" with the kind
 * as its code, and rebuilt as a DhtError by the client).
 *
 * Trusts: the DhtNode for lookups and publishing; record.ts for every check
 * on a record. The client trusts nothing the proxy returns: it validates
 * every record itself (key, signatures, expiry).
 */
import { isPspError } from "../errors.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { createStreamRpc, streamRpcService, StreamRpcError } from "../onion/stream-rpc.js";
import type { RpcStream, StreamRpc, StreamRpcContext, StreamRpcServiceOptions } from "../onion/stream-rpc.js";
import { TokenBucket } from "../base/token-bucket.js";
import type { LocalService } from "../onion/types.js";
import { decodeCanonical, encodeCanonical } from "../wire/canonical.js";
import { isCborMap } from "../wire/fields.js";
import { DHT_ERROR_KINDS, DhtError } from "./errors.js";
import type { DhtErrorKind } from "./errors.js";
import { idsEqual, isId } from "./id.js";
import type { DhtNode } from "./node.js";
import { DEFAULT_RECORD_LIMITS, coSignRecord, ownerRecordFromWire, ownerRecordToWire, recordFromWire, recordToWire, validateRecord } from "./record.js";
import type { DhtRecord, OwnerSignedRecord, RecordLimits } from "./record.js";

/** The onion service name. */
export const DHT_PROXY_SERVICE = "dht";
/** Largest request or response (a GET answer holds up to maxRecordsPerGet records of ≤ 4 KiB). */
export const DHT_PROXY_MAX_MESSAGE_BYTES = 24 * 1024;
export const DEFAULT_DHT_PROXY_TIMEOUT_MS = 15_000;

/** What the proxy needs of a DhtNode. */
export type DhtProxyNode = Pick<DhtNode, "findValue" | "publish" | "config">;

export interface DhtProxyOptions {
  /** The node's Ed25519 identity seed: it co-signs records as their publisher. */
  publisherSecretKey: Uint8Array;
  /** Requests per second per stream (default 2) and burst (default 10); past it "busy". */
  requestsPerSecond?: number;
  burst?: number;
  /** Records returned per GET at most (default 4). */
  maxRecordsPerGet?: number;
  /** Requests of one stream in progress at once (default 4); one more is refused by the stream RPC "busy". */
  maxInflight?: number;
  /** See StreamRpcServiceOptions.flush (startNode: `() => driver.run(() => undefined)`). */
  flush?: () => void;
  /** Clock for the rate limit (default performance.now). */
  now?: () => number;
  /** Clock for record expiry, ms since the epoch (default Date.now). */
  wallClock?: () => number;
  /** Logs as component "dht-proxy": refused requests at debug (counted), a failure that is not a typed refusal at error. */
  logger?: Logger;
}

type Request = { t: "get"; key: Uint8Array } | { t: "put"; record: OwnerSignedRecord };

/** Canonical CBOR of a DHT proxy request. */
export function encodeDhtProxyRequest(request: Request): Uint8Array {
  return request.t === "get" ? encodeCanonical({ t: "get", key: request.key }) : encodeCanonical({ t: "put", record: ownerRecordToWire(request.record) });
}

/** Decodes a request; throws DhtError "malformed". */
export function decodeDhtProxyRequest(bytes: Uint8Array): Request {
  let m: unknown;
  try {
    m = decodeCanonical(bytes, { maxBytes: DHT_PROXY_MAX_MESSAGE_BYTES });
  } catch (cause) {
    throw new DhtError("malformed", "DHT proxy request is not canonical CBOR", { cause });
  }
  if (!isCborMap(m)) throw new DhtError("malformed", "DHT proxy request must be a map");
  const fields = Object.keys(m).sort().join(",");
  if (m["t"] === "get") {
    if (fields !== "key,t" || !isId(m["key"])) throw new DhtError("malformed", 'GET is { t: "get", key: 32 bytes }');
    return { t: "get", key: m["key"] };
  }
  if (m["t"] === "put") {
    if (fields !== "record,t") throw new DhtError("malformed", 'PUT is { t: "put", record }');
    return { t: "put", record: ownerRecordFromWire(m["record"]) };
  }
  throw new DhtError("malformed", `unknown DHT proxy operation ${JSON.stringify(String(m["t"]).slice(0, 16))}; use "get" or "put"`);
}

/**
 * What a node does with a record a client hands it to publish (the "dht"
 * service's PUT, a presence registration): co-signs it (which checks the
 * owner signature), applies every record rule before any network work,
 * publishes it and resolves with the co-signed record and how many nodes
 * stored it. Throws DhtError; "no-contacts" (or the first node's refusal)
 * when nobody stored it.
 */
export async function publishCoSigned(dht: Pick<DhtNode, "publish" | "config">, record: OwnerSignedRecord, publisherSecretKey: Uint8Array, now: number): Promise<{ stored: number; record: DhtRecord }> {
  const cosigned = coSignRecord(record, publisherSecretKey);
  validateRecord(cosigned, { now, limits: dht.config?.records ?? DEFAULT_RECORD_LIMITS });
  const result = await dht.publish(cosigned);
  const stored = result.stored.length + (result.storedLocally ? 1 : 0);
  if (stored === 0) {
    const first = result.failed[0]?.error;
    throw first ?? new DhtError("no-contacts", "no DHT node could be reached to store the record");
  }
  return { stored, record: cosigned };
}

/**
 * The "dht" service on top of `node` (or a getter, when the DhtNode is
 * started after the relay's services are registered). Bad requests and
 * refused records are answered with their DhtError kind; the stream stays usable.
 */
export function dhtProxyService(node: DhtProxyNode | (() => DhtProxyNode | undefined), options: DhtProxyOptions): LocalService {
  if (!(options?.publisherSecretKey instanceof Uint8Array) || options.publisherSecretKey.length !== 32) {
    throw new DhtError("bad-config", "dhtProxyService needs publisherSecretKey, the node's 32-byte Ed25519 seed");
  }
  const rate = options.requestsPerSecond ?? 2;
  const burst = options.burst ?? 10;
  if (!(rate > 0) || !(burst >= 1)) throw new DhtError("bad-config", `requestsPerSecond must be > 0 and burst ≥ 1, got ${rate} and ${burst}`);
  const maxRecords = options.maxRecordsPerGet ?? 4;
  if (!Number.isInteger(maxRecords) || maxRecords < 1) throw new DhtError("bad-config", `maxRecordsPerGet must be a positive integer, got ${maxRecords}`);
  const clock = options.now ?? (() => performance.now());
  const wallClock = options.wallClock ?? Date.now;
  const resolveNode = (): DhtProxyNode => {
    const n = typeof node === "function" ? node() : node;
    if (n === undefined) throw new DhtError("no-contacts", "this node's DHT is not running yet; retry shortly");
    return n;
  };
  const buckets = new Map<string, TokenBucket>();
  const keyOf = (ctx: StreamRpcContext): string => `${ctx.circuitId}/${ctx.streamId}`;
  const log = childLogger(options.logger, "dht-proxy");

  // The client hears every refusal as its DhtError kind; here it is counted, and anything untyped is a bug of ours.
  const loggedHandler = async (bytes: Uint8Array, ctx: StreamRpcContext): Promise<Uint8Array> => {
    try {
      return await handler(bytes, ctx);
    } catch (err) {
      logFailure(log, err, "answer DHT proxy request", isPspError(err) ? "debug" : "error", { circuit: ctx.circuitId });
      throw err;
    }
  };

  const handler = async (bytes: Uint8Array, ctx: StreamRpcContext): Promise<Uint8Array> => {
    const now = clock();
    let bucket = buckets.get(keyOf(ctx));
    if (bucket === undefined) buckets.set(keyOf(ctx), (bucket = new TokenBucket({ bytesPerSecond: rate, burstBytes: burst, now })));
    if (!bucket.tryTake(1, now)) {
      throw new DhtError("busy", `more than ${rate} requests per second on this stream; retry in ${Math.ceil(bucket.readyAt(1, now) - now)} ms`);
    }
    const request = decodeDhtProxyRequest(bytes);
    const dht = resolveNode();
    if (request.t === "get") {
      const found = await dht.findValue(request.key);
      const seen = new Set<string>();
      const records: DhtRecord[] = [];
      const candidates = [...(found.record ? [found.record] : []), ...found.lookup.values.map((v) => v.value)].sort((a, b) => b.seq - a.seq);
      for (const r of candidates) {
        const encoded = Buffer.from(encodeCanonical(recordToWire(r))).toString("hex");
        if (seen.has(encoded)) continue;
        seen.add(encoded);
        records.push(r);
        if (records.length >= maxRecords) break;
      }
      return encodeCanonical({ t: "records", records: records.map(recordToWire) });
    }
    const published = await publishCoSigned(dht, request.record, options.publisherSecretKey, wallClock());
    return encodeCanonical({ t: "stored", stored: published.stored, record: recordToWire(published.record) });
  };

  const rpcOptions: StreamRpcServiceOptions = {
    maxMessageBytes: DHT_PROXY_MAX_MESSAGE_BYTES,
    maxInflight: options.maxInflight ?? 4,
    onStreamEnd: (ctx) => buckets.delete(keyOf(ctx)),
    ...(options.flush ? { flush: options.flush } : {}),
    ...(options.logger ? { logger: childLogger(options.logger, "dht-proxy") } : {}),
  };
  return streamRpcService(loggedHandler, rpcOptions);
}

// ------------------------------------------------------------------ client

export interface CircuitDhtClientOptions {
  /** Deadline per operation (default 15 s; a GET is a whole lookup at the far node). */
  timeoutMs?: number;
  /** Record limits to validate against (default the DHT's defaults). */
  limits?: RecordLimits;
  /** Wall clock, ms since the epoch (default Date.now). */
  now?: () => number;
  /** Logs as component "dht-proxy": records the proxy returned that do not validate (debug, counted). */
  logger?: Logger;
}

export interface CircuitDhtPutResult {
  /** Nodes that confirmed the record (the proxy node included when it keeps a copy). */
  stored: number;
  /** The record as published, with the proxy node's co-signature. */
  record: DhtRecord;
}

export interface CircuitDhtClient {
  /** The valid record with the highest sequence number for `key`, or undefined. Rejects with DhtError. */
  get(key: Uint8Array): Promise<DhtRecord | undefined>;
  /** Every valid record the proxy returned, highest sequence first. */
  getAll(key: Uint8Array): Promise<DhtRecord[]>;
  /** Has the proxy node co-sign and publish an owner-signed record. Rejects with DhtError. */
  put(record: OwnerSignedRecord): Promise<CircuitDhtPutResult>;
  /** Ends the stream. */
  close(): void;
  readonly rpc: StreamRpc;
}

/** The DhtError a stream-RPC failure means. */
export function streamRpcToDhtError(err: unknown): DhtError {
  if (err instanceof DhtError) return err;
  if (!(err instanceof StreamRpcError)) return new DhtError("malformed", `DHT proxy request failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  if (err.kind === "refused" && err.code !== undefined && (DHT_ERROR_KINDS as readonly string[]).includes(err.code)) {
    return new DhtError(err.code as DhtErrorKind, err.message, { cause: err });
  }
  const kinds: Record<StreamRpcError["kind"], DhtErrorKind> = {
    "bad-argument": "bad-config",
    timeout: "timeout",
    closed: "unreachable",
    busy: "busy",
    oversized: "oversized",
    malformed: "malformed",
    refused: "malformed",
    "handler-failed": "malformed",
  };
  return new DhtError(kinds[err.kind], err.message, { cause: err });
}

function decodeResponse(bytes: Uint8Array, expected: "records" | "stored"): Record<string, unknown> {
  let m: unknown;
  try {
    m = decodeCanonical(bytes, { maxBytes: DHT_PROXY_MAX_MESSAGE_BYTES });
  } catch (cause) {
    throw new DhtError("unexpected-response", "the DHT proxy answered with bytes that are not canonical CBOR", { cause });
  }
  if (!isCborMap(m) || m["t"] !== expected) throw new DhtError("unexpected-response", `the DHT proxy did not answer with "${expected}"`);
  return m;
}

/** The client side over a stream opened to service "dht" at the last hop of a circuit. */
export function createCircuitDhtClient(stream: RpcStream, options: CircuitDhtClientOptions = {}): CircuitDhtClient {
  const rpc = createStreamRpc(stream, { maxMessageBytes: DHT_PROXY_MAX_MESSAGE_BYTES });
  const timeoutMs = options.timeoutMs ?? DEFAULT_DHT_PROXY_TIMEOUT_MS;
  const limits = options.limits ?? DEFAULT_RECORD_LIMITS;
  const now = options.now ?? Date.now;
  const log = childLogger(options.logger, "dht-proxy");
  const call = async (request: Request, expected: "records" | "stored"): Promise<Record<string, unknown>> => {
    let bytes: Uint8Array;
    try {
      bytes = await rpc.request(encodeDhtProxyRequest(request), { timeoutMs });
    } catch (err) {
      throw streamRpcToDhtError(err);
    }
    return decodeResponse(bytes, expected);
  };
  const getAll = async (key: Uint8Array): Promise<DhtRecord[]> => {
    if (!isId(key)) throw new DhtError("malformed", "a DHT key is 32 bytes (recordKey(owner, name))");
    const m = await call({ t: "get", key }, "records");
    const list = m["records"];
    if (!Array.isArray(list)) throw new DhtError("unexpected-response", "the DHT proxy's records field is not a list");
    const valid: DhtRecord[] = [];
    for (const item of list) {
      try {
        const r = recordFromWire(item);
        if (!idsEqual(r.key, key)) continue;
        validateRecord(r, { now: now(), limits });
        valid.push(r);
      } catch (err) {
        if (!isPspError(err)) throw err;
        // An invalid record from the proxy is dropped, never returned.
        logFailure(log, err, "take a record from the DHT proxy", "debug");
      }
    }
    return valid.sort((a, b) => b.seq - a.seq);
  };
  return {
    rpc,
    getAll,
    async get(key) {
      return (await getAll(key))[0];
    },
    async put(record) {
      const m = await call({ t: "put", record }, "stored");
      const stored = m["stored"];
      if (typeof stored !== "number" || !Number.isSafeInteger(stored) || stored < 1) throw new DhtError("unexpected-response", "the DHT proxy's stored count is not a positive integer");
      const cosigned = recordFromWire(m["record"]);
      // The proxy must have published exactly what we signed, with a valid co-signature.
      if (!idsEqual(cosigned.ownerSig, record.ownerSig) || !idsEqual(cosigned.key, record.key) || cosigned.seq !== record.seq) {
        throw new DhtError("unexpected-response", "the DHT proxy returned a record other than the one sent");
      }
      validateRecord(cosigned, { now: now(), limits });
      return { stored, record: cosigned };
    },
    close() {
      rpc.close();
    },
  };
}

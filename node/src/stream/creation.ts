/**
 * Stream creation through a circuit (whitepaper §8.2): service "stream" a
 * landing node offers at the end of 3-hop circuits, and the producer's call
 * (docs/spec/streaming.md "Creation").
 *
 * Owns the request and response (canonical CBOR maps, one stream-RPC
 * message each):
 *   request  { v: 1, receipt: bytes (1..8192), kbps: uint, dur: uint (s),
 *              pub: bool, dist: [[identity (32), host, port], ...] (≤ 32) }
 *   response { v: 1, id: bytes (16), token: bytes (32), exp: uint (ms) }
 * and the mapping of refusals: the host's StreamMediaError kinds travel as
 * the stream RPC's "refused" code and come back as the same kind.
 *
 * Trusts: host.ts for every check on the request. The landing node learns
 * the circuit, never who is behind it.
 */
import { cborReaders } from "../wire/fields.js";
import { decodeCanonical, encodeCanonical } from "../wire/canonical.js";
import { createStreamRpc, streamRpcService, StreamRpcError } from "../onion/stream-rpc.js";
import type { RpcStream } from "../onion/stream-rpc.js";
import type { LocalService } from "../onion/types.js";
import type { Logger } from "../log.js";
import { MAX_HOST_LEN, MAX_POINTS, NODE_IDENTITY_LEN, PUBLISH_TOKEN_LEN, STREAM_ID_LEN } from "./frames.js";
import type { NodeEntry } from "./frames.js";
import type { CreatedStream, CreateStreamRequest, StreamHost } from "./host.js";
import { StreamMediaError } from "./media-errors.js";
import type { StreamMediaErrorKind } from "./media-errors.js";

/** The onion service name. */
export const STREAM_CIRCUIT_SERVICE = "stream";
/** Largest receipt a creation request may carry (linkable or blind; receipt.ts caps each kind far lower). */
export const MAX_CREATION_RECEIPT_BYTES = 8192;
export const MAX_CREATION_MESSAGE_BYTES = 16 * 1024;
const VERSION = 1;

const read = cborReaders((message) => new StreamMediaError("malformed", message));

export function encodeCreateRequest(r: CreateStreamRequest): Uint8Array {
  return encodeCanonical({
    v: VERSION,
    receipt: r.receipt,
    kbps: r.kbps,
    dur: r.durationS,
    pub: r.public,
    dist: r.distribution.map((d) => [d.identity, d.host, d.port]),
  });
}

export function decodeCreateRequest(bytes: Uint8Array): CreateStreamRequest {
  let value;
  try {
    value = decodeCanonical(bytes, { maxBytes: MAX_CREATION_MESSAGE_BYTES, maxDepth: 4 });
  } catch (err) {
    throw new StreamMediaError("malformed", `a creation request is not canonical CBOR: ${(err as Error).message}`, { cause: err });
  }
  const m = read.readMap(value, "creation request", ["v", "receipt", "kbps", "dur", "pub", "dist"]);
  if (read.readUint(m["v"], "v", 255) !== VERSION) throw new StreamMediaError("malformed", `creation request version ${String(m["v"])} is not ${VERSION}`);
  const receipt = m["receipt"];
  if (!(receipt instanceof Uint8Array) || receipt.length < 1 || receipt.length > MAX_CREATION_RECEIPT_BYTES) {
    throw new StreamMediaError("malformed", `receipt must be 1..${MAX_CREATION_RECEIPT_BYTES} bytes`);
  }
  if (typeof m["pub"] !== "boolean") throw new StreamMediaError("malformed", "pub must be a boolean");
  const distribution: NodeEntry[] = read.readArray(m["dist"], "dist", MAX_POINTS).map((item, i) => {
    const [identity, host, port] = read.readArray(item, `dist[${i}]`, 3, 3);
    return {
      identity: read.readBytes(identity, `dist[${i}] identity`, NODE_IDENTITY_LEN),
      host: read.readText(host, `dist[${i}] host`, MAX_HOST_LEN),
      port: read.readUint(port, `dist[${i}] port`, 0xffff),
      load: 0,
    };
  });
  return {
    receipt,
    kbps: read.readUint(m["kbps"], "kbps", 10_000_000),
    durationS: read.readUint(m["dur"], "dur", 366 * 24 * 3600),
    public: m["pub"],
    distribution,
  };
}

export function encodeCreateResponse(c: CreatedStream): Uint8Array {
  return encodeCanonical({ v: VERSION, id: c.streamId, token: c.token, exp: c.expiresAt });
}

export function decodeCreateResponse(bytes: Uint8Array): CreatedStream {
  let value;
  try {
    value = decodeCanonical(bytes, { maxBytes: 1024, maxDepth: 2 });
  } catch (err) {
    throw new StreamMediaError("malformed", `a creation response is not canonical CBOR: ${(err as Error).message}`, { cause: err });
  }
  const m = read.readMap(value, "creation response", ["v", "id", "token", "exp"]);
  if (read.readUint(m["v"], "v", 255) !== VERSION) throw new StreamMediaError("malformed", "unknown creation response version");
  return {
    streamId: read.readBytes(m["id"], "id", STREAM_ID_LEN).slice(),
    token: read.readBytes(m["token"], "token", PUBLISH_TOKEN_LEN).slice(),
    expiresAt: read.readUint(m["exp"], "exp"),
  };
}

/** Service "stream": creation requests at the end of circuits, answered by `host`. */
export function streamCreationService(host: Pick<StreamHost, "create">, options: { flush?: () => void; logger?: Logger } = {}): LocalService {
  return streamRpcService(async (request) => encodeCreateResponse(await host.create(decodeCreateRequest(request))), {
    maxMessageBytes: MAX_CREATION_MESSAGE_BYTES,
    maxInflight: 2,
    ...(options.flush ? { flush: options.flush } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
}

/** Asks the landing node at the end of `stream` (circuit.openStream("stream")) to create a stream. Refusals keep the landing node's kind. */
export async function requestStreamCreation(stream: RpcStream, request: CreateStreamRequest, options: { timeoutMs?: number } = {}): Promise<CreatedStream> {
  const rpc = createStreamRpc(stream, { maxMessageBytes: MAX_CREATION_MESSAGE_BYTES });
  try {
    return decodeCreateResponse(await rpc.request(encodeCreateRequest(request), { timeoutMs: options.timeoutMs ?? 15_000 }));
  } catch (err) {
    if (err instanceof StreamRpcError && err.kind === "refused" && err.code !== undefined && (StreamMediaError.kinds as readonly string[]).includes(err.code)) {
      throw new StreamMediaError(err.code as StreamMediaErrorKind, err.message, { cause: err });
    }
    if (err instanceof StreamMediaError) throw err;
    throw new StreamMediaError("unreachable", `the landing node could not be asked: ${(err as Error).message}`, { cause: err });
  } finally {
    rpc.close();
  }
}

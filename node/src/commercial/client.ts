/**
 * The client side of commercial nodes (docs/spec/commercial.md "Client"):
 * which nodes of a consensus serve an application, choosing one, and a
 * connection to one of its services over an onion stream (opened by the
 * caller through a 3-hop circuit, or a 1-hop one when the app does not need
 * to hide the user's address).
 *
 * Owns: the selection rule (consensus entries with the commercial flag whose
 * application ids include the app's, onion relays, uniformly at random), the
 * open handshake from the client's side, and the mapping of the node's
 * refusals and the stream RPC's errors to CommercialError kinds.
 *
 * Trusts: the consensus (verified K of N by the directory layer; each id in
 * it confirmed on chain by a majority of discovery nodes); the onion layer
 * for delivery. The node's answers are the application's to judge.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { withTimeout } from "../base/timeout.js";
import { bytesEqual } from "../base/bytes.js";
import { NodeFlag } from "../directory/config.js";
import type { ConsensusEntry } from "../directory/consensus.js";
import { consensusToPathNodes } from "../directory/path-nodes.js";
import { createStreamRpc, StreamRpcError } from "../onion/stream-rpc.js";
import type { StreamRpc } from "../onion/stream-rpc.js";
import type { OnionStream } from "../onion/onion-client.js";
import type { PathNode } from "../onion/path.js";
import { CommercialError, WIRE_REFUSAL_KINDS } from "./errors.js";
import type { CommercialErrorKind } from "./errors.js";
import { decodeOpenReply, encodeOpen, signOpenProof } from "./messages.js";
import type { ServiceMode } from "./messages.js";

/** Default deadline of the open handshake and of one request. */
export const DEFAULT_COMMERCIAL_TIMEOUT_MS = 15_000;

/** The onion relays of `consensus` whose entries list `appId` (commercial flag), in consensus order. */
export function applicationNodes(consensus: { entries: readonly ConsensusEntry[] }, appId: Uint8Array): PathNode[] {
  const serving = consensus.entries.filter((e) => (e.flags & NodeFlag.commercial) !== 0 && (e.apps ?? []).some((a) => bytesEqual(a, appId)));
  return consensusToPathNodes({ entries: serving });
}

/** One of `nodes` uniformly at random (`random` in [0, 1)); CommercialError "no-nodes" when there is none. */
export function chooseApplicationNode(nodes: readonly PathNode[], application: string, random: () => number = Math.random): PathNode {
  if (nodes.length === 0) {
    throw new CommercialError(
      "no-nodes",
      `the consensus lists no commercial node of ${application}: has the application published one on chain, and is it up?`,
    );
  }
  return nodes[Math.min(nodes.length - 1, Math.floor(random() * nodes.length))] as PathNode;
}

/** How the client proves its identity when the service asks for one. */
export interface OpenIdentity {
  /** The client's 32-byte Ed25519 identity seed. */
  secretKey: Uint8Array;
  /** Its access certificate. */
  certificate: Uint8Array;
}

export interface OpenCommercialOptions {
  appId: Uint8Array;
  service: string;
  /** The commercial node's identity key: the proof is bound to it. */
  node: Uint8Array;
  identity?: OpenIdentity;
  timeoutMs?: number;
}

export interface CommercialConnectionEvents {
  /** A duplex service's message. */
  message: [Uint8Array];
  close: [];
}

/** An open connection to one service of one application at one commercial node. */
export class CommercialConnection extends EventEmitter<CommercialConnectionEvents> {
  private rpc: StreamRpc | undefined;

  /** @internal made by openCommercial */
  constructor(
    private readonly stream: OnionStream,
    readonly mode: ServiceMode,
    readonly maxMessageBytes: number,
    readonly node: Uint8Array,
    private readonly timeoutMs: number,
  ) {
    super();
    if (mode === "request") this.rpc = createStreamRpc(stream, { maxMessageBytes });
    else {
      const early = stream.takeBuffered();
      stream.on("message", (m) => this.emit("message", m));
      queueMicrotask(() => {
        for (const m of early) this.emit("message", m);
      });
    }
    void stream.closed.then(() => this.emit("close"));
  }

  get isOpen(): boolean {
    return this.stream.isOpen;
  }

  /** Resolves when the stream ends. */
  get closed(): Promise<unknown> {
    return this.stream.closed;
  }

  /**
   * One request to a request service; resolves with its response. Rejects
   * with CommercialError: the node's refusal kind ("rate-limited" with
   * retryAfterMs, "too-large", "refused", "handler-failed", "malformed"),
   * or "timeout" / "unreachable" / "closed".
   */
  async request(body: Uint8Array, options: { timeoutMs?: number } = {}): Promise<Uint8Array> {
    if (!this.rpc) throw new CommercialError("bad-argument", "this is a duplex service: use send() and the 'message' event");
    if (body.length > this.maxMessageBytes)
      throw new CommercialError("too-large", `the request is ${body.length} bytes; the service takes at most ${this.maxMessageBytes}`);
    try {
      return await this.rpc.request(body, { timeoutMs: options.timeoutMs ?? this.timeoutMs });
    } catch (err) {
      throw commercialErrorOf(err);
    }
  }

  /** Sends one message to a duplex service. */
  async send(message: Uint8Array): Promise<void> {
    if (this.rpc) throw new CommercialError("bad-argument", "this is a request service: use request()");
    if (message.length > this.maxMessageBytes)
      throw new CommercialError("too-large", `the message is ${message.length} bytes; the service takes at most ${this.maxMessageBytes}`);
    try {
      await this.stream.send(message);
    } catch (err) {
      throw new CommercialError("closed", `the stream to the commercial node closed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Ends the stream (and, for a stream from PspClient.app().connect(), its circuit). */
  close(): void {
    this.rpc?.close();
    this.stream.close();
  }
}

/** Maps a stream-RPC failure to the commercial kind it carries. */
export function commercialErrorOf(err: unknown): CommercialError {
  if (err instanceof CommercialError) return err;
  if (err instanceof StreamRpcError) {
    const code = err.code as CommercialErrorKind | undefined;
    if (err.kind === "refused" && code && WIRE_REFUSAL_KINDS.includes(code)) {
      return new CommercialError(code, err.message, { cause: err, ...(code === "rate-limited" ? { retryAfterMs: 1000 } : {}) });
    }
    const kind: CommercialErrorKind =
      err.kind === "oversized"
        ? "too-large"
        : err.kind === "busy"
          ? "rate-limited"
          : err.kind === "timeout"
            ? "timeout"
            : err.kind === "malformed"
              ? "malformed"
              : err.kind === "handler-failed"
                ? "handler-failed"
                : err.kind === "refused"
                  ? "refused"
                  : "unreachable";
    return new CommercialError(kind, err.message, { cause: err });
  }
  return new CommercialError("unreachable", `the commercial node could not be reached: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

/**
 * Runs the open handshake on `stream` (a stream to service "commercial" at
 * the node). Rejects with CommercialError: the node's refusal kind, or
 * "timeout", "malformed", "unreachable".
 */
export async function openCommercial(stream: OnionStream, options: OpenCommercialOptions): Promise<CommercialConnection> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_COMMERCIAL_TIMEOUT_MS;
  const proof = options.identity
    ? signOpenProof({
        secretKey: options.identity.secretKey,
        cert: options.identity.certificate,
        node: options.node,
        app: options.appId,
        service: options.service,
        ts: Date.now(),
        nonce: new Uint8Array(randomBytes(16)),
      })
    : undefined;
  const open = encodeOpen({ app: options.appId, service: options.service, ...(proof ? { proof } : {}) });
  const reply = await withTimeout(
    (async () => {
      try {
        await stream.send(open);
        return await stream.receive();
      } catch (err) {
        throw new CommercialError("unreachable", `the stream to the commercial node closed during the open: ${(err as Error).message}`, { cause: err });
      }
    })(),
    timeoutMs,
    () => new CommercialError("timeout", `the commercial node did not answer the open within ${timeoutMs} ms`),
  ).catch((err: unknown) => {
    stream.close();
    throw err;
  });
  let decoded;
  try {
    decoded = decodeOpenReply(reply);
  } catch (err) {
    stream.close();
    throw err;
  }
  if (decoded.t === "refused") {
    stream.close();
    throw new CommercialError(
      decoded.kind,
      `the commercial node refused: ${decoded.message}`,
      decoded.retryAfterMs === undefined ? {} : { retryAfterMs: decoded.retryAfterMs },
    );
  }
  return new CommercialConnection(stream, decoded.mode, decoded.maxMessageBytes, options.node, timeoutMs);
}

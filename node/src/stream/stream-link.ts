/**
 * Stream links: TLS connections with ALPN psp-stream/1 to a node's link
 * port, carrying frames.ts frames (docs/spec/streaming.md "Stream links").
 *
 * Owns: the node proof (NODE_PROOF: the node's Ed25519 identity and its
 * signature over the link AUTH transcript of handshake.ts with both
 * "versions" fields set to the ASCII ALPN id and the EKM exported under
 * STREAM_EKM_LABEL, so the proof is bound to this TLS session and cannot
 * be taken to a link or another stream link), the dialer's check of it
 * against the identity it expected, an optional proof of the dialer (a
 * landing node feeding a distribution node), write backpressure, and the
 * framing of the socket. Viewers and producers dial without any identity.
 *
 * Trusts: TLS for the session and its EKM. Nothing the peer sends: frames
 * go through FrameReader, proofs are verified before anything else.
 */
import { EventEmitter } from "node:events";
import { connect as tlsConnect } from "node:tls";
import type { TLSSocket } from "node:tls";
import { constantTimeEqual } from "../crypto/compare.js";
import { ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import { authTranscript } from "../link/handshake.js";
import { STREAM_ALPN, streamClientTlsOptions } from "../link/tls.js";
import { encodeFrame, FrameReader } from "./frames.js";
import type { StreamFrame } from "./frames.js";
import { mediaRefusalCodes, StreamMediaError } from "./media-errors.js";
import type { MediaRefusalKind } from "./media-errors.js";

export const STREAM_EKM_LABEL = "EXPORTER-psp-stream-auth";
export const STREAM_EKM_LEN = 32;
/** Default time to connect and receive the node's proof. */
export const DEFAULT_STREAM_CONNECT_TIMEOUT_MS = 5000;
const ALPN_BYTES = new TextEncoder().encode(STREAM_ALPN);

export type ProofRole = "initiator" | "responder";

/** The bytes a NODE_PROOF signs. */
export function streamProofTranscript(role: ProofRole, ekm: Uint8Array, identity: Uint8Array): Uint8Array {
  return authTranscript({ signerRole: role, version: 1, initiatorVersions: ALPN_BYTES, responderVersions: ALPN_BYTES, ekm, signerIdentity: identity });
}

function ekmOf(socket: TLSSocket): Uint8Array {
  return new Uint8Array(socket.exportKeyingMaterial(STREAM_EKM_LEN, STREAM_EKM_LABEL, Buffer.alloc(0)));
}

export function makeNodeProof(socket: TLSSocket, role: ProofRole, identity: Ed25519KeyPair): StreamFrame {
  return {
    type: "node-proof",
    identity: identity.publicKey,
    signature: ed25519Sign(identity.secretKey, streamProofTranscript(role, ekmOf(socket), identity.publicKey)),
  };
}

/** Checks a NODE_PROOF received on `socket` from a peer in `role`; returns the proven identity. */
export function checkNodeProof(socket: TLSSocket, role: ProofRole, frame: StreamFrame, expected?: Uint8Array): Uint8Array {
  if (frame.type !== "node-proof") throw new StreamMediaError("node-auth-failed", `expected the node's proof first, got a ${frame.type} frame`);
  if (!ed25519Verify(frame.identity, streamProofTranscript(role, ekmOf(socket), frame.identity), frame.signature)) {
    throw new StreamMediaError("node-auth-failed", "the node's proof does not verify over this TLS session");
  }
  if (expected && !constantTimeEqual(expected, frame.identity))
    throw new StreamMediaError("node-auth-failed", "the node proved another identity than the one dialed");
  return frame.identity;
}

export interface StreamLinkEvents {
  frame: [StreamFrame];
  /** Once, when the socket closed; `error` when a frame was malformed or the socket failed. */
  close: [StreamMediaError | undefined];
  drain: [];
}

/** One framed stream link (either end). */
export class StreamLink extends EventEmitter<StreamLinkEvents> {
  /** The other end's proven node identity, if it proved one. */
  peerIdentity: Uint8Array | undefined;
  readonly remoteAddress: string | undefined;
  private readonly reader = new FrameReader();
  private closed = false;
  private closeError: StreamMediaError | undefined;
  bytesOut = 0;
  bytesIn = 0;

  constructor(readonly socket: TLSSocket) {
    super();
    this.remoteAddress = socket.remoteAddress;
    socket.setNoDelay(true);
    socket.on("data", (data: Buffer) => this.onData(data));
    socket.on("drain", () => this.emit("drain"));
    socket.on("error", (err) => {
      this.closeError ??= new StreamMediaError("closed", `stream link failed: ${err.message}`, { cause: err });
    });
    socket.on("close", () => {
      this.closed = true;
      this.emit("close", this.closeError);
    });
  }

  get isOpen(): boolean {
    return !this.closed && !this.socket.destroyed;
  }

  private onData(data: Buffer): void {
    if (this.closed || this.closeError) return;
    this.bytesIn += data.length;
    let frames: StreamFrame[];
    try {
      frames = this.reader.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } catch (err) {
      // Undecodable bytes: say why (REFUSE) and close; nothing more from this peer is read.
      this.closeError = err as StreamMediaError;
      this.refuse(this.closeError);
      this.socket.pause();
      return;
    }
    for (const f of frames) {
      if (this.closed || this.socket.destroyed) return;
      this.emit("frame", f);
    }
  }

  /** Writes a frame; false when the socket's buffer is full (wait for "drain"). */
  send(frame: StreamFrame): boolean {
    return this.sendBytes(encodeFrame(frame));
  }

  /** Writes already-encoded frame bytes (a forwarded CHUNK). */
  sendBytes(bytes: Uint8Array): boolean {
    if (!this.isOpen) return false;
    this.bytesOut += bytes.length;
    return this.socket.write(bytes);
  }

  /** Sends a REFUSE and closes once it is written. */
  refuse(err: StreamMediaError): void {
    if (!this.isOpen) return;
    const kind: MediaRefusalKind = mediaRefusalCodes.codeOf(err.kind) === undefined ? "refused" : (err.kind as MediaRefusalKind);
    this.socket.end(encodeFrame({ type: "refuse", kind, text: err.message }));
    const t = setTimeout(() => this.socket.destroy(), 2000);
    t.unref();
  }

  close(): void {
    if (this.isOpen) this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), 1000);
    t.unref();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** The next frame, or the close as an error, within `timeoutMs`. */
  nextFrame(timeoutMs: number): Promise<StreamFrame> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.off("frame", onFrame);
        this.off("close", onClose);
      };
      const onFrame = (f: StreamFrame): void => {
        done();
        resolve(f);
      };
      const onClose = (err: StreamMediaError | undefined): void => {
        done();
        reject(err ?? new StreamMediaError("closed", "the stream link closed"));
      };
      const timer = setTimeout(() => {
        done();
        reject(new StreamMediaError("timeout", `no frame within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on("frame", onFrame);
      this.on("close", onClose);
      if (!this.isOpen) onClose(this.closeError);
    });
  }
}

/** A REFUSE frame as the error it carries. */
export function refusalError(frame: StreamFrame, what: string): StreamMediaError {
  if (frame.type === "refuse") {
    const kind = frame.kind === "refused" ? "refused" : frame.kind;
    return new StreamMediaError(kind, `${what} refused (${frame.kind}): ${frame.text}`);
  }
  return new StreamMediaError("malformed", `${what}: unexpected ${frame.type} frame`);
}

export interface ConnectStreamLinkOptions {
  host: string;
  port: number;
  /** The node identity the peer must prove. */
  expectedIdentity: Uint8Array;
  /** Ours, when we are a node that must prove itself (a landing node feeding a distribution node). */
  identity?: Ed25519KeyPair;
  timeoutMs?: number;
}

/** Dials a node's stream link and checks its proof; proves ours when `identity` is given. */
export async function connectStreamLink(options: ConnectStreamLinkOptions): Promise<StreamLink> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_STREAM_CONNECT_TIMEOUT_MS;
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tlsConnect(streamClientTlsOptions(options.host, options.port));
    const timer = setTimeout(() => {
      s.destroy();
      reject(new StreamMediaError("timeout", `no TLS session with ${options.host}:${options.port} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once("secureConnect", () => {
      clearTimeout(timer);
      if (s.alpnProtocol !== STREAM_ALPN) {
        s.destroy();
        reject(new StreamMediaError("unreachable", `${options.host}:${options.port} does not serve stream links`));
        return;
      }
      resolve(s);
    });
    s.once("error", (err) => {
      clearTimeout(timer);
      reject(new StreamMediaError("unreachable", `cannot reach ${options.host}:${options.port}: ${err.message}`, { cause: err }));
    });
  });
  const link = new StreamLink(socket);
  try {
    const first = await link.nextFrame(timeoutMs);
    link.peerIdentity = checkNodeProof(socket, "responder", first, options.expectedIdentity);
    if (options.identity) link.send(makeNodeProof(socket, "initiator", options.identity));
    return link;
  } catch (err) {
    link.destroy();
    throw err;
  }
}

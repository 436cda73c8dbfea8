/**
 * The client side of the circuit protocol, as a pure state machine.
 *
 * Owns the circuits this node originates: building them hop by hop (CREATE2
 * to the first hop, then EXTEND2 in RELAY_EARLY to the current last hop),
 * adding and peeling one onion layer per hop, opening streams to named
 * services on a hop (BEGIN/CONNECTED), sending and receiving messages
 * (fragmented into DATA cells under SENDME windows), TRUNCATE, DESTROY, build
 * and idle timeouts, and the node's send-rate limit.
 *
 * Inputs: `buildCircuit`, `extendCircuit`, `openStream`, `send`, `closeStream`,
 * `closeCircuit`, `truncate` (calls from the application) and `linkOpened`,
 * `linkFailed`, `linkClosed`, `handleCell(s)`, `tick` (from the driver), each
 * with the current time. Outputs: `takeActions()` and `nextWakeup()`.
 * The plumbing it shares with the relay (links, circuit ids, link requests,
 * the checks every incoming cell passes, runs, scheduling, `pump`) is
 * circuit-core.ts; this file is what a client does with it.
 * Results come as events (circuit-open, stream-open, stream-message, ...);
 * `circuitInfo` and `streamInfo` answer state queries.
 *
 * Trusts: the link layer's `peerIdentity`; the node list it was given.
 * Trusts nothing in cells: a cell no hop recognizes, a bad handshake reply or
 * a window overrun closes the circuit with a typed CircuitError, sent to the
 * relays as DESTROY.
 */
import { CELL_PAYLOAD_LEN, CellCommand } from "../wire/cell.js";
import { MAX_STREAM_ID, RELAY_DATA_OFFSET, RelayCommand, decodeRelayPayload, encodeRelayPayload, encodeRelayPayloadInto, writeRelayHeader } from "../wire/relay.js";
import type { RelayPayloadInput } from "../wire/relay.js";
import { ntorClientCreate, ntorClientFinish } from "../crypto/ntor.js";
import type { NtorClientState } from "../crypto/ntor.js";
import { isPspError } from "../errors.js";
import {
  CIRCUIT_WINDOW_INCREMENT,
  CIRCUIT_WINDOW_START,
  DEFAULT_LIMITS,
  DEFAULT_MAX_CIRCUIT_LENGTH,
  DestroyReason,
  EndReason,
  HANDSHAKE_NTOR,
  HOP_KEY_MATERIAL_LEN,
  MAX_RELAY_EARLY,
  destroyReasonName,
  endReasonName,
  toEndReason,
} from "./constants.js";
import { CircuitCore, EMPTY, ZERO_DIGEST, makeSide } from "./circuit-core.js";
import type { CoreLink, Side } from "./circuit-core.js";
import { CircuitError } from "./errors.js";
import { FlowWindow } from "./flow-control.js";
import { DATA_CHUNK_LEN } from "./framing.js";
import { keyHex } from "./path.js";
import type { PathNode } from "./path.js";
import { decodeCreated2, decodeDestroy, decodeTruncatedReason, encodeBegin, encodeCreate2, encodeExtend2, encodeReason } from "./payloads.js";
import { RunStep, hopCryptoFromKeyMaterial } from "./relay-crypto.js";
import type { HopCrypto } from "./relay-crypto.js";
import { encodeRelayRun, gatherPayloads, gatherPayloadsTransient } from "./cell-run.js";
import { EdgeStream } from "./streams.js";
import type { LinkFailureCause } from "./types.js";

export interface ClientLimits {
  nodeBytesPerSecond: number;
  nodeBurstBytes: number;
  circuitBytesPerSecond: number;
  circuitBurstBytes: number;
  maxStreamsPerCircuit: number;
  maxQueuedCellsPerCircuit: number;
  maxMessageBytes: number;
  buildTimeoutMs: number;
  clientCircuitIdleMs: number;
  /** Longest circuit this client will build. */
  maxHops: number;
}

export interface OnionClientOptions {
  now: number;
  protoId?: string;
  limits?: Partial<ClientLimits>;
  /** Random 32-bit integers for circuit ids; default crypto-random. */
  randomU32?: () => number;
}

export type ClientCircuitState = "waiting-link" | "building" | "open" | "closed";

export interface ClientCircuitInfo {
  circuitId: number;
  state: ClientCircuitState;
  /** Hops with established keys. */
  hops: number;
  /** Why it closed (set when state is "closed" and the close was not requested locally). */
  error: CircuitError | undefined;
  openStreams: number;
}

export interface ClientStreamInfo {
  streamId: number;
  service: string;
  hop: number;
  state: "connecting" | "open" | "closed";
  queuedCells: number;
  /** DATA cells the stream may still send before it needs a SENDME. */
  packageWindow: number;
  error: CircuitError | undefined;
}

interface ClientHop {
  node: PathNode;
  crypto: HopCrypto;
  window: FlowWindow;
  /** Sends the circuit SENDMEs for this hop held back once they are due (made on first use). */
  sendSendmesLater?: () => void;
}

interface ClientStream extends EdgeStream {
  error?: CircuitError;
  /** Sends the stream SENDMEs held back once they are due (made on first use). */
  sendSendmesLater?: () => void;
}

interface ClientCircuit {
  id: number;
  /** Nodes still to add, in order. */
  plan: PathNode[];
  hops: ClientHop[];
  state: ClientCircuitState;
  error: CircuitError | undefined;
  /** The circuit's side on the link to the first hop, once CREATE is sent. */
  side: Side | undefined;
  requestId: number | undefined;
  handshake: { state: NtorClientState; node: PathNode } | undefined;
  buildDeadline: number | undefined;
  relayEarlyLeft: number;
  streams: Map<number, ClientStream>;
  closedStreams: Map<number, ClientStream>;
  nextStreamId: number;
  lastActivity: number;
  /** Plaintext relay payloads for a hop, waiting to be sealed as runs and wrapped in the onion layers (at flush, in order). */
  forwardBatch: { hop: number; command: number; payload: Uint8Array }[];
  /**
   * Plaintext payloads of `forwardBatch` are written back to back here (each
   * batch entry a view), so the bulk path hands one contiguous run to the
   * first cipher without a copy. Reused after every flush: the cipher's output
   * is a new buffer, so no queued cell refers to it.
   */
  staging: Buffer | undefined;
  /** Payloads written to `staging` since the last flush. */
  stagedCount: number;
}

/** Payloads a circuit stages per flush before falling back to one buffer per payload (about 130 KB). */
const STAGING_PAYLOADS = 256;
/** The client's side table holds the circuit itself: it has one side, towards its first hop. */
export class OnionClient extends CircuitCore<ClientCircuit, ClientCircuit, CoreLink> {
  private readonly protoId: string | undefined;
  private readonly limits: ClientLimits;
  private readonly circuits = new Map<number, ClientCircuit>();
  private nextCircuitId = 1;

  constructor(options: OnionClientOptions) {
    const limits: ClientLimits = { ...DEFAULT_LIMITS, maxHops: DEFAULT_MAX_CIRCUIT_LENGTH, ...options.limits };
    super({ now: options.now, limits, randomU32: options.randomU32, relayEarlyInRuns: false });
    this.protoId = options.protoId;
    this.limits = limits;
  }

  // ---- application calls ------------------------------------------------------

  /**
   * Starts building a circuit through `path` (entry first). Returns its id;
   * a "circuit-open" or "circuit-closed" event follows.
   */
  buildCircuit(path: readonly PathNode[], now: number): number {
    if (path.length < 1) throw new CircuitError("bad-argument", "a circuit needs at least one hop");
    if (path.length > this.limits.maxHops) {
      throw new CircuitError("too-many-hops", `path has ${path.length} hops; this client builds at most ${this.limits.maxHops}`);
    }
    const ids = new Set(path.map((n) => keyHex(n.identity)));
    if (ids.size !== path.length) throw new CircuitError("bad-argument", "a path must not repeat a node");
    if ((path[0] as PathNode).host === "") {
      throw new CircuitError("bad-argument", "the first hop has no address (an internal node): it can only be a middle or last hop");
    }
    const circ: ClientCircuit = {
      id: this.nextCircuitId++,
      plan: [...path],
      hops: [],
      state: "waiting-link",
      error: undefined,
      side: undefined,
      requestId: undefined,
      handshake: undefined,
      buildDeadline: now + this.limits.buildTimeoutMs,
      relayEarlyLeft: MAX_RELAY_EARLY,
      streams: new Map(),
      closedStreams: new Map(),
      nextStreamId: 1,
      lastActivity: now,
      forwardBatch: [],
      staging: undefined,
      stagedCount: 0,
    };
    this.circuits.set(circ.id, circ);
    this.enter(now, () => {
      const first = path[0] as PathNode;
      const link = this.linkTo(first.identity, [{ host: first.host, port: first.port }], circ);
      if (typeof link === "number") circ.requestId = link;
      else this.sendCreate(circ, link);
    });
    return circ.id;
  }

  /** Extends an open circuit by one more hop ("circuit-extended" then "circuit-open" follow). */
  extendCircuit(circuitId: number, node: PathNode, now: number): void {
    const circ = this.openCircuit(circuitId);
    if (circ.hops.length + 1 > this.limits.maxHops) {
      throw new CircuitError("too-many-hops", `circuit has ${circ.hops.length} hops; this client builds at most ${this.limits.maxHops}`);
    }
    if (circ.hops.some((h) => keyHex(h.node.identity) === keyHex(node.identity))) {
      throw new CircuitError("bad-argument", "the node is already a hop of this circuit");
    }
    this.enter(now, () => {
      circ.plan.push(node);
      circ.state = "building";
      circ.buildDeadline = now + this.limits.buildTimeoutMs;
      this.extendNext(circ);
    });
  }

  /** Opens a stream to `service` on a hop (the last by default). Returns the stream id; "stream-open" follows. */
  openStream(circuitId: number, service: string, now: number, options: { hop?: number } = {}): number {
    const circ = this.openCircuit(circuitId);
    const hop = options.hop ?? circ.hops.length - 1;
    if (!Number.isInteger(hop) || hop < 0 || hop >= circ.hops.length) {
      throw new CircuitError("bad-argument", `hop must be 0..${circ.hops.length - 1}, got ${hop}`);
    }
    if (circ.streams.size >= this.limits.maxStreamsPerCircuit) {
      throw new CircuitError("resource-limit", `circuit ${circuitId} already has ${circ.streams.size} streams; close one or build another circuit`);
    }
    const begin = encodeBegin(service);
    const streamId = this.allocateStreamId(circ);
    const stream: ClientStream = new EdgeStream(streamId, service, hop, this.limits.maxMessageBytes);
    circ.streams.set(streamId, stream);
    this.enter(now, () => this.sendRelay(circ, hop, RelayCommand.BEGIN, streamId, begin));
    return streamId;
  }

  /** Queues one message on an open (or connecting) stream. */
  send(circuitId: number, streamId: number, message: Uint8Array, now: number): void {
    const circ = this.openCircuit(circuitId);
    const stream = circ.streams.get(streamId);
    if (!stream || stream.phase === "closed") {
      throw new CircuitError("stream-closed", `stream ${streamId} is not open on circuit ${circuitId}`, {
        endReason: stream?.error?.endReason,
      });
    }
    const maxQueued = Math.ceil(this.limits.maxMessageBytes / DATA_CHUNK_LEN) * 4;
    if (stream.queuedCells > maxQueued) {
      throw new CircuitError("resource-limit", `stream ${streamId} has ${stream.queuedCells} cells queued; wait for the peer to catch up`);
    }
    stream.enqueueMessage(message);
    this.enter(now, () => this.pump(circ, stream));
  }

  /** Ends a stream (END DONE by default). */
  closeStream(circuitId: number, streamId: number, now: number, reason: EndReason = EndReason.DONE): void {
    const circ = this.circuits.get(circuitId);
    const stream = circ?.streams.get(streamId);
    if (!circ || !stream) return;
    this.enter(now, () => {
      this.finishStream(circ, stream, reason, undefined);
      this.sendRelay(circ, stream.hop, RelayCommand.END, streamId, encodeReason(reason));
    });
  }

  /** Tears the circuit down (DESTROY REQUESTED to every hop). */
  closeCircuit(circuitId: number, now: number): void {
    const circ = this.circuits.get(circuitId);
    if (!circ || circ.state === "closed") return;
    this.enter(now, () => this.close(circ, undefined, DestroyReason.REQUESTED));
  }

  /** Asks hop `keepHops - 1` to drop everything after it; "circuit-extended" with the new length follows. */
  truncate(circuitId: number, keepHops: number, now: number): void {
    const circ = this.openCircuit(circuitId);
    if (!Number.isInteger(keepHops) || keepHops < 1 || keepHops >= circ.hops.length) {
      throw new CircuitError("bad-argument", `keepHops must be 1..${circ.hops.length - 1}`);
    }
    this.enter(now, () => this.sendRelay(circ, keepHops - 1, RelayCommand.TRUNCATE, 0, EMPTY));
  }

  /**
   * Sends one relay message to a hop as is: DATA is counted against the
   * windows but never waits for them. For layers above that add their own relay commands, and for
   * tests that play a misbehaving client.
   */
  sendRelayMessage(circuitId: number, hop: number, command: number, streamId: number, data: Uint8Array, now: number): void {
    const circ = this.openCircuit(circuitId);
    if (!Number.isInteger(hop) || hop < 0 || hop >= circ.hops.length) throw new CircuitError("bad-argument", `no hop ${hop}`);
    if (command === RelayCommand.DATA) {
      // Counted (so the SENDMEs it earns are not "beyond the window"), never waited for.
      (circ.hops[hop] as ClientHop).window.packaged();
      circ.streams.get(streamId)?.window.packaged();
    }
    this.enter(now, () => this.sendRelay(circ, hop, command, streamId, data));
  }

  circuitInfo(circuitId: number): ClientCircuitInfo | undefined {
    const c = this.circuits.get(circuitId);
    if (!c) return undefined;
    return { circuitId, state: c.state, hops: c.hops.length, error: c.error, openStreams: c.streams.size };
  }

  streamInfo(circuitId: number, streamId: number): ClientStreamInfo | undefined {
    const c = this.circuits.get(circuitId);
    const s = c?.streams.get(streamId) ?? c?.closedStreams.get(streamId);
    if (!s) return undefined;
    return {
      streamId,
      service: s.service,
      hop: s.hop,
      state: s.phase,
      queuedCells: s.queuedCells,
      packageWindow: s.window.canPackage,
      error: s.error,
    };
  }

  // ---- what the core asks of a client ---------------------------------------------

  protected newLink(base: CoreLink): CoreLink {
    return base;
  }

  /** The link to the first hop came up: CREATE on it, unless it proved another identity than the path names. */
  protected linkAnswered(circ: ClientCircuit, link: CoreLink, identityMatches: boolean): void {
    if (circ.state !== "waiting-link") return;
    circ.requestId = undefined;
    if (identityMatches) this.sendCreate(circ, link);
    else {
      this.close(
        circ,
        new CircuitError("handshake-failed", "the first hop's link authenticated a different identity than the path names", {
          destroyReason: DestroyReason.OR_IDENTITY,
          hop: 0,
        }),
        undefined,
      );
    }
  }

  protected linkRequestFailed(circ: ClientCircuit, cause: LinkFailureCause): void {
    const error =
      cause === "identity-mismatch"
        ? new CircuitError("handshake-failed", "the first hop's address answered with another identity than the path names", {
            destroyReason: DestroyReason.OR_IDENTITY,
            hop: 0,
          })
        : new CircuitError("circuit-destroyed", "could not open a link to the first hop", { destroyReason: DestroyReason.CONNECTFAILED, hop: 0 });
    this.close(circ, error, undefined);
  }

  protected sideClosed(circ: ClientCircuit): void {
    this.close(circ, new CircuitError("circuit-destroyed", "the link to the first hop closed", { destroyReason: DestroyReason.CHANNEL_CLOSED, hop: 0 }), undefined);
  }

  protected timerWakeup(): number {
    let t = Number.POSITIVE_INFINITY;
    for (const circ of this.circuits.values()) {
      if (circ.state === "closed") continue;
      if (circ.buildDeadline !== undefined) t = Math.min(t, circ.buildDeadline);
      else if (circ.streams.size === 0) t = Math.min(t, circ.lastActivity + this.limits.clientCircuitIdleMs);
    }
    return t;
  }

  protected canSend(circ: ClientCircuit): boolean {
    return circ.state === "open";
  }

  protected packageWindow(circ: ClientCircuit, stream: EdgeStream): FlowWindow {
    return (circ.hops[stream.hop] as ClientHop).window;
  }

  protected sendData(circ: ClientCircuit, stream: EdgeStream): void {
    if (circ.stagedCount !== circ.forwardBatch.length || circ.stagedCount >= STAGING_PAYLOADS) {
      this.sendRelay(circ, stream.hop, RelayCommand.DATA, stream.streamId, stream.nextChunk() as Uint8Array);
      return;
    }
    // The bulk path: the body is written straight into its relay payload in the staging buffer.
    const staging = (circ.staging ??= Buffer.allocUnsafe(STAGING_PAYLOADS * CELL_PAYLOAD_LEN));
    const offset = circ.stagedCount * CELL_PAYLOAD_LEN;
    const length = stream.writeNextBody(staging, offset + RELAY_DATA_OFFSET);
    writeRelayHeader(staging, offset, stream.streamId, RelayCommand.DATA, length);
    if (length < DATA_CHUNK_LEN) staging.fill(0, offset + RELAY_DATA_OFFSET + length, offset + CELL_PAYLOAD_LEN);
    circ.stagedCount++;
    circ.forwardBatch.push({ hop: stream.hop, command: CellCommand.RELAY, payload: new Uint8Array(staging.buffer, staging.byteOffset + offset, CELL_PAYLOAD_LEN) });
    circ.lastActivity = this.now;
    this.dirty.add(circ);
  }

  // ---- driver inputs -----------------------------------------------------------

  /** The nodes of a circuit's established hops, entry first (empty for an unknown circuit). */
  circuitPath(circuitId: number): PathNode[] {
    return this.circuits.get(circuitId)?.hops.map((h) => h.node) ?? [];
  }

  tick(now: number): void {
    this.enter(now, () => {
      for (const circ of this.circuits.values()) {
        if (circ.state === "closed") continue;
        if (circ.buildDeadline !== undefined && now >= circ.buildDeadline) {
          this.close(
            circ,
            new CircuitError("build-timeout", `circuit not built within ${this.limits.buildTimeoutMs} ms (${circ.hops.length} hops done)`, {
              destroyReason: DestroyReason.TIMEOUT,
              hop: circ.hops.length,
            }),
            DestroyReason.TIMEOUT,
          );
        } else if (circ.state === "open" && circ.streams.size === 0 && now - circ.lastActivity >= this.limits.clientCircuitIdleMs) {
          this.close(circ, undefined, DestroyReason.FINISHED);
        }
      }
    });
  }

  // ---- plumbing -------------------------------------------------------------------

  private openCircuit(circuitId: number): ClientCircuit {
    const circ = this.circuits.get(circuitId);
    if (!circ) throw new CircuitError("bad-argument", `no circuit ${circuitId}`);
    if (circ.state === "closed") {
      throw circ.error ?? new CircuitError("bad-state", `circuit ${circuitId} is closed; build a new one`, { destroyReason: DestroyReason.REQUESTED });
    }
    if (circ.state !== "open") throw new CircuitError("bad-state", `circuit ${circuitId} is still ${circ.state}; wait for circuit-open`);
    return circ;
  }

  /** Seals the circuit's waiting payloads as runs per hop and wraps them in the onion layers: one cipher call per layer. */
  protected flushCircuit(circ: ClientCircuit): void {
    if (circ.state === "closed" || circ.forwardBatch.length === 0) return;
    const batch = circ.forwardBatch;
    const staged = circ.stagedCount === batch.length && circ.staging ? circ.staging.subarray(0, batch.length * CELL_PAYLOAD_LEN) : undefined;
    circ.forwardBatch = [];
    circ.stagedCount = 0;
    // Layer i wraps, in order, every cell addressed to hop i or beyond: one cipher call per layer.
    let deepest = 0;
    let shallowest = Number.MAX_SAFE_INTEGER;
    for (const c of batch) {
      if (c.hop > deepest) deepest = c.hop;
      if (c.hop < shallowest) shallowest = c.hop;
    }
    let bytes: Buffer;
    if (deepest === shallowest) {
      // The common case (bulk data to one hop): every layer covers every cell, so one
      // contiguous buffer goes through each layer's cipher.
      bytes = staged ?? gatherPayloadsTransient(batch.map((c) => c.payload));
      (circ.hops[deepest] as ClientHop).crypto.forward.sealRun(bytes, 0, batch.length);
      for (let layer = deepest; layer >= 0; layer--) bytes = (circ.hops[layer] as ClientHop).crypto.forward.applyKeystreamBuffer(bytes);
    } else {
      // Each stretch of consecutive payloads for one hop is sealed as runs of that hop.
      for (let from = 0, i = 1; i <= batch.length; i++) {
        const hop = (batch[from] as (typeof batch)[number]).hop;
        if (i < batch.length && (batch[i] as (typeof batch)[number]).hop === hop) continue;
        const stretch = gatherPayloads(batch.slice(from, i).map((c) => c.payload));
        (circ.hops[hop] as ClientHop).crypto.forward.sealRun(stretch, 0, i - from);
        for (let k = from; k < i; k++) {
          (batch[k] as (typeof batch)[number]).payload = stretch.subarray((k - from) * CELL_PAYLOAD_LEN, (k - from + 1) * CELL_PAYLOAD_LEN);
        }
        from = i;
      }
      for (let layer = deepest; layer >= 0; layer--) {
        const hop = circ.hops[layer] as ClientHop;
        const members = batch.filter((c) => c.hop >= layer);
        const out = hop.crypto.forward.applyKeystreamBatch(members.map((c) => c.payload));
        members.forEach((c, k) => (c.payload = out[k] as Uint8Array));
      }
      bytes = gatherPayloadsTransient(batch.map((c) => c.payload));
    }
    // One run of encoded cells: one "send-run" action, one socket write.
    const side = circ.side as Side;
    const run = encodeRelayRun(
      side.circId,
      batch.map((c) => c.command),
      bytes,
      0,
      batch.length,
    );
    if (!this.scheduler.enqueueRun(side.key, side.linkId, run, batch.length, this.now)) {
      this.close(circ, new CircuitError("resource-limit", "too many cells queued on the circuit"), DestroyReason.RESOURCELIMIT);
    }
  }

  private allocateStreamId(circ: ClientCircuit): number {
    for (let i = 0; i < MAX_STREAM_ID; i++) {
      const id = circ.nextStreamId;
      circ.nextStreamId = id >= MAX_STREAM_ID ? 1 : id + 1;
      if (!circ.streams.has(id)) {
        circ.closedStreams.delete(id);
        return id;
      }
    }
    throw new CircuitError("resource-limit", "no free stream id on the circuit");
  }

  /** Sends the circuit-level SENDMEs due to `hop` (delayed acknowledgement: flow-control.ts). */
  private sendHopSendmes(circ: ClientCircuit, hop: number, hopState: ClientHop): void {
    if (circ.state !== "open") return;
    const count = this.acknowledge(hopState.window, (hopState.sendSendmesLater ??= () => this.sendHopSendmes(circ, hop, hopState)));
    for (let i = 0; i < count; i++) this.sendRelay(circ, hop, RelayCommand.SENDME, 0, EMPTY);
  }

  /** Sends the stream-level SENDMEs due on `stream`. */
  private sendStreamSendmes(circ: ClientCircuit, stream: ClientStream): void {
    if (circ.state !== "open" || stream.phase !== "open") return;
    const count = this.acknowledge(stream.window, (stream.sendSendmesLater ??= () => this.sendStreamSendmes(circ, stream)));
    for (let i = 0; i < count; i++) this.sendRelay(circ, stream.hop, RelayCommand.SENDME, stream.streamId, EMPTY);
  }

  /** Queues a relay message for `hop`; it is sealed and wrapped at flush. EXTEND goes in RELAY_EARLY. */
  private sendRelay(circ: ClientCircuit, hop: number, command: number, streamId: number, data: Uint8Array): void {
    const payload = this.stagePayload(circ, { recognized: 0, streamId, digest: ZERO_DIGEST, command, data });
    let cellCommand: number = CellCommand.RELAY;
    if (command === RelayCommand.EXTEND) {
      circ.relayEarlyLeft--;
      cellCommand = CellCommand.RELAY_EARLY;
    }
    circ.forwardBatch.push({ hop, command: cellCommand, payload });
    circ.lastActivity = this.now;
    this.dirty.add(circ);
  }

  /** Encodes a relay payload into the circuit's staging buffer (a fresh buffer once it is full). */
  private stagePayload(circ: ClientCircuit, relay: RelayPayloadInput): Uint8Array {
    if (circ.stagedCount !== circ.forwardBatch.length || circ.stagedCount >= STAGING_PAYLOADS) return encodeRelayPayload(relay);
    const staging = (circ.staging ??= Buffer.allocUnsafe(STAGING_PAYLOADS * CELL_PAYLOAD_LEN));
    const offset = circ.stagedCount * CELL_PAYLOAD_LEN;
    encodeRelayPayloadInto(relay, staging, offset);
    circ.stagedCount++;
    return staging.subarray(offset, offset + CELL_PAYLOAD_LEN);
  }

  private sendCreate(circ: ClientCircuit, link: CoreLink): void {
    const circId = this.allocateCircId(link);
    if (circId === undefined) {
      this.close(circ, new CircuitError("resource-limit", "no free circuit id on the link"), undefined);
      return;
    }
    const node = circ.plan.shift() as PathNode;
    const side = this.addSide(link, makeSide(link.info.linkId, circId), circ);
    circ.side = side;
    circ.state = "building";
    const { state, onionskin } = ntorClientCreate({
      ...(this.protoId === undefined ? {} : { protoId: this.protoId }),
      id: node.identity,
      onionPublic: node.onionKey,
    });
    circ.handshake = { state, node };
    if (!this.enqueueCell(side, CellCommand.CREATE, encodeCreate2({ handshakeType: HANDSHAKE_NTOR, handshakeData: onionskin }))) {
      this.close(circ, new CircuitError("resource-limit", "too many cells queued on the circuit"), undefined);
    }
  }

  private extendNext(circ: ClientCircuit): void {
    const node = circ.plan.shift();
    if (!node) return;
    if (circ.relayEarlyLeft <= 0) {
      this.close(circ, new CircuitError("too-many-hops", `no RELAY_EARLY cells left to extend past ${circ.hops.length} hops`), DestroyReason.REQUESTED);
      return;
    }
    const { state, onionskin } = ntorClientCreate({
      ...(this.protoId === undefined ? {} : { protoId: this.protoId }),
      id: node.identity,
      onionPublic: node.onionKey,
    });
    circ.handshake = { state, node };
    const body = encodeExtend2({
      identity: node.identity,
      // An internal node is named by identity alone: the relay before it knows how to reach it.
      addresses: node.host === "" ? [] : [{ host: node.host, port: node.port }],
      handshakeType: HANDSHAKE_NTOR,
      handshakeData: onionskin,
    });
    this.sendRelay(circ, circ.hops.length - 1, RelayCommand.EXTEND, 0, body);
  }

  /** Completes the pending handshake with the reply from CREATED2 or EXTENDED2. */
  private finishHandshake(circ: ClientCircuit, reply: Uint8Array): void {
    const hs = circ.handshake;
    if (!hs) {
      this.close(circ, new CircuitError("protocol-violation", "handshake reply without a pending handshake"), DestroyReason.PROTOCOL);
      return;
    }
    circ.handshake = undefined;
    let keys: Uint8Array;
    try {
      keys = ntorClientFinish({ ...hs.state, reply, keyLength: HOP_KEY_MATERIAL_LEN });
    } catch (err) {
      if (!isPspError(err)) throw err;
      this.close(
        circ,
        new CircuitError("handshake-failed", `hop ${circ.hops.length} failed the ntor handshake: ${err.message}`, { hop: circ.hops.length, cause: err }),
        DestroyReason.PROTOCOL,
      );
      return;
    }
    circ.hops.push({
      node: hs.node,
      crypto: hopCryptoFromKeyMaterial(keys),
      window: new FlowWindow({ start: CIRCUIT_WINDOW_START, increment: CIRCUIT_WINDOW_INCREMENT }),
    });
    keys.fill(0);
    this.emit({ type: "circuit-extended", circuitId: circ.id, hops: circ.hops.length });
    if (circ.plan.length > 0) return this.extendNext(circ);
    circ.state = "open";
    circ.buildDeadline = undefined;
    this.emit({ type: "circuit-open", circuitId: circ.id });
  }

  /**
   * Closes a circuit locally. `destroy` (if set) is the reason sent forward in
   * a DESTROY; `error` (if set) is recorded and reported.
   */
  private close(circ: ClientCircuit, error: CircuitError | undefined, destroy: DestroyReason | undefined): void {
    if (circ.state === "closed") return;
    circ.state = "closed";
    circ.error = error;
    const side = circ.side;
    if (destroy !== undefined && side && this.links.has(side.linkId)) this.sendDestroy(side, destroy);
    if (side) this.forgetSide(side);
    if (circ.requestId !== undefined) this.leaveRequest(circ.requestId, circ);
    const streamError = new CircuitError("stream-closed", "the circuit closed", {
      endReason: EndReason.DESTROY,
      destroyReason: error?.destroyReason ?? destroy,
      cause: error,
    });
    for (const stream of [...circ.streams.values()]) this.finishStream(circ, stream, EndReason.DESTROY, streamError);
    circ.forwardBatch = [];
    circ.stagedCount = 0;
    this.dirty.delete(circ);
    const reason = error?.destroyReason ?? destroy ?? DestroyReason.NONE;
    this.emit({ type: "circuit-closed", circuitId: circ.id, reason, ...(error ? { error } : {}) });
  }

  private finishStream(circ: ClientCircuit, stream: ClientStream, reason: EndReason, error: CircuitError | undefined): void {
    if (stream.phase === "closed") return;
    stream.phase = "closed";
    stream.clearQueue();
    if (error) stream.error = error;
    circ.streams.delete(stream.streamId);
    circ.closedStreams.set(stream.streamId, stream);
    if (circ.closedStreams.size > 64) {
      const oldest = circ.closedStreams.keys().next().value as number;
      circ.closedStreams.delete(oldest);
    }
    circ.lastActivity = this.now;
    this.emit({ type: "stream-closed", circuitId: circ.id, streamId: stream.streamId, reason, ...(error ? { error } : {}) });
  }

  // ---- incoming cells --------------------------------------------------------------

  protected controlCell(link: CoreLink, circId: number, command: number, payload: Uint8Array, circ: ClientCircuit | undefined): void {
    if (!circ) return this.violation(link.info.linkId, circId, "cell for an unknown circuit");
    if (circ.state === "closed") return;
    switch (command) {
      case CellCommand.CREATED: {
        if (circ.hops.length !== 0 || !circ.handshake) {
          return this.close(circ, new CircuitError("protocol-violation", "unexpected CREATED"), DestroyReason.PROTOCOL);
        }
        let reply: Uint8Array;
        try {
          reply = decodeCreated2(payload);
        } catch (err) {
          return this.close(circ, new CircuitError("handshake-failed", "malformed CREATED2", { hop: 0, cause: err }), DestroyReason.PROTOCOL);
        }
        return this.finishHandshake(circ, reply);
      }
      case CellCommand.DESTROY: {
        const reason = decodeDestroy(payload);
        // While building, a DESTROY names the hop being added (e.g. CONNECTFAILED: that node is unreachable).
        const hop = circ.state === "building" ? circ.hops.length : undefined;
        return this.close(
          circ,
          new CircuitError("circuit-destroyed", `circuit destroyed by a relay: ${destroyReasonName(reason)}`, {
            destroyReason: reason,
            ...(hop === undefined ? {} : { hop }),
          }),
          undefined,
        );
      }
      case CellCommand.RELAY_EARLY:
        return this.close(circ, new CircuitError("protocol-violation", "RELAY_EARLY towards the client"), DestroyReason.PROTOCOL);
      default:
        this.violation(link.info.linkId, circId, `unexpected command ${command}`);
    }
  }

  protected relayRun(_link: CoreLink, _circId: number, circ: ClientCircuit, _commands: number[], payloads: Uint8Array[]): void {
    if (circ.state === "closed") return;
    if (circ.hops.length === 0) {
      return this.close(circ, new CircuitError("protocol-violation", "relay cell before CREATED"), DestroyReason.PROTOCOL);
    }
    circ.lastActivity = this.now;
    // Peel layer by layer; a cell leaves the batch at the hop whose layer takes it
    // (held for a run, or completing one). A completed run is delivered at its last cell.
    const takenAt = new Array<number>(payloads.length).fill(-1);
    const runs: (Uint8Array[] | undefined)[] = new Array<Uint8Array[] | undefined>(payloads.length);
    let pending = payloads.map((_, k) => k);
    let current = payloads;
    // Cells from the first one no hop accepts (or that breaks a run) on are never delivered.
    let firstBad = payloads.length;
    for (let h = 0; h < circ.hops.length && pending.length > 0; h++) {
      const layer = (circ.hops[h] as ClientHop).crypto.backward;
      const out = layer.applyKeystreamBatch(current);
      const nextPending: number[] = [];
      const nextCurrent: Uint8Array[] = [];
      for (let k = 0; k < out.length; k++) {
        const p = out[k] as Uint8Array;
        const idx = pending[k] as number;
        const step = (p[0] === 0 && p[1] === 0) || layer.heldCount > 0 ? layer.receive(p) : RunStep.NotMine;
        if (step === RunStep.NotMine) {
          nextPending.push(idx);
          nextCurrent.push(p);
        } else if (step === RunStep.Broken) {
          firstBad = Math.min(firstBad, idx);
          break;
        } else {
          takenAt[idx] = h;
          if (step === RunStep.Complete) runs[idx] = layer.takeRun();
        }
      }
      layer.compactHeld();
      pending = nextPending;
      current = nextCurrent;
    }
    for (let k = 0; k < payloads.length; k++) {
      if (isClosed(circ)) return;
      const hop = takenAt[k] as number;
      if (hop < 0 || k >= firstBad) break;
      for (const payload of runs[k] ?? []) {
        if (isClosed(circ)) return;
        this.handleRecognized(circ, hop, payload);
      }
    }
    if (!isClosed(circ) && (firstBad < payloads.length || takenAt.includes(-1))) {
      this.close(
        circ,
        new CircuitError("circuit-destroyed", "relay cells from the circuit were not recognized by any hop (modified in transit)", {
          destroyReason: DestroyReason.PROTOCOL,
        }),
        DestroyReason.PROTOCOL,
      );
    }
  }

  private handleRecognized(circ: ClientCircuit, hop: number, payload: Uint8Array): void {
    let msg: ReturnType<typeof decodeRelayPayload>;
    try {
      msg = decodeRelayPayload(payload);
    } catch (err) {
      return this.close(circ, new CircuitError("protocol-violation", `hop ${hop} sent a bad relay payload`, { hop, cause: err }), DestroyReason.PROTOCOL);
    }
    const violation = (message: string) =>
      this.close(circ, new CircuitError("protocol-violation", `hop ${hop}: ${message}`, { hop, destroyReason: DestroyReason.PROTOCOL }), DestroyReason.PROTOCOL);
    switch (msg.command) {
      case RelayCommand.EXTENDED: {
        if (hop !== circ.hops.length - 1 || !circ.handshake) return violation("unexpected EXTENDED");
        let reply: Uint8Array;
        try {
          reply = decodeCreated2(msg.data);
        } catch (err) {
          return this.close(circ, new CircuitError("handshake-failed", "malformed EXTENDED2", { hop: hop + 1, cause: err }), DestroyReason.PROTOCOL);
        }
        return this.finishHandshake(circ, reply);
      }
      case RelayCommand.TRUNCATED: {
        const reason = decodeTruncatedReason(msg.data);
        circ.hops.length = hop + 1;
        circ.plan = [];
        circ.handshake = undefined;
        for (const s of [...circ.streams.values()]) {
          if (s.hop > hop)
            this.finishStream(circ, s, EndReason.DESTROY, new CircuitError("stream-closed", "circuit truncated", { endReason: EndReason.DESTROY, destroyReason: reason }));
        }
        if (circ.state === "building") {
          circ.state = "open";
          circ.buildDeadline = undefined;
        }
        this.emit({ type: "circuit-extended", circuitId: circ.id, hops: circ.hops.length });
        return;
      }
      case RelayCommand.CONNECTED: {
        const stream = circ.streams.get(msg.streamId);
        if (!stream || stream.hop !== hop || stream.phase !== "connecting") return violation("unexpected CONNECTED");
        stream.phase = "open";
        this.emit({ type: "stream-open", circuitId: circ.id, streamId: stream.streamId, service: stream.service });
        return this.pump(circ, stream);
      }
      case RelayCommand.DATA: {
        if (msg.streamId === 0) return violation("DATA without a stream");
        const hopState = circ.hops[hop] as ClientHop;
        if (hopState.window.delivered() === "overrun") return violation("DATA beyond the circuit window");
        this.sendHopSendmes(circ, hop, hopState);
        const stream = circ.streams.get(msg.streamId);
        if (!stream || stream.hop !== hop) return;
        if (stream.phase !== "open") return violation("DATA before CONNECTED");
        if (stream.window.delivered() === "overrun") return violation("DATA beyond the stream window");
        this.sendStreamSendmes(circ, stream);
        let message: Uint8Array | undefined;
        try {
          message = stream.reassembler.push(msg.data);
        } catch (err) {
          const reason = CircuitError.is(err, "resource-limit") ? EndReason.RESOURCELIMIT : EndReason.PROTOCOL;
          this.finishStream(circ, stream, reason, err as CircuitError);
          return this.sendRelay(circ, hop, RelayCommand.END, stream.streamId, encodeReason(reason));
        }
        if (message) this.emit({ type: "stream-message", circuitId: circ.id, streamId: stream.streamId, message });
        return;
      }
      case RelayCommand.END: {
        const stream = circ.streams.get(msg.streamId);
        if (!stream || stream.hop !== hop) return;
        const reason = toEndReason(msg.data[0] ?? EndReason.MISC);
        const refused = stream.phase === "connecting";
        const error = new CircuitError(
          refused ? "stream-refused" : "stream-closed",
          refused ? `hop ${hop} refused a stream to "${stream.service}": ${endReasonName(reason)}` : `stream ${stream.streamId} ended by hop ${hop}: ${endReasonName(reason)}`,
          { endReason: reason, hop },
        );
        return this.finishStream(circ, stream, reason, error);
      }
      case RelayCommand.SENDME: {
        if (msg.streamId === 0) {
          const hopState = circ.hops[hop] as ClientHop;
          if (!hopState.window.sendmeReceived()) return violation("circuit SENDME beyond the window");
          for (const s of circ.streams.values()) if (s.hop === hop) this.pump(circ, s);
          return;
        }
        const stream = circ.streams.get(msg.streamId);
        if (!stream || stream.hop !== hop) return;
        if (!stream.window.sendmeReceived()) return violation("stream SENDME beyond the window");
        return this.pump(circ, stream);
      }
      case RelayCommand.DROP:
        return;
      default:
        if (msg.command >= 32) {
          this.emit({ type: "relay-message", circuitId: circ.id, hop, command: msg.command, streamId: msg.streamId, data: msg.data.slice() });
          return;
        }
        return violation(`relay command ${msg.command} is not valid towards a client`);
    }
  }
}

/** Re-reads the state after calls that may have closed the circuit (defeats narrowing). */
function isClosed(circ: { state: ClientCircuitState }): boolean {
  return circ.state === "closed";
}

/**
 * The relay side of the circuit protocol, as a pure state machine.
 *
 * Owns every circuit that passes through or ends at this node: answering
 * CREATE2 with ntor, extending on EXTEND2 (carried in RELAY_EARLY, at most
 * `maxRelayEarly` per circuit), checking that the next hop's authenticated link
 * identity is the one the client named (an EXTEND2 naming an identity alone,
 * for an internal node, reuses an authenticated link to it or asks the driver
 * to find it: `open-link` with no addresses), forwarding relay cells both ways under
 * one onion layer, DESTROY in both directions, TRUNCATE/TRUNCATED, streams to
 * named local services (BEGIN/CONNECTED/DATA/END), SENDME windows, per-link
 * and per-circuit limits, timeouts, and the node's send-rate limit.
 *
 * CREATEs are rate-limited per link and per source address (token buckets,
 * time from the caller) before any decoding or public-key work, so a flood
 * of CREATE2 costs a bucket check, not an ntor handshake; refused ones get
 * DESTROY(RESOURCELIMIT), are counted by cap (`stats().createsRefused`) and
 * reported as "create-refused" events for the driver to log.
 *
 * Inputs: `linkOpened`, `linkFailed`, `linkClosed`, `handleCell(s)`, `tick`,
 * each with the current time. Outputs: `takeActions()` (cells to send by link
 * id, links to open, events) and `nextWakeup()` (when to call `tick`). The
 * plumbing it shares with the client (links, circuit ids, link requests, cell
 * checks, runs, scheduling, `pump`) is circuit-core.ts; this file is what a
 * relay does with it.
 *
 * Trusts: the link layer's `peerIdentity`; local services. Trusts nothing in
 * cells: any malformed or out-of-place cell destroys its circuit (PROTOCOL)
 * or is dropped with a "protocol-violation" event; the entry points throw
 * only CircuitError, and only for driver mistakes (e.g. an unknown link id).
 */
import { CELL_PAYLOAD_LEN, CellCommand } from "../wire/cell.js";
import { RelayCommand, decodeRelayPayload, encodeRelayPayload } from "../wire/relay.js";
import { ntorParseOnionskin, ntorServerRespond, PSP_NTOR_ID_LEN } from "../crypto/ntor.js";
import type { X25519KeyPair } from "../crypto/x25519.js";
import { TokenBucket } from "../base/token-bucket.js";
import { isPspError } from "../errors.js";
import {
  CIRCUIT_WINDOW_INCREMENT,
  CIRCUIT_WINDOW_START,
  CREATE_BURST_KEYS,
  DEFAULT_LIMITS,
  DEFAULT_MAX_CIRCUIT_LENGTH,
  DestroyReason,
  EndReason,
  HANDSHAKE_NTOR,
  HOP_KEY_MATERIAL_LEN,
  MAX_RELAY_EARLY,
  POSITIVE_RELAY_LIMIT_KEYS,
  toEndReason,
} from "./constants.js";
import type { DestroyReasonName } from "./constants.js";
import { codeLookup } from "../base/codes.js";
import { CircuitCore, EMPTY, ZERO_DIGEST, makeSide } from "./circuit-core.js";
import type { CoreLink, Side } from "./circuit-core.js";
import { CircuitError } from "./errors.js";
import { FlowWindow } from "./flow-control.js";
import { DATA_CHUNK_LEN } from "./framing.js";
import { keyHex } from "./path.js";
import {
  decodeBegin,
  decodeCreate2,
  decodeCreated2,
  decodeDestroy,
  decodeExtend2,
  encodeCreate2,
  encodeCreated2,
  encodeExtended2,
  encodeReason,
} from "./payloads.js";
import { encodeRelayRun, gatherPayloadsTransient } from "./cell-run.js";
import { RunStep, hopCryptoFromKeyMaterial } from "./relay-crypto.js";
import type { HopCrypto } from "./relay-crypto.js";
import { EdgeStream } from "./streams.js";
import type {
  CreateCap,
  LinkFailureCause,
  LocalService,
  NodeAddress,
  RelayCommandContext,
  RelayCommandHandler,
  ServiceHandler,
  ServiceStream,
} from "./types.js";

export interface RelayLimits {
  nodeBytesPerSecond: number;
  nodeBurstBytes: number;
  circuitBytesPerSecond: number;
  circuitBurstBytes: number;
  maxCircuitsPerLink: number;
  maxCircuits: number;
  maxStreamsPerCircuit: number;
  /** Streams open at this relay on circuits arriving over one link (one peer). */
  maxStreamsPerLink: number;
  maxQueuedCellsPerCircuit: number;
  maxMessageBytes: number;
  extendTimeoutMs: number;
  relayCircuitIdleMs: number;
  /** Longest circuit (in hops) this relay helps build; caps the RELAY_EARLY budget at maxCircuitLength - 1. */
  maxCircuitLength: number;
  /** RELAY_EARLY cells accepted outbound per circuit (Tor: 8). */
  maxRelayEarly: number;
  /** CREATE/CREATE2 accepted per second on one link, and burst (checked before any handshake work). */
  createsPerSecondPerLink: number;
  createBurstPerLink: number;
  /** The same for all client links from one source address (links whose address the driver reports). */
  createsPerSecondPerAddress: number;
  createBurstPerAddress: number;
  /** CREATEs per second and burst on a link from a relay the consensus lists (OnionRelayOptions.isListedRelay); no address bucket. */
  createsPerSecondPerRelayLink: number;
  createBurstPerRelayLink: number;
}

/** What a relay refused and computed, for metrics and tests. */
export interface RelayCreateStats {
  /** ntor handshakes computed (CREATE2 cells that reached the public-key work). */
  handshakes: number;
  /** CREATEs refused before any handshake work, by the cap that refused them. */
  createsRefused: Record<CreateCap, number>;
  /** Circuits this relay created (CREATED2 queued). */
  circuitsCreated: number;
  /** Circuits torn down, by DestroyReason name (REQUESTED, CHANNEL_CLOSED, FINISHED, ...). */
  circuitsDestroyed: Partial<Record<DestroyReasonName, number>>;
}

const destroyReasonNames = codeLookup(DestroyReason);

/** Address buckets kept at most; past it, full (idle) ones are forgotten: a full bucket is the same as a new one. */
const MAX_ADDRESS_BUCKETS = 4096;


/** Checks the limits this file adds checks for; throws CircuitError "bad-argument" naming the field. */
function checkRelayLimits(limits: RelayLimits): void {
  if (!Number.isInteger(limits.maxCircuitLength) || limits.maxCircuitLength < 1) {
    throw new CircuitError("bad-argument", "maxCircuitLength must be a positive integer");
  }
  for (const key of POSITIVE_RELAY_LIMIT_KEYS) {
    const v = limits[key];
    if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v))
      throw new CircuitError("bad-argument", `relay limit ${key} must be a positive finite number, got ${String(v)}`);
  }
  for (const key of CREATE_BURST_KEYS) {
    if (limits[key] < 1) throw new CircuitError("bad-argument", `relay limit ${key} must be at least 1 (one CREATE)`);
  }
}

export interface OnionRelayOptions {
  /** Our Ed25519 identity key (32 bytes), as links authenticate it. */
  identity: Uint8Array;
  /** Our X25519 onion keys, current first; older ones stay accepted during rotation. */
  onionKeys: readonly X25519KeyPair[];
  /** Current time in ms. */
  now: number;
  protoId?: string;
  limits?: Partial<RelayLimits>;
  services?: Record<string, LocalService>;
  /** Accept BEGIN on circuits whose previous hop is an unauthenticated client (one-hop proxying). Default false. */
  allowStreamsAtFirstHop?: boolean;
  /**
   * Services that may be opened at the first hop even so: those a client
   * reaches directly on purpose (public presence, direct introductions and
   * rendezvous, docs/spec/presence.md), revealing its address to this node.
   */
  firstHopServices?: readonly string[];
  /** Random 32-bit integers for circuit ids; default crypto-random. */
  randomU32?: () => number;
  /**
   * Whether an authenticated peer is a relay of the current consensus: its
   * link then gets the relay-link CREATE budget. Asked at each CREATE, so a
   * consensus change applies at once. Default: no peer is (every link is
   * limited as a client's).
   */
  isListedRelay?: (identity: Uint8Array) => boolean;
}

interface PendingExtend {
  phase: "link" | "created";
  identity: Uint8Array;
  addresses: NodeAddress[];
  create2: Uint8Array;
  deadline: number;
  requestId?: number;
}

interface RelayStream extends EdgeStream {
  handler?: ServiceHandler;
  /** Set by the service: hold messages and withhold stream SENDMEs. */
  paused: boolean;
  inbox: Uint8Array[];
  /** Sends the stream SENDMEs held back once they are due (made on first use). */
  sendSendmesLater?: () => void;
}

interface RelayCircuit {
  serial: number;
  prev: Side;
  next: Side | undefined;
  extend: PendingExtend | undefined;
  crypto: HopCrypto;
  relayEarlyLeft: number;
  streams: Map<number, RelayStream>;
  window: FlowWindow;
  lastActivity: number;
  /** Payloads waiting for the backward layer, in send order: forwarded ones already wrapped by later hops, ours plaintext. */
  backwardBatch: Uint8Array[];
  /** [from, to) index pairs of `backwardBatch` that we originate: each range is sealed as runs at flush. */
  backwardOwn: number[];
  /** RELAY_EARLY or not, for each forward payload held for an unfinished run (EXTEND needs it). */
  heldEarly: boolean[];
  closed: boolean;
  /** Sends the circuit SENDMEs held back once they are due (made on first use). */
  sendSendmesLater?: () => void;
}

interface LinkState extends CoreLink {
  circuitsFromPeer: number;
  /** CREATEs this link may still send now as a client link (createsPerSecondPerLink). */
  creates: TokenBucket;
  /** The same while its peer is a listed relay (createsPerSecondPerRelayLink); made on its first such CREATE. */
  relayCreates: TokenBucket | undefined;
  /** Streams open at this relay on circuits whose previous hop is this link. */
  streamsFromPeer: number;
}

/** What the side table holds for one side of a relay circuit. */
interface RelaySide {
  circ: RelayCircuit;
  /** True for the side towards the client. */
  fromPrev: boolean;
}

export class OnionRelay extends CircuitCore<RelayCircuit, RelaySide, LinkState> {
  readonly identity: Uint8Array;
  private readonly identityHex: string;
  private readonly onionKeys: readonly X25519KeyPair[];
  private readonly protoId: string | undefined;
  private readonly limits: RelayLimits;
  private readonly relayEarlyBudget: number;
  private readonly allowStreamsAtFirstHop: boolean;
  private readonly firstHopServices: ReadonlySet<string>;
  private readonly services = new Map<string, LocalService>();
  private readonly commandHandlers = new Map<number, RelayCommandHandler>();
  private readonly circuits = new Set<RelayCircuit>();
  private readonly addressBuckets = new Map<string, TokenBucket>();
  private readonly isListedRelay: (identity: Uint8Array) => boolean;
  private readonly createStats: RelayCreateStats = {
    handshakes: 0,
    createsRefused: { "link-rate": 0, "address-rate": 0, circuits: 0 },
    circuitsCreated: 0,
    circuitsDestroyed: {},
  };
  private nextSerial = 1;

  constructor(options: OnionRelayOptions) {
    if (!(options.identity instanceof Uint8Array) || options.identity.length !== PSP_NTOR_ID_LEN) {
      throw new CircuitError("bad-argument", `relay identity must be a ${PSP_NTOR_ID_LEN}-byte Ed25519 public key`);
    }
    if (options.onionKeys.length === 0) throw new CircuitError("bad-argument", "a relay needs at least one onion key");
    const limits: RelayLimits = { ...DEFAULT_LIMITS, maxCircuitLength: DEFAULT_MAX_CIRCUIT_LENGTH, maxRelayEarly: MAX_RELAY_EARLY, ...options.limits };
    checkRelayLimits(limits);
    super({ now: options.now, limits, randomU32: options.randomU32, relayEarlyInRuns: true });
    this.identity = options.identity.slice();
    this.identityHex = keyHex(this.identity);
    this.onionKeys = options.onionKeys;
    this.protoId = options.protoId;
    this.limits = limits;
    this.relayEarlyBudget = Math.max(0, Math.min(limits.maxRelayEarly, limits.maxCircuitLength - 1));
    this.allowStreamsAtFirstHop = options.allowStreamsAtFirstHop ?? false;
    this.firstHopServices = new Set(options.firstHopServices ?? []);
    this.isListedRelay = options.isListedRelay ?? (() => false);
    for (const [name, service] of Object.entries(options.services ?? {})) this.registerService(name, service);
  }

  // ---- public inputs -------------------------------------------------------

  /** Adds (or replaces) the local service answering BEGIN for `name`. */
  registerService(name: string, service: LocalService): void {
    this.services.set(name, service);
  }

  unregisterService(name: string): void {
    this.services.delete(name);
  }

  /**
   * Lets a higher layer (presence, rendezvous, ...) handle one of its relay
   * commands (32..255) when a message with it is recognized here. Unhandled
   * commands destroy the circuit (PROTOCOL).
   */
  registerRelayCommand(command: number, handler: RelayCommandHandler): void {
    if (!Number.isInteger(command) || command < 32 || command > 255) {
      throw new CircuitError("bad-argument", `relay commands 1..31 belong to the onion layer; a higher layer uses 32..255, got ${command}`);
    }
    this.commandHandlers.set(command, handler);
  }

  // ---- what the core asks of a relay ---------------------------------------------

  protected newLink(base: CoreLink): LinkState {
    const creates = new TokenBucket({ bytesPerSecond: this.limits.createsPerSecondPerLink, burstBytes: this.limits.createBurstPerLink, now: this.now });
    return { ...base, circuitsFromPeer: 0, streamsFromPeer: 0, creates, relayCreates: undefined };
  }

  /** A link to the next hop an EXTEND named came up: CREATE on it, or DESTROY(OR_IDENTITY) if it proved another identity. */
  protected linkAnswered(circ: RelayCircuit, link: LinkState, identityMatches: boolean): void {
    if (circ.closed || circ.extend?.phase !== "link") return;
    if (identityMatches) this.startCreate(circ, link);
    else this.destroy(circ, DestroyReason.OR_IDENTITY, "local");
  }

  /** DESTROY CONNECTFAILED, or OR_IDENTITY when the node at that address proved another identity. */
  protected linkRequestFailed(circ: RelayCircuit, cause: LinkFailureCause): void {
    this.destroy(circ, cause === "identity-mismatch" ? DestroyReason.OR_IDENTITY : DestroyReason.CONNECTFAILED, "local");
  }

  /** DESTROY(CHANNEL_CLOSED) towards the circuit's other side. */
  protected sideClosed(entry: RelaySide): void {
    this.destroy(entry.circ, DestroyReason.CHANNEL_CLOSED, entry.fromPrev ? "prev" : "next");
  }

  protected timerWakeup(): number {
    let t = Number.POSITIVE_INFINITY;
    for (const circ of this.circuits) {
      if (circ.extend) t = Math.min(t, circ.extend.deadline);
      t = Math.min(t, circ.lastActivity + this.limits.relayCircuitIdleMs);
    }
    return t;
  }

  protected canSend(circ: RelayCircuit): boolean {
    return !circ.closed;
  }

  protected packageWindow(circ: RelayCircuit): FlowWindow {
    return circ.window;
  }

  protected sendData(circ: RelayCircuit, stream: EdgeStream): void {
    this.sendBackward(circ, stream.streamId, RelayCommand.DATA, stream.nextChunk() as Uint8Array);
  }

  /** Timers: extend timeouts, idle circuits, rate-limited queues. */
  tick(now: number): void {
    this.enter(now, () => {
      for (const circ of this.circuits) {
        if (circ.extend && now >= circ.extend.deadline) this.destroy(circ, DestroyReason.TIMEOUT, "local");
        else if (now - circ.lastActivity >= this.limits.relayCircuitIdleMs) this.destroy(circ, DestroyReason.FINISHED, "local");
      }
    });
  }

  /** Counters for metrics and tests. */
  stats(): { circuits: number; links: number; queuedCells: number; bytesSent: number } & RelayCreateStats {
    return {
      circuits: this.circuits.size,
      links: this.links.size,
      queuedCells: this.scheduler.queuedCells,
      bytesSent: this.scheduler.bytesSent,
      handshakes: this.createStats.handshakes,
      createsRefused: { ...this.createStats.createsRefused },
      circuitsCreated: this.createStats.circuitsCreated,
      circuitsDestroyed: { ...this.createStats.circuitsDestroyed },
    };
  }

  // ---- plumbing --------------------------------------------------------------

  /** Seals the payloads we originate as runs and wraps the backward batch in our layer: one cipher call. */
  protected flushCircuit(circ: RelayCircuit): void {
    if (circ.closed || circ.backwardBatch.length === 0) return;
    const batch = circ.backwardBatch;
    const own = circ.backwardOwn;
    circ.backwardBatch = [];
    circ.backwardOwn = [];
    const plain = gatherPayloadsTransient(batch);
    for (let r = 0; r < own.length; r += 2) {
      const from = own[r] as number;
      circ.crypto.backward.sealRun(plain, from * CELL_PAYLOAD_LEN, (own[r + 1] as number) - from);
    }
    const encrypted = circ.crypto.backward.applyKeystreamBuffer(plain);
    const bytes = encodeRelayRun(circ.prev.circId, CellCommand.RELAY, encrypted, 0, batch.length);
    if (!this.scheduler.enqueueRun(circ.prev.key, circ.prev.linkId, bytes, batch.length, this.now)) {
      this.destroy(circ, DestroyReason.RESOURCELIMIT, "local");
    }
  }

  private enqueue(circ: RelayCircuit, side: Side, command: number, payload: Uint8Array): void {
    if (!this.enqueueCell(side, command, payload)) this.destroy(circ, DestroyReason.RESOURCELIMIT, "local");
  }

  /** Queues a relay message we originate towards the client (sealed, with its neighbours, and encrypted at flush). */
  private sendBackward(circ: RelayCircuit, streamId: number, command: number, data: Uint8Array): void {
    if (circ.closed) return;
    const payload = encodeRelayPayload({ recognized: 0, streamId, digest: ZERO_DIGEST, command, data });
    const index = circ.backwardBatch.push(payload) - 1;
    const own = circ.backwardOwn;
    if (own.length > 0 && own[own.length - 1] === index) own[own.length - 1] = index + 1;
    else own.push(index, index + 1);
    this.dirty.add(circ);
  }

  /**
   * Tears a circuit down. `origin` is the side the teardown came from: no
   * DESTROY is sent back that way. Reasons propagate unchanged.
   */
  private destroy(circ: RelayCircuit, reason: DestroyReason, origin: "prev" | "next" | "local"): void {
    if (circ.closed) return;
    circ.closed = true;
    if (origin !== "prev") this.sendDestroy(circ.prev, reason);
    if (circ.next && origin !== "next") this.sendDestroy(circ.next, reason);
    this.forgetRelaySide(circ.prev, true);
    if (circ.next) this.forgetRelaySide(circ.next, false);
    this.cancelExtend(circ);
    for (const stream of circ.streams.values()) this.closeStreamLocally(circ, stream, EndReason.DESTROY);
    circ.streams.clear();
    this.circuits.delete(circ);
    this.dirty.delete(circ);
    const name = destroyReasonNames.nameOf(reason) ?? "NONE";
    this.createStats.circuitsDestroyed[name] = (this.createStats.circuitsDestroyed[name] ?? 0) + 1;
    this.emit({ type: "circuit-closed", circuitId: circ.serial, reason });
  }

  private forgetRelaySide(side: Side, fromPeer: boolean): void {
    const link = this.forgetSide(side);
    if (link && fromPeer) link.circuitsFromPeer--;
  }

  private cancelExtend(circ: RelayCircuit): void {
    const ext = circ.extend;
    circ.extend = undefined;
    if (ext?.requestId !== undefined) this.leaveRequest(ext.requestId, circ);
  }

  /** Releases one stream of the circuit's previous link (the per-peer stream count). */
  private streamGone(circ: RelayCircuit): void {
    const link = this.links.get(circ.prev.linkId);
    if (link && link.streamsFromPeer > 0) link.streamsFromPeer--;
  }

  private closeStreamLocally(circ: RelayCircuit, stream: RelayStream, reason: EndReason): void {
    if (stream.phase === "closed") return;
    if (stream.handler) this.streamGone(circ);
    stream.phase = "closed";
    stream.clearQueue();
    try {
      stream.handler?.onEnd?.(reason, this.now);
    } catch (error) {
      // A failing service must not take the relay down; the stream is closed either way, and the driver logs the event.
      this.emit({ type: "service-error", circuitId: circ.serial, streamId: stream.streamId, service: stream.service, stage: "end", error });
    }
    this.emit({ type: "stream-closed", circuitId: circ.serial, streamId: stream.streamId, reason });
  }

  // ---- control cells ----------------------------------------------------------

  protected controlCell(link: LinkState, circId: number, command: number, payload: Uint8Array, entry: RelaySide | undefined): void {
    const linkId = link.info.linkId;
    switch (command) {
      case CellCommand.CREATE:
        if (entry || link.circIds.has(circId)) {
          this.violation(linkId, circId, "CREATE for a circuit id already in use");
          return;
        }
        this.handleCreate(link, circId, payload);
        return;
      case CellCommand.CREATED: {
        if (!entry) return this.violation(linkId, circId, "CREATED for an unknown circuit");
        const { circ, fromPrev } = entry;
        if (fromPrev || circ.extend?.phase !== "created") {
          this.destroy(circ, DestroyReason.PROTOCOL, "local");
          return this.violation(linkId, circId, "unexpected CREATED");
        }
        let reply: Uint8Array;
        try {
          reply = decodeCreated2(payload);
        } catch {
          this.destroy(circ, DestroyReason.PROTOCOL, "local");
          return;
        }
        circ.extend = undefined;
        circ.lastActivity = this.now;
        this.sendBackward(circ, 0, RelayCommand.EXTENDED, encodeExtended2(reply));
        this.emit({ type: "next-hop-connected", circuitId: circ.serial, linkId });
        return;
      }
      case CellCommand.DESTROY: {
        if (!entry) return; // already gone: DESTROYs may cross
        this.destroy(entry.circ, decodeDestroy(payload), entry.fromPrev ? "prev" : "next");
        return;
      }
    }
  }

  private handleCreate(link: LinkState, circId: number, payload: Uint8Array): void {
    const linkId = link.info.linkId;
    // The link's initiator sets the MSB of the ids it allocates; the other side clears it.
    const peerInitiated = !link.info.weInitiated;
    const msbSet = circId >= 0x8000_0000;
    if (msbSet !== peerInitiated) {
      this.violation(linkId, circId, "CREATE with a circuit id from the wrong half of the id space");
      this.sendDestroy({ linkId, circId }, DestroyReason.PROTOCOL);
      return;
    }
    const cap = this.createCap(link);
    if (cap !== undefined) {
      this.createStats.createsRefused[cap]++;
      this.sendDestroy({ linkId, circId }, DestroyReason.RESOURCELIMIT);
      this.emit({ type: "create-refused", linkId, circId, cap });
      return;
    }
    let keys: Uint8Array;
    let reply: Uint8Array;
    try {
      const create = decodeCreate2(payload);
      if (create.handshakeType !== HANDSHAKE_NTOR) {
        this.sendDestroy({ linkId, circId }, DestroyReason.PROTOCOL);
        return;
      }
      const skin = ntorParseOnionskin(create.handshakeData, PSP_NTOR_ID_LEN);
      const onionKey = this.onionKeys.find((k) => keyHex(k.publicKey) === keyHex(skin.onionPublic));
      if (keyHex(skin.id) !== this.identityHex || !onionKey) {
        this.sendDestroy({ linkId, circId }, DestroyReason.OR_IDENTITY);
        return;
      }
      this.createStats.handshakes++;
      ({ reply, keys } = ntorServerRespond({
        ...(this.protoId === undefined ? {} : { protoId: this.protoId }),
        id: this.identity,
        onionSecret: onionKey.secretKey,
        onionPublic: onionKey.publicKey,
        clientPublic: skin.clientPublic,
        keyLength: HOP_KEY_MATERIAL_LEN,
      }));
    } catch (err) {
      if (!isPspError(err)) throw err;
      this.violation(linkId, circId, `bad CREATE2: ${err.message}`);
      this.sendDestroy({ linkId, circId }, DestroyReason.PROTOCOL);
      return;
    }
    const prev = makeSide(linkId, circId);
    const circ: RelayCircuit = {
      serial: this.nextSerial++,
      prev,
      next: undefined,
      extend: undefined,
      crypto: hopCryptoFromKeyMaterial(keys),
      relayEarlyLeft: this.relayEarlyBudget,
      streams: new Map(),
      window: new FlowWindow({ start: CIRCUIT_WINDOW_START, increment: CIRCUIT_WINDOW_INCREMENT }),
      lastActivity: this.now,
      backwardBatch: [],
      backwardOwn: [],
      heldEarly: [],
      closed: false,
    };
    keys.fill(0);
    this.circuits.add(circ);
    this.createStats.circuitsCreated++;
    this.addSide(link, prev, { circ, fromPrev: true });
    link.circuitsFromPeer++;
    this.enqueue(circ, prev, CellCommand.CREATED, encodeCreated2(reply));
    this.emit({ type: "circuit-created", circuitId: circ.serial, linkId });
  }

  /**
   * The cap a CREATE on `link` meets, if any: circuit counts first (free to
   * check), then the link's and its address's token buckets. A token is
   * taken only when every cap passes, so a refused link never drains its
   * address's share for the others.
   */
  private createCap(link: LinkState): CreateCap | undefined {
    if (link.circuitsFromPeer >= this.limits.maxCircuitsPerLink || this.circuits.size >= this.limits.maxCircuits) return "circuits";
    const peer = link.info.peerIdentity;
    if (peer && this.isListedRelay(peer)) {
      link.relayCreates ??= new TokenBucket({
        bytesPerSecond: this.limits.createsPerSecondPerRelayLink,
        burstBytes: this.limits.createBurstPerRelayLink,
        now: this.now,
      });
      return link.relayCreates.tryTake(1, this.now) ? undefined : "link-rate";
    }
    if (link.creates.available(this.now) < 1) return "link-rate";
    const host = link.info.remoteHost;
    const byAddress = host === undefined ? undefined : this.addressBucket(host);
    if (byAddress !== undefined && !byAddress.tryTake(1, this.now)) return "address-rate";
    link.creates.tryTake(1, this.now);
    return undefined;
  }

  private addressBucket(host: string): TokenBucket {
    let bucket = this.addressBuckets.get(host);
    if (bucket !== undefined) return bucket;
    if (this.addressBuckets.size >= MAX_ADDRESS_BUCKETS) {
      for (const [h, b] of this.addressBuckets) if (b.available(this.now) >= b.burstBytes) this.addressBuckets.delete(h);
    }
    bucket = new TokenBucket({ bytesPerSecond: this.limits.createsPerSecondPerAddress, burstBytes: this.limits.createBurstPerAddress, now: this.now });
    // Still full of busy addresses: the map grows past the soft cap rather than sharing buckets between hosts.
    this.addressBuckets.set(host, bucket);
    return bucket;
  }

  // ---- relay cells ------------------------------------------------------------

  protected relayRun(link: LinkState, circId: number, entry: RelaySide, runCommands: number[], payloads: Uint8Array[]): void {
    const { circ, fromPrev } = entry;
    circ.lastActivity = this.now;
    if (!fromPrev) {
      // Backward: add our layer and pass towards the client. Inbound RELAY_EARLY is forbidden (tor-spec 5.6).
      for (let i = 0; i < payloads.length; i++) {
        if (runCommands[i] === CellCommand.RELAY_EARLY) {
          this.violation(link.info.linkId, circId, "RELAY_EARLY travelling towards the client");
          this.destroy(circ, DestroyReason.PROTOCOL, "local");
          return;
        }
        circ.backwardBatch.push(payloads[i] as Uint8Array);
      }
      this.dirty.add(circ);
      return;
    }
    // One cipher call over the run; cells for the next hop are written straight
    // into one buffer of encoded cells (a "send-run", with the commands they
    // arrived with), cut only where a cell is for us, so the order on the next
    // link is the arrival order.
    const n = payloads.length;
    const layer = circ.crypto.forward;
    const plain = layer.applyKeystreamBuffer(gatherPayloadsTransient(payloads));
    let pendingFrom = 0;
    let pendingTo = 0;
    for (let i = 0; i < n && !circ.closed; i++) {
      const command = runCommands[i] as number;
      const early = command === CellCommand.RELAY_EARLY;
      if (early && circ.relayEarlyLeft-- <= 0) {
        this.violation(link.info.linkId, circId, `more than ${this.relayEarlyBudget} RELAY_EARLY cells on one circuit`);
        this.destroy(circ, DestroyReason.PROTOCOL, "local");
        return;
      }
      const off = i * CELL_PAYLOAD_LEN;
      // A cell whose recognized field is not zero cannot be ours (no digest to compute),
      // unless we hold part of a run: then it breaks that run.
      if ((plain[off] === 0 && plain[off + 1] === 0) || layer.heldCount > 0) {
        // A plain Uint8Array view: `.slice()` downstream copies, as it would on any payload.
        const payload = new Uint8Array(plain.buffer, plain.byteOffset + off, CELL_PAYLOAD_LEN);
        const step = layer.receive(payload);
        if (step === RunStep.Broken) {
          this.violation(link.info.linkId, circId, "a sealed run of relay cells did not verify (modified in transit)");
          this.destroy(circ, DestroyReason.PROTOCOL, "local");
          return;
        }
        if (step !== RunStep.NotMine) {
          this.forwardRun(circ, runCommands, plain, pendingFrom, pendingTo);
          pendingFrom = pendingTo = i + 1;
          if (step === RunStep.Held) {
            circ.heldEarly.push(early);
            continue;
          }
          const run = layer.takeRun();
          const earlies = circ.heldEarly;
          circ.heldEarly = [];
          for (let k = 0; k < run.length && !circ.closed; k++) {
            this.handleRecognized(circ, run[k] as Uint8Array, k < earlies.length ? (earlies[k] as boolean) : early);
          }
          continue;
        }
      }
      if (circ.next && !circ.extend) {
        if (pendingTo !== i) {
          this.forwardRun(circ, runCommands, plain, pendingFrom, pendingTo);
          pendingFrom = i;
        }
        pendingTo = i + 1;
      } else {
        this.violation(link.info.linkId, circId, "relay cell not recognized and there is no next hop");
        this.destroy(circ, DestroyReason.PROTOCOL, "local");
        return;
      }
    }
    this.forwardRun(circ, runCommands, plain, pendingFrom, pendingTo);
    layer.compactHeld();
  }

  /** Queues decrypted payloads `from`..`to` of `plain` for the next hop as one run of encoded cells. */
  private forwardRun(circ: RelayCircuit, commands: readonly number[], plain: Buffer, from: number, to: number): void {
    const next = circ.next;
    if (to <= from || circ.closed || !next) return;
    const bytes = encodeRelayRun(next.circId, commands, plain, from, to);
    if (!this.scheduler.enqueueRun(next.key, next.linkId, bytes, to - from, this.now)) this.destroy(circ, DestroyReason.RESOURCELIMIT, "local");
  }

  private handleRecognized(circ: RelayCircuit, payload: Uint8Array, early: boolean): void {
    let msg: ReturnType<typeof decodeRelayPayload>;
    try {
      msg = decodeRelayPayload(payload);
    } catch (err) {
      if (!isPspError(err)) throw err;
      this.violation(circ.prev.linkId, circ.prev.circId, `bad relay payload: ${err.message}`);
      this.destroy(circ, DestroyReason.PROTOCOL, "local");
      return;
    }
    try {
      switch (msg.command) {
        case RelayCommand.EXTEND:
          return this.handleExtend(circ, msg.streamId, msg.data, early);
        case RelayCommand.TRUNCATE:
          return this.handleTruncate(circ, msg.streamId);
        case RelayCommand.BEGIN:
          return this.handleBegin(circ, msg.streamId, msg.data);
        case RelayCommand.DATA:
          return this.handleData(circ, msg.streamId, msg.data);
        case RelayCommand.END:
          return this.handleEnd(circ, msg.streamId, msg.data);
        case RelayCommand.SENDME:
          return this.handleSendme(circ, msg.streamId);
        case RelayCommand.DROP:
          return;
        default: {
          const handler = this.commandHandlers.get(msg.command);
          if (handler) return handler(this.commandContext(circ), msg.streamId, msg.data, this.now);
          this.violation(circ.prev.linkId, circ.prev.circId, `relay command ${msg.command} is not valid towards a relay`);
          this.destroy(circ, DestroyReason.PROTOCOL, "local");
        }
      }
    } catch (err) {
      if (!isPspError(err)) throw err;
      this.violation(circ.prev.linkId, circ.prev.circId, err.message);
      this.destroy(circ, DestroyReason.PROTOCOL, "local");
    }
  }

  private commandContext(circ: RelayCircuit): RelayCommandContext {
    return {
      circuitId: circ.serial,
      reply: (command, streamId, data) => {
        if (circ.closed) throw new CircuitError("bad-state", "the circuit is closed");
        this.enter(this.now, () => this.sendBackward(circ, streamId, command, data));
      },
      destroy: (reason) => this.enter(this.now, () => this.destroy(circ, reason, "local")),
    };
  }

  private handleExtend(circ: RelayCircuit, streamId: number, data: Uint8Array, early: boolean): void {
    if (!early || streamId !== 0 || circ.next || circ.extend) {
      throw new CircuitError(
        "protocol-violation",
        !early ? "EXTEND outside a RELAY_EARLY cell" : streamId !== 0 ? "EXTEND on a stream" : "EXTEND on an extended circuit",
      );
    }
    const ext = decodeExtend2(data);
    if (ext.handshakeType !== HANDSHAKE_NTOR) throw new CircuitError("protocol-violation", "EXTEND2 with an unknown handshake type");
    const identityHex = keyHex(ext.identity);
    if (identityHex === this.identityHex) throw new CircuitError("protocol-violation", "EXTEND2 back to this relay");
    const pending: PendingExtend = {
      phase: "link",
      identity: ext.identity,
      addresses: ext.addresses,
      create2: encodeCreate2({ handshakeType: ext.handshakeType, handshakeData: ext.handshakeData }),
      deadline: this.now + this.limits.extendTimeoutMs,
    };
    circ.extend = pending;
    const link = this.linkTo(ext.identity, ext.addresses, circ);
    if (typeof link === "number") pending.requestId = link;
    else this.startCreate(circ, link);
  }

  private startCreate(circ: RelayCircuit, link: LinkState): void {
    const ext = circ.extend;
    if (!ext) return;
    const circId = this.allocateCircId(link);
    if (circId === undefined) {
      this.destroy(circ, DestroyReason.RESOURCELIMIT, "local");
      return;
    }
    const next = this.addSide(link, makeSide(link.info.linkId, circId), { circ, fromPrev: false });
    circ.next = next;
    ext.phase = "created";
    ext.requestId = undefined;
    this.enqueue(circ, next, CellCommand.CREATE, ext.create2);
  }

  private handleTruncate(circ: RelayCircuit, streamId: number): void {
    if (streamId !== 0) throw new CircuitError("protocol-violation", "TRUNCATE on a stream");
    if (circ.next) {
      this.sendDestroy(circ.next, DestroyReason.REQUESTED);
      this.forgetRelaySide(circ.next, false);
      circ.next = undefined;
    }
    this.cancelExtend(circ);
    this.sendBackward(circ, 0, RelayCommand.TRUNCATED, encodeReason(DestroyReason.REQUESTED));
  }

  private endStream(circ: RelayCircuit, streamId: number, reason: EndReason): void {
    this.sendBackward(circ, streamId, RelayCommand.END, encodeReason(reason));
  }

  private handleBegin(circ: RelayCircuit, streamId: number, data: Uint8Array): void {
    if (streamId === 0) throw new CircuitError("protocol-violation", "BEGIN without a stream id");
    if (circ.streams.has(streamId)) throw new CircuitError("protocol-violation", `BEGIN for stream ${streamId}, already open`);
    let service: string;
    try {
      service = decodeBegin(data);
    } catch {
      return this.endStream(circ, streamId, EndReason.PROTOCOL);
    }
    const prevLink = this.links.get(circ.prev.linkId);
    if (!this.allowStreamsAtFirstHop && !prevLink?.info.peerIdentity && !this.firstHopServices.has(service))
      return this.endStream(circ, streamId, EndReason.POLICY);
    if (circ.streams.size >= this.limits.maxStreamsPerCircuit) return this.endStream(circ, streamId, EndReason.RESOURCELIMIT);
    if (prevLink && prevLink.streamsFromPeer >= this.limits.maxStreamsPerLink) return this.endStream(circ, streamId, EndReason.RESOURCELIMIT);
    const accept = this.services.get(service);
    if (!accept) return this.endStream(circ, streamId, EndReason.NO_SUCH_SERVICE);
    const stream = Object.assign(new EdgeStream(streamId, service, 0, this.limits.maxMessageBytes), {
      paused: false,
      inbox: [] as Uint8Array[],
    }) as RelayStream;
    stream.phase = "open";
    let result: ServiceHandler | EndReason;
    try {
      result = accept(this.serviceHandle(circ, stream), this.now);
    } catch (error) {
      result = EndReason.INTERNAL;
      this.emit({ type: "service-error", circuitId: circ.serial, streamId, service, stage: "accept", error });
    }
    if (typeof result === "number") {
      stream.phase = "closed";
      return this.endStream(circ, streamId, toEndReason(result));
    }
    stream.handler = result;
    circ.streams.set(streamId, stream);
    if (prevLink) prevLink.streamsFromPeer++;
    this.sendBackward(circ, streamId, RelayCommand.CONNECTED, EMPTY);
    this.emit({ type: "stream-open", circuitId: circ.serial, streamId, service });
    this.pump(circ, stream);
  }

  private serviceHandle(circ: RelayCircuit, stream: RelayStream): ServiceStream {
    const maxQueued = Math.ceil(this.limits.maxMessageBytes / DATA_CHUNK_LEN) * 4;
    const previousHop = this.links.get(circ.prev.linkId)?.info.peerIdentity ?? null;
    return {
      circuitId: circ.serial,
      streamId: stream.streamId,
      service: stream.service,
      previousHop: previousHop ? previousHop.slice() : null,
      get queuedCells() {
        return stream.queuedCells;
      },
      send: (message: Uint8Array) => {
        if (circ.closed || stream.phase !== "open") {
          throw new CircuitError("bad-state", `stream ${stream.streamId} is closed; open a new one`);
        }
        if (stream.queuedCells > maxQueued) {
          throw new CircuitError("resource-limit", `stream ${stream.streamId} has ${stream.queuedCells} cells queued; wait for the peer`);
        }
        stream.enqueueMessage(message);
        this.enter(this.now, () => this.pump(circ, stream));
      },
      pause: () => {
        stream.paused = true;
      },
      resume: () => {
        if (!stream.paused) return;
        stream.paused = false;
        this.enter(this.now, () => {
          while (!stream.paused && stream.phase === "open" && stream.inbox.length > 0) {
            this.deliver(circ, stream, stream.inbox.shift() as Uint8Array);
          }
          if (!circ.closed) this.sendStreamSendmes(circ, stream);
        });
      },
      destroyCircuit: (reason: DestroyReason = DestroyReason.REQUESTED) => {
        if (circ.closed) return;
        this.enter(this.now, () => this.destroy(circ, reason, "local"));
      },
      end: (reason: EndReason = EndReason.DONE) => {
        if (circ.closed || stream.phase !== "open") return;
        this.enter(this.now, () => {
          circ.streams.delete(stream.streamId);
          this.streamGone(circ);
          stream.phase = "closed";
          stream.clearQueue();
          this.endStream(circ, stream.streamId, reason);
          this.emit({ type: "stream-closed", circuitId: circ.serial, streamId: stream.streamId, reason });
        });
      },
    };
  }

  private handleData(circ: RelayCircuit, streamId: number, data: Uint8Array): void {
    if (streamId === 0) throw new CircuitError("protocol-violation", "DATA without a stream id");
    if (circ.window.delivered() === "overrun") throw new CircuitError("protocol-violation", "DATA beyond the circuit window (sender ignored SENDME)");
    this.sendCircuitSendmes(circ);
    const stream = circ.streams.get(streamId);
    if (!stream) return; // a stream we just closed; its END is on the way
    if (stream.window.delivered() === "overrun") throw new CircuitError("protocol-violation", "DATA beyond the stream window (sender ignored SENDME)");
    this.sendStreamSendmes(circ, stream);
    let message: Uint8Array | undefined;
    try {
      message = stream.reassembler.push(data);
    } catch (err) {
      const reason = CircuitError.is(err, "resource-limit") ? EndReason.RESOURCELIMIT : EndReason.PROTOCOL;
      circ.streams.delete(streamId);
      this.closeStreamLocally(circ, stream, reason);
      return this.endStream(circ, streamId, reason);
    }
    if (message === undefined) return;
    if (stream.paused) stream.inbox.push(message);
    else this.deliver(circ, stream, message);
  }

  /** Sends the circuit-level SENDMEs due (delayed acknowledgement: flow-control.ts). */
  private sendCircuitSendmes(circ: RelayCircuit): void {
    if (circ.closed) return;
    const count = this.acknowledge(circ.window, (circ.sendSendmesLater ??= () => this.sendCircuitSendmes(circ)));
    for (let i = 0; i < count; i++) this.sendBackward(circ, 0, RelayCommand.SENDME, EMPTY);
  }

  /** Sends the stream-level SENDMEs due, unless the service paused the stream (backpressure). */
  private sendStreamSendmes(circ: RelayCircuit, stream: RelayStream): void {
    if (stream.paused || stream.phase !== "open" || circ.closed) return;
    const count = this.acknowledge(stream.window, (stream.sendSendmesLater ??= () => this.sendStreamSendmes(circ, stream)));
    for (let i = 0; i < count; i++) this.sendBackward(circ, stream.streamId, RelayCommand.SENDME, EMPTY);
  }

  private deliver(circ: RelayCircuit, stream: RelayStream, message: Uint8Array): void {
    try {
      stream.handler?.onMessage(message, this.now);
    } catch (error) {
      this.emit({ type: "service-error", circuitId: circ.serial, streamId: stream.streamId, service: stream.service, stage: "message", error });
      circ.streams.delete(stream.streamId);
      this.closeStreamLocally(circ, stream, EndReason.INTERNAL);
      this.endStream(circ, stream.streamId, EndReason.INTERNAL);
    }
  }

  private handleEnd(circ: RelayCircuit, streamId: number, data: Uint8Array): void {
    const stream = circ.streams.get(streamId);
    if (!stream) return;
    circ.streams.delete(streamId);
    this.closeStreamLocally(circ, stream, toEndReason(data[0] ?? EndReason.MISC));
  }

  private handleSendme(circ: RelayCircuit, streamId: number): void {
    if (streamId === 0) {
      if (!circ.window.sendmeReceived()) throw new CircuitError("protocol-violation", "circuit SENDME beyond the window");
      for (const s of circ.streams.values()) this.pumpService(circ, s);
      return;
    }
    const stream = circ.streams.get(streamId);
    if (!stream) return;
    if (!stream.window.sendmeReceived()) throw new CircuitError("protocol-violation", "stream SENDME beyond the window");
    this.pumpService(circ, stream);
  }

  /** Pumps a service stream the window reopened for, and tells its handler when that emptied its queue. */
  private pumpService(circ: RelayCircuit, stream: RelayStream): void {
    const waiting = stream.queuedCells;
    this.pump(circ, stream);
    if (waiting > 0 && stream.queuedCells === 0 && stream.phase === "open" && stream.handler?.onDrain) {
      try {
        stream.handler.onDrain(this.now);
      } catch {
        circ.streams.delete(stream.streamId);
        this.closeStreamLocally(circ, stream, EndReason.INTERNAL);
        this.endStream(circ, stream.streamId, EndReason.INTERNAL);
      }
    }
  }
}

/**
 * What the relay and client state machines share: one circuit core.
 *
 * Owns the plumbing both roles run the same way (docs/spec/onion.md §1, §11):
 * the links the machine knows (with the circuit ids in use on each), the
 * table from (link, circuit id) to a circuit's side, circuit-id allocation in
 * this side's half of the id space, `open-link` requests (one per identity,
 * shared by every circuit waiting for it), link-closed handling, the checks
 * every incoming cell passes (circuit id, circuit command, payload length;
 * short payloads zero padded), the loop that groups a link's consecutive
 * relay cells of one circuit into runs, the outbound scheduler, the
 * re-entrant `enter` that flushes once per outermost call, and the loop that
 * packages a stream's queued DATA under both windows (`pump`).
 *
 * The roles (relay.ts, client.ts) subclass it and implement the hooks: what a
 * run of relay cells or a control cell means to them, what happens to their
 * circuits when a link request is answered, fails or a link closes, how a
 * dirty circuit is flushed, and their own timers. The core is free of I/O
 * like the roles: it takes cells and time and returns actions.
 *
 * Trusts: the link layer's `peerIdentity` and its subclass. Trusts nothing in
 * cells: a cell that fails the checks is dropped with a "protocol-violation"
 * event before any role sees it.
 */
import { CELL_PAYLOAD_LEN, CellCommand } from "../wire/cell.js";
import type { Cell } from "../wire/cell.js";
import type { DestroyReason } from "./constants.js";
import { CircuitError } from "./errors.js";
import type { FlowWindow } from "./flow-control.js";
import { keyHex } from "./path.js";
import { encodeDestroy } from "./payloads.js";
import { OutboundScheduler } from "./scheduler.js";
import type { EdgeStream } from "./streams.js";
import type { LinkFailureCause, LinkInfo, NodeAddress, OnionAction, OnionEvent } from "./types.js";

export const EMPTY = new Uint8Array(0);
/** The DIGEST field of a relay payload before it is sealed. */
export const ZERO_DIGEST = new Uint8Array(4);

/** The key of one side of a circuit: (link, circuit id). */
export function sideKey(linkId: string, circId: number): string {
  return `${linkId}\u0000${circId}`;
}

export function defaultRandomU32(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0] as number;
}

/** One side of a circuit: the link it runs on and its id there. */
export interface Side {
  linkId: string;
  circId: number;
  key: string;
}

export function makeSide(linkId: string, circId: number): Side {
  return { linkId, circId, key: sideKey(linkId, circId) };
}

/** What the core keeps per link; roles may add counters. */
export interface CoreLink {
  info: LinkInfo;
  identityHex: string | undefined;
  /** Circuit ids in use on this link, both directions. */
  circIds: Set<number>;
}

/** The rate limits and queue cap of the outbound scheduler (both roles' limits carry them). */
export interface CoreLimits {
  nodeBytesPerSecond: number;
  nodeBurstBytes: number;
  circuitBytesPerSecond: number;
  circuitBurstBytes: number;
  maxQueuedCellsPerCircuit: number;
}

export interface CircuitCoreOptions {
  now: number;
  limits: CoreLimits;
  /** Random 32-bit integers for circuit ids; default crypto-random. */
  randomU32?: (() => number) | undefined;
  /**
   * Whether RELAY_EARLY cells join runs with RELAY cells (a relay: they travel
   * forward with them). A client never accepts RELAY_EARLY, so for it they are
   * control cells its role refuses.
   */
  relayEarlyInRuns: boolean;
}

interface LinkRequest<C> {
  identityHex: string;
  circuits: Set<C>;
}

/** Whether `command` is one of the five circuit commands the onion layer handles. */
function isCircuitCommand(command: number): boolean {
  return (
    command === CellCommand.CREATE ||
    command === CellCommand.CREATED ||
    command === CellCommand.RELAY ||
    command === CellCommand.RELAY_EARLY ||
    command === CellCommand.DESTROY
  );
}

/**
 * The shared circuit machine. `C` is a role's circuit, `E` what the side
 * table holds for one side of it, `L` a role's link state.
 */
export abstract class CircuitCore<C, E, L extends CoreLink> {
  protected readonly scheduler: OutboundScheduler;
  protected readonly links = new Map<string, L>();
  /** Side key → the circuit side known by it. */
  protected readonly sides = new Map<string, E>();
  /** Circuits with relay payloads waiting for the next flush. */
  protected readonly dirty = new Set<C>();
  protected actions: OnionAction[] = [];
  protected now: number;
  private readonly randomU32: () => number;
  private readonly relayEarlyInRuns: boolean;
  private readonly linkRequests = new Map<number, LinkRequest<C>>();
  private readonly requestByIdentity = new Map<string, number>();
  private nextRequestId = 1;
  private depth = 0;
  /** Windows whose owed SENDMEs wait to be coalesced, with what sends them (delayed acknowledgement, flow-control.ts). */
  private readonly delayedSendmes = new Map<FlowWindow, () => void>();

  protected constructor(options: CircuitCoreOptions) {
    const limits = options.limits;
    this.now = options.now;
    this.randomU32 = options.randomU32 ?? defaultRandomU32;
    this.relayEarlyInRuns = options.relayEarlyInRuns;
    this.scheduler = new OutboundScheduler({
      node: { bytesPerSecond: limits.nodeBytesPerSecond, burstBytes: limits.nodeBurstBytes },
      circuit: { bytesPerSecond: limits.circuitBytesPerSecond, burstBytes: limits.circuitBurstBytes },
      maxQueuedCellsPerCircuit: limits.maxQueuedCellsPerCircuit,
      now: options.now,
    });
  }

  // ---- role hooks -------------------------------------------------------------

  /** The role's state for a link the core just registered. */
  protected abstract newLink(base: CoreLink): L;
  /** A link answered a request `circ` waited on; `identityMatches` says whether it proved the identity asked for. */
  protected abstract linkAnswered(circ: C, link: L, identityMatches: boolean): void;
  /** A link request `circ` waited on failed. */
  protected abstract linkRequestFailed(circ: C, cause: LinkFailureCause): void;
  /** The link carrying this side of a circuit closed (the side is still in the table). */
  protected abstract sideClosed(entry: E): void;
  /** Consecutive RELAY (and, for a relay, RELAY_EARLY) cells of one known circuit side, payloads 507 bytes each. */
  protected abstract relayRun(link: L, circId: number, entry: E, commands: number[], payloads: Uint8Array[]): void;
  /** Any other circuit cell (CREATE, CREATED, DESTROY, and RELAY_EARLY for a client); `entry` undefined for an unknown side. */
  protected abstract controlCell(link: L, circId: number, command: number, payload: Uint8Array, entry: E | undefined): void;
  /** Turns a dirty circuit's waiting payloads into queued cells (called once per outermost `enter`). */
  protected abstract flushCircuit(circ: C): void;
  /** The role's earliest timer (Infinity: none); the scheduler's is added by the core. */
  protected abstract timerWakeup(): number;
  /** Whether `circ` may still package DATA. */
  protected abstract canSend(circ: C): boolean;
  /** The circuit-level package window a stream's DATA counts against. */
  protected abstract packageWindow(circ: C, stream: EdgeStream): FlowWindow;
  /** Sends `stream`'s next DATA body (already counted against both windows; the stream has one queued). */
  protected abstract sendData(circ: C, stream: EdgeStream): void;

  // ---- driver inputs ------------------------------------------------------------

  /**
   * A link came up (accepted, or opened on our `open-link` request). A link
   * already known may be named again with a `requestId`: the connection
   * manager answered our request with a link it already had (its "link"
   * event can come before the dial's promise settles).
   */
  linkOpened(info: LinkInfo, now: number): void {
    this.enter(now, () => {
      let link = this.links.get(info.linkId);
      if (link && info.requestId === undefined) throw new CircuitError("bad-state", `link ${info.linkId} is already open`);
      if (!link) {
        link = this.newLink({
          info: {
            linkId: info.linkId,
            peerIdentity: info.peerIdentity,
            weInitiated: info.weInitiated,
            ...(info.remoteHost === undefined ? {} : { remoteHost: info.remoteHost }),
          },
          identityHex: info.peerIdentity ? keyHex(info.peerIdentity) : undefined,
          circIds: new Set(),
        });
        this.links.set(info.linkId, link);
      }
      if (info.requestId === undefined) return;
      const request = this.takeRequest(info.requestId);
      if (!request) return;
      for (const circ of request.circuits) this.linkAnswered(circ, link, link.identityHex === request.identityHex);
    });
  }

  /**
   * An `open-link` request failed: unreachable, TLS or handshake failure, or
   * the node at that address proved another identity (`cause`
   * "identity-mismatch").
   */
  linkFailed(requestId: number, now: number, cause: LinkFailureCause = "unreachable"): void {
    this.enter(now, () => {
      const request = this.takeRequest(requestId);
      if (!request) return;
      for (const circ of request.circuits) this.linkRequestFailed(circ, cause);
    });
  }

  /** A link closed: every circuit side on it is handed to the role (which ends the circuit). */
  linkClosed(linkId: string, now: number): void {
    this.enter(now, () => {
      const link = this.links.get(linkId);
      if (!link) return;
      for (const circId of [...link.circIds]) {
        const entry = this.sides.get(sideKey(linkId, circId));
        if (entry !== undefined) this.sideClosed(entry);
      }
      this.links.delete(linkId);
    });
  }

  /** Circuits using a link (either side); a driver keeps links with circuits from idling out. */
  linkCircuitCount(linkId: string): number {
    return this.links.get(linkId)?.circIds.size ?? 0;
  }

  /** One cell from a link. */
  handleCell(linkId: string, cell: Cell, now: number): void {
    this.handleCells(linkId, [cell], now);
  }

  /**
   * Cells from one link, in arrival order. Every cell is checked first;
   * consecutive relay cells of the same circuit go to the role as one run
   * (one cipher call per layer).
   */
  handleCells(linkId: string, cells: readonly Cell[], now: number): void {
    this.enter(now, () => {
      const link = this.links.get(linkId);
      if (!link) throw new CircuitError("bad-state", `cell from unknown link ${linkId}; call linkOpened first`);
      let i = 0;
      while (i < cells.length) {
        const cell = cells[i] as Cell;
        const payload = this.checkCell(linkId, cell);
        i++;
        if (!payload) continue;
        const circId = cell.circId;
        if (!this.isRunCommand(cell.command)) {
          this.controlCell(link, circId, cell.command, payload, this.sides.get(sideKey(linkId, circId)));
          continue;
        }
        const commands = [cell.command];
        const payloads = [payload];
        while (i < cells.length) {
          const c = cells[i] as Cell;
          if (c.circId !== circId || !this.isRunCommand(c.command)) break;
          i++;
          const p = this.checkCell(linkId, c);
          if (!p) break; // reported; the run ends before it
          commands.push(c.command);
          payloads.push(p);
        }
        const entry = this.sides.get(sideKey(linkId, circId));
        if (entry === undefined) this.violation(linkId, circId, "relay cell for an unknown circuit");
        else this.relayRun(link, circId, entry, commands, payloads);
      }
    });
  }

  /** Everything the machine asked for since the last call, in order. */
  takeActions(): OnionAction[] {
    const out = this.actions;
    this.actions = [];
    return out;
  }

  /** When `tick` should next run (undefined: nothing pending). */
  nextWakeup(): number | undefined {
    let t = Math.min(this.scheduler.nextReadyAt(this.now) ?? Number.POSITIVE_INFINITY, this.timerWakeup());
    for (const window of this.delayedSendmes.keys()) t = Math.min(t, window.sendmeDeadline ?? this.now);
    return Number.isFinite(t) ? t : undefined;
  }

  // ---- shared plumbing ------------------------------------------------------------

  /** Runs `fn` at time `now`; the outermost call flushes what it produced. */
  protected enter(now: number, fn: () => void): void {
    if (Number.isFinite(now) && now > this.now) this.now = now;
    this.depth++;
    try {
      if (this.depth === 1 && this.delayedSendmes.size > 0) this.sendDueSendmes();
      fn();
    } finally {
      this.depth--;
      if (this.depth === 0) this.flush();
    }
  }

  /**
   * Acknowledges DATA delivered on `window`: how many SENDMEs to send now
   * (already recorded as sent). While it holds SENDMEs back, `sendLater` runs
   * once they are due (on the first input or `tick` at their deadline, which
   * `nextWakeup` includes); it must check that its circuit or stream is still
   * open and acknowledge again. Pass a function made once per circuit or
   * stream: this is the per-cell path.
   */
  protected acknowledge(window: FlowWindow, sendLater: () => void): number {
    const count = window.takeSendmes(this.now);
    if (count > 0) this.delayedSendmes.delete(window);
    else if (window.sendmeDeadline !== undefined && !this.delayedSendmes.has(window)) this.delayedSendmes.set(window, sendLater);
    return count;
  }

  private sendDueSendmes(): void {
    for (const [window, sendLater] of this.delayedSendmes) {
      const due = window.sendmeDeadline;
      if (due !== undefined && due > this.now) continue;
      this.delayedSendmes.delete(window);
      if (due !== undefined) sendLater();
    }
  }

  private flush(): void {
    for (const circ of this.dirty) this.flushCircuit(circ);
    this.dirty.clear();
    this.scheduler.flush(this.now, this.actions);
  }

  protected emit(event: OnionEvent): void {
    this.actions.push({ type: "event", event });
  }

  protected violation(linkId: string, circId: number, message: string): void {
    this.emit({ type: "protocol-violation", linkId, circId, message });
  }

  private isRunCommand(command: number): boolean {
    return command === CellCommand.RELAY || (this.relayEarlyInRuns && command === CellCommand.RELAY_EARLY);
  }

  /** The cell's payload as exactly 507 bytes, or undefined (with an event) if the cell is unusable. */
  private checkCell(linkId: string, cell: Cell): Uint8Array | undefined {
    const { circId, command, payload } = cell;
    if (!Number.isInteger(circId) || circId <= 0 || circId > 0xffff_ffff) {
      this.violation(linkId, Number(circId) || 0, "circuit cell with an invalid circuit id");
      return undefined;
    }
    if (!(payload instanceof Uint8Array) || payload.length > CELL_PAYLOAD_LEN) {
      this.violation(linkId, circId, "cell payload is not a Uint8Array of at most 507 bytes");
      return undefined;
    }
    if (!isCircuitCommand(command)) {
      this.violation(linkId, circId, `command ${String(command)} is not a circuit command`);
      return undefined;
    }
    if (payload.length === CELL_PAYLOAD_LEN) return payload;
    const padded = new Uint8Array(CELL_PAYLOAD_LEN);
    padded.set(payload);
    return padded;
  }

  /**
   * The open link to `identity` if there is one; otherwise the id of the
   * `open-link` request `circ` now waits on (one request per identity, asked
   * for once).
   */
  protected linkTo(identity: Uint8Array, addresses: NodeAddress[], circ: C): L | number {
    const identityHex = keyHex(identity);
    for (const link of this.links.values()) if (link.identityHex === identityHex) return link;
    let requestId = this.requestByIdentity.get(identityHex);
    let request = requestId === undefined ? undefined : this.linkRequests.get(requestId);
    if (requestId === undefined || !request) {
      requestId = this.nextRequestId++;
      request = { identityHex, circuits: new Set() };
      this.linkRequests.set(requestId, request);
      this.requestByIdentity.set(identityHex, requestId);
      this.actions.push({ type: "open-link", requestId, identity: identity.slice(), addresses });
    }
    request.circuits.add(circ);
    return requestId;
  }

  /** `circ` no longer waits on request `requestId`. */
  protected leaveRequest(requestId: number, circ: C): void {
    this.linkRequests.get(requestId)?.circuits.delete(circ);
  }

  private takeRequest(requestId: number): LinkRequest<C> | undefined {
    const request = this.linkRequests.get(requestId);
    if (!request) return undefined;
    this.linkRequests.delete(requestId);
    this.requestByIdentity.delete(request.identityHex);
    return request;
  }

  /** A free circuit id in our half of `link`'s id space (docs/spec/onion.md §1), or undefined. */
  protected allocateCircId(link: CoreLink): number | undefined {
    for (let i = 0; i < 64; i++) {
      const low = this.randomU32() & 0x7fff_ffff;
      const id = link.info.weInitiated ? (low | 0x8000_0000) >>> 0 : low;
      if (id !== 0 && !link.circIds.has(id)) return id;
    }
    return undefined;
  }

  /** Registers one side of a circuit (on `link`, which must be the side's) and returns it. */
  protected addSide(link: CoreLink, side: Side, entry: E): Side {
    this.sides.set(side.key, entry);
    link.circIds.add(side.circId);
    return side;
  }

  /** Forgets a side: its table entry, its queued cells and its id on the link. Returns the link if it is still known. */
  protected forgetSide(side: Side): L | undefined {
    this.sides.delete(side.key);
    this.scheduler.drop(side.key);
    const link = this.links.get(side.linkId);
    link?.circIds.delete(side.circId);
    return link;
  }

  /** Queues one cell on a side (rate limited); false when the circuit's queue is full. */
  protected enqueueCell(side: Side, command: number, payload: Uint8Array): boolean {
    return this.scheduler.enqueue(side.key, side.linkId, { circId: side.circId, command, payload }, this.now);
  }

  /** Sends DESTROY on a side at once (DESTROY bypasses the scheduler). */
  protected sendDestroy(side: { linkId: string; circId: number }, reason: DestroyReason): void {
    this.actions.push({
      type: "send",
      linkId: side.linkId,
      cell: { circId: side.circId, command: CellCommand.DESTROY, payload: encodeDestroy(reason) },
    });
  }

  /** Sends a stream's queued DATA while the circuit is usable and both windows allow. */
  protected pump(circ: C, stream: EdgeStream): void {
    const window = this.packageWindow(circ, stream);
    while (this.canSend(circ) && stream.phase === "open" && stream.queuedCells > 0 && stream.window.canPackage > 0 && window.canPackage > 0) {
      stream.window.packaged();
      window.packaged();
      this.sendData(circ, stream);
    }
  }
}

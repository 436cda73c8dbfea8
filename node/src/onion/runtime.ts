/**
 * The onion runtime: drives an OnionRelay or OnionClient state machine over
 * the real links of a ConnectionManager.
 *
 * Owns the glue and nothing of the protocol: link "link"/"linkClosed" events
 * become linkOpened/linkClosed; circuit cells (CREATE, CREATED, RELAY,
 * RELAY_EARLY, DESTROY) from every link are gathered per link over one turn
 * of the event loop (every socket read of that turn; flushed by setImmediate)
 * and handed to `handleCells` in one call per link, so consecutive relay
 * cells of a circuit share one cipher call;
 * the machine's `send` and `send-run` actions leave per link, in order, through
 * `sendMany` and `sendCellBytes` (one socket
 * write); `open-link` actions become `manager.getLink` with the identity the
 * machine named (the link layer proves it; the machine checks it again); an
 * `open-link` with no addresses (an EXTEND2 naming an internal node by
 * identity alone) takes the manager's authenticated link to that identity if
 * one is open (the node may have dialled us: it need not accept connections),
 * else the addresses `resolveAddresses` gives, else fails as unreachable;
 * timers follow `nextWakeup()`; links that carry circuits are held
 * (`link.acquire`) so they do not idle-close under a quiet circuit.
 *
 * Backpressure: when cells produced from one link's batch meet another link
 * that is under pressure, reading from the source link pauses until those
 * links drain (or `maxReadPauseMs` passes, which breaks pause cycles between
 * relays; the link's own queue cap still bounds memory). A paused link stops
 * delivering cells, so the relay stops forwarding and the last hop stops
 * sending SENDMEs: the sender stops at its window. Nothing here buffers
 * without bound.
 *
 * Trusts: the link layer for authentication; the state machine for protocol
 * checks. A failure inside the machine (a bug) never escapes: the link
 * involved is closed with INTERNAL and a "driver-error" event is emitted.
 */
import { EventEmitter } from "node:events";
import { isLoopbackHost } from "../base/address.js";
import { isPspError } from "../errors.js";
import { CloseReason, LinkError } from "../link/index.js";
import { childLogger, logFailure, throttledFailureLog } from "../log.js";
import type { Logger } from "../log.js";
import type { ConnectionManager, Link, LinkCloseInfo } from "../link/index.js";
import { CELL_LEN, CellCommand, decodeCell } from "../wire/cell.js";
import type { Cell } from "../wire/cell.js";
import { CircuitError } from "./errors.js";
import type { OnionMachine } from "./sim.js";
import type { LinkFailureCause, NodeAddress, OnionAction, OnionEvent } from "./types.js";

export interface OnionDriverOptions {
  manager: ConnectionManager;
  machine: OnionMachine;
  /** Monotonic clock in ms (default performance.now). */
  clock?: () => number;
  /**
   * Longest a link's reading stays paused because a link it feeds is under
   * pressure (ms, default 1000). Bounds pause cycles between relays.
   */
  maxReadPauseMs?: number;
  /**
   * Test hook: sees every cell just before it leaves on a link; return the
   * cell (possibly modified) or undefined to drop it. For tamper tests only.
   */
  outboundHook?: (cell: Cell, link: Link) => Cell | undefined;
  /** Called after every round of work (cells in, application call, timer): lets an API re-check its waiters. */
  onRound?: () => void;
  /** Logs as component "onion": a failure the driver catches (a bug) at error, links lost under it at debug. */
  logger?: Logger;
  /**
   * Addresses of a node named by identity alone (an internal node, whose
   * address clients never learn), from the node-only view of the directory;
   * undefined or empty when unknown. Asked only when no authenticated link
   * to that identity is open. Without it such a node is reached only over
   * an open link.
   */
  resolveAddresses?: (identity: Uint8Array) => readonly NodeAddress[] | undefined;
}

export interface OnionDriverStats {
  /** Circuit cells received from links. */
  cellsIn: number;
  /** handleCells calls (one per link per event-loop turn with cells). */
  batchesIn: number;
  cellsOut: number;
  /** sendMany and sendCellBytes calls (a link still makes one socket write of them per tick). */
  writesOut: number;
  /** Times a link's reading was paused because a link it feeds was under pressure. */
  readPauses: number;
  /** Unexpected failures caught (each closed a link). */
  internalErrors: number;
}

export interface OnionDriverEvents {
  /** Every event of the state machine (circuit-open, stream-message, ...). */
  event: [OnionEvent];
  /** A failure the driver caught (a bug or a throwing listener); the link involved, if any, was closed. */
  "driver-error": [Error];
}

/** Circuit-level cell commands the onion layer owns on every link. */
export const CIRCUIT_CELL_COMMANDS: readonly number[] = [
  CellCommand.CREATE,
  CellCommand.CREATED,
  CellCommand.RELAY,
  CellCommand.RELAY_EARLY,
  CellCommand.DESTROY,
];

/** The cells of a run of encoded cells (views into it). */
function decodeCells(bytes: Uint8Array): Cell[] {
  const cells: Cell[] = [];
  for (let o = 0; o + CELL_LEN <= bytes.length; o += CELL_LEN) cells.push(decodeCell(bytes, o));
  return cells;
}

/**
 * What the machine is told about a link: its proven identity, who opened it,
 * and its source host for the relay's per-address create limit (not for
 * loopback, which every local peer shares: isLoopbackHost).
 */
function linkFacts(link: Link): { peerIdentity: Uint8Array | null; weInitiated: boolean; remoteHost?: string } {
  const host = link.remoteAddress.host;
  const keyed = host !== "" && !isLoopbackHost(host);
  return { peerIdentity: link.peerIdentity ?? null, weInitiated: link.role === "initiator", ...(keyed ? { remoteHost: host } : {}) };
}

interface DriverLink {
  id: string;
  link: Link;
  /** Release of our `acquire` while circuits use the link. */
  hold: (() => void) | undefined;
  /** Set while reading is paused for pressure downstream; calling it resumes. */
  resumeReading: (() => void) | undefined;
}

const HOLD_EVENTS: ReadonlySet<OnionEvent["type"]> = new Set(["circuit-created", "circuit-closed", "next-hop-connected", "circuit-open", "circuit-extended"]);

export class OnionDriver extends EventEmitter<OnionDriverEvents> {
  readonly stats: OnionDriverStats = { cellsIn: 0, batchesIn: 0, cellsOut: 0, writesOut: 0, readPauses: 0, internalErrors: 0 };
  readonly machine: OnionMachine;
  private readonly manager: ConnectionManager;
  private readonly clock: () => number;
  private readonly maxReadPauseMs: number;
  private readonly outboundHook: OnionDriverOptions["outboundHook"];
  private readonly onRound: (() => void) | undefined;
  private readonly resolveAddresses: OnionDriverOptions["resolveAddresses"];
  private readonly log: Logger;
  /** Refusals repeat at an attacker's pace: counted every time, printed at most once a minute per cap. */
  private readonly logRefusal: ReturnType<typeof throttledFailureLog>;
  private readonly links = new Map<string, DriverLink>();
  private readonly ids = new WeakMap<Link, string>();
  private inbox = new Map<string, Cell[]>();
  /** The link of the last cell received this turn and its inbox queue. */
  private lastLink: Link | undefined;
  private lastQueue: Cell[] | undefined;
  private flushQueued = false;
  private pumping = false;
  private holdsDirty = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private stopped = false;
  private readonly unregister: (() => void)[] = [];

  private readonly onCellBound = (cell: Cell, link: Link): void => this.onCell(cell, link);
  private readonly flushBound = (): void => this.flushInbox();
  private readonly onLinkBound = (link: Link): void => this.guard(undefined, () => this.onLink(link));
  private readonly onLinkClosedBound = (link: Link, info: LinkCloseInfo): void => this.guard(undefined, () => this.onLinkClosed(link, info));
  private readonly onTimerBound = (): void => this.guard(undefined, () => this.onTimer());

  constructor(options: OnionDriverOptions) {
    super();
    this.manager = options.manager;
    this.machine = options.machine;
    this.clock = options.clock ?? (() => performance.now());
    this.maxReadPauseMs = options.maxReadPauseMs ?? 1000;
    this.outboundHook = options.outboundHook;
    this.onRound = options.onRound;
    this.resolveAddresses = options.resolveAddresses;
    this.log = childLogger(options.logger, "onion");
    this.logRefusal = throttledFailureLog(this.log);
    for (const command of CIRCUIT_CELL_COMMANDS) this.unregister.push(this.manager.handle(command, this.onCellBound));
    this.manager.on("link", this.onLinkBound);
    this.manager.on("linkClosed", this.onLinkClosedBound);
    for (const link of this.manager.links()) this.adopt(link);
    this.afterRound();
  }

  /** The current time on the driver's clock (what the machine is fed). */
  now(): number {
    return this.clock();
  }

  /**
   * Runs `fn` against the machine (an application call such as buildCircuit
   * or send), then performs whatever it asked for. Errors from `fn` propagate.
   */
  run<T>(fn: (now: number) => T): T {
    if (this.stopped) throw new CircuitError("bad-state", "the onion driver is stopped (its client or node was closed)");
    try {
      return fn(this.clock());
    } finally {
      this.pump(undefined);
      this.afterRound();
    }
  }

  /** The link a machine's link id stands for (open or not). */
  linkOf(linkId: string): Link | undefined {
    return this.links.get(linkId)?.link;
  }

  /** Resolves once no link this driver uses is under send pressure (immediately if none is). */
  async writable(): Promise<void> {
    const pressured = [...this.links.values()].filter((l) => l.link.isOpen && l.link.underPressure);
    // A link that closes instead of draining has nothing left to wait for; its circuits end through linkClosed.
    await Promise.all(pressured.map((l) => l.link.drain().catch((err: unknown) => logFailure(this.log, err, "wait for link drain", "debug", { link: l.id }))));
  }

  /** Detaches from the manager (handlers, events, timer, holds). The manager and its links stay open. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const off of this.unregister) off();
    this.manager.off("link", this.onLinkBound);
    this.manager.off("linkClosed", this.onLinkClosedBound);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const entry of this.links.values()) {
      entry.hold?.();
      entry.resumeReading?.();
    }
    this.links.clear();
    this.inbox.clear();
    this.lastLink = this.lastQueue = undefined;
  }

  // ------------------------------------------------------------ links

  private adopt(link: Link): string {
    const id = `L${link.id}`;
    this.ids.set(link, id);
    this.links.set(id, { id, link, hold: undefined, resumeReading: undefined });
    this.machine.linkOpened({ linkId: id, ...linkFacts(link) }, this.clock());
    return id;
  }

  private onLink(link: Link): void {
    if (this.stopped || this.ids.has(link) || !link.isOpen) return;
    this.adopt(link);
    this.pump(undefined);
    this.afterRound();
  }

  private onLinkClosed(link: Link, _info: LinkCloseInfo): void {
    const id = this.ids.get(link);
    const entry = id === undefined ? undefined : this.links.get(id);
    if (!entry || this.stopped) return;
    // Cells that arrived before the close are processed first, in order.
    const pending = this.inbox.get(entry.id);
    if (pending) {
      this.inbox.delete(entry.id);
      if (this.lastQueue === pending) this.lastLink = this.lastQueue = undefined;
      this.deliver(entry, pending);
    }
    this.links.delete(entry.id);
    entry.hold?.();
    entry.resumeReading?.();
    this.machine.linkClosed(entry.id, this.clock());
    this.pump(undefined);
    this.afterRound();
  }

  private openLink(action: Extract<OnionAction, { type: "open-link" }>): void {
    const { requestId, identity, addresses } = action;
    this.dial(identity, addresses).then(
      (link) =>
        this.guard(undefined, () => {
          if (this.stopped) return;
          if (!link.isOpen) return this.fail(requestId, "unreachable");
          const id = this.ids.get(link) ?? this.adopt(link);
          this.machine.linkOpened({ linkId: id, ...linkFacts(link), requestId }, this.clock());
          this.pump(undefined);
          this.afterRound();
        }),
      (err: unknown) =>
        this.guard(undefined, () => {
          if (!this.stopped) this.fail(requestId, LinkError.is(err, "identity-mismatch") ? "identity-mismatch" : "unreachable");
        }),
    );
  }

  private fail(requestId: number, cause: LinkFailureCause): void {
    this.machine.linkFailed(requestId, this.clock(), cause);
    this.pump(undefined);
    this.afterRound();
  }

  /**
   * Tries each address in turn; an identity mismatch ends the attempt (the
   * named node is not there). No addresses: the node is known by identity
   * only, so an open link it authenticated on comes first, then the resolver.
   */
  private async dial(identity: Uint8Array, addresses: readonly NodeAddress[]): Promise<Link> {
    let targets = addresses;
    if (targets.length === 0) {
      // findLink holds only links whose peer proved its identity (AUTH): an anonymous link is never taken for a node.
      const open = this.manager.findLink(identity);
      if (open) return open;
      targets = this.resolveAddresses?.(identity) ?? [];
    }
    let last: unknown = new LinkError("config", "the node has no address to dial and no link to it is open");
    for (const { host, port } of targets) {
      try {
        return await this.manager.getLink({ identity, host, port });
      } catch (err) {
        last = err;
        if (LinkError.is(err, "identity-mismatch", "manager-closed")) break;
      }
    }
    throw last;
  }

  // ------------------------------------------------------------ cells in

  private onCell(cell: Cell, link: Link): void {
    if (this.stopped) return;
    // Cells come in runs from one socket read: the last link's queue is reused without lookups.
    if (link === this.lastLink && this.lastQueue) {
      this.lastQueue.push(cell);
      return; // the flush was scheduled with the run's first cell
    }
    const id = this.ids.get(link) ?? this.adopt(link);
    let queue = this.inbox.get(id);
    if (!queue) {
      queue = [];
      this.inbox.set(id, queue);
    }
    queue.push(cell);
    this.lastLink = link;
    this.lastQueue = queue;
    if (!this.flushQueued) {
      this.flushQueued = true;
      setImmediate(this.flushBound);
    }
  }

  private flushInbox(): void {
    this.flushQueued = false;
    this.lastLink = this.lastQueue = undefined;
    if (this.stopped) return;
    const inbox = this.inbox;
    this.inbox = new Map();
    for (const [id, cells] of inbox) {
      const entry = this.links.get(id);
      if (entry) this.deliver(entry, cells);
    }
    this.guard(undefined, () => this.afterRound());
  }

  private deliver(entry: DriverLink, cells: Cell[]): void {
    this.stats.cellsIn += cells.length;
    this.stats.batchesIn++;
    this.guard(entry, () => {
      this.machine.handleCells(entry.id, cells, this.clock());
      this.pump(entry);
    });
  }

  // ------------------------------------------------------------ actions out

  /** Performs everything the machine asked for; pressure met is charged to `source` (the link whose cells caused it). */
  private pump(source: DriverLink | undefined): void {
    if (this.pumping) return; // the outer loop picks the new actions up
    this.pumping = true;
    try {
      for (;;) {
        const actions = this.machine.takeActions();
        if (actions.length === 0) break;
        this.perform(actions, source);
      }
    } finally {
      this.pumping = false;
    }
  }

  private perform(actions: OnionAction[], source: DriverLink | undefined): void {
    // Per link, in order: single cells (control traffic) and runs of encoded cells (bulk).
    const sends = new Map<string, (Cell | Uint8Array)[]>();
    const events: OnionEvent[] = [];
    let lastId = "";
    let lastItems: (Cell | Uint8Array)[] | undefined;
    for (const action of actions) {
      if (action.type === "send" || action.type === "send-run") {
        if (action.linkId !== lastId || !lastItems) {
          lastId = action.linkId;
          lastItems = sends.get(lastId);
          if (!lastItems) {
            lastItems = [];
            sends.set(lastId, lastItems);
          }
        }
        lastItems.push(action.type === "send" ? action.cell : action.bytes);
      } else if (action.type === "open-link") {
        this.openLink(action);
      } else {
        events.push(action.event);
      }
    }
    let pressured: Link[] | undefined;
    for (const [id, items] of sends) {
      const entry = this.links.get(id);
      if (!entry?.link.isOpen) continue; // closing: its linkClosed is on the way
      try {
        if (!this.sendItems(entry.link, this.outboundHook ? this.hooked(items, entry.link) : items)) (pressured ??= []).push(entry.link);
      } catch (err) {
        // "closed" or "send-queue-full" (the link closed itself): circuits on it end with linkClosed.
        if (!isPspError(err)) throw err;
        logFailure(this.log, err, "send cells", "debug", { link: id });
      }
    }
    if (pressured && source) this.pauseFor(source, pressured);
    for (const event of events) {
      if (HOLD_EVENTS.has(event.type)) this.holdsDirty = true;
      this.logEvent(event);
      try {
        this.emit("event", event);
      } catch (err) {
        this.reportError(err);
      }
    }
  }

  /**
   * Sends cells and runs in order: consecutive cells in one `sendMany`, each
   * run with `sendCellBytes` (all of them leave in one socket write per tick).
   * Returns false when the link reports pressure.
   */
  private sendItems(link: Link, items: readonly (Cell | Uint8Array)[]): boolean {
    let ok = true;
    let cells: Cell[] | undefined;
    for (const item of items) {
      if (item instanceof Uint8Array) {
        if (cells) {
          ok = this.sendCells(link, cells) && ok;
          cells = undefined;
        }
        this.stats.cellsOut += item.length / CELL_LEN;
        this.stats.writesOut++;
        ok = link.sendCellBytes(item) && ok;
      } else {
        (cells ??= []).push(item);
      }
    }
    if (cells) ok = this.sendCells(link, cells) && ok;
    return ok;
  }

  private sendCells(link: Link, cells: Cell[]): boolean {
    this.stats.cellsOut += cells.length;
    this.stats.writesOut++;
    return link.sendMany(cells);
  }

  /** Runs every cell through the test hook (runs are cut into cells first). */
  private hooked(items: readonly (Cell | Uint8Array)[], link: Link): Cell[] {
    const hook = this.outboundHook as NonNullable<OnionDriverOptions["outboundHook"]>;
    const out: Cell[] = [];
    for (const item of items) {
      const cells = item instanceof Uint8Array ? decodeCells(item) : [item];
      for (const cell of cells) {
        const c = hook(cell, link);
        if (c) out.push(c);
      }
    }
    return out;
  }

  /** Stops reading `source` until the links it fed drain (bounded by maxReadPauseMs). */
  private pauseFor(source: DriverLink, targets: Link[]): void {
    const others = targets.filter((t) => t !== source.link);
    if (others.length === 0 || source.resumeReading || !source.link.isOpen) return;
    this.stats.readPauses++;
    const release = source.link.pauseReading();
    let done = false;
    const resume = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      source.resumeReading = undefined;
      release();
    };
    const timer = setTimeout(resume, this.maxReadPauseMs);
    timer.unref();
    source.resumeReading = resume;
    Promise.all(others.map((t) => t.drain())).then(resume, resume);
  }

  // ------------------------------------------------------------ timers and holds

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    if (this.stopped) return;
    this.machine.tick(this.clock());
    this.pump(undefined);
    this.afterRound();
  }

  private afterRound(): void {
    if (this.stopped) return;
    if (this.holdsDirty) {
      this.holdsDirty = false;
      for (const entry of this.links.values()) {
        const busy = this.machine.linkCircuitCount(entry.id) > 0;
        if (busy && !entry.hold && entry.link.isOpen) entry.hold = entry.link.acquire();
        else if (!busy && entry.hold) {
          entry.hold();
          entry.hold = undefined;
        }
      }
    }
    this.onRound?.();
    const wake = this.machine.nextWakeup();
    if (wake === undefined) return; // a timer already set fires harmlessly and re-arms
    if (this.timer && this.timerAt <= wake) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = wake;
    this.timer = setTimeout(this.onTimerBound, Math.max(0, Math.ceil(wake - this.clock())));
    this.timer.unref();
  }

  // ------------------------------------------------------------ failures

  /** Runs `fn`; an unexpected throw closes `entry`'s link (if given) with INTERNAL instead of escaping. */
  private guard(entry: DriverLink | undefined, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.stats.internalErrors++;
      this.reportError(err);
      if (entry?.link.isOpen) {
        entry.link.fail(
          new LinkError("protocol", `onion layer failed on this link: ${(err as Error).message}`, { closeReason: CloseReason.INTERNAL, cause: err }),
        );
      }
    }
  }

  /** The machine's events that are failures: a peer's protocol violation (counted, a debug line) and a local service that threw (a bug). */
  private logEvent(event: OnionEvent): void {
    if (event.type === "protocol-violation") {
      logFailure(this.log, new CircuitError("protocol-violation", event.message), "take circuit cells", "debug", { link: event.linkId, circId: event.circId });
    } else if (event.type === "create-refused") {
      const err = new CircuitError("resource-limit", `CREATE refused by the ${event.cap} cap`);
      this.logRefusal(err, `refuse CREATE (${event.cap})`, "info");
    } else if (event.type === "service-error") {
      logFailure(this.log, event.error, "run a local service", "error", {
        service: event.service,
        stage: event.stage,
        circuit: event.circuitId,
        stream: event.streamId,
      });
    }
  }

  private reportError(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    logFailure(this.log, error, "onion round", "error");
    try {
      this.emit("driver-error", error);
    } catch (listenerErr) {
      // A throwing error listener has nowhere further to go than the log.
      logFailure(this.log, listenerErr, "driver-error listener", "error");
    }
  }
}

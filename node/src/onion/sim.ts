/**
 * An in-memory onion network: real relay and client state machines, real
 * crypto, links replaced by in-process queues and time by a fake clock.
 *
 * Owns only the plumbing a socket driver will own later: it answers
 * `open-link` by connecting to the relay listening on the named address (and
 * reports the identity that relay really has, so identity checks are real),
 * delivers `send` and `send-run` actions (runs cut into their cells) to the other end of the link (consecutive cells to
 * one link as one batch), feeds `tick` when a machine's wake-up time passes,
 * and records every event. Hooks let tests tamper with, drop or count cells
 * on the way, and make a relay vanish.
 *
 * Used by tests and benchmarks; not part of a running node.
 */
import { generateEd25519KeyPair } from "../crypto/ed25519.js";
import { generateX25519KeyPair } from "../crypto/x25519.js";
import { CELL_LEN, decodeCell } from "../wire/cell.js";
import type { Cell } from "../wire/cell.js";
import { OnionClient } from "./client.js";
import type { OnionClientOptions } from "./client.js";
import { CircuitError } from "./errors.js";
import type { PathNode } from "./path.js";
import { OnionRelay } from "./relay.js";
import type { OnionRelayOptions } from "./relay.js";
import type { LinkFailureCause, LinkInfo, OnionAction, OnionEvent } from "./types.js";

/** The cells of a "send-run" (decoded as a link would; each cell is a copy, so tampering hooks cannot touch the sender's bytes). */
function decodeRun(bytes: Uint8Array): Cell[] {
  const cells: Cell[] = [];
  for (let o = 0; o + CELL_LEN <= bytes.length; o += CELL_LEN) cells.push(decodeCell(new Uint8Array(bytes.subarray(o, o + CELL_LEN))));
  return cells;
}

/** What the simulator needs from a relay or client. */
export interface OnionMachine {
  linkOpened(info: LinkInfo, now: number): void;
  linkFailed(requestId: number, now: number, cause?: LinkFailureCause): void;
  linkClosed(linkId: string, now: number): void;
  handleCells(linkId: string, cells: readonly Cell[], now: number): void;
  tick(now: number): void;
  takeActions(): OnionAction[];
  nextWakeup(): number | undefined;
  /** Circuits using a link (drivers keep such links from idling out). */
  linkCircuitCount(linkId: string): number;
}

/** A cell on its way; return a (possibly modified) cell to deliver, or undefined to drop it. */
export type CellInterceptor = (cell: Cell, from: string, to: string) => Cell | undefined;

interface SimNode {
  name: string;
  machine: OnionMachine;
  alive: boolean;
  /** Local link id → the link. */
  links: Map<string, SimLink>;
}

interface SimLink {
  a: { node: SimNode; linkId: string };
  b: { node: SimNode; linkId: string };
  open: boolean;
}

export interface SimRelay {
  name: string;
  relay: OnionRelay;
  /** The node as a directory would list it (what clients put in paths). */
  node: PathNode;
}

export interface AddRelayOptions extends Partial<Omit<OnionRelayOptions, "identity" | "onionKeys" | "now">> {
  host?: string;
  port?: number;
  family?: string;
}

export class OnionSim {
  now: number;
  readonly events: { node: string; event: OnionEvent }[] = [];
  interceptor: CellInterceptor | undefined;
  /** Cells delivered so far. */
  delivered = 0;
  private readonly nodes = new Map<string, SimNode>();
  private readonly listeners = new Map<string, SimRelay>();
  private readonly relays = new Map<string, SimRelay>();
  private readonly queue: { to: SimNode; linkId: string; cells: Cell[] }[] = [];
  private nextLink = 1;

  constructor(options: { now?: number } = {}) {
    this.now = options.now ?? 1_000_000;
  }

  /** Adds a relay with fresh keys, listening on host:port (default 10.<n>.0.1:9001, one /16 each). */
  addRelay(name: string, options: AddRelayOptions = {}): SimRelay {
    const identity = generateEd25519KeyPair().publicKey;
    const onionKey = generateX25519KeyPair();
    const n = this.relays.size + 1;
    const host = options.host ?? `10.${n}.0.1`;
    const port = options.port ?? 9001;
    const { host: _h, port: _p, family, ...relayOptions } = options;
    const relay = new OnionRelay({ ...relayOptions, identity, onionKeys: [onionKey], now: this.now });
    const node: PathNode = {
      identity,
      onionKey: onionKey.publicKey,
      host,
      port,
      flags: ["running"],
      ...(family === undefined ? {} : { family }),
    };
    const sim: SimRelay = { name, relay, node };
    this.addMachine(name, relay);
    this.relays.set(name, sim);
    this.listeners.set(`${host}:${port}`, sim);
    return sim;
  }

  addClient(name: string, options: Partial<OnionClientOptions> = {}): OnionClient {
    const client = new OnionClient({ ...options, now: this.now });
    this.addMachine(name, client);
    return client;
  }

  relay(name: string): SimRelay {
    const r = this.relays.get(name);
    if (!r) throw new CircuitError("bad-argument", `no relay ${name}`);
    return r;
  }

  /** Every relay's node entry, in insertion order. */
  nodeList(): PathNode[] {
    return [...this.relays.values()].map((r) => r.node);
  }

  /** Makes a node vanish: its links close (peers see linkClosed) and it no longer answers. */
  kill(name: string): void {
    const node = this.nodes.get(name);
    if (!node) return;
    node.alive = false;
    for (const link of new Set(node.links.values())) this.closeLink(link);
    this.listeners.forEach((r, addr) => r.name === name && this.listeners.delete(addr));
  }

  /** Events of one node, optionally of one type. */
  eventsOf<T extends OnionEvent["type"]>(node: string, type?: T): Extract<OnionEvent, { type: T }>[] {
    return this.events
      .filter((e) => e.node === node && (type === undefined || e.event.type === type))
      .map((e) => e.event as Extract<OnionEvent, { type: T }>);
  }

  /** Delivers everything in flight until no node has more to say. Returns the number of delivery steps. */
  run(maxSteps = 1_000_000): number {
    let steps = 0;
    this.collectAll();
    while (this.queue.length > 0) {
      if (++steps > maxSteps) throw new CircuitError("bad-state", `simulation did not settle within ${maxSteps} steps`);
      const d = this.queue.shift() as { to: SimNode; linkId: string; cells: Cell[] };
      if (!d.to.alive || !d.to.links.get(d.linkId)?.open) continue;
      this.delivered += d.cells.length;
      d.to.machine.handleCells(d.linkId, d.cells, this.now);
      this.collect(d.to);
    }
    return steps;
  }

  /** Moves the clock forward in steps of at most `stepMs`, ticking machines whose wake-up time has come. */
  advance(ms: number, stepMs = ms): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + stepMs);
      for (const node of this.nodes.values()) {
        if (!node.alive) continue;
        const t = node.machine.nextWakeup();
        if (t !== undefined && t <= this.now) node.machine.tick(this.now);
      }
      this.run();
    }
  }

  /** Runs and advances the clock in `stepMs` steps until `done()` or `maxMs` pass; returns whether done. */
  runUntil(done: () => boolean, maxMs = 60_000, stepMs = 10): boolean {
    this.run();
    const end = this.now + maxMs;
    while (!done()) {
      if (this.now >= end) return false;
      this.advance(stepMs);
    }
    return true;
  }

  private addMachine(name: string, machine: OnionMachine): void {
    if (this.nodes.has(name)) throw new CircuitError("bad-argument", `node ${name} already exists`);
    this.nodes.set(name, { name, machine, alive: true, links: new Map() });
  }

  private collectAll(): void {
    for (const node of this.nodes.values()) if (node.alive) this.collect(node);
  }

  /** Turns a node's actions into deliveries, link requests and recorded events. */
  private collect(node: SimNode): void {
    for (;;) {
      const actions = node.machine.takeActions();
      if (actions.length === 0) return;
      let batch: { to: SimNode; linkId: string; cells: Cell[] } | undefined;
      for (const action of actions) {
        if (action.type === "event") {
          this.events.push({ node: node.name, event: action.event });
        } else if (action.type === "open-link") {
          this.openLink(node, action.requestId, action.addresses);
        } else {
          const link = node.links.get(action.linkId);
          if (!link?.open) continue;
          const far = link.a.node === node ? link.b : link.a;
          // A run of encoded cells crosses the "wire" as its cells, like the link layer decodes them.
          const cells = action.type === "send" ? [action.cell] : decodeRun(action.bytes);
          for (const sent of cells) {
            const cell = this.interceptor ? this.interceptor(sent, node.name, far.node.name) : sent;
            if (!cell) continue;
            if (batch && batch.to === far.node && batch.linkId === far.linkId) batch.cells.push(cell);
            else {
              batch = { to: far.node, linkId: far.linkId, cells: [cell] };
              this.queue.push(batch);
            }
          }
        }
      }
    }
  }

  private openLink(from: SimNode, requestId: number, addresses: { host: string; port: number }[]): void {
    const target = addresses.map((a) => this.listeners.get(`${a.host}:${a.port}`)).find((t) => t !== undefined);
    const targetNode = target ? this.nodes.get(target.name) : undefined;
    if (!target || !targetNode?.alive) {
      from.machine.linkFailed(requestId, this.now);
      this.collect(from);
      return;
    }
    const n = this.nextLink++;
    const link: SimLink = {
      a: { node: from, linkId: `L${n}a` },
      b: { node: targetNode, linkId: `L${n}b` },
      open: true,
    };
    from.links.set(link.a.linkId, link);
    targetNode.links.set(link.b.linkId, link);
    const fromRelay = this.relays.get(from.name);
    targetNode.machine.linkOpened({ linkId: link.b.linkId, peerIdentity: fromRelay ? fromRelay.node.identity : null, weInitiated: false }, this.now);
    from.machine.linkOpened({ linkId: link.a.linkId, peerIdentity: target.node.identity, weInitiated: true, requestId }, this.now);
    this.collect(targetNode);
    this.collect(from);
  }

  private closeLink(link: SimLink): void {
    if (!link.open) return;
    link.open = false;
    for (const end of [link.a, link.b]) {
      end.node.links.delete(end.linkId);
      if (end.node.alive) {
        end.node.machine.linkClosed(end.linkId, this.now);
        this.collect(end.node);
      }
    }
  }
}

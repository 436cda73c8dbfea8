/**
 * The application's onion client: circuits and streams over real links.
 *
 * Owns the promise-shaped API over the OnionClient state machine, its
 * OnionDriver and (unless one is given) an anonymous client-mode
 * ConnectionManager: build a circuit (path given or chosen), open a stream
 * to a named service on a hop, send and receive messages, close. A
 * CircuitManager keeps `preemptiveCircuits` circuits ready for `getCircuit`.
 *
 * Flow: `stream.send` queues a message and resolves once the stream's queue
 * is short again and no link is under pressure, so a sender that awaits it
 * never buffers more than about one SENDME window. Received messages go to
 * 'message' listeners, or wait (at most `maxBufferedMessages`) for `receive`.
 *
 * Every failure is a CircuitError with a `kind` (and `destroyReason` /
 * `endReason` when a relay or the far end said why).
 *
 * Trusts: the node list it is given; the link layer for identities.
 */
import { EventEmitter } from "node:events";
import { createConnectionManager } from "../link/index.js";
import type { ConnectionManager, Link, LinkOptions } from "../link/index.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import type { Cell } from "../wire/cell.js";
import { OnionClient } from "./client.js";
import type { ClientLimits } from "./client.js";
import { EndReason } from "./constants.js";
import type { DestroyReason } from "./constants.js";
import { CircuitManager } from "./circuit-manager.js";
import { CircuitError } from "./errors.js";
import type { PathNode, SelectPathOptions } from "./path.js";
import { OnionDriver } from "./runtime.js";
import type { OnionEvent } from "./types.js";

export interface CreateOnionClientOptions {
  /** Nodes to build circuits through (a static list until the directory supplies a consensus). */
  nodes: readonly PathNode[];
  /** Use this connection manager (it must not already carry another onion driver). Default: a new anonymous one, closed by `close()`. */
  manager?: ConnectionManager;
  /** Link options for the manager created here. */
  link?: Partial<LinkOptions>;
  limits?: Partial<ClientLimits>;
  protoId?: string;
  /** Hops per chosen path (default 3). */
  pathLength?: number;
  /** Circuits kept built and ready for getCircuit (default 0: build on demand). */
  preemptiveCircuits?: number;
  /** selectPath options (random source, required and entry flags). */
  path?: Omit<SelectPathOptions, "length" | "exclude" | "lastHop">;
  /** Messages a stream holds for `receive` when nobody listens (default 1024); one more ends the stream (RESOURCELIMIT). */
  maxBufferedMessages?: number;
  /** Test hook: sees every cell leaving this client (see OnionDriverOptions). */
  outboundHook?: (cell: Cell, link: Link) => Cell | undefined;
  /** Handed to the driver ("onion"), the circuit manager ("circuits") and the manager made here ("link"); silent when absent. */
  logger?: Logger;
}

export interface BuildOptions {
  /** Exact path, entry first. */
  path?: readonly PathNode[];
  /** Hops of a chosen path (default: the client's pathLength). */
  length?: number;
  /** A fixed last hop for a chosen path. */
  lastHop?: PathNode;
}

/** The stream's queue length (cells) under which `send` resolves. */
const SEND_LOW_WATER_CELLS = 128;

interface Pending<T> {
  resolve: (v: T) => void;
  reject: (e: CircuitError) => void;
}

export interface OnionStreamEvents {
  message: [Uint8Array];
  close: [CircuitError | undefined];
}

/** One stream of a circuit to a service on one of its hops. */
export class OnionStream extends EventEmitter<OnionStreamEvents> {
  /** Resolves when the stream ends, with the error (undefined for our own close). */
  readonly closed: Promise<CircuitError | undefined>;
  private state: "connecting" | "open" | "closed" = "connecting";
  private error: CircuitError | undefined;
  private readonly inbox: Uint8Array[] = [];
  private readonly receivers: Pending<Uint8Array>[] = [];
  private opened: Pending<OnionStream> | undefined;
  private resolveClosed!: (e: CircuitError | undefined) => void;

  /** @internal created by OnionCircuit.openStream */
  constructor(
    readonly circuit: OnionCircuit,
    readonly streamId: number,
    readonly service: string,
    private readonly client: OnionClientHandle,
    opened: Pending<OnionStream>,
  ) {
    super();
    this.opened = opened;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get isOpen(): boolean {
    return this.state === "open";
  }

  /**
   * Sends one message (fragmented into DATA cells). Resolves when the stream
   * can take more; rejects with CircuitError "stream-closed" (with the reason)
   * or "resource-limit".
   */
  async send(message: Uint8Array): Promise<void> {
    if (this.state === "closed") throw this.closedError();
    this.client.driver.run((now) => this.client.machine.send(this.circuit.id, this.streamId, message, now));
    await this.client.waitForRoom(this);
  }

  /** The next message (waits for one); rejects with the stream's error once it is closed. */
  receive(): Promise<Uint8Array> {
    const next = this.inbox.shift();
    if (next) return Promise.resolve(next);
    if (this.state === "closed") return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => this.receivers.push({ resolve, reject }));
  }

  /**
   * Takes the messages waiting for `receive`: a consumer that switches from
   * `receive` to "message" listeners handles these first, in order.
   */
  takeBuffered(): Uint8Array[] {
    return this.inbox.splice(0);
  }

  /** Ends the stream (END DONE by default). */
  close(reason: EndReason = EndReason.DONE): void {
    if (this.state === "closed") return;
    this.client.driver.run((now) => this.client.machine.closeStream(this.circuit.id, this.streamId, now, reason));
  }

  /** Cells waiting for the flow-control window. */
  get queuedCells(): number {
    return this.client.machine.streamInfo(this.circuit.id, this.streamId)?.queuedCells ?? 0;
  }

  /** @internal */
  onOpen(): void {
    this.state = "open";
    this.opened?.resolve(this);
    this.opened = undefined;
  }

  /** @internal */
  onMessage(message: Uint8Array, maxBuffered: number): void {
    const receiver = this.receivers.shift();
    if (receiver) return receiver.resolve(message);
    if (this.listenerCount("message") > 0) {
      this.emit("message", message);
      return;
    }
    if (this.inbox.length >= maxBuffered) {
      this.close(EndReason.RESOURCELIMIT);
      return;
    }
    this.inbox.push(message);
  }

  /** @internal */
  onClosed(error: CircuitError | undefined): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.error = error;
    const err = this.closedError();
    this.opened?.reject(err);
    this.opened = undefined;
    for (const r of this.receivers.splice(0)) r.reject(err);
    this.resolveClosed(error);
    this.emit("close", error);
  }

  private closedError(): CircuitError {
    return this.error ?? new CircuitError("stream-closed", `stream ${this.streamId} to "${this.service}" is closed`, { endReason: EndReason.DONE });
  }
}

/** A circuit built by this client. */
export class OnionCircuit {
  /** Resolves when the circuit closes, with its error (undefined when we closed it). */
  readonly closed: Promise<CircuitError | undefined>;
  private state: "building" | "open" | "closed" = "building";
  private error: CircuitError | undefined;
  private built: Pending<OnionCircuit> | undefined;
  private extending: Pending<void> | undefined;
  private resolveClosed!: (e: CircuitError | undefined) => void;
  /** @internal */
  readonly streams = new Map<number, OnionStream>();

  /** @internal created by OnionClientHandle.buildCircuit */
  constructor(
    readonly id: number,
    readonly path: readonly PathNode[],
    private readonly client: OnionClientHandle,
    built: Pending<OnionCircuit>,
  ) {
    this.built = built;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  get isOpen(): boolean {
    return this.state === "open";
  }

  /** Why the circuit closed (undefined while open or after our own close). */
  get closeError(): CircuitError | undefined {
    return this.error;
  }

  /** Hops with established keys. */
  get hops(): number {
    return this.client.machine.circuitInfo(this.id)?.hops ?? 0;
  }

  /** Opens a stream to `service` on a hop (the last by default); resolves on CONNECTED, rejects "stream-refused". */
  openStream(service: string, options: { hop?: number } = {}): Promise<OnionStream> {
    return new Promise<OnionStream>((resolve, reject) => {
      this.client.driver.run((now) => {
        const streamId = this.client.machine.openStream(this.id, service, now, options);
        this.streams.set(streamId, new OnionStream(this, streamId, service, this.client, { resolve, reject }));
      });
    });
  }

  /** Adds one hop; resolves when the circuit is open again. */
  extend(node: PathNode): Promise<void> {
    if (this.extending) return Promise.reject(new CircuitError("bad-state", "an extend is already in progress"));
    return new Promise<void>((resolve, reject) => {
      this.extending = { resolve, reject };
      try {
        this.client.driver.run((now) => this.client.machine.extendCircuit(this.id, node, now));
      } catch (err) {
        this.extending = undefined;
        throw err;
      }
    });
  }

  /** Tears the circuit down (DESTROY REQUESTED). */
  close(): void {
    if (this.state === "closed") return;
    this.client.driver.run((now) => this.client.machine.closeCircuit(this.id, now));
  }

  /** @internal */
  onOpen(): void {
    this.state = "open";
    this.built?.resolve(this);
    this.built = undefined;
    this.extending?.resolve();
    this.extending = undefined;
  }

  /** @internal */
  onClosed(error: CircuitError | undefined, reason: DestroyReason): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.error = error;
    const err = error ?? new CircuitError("circuit-destroyed", "the circuit was closed", { destroyReason: reason });
    this.built?.reject(err);
    this.extending?.reject(err);
    this.built = this.extending = undefined;
    this.resolveClosed(error);
  }
}

/** An onion client: see createOnionClient. */
export class OnionClientHandle {
  readonly machine: OnionClient;
  readonly driver: OnionDriver;
  readonly manager: ConnectionManager;
  readonly circuits: CircuitManager<OnionCircuit>;
  private readonly ownsManager: boolean;
  private readonly maxBuffered: number;
  private readonly live = new Map<number, OnionCircuit>();
  private roomWaiters: { stream: OnionStream; resolve: () => void }[] = [];
  private readonly listeners = new Set<(event: OnionEvent) => void>();
  private readonly log: Logger;

  /** @internal use createOnionClient */
  constructor(options: CreateOnionClientOptions, manager: ConnectionManager, ownsManager: boolean) {
    this.manager = manager;
    this.ownsManager = ownsManager;
    this.maxBuffered = options.maxBufferedMessages ?? 1024;
    this.log = childLogger(options.logger, "onion-client");
    this.machine = new OnionClient({
      now: performance.now(),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.protoId === undefined ? {} : { protoId: options.protoId }),
    });
    this.driver = new OnionDriver({
      manager,
      machine: this.machine,
      onRound: () => this.checkRoom(),
      ...(options.outboundHook ? { outboundHook: options.outboundHook } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    this.driver.on("event", (event) => this.dispatch(event));
    this.circuits = new CircuitManager<OnionCircuit>({
      build: (path) => this.buildCircuit({ path }),
      nodes: options.nodes,
      preemptive: options.preemptiveCircuits ?? 0,
      ...(options.pathLength === undefined ? {} : { pathLength: options.pathLength }),
      ...(options.path ? { path: options.path } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    this.circuits.start();
  }

  /** Every event of the state machine (for logging and metrics). Returns a function that removes the listener. */
  onEvent(listener: (event: OnionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Builds a circuit through `path` (or one chosen by the circuit manager's
   * policy); resolves when it is open. Rejects with CircuitError: "no-path",
   * "too-many-hops", "circuit-destroyed" (destroyReason says why, hop which
   * hop was being added), "handshake-failed", "build-timeout".
   */
  buildCircuit(options: BuildOptions = {}): Promise<OnionCircuit> {
    let path: PathNode[];
    try {
      path = options.path
        ? [...options.path]
        : this.circuits.choosePath({ ...(options.length === undefined ? {} : { length: options.length }), ...(options.lastHop ? { lastHop: options.lastHop } : {}) });
    } catch (err) {
      return Promise.reject(err);
    }
    const built = new Promise<OnionCircuit>((resolve, reject) => {
      try {
        this.driver.run((now) => {
          const id = this.machine.buildCircuit(path, now);
          this.live.set(id, new OnionCircuit(id, path, this, { resolve, reject }));
        });
      } catch (err) {
        reject(err);
      }
    });
    // Every build teaches the path policy which relays are down, not only the manager's own.
    built.catch((err: unknown) => this.circuits.noteFailure(path, err));
    return built;
  }

  /** An open circuit from the manager's ready pool (or built now). */
  getCircuit(): Promise<OnionCircuit> {
    return this.circuits.acquire();
  }

  /** Replaces the node list paths are chosen from. */
  setNodes(nodes: readonly PathNode[]): void {
    this.circuits.setNodes(nodes);
  }

  /** Closes every circuit, stops the driver and (if we made it) the connection manager. */
  async close(): Promise<void> {
    this.circuits.stop();
    for (const circuit of this.live.values()) {
      try {
        circuit.close();
      } catch (err) {
        // Already closing, or the driver stopped under it: nothing left to tear down.
        logFailure(this.log, err, "close circuit", "debug", { circuit: circuit.id });
      }
    }
    this.driver.stop();
    if (this.ownsManager) await this.manager.close();
  }

  /** @internal resolves when `stream` has room again (short queue, no link pressure) or closed. */
  async waitForRoom(stream: OnionStream): Promise<void> {
    if (stream.isOpen && stream.queuedCells > SEND_LOW_WATER_CELLS) {
      await new Promise<void>((resolve) => this.roomWaiters.push({ stream, resolve }));
    }
    await this.driver.writable();
  }

  private checkRoom(): void {
    if (this.roomWaiters.length === 0) return;
    const still: typeof this.roomWaiters = [];
    for (const w of this.roomWaiters) {
      if (!w.stream.isOpen || w.stream.queuedCells <= SEND_LOW_WATER_CELLS) w.resolve();
      else still.push(w);
    }
    this.roomWaiters = still;
  }

  private dispatch(event: OnionEvent): void {
    for (const l of this.listeners) l(event);
    switch (event.type) {
      case "circuit-open":
        this.live.get(event.circuitId)?.onOpen();
        return;
      case "circuit-closed": {
        const circuit = this.live.get(event.circuitId);
        this.live.delete(event.circuitId);
        circuit?.onClosed(event.error, event.reason);
        return;
      }
      case "stream-open":
        this.live.get(event.circuitId)?.streams.get(event.streamId)?.onOpen();
        return;
      case "stream-message":
        this.live.get(event.circuitId)?.streams.get(event.streamId)?.onMessage(event.message, this.maxBuffered);
        return;
      case "stream-closed": {
        const circuit = this.live.get(event.circuitId);
        const stream = circuit?.streams.get(event.streamId);
        circuit?.streams.delete(event.streamId);
        stream?.onClosed(event.error);
        return;
      }
      default:
        return;
    }
  }
}

/**
 * Creates an onion client over an anonymous connection manager (or the one
 * given). With `preemptiveCircuits` > 0 it starts building circuits at once.
 */
export async function createOnionClient(options: CreateOnionClientOptions): Promise<OnionClientHandle> {
  if (!options || !Array.isArray(options.nodes)) throw new CircuitError("bad-argument", "createOnionClient needs { nodes: PathNode[] }");
  const manager = options.manager ?? (await createConnectionManager({ ...(options.link ? { link: options.link } : {}), ...(options.logger ? { logger: options.logger } : {}) }));
  return new OnionClientHandle(options, manager, options.manager === undefined);
}


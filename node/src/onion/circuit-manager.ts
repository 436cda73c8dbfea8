/**
 * The client's circuit manager: chooses paths and keeps circuits ready.
 *
 * Owns the policy, not the protocol: paths come from `selectPath` over the
 * node list (a static list until the directory supplies a consensus) minus
 * nodes recently found unreachable; `preemptive` circuits are kept built so
 * a caller gets one without waiting for a build; a ready circuit that closes
 * (a relay died) is dropped and replaced; a failed build is retried after a
 * growing delay. A node a build could not reach (DESTROY CONNECTFAILED or
 * OR_IDENTITY naming the hop being added, or the first hop's link failing)
 * is avoided for `nodeDownMs`, unless avoiding it leaves no path.
 *
 * A circuit handed out by `acquire` belongs to the caller: if it dies the
 * caller sees the typed error on its streams and calls `acquire` again.
 *
 * Trusts: the node list; the circuit builder for typed errors.
 */
import { EventEmitter } from "node:events";
import { childLogger, logFailure, throttledFailureLog } from "../log.js";
import type { Logger } from "../log.js";
import { DEFAULT_PATH_LENGTH, DestroyReason } from "./constants.js";
import { CircuitError } from "./errors.js";
import { keyHex, selectPath } from "./path.js";
import type { PathNode, SelectPathOptions } from "./path.js";

/** What the manager needs of a built circuit. */
export interface ManagedCircuit {
  readonly id: number;
  readonly path: readonly PathNode[];
  readonly isOpen: boolean;
  /** Resolves when the circuit closes, with its error (undefined for a local close). */
  readonly closed: Promise<CircuitError | undefined>;
  close(): void;
}

export interface CircuitManagerOptions<C extends ManagedCircuit> {
  /** Builds a circuit through `path`; resolves when open, rejects with CircuitError. */
  build: (path: PathNode[]) => Promise<C>;
  nodes: readonly PathNode[];
  /** Circuits kept built and ready (default 2). 0: build on demand only. */
  preemptive?: number;
  /** Hops per circuit (default 3). */
  pathLength?: number;
  /** Builds in flight at once (default max(1, preemptive)). */
  maxConcurrentBuilds?: number;
  /** How long an unreachable node is avoided (ms, default 60 s). */
  nodeDownMs?: number;
  /** First retry delay after a failed build; doubles up to 5 s (ms, default 100). */
  retryDelayMs?: number;
  /** Attempts `acquire` makes when no circuit is ready (default 3). */
  acquireAttempts?: number;
  /** Path options passed to selectPath (random, flags). */
  path?: Omit<SelectPathOptions, "length" | "exclude" | "lastHop">;
  /** Clock in ms (default Date.now); only used for the down-node timer. */
  clock?: () => number;
  /** Logs as component "circuits": background build failures (throttled warnings), lost circuits. */
  logger?: Logger;
}

export interface CircuitManagerEvents<C> {
  /** A preemptive circuit is built and waiting. */
  ready: [C];
  /** A build failed (the manager retries preemptive builds on its own). */
  "build-failed": [CircuitError];
  /** A ready (not yet handed out) circuit closed; a replacement is being built. */
  lost: [C, CircuitError | undefined];
}

export class CircuitManager<C extends ManagedCircuit> extends EventEmitter<CircuitManagerEvents<C>> {
  private nodes: readonly PathNode[];
  private readonly build: (path: PathNode[]) => Promise<C>;
  private readonly preemptive: number;
  private readonly pathLength: number;
  private readonly maxConcurrentBuilds: number;
  private readonly nodeDownMs: number;
  private readonly retryDelayMs: number;
  private readonly acquireAttempts: number;
  private readonly pathOptions: Omit<SelectPathOptions, "length" | "exclude" | "lastHop">;
  private readonly clock: () => number;
  private readonly log: Logger;
  /** Background builds retry every few seconds while the network is down: one line a minute per kind, each counted. */
  private readonly logBuildFailure: ReturnType<typeof throttledFailureLog>;
  private readonly readyCircuits: C[] = [];
  private readonly downUntil = new Map<string, number>();
  private building = 0;
  private failuresInARow = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private waiters: { resolve: (c: C) => void; reject: (e: CircuitError) => void }[] = [];

  constructor(options: CircuitManagerOptions<C>) {
    super();
    this.build = options.build;
    this.nodes = options.nodes;
    this.preemptive = options.preemptive ?? 2;
    this.pathLength = options.pathLength ?? DEFAULT_PATH_LENGTH;
    this.maxConcurrentBuilds = options.maxConcurrentBuilds ?? Math.max(1, this.preemptive);
    this.nodeDownMs = options.nodeDownMs ?? 60_000;
    this.retryDelayMs = options.retryDelayMs ?? 100;
    this.acquireAttempts = options.acquireAttempts ?? 3;
    this.pathOptions = options.path ?? {};
    this.clock = options.clock ?? Date.now;
    this.log = childLogger(options.logger, "circuits");
    this.logBuildFailure = throttledFailureLog(this.log);
    for (const [name, n] of [["preemptive", this.preemptive], ["maxConcurrentBuilds", this.maxConcurrentBuilds], ["acquireAttempts", this.acquireAttempts]] as const) {
      if (!Number.isInteger(n) || n < 0) throw new CircuitError("bad-argument", `${name} must be a non-negative integer, got ${n}`);
    }
  }

  /** Ready circuits waiting to be handed out. */
  get readyCount(): number {
    return this.readyCircuits.length;
  }

  /** Nodes currently avoided as unreachable (hex identities). */
  get downNodes(): string[] {
    const now = this.clock();
    return [...this.downUntil].filter(([, until]) => until > now).map(([id]) => id);
  }

  /** Starts keeping `preemptive` circuits ready. */
  start(): void {
    this.refill();
  }

  /** Replaces the node list (e.g. a new consensus); ready circuits stay. */
  setNodes(nodes: readonly PathNode[]): void {
    this.nodes = nodes;
    this.refill();
  }

  /** A path under the manager's policy: avoid nodes that were down, unless that leaves no path. */
  choosePath(options: { lastHop?: PathNode; length?: number } = {}): PathNode[] {
    const length = options.length ?? this.pathLength;
    const now = this.clock();
    const down = [...this.downUntil].filter(([, until]) => until > now).map(([id]) => id);
    const base = { ...this.pathOptions, length, ...(options.lastHop ? { lastHop: options.lastHop } : {}) };
    if (down.length > 0) {
      const exclude = this.nodes.filter((n) => down.includes(keyHex(n.identity))).map((n) => n.identity);
      try {
        return selectPath(this.nodes, { ...base, exclude });
      } catch (err) {
        if (!(err instanceof CircuitError) || err.kind !== "no-path") throw err;
      }
    }
    return selectPath(this.nodes, base);
  }

  /** Notes what a failed build says about its nodes. */
  noteFailure(path: readonly PathNode[], error: unknown): void {
    if (!(error instanceof CircuitError) || error.hop === undefined) return;
    const unreachable =
      error.destroyReason === DestroyReason.CONNECTFAILED || error.destroyReason === DestroyReason.OR_IDENTITY || error.kind === "handshake-failed";
    const node = path[error.hop];
    if (unreachable && node) this.downUntil.set(keyHex(node.identity), this.clock() + this.nodeDownMs);
  }

  /**
   * An open circuit for the caller to own: a ready one if there is one
   * (a replacement build starts), else one built now. Rejects with the last
   * build's CircuitError after `acquireAttempts` failed builds.
   */
  async acquire(): Promise<C> {
    if (this.stopped) throw new CircuitError("bad-state", "the circuit manager is stopped");
    for (;;) {
      const circuit = this.readyCircuits.shift();
      if (!circuit) break;
      if (!circuit.isOpen) continue;
      this.refill();
      return circuit;
    }
    if (this.preemptive > 0 && this.building > 0) {
      // A preemptive build is under way: take it when it lands.
      return new Promise<C>((resolve, reject) => this.waiters.push({ resolve, reject }));
    }
    let last: unknown;
    for (let attempt = 0; attempt < this.acquireAttempts; attempt++) {
      const path = this.choosePath();
      try {
        return await this.build(path);
      } catch (err) {
        last = err;
        this.noteFailure(path, err);
        // The caller gets the last failure; earlier attempts are counted.
        logFailure(this.log, err, "build circuit on demand", "debug", { attempt });
        this.emit("build-failed", asCircuitError(err));
      }
    }
    throw asCircuitError(last);
  }

  /** Stops building; closes ready circuits; pending acquires reject. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const c of this.readyCircuits.splice(0)) c.close();
    const error = new CircuitError("bad-state", "the circuit manager stopped");
    for (const w of this.waiters.splice(0)) w.reject(error);
  }

  private refill(): void {
    if (this.stopped || this.retryTimer) return;
    while (this.readyCircuits.length + this.building < this.preemptive + this.waiters.length && this.building < this.maxConcurrentBuilds) {
      this.buildOne();
    }
  }

  private buildOne(): void {
    let path: PathNode[];
    try {
      path = this.choosePath();
    } catch (err) {
      this.onBuildFailed([], err);
      return;
    }
    this.building++;
    this.build(path).then(
      (circuit) => {
        this.building--;
        this.failuresInARow = 0;
        if (this.stopped) return circuit.close();
        const waiter = this.waiters.shift();
        if (waiter) {
          waiter.resolve(circuit);
        } else {
          this.readyCircuits.push(circuit);
          void circuit.closed.then((error) => this.onReadyClosed(circuit, error));
          this.emit("ready", circuit);
        }
        this.refill();
      },
      (err: unknown) => {
        this.building--;
        this.onBuildFailed(path, err);
      },
    );
  }

  private onBuildFailed(path: readonly PathNode[], err: unknown): void {
    this.noteFailure(path, err);
    const error = asCircuitError(err);
    this.emit("build-failed", error);
    if (this.stopped) return;
    this.logBuildFailure(error, "build preemptive circuit", "warn");
    this.failuresInARow++;
    if (error.kind === "no-path" || this.failuresInARow >= 3) {
      for (const w of this.waiters.splice(0)) w.reject(error);
    }
    if (this.retryTimer) return;
    const delay = Math.min(5000, this.retryDelayMs * 2 ** Math.min(10, this.failuresInARow - 1));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.refill();
    }, delay);
    this.retryTimer.unref();
  }

  private onReadyClosed(circuit: C, error: CircuitError | undefined): void {
    const i = this.readyCircuits.indexOf(circuit);
    if (i < 0) return; // handed out: the owner deals with it
    this.readyCircuits.splice(i, 1);
    this.log.info({ circuit: circuit.id, ...(error ? { err: error } : {}) }, "a ready circuit closed; building a replacement");
    this.emit("lost", circuit, error);
    this.refill();
  }
}

function asCircuitError(err: unknown): CircuitError {
  if (err instanceof CircuitError) return err;
  return new CircuitError("circuit-destroyed", `circuit build failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

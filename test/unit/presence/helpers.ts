/**
 * Shared pieces of the presence unit tests: users with identity strings,
 * a clock with timers driven by hand, and fake ServiceStreams that record
 * what a service sends, ends and destroys.
 */
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import type { Ed25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { formatIdentity } from "../../../node/src/crypto/identity.js";
import { isPspError } from "../../../node/src/errors.js";
import { DestroyReason, EndReason } from "../../../node/src/onion/constants.js";
import { CircuitError } from "../../../node/src/onion/errors.js";
import type { LocalService, ServiceHandler, ServiceStream } from "../../../node/src/onion/types.js";

export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

export interface User extends Ed25519KeyPair {
  /** The identity string. */
  text: string;
}

export function makeUser(keys: Ed25519KeyPair = generateEd25519KeyPair()): User {
  return { ...keys, text: formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: keys.publicKey }) };
}

/** The PresenceError kind `fn` throws ("no error" when it returns); any other error fails the test. */
export function presenceKind(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isPspError(err) && err.layer === "presence") return err.kind;
    throw err;
  }
  return "no error";
}

/** A copy of `bytes` with one bit of byte `at` flipped. */
export function flipped(bytes: Uint8Array, at = 0): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[at] = (out[at] as number) ^ 0x01;
  return out;
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A monotonic clock and a wall clock that move only when told, with the timers due by then. */
export class ManualClock {
  mono = 1_000;
  wall: number;
  private readonly timers: Timer[] = [];
  private seq = 0;

  constructor(wall = Date.UTC(2025, 0, 15, 12, 0, 0)) {
    this.wall = wall;
  }

  readonly now = (): number => this.mono;
  readonly wallClock = (): number => this.wall;

  readonly setTimer = (fn: () => void, ms: number): { cancel(): void } => {
    const timer: Timer = { at: this.mono + ms, seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  };

  /** Timers armed and not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Moves both clocks by `ms`, firing due timers in order (each sees the clock at its due time). */
  advance(ms: number): void {
    const end = this.mono + ms;
    for (;;) {
      const due = this.timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers.splice(this.timers.indexOf(due), 1);
      this.wall += due.at - this.mono;
      this.mono = due.at;
      due.fn();
    }
    this.wall += end - this.mono;
    this.mono = end;
  }
}

/**
 * A service's stream as the relay hands it over: records what the service
 * sends, how it ends the stream and whether it destroys the circuit. Like
 * the relay, the service's own end() does not call its handler's onEnd;
 * destroyCircuit() does (the relay closes every stream of the circuit), and
 * so does remoteEnd() (the peer sent END). While paused, messages wait and
 * resume() delivers them.
 */
export class FakeServiceStream implements ServiceStream {
  private static serial = 1;
  readonly circuitId = FakeServiceStream.serial++;
  readonly streamId = 1;
  /** The relay the circuit came from (a presence node refuses registrations that came straight from a client). */
  previousHop: Uint8Array | null = new Uint8Array(32).fill(7);
  readonly sent: Uint8Array[] = [];
  ended: EndReason | undefined;
  destroyed: DestroyReason | undefined;
  remoteEnded = false;
  paused = false;
  queuedCells = 0;
  /** Makes send throw CircuitError "resource-limit" (a user's stream that is not read). */
  sendFails = false;
  handler: ServiceHandler | undefined;
  private readonly held: Uint8Array[] = [];

  constructor(readonly service: string) {}

  get isOpen(): boolean {
    return this.ended === undefined && this.destroyed === undefined && !this.remoteEnded;
  }

  /** Accepts the stream with `service`; throws when the service refuses it. */
  open(service: LocalService, now = 0): this {
    const accepted = service(this, now);
    if (typeof accepted === "number") throw new Error(`service refused the stream with END ${accepted}`);
    this.handler = accepted;
    return this;
  }

  /** The peer sends a message (held while paused, as the relay does). */
  receive(message: Uint8Array, now = 0): void {
    if (!this.isOpen) throw new Error("receive on a closed stream");
    if (this.paused) this.held.push(message);
    else this.handler?.onMessage(message, now);
  }

  /** The peer ends the stream. */
  remoteEnd(reason = EndReason.DONE, now = 0): void {
    if (!this.isOpen) return;
    this.remoteEnded = true;
    this.handler?.onEnd?.(reason, now);
  }

  /** The queue toward the peer emptied. */
  drain(now = 0): void {
    this.queuedCells = 0;
    this.handler?.onDrain?.(now);
  }

  get heldMessages(): number {
    return this.held.length;
  }

  send(message: Uint8Array): void {
    if (!this.isOpen) throw new CircuitError("bad-state", "the stream is closed");
    if (this.sendFails) throw new CircuitError("resource-limit", "the stream's queue is full");
    this.sent.push(message);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    while (!this.paused && this.isOpen && this.held.length > 0) this.handler?.onMessage(this.held.shift() as Uint8Array, 0);
  }

  end(reason: EndReason = EndReason.DONE): void {
    if (!this.isOpen) return;
    this.ended = reason;
  }

  destroyCircuit(reason: DestroyReason = DestroyReason.REQUESTED): void {
    if (!this.isOpen) return;
    this.destroyed = reason;
    this.handler?.onEnd?.(EndReason.DESTROY, 0);
  }
}

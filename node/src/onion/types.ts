/**
 * Shapes shared by the relay and client state machines and their drivers.
 *
 * Owns the contract with the link layer: cells come in with the id of the
 * link they arrived on and the time; cells go out addressed to a link id;
 * opening a link to a named identity is a request the driver answers with
 * `linkOpened` (carrying the identity the link layer authenticated) or
 * `linkFailed`. Trusts the link layer for `peerIdentity` only.
 */
import type { Cell } from "../wire/cell.js";
import type { DestroyReason, EndReason } from "./constants.js";
import type { CircuitError } from "./errors.js";

/** An open link as the link layer reports it. */
/** The relay cap that refused a CREATE. */
export type CreateCap = "link-rate" | "address-rate" | "circuits";

export interface LinkInfo {
  /** Opaque id the link layer chose; unique among this node's open links. */
  linkId: string;
  /** Ed25519 identity the link layer authenticated, or null (a client that did not authenticate). */
  peerIdentity: Uint8Array | null;
  /** True when this node opened the link (decides the circuit-id MSB). */
  weInitiated: boolean;
  /** Set when this link answers an `open-link` request of ours. */
  requestId?: number;
  /** The peer's source host, when the link layer knows it: the relay rate-limits creates per address too. */
  remoteHost?: string;
}

/** Why an `open-link` request failed: no link could be made, or the node there proved another identity. */
export type LinkFailureCause = "unreachable" | "identity-mismatch";

export interface NodeAddress {
  host: string;
  port: number;
}

/** Events a driver may log, count or act on. */
export type OnionEvent =
  | { type: "circuit-created"; circuitId: number; linkId: string }
  /** Client: the circuit now has `hops` hops (after EXTENDED or TRUNCATED). */
  | { type: "circuit-extended"; circuitId: number; hops: number }
  /** Relay: the next hop answered CREATED; EXTENDED went back to the client. */
  | { type: "next-hop-connected"; circuitId: number; linkId: string }
  | { type: "circuit-open"; circuitId: number }
  | { type: "circuit-closed"; circuitId: number; reason: DestroyReason; error?: CircuitError }
  | { type: "stream-open"; circuitId: number; streamId: number; service: string }
  | { type: "stream-message"; circuitId: number; streamId: number; message: Uint8Array }
  | { type: "stream-closed"; circuitId: number; streamId: number; reason: EndReason; error?: CircuitError }
  | { type: "protocol-violation"; linkId: string; circId: number; message: string }
  /** A relay refused a CREATE before any handshake work: which cap refused it ("link-rate", "address-rate", "circuits"). */
  | { type: "create-refused"; linkId: string; circId: number; cap: CreateCap }
  /** Relay: a local service threw (when accepting a stream, on a message, at its end); the stream was ended INTERNAL. A bug in that service. */
  | { type: "service-error"; circuitId: number; streamId: number; service: string; stage: "accept" | "message" | "end"; error: unknown }
  /** Client: a relay message of a higher layer's command (32..255) arrived from `hop`. */
  | { type: "relay-message"; circuitId: number; hop: number; command: number; streamId: number; data: Uint8Array };

/**
 * What a state machine asks its driver to do. Bulk relay cells come as
 * "send-run": `cells` encoded cells (512 bytes each, circuit id and command
 * included) back to back in `bytes`, to be written as they are, in order with
 * the link's other sends. The machine never touches `bytes` again.
 */
export type OnionAction =
  | { type: "send"; linkId: string; cell: Cell }
  | { type: "send-run"; linkId: string; bytes: Uint8Array; cells: number }
  /** Empty `addresses`: the node is known by identity only (an internal node); the driver finds an authenticated link or resolves it. */
  | { type: "open-link"; requestId: number; identity: Uint8Array; addresses: NodeAddress[] }
  | { type: "event"; event: OnionEvent };

/** A stream of a circuit ending at a local service, as the service sees it. */
export interface ServiceStream {
  /** Local serial of the circuit (not its wire id). */
  readonly circuitId: number;
  readonly streamId: number;
  readonly service: string;
  /**
   * Identity key of the node the circuit reached us from, or null when it
   * came straight from a client (a one-hop circuit: we know its address).
   */
  readonly previousHop: Uint8Array | null;
  /** Queues one message (fragmented into DATA cells). Throws CircuitError when closed or too large. */
  send(message: Uint8Array): void;
  /**
   * Stops delivering messages (they wait in order) and withholds stream-level
   * SENDMEs, so the sender stops after one window; a sender that ignores the
   * window gets its circuit destroyed. For a busy or slow service.
   */
  pause(): void;
  /** Delivers held messages and sends the SENDMEs owed. */
  resume(): void;
  /** Ends the stream with END(reason), DONE by default. */
  end(reason?: EndReason): void;
  /**
   * Tears down the whole circuit the stream came on, in both directions
   * (DESTROY with `reason`, REQUESTED by default): a presence node cancelling
   * an introduction ends the introducer's route at once.
   */
  destroyCircuit(reason?: DestroyReason): void;
  /** DATA cells waiting for the flow-control window. */
  readonly queuedCells: number;
}

export interface ServiceHandler {
  onMessage(message: Uint8Array, now: number): void;
  onEnd?(reason: EndReason, now: number): void;
  /** The stream's queue emptied after the window opened (a spliced stream resumes its source). */
  onDrain?(now: number): void;
}

/** A named local service (dht, presence, rendezvous, ...): accept with a handler, or refuse with an END reason. */
export type LocalService = (stream: ServiceStream, now: number) => ServiceHandler | EndReason;

/** What a higher layer's relay-command handler may do with the circuit the message came on. */
export interface RelayCommandContext {
  /** Local serial of the circuit. */
  readonly circuitId: number;
  /** Sends a relay message back towards the client, from this hop. */
  reply(command: number, streamId: number, data: Uint8Array): void;
  /** Destroys the circuit in both directions. */
  destroy(reason: DestroyReason): void;
}

/**
 * Handles a relay message of a higher layer's command (32..255, registered
 * with the wire layer) recognized at this relay. Throwing a PspError destroys
 * the circuit (PROTOCOL).
 */
export type RelayCommandHandler = (ctx: RelayCommandContext, streamId: number, data: Uint8Array, now: number) => void;

/**
 * Constants of the onion layer: reason codes, flow-control windows, limits.
 *
 * Owns every number that two implementations must agree on (reason bytes,
 * window sizes, handshake type, key-material split) and the defaults of every
 * local limit. Reason codes keep Tor's numbering where Tor has the same
 * meaning, so operators can read them with Tor's documentation at hand.
 */
import { codeLookup } from "../base/codes.js";

/** Reason byte of a DESTROY cell (and of a TRUNCATED relay message). */
export const DestroyReason = {
  NONE: 0,
  /** The peer broke the protocol: bad payload, unrecognized cell at the last hop, window overrun. */
  PROTOCOL: 1,
  INTERNAL: 2,
  /** The client asked for it (DESTROY from the client, or TRUNCATE). */
  REQUESTED: 3,
  HIBERNATING: 4,
  /** A limit was hit: circuits per link, queue length, relay-early budget. */
  RESOURCELIMIT: 5,
  /** The next hop could not be reached. */
  CONNECTFAILED: 6,
  /** The next hop's authenticated link identity is not the one the client named. */
  OR_IDENTITY: 7,
  /** A link carrying the circuit closed (a relay disappeared). */
  CHANNEL_CLOSED: 8,
  /** The circuit was idle past its idle timeout. */
  FINISHED: 9,
  /** An extend did not complete within the extend timeout. */
  TIMEOUT: 10,
  DESTROYED: 11,
  /** Reserved for the rendezvous layer. */
  NOSUCHSERVICE: 12,
} as const;
export type DestroyReasonName = keyof typeof DestroyReason;
export type DestroyReason = (typeof DestroyReason)[DestroyReasonName];

const destroyReasons = codeLookup(DestroyReason);

/** Maps a received reason byte to a known reason; unknown bytes read as NONE (never trusted further). */
export function toDestroyReason(byte: number): DestroyReason {
  return destroyReasons.isCode(byte) ? byte : DestroyReason.NONE;
}

export function destroyReasonName(reason: number): DestroyReasonName | "UNKNOWN" {
  return destroyReasons.nameOf(reason) ?? "UNKNOWN";
}

/** Reason byte of an END relay message (closes one stream, not the circuit). */
export const EndReason = {
  MISC: 1,
  /** No local service of that name at the addressed hop. */
  NO_SUCH_SERVICE: 2,
  /** The service exists but refused this stream. */
  REFUSED: 3,
  /** Policy: streams are not accepted here (e.g. BEGIN at the first hop of a circuit). */
  POLICY: 4,
  /** The circuit is being destroyed. */
  DESTROY: 5,
  /** Normal close. */
  DONE: 6,
  TIMEOUT: 7,
  INTERNAL: 10,
  /** Too many streams on the circuit, or a message larger than the limit. */
  RESOURCELIMIT: 11,
  /** The peer broke the stream protocol (bad BEGIN, window overrun, bad framing). */
  PROTOCOL: 13,
} as const;
export type EndReasonName = keyof typeof EndReason;
export type EndReason = (typeof EndReason)[EndReasonName];

const endReasons = codeLookup(EndReason);

/** Maps a received END reason byte to a known reason; unknown bytes read as MISC. */
export function toEndReason(byte: number): EndReason {
  return endReasons.isCode(byte) ? byte : EndReason.MISC;
}

export function endReasonName(reason: number): EndReasonName | "UNKNOWN" {
  return endReasons.nameOf(reason) ?? "UNKNOWN";
}

/** CREATE2 handshake type for ntor (tor-spec's value, kept). */
export const HANDSHAKE_NTOR = 0x0002;

/**
 * Key material taken from the ntor KDF per hop, in order:
 * Df (32) ‖ Db (32) ‖ Kf (16) ‖ Kb (16). Tor's split with SHA-256 digest seeds.
 */
export const DIGEST_SEED_LEN = 32;
export const CIPHER_KEY_LEN = 16;
export const HOP_KEY_MATERIAL_LEN = 2 * DIGEST_SEED_LEN + 2 * CIPHER_KEY_LEN;

/**
 * Flow control: windows count DATA cells only. The circuit window is Tor's;
 * the stream window is twice Tor's (1000/100 instead of 500/50): on the
 * loopback bench a lone bulk stream then sends 100-cell bursts and may fill
 * the circuit window; measured back to back, about 5-10% more MB/s (medians
 * of 6 runs; within the noise of a shared machine, never worse).
 */
export const CIRCUIT_WINDOW_START = 1000;
export const CIRCUIT_WINDOW_INCREMENT = 100;
export const STREAM_WINDOW_START = 1000;
export const STREAM_WINDOW_INCREMENT = 100;
/**
 * Delayed acknowledgement (flow-control.ts, docs/spec/onion.md §7): a receiver
 * sends its SENDMEs two increments at a time, or 1 ms after the first became
 * due. Receiver policy only: the wire and the window arithmetic are unchanged.
 */
export const SENDME_BATCH = 2;
export const SENDME_DELAY_MS = 1;

/** At most this many RELAY_EARLY cells may travel outbound on one circuit (tor-spec 5.6). */
export const MAX_RELAY_EARLY = 8;
/** Default longest circuit a relay helps build (hops, client included hops only). */
export const DEFAULT_MAX_CIRCUIT_LENGTH = 8;
/** Default circuit length a client builds. */
export const DEFAULT_PATH_LENGTH = 3;

/** Longest service name in a BEGIN (bytes of UTF-8). */
export const MAX_SERVICE_NAME_LEN = 64;

/** Default local limits; every one is an option of the relay or client. */
export const DEFAULT_LIMITS = {
  /** Per-node onion-layer send rate: enough for signalling and messages, far too little for media. */
  nodeBytesPerSecond: 1024 * 1024,
  nodeBurstBytes: 256 * 1024,
  /** Per-circuit send rate (about 256 kbit/s): one circuit cannot carry a video stream. */
  circuitBytesPerSecond: 32 * 1024,
  circuitBurstBytes: 64 * 1024,
  /** Circuits one peer (link) may have open through this relay. */
  maxCircuitsPerLink: 256,
  /** Circuits this relay carries in total. */
  maxCircuits: 20_000,
  /** Streams open at once on one circuit. */
  maxStreamsPerCircuit: 64,
  /** Streams open at once at a relay on circuits arriving over one link (one peer). */
  maxStreamsPerLink: 1024,
  /** Cells queued for sending on one circuit before it is destroyed (RESOURCELIMIT). */
  maxQueuedCellsPerCircuit: 2 * CIRCUIT_WINDOW_START,
  /** Largest message a stream reassembles. */
  maxMessageBytes: 256 * 1024,
  /** Relay: time allowed for an EXTEND to finish (link open + CREATED). */
  extendTimeoutMs: 10_000,
  /**
   * Relay: a circuit with no cells in either direction for this long is
   * destroyed (FINISHED). Ten minutes: a client keeps an unused circuit that
   * long (clientCircuitIdleMs) and presence renews every few minutes, while
   * a flood of created-and-abandoned circuits no longer holds state for an hour.
   */
  relayCircuitIdleMs: 10 * 60_000,
  /**
   * Relay: CREATE/CREATE2 cells accepted per second on one client link (any
   * link whose peer is not a relay of the current consensus), and the
   * burst, checked before any public-key work; past it the create is
   * answered DESTROY(RESOURCELIMIT). A flood from one link costs ~50 ntor
   * handshakes a second instead of a core.
   */
  createsPerSecondPerLink: 50,
  createBurstPerLink: 200,
  /** The same per source address (all client links from one host; only where the link layer knows the address). */
  createsPerSecondPerAddress: 100,
  createBurstPerAddress: 400,
  /**
   * The same for a link from a relay the consensus lists: it carries the
   * extends of every client whose circuit passes through that relay, so it
   * gets twenty times a client link's budget and no per-address bucket (as
   * Tor applies its DoS limits to client connections only). A self-made
   * identity is not listed, so it gets a client link's budget.
   */
  createsPerSecondPerRelayLink: 1000,
  createBurstPerRelayLink: 4000,
  /** Client: time allowed to build a whole circuit. */
  buildTimeoutMs: 30_000,
  /** Client: a circuit with no open streams for this long is closed. */
  clientCircuitIdleMs: 10 * 60_000,
} as const;

/** Relay limits that must be positive: a zero rate, burst or idle time would refuse or close every circuit. */
export const POSITIVE_RELAY_LIMIT_KEYS = [
  "createsPerSecondPerLink",
  "createBurstPerLink",
  "createsPerSecondPerAddress",
  "createBurstPerAddress",
  "createsPerSecondPerRelayLink",
  "createBurstPerRelayLink",
  "relayCircuitIdleMs",
] as const;

/** CREATE bursts: each must allow at least one CREATE. */
export const CREATE_BURST_KEYS = ["createBurstPerLink", "createBurstPerAddress", "createBurstPerRelayLink"] as const;

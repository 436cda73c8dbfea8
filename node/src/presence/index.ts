/**
 * The presence layer (whitepaper §6–§7): presence points announced through
 * circuits, lookups by identity, introductions, rendezvous, and the private
 * channels they open (hs-ntor handshake, then the channel ratchet).
 *
 * Depends on: crypto/ (hs-ntor, blinding, Equi-X, AEAD, HKDF), onion/
 * (circuits, stream RPC), dht/ (presence records), authority/ (access
 * certificates), directory/ (the consensus).
 * Used by: node/ (presence points, introduction forwarding, rendezvous on
 * every onion node), client/ (`PspClient.presence`, `lookup`, `connect`,
 * `introduction` and `channel` events), cli/ (`psp msg`).
 * Trust boundary: trusts the key material the handshake hands it; nothing
 * that arrives in a frame until it authenticates, and every bad frame is a
 * PresenceError.
 * Spec: docs/spec/presence.md.
 */
export {
  createChannelRatchet,
  CHANNEL_FRAME_VERSION,
  CHANNEL_HEADER_LEN,
  CHANNEL_MAX_PLAINTEXT,
  CHANNEL_REORDER_WINDOW,
  CHANNEL_MAX_COUNTER,
} from "./ratchet.js";
export type { ChannelRatchet, ChannelRole } from "./ratchet.js";
export { PresenceError } from "./errors.js";
export type { PresenceErrorKind } from "./errors.js";

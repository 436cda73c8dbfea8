/**
 * The presence layer: presence points, lookups, introductions, rendezvous and
 * the private channels they open. Built so far: the channel ratchet.
 *
 * Depends on: crypto/ (AEAD, HKDF) and, as it grows, onion/ circuits, the
 * DHT and access certificates.
 * Used by: the client library (client/), as it grows.
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

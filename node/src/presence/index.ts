/**
 * The presence layer: presence points, lookups, introductions, rendezvous and
 * the private channels they open (docs/spec/presence.md).
 *
 * Depends on crypto/ (AEAD, HKDF) and, as it grows, on onion/ circuits, the
 * DHT and access certificates. Used by the client library (client/). Trusts
 * key material handed to it by the handshake; nothing that arrives in a frame
 * until it authenticates.
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

/**
 * The private channel's symmetric ratchet (docs/spec/presence.md "Channel
 * ratchet"): forward secrecy beyond the rendezvous handshake, per message.
 *
 * Both ends derive two chain keys from the rendezvous key seed, one per
 * direction. Each message takes the next key of its sender's chain
 * (mk = HMAC(ck, 0x01), ck' = HMAC(ck, 0x02), as Signal's symmetric-key
 * ratchet does) and the used chain key is erased, so whoever later takes a
 * channel's state learns no key of a message already sent or received.
 * A receiver accepts frames out of order within a window, keeping the keys
 * of frames it skipped until they arrive or the window moves past them;
 * a key is erased once used, so a replayed frame is refused.
 *
 * Pure state machine: bytes in, bytes out, no I/O, no clock. A frame that
 * fails any check leaves the state exactly as it was.
 *
 * Owns the channel frame format. Trusts the key seed it is given (from
 * hs-ntor, crypto/hs-ntor.ts) and nothing in a frame until it authenticates.
 */
import { aeadOpen, aeadSeal, AEAD_NONCE_LEN, AEAD_TAG_LEN } from "../crypto/aead.js";
import { CryptoError } from "../crypto/errors.js";
import { hkdfSha256, hmacSha256 } from "../crypto/kdf.js";
import { PresenceError } from "./errors.js";

/** Frame format version (first byte of every frame). */
export const CHANNEL_FRAME_VERSION = 1;
/** version (1) ‖ counter (4, big-endian). */
export const CHANNEL_HEADER_LEN = 5;
/** The largest plaintext one frame carries. */
export const CHANNEL_MAX_PLAINTEXT = 64 * 1024;
/** How far ahead of the next expected counter a frame may be; the skipped keys kept at most. */
export const CHANNEL_REORDER_WINDOW = 256;
/** Last counter a chain hands out; a channel that reaches it must be replaced. */
export const CHANNEL_MAX_COUNTER = 0xffff_ffff;

const KEY_SEED_LEN = 32;
const CHAIN_LABEL = new TextEncoder().encode("psp-channel-v1 chains");
const AAD_LABEL = new TextEncoder().encode("psp-channel-v1");
const MESSAGE_KEY_INPUT = Uint8Array.of(0x01);
const CHAIN_KEY_INPUT = Uint8Array.of(0x02);
/** Every message key is used once, so a fixed nonce is safe (as in Signal and Noise). */
const ZERO_NONCE = new Uint8Array(AEAD_NONCE_LEN);

/** Which end of the channel this state belongs to: the initiator sent the introduction. */
export type ChannelRole = "initiator" | "responder";

const DIRECTION = { "initiator-to-responder": 0x01, "responder-to-initiator": 0x02 } as const;

interface Chain {
  key: Uint8Array;
  /** Counter of the next message key this chain yields. */
  next: number;
}

export interface ChannelRatchet {
  readonly role: ChannelRole;
  /** Seals `plaintext` as the next frame this end sends. */
  seal(plaintext: Uint8Array): Uint8Array;
  /** Opens a frame from the other end; throws PresenceError and changes nothing when the frame is refused. */
  open(frame: Uint8Array): { counter: number; plaintext: Uint8Array };
  /** Frames sent and the next counter expected, for status and tests. */
  stats(): { sent: number; nextExpected: number; skippedKeys: number };
  /** Erases every key; the ratchet refuses all use afterwards. */
  destroy(): void;
}

function erase(bytes: Uint8Array): void {
  bytes.fill(0);
}

function step(chain: Chain): Uint8Array {
  const messageKey = hmacSha256(chain.key, MESSAGE_KEY_INPUT);
  const nextKey = hmacSha256(chain.key, CHAIN_KEY_INPUT);
  erase(chain.key);
  chain.key = nextKey;
  chain.next += 1;
  return messageKey;
}

function associatedData(direction: number, header: Uint8Array): Uint8Array {
  const aad = new Uint8Array(AAD_LABEL.length + 1 + header.length);
  aad.set(AAD_LABEL);
  aad[AAD_LABEL.length] = direction;
  aad.set(header, AAD_LABEL.length + 1);
  return aad;
}

function header(counter: number): Uint8Array {
  const out = new Uint8Array(CHANNEL_HEADER_LEN);
  out[0] = CHANNEL_FRAME_VERSION;
  new DataView(out.buffer).setUint32(1, counter);
  return out;
}

/**
 * Creates one end of a channel from the rendezvous key seed. Both ends call
 * it with the same seed and opposite roles.
 */
export function createChannelRatchet(opts: { keySeed: Uint8Array; role: ChannelRole; reorderWindow?: number }): ChannelRatchet {
  const { keySeed, role } = opts;
  if (!(keySeed instanceof Uint8Array) || keySeed.length !== KEY_SEED_LEN)
    throw new PresenceError("bad-argument", `the channel key seed must be ${KEY_SEED_LEN} bytes`);
  if (role !== "initiator" && role !== "responder")
    throw new PresenceError("bad-argument", `channel role must be "initiator" or "responder", not ${String(role)}`);
  const window = opts.reorderWindow ?? CHANNEL_REORDER_WINDOW;
  if (!Number.isSafeInteger(window) || window < 0 || window > 4096) throw new PresenceError("bad-argument", "reorderWindow must be an integer in 0..4096");

  const chains = hkdfSha256(keySeed, new Uint8Array(0), CHAIN_LABEL, 2 * KEY_SEED_LEN);
  const i2r = chains.slice(0, KEY_SEED_LEN);
  const r2i = chains.slice(KEY_SEED_LEN);
  erase(chains);
  const sending: Chain = { key: role === "initiator" ? i2r : r2i, next: 0 };
  const receiving: Chain = { key: role === "initiator" ? r2i : i2r, next: 0 };
  const sendDirection = DIRECTION[role === "initiator" ? "initiator-to-responder" : "responder-to-initiator"];
  const receiveDirection = DIRECTION[role === "initiator" ? "responder-to-initiator" : "initiator-to-responder"];
  /** Keys of frames skipped over, by counter, oldest first (Map keeps insertion order). */
  const skipped = new Map<number, Uint8Array>();
  let destroyed = false;

  const alive = () => {
    if (destroyed) throw new PresenceError("channel-exhausted", "this channel was closed and its keys erased");
  };

  return {
    role,
    seal(plaintext) {
      alive();
      if (!(plaintext instanceof Uint8Array) || plaintext.length > CHANNEL_MAX_PLAINTEXT) {
        throw new PresenceError("bad-argument", `a channel message is a Uint8Array of at most ${CHANNEL_MAX_PLAINTEXT} bytes`);
      }
      if (sending.next > CHANNEL_MAX_COUNTER) throw new PresenceError("channel-exhausted", "this channel has sent its last message; open a new one");
      const counter = sending.next;
      const head = header(counter);
      const messageKey = step(sending);
      try {
        const sealed = aeadSeal(messageKey, ZERO_NONCE, plaintext, associatedData(sendDirection, head));
        const frame = new Uint8Array(CHANNEL_HEADER_LEN + sealed.length);
        frame.set(head);
        frame.set(sealed, CHANNEL_HEADER_LEN);
        return frame;
      } finally {
        erase(messageKey);
      }
    },

    open(frame) {
      alive();
      if (
        !(frame instanceof Uint8Array) ||
        frame.length < CHANNEL_HEADER_LEN + AEAD_TAG_LEN ||
        frame.length > CHANNEL_HEADER_LEN + CHANNEL_MAX_PLAINTEXT + AEAD_TAG_LEN
      ) {
        throw new PresenceError(
          "channel-malformed",
          `a channel frame is ${CHANNEL_HEADER_LEN + AEAD_TAG_LEN}..${CHANNEL_HEADER_LEN + CHANNEL_MAX_PLAINTEXT + AEAD_TAG_LEN} bytes`,
        );
      }
      if (frame[0] !== CHANNEL_FRAME_VERSION) throw new PresenceError("channel-malformed", `unknown channel frame version ${frame[0]}`);
      const counter = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(1);
      const head = frame.subarray(0, CHANNEL_HEADER_LEN);
      const sealed = frame.subarray(CHANNEL_HEADER_LEN);
      const aad = associatedData(receiveDirection, head);
      const decrypt = (key: Uint8Array): Uint8Array => {
        try {
          return aeadOpen(key, ZERO_NONCE, sealed, aad);
        } catch (err) {
          if (CryptoError.is(err, "aead-auth-failed"))
            throw new PresenceError("channel-auth-failed", `channel frame ${counter} does not authenticate`, { cause: err });
          throw err;
        }
      };

      if (counter < receiving.next) {
        const key = skipped.get(counter);
        if (!key) throw new PresenceError("channel-replayed", `channel frame ${counter} was already received or is older than the reorder window`);
        const plaintext = decrypt(key);
        skipped.delete(counter);
        erase(key);
        return { counter, plaintext };
      }
      if (counter - receiving.next > window) {
        throw new PresenceError("channel-too-far-ahead", `channel frame ${counter} is more than ${window} ahead of the next expected (${receiving.next})`);
      }
      // Walk a copy of the chain up to the frame's key; commit only once the frame authenticates.
      const trial: Chain = { key: receiving.key.slice(), next: receiving.next };
      const passed: [number, Uint8Array][] = [];
      while (trial.next < counter) passed.push([trial.next, step(trial)]);
      const messageKey = step(trial);
      let plaintext: Uint8Array;
      try {
        plaintext = decrypt(messageKey);
      } catch (err) {
        for (const [, key] of passed) erase(key);
        erase(trial.key);
        throw err;
      } finally {
        erase(messageKey);
      }
      erase(receiving.key);
      receiving.key = trial.key;
      receiving.next = trial.next;
      for (const [n, key] of passed) skipped.set(n, key);
      // Keys of frames that fell out of the window are dropped: those frames now count as lost.
      for (const [n, key] of skipped) {
        if (n >= receiving.next - window && skipped.size <= window) break;
        skipped.delete(n);
        erase(key);
      }
      return { counter, plaintext };
    },

    stats() {
      return { sent: sending.next, nextExpected: receiving.next, skippedKeys: skipped.size };
    },

    destroy() {
      if (destroyed) return;
      destroyed = true;
      erase(sending.key);
      erase(receiving.key);
      for (const key of skipped.values()) erase(key);
      skipped.clear();
    },
  };
}

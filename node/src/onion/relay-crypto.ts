/**
 * Per-hop relay crypto: AES-128-CTR layers and sealed runs of relay payloads.
 *
 * Owns the onion layers of relay cells. Each hop of a circuit shares with the
 * client, per direction, one AES-128-CTR keystream (IV zero: each key is used
 * for exactly one keystream) and one SHA-256 digest chain seeded with a
 * 32-byte secret. Key material from the ntor KDF is split as
 * Df (32) ‖ Db (32) ‖ Kf (16) ‖ Kb (16) (tor-spec 5.2.2, SHA-256 digests).
 *
 * Sealed runs (docs/spec/onion.md §3): the originator seals consecutive
 * payloads for one hop and direction as runs of 1..16. With C the chain value
 * before the run, the run's payloads P_1..P_n (digest fields zeroed, the
 * RUN_CONTINUES bit of the length field set on P_1..P_(n-1)) give
 * C' = SHA-256(C ‖ P_1 ‖ … ‖ P_n); P_n's digest field is C'[0..4] and every
 * other member's is the run marker C[28..32]. The chain then advances to C'.
 * One hash covers the whole run, so a 16-cell run costs one SHA-256 call
 * instead of 16 (the per-call cost was the largest part of the digest work);
 * C' still commits to the seed and every payload before it, so a modified,
 * replayed, reordered or dropped cell makes its run fail.
 *
 * The receiver holds members (RECOGNIZED = 0, RUN_CONTINUES set, digest =
 * marker) until the run's last cell verifies, and only then releases the run;
 * a cell that does not verify while members are held means the run was
 * tampered with ("broken"). A cell meant for a later hop matches a member by
 * chance with probability 2^-49 and a last cell with 2^-48, as in Tor.
 *
 * Batching: `applyKeystream*` run one cipher call over the concatenation of
 * many payloads of the same circuit and direction (7x faster than one call per
 * cell). Cipher objects live as long as the circuit.
 *
 * Trusts: node:crypto. Trusts nothing about payload contents.
 */
import { createCipheriv, createHash, hash as nodeHash } from "node:crypto";

type Cipheriv = ReturnType<typeof createCipheriv>;
import { CIPHER_KEY_LEN, DIGEST_SEED_LEN, HOP_KEY_MATERIAL_LEN } from "./constants.js";
import { CircuitError } from "./errors.js";

/** Bytes of a relay payload (the whole cell payload). */
export const RELAY_PAYLOAD_LEN = 507;
export const RECOGNIZED_OFFSET = 0;
export const DIGEST_OFFSET = 4;
export const DIGEST_LEN = 4;
/** The byte of the length field that carries RUN_CONTINUES (its top bit: lengths never exceed 496). */
export const RUN_FLAG_OFFSET = 8;
export const RUN_CONTINUES = 0x80;
/**
 * Most payloads in one sealed run; a receiver refuses a longer one. 16 keeps
 * most of the saving (the per-call cost of a hash is spread over 16 payloads)
 * while bounding what a receiver holds (15 payloads, 7.6 KB, per circuit and
 * direction) and how long a held payload waits for its run's last cell behind
 * a rate limit.
 */
export const MAX_RUN_PAYLOADS = 16;
/** Where the run marker comes from in the chain value (its last 4 bytes; the digest uses the first 4). */
const MARKER_OFFSET = DIGEST_SEED_LEN - DIGEST_LEN;

const ZERO_IV = Buffer.alloc(16);

/** A plain Uint8Array view of a Buffer, so `.slice()` downstream copies as it does for every other Uint8Array. */
function asUint8Array(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** The four per-hop secrets, split from the ntor key material. */
export interface HopKeys {
  forwardDigestSeed: Uint8Array;
  backwardDigestSeed: Uint8Array;
  forwardKey: Uint8Array;
  backwardKey: Uint8Array;
}

/** Splits ntor key material (at least 96 bytes) into Df, Db, Kf, Kb. */
export function splitHopKeys(material: Uint8Array): HopKeys {
  if (!(material instanceof Uint8Array) || material.length < HOP_KEY_MATERIAL_LEN) {
    throw new CircuitError(
      "bad-argument",
      `hop key material must be at least ${HOP_KEY_MATERIAL_LEN} bytes (ask ntor for keyLength ${HOP_KEY_MATERIAL_LEN})`,
    );
  }
  let o = 0;
  const take = (n: number) => material.slice(o, (o += n));
  return {
    forwardDigestSeed: take(DIGEST_SEED_LEN),
    backwardDigestSeed: take(DIGEST_SEED_LEN),
    forwardKey: take(CIPHER_KEY_LEN),
    backwardKey: take(CIPHER_KEY_LEN),
  };
}

/**
 * SHA-256 of one buffer as a 32-character latin1 string (one byte per char
 * code): node's one-shot `crypto.hash` (Node >= 21.7), else a Hash object.
 * A string result costs half of a Buffer one (no native Buffer allocation),
 * which matters for one-payload runs (SENDMEs, short messages).
 */
const sha256Latin1: (data: Uint8Array) => string =
  typeof nodeHash === "function" ? (data) => nodeHash("sha256", data, "binary") : (data) => createHash("sha256").update(data).digest("binary");

/** What `RelayLayer.receive` made of one decrypted payload. */
export const RunStep = {
  /** Not addressed to this hop (forward it, or try the next layer); the payload is untouched. */
  NotMine: 0,
  /** A member of a run, held until the run's last payload verifies. */
  Held: 1,
  /** The run verified: `takeRun()` returns its payloads, in order. */
  Complete: 2,
  /** Payloads are held and this one does not complete their run: the run was tampered with. */
  Broken: 3,
} as const;
export type RunStep = (typeof RunStep)[keyof typeof RunStep];

/**
 * One direction of one hop: a keystream and a digest chain. The same type
 * serves both ends: the originator calls `sealRun` then `applyKeystream`; the
 * recipient calls `applyKeystream` then `receive` on each payload.
 */
export class RelayLayer {
  private readonly cipher: Cipheriv;
  /** C as latin1 (one char per byte): the chain value after the last run of this hop and direction (C_0 = seed). */
  private chain: string;
  /** C ‖ a run's payloads, reused by every hash of this layer (one one-shot call per run, no Hash object). */
  private readonly scratch = Buffer.allocUnsafe(DIGEST_SEED_LEN + MAX_RUN_PAYLOADS * RELAY_PAYLOAD_LEN);
  /** Members of the run being received, digest fields already zeroed. */
  private held: Uint8Array[] = [];
  /** The run `receive` completed last, until `takeRun`. */
  private completed: Uint8Array[] = [];

  constructor(key: Uint8Array, digestSeed: Uint8Array) {
    if (key.length !== CIPHER_KEY_LEN || digestSeed.length !== DIGEST_SEED_LEN) {
      throw new CircuitError("bad-argument", `relay layer needs a ${CIPHER_KEY_LEN}-byte key and a ${DIGEST_SEED_LEN}-byte digest seed`);
    }
    this.cipher = createCipheriv("aes-128-ctr", key, ZERO_IV);
    this.chain = Buffer.from(digestSeed).toString("latin1");
  }

  /**
   * XORs the next `bytes.length` keystream bytes into a new buffer. Pass many
   * payloads concatenated to pay for one cipher call; CTR never buffers, so the
   * output has the input's length.
   */
  applyKeystream(bytes: Uint8Array): Uint8Array {
    return asUint8Array(this.cipher.update(bytes));
  }

  /** Applies the keystream to a contiguous run of payloads; returns a new buffer of the same length. */
  applyKeystreamBuffer(bytes: Uint8Array): Buffer {
    return this.cipher.update(bytes);
  }

  /** Applies the keystream to each payload in one cipher call; returns views into one new buffer. */
  applyKeystreamBatch(payloads: readonly Uint8Array[]): Uint8Array[] {
    if (payloads.length === 1) return [this.applyKeystream(payloads[0] as Uint8Array)];
    const out = asUint8Array(this.cipher.update(Buffer.concat(payloads)));
    const views: Uint8Array[] = [];
    let o = 0;
    for (const p of payloads) {
      views.push(out.subarray(o, o + p.length));
      o += p.length;
    }
    return views;
  }

  /**
   * Seals `count` plaintext payloads lying back to back in `payloads` from
   * byte `offset` (RECOGNIZED already 0) as runs of at most MAX_RUN_PAYLOADS:
   * writes every digest field and RUN_CONTINUES bit and advances the chain.
   */
  sealRun(payloads: Uint8Array, offset = 0, count = 1): void {
    if (!Number.isInteger(count) || count < 1 || !Number.isInteger(offset) || offset < 0 || offset + count * RELAY_PAYLOAD_LEN > payloads.length) {
      throw new CircuitError("bad-argument", `sealRun needs ${count} payloads of ${RELAY_PAYLOAD_LEN} bytes from offset ${offset}`);
    }
    for (let first = 0; first < count; first += MAX_RUN_PAYLOADS) {
      const n = Math.min(MAX_RUN_PAYLOADS, count - first);
      const start = offset + first * RELAY_PAYLOAD_LEN;
      const last = start + (n - 1) * RELAY_PAYLOAD_LEN;
      for (let o = start; o <= last; o += RELAY_PAYLOAD_LEN) {
        payloads[o + DIGEST_OFFSET] = payloads[o + DIGEST_OFFSET + 1] = payloads[o + DIGEST_OFFSET + 2] = payloads[o + DIGEST_OFFSET + 3] = 0;
        const flags = payloads[o + RUN_FLAG_OFFSET] as number;
        payloads[o + RUN_FLAG_OFFSET] = o < last ? flags | RUN_CONTINUES : flags & ~RUN_CONTINUES;
      }
      const chain = this.chain;
      const next = n === 1 ? this.hashOne(payloads, start) : this.hashSpan(payloads, start, last + RELAY_PAYLOAD_LEN, undefined);
      for (let o = start; o < last; o += RELAY_PAYLOAD_LEN) writeLatin1(payloads, o + DIGEST_OFFSET, chain, MARKER_OFFSET);
      writeLatin1(payloads, last + DIGEST_OFFSET, next, 0);
      this.chain = next;
    }
  }

  /** Seals one payload as a run of one (convenience for single messages). */
  seal(payload: Uint8Array): void {
    this.sealRun(payload, 0, 1);
  }

  /**
   * Takes one decrypted payload of this hop and direction, in arrival order.
   * Held and completed payloads get their digest field zeroed and
   * RUN_CONTINUES cleared (they are decoded next); a NotMine payload is left
   * exactly as it came.
   */
  receive(payload: Uint8Array): RunStep {
    const holding = this.held.length > 0;
    if (payload.length !== RELAY_PAYLOAD_LEN || payload[RECOGNIZED_OFFSET] !== 0 || payload[RECOGNIZED_OFFSET + 1] !== 0) {
      return holding ? this.breakRun() : RunStep.NotMine;
    }
    const chain = this.chain;
    if (
      ((payload[RUN_FLAG_OFFSET] as number) & RUN_CONTINUES) !== 0 &&
      payload[DIGEST_OFFSET] === chain.charCodeAt(MARKER_OFFSET) &&
      payload[DIGEST_OFFSET + 1] === chain.charCodeAt(MARKER_OFFSET + 1) &&
      payload[DIGEST_OFFSET + 2] === chain.charCodeAt(MARKER_OFFSET + 2) &&
      payload[DIGEST_OFFSET + 3] === chain.charCodeAt(MARKER_OFFSET + 3)
    ) {
      if (this.held.length >= MAX_RUN_PAYLOADS - 1) return this.breakRun();
      payload[DIGEST_OFFSET] = payload[DIGEST_OFFSET + 1] = payload[DIGEST_OFFSET + 2] = payload[DIGEST_OFFSET + 3] = 0;
      this.held.push(payload);
      return RunStep.Held;
    }
    const c0 = payload[DIGEST_OFFSET] as number;
    const c1 = payload[DIGEST_OFFSET + 1] as number;
    const c2 = payload[DIGEST_OFFSET + 2] as number;
    const c3 = payload[DIGEST_OFFSET + 3] as number;
    payload[DIGEST_OFFSET] = payload[DIGEST_OFFSET + 1] = payload[DIGEST_OFFSET + 2] = payload[DIGEST_OFFSET + 3] = 0;
    const next = holding ? this.hashSpan(payload, 0, RELAY_PAYLOAD_LEN, this.held) : this.hashOne(payload, 0);
    // Compared without an early exit.
    const diff = (c0 ^ next.charCodeAt(0)) | (c1 ^ next.charCodeAt(1)) | (c2 ^ next.charCodeAt(2)) | (c3 ^ next.charCodeAt(3));
    if (diff !== 0 || ((payload[RUN_FLAG_OFFSET] as number) & RUN_CONTINUES) !== 0) {
      payload[DIGEST_OFFSET] = c0;
      payload[DIGEST_OFFSET + 1] = c1;
      payload[DIGEST_OFFSET + 2] = c2;
      payload[DIGEST_OFFSET + 3] = c3;
      return holding ? this.breakRun() : RunStep.NotMine;
    }
    const run = this.held;
    for (const member of run) member[RUN_FLAG_OFFSET] = (member[RUN_FLAG_OFFSET] as number) & ~RUN_CONTINUES;
    run.push(payload);
    this.chain = next;
    this.held = [];
    this.completed = run;
    return RunStep.Complete;
  }

  /** The payloads of the run `receive` just completed, in order (then forgotten here). */
  takeRun(): Uint8Array[] {
    const run = this.completed;
    this.completed = [];
    return run;
  }

  /** Payloads held for an unfinished run (a bounded buffer: at most MAX_RUN_PAYLOADS - 1). */
  get heldCount(): number {
    return this.held.length;
  }

  /**
   * Copies held members out of the buffers they arrived in, so a run left
   * unfinished at the end of a batch keeps 507 bytes per member alive rather
   * than each member's whole decrypted batch. Call when a batch is done.
   */
  compactHeld(): void {
    const held = this.held;
    if (held.length === 0) return;
    const copy = new Uint8Array(held.length * RELAY_PAYLOAD_LEN);
    for (let i = 0; i < held.length; i++) {
      copy.set(held[i] as Uint8Array, i * RELAY_PAYLOAD_LEN);
      held[i] = copy.subarray(i * RELAY_PAYLOAD_LEN, (i + 1) * RELAY_PAYLOAD_LEN);
    }
  }

  private breakRun(): RunStep {
    this.held = [];
    return RunStep.Broken;
  }

  /** SHA-256(C ‖ one payload at `offset`). */
  private hashOne(bytes: Uint8Array, offset: number): string {
    return this.hashSpan(bytes, offset, offset + RELAY_PAYLOAD_LEN, undefined);
  }

  /**
   * SHA-256(C ‖ held… ‖ bytes[from..to)) as one one-shot call over the
   * scratch buffer: copying a run (at most 16 payloads, 8 KB) costs less than
   * a Hash object's creation, updates and digest, which were most of a run's
   * hashing time.
   */
  private hashSpan(bytes: Uint8Array, from: number, to: number, held: readonly Uint8Array[] | undefined): string {
    const scratch = this.scratch;
    scratch.write(this.chain, 0, DIGEST_SEED_LEN, "latin1");
    let o = DIGEST_SEED_LEN;
    if (held) {
      for (const member of held) {
        scratch.set(member, o);
        o += member.length;
      }
    }
    scratch.set(from === 0 && to === bytes.length ? bytes : bytes.subarray(from, to), o);
    return sha256Latin1(scratch.subarray(0, o + to - from));
  }
}

/** Writes 4 bytes of a latin1 string (from char `at`) into `target` at `offset`. */
function writeLatin1(target: Uint8Array, offset: number, s: string, at: number): void {
  target[offset] = s.charCodeAt(at);
  target[offset + 1] = s.charCodeAt(at + 1);
  target[offset + 2] = s.charCodeAt(at + 2);
  target[offset + 3] = s.charCodeAt(at + 3);
}

/** Both directions of one hop. */
export interface HopCrypto {
  /** Client → relay: the client seals+encrypts, the relay decrypts+recognizes. */
  forward: RelayLayer;
  /** Relay → client: the relay seals+encrypts, the client decrypts+recognizes. */
  backward: RelayLayer;
}

/** Builds a hop's crypto from ntor key material (same call on client and relay). */
export function hopCryptoFromKeyMaterial(material: Uint8Array): HopCrypto {
  const k = splitHopKeys(material);
  return {
    forward: new RelayLayer(k.forwardKey, k.forwardDigestSeed),
    backward: new RelayLayer(k.backwardKey, k.backwardDigestSeed),
  };
}

import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isPspError } from "../../../node/src/errors.js";
import { CHANNEL_HEADER_LEN, CHANNEL_MAX_PLAINTEXT, CHANNEL_REORDER_WINDOW, createChannelRatchet, type ChannelRatchet } from "../../../node/src/presence/ratchet.js";

const seed = (byte = 7) => new Uint8Array(32).fill(byte);
const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

function pair(keySeed = seed(), reorderWindow?: number): { a: ChannelRatchet; b: ChannelRatchet } {
  const opts = reorderWindow === undefined ? {} : { reorderWindow };
  return { a: createChannelRatchet({ keySeed, role: "initiator", ...opts }), b: createChannelRatchet({ keySeed, role: "responder", ...opts }) };
}

function kind(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isPspError(err)) return err.kind;
    throw err;
  }
  return "no error";
}

interface RatchetVector {
  keySeed: string;
  frames: { from: "initiator" | "responder"; plaintext: string; frame: string }[];
}
const vector = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "vectors", "channel-ratchet.json"), "utf8")) as RatchetVector;

describe("channel ratchet", () => {
  it("reproduces the frozen frames byte for byte, and opens them", () => {
    const keySeed = Uint8Array.from(Buffer.from(vector.keySeed, "hex"));
    const ends = { initiator: createChannelRatchet({ keySeed, role: "initiator" }), responder: createChannelRatchet({ keySeed, role: "responder" }) };
    const peers = { initiator: createChannelRatchet({ keySeed, role: "responder" }), responder: createChannelRatchet({ keySeed, role: "initiator" }) };
    for (const f of vector.frames) {
      expect(Buffer.from(ends[f.from].seal(text(f.plaintext))).toString("hex")).toBe(f.frame);
      expect(str(peers[f.from].open(Uint8Array.from(Buffer.from(f.frame, "hex"))).plaintext)).toBe(f.plaintext);
    }
  });

  it("carries messages both ways, each under a fresh key", () => {
    const { a, b } = pair();
    const f1 = a.seal(text("hello"));
    const f2 = a.seal(text("hello"));
    // Same plaintext, different keys: the frames share nothing past the header's version byte.
    expect(Buffer.from(f1.subarray(CHANNEL_HEADER_LEN)).equals(Buffer.from(f2.subarray(CHANNEL_HEADER_LEN)))).toBe(false);
    expect(str(b.open(f1).plaintext)).toBe("hello");
    expect(b.open(f2).counter).toBe(1);
    expect(str(a.open(b.seal(text("back"))).plaintext)).toBe("back");
    expect(a.stats()).toEqual({ sent: 2, nextExpected: 1, skippedKeys: 0 });
  });

  it("refuses a frame sent back to its sender, and frames of another channel", () => {
    const { a, b } = pair();
    const frame = a.seal(text("mine"));
    expect(kind(() => a.open(frame))).toBe("channel-auth-failed");
    const other = pair(seed(9));
    expect(kind(() => other.b.open(frame))).toBe("channel-auth-failed");
    expect(str(b.open(frame).plaintext)).toBe("mine");
  });

  it("accepts reordered frames within the window, each once", () => {
    const { a, b } = pair();
    const frames = [0, 1, 2, 3, 4].map((i) => a.seal(text(`m${i}`)));
    expect(str(b.open(frames[3]!).plaintext)).toBe("m3");
    expect(b.stats().skippedKeys).toBe(3);
    expect(str(b.open(frames[1]!).plaintext)).toBe("m1");
    expect(str(b.open(frames[0]!).plaintext)).toBe("m0");
    expect(kind(() => b.open(frames[1]!))).toBe("channel-replayed");
    expect(kind(() => b.open(frames[3]!))).toBe("channel-replayed");
    expect(str(b.open(frames[4]!).plaintext)).toBe("m4");
    expect(str(b.open(frames[2]!).plaintext)).toBe("m2");
    expect(b.stats().skippedKeys).toBe(0);
  });

  it("refuses a frame too far ahead, and drops keys that fall out of the window", () => {
    const { a, b } = pair(seed(), 4);
    const frames = Array.from({ length: 12 }, (_, i) => a.seal(text(`m${i}`)));
    expect(kind(() => b.open(frames[5]!))).toBe("channel-too-far-ahead");
    expect(str(b.open(frames[4]!).plaintext)).toBe("m4");
    expect(str(b.open(frames[8]!).plaintext)).toBe("m8");
    // 0..3 were skipped first; the window (4 behind the next expected, 9) keeps 5..7 only.
    expect(kind(() => b.open(frames[3]!))).toBe("channel-replayed");
    expect(str(b.open(frames[6]!).plaintext)).toBe("m6");
    expect(b.stats().skippedKeys).toBeLessThanOrEqual(4);
  });

  it("leaves its state untouched by a refused frame", () => {
    const { a, b } = pair();
    const good = a.seal(text("after"));
    const tampered = good.slice();
    tampered[tampered.length - 1]! ^= 1;
    const before = b.stats();
    expect(kind(() => b.open(tampered))).toBe("channel-auth-failed");
    const forged = good.slice();
    forged[2] = 1; // counter 65,536: far beyond the window
    expect(kind(() => b.open(forged))).toBe("channel-too-far-ahead");
    const shifted = good.slice();
    shifted[4] = 3; // a valid-looking counter with the wrong key: must not skip 0..2
    expect(kind(() => b.open(shifted))).toBe("channel-auth-failed");
    expect(b.stats()).toEqual(before);
    expect(str(b.open(good).plaintext)).toBe("after");
  });

  it("keeps no key that opens a frame already received (forward secrecy)", () => {
    const { a, b } = pair();
    const frames = [0, 1, 2].map((i) => a.seal(text(`m${i}`)));
    for (const f of frames) b.open(f);
    for (const f of frames) expect(kind(() => b.open(f))).toBe("channel-replayed");
    b.destroy();
    expect(kind(() => b.open(frames[0]!))).toBe("channel-exhausted");
    expect(kind(() => b.seal(text("x")))).toBe("channel-exhausted");
  });

  it("rejects bad arguments and malformed frames with typed errors", () => {
    expect(kind(() => createChannelRatchet({ keySeed: new Uint8Array(31), role: "initiator" }))).toBe("bad-argument");
    expect(kind(() => createChannelRatchet({ keySeed: seed(), role: "observer" as "initiator" }))).toBe("bad-argument");
    expect(kind(() => createChannelRatchet({ keySeed: seed(), role: "initiator", reorderWindow: -1 }))).toBe("bad-argument");
    const { a, b } = pair();
    expect(kind(() => a.seal(new Uint8Array(CHANNEL_MAX_PLAINTEXT + 1)))).toBe("bad-argument");
    expect(kind(() => b.open(new Uint8Array(3)))).toBe("channel-malformed");
    const frame = a.seal(text("v"));
    frame[0] = 2;
    expect(kind(() => b.open(frame))).toBe("channel-malformed");
  });

  it("delivers any order of frames within the window exactly once (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }).chain((n) => fc.tuple(fc.constant(n), fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }))),
        ([n, order]) => {
          const { a, b } = pair();
          const frames = Array.from({ length: n }, (_, i) => a.seal(text(`m${i}`)));
          const seen = order.map((i) => str(b.open(frames[i]!).plaintext));
          expect(seen).toEqual(order.map((i) => `m${i}`));
          for (const i of order) expect(kind(() => b.open(frames[i]!))).toBe("channel-replayed");
        },
      ),
      { numRuns: 200 },
    );
  });

  it("never opens random bytes, and keeps working after them (fuzz)", () => {
    const { a, b } = pair();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), (bytes) => {
        expect(["channel-malformed", "channel-auth-failed", "channel-replayed", "channel-too-far-ahead"]).toContain(kind(() => b.open(bytes)));
      }),
      { numRuns: 500 },
    );
    expect(b.stats().nextExpected).toBe(0);
    expect(str(b.open(a.seal(text("still here"))).plaintext)).toBe("still here");
    expect(CHANNEL_REORDER_WINDOW).toBeGreaterThan(0);
  });
});

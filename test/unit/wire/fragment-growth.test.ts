/**
 * The fragment reassembler holds what arrived, never the announced size
 * (issue 19: a first fragment announcing 64 KiB used to reserve 64 KiB).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FRAGMENT_HEADER_LEN, REASSEMBLY_INITIAL_BYTES, Reassembler, fragmentMessage } from "../../../node/src/wire/fragment.js";

const kindOf = (f: () => unknown): string | undefined => {
  try {
    f();
  } catch (err) {
    return (err as { kind?: string }).kind;
  }
  return undefined;
};

describe("Reassembler memory", () => {
  it("a first fragment announcing a large message holds only its own chunk", () => {
    const frags = fragmentMessage(new Uint8Array(64 * 1024).fill(3), 500);
    const r = new Reassembler({ maxMessageBytes: 64 * 1024 });
    expect(r.push(frags[0] as Uint8Array)).toBeUndefined();
    expect(r.announcedBytes).toBe(64 * 1024);
    expect(r.bytesBuffered).toBe(500 - FRAGMENT_HEADER_LEN);
    expect(r.bytesHeld).toBe(REASSEMBLY_INITIAL_BYTES);
    r.push(frags[1] as Uint8Array);
    expect(r.bytesBuffered).toBe(2 * (500 - FRAGMENT_HEADER_LEN));
  });

  it("grows by doubling up to the announced size and hands over that buffer whole", () => {
    const message = Uint8Array.from({ length: 20_000 }, (_, i) => i % 251);
    const r = new Reassembler({ maxMessageBytes: 64 * 1024 });
    const held: number[] = [];
    let out: Uint8Array | undefined;
    for (const f of fragmentMessage(message, 500)) {
      out = r.push(f);
      if (out === undefined) held.push(r.bytesHeld);
    }
    expect([...new Set(held)]).toEqual([4096, 8192, 16384, 20_000]);
    expect(out).toEqual(message);
    expect(out?.buffer.byteLength).toBe(20_000);
  });

  it("does not keep the caller's fragment buffers", () => {
    const frags = fragmentMessage(Uint8Array.from([1, 2, 3, 4, 5]), FRAGMENT_HEADER_LEN + 2);
    const r = new Reassembler({ maxMessageBytes: 10 });
    let out: Uint8Array | undefined;
    for (const f of frags) {
      out = r.push(f);
      f.fill(0); // the caller reuses its cell buffer
    }
    expect(Array.from(out as Uint8Array)).toEqual([1, 2, 3, 4, 5]);
  });

  it("refuses past its limit at the first fragment and drops state after any error", () => {
    const frags = fragmentMessage(new Uint8Array(1000), 256);
    const r = new Reassembler({ maxMessageBytes: 999 });
    expect(kindOf(() => r.push(frags[0] as Uint8Array))).toBe("message-too-large");
    expect([r.inProgress, r.bytesBuffered, r.announcedBytes]).toEqual([false, 0, undefined]);
    const overrun = fragmentMessage(new Uint8Array(10), 20)[0] as Uint8Array;
    overrun[5] = 4; // announce 4 bytes, carry 10
    expect(kindOf(() => r.push(overrun))).toBe("bad-fragment");
    expect(r.bytesBuffered).toBe(0);
  });

  it("randomized: held bytes never exceed what arrived, and any fragment stream ends in a message, undefined or a typed error", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constant(null)), { minLength: 1, maxLength: 12 }),
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 80 }), { maxLength: 10 }),
        fc.integer({ min: FRAGMENT_HEADER_LEN + 1, max: 120 }),
        fc.integer({ min: 0, max: 400 }),
        (messages, garbage, maxChunk, maxMessageBytes) => {
          const r = new Reassembler({ maxMessageBytes });
          const stream: Uint8Array[] = [];
          for (const m of messages) stream.push(...(m === null ? garbage : fragmentMessage(m, maxChunk)));
          let arrived = 0;
          for (const f of stream) {
            const before = r.bytesBuffered;
            try {
              const out = r.push(f);
              if (out !== undefined) {
                expect(out.length).toBeLessThanOrEqual(maxMessageBytes);
                expect(r.bytesBuffered).toBe(0);
                arrived = 0;
              } else {
                arrived += Math.max(0, f.length - FRAGMENT_HEADER_LEN);
                expect(r.bytesBuffered).toBe(before + f.length - FRAGMENT_HEADER_LEN);
                expect(r.bytesBuffered).toBeLessThanOrEqual(Math.min(arrived, maxMessageBytes));
                expect(r.bytesHeld).toBeLessThanOrEqual(Math.min(Math.max(2 * r.bytesBuffered, REASSEMBLY_INITIAL_BYTES), r.announcedBytes ?? 0));
              }
            } catch (err) {
              expect(["message-too-large", "out-of-order", "bad-fragment"]).toContain((err as { kind?: string }).kind);
              expect(r.bytesBuffered).toBe(0);
              arrived = 0;
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

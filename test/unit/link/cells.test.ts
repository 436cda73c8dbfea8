import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AUTH_METHOD_ANONYMOUS,
  AUTH_METHOD_ED25519_EKM,
  CellFramer,
  MAX_CLOSE_MESSAGE_LEN,
  encodeAuthPayload,
  encodeClosePayload,
  encodeVersionsBody,
  negotiateVersion,
  parseAuthPayload,
  parseClosePayload,
  parseVersionsPayload,
} from "../../../node/src/link/cells.js";
import { CloseReason, LinkError, closeReasonName } from "../../../node/src/link/errors.js";
import { CELL_LEN, CELL_PAYLOAD_LEN } from "../../../node/src/wire/cell.js";

function padded(body: Uint8Array): Uint8Array {
  const p = new Uint8Array(CELL_PAYLOAD_LEN);
  p.set(body);
  return p;
}

describe("VERSIONS body", () => {
  it("round-trips and negotiates the highest common version", () => {
    const body = encodeVersionsBody([3, 1, 2]);
    expect([...body]).toEqual([3, 0, 3, 0, 1, 0, 2]);
    const parsed = parseVersionsPayload(padded(body));
    expect(parsed).not.toBeInstanceOf(LinkError);
    expect((parsed as { versions: number[] }).versions).toEqual([3, 1, 2]);
    expect(negotiateVersion([1, 2], [3, 2, 1])).toBe(2);
    expect(negotiateVersion([1], [2, 3])).toBeUndefined();
  });

  it("rejects empty, oversized, zero and repeated lists with kind protocol", () => {
    for (const body of [[0], [65], [2, 0, 1, 0, 1], [1, 0, 0]]) {
      const r = parseVersionsPayload(padded(Uint8Array.from(body)));
      expect(r).toBeInstanceOf(LinkError);
      expect((r as LinkError).kind).toBe("protocol");
    }
    expect(() => encodeVersionsBody([])).toThrow(LinkError);
    expect(() => encodeVersionsBody([1, 1])).toThrow(/distinct/);
  });
});

describe("AUTH body", () => {
  it("round-trips both methods and rejects unknown ones", () => {
    const identity = new Uint8Array(32).fill(5);
    const signature = new Uint8Array(64).fill(9);
    const parsed = parseAuthPayload(padded(encodeAuthPayload({ method: AUTH_METHOD_ED25519_EKM, identity, signature })));
    expect(parsed).toEqual({ method: AUTH_METHOD_ED25519_EKM, identity, signature });
    expect(parseAuthPayload(padded(encodeAuthPayload({ method: AUTH_METHOD_ANONYMOUS })))).toEqual({ method: 0 });
    const bad = parseAuthPayload(padded(Uint8Array.of(7)));
    expect((bad as LinkError).kind).toBe("protocol");
  });
});

describe("CLOSE body", () => {
  it("round-trips reason and message, truncating long text on a character boundary", () => {
    expect(parseClosePayload(padded(encodeClosePayload(CloseReason.IDLE, "bye")))).toEqual({ reason: 8, message: "bye" });
    const long = "é".repeat(400); // 800 UTF-8 bytes
    const parsed = parseClosePayload(padded(encodeClosePayload(CloseReason.PROTOCOL_VIOLATION, long)));
    expect(parsed.message.length).toBe(Math.floor(MAX_CLOSE_MESSAGE_LEN / 2));
    expect(parsed.message).not.toContain("\uFFFD");
    expect(closeReasonName(200)).toBe("UNKNOWN_REASON_200");
  });

  it("never throws on arbitrary payloads", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: CELL_PAYLOAD_LEN }), (payload) => {
        const r = parseClosePayload(payload);
        expect(typeof r.reason).toBe("number");
        expect(typeof r.message).toBe("string");
      }),
      { numRuns: 1000 },
    );
  });
});

describe("CellFramer", () => {
  it("yields the same cells however the stream is split", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: CELL_LEN - 1 }),
        fc.array(fc.integer({ min: 1, max: 3 * CELL_LEN }), { minLength: 1, maxLength: 20 }),
        (cells, tail, cuts) => {
          const stream = new Uint8Array(cells * CELL_LEN + tail);
          for (let i = 0; i < stream.length; i++) stream[i] = (i * 31 + (i >> 9)) & 0xff;
          const framer = new CellFramer();
          const seen: string[] = [];
          let at = 0;
          let cut = 0;
          while (at < stream.length) {
            const len = Math.min(cuts[cut++ % cuts.length] as number, stream.length - at);
            framer.push(stream.subarray(at, at + len), (bytes, offset) => {
              seen.push(Buffer.from(bytes.subarray(offset, offset + CELL_LEN)).toString("hex"));
              return true;
            });
            at += len;
          }
          expect(seen.length).toBe(cells);
          for (let i = 0; i < cells; i++) {
            expect(seen[i]).toBe(Buffer.from(stream.subarray(i * CELL_LEN, (i + 1) * CELL_LEN)).toString("hex"));
          }
          expect(framer.bufferedBytes).toBe(tail);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("stops when told to and hands back every unread byte", () => {
    const stream = new Uint8Array(3 * CELL_LEN + 100).map((_, i) => i & 0xff);
    const framer = new CellFramer();
    let n = 0;
    const kept = framer.push(stream, () => ++n < 2);
    expect(kept).toBe(false);
    expect(n).toBe(2);
    const rest = framer.takeRemainder();
    expect(rest.length).toBe(CELL_LEN + 100);
    expect(rest[0]).toBe((2 * CELL_LEN) & 0xff);
  });

  it("never copies a cell that sits whole in one chunk, and never reuses a split cell's buffer", () => {
    const stream = new Uint8Array(2 * CELL_LEN).fill(1);
    const framer = new CellFramer();
    const views: Uint8Array[] = [];
    framer.push(stream, (bytes) => (views.push(bytes), true));
    expect(views[0]).toBe(stream);
    const split: Uint8Array[] = [];
    framer.push(new Uint8Array(300).fill(2), () => true);
    framer.push(new Uint8Array(CELL_LEN).fill(3), (bytes) => (split.push(bytes), true));
    framer.push(new Uint8Array(CELL_LEN - 212 + 300).fill(4), (bytes) => (split.push(bytes), true));
    expect(split.length).toBe(2);
    expect(split[0]?.[0]).toBe(2); // still the first split cell's bytes after the second one
    expect(split[0]).not.toBe(split[1]);
  });
});

/**
 * Fuzz properties of the media path's decoders (node/src/stream/frames.ts,
 * ticket.ts, creation.ts, crypto.ts): fed random bytes or mutations of a
 * valid encoding, each either decodes or throws StreamMediaError (never
 * another error, never a hang); what decodes re-encodes to the same bytes;
 * a mutated sealed chunk never opens. Run briefly by
 * test/unit/stream-media-fuzz.test.ts.
 */
import fc from "fast-check";
import { StreamCipher } from "../../node/src/stream/crypto.js";
import { decodeCreateRequest, encodeCreateRequest } from "../../node/src/stream/creation.js";
import { encodeFrame, FrameReader } from "../../node/src/stream/frames.js";
import type { StreamFrame } from "../../node/src/stream/frames.js";
import { StreamMediaError } from "../../node/src/stream/media-errors.js";
import { decodeTicket, encodeTicket } from "../../node/src/stream/ticket.js";
import { bytesOr, check, mutate, target, typedOnly, type FuzzTarget } from "./common.js";

const fill = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);
const frames: StreamFrame[] = [
  { type: "node-proof", identity: fill(32, 1), signature: fill(64, 2) },
  { type: "attach", streamId: fill(16, 3), session: fill(120, 4) },
  { type: "refuse", kind: "bad-session", text: "expired" },
  { type: "chunk", seq: 77n, sealed: fill(300, 5) },
  { type: "points", points: [{ identity: fill(32, 6), host: "127.0.0.1", port: 7000, load: 2 }] },
  { type: "add-nodes", nodes: [{ identity: fill(32, 7), host: "h.example", port: 1, load: 0 }] },
  { type: "load", viewers: 3, spareKbps: 100 },
];
const sample = Buffer.concat(frames.map(encodeFrame));
const ticket = encodeTicket({ streamId: fill(16, 1), streamKey: fill(32, 2), landing: fill(32, 3), host: "127.0.0.1", port: 7001 });
const request = encodeCreateRequest({
  receipt: fill(200, 1),
  kbps: 2000,
  durationS: 60,
  public: true,
  distribution: [{ identity: fill(32, 2), host: "h", port: 5, load: 0 }],
});
const cipher = new StreamCipher(fill(16, 9), fill(32, 8));
const sealed = cipher.seal(5n, fill(500, 1), 1000);

export const streamMediaTargets: FuzzTarget[] = [
  target("stream frames: a byte stream decodes to frames that re-encode exactly, or fails typed", () =>
    fc.property(bytesOr(sample, 2048), fc.integer({ min: 1, max: 64 }), (bytes, step) => {
      const reader = new FrameReader();
      const out: StreamFrame[] = [];
      const kind = typedOnly([StreamMediaError], () => {
        for (let i = 0; i < bytes.length; i += step) out.push(...reader.push(bytes.subarray(i, i + step)));
      });
      if (kind === undefined) {
        const again = Buffer.concat(out.map(encodeFrame));
        check(again.equals(Buffer.from(bytes.subarray(0, again.length))), "decoded frames do not re-encode to their bytes");
      } else check(kind === "malformed" || kind === "oversized", `unexpected kind ${kind}`);
    }),
  ),
  target("stream tickets: a mutated ticket is refused bad-ticket or decodes to one that re-encodes exactly", () =>
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 200 }),
        mutate(new TextEncoder().encode(ticket)).map((b) => Buffer.from(b).toString("latin1")),
      ),
      (text) => {
        let decoded;
        const kind = typedOnly([StreamMediaError], () => (decoded = decodeTicket(text)));
        if (kind === undefined) check(encodeTicket(decoded!) === text.trim(), "a decoded ticket does not re-encode to itself");
        else check(kind === "bad-ticket", `unexpected kind ${kind}`);
      },
    ),
  ),
  target("stream creation requests: decode or fail malformed", () =>
    fc.property(bytesOr(request, 600), (bytes) => {
      const kind = typedOnly([StreamMediaError], () => decodeCreateRequest(bytes));
      check(kind === undefined || kind === "malformed", `unexpected kind ${String(kind)}`);
    }),
  ),
  target("sealed chunks: a mutated chunk or another seq never opens", () =>
    fc.property(mutate(sealed), fc.bigInt({ min: 0n, max: 1n << 20n }), (bytes, seq) => {
      // Edits can cancel out (an insert then a delete, one byte flipped twice): only a changed chunk must fail.
      if (!Buffer.from(bytes).equals(Buffer.from(sealed))) {
        const kind = typedOnly([StreamMediaError], () => cipher.open(5n, bytes));
        check(kind === "chunk-auth-failed", "a mutated chunk opened");
      }
      if (seq !== 5n) check(typedOnly([StreamMediaError], () => cipher.open(seq, sealed)) === "chunk-auth-failed", "a chunk opened at another seq");
    }),
  ),
];

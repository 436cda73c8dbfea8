/**
 * The page player's pure parts (dashboard/src/player/: ticket.ts, chunk.ts)
 * against the node's own implementation (node/src/stream/ticket.ts,
 * crypto.ts) and the gateway's framing (node/src/api/stream-gateway.ts).
 * Both read the formats through node/src/stream/media-format.ts and
 * base/base64url.ts; the primitives differ (@noble in the page,
 * node:crypto in the node).
 *
 * Proves: a ticket the node encodes decodes in the page to the same fields,
 * and tickets the node refuses (mistyped, cut, non-canonical ending, bad
 * checksum) the page refuses too, "bad-ticket"; chunks the node seals open
 * in the page to the same time and media, across an epoch boundary (seq
 * 65,535 → 65,536) and at the largest seq, with the page's epoch keys equal
 * to the node's; a chunk from another stream or another position, sealed
 * under another key, or altered in any byte does not open
 * ("chunk-auth-failed"); a gateway message the gateway frames parses back to
 * its seq and sealed bytes; and, fuzzed, random or mutated tickets, gateway
 * messages and sealed chunks only ever fail with PlayerError, and tickets
 * are refused, in the node and the page, exactly when an independent
 * reading of the layout (Buffer and node:crypto) refuses them. The
 * base64url codec matches Buffer's and refuses the non-canonical texts
 * Buffer would accept.
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ChunkOpener, pageEpochKey, parseGatewayChunk } from "../../dashboard/src/player/chunk.js";
import { PlayerError } from "../../dashboard/src/player/errors.js";
import { decodePageTicket } from "../../dashboard/src/player/ticket.js";
import { gatewayChunkMessage } from "../../node/src/api/stream-gateway.js";
import { base64UrlDecode, base64UrlEncode } from "../../node/src/base/base64url.js";
import { epochKey, generateStreamId, generateStreamKey, StreamCipher } from "../../node/src/stream/crypto.js";
import { StreamMediaError } from "../../node/src/stream/media-errors.js";
import { decodeTicket, encodeTicket } from "../../node/src/stream/ticket.js";
import type { StreamTicket } from "../../node/src/stream/ticket.js";
import { check, mutate, target, typedOnly } from "../properties/common.js";
import { fuzzTests } from "../properties/vitest.js";

const fill = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);
const kindOf = (fn: () => unknown): string | undefined => typedOnly([PlayerError], fn);

const streamId = generateStreamId();
const streamKey = generateStreamKey();
const cipher = new StreamCipher(streamId, streamKey);
const opener = new ChunkOpener(streamId, streamKey);

describe("page ticket decoding matches the node's", () => {
  it("decodes what the node encodes, host and port included", () => {
    for (const host of ["127.0.0.1", "relay.example.org", "::1", "héte.example"]) {
      const fields = { streamId, streamKey, landing: fill(32, 7), host, port: 65535 };
      const page = decodePageTicket(`  ${encodeTicket(fields)}\n`);
      expect(page).toEqual({ ...fields });
    }
  });

  it("refuses what the node refuses: wrong prefix, foreign characters, cut, bad ending, bad checksum", () => {
    const good = encodeTicket({ streamId, streamKey, landing: fill(32, 1), host: "h", port: 7000 });
    const body = good.slice("pspstream1:".length);
    const lastIndex = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".indexOf(body.at(-1) as string);
    const bads = [
      "pspstream2:" + body,
      good.replace(/.$/, "+"),
      good.slice(0, -6),
      // The same bytes with trailing bits set: a decoder would ignore them, the ticket reader must not.
      good.slice(0, -1) + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[lastIndex ^ 1],
      good.slice(0, 20) + (good[20] === "A" ? "B" : "A") + good.slice(21),
      "",
    ];
    for (const bad of bads) {
      expect(() => decodeTicket(bad), bad).toThrow(StreamMediaError);
      expect(
        kindOf(() => decodePageTicket(bad)),
        bad,
      ).toBe("bad-ticket");
    }
  });

  it("base64url round-trips every length, and refuses the texts a lenient decoder would accept", () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
      const text = Buffer.from(bytes).toString("base64url");
      expect(base64UrlEncode(bytes)).toBe(text);
      expect(base64UrlDecode(text)).toEqual(bytes);
      // Padding, a character outside the alphabet, or (after a whole group) a dangling sixth character.
      const bads = [text + "=", text + "+", "/" + text];
      if (text.length % 4 === 0) bads.push(text + "A");
      for (const bad of bads) expect(base64UrlDecode(bad), bad).toBeUndefined();
      if (n % 3 !== 0) {
        // The last character with its low (unused) bit set: Buffer decodes it to the same bytes, this decoder refuses it.
        const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const mangled = text.slice(0, -1) + alphabet[alphabet.indexOf(text.at(-1) as string) | 1];
        expect(new Uint8Array(Buffer.from(mangled, "base64url"))).toEqual(bytes);
        expect(base64UrlDecode(mangled), mangled).toBeUndefined();
      }
    }
  });
});

describe("page chunk opening matches the node's sealing", () => {
  it("opens node-sealed chunks to the same time and media, across an epoch boundary and at the largest seq", () => {
    for (const seq of [0n, 1n, 65535n, 65536n, 1n << 40n, 0xffffffffffffffffn]) {
      const media = Uint8Array.from({ length: 188 * 3 }, (_, i) => (i + Number(seq & 0xffn)) & 0xff);
      const opened = opener.open(seq, cipher.seal(seq, media, 1_700_000_000_123));
      expect(opened.seq).toBe(seq);
      expect(opened.producedAt).toBe(1_700_000_000_123);
      expect(opened.media).toEqual(media);
    }
  });

  it("derives the node's epoch keys", () => {
    for (const epoch of [0, 1, 0xffff, 0xffffffff]) expect(pageEpochKey(streamKey, streamId, epoch)).toEqual(epochKey(streamKey, streamId, epoch));
  });

  it("a chunk of another stream, another position, another key, or altered does not open", () => {
    const sealed = cipher.seal(42n, fill(1000, 9), 5);
    expect(kindOf(() => new ChunkOpener(generateStreamId(), streamKey).open(42n, sealed))).toBe("chunk-auth-failed");
    expect(kindOf(() => opener.open(43n, sealed))).toBe("chunk-auth-failed");
    expect(kindOf(() => opener.open(42n + 65536n, sealed))).toBe("chunk-auth-failed");
    expect(kindOf(() => new ChunkOpener(streamId, generateStreamKey()).open(42n, sealed))).toBe("chunk-auth-failed");
    for (const at of [0, 7, 8, 500, sealed.length - 17, sealed.length - 1]) {
      const tampered = sealed.slice();
      tampered[at] = (tampered[at] as number) ^ 0x01;
      expect(
        kindOf(() => opener.open(42n, tampered)),
        `byte ${at}`,
      ).toBe("chunk-auth-failed");
    }
    expect(kindOf(() => opener.open(42n, sealed.subarray(0, 23)))).toBe("chunk-auth-failed");
    expect(opener.open(42n, sealed).media).toEqual(fill(1000, 9));
  });
});

describe("gateway framing", () => {
  it("parses what the gateway frames: seq (8, big-endian) ‖ sealed", () => {
    const sealed = cipher.seal(300n, fill(50, 1), 9);
    const message = gatewayChunkMessage({ seq: 300n, sealed });
    expect(message.subarray(0, 8)).toEqual(Buffer.from("000000000000012c", "hex"));
    const parsed = parseGatewayChunk(new Uint8Array(message));
    expect(parsed.seq).toBe(300n);
    expect(parsed.sealed).toEqual(sealed);
    expect(opener.open(parsed.seq, parsed.sealed).media).toEqual(fill(50, 1));
  });

  it("refuses messages too short or too long to be a chunk", () => {
    for (const n of [0, 7, 8, 31]) expect(kindOf(() => parseGatewayChunk(new Uint8Array(n)))).toBe("malformed");
    expect(kindOf(() => parseGatewayChunk(new Uint8Array(8 + 65528)))).toBe("malformed");
    expect(kindOf(() => parseGatewayChunk(new Uint8Array(8 + 65527)))).toBeUndefined();
  });
});

const ticket = encodeTicket({ streamId, streamKey, landing: fill(32, 3), host: "127.0.0.1", port: 7001 });

/**
 * The ticket layout read independently of node/src/stream/media-format.ts (Buffer's base64url, node:crypto's
 * SHA-256, docs/spec/streaming.md "Tickets"): the oracle the shared reader is fuzzed against. Undefined for a
 * ticket no producer writes.
 */
function referenceTicket(text: string): StreamTicket | undefined {
  const body = text.trim().startsWith("pspstream1:") ? text.trim().slice("pspstream1:".length) : "";
  if (!/^[A-Za-z0-9_-]+$/.test(body)) return undefined;
  const bytes = Buffer.from(body, "base64url");
  if (bytes.toString("base64url") !== body || bytes.length < 84 + 4) return undefined;
  const payload = bytes.subarray(0, -4);
  const sum = createHash("sha256").update("psp-ticket-v1").update(payload).digest().subarray(0, 4);
  if (!sum.equals(bytes.subarray(-4)) || payload[0] !== 1 || payload.length !== 84 + (payload[83] as number)) return undefined;
  const port = payload.readUInt16BE(81);
  if (port === 0) return undefined;
  let host: string;
  try {
    host = new TextDecoder("utf-8", { fatal: true }).decode(payload.subarray(84));
  } catch {
    return undefined;
  }
  const part = (from: number, to: number): Uint8Array => new Uint8Array(payload.subarray(from, to));
  return { streamId: part(1, 17), streamKey: part(17, 49), landing: part(49, 81), host, port };
}
const sample = gatewayChunkMessage({ seq: 7n, sealed: cipher.seal(7n, fill(400, 2), 1) });

describe("page player decoders under fuzz", () => {
  fuzzTests([
    target(
      "tickets: a random or mutated ticket fails bad-ticket, in the node and in the page, exactly when an independent reading refuses it, else decodes to its fields",
      () =>
        fc.property(
          fc.oneof(
            fc.string({ maxLength: 200 }),
            mutate(new TextEncoder().encode(ticket)).map((b) => Buffer.from(b).toString("latin1")),
          ),
          (text) => {
            const expected = referenceTicket(text);
            let node: StreamTicket | undefined;
            let nodeKind: string | undefined;
            try {
              node = decodeTicket(text);
            } catch (err) {
              check(err instanceof StreamMediaError, "the node's decoder threw an untyped error");
              nodeKind = (err as StreamMediaError).kind;
            }
            let page: StreamTicket | undefined;
            const pageKind = kindOf(() => (page = decodePageTicket(text)));
            if (expected === undefined) {
              check(nodeKind === "bad-ticket" && pageKind === "bad-ticket", `a ticket no producer writes was not refused (node ${nodeKind}, page ${pageKind})`);
            } else {
              const want = JSON.stringify(expected);
              check(JSON.stringify(node) === want && JSON.stringify(page) === want, "a valid ticket decoded to other fields");
            }
          },
        ),
    ),
    target("gateway messages and sealed chunks: random or mutated bytes fail typed, and a mutated chunk never opens", () =>
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), mutate(sample)), (bytes) => {
        let parsed: ReturnType<typeof parseGatewayChunk> | undefined;
        const kind = kindOf(() => (parsed = parseGatewayChunk(bytes)));
        if (kind !== undefined) return check(kind === "malformed", `unexpected kind ${kind}`);
        const opened = kindOf(() => opener.open(parsed!.seq, parsed!.sealed));
        const unchanged = Buffer.from(bytes).equals(sample);
        check(unchanged ? opened === undefined : opened === "chunk-auth-failed", `a ${unchanged ? "valid" : "mutated"} chunk gave ${opened}`);
      }),
    ),
  ]);
});

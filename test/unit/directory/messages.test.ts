import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { encodeCanonical } from "../../../node/src/wire/canonical.js";
import { DirectoryError } from "../../../node/src/directory/errors.js";
import { decodeDirectoryRequest, decodeDirectoryResponse, encodeDirectoryRequest, encodeDirectoryResponse, errorResponse } from "../../../node/src/directory/messages.js";
import type { DirectoryRequest, DirectoryResponse } from "../../../node/src/directory/messages.js";
import { answerFetchConsensus } from "../../../node/src/directory/client.js";
import { sha256 } from "../../../node/src/crypto/kdf.js";
import { kindOf as anyKindOf } from "../../helpers/index.js";

const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill);

const kindOf = (fn: () => unknown) => anyKindOf(fn, DirectoryError);

describe("directory messages", () => {
  it("round-trips every request and answer", () => {
    const requests: DirectoryRequest[] = [
      { type: "publish-descriptor", descriptor: bytes(300) },
      { type: "fetch-consensus", compressed: true },
      { type: "fetch-consensus", compressed: false, ifNoneMatch: bytes(32, 1) },
      { type: "fetch-votes", validAfter: 1_700_000_000_000 },
      { type: "fetch-votes", validAfter: 5, voters: [bytes(32, 2), bytes(32, 3)] },
      { type: "push-vote", vote: bytes(1000) },
      { type: "push-signature", signature: bytes(200) },
    ];
    for (const r of requests) expect(decodeDirectoryRequest(encodeDirectoryRequest(r))).toEqual(r);
    const responses: DirectoryResponse[] = [
      { type: "ok", accepted: false },
      { type: "consensus", compressed: true, document: bytes(5000) },
      { type: "not-modified" },
      { type: "no-consensus" },
      { type: "votes", votes: [bytes(10), bytes(20)] },
      { type: "error", kind: "under-signed", message: "1 of 2" },
    ];
    for (const r of responses) expect(decodeDirectoryResponse(encodeDirectoryResponse(r))).toEqual(r);
  });

  it("refuses unknown types, extra fields, oversized documents and wrong shapes with typed kinds", () => {
    expect(kindOf(() => decodeDirectoryRequest(encodeCanonical({ t: "nope" })))).toBe("malformed");
    expect(kindOf(() => decodeDirectoryRequest(encodeCanonical({ t: "cons", br: true, x: 1 })))).toBe("malformed");
    expect(kindOf(() => decodeDirectoryRequest(encodeCanonical({ t: "cons", br: 1 })))).toBe("malformed");
    expect(kindOf(() => decodeDirectoryRequest(encodeCanonical({ t: "cons", br: true, inm: bytes(31) })))).toBe("malformed");
    expect(kindOf(() => decodeDirectoryRequest(encodeCanonical({ t: "desc", doc: bytes(2049) })))).toBe("too-large");
    expect(kindOf(() => decodeDirectoryRequest(encodeCanonical({ t: "votes", va: -1 })))).toBe("malformed");
    expect(kindOf(() => decodeDirectoryRequest(encodeCanonical({ t: "votes", va: 1, voters: [] })))).toBe("malformed");
    expect(kindOf(() => decodeDirectoryResponse(encodeCanonical({ t: "err", kind: "pwned", msg: "" })))).toBe("malformed");
    expect(kindOf(() => decodeDirectoryResponse(new Uint8Array([0xff])))).toBe("malformed");
    expect(kindOf(() => decodeDirectoryResponse(bytes(100), 50))).toBe("too-large");
  });

  it("never throws anything but DirectoryError on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (input) => {
        for (const decode of [decodeDirectoryRequest, (b: Uint8Array) => decodeDirectoryResponse(b)]) {
          try {
            decode(input);
          } catch (err) {
            expect(err).toBeInstanceOf(DirectoryError);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it("error answers keep DirectoryError kinds and hide other internals", () => {
    expect(errorResponse(new DirectoryError("stale", "old"))).toEqual({ type: "error", kind: "stale", message: "old" });
    expect(errorResponse(new TypeError("secret path /x"))).toEqual({ type: "error", kind: "malformed", message: "request could not be processed" });
  });

  it("answers fetch-consensus: none, full, compressed, not-modified", () => {
    const doc = bytes(64, 9);
    const source = { serve: () => doc, serveCompressed: () => bytes(10, 1) };
    expect(answerFetchConsensus({ serve: () => undefined, serveCompressed: () => undefined }, { type: "fetch-consensus", compressed: true }, 0)).toEqual({ type: "no-consensus" });
    expect(answerFetchConsensus(source, { type: "fetch-consensus", compressed: false }, 0)).toEqual({ type: "consensus", compressed: false, document: doc });
    expect(answerFetchConsensus(source, { type: "fetch-consensus", compressed: true }, 0)).toMatchObject({ type: "consensus", compressed: true });
    expect(answerFetchConsensus(source, { type: "fetch-consensus", compressed: true, ifNoneMatch: sha256(doc) }, 0)).toEqual({ type: "not-modified" });
    expect(answerFetchConsensus(source, { type: "fetch-consensus", compressed: true, ifNoneMatch: bytes(32) }, 0).type).toBe("consensus");
  });
});

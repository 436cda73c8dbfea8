import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { decodeCanonical, encodeCanonical } from "../../../node/src/wire/canonical.js";
import { documentSigningMessage, openDocument, signDocument } from "../../../node/src/wire/document.js";
import { WireError } from "../../../node/src/wire/errors.js";
import { canonicalValue } from "../../properties/wire.js";
import { kindOf } from "../../helpers/index.js";

const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));

const wireKind = (fn: () => unknown) => kindOf(fn, WireError);

describe("canonical CBOR", () => {
  it("sorts keys bytewise (RFC 8949), uses shortest ints and floats, omits undefined properties", () => {
    expect(toHex(encodeCanonical({ b: 1, a: 2, aa: 3, u: undefined }))).toBe("a3616102616201626161" + "03");
    expect(toHex(encodeCanonical(1.5))).toBe("f93e00");
    expect(toHex(encodeCanonical(0.1))).toBe("fb3fb999999999999a");
    expect(toHex(encodeCanonical(24))).toBe("1818");
    expect(toHex(encodeCanonical(2n ** 60n))).toBe("1b1000000000000000");
  });

  it("round-trips every value in the data model, byte-identically", () => {
    fc.assert(
      fc.property(canonicalValue, (value) => {
        const bytes = encodeCanonical(value);
        const back = decodeCanonical(bytes, { maxBytes: 1 << 20 });
        expect(toHex(encodeCanonical(back))).toBe(toHex(bytes));
      }),
      { numRuns: 1500 },
    );
  });

  it("returns plain Uint8Array copies for byte strings, also from Buffer input", () => {
    const input = Buffer.from(encodeCanonical({ k: Uint8Array.of(1, 2, 3) }));
    const out = decodeCanonical(input, { maxBytes: 100 }) as { k: Uint8Array };
    expect(Object.getPrototypeOf(out.k)).toBe(Uint8Array.prototype);
    expect(Object.getPrototypeOf(encodeCanonical(1))).toBe(Uint8Array.prototype);
    input.fill(0);
    expect([...out.k]).toEqual([1, 2, 3]);
  });

  it("refuses values outside the data model with unencodable", () => {
    for (const bad of [undefined, [undefined], NaN, Infinity, 2 ** 60, 2n ** 64n, new Map(), new Date(0), () => 1, Symbol("x"), new Uint16Array(2)]) {
      expect(wireKind(() => encodeCanonical(bad))).toBe("unencodable");
    }
    const cyclic: Record<string, unknown> = {};
    cyclic["self"] = cyclic;
    expect(wireKind(() => encodeCanonical(cyclic))).toBe("unencodable");
  });

  it("refuses non-canonical and malformed encodings with specific kinds", () => {
    const cases: [string, string][] = [
      ["a2616201616102", "non-canonical"], // keys out of order
      ["f93c00", "non-canonical"], // 1.0 as a float
      ["fa3fc00000", "non-canonical"], // 1.5 as float32
      ["1817", "malformed"], // 23 in two bytes
      ["9f01ff", "malformed"], // indefinite array
      ["d82a01", "malformed"], // tag
      ["f7", "malformed"], // undefined
      ["a2616101616101", "malformed"], // duplicate key
      ["a10101", "malformed"], // integer key
      ["0102", "malformed"], // trailing bytes
      ["82 01".replace(" ", ""), "malformed"], // truncated array
      ["f97e00", "malformed"], // NaN
      ["62c328", "non-canonical"], // invalid UTF-8
    ];
    for (const [h, kind] of cases) expect([h, wireKind(() => decodeCanonical(hex(h), { maxBytes: 100 }))]).toEqual([h, kind]);
    expect(wireKind(() => decodeCanonical(new Uint8Array(0), { maxBytes: 100 }))).toBe("malformed");
    expect(wireKind(() => decodeCanonical(new Uint8Array(101), { maxBytes: 100 }))).toBe("too-large");
    expect(wireKind(() => decodeCanonical(hex("01"), { maxBytes: 0 }))).toBe("bad-field");
  });

  it("bounds nesting before recursing (no stack overflow on 100k-deep input)", () => {
    const deep = new Uint8Array(100_001).fill(0x81);
    deep[100_000] = 0x01;
    expect(wireKind(() => decodeCanonical(deep, { maxBytes: 1 << 20 }))).toBe("malformed");
    const ok = hex("8181818101");
    expect(decodeCanonical(ok, { maxBytes: 10, maxDepth: 4 })).toEqual([[[[1]]]]);
    expect(wireKind(() => decodeCanonical(ok, { maxBytes: 10, maxDepth: 3 }))).toBe("malformed");
  });
});

describe("signed documents", () => {
  const alice = generateEd25519KeyPair();
  const body = { node: "peerstream.node.node.x", bandwidth: 1_000_000, keys: [new Uint8Array(32).fill(1)], at: 1_700_000_000 };

  it("signs and opens; the signature covers domain, type and body", () => {
    const doc = signDocument({ type: "descriptor", body, secretKey: alice.secretKey });
    const opened = openDocument(doc, { type: "descriptor", maxBytes: 4096, signer: alice.publicKey });
    expect(opened.body).toEqual(body);
    expect(toHex(opened.signer)).toBe(toHex(alice.publicKey));
    expect(toHex(opened.bodyBytes)).toBe(toHex(encodeCanonical(body)));
    const msg = documentSigningMessage("descriptor", opened.bodyBytes);
    expect(new TextDecoder().decode(msg.subarray(0, 22))).toBe("psp-doc-v1\0descriptor\0");
  });

  it("reports too-large, wrong-type, bad-signature, malformed and non-canonical", () => {
    const doc = signDocument({ type: "descriptor", body, secretKey: alice.secretKey });
    expect(wireKind(() => openDocument(doc, { type: "descriptor", maxBytes: doc.length - 1 }))).toBe("too-large");
    expect(wireKind(() => openDocument(doc, { type: "consensus", maxBytes: 4096 }))).toBe("wrong-type");
    const bob = generateEd25519KeyPair();
    expect(wireKind(() => openDocument(doc, { type: "descriptor", maxBytes: 4096, signer: bob.publicKey }))).toBe("bad-signature");
    // Re-wrap: same fields, but claim Bob signed it.
    const env = decodeCanonical(doc, { maxBytes: 4096 }) as Record<string, Uint8Array | string | number>;
    expect(wireKind(() => openDocument(encodeCanonical({ ...env, signer: bob.publicKey }), { type: "descriptor", maxBytes: 4096 }))).toBe("bad-signature");
    // Change the type inside the envelope: the signature no longer matches.
    expect(wireKind(() => openDocument(encodeCanonical({ ...env, type: "vote" }), { type: "vote", maxBytes: 4096 }))).toBe("bad-signature");
    expect(wireKind(() => openDocument(encodeCanonical({ ...env, extra: 1 }), { type: "descriptor", maxBytes: 4096 }))).toBe("malformed");
    expect(wireKind(() => openDocument(encodeCanonical({ ...env, v: 2 }), { type: "descriptor", maxBytes: 4096 }))).toBe("malformed");
    expect(wireKind(() => openDocument(encodeCanonical([1, 2]), { type: "descriptor", maxBytes: 4096 }))).toBe("malformed");
    // A validly signed but non-canonical body is refused.
    const nonCanonicalBody = hex("a2616201616102");
    const sneaky = encodeCanonical({ ...env, body: nonCanonicalBody });
    expect(wireKind(() => openDocument(sneaky, { type: "descriptor", maxBytes: 4096 }))).toBe("non-canonical");
    expect(wireKind(() => signDocument({ type: "Bad Type", body, secretKey: alice.secretKey }))).toBe("bad-field");
  });
});

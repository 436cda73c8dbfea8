/**
 * Fuzz properties of node/src/wire's decoders: random and mutated bytes either
 * decode or fail with WireError, never another error; what decodes re-encodes
 * to the same bytes; a mutated signed document never opens. Run briefly by
 * test/unit/wire/fuzz.test.ts and at length by scripts/fuzz-wire.ts.
 */
import fc from "fast-check";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { decodeCanonical, encodeCanonical } from "../../node/src/wire/canonical.js";
import { CELL_LEN, CELL_PAYLOAD_LEN, CellCommand, decodeCell, encodeCell } from "../../node/src/wire/cell.js";
import { openDocument, signDocument } from "../../node/src/wire/document.js";
import { WireError } from "../../node/src/wire/errors.js";
import { Reassembler, fragmentMessage } from "../../node/src/wire/fragment.js";
import { decodeRelayPayload, encodeRelayPayload } from "../../node/src/wire/relay.js";
import { bytesOr, check, mutate, target, typedOnly, type FuzzTarget } from "./common.js";

const wireKind = (fn: () => unknown) => typedOnly([WireError], fn);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const linkCommands = [CellCommand.PADDING, CellCommand.VERSIONS, CellCommand.AUTH, CellCommand.CLOSE];
const circuitCommands = [CellCommand.CREATE, CellCommand.CREATED, CellCommand.RELAY, CellCommand.DESTROY, CellCommand.RELAY_EARLY];
/** Any valid cell: link commands on circuit id 0, circuit commands on a non-zero id. */
export const validCell = fc.oneof(
  fc.record({ circId: fc.constant(0), command: fc.constantFrom(...linkCommands), payload: fc.uint8Array({ maxLength: CELL_PAYLOAD_LEN }) }),
  fc.record({
    circId: fc.integer({ min: 1, max: 0xffff_ffff }),
    command: fc.constantFrom(...circuitCommands),
    payload: fc.uint8Array({ maxLength: CELL_PAYLOAD_LEN }),
  }),
);

/** Any value canonical CBOR encodes: null, booleans, integers (and bigints beyond 2^53), non-integer doubles, strings, bytes, arrays, maps. */
export const { tree: canonicalValue } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: "small", withCrossShrink: true }, tie("leaf"), tie("array"), tie("map")),
  leaf: fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
    fc.maxSafeInteger(),
    fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }).filter((b) => b > BigInt(Number.MAX_SAFE_INTEGER) || b < BigInt(Number.MIN_SAFE_INTEGER)),
    fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
    fc.string({ unit: "grapheme", maxLength: 20 }),
    fc.uint8Array({ maxLength: 20 }),
  ),
  array: fc.array(tie("tree"), { maxLength: 4 }),
  map: fc.dictionary(fc.string({ maxLength: 8 }), tie("tree"), { maxKeys: 4 }),
}));

const signer = generateEd25519KeyPair();
const sampleCell = encodeCell({ circId: 77, command: 3, payload: new Uint8Array(300).fill(9) });
const sampleRelay = encodeRelayPayload({ recognized: 0, streamId: 5, digest: Uint8Array.of(1, 2, 3, 4), command: 2, data: new Uint8Array(100).fill(1) });
const sampleCbor = encodeCanonical({ list: [1, -2, 3.5, "s", new Uint8Array(3)], map: { k: { z: null } } });
const documentBody = { node: "peerstream.node.node.x", bandwidth: 1_000_000, keys: [new Uint8Array(32).fill(1)], at: 1_700_000_000 };
const sampleDoc = signDocument({ type: "descriptor", body: documentBody, secretKey: signer.secretKey });

export const wireTargets: FuzzTarget[] = [
  target("cells: random and mutated bytes at any offset", () =>
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 1100 }), mutate(sampleCell)), fc.nat(600), (bytes, offset) => {
      const kind = wireKind(() => decodeCell(bytes, offset));
      if (kind === undefined) check(bytes.length - offset >= CELL_LEN, `decoded a cell from ${bytes.length - offset} bytes`);
    }),
  ),
  target("cells: flipped header bytes of a valid cell", () =>
    fc.property(validCell, fc.nat(4), fc.integer({ min: 1, max: 255 }), (cell, pos, flip) => {
      const enc = encodeCell(cell);
      enc[pos] = (enc[pos] as number) ^ flip;
      wireKind(() => decodeCell(enc));
    }),
  ),
  target("relay payloads", () =>
    fc.property(fc.oneof(fc.uint8Array({ minLength: 500, maxLength: 510 }), bytesOr(sampleRelay, 520)), (bytes) => {
      const kind = wireKind(() => decodeRelayPayload(bytes));
      if (kind === undefined) check(bytes.length === CELL_PAYLOAD_LEN, `decoded a relay payload of ${bytes.length} bytes`);
    }),
  ),
  target("reassembler: random and mutated fragment streams", () =>
    fc.property(
      fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }), ...fragmentMessage(new Uint8Array(200), 64).map((f) => mutate(f))), { maxLength: 12 }),
      fc.constantFrom(4096, 1 << 16),
      (frags, maxMessageBytes) => {
        const r = new Reassembler({ maxMessageBytes });
        for (const f of frags) wireKind(() => r.push(f));
        wireKind(() => r.end());
      },
    ),
  ),
  target("canonical CBOR: random and mutated bytes", () =>
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), bytesOr(sampleCbor, 300)), fc.constantFrom(150, 256), (bytes, maxBytes) => {
      wireKind(() => decodeCanonical(bytes, { maxBytes }));
    }),
  ),
  target("canonical CBOR: what decodes after a flip re-encodes to the same bytes", () =>
    fc.property(canonicalValue, fc.nat(), fc.integer({ min: 1, max: 255 }), (value, where, flip) => {
      const bytes = encodeCanonical(value).slice();
      const i = where % bytes.length;
      bytes[i] = (bytes[i] as number) ^ flip;
      const kind = wireKind(() => decodeCanonical(bytes, { maxBytes: 1 << 20 }));
      if (kind === undefined) check(hex(encodeCanonical(decodeCanonical(bytes, { maxBytes: 1 << 20 }))) === hex(bytes), "a decoded value re-encoded to other bytes");
    }),
  ),
  target("signed documents: a flipped byte never opens", () =>
    fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (where, flip) => {
      const bytes = sampleDoc.slice();
      const i = where % bytes.length;
      bytes[i] = (bytes[i] as number) ^ flip;
      check(wireKind(() => openDocument(bytes, { type: "descriptor", maxBytes: 4096 })) !== undefined, "a document with a flipped byte opened");
    }),
  ),
  target("signed documents: random bytes never open, mutations fail only with WireError", () =>
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((b) => ({ b, random: true })),
        mutate(sampleDoc).map((b) => ({ b, random: false })),
      ),
      ({ b, random }) => {
        const kind = wireKind(() => openDocument(b, { type: "descriptor", maxBytes: 4096 }));
        if (random) check(kind !== undefined, "random bytes opened as a document");
      },
    ),
  ),
];

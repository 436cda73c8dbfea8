import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bytesToHexFast } from "../../../node/src/directory/config.js";
import { decodeConsensusSignature, encodeConsensusSignature, verifyConsensus } from "../../../node/src/directory/consensus.js";
import { createDescriptor, verifyDescriptor } from "../../../node/src/directory/descriptor.js";
import { DirectoryError } from "../../../node/src/directory/errors.js";
import { DirectorySimulation } from "../../../node/src/directory/sim.js";
import { openVote } from "../../../node/src/directory/vote.js";
import { ed25519PublicKey, ed25519Sign } from "../../../node/src/crypto/ed25519.js";
import { assembleConsensus, signConsensus } from "../../../node/src/directory/consensus.js";
import { decodeCanonical, encodeCanonical } from "../../../node/src/wire/canonical.js";
import { documentSigningMessage } from "../../../node/src/wire/document.js";
import { bytesEqual } from "../../../node/src/base/bytes.js";
import { InternalDirectory, internalViewOf } from "../../../node/src/directory/internal.js";
import { decodeDirectoryRequest, decodeDirectoryResponse, encodeDirectoryRequest, encodeDirectoryResponse } from "../../../node/src/directory/messages.js";

const START = 1_700_000_000_000;

// One small network gives valid specimens of every document to mutate.
// Relay 1 is internal, so the consensus specimen holds an entry without addresses.
const sim = new DirectorySimulation({ discoveryNodes: 3, relays: 3, start: START, schedule: { periodMs: 10_000, voteDelayMs: 2_000, distDelayMs: 2_000 }, internal: [1] });
sim.publishDescriptors();
sim.probeReachability();
sim.runUntil(START + 10_000, 500);
const trustedKeys = sim.trust().keys;
const discoverySet = new Set(trustedKeys.map(bytesToHexFast));
const relay = sim.relays[0]!;
const descriptor = createDescriptor({ ...relay.fields, publishedAt: START, secretKey: relay.secretKey });
// An internal node with outbound links only: int true and no address at all.
const outboundDescriptor = createDescriptor({ ...relay.fields, addresses: [], internal: true, bridge: false, publishedAt: START, secretKey: relay.secretKey });
const vote = sim.discovery[0]!.node.votesFor(START + 10_000)[0]!;
const consensus = sim.latestConsensus()!;
const signature = encodeConsensusSignature({ validAfter: START, digest: new Uint8Array(32), signer: trustedKeys[0]!, sig: new Uint8Array(64) });
const verified = verifyConsensus(consensus, { trustedKeys, now: START + 10_000 });
const internalView = internalViewOf(verified, sim.discovery[0]!.node.heldDescriptors());
const internalAnswer = encodeDirectoryResponse({ type: "internal", ...internalView });

const parsers: Array<[string, (b: Uint8Array) => unknown, Uint8Array]> = [
  ["descriptor", (b) => verifyDescriptor(b, { now: START, isRegisteredAndStaked: () => true }), descriptor],
  ["vote", (b) => openVote(b, { discoverySet }), vote],
  ["consensus", (b) => verifyConsensus(b, { trustedKeys, now: START + 10_000 }), consensus],
  ["consensus-sig", decodeConsensusSignature, signature],
  ["fetch-internal request", decodeDirectoryRequest, encodeDirectoryRequest({ type: "fetch-internal" })],
  ["internal view answer", (b) => decodeDirectoryResponse(b), internalAnswer],
  ["outbound-only descriptor", (b) => verifyDescriptor(b, { now: START, isRegisteredAndStaked: () => true }), outboundDescriptor],
];

/** Runs the parser; only a DirectoryError may come out. */
function onlyTypedErrors(parse: (b: Uint8Array) => unknown, bytes: Uint8Array): void {
  try {
    parse(bytes);
  } catch (err) {
    if (!(err instanceof DirectoryError)) throw err;
    expect(typeof err.kind).toBe("string");
  }
}

const mutation = (specimen: Uint8Array) =>
  fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.tuple(fc.nat(specimen.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
      const b = specimen.slice();
      b[i] = (b[i] as number) ^ x;
      return b;
    }),
    fc.nat(specimen.length).map((n) => specimen.slice(0, n)),
    fc.tuple(fc.nat(specimen.length), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([i, extra]) => {
      const b = new Uint8Array(specimen.length + extra.length);
      b.set(specimen.subarray(0, i), 0);
      b.set(extra, i);
      b.set(specimen.subarray(i), i + extra.length);
      return b;
    }),
  );

describe("directory documents under fuzzing", () => {
  it("the specimens are valid", () => {
    for (const [, parse, specimen] of parsers) expect(() => parse(specimen)).not.toThrow();
  });

  for (const [name, parse, specimen] of parsers) {
    it(`${name}: random and mutated bytes give typed errors only`, () => {
      fc.assert(fc.property(mutation(specimen), (bytes) => onlyTypedErrors(parse, bytes)), { numRuns: name === "consensus" ? 300 : 600 });
    });
  }

  // Validly signed documents whose body bytes are mutated: exercises every field check behind the signature.
  const bodyOf = (doc: Uint8Array) => (decodeCanonical(doc, { maxBytes: 1 << 24 }) as { body: Uint8Array }).body;
  const signAs = (type: string, secretKey: Uint8Array) => (body: Uint8Array) =>
    encodeCanonical({ body, sig: ed25519Sign(secretKey, documentSigningMessage(type, body)), signer: ed25519PublicKey(secretKey), type, v: 1 });
  const discoverySecrets = sim.discovery.map((d) => d.secretKey);
  const signedParsers: Array<[string, (body: Uint8Array) => Uint8Array, (b: Uint8Array) => unknown, Uint8Array]> = [
    ["descriptor", signAs("descriptor", relay.secretKey), parsers[0]![1], bodyOf(descriptor)],
    ["outbound-only descriptor", signAs("descriptor", relay.secretKey), parsers[0]![1], bodyOf(outboundDescriptor)],
    ["vote", signAs("vote", discoverySecrets[0]!), parsers[1]![1], bodyOf(vote)],
    ["consensus", (body) => assembleConsensus(body, discoverySecrets.map((s) => signConsensus(body, s))), parsers[2]![1], bodyOf(consensus)],
  ];
  for (const [name, wrap, parse, body] of signedParsers) {
    it(`${name}: mutated bodies under valid signatures give typed errors only`, () => {
      expect(() => parse(wrap(body))).not.toThrow();
      fc.assert(fc.property(mutation(body), (mutated) => onlyTypedErrors(parse, wrap(mutated))), { numRuns: 300 });
    });
  }

  it("the specimens include an internal entry and its descriptor", () => {
    expect(verified.entries.filter((e) => e.encodedAddresses.length === 0)).toHaveLength(1);
    expect(internalView.descriptors).toHaveLength(1);
  });

  // A node offered a mutated view keeps the good descriptors and counts the rest: it never throws.
  it("internal view: mutated descriptors are counted as refused, never thrown", () => {
    const specimen = internalView.descriptors[0]!;
    fc.assert(
      fc.property(mutation(specimen), (bytes) => {
        const result = new InternalDirectory().offer(verified, [bytes, specimen], START + 10_000);
        expect(result.accepted).toBeGreaterThanOrEqual(bytesEqual(bytes, specimen) ? 1 : 0);
      }),
      { numRuns: 300 },
    );
  });

  it("well-formed CBOR of the wrong shape gives typed errors only", () => {
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: "small" }, fc.integer(), fc.string({ maxLength: 6 }), fc.uint8Array({ maxLength: 40 }), fc.boolean(), fc.constant(null), fc.array(tie("v"), { maxLength: 3 }), fc.dictionary(fc.constantFrom("body", "sigs", "sig", "signer", "type", "v", "d", "va", "nodes", "addrs", "id", "t", "descs", "int", "f"), tie("v"), { maxKeys: 5 })),
    })).v;
    fc.assert(
      fc.property(value, (v) => {
        const bytes = encodeCanonical(v);
        for (const [, parse] of parsers) onlyTypedErrors(parse, bytes);
        for (const [, wrap, parse] of signedParsers) onlyTypedErrors(parse, wrap(bytes));
      }),
      { numRuns: 400 },
    );
  });
});

/**
 * Long fuzz run over every decoder of node/src/crypto and node/src/wire:
 * random and mutated bytes must either decode or be rejected with the
 * layer's typed error (WireError / CryptoError), never a TypeError,
 * RangeError or crash. The unit tests run the same properties briefly.
 *
 *   npx tsx scripts/fuzz-wire.ts --iterations 200000 [--seed 42]
 *
 * Key files cost one scrypt (N = 2^10) per case, so they get iterations/200.
 */
import { Command } from "commander";
import fc from "fast-check";
import { CryptoError } from "../node/src/crypto/errors.js";
import { generateEd25519KeyPair } from "../node/src/crypto/ed25519.js";
import { formatIdentity, parseIdentity } from "../node/src/crypto/identity.js";
import { decryptKeyFile, encryptKeyFile } from "../node/src/crypto/keyfile.js";
import { ntorClientCreate, ntorClientFinish } from "../node/src/crypto/ntor.js";
import { generateX25519KeyPair } from "../node/src/crypto/x25519.js";
import { decodeCanonical, encodeCanonical } from "../node/src/wire/canonical.js";
import { decodeCell, encodeCell } from "../node/src/wire/cell.js";
import { openDocument, signDocument } from "../node/src/wire/document.js";
import { WireError } from "../node/src/wire/errors.js";
import { Reassembler, fragmentMessage } from "../node/src/wire/fragment.js";
import { decodeRelayPayload, encodeRelayPayload } from "../node/src/wire/relay.js";

const program = new Command()
  .option("--iterations <n>", "cases per target", (v) => Number.parseInt(v, 10), 100_000)
  .option("--seed <n>", "fast-check seed (random when omitted)", (v) => Number.parseInt(v, 10))
  .parse();
const { iterations, seed } = program.opts<{ iterations: number; seed?: number }>();

/** Runs fn; a typed rejection is fine, anything else is a finding. */
function typedOnly(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof WireError) && !(err instanceof CryptoError)) throw err;
  }
}

async function typedOnlyAsync(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!(err instanceof WireError) && !(err instanceof CryptoError)) throw err;
  }
}

/** Flips, inserts and deletes a few bytes. */
const mutate = (base: Uint8Array) =>
  fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }).map((edits) => {
    const bytes = Array.from(base);
    for (const [where, op, value] of edits) {
      const i = bytes.length === 0 ? 0 : where % bytes.length;
      if (op === 0 && bytes.length > 0) bytes[i] = (bytes[i] as number) ^ (value || 1);
      else if (op === 1) bytes.splice(i, 0, value);
      else bytes.splice(i, 1);
    }
    return Uint8Array.from(bytes);
  });

const signer = generateEd25519KeyPair();
const sampleCell = encodeCell({ circId: 77, command: 3, payload: new Uint8Array(300).fill(9) });
const sampleRelay = encodeRelayPayload({ recognized: 0, streamId: 5, digest: Uint8Array.of(1, 2, 3, 4), command: 2, data: new Uint8Array(100).fill(1) });
const sampleDoc = signDocument({ type: "descriptor", body: { a: 1, b: [true, null, "x"], c: new Uint8Array(8) }, secretKey: signer.secretKey });
const sampleCbor = encodeCanonical({ list: [1, -2, 3.5, "s", new Uint8Array(3)], map: { k: { z: null } } });
const sampleIdentity = formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: signer.publicKey });
const onion = generateX25519KeyPair();
const { state: ntorState } = ntorClientCreate({ id: new Uint8Array(32), onionPublic: onion.publicKey });

interface Target {
  name: string;
  runs: number;
  property: fc.IRawProperty<unknown[], boolean>;
}

const bytesOr = (sample: Uint8Array, maxLength: number) => fc.oneof(fc.uint8Array({ maxLength }), mutate(sample));

const targets: Target[] = [
  { name: "cells", runs: iterations, property: fc.property(bytesOr(sampleCell, 1100), fc.nat(600), (b, o) => void typedOnly(() => decodeCell(b, o))) },
  { name: "relay payloads", runs: iterations, property: fc.property(bytesOr(sampleRelay, 520), (b) => void typedOnly(() => decodeRelayPayload(b))) },
  {
    name: "reassembler",
    runs: iterations,
    property: fc.property(fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }), ...fragmentMessage(new Uint8Array(200), 64).map((f) => mutate(f))), { maxLength: 10 }), (frags) => {
      const r = new Reassembler({ maxMessageBytes: 4096 });
      for (const f of frags) typedOnly(() => r.push(f));
      typedOnly(() => r.end());
    }),
  },
  { name: "canonical CBOR", runs: iterations, property: fc.property(bytesOr(sampleCbor, 300), (b) => void typedOnly(() => decodeCanonical(b, { maxBytes: 256 }))) },
  {
    name: "signed documents",
    runs: iterations,
    property: fc.property(bytesOr(sampleDoc, 400), (b) => void typedOnly(() => openDocument(b, { type: "descriptor", maxBytes: 1024 }))),
  },
  {
    name: "identity strings",
    runs: iterations,
    property: fc.property(
      fc.oneof(fc.string({ maxLength: 150 }), fc.tuple(fc.nat(sampleIdentity.length), fc.string({ maxLength: 3 }), fc.nat(3)).map(([p, s, d]) => sampleIdentity.slice(0, p) + s + sampleIdentity.slice(p + d))),
      (s) => void typedOnly(() => parseIdentity(s)),
    ),
  },
  {
    name: "ntor replies",
    runs: Math.max(1, Math.floor(iterations / 20)),
    property: fc.property(fc.uint8Array({ maxLength: 80 }), (reply) => void typedOnly(() => ntorClientFinish({ ...ntorState, reply, keyLength: 72 }))),
  },
];

async function main(): Promise<void> {
  const params = { numRuns: 0, ...(seed === undefined ? {} : { seed }) };
  let failed = false;
  for (const t of targets) {
    const started = performance.now();
    try {
      fc.assert(t.property, { ...params, numRuns: t.runs });
      console.log(`ok   ${t.name}: ${t.runs} cases in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    } catch (err) {
      failed = true;
      console.error(`FAIL ${t.name}:`, err instanceof Error ? err.message : err);
    }
  }
  const keyFile = await encryptKeyFile(signer.secretKey, "pw", { scrypt: { N: 1024 } });
  const keyRuns = Math.max(1, Math.floor(iterations / 200));
  const started = performance.now();
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string({ maxLength: 400 }), fc.tuple(fc.nat(keyFile.length), fc.string({ maxLength: 4 }), fc.nat(4)).map(([p, s, d]) => keyFile.slice(0, p) + s + keyFile.slice(p + d))),
        async (text) => typedOnlyAsync(() => decryptKeyFile(text, "pw")),
      ),
      { ...params, numRuns: keyRuns },
    );
    console.log(`ok   key files: ${keyRuns} cases in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    failed = true;
    console.error("FAIL key files:", err instanceof Error ? err.message : err);
  }
  process.exitCode = failed ? 1 : 0;
}

await main();

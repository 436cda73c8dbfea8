/**
 * Wire benchmarks: cell and relay-payload codecs against a plain 512-byte
 * copy measured in the same run; fragmentation; canonical CBOR and signed
 * documents for a typical descriptor-sized body.
 * Run alone with `npx tsx scripts/bench.ts cells`.
 */
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { decodeCanonical, encodeCanonical } from "../../node/src/wire/canonical.js";
import { CELL_LEN, CellCommand, decodeCell, encodeCellInto } from "../../node/src/wire/cell.js";
import { openDocument, signDocument } from "../../node/src/wire/document.js";
import { Reassembler, fragmentMessage } from "../../node/src/wire/fragment.js";
import { RELAY_DATA_LEN, RelayCommand, decodeRelayPayload, encodeRelayPayloadInto } from "../../node/src/wire/relay.js";
import { fmt, opsPerSecond, table } from "./types.js";
import type { BenchSection } from "./types.js";

const BATCH = 64;

export async function run(): Promise<BenchSection> {
  const figures: Record<string, unknown> = {};
  const batch = new Uint8Array(BATCH * CELL_LEN);
  const source = Buffer.alloc(CELL_LEN, 1);
  const payload = new Uint8Array(507).fill(2);
  const cell = { circId: 0x1234, command: CellCommand.RELAY, payload };

  // Per-cell rates, each measured over a 64-cell batch.
  const copy = BATCH * opsPerSecond(() => {
    for (let i = 0; i < BATCH; i++) batch.set(source, i * CELL_LEN);
  });
  const codec = BATCH * opsPerSecond(() => {
    for (let i = 0; i < BATCH; i++) encodeCellInto(cell, batch, i * CELL_LEN);
    for (let i = 0; i < BATCH; i++) decodeCell(batch, i * CELL_LEN);
  });
  const relay = { recognized: 0, streamId: 7, digest: new Uint8Array(4), command: RelayCommand.DATA, data: new Uint8Array(RELAY_DATA_LEN) };
  const relayCodec = BATCH * opsPerSecond(() => {
    for (let i = 0; i < BATCH; i++) encodeRelayPayloadInto(relay, batch, i * CELL_LEN + 5);
    for (let i = 0; i < BATCH; i++) decodeRelayPayload(batch.subarray(i * CELL_LEN + 5, (i + 1) * CELL_LEN));
  });
  figures["cells"] = { copyPerSec: copy, encodeDecodePerSec: codec, ratio: codec / copy, relayEncodeDecodePerSec: relayCodec, relayRatio: relayCodec / copy };

  const message = new Uint8Array(4096).fill(3);
  const reassembler = new Reassembler({ maxMessageBytes: 65536 });
  const fragOps = opsPerSecond(() => {
    for (const f of fragmentMessage(message, RELAY_DATA_LEN)) reassembler.push(f);
  });
  const copy4k = opsPerSecond(() => message.slice());
  figures["fragment 4 KiB"] = { perSec: fragOps, copyPerSec: copy4k, ratio: fragOps / copy4k };

  // A descriptor-like body: identity, keys, addresses, roles, numbers.
  const signer = generateEd25519KeyPair();
  const body = {
    identity: "peerstream.node.node.2Kny61ghn2upK8ttFwVoeHmicHEA6SfQjXC1HDUtuTGVdea2FF",
    onionKey: new Uint8Array(32).fill(4),
    linkKey: new Uint8Array(32).fill(5),
    addresses: [{ host: "203.0.113.7", port: 9001 }, { host: "2001:db8::7", port: 9001 }],
    roles: ["onion", "presence", "distribution"],
    bandwidth: 12_500_000,
    country: "DE",
    version: "psp/0.1.0",
    publishedAt: 1_760_000_000,
  };
  const bodyBytes = encodeCanonical(body);
  const json = JSON.stringify({ ...body, onionKey: [...body.onionKey], linkKey: [...body.linkKey] });
  const enc = opsPerSecond(() => encodeCanonical(body));
  const dec = opsPerSecond(() => decodeCanonical(bodyBytes, { maxBytes: 4096 }));
  const jsonRoundTrip = opsPerSecond(() => JSON.parse(JSON.stringify(JSON.parse(json))));
  const doc = signDocument({ type: "descriptor", body, secretKey: signer.secretKey });
  const sign = opsPerSecond(() => signDocument({ type: "descriptor", body, secretKey: signer.secretKey }));
  const open = opsPerSecond(() => openDocument(doc, { type: "descriptor", maxBytes: 4096 }));
  figures["canonical descriptor"] = {
    bytes: bodyBytes.length,
    encodePerSec: enc,
    decodePerSec: dec,
    jsonRoundTripPerSec: jsonRoundTrip,
    signPerSec: sign,
    openPerSec: open,
    envelopeBytes: doc.length,
  };

  const markdown = [
    `Per-cell rates over ${BATCH}-cell batches; the baseline is a plain 512-byte Buffer copy into the batch, same run.`,
    "",
    table(
      ["operation", "per second", "÷ baseline"],
      [
        ["512-byte Buffer copy (baseline)", fmt(copy), "1.00"],
        ["cell encode + decode", fmt(codec), fmt(codec / copy, 2)],
        ["relay payload encode + decode", fmt(relayCodec), fmt(relayCodec / copy, 2)],
        ["4 KiB message: fragment to 496-byte chunks + reassemble", fmt(fragOps), `${fmt(fragOps / copy4k, 3)} of a 4 KiB copy`],
      ],
    ),
    "",
    `Canonical CBOR of a descriptor-like body (${bodyBytes.length} bytes; envelope ${doc.length} bytes).`,
    "Decode includes the strict parse and the re-encode that proves canonical form. Baseline: JSON parse + stringify + parse of the same data.",
    "",
    table(
      ["operation", "per second", "÷ JSON baseline"],
      [
        ["JSON round trip (baseline)", fmt(jsonRoundTrip), "1.00"],
        ["encodeCanonical", fmt(enc), fmt(enc / jsonRoundTrip, 2)],
        ["decodeCanonical", fmt(dec), fmt(dec / jsonRoundTrip, 2)],
        ["signDocument (Ed25519)", fmt(sign), fmt(sign / jsonRoundTrip, 3)],
        ["openDocument (verify + decode)", fmt(open), fmt(open / jsonRoundTrip, 3)],
      ],
    ),
  ].join("\n");
  return { title: "Cells and canonical encoding", markdown, figures };
}

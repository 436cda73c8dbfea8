/**
 * Writes the frozen known-answer vectors of PSP's own formats to test/vectors/*.json.
 *
 *   npx tsx scripts/gen-vectors.ts
 *
 * Run it once when a format changes on purpose, and commit the JSON: a wire
 * change then shows up as a vector change in review. The tests never run this;
 * they decode the frozen bytes and re-encode them (test/vectors/vectors.test.ts).
 * Inputs are the fixed seeds and fields of test/vectors/formats.ts.
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { blindPublicKey } from "../node/src/crypto/blinding.js";
import { ed25519PublicKey } from "../node/src/crypto/ed25519.js";
import {
  certificateIdentity,
  encodeCellVector,
  encodeCertificateVector,
  encodeConsensusVector,
  encodeDescriptorVector,
  encodeDhtRecordVector,
  encodeIntroductionVector,
  encodeLinkAuth,
  encodePresenceRecordVector,
  encodeRelayCellVector,
  encodeRelayVector,
  encodeSealedRuns,
  encodeVoteVector,
  hex,
  inputs,
  introductionIdentity,
  introductionSubcredential,
  unhex,
} from "../test/vectors/formats.js";
import { streamMediaVector } from "../test/vectors/stream-media-formats.js";
import { projectRoot } from "./lib/artifacts.js";
import { signReceipt } from "../node/src/stream/receipt.js";
import { signSessionId } from "../node/src/stream/session.js";
import { signUsageReport } from "../node/src/rewards/report.js";

const dir = join(projectRoot, "test", "vectors");
const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
const pub = (seedHex: string): string => hex(ed25519PublicKey(unhex(seedHex)));

function write(file: string, vector: Record<string, unknown>): void {
  writeFileSync(join(dir, file), `${JSON.stringify(vector, null, 2)}\n`);
  console.log(`wrote test/vectors/${file}`);
}

write("cell.json", {
  format: "cell",
  spec: "docs/spec/crypto-wire.md §6 Cells",
  description: "512-byte cells: circuit id (4, big-endian) ‖ command (1) ‖ payload (507, zero-padded). One circuit cell, one link cell on circuit id 0.",
  cases: inputs.cells.map((c) => ({ input: c, hex: hex(encodeCellVector(c)) })),
});

write("relay-cell.json", {
  format: "relay cell",
  spec: "docs/spec/crypto-wire.md §7 Relay payload; §6 Cells",
  description: "A RELAY cell whose payload is a plaintext relay payload: recognized (2) ‖ stream id (2) ‖ digest (4) ‖ length (2) ‖ relay command (1) ‖ data (496, zero padding).",
  input: inputs.relayCell,
  payloadHex: hex(encodeRelayVector(inputs.relayCell.relay)),
  hex: hex(encodeRelayCellVector(inputs.relayCell)),
});

write("sealed-run.json", {
  format: "sealed run",
  spec: "docs/spec/onion.md §3 Key derivation and relay crypto",
  description:
    "Two forward runs of one hop sealed one after the other (3 payloads, then 1): digest fields and RUN_CONTINUES bits written by sealRun, then the hop's AES-128-CTR keystream. 'sealed' is the plaintext after sealing, 'encrypted' what the wire carries.",
  input: inputs.sealedRun,
  runs: encodeSealedRuns(inputs.sealedRun),
});

const auth = encodeLinkAuth(inputs.linkAuth);
write("link-auth.json", {
  format: "link AUTH transcript",
  spec: "docs/spec/link.md §2.1 VERSIONS, §2.2 AUTH payload, §3 AUTH transcript",
  description:
    "Both sides' AUTH transcript and AUTH cell for a fixed EKM and fixed identity seeds; the flights are the VERSIONS cell of each side. The transcript is prefix ‖ role ‖ version ‖ initiator VERSIONS body ‖ responder VERSIONS body ‖ EKM ‖ signer identity.",
  input: inputs.linkAuth,
  initiatorIdentity: pub(inputs.linkAuth.initiatorSeed),
  responderIdentity: pub(inputs.linkAuth.responderSeed),
  ...auth,
});

const descriptor = encodeDescriptorVector(inputs.descriptor);
write("descriptor.json", {
  format: "descriptor",
  spec: "docs/spec/directory.md §2 Descriptor; docs/spec/crypto-wire.md §10 Signed document envelope",
  description: 'A node descriptor signed with the node\'s identity key (a signed document of type "descriptor").',
  input: inputs.descriptor,
  identity: pub(inputs.descriptor.secretKey),
  hex: hex(descriptor),
});

write("descriptor-outbound.json", {
  format: "descriptor",
  spec: "docs/spec/directory.md §2 Descriptor, §12 Internal nodes",
  description:
    "The descriptor of an internal node with outbound links only: int true and an empty addrs (it accepts no links; nodes reach it over the links it opens). A decoder accepts an empty addrs only with int.",
  input: inputs.descriptorOutbound,
  identity: pub(inputs.descriptorOutbound.secretKey),
  hex: hex(encodeDescriptorVector(inputs.descriptorOutbound)),
});

const vote = encodeVoteVector(inputs.vote);
write("vote.json", {
  format: "vote",
  spec: "docs/spec/directory.md §4 Vote; docs/spec/crypto-wire.md §10 Signed document envelope",
  description: 'A discovery node\'s vote listing two nodes (sorted by identity), signed as a document of type "vote".',
  input: inputs.vote,
  voter: pub(inputs.vote.secretKey),
  hex: hex(vote),
});

const consensus = encodeConsensusVector(inputs.consensus);
write("consensus.json", {
  format: "consensus",
  spec: "docs/spec/directory.md §5.2 Layout, §5.3 Client verification",
  description:
    "A consensus body listing two nodes, signed by all three discovery nodes of the set (signatures sorted by signer). Internal nodes did not change it: an entry without the internal flag encodes as before (see consensus-internal.json).",
  input: inputs.consensus,
  voters: inputs.consensus.signerSeeds.map(pub).sort(),
  bodyHex: hex(consensus.body),
  bodyDigest: sha256(consensus.body),
  hex: hex(consensus.document),
});

const consensusInternal = encodeConsensusVector(inputs.consensusInternal);
write("consensus-internal.json", {
  format: "consensus",
  spec: "docs/spec/directory.md §5.2 Layout, §12 Internal nodes",
  description:
    "A consensus listing a public guard and an internal node (flag 512): the internal entry's addrs is empty, which a decoder accepts only with that flag. Signed by all three discovery nodes.",
  input: inputs.consensusInternal,
  voters: inputs.consensusInternal.signerSeeds.map(pub).sort(),
  bodyHex: hex(consensusInternal.body),
  bodyDigest: sha256(consensusInternal.body),
  hex: hex(consensusInternal.document),
});

const consensusCommercial = encodeConsensusVector(inputs.consensusCommercial);
write("consensus-commercial.json", {
  format: "consensus",
  spec: "docs/spec/commercial.md Discovery",
  description:
    "A consensus listing a public guard and a commercial node (flag 1024) with its two application ids (apps, ascending), which a decoder accepts only with that flag. The other entry encodes as before. Signed by all three discovery nodes.",
  input: inputs.consensusCommercial,
  voters: inputs.consensusCommercial.signerSeeds.map(pub).sort(),
  bodyHex: hex(consensusCommercial.body),
  bodyDigest: sha256(consensusCommercial.body),
  hex: hex(consensusCommercial.document),
});

const record = encodeDhtRecordVector(inputs.dhtRecord);
write("dht-record.json", {
  format: "DHT record",
  spec: "docs/spec/dht.md Records",
  description: "A record signed by its owner and co-signed by its publishing node, in its canonical CBOR wire form.",
  input: inputs.dhtRecord,
  owner: pub(inputs.dhtRecord.ownerSeed),
  publisher: pub(inputs.dhtRecord.publisherSeed),
  hex: hex(record),
});

const cert = encodeCertificateVector(inputs.certificate);
write("access-certificate.json", {
  format: "access certificate",
  spec: "docs/spec/authority.md §2 Access certificates",
  description: "An access certificate for one account identity, endorsed by three authorities (sorted by authority key).",
  input: inputs.certificate,
  identity: certificateIdentity(inputs.certificate),
  authorities: inputs.certificate.authoritySeeds.map(pub).sort(),
  bodyHex: hex(cert.body),
  hex: hex(cert.certificate),
});

const presence = encodePresenceRecordVector(inputs.presenceRecord);
write("presence-record.json", {
  format: "presence record",
  spec: "docs/spec/presence.md Presence records",
  description:
    "Slot 1 of one identity for one day-long period: a DHT record owned by the identity's blinded key for the period, named presence/<slot>, whose value is nonce ‖ ChaCha20-Poly1305 of the point (key from the period's subcredential), signed by the blinded key; 'ownerHex' is what the client hands its presence node, 'hex' the record the node co-signs and publishes.",
  input: inputs.presenceRecord,
  identity: pub(inputs.presenceRecord.identitySeed),
  node: pub(inputs.presenceRecord.nodeSeed),
  blinded: hex(blindPublicKey(unhex(pub(inputs.presenceRecord.identitySeed)), inputs.presenceRecord.period, inputs.presenceRecord.periodLength)),
  dhtKey: hex(presence.owner.key),
  value: hex(presence.owner.value),
  ownerSig: hex(presence.owner.ownerSig),
  ownerHex: hex(presence.ownerWire),
  hex: hex(presence.record),
});

const introduction = encodeIntroductionVector(inputs.introduction);
write("presence-introduction.json", {
  format: "introduction",
  spec: "docs/spec/presence.md Introduction",
  description:
    "An INTRODUCE request on the introduce stream for a fixed hs-ntor secret x: the introduction plaintext (identity, certificate, rendezvous node, cookie, time, signature) sealed under hs-ntor's ENC_KEY with aad authKey ‖ X, and hs-ntor's MAC over authKey ‖ X ‖ ct.",
  input: inputs.introduction,
  identity: introductionIdentity(inputs.introduction),
  subcredential: hex(introductionSubcredential(inputs.introduction)),
  x: hex(introduction.request.x),
  ct: hex(introduction.request.ct),
  mac: hex(introduction.request.mac),
  hex: hex(introduction.bytes),
});

// Stream-creation receipt and viewer session id (issue 15): fixed oracle seed, ids and times.
{
  const oracleSeed = unhex(sha256(new TextEncoder().encode("psp-vector-oracle")));
  const streamInput = {
    oracleSeed: hex(oracleSeed),
    receiptId: "00112233445566778899aabbccddeeff",
    sessionId: "ffeeddccbbaa99887766554433221100",
    viewerKey: pub(sha256(new TextEncoder().encode("psp-vector-viewer"))),
    params: { bitrateKbps: 2500, maxDurationSeconds: 7200, formatFlags: 7 },
    issuedAt: 1_800_000_000,
    expiresAt: 1_800_003_600,
  };
  const receipt = signReceipt({
    params: streamInput.params,
    issuedAt: streamInput.issuedAt,
    expiresAt: streamInput.expiresAt,
    secretKey: oracleSeed,
    id: unhex(streamInput.receiptId),
  });
  const session = signSessionId({
    issuedAt: streamInput.issuedAt,
    expiresAt: streamInput.expiresAt,
    secretKey: oracleSeed,
    sid: unhex(streamInput.sessionId),
    viewerKey: unhex(streamInput.viewerKey),
  });
  write("stream-receipt.json", {
    format: "stream-creation receipt and viewer session id",
    spec: "docs/spec/oracle.md Receipts, Session ids",
    description:
      'A linkable receipt (signed document "stream-receipt") and a session id (signed document "stream-session") by one oracle key; receiptHash = keccak256 of the receipt\'s signed message, the leaf value OracleReceipts batches commit.',
    input: streamInput,
    oracle: pub(streamInput.oracleSeed),
    receiptHex: hex(receipt.bytes),
    receiptHash: receipt.receiptHash,
    sessionHex: hex(session.bytes),
  });

  // Usage reports (issue 16): a landing node's report with an anchor, and a viewer's under the session above.
  const nodeSeed = unhex(sha256(new TextEncoder().encode("psp-vector-node")));
  const viewerSeed = unhex(sha256(new TextEncoder().encode("psp-vector-viewer")));
  const usageInput = {
    nodeSeed: hex(nodeSeed),
    viewerSeed: hex(viewerSeed),
    oracleSeed: hex(oracleSeed),
    from: streamInput.issuedAt + 300,
    to: streamInput.issuedAt + 600,
    sid: streamInput.sessionId,
    stream: "0102030405060708090a0b0c0d0e0f10",
    fedNode: pub(sha256(new TextEncoder().encode("psp-vector-fed-node"))),
    receiptHex: hex(receipt.bytes),
    issuedAt: streamInput.issuedAt,
    expiresAt: streamInput.expiresAt,
  };
  const streamId = unhex(usageInput.stream);
  const nodeReport = signUsageReport({
    kind: "node",
    secretKey: nodeSeed,
    from: usageInput.from,
    to: usageInput.to,
    entries: [
      { stream: streamId, peer: unhex(usageInput.sid), direction: "sent", bytes: 75_000_000 },
      { stream: streamId, peer: unhex(usageInput.fedNode), direction: "sent", bytes: 75_100_000 },
    ],
    anchors: [{ stream: streamId, receipt: receipt.bytes, kbps: 2000 }],
  });
  const viewerReport = signUsageReport({
    kind: "viewer",
    secretKey: viewerSeed,
    from: usageInput.from,
    to: usageInput.to,
    entries: [{ stream: streamId, peer: ed25519PublicKey(nodeSeed), direction: "received", bytes: 74_990_000 }],
    session: session.bytes,
  });
  write("usage-report.json", {
    format: "usage report",
    spec: "docs/spec/rewards.md Usage reports",
    description:
      'A landing node\'s usage report (signed document "usage-report": bytes sent to a viewer session and to a fed node, one stream anchor with the receipt of stream-receipt.json) and the viewer\'s report under the session id of stream-receipt.json, signed by that session\'s viewer key; nodeReportHash = keccak256 of the node report\'s bytes.',
    input: usageInput,
    nodeReportHex: hex(nodeReport.bytes),
    nodeReportHash: nodeReport.hash,
    sessionHex: hex(session.bytes),
    viewerReportHex: hex(viewerReport.bytes),
  });
}

write("stream-media.json", streamMediaVector());

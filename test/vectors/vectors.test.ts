/**
 * Frozen known-answer vectors of PSP's own formats (test/vectors/*.json).
 *
 * Each test decodes the frozen bytes, checks the decoded fields against the
 * JSON, verifies the signatures where the format is signed, and re-encodes the
 * JSON's inputs to the same bytes. Nothing here writes a vector: a changed
 * encoder fails here until scripts/gen-vectors.ts is run and the new JSON is
 * reviewed.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { decodeAccessCertificate, verifyAccessCertificate, verifyEndorsement } from "../../node/src/authority/certificate.js";
import { ed25519PublicKey, ed25519Verify } from "../../node/src/crypto/ed25519.js";
import { checkConsensusSignature, decodeConsensusBody, parseConsensusDocument, verifyConsensus } from "../../node/src/directory/consensus.js";
import { decodeAddress, encodeAddress } from "../../node/src/directory/address.js";
import { openDescriptor } from "../../node/src/directory/descriptor.js";
import { openVote } from "../../node/src/directory/vote.js";
import { decodeRecord, ownerRecordFromWire, recordKey, validateRecord } from "../../node/src/dht/record.js";
import { x25519PublicKey } from "../../node/src/crypto/x25519.js";
import { openIntroduction } from "../../node/src/presence/introduction.js";
import { decodeIntroduceRequest } from "../../node/src/presence/messages.js";
import { presenceLocation, presencePeriod, readPresenceRecord } from "../../node/src/presence/record.js";
import { decodeCanonical } from "../../node/src/wire/canonical.js";
import { AUTH_METHOD_ED25519_EKM, parseAuthPayload, parseVersionsPayload } from "../../node/src/link/cells.js";
import { LinkHandshake, authTranscript } from "../../node/src/link/handshake.js";
import { RunStep, hopCryptoFromKeyMaterial } from "../../node/src/onion/relay-crypto.js";
import { CELL_PAYLOAD_LEN, CellCommand, decodeCell } from "../../node/src/wire/cell.js";
import { decodeRelayPayload } from "../../node/src/wire/relay.js";
import {
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
  introductionIdentity,
  introductionSubcredential,
  unhex,
  type CellInput,
  type CertificateInput,
  type ConsensusInput,
  type DescriptorInput,
  type DhtRecordInput,
  type IntroductionInput,
  type PresenceRecordInput,
  type LinkAuthInput,
  type RelayCellInput,
  type RelayInput,
  type SealedRunInput,
  type VoteInput,
} from "./formats.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const load = <T = any>(file: string): T & { spec: string } => JSON.parse(readFileSync(new URL(`./${file}`, import.meta.url), "utf8")) as T & { spec: string };
const pub = (seedHex: string): string => hex(ed25519PublicKey(unhex(seedHex)));
const padded = (payloadHex: string): string => payloadHex + "00".repeat(CELL_PAYLOAD_LEN - payloadHex.length / 2);
const addrHex = (addresses: { host: string; port: number }[]): string[] => addresses.map((a) => hex(encodeAddress(a)));

function expectRelay(decoded: ReturnType<typeof decodeRelayPayload>, r: RelayInput): void {
  expect({ recognized: decoded.recognized, streamId: decoded.streamId, command: decoded.command, data: hex(decoded.data) }).toEqual({
    recognized: r.recognized,
    streamId: r.streamId,
    command: r.command,
    data: r.data,
  });
}

describe("frozen vectors", () => {
  it("every vector names its spec chapter", () => {
    for (const f of [
      "cell",
      "relay-cell",
      "sealed-run",
      "link-auth",
      "descriptor",
      "descriptor-outbound",
      "vote",
      "consensus",
      "consensus-internal",
      "consensus-commercial",
      "dht-record",
      "access-certificate",
      "presence-record",
      "presence-introduction",
    ]) {
      const spec = load(`${f}.json`).spec;
      expect(spec).toMatch(/^docs\/spec\/[a-z-]+\.md \S/);
      expect(readFileSync(new URL(`../../${spec.split(" ")[0]}`, import.meta.url), "utf8").length).toBeGreaterThan(0);
    }
  });

  it("cell", () => {
    const v = load<{ cases: { input: CellInput; hex: string }[] }>("cell.json");
    for (const c of v.cases) {
      const cell = decodeCell(unhex(c.hex));
      expect({ circId: cell.circId, command: cell.command, payload: hex(cell.payload) }).toEqual({ ...c.input, payload: padded(c.input.payload) });
      expect(hex(encodeCellVector(c.input))).toBe(c.hex);
    }
  });

  it("relay cell", () => {
    const v = load<{ input: RelayCellInput; payloadHex: string; hex: string }>("relay-cell.json");
    const cell = decodeCell(unhex(v.hex));
    expect([cell.circId, cell.command]).toEqual([v.input.circId, CellCommand.RELAY]);
    expect(hex(cell.payload)).toBe(v.payloadHex);
    const relay = decodeRelayPayload(cell.payload);
    expectRelay(relay, v.input.relay);
    expect(hex(relay.digest)).toBe(v.input.relay.digest);
    expect(hex(encodeRelayVector(v.input.relay))).toBe(v.payloadHex);
    expect(hex(encodeRelayCellVector(v.input))).toBe(v.hex);
  });

  it("sealed run", () => {
    const v = load<{ input: SealedRunInput; runs: { sealed: string; encrypted: string }[] }>("sealed-run.json");
    const receiver = hopCryptoFromKeyMaterial(unhex(v.input.keyMaterial)).forward;
    v.runs.forEach((run, r) => {
      const runInput = v.input.runs[r] as RelayInput[];
      const plain = receiver.applyKeystream(unhex(run.encrypted));
      expect(hex(plain)).toBe(run.sealed);
      const steps = runInput.map((_, i) => receiver.receive(plain.subarray(i * CELL_PAYLOAD_LEN, (i + 1) * CELL_PAYLOAD_LEN)));
      expect(steps).toEqual([...runInput.slice(1).map(() => RunStep.Held), RunStep.Complete]);
      const released = receiver.takeRun();
      expect(released).toHaveLength(runInput.length);
      released.forEach((p, i) => expectRelay(decodeRelayPayload(p), runInput[i] as RelayInput));
    });
    expect(encodeSealedRuns(v.input)).toEqual(v.runs);
  });

  it("link AUTH transcript", () => {
    type Side = { transcript: string; authCell: string };
    const v = load<{
      input: LinkAuthInput;
      initiatorIdentity: string;
      responderIdentity: string;
      initiatorVersionsCell: string;
      responderVersionsCell: string;
      initiator: Side;
      responder: Side;
    }>("link-auth.json");
    const iv = decodeCell(unhex(v.initiatorVersionsCell));
    const rv = decodeCell(unhex(v.responderVersionsCell));
    expect([iv.command, rv.command]).toEqual([CellCommand.VERSIONS, CellCommand.VERSIONS]);
    const ivParsed = parseVersionsPayload(iv.payload);
    const rvParsed = parseVersionsPayload(rv.payload);
    if (ivParsed instanceof Error || rvParsed instanceof Error) throw new Error("VERSIONS cell did not parse");
    expect([ivParsed.versions, rvParsed.versions]).toEqual([v.input.initiatorVersions, v.input.responderVersions]);
    for (const [role, side, identity] of [
      ["initiator", v.initiator, v.initiatorIdentity],
      ["responder", v.responder, v.responderIdentity],
    ] as const) {
      const cell = decodeCell(unhex(side.authCell));
      expect([cell.circId, cell.command]).toEqual([0, CellCommand.AUTH]);
      const auth = parseAuthPayload(cell.payload);
      if (auth instanceof Error || auth.method !== AUTH_METHOD_ED25519_EKM) throw new Error("AUTH cell did not parse as Ed25519-EKM");
      expect(hex(auth.identity)).toBe(identity);
      expect(identity).toBe(pub(role === "initiator" ? v.input.initiatorSeed : v.input.responderSeed));
      const transcript = authTranscript({
        signerRole: role,
        version: v.input.version,
        initiatorVersions: ivParsed.body,
        responderVersions: rvParsed.body,
        ekm: unhex(v.input.ekm),
        signerIdentity: auth.identity,
      });
      expect(hex(transcript)).toBe(side.transcript);
      expect(ed25519Verify(auth.identity, transcript, auth.signature)).toBe(true);
    }
    const { initiator, responder, initiatorVersionsCell, responderVersionsCell } = encodeLinkAuth(v.input);
    expect({ initiator, responder, initiatorVersionsCell, responderVersionsCell }).toEqual({
      initiator: v.initiator,
      responder: v.responder,
      initiatorVersionsCell: v.initiatorVersionsCell,
      responderVersionsCell: v.responderVersionsCell,
    });

    // The handshake state machine itself sends exactly these cells.
    const keys = (s: string) => ({ secretKey: unhex(s), publicKey: ed25519PublicKey(unhex(s)) });
    const ekm = unhex(v.input.ekm);
    const hi = new LinkHandshake({ role: "initiator", identity: keys(v.input.initiatorSeed), expectedPeer: unhex(v.responderIdentity), ekm, startedAt: 0, timeoutMs: 1000 });
    const hr = new LinkHandshake({ role: "responder", identity: keys(v.input.responderSeed), ekm, startedAt: 0, timeoutMs: 1000 });
    const toResponder = Buffer.concat(hi.start().output);
    expect(hex(toResponder)).toBe(v.initiatorVersionsCell);
    const responderFlight = Buffer.concat([...hr.start().output, ...hr.receive(toResponder, 1).output]);
    expect(hex(responderFlight)).toBe(v.responderVersionsCell + v.responder.authCell);
    const done = hi.receive(responderFlight, 1);
    expect(done.status).toBe("done");
    expect(hex(Buffer.concat(done.output))).toBe(v.initiator.authCell);
    expect(hr.receive(Buffer.concat(done.output), 1).status).toBe("done");
  });

  it("descriptor of an internal node with outbound links only (no address)", () => {
    const v = load<{ input: DescriptorInput; identity: string; hex: string }>("descriptor-outbound.json");
    const d = openDescriptor(unhex(v.hex));
    expect(hex(d.identity)).toBe(v.identity);
    expect(d).toMatchObject({ internal: true, addresses: [], encodedAddresses: [], bridge: false, publishedAt: v.input.publishedAt });
    expect(hex(encodeDescriptorVector(v.input))).toBe(v.hex);
  });

  it("descriptor", () => {
    const v = load<{ input: DescriptorInput; identity: string; hex: string }>("descriptor.json");
    const d = openDescriptor(unhex(v.hex));
    expect(hex(d.identity)).toBe(v.identity);
    expect(v.identity).toBe(pub(v.input.secretKey));
    const { secretKey: _, onionKey, ...fields } = v.input;
    expect(hex(d.onionKey)).toBe(onionKey);
    expect({
      addresses: d.addresses,
      roles: d.roles,
      bridge: d.bridge,
      bandwidth: d.bandwidth,
      country: d.country,
      version: d.version,
      publishedAt: d.publishedAt,
      family: d.family,
    }).toEqual(fields);
    expect(hex(encodeDescriptorVector(v.input))).toBe(v.hex);
  });

  it("vote", () => {
    const v = load<{ input: VoteInput; voter: string; hex: string }>("vote.json");
    const vote = openVote(unhex(v.hex), { discoverySet: new Set([v.voter]) });
    expect(hex(vote.voter)).toBe(v.voter);
    expect(v.voter).toBe(pub(v.input.secretKey));
    expect([vote.validAfter, vote.publishedAt]).toEqual([v.input.validAfter, v.input.publishedAt]);
    const entries = vote.entries.map((e) => ({
      ...e,
      identity: hex(e.identity),
      descriptorDigest: hex(e.descriptorDigest),
      onionKey: hex(e.onionKey),
      addresses: e.addresses.map(decodeAddress),
    }));
    expect(entries).toEqual([...v.input.entries].sort((a, b) => (a.identity < b.identity ? -1 : 1)));
    expect(hex(encodeVoteVector(v.input))).toBe(v.hex);
  });

  // The second has an internal entry: no addresses, flag 512 (issue 20).
  // The third has a commercial entry: flag 1024 and its application ids (issue 17).
  for (const file of ["consensus.json", "consensus-internal.json", "consensus-commercial.json"]) {
    it(file.replace(".json", ""), () => {
      const v = load<{ input: ConsensusInput; voters: string[]; bodyHex: string; bodyDigest: string; hex: string }>(file);
      const bytes = unhex(v.hex);
      const { bodyBytes, signatures } = parseConsensusDocument(bytes);
      expect(hex(bodyBytes)).toBe(v.bodyHex);
      expect(signatures.map((s) => hex(s.signer))).toEqual(v.voters);
      for (const s of signatures) expect(checkConsensusSignature(bodyBytes, s)).toBe(true);
      const body = decodeConsensusBody(bodyBytes);
      const { signerSeeds, entries, ...times } = v.input;
      expect(signerSeeds.map(pub).sort()).toEqual(v.voters);
      expect({ validAfter: body.validAfter, freshUntil: body.freshUntil, validUntil: body.validUntil, discoverySetSize: body.discoverySetSize }).toEqual(times);
      expect(body.voters.map(hex)).toEqual(v.voters);
      expect(
        body.entries.map((e) => ({
          ...e,
          identity: hex(e.identity),
          onionKey: hex(e.onionKey),
          encodedAddresses: e.encodedAddresses.map(hex),
          ...(e.apps ? { apps: e.apps.map(hex) } : {}),
        })),
      ).toEqual(
        entries.map(({ addresses, ...e }) => ({ ...e, encodedAddresses: addrHex(addresses) })),
      );
      const verified = verifyConsensus(bytes, { trustedKeys: v.voters.map(unhex), threshold: 3, now: v.input.validAfter });
      expect([hex(verified.digest), verified.signers.map(hex)]).toEqual([v.bodyDigest, v.voters]);
      const again = encodeConsensusVector(v.input);
      expect([hex(again.body), hex(again.document)]).toEqual([v.bodyHex, v.hex]);
    });
  }

  it("DHT record", () => {
    const v = load<{ input: DhtRecordInput; owner: string; publisher: string; hex: string }>("dht-record.json");
    const r = decodeRecord(unhex(v.hex));
    expect([v.owner, v.publisher]).toEqual([pub(v.input.ownerSeed), pub(v.input.publisherSeed)]);
    expect({ owner: hex(r.owner), publisher: hex(r.publisher), name: r.name, value: hex(r.value), seq: r.seq, expiresAt: r.expiresAt }).toEqual({
      owner: v.owner,
      publisher: v.publisher,
      name: v.input.name,
      value: v.input.value,
      seq: v.input.seq,
      expiresAt: v.input.expiresAt,
    });
    expect(hex(r.key)).toBe(hex(recordKey(unhex(v.owner), v.input.name)));
    // Checks both signatures and the key binding.
    expect(validateRecord(r, { now: v.input.expiresAt - 3_600_000 })).toBe(v.hex.length / 2);
    expect(hex(encodeDhtRecordVector(v.input))).toBe(v.hex);
  });

  it("access certificate", () => {
    const v = load<{ input: CertificateInput; identity: string; authorities: string[]; bodyHex: string; hex: string }>("access-certificate.json");
    const cert = decodeAccessCertificate(unhex(v.hex));
    expect(hex(cert.bodyBytes)).toBe(v.bodyHex);
    expect(cert.body.identity).toBe(v.identity);
    expect(v.identity.startsWith(`${v.input.namespace}.${v.input.application}.account.`)).toBe(true);
    expect(hex(cert.body.key)).toBe(pub(v.input.identitySeed));
    expect({ chainId: cert.body.chainId, registry: cert.body.registry.toLowerCase(), notBefore: cert.body.notBefore, notAfter: cert.body.notAfter }).toEqual({
      chainId: v.input.chainId,
      registry: v.input.registry.toLowerCase(),
      notBefore: v.input.notBefore,
      notAfter: v.input.notAfter,
    });
    expect(cert.signatures.map((s) => hex(s.authority))).toEqual(v.authorities);
    expect(v.input.authoritySeeds.map(pub).sort()).toEqual(v.authorities);
    for (const s of cert.signatures) expect(verifyEndorsement(cert.bodyBytes, s)).toBe(true);
    const verified = verifyAccessCertificate(cert, {
      now: v.input.notBefore * 1000,
      authorities: v.authorities.map(unhex),
      threshold: 3,
      chainId: v.input.chainId,
      registry: v.input.registry,
    });
    expect(verified.authorities.map(hex).sort()).toEqual(v.authorities);
    const again = encodeCertificateVector(v.input);
    expect([hex(again.body), hex(again.certificate)]).toEqual([v.bodyHex, v.hex]);
  });

  it("presence record", () => {
    const v = load<{ input: PresenceRecordInput; identity: string; node: string; blinded: string; dhtKey: string; value: string; ownerSig: string; ownerHex: string; hex: string }>(
      "presence-record.json",
    );
    const identityKey = unhex(v.identity);
    expect([v.identity, v.node]).toEqual([pub(v.input.identitySeed), pub(v.input.nodeSeed)]);
    const location = presenceLocation(identityKey, v.input.period, v.input.periodLength, v.input.slot);
    expect([hex(location.blinded), hex(location.key)]).toEqual([v.blinded, v.dhtKey]);
    expect(presencePeriod(v.input.issuedAt, v.input.periodLength)).toBe(v.input.period);
    // The co-signed record: the DHT accepts it, it is the owner-signed one plus the node's signature, and it opens to the point.
    const r = decodeRecord(unhex(v.hex));
    expect({ owner: hex(r.owner), key: hex(r.key), name: r.name, value: hex(r.value), ownerSig: hex(r.ownerSig), publisher: hex(r.publisher) }).toEqual({
      owner: v.blinded,
      key: v.dhtKey,
      name: `presence/${v.input.slot}`,
      value: v.value,
      ownerSig: v.ownerSig,
      publisher: v.node,
    });
    expect(v.value.startsWith(v.input.nonce)).toBe(true);
    expect(validateRecord(r, { now: v.input.issuedAt })).toBe(v.hex.length / 2);
    const owned = ownerRecordFromWire(decodeCanonical(unhex(v.ownerHex), { maxBytes: 4096 }));
    expect([hex(owned.value), hex(owned.ownerSig), owned.seq, owned.expiresAt]).toEqual([v.value, v.ownerSig, v.input.seq, v.input.expiresAt]);
    const point = readPresenceRecord(identityKey, location, r);
    expect({ ...point, node: hex(point.node), authKey: hex(point.authKey), encKey: hex(point.encKey) }).toEqual({
      slot: v.input.slot,
      node: v.node,
      authKey: v.input.authKey,
      encKey: v.input.encKey,
      flags: v.input.flags,
      points: v.input.points,
      issuedAt: v.input.issuedAt,
    });
    const again = encodePresenceRecordVector(v.input);
    expect([hex(again.ownerWire), hex(again.record)]).toEqual([v.ownerHex, v.hex]);
  });

  it("presence introduction", () => {
    const v = load<{ input: IntroductionInput; identity: string; subcredential: string; x: string; ct: string; mac: string; hex: string }>("presence-introduction.json");
    const request = decodeIntroduceRequest(unhex(v.hex));
    expect({ authKey: hex(request.authKey), x: hex(request.x), ct: hex(request.ct), mac: hex(request.mac), pow: request.pow }).toEqual({
      authKey: v.input.authKey,
      x: v.x,
      ct: v.ct,
      mac: v.mac,
      pow: undefined,
    });
    expect(v.x).toBe(hex(x25519PublicKey(unhex(v.input.clientSecret))));
    expect(v.identity).toBe(introductionIdentity(v.input));
    expect(v.subcredential).toBe(hex(introductionSubcredential(v.input)));
    // The peer opens it with its point's keys: who asks, where to meet, when.
    const opened = openIntroduction({
      authKey: request.authKey,
      encSecret: unhex(v.input.encSecret),
      encKey: x25519PublicKey(unhex(v.input.encSecret)),
      subcredentials: [unhex(v.subcredential)],
      x: request.x,
      ct: request.ct,
      mac: request.mac,
      verifyCertificate: (cert) => {
        expect(hex(cert)).toBe(v.input.cert);
        return { identity: v.identity, key: ed25519PublicKey(unhex(v.input.identitySeed)), notAfter: v.input.now / 1000 + 3600 };
      },
      now: v.input.now,
    });
    expect([opened.identity, hex(opened.rdv), hex(opened.cookie), opened.time]).toEqual([v.identity, v.input.rdv, v.input.cookie, v.input.now]);
    expect(hex(encodeIntroductionVector(v.input).bytes)).toBe(v.hex);
  });
});

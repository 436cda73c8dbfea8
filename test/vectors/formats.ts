/**
 * The inputs of each frozen vector and how PSP's encoders turn them into bytes.
 *
 * scripts/gen-vectors.ts calls `buildVectors()` once to write test/vectors/*.json;
 * test/vectors/vectors.test.ts never writes them: it decodes the frozen hex,
 * compares the decoded fields with the JSON, and re-encodes the JSON's inputs
 * with `encode*` below to the same bytes. Keys are fixed seeds
 * (SHA-256 of a label); Ed25519 signing is deterministic and relay padding is
 * the zero padding, so nothing here draws randomness.
 */
import { createHash } from "node:crypto";
import { ed25519PublicKey, ed25519Sign } from "../../node/src/crypto/ed25519.js";
import { formatIdentity } from "../../node/src/crypto/identity.js";
import { x25519PublicKey } from "../../node/src/crypto/x25519.js";
import { assembleCertificate, buildCertificateBody, signCertificateBody } from "../../node/src/authority/certificate.js";
import { createDescriptor } from "../../node/src/directory/descriptor.js";
import { createVote, type VoteEntry } from "../../node/src/directory/vote.js";
import { assembleConsensus, encodeConsensusBody, signConsensus, type ConsensusBody } from "../../node/src/directory/consensus.js";
import { encodeAddress } from "../../node/src/directory/address.js";
import { coSignRecord, encodeRecord, ownerRecordToWire, signRecordAsOwner } from "../../node/src/dht/record.js";
import type { OwnerSignedRecord } from "../../node/src/dht/record.js";
import { subcredential } from "../../node/src/crypto/blinding.js";
import { buildIntroduction } from "../../node/src/presence/introduction.js";
import { encodeIntroduceRequest } from "../../node/src/presence/messages.js";
import type { IntroduceRequest } from "../../node/src/presence/messages.js";
import { presenceLocation, signPresenceRecord } from "../../node/src/presence/record.js";
import { encodeCanonical } from "../../node/src/wire/canonical.js";
import { AUTH_METHOD_ED25519_EKM, encodeAuthPayload, encodeVersionsBody } from "../../node/src/link/cells.js";
import { authTranscript, type LinkRole } from "../../node/src/link/handshake.js";
import { hopCryptoFromKeyMaterial } from "../../node/src/onion/relay-crypto.js";
import { CellCommand, encodeCell } from "../../node/src/wire/cell.js";
import { RelayCommand, encodeRelayPayload } from "../../node/src/wire/relay.js";

export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
export const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A fixed 32-byte seed: SHA-256("psp-test-vector:" ‖ label). */
export const seed = (label: string): string => createHash("sha256").update(`psp-test-vector:${label}`).digest("hex");

// ---------------------------------------------------------------- cell

export interface CellInput {
  circId: number;
  command: number;
  /** Before zero padding to 507 bytes. */
  payload: string;
}
export const encodeCellVector = (c: CellInput): Uint8Array => encodeCell({ circId: c.circId, command: c.command, payload: unhex(c.payload) });

// ---------------------------------------------------------------- relay cell

export interface RelayInput {
  recognized: number;
  streamId: number;
  digest: string;
  command: number;
  data: string;
}
export const encodeRelayVector = (r: RelayInput): Uint8Array =>
  encodeRelayPayload({ recognized: r.recognized, streamId: r.streamId, digest: unhex(r.digest), command: r.command, data: unhex(r.data) }, { padding: "zero" });
export interface RelayCellInput {
  circId: number;
  command: number;
  relay: RelayInput;
}
export const encodeRelayCellVector = (c: RelayCellInput): Uint8Array => encodeCell({ circId: c.circId, command: c.command, payload: encodeRelayVector(c.relay) });

// ---------------------------------------------------------------- sealed runs

export interface SealedRunInput {
  /** 96 bytes of ntor key material: Df ‖ Db ‖ Kf ‖ Kb. */
  keyMaterial: string;
  /** Runs sealed one after the other in the forward direction; each run's relay payloads (digest fields are written by sealing). */
  runs: RelayInput[][];
}
/** Per run: the sealed plaintext payloads and what the wire carries after the hop's keystream. */
export function encodeSealedRuns(input: SealedRunInput): { sealed: string; encrypted: string }[] {
  const layer = hopCryptoFromKeyMaterial(unhex(input.keyMaterial)).forward;
  return input.runs.map((run) => {
    const payloads = Buffer.concat(run.map(encodeRelayVector));
    layer.sealRun(payloads, 0, run.length);
    const sealed = hex(payloads);
    return { sealed, encrypted: hex(layer.applyKeystream(payloads)) };
  });
}

// ---------------------------------------------------------------- link AUTH

export interface LinkAuthInput {
  initiatorSeed: string;
  responderSeed: string;
  ekm: string;
  initiatorVersions: number[];
  responderVersions: number[];
  version: number;
}
export interface LinkAuthSide {
  transcript: string;
  authCell: string;
}
export function encodeLinkAuth(input: LinkAuthInput): Record<LinkRole, LinkAuthSide> & { initiatorVersionsCell: string; responderVersionsCell: string } {
  const iv = encodeVersionsBody(input.initiatorVersions);
  const rv = encodeVersionsBody(input.responderVersions);
  const side = (role: LinkRole, seedHex: string): LinkAuthSide => {
    const secret = unhex(seedHex);
    const identity = ed25519PublicKey(secret);
    const transcript = authTranscript({ signerRole: role, version: input.version, initiatorVersions: iv, responderVersions: rv, ekm: unhex(input.ekm), signerIdentity: identity });
    const signature = ed25519Sign(secret, transcript);
    const cell = encodeCell({ circId: 0, command: CellCommand.AUTH, payload: encodeAuthPayload({ method: AUTH_METHOD_ED25519_EKM, identity, signature }) });
    return { transcript: hex(transcript), authCell: hex(cell) };
  };
  return {
    initiatorVersionsCell: hex(encodeCell({ circId: 0, command: CellCommand.VERSIONS, payload: iv })),
    responderVersionsCell: hex(encodeCell({ circId: 0, command: CellCommand.VERSIONS, payload: rv })),
    initiator: side("initiator", input.initiatorSeed),
    responder: side("responder", input.responderSeed),
  };
}

// ---------------------------------------------------------------- descriptor

export interface DescriptorInput {
  secretKey: string;
  onionKey: string;
  addresses: { host: string; port: number }[];
  roles: number;
  bridge: boolean;
  bandwidth: number;
  country: string;
  version: string;
  publishedAt: number;
  family?: string;
  /** An internal node (int: true); with no addresses, one with outbound links only. */
  internal?: boolean;
}
export const encodeDescriptorVector = (d: DescriptorInput): Uint8Array => createDescriptor({ ...d, secretKey: unhex(d.secretKey), onionKey: unhex(d.onionKey) });

// ---------------------------------------------------------------- vote

export interface VoteEntryInput {
  identity: string;
  descriptorDigest: string;
  onionKey: string;
  addresses: { host: string; port: number }[];
  country: string;
  version: string;
  bandwidth: number;
  flags: number;
  publishedAt: number;
  family?: string;
}
export interface VoteInput {
  secretKey: string;
  validAfter: number;
  publishedAt: number;
  entries: VoteEntryInput[];
}
export const voteEntry = (e: VoteEntryInput): VoteEntry => ({
  ...e,
  identity: unhex(e.identity),
  descriptorDigest: unhex(e.descriptorDigest),
  onionKey: unhex(e.onionKey),
  addresses: e.addresses.map(encodeAddress),
});
export const encodeVoteVector = (v: VoteInput): Uint8Array =>
  createVote({ secretKey: unhex(v.secretKey), validAfter: v.validAfter, publishedAt: v.publishedAt, entries: v.entries.map(voteEntry) });

// ---------------------------------------------------------------- consensus

export interface ConsensusEntryInput {
  identity: string;
  onionKey: string;
  addresses: { host: string; port: number }[];
  country: string;
  version: string;
  bandwidth: number;
  flags: number;
  family?: string;
  /** Application ids (hex, ascending), with flag 1024 (issue 17). */
  apps?: string[];
}
export interface ConsensusInput {
  /** Seeds of the discovery nodes that sign; their public keys are the voters. */
  signerSeeds: string[];
  validAfter: number;
  freshUntil: number;
  validUntil: number;
  discoverySetSize: number;
  entries: ConsensusEntryInput[];
}
export function consensusBody(c: ConsensusInput): ConsensusBody {
  return {
    validAfter: c.validAfter,
    freshUntil: c.freshUntil,
    validUntil: c.validUntil,
    discoverySetSize: c.discoverySetSize,
    voters: c.signerSeeds.map((s) => ed25519PublicKey(unhex(s))).sort((a, b) => Buffer.compare(a, b)),
    entries: c.entries.map(({ addresses, apps, ...e }) => ({
      ...e,
      identity: unhex(e.identity),
      onionKey: unhex(e.onionKey),
      encodedAddresses: addresses.map(encodeAddress),
      ...(apps ? { apps: apps.map(unhex) } : {}),
    })),
  };
}
export function encodeConsensusVector(c: ConsensusInput): { body: Uint8Array; document: Uint8Array } {
  const body = encodeConsensusBody(consensusBody(c));
  return {
    body,
    document: assembleConsensus(
      body,
      c.signerSeeds.map((s) => signConsensus(body, unhex(s))),
    ),
  };
}

// ---------------------------------------------------------------- DHT record

export interface DhtRecordInput {
  ownerSeed: string;
  publisherSeed: string;
  name: string;
  value: string;
  seq: number;
  expiresAt: number;
}
export const encodeDhtRecordVector = (r: DhtRecordInput): Uint8Array =>
  encodeRecord(
    coSignRecord(signRecordAsOwner({ ownerSecretKey: unhex(r.ownerSeed), name: r.name, value: unhex(r.value), seq: r.seq, expiresAt: r.expiresAt }), unhex(r.publisherSeed)),
  );

// ---------------------------------------------------------------- access certificate

export interface CertificateInput {
  identitySeed: string;
  namespace: string;
  application: string;
  chainId: number;
  registry: `0x${string}`;
  notBefore: number;
  notAfter: number;
  authoritySeeds: string[];
}
export const certificateIdentity = (c: CertificateInput): string =>
  formatIdentity({ namespace: c.namespace, application: c.application, kind: "account", publicKey: ed25519PublicKey(unhex(c.identitySeed)) });
export function encodeCertificateVector(c: CertificateInput): { body: Uint8Array; certificate: Uint8Array } {
  const { bodyBytes } = buildCertificateBody({ identity: certificateIdentity(c), chainId: c.chainId, registry: c.registry, notBefore: c.notBefore, notAfter: c.notAfter });
  return {
    body: bodyBytes,
    certificate: assembleCertificate(
      bodyBytes,
      c.authoritySeeds.map((s) => signCertificateBody(bodyBytes, unhex(s))),
    ),
  };
}

// ---------------------------------------------------------------- presence record

export interface PresenceRecordInput {
  identitySeed: string;
  /** The presence node: named in the record, and its co-signer. */
  nodeSeed: string;
  period: number;
  periodLength: number;
  slot: number;
  authKey: string;
  encKey: string;
  flags: number;
  points: number;
  issuedAt: number;
  /** The value's AEAD nonce (random in use). */
  nonce: string;
  seq: number;
  expiresAt: number;
}
/** The owner-signed record (what a client hands its presence node) and the co-signed DHT record. */
export function encodePresenceRecordVector(r: PresenceRecordInput): { owner: OwnerSignedRecord; ownerWire: Uint8Array; record: Uint8Array } {
  const owner = signPresenceRecord({
    identitySecret: unhex(r.identitySeed),
    identityKey: ed25519PublicKey(unhex(r.identitySeed)),
    period: r.period,
    periodLength: r.periodLength,
    slot: r.slot,
    point: { node: ed25519PublicKey(unhex(r.nodeSeed)), authKey: unhex(r.authKey), encKey: unhex(r.encKey), flags: r.flags, points: r.points, issuedAt: r.issuedAt },
    seq: r.seq,
    expiresAt: r.expiresAt,
    nonce: unhex(r.nonce),
  });
  return { owner, ownerWire: encodeCanonical(ownerRecordToWire(owner)), record: encodeRecord(coSignRecord(owner, unhex(r.nodeSeed))) };
}

// ---------------------------------------------------------------- introduction

export interface IntroductionInput {
  /** The initiator. */
  identitySeed: string;
  namespace: string;
  application: string;
  /** Opaque here: the introduction carries it as it is. */
  cert: string;
  /** The peer, whose point is introduced to, and the period its record was found under. */
  peerSeed: string;
  period: number;
  periodLength: number;
  slot: number;
  authKey: string;
  encSecret: string;
  rdv: string;
  cookie: string;
  now: number;
  /** The hs-ntor secret x (random in use). */
  clientSecret: string;
}
export const introductionIdentity = (i: IntroductionInput): string =>
  formatIdentity({ namespace: i.namespace, application: i.application, kind: "account", publicKey: ed25519PublicKey(unhex(i.identitySeed)) });
export const introductionSubcredential = (i: IntroductionInput): Uint8Array => {
  const peer = ed25519PublicKey(unhex(i.peerSeed));
  return subcredential(peer, presenceLocation(peer, i.period, i.periodLength, i.slot).blinded);
};
export function encodeIntroductionVector(i: IntroductionInput): { request: IntroduceRequest; bytes: Uint8Array } {
  const { request } = buildIntroduction({
    authKey: unhex(i.authKey),
    encKey: x25519PublicKey(unhex(i.encSecret)),
    subcredential: introductionSubcredential(i),
    identity: introductionIdentity(i),
    identitySecret: unhex(i.identitySeed),
    cert: unhex(i.cert),
    rdv: unhex(i.rdv),
    cookie: unhex(i.cookie),
    now: i.now,
    clientSecret: unhex(i.clientSecret),
  });
  return { request, bytes: encodeIntroduceRequest(request) };
}

// ---------------------------------------------------------------- the fixed inputs

const pub = (label: string): string => hex(ed25519PublicKey(unhex(seed(label))));
const onionKey = (label: string): string => hex(x25519PublicKey(unhex(seed(`${label}/onion`))));
const T = 1_800_000_000_000; // ms; 2027-01-15T08:00:00Z

export const inputs = {
  cells: [
    { circId: 0x8000_0001, command: CellCommand.CREATE, payload: hex(utf8("a CREATE payload, zero-padded to 507 bytes")) },
    { circId: 0, command: CellCommand.VERSIONS, payload: hex(encodeVersionsBody([1])) },
  ] satisfies CellInput[],
  relayCell: {
    circId: 0x8000_0001,
    command: CellCommand.RELAY,
    relay: { recognized: 0, streamId: 7, digest: "a1b2c3d4", command: RelayCommand.DATA, data: hex(utf8("hello through three hops")) },
  } satisfies RelayCellInput,
  sealedRun: {
    keyMaterial: seed("hop/key-material-0") + seed("hop/key-material-1") + seed("hop/key-material-2"),
    runs: [
      [
        { recognized: 0, streamId: 1, digest: "00000000", command: RelayCommand.DATA, data: hex(utf8("first of a three-cell run")) },
        { recognized: 0, streamId: 1, digest: "00000000", command: RelayCommand.DATA, data: hex(utf8("second")) },
        { recognized: 0, streamId: 1, digest: "00000000", command: RelayCommand.END, data: "" },
      ],
      [{ recognized: 0, streamId: 0, digest: "00000000", command: RelayCommand.SENDME, data: "" }],
    ],
  } satisfies SealedRunInput,
  linkAuth: {
    initiatorSeed: seed("link/initiator"),
    responderSeed: seed("link/responder"),
    ekm: seed("link/ekm"),
    initiatorVersions: [1],
    responderVersions: [1],
    version: 1,
  } satisfies LinkAuthInput,
  descriptor: {
    secretKey: seed("relay/a"),
    onionKey: onionKey("relay/a"),
    addresses: [
      { host: "192.0.2.10", port: 9001 },
      { host: "2001:db8::10", port: 443 },
    ],
    roles: 1,
    bridge: false,
    bandwidth: 12_500_000,
    country: "DE",
    version: "psp/0.1.0",
    publishedAt: T,
    family: "example-operator",
  } satisfies DescriptorInput,
  descriptorOutbound: {
    secretKey: seed("relay/outbound"),
    onionKey: onionKey("relay/outbound"),
    addresses: [],
    roles: 1,
    bridge: false,
    bandwidth: 1_000_000,
    country: "ZZ",
    version: "psp/0.1.0",
    publishedAt: T,
    internal: true,
  } satisfies DescriptorInput,
  vote: {
    secretKey: seed("discovery/0"),
    validAfter: T,
    publishedAt: T - 60_000,
    entries: [
      {
        identity: pub("relay/a"),
        descriptorDigest: seed("digest/relay/a"),
        onionKey: onionKey("relay/a"),
        addresses: [{ host: "192.0.2.10", port: 9001 }],
        country: "DE",
        version: "psp/0.1.0",
        bandwidth: 12_500_000,
        flags: 3,
        publishedAt: T - 600_000,
        family: "example-operator",
      },
      {
        identity: pub("relay/b"),
        descriptorDigest: seed("digest/relay/b"),
        onionKey: onionKey("relay/b"),
        addresses: [{ host: "198.51.100.7", port: 443 }],
        country: "FR",
        version: "psp/0.1.0",
        bandwidth: 4_000_000,
        flags: 1,
        publishedAt: T - 300_000,
      },
    ],
  } satisfies VoteInput,
  consensus: {
    signerSeeds: [seed("discovery/0"), seed("discovery/1"), seed("discovery/2")],
    validAfter: T,
    freshUntil: T + 900_000,
    validUntil: T + 3 * 900_000,
    discoverySetSize: 3,
    entries: [
      {
        identity: pub("relay/a"),
        onionKey: onionKey("relay/a"),
        addresses: [{ host: "192.0.2.10", port: 9001 }],
        country: "DE",
        version: "psp/0.1.0",
        bandwidth: 12_500_000,
        flags: 3,
        family: "example-operator",
      },
      {
        identity: pub("relay/b"),
        onionKey: onionKey("relay/b"),
        addresses: [{ host: "198.51.100.7", port: 443 }],
        country: "FR",
        version: "psp/0.1.0",
        bandwidth: 4_000_000,
        flags: 1,
      },
    ].sort((a, b) => (a.identity < b.identity ? -1 : 1)),
  } satisfies ConsensusInput,
  // Issue 17: relay/d is a commercial node (flag 1024) serving two applications; relay/a is listed as before.
  consensusCommercial: {
    signerSeeds: [seed("discovery/0"), seed("discovery/1"), seed("discovery/2")],
    validAfter: T,
    freshUntil: T + 900_000,
    validUntil: T + 3 * 900_000,
    discoverySetSize: 3,
    entries: [
      {
        identity: pub("relay/a"),
        onionKey: onionKey("relay/a"),
        addresses: [{ host: "192.0.2.10", port: 9001 }],
        country: "DE",
        version: "psp/0.1.0",
        bandwidth: 12_500_000,
        flags: 1 | 2 | 16 | 32,
      },
      {
        identity: pub("relay/d"),
        onionKey: onionKey("relay/d"),
        addresses: [{ host: "203.0.113.4", port: 9001 }],
        country: "US",
        version: "psp/0.1.0",
        bandwidth: 3_000_000,
        flags: 1 | 2 | 32 | 1024,
        apps: [seed("app/acme.shop"), seed("app/acme.support")].sort(),
      },
    ].sort((a, b) => (a.identity < b.identity ? -1 : 1)),
  } satisfies ConsensusInput,
  // Issue 20: relay/c is internal (flag 512, running | valid | onion | internal): listed with no address.
  consensusInternal: {
    signerSeeds: [seed("discovery/0"), seed("discovery/1"), seed("discovery/2")],
    validAfter: T,
    freshUntil: T + 900_000,
    validUntil: T + 3 * 900_000,
    discoverySetSize: 3,
    entries: [
      {
        identity: pub("relay/a"),
        onionKey: onionKey("relay/a"),
        addresses: [{ host: "192.0.2.10", port: 9001 }],
        country: "DE",
        version: "psp/0.1.0",
        bandwidth: 12_500_000,
        flags: 1 | 2 | 16 | 32,
      },
      {
        identity: pub("relay/c"),
        onionKey: onionKey("relay/c"),
        addresses: [],
        country: "NL",
        version: "psp/0.1.0",
        bandwidth: 2_000_000,
        flags: 1 | 2 | 32 | 512,
      },
    ].sort((a, b) => (a.identity < b.identity ? -1 : 1)),
  } satisfies ConsensusInput,
  dhtRecord: {
    ownerSeed: seed("dht/owner"),
    publisherSeed: seed("dht/publisher"),
    name: "presence/0",
    value: hex(utf8("an opaque presence value")),
    seq: 3,
    expiresAt: T + 3_600_000,
  } satisfies DhtRecordInput,
  certificate: {
    identitySeed: seed("cert/alice"),
    namespace: "peerstream",
    application: "client",
    chainId: 31337,
    registry: "0x00000000000000000000000000000000000000aa",
    notBefore: T / 1000,
    notAfter: T / 1000 + 3600,
    authoritySeeds: [seed("authority/0"), seed("authority/1"), seed("authority/2")],
  } satisfies CertificateInput,
  presenceRecord: {
    identitySeed: seed("presence/alice"),
    nodeSeed: seed("presence/node"),
    period: 20_832, // the day-long period T falls in (presencePeriod(T, 1440))
    periodLength: 1440,
    slot: 1,
    authKey: pub("presence/alice/point-1/auth"),
    encKey: hex(x25519PublicKey(unhex(seed("presence/alice/point-1/enc")))),
    flags: 0,
    points: 3,
    issuedAt: T,
    nonce: seed("presence/record-nonce").slice(0, 24),
    seq: T,
    expiresAt: T + 600_000,
  } satisfies PresenceRecordInput,
  introduction: {
    identitySeed: seed("presence/bob"),
    namespace: "peerstream",
    application: "client",
    cert: hex(utf8("an access certificate, opaque to the introduction")),
    peerSeed: seed("presence/alice"),
    period: 20_832,
    periodLength: 1440,
    slot: 1,
    authKey: pub("presence/alice/point-1/auth"),
    encSecret: seed("presence/alice/point-1/enc"),
    rdv: pub("presence/rendezvous"),
    cookie: seed("presence/cookie").slice(0, 40),
    now: T,
    clientSecret: seed("presence/introduction-x"),
  } satisfies IntroductionInput,
};

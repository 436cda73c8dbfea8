/**
 * Commercial nodes (issue 17) at the directory layer: the descriptor's `apps`
 * claim, the discovery node keeping only the ids the chain confirms (and the
 * `commercial` flag with them), the majority rule for ids in the consensus,
 * and decoders refusing ids without the flag, the flag without ids, unsorted
 * or duplicate ids, and too many. Other nodes' bytes stay as they were.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { compareBytes } from "../../node/src/base/bytes.js";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { ChainRole, MAX_APPS, NodeFlag, bytesToHexFast } from "../../node/src/directory/config.js";
import {
  assembleConsensus,
  computeConsensus,
  decodeConsensusBody,
  encodeConsensusBody,
  signConsensus,
  verifyConsensus,
} from "../../node/src/directory/consensus.js";
import type { ConsensusBody } from "../../node/src/directory/consensus.js";
import { createDescriptor, openDescriptor } from "../../node/src/directory/descriptor.js";
import type { DescriptorFields } from "../../node/src/directory/descriptor.js";
import { DiscoveryNode } from "../../node/src/directory/discovery-node.js";
import { DirectoryError } from "../../node/src/directory/errors.js";
import { simulatedSecret } from "../../node/src/directory/sim.js";
import { createVote, openVote } from "../../node/src/directory/vote.js";
import type { VoteEntry } from "../../node/src/directory/vote.js";
import { signDocument } from "../../node/src/wire/document.js";
import { kindOf as anyKindOf } from "../helpers/index.js";

const NOW = 1_700_000_000_000;
const SCHEDULE = { periodMs: 10_000, voteDelayMs: 2_000, distDelayMs: 2_000, validPeriods: 3 };
const kindOf = (fn: () => unknown) => anyKindOf(fn, DirectoryError);
const secretKey = simulatedSecret("commercial", "relay", 0);
const identity = ed25519PublicKey(secretKey);
const app = (n: number) => new Uint8Array(32).fill(n);

function fields(overrides: Partial<DescriptorFields> = {}): DescriptorFields {
  return {
    onionKey: new Uint8Array(32).fill(7),
    addresses: [{ host: "198.51.100.7", port: 9001 }],
    roles: ChainRole.onion,
    bridge: false,
    bandwidth: 250_000,
    country: "DE",
    version: "psp/0.1.0",
    publishedAt: NOW,
    ...overrides,
  };
}

const rawBody = (extra: Record<string, unknown>) => ({
  addrs: [Uint8Array.of(198, 51, 100, 7, 0x23, 0x29)],
  bridge: false,
  bw: 1,
  cc: "DE",
  okey: new Uint8Array(32),
  pub: NOW,
  roles: 1,
  ver: "psp/0.1.0",
  ...extra,
});
const resigned = (body: Record<string, unknown>) => signDocument({ type: "descriptor", body, secretKey });

describe("descriptor: the apps claim", () => {
  it("round-trips sorted ids; none or an empty list leaves the bytes as before", () => {
    const d = openDescriptor(createDescriptor({ ...fields({ apps: [app(9), app(3)] }), secretKey }));
    expect(d.apps).toEqual([app(3), app(9)]);
    const plain = createDescriptor({ ...fields(), secretKey });
    expect(createDescriptor({ ...fields({ apps: [] }), secretKey })).toEqual(plain);
    expect(openDescriptor(plain).apps).toBeUndefined();
  });

  it("refuses duplicate, unsorted, short, empty and too many ids", () => {
    expect(kindOf(() => createDescriptor({ ...fields({ apps: [app(1), app(1)] }), secretKey }))).toBe("malformed");
    expect(kindOf(() => createDescriptor({ ...fields({ apps: [new Uint8Array(31)] }), secretKey }))).toBe("malformed");
    expect(kindOf(() => createDescriptor({ ...fields({ apps: Array.from({ length: MAX_APPS + 1 }, (_, i) => app(i)) }), secretKey }))).toBe("malformed");
    expect(kindOf(() => openDescriptor(resigned(rawBody({ apps: [app(2), app(1)] }))))).toBe("malformed");
    expect(kindOf(() => openDescriptor(resigned(rawBody({ apps: [app(1), app(1)] }))))).toBe("malformed");
    expect(kindOf(() => openDescriptor(resigned(rawBody({ apps: [] }))))).toBe("malformed");
    expect(kindOf(() => openDescriptor(resigned(rawBody({ apps: [new Uint8Array(33)] }))))).toBe("malformed");
    expect(kindOf(() => openDescriptor(resigned(rawBody({ apps: "acme" }))))).toBe("malformed");
    expect(openDescriptor(resigned(rawBody({ apps: [app(1), app(2)] }))).apps).toEqual([app(1), app(2)]);
  });

  it("never throws anything but DirectoryError for random apps values", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.array(fc.uint8Array({ minLength: 0, maxLength: 40 }), { maxLength: MAX_APPS + 2 }),
          fc.array(fc.oneof(fc.integer(), fc.string(), fc.boolean()), { maxLength: 3 }),
          fc.integer(),
          fc.string(),
        ),
        (apps) => {
          try {
            openDescriptor(resigned(rawBody({ apps })));
          } catch (err) {
            if (!(err instanceof DirectoryError)) throw err;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("discovery node: the chain confirms claims", () => {
  const discoverySecret = simulatedSecret("commercial", "discovery", 0);
  const node = (served: Map<string, Uint8Array[]> | undefined) =>
    new DiscoveryNode({
      secretKey: discoverySecret,
      discoverySet: [ed25519PublicKey(discoverySecret)],
      chainRoles: () => ChainRole.onion,
      ...(served ? { chainApps: (id: Uint8Array) => served.get(bytesToHexFast(id)) ?? [] } : {}),
      schedule: SCHEDULE,
    });

  it("keeps only claimed ids the chain confirms, with the commercial flag; none confirmed: no flag, no ids", () => {
    // The chain says the node serves apps 3 and 5; it claims 3 and 9. 5 was not claimed, 9 is not confirmed.
    const served = new Map([[bytesToHexFast(identity), [app(3), app(5)]]]);
    const dn = node(served);
    dn.submitDescriptor(createDescriptor({ ...fields({ apps: [app(3), app(9)] }), secretKey }), NOW);
    dn.setReachable([identity]);
    const [entry] = dn.voteEntries(NOW);
    expect(entry?.apps).toEqual([app(3)]);
    expect((entry?.flags ?? 0) & NodeFlag.commercial).toBe(NodeFlag.commercial);

    const unconfirmed = node(new Map());
    unconfirmed.submitDescriptor(createDescriptor({ ...fields({ apps: [app(9)] }), secretKey }), NOW);
    unconfirmed.setReachable([identity]);
    const [plain] = unconfirmed.voteEntries(NOW);
    expect(plain?.apps).toBeUndefined();
    expect((plain?.flags ?? 0) & NodeFlag.commercial).toBe(0);

    // Without a chain view nothing is confirmed.
    const blind = node(undefined);
    blind.submitDescriptor(createDescriptor({ ...fields({ apps: [app(3)] }), secretKey }), NOW);
    blind.setReachable([identity]);
    expect(blind.voteEntries(NOW)[0]?.apps).toBeUndefined();
  });
});

describe("votes and consensus: application ids", () => {
  const voters = [0, 1, 2].map((i) => simulatedSecret("commercial-rules", "discovery", i));
  const set = new Set(voters.map((s) => bytesToHexFast(ed25519PublicKey(s))));
  const base = NodeFlag.running | NodeFlag.valid | NodeFlag.onion;
  const entry = (apps?: Uint8Array[]): VoteEntry => ({
    identity: new Uint8Array(32).fill(1),
    descriptorDigest: new Uint8Array(32).fill(2),
    onionKey: new Uint8Array(32).fill(3),
    addresses: [Uint8Array.of(192, 0, 2, 1, 0x23, 0x29)],
    country: "NL",
    version: "psp/0.1.0",
    bandwidth: 1000,
    flags: apps ? base | NodeFlag.commercial : base,
    publishedAt: 10,
    ...(apps ? { apps } : {}),
  });
  const vote = (i: number, apps?: Uint8Array[]) =>
    openVote(createVote({ secretKey: voters[i]!, validAfter: 50_000, publishedAt: 1, entries: [entry(apps)] }), { discoverySet: set });

  it("lists an id carried by a majority of the votes, with the flag; a minority claim is dropped with the flag", () => {
    const c = computeConsensus([vote(0, [app(3), app(5)]), vote(1, [app(3)]), vote(2)], { discoverySetSize: 3, schedule: SCHEDULE });
    expect(c.body.entries[0]!.apps).toEqual([app(3)]);
    expect(c.body.entries[0]!.flags).toBe(base | NodeFlag.commercial);
    const minority = computeConsensus([vote(0, [app(3)]), vote(1), vote(2)], { discoverySetSize: 3, schedule: SCHEDULE });
    expect(minority.body.entries[0]!.apps).toBeUndefined();
    expect(minority.body.entries[0]!.flags).toBe(base);
    // A node no one claims anything for encodes exactly as before the field existed.
    const none = computeConsensus([vote(0), vote(1), vote(2)], { discoverySetSize: 3, schedule: SCHEDULE });
    expect(encodeConsensusBody(none.body)).toEqual(minority.bodyBytes);
  });

  it("refuses a vote entry with ids but no flag, or the flag but no ids", () => {
    const bad = (e: VoteEntry) => () =>
      openVote(createVote({ secretKey: voters[0]!, validAfter: 50_000, publishedAt: 1, entries: [e] }), { discoverySet: set });
    expect(kindOf(bad({ ...entry([app(1)]), flags: base }))).toBe("malformed");
    expect(kindOf(bad({ ...entry(), flags: base | NodeFlag.commercial }))).toBe("malformed");
  });

  const body = (flags: number, apps?: Uint8Array[]): ConsensusBody => ({
    validAfter: NOW,
    freshUntil: NOW + 10_000,
    validUntil: NOW + 30_000,
    discoverySetSize: 3,
    voters: voters.map((s) => ed25519PublicKey(s)).sort(compareBytes),
    entries: [
      {
        identity,
        onionKey: new Uint8Array(32),
        encodedAddresses: [Uint8Array.of(192, 0, 2, 1, 0x23, 0x29)],
        country: "DE",
        version: "psp/0.1.0",
        bandwidth: 1,
        flags,
        ...(apps ? { apps } : {}),
      },
    ],
  });
  const signed = (bodyBytes: Uint8Array) =>
    assembleConsensus(
      bodyBytes,
      voters.map((s) => signConsensus(bodyBytes, s)),
    );
  const trusted = { trustedKeys: voters.map((s) => ed25519PublicKey(s)), now: NOW + 1 };

  it("a client accepts ids only with the flag, ascending and distinct", () => {
    const ok = verifyConsensus(signed(encodeConsensusBody(body(base | NodeFlag.commercial, [app(1), app(2)]))), trusted);
    expect(ok.entries[0]!.apps).toEqual([app(1), app(2)]);
    expect(kindOf(() => decodeConsensusBody(encodeConsensusBody(body(base, [app(1)]))))).toBe("malformed");
    expect(kindOf(() => decodeConsensusBody(encodeConsensusBody(body(base | NodeFlag.commercial))))).toBe("malformed");
    expect(kindOf(() => decodeConsensusBody(encodeConsensusBody(body(base | NodeFlag.commercial, [app(2), app(1)]))))).toBe("malformed");
    expect(kindOf(() => decodeConsensusBody(encodeConsensusBody(body(base | NodeFlag.commercial, [app(1), app(1)]))))).toBe("malformed");
    const many = Array.from({ length: MAX_APPS + 1 }, (_, i) => app(i + 1));
    expect(kindOf(() => decodeConsensusBody(encodeConsensusBody(body(base | NodeFlag.commercial, many))))).toBe("malformed");
  });
});

/**
 * Internal nodes (issue 20) at the directory layer: the descriptor's `int`
 * field, the `internal` flag in votes and the consensus, consensus entries
 * without addresses, the path-selection input, and the node-only view
 * (served to known nodes, refused to anonymous or unlisted requesters).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compareBytes } from "../../../node/src/base/bytes.js";
import { ed25519PublicKey } from "../../../node/src/crypto/ed25519.js";
import { ChainRole, NodeFlag, bytesToHexFast, flagNames } from "../../../node/src/directory/config.js";
import {
  assembleConsensus,
  computeConsensus,
  decodeConsensusBody,
  encodeConsensusBody,
  signConsensus,
  verifyConsensus,
} from "../../../node/src/directory/consensus.js";
import type { ConsensusBody } from "../../../node/src/directory/consensus.js";
import { createDescriptor, openDescriptor, verifyDescriptor } from "../../../node/src/directory/descriptor.js";
import type { DescriptorFields } from "../../../node/src/directory/descriptor.js";
import { DirectoryError } from "../../../node/src/directory/errors.js";
import { consensusToPathNodes } from "../../../node/src/directory/path-nodes.js";
import { DirectorySimulation, simulatedSecret } from "../../../node/src/directory/sim.js";
import { createVote, openVote } from "../../../node/src/directory/vote.js";
import type { VoteEntry } from "../../../node/src/directory/vote.js";
import { decodeCanonical, encodeCanonical } from "../../../node/src/wire/canonical.js";
import { serveConsensus } from "../../../node/src/directory/client.js";
import { InternalDirectory, answerFetchInternal, internalViewOf, listedIn } from "../../../node/src/directory/internal.js";
import { decodeDirectoryRequest, decodeDirectoryResponse, encodeDirectoryRequest, encodeDirectoryResponse } from "../../../node/src/directory/messages.js";
import type { DirectoryRpc } from "../../../node/src/directory/transport.js";
import { parseNodeConfig } from "../../../node/src/node/config.js";
import { signDocument } from "../../../node/src/wire/document.js";
import { encodeDescriptorVector } from "../../vectors/formats.js";
import type { DescriptorInput } from "../../vectors/formats.js";
import { kindOf as anyKindOf } from "../../helpers/index.js";

const NOW = 1_700_000_000_000;
const SCHEDULE = { periodMs: 10_000, voteDelayMs: 2_000, distDelayMs: 2_000, validPeriods: 3 };
const kindOf = (fn: () => unknown) => anyKindOf(fn, DirectoryError);
const secretKey = simulatedSecret("internal", "relay", 0);
const identity = ed25519PublicKey(secretKey);

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

/** The descriptor body with its signature remade, to test what the decoder does with a field createDescriptor never writes. */
function resigned(body: Record<string, unknown>): Uint8Array {
  return signDocument({ type: "descriptor", body, secretKey });
}

describe("descriptor: the int field", () => {
  it("round-trips internal: true, and leaves a public node's bytes as before (frozen vector unchanged)", () => {
    const d = verifyDescriptor(createDescriptor({ ...fields({ internal: true }), secretKey }), { now: NOW, isRegisteredAndStaked: () => true });
    expect(d.internal).toBe(true);
    expect(d.addresses).toEqual([{ host: "198.51.100.7", port: 9001 }]);
    const body = decodeCanonical((decodeCanonical(d.bytes, { maxBytes: 4096 }) as { body: Uint8Array }).body, { maxBytes: 4096 }) as Record<string, unknown>;
    expect(body["int"]).toBe(true);
    // false and absent give the same bytes, without the key.
    const publicBytes = createDescriptor({ ...fields(), secretKey });
    expect(createDescriptor({ ...fields({ internal: false }), secretKey })).toEqual(publicBytes);
    expect(openDescriptor(publicBytes).internal).toBeUndefined();
    const vector = JSON.parse(readFileSync(new URL("../../vectors/descriptor.json", import.meta.url), "utf8")) as { input: DescriptorInput; hex: string };
    expect(Buffer.from(encodeDescriptorVector(vector.input)).toString("hex")).toBe(vector.hex);
    expect(openDescriptor(Buffer.from(vector.hex, "hex")).internal).toBeUndefined();
  });

  it("refuses a non-boolean or false int, and a bridge that is internal", () => {
    const body = (extra: Record<string, unknown>) => ({
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
    expect(openDescriptor(resigned(body({ int: true }))).internal).toBe(true);
    expect(kindOf(() => openDescriptor(resigned(body({ int: 1 }))))).toBe("malformed");
    expect(kindOf(() => openDescriptor(resigned(body({ int: "yes" }))))).toBe("malformed");
    expect(kindOf(() => openDescriptor(resigned(body({ int: false }))))).toBe("malformed");
    expect(kindOf(() => openDescriptor(resigned(body({ int: true, bridge: true }))))).toBe("malformed");
    expect(kindOf(() => createDescriptor({ ...fields({ internal: true, bridge: true }), secretKey }))).toBe("malformed");
    expect(kindOf(() => createDescriptor({ ...fields({ internal: "yes" as unknown as boolean }), secretKey }))).toBe("malformed");
  });
});

function network(internal: number[]): DirectorySimulation {
  const sim = new DirectorySimulation({ discoveryNodes: 3, relays: 6, start: NOW, schedule: SCHEDULE, thresholds: { stableMinUptimeMs: 15_000 }, internal });
  sim.publishDescriptors();
  sim.probeReachability();
  return sim;
}

describe("votes and consensus: the internal flag", () => {
  it("sets internal, never guard, and lists the node without addresses; other entries are unchanged", () => {
    const plain = network([]);
    const sim = network([2]);
    plain.runUntil(NOW + 30_000, 500);
    sim.runUntil(NOW + 30_000, 500);
    const keys = sim.trust().keys;
    const c = verifyConsensus(sim.latestConsensus() as Uint8Array, { trustedKeys: keys, now: sim.now });
    const before = verifyConsensus(plain.latestConsensus() as Uint8Array, { trustedKeys: keys, now: plain.now });
    const internalId = bytesToHexFast(sim.relays[2]!.identity);
    // Votes (exchanged among discovery nodes only) keep the addresses and carry the flag.
    const vote = openVote(sim.discovery[0]!.node.votesFor(c.validAfter)[0]!, { discoverySet: new Set(keys.map(bytesToHexFast)) });
    const voted = vote.entries.find((e) => bytesToHexFast(e.identity) === internalId)!;
    expect(voted.flags & NodeFlag.internal).toBe(NodeFlag.internal);
    expect(voted.flags & NodeFlag.guard).toBe(0);
    expect(voted.addresses).toHaveLength(1);
    // The consensus everyone fetches: flag set, no guard (it is fast and stable by now), no address.
    const entry = c.entries.find((e) => bytesToHexFast(e.identity) === internalId)!;
    expect(flagNames(entry.flags)).toEqual(["running", "valid", "fast", "stable", "onion", "internal"]);
    expect(entry.encodedAddresses).toEqual([]);
    // Every other entry is exactly what it is in a network without internal nodes.
    const others = c.entries.filter((e) => bytesToHexFast(e.identity) !== internalId);
    expect(others).toEqual(before.entries.filter((e) => bytesToHexFast(e.identity) !== internalId));
    expect(others.every((e) => (e.flags & NodeFlag.internal) === 0 && e.encodedAddresses.length === 1)).toBe(true);
    expect(others.filter((e) => (e.flags & NodeFlag.guard) !== 0).length).toBeGreaterThan(0);
  });

  const voters = [0, 1, 2].map((i) => simulatedSecret("internal-rules", "discovery", i));
  const set = new Set(voters.map((s) => bytesToHexFast(ed25519PublicKey(s))));
  const entry = (flags: number): VoteEntry => ({
    identity: new Uint8Array(32).fill(1),
    descriptorDigest: new Uint8Array(32).fill(2),
    onionKey: new Uint8Array(32).fill(3),
    addresses: [Uint8Array.of(192, 0, 2, 1, 0x23, 0x29)],
    country: "NL",
    version: "psp/0.1.0",
    bandwidth: 1000,
    flags,
    publishedAt: 10,
  });
  const vote = (i: number, flags: number) =>
    openVote(createVote({ secretKey: voters[i]!, validAfter: 50_000, publishedAt: 1, entries: [entry(flags)] }), { discoverySet: set });
  const base = NodeFlag.running | NodeFlag.valid | NodeFlag.onion;

  it("takes internal by majority like any flag, and then drops guard and addresses", () => {
    // Two of three say internal; guard is set by two (a split between voters): internal wins.
    const split = computeConsensus([vote(0, base | NodeFlag.internal), vote(1, base | NodeFlag.internal | NodeFlag.guard), vote(2, base | NodeFlag.guard)], {
      discoverySetSize: 3,
      schedule: SCHEDULE,
    });
    expect(split.body.entries[0]!.flags).toBe(base | NodeFlag.internal);
    expect(split.body.entries[0]!.encodedAddresses).toEqual([]);
    // One of three: not internal, addresses kept.
    const minority = computeConsensus([vote(0, base | NodeFlag.internal), vote(1, base), vote(2, base)], { discoverySetSize: 3, schedule: SCHEDULE });
    expect(minority.body.entries[0]!.flags).toBe(base);
    expect(minority.body.entries[0]!.encodedAddresses).toHaveLength(1);
  });

  const body = (flags: number, addrs: Uint8Array[]): ConsensusBody => ({
    validAfter: NOW,
    freshUntil: NOW + 10_000,
    validUntil: NOW + 30_000,
    discoverySetSize: 3,
    voters: voters.map((s) => ed25519PublicKey(s)).sort(compareBytes),
    entries: [{ identity: identity, onionKey: new Uint8Array(32), encodedAddresses: addrs, country: "DE", version: "psp/0.1.0", bandwidth: 1, flags }],
  });
  const signed = (bodyBytes: Uint8Array) =>
    assembleConsensus(
      bodyBytes,
      voters.map((s) => signConsensus(bodyBytes, s)),
    );
  const trusted = { trustedKeys: voters.map((s) => ed25519PublicKey(s)), now: NOW + 1 };

  it("accepts zero addresses only for an internal entry, and refuses an internal entry with addresses", () => {
    const ok = verifyConsensus(signed(encodeConsensusBody(body(base | NodeFlag.internal, []))), trusted);
    expect(ok.entries[0]!.encodedAddresses).toEqual([]);
    // encodeConsensusBody does not judge; the decoder (every fetcher's check) does.
    expect(kindOf(() => verifyConsensus(signed(encodeConsensusBody(body(base, []))), trusted))).toBe("malformed");
    expect(kindOf(() => verifyConsensus(signed(encodeConsensusBody(body(base | NodeFlag.internal, [Uint8Array.of(192, 0, 2, 1, 0x23, 0x29)]))), trusted))).toBe(
      "malformed",
    );
    expect(kindOf(() => decodeConsensusBody(encodeConsensusBody(body(base, []))))).toBe("malformed");
  });

  it("gives path selection an internal node with host '' and port 0, and the 'internal' flag name", () => {
    const c = verifyConsensus(
      signed(
        encodeConsensusBody({
          ...body(base | NodeFlag.internal, []),
          entries: [
            {
              ...body(0, [])!.entries[0]!,
              identity: new Uint8Array(32).fill(1),
              flags: base | NodeFlag.guard,
              encodedAddresses: [Uint8Array.of(192, 0, 2, 1, 0x23, 0x29)],
              bandwidth: 5,
            },
            {
              ...body(0, [])!.entries[0]!,
              identity: new Uint8Array(32).fill(2),
              flags: base | NodeFlag.internal,
              encodedAddresses: [],
              bandwidth: 7,
              family: "op",
            },
          ],
        }),
      ),
      trusted,
    );
    const nodes = consensusToPathNodes(c);
    expect(nodes.map((n) => [n.host, n.port, n.flags, n.weight, n.family])).toEqual([
      ["192.0.2.1", 9001, ["running", "valid", "guard", "onion"], 5, undefined],
      ["", 0, ["running", "valid", "onion", "internal"], 7, "op"],
    ]);
    expect(consensusToPathNodes(c, { requireFlags: ["internal"] }).map((n) => n.identity)).toEqual([new Uint8Array(32).fill(2)]);
  });
});

describe("the node-only view", () => {
  const sim = network([2, 4]);
  sim.runUntil(NOW + 10_000, 500);
  const keys = sim.trust().keys;
  const consensus = verifyConsensus(sim.latestConsensus() as Uint8Array, { trustedKeys: keys, now: sim.now });
  const discovery = sim.discovery[0]!.node;
  const source = { internalView: (now: number) => (now <= consensus.validUntil ? internalViewOf(consensus, discovery.heldDescriptors()) : undefined) };
  const listed = listedIn(() => consensus);
  const relay = (i: number) => sim.relays[i]!;

  it("is made of the held descriptors of the nodes the consensus flags internal, in consensus order", () => {
    const view = internalViewOf(consensus, discovery.heldDescriptors());
    expect(view.validAfter).toBe(consensus.validAfter);
    const ids = view.descriptors.map((b) => bytesToHexFast(openDescriptor(b).identity));
    const internalIds = consensus.entries.filter((e) => (e.flags & NodeFlag.internal) !== 0).map((e) => bytesToHexFast(e.identity));
    expect(ids).toEqual(internalIds);
    expect(ids.sort()).toEqual([relay(2), relay(4)].map((r) => bytesToHexFast(r.identity)).sort());
  });

  it("is served to a known node, refused to an anonymous or unlisted requester", () => {
    const served = answerFetchInternal(source, relay(0).identity, listed, sim.now);
    expect(served).toMatchObject({ type: "internal", validAfter: consensus.validAfter });
    expect((served as { descriptors: Uint8Array[] }).descriptors).toHaveLength(2);
    expect(answerFetchInternal(source, null, listed, sim.now)).toMatchObject({ type: "error", kind: "unauthorized" });
    expect(answerFetchInternal(source, new Uint8Array(32).fill(9), listed, sim.now)).toMatchObject({ type: "error", kind: "unauthorized" });
    expect(answerFetchInternal(source, relay(0).identity, listed, consensus.validUntil + 1)).toEqual({ type: "no-consensus" });
    // The answer crosses the wire and back; the requester turns the refusal into a typed error.
    for (const r of [served, answerFetchInternal(source, null, listed, sim.now)]) expect(decodeDirectoryResponse(encodeDirectoryResponse(r))).toEqual(r);
    expect(decodeDirectoryRequest(encodeDirectoryRequest({ type: "fetch-internal" }))).toEqual({ type: "fetch-internal" });
    expect(kindOf(() => decodeDirectoryRequest(encodeCanonical({ t: "int", x: 1 })))).toBe("malformed");
    expect(kindOf(() => decodeDirectoryResponse(encodeCanonical({ t: "int", va: 1, descs: [new Uint8Array(2049)] })))).toBe("too-large");
    expect(kindOf(() => decodeDirectoryResponse(encodeCanonical({ t: "int", va: 1, descs: "x" })))).toBe("malformed");
    expect(new DirectoryError("unauthorized", "x").category).toBe("refused");
  });

  it("a node keeps only verified, fresh descriptors of internal nodes, gives their addresses, and serves them on", () => {
    const view = internalViewOf(consensus, discovery.heldDescriptors());
    const publicDescriptor = discovery.heldDescriptors().find((d) => bytesToHexFast(d.identity) === bytesToHexFast(relay(0).identity))!.bytes;
    const forged = view.descriptors[0]!.slice();
    forged[forged.length - 70] = (forged[forged.length - 70] as number) ^ 1;
    const dir = new InternalDirectory();
    const result = dir.offer(consensus, [...view.descriptors, publicDescriptor, forged], sim.now);
    expect(result.accepted).toBe(2);
    expect(result.rejected).toEqual({ "not-registered": 1, "bad-signature": 1 });
    expect(dir.addressesOf(relay(2).identity)).toEqual(relay(2).fields.addresses);
    expect(dir.addressesOf(relay(4).identity, sim.now)).toEqual(relay(4).fields.addresses);
    expect(dir.addressesOf(relay(0).identity)).toBeUndefined();
    // Offered again: nothing newer.
    expect(dir.offer(consensus, view.descriptors, sim.now).accepted).toBe(0);
    // What it holds it serves on, byte for byte.
    expect(dir.internalView(sim.now)).toEqual(view);
    // Stale: no longer given out.
    const later = sim.now + 4 * 3600_000;
    expect(dir.addressesOf(relay(2).identity, later)).toBeUndefined();
    expect(dir.offer(consensus, view.descriptors, later)).toEqual({ accepted: 0, rejected: { stale: 2 } });
    // A consensus that no longer flags a node internal drops its descriptor.
    dir.setConsensus({ validAfter: consensus.validAfter, entries: consensus.entries.map((e) => ({ ...e, flags: e.flags & ~NodeFlag.internal })) });
    expect(dir.size).toBe(0);
  });

  it("serveConsensus answers fetch-internal from a node's InternalDirectory, to listed nodes only", async () => {
    let handler: ((bytes: Uint8Array, ctx: { peer: Uint8Array | null }) => Promise<Uint8Array>) | undefined;
    const rpc = { serve: (_s: unknown, h: typeof handler) => ((handler = h), () => undefined), request: () => Promise.reject(new Error("unused")) };
    const dir = new InternalDirectory();
    dir.offer(consensus, internalViewOf(consensus, discovery.heldDescriptors()).descriptors, sim.now);
    const client = { serve: () => undefined, serveCompressed: () => undefined, current: () => consensus };
    serveConsensus(rpc as unknown as DirectoryRpc, client, () => sim.now, { internal: dir });
    const ask = async (peer: Uint8Array | null) => decodeDirectoryResponse(await handler!(encodeDirectoryRequest({ type: "fetch-internal" }), { peer }));
    expect(await ask(relay(1).identity)).toMatchObject({ type: "internal", validAfter: consensus.validAfter });
    expect(await ask(null)).toMatchObject({ type: "error", kind: "unauthorized" });
    expect(await ask(new Uint8Array(32))).toMatchObject({ type: "error", kind: "unauthorized" });
    // Without a view to serve, the request is not served at all.
    serveConsensus(rpc as unknown as DirectoryRpc, client, () => sim.now);
    expect(await ask(relay(1).identity)).toMatchObject({ type: "error", kind: "not-served" });
  });
});

describe("node config: directory.internal", () => {
  const directory = { discovery: [{ identity: "ab".repeat(32), host: "127.0.0.1", port: 9001 }] };
  const parse = (extra: Record<string, unknown>) => parseNodeConfig({ listen: { host: "127.0.0.1", port: 0 }, directory: { ...directory, ...extra } });

  it("is a boolean, and not together with bridge", () => {
    expect(parse({ internal: true }).directory?.internal).toBe(true);
    expect(parse({}).directory?.internal).toBeUndefined();
    expect(() => parse({ internal: "yes" })).toThrow(/directory\.internal/);
    expect(() => parse({ internal: true, bridge: true })).toThrow(/directory\.internal/);
  });
});

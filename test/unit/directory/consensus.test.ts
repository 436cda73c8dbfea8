import { describe, expect, it } from "vitest";
import { selectPath } from "../../../node/src/onion/path.js";
import { ConsensusCache } from "../../../node/src/directory/cache.js";
import { decompressConsensus } from "../../../node/src/directory/compression.js";
import { NodeFlag, bytesToHexFast, flagNames, resolveTrust } from "../../../node/src/directory/config.js";
import { assembleConsensus, computeConsensus, encodeConsensusBody, signConsensus, verifyConsensus } from "../../../node/src/directory/consensus.js";
import { createDescriptor } from "../../../node/src/directory/descriptor.js";
import { DirectoryError } from "../../../node/src/directory/errors.js";
import { consensusToPathNodes } from "../../../node/src/directory/path-nodes.js";
import { nextRefreshTime } from "../../../node/src/directory/schedule.js";
import { DirectorySimulation, simulatedSecret } from "../../../node/src/directory/sim.js";
import { createVote, openVote } from "../../../node/src/directory/vote.js";
import type { Vote, VoteEntry } from "../../../node/src/directory/vote.js";
import { ed25519PublicKey } from "../../../node/src/crypto/ed25519.js";
import { kindOf as anyKindOf } from "../../helpers/index.js";

const START = 1_700_000_000_000; // a multiple of the 10 s test period
const SCHEDULE = { periodMs: 10_000, voteDelayMs: 2_000, distDelayMs: 2_000, validPeriods: 3 };

const kindOf = (fn: () => unknown) => anyKindOf(fn, DirectoryError);

function network(options: { discovery?: number; relays?: number; bridges?: number[] } = {}): DirectorySimulation {
  const sim = new DirectorySimulation({
    discoveryNodes: options.discovery ?? 3,
    relays: options.relays ?? 8,
    start: START,
    schedule: SCHEDULE,
    thresholds: { stableMinUptimeMs: 15_000 },
    bridges: options.bridges ?? [],
  });
  sim.publishDescriptors();
  sim.probeReachability();
  return sim;
}

const hexes = (keys: Uint8Array[]) => keys.map(bytesToHexFast).sort();

describe("discovery service (simulated: 3+ discovery nodes, several relays)", () => {
  it("forms a consensus that clients verify, and path selection can use", () => {
    const sim = network({ bridges: [7] });
    sim.runUntil(START + 10_000, 500);
    const bytes = sim.latestConsensus();
    expect(bytes).toBeDefined();
    // All three discovery nodes computed the same body: their published documents are identical.
    const published = sim.discovery.map((d) => d.node.latestConsensus()?.bytes);
    expect(published[0]).toEqual(published[1]);
    expect(published[1]).toEqual(published[2]);
    const trust = sim.trust();
    const c = verifyConsensus(bytes as Uint8Array, { trustedKeys: trust.keys, threshold: 2, now: START + 10_000 });
    expect(c.signers.length).toBe(3);
    expect([c.validAfter, c.freshUntil, c.validUntil]).toEqual([START + 10_000, START + 20_000, START + 40_000]);
    // Every relay but the bridge (index 7) is listed.
    expect(hexes(c.entries.map((e) => e.identity))).toEqual(hexes(sim.relays.slice(0, 7).map((r) => r.identity)));
    for (const e of c.entries) expect(e.flags & (NodeFlag.running | NodeFlag.valid | NodeFlag.onion)).toBe(NodeFlag.running | NodeFlag.valid | NodeFlag.onion);
    const nodes = consensusToPathNodes(c);
    expect(nodes).toHaveLength(7);
    const path = selectPath(nodes, { random: () => 0.5 });
    expect(path).toHaveLength(3);
    expect(sim.rejections).toEqual([]);
  });

  it("assigns stable and guard only after the uptime threshold, by majority", () => {
    const sim = network();
    sim.runUntil(START + 10_000, 500);
    const first = verifyConsensus(sim.latestConsensus() as Uint8Array, { trustedKeys: sim.trust().keys, now: sim.now });
    expect(first.entries.every((e) => (e.flags & (NodeFlag.stable | NodeFlag.guard)) === 0)).toBe(true);
    sim.runUntil(START + 30_000, 500);
    const later = verifyConsensus(sim.latestConsensus() as Uint8Array, { trustedKeys: sim.trust().keys, now: sim.now });
    // Relays with bandwidth >= 100 kB/s are fast, so guard once stable; index 0 has 50 kB/s.
    const slow = later.entries.find((e) => bytesToHexFast(e.identity) === bytesToHexFast(sim.relays[0]!.identity))!;
    expect(flagNames(slow.flags)).toEqual(["running", "valid", "stable", "onion"]);
    expect(later.entries.filter((e) => (e.flags & NodeFlag.guard) !== 0)).toHaveLength(7);
  });

  it("still reaches a consensus with one discovery node down, fetching nothing it cannot get", () => {
    const sim = network();
    sim.discovery[2]!.up = false;
    sim.runUntil(START + 10_000, 500);
    const c = verifyConsensus(sim.latestConsensus() as Uint8Array, { trustedKeys: sim.trust().keys, threshold: 2, now: sim.now });
    expect(c.signers.length).toBe(2);
    expect(c.voters.length).toBe(2);
    expect(c.entries).toHaveLength(8);
    // The live nodes noticed the missing vote and asked for it.
    const fetches = sim.discovery[0]!.actions.filter((a) => a.type === "fetch-votes");
    expect(fetches.length).toBeGreaterThan(0);
    expect(fetches[0]!.type === "fetch-votes" && hexes(fetches[0]!.voters)).toEqual(hexes([sim.discovery[2]!.node.publicKey]));
  });

  it("fails to publish, and says so, with a majority of discovery nodes down", () => {
    const sim = network();
    sim.discovery[1]!.up = false;
    sim.discovery[2]!.up = false;
    sim.runUntil(START + 10_000, 500);
    expect(sim.latestConsensus()).toBeUndefined();
    expect(sim.discovery[0]!.actions.some((a) => a.type === "consensus-failed" && a.kind === "insufficient-votes")).toBe(true);
  });

  it("rejects a consensus one discovery node signs listing only its own nodes", () => {
    const sim = network();
    const rogue = sim.discovery[0]!;
    const own = createDescriptor({
      onionKey: new Uint8Array(32).fill(1),
      addresses: [{ host: "203.0.113.1", port: 9001 }],
      roles: 1,
      bridge: false,
      bandwidth: 1e6,
      country: "ZZ",
      version: "evil/1",
      publishedAt: START,
      secretKey: simulatedSecret("rogue", "relay", 0),
    });
    sim.chain.set(bytesToHexFast(ed25519PublicKey(simulatedSecret("rogue", "relay", 0))), 1);
    rogue.node.submitDescriptor(own, START);
    rogue.node.setReachable([ed25519PublicKey(simulatedSecret("rogue", "relay", 0))]);
    const vote = openVote(createVote({ secretKey: rogue.secretKey, validAfter: START + 10_000, publishedAt: START, entries: rogue.node.voteEntries(START) }), {
      discoverySet: new Set(sim.trust().keys.map(bytesToHexFast)),
    });
    // With N = 1 the rogue node "wins" its own vote and signs it.
    const computed = computeConsensus([vote], { discoverySetSize: 1, schedule: SCHEDULE });
    expect(computed.body.entries).toHaveLength(1);
    const doc = assembleConsensus(computed.bodyBytes, [signConsensus(computed.bodyBytes, rogue.secretKey)]);
    expect(kindOf(() => verifyConsensus(doc, { trustedKeys: sim.trust().keys, threshold: 2, now: START + 10_000 }))).toBe("under-signed");
    // Signed only by keys nobody trusts: unknown-signer.
    const stranger = simulatedSecret("stranger", "x", 0);
    const strangerDoc = assembleConsensus(computed.bodyBytes, [signConsensus(computed.bodyBytes, stranger)]);
    expect(kindOf(() => verifyConsensus(strangerDoc, { trustedKeys: sim.trust().keys, now: START + 10_000 }))).toBe("unknown-signer");
    // A signature copied onto another body does not count.
    sim.runUntil(START + 10_000, 500);
    const real = verifyConsensus(sim.latestConsensus() as Uint8Array, { trustedKeys: sim.trust().keys, now: sim.now });
    const spliced = assembleConsensus(computed.bodyBytes, [
      signConsensus(computed.bodyBytes, rogue.secretKey),
      { signer: sim.discovery[1]!.node.publicKey, sig: signConsensus(real.bodyBytes, sim.discovery[1]!.secretKey).sig },
    ]);
    expect(kindOf(() => verifyConsensus(spliced, { trustedKeys: sim.trust().keys, threshold: 2, now: START + 10_000 }))).toBe("under-signed");
  });

  it("rejects expired, future-dated and under-signed consensus documents", () => {
    const sim = network();
    sim.runUntil(START + 10_000, 500);
    const bytes = sim.latestConsensus() as Uint8Array;
    const trustedKeys = sim.trust().keys;
    expect(kindOf(() => verifyConsensus(bytes, { trustedKeys, now: START + 40_001 }))).toBe("expired");
    expect(verifyConsensus(bytes, { trustedKeys, now: START + 40_000 }).validUntil).toBe(START + 40_000);
    expect(kindOf(() => verifyConsensus(bytes, { trustedKeys, now: START + 9_999 }))).toBe("future-dated");
    expect(verifyConsensus(bytes, { trustedKeys, now: START + 9_000, clockSkewMs: 1_000 }).validAfter).toBe(START + 10_000);
    expect(verifyConsensus(bytes, { trustedKeys, threshold: 3, now: START + 10_000 }).signers).toHaveLength(3);
    const one = verifyConsensus(bytes, { trustedKeys, now: START + 10_000 });
    const underSigned = assembleConsensus(one.bodyBytes, [signConsensus(one.bodyBytes, sim.discovery[0]!.secretKey)]);
    expect(kindOf(() => verifyConsensus(underSigned, { trustedKeys, now: START + 10_000 }))).toBe("under-signed");
    expect(kindOf(() => verifyConsensus(bytes, { trustedKeys, now: START + 10_000, maxBytes: 100 }))).toBe("too-large");
    expect(kindOf(() => verifyConsensus(bytes, { trustedKeys: [], now: START }))).toBe("bad-config");
    expect(kindOf(() => verifyConsensus(bytes, { now: START + 10_000 }))).toBe("bad-config"); // built-in set is empty
  });

  it("never lets a forged or unregistered descriptor into a vote", () => {
    const sim = network({ relays: 4 });
    const victim = sim.relays[1]!;
    const honest = createDescriptor({ ...victim.fields, publishedAt: START + 1, secretKey: victim.secretKey });
    const forged = honest.slice();
    forged[forged.length - 70] = (forged[forged.length - 70] as number) ^ 1; // inside the body or signature
    sim.deliverDescriptor(forged);
    expect(sim.rejections.map((r) => r.kind)).toEqual(["bad-signature", "bad-signature", "bad-signature"]);
    // An unregistered node, reachable and well signed, is refused too.
    const outsider = simulatedSecret("outsider", "relay", 0);
    sim.deliverDescriptor(createDescriptor({ ...victim.fields, publishedAt: START, secretKey: outsider }));
    expect(sim.rejections.slice(3).map((r) => r.kind)).toEqual(["not-registered", "not-registered", "not-registered"]);
    sim.runUntil(START + 10_000, 500);
    const c = verifyConsensus(sim.latestConsensus() as Uint8Array, { trustedKeys: sim.trust().keys, now: sim.now });
    expect(c.entries).toHaveLength(4);
    // The victim is listed with its honest descriptor's values (the first one, published at START).
    const entry = c.entries.find((e) => bytesToHexFast(e.identity) === bytesToHexFast(victim.identity))!;
    expect(entry.onionKey).toEqual(victim.fields.onionKey);
  });

  it("drops a node that leaves after the next period, and one whose stake is gone", () => {
    const sim = network({ relays: 5 });
    sim.runUntil(START + 10_000, 500);
    const trustedKeys = sim.trust().keys;
    expect(verifyConsensus(sim.latestConsensus() as Uint8Array, { trustedKeys, now: sim.now }).entries).toHaveLength(5);
    sim.relays[3]!.up = false;
    sim.probeReachability();
    sim.chain.delete(bytesToHexFast(sim.relays[4]!.identity)); // unstaked on chain
    sim.runUntil(START + 20_000, 500);
    const c = verifyConsensus(sim.latestConsensus() as Uint8Array, { trustedKeys, now: sim.now });
    expect(hexes(c.entries.map((e) => e.identity))).toEqual(hexes(sim.relays.slice(0, 3).map((r) => r.identity)));
  });

  it("refuses votes from outside the set, for other periods, and conflicting ones", () => {
    const sim = network({ relays: 2 });
    sim.runUntil(START + 7_000, 500); // votes for START+10s are out (voteAt = START+6s)
    const [a, b] = sim.discovery;
    const validAfter = START + 10_000;
    const mine = a!.node.votesFor(validAfter, [a!.node.publicKey]);
    expect(mine).toHaveLength(1);
    expect(b!.node.receiveVote(mine[0]!, sim.now)).toBe(false); // a copy
    const other = createVote({ secretKey: a!.secretKey, validAfter, publishedAt: sim.now, entries: [] });
    expect(kindOf(() => b!.node.receiveVote(other, sim.now))).toBe("conflicting-vote");
    const outsider = createVote({ secretKey: simulatedSecret("x", "y", 1), validAfter, publishedAt: sim.now, entries: [] });
    expect(kindOf(() => b!.node.receiveVote(outsider, sim.now))).toBe("unknown-signer");
    const late = createVote({ secretKey: a!.secretKey, validAfter: START + 50_000, publishedAt: sim.now, entries: [] });
    expect(kindOf(() => b!.node.receiveVote(late, sim.now))).toBe("wrong-period");
  });

  it("computes deterministically: majority of N (not of votes), flag majority, common descriptor, low-median bandwidth", () => {
    const voters = [0, 1, 2, 3, 4].map((i) => simulatedSecret("rules", "discovery", i));
    const set = new Set(voters.map((s) => bytesToHexFast(ed25519PublicKey(s))));
    const id = (n: number) => new Uint8Array(32).fill(n);
    const entry = (n: number, o: Partial<VoteEntry> = {}): VoteEntry => ({
      identity: id(n),
      descriptorDigest: new Uint8Array(32).fill(100 + n),
      onionKey: new Uint8Array(32).fill(200),
      addresses: [Uint8Array.of(192, 0, 2, n, 0x23, 0x29)],
      country: "NL",
      version: "psp/0.1.0",
      bandwidth: 1000,
      flags: NodeFlag.running | NodeFlag.valid,
      publishedAt: 10,
      ...o,
    });
    const alt = { descriptorDigest: new Uint8Array(32).fill(9), onionKey: new Uint8Array(32).fill(201), publishedAt: 11 };
    const mk = (i: number, entries: VoteEntry[]): Vote => openVote(createVote({ secretKey: voters[i]!, validAfter: 50_000, publishedAt: 1, entries }), { discoverySet: set });
    // Node 1: listed by 3 of 5 (in). Node 2: listed by 2 of 3 votes received, but 2 of N = 5 (out).
    // Node 1's fast flag: 2 of 3 listing votes (set). Stable: 1 of 3 (not set).
    // Node 1's descriptor: two votes name the alt one, one the first -> alt wins.
    const votes = [
      mk(0, [entry(1, { ...alt, flags: NodeFlag.running | NodeFlag.fast, bandwidth: 5000 }), entry(2)]),
      mk(1, [entry(1, { ...alt, flags: NodeFlag.running | NodeFlag.fast | NodeFlag.stable, bandwidth: 10 }), entry(2)]),
      mk(2, [entry(1, { bandwidth: 700 })]),
    ];
    const c = computeConsensus(votes, { discoverySetSize: 5, schedule: SCHEDULE });
    expect(c.body.entries).toHaveLength(1);
    const e = c.body.entries[0]!;
    expect(e.flags).toBe(NodeFlag.running | NodeFlag.fast);
    expect(e.onionKey).toEqual(alt.onionKey);
    expect(e.bandwidth).toBe(700); // low median of 10, 700, 5000
    expect(c.body.validUntil - c.body.validAfter).toBe(30_000);
    // Order of the votes does not matter.
    expect(computeConsensus([votes[2]!, votes[0]!, votes[1]!], { discoverySetSize: 5, schedule: SCHEDULE }).bodyBytes).toEqual(c.bodyBytes);
    expect(encodeConsensusBody(c.body)).toEqual(c.bodyBytes);
    // A tie between two descriptors goes to the later publication time.
    const tie = computeConsensus([mk(0, [entry(1, alt)]), mk(1, [entry(1)]), mk(2, [entry(1)]), mk(3, [entry(1, alt)])], { discoverySetSize: 5, schedule: SCHEDULE });
    expect(tie.body.entries[0]!.onionKey).toEqual(alt.onionKey);
    expect(kindOf(() => computeConsensus(votes.slice(0, 2), { discoverySetSize: 5, schedule: SCHEDULE }))).toBe("insufficient-votes");
    expect(kindOf(() => computeConsensus([votes[0]!, votes[0]!, votes[1]!], { discoverySetSize: 5, schedule: SCHEDULE }))).toBe("conflicting-vote");
  });
});

describe("client side: cache and refresh", () => {
  it("keeps the newest verified consensus, serves it while live, and upgrades to more signatures", () => {
    const sim = network({ relays: 3 });
    sim.runUntil(START + 10_000, 500);
    const trust = sim.trust();
    const first = sim.latestConsensus() as Uint8Array;
    const cache = new ConsensusCache({ trustedKeys: trust.keys, threshold: trust.threshold });
    const c1 = verifyConsensus(first, { trustedKeys: trust.keys, now: sim.now });
    const twoSigs = assembleConsensus(c1.bodyBytes, [signConsensus(c1.bodyBytes, sim.discovery[0]!.secretKey), signConsensus(c1.bodyBytes, sim.discovery[1]!.secretKey)]);
    expect(cache.offer(twoSigs, sim.now)).toBe("accepted");
    expect(cache.offer(first, sim.now)).toBe("accepted"); // same body, three signatures
    expect(cache.offer(twoSigs, sim.now)).toBe("same");
    expect(kindOf(() => cache.offer(Uint8Array.of(1, 2, 3), sim.now))).toBe("malformed");
    expect(cache.serve(sim.now)).toEqual(first);
    // Compressed serving round-trips to the same signed bytes, and decompression is bounded.
    const packed = cache.serveCompressed(sim.now) as Uint8Array;
    expect(packed.length).toBeLessThan(first.length);
    expect(decompressConsensus(packed)).toEqual(first);
    expect(kindOf(() => decompressConsensus(packed, first.length - 1))).toBe("too-large");
    expect(kindOf(() => decompressConsensus(Uint8Array.of(1, 2, 3)))).toBe("malformed");
    sim.runUntil(START + 20_000, 500);
    expect(cache.offer(sim.latestConsensus() as Uint8Array, sim.now)).toBe("accepted");
    expect(cache.offer(first, sim.now)).toBe("older");
    expect(cache.current(START + 50_000)).toBeDefined();
    expect(cache.current(START + 50_001)).toBeUndefined();
    expect(cache.serve(START + 50_001)).toBeUndefined();
  });

  it("schedules refreshes at random times after fresh-until, clients after caches", () => {
    const c = { freshUntil: 1000, validUntil: 3000 };
    expect(nextRefreshTime(c, { random: () => 0, role: "cache" })).toBe(1000);
    expect(nextRefreshTime(c, { random: () => 0.999999, role: "cache" })).toBeLessThan(2000);
    expect(nextRefreshTime(c, { random: () => 0 })).toBe(2000);
    expect(nextRefreshTime(c, { random: () => 0.999999 })).toBeLessThan(2750);
    for (let i = 0; i < 50; i++) {
      const t = nextRefreshTime(c);
      expect(t).toBeGreaterThanOrEqual(2000);
      expect(t).toBeLessThan(2750);
    }
    expect(kindOf(() => nextRefreshTime(c, { random: () => 1 }))).toBe("bad-config");
    expect(resolveTrust({ keys: [new Uint8Array(32)], threshold: 1 }).threshold).toBe(1);
  });
});

/**
 * Internal nodes with outbound links only (issue 20), the pure parts: the
 * address-less descriptor and vote entry (only when internal), the consensus
 * rule for split votes, the config (directory.internal.outboundLinks), the
 * neighbour rule, the redial plan and backoff, InternalDirectory's
 * isOutboundOnly/missing, and the node-only view refresher's retry, fallback
 * and counters (driven with a fetch function and fake timers).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { ed25519PublicKey } from "../../../node/src/crypto/ed25519.js";
import { encodeAddress } from "../../../node/src/directory/address.js";
import { ChainRole, NodeFlag, bytesToHexFast } from "../../../node/src/directory/config.js";
import { computeConsensus } from "../../../node/src/directory/consensus.js";
import type { ConsensusEntry } from "../../../node/src/directory/consensus.js";
import { createDescriptor, openDescriptor, verifyDescriptor } from "../../../node/src/directory/descriptor.js";
import type { DescriptorFields } from "../../../node/src/directory/descriptor.js";
import { DirectoryError } from "../../../node/src/directory/errors.js";
import { InternalDirectory } from "../../../node/src/directory/internal.js";
import type { InternalView } from "../../../node/src/directory/internal.js";
import { InternalViewRefresher, retryDelay } from "../../../node/src/directory/internal-refresh.js";
import { OutboundLinkPlan, outboundNeighbours } from "../../../node/src/directory/outbound.js";
import { simulatedSecret } from "../../../node/src/directory/sim.js";
import { createVote, openVote } from "../../../node/src/directory/vote.js";
import type { VoteEntry } from "../../../node/src/directory/vote.js";
import type { PeerAddress } from "../../../node/src/link/manager.js";
import { parseNodeConfig } from "../../../node/src/node/config.js";
import { signDocument } from "../../../node/src/wire/document.js";
import { kindOf as anyKindOf } from "../../helpers/index.js";

const NOW = 1_700_000_000_000;
const SCHEDULE = { periodMs: 10_000, voteDelayMs: 2_000, distDelayMs: 2_000, validPeriods: 3 };
const kindOf = (fn: () => unknown) => anyKindOf(fn, DirectoryError);
const secretOf = (i: number) => simulatedSecret("outbound", "relay", i);
const idOf = (i: number) => ed25519PublicKey(secretOf(i));

function fields(overrides: Partial<DescriptorFields> = {}): DescriptorFields {
  return {
    onionKey: new Uint8Array(32).fill(7),
    addresses: [],
    roles: ChainRole.onion,
    bridge: false,
    bandwidth: 250_000,
    country: "DE",
    version: "psp/0.1.0",
    publishedAt: NOW,
    internal: true,
    ...overrides,
  };
}
const descriptor = (i: number, overrides: Partial<DescriptorFields> = {}) => createDescriptor({ ...fields(overrides), secretKey: secretOf(i) });

describe("wire: no address only for an internal node", () => {
  it("a descriptor with int and no address round-trips; without int it is malformed, made or opened", () => {
    const bytes = descriptor(1);
    const d = verifyDescriptor(bytes, { now: NOW, isRegisteredAndStaked: () => true });
    expect(d).toMatchObject({ internal: true, addresses: [], encodedAddresses: [] });
    expect(kindOf(() => descriptor(1, { internal: undefined }))).toBe("malformed");
    expect(kindOf(() => descriptor(1, { internal: false }))).toBe("malformed");
    // Signed by hand, since createDescriptor refuses it: the decoder refuses it too.
    const body = { addrs: [], bridge: false, bw: 1, cc: "DE", okey: new Uint8Array(32), pub: NOW, roles: 1, ver: "psp/0.1.0" };
    expect(kindOf(() => openDescriptor(signDocument({ type: "descriptor", body, secretKey: secretOf(1) })))).toBe("malformed");
    expect(openDescriptor(signDocument({ type: "descriptor", body: { ...body, int: true }, secretKey: secretOf(1) })).addresses).toEqual([]);
  });

  const voters = [0, 1, 2].map((i) => simulatedSecret("outbound", "discovery", i));
  const set = new Set(voters.map((s) => bytesToHexFast(ed25519PublicKey(s))));
  const base = NodeFlag.running | NodeFlag.valid | NodeFlag.onion;
  const entry = (flags: number, addresses: Uint8Array[]): VoteEntry => ({
    identity: idOf(1),
    descriptorDigest: new Uint8Array(32).fill(2),
    onionKey: new Uint8Array(32).fill(3),
    addresses,
    country: "NL",
    version: "psp/0.1.0",
    bandwidth: 1000,
    flags,
    publishedAt: 10,
  });
  const vote = (i: number, e: VoteEntry) =>
    openVote(createVote({ secretKey: voters[i]!, validAfter: 50_000, publishedAt: 1, entries: [e] }), { discoverySet: set });

  it("a vote entry with no address must be internal", () => {
    expect(vote(0, entry(base | NodeFlag.internal, [])).entries[0]!.addresses).toEqual([]);
    expect(kindOf(() => vote(0, entry(base, [])))).toBe("malformed");
  });

  it("the consensus lists it with no address; split votes that would list an address-less node as public leave it out", () => {
    const address = encodeAddress({ host: "192.0.2.1", port: 9001 });
    const listed = computeConsensus(
      [0, 1, 2].map((i) => vote(i, entry(base | NodeFlag.internal, []))),
      { discoverySetSize: 3, schedule: SCHEDULE },
    );
    expect(listed.body.entries[0]).toMatchObject({ flags: base | NodeFlag.internal, encodedAddresses: [] });
    // A majority says "not internal" while the descriptor the consensus picks may be the address-less one:
    // whatever is picked, no entry is ever public without an address (that consensus would not decode).
    const split = computeConsensus([vote(0, entry(base | NodeFlag.internal, [])), vote(1, entry(base, [address])), vote(2, entry(base, [address]))], {
      discoverySetSize: 3,
      schedule: SCHEDULE,
    });
    for (const e of split.body.entries) expect((e.flags & NodeFlag.internal) !== 0 || e.encodedAddresses.length > 0).toBe(true);
  });
});

describe("config: directory.internal.outboundLinks", () => {
  const directory = { discovery: [{ identity: "ab".repeat(32), host: "127.0.0.1", port: 9001 }] };
  const parse = (extra: Record<string, unknown>, top: Record<string, unknown> = {}) =>
    parseNodeConfig({ listen: { host: "127.0.0.1", port: 0 }, ...top, directory: { ...directory, ...extra } });

  it("makes the node internal with outbound links, with optional retry bounds, and parses again to the same value", () => {
    expect(parse({ internal: { outboundLinks: true } }).directory).toMatchObject({ internal: true, outboundLinks: {} });
    const parsed = parse({ internal: { outboundLinks: { minRetryMs: 100, maxRetryMs: 5000 } } });
    expect(parsed.directory).toMatchObject({ internal: true, outboundLinks: { minRetryMs: 100, maxRetryMs: 5000 } });
    expect(parseNodeConfig(parsed)).toEqual(parsed);
    expect(parseNodeConfig(parse({ internal: { outboundLinks: true } }))).toEqual(parse({ internal: { outboundLinks: true } }));
    expect(parse({ internal: true }).directory?.outboundLinks).toBeUndefined();
  });

  it("refuses what it cannot honour, naming the field", () => {
    expect(() => parse({ internal: { outboundLinks: false } })).toThrow(/directory\.internal\.outboundLinks/);
    expect(() => parse({ internal: {} })).toThrow(/directory\.internal\.outboundLinks/);
    expect(() => parse({ internal: { outboundLinks: { neighbours: 4 } } })).toThrow(/neighbour set is not supported/);
    expect(() => parse({ internal: { outboundLinks: true, neighbours: 4 } })).toThrow(/directory\.internal\.neighbours/);
    expect(() => parse({ internal: { outboundLinks: true, other: 1 } })).toThrow(/directory\.internal\.other/);
    expect(() => parse({ internal: { outboundLinks: { minRetryMs: 5 } } })).toThrow(/minRetryMs/);
    expect(() => parse({ internal: { outboundLinks: { minRetryMs: 500, maxRetryMs: 100 } } })).toThrow(/maxRetryMs/);
    expect(() => parse({ internal: { outboundLinks: { minRetryMs: "1" } } })).toThrow(/minRetryMs/);
    expect(() => parse({ internal: { outboundLinks: 3 } })).toThrow(/directory\.internal\.outboundLinks/);
    expect(() => parse({ internal: { outboundLinks: true }, bridge: true })).toThrow(/bridge and internal/);
    expect(() => parse({ internal: { outboundLinks: true } }, { advertise: { host: "192.0.2.1", port: 9001 } })).toThrow(/advertise/);
    expect(() => parse({ internal: "outbound" })).toThrow(/directory\.internal/);
    expect(() => parse({ outboundLinks: {} })).toThrow(/only for an internal node/);
    expect(() => parse({ internal: { outboundLinks: true }, outboundLinks: {} })).toThrow(/give it once/);
  });
});

describe("neighbours and the redial plan", () => {
  const entry = (i: number, flags: number, address = true): ConsensusEntry => ({
    identity: idOf(i),
    onionKey: new Uint8Array(32),
    encodedAddresses: address ? [encodeAddress({ host: `192.0.2.${i}`, port: 9001 })] : [],
    country: "DE",
    version: "psp/0.1.0",
    bandwidth: 1,
    flags,
  });
  const relay = NodeFlag.running | NodeFlag.valid | NodeFlag.onion;

  it("are the discovery nodes and every running public onion relay, never itself or an internal node, each once", () => {
    const consensus = {
      entries: [
        entry(1, relay),
        entry(2, relay | NodeFlag.guard),
        entry(3, relay | NodeFlag.internal, false),
        entry(4, NodeFlag.valid | NodeFlag.onion), // not running
        entry(5, NodeFlag.running | NodeFlag.valid | NodeFlag.discovery), // no onion role
        entry(6, relay), // ourselves
      ],
    };
    const discovery: PeerAddress[] = [{ identity: idOf(5), host: "198.51.100.5", port: 1 }];
    const out = outboundNeighbours(consensus, discovery, idOf(6));
    expect(out.map((p) => bytesToHexFast(p.identity))).toEqual([5, 1, 2].map((i) => bytesToHexFast(idOf(i))));
    expect(out[1]).toMatchObject({ host: "192.0.2.1", port: 9001 });
    expect(outboundNeighbours(undefined, discovery, idOf(6))).toEqual(discovery);
  });

  it("backs off exponentially per failure up to the cap, never dials an open or dialing neighbour, and forgets a departed one", () => {
    expect([0, 1, 2, 3, 4, 10, 100].map((f) => retryDelay(f, 100, 1000))).toEqual([0, 100, 200, 400, 800, 1000, 1000]);
    const plan = new OutboundLinkPlan({ minRetryMs: 100, maxRetryMs: 1000 });
    const a: PeerAddress = { identity: idOf(1), host: "192.0.2.1", port: 1 };
    const b: PeerAddress = { identity: idOf(2), host: "192.0.2.2", port: 1 };
    expect(plan.setNeighbours([a, b])).toEqual([]);
    const open = new Set<string>([bytesToHexFast(b.identity)]);
    const isOpen = (id: Uint8Array) => open.has(bytesToHexFast(id));
    expect(plan.due(0, isOpen)).toEqual([a]);
    expect(plan.due(0, isOpen)).toEqual([]); // a is being dialed
    plan.dialed(a.identity, false, 0);
    expect(plan.due(99, isOpen)).toEqual([]);
    expect(plan.nextDueAt(0)).toBe(100);
    expect(plan.due(100, isOpen)).toEqual([a]);
    plan.dialed(a.identity, false, 100);
    expect(plan.due(299, isOpen)).toEqual([]);
    expect(plan.due(300, isOpen)).toEqual([a]);
    plan.dialed(a.identity, true, 300);
    open.add(bytesToHexFast(a.identity));
    expect(plan.due(300, isOpen)).toEqual([]);
    // A backoff that is over is not "next": the timer never spins on it.
    expect(plan.nextDueAt(300)).toBeUndefined();
    // A link that drops soon after it came up counts as one more failure (a peer that accepts and closes is not hammered).
    open.delete(bytesToHexFast(a.identity));
    plan.dropped(a.identity, 1000);
    expect(plan.due(1399, isOpen)).toEqual([]);
    expect(plan.due(1400, isOpen)).toEqual([a]);
    plan.dialed(a.identity, true, 1400);
    // One that stayed up for maxRetryMs starts the count again.
    plan.dropped(a.identity, 2400);
    expect(plan.due(2499, isOpen)).toEqual([]);
    expect(plan.due(2500, isOpen)).toEqual([a]);
    expect(plan.setNeighbours([b])).toEqual([bytesToHexFast(a.identity)]);
    expect(plan.has(bytesToHexFast(a.identity))).toBe(false);
    expect(plan.size).toBe(1);
  });
});

describe("the node-only view: outbound-only nodes and the refresh", () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  const consensusOf = (validAfter: number, internal: number[]) => ({
    validAfter,
    validUntil: validAfter + 30_000,
    entries: internal.map((i): ConsensusEntry => ({
      identity: idOf(i),
      onionKey: new Uint8Array(32),
      encodedAddresses: [],
      country: "DE",
      version: "psp/0.1.0",
      bandwidth: 1,
      flags: NodeFlag.running | NodeFlag.onion | NodeFlag.internal,
    })),
  });
  const listening = (i: number) => descriptor(i, { addresses: [{ host: `192.0.2.${i}`, port: 9001 }] });

  it("tells an outbound-only node (no address: reached by its links) from a listening one, and which are missing", () => {
    const dir = new InternalDirectory();
    const c = consensusOf(NOW, [1, 2, 3]);
    dir.offer(c, [descriptor(1), listening(2)], NOW);
    expect(dir.isOutboundOnly(idOf(1), NOW)).toBe(true);
    expect(dir.addressesOf(idOf(1), NOW)).toEqual([]);
    expect(dir.isOutboundOnly(idOf(2), NOW)).toBe(false);
    expect(dir.isOutboundOnly(idOf(3), NOW)).toBe(false); // unknown
    expect(dir.missing(NOW)).toEqual([bytesToHexFast(idOf(3))]);
    expect(dir.missing(NOW + 4 * 3600_000).length).toBe(3); // all stale by then
  });

  const peer = (i: number): PeerAddress => ({ identity: idOf(100 + i), host: `198.51.100.${i}`, port: 1 });

  it("retries a round that got no answer with backoff, and counts failures and staleness", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const dir = new InternalDirectory();
    let calls = 0;
    const fetch = (): Promise<InternalView> => {
      calls++;
      if (calls <= 2) return Promise.reject(new DirectoryError("unavailable", "down"));
      return Promise.resolve({ validAfter: NOW, descriptors: [descriptor(1)] });
    };
    const refresher = new InternalViewRefresher({ internal: dir, fetch, sources: () => [peer(1)], minRetryMs: 1000, maxRetryMs: 8000, now: () => NOW });
    await refresher.update(consensusOf(NOW, [1]));
    expect(refresher.stats).toMatchObject({ fetches: 0, failures: { unavailable: 1 }, retries: 1, stale: true, viewValidAfter: 0, missing: 1 });
    await vi.advanceTimersByTimeAsync(999);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(2);
    expect(refresher.stats.retries).toBe(2);
    await vi.advanceTimersByTimeAsync(1999); // the second wait is twice the first
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(3);
    expect(refresher.stats).toMatchObject({ fetches: 1, failures: { unavailable: 2 }, retries: 2, stale: false, viewValidAfter: NOW, missing: 0 });
    expect(dir.isOutboundOnly(idOf(1), NOW)).toBe(true);
    // Done: no more rounds until the next consensus.
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(3);
    refresher.stop();
  });

  it("falls back to the next source, merging views until no internal node is missing", async () => {
    const dir = new InternalDirectory();
    const asked: number[] = [];
    const answers: Record<number, () => Promise<InternalView>> = {
      1: () => Promise.reject(new DirectoryError("unauthorized", "not a known node")),
      2: () => Promise.resolve({ validAfter: NOW, descriptors: [descriptor(1)] }),
      3: () => Promise.resolve({ validAfter: NOW, descriptors: [listening(2)] }),
      4: () => Promise.resolve({ validAfter: NOW, descriptors: [] }),
    };
    const fetch = (p: PeerAddress) => {
      const i = [1, 2, 3, 4].find((n) => bytesToHexFast(peer(n).identity) === bytesToHexFast(p.identity))!;
      asked.push(i);
      return answers[i]!();
    };
    const refresher = new InternalViewRefresher({ internal: dir, fetch, sources: () => [1, 2, 3, 4].map(peer), now: () => NOW });
    await refresher.update(consensusOf(NOW, [1, 2]));
    expect(asked).toEqual([1, 2, 3]); // complete after the third: the fourth is not asked
    expect(refresher.stats).toMatchObject({ fetches: 2, failures: { unauthorized: 1 }, retries: 0, stale: false, missing: 0 });
    expect(dir.addressesOf(idOf(2), NOW)).toEqual([{ host: "192.0.2.2", port: 9001 }]);
    refresher.stop();
  });

  it("drops a pending retry when a newer consensus arrives, and needs no fetch for a consensus without internal nodes", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const dir = new InternalDirectory();
    let calls = 0;
    const refresher = new InternalViewRefresher({
      internal: dir,
      fetch: () => {
        calls++;
        return Promise.reject(new DirectoryError("unavailable", "down"));
      },
      sources: () => [peer(1)],
      minRetryMs: 1000,
      now: () => NOW,
    });
    await refresher.update(consensusOf(NOW, [1]));
    expect(calls).toBe(1);
    await refresher.update(consensusOf(NOW + 10_000, []));
    expect(refresher.stats).toMatchObject({ stale: false, viewValidAfter: NOW + 10_000, missing: 0 });
    await vi.advanceTimersByTimeAsync(120_000);
    expect(calls).toBe(1);
    refresher.stop();
  });
});

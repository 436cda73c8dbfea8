import { describe, expect, it } from "vitest";
import { disjointLookup } from "../../../node/src/dht/lookup.js";
import type { Contact } from "../../../node/src/dht/contact.js";
import { compareDistance, idHex } from "../../../node/src/dht/id.js";
import { rawContact, seededId } from "./helpers.js";

/** A small world: every node knows every other; replies are the k closest to the target. */
function world(n: number) {
  const contacts = Array.from({ length: n }, (_, i) => rawContact(seededId(i)));
  const closest = (target: Uint8Array, k: number): Contact[] => [...contacts].sort((a, b) => compareDistance(a.nodeId, b.nodeId, target)).slice(0, k);
  return { contacts, closest };
}

describe("disjointLookup", () => {
  it("queries every node on at most one path, even when all replies name the same nodes", async () => {
    const { contacts, closest } = world(200);
    const target = seededId(9999);
    const queriedBy = new Map<string, number[]>();
    const result = await disjointLookup<never>({
      target,
      initial: contacts.slice(0, 16),
      disjointPaths: 4,
      alpha: 2,
      resultSize: 8,
      maxMessages: 500,
      query: async (contact, path) => {
        const hex = idHex(contact.nodeId);
        queriedBy.set(hex, [...(queriedBy.get(hex) ?? []), path]);
        return { contacts: closest(target, 8) };
      },
    });
    expect(result.messages).toBeGreaterThan(8);
    for (const paths of queriedBy.values()) expect(paths).toHaveLength(1);
    // Every path did some of the work.
    expect(new Set(result.queried.map((q) => q.path)).size).toBe(4);
    // And together they still found the true closest node.
    expect(idHex(result.closest[0]!.contact.nodeId)).toBe(idHex(closest(target, 1)[0]!.nodeId));
  });

  it("survives one captured path: the other paths still reach the target", async () => {
    const { contacts, closest } = world(300);
    const target = seededId(4242);
    const evil = new Set(contacts.slice(0, 1).map((c) => idHex(c.nodeId)));
    const result = await disjointLookup<never>({
      target,
      initial: contacts.slice(0, 8),
      disjointPaths: 2,
      alpha: 1,
      resultSize: 8,
      maxMessages: 500,
      // The adversary answers with nobody useful; honest nodes answer truthfully.
      query: async (contact) => (evil.has(idHex(contact.nodeId)) ? { contacts: [] } : { contacts: closest(target, 8) }),
    });
    expect(idHex(result.closest[0]!.contact.nodeId)).toBe(idHex(closest(target, 1)[0]!.nodeId));
  });

  it("stops at the message cap and counts failures", async () => {
    const { contacts } = world(50);
    const result = await disjointLookup<never>({
      target: seededId(1),
      initial: contacts.slice(0, 16),
      disjointPaths: 2,
      alpha: 3,
      resultSize: 16,
      maxMessages: 5,
      query: async () => {
        throw new Error("down");
      },
    });
    expect(result.messages).toBe(5);
    expect(result.failures).toBe(5);
    expect(result.capped).toBe(true);
    expect(result.closest).toHaveLength(0);
  });

  it("stops once the value quorum is reached", async () => {
    const { contacts, closest } = world(100);
    const target = seededId(77);
    const result = await disjointLookup<string>({
      target,
      initial: contacts.slice(0, 16),
      disjointPaths: 1,
      alpha: 1,
      resultSize: 16,
      maxMessages: 100,
      valueQuorum: 1,
      query: async () => ({ contacts: closest(target, 16), value: "found" }),
    });
    expect(result.values.map((v) => v.value)).toEqual(["found"]);
    expect(result.messages).toBe(1);
  });
});

/** A contact at XOR distance `d` from the all-zero target (smaller d = closer). */
function at(d: number): Contact {
  const id = new Uint8Array(32);
  id[30] = (d >> 8) & 0xff;
  id[31] = d & 0xff;
  return rawContact(id, `n${d}`);
}
const ZERO = new Uint8Array(32);

/** Runs a lookup over a scripted network: `replies[d]` is what the node at distance d answers (default: nobody). */
async function scripted(replies: Record<number, number[]>, initial: number[], o: { d?: number; window?: number; breadth?: number; k?: number }) {
  const order: string[] = [];
  const byPath = new Map<string, number[]>();
  const result = await disjointLookup<never>({
    target: ZERO,
    initial: initial.map(at),
    disjointPaths: o.d ?? 1,
    alpha: 1,
    resultSize: o.k ?? 8,
    maxMessages: 1000,
    window: o.window,
    firstReplyBreadth: o.breadth,
    query: async (contact, path) => {
      order.push(contact.address);
      byPath.set(contact.address, [...(byPath.get(contact.address) ?? []), path]);
      return { contacts: (replies[Number(contact.address.slice(1))] ?? []).map(at) };
    },
  });
  return { result, order, byPath };
}

describe("disjointLookup termination (window w, first-reply breadth b)", () => {
  it("a path ends once its w closest entries answered with nothing closer", async () => {
    // Five initial contacts that know nobody closer: w = 2 queries the two closest and stops.
    const small = await scripted({}, [50, 40, 30, 20, 10], { window: 2 });
    expect(small.order).toEqual(["n10", "n20"]);
    expect(small.result.messages).toBe(2);
    // Kademlia's rule (w = k) queries all of them.
    const full = await scripted({}, [50, 40, 30, 20, 10], { window: 8 });
    expect(full.result.messages).toBe(5);
  });

  it("follows closer referrals until the window closes around the target", async () => {
    // 100 -> 60 -> {30, 31, 90}; 30 -> {5, 6}; the window of 2 ends after 5 and 6.
    const run = await scripted({ 100: [60, 95], 60: [30, 31, 90], 30: [5, 6] }, [100], { window: 2 });
    expect(run.order).toEqual(["n100", "n60", "n30", "n5", "n6"]);
    expect(run.result.closest.map((r) => r.contact.address).slice(0, 2)).toEqual(["n5", "n6"]);
  });

  it("queries the b closest referrals of each first reply even when a closer node captured the window", async () => {
    // 100 is honest: it names 10 (an adversary) and the honest 40, 41, 42. 10 answers with colluders 2 and 3,
    // which answer with nothing. With w = 2 and no breadth the path ends on the colluders.
    const replies = { 100: [10, 40, 41, 42], 10: [2, 3] };
    const plain = await scripted(replies, [100], { window: 2, breadth: 0 });
    expect(plain.order).toEqual(["n100", "n10", "n2", "n3"]);
    // b = 3: 10, 40 and 41 (the three closest referrals of 100) are required; 42 is not.
    const wide = await scripted(replies, [100], { window: 2, breadth: 3 });
    expect(wide.order).toEqual(["n100", "n10", "n2", "n3", "n40", "n41"]);
    // A required referral that leads closer reopens the window: 40 knows 1 (closer than the colluders), queried next.
    const back = await scripted({ ...replies, 40: [1] }, [100], { window: 2, breadth: 3 });
    expect(back.order).toEqual(["n100", "n10", "n2", "n3", "n40", "n1", "n41"]);
    expect(back.result.closest[0]!.contact.address).toBe("n1");
  });

  it("with a small window and breadth, no node is queried by two paths", async () => {
    const { contacts, closest } = world(300);
    const target = seededId(31337);
    const queriedBy = new Map<string, number[]>();
    const result = await disjointLookup<never>({
      target,
      initial: contacts.slice(0, 16),
      disjointPaths: 8,
      alpha: 1,
      resultSize: 16,
      maxMessages: 1000,
      window: 2,
      firstReplyBreadth: 3,
      // Every node names the same 16 closest: all paths compete for the same nodes.
      query: async (contact, path) => {
        const hex = idHex(contact.nodeId);
        queriedBy.set(hex, [...(queriedBy.get(hex) ?? []), path]);
        return { contacts: closest(target, 16) };
      },
    });
    expect([...queriedBy.values()].every((p) => p.length === 1)).toBe(true);
    expect(result.messages).toBe(queriedBy.size);
    expect(idHex(result.closest[0]!.contact.nodeId)).toBe(idHex(closest(target, 1)[0]!.nodeId));
  });

  it("required referrals another path took are skipped, not queried twice", async () => {
    // Two paths: 100 (path 0) and 101 (path 1) both name 40, 41 as required referrals.
    const run = await scripted({ 100: [40, 41], 101: [40, 41] }, [100, 101], { d: 2, window: 1, breadth: 2 });
    for (const paths of run.byPath.values()) expect(paths).toHaveLength(1);
    expect(run.result.messages).toBe(4);
  });

  it("rejects a window or breadth larger than k", async () => {
    const base = { target: ZERO, initial: [at(1)], disjointPaths: 1, alpha: 1, resultSize: 4, maxMessages: 10, query: async () => ({ contacts: [] }) };
    await expect(disjointLookup({ ...base, window: 5 })).rejects.toThrow(/window/);
    await expect(disjointLookup({ ...base, firstReplyBreadth: 5 })).rejects.toThrow(/firstReplyBreadth/);
    await expect(disjointLookup({ ...base, window: 0 })).rejects.toThrow(/window/);
  });
});

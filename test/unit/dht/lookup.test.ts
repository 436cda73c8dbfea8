import { describe, expect, it } from "vitest";
import { disjointLookup } from "../../../node/src/dht/lookup.js";
import type { Contact } from "../../../node/src/dht/contact.js";
import { compareDistance, idHex } from "../../../node/src/dht/id.js";
import { rawContact, seededId } from "./helpers.js";

/** A small world: every node knows every other; replies are the k closest to the target. */
function world(n: number) {
  const contacts = Array.from({ length: n }, (_, i) => rawContact(seededId(i)));
  const closest = (target: Uint8Array, k: number): Contact[] =>
    [...contacts].sort((a, b) => compareDistance(a.nodeId, b.nodeId, target)).slice(0, k);
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

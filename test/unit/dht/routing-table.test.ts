import { describe, expect, it } from "vitest";
import { RoutingTable } from "../../../node/src/dht/routing-table.js";
import { compareDistance, idHex } from "../../../node/src/dht/id.js";
import { idWithBitFlipped, rawContact, seededId } from "./helpers.js";

const local = new Uint8Array(32);

describe("RoutingTable", () => {
  it("fills a bucket, then asks to ping the oldest instead of evicting it", () => {
    const table = new RoutingTable(local, { bucketSize: 3, siblings: 1 });
    // Bit 0 flipped: all land in bucket 0; distinct tails keep them distinct.
    const contacts = [1, 2, 3, 4, 5].map((t) => rawContact(idWithBitFlipped(local, 0, t)));
    expect(contacts.slice(0, 3).map((c) => table.offer(c).kind)).toEqual(["added", "added", "added"]);
    const fourth = table.offer(contacts[3]!);
    expect(fourth.kind).toBe("ping-oldest");
    expect(fourth.kind === "ping-oldest" && fourth.oldest).toBe(contacts[0]);
    // A second newcomer while the ping is pending is only cached.
    expect(table.offer(contacts[4]!).kind).toBe("cached");
    expect(table.bucketContents(0)).toEqual(contacts.slice(0, 3));
  });

  it("keeps a live oldest contact (moved to the recent end) and drops the newcomer into the cache", () => {
    const table = new RoutingTable(local, { bucketSize: 2, siblings: 1 });
    const [a, b, c] = [1, 2, 3].map((t) => rawContact(idWithBitFlipped(local, 0, t)));
    table.offer(a!);
    table.offer(b!);
    const r = table.offer(c!);
    expect(r.kind).toBe("ping-oldest");
    expect(table.resolvePing(a!.nodeId, true)).toBeUndefined();
    expect(table.bucketContents(0)).toEqual([b, a]);
    expect(table.replacementCandidates(0)).toEqual([c]);
  });

  it("replaces a dead oldest contact with the newest candidate", () => {
    const table = new RoutingTable(local, { bucketSize: 2, siblings: 1 });
    const [a, b, c] = [1, 2, 3].map((t) => rawContact(idWithBitFlipped(local, 0, t)));
    table.offer(a!);
    table.offer(b!);
    table.offer(c!);
    expect(table.resolvePing(a!.nodeId, false)).toBe(c);
    expect(table.bucketContents(0)).toEqual([b, c]);
  });

  it("drops a contact after repeated failures and refills from the cache", () => {
    const table = new RoutingTable(local, { bucketSize: 1, siblings: 1, staleAfterFailures: 2 });
    const [a, b] = [1, 2].map((t) => rawContact(idWithBitFlipped(local, 0, t)));
    table.offer(a!);
    table.offer(b!); // cached, ping requested (caller ignores it here)
    expect(table.recordFailure(a!.nodeId)).toBe(false);
    expect(table.recordFailure(a!.nodeId)).toBe(true);
    expect(table.bucketContents(0)).toEqual([b]);
  });

  it("ignores itself and keeps the s closest contacts as siblings", () => {
    const table = new RoutingTable(local, { bucketSize: 1, siblings: 3 });
    expect(table.offer(rawContact(local)).kind).toBe("self");
    const near = [200, 201, 202, 203, 204].map((bit, i) => rawContact(idWithBitFlipped(local, bit, i + 1)));
    for (const c of near) table.offer(c);
    const siblings = table.siblings();
    expect(siblings).toHaveLength(3);
    const expected = [...near].sort((x, y) => compareDistance(x.nodeId, y.nodeId, local)).slice(0, 3);
    expect(siblings.map((c) => idHex(c.nodeId))).toEqual(expected.map((c) => idHex(c.nodeId)));
  });

  it("closest() returns the same order as sorting everything by XOR distance", () => {
    const table = new RoutingTable(seededId(0), { bucketSize: 4, siblings: 4 });
    const all = Array.from({ length: 300 }, (_, i) => rawContact(seededId(i + 1)));
    for (const c of all) table.offer(c);
    const known = table.all();
    for (let t = 0; t < 20; t++) {
      const target = seededId(1000 + t);
      const expected = [...known].sort((a, b) => compareDistance(a.nodeId, b.nodeId, target)).slice(0, 8);
      expect(table.closest(target, 8).map((c) => idHex(c.nodeId))).toEqual(expected.map((c) => idHex(c.nodeId)));
    }
  });

  it("rejects bad options with a typed error", () => {
    expect(() => new RoutingTable(local, { bucketSize: 0 })).toThrow(expect.objectContaining({ kind: "bad-config" }));
  });
});

/**
 * Path selection around internal nodes (issue 20; docs/spec/onion.md §12):
 * never the first hop, and the hop right before an internal node is always a
 * public one, because an internal node with outbound links only is reached
 * only by the public relays it keeps links to (and clients cannot tell the
 * two kinds of internal node apart). Checked on random node lists with
 * fast-check and on small lists where the rule decides the outcome.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CircuitError } from "../../node/src/onion/errors.js";
import { isInternalNode, keyHex, selectPath } from "../../node/src/onion/path.js";
import type { PathNode } from "../../node/src/onion/path.js";

const node = (i: number, internal: boolean): PathNode => ({
  identity: Uint8Array.from({ length: 32 }, (_, k) => (k === 0 ? i : k === 1 ? i >> 8 : 0)),
  onionKey: new Uint8Array(32).fill(1),
  host: internal ? "" : `10.${i}.0.1`,
  port: internal ? 0 : 9001,
  flags: internal ? ["running", "internal"] : ["running"],
});

/** A deterministic random source from a seed (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function checkRule(path: PathNode[]): void {
  expect(isInternalNode(path[0]!)).toBe(false);
  for (let h = 1; h < path.length; h++) if (isInternalNode(path[h]!)) expect(isInternalNode(path[h - 1]!)).toBe(false);
}

describe("path selection: the hop before an internal node is public", () => {
  it("holds for random node lists, lengths, fixed internal last hops and seeds", () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 5 }),
        fc.boolean(),
        fc.integer(),
        (kinds, length, fixInternalLast, seed) => {
          const nodes = kinds.map((internal, i) => node(i + 1, internal));
          const last = fixInternalLast ? nodes.find(isInternalNode) : undefined;
          let path: PathNode[];
          try {
            path = selectPath(nodes, { length, random: seeded(seed), ...(last ? { lastHop: last } : {}) });
          } catch (err) {
            // Too few public nodes for the rule (or a one-hop path to an internal node): a typed refusal, never a bad path.
            expect(err).toBeInstanceOf(CircuitError);
            expect(["no-path", "bad-argument"]).toContain((err as CircuitError).kind);
            return;
          }
          expect(path).toHaveLength(length);
          expect(new Set(path.map((n) => keyHex(n.identity))).size).toBe(length);
          if (last) expect(keyHex(path[length - 1]!.identity)).toBe(keyHex(last.identity));
          checkRule(path);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("still uses internal nodes as middle and last hops, never two in a row", () => {
    const nodes = [node(1, false), node(2, false), node(3, true), node(4, true)];
    const seen = new Set<string>();
    for (let seed = 0; seed < 300; seed++) {
      const path = selectPath(nodes, { length: 3, random: seeded(seed) });
      checkRule(path);
      seen.add(path.map((n) => (isInternalNode(n) ? "I" : "P")).join(""));
    }
    // P-I-P and P-P-I both occur (and P-I-I never can).
    expect(seen).toEqual(new Set(["PIP", "PPI"]));
  });

  it("refuses with no-path when only internal nodes could stand before an internal hop", () => {
    // One public node: it must be the entry, so the middle before a fixed internal last hop would be internal.
    const nodes = [node(1, false), node(2, true), node(3, true)];
    expect(() => selectPath(nodes, { length: 3, lastHop: nodes[2]!, random: seeded(1) })).toThrow(expect.objectContaining({ kind: "no-path" }));
    // Two hops are fine: the public entry stands before it.
    checkRule(selectPath(nodes, { length: 2, lastHop: nodes[2]!, random: seeded(1) }));
  });
});

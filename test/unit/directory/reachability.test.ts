/**
 * The reachable set a discovery node votes with: one failed probe within the
 * grace keeps a node running; a node that stays down, or is no longer held,
 * leaves the set.
 */
import { describe, expect, it } from "vitest";
import { afterSweep } from "../../../node/src/directory/reachability.js";
import type { ReachableSet } from "../../../node/src/directory/reachability.js";

const a = { key: "aa", identity: Uint8Array.of(0xaa) };
const b = { key: "bb", identity: Uint8Array.of(0xbb) };
const GRACE = 1000;

describe("afterSweep", () => {
  it("adds nodes that answered, with the sweep's time", () => {
    const set = afterSweep(new Map(), [{ ...a, ok: true }, { ...b, ok: false }], 5000, GRACE);
    expect([...set.keys()]).toEqual(["aa"]);
    expect(set.get("aa")?.okAt).toBe(5000);
  });

  it("keeps a node that fails within the grace, then drops it once the grace has passed", () => {
    let set: ReachableSet = afterSweep(new Map(), [{ ...a, ok: true }], 0, GRACE);
    set = afterSweep(set, [{ ...a, ok: false }], GRACE, GRACE);
    expect(set.get("aa")?.okAt).toBe(0);
    set = afterSweep(set, [{ ...a, ok: false }], GRACE + 1, GRACE);
    expect(set.has("aa")).toBe(false);
  });

  it("drops a node no longer tested (its descriptor is gone), even within the grace", () => {
    const set = afterSweep(afterSweep(new Map(), [{ ...a, ok: true }, { ...b, ok: true }], 0, GRACE), [{ ...b, ok: true }], 10, GRACE);
    expect([...set.keys()]).toEqual(["bb"]);
  });

  it("never reports a node that has not answered once", () => {
    const set = afterSweep(new Map(), [{ ...a, ok: false }], 0, GRACE);
    expect(set.size).toBe(0);
  });
});

/**
 * The presence point's proof-of-work queue (node/src/presence/pow.ts):
 * order (highest effort first, then arrival), capacity and displacement,
 * the adaptive suggested effort, seed rotation, one use per nonce, and a
 * real Equi-X proof at efforts 1 and 2 (each solve costs about 0.3 s of
 * JavaScript per attempt, so there are only two).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { powSolve } from "../../../node/src/crypto/equix.js";
import type { PowProof } from "../../../node/src/presence/messages.js";
import { PowQueue } from "../../../node/src/presence/pow.js";
import { flipped, hex } from "./helpers.js";

const UPDATE_MS = 5_000;
const SEED_LIFETIME_MS = 600_000;
const seedOf = (byte: number) => new Uint8Array(32).fill(byte);
const pointId = new Uint8Array(32).fill(0x77);

/** Seeds handed out in order: 0x01…, 0x02…, … */
function seeds(): (n: number) => Uint8Array {
  let next = 1;
  return (n) => new Uint8Array(n).fill(next++);
}

function queue(o: { capacity?: number; maxEffort?: number } = {}) {
  return new PowQueue<string>({ now: 0, updateMs: UPDATE_MS, seedLifetimeMs: SEED_LIFETIME_MS, random: seeds(), ...o });
}

function drain(q: PowQueue<string>, now = 0): string[] {
  const out: string[] = [];
  for (let item = q.dequeue(now); item !== undefined; item = q.dequeue(now)) out.push(item);
  return out;
}

/** One solve per (seed, effort), shared by the tests that need a real proof. */
const solved = new Map<string, PowProof>();
function proofFor(seed: Uint8Array, effort: number): PowProof {
  const key = `${hex(seed)}:${effort}`;
  let proof = solved.get(key);
  if (!proof) {
    const s = powSolve({ seed, serviceBlindedId: pointId, effort, nonce: new Uint8Array(16).fill(effort) });
    proof = { nonce: s.nonce, effort: s.effort, seedHead: s.seedHead, solution: s.proof };
    solved.set(key, proof);
  }
  return proof;
}

describe("PoW queue: order and capacity", () => {
  it("dequeues the highest effort first, equal efforts in arrival order", () => {
    const q = queue();
    for (const [item, effort] of [["a", 0], ["b", 5], ["c", 2], ["d", 5], ["e", 0], ["f", 2]] as const) expect(q.enqueue(item, effort, 0)).toEqual({ queued: true });
    expect(q.length).toBe(6);
    expect(drain(q)).toEqual(["b", "d", "c", "f", "a", "e"]);
  });

  it("orders like a stable sort by effort for any sequence of enqueues, dequeues and removals (model check)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.nat(4).map((effort) => ({ op: "enq" as const, effort })), fc.constant({ op: "deq" as const }), fc.nat(20).map((i) => ({ op: "rm" as const, i })))),
        (ops) => {
          const q = new PowQueue<number>({ now: 0, capacity: 1000 });
          const model: { id: number; effort: number }[] = [];
          let id = 0;
          for (const o of ops) {
            if (o.op === "enq") {
              q.enqueue(id, o.effort, 0);
              model.push({ id: id++, effort: o.effort });
              model.sort((a, b) => b.effort - a.effort || a.id - b.id);
            } else if (o.op === "deq") {
              expect(q.dequeue(0)).toBe(model.shift()?.id);
            } else {
              const present = model.findIndex((m) => m.id === o.i);
              expect(q.remove(o.i)).toBe(present >= 0);
              if (present >= 0) model.splice(present, 1);
            }
          }
          expect(q.drain()).toEqual(model.map((m) => m.id));
        },
      ),
    );
  });

  it("a full queue refuses efforts not above its lowest, and displaces the lowest (newest of them) for a higher one", () => {
    const q = queue({ capacity: 3 });
    q.enqueue("low-old", 1, 0);
    q.enqueue("mid", 2, 0);
    q.enqueue("low-new", 1, 0);
    expect(q.enqueue("equal", 1, 0)).toEqual({ queued: false });
    expect(q.enqueue("less", 0, 0)).toEqual({ queued: false });
    expect(q.enqueue("high", 3, 0)).toEqual({ queued: true, displaced: "low-new" });
    expect(q.length).toBe(3);
    expect(drain(q)).toEqual(["high", "mid", "low-old"]);
  });

  it("remove takes an entry out wherever it is; drain empties in queue order", () => {
    const q = queue();
    for (const [item, effort] of [["a", 1], ["b", 3], ["c", 2]] as const) q.enqueue(item, effort, 0);
    expect(q.remove("c")).toBe(true);
    expect(q.remove("c")).toBe(false);
    expect(q.drain()).toEqual(["b", "a"]);
    expect(q.length).toBe(0);
  });
});

describe("PoW queue: suggested effort", () => {
  it("is 0 while the point keeps up, and params never ask for less than 1", () => {
    const q = queue();
    expect(q.suggestedEffort(0)).toBe(0);
    expect(q.params(0).effort).toBe(1);
    q.enqueue("a", 0, 0);
    q.dequeue(0);
    expect(q.suggestedEffort(10 * UPDATE_MS)).toBe(0);
  });

  it("doubles (from at least 1) after each interval the queue overflowed, up to the maximum", () => {
    const q = queue({ capacity: 1, maxEffort: 6 });
    const efforts: number[] = [];
    q.enqueue("held", 0, 0);
    for (let i = 1; i <= 5; i++) {
      q.enqueue(`extra${i}`, 0, i * UPDATE_MS - 1); // overflows in interval i
      efforts.push(q.suggestedEffort(i * UPDATE_MS));
    }
    expect(efforts).toEqual([1, 2, 4, 6, 6]);
  });

  it("holds while the queue is busy without overflowing, and decays by a third per interval once it ran empty", () => {
    const q = queue({ capacity: 1 });
    q.enqueue("held", 0, 0);
    for (let i = 1; i <= 5; i++) q.enqueue(`x${i}`, 0, i * UPDATE_MS - 1);
    expect(q.suggestedEffort(5 * UPDATE_MS)).toBe(16);
    // Busy (one entry waits), no overflow: unchanged.
    expect(q.suggestedEffort(6 * UPDATE_MS)).toBe(16);
    q.dequeue(6 * UPDATE_MS);
    expect(q.suggestedEffort(7 * UPDATE_MS)).toBe(10);
    expect(q.suggestedEffort(8 * UPDATE_MS)).toBe(6);
    // Idle intervals with nobody asking decay too.
    expect(q.suggestedEffort(11 * UPDATE_MS)).toBe(1);
    expect(q.suggestedEffort(12 * UPDATE_MS)).toBe(0);
  });
});

describe("PoW queue: proofs", () => {
  it("a real Equi-X proof at effort 1 verifies for the point it was made for, once", () => {
    const q = queue();
    const seed = q.params(0).seed;
    expect(hex(seed)).toBe(hex(seedOf(1)));
    const proof = proofFor(seed, 1);
    expect(q.check(pointId, proof, 0)).toEqual({ ok: true, effort: 1 });
    expect(q.check(pointId, proof, 1)).toMatchObject({ ok: false, reason: "replayed" });
    // A fresh queue with the same seed has not seen the nonce, but the proof is bound to its point.
    expect(queue().check(new Uint8Array(32).fill(0x78), proof, 0)).toMatchObject({ ok: false, reason: "pow-invalid" });
  });

  it("a real Equi-X proof at effort 2 verifies; claiming more effort than it shows, or a flipped solution, does not", () => {
    const proof = proofFor(seedOf(1), 2);
    expect(queue().check(pointId, proof, 0)).toEqual({ ok: true, effort: 2 });
    expect(queue().check(pointId, { ...proof, effort: 0x8000_0000 }, 0)).toMatchObject({ ok: false, reason: "pow-invalid" });
    expect(queue().check(pointId, { ...proof, solution: flipped(proof.solution, 3) }, 0)).toMatchObject({ ok: false, reason: "pow-invalid" });
    expect(queue().check(pointId, { ...proof, nonce: flipped(proof.nonce, 0) }, 0)).toMatchObject({ ok: false, reason: "pow-invalid" });
  });

  it("a proof for an unknown seed is pow-invalid and does not use up its nonce", () => {
    const q = queue();
    const proof = proofFor(seedOf(1), 1);
    expect(q.check(pointId, { ...proof, seedHead: Uint8Array.of(9, 9, 9, 9) }, 0)).toMatchObject({ ok: false, reason: "pow-invalid" });
    expect(q.check(pointId, proof, 0)).toEqual({ ok: true, effort: 1 });
  });

  it("after the seed rotates the previous seed is still accepted, with its used nonces; the one before is refused", () => {
    const proof = proofFor(seedOf(1), 1);
    const used = queue();
    expect(used.check(pointId, proof, 0).ok).toBe(true);
    expect(hex(used.params(SEED_LIFETIME_MS).seed)).toBe(hex(seedOf(2)));
    expect(used.check(pointId, proof, SEED_LIFETIME_MS)).toMatchObject({ ok: false, reason: "replayed" });

    const fresh = queue();
    expect(hex(fresh.params(SEED_LIFETIME_MS).seed)).toBe(hex(seedOf(2)));
    expect(fresh.check(pointId, proof, SEED_LIFETIME_MS + 1)).toEqual({ ok: true, effort: 1 });

    const old = queue();
    old.params(SEED_LIFETIME_MS);
    expect(hex(old.params(2 * SEED_LIFETIME_MS).seed)).toBe(hex(seedOf(3)));
    expect(old.check(pointId, proof, 2 * SEED_LIFETIME_MS)).toMatchObject({ ok: false, reason: "pow-invalid" });
  });
});

/**
 * Sealed runs (docs/spec/onion.md §3): one digest per run of up to 64 relay
 * payloads. Whatever the run sizes, every payload reaches the other end once
 * and in order; whatever one byte an attacker changes, drops or reorders, no
 * modified payload is ever released and the receiver reports the run broken
 * (or, for a lone cell, not addressed to it).
 */
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_RUN_PAYLOADS, RunStep, hopCryptoFromKeyMaterial, splitHopKeys } from "../../../node/src/onion/relay-crypto.js";
import type { RelayLayer } from "../../../node/src/onion/relay-crypto.js";
import { decodeRelayPayload, encodeRelayPayload } from "../../../node/src/wire/relay.js";
import { OnionSim } from "../../../node/src/onion/sim.js";
import { CellCommand } from "../../../node/src/wire/cell.js";
import type { Cell } from "../../../node/src/wire/cell.js";
import { DestroyReason } from "../../../node/src/onion/constants.js";

const LEN = 507;

function payloads(count: number, tag: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => encodeRelayPayload({ streamId: 1 + (i % 7), command: 2, data: Buffer.from(`${tag}:${i}`) })));
}

/** Seals `count` payloads as sealRun calls of the given sizes and encrypts them: what goes on the wire. */
function sealAndEncrypt(sender: RelayLayer, plain: Buffer, sizes: number[]): Buffer {
  const sealed = Buffer.from(plain);
  let at = 0;
  for (const n of sizes) {
    sender.sealRun(sealed, at * LEN, n);
    at += n;
  }
  return Buffer.from(sender.applyKeystream(sealed));
}

/** Feeds wire payloads one by one; returns what was released and the first non-normal step. */
function receiveAll(receiver: RelayLayer, wire: Buffer): { released: Buffer[]; failure: number | undefined; maxHeld: number } {
  const plain = Buffer.from(receiver.applyKeystream(wire));
  const released: Buffer[] = [];
  let maxHeld = 0;
  for (let o = 0; o < plain.length; o += LEN) {
    const step = receiver.receive(plain.subarray(o, o + LEN));
    maxHeld = Math.max(maxHeld, receiver.heldCount);
    if (step === RunStep.Complete) released.push(...receiver.takeRun().map((p) => Buffer.from(p)));
    else if (step !== RunStep.Held) return { released, failure: step, maxHeld };
  }
  return { released, failure: undefined, maxHeld };
}

function dataOf(p: Uint8Array): string {
  return Buffer.from(decodeRelayPayload(p).data).toString();
}

const sizesArb = fc.array(fc.integer({ min: 1, max: 150 }), { minLength: 1, maxLength: 5 });

describe("sealed runs", () => {
  it("release every payload once, in order, decodable, for any run sizes", () => {
    fc.assert(
      fc.property(sizesArb, (sizes) => {
        const material = randomBytes(96);
        const sender = hopCryptoFromKeyMaterial(material).forward;
        const receiver = hopCryptoFromKeyMaterial(material).forward;
        const total = sizes.reduce((a, b) => a + b, 0);
        const plain = payloads(total, 1);
        const { released, failure, maxHeld } = receiveAll(receiver, sealAndEncrypt(sender, plain, sizes));
        expect(failure).toBeUndefined();
        expect(maxHeld).toBeLessThan(MAX_RUN_PAYLOADS);
        expect(released.map(dataOf)).toEqual(Array.from({ length: total }, (_, i) => `1:${i}`));
        expect(receiver.heldCount).toBe(0);
      }),
      { numRuns: 60 },
    );
  });

  it("never release a modified payload: one changed byte anywhere breaks the run", () => {
    fc.assert(
      fc.property(sizesArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (sizes, where, xor) => {
        const material = randomBytes(96);
        const sender = hopCryptoFromKeyMaterial(material).forward;
        const receiver = hopCryptoFromKeyMaterial(material).forward;
        const total = sizes.reduce((a, b) => a + b, 0);
        const plain = payloads(total, 2);
        const wire = sealAndEncrypt(sender, plain, sizes);
        const at = where % wire.length;
        wire[at] = (wire[at] as number) ^ xor;
        const { released, failure } = receiveAll(receiver, wire);
        expect(failure === RunStep.Broken || failure === RunStep.NotMine).toBe(true);
        const hit = Math.floor(at / LEN);
        // Only runs that ended before the modified payload were released, and unchanged.
        expect(released.length).toBeLessThanOrEqual(hit);
        released.forEach((p, i) => expect(dataOf(p)).toBe(`2:${i}`));
      }),
      { numRuns: 150 },
    );
  });

  it("a dropped, duplicated or swapped payload inside a run breaks it", () => {
    const material = randomBytes(96);
    for (const mutate of [
      (cells: Buffer[]) => cells.splice(3, 1),
      (cells: Buffer[]) => cells.splice(3, 0, cells[3] as Buffer),
      (cells: Buffer[]) => cells.splice(2, 2, cells[3] as Buffer, cells[2] as Buffer),
    ]) {
      const sender = hopCryptoFromKeyMaterial(material).forward;
      const receiver = hopCryptoFromKeyMaterial(material).forward;
      const plain = payloads(10, 3);
      sender.sealRun(plain, 0, 10);
      // Decrypt per cell position so a mutation moves plaintext, not keystream.
      const cells = Array.from({ length: 10 }, (_, i) => Buffer.from(plain.subarray(i * LEN, (i + 1) * LEN)));
      mutate(cells);
      const steps = cells.map((c) => receiver.receive(c));
      expect(steps).toContain(RunStep.Broken);
      expect(steps).not.toContain(RunStep.Complete);
    }
  });

  it("refuse a run longer than 64 payloads", () => {
    const material = randomBytes(96);
    const seed = Buffer.from(splitHopKeys(material).forwardDigestSeed);
    const receiver = hopCryptoFromKeyMaterial(material).forward;
    const steps: number[] = [];
    for (let i = 0; i < MAX_RUN_PAYLOADS; i++) {
      // A member as only the key holder can write it: marker C_0[28..32], RUN_CONTINUES set.
      const p = Buffer.from(encodeRelayPayload({ streamId: 1, command: 2, data: Buffer.from([i]) }));
      seed.copy(p, 4, 28, 32);
      p[8] = (p[8] as number) | 0x80;
      steps.push(receiver.receive(p));
    }
    expect(steps.slice(0, MAX_RUN_PAYLOADS - 1).every((s) => s === RunStep.Held)).toBe(true);
    expect(steps[MAX_RUN_PAYLOADS - 1]).toBe(RunStep.Broken);
    expect(receiver.heldCount).toBe(0);
  });

  it("a run split across batches verifies after its held members are compacted out of their batch", () => {
    const material = randomBytes(96);
    const sender = hopCryptoFromKeyMaterial(material).forward;
    const receiver = hopCryptoFromKeyMaterial(material).forward;
    const wire = sealAndEncrypt(sender, payloads(10, 4), [10]);
    const firstBatch = Buffer.from(receiver.applyKeystream(wire.subarray(0, 6 * LEN)));
    for (let o = 0; o < firstBatch.length; o += LEN) expect(receiver.receive(firstBatch.subarray(o, o + LEN))).toBe(RunStep.Held);
    receiver.compactHeld();
    firstBatch.fill(0xee); // the batch buffer may be reused or freed now
    const secondBatch = Buffer.from(receiver.applyKeystream(wire.subarray(6 * LEN)));
    const steps = [0, 1, 2, 3].map((k) => receiver.receive(secondBatch.subarray(k * LEN, (k + 1) * LEN)));
    expect(steps).toEqual([RunStep.Held, RunStep.Held, RunStep.Held, RunStep.Complete]);
    expect(receiver.takeRun().map(dataOf)).toEqual(Array.from({ length: 10 }, (_, i) => `4:${i}`));
  });

  it("leave cells for other hops untouched and unheld", () => {
    const receiver = hopCryptoFromKeyMaterial(randomBytes(96)).forward;
    for (let i = 0; i < 200; i++) {
      const p = randomBytes(LEN);
      p[0] = p[1] = 0; // even with RECOGNIZED zero
      const before = Buffer.from(p);
      expect(receiver.receive(p)).toBe(RunStep.NotMine);
      expect(p).toEqual(before);
    }
    expect(receiver.heldCount).toBe(0);
  });
});

describe("sealed runs at a relay", () => {
  /** A 3-hop circuit to r3's sink; the DATA cells of one 11-cell message on r2 → r3 are captured, not delivered. */
  function captured() {
    const sim = new OnionSim();
    const received: Uint8Array[] = [];
    for (const name of ["r1", "r2", "r3"]) sim.addRelay(name);
    sim.relay("r3").relay.registerService("sink", () => ({ onMessage: (m) => void received.push(m) }));
    const client = sim.addClient("alice");
    const circ = client.buildCircuit(["r1", "r2", "r3"].map((n) => sim.relay(n).node), sim.now);
    sim.run();
    const stream = client.openStream(circ, "sink", sim.now);
    sim.run();
    const cells: Cell[] = [];
    sim.interceptor = (cell, from, to) => {
      if (from !== "r2" || to !== "r3" || cell.command !== CellCommand.RELAY) return cell;
      cells.push({ ...cell, payload: cell.payload.slice() });
      return undefined;
    };
    client.send(circ, stream, new Uint8Array(5000).fill(7), sim.now);
    sim.run();
    sim.interceptor = undefined;
    const r3 = sim.relay("r3").relay;
    // r3's end of the link r2 opened to it: the one link of r3 that carries a circuit.
    const linkId = ["L1b", "L2b", "L3b", "L4b"].find((id) => r3.linkCircuitCount(id) > 0) as string;
    return { sim, client, circ, r3, linkId, cells, received };
  }

  it("releases a run whose cells arrive in two batches", () => {
    const { sim, r3, linkId, cells, received } = captured();
    expect(cells).toHaveLength(11);
    r3.handleCells(linkId, cells.slice(0, 4), sim.now);
    expect(received).toEqual([]);
    r3.handleCells(linkId, cells.slice(4), sim.now);
    sim.run();
    expect(received.map((m) => m.length)).toEqual([5000]);
  });

  it("destroys the circuit at both ends when a held member was modified, releasing nothing", () => {
    const { sim, client, circ, r3, linkId, cells, received } = captured();
    const modified = cells.map((c, i) => (i === 2 ? { ...c, payload: Uint8Array.from(c.payload, (b, k) => (k === 300 ? b ^ 0x10 : b)) } : c));
    r3.handleCells(linkId, modified.slice(0, 5), sim.now);
    r3.handleCells(linkId, modified.slice(5), sim.now);
    sim.run();
    expect(received).toEqual([]);
    expect(client.circuitInfo(circ)?.error?.destroyReason).toBe(DestroyReason.PROTOCOL);
    expect(sim.eventsOf("r3", "protocol-violation").map((e) => e.message)).toContainEqual(expect.stringMatching(/sealed run/));
  });
});

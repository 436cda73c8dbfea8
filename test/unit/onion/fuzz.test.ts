/**
 * Fuzzing the relay's entry points: random cells, mutated real cells and
 * random relay messages through real circuits. Nothing may escape but a
 * CircuitError, and the relays must keep serving real circuits afterwards.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { Cell } from "../../../node/src/wire/cell.js";
import { OnionSim } from "../../../node/src/onion/sim.js";
import { CircuitError } from "../../../node/src/onion/errors.js";
import type { LocalService } from "../../../node/src/onion/types.js";

const echo: LocalService = (stream) => ({ onMessage: (m) => stream.send(m) });

/** Only CircuitError may leave an entry point. */
function typedOnly(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof CircuitError)) throw err;
  }
}

/** Builds a fresh 3-hop circuit and round-trips one message: proves the relays still work. */
function stillServes(sim: OnionSim, names: string[]): void {
  const name = `check-${sim.now}-${sim.events.length}`;
  const client = sim.addClient(name);
  // Fuzzed CREATEs drain the relays' per-link create buckets (issue 19): let them refill before the honest build.
  sim.advance(10_000, 1000);
  const circ = client.buildCircuit(
    names.map((n) => sim.relay(n).node),
    sim.now,
  );
  // Time moves on so rate limits drained by the fuzzing refill.
  expect(sim.runUntil(() => client.circuitInfo(circ)?.state !== "building", 60_000, 100)).toBe(true);
  expect(client.circuitInfo(circ)?.state).toBe("open");
  const stream = client.openStream(circ, "echo", sim.now);
  client.send(circ, stream, Uint8Array.of(1, 2, 3), sim.now);
  expect(sim.runUntil(() => sim.eventsOf(name, "stream-message").length > 0, 60_000, 100)).toBe(true);
  expect(sim.eventsOf(name, "stream-message")[0]?.message).toEqual(Uint8Array.of(1, 2, 3));
}

function network() {
  const sim = new OnionSim();
  const names = ["r1", "r2", "r3"];
  for (const n of names) sim.addRelay(n, { services: { echo } });
  const client = sim.addClient("alice");
  const circ = client.buildCircuit(
    names.map((n) => sim.relay(n).node),
    sim.now,
  );
  sim.run();
  return { sim, names, client, circ };
}

const cellArb = (knownCircIds: number[]) =>
  fc.record({
    circId: fc.oneof(fc.constantFrom(...knownCircIds, 0, 1, 0x8000_0001), fc.integer({ min: 0, max: 0xffff_ffff })),
    command: fc.oneof(fc.constantFrom(1, 2, 3, 4, 5), fc.integer({ min: 0, max: 255 })),
    payload: fc.oneof(fc.uint8Array({ minLength: 507, maxLength: 507 }), fc.uint8Array({ maxLength: 600 })),
  });

describe("relay fuzzing", () => {
  it("random cells on client and relay links only ever produce typed outcomes", () => {
    const { sim, names } = network();
    const r2 = sim.relay("r2").relay;
    // r2's links in the simulator: L2b (from r1) and L3a (to r3).
    const known: number[] = [];
    sim.interceptor = (cell) => (known.push(cell.circId), cell);
    stillServes(sim, names);
    sim.interceptor = undefined;
    fc.assert(
      fc.property(fc.constantFrom("L2b", "L3a", "nope"), fc.array(cellArb(known), { minLength: 1, maxLength: 8 }), (linkId, cells) => {
        typedOnly(() => r2.handleCells(linkId, cells as Cell[], sim.now));
        typedOnly(() => sim.run());
      }),
      { numRuns: 3000 },
    );
    stillServes(sim, names);
  });

  it("random cells towards the client (from a malicious first hop) only ever produce typed outcomes", () => {
    const { sim, names, client, circ } = network();
    const known: number[] = [];
    sim.interceptor = (cell, _from, to) => (to === "alice" && known.push(cell.circId), cell);
    client.openStream(circ, "echo", sim.now);
    sim.run();
    sim.interceptor = undefined;
    fc.assert(
      fc.property(fc.array(cellArb(known), { minLength: 1, maxLength: 8 }), (cells) => {
        typedOnly(() => client.handleCells("L1a", cells as Cell[], sim.now));
        typedOnly(() => sim.run());
      }),
      { numRuns: 2000 },
    );
    stillServes(sim, names);
  });

  it("mutated real cells (bit flips, truncation, wrong command or circuit id) only ever produce typed outcomes", () => {
    const { sim, names } = network();
    const recorded: { to: string; cell: Cell }[] = [];
    sim.interceptor = (cell, _from, to) => {
      if (to !== "alice") recorded.push({ to, cell: { ...cell, payload: cell.payload.slice() } });
      return cell;
    };
    stillServes(sim, names);
    sim.interceptor = undefined;
    const linkOf: Record<string, string> = { r1: "L1b", r2: "L2b", r3: "L3b" };
    fc.assert(
      fc.property(
        fc.nat(recorded.length - 1),
        fc.array(fc.tuple(fc.nat(506), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
        fc.option(fc.nat(507), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
        fc.boolean(),
        (index, flips, truncateTo, command, flipCircId) => {
          const { to, cell } = recorded[index] as { to: string; cell: Cell };
          const payload = cell.payload.slice();
          for (const [at, mask] of flips) payload[at] = (payload[at] as number) ^ mask;
          const mutated: Cell = {
            circId: flipCircId ? cell.circId ^ 0x4000_0000 : cell.circId,
            command: command ?? cell.command,
            payload: truncateTo === undefined ? payload : payload.subarray(0, truncateTo),
          };
          const linkId = linkOf[to];
          if (!linkId) return;
          typedOnly(() => sim.relay(to).relay.handleCells(linkId, [mutated], sim.now));
          typedOnly(() => sim.run());
        },
      ),
      { numRuns: 2000 },
    );
    stillServes(sim, names);
  });

  it("random relay messages from an authenticated client only ever produce typed outcomes", () => {
    const { sim, names, client } = network();
    let circ = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.nat(2),
        fc.oneof(fc.constant(0), fc.constant(1), fc.integer({ min: 0, max: 0xffff })),
        fc.uint8Array({ maxLength: 496 }),
        (command, hop, streamId, data) => {
          if (client.circuitInfo(circ)?.state !== "open") {
            circ = client.buildCircuit(
              names.map((n) => sim.relay(n).node),
              sim.now,
            );
            sim.run();
            typedOnly(() => client.openStream(circ, "echo", sim.now));
          }
          typedOnly(() => client.sendRelayMessage(circ, hop, command, streamId, data, sim.now));
          typedOnly(() => sim.run());
        },
      ),
      { numRuns: 1500 },
    );
    stillServes(sim, names);
  });
});

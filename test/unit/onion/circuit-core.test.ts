/**
 * The circuit core both state machines share: every incoming cell passes the
 * same checks (circuit id, circuit command, payload length) at a client as at
 * a relay, before either role sees it, and a short payload is zero padded the
 * same way.
 */
import { describe, expect, it } from "vitest";
import { CellCommand } from "../../../node/src/wire/cell.js";
import type { Cell } from "../../../node/src/wire/cell.js";
import { OnionSim } from "../../../node/src/onion/sim.js";
import { DestroyReason } from "../../../node/src/onion/constants.js";
import type { LocalService } from "../../../node/src/onion/types.js";

const echo: LocalService = (stream) => ({ onMessage: (m) => stream.send(m) });

/** A 3-hop circuit from "alice"; `toAlice` and `toR1` are the circuit's ids on the link between them, as each end sees cells arrive. */
function network() {
  const sim = new OnionSim();
  const names = ["r1", "r2", "r3"];
  for (const n of names) sim.addRelay(n, { services: { echo } });
  const client = sim.addClient("alice");
  const ids = { toAlice: 0, toR1: 0 };
  sim.interceptor = (cell, from, to) => {
    if (to === "alice") ids.toAlice = cell.circId;
    if (from === "alice" && to === "r1") ids.toR1 = cell.circId;
    return cell;
  };
  const circ = client.buildCircuit(
    names.map((n) => sim.relay(n).node),
    sim.now,
  );
  sim.run();
  sim.interceptor = undefined;
  return { sim, client, circ, ids };
}

/** Cells that fail the shared checks, on circuit `circId`, with the violation each must report. */
function badCells(circId: number): { cell: Cell; message: string }[] {
  const ok = new Uint8Array(507);
  return [
    { cell: { circId: 0, command: CellCommand.RELAY, payload: ok }, message: "circuit cell with an invalid circuit id" },
    { cell: { circId: 2 ** 32, command: CellCommand.RELAY, payload: ok }, message: "circuit cell with an invalid circuit id" },
    { cell: { circId: 1.5, command: CellCommand.RELAY, payload: ok }, message: "circuit cell with an invalid circuit id" },
    { cell: { circId, command: CellCommand.RELAY, payload: new Uint8Array(508) }, message: "cell payload is not a Uint8Array of at most 507 bytes" },
    { cell: { circId, command: CellCommand.RELAY, payload: "x" as unknown as Uint8Array }, message: "cell payload is not a Uint8Array of at most 507 bytes" },
    { cell: { circId, command: CellCommand.CLOSE, payload: ok }, message: `command ${CellCommand.CLOSE} is not a circuit command` },
    { cell: { circId, command: 200, payload: ok }, message: "command 200 is not a circuit command" },
  ];
}

function violations(sim: OnionSim, node: string): string[] {
  return sim.eventsOf(node, "protocol-violation").map((e) => e.message);
}

describe("incoming cell checks (circuit core)", () => {
  it("a client drops malformed cells with the relay's violations, and its circuit keeps working", () => {
    const { sim, client, circ, ids } = network();
    const cases = badCells(ids.toAlice);
    const before = violations(sim, "alice").length;
    client.handleCells(
      "L1a",
      cases.map((c) => c.cell),
      sim.now,
    );
    sim.run();
    expect(violations(sim, "alice").slice(before)).toEqual(cases.map((c) => c.message));
    expect(client.circuitInfo(circ)?.state).toBe("open");
    const stream = client.openStream(circ, "echo", sim.now);
    client.send(circ, stream, Uint8Array.of(1, 2, 3), sim.now);
    expect(sim.runUntil(() => sim.eventsOf("alice", "stream-message").length > 0, 10_000)).toBe(true);
    expect(sim.eventsOf("alice", "stream-message")[0]?.message).toEqual(Uint8Array.of(1, 2, 3));
  });

  it("a relay reports the same violations for the same cells", () => {
    const { sim, ids } = network();
    const cases = badCells(ids.toR1);
    const before = violations(sim, "r1").length;
    sim.relay("r1").relay.handleCells(
      "L1b",
      cases.map((c) => c.cell),
      sim.now,
    );
    sim.run();
    expect(violations(sim, "r1").slice(before)).toEqual(cases.map((c) => c.message));
  });

  it("a bad cell inside a run of relay cells is reported once and cuts the run there", () => {
    const { sim, ids } = network();
    const before = violations(sim, "r1").length;
    const junk = (): Cell => ({ circId: ids.toR1, command: CellCommand.RELAY, payload: new Uint8Array(507).fill(7) });
    const cells: Cell[] = [junk(), { circId: ids.toR1, command: CellCommand.RELAY, payload: new Uint8Array(600) }, junk()];
    sim.relay("r1").relay.handleCells("L1b", cells, sim.now);
    sim.run();
    expect(violations(sim, "r1").slice(before)).toEqual(["cell payload is not a Uint8Array of at most 507 bytes"]);
  });

  it("a client reads a short DESTROY payload zero padded, as a relay does", () => {
    const { sim, client, circ, ids } = network();
    client.handleCells("L1a", [{ circId: ids.toAlice, command: CellCommand.DESTROY, payload: Uint8Array.of(DestroyReason.CHANNEL_CLOSED) }], sim.now);
    expect(client.circuitInfo(circ)).toMatchObject({ state: "closed", error: { kind: "circuit-destroyed", destroyReason: DestroyReason.CHANNEL_CLOSED } });
  });
});

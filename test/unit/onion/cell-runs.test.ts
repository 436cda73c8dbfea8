/**
 * Runs of encoded cells (the bulk path's "send-run"): the bytes equal the
 * wire codec's cell for cell, the scheduler counts a run as its cells for
 * buckets, caps and turns, the link writes runs as they are and in order,
 * and relays forward a batch as runs without changing what arrives.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { LinkHandshake } from "../../../node/src/link/handshake.js";
import { DEFAULT_LINK_OPTIONS, Link } from "../../../node/src/link/link.js";
import { encodeRelayRun, gatherPayloads } from "../../../node/src/onion/cell-run.js";
import { OnionSim } from "../../../node/src/onion/sim.js";
import { OutboundScheduler } from "../../../node/src/onion/scheduler.js";
import type { OutboundCell, OutboundRun } from "../../../node/src/onion/scheduler.js";
import type { OnionAction } from "../../../node/src/onion/types.js";
import { CELL_LEN, CELL_PAYLOAD_LEN, CellCommand, checkEncodedCells, decodeCell, encodeCell, encodeCells } from "../../../node/src/wire/cell.js";
import type { Cell } from "../../../node/src/wire/cell.js";
import { WireError } from "../../../node/src/wire/errors.js";
import { FakeSocket } from "../link/fakeSocket.js";

const cellsOf = (bytes: Uint8Array): Cell[] => Array.from({ length: bytes.length / CELL_LEN }, (_, i) => decodeCell(bytes, i * CELL_LEN));

describe("encoded runs", () => {
  it("encodeRelayRun writes exactly what encodeCell writes, cell for cell, with per-cell commands", () => {
    const payloads = [randomBytes(507), randomBytes(507), randomBytes(507), randomBytes(507)];
    const commands = [CellCommand.RELAY_EARLY, CellCommand.RELAY, CellCommand.RELAY, CellCommand.RELAY_EARLY];
    const run = encodeRelayRun(0x8000_0101, commands, gatherPayloads(payloads), 1, 4);
    const expected = encodeCells(payloads.slice(1).map((payload, i) => ({ circId: 0x8000_0101, command: commands[i + 1] as number, payload })));
    expect(Buffer.from(run)).toEqual(Buffer.from(expected));
    const one = encodeRelayRun(7, CellCommand.RELAY, gatherPayloads(payloads), 0, 1);
    expect(Buffer.from(one)).toEqual(Buffer.from(encodeCell({ circId: 7, command: CellCommand.RELAY, payload: payloads[0] as Uint8Array })));
  });

  it("gatherPayloads zero-pads short payloads to 507 bytes", () => {
    const g = gatherPayloads([new Uint8Array(3).fill(9), new Uint8Array(507).fill(1)]);
    expect(g.length).toBe(2 * CELL_PAYLOAD_LEN);
    expect([...g.subarray(0, 4)]).toEqual([9, 9, 9, 0]);
    expect(g.subarray(3, CELL_PAYLOAD_LEN).every((b) => b === 0)).toBe(true);
    expect(g.subarray(CELL_PAYLOAD_LEN).every((b) => b === 1)).toBe(true);
  });

  it("checkEncodedCells refuses partial cells, unknown commands and ids that do not suit the command", () => {
    const good = encodeCells([
      { circId: 5, command: CellCommand.RELAY, payload: new Uint8Array(1) },
      { circId: 0, command: CellCommand.PADDING, payload: new Uint8Array(0) },
    ]);
    expect(() => checkEncodedCells(good)).not.toThrow();
    const kinds = (bytes: Uint8Array): string | undefined => {
      try {
        checkEncodedCells(bytes);
        return undefined;
      } catch (err) {
        expect(err).toBeInstanceOf(WireError);
        return (err as WireError).kind;
      }
    };
    expect(kinds(good.subarray(0, 700))).toBe("bad-length");
    const unknown = Uint8Array.from(good);
    unknown[CELL_LEN + 4] = 200;
    expect(kinds(unknown)).toBe("unknown-command");
    const zeroId = Uint8Array.from(good);
    zeroId.fill(0, 0, 4); // RELAY on circuit 0
    expect(kinds(zeroId)).toBe("bad-circ-id");
    const linkOnCircuit = Uint8Array.from(good);
    linkOnCircuit[CELL_LEN + 3] = 1; // PADDING on circuit 1
    expect(kinds(linkOnCircuit)).toBe("bad-circ-id");
  });
});

describe("scheduler with runs", () => {
  const run = (n: number, circId = 1): Uint8Array =>
    encodeCells(Array.from({ length: n }, (_, i) => ({ circId, command: CellCommand.RELAY, payload: new Uint8Array(507).fill(i) })));

  it("a lone circuit's run leaves whole, as the very bytes queued; a partial release is a view of the next cells", () => {
    const s = new OutboundScheduler({ node: { bytesPerSecond: 512 * 1000, burstBytes: 512 * 7 }, maxQueuedCellsPerCircuit: 100, now: 0 });
    const small = run(5);
    expect(s.enqueueRun("x", "L", small, 5, 0)).toBe(true);
    const out: (OutboundCell | OutboundRun)[] = [];
    s.flush(0, out);
    expect(out).toEqual([{ type: "send-run", linkId: "L", bytes: small, cells: 5 }]);
    expect((out[0] as OutboundRun).bytes).toBe(small);
    // 10 more: the bucket holds 2 cells now, then refills at 1000 cells/s.
    const big = run(10);
    s.enqueueRun("x", "L", big, 10, 0);
    expect(s.queued("x")).toBe(10);
    out.length = 0;
    s.flush(0, out);
    s.flush(3, out);
    expect(out.map((o) => (o as OutboundRun).cells)).toEqual([2, 3]);
    expect(Buffer.concat(out.map((o) => (o as OutboundRun).bytes))).toEqual(Buffer.from(big.subarray(0, 5 * CELL_LEN)));
    expect(s.queued("x")).toBe(5);
    expect(s.bytesSent).toBe(10 * CELL_LEN);
  });

  it("counts a run's cells against the queue cap and refuses a run that would pass it, queueing none of it", () => {
    const s = new OutboundScheduler({ node: { bytesPerSecond: 1, burstBytes: 1 }, maxQueuedCellsPerCircuit: 10, now: 0 });
    expect(s.enqueueRun("x", "L", run(6), 6, 0)).toBe(true);
    expect(s.enqueue("x", "L", { circId: 1, command: CellCommand.RELAY, payload: new Uint8Array(507) }, 0)).toBe(true);
    expect(s.enqueueRun("x", "L", run(4), 4, 0)).toBe(false);
    expect(s.queued("x")).toBe(7);
    expect(s.enqueueRun("x", "L", run(3), 3, 0)).toBe(true);
    expect(s.queuedCells).toBe(10);
  });

  it("with two circuits waiting, runs are served one cell per turn, in order within each circuit", () => {
    const s = new OutboundScheduler({ node: { bytesPerSecond: 1e9, burstBytes: 1e9 }, maxQueuedCellsPerCircuit: 100, now: 0 });
    const a = run(3, 10);
    const b = run(2, 20);
    s.enqueueRun("a", "LA", a, 3, 0);
    const single: Cell = { circId: 10, command: CellCommand.RELAY, payload: new Uint8Array(507).fill(0xee) };
    s.enqueue("a", "LA", single, 0);
    s.enqueueRun("b", "LB", b, 2, 0);
    const out: (OutboundCell | OutboundRun)[] = [];
    s.flush(0, out);
    const order = out.map((o) => (o.type === "send" ? `${o.linkId}:cell` : `${o.linkId}:${o.cells}`));
    // a, b, a, b, then a alone (its run's last cell and the single cell, released together).
    expect(order).toEqual(["LA:1", "LB:1", "LA:1", "LB:1", "LA:1", "LA:cell"]);
    const sentA = out.filter((o) => o.linkId === "LA" && o.type === "send-run").map((o) => (o as OutboundRun).bytes);
    expect(Buffer.concat(sentA)).toEqual(Buffer.from(a));
    expect((out[5] as OutboundCell).cell).toBe(single);
    expect(s.queuedCells).toBe(0);
  });
});

describe("Link.sendCellBytes", () => {
  const alice = generateEd25519KeyPair();
  const bob = generateEd25519KeyPair();
  function openLink(): { link: Link; socket: FakeSocket } {
    const socket = new FakeSocket();
    const link = new Link({ socket: socket.asTls(), role: "responder", identity: bob, options: DEFAULT_LINK_OPTIONS });
    const peer = new LinkHandshake({ role: "initiator", identity: alice, expectedPeer: bob.publicKey, ekm: socket.ekm, startedAt: 0, timeoutMs: 1e9 });
    socket.emit("data", Buffer.concat(peer.start().output));
    socket.emit("data", Buffer.concat(peer.receive(socket.takeWritten(), 1).output));
    expect(link.state).toBe("open");
    return { link, socket };
  }
  const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
  const relayCells = (n: number, circId: number): Cell[] =>
    Array.from({ length: n }, (_, i) => ({ circId, command: CellCommand.RELAY, payload: new Uint8Array(507).fill(i & 0xff) }));

  it("writes runs as they are, in order with cells sent around them", async () => {
    const { link, socket } = openLink();
    const before = relayCells(2, 1);
    const smallRun = encodeCells(relayCells(3, 2));
    const bigRun = Buffer.from(encodeCells(relayCells(40, 3)));
    const after = relayCells(1, 4);
    expect(link.sendMany(before)).toBe(true);
    expect(link.sendCellBytes(smallRun)).toBe(true);
    expect(link.sendCellBytes(bigRun)).toBe(true);
    expect(link.send(after[0] as Cell)).toBe(true);
    await tick();
    expect(socket.writes.some((w) => w.equals(bigRun))).toBe(true); // the large run went out without being re-encoded
    const written = socket.takeWritten();
    expect(written).toEqual(Buffer.concat([encodeCells(before), smallRun, bigRun, encodeCells(after)]));
    expect(link.stats.cellsSent).toBe(2 + 3 + 40 + 1);
    await link.close();
  });

  it("refuses bytes that are not whole, valid cells with a WireError and queues nothing", async () => {
    const { link, socket } = openLink();
    expect(() => link.sendCellBytes(new Uint8Array(100))).toThrow(WireError);
    const bad = encodeCells(relayCells(2, 9));
    bad[CELL_LEN + 4] = 250;
    expect(() => link.sendCellBytes(bad)).toThrow(WireError);
    await tick();
    expect(socket.takeWritten().length).toBe(0);
    expect(link.stats.cellsSent).toBe(0);
    await link.close();
  });
});

describe("relays forward batches as runs", () => {
  it("a middle relay turns a batch into send-run actions, and the bytes arrive intact", () => {
    const sim = new OnionSim();
    const fast = { circuitBytesPerSecond: 1e9, circuitBurstBytes: 1e9, nodeBytesPerSecond: 1e9, nodeBurstBytes: 1e9 };
    const received: Uint8Array[] = [];
    for (const name of ["r1", "r2", "r3"]) sim.addRelay(name, { limits: fast });
    sim.relay("r3").relay.registerService("sink", () => ({ onMessage: (m) => void received.push(m) }));
    const client = sim.addClient("alice", { limits: fast });
    const circ = client.buildCircuit(["r1", "r2", "r3"].map((n) => sim.relay(n).node), sim.now);
    sim.run();
    const stream = client.openStream(circ, "sink", sim.now);
    sim.run();
    // Record what the middle relay asks its driver to send.
    const middle = sim.relay("r2").relay;
    const take = middle.takeActions.bind(middle);
    const seen: OnionAction[] = [];
    middle.takeActions = () => {
      const actions = take();
      seen.push(...actions);
      return actions;
    };
    const message = randomBytes(300 * 490);
    client.send(circ, stream, message, sim.now);
    expect(sim.runUntil(() => received.length === 1, 10_000)).toBe(true);
    expect(Buffer.from(received[0] as Uint8Array)).toEqual(message);
    const runs = seen.filter((a): a is Extract<OnionAction, { type: "send-run" }> => a.type === "send-run");
    const relaySends = seen.filter((a) => a.type === "send" && (a.cell.command === CellCommand.RELAY || a.cell.command === CellCommand.RELAY_EARLY));
    expect(relaySends).toEqual([]);
    const forwarded = runs.reduce((n, r) => n + r.cells, 0);
    expect(forwarded).toBeGreaterThanOrEqual(300);
    expect(runs.length).toBeLessThan(forwarded / 10); // batches, not one action per cell
    for (const r of runs) expect(cellsOf(r.bytes).every((c) => c.command === CellCommand.RELAY && c.payload.length === 507)).toBe(true);
  });
});

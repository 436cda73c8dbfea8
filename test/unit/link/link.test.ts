import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { CloseReason, LinkError } from "../../../node/src/link/errors.js";
import { LinkHandshake } from "../../../node/src/link/handshake.js";
import { DEFAULT_LINK_OPTIONS, Link } from "../../../node/src/link/link.js";
import type { LinkOptions } from "../../../node/src/link/link.js";
import { CELL_LEN, CellCommand, decodeCell, encodeCell } from "../../../node/src/wire/cell.js";
import type { Cell } from "../../../node/src/wire/cell.js";
import { FakeSocket } from "./fakeSocket.js";

const alice = generateEd25519KeyPair();
const bob = generateEd25519KeyPair();

/** A responder Link (Bob) on a fake socket, handshaken with a pure initiator (Alice) played by the test. */
function openLink(options: Partial<LinkOptions> = {}): { link: Link; socket: FakeSocket; received: Cell[] } {
  const socket = new FakeSocket();
  const link = new Link({ socket: socket.asTls(), role: "responder", identity: bob, options: { ...DEFAULT_LINK_OPTIONS, ...options } });
  const peer = new LinkHandshake({ role: "initiator", identity: alice, expectedPeer: bob.publicKey, ekm: socket.ekm, startedAt: 0, timeoutMs: 1e9 });
  socket.emit("data", Buffer.concat(peer.start().output));
  const step = peer.receive(socket.takeWritten(), 1);
  expect(step.status).toBe("done");
  socket.emit("data", Buffer.concat(step.output));
  expect(link.state).toBe("open");
  const received: Cell[] = [];
  link.setCellHandler((cell) => received.push({ ...cell, payload: Uint8Array.from(cell.payload) }));
  return { link, socket, received };
}

const relay = (circId: number, fill = 0): Cell => ({ circId, command: CellCommand.RELAY, payload: new Uint8Array(20).fill(fill) });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function writtenCells(bytes: Buffer): Cell[] {
  const cells: Cell[] = [];
  for (let at = 0; at + CELL_LEN <= bytes.length; at += CELL_LEN) cells.push(decodeCell(bytes, at));
  return cells;
}

describe("Link over a fake socket", () => {
  it("opens, knows the peer, and delivers cells split across reads", async () => {
    const { link, socket, received } = openLink();
    expect(Buffer.from(link.peerIdentity as Uint8Array).equals(Buffer.from(alice.publicKey))).toBe(true);
    expect(link.isClientLink).toBe(false);
    const bytes = Buffer.concat([encodeCell(relay(1, 1)), encodeCell(relay(2, 2)), encodeCell(relay(3, 3))]);
    socket.emit("data", bytes.subarray(0, 700));
    socket.emit("data", bytes.subarray(700, 1100));
    socket.emit("data", bytes.subarray(1100));
    expect(received.map((c) => [c.circId, c.payload[0]])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    await link.close();
  });

  it("coalesces the cells sent in one tick into one socket write; sendMany too", async () => {
    const { link, socket } = openLink();
    for (let i = 1; i <= 10; i++) expect(link.send(relay(i))).toBe(true);
    expect(socket.writes.length).toBe(0);
    await tick();
    expect(socket.writes.length).toBe(1);
    expect(writtenCells(socket.takeWritten()).map((c) => c.circId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    link.sendMany(Array.from({ length: 200 }, (_, i) => relay(i + 1)));
    await tick();
    expect(socket.writes.length).toBe(1);
    expect(writtenCells(socket.takeWritten()).length).toBe(200);
    expect(() => link.send({ circId: 0, command: CellCommand.RELAY, payload: new Uint8Array(0) })).toThrow(/non-zero/);
    await link.close();
  });

  it("queues under pressure, resumes on drain, and closes with QUEUE_OVERFLOW past the cap", async () => {
    const { link, socket } = openLink({ maxQueuedBytes: 8 * CELL_LEN, socketHighWaterBytes: 1 });
    socket.full = true;
    link.send(relay(1));
    await tick();
    expect(link.underPressure).toBe(true);
    expect(link.send(relay(2))).toBe(false);
    const drained = link.drain();
    await tick();
    expect(link.queuedSendBytes).toBe(CELL_LEN);
    socket.unblock();
    await drained;
    expect(writtenCells(socket.takeWritten()).map((c) => c.circId)).toEqual([1, 2]);

    socket.full = true;
    link.send(relay(3));
    await tick();
    let thrown: unknown;
    try {
      for (let i = 0; i < 20; i++) link.send(relay(10 + i));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(LinkError);
    expect((thrown as LinkError).kind).toBe("send-queue-full");
    const info = await link.closed;
    expect(info.reason).toBe(CloseReason.QUEUE_OVERFLOW);
    const cells = writtenCells(socket.takeWritten());
    expect(cells.at(-1)?.command).toBe(CellCommand.CLOSE);
    expect(cells.at(-1)?.payload[0]).toBe(CloseReason.QUEUE_OVERFLOW);
    expect(() => link.send(relay(1))).toThrow(/closed/);
  });

  it("pauses the socket while a consumer holds reads, resumes when all release", async () => {
    const { link, socket } = openLink();
    const r1 = link.pauseReading();
    const r2 = link.pauseReading();
    expect(socket.paused).toBe(true);
    r1();
    r1();
    expect(socket.paused).toBe(true);
    r2();
    expect(socket.paused).toBe(false);
    await link.close();
  });

  it("sends PADDING when idle for the keepalive interval, and idle-closes unused links", async () => {
    const { link, socket } = openLink({ keepaliveMs: 20, idleTimeoutMs: 0, silenceTimeoutMs: 0 });
    await new Promise((r) => setTimeout(r, 80));
    expect(link.stats.paddingSent).toBeGreaterThan(0);
    expect(writtenCells(socket.takeWritten()).every((c) => c.command === CellCommand.PADDING)).toBe(true);
    await link.close();

    const idle = openLink({ keepaliveMs: 0, idleTimeoutMs: 30, silenceTimeoutMs: 0 });
    const release = idle.link.acquire();
    await new Promise((r) => setTimeout(r, 80));
    expect(idle.link.state).toBe("open"); // held: not idle
    release();
    const info = await idle.link.closed;
    expect(info.reason).toBe(CloseReason.IDLE);
    expect(info.error).toBeUndefined();
  });

  it("closes a silent peer with PEER_SILENT", async () => {
    const { link } = openLink({ keepaliveMs: 0, idleTimeoutMs: 0, silenceTimeoutMs: 30 });
    const info = await link.closed;
    expect(info.error?.kind).toBe("peer-silent");
    expect(info.reason).toBe(CloseReason.PEER_SILENT);
  });

  it("reports the peer's CLOSE reason and a truncated stream", async () => {
    const { link, socket } = openLink();
    socket.emit("data", encodeCell({ circId: 0, command: CellCommand.CLOSE, payload: Uint8Array.of(CloseReason.AUTH_FAILED, 0, 2, 104, 105) }));
    const info = await link.closed;
    expect(info).toMatchObject({ initiatedBy: "peer", reason: CloseReason.AUTH_FAILED, message: "hi" });
    expect(info.error?.kind).toBe("peer-closed");

    const second = openLink();
    second.socket.emit("data", Buffer.alloc(100));
    second.socket.emit("end");
    expect((await second.link.closed).error?.kind).toBe("truncated");
  });
});

describe("Link cell stream fuzzing", () => {
  it("never throws on random or mutated bytes; every rejection is a typed LinkError with a CLOSE reason", async () => {
    const kinds = new Set(["protocol", "unknown-command", "peer-closed", "truncated"]);
    const valid = Buffer.concat([encodeCell(relay(5)), encodeCell({ circId: 0, command: CellCommand.PADDING, payload: new Uint8Array(0) })]);
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.array(fc.uint8Array({ minLength: 1, maxLength: 1500 }), { minLength: 1, maxLength: 4 }),
          fc.array(fc.tuple(fc.integer({ min: 0, max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }).map((muts) => {
            const b = Buffer.from(valid);
            for (const [at, v] of muts) b[at] = v;
            return [b];
          }),
        ),
        fc.boolean(),
        async (chunks, endAfter) => {
          const { link, socket } = openLink({ keepaliveMs: 0, idleTimeoutMs: 0, silenceTimeoutMs: 0 });
          for (const chunk of chunks) socket.emit("data", Buffer.from(chunk));
          if (endAfter) socket.emit("end");
          if (link.state === "open") {
            await link.close();
            return;
          }
          const info = await link.closed;
          if (info.initiatedBy === "local") {
            expect(info.error).toBeInstanceOf(LinkError);
            expect(kinds.has(info.error?.kind as string)).toBe(true);
            seen.add(info.error?.kind as string);
            const last = writtenCells(socket.takeWritten()).at(-1);
            expect(last?.command).toBe(CellCommand.CLOSE);
            expect(last?.payload[0]).toBe(info.reason);
          } else {
            expect(["peer", "transport"]).toContain(info.initiatedBy);
          }
        },
      ),
      { numRuns: 1500 },
    );
    expect(seen.has("unknown-command") || seen.has("protocol")).toBe(true);
  });
});

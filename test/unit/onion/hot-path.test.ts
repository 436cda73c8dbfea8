/**
 * The bulk path's shortcuts must not change what goes on the wire:
 * a stream's framing equals the wire layer's fragmenter byte for byte, the
 * scheduler's one-circuit fast path still honours both token buckets, and
 * the sealed-run digest matches SHA-256(C ‖ payloads) as specified.
 */
import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { EdgeStream } from "../../../node/src/onion/streams.js";
import { MAX_RUN_PAYLOADS, hopCryptoFromKeyMaterial, splitHopKeys } from "../../../node/src/onion/relay-crypto.js";
import { OutboundScheduler } from "../../../node/src/onion/scheduler.js";
import type { OutboundCell } from "../../../node/src/onion/scheduler.js";
import { CellCommand } from "../../../node/src/wire/cell.js";
import { fragmentMessage } from "../../../node/src/wire/fragment.js";
import { encodeRelayPayload } from "../../../node/src/wire/relay.js";

/** Every DATA body a stream hands out for `messages`, alternating its two ways of cutting them. */
function bodiesOf(messages: Uint8Array[]): Buffer[] {
  const stream = new EdgeStream(1, "s", 0, 1 << 20);
  for (const m of messages) stream.enqueueMessage(m);
  const bodies: Buffer[] = [];
  const room = Buffer.alloc(600, 0xee);
  while (stream.queuedCells > 0) {
    if (bodies.length % 2 === 0) {
      const length = stream.writeNextBody(room, 7);
      bodies.push(Buffer.from(room.subarray(7, 7 + length)));
    } else {
      bodies.push(Buffer.from(stream.nextChunk() as Uint8Array));
    }
  }
  return bodies;
}

describe("stream framing", () => {
  it("cuts exactly the wire fragmenter's bodies for every size around the chunk boundaries", () => {
    const sizes = [0, 1, 489, 490, 491, 979, 980, 981, 65536, 100_003];
    const messages = sizes.map((size) => randomBytes(size));
    const wire = messages.flatMap((m) => fragmentMessage(m, 496).map((f) => Buffer.from(f)));
    expect(bodiesOf(messages)).toEqual(wire);
  });

  it("sends the message as it was queued, not as the caller changed it afterwards", () => {
    const stream = new EdgeStream(1, "s", 0, 1 << 20);
    const message = new Uint8Array(1000).fill(7);
    stream.enqueueMessage(message);
    message.fill(9);
    expect(stream.queuedCells).toBe(3);
    const first = stream.nextChunk() as Uint8Array;
    expect(first.subarray(6).every((b) => b === 7)).toBe(true);
    stream.clearQueue();
    expect([stream.queuedCells, stream.nextChunk(), stream.writeNextBody(new Uint8Array(496), 0)]).toEqual([0, undefined, 0]);
  });

  it("refuses a message over the limit or that is not bytes, queueing nothing", () => {
    const stream = new EdgeStream(1, "s", 0, 10);
    expect(() => stream.enqueueMessage(new Uint8Array(11))).toThrow(/exceeds/);
    expect(() => stream.enqueueMessage("x" as unknown as Uint8Array)).toThrow(/must be a Uint8Array/);
    expect(stream.queuedCells).toBe(0);
  });
});

describe("scheduler fast path", () => {
  const cell = { circId: 1, command: CellCommand.RELAY, payload: new Uint8Array(507) };

  it("releases a lone circuit's run up to the node bucket, then paces it", () => {
    const s = new OutboundScheduler({ node: { bytesPerSecond: 512 * 1000, burstBytes: 512 * 7 }, maxQueuedCellsPerCircuit: 100, now: 0 });
    for (let i = 0; i < 20; i++) expect(s.enqueue("x", "L", cell, 0)).toBe(true);
    const out: OutboundCell[] = [];
    s.flush(0, out);
    expect(out).toHaveLength(7);
    expect(s.bytesSent).toBe(7 * 512);
    s.flush(5, out); // 5 ms at 1000 cells/s: 5 more
    expect(out).toHaveLength(12);
    expect(s.queued("x")).toBe(8);
    expect(out.every((o) => o.linkId === "L" && o.cell === cell)).toBe(true);
  });

  it("releases a lone circuit's run up to its own bucket", () => {
    const s = new OutboundScheduler({
      node: { bytesPerSecond: 1e9, burstBytes: 1e9 },
      circuit: { bytesPerSecond: 512, burstBytes: 512 * 3 },
      maxQueuedCellsPerCircuit: 100,
      now: 0,
    });
    for (let i = 0; i < 10; i++) s.enqueue("x", "L", cell, 0);
    const out: OutboundCell[] = [];
    s.flush(0, out);
    expect(out).toHaveLength(3);
    expect(s.queued("x")).toBe(7);
  });
});

describe("digest chain", () => {
  it("a sealed run's last digest is SHA-256(C ‖ payloads with zero digests and RUN_CONTINUES), members carry C[28..32]", () => {
    const material = randomBytes(96);
    const seed = splitHopKeys(material).forwardDigestSeed;
    const hop = hopCryptoFromKeyMaterial(material);
    let chain = Buffer.from(seed);
    // 40 payloads in one call are sealed as runs of 16, 16 and 8.
    for (const n of [1, 3, MAX_RUN_PAYLOADS, 40]) {
      const all = Buffer.concat(Array.from({ length: n }, (_, i) => encodeRelayPayload({ streamId: 1, command: 2, data: randomBytes(100 + i) })));
      const expectedAll = Buffer.from(all);
      hop.forward.sealRun(all, 0, n);
      for (let first = 0; first < n; first += MAX_RUN_PAYLOADS) {
        const m = Math.min(MAX_RUN_PAYLOADS, n - first);
        const run = all.subarray(first * 507, (first + m) * 507);
        const expected = expectedAll.subarray(first * 507, (first + m) * 507);
        for (let i = 0; i < m - 1; i++) expected[i * 507 + 8] = (expected[i * 507 + 8] as number) | 0x80;
        const marker = chain.subarray(28, 32);
        chain = createHash("sha256").update(chain).update(expected).digest();
        for (let i = 0; i < m - 1; i++) {
          expect(run.subarray(i * 507 + 4, i * 507 + 8)).toEqual(marker);
          expect((run[i * 507 + 8] as number) & 0x80).toBe(0x80);
        }
        expect(run.subarray((m - 1) * 507 + 4, (m - 1) * 507 + 8)).toEqual(chain.subarray(0, 4));
        expect((run[(m - 1) * 507 + 8] as number) & 0x80).toBe(0);
      }
    }
  });
});

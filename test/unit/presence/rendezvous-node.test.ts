/**
 * The rendezvous node (node/src/presence/rendezvous-node.ts) over fake
 * ServiceStreams with the clock and timers driven by hand: establish and
 * join splice two streams both ways; unknown, duplicate and expired cookies
 * are refused; one side ending ends the other; a direction over its rate,
 * or whose other side is not reading, is paused and resumed.
 */
import { describe, expect, it } from "vitest";
import { EndReason } from "../../../node/src/onion/constants.js";
import { decodeRendezvousMessage, encodeRendezvousMessage } from "../../../node/src/presence/messages.js";
import type { RendezvousMessage } from "../../../node/src/presence/messages.js";
import { createRendezvousNode, MAX_CHANNEL_FRAME } from "../../../node/src/presence/rendezvous-node.js";
import type { RendezvousNodeLimits } from "../../../node/src/presence/rendezvous-node.js";
import { FakeServiceStream, hex, ManualClock } from "./helpers.js";

const cookieOf = (byte: number) => new Uint8Array(20).fill(byte);
const reply = new Uint8Array(64).fill(0x99);
const frame = (n: number, fill = 1) => new Uint8Array(n).fill(fill);

function setup(limits: Partial<RendezvousNodeLimits> = {}) {
  const clock = new ManualClock();
  const node = createRendezvousNode({ now: clock.now, setTimer: clock.setTimer, limits });
  const stream = () => new FakeServiceStream("rendezvous").open(node.service);
  const send = (s: FakeServiceStream, m: RendezvousMessage) => s.receive(encodeRendezvousMessage(m));
  const messagesOf = (s: FakeServiceStream) => s.sent.map(decodeRendezvousMessage);
  const establish = (cookie = cookieOf(1)) => {
    const s = stream();
    send(s, { t: "establish", cookie });
    return s;
  };
  const join = (cookie = cookieOf(1), rate = 0, burst = 0) => {
    const s = stream();
    send(s, { t: "join", cookie, reply, rate, burst });
    return s;
  };
  /** An established and joined pair, with the control messages cleared. */
  const spliced = (rate = 0, burst = 0) => {
    const a = establish();
    const b = join(cookieOf(1), rate, burst);
    expect(messagesOf(a).map((m) => m.t)).toEqual(["established", "joined"]);
    expect(messagesOf(b).map((m) => m.t)).toEqual(["joined"]);
    a.sent.length = 0;
    b.sent.length = 0;
    return { a, b };
  };
  return { clock, node, stream, send, messagesOf, establish, join, spliced };
}

const kinds = (messages: RendezvousMessage[]) => messages.map((m) => (m.t === "refused" ? m.kind : m.t));

describe("rendezvous node", () => {
  it("establish then join hands the reply to the initiator and splices the two streams both ways", () => {
    const t = setup();
    const a = t.establish();
    expect(t.messagesOf(a)).toEqual([{ t: "established" }]);
    expect(t.node.waiting).toBe(1);
    const b = t.join();
    const joined = t.messagesOf(a)[1];
    expect(joined?.t === "joined" && joined.reply && hex(joined.reply)).toBe(hex(reply));
    expect(t.messagesOf(b)).toEqual([{ t: "joined" }]);
    expect(t.node.waiting).toBe(0);
    a.sent.length = 0;
    b.sent.length = 0;
    // After the join, every message passes unread, whatever it looks like.
    const looksLikeControl = encodeRendezvousMessage({ t: "establish", cookie: cookieOf(2) });
    a.receive(frame(100, 1));
    a.receive(looksLikeControl);
    b.receive(frame(50, 2));
    expect(b.sent.map(hex)).toEqual([hex(frame(100, 1)), hex(looksLikeControl)]);
    expect(a.sent.map(hex)).toEqual([hex(frame(50, 2))]);
    expect(t.node.stats.relayedMessages).toBe(3);
    expect(t.node.waiting).toBe(0);
  });

  it("a join with an unknown cookie is refused rendezvous-failed and ended", () => {
    const t = setup();
    t.establish(cookieOf(1));
    const b = t.join(cookieOf(2));
    expect(kinds(t.messagesOf(b))).toEqual(["rendezvous-failed"]);
    expect(b.ended).toBe(EndReason.DONE);
  });

  it("a cookie is joined once: a second join is refused", () => {
    const t = setup();
    t.spliced();
    expect(kinds(t.messagesOf(t.join()))).toEqual(["rendezvous-failed"]);
  });

  it("a cookie already waiting is refused replayed", () => {
    const t = setup();
    const first = t.establish();
    const second = t.establish();
    expect(kinds(t.messagesOf(second))).toEqual(["replayed"]);
    expect(first.isOpen).toBe(true);
    expect(t.node.waiting).toBe(1);
  });

  it("a cookie nobody joins in time expires: the initiator is told timeout and a late join fails", () => {
    const t = setup({ cookieTtlMs: 60_000 });
    const a = t.establish();
    t.clock.advance(59_999);
    t.establish(cookieOf(7)); // any request sweeps
    expect(a.isOpen).toBe(true);
    t.clock.advance(1);
    const late = t.join();
    expect(kinds(t.messagesOf(a))).toEqual(["established", "timeout"]);
    expect(a.ended).toBe(EndReason.DONE);
    expect(kinds(t.messagesOf(late))).toEqual(["rendezvous-failed"]);
    expect(t.node.stats.expired).toBe(1);
  });

  it("a node holding all the cookies it serves refuses busy", () => {
    const t = setup({ maxCookies: 2 });
    t.establish(cookieOf(1));
    t.establish(cookieOf(2));
    expect(kinds(t.messagesOf(t.establish(cookieOf(3))))).toEqual(["busy"]);
  });

  it("an initiator leaving before the join frees its cookie", () => {
    const t = setup();
    const a = t.establish();
    a.remoteEnd();
    expect(t.node.waiting).toBe(0);
    expect(kinds(t.messagesOf(t.join()))).toEqual(["rendezvous-failed"]);
  });

  it("a stream that misbehaves after establishing is refused, and its cookie goes with it", () => {
    const t = setup();
    const a = t.establish();
    t.send(a, { t: "establish", cookie: cookieOf(2) });
    expect(kinds(t.messagesOf(a))).toEqual(["established", "malformed"]);
    expect(a.ended).toBe(EndReason.DONE);
    expect(t.node.waiting).toBe(0);
    // The peer that comes to join is told plainly, not spliced to a dead stream.
    const b = t.join();
    expect(kinds(t.messagesOf(b))).toEqual(["rendezvous-failed"]);
  });

  it("a stream that established cannot join; bytes that are no request are malformed; answers are no requests", () => {
    const t = setup();
    const a = t.establish();
    t.send(a, { t: "join", cookie: cookieOf(1), reply, rate: 0, burst: 0 });
    expect(kinds(t.messagesOf(a))).toEqual(["established", "malformed"]);
    const junk = t.stream();
    junk.receive(Uint8Array.of(0xff));
    expect(kinds(t.messagesOf(junk))).toEqual(["malformed"]);
    const answer = t.stream();
    t.send(answer, { t: "joined" });
    expect(kinds(t.messagesOf(answer))).toEqual(["malformed"]);
  });

  it("either side ending ends the other", () => {
    for (const which of ["a", "b"] as const) {
      const t = setup();
      const pair = t.spliced();
      const [leaving, staying] = which === "a" ? [pair.a, pair.b] : [pair.b, pair.a];
      leaving.remoteEnd();
      expect(staying.ended).toBe(EndReason.DONE);
      expect(staying.sent).toHaveLength(0);
    }
  });

  it("a direction over its rate is paused and resumed when the clock brings tokens, in order", () => {
    const t = setup({ maxBurst: 1000 });
    const { a, b } = t.spliced(1000, 1000);
    a.receive(frame(600, 1));
    a.receive(frame(600, 2));
    expect(b.sent.map((m) => m[0])).toEqual([1]);
    expect(a.paused).toBe(true);
    // Messages that arrive while paused wait in the stream, as the relay holds them.
    a.receive(frame(100, 3));
    expect(a.heldMessages).toBe(1);
    t.clock.advance(199);
    expect(b.sent.map((m) => m[0])).toEqual([1]);
    t.clock.advance(1);
    // 600 bytes took the 200 ms of tokens; the 100 bytes after them wait another 100 ms.
    expect(b.sent.map((m) => m[0])).toEqual([1, 2]);
    expect(a.paused).toBe(true);
    t.clock.advance(100);
    expect(b.sent.map((m) => m[0])).toEqual([1, 2, 3]);
    expect(a.paused).toBe(false);
    expect(t.node.stats.throttled).toBeGreaterThan(0);
    // The other direction has its own bucket.
    b.receive(frame(900, 4));
    expect(a.sent.map((m) => m[0])).toEqual([4]);
  });

  it("asks for at most the node's rate: a join asking for more gets the node's limit", () => {
    const t = setup({ maxRate: 1000, maxBurst: 1000 });
    const { a, b } = t.spliced(1_000_000, 1_000_000);
    a.receive(frame(1000, 1));
    a.receive(frame(1, 2));
    expect(b.sent).toHaveLength(1);
    t.clock.advance(1);
    expect(b.sent).toHaveLength(2);
  });

  it("a join asking for a burst below the largest channel frame gets enough for one: a long message waits for tokens instead of ending the channel", () => {
    const t = setup();
    // What a client with a 1 KiB/s channel rate asks for: burst = 2 × rate.
    const { a, b } = t.spliced(1024, 2048);
    a.receive(frame(MAX_CHANNEL_FRAME, 1));
    a.receive(frame(MAX_CHANNEL_FRAME, 2));
    expect([a.isOpen, b.isOpen]).toEqual([true, true]);
    expect(b.sent.map((m) => m[0])).toEqual([1]);
    t.clock.advance(Math.ceil((MAX_CHANNEL_FRAME * 1000) / 1024));
    expect(b.sent.map((m) => m[0])).toEqual([1, 2]);
  });

  it("a message larger than the node's largest burst can never pass: both sides end", () => {
    const t = setup({ maxBurst: 100 });
    const { a, b } = t.spliced(1000, 100);
    a.receive(frame(101));
    expect([a.ended, b.ended]).toEqual([EndReason.DONE, EndReason.DONE]);
    expect(t.clock.pendingTimers).toBe(0);
  });

  it("the other side's queue above the high-water mark pauses the source; its drain resumes it", () => {
    const t = setup({ highWaterCells: 10 });
    const { a, b } = t.spliced();
    b.queuedCells = 11;
    a.receive(frame(10, 1));
    a.receive(frame(10, 2));
    expect(b.sent).toHaveLength(0);
    expect(a.paused).toBe(true);
    b.drain();
    expect(b.sent.map((m) => m[0])).toEqual([1, 2]);
    expect(a.paused).toBe(false);
  });

  it("a side whose send fails ends both", () => {
    const t = setup();
    const { a, b } = t.spliced();
    b.sendFails = true;
    a.receive(frame(10));
    expect([a.ended, b.ended]).toEqual([EndReason.DONE, EndReason.DONE]);
  });

  it("close ends the waiting initiators and refuses new streams", () => {
    const t = setup();
    const a = t.establish();
    t.node.close();
    expect(a.ended).toBe(EndReason.DONE);
    expect(t.node.waiting).toBe(0);
    expect(t.node.service(new FakeServiceStream("rendezvous"), 0)).toBe(EndReason.RESOURCELIMIT);
  });
});

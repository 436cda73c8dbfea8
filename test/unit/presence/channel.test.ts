/**
 * Private channels (node/src/presence/channel.ts) over the ratchet and a
 * fake pair of OnionStreams (the two ends of a spliced rendezvous): messages
 * both ways, send resolving on the peer's acknowledgement, tampered,
 * replayed and garbage frames dropped (counted) and never delivered, and
 * close from either end closing both.
 */
import { EventEmitter } from "node:events";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EndReason } from "../../../node/src/onion/constants.js";
import { CircuitError } from "../../../node/src/onion/errors.js";
import type { OnionStream, OnionStreamEvents } from "../../../node/src/onion/onion-client.js";
import { PresenceChannel } from "../../../node/src/presence/channel.js";
import type { ChannelMessage, PresenceChannelOptions } from "../../../node/src/presence/channel.js";
import { PresenceError } from "../../../node/src/presence/errors.js";
import { encodeChannelPayload } from "../../../node/src/presence/messages.js";
import { createChannelRatchet } from "../../../node/src/presence/ratchet.js";
import type { ChannelRatchet } from "../../../node/src/presence/ratchet.js";
import { flipped } from "./helpers.js";

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One end of a spliced stream. Frames and the END travel in order to the
 * other end. With `hold`, frames wait in `inFlight` until the test delivers,
 * drops, alters or repeats them.
 */
class FakeOnionStream extends EventEmitter<OnionStreamEvents> {
  peer!: FakeOnionStream;
  isOpen = true;
  hold = false;
  readonly inFlight: Uint8Array[] = [];
  readonly closed: Promise<CircuitError | undefined>;
  private readonly inbox: Uint8Array[] = [];
  private resolveClosed!: (err: CircuitError | undefined) => void;

  constructor(readonly service = "rendezvous") {
    super();
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  async send(frame: Uint8Array): Promise<void> {
    if (!this.isOpen) throw new CircuitError("stream-closed", "the stream is closed", { endReason: EndReason.DONE });
    if (this.hold) this.inFlight.push(frame);
    else queueMicrotask(() => this.peer.deliver(frame));
  }

  /** Delivers a frame to this end, as if the peer sent it. */
  deliver(frame: Uint8Array): void {
    if (!this.isOpen) return;
    if (this.listenerCount("message") > 0) this.emit("message", frame);
    else this.inbox.push(frame);
  }

  /** Delivers the held frames to the peer, in order. */
  release(): void {
    for (const frame of this.inFlight.splice(0)) this.peer.deliver(frame);
  }

  takeBuffered(): Uint8Array[] {
    return this.inbox.splice(0);
  }

  close(): void {
    if (!this.isOpen) return;
    this.ended(undefined);
    // The END follows the frames already sent.
    queueMicrotask(() => this.peer.ended(new CircuitError("stream-closed", "the peer ended the stream", { endReason: EndReason.DONE })));
  }

  /** The route broke under this end (a hop went away). */
  ended(err: CircuitError | undefined): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.resolveClosed(err);
    this.emit("close", err);
  }
}

function streamPair(): [FakeOnionStream, FakeOnionStream] {
  const a = new FakeOnionStream();
  const b = new FakeOnionStream();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

function ratchets(): { ra: ChannelRatchet; rb: ChannelRatchet } {
  const keySeed = new Uint8Array(32).fill(0x3c);
  return { ra: createChannelRatchet({ keySeed, role: "initiator" }), rb: createChannelRatchet({ keySeed, role: "responder" }) };
}

/** Alice (initiator) and Bob (responder) on one channel. */
function channels(options: PresenceChannelOptions = {}) {
  const [sa, sb] = streamPair();
  const { ra, rb } = ratchets();
  const alice = new PresenceChannel(sa as unknown as OnionStream, ra, "peerstream.client.account.bob", options);
  const bob = new PresenceChannel(sb as unknown as OnionStream, rb, "peerstream.client.account.alice", options);
  return { alice, bob, sa, sb, ra, rb };
}

/** Whether `p` has settled, after the microtasks and immediates run. */
async function settled(p: Promise<unknown>): Promise<"resolved" | "rejected" | "pending"> {
  let state: "resolved" | "rejected" | "pending" = "pending";
  p.then(
    () => (state = "resolved"),
    () => (state = "rejected"),
  );
  await settle();
  return state;
}

function collect(channel: PresenceChannel): ChannelMessage[] {
  const got: ChannelMessage[] = [];
  channel.on("message", (m) => got.push(m));
  return got;
}

afterEach(() => {
  vi.useRealTimers();
});

describe("presence channel", () => {
  it("carries messages both ways, each send resolving once the peer acknowledged it", async () => {
    const { alice, bob } = channels();
    const toBob = collect(bob);
    const toAlice = collect(alice);
    await alice.send("hello bob");
    await bob.send(new Uint8Array([1, 2, 3]));
    await alice.send("again");
    expect(toBob.map((m) => [m.from, m.id, m.text])).toEqual([
      ["peerstream.client.account.alice", 0, "hello bob"],
      ["peerstream.client.account.alice", 1, "again"],
    ]);
    expect(toAlice.map((m) => [m.from, m.id, [...m.body]])).toEqual([["peerstream.client.account.bob", 0, [1, 2, 3]]]);
    expect([alice.role, bob.role]).toEqual(["initiator", "responder"]);
  });

  it("send stays pending until the acknowledgement arrives", async () => {
    const { alice, bob, sa, sb } = channels();
    collect(bob);
    sa.hold = true;
    sb.hold = true;
    const sent = alice.send("wait for it");
    expect(await settled(sent)).toBe("pending");
    sa.release(); // the message reaches Bob, whose ack is now held
    expect(await settled(sent)).toBe("pending");
    sb.release();
    expect(await settled(sent)).toBe("resolved");
  });

  it("messages wait for an async reader, in order, and the reader ends when the channel closes", async () => {
    const { alice, bob } = channels();
    await alice.send("one");
    await alice.send("two");
    const read: string[] = [];
    const reader = (async () => {
      for await (const m of bob) read.push(m.text);
    })();
    await settle();
    await alice.send("three");
    alice.close();
    await reader;
    expect(read).toEqual(["one", "two", "three"]);
  });

  it("frames that arrived before the channel was made are read first", async () => {
    const [sa, sb] = streamPair();
    const { ra, rb } = ratchets();
    sb.deliver(ra.seal(encodeChannelPayload({ t: "msg", id: 0, body: new TextEncoder().encode("early") })));
    const bob = new PresenceChannel(sb as unknown as OnionStream, rb, "alice");
    const got = collect(bob);
    const alice = new PresenceChannel(sa as unknown as OnionStream, ra, "bob");
    await alice.send("late");
    expect(got.map((m) => m.text)).toEqual(["late"]);
    // "early" was buffered before the listener: it waits for the reader.
    const first = await bob.messages().next();
    expect(first.value?.text).toBe("early");
  });

  it("a tampered frame is dropped, counted and never delivered; the genuine one still is", async () => {
    const { alice, bob, sa } = channels();
    const got = collect(bob);
    const dropped: PresenceError[] = [];
    bob.on("dropped", (e) => dropped.push(e));
    sa.hold = true;
    const sent = alice.send("genuine");
    const frame = sa.inFlight[0] as Uint8Array;
    sa.peer.deliver(flipped(frame, frame.length - 1)); // the tag
    sa.peer.deliver(flipped(frame, 4)); // the counter's low byte: counter 1, under another key
    sa.peer.deliver(flipped(frame, 2)); // the counter's high bytes: far ahead
    expect(got).toHaveLength(0);
    expect(bob.droppedFrames).toBe(3);
    expect(dropped.map((e) => e.kind)).toEqual(["channel-auth-failed", "channel-auth-failed", "channel-too-far-ahead"]);
    sa.release();
    await sent;
    expect(got.map((m) => m.text)).toEqual(["genuine"]);
  });

  it("a replayed frame is dropped and the message delivered once", async () => {
    const { alice, bob, sa } = channels();
    const got = collect(bob);
    sa.hold = true;
    const sent = alice.send("once");
    const frame = sa.inFlight[0] as Uint8Array;
    sa.release();
    await sent;
    sa.peer.deliver(frame);
    expect(got.map((m) => m.text)).toEqual(["once"]);
    expect(bob.droppedFrames).toBe(1);
  });

  it("a frame from another channel, garbage, or a frame that opens to no payload is dropped", async () => {
    const { bob, sb, ra } = channels();
    const got = collect(bob);
    const kinds: string[] = [];
    bob.on("dropped", (e) => kinds.push(e.kind));
    const stranger = createChannelRatchet({ keySeed: new Uint8Array(32).fill(1), role: "initiator" });
    sb.deliver(stranger.seal(encodeChannelPayload({ t: "msg", id: 0, body: new Uint8Array(1) })));
    sb.deliver(new Uint8Array(3));
    sb.deliver(ra.seal(new TextEncoder().encode("not CBOR")));
    await settle();
    expect(got).toHaveLength(0);
    expect(kinds).toEqual(["channel-auth-failed", "channel-malformed", "malformed"]);
    expect(bob.droppedFrames).toBe(3);
    expect(bob.isOpen).toBe(true);
  });

  it("close from either end closes both in order, and sends after it are refused closed", async () => {
    for (const closer of ["alice", "bob"] as const) {
      const c = channels();
      const [closing, other] = closer === "alice" ? [c.alice, c.bob] : [c.bob, c.alice];
      collect(other);
      await closing.send("last words");
      closing.close();
      expect(await closing.closed).toBeUndefined();
      expect(await other.closed).toBeUndefined();
      expect([closing.isOpen, other.isOpen]).toEqual([false, false]);
      await expect(closing.send("more")).rejects.toMatchObject({ kind: "closed" });
      await expect(other.send("more")).rejects.toMatchObject({ kind: "closed" });
    }
  });

  it("a send waiting for its acknowledgement is rejected closed when the peer closes", async () => {
    const { alice, bob, sb } = channels();
    collect(bob);
    sb.hold = true; // Bob's ack never leaves
    const sent = alice.send("unacknowledged");
    await settle();
    sb.hold = false;
    bob.close();
    await expect(sent).rejects.toMatchObject({ kind: "closed" });
  });

  it("the route breaking closes the channel with a closed error", async () => {
    const { alice, sa } = channels();
    sa.ended(new CircuitError("stream-closed", "a hop went away", { endReason: EndReason.DESTROY }));
    const err = await alice.closed;
    expect(err).toBeInstanceOf(PresenceError);
    expect(err?.kind).toBe("closed");
  });

  it("a send the peer never acknowledges times out", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const { alice, sa } = channels({ ackTimeoutMs: 1000 });
    sa.hold = true;
    const sent = alice.send("into the void");
    const outcome = expect(sent).rejects.toMatchObject({ kind: "timeout" });
    await vi.advanceTimersByTimeAsync(1000);
    await outcome;
    expect(alice.isOpen).toBe(true);
  });

  it("a reader too slow past the bound closes the channel instead of buffering forever", async () => {
    const { alice, bob } = channels({ maxBuffered: 2 });
    await alice.send("1");
    await alice.send("2");
    const third = alice.send("3");
    await expect(bob.closed).resolves.toMatchObject({ kind: "busy" });
    await expect(third).rejects.toMatchObject({ kind: "closed" });
  });

  it("a channel that sends nothing sends a keepalive every keepaliveMs; the peer delivers and drops nothing for it", async () => {
    vi.useFakeTimers();
    const { alice, bob, sa, sb } = channels({ keepaliveMs: 1000 });
    const toBob = collect(bob);
    sa.hold = true;
    sb.hold = true;
    vi.advanceTimersByTime(999);
    expect([sa.inFlight.length, sb.inFlight.length]).toEqual([0, 0]);
    vi.advanceTimersByTime(1);
    expect([sa.inFlight.length, sb.inFlight.length]).toEqual([1, 1]);
    vi.advanceTimersByTime(1000); // each keepalive re-arms the countdown
    expect(sa.inFlight.length).toBe(2);
    sa.release();
    sb.release();
    expect(toBob).toEqual([]);
    expect([alice.droppedFrames, bob.droppedFrames, alice.isOpen, bob.isOpen]).toEqual([0, 0, true, true]);
    alice.close();
    vi.advanceTimersByTime(10_000);
    expect(sa.inFlight.length).toBe(1); // the close notice, and no keepalive after it
  });

  it("keepaliveMs 0 sends no keepalive however long the channel idles", () => {
    vi.useFakeTimers();
    const { sa } = channels({ keepaliveMs: 0 });
    sa.hold = true;
    vi.advanceTimersByTime(60 * 60_000);
    expect(sa.inFlight).toEqual([]);
  });

  it("refuses messages over the body limit and non-bytes before sending anything", async () => {
    const { alice, sa } = channels();
    sa.hold = true;
    await expect(alice.send(new Uint8Array(60 * 1024 + 1))).rejects.toMatchObject({ kind: "bad-argument" });
    await expect(alice.send(42 as unknown as string)).rejects.toMatchObject({ kind: "bad-argument" });
    expect(sa.inFlight).toHaveLength(0);
  });
});

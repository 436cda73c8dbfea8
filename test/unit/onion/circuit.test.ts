/**
 * End-to-end behaviour of circuits in the in-memory network: real ntor, real
 * relay crypto, real state machines on both ends.
 */
import { describe, expect, it } from "vitest";
import { CellCommand } from "../../../node/src/wire/cell.js";
import type { Cell } from "../../../node/src/wire/cell.js";
import { RelayCommand, registerRelayCommands } from "../../../node/src/wire/relay.js";
import { fragmentMessage } from "../../../node/src/wire/fragment.js";
import { OnionSim } from "../../../node/src/onion/sim.js";
import {
  CIRCUIT_WINDOW_START,
  DestroyReason,
  EndReason,
  SENDME_DELAY_MS,
  STREAM_WINDOW_INCREMENT,
  STREAM_WINDOW_START,
} from "../../../node/src/onion/constants.js";
import type { LocalService } from "../../../node/src/onion/types.js";
import type { OnionClient } from "../../../node/src/onion/client.js";

/** A service that answers every message with "echo:" + message. */
const echo: LocalService = (stream) => ({
  onMessage(message) {
    stream.send(new Uint8Array([...new TextEncoder().encode("echo:"), ...message]));
  },
});

function network(relays = 3, options: Parameters<OnionSim["addRelay"]>[1] = {}) {
  const sim = new OnionSim();
  const names = Array.from({ length: relays }, (_, i) => `r${i + 1}`);
  for (const name of names) sim.addRelay(name, { services: { echo }, ...options });
  const client = sim.addClient("alice");
  return { sim, client, names };
}

function build(sim: OnionSim, client: OnionClient, names: string[]): number {
  const id = client.buildCircuit(
    names.map((n) => sim.relay(n).node),
    sim.now,
  );
  sim.run();
  return id;
}

function messagesOf(sim: OnionSim, circuitId: number, streamId: number): Uint8Array[] {
  return sim
    .eventsOf("alice", "stream-message")
    .filter((e) => e.circuitId === circuitId && e.streamId === streamId)
    .map((e) => e.message);
}

describe("3-hop circuits", () => {
  it("build, open a stream to a service on the last hop and carry messages both ways", () => {
    const { sim, client, names } = network();
    const circ = build(sim, client, names);
    expect(client.circuitInfo(circ)).toMatchObject({ state: "open", hops: 3 });
    const stream = client.openStream(circ, "echo", sim.now);
    sim.run();
    expect(client.streamInfo(circ, stream)?.state).toBe("open");
    // Only the last hop saw the stream.
    expect(sim.eventsOf("r3", "stream-open")).toHaveLength(1);
    expect(sim.eventsOf("r1", "stream-open")).toHaveLength(0);

    const small = new TextEncoder().encode("hello");
    const big = new Uint8Array(20_000).map((_, i) => (i * 7) & 0xff); // 41 cells, fragmented
    client.send(circ, stream, small, sim.now);
    client.send(circ, stream, big, sim.now);
    expect(sim.runUntil(() => messagesOf(sim, circ, stream).length === 2, 10_000)).toBe(true);
    const [m1, m2] = messagesOf(sim, circ, stream);
    expect(new TextDecoder().decode(m1)).toBe("echo:hello");
    expect(m2?.length).toBe(20_005);
    expect(m2?.subarray(5)).toEqual(big);
  });

  it("moves more than a whole SENDME window in each direction", () => {
    const { sim, client, names } = network();
    const circ = build(sim, client, names);
    const stream = client.openStream(circ, "echo", sim.now);
    sim.run();
    // More cells of data than the stream window (and the circuit window) hold, so SENDMEs must flow for it to finish.
    const message = new Uint8Array(200 * 490).fill(9);
    const count = Math.ceil((Math.max(STREAM_WINDOW_START, CIRCUIT_WINDOW_START) + 100) / 200);
    for (let i = 0; i < count; i++) client.send(circ, stream, message, sim.now);
    expect(sim.runUntil(() => messagesOf(sim, circ, stream).length === count, 120_000, 100)).toBe(true);
    expect(messagesOf(sim, circ, stream).map((m) => m.length)).toEqual(Array.from({ length: count }, () => message.length + 5));
  });

  it("an unknown service gets END NO_SUCH_SERVICE and a stream-refused error; the circuit survives", () => {
    const { sim, client, names } = network();
    const circ = build(sim, client, names);
    const stream = client.openStream(circ, "nope", sim.now);
    sim.run();
    const info = client.streamInfo(circ, stream);
    expect(info?.state).toBe("closed");
    expect(info?.error?.kind).toBe("stream-refused");
    expect(info?.error?.endReason).toBe(EndReason.NO_SUCH_SERVICE);
    expect(client.circuitInfo(circ)?.state).toBe("open");
  });

  it("a relay refuses streams at the first hop (one-hop proxying) with END POLICY", () => {
    const { sim, client, names } = network();
    const circ = build(sim, client, names);
    const stream = client.openStream(circ, "echo", sim.now, { hop: 0 });
    sim.run();
    expect(client.streamInfo(circ, stream)?.error?.endReason).toBe(EndReason.POLICY);
  });

  it("streams both ends can close; the circuit stays usable", () => {
    const { sim, client, names } = network();
    const circ = build(sim, client, names);
    const s1 = client.openStream(circ, "echo", sim.now);
    sim.run();
    client.closeStream(circ, s1, sim.now);
    sim.run();
    expect(sim.eventsOf("r3", "stream-closed").map((e) => e.reason)).toEqual([EndReason.DONE]);
    const s2 = client.openStream(circ, "echo", sim.now);
    client.send(circ, s2, Uint8Array.of(1), sim.now);
    sim.run();
    expect(messagesOf(sim, circ, s2)).toHaveLength(1);
  });

  it("TRUNCATE drops the hops after the named one; the circuit can be extended again", () => {
    const { sim, client, names } = network(4);
    const circ = build(sim, client, names.slice(0, 3));
    client.truncate(circ, 1, sim.now);
    sim.run();
    expect(client.circuitInfo(circ)).toMatchObject({ state: "open", hops: 1 });
    expect(sim.relay("r3").relay.stats().circuits).toBe(0);
    client.extendCircuit(circ, sim.relay("r4").node, sim.now);
    sim.run();
    expect(client.circuitInfo(circ)).toMatchObject({ state: "open", hops: 2 });
    const s = client.openStream(circ, "echo", sim.now);
    client.send(circ, s, Uint8Array.of(7), sim.now);
    sim.run();
    expect(sim.eventsOf("r4", "stream-open")).toHaveLength(1);
    expect(messagesOf(sim, circ, s)).toHaveLength(1);
  });
});

describe("higher-layer relay commands", () => {
  it("a registered command (32..255) reaches its handler at the addressed hop and replies reach the client", () => {
    registerRelayCommands({ TEST_PING: 250, TEST_PONG: 251 });
    const { sim, client, names } = network();
    const seen: number[] = [];
    sim.relay("r2").relay.registerRelayCommand(250, (ctx, streamId, data) => {
      seen.push(data.length);
      ctx.reply(251, streamId, data.slice().reverse());
    });
    const circ = build(sim, client, names);
    client.sendRelayMessage(circ, 1, 250, 0, Uint8Array.of(1, 2, 3), sim.now);
    sim.run();
    expect(seen).toEqual([3]);
    const replies = sim.eventsOf("alice", "relay-message");
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ hop: 1, command: 251, data: Uint8Array.of(3, 2, 1) });
    // The same command at a hop without a handler is a violation there.
    client.sendRelayMessage(circ, 2, 250, 0, Uint8Array.of(1), sim.now);
    sim.run();
    expect(client.circuitInfo(circ)?.error?.destroyReason).toBe(DestroyReason.PROTOCOL);
    expect(() => sim.relay("r1").relay.registerRelayCommand(5, () => undefined)).toThrow(expect.objectContaining({ kind: "bad-argument" }));
  });
});

describe("teardown", () => {
  /** Flips one bit of the `nth` (0-based) relay cell that crosses from `from` to `to`. */
  function tamperOnce(sim: OnionSim, from: string, to: string, nth = 0) {
    let done = false;
    let seen = 0;
    sim.interceptor = (cell: Cell, f, t) => {
      if (done || f !== from || t !== to || cell.command !== CellCommand.RELAY || seen++ < nth) return cell;
      done = true;
      const payload = cell.payload.slice();
      payload[100] = (payload[100] as number) ^ 0x01;
      return { ...cell, payload };
    };
    return () => done;
  }

  const hopsLinks: [string, string][] = [
    ["alice", "r1"],
    ["r1", "r2"],
    ["r2", "r3"],
    ["r3", "r2"],
    ["r2", "r1"],
    ["r1", "alice"],
  ];

  for (const [from, to] of hopsLinks) {
    it(`a cell modified between ${from} and ${to} destroys the circuit at both ends`, () => {
      const { sim, client, names } = network();
      const circ = build(sim, client, names);
      const stream = client.openStream(circ, "echo", sim.now);
      sim.run();
      const tampered = tamperOnce(sim, from, to);
      client.send(circ, stream, new Uint8Array(100).fill(1), sim.now);
      sim.run();
      expect(tampered()).toBe(true);
      const info = client.circuitInfo(circ);
      expect(info?.state).toBe("closed");
      expect(info?.error?.kind).toBe("circuit-destroyed");
      expect(info?.error?.destroyReason).toBe(DestroyReason.PROTOCOL);
      for (const r of names) {
        expect(sim.relay(r).relay.stats().circuits, `${r} still holds the circuit`).toBe(0);
        expect(sim.eventsOf(r, "circuit-closed").map((e) => e.reason)).toEqual([DestroyReason.PROTOCOL]);
        expect(sim.relay(r).relay.stats().circuitsDestroyed).toEqual({ PROTOCOL: 1 });
      }
    });
  }

  for (const [from, to] of hopsLinks) {
    it(`a member in the middle of a sealed run modified between ${from} and ${to} destroys the circuit at both ends`, () => {
      const { sim, client, names } = network();
      const circ = build(sim, client, names);
      const stream = client.openStream(circ, "echo", sim.now);
      sim.run();
      // 11 DATA cells each way: one sealed run from the client, one from the echo service.
      const tampered = tamperOnce(sim, from, to, 4);
      client.send(circ, stream, new Uint8Array(5000).fill(2), sim.now);
      sim.run();
      expect(tampered()).toBe(true);
      // On the way out nothing reaches the echo service; on the way back nothing reaches the client.
      expect(sim.eventsOf("alice", "stream-message")).toEqual([]);
      const info = client.circuitInfo(circ);
      expect(info?.state).toBe("closed");
      expect(info?.error?.destroyReason).toBe(DestroyReason.PROTOCOL);
      for (const r of names) expect(sim.relay(r).relay.stats().circuits, `${r} still holds the circuit`).toBe(0);
    });
  }

  it("a client close sends DESTROY REQUESTED to every hop", () => {
    const { sim, client, names } = network();
    const circ = build(sim, client, names);
    client.closeCircuit(circ, sim.now);
    sim.run();
    for (const r of names) expect(sim.eventsOf(r, "circuit-closed").map((e) => e.reason)).toEqual([DestroyReason.REQUESTED]);
    // Counted for psp_onion_circuits_created_total / psp_onion_circuits_destroyed_total{reason}.
    for (const r of names) expect(sim.relay(r).relay.stats()).toMatchObject({ circuitsCreated: 1, circuitsDestroyed: { REQUESTED: 1 } });
  });

  it("a relay that disappears mid-circuit gives the client a typed CHANNEL_CLOSED error", () => {
    const { sim, client, names } = network();
    const circ = build(sim, client, names);
    const stream = client.openStream(circ, "echo", sim.now);
    sim.run();
    sim.kill("r2");
    sim.run();
    const info = client.circuitInfo(circ);
    expect(info?.state).toBe("closed");
    expect(info?.error?.kind).toBe("circuit-destroyed");
    expect(info?.error?.destroyReason).toBe(DestroyReason.CHANNEL_CLOSED);
    expect(client.streamInfo(circ, stream)?.error?.kind).toBe("stream-closed");
    expect(() => client.send(circ, stream, Uint8Array.of(1), sim.now)).toThrow(expect.objectContaining({ kind: "circuit-destroyed" }));
    // The far side learned of it too.
    expect(sim.relay("r3").relay.stats().circuits).toBe(0);
  });

  it("the entry relay disappearing closes the client's circuit", () => {
    const { sim, client, names } = network();
    const circ = build(sim, client, names);
    sim.kill("r1");
    sim.run();
    expect(client.circuitInfo(circ)?.error?.destroyReason).toBe(DestroyReason.CHANNEL_CLOSED);
    expect(sim.relay("r2").relay.stats().circuits).toBe(0);
  });

  it("an unreachable next hop fails the build with CONNECTFAILED", () => {
    const { sim, client, names } = network();
    sim.kill("r3");
    build(sim, client, names);
    const closed = sim.eventsOf("alice", "circuit-closed");
    expect(closed).toHaveLength(1);
    expect(closed[0]?.error?.destroyReason).toBe(DestroyReason.CONNECTFAILED);
  });

  it("the extending relay rejects a next hop whose link identity differs from the one named (OR_IDENTITY)", () => {
    const { sim, client, names } = network();
    // An impostor listens where the path says r3 is.
    const real = sim.relay("r3").node;
    sim.kill("r3");
    sim.addRelay("impostor", { host: real.host, port: real.port, services: { echo } });
    const circ = build(sim, client, names);
    expect(client.circuitInfo(circ)?.error?.destroyReason).toBe(DestroyReason.OR_IDENTITY);
    expect(sim.relay("impostor").relay.stats().circuits).toBe(0);
  });

  it("a client build times out when a hop never answers", () => {
    const { sim, client, names } = network();
    sim.interceptor = (cell, _from, to) => (to === "r3" && cell.command === CellCommand.CREATE ? undefined : cell);
    const circ = build(sim, client, names);
    expect(client.circuitInfo(circ)?.state).toBe("building");
    sim.advance(31_000, 1_000);
    const info = client.circuitInfo(circ);
    expect(info?.state).toBe("closed");
    // The relay's 10 s extend timeout fires first and reports TIMEOUT; either way a typed timeout.
    expect(info?.error?.destroyReason).toBe(DestroyReason.TIMEOUT);
  });

  it("relays expire idle circuits; clients close idle stream-less circuits", () => {
    const { sim, client, names } = network(3, { limits: { relayCircuitIdleMs: 5_000 } });
    const circ = build(sim, client, names);
    sim.advance(6_000, 1_000);
    expect(client.circuitInfo(circ)?.error?.destroyReason).toBe(DestroyReason.FINISHED);
  });
});

describe("limits", () => {
  it("a client cannot extend beyond the max circuit length the relays enforce", () => {
    const { sim, names } = network(4, { limits: { maxCircuitLength: 3 } });
    const client = sim.addClient("mallory", { limits: { maxHops: 8 } });
    const circ = client.buildCircuit(
      names.map((n) => sim.relay(n).node),
      sim.now,
    );
    sim.run();
    const info = client.circuitInfo(circ);
    expect(info?.state).toBe("closed");
    expect(info?.hops).toBe(3);
    expect(info?.error?.destroyReason).toBe(DestroyReason.PROTOCOL);
    expect(sim.relay("r4").relay.stats().circuits).toBe(0);
  });

  it("the client refuses to plan more hops than its own limit", () => {
    const { sim, names } = network(4);
    const client = sim.addClient("bob", { limits: { maxHops: 3 } });
    expect(() => client.buildCircuit(names.map((n) => sim.relay(n).node), sim.now)).toThrow(
      expect.objectContaining({ kind: "too-many-hops" }),
    );
  });

  it("the last hop holds one owed SENDME back for the delay, and sends two owed at once", () => {
    // Rate limits lifted, so every cell is delivered without the clock moving.
    const unlimited = { nodeBytesPerSecond: 1e12, nodeBurstBytes: 1e12, circuitBytesPerSecond: 1e12, circuitBurstBytes: 1e12 };
    const { sim, names } = network(3, { limits: unlimited });
    const client = sim.addClient("bob", { limits: unlimited });
    let received = 0;
    sim.relay("r3").relay.registerService("sink", () => ({ onMessage: () => void received++ }));
    const circ = build(sim, client, names);
    const stream = client.openStream(circ, "sink", sim.now);
    sim.run();
    const cells = (n: number) => new Uint8Array(n * 490); // one 490-byte chunk per DATA cell
    client.send(circ, stream, cells(STREAM_WINDOW_INCREMENT), sim.now);
    sim.run();
    expect(received).toBe(1);
    expect(client.streamInfo(circ, stream)?.packageWindow).toBe(STREAM_WINDOW_START - STREAM_WINDOW_INCREMENT);
    sim.advance(SENDME_DELAY_MS);
    expect(client.streamInfo(circ, stream)?.packageWindow).toBe(STREAM_WINDOW_START);
    client.send(circ, stream, cells(2 * STREAM_WINDOW_INCREMENT), sim.now);
    sim.run();
    expect(received).toBe(2);
    expect(client.streamInfo(circ, stream)?.packageWindow).toBe(STREAM_WINDOW_START);
  });

  it("a relay destroys a circuit whose sender ignores the SENDME window", () => {
    const { sim, client, names } = network();
    sim.relay("r3").relay.registerService("busy", (s) => {
      s.pause();
      return { onMessage: () => undefined };
    });
    const circ = build(sim, client, names);
    const stream = client.openStream(circ, "busy", sim.now);
    sim.run();
    // A busy service pauses its stream: it withholds stream SENDMEs. A client
    // that ignores the window (raw DATA cells: fragments of 200-cell messages,
    // one cell more than the window, sent without waiting) overruns it at the last cell.
    const whole = Math.floor(STREAM_WINDOW_START / 200);
    const fragments = Array.from({ length: whole }, () => fragmentMessage(new Uint8Array(200 * 490), 496)).flat();
    fragments.push(...fragmentMessage(new Uint8Array(490 * (STREAM_WINDOW_START - fragments.length + 1)), 496));
    expect(fragments).toHaveLength(STREAM_WINDOW_START + 1);
    for (const f of fragments) client.sendRelayMessage(circ, 2, RelayCommand.DATA, stream, f, sim.now);
    expect(sim.runUntil(() => client.circuitInfo(circ)?.state === "closed", 60_000, 100)).toBe(true);
    expect(sim.eventsOf("r3", "protocol-violation").map((e) => e.message)).toEqual([
      "DATA beyond the stream window (sender ignored SENDME)",
    ]);
    expect(sim.eventsOf("r3", "circuit-closed").map((e) => e.reason)).toEqual([DestroyReason.PROTOCOL]);
    expect(client.circuitInfo(circ)?.error?.destroyReason).toBe(DestroyReason.PROTOCOL);
  });

  it("a well-behaved sender stops at the window until SENDMEs arrive", () => {
    const { sim, client, names } = network();
    let received = 0;
    sim.relay("r3").relay.registerService("sink", () => ({ onMessage: () => void received++ }));
    const circ = build(sim, client, names);
    const stream = client.openStream(circ, "sink", sim.now);
    sim.run();
    // Drop every cell r3 sends back: no SENDME reaches the client.
    sim.interceptor = (cell, from) => (from === "r3" ? undefined : cell);
    // 200-cell messages, more cells than one window: the window cuts one message.
    const messages = Math.floor(STREAM_WINDOW_START / 200) + 1;
    const beyond = messages * 200 - STREAM_WINDOW_START;
    for (let i = 0; i < messages; i++) client.send(circ, stream, new Uint8Array(200 * 490), sim.now);
    sim.advance(60_000, 100);
    const info = client.streamInfo(circ, stream);
    expect(info?.packageWindow).toBe(0);
    expect(info?.queuedCells).toBe(beyond);
    expect(received).toBe(Math.floor(STREAM_WINDOW_START / 200)); // whole messages within the window got through; the next is cut by it
    expect(client.circuitInfo(circ)?.state).toBe("open");
  });

  it("a paused service holds the sender at one window; resuming lets everything through", () => {
    const { sim, client, names } = network();
    const received: number[] = [];
    let handle: { resume(): void } | undefined;
    sim.relay("r3").relay.registerService("slow", (s) => {
      s.pause();
      handle = s;
      return { onMessage: (m) => void received.push(m.length) };
    });
    const circ = build(sim, client, names);
    const stream = client.openStream(circ, "slow", sim.now);
    sim.run();
    const messages = Math.floor(STREAM_WINDOW_START / 200) + 1;
    for (let i = 0; i < messages; i++) client.send(circ, stream, new Uint8Array(200 * 490), sim.now);
    sim.advance(60_000, 100);
    expect(client.streamInfo(circ, stream)).toMatchObject({ packageWindow: 0, queuedCells: messages * 200 - STREAM_WINDOW_START });
    expect(received).toEqual([]);
    handle?.resume();
    expect(sim.runUntil(() => received.length === messages, 60_000, 100)).toBe(true);
    expect(received).toEqual(Array.from({ length: messages }, () => 98_000));
    expect(client.circuitInfo(circ)?.state).toBe("open");
  });

  it("the node send-rate limit holds under a flood (bytes sent never exceed burst + rate x time)", () => {
    const fast = { circuitBytesPerSecond: 64 * 1024 * 1024, circuitBurstBytes: 1024 * 1024, nodeBytesPerSecond: 64 * 1024 * 1024, nodeBurstBytes: 1024 * 1024 };
    const sim = new OnionSim();
    const rate = 100 * 1024;
    const burst = 16 * 1024;
    let received = 0;
    const sink = () => ({ onMessage: (m: Uint8Array) => void (received += m.length) });
    sim.addRelay("r1", { limits: fast });
    const limited = sim.addRelay("r2", { limits: { ...fast, nodeBytesPerSecond: rate, nodeBurstBytes: burst } });
    sim.addRelay("r3", { limits: fast, services: { sink } });
    const start = sim.now;
    const client = sim.addClient("alice", { limits: fast });
    const circuits = [0, 1, 2, 3].map(() => build(sim, client, ["r1", "r2", "r3"]));
    expect(circuits.every((c) => client.circuitInfo(c)?.state === "open")).toBe(true);
    for (const c of circuits) {
      const s = client.openStream(c, "sink", sim.now);
      for (let i = 0; i < 4; i++) client.send(c, s, new Uint8Array(100_000), sim.now);
    }
    // Check the bound at every step of the flood, not just at the end.
    for (let t = 0; t < 100; t++) {
      sim.advance(50);
      const allowed = burst + (rate * (sim.now - start)) / 1000;
      expect(limited.relay.stats().bytesSent).toBeLessThanOrEqual(allowed);
    }
    const elapsed = (sim.now - start) / 1000;
    // ... and the limiter is not simply idle: it ran at (nearly) full rate.
    expect(limited.relay.stats().bytesSent).toBeGreaterThan(0.9 * rate * elapsed);
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(rate * elapsed);
  });

  it("a relay refuses more streams than its per-circuit limit with END RESOURCELIMIT", () => {
    const { sim, client, names } = network(3, { limits: { maxStreamsPerCircuit: 2 } });
    const circ = build(sim, client, names);
    const ids = [0, 1, 2].map(() => client.openStream(circ, "echo", sim.now));
    sim.run();
    expect(ids.map((s) => client.streamInfo(circ, s)?.state)).toEqual(["open", "open", "closed"]);
    expect(client.streamInfo(circ, ids[2] as number)?.error?.endReason).toBe(EndReason.RESOURCELIMIT);
  });

  it("a relay refuses more circuits per link than its limit with DESTROY RESOURCELIMIT", () => {
    const { sim, client, names } = network(3, { limits: { maxCircuitsPerLink: 2 } });
    const ids = [0, 1, 2].map(() => build(sim, client, names));
    expect(ids.map((c) => client.circuitInfo(c)?.state)).toEqual(["open", "open", "closed"]);
    expect(client.circuitInfo(ids[2] as number)?.error?.destroyReason).toBe(DestroyReason.RESOURCELIMIT);
  });
});

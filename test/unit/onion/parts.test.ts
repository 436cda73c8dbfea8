/**
 * The onion layer's building blocks in isolation: relay crypto, windows,
 * token bucket and scheduler, path selection, payload codecs.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { randomBytes } from "node:crypto";
import { RelayLayer, RunStep, hopCryptoFromKeyMaterial, splitHopKeys } from "../../../node/src/onion/relay-crypto.js";
import { FlowWindow } from "../../../node/src/onion/flow-control.js";
import { SENDME_BATCH, SENDME_DELAY_MS } from "../../../node/src/onion/constants.js";
import { TokenBucket } from "../../../node/src/base/token-bucket.js";
import { BaseError } from "../../../node/src/base/errors.js";
import { OutboundScheduler } from "../../../node/src/onion/scheduler.js";
import type { OutboundCell } from "../../../node/src/onion/scheduler.js";
import { networkKey, selectPath } from "../../../node/src/onion/path.js";
import type { PathNode } from "../../../node/src/onion/path.js";
import { decodeBegin, decodeExtend2, encodeBegin, encodeExtend2 } from "../../../node/src/onion/payloads.js";
import { CircuitError } from "../../../node/src/onion/errors.js";
import { encodeRelayPayload } from "../../../node/src/wire/relay.js";
import { CellCommand } from "../../../node/src/wire/cell.js";

function relayPayload(data: Uint8Array): Uint8Array {
  return encodeRelayPayload({ recognized: 0, streamId: 1, digest: new Uint8Array(4), command: 2, data });
}

describe("relay crypto", () => {
  const material = randomBytes(96);

  it("splits Df ‖ Db ‖ Kf ‖ Kb in that order", () => {
    const k = splitHopKeys(material);
    expect(Buffer.from(k.forwardDigestSeed)).toEqual(material.subarray(0, 32));
    expect(Buffer.from(k.backwardDigestSeed)).toEqual(material.subarray(32, 64));
    expect(Buffer.from(k.forwardKey)).toEqual(material.subarray(64, 80));
    expect(Buffer.from(k.backwardKey)).toEqual(material.subarray(80, 96));
    expect(() => splitHopKeys(material.subarray(0, 95))).toThrow(CircuitError);
  });

  it("a sealed, encrypted payload is taken once, in order, at the other end", () => {
    const client = hopCryptoFromKeyMaterial(material);
    const relay = hopCryptoFromKeyMaterial(material);
    for (let i = 0; i < 5; i++) {
      const p = relayPayload(Uint8Array.of(i));
      client.forward.seal(p);
      const wire = client.forward.applyKeystream(p);
      expect(Buffer.from(wire).equals(Buffer.from(p))).toBe(false);
      const plain = relay.forward.applyKeystream(wire);
      expect(relay.forward.receive(plain)).toBe(RunStep.Complete);
      const [taken] = relay.forward.takeRun();
      expect(taken?.[11]).toBe(i);
    }
  });

  it("a flipped bit, a replay or a wrong key is not taken", () => {
    const a = hopCryptoFromKeyMaterial(material);
    const b = hopCryptoFromKeyMaterial(material);
    const p1 = relayPayload(Uint8Array.of(1));
    a.forward.seal(p1);
    const w1 = a.forward.applyKeystream(p1);
    const tampered = Buffer.from(w1);
    tampered[200] = (tampered[200] as number) ^ 4;
    const plainTampered = b.forward.applyKeystream(tampered);
    const before = Buffer.from(plainTampered);
    expect(b.forward.receive(plainTampered)).toBe(RunStep.NotMine);
    expect(Buffer.from(plainTampered)).toEqual(before); // left exactly as it came, for forwarding
    // The keystream moved on: a replay is garbage.
    expect(b.forward.receive(b.forward.applyKeystream(w1))).toBe(RunStep.NotMine);
    const other = hopCryptoFromKeyMaterial(randomBytes(96));
    const p2 = relayPayload(Uint8Array.of(2));
    a.forward.seal(p2);
    expect(other.forward.receive(other.forward.applyKeystream(a.forward.applyKeystream(p2)))).toBe(RunStep.NotMine);
  });

  it("batched keystream equals per-cell keystream", () => {
    const k = splitHopKeys(material);
    const one = new RelayLayer(k.forwardKey, k.forwardDigestSeed);
    const batch = new RelayLayer(k.forwardKey, k.forwardDigestSeed);
    const payloads = Array.from({ length: 64 }, () => randomBytes(507));
    const perCell = payloads.map((p) => one.applyKeystream(p));
    const batched = batch.applyKeystreamBatch(payloads);
    batched.forEach((b, i) => expect(Buffer.from(b).equals(Buffer.from(perCell[i] as Uint8Array))).toBe(true));
  });
});

describe("flow-control windows", () => {
  it("package window closes at start and reopens by increment per SENDME; SENDME beyond start is refused", () => {
    const w = new FlowWindow({ start: 10, increment: 5 });
    for (let i = 0; i < 10; i++) expect(w.packaged()).toBe(true);
    expect(w.packaged()).toBe(false);
    expect(w.sendmeReceived()).toBe(true);
    expect(w.canPackage).toBe(5);
    expect(w.sendmeReceived()).toBe(true);
    expect(w.sendmeReceived()).toBe(false);
  });

  it("deliver window owes a SENDME every increment cells and reports overrun when not sent", () => {
    const w = new FlowWindow({ start: 10, increment: 5 });
    for (let i = 0; i < 4; i++) expect(w.delivered()).toBe("ok");
    expect(w.sendmesOwed).toBe(0);
    expect(w.delivered()).toBe("ok");
    expect(w.sendmesOwed).toBe(1);
    for (let i = 0; i < 5; i++) expect(w.delivered()).toBe("ok");
    expect(w.delivered()).toBe("overrun");
    expect(w.takeSendmes(0)).toBe(2);
    expect(w.delivered()).toBe("ok");
  });

  it("sends SENDMEs two increments at a time, or one once it has waited the delay (delayed acknowledgement)", () => {
    const w = new FlowWindow({ start: 20, increment: 5 });
    for (let i = 0; i < 4; i++) w.delivered();
    expect([w.takeSendmes(0), w.sendmeDeadline]).toEqual([0, undefined]);
    w.delivered();
    // One increment owed: held back until the delay passes.
    expect([w.takeSendmes(7), w.sendmeDeadline]).toEqual([0, 7 + SENDME_DELAY_MS]);
    expect(w.takeSendmes(7 + SENDME_DELAY_MS / 2)).toBe(0);
    expect(w.takeSendmes(7 + SENDME_DELAY_MS)).toBe(1);
    expect([w.sendmesOwed, w.sendmeDeadline]).toEqual([0, undefined]);
    // Two owed: sent at once, with no wait.
    for (let i = 0; i < 10; i++) w.delivered();
    expect(w.takeSendmes(100)).toBe(SENDME_BATCH);
    // What was acknowledged can be sent again; the window still refuses a cell beyond it.
    for (let i = 0; i < 20; i++) expect(w.delivered()).toBe("ok");
    expect(w.delivered()).toBe("overrun");
  });
});

describe("token bucket and scheduler", () => {
  it("the bucket never hands out more than burst + rate x time", () => {
    const b = new TokenBucket({ bytesPerSecond: 1000, burstBytes: 500, now: 0 });
    let taken = 0;
    for (let t = 0; t <= 10_000; t += 7) while (b.tryTake(100, t)) taken += 100;
    expect(taken).toBeLessThanOrEqual(500 + 1000 * 10);
    expect(taken).toBeGreaterThanOrEqual(1000 * 10 - 100);
    expect(b.readyAt(1000, 10_000)).toBe(Number.POSITIVE_INFINITY); // more than the burst: never
    expect(() => new TokenBucket({ bytesPerSecond: 0, burstBytes: 1, now: 0 })).toThrow(BaseError);
  });

  it("the scheduler holds a flood to the node rate and shares it fairly between circuits", () => {
    const s = new OutboundScheduler({ node: { bytesPerSecond: 512 * 100, burstBytes: 512 * 10 }, maxQueuedCellsPerCircuit: 10_000, now: 0 });
    const cell = { circId: 1, command: CellCommand.RELAY, payload: new Uint8Array(507) };
    for (let i = 0; i < 3000; i++) for (const key of ["a", "b", "c"]) expect(s.enqueue(key, key, cell, 0)).toBe(true);
    const out: OutboundCell[] = [];
    for (let t = 0; t <= 10_000; t += 10) {
      s.flush(t, out);
      expect(out.length * 512).toBeLessThanOrEqual(512 * 10 + (512 * 100 * t) / 1000);
    }
    expect(out.length).toBeGreaterThanOrEqual(1000);
    const perLink = (id: string) => out.filter((o) => o.linkId === id).length;
    for (const id of ["a", "b", "c"]) expect(Math.abs(perLink(id) - out.length / 3)).toBeLessThanOrEqual(1);
    expect(s.nextReadyAt(10_000)).toBeGreaterThan(10_000);
  });

  it("a per-circuit limit binds a single circuit and a full queue is refused", () => {
    const s = new OutboundScheduler({
      node: { bytesPerSecond: 1e9, burstBytes: 1e9 },
      circuit: { bytesPerSecond: 5120, burstBytes: 1024 },
      maxQueuedCellsPerCircuit: 5,
      now: 0,
    });
    const cell = { circId: 1, command: CellCommand.RELAY, payload: new Uint8Array(507) };
    for (let i = 0; i < 5; i++) expect(s.enqueue("x", "L", cell, 0)).toBe(true);
    expect(s.enqueue("x", "L", cell, 0)).toBe(false);
    const out: OutboundCell[] = [];
    s.flush(0, out);
    expect(out).toHaveLength(2);
    s.flush(100, out); // 512 more bytes of tokens
    expect(out).toHaveLength(3);
    s.drop("x");
    expect(s.queuedCells).toBe(0);
  });
});

describe("path selection", () => {
  const key = (i: number) => Uint8Array.from({ length: 32 }, () => i);
  const node = (i: number, host: string, extra: Partial<PathNode> = {}): PathNode => ({
    identity: key(i),
    onionKey: key(100 + i),
    host,
    port: 9001,
    flags: ["running"],
    ...extra,
  });
  /** A seeded generator so failures reproduce. */
  function rng(seed: number): () => number {
    let x = seed;
    return () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x / 2 ** 31;
    };
  }

  it("groups hosts by IPv4 /16, IPv6 /32 and host name", () => {
    expect(networkKey("10.1.2.3")).toBe(networkKey("10.1.200.9"));
    expect(networkKey("10.1.2.3")).not.toBe(networkKey("10.2.2.3"));
    expect(networkKey("2001:db8::1")).toBe(networkKey("2001:db8:ffff::2"));
    expect(networkKey("2001:db8::1")).not.toBe(networkKey("2001:db9::1"));
    expect(networkKey("::ffff:10.1.2.3")).toBe(networkKey("10.1.9.9"));
    expect(networkKey("Relay.Example")).toBe(networkKey("relay.example"));
  });

  it("takes the entry from configured bridges, which are never in the node list, and keeps the /16 rule", () => {
    const nodes = [node(1, "10.1.0.1"), node(2, "10.2.0.1"), node(3, "10.3.0.1"), node(4, "10.4.0.1")];
    const bridge = node(9, "10.9.0.1", { flags: [] }); // unlisted: no consensus flags at all
    const random = rng(7);
    for (let i = 0; i < 200; i++) {
      const path = selectPath(nodes, { random, entryNodes: [bridge] });
      expect(path).toHaveLength(3);
      expect(path[0]).toBe(bridge);
      expect(path.slice(1).every((n) => nodes.includes(n))).toBe(true);
    }
    // A bridge in the same /16 as the only possible exits cannot be combined with them.
    const crowded = [node(1, "10.9.1.1"), node(2, "10.9.2.1")];
    expect(() => selectPath(crowded, { length: 2, random, entryNodes: [bridge] })).toThrow(expect.objectContaining({ kind: "no-path" }));
    expect(() => selectPath(nodes, { random, entryNodes: [bridge], exclude: [key(9)] })).toThrow(expect.objectContaining({ kind: "no-path" }));
    expect(() => selectPath(nodes, { length: 1, random, entryNodes: [bridge] })).toThrow(expect.objectContaining({ kind: "bad-argument" }));
  });

  it("never puts two nodes of one /16 or one family on a path, over many draws", () => {
    const nodes = [
      node(1, "10.1.0.1"),
      node(2, "10.1.0.2"),
      node(3, "10.2.0.1", { family: "acme" }),
      node(4, "10.3.0.1", { family: "acme" }),
      node(5, "10.4.0.1"),
      node(6, "10.5.0.1"),
      node(7, "10.6.0.1", { flags: [] }),
    ];
    const random = rng(42);
    for (let i = 0; i < 500; i++) {
      const path = selectPath(nodes, { random });
      expect(path).toHaveLength(3);
      const nets = new Set(path.map((n) => networkKey(n.host)));
      expect(nets.size).toBe(3);
      expect(path.filter((n) => n.family === "acme").length).toBeLessThanOrEqual(1);
      expect(path.some((n) => n.identity[0] === 7)).toBe(false);
    }
  });

  it("weights choices and honours a fixed last hop, exclusions and entry flags", () => {
    const nodes = [node(1, "10.1.0.1", { weight: 9, flags: ["running", "guard"] }), node(2, "10.2.0.1"), node(3, "10.3.0.1"), node(4, "10.4.0.1")];
    const random = rng(7);
    let heavy = 0;
    for (let i = 0; i < 1000; i++) if (selectPath(nodes, { length: 1, random })[0]?.identity[0] === 1) heavy++;
    expect(heavy).toBeGreaterThan(650); // expected 9/12 = 750
    const last = nodes[3] as PathNode;
    for (let i = 0; i < 50; i++) {
      const p = selectPath(nodes, { random, lastHop: last, entryFlags: ["guard"], exclude: [key(2)] });
      expect(p.map((n) => n.identity[0])).toEqual([1, 3, 4]);
    }
  });

  it("throws no-path when the list cannot give distinct networks", () => {
    const nodes = [node(1, "10.1.0.1"), node(2, "10.1.0.2"), node(3, "10.1.0.3"), node(4, "10.2.0.1")];
    expect(() => selectPath(nodes, { random: rng(1) })).toThrow(expect.objectContaining({ kind: "no-path" }));
  });

  describe("internal nodes (issue 20)", () => {
    // As the directory hands them over: no address, flag "internal".
    const internal = (i: number, extra: Partial<PathNode> = {}) => node(i, "", { port: 0, flags: ["running", "internal"], ...extra });

    it("never puts an internal node first, whatever the draw, entry flags or lengths", () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 6 }),
          fc.integer({ min: 1, max: 6 }),
          fc.integer({ min: 1, max: 4 }),
          fc.boolean(),
          fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          (listed, internals, length, guardOnInternal, seed) => {
            const nodes = [
              ...Array.from({ length: listed }, (_, i) => node(i + 1, `10.${i + 1}.0.1`, { flags: ["running", "guard"] })),
              // Flagged internal but with a host the node view leaked: still never first.
              ...Array.from({ length: internals }, (_, i) =>
                i % 2 === 0 ? internal(50 + i, guardOnInternal ? { flags: ["running", "guard", "internal"] } : {}) : node(50 + i, `10.${50 + i}.0.1`, { flags: ["running", "guard", "internal"] }),
              ),
            ];
            let path: PathNode[];
            try {
              path = selectPath(nodes, { length, random: rng(seed), entryFlags: ["guard"] });
            } catch (err) {
              expect(err).toMatchObject({ kind: "no-path" });
              return;
            }
            expect(path).toHaveLength(length);
            expect((path[0] as PathNode).flags.includes("internal")).toBe(false);
            expect((path[0] as PathNode).host).not.toBe("");
          },
        ),
        { numRuns: 300 },
      );
    });

    it("uses internal nodes as middle and as last hops, always after a public hop, and as a fixed last hop", () => {
      const nodes = [node(1, "10.1.0.1"), internal(2), internal(3)];
      const random = rng(3);
      const positions = new Set<number>();
      const withTwoPublic = [...nodes, node(4, "10.4.0.1")];
      for (let i = 0; i < 200; i++) {
        const path = selectPath(withTwoPublic, { random });
        expect(path[0]?.host).not.toBe("");
        // Never two internal nodes in a row (an outbound-only one is reached only from public relays, directory.md §12.1).
        expect(path.some((n, at) => at > 0 && n.host === "" && path[at - 1]?.host === "")).toBe(false);
        path.forEach((n, at) => n.host === "" && positions.add(at));
      }
      expect([...positions].sort()).toEqual([1, 2]);
      // One public node and two internal ones: a 3-hop path would put an internal node after an internal one.
      expect(() => selectPath(nodes, { random })).toThrow(expect.objectContaining({ kind: "no-path" }));
      const last = internal(3);
      for (let i = 0; i < 20; i++) expect(selectPath(nodes, { random, length: 2, lastHop: last }).map((n) => n.identity[0])).toEqual([1, 3]);
    });

    it("applies identity and family rules to hostless nodes, and no network rule", () => {
      const random = rng(11);
      expect(() => selectPath([node(1, "10.1.0.1"), internal(2, { family: "ops" }), internal(3, { family: "ops" })], { random })).toThrow(
        expect.objectContaining({ kind: "no-path" }),
      );
      expect(selectPath([node(1, "10.1.0.1"), internal(2), internal(3)], { random, exclude: [key(3)], length: 2 }).map((n) => n.identity[0])).toEqual([1, 2]);
      // Only internal nodes: no entry possible.
      expect(() => selectPath([internal(1), internal(2), internal(3)], { random })).toThrow(expect.objectContaining({ kind: "no-path" }));
    });

    it("refuses a one-hop path to an internal node and never picks one for a one-hop path", () => {
      const nodes = [node(1, "10.1.0.1"), internal(2)];
      expect(() => selectPath(nodes, { length: 1, lastHop: internal(2) })).toThrow(expect.objectContaining({ kind: "bad-argument" }));
      const random = rng(5);
      for (let i = 0; i < 100; i++) expect(selectPath(nodes, { length: 1, random })[0]?.identity[0]).toBe(1);
      expect(() => selectPath([internal(2)], { length: 1, random })).toThrow(expect.objectContaining({ kind: "no-path" }));
    });

    it("keeps bridges as the entry and internal nodes behind them", () => {
      const bridge = node(9, "10.9.0.1", { flags: [] });
      const random = rng(8);
      for (let i = 0; i < 50; i++) {
        const path = selectPath([internal(2), internal(3)], { random, entryNodes: [bridge], length: 2 });
        expect(path[0]).toBe(bridge);
        expect(path.slice(1).every((n) => n.host === "")).toBe(true);
      }
      // Three hops would put one internal node after the other: refused.
      expect(() => selectPath([internal(2), internal(3)], { random, entryNodes: [bridge] })).toThrow(expect.objectContaining({ kind: "no-path" }));
    });
  });
});

describe("payload codecs", () => {
  it("EXTEND2 round-trips IPv4 and host-name addresses and requires an identity", () => {
    const msg = {
      identity: randomBytes(32),
      addresses: [
        { host: "10.1.2.3", port: 9001 },
        { host: "relay.example", port: 443 },
      ],
      handshakeType: 2,
      handshakeData: randomBytes(96),
    };
    const back = decodeExtend2(encodeExtend2(msg));
    expect(Buffer.from(back.identity)).toEqual(Buffer.from(msg.identity));
    expect(back.addresses).toEqual(msg.addresses);
    expect(Buffer.from(back.handshakeData)).toEqual(Buffer.from(msg.handshakeData));
    const noIdentity = Uint8Array.of(1, 0x00, 6, 10, 1, 2, 3, 0x23, 0x29, 0, 2, 0, 0);
    expect(() => decodeExtend2(noIdentity)).toThrow(expect.objectContaining({ kind: "protocol-violation" }));
  });

  it("BEGIN accepts only well-formed service names", () => {
    expect(decodeBegin(encodeBegin("dht"))).toBe("dht");
    expect(() => encodeBegin("Bad Name")).toThrow(expect.objectContaining({ kind: "bad-argument" }));
    expect(() => decodeBegin(new TextEncoder().encode("no-nul"))).toThrow(expect.objectContaining({ kind: "protocol-violation" }));
    expect(() => decodeBegin(Uint8Array.of(0x41, 0))).toThrow(expect.objectContaining({ kind: "protocol-violation" }));
  });
});

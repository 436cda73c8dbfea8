/**
 * Parts of the onion runtime that need no sockets: the circuit manager's
 * policy (with a fake builder), the node config checks, and the state
 * machines' driver contract for links the manager already had.
 */
import { describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { generateX25519KeyPair } from "../../../node/src/crypto/x25519.js";
import { NodeError, parseNodeConfig } from "../../../node/src/node/config.js";
import { CircuitManager } from "../../../node/src/onion/circuit-manager.js";
import type { ManagedCircuit } from "../../../node/src/onion/circuit-manager.js";
import { DestroyReason } from "../../../node/src/onion/constants.js";
import { CircuitError } from "../../../node/src/onion/errors.js";
import { keyHex } from "../../../node/src/onion/path.js";
import type { PathNode } from "../../../node/src/onion/path.js";
import { OnionRelay } from "../../../node/src/onion/relay.js";
import { OnionClient } from "../../../node/src/onion/client.js";

function nodes(n: number): PathNode[] {
  return Array.from({ length: n }, (_, i) => ({
    identity: generateEd25519KeyPair().publicKey,
    onionKey: generateX25519KeyPair().publicKey,
    host: `10.${i + 1}.0.1`,
    port: 9001,
    flags: ["running"],
  }));
}

class FakeCircuit implements ManagedCircuit {
  isOpen = true;
  readonly closed: Promise<CircuitError | undefined>;
  private resolveClosed!: (e: CircuitError | undefined) => void;
  constructor(
    readonly id: number,
    readonly path: readonly PathNode[],
  ) {
    this.closed = new Promise((r) => (this.resolveClosed = r));
  }
  close(): void {
    this.die(undefined);
  }
  die(error: CircuitError | undefined): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.resolveClosed(error);
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("circuit manager", () => {
  it("keeps N circuits ready, hands them out and replaces the ones that die", async () => {
    const list = nodes(6);
    const built: FakeCircuit[] = [];
    const manager = new CircuitManager<FakeCircuit>({
      nodes: list,
      preemptive: 2,
      build: async (path) => {
        const c = new FakeCircuit(built.length + 1, path);
        built.push(c);
        return c;
      },
    });
    manager.start();
    await tick();
    expect(manager.readyCount).toBe(2);
    const mine = await manager.acquire();
    await tick();
    expect(manager.readyCount).toBe(2); // refilled after the hand-out
    expect(built).toHaveLength(3);
    // A handed-out circuit dying is its owner's business; a ready one dying is replaced.
    mine.die(new CircuitError("circuit-destroyed", "gone", { destroyReason: DestroyReason.CHANNEL_CLOSED }));
    const ready = built.find((c) => c !== mine && c.isOpen) as FakeCircuit;
    ready.die(new CircuitError("circuit-destroyed", "gone", { destroyReason: DestroyReason.CHANNEL_CLOSED }));
    await tick();
    await tick();
    expect(manager.readyCount).toBe(2);
    expect(built).toHaveLength(4);
    for (const c of built) expect(new Set(c.path.map((n) => keyHex(n.identity))).size).toBe(3);
    manager.stop();
  });

  it("avoids a node a build could not reach, and rejects acquire with the typed error when nothing can be built", async () => {
    const list = nodes(5);
    const dead = keyHex((list[0] as PathNode).identity);
    const manager = new CircuitManager<FakeCircuit>({
      nodes: list,
      preemptive: 0,
      acquireAttempts: 6,
      build: async (path) => {
        const hop = path.findIndex((n) => keyHex(n.identity) === dead);
        if (hop >= 0) throw new CircuitError("circuit-destroyed", "unreachable", { destroyReason: DestroyReason.CONNECTFAILED, hop });
        return new FakeCircuit(1, path);
      },
    });
    for (let i = 0; i < 10; i++) {
      const c = await manager.acquire();
      expect(c.path.some((n) => keyHex(n.identity) === dead)).toBe(false);
    }
    const failing = new CircuitManager<FakeCircuit>({
      nodes: list,
      preemptive: 0,
      build: async () => {
        throw new CircuitError("build-timeout", "no answer");
      },
    });
    await expect(failing.acquire()).rejects.toMatchObject({ kind: "build-timeout" });
    const tooFew = new CircuitManager<FakeCircuit>({ nodes: list.slice(0, 2), preemptive: 0, build: async (p) => new FakeCircuit(1, p) });
    await expect(tooFew.acquire()).rejects.toMatchObject({ kind: "no-path" });
  });
});

describe("node config", () => {
  it("accepts a full config and rejects each bad field with a bad-config error naming it", () => {
    const ok = parseNodeConfig({
      listen: { host: "127.0.0.1", port: 0 },
      identity: { secretKeyHex: "11".repeat(32) },
      onion: { services: ["echo"], limits: { nodeBytesPerSecond: 1000 } },
      link: { idleTimeoutMs: 1000 },
    });
    expect(ok.onion?.services).toEqual(["echo"]);
    const cases: [unknown, string][] = [
      [null, "(root)"],
      [{}, "listen"],
      [{ listen: { host: "", port: 1 } }, "listen.host"],
      [{ listen: { host: "a", port: 70000 } }, "listen.port"],
      [{ listen: { host: "a", port: 1 }, identity: { secretKeyHex: "zz" } }, "identity.secretKeyHex"],
      [{ listen: { host: "a", port: 1 }, onion: { services: ["ftp"] } }, "onion.services"],
      [{ listen: { host: "a", port: 1 }, onion: { limits: { warp: 9 } } }, "onion.limits.warp"],
      [{ listen: { host: "a", port: 1 }, onion: { limits: { maxCircuits: -1 } } }, "onion.limits.maxCircuits"],
      [{ listen: { host: "a", port: 1 }, onion: { limits: { createsPerSecondPerRelayLink: 0 } } }, "onion.limits.createsPerSecondPerRelayLink"],
      [{ listen: { host: "a", port: 1 }, onion: { limits: { createBurstPerRelayLink: 0.5 } } }, "onion.limits.createBurstPerRelayLink"],
      [{ listen: { host: "a", port: 1 }, colour: "blue" }, "colour"],
      [{ listen: { host: "a", port: 1 }, stream: true }, "stream"],
      [{ listen: { host: "a", port: 1 }, stream: { enabled: "yes" } }, "stream.enabled"],
      [{ listen: { host: "a", port: 1 }, stream: { graceSeconds: -1 } }, "stream.graceSeconds"],
      [{ listen: { host: "a", port: 1 }, stream: { graceSeconds: 1.5 } }, "stream.graceSeconds"],
      [{ listen: { host: "a", port: 1 }, stream: { viewers: 9 } }, "stream.viewers"],
    ];
    expect(parseNodeConfig({ listen: { host: "a", port: 1 }, stream: { enabled: false, graceSeconds: 30 } }).stream).toEqual({ enabled: false, graceSeconds: 30 });
    for (const [input, field] of cases) {
      let error: unknown;
      try {
        parseNodeConfig(input);
      } catch (err) {
        error = err;
      }
      expect(error, field).toBeInstanceOf(NodeError);
      expect((error as NodeError).kind).toBe("bad-config");
      expect((error as NodeError).message).toContain(field);
    }
  });
});

describe("driver contract for links the manager already had", () => {
  it("an open-link request answered with a link already known completes the request (relay and client)", () => {
    const relayKey = generateEd25519KeyPair().publicKey;
    const next = nodes(1)[0] as PathNode;
    const relay = new OnionRelay({ identity: relayKey, onionKeys: [generateX25519KeyPair()], now: 0 });
    relay.linkOpened({ linkId: "A", peerIdentity: null, weInitiated: false }, 0);
    expect(() => relay.linkOpened({ linkId: "A", peerIdentity: null, weInitiated: false }, 0)).toThrow(CircuitError);
    const client = new OnionClient({ now: 0 });
    client.buildCircuit([next], 0);
    const open = client.takeActions().find((a) => a.type === "open-link");
    expect(open?.type).toBe("open-link");
    // The manager's "link" event came first, then the dial's promise with the same link.
    client.linkOpened({ linkId: "L1", peerIdentity: next.identity, weInitiated: true }, 1);
    client.linkOpened({ linkId: "L1", peerIdentity: next.identity, weInitiated: true, requestId: (open as { requestId: number }).requestId }, 1);
    const sent = client.takeActions().filter((a) => a.type === "send");
    expect(sent).toHaveLength(1); // the CREATE went out on the known link
    expect(client.linkCircuitCount("L1")).toBe(1);
  });

  it("a failed request caused by an identity mismatch reports OR_IDENTITY", () => {
    const client = new OnionClient({ now: 0 });
    const id = client.buildCircuit([nodes(1)[0] as PathNode], 0);
    const open = client.takeActions().find((a) => a.type === "open-link") as { requestId: number };
    client.linkFailed(open.requestId, 1, "identity-mismatch");
    const info = client.circuitInfo(id);
    expect(info?.state).toBe("closed");
    expect(info?.error?.destroyReason).toBe(DestroyReason.OR_IDENTITY);
  });
});

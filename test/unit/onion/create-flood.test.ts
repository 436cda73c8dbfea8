/**
 * Issue 19 (resource exhaustion) against a relay, scaled down: a CREATE2
 * flood over one link is refused before any ntor work (the handshakes the
 * relay actually computed are counted) while a circuit from another link
 * still builds; the per-address cap spans links from one host; idle
 * circuits close after the configured idle time.
 */
import { describe, expect, it } from "vitest";
import { ntorClientCreate } from "../../../node/src/crypto/ntor.js";
import { DestroyReason, HANDSHAKE_NTOR } from "../../../node/src/onion/constants.js";
import { OnionRelay } from "../../../node/src/onion/relay.js";
import { encodeCreate2 } from "../../../node/src/onion/payloads.js";
import { OnionSim } from "../../../node/src/onion/sim.js";
import type { PathNode } from "../../../node/src/onion/path.js";
import type { OnionAction } from "../../../node/src/onion/types.js";
import { CellCommand } from "../../../node/src/wire/cell.js";
import type { Cell } from "../../../node/src/wire/cell.js";
import { generateX25519KeyPair } from "../../../node/src/crypto/x25519.js";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";

const LIMITS = { createsPerSecondPerLink: 5, createBurstPerLink: 10, createsPerSecondPerAddress: 8, createBurstPerAddress: 15 };

/** `count` CREATE2 cells with valid onionskins for `node` (each would cost the relay an ntor handshake). */
function create2Cells(node: PathNode, count: number, firstCircId = 1): Cell[] {
  return Array.from({ length: count }, (_, i) => {
    const { onionskin } = ntorClientCreate({ id: node.identity, onionPublic: node.onionKey });
    return {
      circId: (0x8000_0000 + firstCircId + i) >>> 0,
      command: CellCommand.CREATE,
      payload: encodeCreate2({ handshakeType: HANDSHAKE_NTOR, handshakeData: onionskin }),
    };
  });
}

function destroyReasons(actions: OnionAction[], linkId: string): number[] {
  return actions.flatMap((a) => (a.type === "send" && a.linkId === linkId && a.cell.command === CellCommand.DESTROY ? [a.cell.payload[0] as number] : []));
}

describe("relay CREATE rate limits", () => {
  it("a CREATE2 flood over one link is refused before ntor work while a circuit over another link builds", () => {
    const sim = new OnionSim();
    const names = ["r1", "r2", "r3"];
    for (const name of names) sim.addRelay(name, { limits: LIMITS });
    const client = sim.addClient("alice");
    const entry = sim.relay("r1");
    entry.relay.linkOpened({ linkId: "evil", peerIdentity: null, weInitiated: false, remoteHost: "203.0.113.9" }, sim.now);
    entry.relay.handleCells("evil", create2Cells(entry.node, 200), sim.now);
    const actions = entry.relay.takeActions();
    const stats = entry.relay.stats();
    // Only the link's burst reached the handshake; the rest cost a bucket check each.
    expect(stats.handshakes).toBe(LIMITS.createBurstPerLink);
    expect(stats.createsRefused["link-rate"]).toBe(200 - LIMITS.createBurstPerLink);
    expect(destroyReasons(actions, "evil")).toEqual(Array.from({ length: 190 }, () => DestroyReason.RESOURCELIMIT));
    expect(actions.filter((a) => a.type === "event" && a.event.type === "create-refused")).toHaveLength(190);

    const circ = client.buildCircuit(
      names.map((n) => sim.relay(n).node),
      sim.now,
    );
    sim.run();
    expect(client.circuitInfo(circ)).toMatchObject({ state: "open", hops: 3 });
    expect(entry.relay.stats().handshakes).toBe(LIMITS.createBurstPerLink + 1);
  });

  it("the link's bucket refills with time, and the address cap spans every link from one host", () => {
    const keys = generateX25519KeyPair();
    const identity = generateEd25519KeyPair().publicKey;
    const relay = new OnionRelay({ identity, onionKeys: [keys], now: 0, limits: LIMITS });
    const node: PathNode = { identity, onionKey: keys.publicKey, host: "x", port: 1, flags: [] };
    relay.linkOpened({ linkId: "a", peerIdentity: null, weInitiated: false, remoteHost: "198.51.100.7" }, 0);
    relay.linkOpened({ linkId: "b", peerIdentity: null, weInitiated: false, remoteHost: "198.51.100.7" }, 0);
    relay.handleCells("a", create2Cells(node, 10), 0); // the link burst, 10 of the address's 15
    relay.handleCells("b", create2Cells(node, 10), 0); // 5 left for the address
    let stats = relay.stats();
    expect(stats.handshakes).toBe(15);
    expect(stats.createsRefused).toEqual({ "link-rate": 0, "address-rate": 5, circuits: 0 });
    // One second later: 5 tokens per link, 8 for the address.
    relay.handleCells("a", create2Cells(node, 10, 100), 1000);
    stats = relay.stats();
    expect(stats.handshakes).toBe(20);
    expect(stats.createsRefused["link-rate"]).toBe(5);
  });

  it("a link from a relay the consensus lists gets the relay-link budget and no address cap; a self-made identity is limited as a client", () => {
    const keys = generateX25519KeyPair();
    const identity = generateEd25519KeyPair().publicKey;
    const listedPeer = generateEd25519KeyPair().publicKey;
    const unlistedPeer = generateEd25519KeyPair().publicKey;
    const limits = { ...LIMITS, createsPerSecondPerRelayLink: 20, createBurstPerRelayLink: 30 };
    const relay = new OnionRelay({ identity, onionKeys: [keys], now: 0, limits, isListedRelay: (peer) => peer === listedPeer });
    const node: PathNode = { identity, onionKey: keys.publicKey, host: "x", port: 1, flags: [] };
    relay.linkOpened({ linkId: "relay", peerIdentity: listedPeer, weInitiated: false, remoteHost: "198.51.100.7" }, 0);
    relay.linkOpened({ linkId: "self-made", peerIdentity: unlistedPeer, weInitiated: false, remoteHost: "198.51.100.8" }, 0);
    relay.handleCells("relay", create2Cells(node, 40), 0);
    expect(relay.stats().handshakes).toBe(30); // the relay-link burst, past the client link's 10 and the address's 15
    expect(relay.stats().createsRefused).toEqual({ "link-rate": 10, "address-rate": 0, circuits: 0 });
    relay.handleCells("self-made", create2Cells(node, 40, 100), 0);
    expect(relay.stats().handshakes).toBe(30 + LIMITS.createBurstPerLink);
  });

  it("refuses bad limits with a clear error", () => {
    const keys = generateX25519KeyPair();
    const identity = generateEd25519KeyPair().publicKey;
    expect(() => new OnionRelay({ identity, onionKeys: [keys], now: 0, limits: { createsPerSecondPerLink: 0 } })).toThrow(/createsPerSecondPerLink/);
    expect(() => new OnionRelay({ identity, onionKeys: [keys], now: 0, limits: { createBurstPerAddress: 0.5 } })).toThrow(/createBurstPerAddress/);
    expect(() => new OnionRelay({ identity, onionKeys: [keys], now: 0, limits: { createBurstPerRelayLink: 0.5 } })).toThrow(/createBurstPerRelayLink/);
  });

  it("an idle circuit closes after relayCircuitIdleMs (FINISHED)", () => {
    const sim = new OnionSim();
    for (const name of ["r1", "r2"]) sim.addRelay(name, { limits: { relayCircuitIdleMs: 120_000 } });
    const client = sim.addClient("alice");
    const circ = client.buildCircuit(
      ["r1", "r2"].map((n) => sim.relay(n).node),
      sim.now,
    );
    sim.run();
    expect(client.circuitInfo(circ)?.state).toBe("open");
    sim.advance(121_000, 1000);
    expect(sim.relay("r1").relay.stats().circuits).toBe(0);
    expect(sim.eventsOf("r1", "circuit-closed").map((e) => e.reason)).toContain(DestroyReason.FINISHED);
  });
});

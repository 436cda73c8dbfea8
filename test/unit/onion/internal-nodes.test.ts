/**
 * Internal nodes (issue 20) in the onion layer's pure parts: EXTEND2 naming
 * an identity alone, the client refusing a hostless first hop, and relays in
 * the in-memory network reaching an internal next hop over a link it opened
 * (the "outbound links only" case) or failing with CONNECTFAILED.
 */
import { describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { DestroyReason } from "../../../node/src/onion/constants.js";
import type { PathNode } from "../../../node/src/onion/path.js";
import { LinkSpecifierType, decodeExtend2, encodeExtend2 } from "../../../node/src/onion/payloads.js";
import { OnionSim } from "../../../node/src/onion/sim.js";
import type { LocalService, OnionAction } from "../../../node/src/onion/types.js";

const echo: LocalService = (stream) => ({ onMessage: (m) => stream.send(m) });

/** How a client sees an internal node: identity and onion key, no address. */
const asInternal = (node: PathNode): PathNode => ({ ...node, host: "", port: 0, flags: [...node.flags, "internal"] });

describe("EXTEND2 by identity alone", () => {
  it("encodes a single Ed25519 specifier and decodes to no addresses", () => {
    const identity = randomBytes(32);
    const handshakeData = randomBytes(84);
    const body = encodeExtend2({ identity, addresses: [], handshakeType: 2, handshakeData });
    expect(body[0]).toBe(1); // NSPEC
    expect(body[1]).toBe(LinkSpecifierType.ED25519);
    expect(body[2]).toBe(32);
    expect(Buffer.from(body.subarray(3, 35))).toEqual(identity);
    expect(body.length).toBe(1 + 2 + 32 + 4 + 84);
    const back = decodeExtend2(body);
    expect(back.addresses).toEqual([]);
    expect(Buffer.from(back.identity)).toEqual(identity);
    expect(Buffer.from(back.handshakeData)).toEqual(handshakeData);
  });

  it("keeps the layout of an EXTEND2 that carries an address (address first, identity last)", () => {
    const identity = new Uint8Array(32).fill(7);
    const body = encodeExtend2({ identity, addresses: [{ host: "10.1.2.3", port: 9001 }], handshakeType: 2, handshakeData: Uint8Array.of(1, 2) });
    expect(Buffer.from(body).toString("hex")).toBe("02" + "0006" + "0a010203" + "2329" + "0320" + "07".repeat(32) + "0002" + "0002" + "0102");
  });

  it("still refuses an EXTEND2 with neither identity nor address, or with an address but no identity", () => {
    expect(() => decodeExtend2(Uint8Array.of(0, 0, 2, 0, 0))).toThrow(expect.objectContaining({ kind: "protocol-violation" }));
    expect(() => decodeExtend2(Uint8Array.of(1, 0x00, 6, 10, 1, 2, 3, 0x23, 0x29, 0, 2, 0, 0))).toThrow(
      expect.objectContaining({ kind: "protocol-violation" }),
    );
  });
});

function network() {
  const sim = new OnionSim();
  for (const name of ["r1", "r2", "r3"]) sim.addRelay(name, { services: { echo } });
  const client = sim.addClient("alice");
  return { sim, client };
}

/** Records the open-link actions a relay asks for (the sim consumes them). */
function recordOpenLinks(sim: OnionSim, name: string): Extract<OnionAction, { type: "open-link" }>[] {
  const relay = sim.relay(name).relay;
  const seen: Extract<OnionAction, { type: "open-link" }>[] = [];
  const take = relay.takeActions.bind(relay);
  relay.takeActions = () => {
    const actions = take();
    for (const a of actions) if (a.type === "open-link") seen.push(a);
    return actions;
  };
  return seen;
}

describe("circuits through an internal node (in-memory network)", () => {
  it("the client refuses a hostless first hop with a typed error", () => {
    const { sim, client } = network();
    expect(() => client.buildCircuit([asInternal(sim.relay("r1").node), sim.relay("r2").node], sim.now)).toThrow(
      expect.objectContaining({ kind: "bad-argument" }),
    );
  });

  it("an extending relay with no link to the node and no address fails the build with CONNECTFAILED", () => {
    const { sim, client } = network();
    const asked = recordOpenLinks(sim, "r1");
    const circ = client.buildCircuit([sim.relay("r1").node, asInternal(sim.relay("r2").node)], sim.now);
    sim.run();
    expect(asked).toHaveLength(1);
    expect(asked[0]?.addresses).toEqual([]);
    expect(Buffer.from(asked[0]?.identity as Uint8Array)).toEqual(Buffer.from(sim.relay("r2").node.identity));
    expect(client.circuitInfo(circ)?.error?.destroyReason).toBe(DestroyReason.CONNECTFAILED);
    expect(sim.relay("r2").relay.stats().circuits).toBe(0);
  });

  it("a relay reaches the internal node over the link that node opened to it, as last and as middle hop", () => {
    const { sim, client } = network();
    // r2 builds nothing itself; a circuit through [r2, r1] makes r2 dial r1, as an internal node keeps links to its neighbours.
    const warm = client.buildCircuit([sim.relay("r2").node, sim.relay("r1").node], sim.now);
    sim.run();
    expect(client.circuitInfo(warm)?.state).toBe("open");
    const asked = recordOpenLinks(sim, "r1");
    const internal = asInternal(sim.relay("r2").node);

    const last = client.buildCircuit([sim.relay("r1").node, internal], sim.now);
    sim.run();
    expect(client.circuitInfo(last)).toMatchObject({ state: "open", hops: 2 });
    const stream = client.openStream(last, "echo", sim.now);
    sim.run();
    client.send(last, stream, Uint8Array.of(1, 2, 3), sim.now);
    sim.run();
    expect(sim.eventsOf("alice", "stream-message").map((e) => [...e.message])).toEqual([[1, 2, 3]]);

    const middle = client.buildCircuit([sim.relay("r1").node, internal, sim.relay("r3").node], sim.now);
    sim.run();
    expect(client.circuitInfo(middle)).toMatchObject({ state: "open", hops: 3 });
    expect(asked).toHaveLength(0); // r1 never had to dial r2
  });
});

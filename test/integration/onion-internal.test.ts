/**
 * Internal nodes (issue 20) over real TLS links on loopback: relays made of a
 * ConnectionManager, an OnionRelay and an OnionDriver (so each can be given
 * its own `resolveAddresses`), clients from createOnionClient. A client names
 * the internal node by identity alone; the relay before it reaches it over a
 * link the internal node opened, or through its resolver, or fails the
 * extend with CONNECTFAILED. The driver's own handling of an identity-only
 * `open-link` is checked with a stub machine.
 */
import { afterEach, describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import type { Ed25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { generateX25519KeyPair } from "../../node/src/crypto/x25519.js";
import { createConnectionManager, generateTlsCredentials } from "../../node/src/link/index.js";
import type { ConnectionManager } from "../../node/src/link/index.js";
import { CircuitError, DestroyReason } from "../../node/src/onion/index.js";
import { createOnionClient } from "../../node/src/onion/onion-client.js";
import type { OnionClientHandle } from "../../node/src/onion/onion-client.js";
import type { PathNode } from "../../node/src/onion/path.js";
import { OnionRelay } from "../../node/src/onion/relay.js";
import { OnionDriver } from "../../node/src/onion/runtime.js";
import type { OnionMachine } from "../../node/src/onion/sim.js";
import type { LinkFailureCause, LinkInfo, LocalService, NodeAddress, OnionAction } from "../../node/src/onion/types.js";

const credentials = await generateTlsCredentials();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const UNLIMITED = { nodeBytesPerSecond: 1e12, nodeBurstBytes: 1e12, circuitBytesPerSecond: 1e12, circuitBurstBytes: 1e12 };
const echo: LocalService = (stream) => ({ onMessage: (m) => stream.send(m) });
const same = (a: Uint8Array | undefined | null, b: Uint8Array) => a !== undefined && a !== null && Buffer.from(a).equals(Buffer.from(b));

interface TestRelay {
  identity: Ed25519KeyPair;
  manager: ConnectionManager;
  relay: OnionRelay;
  driver: OnionDriver;
  /** As the consensus lists it to clients. */
  pathNode: PathNode;
  address: NodeAddress;
}

async function startRelay(i: number, resolveAddresses?: (identity: Uint8Array) => readonly NodeAddress[] | undefined): Promise<TestRelay> {
  const identity = generateEd25519KeyPair();
  const onionKey = generateX25519KeyPair();
  const manager = await createConnectionManager({ identity, listen: { host: `127.${i}.0.1`, port: 0 }, tlsCredentials: credentials });
  const relay = new OnionRelay({ identity: identity.publicKey, onionKeys: [onionKey], now: performance.now(), services: { echo }, limits: UNLIMITED });
  const driver = new OnionDriver({ manager, machine: relay, ...(resolveAddresses ? { resolveAddresses } : {}) });
  cleanups.push(async () => {
    driver.stop();
    await manager.close();
  });
  const address = manager.address() as NodeAddress;
  const pathNode: PathNode = { identity: identity.publicKey, onionKey: onionKey.publicKey, host: address.host, port: address.port, flags: ["running"] };
  return { identity, manager, relay, driver, pathNode, address };
}

/** How the directory hands an internal node to a client: no address, flag "internal". */
const asInternal = (node: PathNode): PathNode => ({ ...node, host: "", port: 0, flags: [...node.flags, "internal"] });

async function client(nodes: PathNode[]): Promise<OnionClientHandle> {
  const c = await createOnionClient({ nodes, limits: UNLIMITED });
  cleanups.push(() => c.close());
  return c;
}

async function roundTrip(c: OnionClientHandle, path: PathNode[]): Promise<void> {
  const circuit = await c.buildCircuit({ path });
  expect(circuit.hops).toBe(path.length);
  const stream = await circuit.openStream("echo");
  const message = Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff);
  await stream.send(message);
  expect(same(await stream.receive(), message)).toBe(true);
  circuit.close();
}

async function buildError(c: OnionClientHandle, path: PathNode[]): Promise<CircuitError | undefined> {
  return c.buildCircuit({ path }).then(
    (circuit) => {
      circuit.close();
      return undefined;
    },
    (err: unknown) => err as CircuitError,
  );
}

describe("circuits through an internal node over TLS", () => {
  it("reaches it as last and as middle hop over the link the internal node opened (it takes no inbound links from clients)", async () => {
    const a = await startRelay(1);
    const b = await startRelay(2);
    const c3 = await startRelay(3);
    // B keeps links to its neighbours: it dials A (and C, which is reached from B by address anyway).
    const link = await b.manager.getLink({ identity: a.identity.publicKey, host: a.address.host, port: a.address.port });
    expect(same(link.peerIdentity, a.identity.publicKey)).toBe(true);
    const internal = asInternal(b.pathNode);
    const c = await client([a.pathNode, internal, c3.pathNode]);
    await roundTrip(c, [a.pathNode, internal]);
    await roundTrip(c, [a.pathNode, internal, c3.pathNode]);
    // A made no link of its own to B: the only one is the one B opened.
    expect(
      a.manager
        .links()
        .filter((l) => same(l.peerIdentity, b.identity.publicKey))
        .map((l) => l.role),
    ).toEqual(["responder"]);
  });

  it("uses the link the internal node opened before any address the resolver knows (which leads nowhere here)", async () => {
    let asked = 0;
    const b = await startRelay(2);
    // The resolver's address is a closed port: dialing it would fail the extend.
    const a = await startRelay(1, () => {
      asked++;
      return [{ host: "127.2.0.1", port: 1 }];
    });
    await b.manager.getLink({ identity: a.identity.publicKey, host: a.address.host, port: a.address.port });
    const c = await client([a.pathNode, asInternal(b.pathNode)]);
    await roundTrip(c, [a.pathNode, asInternal(b.pathNode)]);
    expect(asked).toBe(0);
  });

  it("reaches it through the extending relay's resolver when no link is open", async () => {
    let asked = 0;
    const b = await startRelay(2);
    const a = await startRelay(1, (identity) => {
      asked++;
      return same(identity, b.identity.publicKey) ? [b.address] : undefined;
    });
    const c = await client([a.pathNode, asInternal(b.pathNode)]);
    await roundTrip(c, [a.pathNode, asInternal(b.pathNode)]);
    expect(asked).toBe(1);
  });

  it("fails the extend with CONNECTFAILED when the relay has neither a link nor an address, even with an anonymous link from there", async () => {
    const b = await startRelay(2);
    const a = await startRelay(1, () => undefined);
    // An anonymous link from B's host proves no identity: A must not take it for B.
    const anonymous = await createConnectionManager({ tlsCredentials: credentials });
    cleanups.push(() => anonymous.close());
    const anon = await anonymous.getLink({ identity: a.identity.publicKey, host: a.address.host, port: a.address.port });
    expect(anon.isOpen).toBe(true);
    const c = await client([a.pathNode, asInternal(b.pathNode)]);
    const error = await buildError(c, [a.pathNode, asInternal(b.pathNode)]);
    expect(error).toBeInstanceOf(CircuitError);
    expect(error).toMatchObject({ kind: "circuit-destroyed", destroyReason: DestroyReason.CONNECTFAILED });
    expect(b.relay.stats().circuits).toBe(0);
  });

  it("a client refuses an internal node as its first hop", async () => {
    const a = await startRelay(1);
    const b = await startRelay(2);
    const c = await client([a.pathNode, asInternal(b.pathNode)]);
    await expect(c.buildCircuit({ path: [asInternal(b.pathNode), a.pathNode] })).rejects.toMatchObject({ kind: "bad-argument" });
  });
});

/** A machine that only asks for links and records the answers. */
class LinkAsker implements OnionMachine {
  readonly opened: LinkInfo[] = [];
  readonly failed: { requestId: number; cause: LinkFailureCause | undefined }[] = [];
  private actions: OnionAction[] = [];
  ask(requestId: number, identity: Uint8Array, addresses: NodeAddress[] = []): void {
    this.actions.push({ type: "open-link", requestId, identity, addresses });
  }
  linkOpened(info: LinkInfo): void {
    this.opened.push(info);
  }
  linkFailed(requestId: number, _now: number, cause?: LinkFailureCause): void {
    this.failed.push({ requestId, cause });
  }
  linkClosed(): void {}
  handleCells(): void {}
  tick(): void {}
  takeActions(): OnionAction[] {
    return this.actions.splice(0);
  }
  nextWakeup(): number | undefined {
    return undefined;
  }
  linkCircuitCount(): number {
    return 0;
  }
}

async function settle(cond: () => boolean): Promise<void> {
  const end = performance.now() + 5000;
  while (!cond()) {
    if (performance.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("OnionDriver: open-link by identity alone", () => {
  async function driverWith(resolveAddresses?: (identity: Uint8Array) => readonly NodeAddress[] | undefined) {
    const identity = generateEd25519KeyPair();
    const manager = await createConnectionManager({ identity, listen: { host: "127.9.0.1", port: 0 }, tlsCredentials: credentials });
    const machine = new LinkAsker();
    const driver = new OnionDriver({ manager, machine, ...(resolveAddresses ? { resolveAddresses } : {}) });
    cleanups.push(async () => {
      driver.stop();
      await manager.close();
    });
    return { identity, manager, machine, driver, address: manager.address() as NodeAddress };
  }

  it("takes the authenticated link the node opened, then the resolver, and otherwise fails as unreachable", async () => {
    const peer = await startRelay(2);
    let resolved = 0;
    const d = await driverWith((identity) => (resolved++, same(identity, peer.identity.publicKey) ? [peer.address] : undefined));
    // 1. Resolver: no link yet.
    d.driver.run(() => d.machine.ask(1, peer.identity.publicKey));
    await settle(() => d.machine.opened.some((o) => o.requestId === 1));
    const first = d.machine.opened.find((o) => o.requestId === 1) as LinkInfo;
    expect(same(first.peerIdentity, peer.identity.publicKey)).toBe(true);
    expect(first.weInitiated).toBe(true);
    expect(resolved).toBe(1);

    // 2. An unknown identity with nothing to resolve: unreachable.
    d.driver.run(() => d.machine.ask(2, generateEd25519KeyPair().publicKey));
    await settle(() => d.machine.failed.length === 1);
    expect(d.machine.failed).toEqual([{ requestId: 2, cause: "unreachable" }]);

    // 3. A node that dialled us is taken over its own link, without asking the resolver.
    const inbound = await startRelay(3);
    await inbound.manager.getLink({ identity: d.identity.publicKey, host: d.address.host, port: d.address.port });
    await settle(() => d.manager.findLink(inbound.identity.publicKey) !== undefined);
    d.driver.run(() => d.machine.ask(3, inbound.identity.publicKey));
    await settle(() => d.machine.opened.some((o) => o.requestId === 3));
    const third = d.machine.opened.find((o) => o.requestId === 3) as LinkInfo;
    expect(same(third.peerIdentity, inbound.identity.publicKey)).toBe(true);
    expect(third.weInitiated).toBe(false);
    expect(resolved).toBe(2);
  });

  it("without a resolver, an identity-only request with no authenticated link fails, and an anonymous link is not taken", async () => {
    const d = await driverWith();
    const anonymous = await createConnectionManager({ tlsCredentials: credentials });
    cleanups.push(() => anonymous.close());
    await anonymous.getLink({ identity: d.identity.publicKey, host: d.address.host, port: d.address.port });
    await settle(() => d.machine.opened.length === 1); // the anonymous link, adopted with no identity
    expect(d.machine.opened[0]?.peerIdentity).toBeNull();
    d.driver.run(() => d.machine.ask(7, generateEd25519KeyPair().publicKey));
    await settle(() => d.machine.failed.length === 1);
    expect(d.machine.failed).toEqual([{ requestId: 7, cause: "unreachable" }]);
  });
});

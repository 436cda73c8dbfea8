/**
 * Link RPC serving budgets (issue 19) on loopback TLS, scaled down: anonymous
 * links holding half-sent requests, slow first fragments, a request rate.
 * Honest node traffic must still be served while each attack runs. No
 * assertion depends on how fast the machine is: deadlines that must not
 * fire are long, and the ones that must fire are awaited through stats.
 */
import { afterEach, describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { createConnectionManager } from "../../../node/src/link/manager.js";
import type { ConnectionManager, PeerAddress } from "../../../node/src/link/manager.js";
import { RpcCellKind, createLinkRpc, encodeRpcCells } from "../../../node/src/link/rpc.js";
import type { LinkRpc, LinkRpcOptions } from "../../../node/src/link/rpc.js";
import { createLogger } from "../../../node/src/log.js";
import type { LogEvent } from "../../../node/src/log.js";

const managers: ConnectionManager[] = [];
const endpoints: LinkRpc[] = [];
afterEach(async () => {
  for (const r of endpoints.splice(0)) r.close();
  await Promise.all(managers.splice(0).map((m) => m.close()));
});

const ECHO = 100;

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function manager(node: boolean, listen = false): Promise<ConnectionManager> {
  const m = await createConnectionManager({
    ...(node ? { identity: generateEd25519KeyPair() } : {}),
    ...(listen ? { listen: { host: "127.0.0.1", port: 0 } } : {}),
  });
  managers.push(m);
  return m;
}

async function server(options: Omit<LinkRpcOptions, "manager">): Promise<{ rpc: LinkRpc; at: PeerAddress }> {
  const m = await manager(true, true);
  const rpc = createLinkRpc({ manager: m, ...options });
  endpoints.push(rpc);
  rpc.serve(ECHO, async (req) => req);
  rpc.serve("dht", async (req) => req, { allowAnonymous: false });
  return { rpc, at: { identity: m.identityKey as Uint8Array, host: "127.0.0.1", port: m.address()!.port } };
}

async function endpoint(node: boolean): Promise<{ m: ConnectionManager; rpc: LinkRpc }> {
  const m = await manager(node);
  const rpc = createLinkRpc({ manager: m });
  endpoints.push(rpc);
  return { m, rpc };
}

/** Sends only the first cell of a request announcing `bytes` bytes: a half-sent request. */
function halfSend(link: { send: (c: ReturnType<typeof encodeRpcCells>[number]) => unknown }, id: number, bytes: number, service = ECHO): void {
  link.send(encodeRpcCells(RpcCellKind.REQUEST, service, id, new Uint8Array(bytes))[0]!);
}

describe("RPC serving budgets", () => {
  it("an identity the node does not know (isKnownNode false: a self-made key) is served from the anonymous budgets, a known one from the node's", async () => {
    const known = await endpoint(true);
    const selfMade = await endpoint(true);
    const knownKey = known.m.identityKey as Uint8Array;
    const { rpc, at } = await server({
      isKnownNode: (peer) => Buffer.from(peer).equals(Buffer.from(knownKey)),
      anonymous: { maxServing: 2, reassemblyTimeoutMs: 60_000 },
    });
    const attackLink = await selfMade.m.getLink(at);
    for (let id = 1; id <= 3; id++) halfSend(attackLink, id, 4000);
    await until(() => rpc.stats.serving.anonymous === 2, "the self-made identity's requests to fill the anonymous class");
    expect(rpc.stats.serving.node).toBe(0);
    // The anonymous class is full, yet the known node is served, and its node-only service too.
    expect(await known.rpc.request(at, "dht", new Uint8Array([7]), { timeoutMs: 5000 })).toEqual(new Uint8Array([7]));
    expect(rpc.stats.refusals.node["class-serving"] ?? 0).toBe(0);
  });

  it("anonymous links holding half-sent requests fill only their class: a node link is still served", async () => {
    const events: LogEvent[] = [];
    const logger = createLogger({ level: "silent", onLog: (e) => events.push(e) });
    const { rpc, at } = await server({ logger, maxServingTotal: 8, anonymous: { maxServing: 4, maxInflightPerLink: 2, reassemblyTimeoutMs: 60_000 } });
    // Three attacking anonymous links, each opening requests it never finishes.
    for (let a = 0; a < 3; a++) {
      const { m } = await endpoint(false);
      const link = await m.getLink(at);
      for (let id = 1; id <= 3; id++) halfSend(link, id, 4000);
    }
    await until(() => rpc.stats.serving.anonymous === 4 && rpc.stats.busyRefusals >= 5, "the anonymous class to fill");
    expect(rpc.stats.refusals.anonymous["link-inflight"]).toBe(2); // the third request of the first two links
    expect(rpc.stats.refusals.anonymous["class-serving"]).toBe(3); // every request of the third link: the class was full
    // An honest anonymous client is shed with a typed refusal naming the budget...
    const honestClient = await endpoint(false);
    expect(await honestClient.rpc.request(at, ECHO, new Uint8Array([1]), { timeoutMs: 5000 }).catch((e: unknown) => e)).toMatchObject({
      kind: "busy",
      code: "class-serving",
      remote: true,
    });
    // ...while a node link's requests, from the reserve, are served.
    const node = await endpoint(true);
    expect(Array.from(await node.rpc.request(at, "dht", new Uint8Array([7]), { timeoutMs: 5000 }))).toEqual([7]);
    expect(Array.from(await node.rpc.request(at, ECHO, new Uint8Array(3000).fill(9), { timeoutMs: 5000 }))).toEqual(Array.from(new Uint8Array(3000).fill(9)));
    expect(rpc.stats.serving.anonymous).toBe(4);
    // Every refusal is a counted log event: shedding at the class budget at warn, one link past its own at debug.
    const busy = events.filter((e) => e.errorKind === "link/busy");
    expect(busy.filter((e) => e.operation === "serve anonymous requests (class-serving)" && e.level === "warn")).toHaveLength(4);
    expect(busy.filter((e) => e.operation === "answer request" && e.level === "debug")).toHaveLength(2);
  });

  it("a slow first fragment holds one cell's bytes, not its announced size; memory past a link's budget is refused", async () => {
    const { rpc, at } = await server({ anonymous: { maxReassemblyBytesPerLink: 1200, reassemblyTimeoutMs: 60_000 } });
    const { m } = await endpoint(false);
    const link = await m.getLink(at);
    halfSend(link, 1, 60_000); // announces 60,000 bytes, sends 494
    await until(() => rpc.stats.serving.anonymous === 1, "the first fragment");
    expect(rpc.stats.reassemblyBytes.anonymous).toBe(494);
    // The rest of a 3-cell request in order: the third cell would pass 1200 bytes held on this link.
    const cells = encodeRpcCells(RpcCellKind.REQUEST, ECHO, 2, new Uint8Array(2000));
    link.sendMany(cells.slice(0, 3));
    await until(() => rpc.stats.refusals.anonymous["link-memory"] === 1, "the memory refusal");
    expect(rpc.stats.reassemblyBytes.anonymous).toBe(494); // request 2's bytes were given back
    const node = await endpoint(true);
    expect((await node.rpc.request(at, ECHO, new Uint8Array(2000), { timeoutMs: 5000 })).length).toBe(2000);
  });

  it("anonymous links get a shorter reassembly deadline than node links", async () => {
    const { rpc, at } = await server({ reassemblyTimeoutMs: 60_000, anonymous: { reassemblyTimeoutMs: 50 } });
    const client = await endpoint(false);
    const node = await endpoint(true);
    halfSend(await client.m.getLink(at), 1, 2000);
    halfSend(await node.m.getLink(at), 1, 2000);
    await until(() => rpc.stats.reassemblyTimeouts === 1, "the anonymous request's deadline");
    expect(rpc.stats.serving).toEqual({ node: 1, anonymous: 0 });
    expect(rpc.stats.reassemblyBytes).toEqual({ node: 494, anonymous: 0 });
  });

  it("limits the request rate of each anonymous link, not of node links", async () => {
    const { rpc, at } = await server({ anonymous: { requestsPerSecond: 0.001, requestBurst: 2 } });
    const client = await endpoint(false);
    const ask = (r: LinkRpc) => r.request(at, ECHO, new Uint8Array([1]), { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(await ask(client.rpc)).toBeInstanceOf(Uint8Array);
    expect(await ask(client.rpc)).toBeInstanceOf(Uint8Array);
    expect(await ask(client.rpc)).toMatchObject({ kind: "busy", code: "rate" });
    const other = await endpoint(false); // the bucket is per link
    expect(await ask(other.rpc)).toBeInstanceOf(Uint8Array);
    const node = await endpoint(true);
    for (let i = 0; i < 5; i++) expect(await ask(node.rpc)).toBeInstanceOf(Uint8Array);
    expect(rpc.stats.refusals.anonymous.rate).toBe(1);
    expect(rpc.stats.refusals.node.rate).toBe(0);
  });

  it("refuses budgets that leave no node reserve, or that are not numbers, with config errors", async () => {
    const m = await manager(true);
    expect(() => createLinkRpc({ manager: m, maxServingTotal: 8, anonymous: { maxServing: 8 } })).toThrow(/reserved for node links/);
    expect(() => createLinkRpc({ manager: m, maxReassemblyBytesTotal: 1000, anonymous: { maxReassemblyBytes: 1000 } })).toThrow(/reserved for node links/);
    expect(() => createLinkRpc({ manager: m, anonymous: { requestsPerSecond: 0 } })).toThrow(expect.objectContaining({ kind: "config" }));
    expect(() => createLinkRpc({ manager: m, anonymous: { maxInflight: 3 } as never })).toThrow(/not a limit/);
  });
});

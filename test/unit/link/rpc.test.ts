/**
 * Link RPC: the cell layout, and two connection managers on loopback TLS
 * exchanging requests, refusals, timeouts and garbage.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { createConnectionManager } from "../../../node/src/link/manager.js";
import type { ConnectionManager, PeerAddress } from "../../../node/src/link/manager.js";
import {
  RPC_CELL_HEADER_LEN,
  RPC_CHUNK_LEN,
  RpcCellKind,
  RpcError,
  RpcService,
  createLinkRpc,
  decodeRpcErrorBody,
  encodeRpcCells,
  encodeRpcErrorCell,
  rpcFragmentOfPayload,
  rpcHeader,
  serviceId,
} from "../../../node/src/link/rpc.js";
import type { LinkRpc } from "../../../node/src/link/rpc.js";
import { CELL_PAYLOAD_LEN, CellCommand, decodeCell, encodeCell } from "../../../node/src/wire/cell.js";
import { Reassembler } from "../../../node/src/wire/fragment.js";

describe("RPC cells", () => {
  it("a message split into RPC cells survives zero padding and reassembles", () => {
    const message = Uint8Array.from({ length: 3 * RPC_CHUNK_LEN + 17 }, (_, i) => (i * 7) & 0xff);
    const cells = encodeRpcCells(RpcCellKind.RESPONSE, RpcService.authority, 0xdeadbeef, message);
    expect(cells).toHaveLength(4);
    const reassembler = new Reassembler({ maxMessageBytes: 32 * 1024 });
    let out: Uint8Array | undefined;
    cells.forEach((cell, i) => {
      expect(cell.command).toBe(CellCommand.RPC);
      const wire = decodeCell(encodeCell(cell));
      expect(wire.payload).toHaveLength(CELL_PAYLOAD_LEN);
      expect(Array.from(wire.payload.subarray(0, RPC_CELL_HEADER_LEN))).toEqual([RpcCellKind.RESPONSE, 0, 3, 0xde, 0xad, 0xbe, 0xef]);
      expect(rpcHeader(wire.payload)).toEqual({ kind: 2, service: 3, id: 0xdeadbeef });
      const { fragment, last } = rpcFragmentOfPayload(wire.payload);
      expect(last).toBe(i === 3);
      out = reassembler.push(fragment);
    });
    expect(out).toEqual(message);
  });

  it("a fragment claiming to lie past its message's end is a typed error", () => {
    const payload = new Uint8Array(CELL_PAYLOAD_LEN);
    payload.set([1, 0, 1, 0, 0, 0, 1, 0, 3, 0, 0, 0, 100], 0); // seq 3 of a 100-byte message
    expect(() => rpcFragmentOfPayload(payload)).toThrow(expect.objectContaining({ kind: "bad-fragment" }));
  });

  it("ERROR cells carry a kind and a service code; long texts fit one cell; unknown codes are malformed", () => {
    const cell = encodeRpcErrorCell(3, 5, new RpcError("refused", "x".repeat(2000), { code: "rate-limited" }));
    expect(cell.payload.length).toBeLessThanOrEqual(CELL_PAYLOAD_LEN);
    const err = decodeRpcErrorBody(decodeCell(encodeCell(cell)).payload.subarray(RPC_CELL_HEADER_LEN));
    expect(err).toMatchObject({ kind: "refused", code: "rate-limited", remote: true });
    const bogus = encodeRpcErrorCell(3, 5, new RpcError("busy", "")).payload.slice();
    bogus[RPC_CELL_HEADER_LEN] = 200;
    expect(decodeRpcErrorBody(bogus.subarray(RPC_CELL_HEADER_LEN)).kind).toBe("malformed");
  });

  it("service names map to fixed ids and bad ones are config errors", () => {
    expect([serviceId("dht"), serviceId("directory"), serviceId("authority"), serviceId(4000)]).toEqual([1, 2, 3, 4000]);
    for (const bad of [0, 70000, 1.5, "nope"] as const) expect(() => serviceId(bad as never)).toThrow(expect.objectContaining({ kind: "config" }));
  });
});

describe("RPC over loopback links", () => {
  let server: ConnectionManager;
  let node: ConnectionManager;
  let client: ConnectionManager;
  let serverRpc: LinkRpc;
  let nodeRpc: LinkRpc;
  let clientRpc: LinkRpc;
  let at: PeerAddress;
  const waiting: Array<() => void> = [];
  const releaseAll = (): void => {
    for (const release of waiting.splice(0)) release();
  };

  beforeAll(async () => {
    const serverKeys = generateEd25519KeyPair();
    server = await createConnectionManager({ identity: serverKeys, listen: { host: "127.0.0.1", port: 0 } });
    node = await createConnectionManager({ identity: generateEd25519KeyPair() });
    client = await createConnectionManager({});
    serverRpc = createLinkRpc({ manager: server, maxMessageBytes: 8192, maxInflightPerPeer: 2, reassemblyTimeoutMs: 150 });
    nodeRpc = createLinkRpc({ manager: node, maxMessageBytes: 8192 });
    clientRpc = createLinkRpc({ manager: client, maxMessageBytes: 8192 });
    at = { identity: serverKeys.publicKey, host: "127.0.0.1", port: server.address()!.port };
    serverRpc.serve(100, async (req, ctx) => Uint8Array.from([ctx.peer === null ? 0 : 1, ...req.map((b) => b ^ 0xff)]));
    serverRpc.serve("dht", async (req) => req, { allowAnonymous: false });
    serverRpc.serve(101, async () => {
      throw new RpcError("refused", "not today", { code: "policy-forbids" });
    });
    serverRpc.serve(102, async () => {
      throw new Error("database on fire");
    });
    serverRpc.serve(103, () => new Promise((resolve) => waiting.push(() => resolve(new Uint8Array([7])))));
    serverRpc.serve(104, async () => new Uint8Array(9000));
  });

  afterAll(async () => {
    for (const r of [serverRpc, nodeRpc, clientRpc]) r.close();
    await Promise.all([server.close(), node.close(), client.close()]);
  });

  it("answers multi-cell requests from nodes and anonymous clients, telling the handler which", async () => {
    const big = Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff);
    const fromNode = await nodeRpc.request(at, 100, big, { timeoutMs: 5000 });
    expect(fromNode[0]).toBe(1);
    expect(fromNode.subarray(1)).toEqual(big.map((b) => b ^ 0xff));
    const fromClient = await clientRpc.request(at, 100, new Uint8Array([1, 2]), { timeoutMs: 5000 });
    expect(Array.from(fromClient)).toEqual([0, 0xfe, 0xfd]);
    expect(serverRpc.stats.requestsServed).toBeGreaterThanOrEqual(2);
  });

  it("refusals arrive as typed errors: unknown service, anonymous, service code, handler failure, oversized", async () => {
    const ask = (rpc: LinkRpc, service: number | "dht", bytes = new Uint8Array([1])) => rpc.request(at, service, bytes, { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(await ask(nodeRpc, 999)).toMatchObject({ kind: "unknown-service", remote: true });
    expect(await ask(clientRpc, "dht")).toMatchObject({ kind: "unauthenticated", remote: true });
    expect(Array.from((await ask(nodeRpc, "dht")) as Uint8Array)).toEqual([1]);
    expect(await ask(nodeRpc, 101)).toMatchObject({ kind: "refused", code: "policy-forbids" });
    const failed = (await ask(nodeRpc, 102)) as RpcError;
    expect(failed).toMatchObject({ kind: "handler-failed" });
    expect(failed.message).toMatch(/database on fire/);
    expect(await ask(nodeRpc, 104)).toMatchObject({ kind: "oversized", remote: true }); // response past the server's limit
    expect(await ask(nodeRpc, 100, new Uint8Array(9000))).toMatchObject({ kind: "oversized", remote: false });
    // A request the server's limit refuses at its first cell: our limit is larger than the server's.
    const roomy = createLinkRpc({ manager: await createConnectionManager({}), maxMessageBytes: 20_000 });
    expect(await roomy.request(at, 100, new Uint8Array(10_000), { timeoutMs: 5000 }).catch((e: unknown) => e)).toMatchObject({ kind: "oversized", remote: true });
    roomy.close();
  });

  it("refuses a peer past its in-flight cap with busy, and times out a slow answer", async () => {
    const link = await node.getLink(at);
    const slow = [0, 1].map(() => nodeRpc.requestOnLink(link, 103, new Uint8Array([0]), { timeoutMs: 5000 }));
    await new Promise((r) => setTimeout(r, 50));
    // The node's own cap (16) lets a third through; the server's (2) refuses it.
    expect(await nodeRpc.requestOnLink(link, 100, new Uint8Array([0]), { timeoutMs: 5000 }).catch((e: unknown) => e)).toMatchObject({ kind: "busy", remote: true });
    expect(serverRpc.stats.busyRefusals).toBeGreaterThan(0);
    releaseAll();
    expect((await Promise.all(slow)).map((a) => Array.from(a))).toEqual([[7], [7]]);
    expect(await nodeRpc.request(at, 103, new Uint8Array([0]), { timeoutMs: 100 }).catch((e: unknown) => e)).toMatchObject({ kind: "timeout", remote: false });
    releaseAll();
    expect(nodeRpc.inflight).toBe(0);
  });

  it("drops a request whose cells stop halfway, frees its slot and refuses it with timeout", async () => {
    const link = await node.getLink(at);
    const errors: RpcError[] = [];
    // Hand-sent cells: the first of a two-cell request, twice (two slots), and never the rest.
    for (const id of [0x7000_0001, 0x7000_0002]) link.send(encodeRpcCells(RpcCellKind.REQUEST, 100, id, new Uint8Array(800))[0]!);
    const before = serverRpc.stats.reassemblyTimeouts;
    await new Promise((r) => setTimeout(r, 400));
    expect(serverRpc.stats.reassemblyTimeouts).toBe(before + 2);
    // Both slots are free again: two requests at once succeed.
    const answers = await Promise.all([0, 1].map(() => nodeRpc.request(at, 100, new Uint8Array(600), { timeoutMs: 5000 }).catch((e: unknown) => errors.push(e as RpcError))));
    expect(errors).toEqual([]);
    expect(answers).toHaveLength(2);
  });

  it("fuzzed RPC cells never crash the node and the link stays usable", async () => {
    const link = await node.getLink(at);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ minLength: 0, maxLength: CELL_PAYLOAD_LEN }), { minLength: 1, maxLength: 20 }), async (payloads) => {
        for (const payload of payloads) {
          // Mostly well-formed headers aimed at real services, with random bodies.
          if (payload.length > 3 && payload[0]! % 2 === 0) {
            payload[0] = 1;
            payload[1] = 0;
            payload[2] = 100;
          }
          link.send({ circId: 0, command: CellCommand.RPC, payload });
        }
        // Fuzzed request starts may hold this peer's two in-flight slots until the
        // 150 ms reassembly deadline frees them: "busy" is the typed refusal for that,
        // and the same link must answer once the deadline has passed.
        let answer: Uint8Array | undefined;
        for (let attempt = 0; attempt < 20 && !answer; attempt++) {
          try {
            answer = await nodeRpc.request(at, 100, new Uint8Array([9]), { timeoutMs: 5000 });
          } catch (err) {
            expect(err).toMatchObject({ kind: "busy" });
            await new Promise((r) => setTimeout(r, 200));
          }
        }
        expect(Array.from(answer ?? [])).toEqual([1, 0xf6]);
      }),
      { numRuns: 25 },
    );
    expect(link.isOpen).toBe(true);
    expect(node.findLink(at.identity)).toBe(link);
  });

  it("a link closing fails the requests waiting on it with unreachable", async () => {
    const link = await node.getLink(at);
    const waiting = nodeRpc.requestOnLink(link, 103, new Uint8Array([0]), { timeoutMs: 5000 }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 30));
    await link.close();
    expect(await waiting).toMatchObject({ kind: "unreachable" });
    releaseAll();
    // A new link is dialed on the next request.
    expect((await nodeRpc.request(at, 100, new Uint8Array([1]), { timeoutMs: 5000 }))[0]).toBe(1);
  });

  it("rejects bad options and a second endpoint on the same manager", () => {
    expect(() => createLinkRpc({ manager: server })).toThrow(expect.objectContaining({ kind: "config" }));
    expect(() => createLinkRpc({ manager: client, maxInflightPerPeer: 0 })).toThrow(expect.objectContaining({ kind: "config" }));
    expect(() => serverRpc.serve(100, async (r) => r)).toThrow(expect.objectContaining({ kind: "config" }));
    expect(() => serverRpc.serve(105, async (r) => r, { maxRequestBytes: 1e9 })).toThrow(expect.objectContaining({ kind: "config" }));
  });
});

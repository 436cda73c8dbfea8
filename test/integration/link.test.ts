import { once } from "node:events";
import { connect as tlsConnect } from "node:tls";
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import type { Ed25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { CloseReason, LinkError, createConnectionManager, generateTlsCredentials } from "../../node/src/link/index.js";
import type { ConnectionManager, ConnectionManagerOptions, Link, LinkCloseInfo, PeerAddress } from "../../node/src/link/index.js";
import { clientTlsOptions } from "../../node/src/link/tls.js";
import { CELL_LEN, CELL_PAYLOAD_LEN, CellCommand, decodeCell } from "../../node/src/wire/cell.js";
import type { Cell } from "../../node/src/wire/cell.js";

const HOST = "127.0.0.1";
const credentials = await generateTlsCredentials(); // shared: certificate generation is not what we test
const managers: ConnectionManager[] = [];

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
});

async function node(options: ConnectionManagerOptions = {}): Promise<{ manager: ConnectionManager; key: Ed25519KeyPair; address: PeerAddress }> {
  const key = generateEd25519KeyPair();
  const manager = await createConnectionManager({ identity: key, listen: { host: HOST, port: 0 }, tlsCredentials: credentials, ...options });
  managers.push(manager);
  const port = manager.address()?.port as number;
  return { manager, key, address: { identity: key.publicKey, host: HOST, port } };
}

const relay = (circId: number, fill = 0): Cell => ({ circId, command: CellCommand.RELAY, payload: new Uint8Array(CELL_PAYLOAD_LEN).fill(fill) });
const same = (a: Uint8Array | undefined, b: Uint8Array): boolean => a !== undefined && Buffer.from(a).equals(Buffer.from(b));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function caught(p: Promise<unknown>): Promise<LinkError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LinkError);
    return err as LinkError;
  }
  throw new Error("expected a LinkError");
}

/** Connects with plain TLS, writes `bytes` (if any), collects everything until the server closes. */
async function rawPeer(port: number, bytes?: Uint8Array): Promise<Cell[]> {
  const socket = tlsConnect(clientTlsOptions(HOST, port));
  await once(socket, "secureConnect");
  if (bytes) socket.write(bytes);
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  socket.on("error", () => undefined);
  await once(socket, "close");
  const all = Buffer.concat(chunks);
  const cells: Cell[] = [];
  for (let at = 0; at + CELL_LEN <= all.length; at += CELL_LEN) cells.push(decodeCell(all, at));
  return cells;
}

describe("links over loopback", () => {
  it("two nodes link up, prove identities both ways and exchange cells", async () => {
    const a = await node();
    const b = await node();
    const atA = new Promise<Link>((resolve) => a.manager.on("link", resolve));
    const gotA: number[] = [];
    const gotB: number[] = [];
    a.manager.handle(CellCommand.RELAY, (cell, link) => {
      gotA.push(cell.circId);
      link.send(relay(cell.circId + 100));
    });
    b.manager.handle(CellCommand.RELAY, (cell) => gotB.push(cell.circId));
    const link = await b.manager.getLink(a.address);
    expect(same(link.peerIdentity, a.key.publicKey)).toBe(true);
    const inbound = await atA;
    expect(same(inbound.peerIdentity, b.key.publicKey)).toBe(true);
    expect(inbound.role).toBe("responder");
    link.sendMany([relay(1), relay(2), relay(3)]);
    await sleep(100);
    expect(gotA).toEqual([1, 2, 3]);
    expect(gotB).toEqual([101, 102, 103]);
    expect(a.manager.findLink(b.key.publicKey)).toBe(inbound); // A reuses the inbound link to reach B
  });

  it("several nodes dialing each other at once end with one shared link per pair", async () => {
    const nodes = await Promise.all([1, 2, 3, 4].map(() => node({ link: { duplicateGraceMs: 100 } })));
    // Each dial resolves with an open link; read isOpen as it resolves, since a duplicate that lost the tie-break retires 100 ms later.
    const openOnResolve = await Promise.all(
      nodes.flatMap((from, i) => nodes.filter((_, j) => j !== i).map((to) => from.manager.getLink(to.address).then((l) => l.isOpen))),
    );
    expect(openOnResolve).toEqual(Array(12).fill(true));
    // Both ends settle on one connection and retired duplicates close after 100 ms unused: wait for that, however loaded the machine.
    await vi.waitFor(
      () => {
        for (const [i, from] of nodes.entries()) {
          expect(from.manager.links().length).toBe(3);
          for (const [j, to] of nodes.entries()) {
            if (i === j) continue;
            const here = from.manager.findLink(to.key.publicKey);
            expect(here?.isOpen).toBe(true);
            // Both ends kept the same TLS connection: its two ends have swapped roles.
            const there = to.manager.findLink(from.key.publicKey);
            expect(there?.role).not.toBe(here?.role);
          }
        }
      },
      { timeout: 10_000, interval: 50 },
    );
    // Every pair really talks over the kept link.
    const seen = new Set<string>();
    nodes.forEach((n, j) => n.manager.handle(CellCommand.RELAY, (cell) => seen.add(`${cell.circId}->${j}`)));
    for (const [i, from] of nodes.entries()) {
      for (const [j, to] of nodes.entries()) if (i !== j) (await from.manager.getLink(to.address)).send(relay(i + 1));
    }
    await vi.waitFor(() => expect(seen.size).toBe(12), { timeout: 10_000, interval: 20 });
    expect(nodes.every((n) => n.manager.links().length === 3)).toBe(true);
  });

  it("refuses a peer that proves another identity than the one dialed", async () => {
    const a = await node();
    const b = await node();
    const err = await caught(b.manager.getLink({ ...a.address, identity: generateEd25519KeyPair().publicKey }));
    expect(err.kind).toBe("identity-mismatch");
    await sleep(50);
    expect(a.manager.links().length).toBe(0);
    expect(b.manager.links().length).toBe(0);
  });

  it("reuses one link: concurrent getLink calls share one dial", async () => {
    const a = await node();
    const b = await node();
    let inbound = 0;
    a.manager.on("link", () => inbound++);
    const all = await Promise.all(Array.from({ length: 8 }, () => b.manager.getLink(a.address)));
    expect(new Set(all).size).toBe(1);
    expect(await b.manager.getLink(a.address)).toBe(all[0]);
    await sleep(50);
    expect(inbound).toBe(1);
  });

  it("closes idle links and redials on demand", async () => {
    // Idle close is each side's own decision; here B decides.
    const a = await node({ link: { idleTimeoutMs: 0, keepaliveMs: 40 } });
    const b = await node({ link: { idleTimeoutMs: 150, keepaliveMs: 40 } });
    const closedAtB = new Promise<LinkCloseInfo>((resolve) => b.manager.on("linkClosed", (_l, info) => resolve(info)));
    const first = await b.manager.getLink(a.address);
    const info = await closedAtB;
    expect(info.reason).toBe(CloseReason.IDLE);
    expect(info.initiatedBy).toBe("local");
    expect(first.isOpen).toBe(false);
    const second = await b.manager.getLink(a.address);
    expect(second).not.toBe(first);
    expect(second.isOpen).toBe(true);
    const release = second.acquire(); // a holder keeps it open past the idle timeout
    await sleep(300);
    expect(second.isOpen).toBe(true);
    release();
  });

  it("enforces the link cap on both the listening and the dialing side", async () => {
    const a = await node({ maxLinks: 1 });
    const b = await node();
    const c = await node();
    await b.manager.getLink(a.address);
    const refused = await caught(c.manager.getLink(a.address));
    expect(refused.kind).toBe("link-cap");
    expect(a.manager.stats.refusedAtCap).toBe(1);

    const d = await node({ maxLinks: 1 });
    await d.manager.getLink(b.address);
    expect((await caught(d.manager.getLink(c.address))).kind).toBe("link-cap");
  });

  it("closes a link whose peer stops reading once the send queue passes its cap", async () => {
    const a = await node();
    const b = await node({ link: { maxQueuedBytes: 256 * 1024 } });
    let resumeA: (() => void) | undefined;
    const closedAtA = new Promise<LinkCloseInfo>((resolve) => a.manager.on("linkClosed", (_l, info) => resolve(info)));
    a.manager.on("link", (link) => (resumeA = link.pauseReading()));
    a.manager.handle(CellCommand.RELAY, () => undefined);
    const link = await b.manager.getLink(a.address);
    const batch = Array.from({ length: 64 }, (_, i) => relay(i + 1));
    let error: unknown;
    for (let i = 0; i < 4000 && !error; i++) {
      try {
        if (!link.sendMany(batch)) await sleep(1); // ignore the pressure signal on purpose
      } catch (err) {
        error = err;
      }
    }
    expect(error).toBeInstanceOf(LinkError);
    expect((error as LinkError).kind).toBe("send-queue-full");
    expect(link.closeReason?.reason ?? CloseReason.QUEUE_OVERFLOW).toBe(CloseReason.QUEUE_OVERFLOW);
    resumeA?.();
    const info = await closedAtA;
    expect(info.initiatedBy).toBe("peer");
    expect(info.reason).toBe(CloseReason.QUEUE_OVERFLOW);
  });

  it("a sender that honours drain() moves many megabytes without overflowing a small queue", async () => {
    const a = await node();
    const b = await node({ link: { maxQueuedBytes: 64 * 1024 } });
    const total = 16_384; // 8 MiB of cells
    let got = 0;
    const done = new Promise<void>((resolve) => a.manager.handle(CellCommand.RELAY, () => ++got === total && resolve()));
    const link = await b.manager.getLink(a.address);
    const batch = Array.from({ length: 64 }, (_, i) => relay(i + 1));
    for (let sent = 0; sent < total; sent += 64) if (!link.sendMany(batch)) await link.drain();
    await done;
    expect(link.isOpen).toBe(true);
  });

  it("keeps an idle-but-wanted link alive with PADDING keepalives", async () => {
    const opts = { link: { keepaliveMs: 40, silenceTimeoutMs: 150, idleTimeoutMs: 0 } };
    const a = await node(opts);
    const b = await node(opts);
    const link = await b.manager.getLink(a.address);
    await sleep(400);
    expect(link.isOpen).toBe(true);
    expect(link.stats.paddingReceived).toBeGreaterThan(2);
    expect(link.stats.paddingSent).toBeGreaterThan(2);
  });

  it("sends garbage-senders a CLOSE with a reason before closing", async () => {
    const a = await node();
    const garbage = new Uint8Array(1024).map((_, i) => (i * 97 + 13) & 0xff);
    const cells = await rawPeer(a.address.port, garbage);
    expect(cells[0]?.command).toBe(CellCommand.VERSIONS);
    const close = cells.at(-1);
    expect(close?.command).toBe(CellCommand.CLOSE);
    expect([CloseReason.PROTOCOL_VIOLATION, CloseReason.UNKNOWN_COMMAND]).toContain(close?.payload[0]);
  });

  it("closes a silent TLS peer with HANDSHAKE_TIMEOUT", async () => {
    const a = await node({ link: { handshakeTimeoutMs: 150 } });
    const cells = await rawPeer(a.address.port);
    expect(cells.at(-1)?.command).toBe(CellCommand.CLOSE);
    expect(cells.at(-1)?.payload[0]).toBe(CloseReason.HANDSHAKE_TIMEOUT);
  });

  it("lets an anonymous client link in and marks it as a client link", async () => {
    const a = await node();
    const client = await createConnectionManager({ tlsCredentials: credentials });
    managers.push(client);
    const atA = new Promise<Link>((resolve) => a.manager.on("link", resolve));
    const replies: number[] = [];
    client.handle(CellCommand.CREATED, (cell) => replies.push(cell.circId));
    a.manager.handle(CellCommand.CREATE, (cell, link) => link.send({ circId: cell.circId, command: CellCommand.CREATED, payload: new Uint8Array(0) }));
    const link = await client.getLink(a.address);
    expect(same(link.peerIdentity, a.key.publicKey)).toBe(true);
    const inbound = await atA;
    expect(inbound.isClientLink).toBe(true);
    expect(inbound.peerIdentity).toBeUndefined();
    link.send({ circId: 77, command: CellCommand.CREATE, payload: new Uint8Array(0) });
    await sleep(80);
    expect(replies).toEqual([77]);

    // The client finishes its side first, then learns of the refusal from the CLOSE cell.
    const closed = await node({ link: { acceptAnonymous: false } });
    const refused = await client.getLink(closed.address).then((l) => l.closed);
    expect(refused.initiatedBy).toBe("peer");
    expect(refused.reason).toBe(CloseReason.ANONYMOUS_REFUSED);
  });

  it("fails cleanly with no common version, refused connections and bad addresses", async () => {
    const a = await node({ link: { versions: [1] } });
    const b = await node({ link: { versions: [2] } });
    expect((await caught(b.manager.getLink(a.address))).kind).toBe("no-common-version");
    expect((await caught(b.manager.getLink({ ...a.address, port: 1 }))).kind).toBe("transport");
    expect((await caught(b.manager.getLink({ ...a.address, identity: new Uint8Array(3) }))).kind).toBe("config");
    expect((await caught(a.manager.getLink(a.address))).kind).toBe("config");
    await a.manager.close();
    expect((await caught(a.manager.getLink(b.address))).kind).toBe("manager-closed");
  });
});

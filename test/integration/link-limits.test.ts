/**
 * The connection manager's inbound budgets (issue 19) on loopback, scaled
 * down: raw TCP that never starts TLS, one source opening many anonymous
 * links, the anonymous cap and the outbound reserve. Each test shows honest
 * peers still linking while the attack runs. Deadlines that must fire are
 * small and awaited through events, never timed.
 */
import { once } from "node:events";
import { connect as netConnect, createServer } from "node:net";
import type { AddressInfo, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { LinkError, createConnectionManager, generateTlsCredentials } from "../../node/src/link/index.js";
import type { ConnectionManager, ConnectionManagerOptions, PeerAddress } from "../../node/src/link/index.js";
import { SourceCounts, sourceKeys } from "../../node/src/link/sources.js";
import { createLogger } from "../../node/src/log.js";
import type { LogEvent } from "../../node/src/log.js";

const credentials = await generateTlsCredentials();
const managers: ConnectionManager[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(managers.splice(0).map((m) => m.close()));
});

async function node(options: ConnectionManagerOptions = {}, host = "127.0.0.1"): Promise<{ manager: ConnectionManager; address: PeerAddress }> {
  const key = generateEd25519KeyPair();
  const manager = await createConnectionManager({ identity: key, listen: { host, port: 0 }, tlsCredentials: credentials, ...options });
  managers.push(manager);
  return { manager, address: { identity: key.publicKey, host: host === "::" ? "127.0.0.1" : host, port: manager.address()!.port } };
}

async function client(): Promise<ConnectionManager> {
  const m = await createConnectionManager({ tlsCredentials: credentials });
  managers.push(m);
  return m;
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function refusal(p: Promise<unknown>): Promise<LinkError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LinkError);
  return err as LinkError;
}

describe("inbound budgets over loopback", () => {
  it("raw TCP connections that never start TLS are counted while pending and closed at the handshake deadline", async () => {
    const target = await node({ inbound: { handshakeTimeoutMs: 300, maxPending: 3 } });
    const closed: Promise<unknown>[] = [];
    for (let i = 0; i < 5; i++) {
      const s = netConnect(target.address.port, "127.0.0.1");
      s.on("error", () => undefined);
      sockets.push(s);
      closed.push(once(s, "close"));
      await once(s, "connect");
    }
    await until(() => target.manager.stats.refusals.pending === 2, "the two connections past maxPending to be refused");
    expect(target.manager.pendingInbound).toBe(3);
    expect(target.manager.linkCount).toBe(3); // TLS-stage sockets count against maxLinks
    await Promise.all(closed); // every one closed by the server: two refused, three at the deadline
    await until(() => target.manager.pendingInbound === 0, "the pending count to drain");
    expect(target.manager.stats.handshakeTimeouts).toBe(3);
    expect(target.manager.linkCount).toBe(0);
    const honest = await node();
    expect((await honest.manager.getLink(target.address)).isOpen).toBe(true);
  });

  it("a link handshake that stalls after TLS ends at the same deadline, counted", async () => {
    const target = await node({ inbound: { handshakeTimeoutMs: 300 } });
    const { connect: tlsConnect } = await import("node:tls");
    const { clientTlsOptions } = await import("../../node/src/link/tls.js");
    const s = tlsConnect(clientTlsOptions("127.0.0.1", target.address.port)); // TLS, then silence: no VERSIONS
    s.on("error", () => undefined);
    sockets.push(s);
    s.resume(); // read the server's VERSIONS and CLOSE, so the end of the stream is seen
    await once(s, "secureConnect");
    await once(s, "close");
    expect(target.manager.stats.handshakeTimeouts).toBe(1);
    expect(target.manager.pendingInbound).toBe(0);
  });

  it("one source cannot take more than its share of links while another source still connects", async () => {
    // Listening on "::": 127.0.0.1 arrives as ::ffff:127.0.0.1 (one source), ::1 is another.
    const events: LogEvent[] = [];
    const logger = createLogger({ level: "silent", onLog: (e) => events.push(e) });
    const target = await node({ logger, inbound: { exemptLoopback: false, maxPerAddress: 3, maxPerPrefix: 3 } }, "::");
    const attacker = await Promise.all([0, 1, 2, 3, 4].map(() => client()));
    const results = await Promise.all(
      attacker.map((c) =>
        c.getLink(target.address).then(
          () => "linked",
          (e: unknown) => (e as LinkError).kind,
        ),
      ),
    );
    expect(results.filter((r) => r === "linked")).toHaveLength(3);
    expect(results.filter((r) => r !== "linked")).toEqual(["transport", "transport"]); // refused before TLS: no CLOSE cell
    expect(target.manager.stats.refusals["per-address"]).toBe(2);
    // Each refusal is a typed, counted log event (the line itself is throttled).
    const refusals = events.filter((e) => e.operation === "accept link (per-address)");
    expect(refusals.map((e) => [e.component, e.errorKind, e.level])).toEqual([
      ["link", "link/source-cap", "debug"],
      ["link", "link/source-cap", "debug"],
    ]);
    // Another source, anonymous or node, still links.
    const other = await client();
    expect((await other.getLink({ ...target.address, host: "::1" })).isOpen).toBe(true);
    const honest = await node();
    expect((await honest.manager.getLink({ ...target.address, host: "::1" })).isOpen).toBe(true);
    expect(target.manager.anonymousInboundLinks).toBe(4);
    // A node link leaves its source's count once it proved its identity: only anonymous links hold the source's share.
    await until(() => target.manager.pendingInbound === 0, "handshakes to end");
  });

  it("identities the node does not know (self-made keys) are held to the anonymous cap like clients; a known node is not", async () => {
    const known = await node();
    const knownKey = known.address.identity;
    const target = await node({ isKnownNode: (peer) => Buffer.from(peer).equals(Buffer.from(knownKey)), inbound: { maxAnonymous: 2 } });
    const selfMade = await Promise.all([0, 1, 2].map(() => node()));
    await selfMade[0]!.manager.getLink(target.address);
    await selfMade[1]!.manager.getLink(target.address);
    const third = await selfMade[2]!.manager.getLink(target.address);
    expect((await third.closed).reasonName).toBe("LINK_CAP");
    expect(target.manager.anonymousInboundLinks).toBe(2);
    expect((await known.manager.getLink(target.address)).isOpen).toBe(true);
    expect(target.manager.anonymousInboundLinks).toBe(2);
  });

  it("close() ends a dial still waiting for TLS at once (its socket destroyed emits no error), rejected manager-closed", async () => {
    // A peer that accepts TCP and never speaks TLS.
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const dialer = await createConnectionManager({ identity: generateEd25519KeyPair(), tlsCredentials: credentials, link: { handshakeTimeoutMs: 60_000 } });
      const dial = dialer.getLink({ identity: generateEd25519KeyPair().publicKey, host: "127.0.0.1", port: (silent.address() as AddressInfo).port });
      const outcome = dial.then(
        () => "linked",
        (e: unknown) => (e as LinkError).kind,
      );
      await new Promise((r) => setTimeout(r, 100)); // the TCP connection is up, TLS waits
      await dialer.close(); // within the test's timeout, far below the 60 s handshake deadline
      expect(await outcome).toBe("manager-closed");
    } finally {
      silent.close();
    }
  }, 15_000);

  it("anonymous links have their own smaller cap; node links and our own dials still get through", async () => {
    const target = await node({ maxLinks: 6, inbound: { maxAnonymous: 2, outboundReserve: 2 } });
    const clients = await Promise.all([0, 1, 2].map(() => client()));
    await clients[0]!.getLink(target.address);
    await clients[1]!.getLink(target.address);
    // The class is known only once the handshake ends: the third client's link opens, then closes with LINK_CAP.
    const third = await clients[2]!.getLink(target.address);
    expect((await third.closed).reasonName).toBe("LINK_CAP");
    expect(target.manager.stats.refusals.anonymous).toBe(1);
    expect(target.manager.anonymousInboundLinks).toBe(2);
    const nodes = await Promise.all([0, 1, 2].map(() => node()));
    await nodes[0]!.manager.getLink(target.address);
    await nodes[1]!.manager.getLink(target.address);
    // 4 inbound links: the inbound side (6 less a reserve of 2) is full...
    expect((await refusal(nodes[2]!.manager.getLink(target.address))).kind).toBe("link-cap");
    await until(() => target.manager.stats.refusals.links === 1, "the inbound cap refusal to be counted");
    // ...and the reserve still lets this node dial out.
    expect((await target.manager.getLink(nodes[2]!.address)).isOpen).toBe(true);
  });

  it("rejects inconsistent budgets with config errors naming the option", async () => {
    const make = (options: ConnectionManagerOptions) =>
      createConnectionManager({ identity: generateEd25519KeyPair(), tlsCredentials: credentials, ...options });
    await expect(make({ maxLinks: 10, inbound: { outboundReserve: 10 } })).rejects.toThrow(/outboundReserve/);
    await expect(make({ maxLinks: 10, inbound: { outboundReserve: 2, maxAnonymous: 9 } })).rejects.toThrow(/maxAnonymous/);
    await expect(make({ inbound: { maxPerAddress: 10, maxPerPrefix: 5 } })).rejects.toThrow(/maxPerPrefix/);
    await expect(make({ inbound: { handshakeTimeoutMs: 0 } })).rejects.toThrow(expect.objectContaining({ kind: "config" }));
    await expect(make({ inbound: { maxLinks: 3 } as never })).rejects.toThrow(/not a limit/);
  });
});

describe("source keys", () => {
  it("count IPv4-mapped addresses as IPv4, group /24 and /48 prefixes, exempt loopback only when asked", () => {
    expect(sourceKeys("::ffff:10.1.2.3")).toEqual({ address: "10.1.2.3", prefix: "10.1.2.0/24" });
    expect(sourceKeys("2001:db8:aa::1").prefix).toBe("2001:db8:aa::/48");
    expect(sourceKeys("2001:0db8:00aa:1::1").prefix).toBe("2001:db8:aa::/48");
    expect(sourceKeys("::1").prefix).toBe("0:0:0::/48");
    const counts = new SourceCounts({ maxPerAddress: 1, maxPerPrefix: 2, exemptLoopback: true });
    counts.add(sourceKeys("10.1.2.3"));
    expect(counts.wouldBreak(sourceKeys("10.1.2.3"))).toBe("per-address");
    counts.add(sourceKeys("10.1.2.4"));
    expect(counts.wouldBreak(sourceKeys("10.1.2.5"))).toBe("per-prefix");
    expect(counts.wouldBreak(sourceKeys("10.1.3.5"))).toBeUndefined();
    counts.add(sourceKeys("127.0.0.1"));
    expect(counts.wouldBreak(sourceKeys("127.0.0.1"))).toBeUndefined();
    counts.remove(sourceKeys("10.1.2.3"));
    expect(counts.wouldBreak(sourceKeys("10.1.2.3"))).toBeUndefined();
  });
});

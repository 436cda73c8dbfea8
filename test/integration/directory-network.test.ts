/**
 * The discovery service over real TLS links on loopback: three discovery
 * nodes and four onion nodes, each with its own connection manager and link
 * RPC, in one process, with 2-second voting periods. Checks that a consensus
 * forms and verifies, that forged and unregistered descriptors stay out,
 * that a node that leaves drops out, that two of three discovery nodes still
 * reach a consensus, that a non-discovery node proxies the consensus, that
 * bad documents are refused, and that the consensus file survives a restart.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { x25519PublicKey } from "../../node/src/crypto/x25519.js";
import { createConnectionManager } from "../../node/src/link/manager.js";
import type { ConnectionManager, PeerAddress } from "../../node/src/link/manager.js";
import { createLinkRpc } from "../../node/src/link/rpc.js";
import type { LinkRpc } from "../../node/src/link/rpc.js";
import { Registry } from "prom-client";
import { registerDirectoryMetrics } from "../../node/src/directory/api.js";
import { ConsensusClient, serveConsensus } from "../../node/src/directory/client.js";
import { encodeAddress } from "../../node/src/directory/address.js";
import { ChainRole, NodeFlag, bytesToHexFast, discoveryTrustFromKeys } from "../../node/src/directory/config.js";
import { InternalDirectory, fetchInternalView } from "../../node/src/directory/internal.js";
import { assembleConsensus, encodeConsensusBody, signConsensus } from "../../node/src/directory/consensus.js";
import type { VerifiedConsensus } from "../../node/src/directory/consensus.js";
import { createDescriptor } from "../../node/src/directory/descriptor.js";
import { DirectoryError } from "../../node/src/directory/errors.js";
import { startDescriptorPublisher } from "../../node/src/directory/publisher.js";
import type { DescriptorPublisher } from "../../node/src/directory/publisher.js";
import { startDiscoveryService } from "../../node/src/directory/service.js";
import type { DiscoveryService } from "../../node/src/directory/service.js";
import { directoryRequest } from "../../node/src/directory/transport.js";
import { waitFor } from "../helpers/index.js";

const schedule = { periodMs: 2000, voteDelayMs: 600, distDelayMs: 600, validPeriods: 3 };
const secret = (label: string): Uint8Array => sha256(new TextEncoder().encode(`directory-network/${label}`));
const hex = bytesToHexFast;
const dir = mkdtempSync(join(tmpdir(), "psp-directory-net-"));

interface Host {
  secretKey: Uint8Array;
  identity: Uint8Array;
  manager: ConnectionManager;
  rpc: LinkRpc;
  address: PeerAddress;
}

async function startHost(label: string): Promise<Host> {
  const secretKey = secret(label);
  const identity = ed25519PublicKey(secretKey);
  const manager = await createConnectionManager({ identity: { secretKey, publicKey: identity }, listen: { host: "127.0.0.1", port: 0 } });
  const rpc = createLinkRpc({ manager });
  return { secretKey, identity, manager, rpc, address: { identity, host: "127.0.0.1", port: manager.address()!.port } };
}

async function stopHost(host: Host): Promise<void> {
  host.rpc.close();
  await host.manager.close();
}

const chain = new Map<string, number>();
const discovery: { host: Host; service: DiscoveryService }[] = [];
const onion: { host: Host; publisher: DescriptorPublisher; client: ConsensusClient }[] = [];
const unregistered = secret("unregistered");
let trust: ReturnType<typeof discoveryTrustFromKeys>;
let clientHost: { manager: ConnectionManager; rpc: LinkRpc };

function descriptorFields(host: Host, index: number) {
  return {
    onionKey: x25519PublicKey(secret(`onion-key-${index}`)),
    addresses: [{ host: "127.0.0.1", port: host.address.port }],
    roles: ChainRole.onion,
    bridge: false,
    bandwidth: 200_000 + index,
    country: "DE",
    version: "psp/0.1.0",
    // Node 3 is internal (issue 20): listed without an address; nodes learn it from the node-only view.
    ...(index === 3 ? { internal: true } : {}),
  };
}

const listed = (c: VerifiedConsensus | undefined, identity: Uint8Array): boolean => !!c?.entries.some((e) => hex(e.identity) === hex(identity));

beforeAll(async () => {
  const hosts = await Promise.all([0, 1, 2].map((i) => startHost(`discovery-${i}`)));
  for (const h of hosts) chain.set(hex(h.identity), ChainRole.discovery);
  const discoverySet = hosts.map((h) => h.identity);
  trust = discoveryTrustFromKeys(discoverySet);
  const onionHosts = await Promise.all([0, 1, 2, 3].map((i) => startHost(`onion-${i}`)));
  for (const h of onionHosts) chain.set(hex(h.identity), ChainRole.onion);
  for (const host of hosts) {
    const service = startDiscoveryService({
      rpc: host.rpc,
      manager: host.manager,
      secretKey: host.secretKey,
      discoverySet,
      chainRoles: (id) => chain.get(hex(id)),
      schedule,
      peers: hosts.map((h) => h.address),
      reachability: { leadMs: 400, timeoutMs: 350 },
    });
    discovery.push({ host, service });
  }
  onionHosts.forEach((host, i) => {
    const client = new ConsensusClient({ rpc: host.rpc, trust, sources: () => discovery.map((d) => d.host.address), role: "cache", retryMs: 500, file: join(dir, `onion-${i}.consensus`) });
    serveConsensus(host.rpc, client);
    void client.start();
    const publisher = startDescriptorPublisher({ rpc: host.rpc, secretKey: host.secretKey, descriptor: () => descriptorFields(host, i), discovery: discovery.map((d) => d.host.address), intervalMs: 1000 });
    onion.push({ host, publisher, client });
  });
  const manager = await createConnectionManager({});
  clientHost = { manager, rpc: createLinkRpc({ manager }) };
}, 30_000);

afterAll(async () => {
  for (const o of onion) {
    o.publisher.stop();
    o.client.stop();
  }
  for (const d of discovery) d.service.stop();
  await Promise.all([...discovery.map((d) => stopHost(d.host)), ...onion.map((o) => stopHost(o.host))]);
  clientHost.rpc.close();
  await clientHost.manager.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("discovery service over links", () => {
  it("forms a consensus of every onion node that clients verify; forged and unregistered descriptors stay out", async () => {
    const first = await Promise.all(discovery.map((d) => new Promise<VerifiedConsensus>((resolve) => d.service.once("first-consensus", resolve))));
    expect(first.every((c) => c.signers.length >= 2)).toBe(true);

    // A forged descriptor (signature bit flipped) and an unregistered node are refused with their kinds.
    const forged = createDescriptor({ ...descriptorFields(onion[0]!.host, 9), publishedAt: Date.now(), secretKey: secret("onion-1") });
    forged[forged.length - 5]! ^= 1;
    await expect(directoryRequest(onion[0]!.host.rpc, discovery[0]!.host.address, { type: "publish-descriptor", descriptor: forged })).rejects.toMatchObject({ kind: "bad-signature" });
    const stranger = createDescriptor({ ...descriptorFields(onion[0]!.host, 8), publishedAt: Date.now(), secretKey: unregistered });
    await expect(directoryRequest(onion[0]!.host.rpc, discovery[1]!.host.address, { type: "publish-descriptor", descriptor: stranger })).rejects.toMatchObject({ kind: "not-registered" });
    expect(discovery[0]!.service.stats.descriptorsRejected["bad-signature"]).toBeGreaterThanOrEqual(1);
    const registry = new Registry();
    registerDirectoryMetrics(registry, { service: discovery[0]!.service });
    expect(await registry.metrics()).toMatch(/psp_directory_descriptors_rejected_total\{reason="bad-signature"\} 1/);

    const full = await waitFor("a consensus listing all four onion nodes", () => {
      const c = discovery[0]!.service.current();
      return c && onion.every((o) => listed(c, o.host.identity)) ? c : undefined;
    });
    expect(full.entries).toHaveLength(4);
    expect(listed(full, ed25519PublicKey(unregistered))).toBe(false);
    const onion1 = full.entries.find((e) => hex(e.identity) === hex(onion[1]!.host.identity))!;
    expect(hex(onion1.onionKey)).toBe(hex(x25519PublicKey(secret("onion-key-1")))); // the forged one (onion key 9) never entered

    // A client that knows only the discovery nodes fetches (brotli) and verifies K-of-N.
    // Periods are 2 s here and a discovery node may still serve the previous one: refresh until the
    // client holds a consensus at least as new as `full` (under load that can take a period).
    const client = new ConsensusClient({ rpc: clientHost.rpc, trust, sources: discovery.map((d) => d.host.address) });
    let fetched: VerifiedConsensus | undefined;
    const deadline = Date.now() + 15_000;
    while (!fetched || fetched.validAfter < full.validAfter) {
      if (Date.now() > deadline) throw new Error("timed out waiting for the client to fetch a consensus as new as the full one");
      fetched = (await client.refresh().catch(() => undefined)) ?? fetched;
      if (!fetched || fetched.validAfter < full.validAfter) await new Promise((r) => setTimeout(r, 200));
    }
    expect(fetched.signers.length).toBeGreaterThanOrEqual(2);
    expect(onion.every((o) => listed(fetched, o.host.identity))).toBe(true);
    expect(client.pathNodes().map((n) => n.identity).map(hex).sort()).toEqual(fetched.entries.map((e) => hex(e.identity)).sort());
  }, 30_000);

  it("a node that is not a discovery node serves the consensus it cached", async () => {
    const proxy = onion[2]!;
    const cached = await waitFor("the onion node's cache", () => proxy.client.current());
    const client = new ConsensusClient({ rpc: clientHost.rpc, trust, sources: [proxy.host.address], useConsensusNodes: false });
    expect((await client.fetchFrom(proxy.host.address)) === "accepted").toBe(true);
    expect(client.current()!.validAfter).toBeGreaterThanOrEqual(cached.validAfter - schedule.periodMs);
    // Asked again with the digest of what it holds: not modified.
    if (hex(client.current()!.digest) === hex(proxy.client.current()!.digest) && client.current()!.signers.length === proxy.client.current()!.signers.length) {
      expect(await client.fetchFrom(proxy.host.address)).toBe("not-modified");
    }
    // A non-discovery node refuses discovery-only requests.
    await expect(directoryRequest(clientHost.rpc, proxy.host.address, { type: "fetch-votes", validAfter: 0 })).rejects.toMatchObject({ kind: "not-served" });
  }, 20_000);

  it("an internal node: no address in what clients fetch; the node-only view goes to listed nodes, never to anonymous or unlisted ones", async () => {
    const internal = onion[3]!.host;
    const held = await waitFor("a consensus listing the internal node", () => {
      const c = discovery[0]!.service.current();
      return c && listed(c, internal.identity) ? c : undefined;
    });
    const entry = held.entries.find((e) => hex(e.identity) === hex(internal.identity))!;
    expect(entry.flags & NodeFlag.internal).toBe(NodeFlag.internal);
    expect(entry.flags & NodeFlag.guard).toBe(0);
    expect(entry.encodedAddresses).toEqual([]);
    // A client fetches the consensus over an anonymous link: its address appears nowhere in the document.
    const client = new ConsensusClient({ rpc: clientHost.rpc, trust, sources: [discovery[0]!.host.address], useConsensusNodes: false });
    const fetched = (await client.refresh())!;
    expect(fetched.entries.find((e) => hex(e.identity) === hex(internal.identity))?.encodedAddresses).toEqual([]);
    const address = encodeAddress({ host: "127.0.0.1", port: internal.address.port });
    expect(Buffer.from(fetched.bytes).indexOf(Buffer.from(address))).toBe(-1);
    expect(client.pathNodes().find((n) => hex(n.identity) === hex(internal.identity))).toMatchObject({ host: "", port: 0 });

    // The view: refused to the anonymous client link and to a node identity the consensus does not list.
    await expect(fetchInternalView(clientHost.rpc, discovery[0]!.host.address)).rejects.toMatchObject({ kind: "unauthorized" });
    const stranger = await startHost("unlisted");
    await expect(fetchInternalView(stranger.rpc, discovery[1]!.host.address)).rejects.toMatchObject({ kind: "unauthorized" });
    await stopHost(stranger);
    // A listed node gets it, verifies it against its consensus and learns where the internal node listens.
    const asker = onion[0]!;
    const consensus = await waitFor("the asking node's consensus listing the internal node", () => {
      const c = asker.client.current();
      return c && listed(c, internal.identity) ? c : undefined;
    });
    const view = await fetchInternalView(asker.host.rpc, discovery[0]!.host.address);
    const known = new InternalDirectory();
    expect(known.offer(consensus, view.descriptors, Date.now())).toEqual({ accepted: 1, rejected: {} });
    expect(known.addressesOf(internal.identity)).toEqual([{ host: "127.0.0.1", port: internal.address.port }]);
    expect(known.addressesOf(onion[1]!.host.identity)).toBeUndefined();
  }, 20_000);

  it("refuses a self-signed partial consensus, expired, future-dated and under-signed documents", async () => {
    const client = new ConsensusClient({ rpc: clientHost.rpc, trust, sources: [] });
    const good = discovery[0]!.service.current()!;
    client.offer(good.bytes);
    const keys = discovery.map((d) => d.host.secretKey);
    const body = (va: number, entries: VerifiedConsensus["entries"]) =>
      encodeConsensusBody({ validAfter: va, freshUntil: va + schedule.periodMs, validUntil: va + 3 * schedule.periodMs, discoverySetSize: 3, voters: [discovery[0]!.host.identity], entries });
    const signed = (bytes: Uint8Array, signers: Uint8Array[]) => assembleConsensus(bytes, signers.map((k) => signConsensus(bytes, k)));

    // Discovery node 0 alone signs a newer consensus listing only "its own" node, served by a rogue host.
    const rogue = await startHost("rogue");
    const ownOnly = signed(body(good.validAfter + schedule.periodMs, good.entries.slice(0, 1)), [keys[0]!]);
    serveConsensus(rogue.rpc, { serve: () => ownOnly, serveCompressed: () => undefined });
    await expect(client.fetchFrom(rogue.address)).rejects.toMatchObject({ kind: "under-signed" });
    await stopHost(rogue);

    const now = Date.now();
    const expired = signed(body(now - 10 * schedule.periodMs, good.entries), keys);
    const future = signed(body(now + 10 * schedule.periodMs, good.entries), keys);
    for (const [bytes, kind] of [[expired, "expired"], [future, "future-dated"]] as const) {
      const err = (() => {
        try {
          client.offer(bytes);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(DirectoryError);
      expect((err as DirectoryError).kind).toBe(kind);
    }
    expect(hex(client.current()!.digest)).toBe(hex(good.digest)); // the good one is still held
  }, 20_000);

  it("a node that leaves drops out after the next period", async () => {
    const leaving = onion.pop()!;
    leaving.publisher.stop();
    leaving.client.stop();
    await stopHost(leaving.host);
    const leftAt = Date.now();
    const without = await waitFor(
      "a consensus without the node that left",
      () => {
        const c = discovery[0]!.service.current();
        return c && c.validAfter > leftAt && !listed(c, leaving.host.identity) ? c : undefined;
      },
      4 * schedule.periodMs + 2000,
    );
    expect(onion.every((o) => listed(without, o.host.identity))).toBe(true);
  }, 20_000);

  it("with one discovery node down, the other two still reach a consensus", async () => {
    const down = discovery.pop()!;
    down.service.stop();
    await stopHost(down.host);
    const downAt = Date.now();
    const next = await waitFor(
      "a consensus signed by the remaining two",
      () => {
        const c = discovery[0]!.service.current();
        return c && c.validAfter > downAt + schedule.periodMs ? c : undefined;
      },
      4 * schedule.periodMs + 2000,
    );
    expect(next.signers.map(hex).sort()).toEqual(discovery.map((d) => hex(d.host.identity)).sort());
    expect(next.voters).toHaveLength(2);
    expect(onion.every((o) => listed(next, o.host.identity))).toBe(true);
    // Onion nodes' caches pick it up from the discovery nodes still up.
    await waitFor("an onion cache holding it", () => onion[0]!.client.current()!.validAfter >= next.validAfter, 4 * schedule.periodMs);
  }, 20_000);

  it("the on-disk consensus survives a restart; a corrupted file is ignored", async () => {
    const file = join(dir, "onion-0.consensus");
    const held = onion[0]!.client.current()!;
    const restarted = new ConsensusClient({ rpc: clientHost.rpc, trust, sources: [], file });
    const result = restarted.load();
    expect(result.loaded).toBe(true);
    expect(restarted.current()!.validAfter).toBeGreaterThanOrEqual(held.validAfter - schedule.periodMs);

    const corrupt = join(dir, "corrupt.consensus");
    writeFileSync(corrupt, new Uint8Array([0xa1, 0x61, 0x62, 0xff]));
    const other = new ConsensusClient({ rpc: clientHost.rpc, trust, sources: [], file: corrupt });
    expect(other.load()).toMatchObject({ loaded: false, reason: "malformed" });
    expect(other.current()).toBeUndefined();
  });
});

/**
 * An internal node with outbound links only (issue 20), on real nodes in one
 * process over real TLS on loopback: three discovery nodes, two public onion
 * nodes and one node started with directory.internal.outboundLinks, which
 * opens no listener at all (nothing can connect to it). It keeps links to
 * its neighbours; the discovery nodes list it running (its link to them is
 * its reachability), with no address; the node-only view says it is reached
 * by its links; circuits pass through it as middle and last hop; a client
 * never picks it first; a neighbour that drops its link gets it back.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { NodeFlag } from "../../node/src/directory/config.js";
import { openDescriptor } from "../../node/src/directory/descriptor.js";
import { consensusToPathNodes } from "../../node/src/directory/path-nodes.js";
import { CloseReason } from "../../node/src/link/errors.js";
import { isInternalNode, selectPath } from "../../node/src/onion/path.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { startDirectoryNodes } from "../../scripts/lib/directory-nodes.js";
import { waiter } from "../helpers/index.js";

const dir = mkdtempSync(join(tmpdir(), "psp-outbound-"));
const secret = (label: string): Uint8Array => sha256(new TextEncoder().encode(`onion-internal-outbound/${label}`));
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const names = ["discovery-1", "discovery-2", "discovery-3", "onion-1", "onion-2", "outbound-1"];
const OUTBOUND = names.indexOf("outbound-1");
const nodes: RunningNode[] = [];
const hostOf = (i: number): string => `127.${i + 11}.0.1`;
const outboundId = hexOf(ed25519PublicKey(secret("outbound-1")));
const byName = (name: string): RunningNode => nodes[names.indexOf(name)]!;

const waitFor = waiter({ timeoutMs: 25_000, intervalMs: 100 });

beforeAll(async () => {
  nodes.push(
    ...(await startDirectoryNodes({
      names,
      hostOf,
      secret,
      dataDir: dir,
      directory: (_, i) => (i === OUTBOUND ? { internal: { outboundLinks: { minRetryMs: 50, maxRetryMs: 400 } } } : {}),
    })),
  );
}, 30_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe("an internal node with outbound links only", () => {
  it("accepts no links: it has no listener, and every link it holds is one it dialed", async () => {
    const outbound = nodes[OUTBOUND]!;
    expect(outbound.manager.address()).toBeUndefined();
    expect(outbound.info.port).toBe(0);
    expect(outbound.pathNode).toMatchObject({ host: "", port: 0 });
    expect(isInternalNode(outbound.pathNode)).toBe(true);
    // Its neighbours: the three discovery nodes and the two public onion nodes.
    await waitFor("links held to all five neighbours", () => outbound.directory?.outbound?.stats.linksHeld === 5);
    const peers = outbound.manager.links().filter((l) => l.peerIdentity !== undefined);
    expect(peers.length).toBeGreaterThanOrEqual(5);
    expect(new Set(peers.map((l) => l.role))).toEqual(new Set(["initiator"]));
    // The neighbours hold the links it opened (their idle timers never close its only way in).
    for (const name of ["discovery-1", "onion-1", "onion-2"]) {
      const link = byName(name).manager.findLink(ed25519PublicKey(secret("outbound-1")));
      expect(link?.role).toBe("responder");
      await waitFor(`${name} holding the link`, () => (link?.holderCount ?? 0) > 0);
    }
  }, 30_000);

  it("is listed running and internal with no address; the node-only view says it is reached by its links", async () => {
    const onion = byName("onion-1");
    const entry = await waitFor("onion-1's consensus listing the outbound-only node running", () =>
      onion.directory?.current()?.entries.find((e) => hexOf(e.identity) === outboundId && (e.flags & NodeFlag.running) !== 0),
    );
    expect(entry.flags & NodeFlag.internal).toBe(NodeFlag.internal);
    expect(entry.flags & NodeFlag.guard).toBe(0);
    expect(entry.encodedAddresses).toHaveLength(0);
    const key = ed25519PublicKey(secret("outbound-1"));
    await waitFor("onion-1 holding the outbound-only node's descriptor", () => onion.directory?.internalAddresses(key) !== undefined);
    expect(onion.directory!.internalAddresses(key)).toEqual([]);
    expect(onion.directory!.internal.isOutboundOnly(key)).toBe(true);
    // The served view carries its signed descriptor with no address in it.
    const view = onion.directory!.internal.internalView(Date.now())!;
    const descriptors = view.descriptors.map((d) => openDescriptor(d)).filter((d) => hexOf(d.identity) === outboundId);
    expect(descriptors).toHaveLength(1);
    expect(descriptors[0]).toMatchObject({ internal: true, addresses: [] });
    // The refresh is counted: a view was fetched for the held consensus. A consensus comes every 2 s here, and the view
    // is stale from its adoption until the refresh that follows it: poll, so a loaded machine's wider gap is no failure.
    const metrics = () => fetch(`${onion.info.controlApi}/metrics`).then((r) => r.text());
    await expect.poll(metrics, { timeout: 20_000, interval: 200 }).toMatch(/^psp_directory_internal_view_stale 0$/m);
    expect(await metrics()).toMatch(/^psp_directory_internal_view_fetches_total [1-9]/m);
    const own = await (await fetch(`${nodes[OUTBOUND]!.info.controlApi}/metrics`)).text();
    expect(own).toMatch(/^psp_directory_outbound_links\{state="held"\} 5$/m);
  }, 30_000);

  it("carries circuits as middle and last hop; a client never picks it first nor after another internal node", async () => {
    const onion = byName("onion-1");
    await waitFor(
      "onion-1's consensus listing all six nodes running",
      () => onion.directory?.current()?.entries.filter((e) => e.flags & NodeFlag.running).length === 6,
    );
    const held = onion.directory!.current()!;
    const pathNodes = consensusToPathNodes(held);
    const internal = pathNodes.find((n) => hexOf(n.identity) === outboundId)!;
    expect(internal).toMatchObject({ host: "", port: 0 });
    const node = (name: string) => pathNodes.find((n) => hexOf(n.identity) === byName(name).info.identity)!;
    const client = await onion.createOnionClient();
    try {
      for (const path of [
        [node("discovery-1"), internal, node("onion-2")],
        [node("discovery-2"), node("onion-2"), internal],
        [node("onion-2"), internal],
      ]) {
        const circuit = await client.buildCircuit({ path });
        const stream = await circuit.openStream("echo");
        await stream.send(new TextEncoder().encode("over links it opened"));
        expect(new TextDecoder().decode(await stream.receive())).toBe("over links it opened");
        circuit.close();
      }
      await expect(client.buildCircuit({ path: [internal, node("onion-2")] })).rejects.toMatchObject({ kind: "bad-argument" });
      for (let i = 0; i < 50; i++) {
        const path = selectPath(pathNodes, { length: 3 });
        expect(isInternalNode(path[0]!)).toBe(false);
        for (let h = 1; h < path.length; h++) if (isInternalNode(path[h]!)) expect(isInternalNode(path[h - 1]!)).toBe(false);
      }
      // Drawn paths use it too: some circuit of the node's own client passes it.
      const drawn = await waitFor("a drawn 3-hop path through it", () => {
        const path = selectPath(pathNodes, { length: 3 });
        return path.some((n) => hexOf(n.identity) === outboundId) ? path : undefined;
      });
      const circuit = await client.buildCircuit({ path: drawn });
      const stream = await circuit.openStream("echo");
      await stream.send(Uint8Array.of(1, 2, 3));
      expect([...(await stream.receive())]).toEqual([1, 2, 3]);
      circuit.close();
    } finally {
      await client.close();
    }
  }, 30_000);

  it("redials a neighbour that dropped its link (backoff), and is reached over the new link", async () => {
    const outbound = nodes[OUTBOUND]!;
    const key = ed25519PublicKey(secret("outbound-1"));
    const onion2 = byName("onion-2");
    const before = outbound.directory!.outbound!.stats.linksDropped;
    const old = onion2.manager.findLink(key)!;
    await old.close(CloseReason.SHUTDOWN, "test: the neighbour drops the link");
    await waitFor("the link dropped and dialed again", () => {
      const stats = outbound.directory!.outbound!.stats;
      const again = onion2.manager.findLink(key);
      return stats.linksDropped > before && stats.linksHeld === 5 && again !== undefined && again !== old;
    });
    const pathNodes = consensusToPathNodes(onion2.directory!.current()!);
    const internal = pathNodes.find((n) => hexOf(n.identity) === outboundId)!;
    const entry = pathNodes.find((n) => hexOf(n.identity) === onion2.info.identity)!;
    const client = await byName("onion-1").createOnionClient();
    try {
      const circuit = await client.buildCircuit({ path: [entry, internal] });
      const stream = await circuit.openStream("echo");
      await stream.send(Uint8Array.of(9));
      expect([...(await stream.receive())]).toEqual([9]);
      circuit.close();
    } finally {
      await client.close();
    }
  }, 30_000);
});

import { describe, expect, it } from "vitest";
import { createDhtIdentity } from "../../../node/src/dht/identity.js";
import { MemoryNetwork } from "../../../node/src/dht/memory-transport.js";
import { DhtNode } from "../../../node/src/dht/node.js";
import { MemoryRecordStore } from "../../../node/src/dht/store.js";

const config = { staticDifficulty: 2, dynamicDifficulty: 2, bucketSize: 1, siblings: 1 };

function makeNode(network: MemoryNetwork, name: string): DhtNode {
  const node = new DhtNode({
    identity: createDhtIdentity({ address: name, staticDifficulty: 2, dynamicDifficulty: 2 }),
    transport: network.transport,
    store: new MemoryRecordStore(),
    config,
  });
  network.attach(name, (r) => node.handleRequest(r));
  return node;
}

describe("DhtNode ping-before-replace", () => {
  it("keeps a live old contact and replaces a dead one, only after pinging it", async () => {
    const network = new MemoryNetwork();
    const local = makeNode(network, "local");
    // Find two peers that fall in the same bucket of `local` (bucket size 1).
    const peers: DhtNode[] = [];
    while (peers.length < 2) {
      const p = makeNode(network, `peer-${peers.length}-${Math.random()}`);
      if (peers.length === 0 || local.table.bucketIndex(p.nodeId) === local.table.bucketIndex(peers[0]!.nodeId)) peers.push(p);
    }
    const [old, fresh] = peers as [DhtNode, DhtNode];
    const bucket = local.table.bucketIndex(old.nodeId);
    await old.ping(local.contact); // signed request: `old` enters local's table
    expect(local.table.bucketContents(bucket).map((c) => c.address)).toEqual([old.contact.address]);

    await fresh.ping(local.contact); // bucket full: local pings `old`, which answers
    await local.settled();
    expect(local.table.bucketContents(bucket).map((c) => c.address)).toEqual([old.contact.address]);

    network.setOnline(old.contact.address, false);
    const delivered = network.delivered;
    await fresh.ping(local.contact); // now the ping of `old` fails and `fresh` takes its place
    await local.settled();
    expect(network.delivered).toBe(delivered + 1); // the failed ping never reached `old`
    expect(local.table.bucketContents(bucket).map((c) => c.address)).toEqual([fresh.contact.address]);
  });
});

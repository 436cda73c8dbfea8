/**
 * Presence, introduction, rendezvous and private channels on a real devnet
 * (chain, contracts, eleven `psp node run` processes, 2-second voting
 * periods), between two registered demo users, each a createPspClient.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPspClient } from "../../node/src/client/client.js";
import type { PspClient } from "../../node/src/client/client.js";
import type { PresenceChannel } from "../../node/src/presence/channel.js";
import { startDevnet, waitForConsensusListing, DEVNET_PASSPHRASE, type Devnet } from "../../scripts/lib/devnet.js";
import { TEST_DEVNET_SCHEDULE } from "../helpers/devnet.js";

let root: string;
let devnet: Devnet;
let alice: PspClient;
let carol: PspClient;

async function client(name: string): Promise<PspClient> {
  const user = devnet.state.demo.users.find((u) => u.name === name)!;
  const c = await createPspClient({
    bootstrap: { devnet: join(root, "devnet", "state.json") },
    identity: { keyFile: user.keyFile, passphrase: DEVNET_PASSPHRASE },
  });
  await c.ready;
  return c;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "psp-presence-"));
  devnet = await startDevnet({
    port: 0,
    apiPort: 0,
    dir: join(root, "devnet"),
    deploymentFile: join(root, "deployment.json"),
    schedule: TEST_DEVNET_SCHEDULE,
  });
  await devnet.firstConsensus;
  await waitForConsensusListing(devnet.state.nodes, devnet.state.nodes.length, 240_000);
  [alice, carol] = await Promise.all([client("alice"), client("carol")]);
}, 300_000);

afterAll(async () => {
  await Promise.all([alice?.close(), carol?.close()]);
  await devnet?.stop();
  await rm(root, { recursive: true, force: true });
});

describe("presence and private messaging", () => {
  it("two users find each other through presence and exchange messages both ways over rendezvous", async () => {
    const points = await alice.presence.announce();
    expect(points.filter((p) => p.state === "up").length).toBeGreaterThanOrEqual(1);
    const accepted = new Promise<PresenceChannel>((resolve, reject) => {
      alice.once("introduction", (intro) => {
        expect(intro.from).toBe(carol.identity);
        intro.accept().then(resolve, reject);
      });
    });
    const found = await carol.lookup(alice.identity!);
    expect(found.length).toBeGreaterThanOrEqual(1);
    const toAlice = await carol.connect(alice.identity!);
    const atAlice = await accepted;
    const received = atAlice.messages()[Symbol.asyncIterator]();
    await toAlice.send("hello alice");
    expect((await received.next()).value?.text).toBe("hello alice");
    const back = toAlice.messages()[Symbol.asyncIterator]();
    await atAlice.send("hello carol");
    const reply = (await back.next()).value;
    expect(reply?.text).toBe("hello carol");
    expect(reply?.from).toBe(alice.identity);
    toAlice.close();
    await atAlice.closed;
  }, 120_000);
});

/**
 * Commercial nodes end to end on a real devnet (chain, contracts, eleven
 * `psp node run` processes, 2-second voting periods; cli-msg.test.ts's, run
 * last there since it removes the node from the consensus): demo.shop's owner
 * published onion-1 on chain with its signer's consent; onion-2 runs the same
 * plugin and claims the application in its descriptor without publication.
 * A client finds the application's node from the consensus only, reaches its
 * services through a 3-hop circuit (and a 1-hop one when asked), is refused
 * with typed reasons for another application, a malformed open and an
 * oversized request while the node keeps serving, never chooses onion-2, and
 * loses the node from the next consensus once the owner removes it on chain.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Hex } from "viem";
import { applicationId } from "../../node/src/chain/attestation.js";
import { connectChain } from "../../node/src/chain/clients.js";
import { removeCommercialNode } from "../../node/src/chain/commercial.js";
import { readDeployment } from "../../node/src/chain/deployment.js";
import { createPspClient } from "../../node/src/client/client.js";
import type { PspClient } from "../../node/src/client/client.js";
import { openCommercial } from "../../node/src/commercial/client.js";
import { CommercialError } from "../../node/src/commercial/errors.js";
import { COMMERCIAL_SERVICE, decodeOpenReply } from "../../node/src/commercial/messages.js";
import { NodeFlag } from "../../node/src/directory/config.js";
import { devAccount } from "../../scripts/lib/devnet-accounts.js";
import { DEMO_COMMERCIAL, runCommercialDemo } from "../../scripts/lib/devnet-commercial.js";
import { DEVNET_PASSPHRASE } from "../../scripts/lib/devnet.js";
import { kindOfAsync } from "../helpers/index.js";
import type { TestDevnet } from "../helpers/devnet.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const kind = (fn: () => Promise<unknown>) => kindOfAsync(fn, CommercialError);

/** Declares the suite; call last inside a file whose beforeAll started the devnet `devnet()` returns (it unpublishes demo.shop's node). */
export function describeCommercialDevnet(devnet: () => TestDevnet): void {
  describe("commercial nodes on the devnet", () => {
    let net: TestDevnet;
    let client: PspClient;
    let published: string;
    let claimsOnly: string;

    async function until(what: string, fn: () => boolean, timeoutMs = 90_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!fn()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }

    beforeAll(async () => {
      net = devnet();
      const nodeHex = (name: string) =>
        net.devnet.state.nodes
          .find((n) => n.name === name)!
          .nodeKey.slice(2)
          .toLowerCase();
      published = nodeHex("onion-1");
      claimsOnly = nodeHex("onion-2");
      client = await createPspClient({ bootstrap: { devnet: join(net.root, "devnet", "state.json") }, preemptiveCircuits: 1 });
      await client.ready;
    }, 360_000);

    afterAll(async () => {
      await client?.close();
    });

    it("lists the published node for the application, and never the node that only claims it", async () => {
      const app = client.app(DEMO_COMMERCIAL.namespace, DEMO_COMMERCIAL.application);
      await until("the consensus to list demo.shop's node", () => app.nodes().length > 0);
      expect(app.nodes()).toEqual([published]);
      const entries = client.consensus!.entries;
      const claimer = entries.find((e) => Buffer.from(e.identity).toString("hex") === claimsOnly);
      expect(claimer).toMatchObject({ flags: expect.any(Number) as number });
      expect(claimer!.flags & NodeFlag.commercial).toBe(0);
      expect(claimer!.apps).toBeUndefined();
    });

    it("reaches the service through a 3-hop circuit, and directly when asked", async () => {
      const app = client.app(DEMO_COMMERCIAL.namespace, DEMO_COMMERCIAL.application);
      for (let i = 0; i < 4; i++) {
        const kv = await app.connect("kv");
        expect(Buffer.from(kv.node).toString("hex")).toBe(published);
        await kv.request(utf8(JSON.stringify({ op: "put", key: `k${i}`, value: `v${i}` })));
        expect(JSON.parse(text(await kv.request(utf8(JSON.stringify({ op: "get", key: `k${i}` })))))).toEqual({ ok: true, value: `v${i}` });
        kv.close();
      }
      // What `npm start` shows (scripts/lib/devnet-demo.ts): the same step, as the demo runs it.
      const lines: string[] = [];
      const shown = await runCommercialDemo(client, (line) => lines.push(line));
      expect([shown.value, shown.node, shown.hops]).toEqual(["hello from carol", published, 3]);
      expect(lines.join("\n")).toMatch(/demo\.shop: the consensus lists 1 commercial node .* 3-hop circuit/);
      const echo = await app.connect("echo", { direct: true });
      expect(text(await echo.request(utf8("direct")))).toBe("direct");
      echo.close();
    });

    it("refuses another application, a malformed open and an oversized request with typed reasons, and keeps serving", async () => {
      expect(await kind(() => client.app("demo", "other").connect("kv"))).toBe("no-nodes");
      // At the node itself: a stream asking it for an application it does not serve.
      const circuit = await client.circuit({ lastHop: published });
      const other = Uint8Array.from(Buffer.from(applicationId("demo", "other").slice(2), "hex"));
      const stream = await circuit.openStream(COMMERCIAL_SERVICE);
      expect(await kind(() => openCommercial(stream, { appId: other, service: "kv", node: Uint8Array.from(Buffer.from(published, "hex")) }))).toBe(
        "unknown-application",
      );
      const raw = await circuit.openStream(COMMERCIAL_SERVICE);
      await raw.send(utf8("\xff\xff not an open message"));
      expect(decodeOpenReply(await raw.receive())).toMatchObject({ t: "refused", kind: "malformed" });
      circuit.close();

      const kv = await client.app(DEMO_COMMERCIAL.namespace, DEMO_COMMERCIAL.application).connect("kv");
      expect(await kind(() => kv.request(new Uint8Array(kv.maxMessageBytes + 1)))).toBe("too-large");
      expect(await kind(() => kv.request(utf8("{nope")))).toBe("refused");
      expect(JSON.parse(text(await kv.request(utf8(JSON.stringify({ op: "get", key: "k0" })))))).toEqual({ ok: true, value: "v0" });
      kv.close();
    });

    it("presents the user's certificate when a service asks for an identity, and the node checks it is one of the application's", async () => {
      const alice = net.user("alice");
      const user = await createPspClient({
        bootstrap: { devnet: join(net.root, "devnet", "state.json") },
        identity: { keyFile: alice.keyFile, passphrase: DEVNET_PASSPHRASE },
        preemptiveCircuits: 1,
      });
      try {
        await user.ready;
        const app = user.app(DEMO_COMMERCIAL.namespace, DEMO_COMMERCIAL.application);
        await until("the user's consensus to list demo.shop's node", () => app.nodes().length > 0);
        // Told not to: the node asks for an identity.
        expect(await kind(() => app.connect("counter", { identity: false }))).toBe("needs-identity");
        // By default the client answers with its certificate; alice is a peerstream.client identity, not demo.shop's.
        expect(await kind(() => app.connect("counter"))).toBe("bad-certificate");
        // Services without an identity requirement never see the certificate.
        const echo = await app.connect("echo");
        expect(text(await echo.request(utf8("anonymous")))).toBe("anonymous");
        echo.close();
      } finally {
        await user.close();
      }
    });

    it("drops the node from the next consensus and from clients' choices once the owner removes it on chain", async () => {
      const deployment = await readDeployment(join(net.root, "deployment.json"));
      const owner = await connectChain({ rpcUrl: net.devnet.state.rpcUrl, account: devAccount(0) });
      await removeCommercialNode({
        clients: owner,
        deployment,
        appId: applicationId(DEMO_COMMERCIAL.namespace, DEMO_COMMERCIAL.application) as Hex,
        nodeKey: `0x${published}`,
      });
      const app = client.app(DEMO_COMMERCIAL.namespace, DEMO_COMMERCIAL.application);
      await until("a consensus without demo.shop's node", () => app.nodes().length === 0);
      const entry = client.consensus!.entries.find((e) => Buffer.from(e.identity).toString("hex") === published);
      // Still a relay, no longer the application's.
      expect(entry).toMatchObject({ flags: expect.any(Number) as number });
      expect(entry!.flags & NodeFlag.commercial).toBe(0);
      expect(await kind(() => app.connect("kv"))).toBe("no-nodes");
    });
  });
}

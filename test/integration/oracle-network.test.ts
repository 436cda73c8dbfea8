/**
 * Oracle nodes on a real devnet (Hardhat chain, contracts, eleven
 * `psp node run` processes, two of them oracles running oracle/ through the
 * CLI's composition): a subscribed identity gets a linkable receipt through
 * a 3-hop circuit, an unsubscribed one is refused "not-subscribed"; the
 * oracle commits the receipt in a Merkle batch and `verifyReceipt` holds on
 * chain; a landing node's verifier accepts it, and refuses it once the
 * committing oracle revokes it; a blind receipt verifies against the key the
 * oracle published on chain; a session id comes for a solved puzzle; the
 * other oracle holds the replicated row (receipt id → identity); and the
 * issuance stores still hold the rows after the processes exit. The demo
 * stream `npm start` runs is created and played on the same devnet, whose
 * node processes check its receipt and session ids against the chain.
 * The `psp stream` suite (test/suites/cli-stream.ts) runs first on the same devnet.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytesToHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { createPspClient, type PspClient } from "../../node/src/client/client.js";
import { connectChain } from "../../node/src/chain/clients.js";
import { oracleReceiptsAbi } from "../../node/src/chain/generated/abis.js";
import { readDeployment, type Deployment } from "../../node/src/chain/deployment.js";
import { transact } from "../../node/src/chain/transact.js";
import { OracleError } from "../../node/src/stream/oracle-errors.js";
import { receiptChainView } from "../../node/src/stream/oracle-chain.js";
import { StreamError } from "../../node/src/stream/errors.js";
import { verifyReceiptAgainstChain, type LinkableReceipt, type ReceiptChainView, type ReceiptInclusion } from "../../node/src/stream/receipt.js";
import { verifySessionId } from "../../node/src/stream/session.js";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { OracleStore } from "../../oracle/store.js";
import { DEVNET_PASSPHRASE } from "../../scripts/lib/devnet.js";
import { ffmpegAvailable, startStreamDemo } from "../../scripts/lib/devnet-stream.js";
import { describeStreamCli } from "../suites/cli-stream.js";
import { startTestDevnet, type TestDevnet } from "../helpers/devnet.js";

let net: TestDevnet;
let deployment: Deployment;
let view: ReceiptChainView;
const clients: PspClient[] = [];
const nowSeconds = () => Math.floor(Date.now() / 1000);
const storeOf = (name: string) => join(net.root, "devnet", "nodes", name, "data", "oracle.sqlite");

async function clientFor(name: string): Promise<PspClient> {
  const user = net.user(name);
  const client = await createPspClient({
    bootstrap: { devnet: join(net.root, "devnet", "state.json") },
    identity: { keyFile: user.keyFile, passphrase: DEVNET_PASSPHRASE },
    preemptiveCircuits: 1,
  });
  clients.push(client);
  await client.ready;
  return client;
}

/** Retries `fn` while it throws a transient OracleError (the batch not landed yet, a busy circuit). */
async function eventually<T>(fn: () => Promise<T>, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline || !(err instanceof OracleError && err.category === "transient")) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

beforeAll(async () => {
  net = await startTestDevnet("oracle");
  deployment = await readDeployment(join(net.root, "deployment.json"));
  view = receiptChainView((await connectChain({ rpcUrl: net.devnet.chain.rpcUrl, expectedChainId: deployment.chainId })).publicClient, deployment);
}, 600_000);

afterAll(async () => {
  for (const c of clients) await c.close();
  await net?.stop();
}, 120_000);

// `psp stream` as users run it, on this devnet first (the last test below stops the nodes): one devnet start serves both.
describeStreamCli(() => net);

describe("oracle nodes on a devnet", () => {
  let alice: PspClient;
  let receipt: LinkableReceipt;
  let inclusion: ReceiptInclusion;

  it("a subscribed identity gets a linkable receipt through a circuit; an unsubscribed one is refused not-subscribed", async () => {
    alice = await clientFor("alice");
    expect(alice.oracle.oracles()).toHaveLength(2);
    const got = await eventually(() => alice.oracle.receipt());
    expect(got.mode).toBe("linkable");
    if (got.mode !== "linkable") return;
    receipt = got.receipt;
    const oracleKeys = await view.oracleKeys();
    expect(oracleKeys.some((k) => bytesToHex(k) === bytesToHex(receipt.oracle))).toBe(true);
    const carol = await clientFor("carol");
    const refusal = await eventually(() => carol.oracle.receipt()).catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(OracleError);
    expect((refusal as OracleError).kind).toBe("not-subscribed");
  }, 300_000);

  it("within the grace period a landing node's verifier accepts it before its batch lands", async () => {
    const ok = await verifyReceiptAgainstChain(receipt.bytes, { view, now: nowSeconds() });
    expect(ok.kind).toBe("linkable");
  }, 60_000);

  it("the batch lands on chain: the inclusion proof verifies with OracleReceipts.verifyReceipt", async () => {
    inclusion = await eventually(() => alice.oracle.inclusion(receipt), 180_000);
    expect(await view.verifyInclusion(inclusion, receipt.receiptHash)).toBe(true);
    // After the grace period only a committed receipt is accepted: with its proof it is.
    expect((await verifyReceiptAgainstChain(receipt.bytes, { view, now: nowSeconds() + 3000, inclusion, graceSeconds: 1 })).kind).toBe("linkable");
    await expect(verifyReceiptAgainstChain(receipt.bytes, { view, now: nowSeconds() + 3000, graceSeconds: 1 })).rejects.toMatchObject({ kind: "uncommitted" });
  }, 240_000);

  it("the other oracle holds the replicated row: receipt id → identity", async () => {
    const issuer = net.devnet.state.nodes.find((n) => n.nodeKey.toLowerCase() === bytesToHex(receipt.oracle))!;
    const other = net.devnet.state.nodes.find((n) => n.roles.includes("oracle") && n.name !== issuer.name)!;
    const rowId = Buffer.from(receipt.id).toString("hex");
    const deadline = Date.now() + 120_000;
    let row;
    while (Date.now() < deadline) {
      const store = new OracleStore(storeOf(other.name));
      row = store.get(rowId);
      store.close();
      if (row) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(row?.identity).toBe(net.user("alice").identity);
    expect(row?.oracle).toBe(bytesToHex(receipt.oracle).slice(2));
  }, 180_000);

  it("a blind receipt verifies against the key the oracle published on chain; a session id for a solved puzzle verifies", async () => {
    const blind = await eventually(() => alice.oracle.receipt({ mode: "blind" }));
    expect(blind.mode).toBe("blind");
    const verified = await verifyReceiptAgainstChain(blind.receipt.bytes, { view, now: nowSeconds() });
    expect(verified.kind).toBe("blind");
    const session = await eventually(() => alice.oracle.session());
    const sessionId = verifySessionId(session.session, { oracleKeys: await view.oracleKeys(), now: nowSeconds() });
    expect(sessionId.sid).toHaveLength(16);
    expect(ed25519PublicKey(session.secretKey)).toEqual(sessionId.viewerKey);
  }, 240_000);

  it("revocation by the committing oracle makes the verifier refuse the receipt", async () => {
    const issuer = net.devnet.state.nodes.find((n) => n.nodeKey.toLowerCase() === bytesToHex(receipt.oracle))!;
    const keys = JSON.parse(await readFile(join(net.root, "devnet", "keys", `${issuer.name}.json`), "utf8")) as { signerPrivateKey: Hex };
    const chain = await connectChain({
      rpcUrl: net.devnet.chain.rpcUrl,
      expectedChainId: deployment.chainId,
      account: privateKeyToAccount(keys.signerPrivateKey),
    });
    await transact({
      publicClient: chain.publicClient,
      walletClient: chain.walletClient!,
      address: deployment.contracts.OracleReceipts.address,
      abi: oracleReceiptsAbi,
      functionName: "revokeReceipt",
      args: [inclusion.batchId, receipt.receiptHash, inclusion.proof],
    });
    expect(await view.isRevoked(receipt.receiptHash)).toBe(true);
    const refused = await verifyReceiptAgainstChain(receipt.bytes, { view, now: nowSeconds(), inclusion }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(StreamError);
    expect((refused as StreamError).kind).toBe("revoked");
  }, 120_000);

  it("npm start's demo stream: the devnet's node processes land and distribute it on their chain-backed admission, and ffmpeg's test source reaches two viewers", async () => {
    expect(ffmpegAvailable()).toBe(true);
    const carol = await clientFor("carol");
    const lines: string[] = [];
    const demo = await startStreamDemo(alice, carol, (line) => lines.push(line));
    try {
      // 25 frames/s in real time: ten chunks each within seconds, unless a node dropped them.
      const deadline = Date.now() + 60_000;
      while (!demo.received().every((n) => n >= 10)) {
        if (Date.now() > deadline) throw new Error(`viewers received only ${demo.received().join(", ")} chunks`);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(lines.join("\n")).toMatch(/created stream [0-9a-f]{12}… at landing node [0-9a-f]{12}… with 2 distribution nodes/);
      expect(lines.join("\n")).toMatch(/carol's 2 viewers receive alice's ffmpeg test source/);
      expect(demo.ticket).toMatch(/^pspstream1:/);
    } finally {
      demo.stop();
    }
  }, 180_000);

  it("the issuance stores keep their rows after the oracle processes exit", async () => {
    for (const c of clients.splice(0)) await c.close();
    const issuer = net.devnet.state.nodes.find((n) => n.nodeKey.toLowerCase() === bytesToHex(receipt.oracle))!;
    await net.devnet.nodes.stop();
    const store = new OracleStore(storeOf(issuer.name));
    try {
      const row = store.get(Buffer.from(receipt.id).toString("hex"));
      expect(row?.identity).toBe(net.user("alice").identity);
      expect(store.inclusion(receipt.receiptHash)).toEqual(inclusion);
    } finally {
      store.close();
    }
    // The blind issuance went to whichever oracle the client picked: one of the two stores holds it.
    let blindRows = 0;
    for (const n of net.devnet.state.nodes.filter((n) => n.roles.includes("oracle"))) {
      const s = new OracleStore(storeOf(n.name));
      blindRows += s.all().filter((r) => r.kind === "blind" && r.identity === net.user("alice").identity).length;
      s.close();
    }
    expect(blindRows).toBeGreaterThanOrEqual(1);
  }, 120_000);
});

/**
 * CommercialNodes against the real IdentityRegistry and NodeRegistry: who may
 * publish an application's nodes (owner and registrars only), the node
 * signer's consent (forged, for another app, node or service list, expired,
 * replayed), removal by the app or by the node's operator or signer, and
 * nodes that lose their stake, deregister or change operator dropping out of
 * `isServing` / `servingAppsOf` without a transaction. No mocks.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { getAddress, parseEther, type Hex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import type { ContractReturnType } from "@nomicfoundation/hardhat-viem/types";
import { nodeConsentTypedData } from "../../node/src/chain/consent.js";
import { serveConsentDigest, serveConsentTypedData } from "../../node/src/chain/commercial.js";
import { createApplication, deployPki, KEY_PROOF, testKey, testSigner, type PkiFixture, type WalletClient } from "./helpers/pki.js";

const ROLE_ONION = 1;
const STAKE = parseEther("100");

let f: PkiFixture;
let commercial: ContractReturnType<"CommercialNodes">;
let restore: () => Promise<void>;
let appOwner: WalletClient;
let registrar: WalletClient;
let operator: WalletClient;
let mallory: WalletClient;
let appId: Hex;
let otherApp: Hex;
const nodeSigner: PrivateKeyAccount = testSigner("commercial", 0);
const otherSigner: PrivateKeyAccount = testSigner("commercial", 1);
const nodeKey = testKey("commercial-node-0");
const otherNode = testKey("commercial-node-1");

function at<T>(xs: readonly T[], i: number): T {
  const x = xs[i];
  if (x === undefined) throw new Error(`fixture has no element ${i}`);
  return x;
}

async function registerOnionNode(key: Hex, signer: PrivateKeyAccount, owner: WalletClient, stake = STAKE): Promise<void> {
  const account = owner.account;
  const nonce = await f.nodeRegistry.read.nonces([signer.address]);
  const deadline = BigInt(await f.networkHelpers.time.latest()) + 3600n;
  const consent = await signer.signTypedData(
    nodeConsentTypedData({
      chainId: f.chainId,
      registry: f.nodeRegistry.address,
      consent: { nodeKey: key, operator: account.address, signer: signer.address, nonce, deadline },
    }),
  );
  await f.nodeRegistry.write.registerNode([key, signer.address, ROLE_ONION, deadline, consent, KEY_PROOF], { account });
  if (stake > 0n) {
    await f.token.write.approve([f.nodeRegistry.address, stake], { account });
    await f.nodeRegistry.write.stake([key, stake], { account });
  }
}

async function consent(opts: { signer?: PrivateKeyAccount; app?: Hex; node?: Hex; services?: string[]; nonce?: bigint; deadline?: bigint } = {}) {
  const signer = opts.signer ?? nodeSigner;
  const nonce = opts.nonce ?? (await commercial.read.nonces([signer.address]));
  const deadline = opts.deadline ?? BigInt(await f.networkHelpers.time.latest()) + 600n;
  const services = opts.services ?? ["kv", "echo"];
  const signature = await signer.signTypedData(
    serveConsentTypedData({
      chainId: f.chainId,
      contract: commercial.address,
      consent: { appId: opts.app ?? appId, nodeKey: opts.node ?? nodeKey, services, nonce, deadline },
    }),
  );
  return { deadline, signature, services };
}

async function publish(by: WalletClient = appOwner, node: Hex = nodeKey, signer: PrivateKeyAccount = nodeSigner, app: Hex = appId): Promise<void> {
  const c = await consent({ signer, node, app });
  await commercial.write.publishNode([app, node, c.services, c.deadline, c.signature], { account: by.account });
}

beforeAll(async () => {
  f = await deployPki({ authorityCount: 1, threshold: 1 });
  [appOwner, registrar, operator, mallory] = [at(f.users, 0), at(f.users, 1), at(f.users, 2), at(f.users, 3)];
  appId = await createApplication(f, appOwner, "acme", "shop");
  otherApp = await createApplication(f, mallory, "evil", "shop");
  await f.identities.write.setRegistrar([appId, registrar.account.address, true], { account: appOwner.account });
  // Onion eligibility needs a stake, so unstaking can be seen to drop a node.
  const params = await f.nodeRegistry.read.params();
  await f.nodeRegistry.write.setParams([{ ...params, minStakeOnion: STAKE }], { account: f.admin.account });
  commercial = await f.viem.deployContract("CommercialNodes", [f.identities.address, f.nodeRegistry.address]);
  await registerOnionNode(nodeKey, nodeSigner, operator);
  await registerOnionNode(otherNode, otherSigner, mallory);
  const snapshot = await f.networkHelpers.takeSnapshot();
  restore = () => snapshot.restore();
});

beforeEach(async () => {
  await restore();
});

afterAll(async () => {
  await f.connection.close();
});

describe("CommercialNodes publication", () => {
  it("the TypeScript consent digest is the contract's", async () => {
    const c = await consent();
    const nonce = await commercial.read.nonces([nodeSigner.address]);
    const onChain = await commercial.read.serveConsentDigest([appId, nodeKey, c.services, nonce, c.deadline]);
    expect(onChain).toBe(
      serveConsentDigest({ chainId: f.chainId, contract: commercial.address, consent: { appId, nodeKey, services: c.services, nonce, deadline: c.deadline } }),
    );
  });

  it("the owner and a registrar publish with the node's consent; events, views and services follow", async () => {
    const c = await consent();
    const hash = await commercial.write.publishNode([appId, nodeKey, c.services, c.deadline, c.signature], { account: appOwner.account });
    const receipt = await f.publicClient.waitForTransactionReceipt({ hash });
    const events = await commercial.getEvents.NodePublished({}, { blockHash: receipt.blockHash });
    expect(events).toHaveLength(1);
    expect(events[0]?.args.operator).toBe(getAddress(operator.account.address));
    expect(await commercial.read.isServing([appId, nodeKey])).toBe(true);
    expect(await commercial.read.servingNodesOf([appId])).toEqual([nodeKey]);
    expect(await commercial.read.servingAppsOf([nodeKey])).toEqual([appId]);
    expect((await commercial.read.publicationOf([appId, nodeKey])).services).toEqual(["kv", "echo"]);
    // A registrar re-publishes with new services (a fresh consent).
    const again = await consent({ services: ["counter"] });
    await commercial.write.publishNode([appId, nodeKey, again.services, again.deadline, again.signature], { account: registrar.account });
    expect((await commercial.read.publicationOf([appId, nodeKey])).services).toEqual(["counter"]);
    expect(await commercial.read.nodesOf([appId])).toEqual([nodeKey]);
  });

  it("refuses anyone but the app's owner and registrars, and an unknown app", async () => {
    const c = await consent();
    await f.viem.assertions.revertWithCustomErrorWithArgs(
      commercial.write.publishNode([appId, nodeKey, c.services, c.deadline, c.signature], { account: mallory.account }),
      commercial,
      "NotApplicationManager",
      [appId, getAddress(mallory.account.address)],
    );
    const unknown = testKey("no-such-app");
    await f.viem.assertions.revertWithCustomErrorWithArgs(
      commercial.write.publishNode([unknown, nodeKey, c.services, c.deadline, c.signature], { account: appOwner.account }),
      commercial,
      "ApplicationNotFound",
      [unknown],
    );
  });

  it("no app can claim another operator's node: the consent must be the node signer's, for this app, node and services", async () => {
    const bad = async (c: { deadline: bigint; signature: Hex; services: string[] }, app = appId, services = c.services) =>
      await f.viem.assertions.revertWithCustomErrorWithArgs(
        commercial.write.publishNode([app, nodeKey, services, c.deadline, c.signature], { account: app === appId ? appOwner.account : mallory.account }),
        commercial,
        "InvalidServeConsent",
        [nodeKey, getAddress(nodeSigner.address)],
      );
    // Signed by another node's signer.
    await bad(await consent({ signer: otherSigner }));
    // The node consented to acme.shop; evil.shop replays it for itself.
    await bad(await consent(), otherApp);
    // Consent for other services, used with a longer list.
    await bad(await consent({ services: ["kv"] }), appId, ["kv", "admin"]);
    // Consent for another node.
    await bad(await consent({ node: otherNode }));
  });

  it("a consent is used once (nonce) and expires (deadline)", async () => {
    const c = await consent();
    await commercial.write.publishNode([appId, nodeKey, c.services, c.deadline, c.signature], { account: appOwner.account });
    await commercial.write.removeNode([appId, nodeKey], { account: operator.account });
    // The same signature again: the nonce moved on, so it recovers to someone else.
    await f.viem.assertions.revertWithCustomError(
      commercial.write.publishNode([appId, nodeKey, c.services, c.deadline, c.signature], { account: appOwner.account }),
      commercial,
      "InvalidServeConsent",
    );
    const old = await consent({ deadline: BigInt(await f.networkHelpers.time.latest()) + 5n });
    await f.networkHelpers.time.increase(60);
    await f.viem.assertions.revertWithCustomError(
      commercial.write.publishNode([appId, nodeKey, old.services, old.deadline, old.signature], { account: appOwner.account }),
      commercial,
      "ConsentExpired",
    );
  });

  it("refuses bad service lists and nodes that are not onion-eligible", async () => {
    for (const [services, error] of [
      [[], "InvalidServiceCount"],
      [["Upper"], "InvalidServiceName"],
      [["a".repeat(33)], "InvalidServiceName"],
      [["kv", "kv"], "DuplicateService"],
    ] as const) {
      const c = await consent({ services: [...services] });
      await f.viem.assertions.revertWithCustomError(
        commercial.write.publishNode([appId, nodeKey, [...services], c.deadline, c.signature], { account: appOwner.account }),
        commercial,
        error,
      );
    }
    const unstaked = testKey("commercial-unstaked");
    const signer = testSigner("commercial", 2);
    await registerOnionNode(unstaked, signer, operator, 0n);
    const c = await consent({ signer, node: unstaked });
    await f.viem.assertions.revertWithCustomErrorWithArgs(
      commercial.write.publishNode([appId, unstaked, c.services, c.deadline, c.signature], { account: appOwner.account }),
      commercial,
      "NodeNotEligible",
      [unstaked],
    );
  });
});

describe("CommercialNodes removal and dropping out", () => {
  it("the app, the node's operator and its signer may remove; nobody else", async () => {
    await publish();
    await f.viem.assertions.revertWithCustomError(
      commercial.write.removeNode([appId, nodeKey], { account: mallory.account }),
      commercial,
      "NotAllowedToRemove",
    );
    await commercial.write.removeNode([appId, nodeKey], { account: registrar.account });
    expect(await commercial.read.isServing([appId, nodeKey])).toBe(false);
    expect(await commercial.read.nodesOf([appId])).toEqual([]);
    expect(await commercial.read.servingAppsOf([nodeKey])).toEqual([]);
    await f.viem.assertions.revertWithCustomError(commercial.write.removeNode([appId, nodeKey], { account: appOwner.account }), commercial, "NotPublished");
    await publish();
    await commercial.write.removeNode([appId, nodeKey], { account: operator.account });
    expect(await commercial.read.isServing([appId, nodeKey])).toBe(false);
  });

  it("an unstaking node drops out at once; prune clears it, and refuses a serving one", async () => {
    await publish();
    await f.viem.assertions.revertWithCustomError(commercial.write.prune([appId, nodeKey], { account: mallory.account }), commercial, "StillServing");
    await f.nodeRegistry.write.requestUnstake([nodeKey, STAKE], { account: operator.account });
    expect(await commercial.read.isServing([appId, nodeKey])).toBe(false);
    expect(await commercial.read.servingNodesOf([appId])).toEqual([]);
    expect(await commercial.read.servingAppsOf([nodeKey])).toEqual([]);
    expect(await commercial.read.nodesOf([appId])).toEqual([nodeKey]);
    await commercial.write.prune([appId, nodeKey], { account: mallory.account });
    expect(await commercial.read.nodesOf([appId])).toEqual([]);
  });

  it("a deregistered node registered again by another operator does not inherit the publication", async () => {
    await publish();
    await f.nodeRegistry.write.requestUnstake([nodeKey, STAKE], { account: operator.account });
    await f.networkHelpers.time.increase(8 * 24 * 3600);
    await f.nodeRegistry.write.withdraw([nodeKey], { account: operator.account });
    await f.nodeRegistry.write.deregisterNode([nodeKey], { account: operator.account });
    const signer = testSigner("commercial", 3);
    await registerOnionNode(nodeKey, signer, mallory);
    expect(await f.nodeRegistry.read.isEligible([nodeKey, ROLE_ONION])).toBe(true);
    expect(await commercial.read.isServing([appId, nodeKey])).toBe(false);
  });
});

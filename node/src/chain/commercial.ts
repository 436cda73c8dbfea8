/**
 * Commercial nodes on chain (contracts/CommercialNodes.sol, issue 17): the
 * EIP-712 `ServeConsent` a node's EVM signer signs before an application's
 * owner or registrar may publish the node as one of its commercial nodes, and
 * typed reads and writes of the publication list.
 *
 * Owns: the typed-data layout (it must match the contract byte for byte: the
 * contract tests sign with it), the service-name rule, and `CommercialView`,
 * the read side discovery nodes and commercial nodes use (which applications
 * a node serves now, which services).
 *
 * Trusts: the JSON-RPC endpoint for chain state (after the deployment check
 * its caller did); the contract for every rule (checked again here only to
 * fail before a transaction is sent).
 */
import { getContract, hashTypedData, type Address, type Hex, type LocalAccount, type TypedDataDefinition } from "viem";
import type { ChainClients } from "./clients.js";
import { COMMERCIAL_CONTRACT, type Deployment } from "./deployment.js";
import { ChainError } from "./errors.js";
import { commercialNodesAbi, nodeRegistryAbi } from "./generated/abis.js";
import { transact } from "./transact.js";

export { commercialNodesAbi };

/** EIP-712 domain of the CommercialNodes contract. */
export const COMMERCIAL_NODES_DOMAIN = { name: "PSP CommercialNodes", version: "1" } as const;
/** CommercialNodes.MAX_APPS_PER_NODE: the most applications a descriptor may claim. */
export const MAX_APPS_PER_NODE = 8;
/** CommercialNodes.MAX_SERVICES. */
export const MAX_SERVICES = 16;
/** Service names: 1..32 bytes of [a-z0-9-] (CommercialNodes._checkServices). */
export const SERVICE_NAME_PATTERN = /^[a-z0-9-]{1,32}$/;

export const serveConsentTypes = {
  ServeConsent: [
    { name: "appId", type: "bytes32" },
    { name: "nodeKey", type: "bytes32" },
    { name: "services", type: "string[]" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint64" },
  ],
} as const;

/** What a node's signer consents to: serving `services` of application `appId` on `nodeKey`. */
export interface ServeConsent {
  appId: Hex;
  nodeKey: Hex;
  services: readonly string[];
  /** CommercialNodes.nonces(signer) at signing time; a consent is used once. */
  nonce: bigint;
  /** Last second (chain time) the consent is valid. */
  deadline: bigint;
}

export interface ServeConsentContext {
  chainId: number;
  /** The CommercialNodes address. */
  contract: Address;
  consent: ServeConsent;
}

/** Throws ChainError "bad-argument" unless `services` is 1..16 distinct names of [a-z0-9-]{1,32}. */
export function checkServiceNames(services: readonly string[]): void {
  if (!Array.isArray(services) || services.length === 0 || services.length > MAX_SERVICES) {
    throw new ChainError("bad-argument", `a commercial node serves 1..${MAX_SERVICES} services, got ${Array.isArray(services) ? services.length : "none"}`);
  }
  const seen = new Set<string>();
  for (const s of services) {
    if (typeof s !== "string" || !SERVICE_NAME_PATTERN.test(s))
      throw new ChainError("bad-argument", `service name ${JSON.stringify(s)} must be 1..32 characters of a-z, 0-9 and -`);
    if (seen.has(s)) throw new ChainError("bad-argument", `service ${s} is listed twice`);
    seen.add(s);
  }
}

export function serveConsentTypedData(ctx: ServeConsentContext): TypedDataDefinition<typeof serveConsentTypes, "ServeConsent"> {
  return {
    domain: { ...COMMERCIAL_NODES_DOMAIN, chainId: ctx.chainId, verifyingContract: ctx.contract },
    types: serveConsentTypes,
    primaryType: "ServeConsent",
    message: { ...ctx.consent, services: [...ctx.consent.services] },
  };
}

/** The digest the node's signer signs (equal to CommercialNodes.serveConsentDigest). */
export function serveConsentDigest(ctx: ServeConsentContext): Hex {
  return hashTypedData(serveConsentTypedData(ctx));
}

/** The node signer's consent, for `publishNode`. */
export async function signServeConsent(signer: Pick<LocalAccount, "signTypedData">, ctx: ServeConsentContext): Promise<Hex> {
  checkServiceNames(ctx.consent.services);
  return await signer.signTypedData(serveConsentTypedData(ctx));
}

/** The CommercialNodes address of a deployment; ChainError "bad-deployment" when it has none. */
export function commercialNodesAddress(deployment: Deployment): Address {
  const entry = deployment.contracts[COMMERCIAL_CONTRACT];
  if (!entry) throw new ChainError("bad-deployment", `the ${deployment.network} deployment has no ${COMMERCIAL_CONTRACT}: redeploy with \`npm run deploy\``);
  return entry.address;
}

/** The read side: which applications a node serves now, and under which services. */
export interface CommercialView {
  /** Applications `nodeKey` serves now (CommercialNodes.servingAppsOf), lower-case 0x hex. */
  servingApps(nodeKey: Hex): Promise<Hex[]>;
  /** Nodes serving `appId` now (CommercialNodes.servingNodesOf). */
  servingNodes(appId: Hex): Promise<Hex[]>;
  /** The services of `nodeKey` for `appId` ([] when not published). */
  services(appId: Hex, nodeKey: Hex): Promise<string[]>;
  /** True when the publication counts now (CommercialNodes.isServing). */
  isServing(appId: Hex, nodeKey: Hex): Promise<boolean>;
}

export function createCommercialView(clients: Pick<ChainClients, "publicClient">, deployment: Deployment): CommercialView {
  const contract = getContract({ address: commercialNodesAddress(deployment), abi: commercialNodesAbi, client: clients.publicClient });
  const lower = (xs: readonly Hex[]): Hex[] => xs.map((x) => x.toLowerCase() as Hex);
  return {
    servingApps: async (nodeKey) => lower(await contract.read.servingAppsOf([nodeKey])),
    servingNodes: async (appId) => lower(await contract.read.servingNodesOf([appId])),
    services: async (appId, nodeKey) => [...(await contract.read.publicationOf([appId, nodeKey])).services],
    isServing: async (appId, nodeKey) => await contract.read.isServing([appId, nodeKey]),
  };
}

export interface PublishCommercialNodeOptions {
  /** Sends as the application's owner or registrar. */
  clients: ChainClients;
  deployment: Deployment;
  appId: Hex;
  nodeKey: Hex;
  services: readonly string[];
  /** The node's EVM signer (its consent is signed here). */
  nodeSigner: Pick<LocalAccount, "address" | "signTypedData">;
  /** Consent validity from the latest block (seconds, default 600). */
  validForSeconds?: number;
}

/** Publishes `nodeKey` as a commercial node of `appId` with its signer's consent. Returns the transaction hash. */
export async function publishCommercialNode(opts: PublishCommercialNodeOptions): Promise<Hex> {
  checkServiceNames(opts.services);
  const wallet = opts.clients.walletClient;
  if (!wallet) throw new ChainError("bad-argument", "publishing a commercial node sends a transaction: pass the application owner's keystore");
  const address = commercialNodesAddress(opts.deployment);
  const pub = opts.clients.publicClient;
  const info = await pub.readContract({
    address: opts.deployment.contracts.NodeRegistry.address,
    abi: nodeRegistryAbi,
    functionName: "getNode",
    args: [opts.nodeKey],
  });
  if (info.signer.toLowerCase() !== opts.nodeSigner.address.toLowerCase()) {
    throw new ChainError(
      "bad-argument",
      `node ${opts.nodeKey} has signer ${info.signer} on chain, not ${opts.nodeSigner.address}: its consent would not count`,
    );
  }
  const nonce = await pub.readContract({ address, abi: commercialNodesAbi, functionName: "nonces", args: [info.signer] });
  const now = (await pub.getBlock()).timestamp;
  const deadline = now + BigInt(opts.validForSeconds ?? 600);
  const consent = await signServeConsent(opts.nodeSigner, {
    chainId: opts.deployment.chainId,
    contract: address,
    consent: { appId: opts.appId, nodeKey: opts.nodeKey, services: opts.services, nonce, deadline },
  });
  const { hash } = await transact({
    publicClient: pub,
    walletClient: wallet,
    address,
    abi: commercialNodesAbi,
    functionName: "publishNode",
    args: [opts.appId, opts.nodeKey, [...opts.services], deadline, consent],
  });
  return hash;
}

/** Removes `nodeKey` from `appId` (as the app's owner or registrar, or the node's operator or signer). */
export async function removeCommercialNode(opts: { clients: ChainClients; deployment: Deployment; appId: Hex; nodeKey: Hex }): Promise<Hex> {
  const wallet = opts.clients.walletClient;
  if (!wallet) throw new ChainError("bad-argument", "removing a commercial node sends a transaction: pass a keystore");
  const { hash } = await transact({
    publicClient: opts.clients.publicClient,
    walletClient: wallet,
    address: commercialNodesAddress(opts.deployment),
    abi: commercialNodesAbi,
    functionName: "removeNode",
    args: [opts.appId, opts.nodeKey],
  });
  return hash;
}

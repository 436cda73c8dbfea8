/**
 * Typed viem bindings for the PSP contracts of one deployment.
 *
 * The ABIs come from node/src/chain/generated/abis.ts, generated from the
 * Hardhat artifacts by `npm run build:contracts`, so a contract change that
 * breaks a caller fails the type check instead of a transaction.
 */
import { getContract, type Account, type Chain, type GetContractReturnType, type PublicClient, type Transport, type WalletClient } from "viem";
import type { Deployment } from "./deployment.js";
import { ChainError } from "./errors.js";
import { bandwidthRewardsAbi, identityRegistryAbi, nodeRegistryAbi, oracleReceiptsAbi, pspTokenAbi, subscriptionsAbi } from "./generated/abis.js";

export { bandwidthRewardsAbi, identityRegistryAbi, nodeRegistryAbi, oracleReceiptsAbi, pspTokenAbi, subscriptionsAbi };

/** Node roles as the NodeRegistry's bitmask. */
export const NodeRole = { onion: 1, discovery: 2, authority: 4, oracle: 8 } as const;
export type NodeRoleName = keyof typeof NodeRole;

/** Parses "onion,authority" into a bitmask; unknown names are an error naming the valid ones. */
export function parseRoles(list: string): number {
  let mask = 0;
  for (const raw of list.split(",")) {
    const name = raw.trim().toLowerCase();
    if (!name) continue;
    if (!(name in NodeRole)) throw new ChainError("bad-argument", `unknown role "${name}": use a comma-separated list of ${Object.keys(NodeRole).join(", ")}`);
    mask |= NodeRole[name as NodeRoleName];
  }
  if (mask === 0) throw new ChainError("bad-argument", "at least one role is needed");
  return mask;
}

/** The role names in a bitmask, in a fixed order. */
export function roleNames(mask: number): NodeRoleName[] {
  return (Object.keys(NodeRole) as NodeRoleName[]).filter((name) => (mask & NodeRole[name]) !== 0);
}

/** The clients bindings are made for: a public client, plus a wallet client for writes. */
export interface ContractClients {
  public: PublicClient<Transport, Chain>;
  wallet?: WalletClient<Transport, Chain, Account>;
}

/** The PSP contracts of one deployment, bound to `C` (spelled out so declarations stay small). */
export interface PspContractSet<C extends ContractClients> {
  token: GetContractReturnType<typeof pspTokenAbi, C>;
  nodeRegistry: GetContractReturnType<typeof nodeRegistryAbi, C>;
  identityRegistry: GetContractReturnType<typeof identityRegistryAbi, C>;
  subscriptions: GetContractReturnType<typeof subscriptionsAbi, C>;
  oracleReceipts: GetContractReturnType<typeof oracleReceiptsAbi, C>;
  rewards: GetContractReturnType<typeof bandwidthRewardsAbi, C>;
}

/** Read-only bindings, or read-write ones when a wallet client is given. */
export function pspContractsFor<C extends ContractClients>(deployment: Deployment, client: C): PspContractSet<C> {
  const at = deployment.contracts;
  return {
    token: getContract({ address: at.PSPToken.address, abi: pspTokenAbi, client }),
    nodeRegistry: getContract({ address: at.NodeRegistry.address, abi: nodeRegistryAbi, client }),
    identityRegistry: getContract({ address: at.IdentityRegistry.address, abi: identityRegistryAbi, client }),
    subscriptions: getContract({ address: at.Subscriptions.address, abi: subscriptionsAbi, client }),
    oracleReceipts: getContract({ address: at.OracleReceipts.address, abi: oracleReceiptsAbi, client }),
    rewards: getContract({ address: at.BandwidthRewards.address, abi: bandwidthRewardsAbi, client }),
  };
}

export type PspContracts = PspContractSet<{ public: PublicClient<Transport, Chain> }>;

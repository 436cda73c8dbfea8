/**
 * Operator actions on the NodeRegistry: register a node, stake, request an
 * unstake, withdraw, and read a node's status.
 *
 * Every action checks what it can before sending (the chain, the node, the
 * balance, the unbonding clock) so an operator gets a message that names the
 * fix, and simulates the call so a contract revert is reported by name.
 */
import { formatEther, type Address, type Hex } from "viem";
import { hexOf } from "../base/hex.js";
import type { ChainClients } from "./clients.js";
import { pspContractsFor, roleNames, type NodeRoleName } from "./contracts.js";
import { assertDeploymentLive, type Deployment } from "./deployment.js";
import { ChainError } from "./errors.js";
import { transact } from "./transact.js";
import { permitSignatureParts, permitTypedData } from "./permit.js";
import { nodeRegistryAbi, pspTokenAbi } from "./generated/abis.js";

export interface OperatorContext {
  clients: ChainClients;
  deployment: Deployment;
}

function wallet(ctx: OperatorContext) {
  const w = ctx.clients.walletClient;
  if (!w) throw new ChainError("bad-argument", "this action sends a transaction: pass an operator keystore (--keystore)");
  return w;
}

/** A 32-byte Ed25519 public key as the registry's bytes32. */
export function nodeKeyHex(key: Uint8Array | string): Hex {
  const hex = typeof key === "string" ? key.replace(/^0x/, "") : hexOf(key);
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new ChainError("bad-argument", "a node key is a 32-byte Ed25519 public key in hex (64 hex digits)");
  return `0x${hex.toLowerCase()}`;
}

export interface NodeStatus {
  nodeKey: Hex;
  registered: boolean;
  operator: Address;
  signer: Address;
  roles: NodeRoleName[];
  discoveryApproved: boolean;
  registeredAt: number;
  bonded: bigint;
  unbonding: bigint;
  unbondingReleaseAt: number;
  /** Roles whose minimum stake (and, for discovery, approval and age) the node meets. */
  eligible: NodeRoleName[];
  /** Current sets the node's signer is a member of. */
  memberOf: NodeRoleName[];
}

export async function nodeStatus(ctx: OperatorContext, nodeKey: Hex): Promise<NodeStatus> {
  const { nodeRegistry } = pspContractsFor(ctx.deployment, { public: ctx.clients.publicClient });
  // getNode reverts with UnknownNode for a key that was never registered.
  if (!(await nodeRegistry.read.isRegistered([nodeKey]))) {
    const zero = "0x0000000000000000000000000000000000000000" as const;
    return { nodeKey, registered: false, operator: zero, signer: zero, roles: [], discoveryApproved: false, registeredAt: 0, bonded: 0n, unbonding: 0n, unbondingReleaseAt: 0, eligible: [], memberOf: [] };
  }
  const info = await nodeRegistry.read.getNode([nodeKey]);
  const registered = true;
  const roles = roleNames(info.roles);
  const eligible: NodeRoleName[] = [];
  const memberOf: NodeRoleName[] = [];
  if (registered) {
    const bits = { onion: 1, discovery: 2, authority: 4, oracle: 8 } as const;
    for (const role of roles) if (await nodeRegistry.read.isEligible([nodeKey, bits[role]])) eligible.push(role);
    if (await nodeRegistry.read.isAuthoritySigner([info.signer])) memberOf.push("authority");
    if (await nodeRegistry.read.isOracleSigner([info.signer])) memberOf.push("oracle");
    if (await nodeRegistry.read.isDiscoverySigner([info.signer])) memberOf.push("discovery");
  }
  return {
    nodeKey,
    registered,
    operator: info.operator,
    signer: info.signer,
    roles,
    discoveryApproved: info.discoveryApproved,
    registeredAt: Number(info.registeredAt),
    bonded: info.bonded,
    unbonding: info.unbonding,
    unbondingReleaseAt: Number(info.unbondingReleaseAt),
    eligible,
    memberOf,
  };
}

async function requireOperatedNode(ctx: OperatorContext, nodeKey: Hex): Promise<NodeStatus> {
  const status = await nodeStatus(ctx, nodeKey);
  if (!status.registered) throw new ChainError("unknown-node", `node ${nodeKey} is not registered: run \`operator register\` first`);
  const me = wallet(ctx).account.address;
  if (status.operator.toLowerCase() !== me.toLowerCase()) {
    throw new ChainError("not-operator", `node ${nodeKey} is operated by ${status.operator}, not by ${me}: use that operator's keystore`);
  }
  return status;
}

export async function registerNode(ctx: OperatorContext, args: { nodeKey: Hex; signer: Address; roles: number }) {
  await assertDeploymentLive(ctx.clients.publicClient, ctx.deployment);
  return await transact({
    publicClient: ctx.clients.publicClient,
    walletClient: wallet(ctx),
    address: ctx.deployment.contracts.NodeRegistry.address,
    abi: nodeRegistryAbi,
    functionName: "registerNode",
    args: [args.nodeKey, args.signer, args.roles],
  });
}

/**
 * Bonds `amount` (wei) to the node. Uses the existing allowance when it covers
 * the amount, otherwise signs an ERC-2612 permit so no separate approval is needed.
 */
export async function stakeNode(ctx: OperatorContext, args: { nodeKey: Hex; amount: bigint }) {
  await assertDeploymentLive(ctx.clients.publicClient, ctx.deployment);
  const w = wallet(ctx);
  if (args.amount <= 0n) throw new ChainError("bad-argument", "the stake amount must be positive");
  await requireOperatedNode(ctx, args.nodeKey);
  const { token } = pspContractsFor(ctx.deployment, { public: ctx.clients.publicClient });
  const me = w.account.address;
  const registry = ctx.deployment.contracts.NodeRegistry.address;
  const balance = await token.read.balanceOf([me]);
  if (balance < args.amount) {
    throw new ChainError(
      "insufficient-balance",
      `${me} holds ${formatEther(balance)} PSP but the stake is ${formatEther(args.amount)} PSP: transfer PSP to the operator account first`,
    );
  }
  const allowance = await token.read.allowance([me, registry]);
  const base = { publicClient: ctx.clients.publicClient, walletClient: w, address: registry, abi: nodeRegistryAbi } as const;
  if (allowance >= args.amount) return await transact({ ...base, functionName: "stake", args: [args.nodeKey, args.amount] });
  const deadline = BigInt(Math.floor(Date.now() / 1000) + 3600);
  const nonce = await token.read.nonces([me]);
  const name = await token.read.name();
  const signature = await w.signTypedData(
    permitTypedData({ tokenName: name, token: token.address, chainId: ctx.clients.chain.id, owner: me, spender: registry, value: args.amount, nonce, deadline }),
  );
  const { v, r, s } = permitSignatureParts(signature);
  return await transact({ ...base, functionName: "stakeWithPermit", args: [args.nodeKey, args.amount, deadline, v, r, s] });
}

export async function requestUnstake(ctx: OperatorContext, args: { nodeKey: Hex; amount: bigint }) {
  await assertDeploymentLive(ctx.clients.publicClient, ctx.deployment);
  const status = await requireOperatedNode(ctx, args.nodeKey);
  if (args.amount <= 0n) throw new ChainError("bad-argument", "the unstake amount must be positive");
  if (args.amount > status.bonded) {
    throw new ChainError("insufficient-balance", `node ${args.nodeKey} has ${formatEther(status.bonded)} PSP bonded; cannot unstake ${formatEther(args.amount)}`);
  }
  return await transact({
    publicClient: ctx.clients.publicClient,
    walletClient: wallet(ctx),
    address: ctx.deployment.contracts.NodeRegistry.address,
    abi: nodeRegistryAbi,
    functionName: "requestUnstake",
    args: [args.nodeKey, args.amount],
  });
}

export async function withdrawStake(ctx: OperatorContext, args: { nodeKey: Hex }) {
  await assertDeploymentLive(ctx.clients.publicClient, ctx.deployment);
  const status = await requireOperatedNode(ctx, args.nodeKey);
  if (status.unbonding === 0n) throw new ChainError("nothing-to-withdraw", `node ${args.nodeKey} has nothing unbonding: request an unstake first`);
  const now = Number((await ctx.clients.publicClient.getBlock()).timestamp);
  if (now < status.unbondingReleaseAt) {
    throw new ChainError(
      "nothing-to-withdraw",
      `${formatEther(status.unbonding)} PSP unbond at ${new Date(status.unbondingReleaseAt * 1000).toISOString()} (${status.unbondingReleaseAt - now} s from now): withdraw after that`,
    );
  }
  return await transact({
    publicClient: ctx.clients.publicClient,
    walletClient: wallet(ctx),
    address: ctx.deployment.contracts.NodeRegistry.address,
    abi: nodeRegistryAbi,
    functionName: "withdraw",
    args: [args.nodeKey],
  });
}

/** PSP balance of `owner`, for status output. */
export async function tokenBalance(ctx: OperatorContext, owner: Address): Promise<bigint> {
  return await ctx.clients.publicClient.readContract({
    address: ctx.deployment.contracts.PSPToken.address,
    abi: pspTokenAbi,
    functionName: "balanceOf",
    args: [owner],
  });
}

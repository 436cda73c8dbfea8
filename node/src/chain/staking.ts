/**
 * Operator actions on the NodeRegistry: register a node (with its signer's
 * consent and its key's proof, consent.ts), stake, activate it into a set,
 * request an unstake, withdraw, and read a node's status.
 *
 * Every action checks what it can before sending (the chain, the node, the
 * balance, the unbonding clock) so an operator gets a message that names the
 * fix, and simulates the call so a contract revert is reported by name.
 */
import { bytesToHex, formatEther, type Address, type Hex, type LocalAccount } from "viem";
import { hexOf } from "../base/hex.js";
import type { ChainClients } from "./clients.js";
import { NodeRole, pspContractsFor, roleNames, type NodeRoleName } from "./contracts.js";
import { assertDeploymentLive, type Deployment } from "./deployment.js";
import { ChainError } from "./errors.js";
import { nodeConsentDigest, signNodeConsent, signNodeKeyProof } from "./consent.js";
import { ed25519PublicKey } from "../crypto/ed25519.js";
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
  /** Set roles governance approved the node for. */
  approved: NodeRoleName[];
  /** Registration order (ties in stake rank by it, earlier first). */
  seq: number;
  registeredAt: number;
  bonded: bigint;
  unbonding: bigint;
  unbondingReleaseAt: number;
  /** Roles the node holds or may join now: minimum stake, approval where needed, activation delay passed. */
  eligible: NodeRoleName[];
  /** Set roles it qualifies for but whose activation delay still runs, with the time it ends (unix seconds). */
  pending: { role: NodeRoleName; activatesAt: number }[];
  /** Current sets the node's signer is a member of. */
  memberOf: NodeRoleName[];
}

export async function nodeStatus(ctx: OperatorContext, nodeKey: Hex): Promise<NodeStatus> {
  const { nodeRegistry } = pspContractsFor(ctx.deployment, { public: ctx.clients.publicClient });
  // getNode reverts with UnknownNode for a key that was never registered.
  if (!(await nodeRegistry.read.isRegistered([nodeKey]))) {
    const zero = "0x0000000000000000000000000000000000000000" as const;
    return { nodeKey, registered: false, operator: zero, signer: zero, roles: [], approved: [], seq: 0, registeredAt: 0, bonded: 0n, unbonding: 0n, unbondingReleaseAt: 0, eligible: [], pending: [], memberOf: [] };
  }
  const info = await nodeRegistry.read.getNode([nodeKey]);
  const registered = true;
  const roles = roleNames(info.roles);
  const eligible: NodeRoleName[] = [];
  const pending: NodeStatus["pending"] = [];
  const params = await nodeRegistry.read.params();
  for (const role of roles) {
    if (await nodeRegistry.read.isEligible([nodeKey, NodeRole[role]])) {
      eligible.push(role);
      continue;
    }
    const since = { onion: 0n, discovery: info.discoverySince, authority: info.authoritySince, oracle: info.oracleSince }[role];
    const delay = role === "discovery" ? params.minDiscoveryAge : params.activationDelay;
    if (since !== 0n) pending.push({ role, activatesAt: Number(since + delay) });
  }
  const memberOf = roleNames(info.memberRoles);
  return {
    nodeKey,
    registered,
    operator: info.operator,
    signer: info.signer,
    roles,
    approved: roleNames(info.approvedRoles),
    seq: info.seq,
    registeredAt: Number(info.registeredAt),
    bonded: info.bonded,
    unbonding: info.unbonding,
    unbondingReleaseAt: Number(info.unbondingReleaseAt),
    eligible,
    pending,
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

/** A signer's consent and the node key's proof for one registration (or signer change). */
export interface NodeConsentProof {
  nodeKey: Hex;
  signer: Address;
  /** The operator the consent names (the account that will send the transaction). */
  operator: Address;
  /** Last second (chain time) the consent is valid. */
  deadline: bigint;
  /** The signer's EIP-712 NodeConsent signature. */
  signerConsent: Hex;
  /** The node key's Ed25519 signature over "psp-node-consent-v1" || the same digest. */
  keyProof: Hex;
}

/**
 * Signs what `registerNode` needs, where the node's keys are: the signer's
 * consent to serve the node for `operator` (with its current nonce) and the
 * node key's proof over the same digest. Valid `validForSeconds` (default an hour).
 */
export async function signNodeRegistration(
  ctx: Pick<OperatorContext, "clients" | "deployment">,
  args: { nodeSecretKey: Uint8Array; signer: Pick<LocalAccount, "address" | "signTypedData">; operator: Address; validForSeconds?: number },
): Promise<NodeConsentProof> {
  const { nodeRegistry } = pspContractsFor(ctx.deployment, { public: ctx.clients.publicClient });
  const nodeKey = nodeKeyHex(ed25519PublicKey(args.nodeSecretKey));
  const now = Number((await ctx.clients.publicClient.getBlock()).timestamp);
  const consent = { nodeKey, operator: args.operator, signer: args.signer.address, nonce: await nodeRegistry.read.nonces([args.signer.address]), deadline: BigInt(now + (args.validForSeconds ?? 3600)) };
  const cctx = { chainId: ctx.deployment.chainId, registry: ctx.deployment.contracts.NodeRegistry.address, consent };
  return {
    nodeKey,
    signer: args.signer.address,
    operator: args.operator,
    deadline: consent.deadline,
    signerConsent: await signNodeConsent(args.signer, cctx),
    keyProof: bytesToHex(signNodeKeyProof(args.nodeSecretKey, nodeConsentDigest(cctx))),
  };
}

/** Registers a node with `roles`; the sending account must be the consent's operator. */
export async function registerNode(ctx: OperatorContext, args: { consent: NodeConsentProof; roles: number }) {
  await assertDeploymentLive(ctx.clients.publicClient, ctx.deployment);
  const me = wallet(ctx).account.address;
  const c = args.consent;
  if (c.operator.toLowerCase() !== me.toLowerCase()) {
    throw new ChainError("bad-argument", `the consent names operator ${c.operator}, but this keystore is ${me}: sign the consent for ${me}`);
  }
  return await transact({
    publicClient: ctx.clients.publicClient,
    walletClient: wallet(ctx),
    address: ctx.deployment.contracts.NodeRegistry.address,
    abi: nodeRegistryAbi,
    functionName: "registerNode",
    args: [c.nodeKey, c.signer, args.roles, c.deadline, c.signerConsent, c.keyProof],
  });
}

/**
 * Joins `role`'s set once the node qualifies and its activation delay has
 * passed (anyone may send it; a free seat is taken, or the lowest member the
 * node outranks is evicted).
 */
export async function activateNode(ctx: OperatorContext, args: { nodeKey: Hex; role: Exclude<NodeRoleName, "onion"> }) {
  await assertDeploymentLive(ctx.clients.publicClient, ctx.deployment);
  return await transact({
    publicClient: ctx.clients.publicClient,
    walletClient: wallet(ctx),
    address: ctx.deployment.contracts.NodeRegistry.address,
    abi: nodeRegistryAbi,
    functionName: "activate",
    args: [args.nodeKey, NodeRole[args.role]],
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

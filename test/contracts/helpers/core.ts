/**
 * Deploy fixture for the core contracts: PSPToken, NodeRegistry, OracleReceipts and
 * BandwidthRewards on a fresh in-process Hardhat chain, wired as on the devnet
 * (slashes go to the reward pool). Plus helpers to register and stake nodes.
 * Shared by the contract tests and scripts/bench/gas-core.ts; no mocks.
 */
import { network } from "hardhat";
import type { ContractReturnType } from "@nomicfoundation/hardhat-viem/types";
import { getAddress, keccak256, parseEther, toHex, type Address, type Hex, type TypedDataDefinition } from "viem";
import { nodeConsentTypedData } from "../../../node/src/chain/consent.js";

export const ROLE_ONION = 1;
export const ROLE_DISCOVERY = 2;
export const ROLE_AUTHORITY = 4;
export const ROLE_ORACLE = 8;

export const INITIAL_SUPPLY = parseEther("1000000000");

export interface RegistryParams {
  minStakeOnion: bigint;
  minStakeDiscovery: bigint;
  minStakeAuthority: bigint;
  minStakeOracle: bigint;
  unbondingDelay: bigint;
  minDiscoveryAge: bigint;
  activationDelay: bigint;
  maxAuthorities: number;
  maxOracles: number;
  attestationFloor: number;
  attestationBps: number;
  approvalRoles: number;
}

export const DEFAULT_PARAMS: RegistryParams = {
  minStakeOnion: parseEther("100"),
  minStakeDiscovery: parseEther("1000"),
  minStakeAuthority: parseEther("1000"),
  minStakeOracle: parseEther("1000"),
  unbondingDelay: 7n * 24n * 3600n,
  minDiscoveryAge: 24n * 3600n,
  activationDelay: 0n,
  maxAuthorities: 5,
  maxOracles: 5,
  attestationFloor: 1,
  attestationBps: 0,
  approvalRoles: ROLE_DISCOVERY,
};

/** A 64-byte stand-in for an Ed25519 key proof: the contracts only carry it (readers and authorities check it). */
export const KEY_PROOF: Hex = `0x${"a5".repeat(64)}`;

export const DEFAULT_EPOCH_LENGTH = 3600n;
export const DEFAULT_DISPUTE_WINDOW = 1800n;
export const DEFAULT_QUORUM_BPS = 6667;

export type Connection = Awaited<ReturnType<typeof network.connect>>;
export type Viem = Connection["viem"];
export type WalletClient = Awaited<ReturnType<Viem["getWalletClients"]>>[number];

export interface CoreOptions {
  params?: Partial<RegistryParams>;
  epochLength?: bigint;
  disputeWindow?: bigint;
  quorumBps?: number;
  /** NodeRegistry.minUnbondingDelay (default: the dispute window). */
  minUnbondingDelay?: bigint;
  /** OracleReceipts revocation quorum (default 6667). */
  revocationQuorumBps?: number;
  /** Epoch 0 start; defaults to the latest block time at deployment. */
  genesis?: bigint;
  /** PSP sent from the admin to each other wallet (default 1,000,000). */
  userBalance?: bigint;
}

export interface CoreFixture {
  connection: Connection;
  viem: Viem;
  networkHelpers: Connection["networkHelpers"];
  publicClient: Awaited<ReturnType<Viem["getPublicClient"]>>;
  /** Wallet 0: token holder, DEFAULT_ADMIN_ROLE and GOVERNANCE_ROLE everywhere. */
  admin: WalletClient;
  /** Wallets 1..n, each funded with `userBalance` PSP. */
  users: WalletClient[];
  params: RegistryParams;
  genesis: bigint;
  epochLength: bigint;
  disputeWindow: bigint;
  quorumBps: number;
  token: ContractReturnType<"PSPToken">;
  registry: ContractReturnType<"NodeRegistry">;
  receipts: ContractReturnType<"OracleReceipts">;
  rewards: ContractReturnType<"BandwidthRewards">;
}

/** A deterministic 32-byte stand-in for an Ed25519 node key. */
export function nodeKeyOf(label: string): Hex {
  return keccak256(toHex(`psp-node-${label}`));
}

/** Deploys and wires the four core contracts on a fresh chain. */
export async function deployCore(options: CoreOptions = {}): Promise<CoreFixture> {
  const connection = await network.connect();
  const { viem, networkHelpers } = connection;
  const publicClient = await viem.getPublicClient();
  const [admin, ...users] = await viem.getWalletClients();
  if (admin === undefined) throw new Error("deployCore: the network has no accounts");
  const params = { ...DEFAULT_PARAMS, ...options.params };
  const epochLength = options.epochLength ?? DEFAULT_EPOCH_LENGTH;
  const disputeWindow = options.disputeWindow ?? DEFAULT_DISPUTE_WINDOW;
  const quorumBps = options.quorumBps ?? DEFAULT_QUORUM_BPS;
  const genesis = options.genesis ?? BigInt(await networkHelpers.time.latest());

  const token = await viem.deployContract("PSPToken", [admin.account.address, INITIAL_SUPPLY]);
  const registry = await viem.deployContract("NodeRegistry", [token.address, admin.account.address, params, options.minUnbondingDelay ?? disputeWindow]);
  const receipts = await viem.deployContract("OracleReceipts", [registry.address, options.revocationQuorumBps ?? DEFAULT_QUORUM_BPS]);
  const rewards = await viem.deployContract("BandwidthRewards", [
    token.address,
    registry.address,
    admin.account.address,
    genesis,
    epochLength,
    disputeWindow,
    quorumBps,
  ]);
  await registry.write.setSlashRecipient([rewards.address]);
  const userBalance = options.userBalance ?? parseEther("1000000");
  for (const user of users) await token.write.transfer([user.account.address, userBalance]);
  return {
    connection,
    viem,
    networkHelpers,
    publicClient,
    admin,
    users,
    params,
    genesis,
    epochLength,
    disputeWindow,
    quorumBps,
    token,
    registry,
    receipts,
    rewards,
  };
}

/** Anything that signs EIP-712 typed data as one address (a wallet client's account or a local account). */
export interface TypedSigner {
  address: Address;
  signTypedData(typed: TypedDataDefinition): Promise<Hex>;
}

/** The Hardhat wallet among the fixture's that holds `address`, as a TypedSigner. */
export function walletSigner(core: Pick<CoreFixture, "admin" | "users">, address: Address): TypedSigner {
  const wallet = [core.admin, ...core.users].find((w) => getAddress(w.account.address) === getAddress(address));
  if (!wallet) throw new Error(`no fixture wallet holds ${address}`);
  return { address: wallet.account.address, signTypedData: (typed) => wallet.signTypedData({ account: wallet.account, ...(typed as TypedDataDefinition) } as never) };
}

/** `signer`'s consent to serve `nodeKey` for `operator` (nonce read from the registry, valid an hour). */
export async function consentOf(
  core: Pick<CoreFixture, "registry" | "networkHelpers" | "publicClient">,
  signer: TypedSigner,
  nodeKey: Hex,
  operator: Address,
): Promise<{ deadline: bigint; signature: Hex }> {
  const nonce = await core.registry.read.nonces([signer.address]);
  const deadline = BigInt(await core.networkHelpers.time.latest()) + 3600n;
  const chainId = await core.publicClient.getChainId();
  const typed = nodeConsentTypedData({ chainId, registry: core.registry.address, consent: { nodeKey, operator, signer: signer.address, nonce, deadline } });
  return { deadline, signature: await signer.signTypedData(typed as TypedDataDefinition) };
}

export interface NodeSpec {
  operator: WalletClient;
  /** Defaults to the operator's own address (so an oracle can send its own transactions); a fixture wallet or a local account. */
  signer?: Address | TypedSigner;
  roles: number;
  stake?: bigint;
  nodeKey?: Hex;
  label?: string;
}

/** The registerNode transaction for `spec` (the signer's consent signed here), wrapped so a revert reaches the assertion. */
export async function registerCall(
  core: CoreFixture,
  spec: { operator: WalletClient; signer: Address | TypedSigner; nodeKey: Hex; roles: number; keyProof?: Hex },
): Promise<{ tx: Promise<Hex> }> {
  const signer = typeof spec.signer === "object" ? spec.signer : walletSigner(core, spec.signer);
  const consent = await consentOf(core, signer, spec.nodeKey, spec.operator.account.address);
  const tx = core.registry.write.registerNode([spec.nodeKey, signer.address, spec.roles, consent.deadline, consent.signature, spec.keyProof ?? KEY_PROOF], {
    account: spec.operator.account,
  });
  return { tx };
}

/** Approves a set role for a node (admin is governance in the fixture). */
export async function approve(core: CoreFixture, nodeKey: Hex, role: number, approved = true): Promise<void> {
  await core.registry.write.approveRole([nodeKey, role, approved]);
}

/** Registers a node and bonds `stake` (approve + stake) from its operator. Returns the node key. */
export async function addNode(core: CoreFixture, spec: NodeSpec): Promise<Hex> {
  const { operator } = spec;
  const account = operator.account;
  const nodeKey = spec.nodeKey ?? nodeKeyOf(spec.label ?? account.address);
  const signer = typeof spec.signer === "object" ? spec.signer : walletSigner(core, spec.signer ?? account.address);
  const consent = await consentOf(core, signer, nodeKey, account.address);
  await core.registry.write.registerNode([nodeKey, signer.address, spec.roles, consent.deadline, consent.signature, KEY_PROOF], { account });
  if (spec.stake !== undefined && spec.stake > 0n) {
    await core.token.write.approve([core.registry.address, spec.stake], { account });
    await core.registry.write.stake([nodeKey, spec.stake], { account });
  }
  return nodeKey;
}

/** Registers `count` oracle nodes (users[0..count), self-signing) staked at `stake` each. */
export async function addOracles(core: CoreFixture, count: number, stake = core.params.minStakeOracle): Promise<WalletClient[]> {
  const oracles = core.users.slice(0, count);
  if (oracles.length < count) throw new Error(`addOracles: only ${core.users.length} wallets available`);
  for (const [i, oracle] of oracles.entries()) {
    await addNode(core, { operator: oracle, roles: ROLE_ORACLE, stake, label: `oracle-${i}` });
  }
  return oracles;
}

/** Moves chain time to the first second after `epoch` ends. */
export async function endEpoch(core: CoreFixture, epoch: bigint): Promise<void> {
  const end = core.genesis + (epoch + 1n) * core.epochLength;
  const now = BigInt(await core.networkHelpers.time.latest());
  if (now < end) await core.networkHelpers.time.increaseTo(end);
}

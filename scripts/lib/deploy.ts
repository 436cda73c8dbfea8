/**
 * Deploys the PSP contracts to any EVM chain, wires them together and hands
 * governance to an OpenZeppelin TimelockController (PSPTimelock): after the
 * deployment the deployer holds no role; parameter changes, role approvals,
 * slashes and role grants go through the timelock's proposers and its delay.
 * BandwidthRewards' GUARDIAN_ROLE (reject a root in its dispute window, reset
 * stuck votes: both only delay payouts) goes to `guardian`, which must act
 * faster than the timelock.
 *
 * Idempotent: given the previous deployment file for the same network, it
 * returns that deployment untouched when the chain id matches and every
 * contract still has code; otherwise it deploys a fresh, complete set (a
 * partial reuse could wire new contracts to stale ones).
 */
import { writeFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { getAddress, parseEther, type Abi, type Address, type Hex } from "viem";
import type { ChainClients } from "../../node/src/chain/clients.js";
import { assertDeploymentLive, COMMERCIAL_CONTRACT, GOVERNANCE_CONTRACT, pspContracts, type Deployment, type PspContract } from "../../node/src/chain/deployment.js";
import { ChainError } from "../../node/src/chain/errors.js";
import { bandwidthRewardsAbi, nodeRegistryAbi } from "../../node/src/chain/generated/abis.js";
import { readArtifact } from "./artifacts.js";

export interface DeployParams {
  /** Tokens minted to the deployer. */
  initialSupply: bigint;
  minStakeOnion: bigint;
  minStakeDiscovery: bigint;
  minStakeAuthority: bigint;
  minStakeOracle: bigint;
  /** Seconds between requesting an unstake and being able to withdraw. */
  unbondingDelay: number;
  /** Seconds a discovery node must have been registered before it counts. */
  minDiscoveryAge: number;
  /** Seconds an authority or oracle node waits after it qualifies before it may join the set. */
  activationDelay: number;
  maxAuthorities: number;
  maxOracles: number;
  /** Identity registrations (and reclaims) need max(floor, ceil(authorities * bps / 10000)) attestations. */
  attestationFloor: number;
  attestationBps: number;
  /** Set roles that need governance approval besides stake. */
  approvalRoles: readonly ("discovery" | "authority" | "oracle")[];
  epochLength: number;
  disputeWindow: number;
  /** Share of the oracle set at a round's first vote that must agree on an epoch root, in basis points. */
  rewardQuorumBps: number;
  /** Share of the oracle set that revokes another oracle's receipt, in basis points. */
  revocationQuorumBps: number;
  /** The timelock's delay in seconds. */
  timelockDelay: number;
  /** Who may schedule and execute timelock operations (default: the deployer; a multisig on a real chain). */
  proposers?: readonly Address[];
  /** Holder of BandwidthRewards' GUARDIAN_ROLE (default: the deployer). */
  guardian?: Address;
  /**
   * NodeRegistry.minUnbondingDelay, fixed for the registry's life (default:
   * disputeWindow + timelockDelay, so a voter's stake is still bonded when a
   * slash scheduled at the end of the dispute window executes).
   */
  minUnbondingDelay?: number;
  /** Epoch 0 starts here (unix seconds); defaults to the latest block's time. */
  rewardsGenesis?: number;
}

/** Production-like defaults: days and weeks. */
export const defaultParams: DeployParams = {
  initialSupply: parseEther("1000000000"),
  minStakeOnion: parseEther("1000"),
  minStakeDiscovery: parseEther("50000"),
  minStakeAuthority: parseEther("100000"),
  minStakeOracle: parseEther("100000"),
  unbondingDelay: 14 * 24 * 3600,
  minDiscoveryAge: 90 * 24 * 3600,
  activationDelay: 7 * 24 * 3600,
  maxAuthorities: 9,
  maxOracles: 15,
  attestationFloor: 3,
  attestationBps: 6667,
  approvalRoles: ["discovery", "authority", "oracle"],
  epochLength: 24 * 3600,
  disputeWindow: 12 * 3600,
  rewardQuorumBps: 6667,
  revocationQuorumBps: 6667,
  timelockDelay: 2 * 24 * 3600,
};

/**
 * Devnet: same rules, seconds instead of days, so everything can be watched
 * live. DEVNET ONLY: a 1 s timelock and activation delay (the devnet script
 * approves and activates its nodes through them at start).
 */
export const devnetParams: DeployParams = {
  ...defaultParams,
  unbondingDelay: 60,
  minDiscoveryAge: 0,
  activationDelay: 1,
  maxAuthorities: 5,
  maxOracles: 5,
  attestationFloor: 2,
  attestationBps: 5001,
  epochLength: 60,
  disputeWindow: 10,
  timelockDelay: 1,
};

const ROLE_BITS = { discovery: 2, authority: 4, oracle: 8 } as const;

export interface DeployOptions {
  clients: ChainClients;
  network: string;
  params: DeployParams;
  /** The deployment file from a previous run, if any. */
  previous?: Deployment;
  log?: (line: string) => void;
}

/** Deploys (or reuses) the full contract set; returns the deployment record. */
export async function deployPsp(opts: DeployOptions): Promise<{ deployment: Deployment; reused: boolean }> {
  const { clients, params } = opts;
  const log = opts.log ?? (() => {});
  const wallet = clients.walletClient;
  if (!wallet) throw new ChainError("bad-argument", "deploying needs an account: pass a keystore or use the devnet's deployer");
  if (opts.previous) {
    try {
      await assertDeploymentLive(clients.publicClient, opts.previous);
      log(`contracts already deployed on chain ${opts.previous.chainId}; reusing ${opts.network} deployment`);
      return { deployment: opts.previous, reused: true };
    } catch (err) {
      if (!(err instanceof ChainError) || (err.kind !== "no-code" && err.kind !== "wrong-chain")) throw err;
      log(`previous deployment is stale (${err.kind}); deploying a fresh set`);
    }
  }
  const admin = wallet.account.address;
  const deployed = {} as Deployment["contracts"];

  const deploy = async (name: PspContract | typeof GOVERNANCE_CONTRACT | typeof COMMERCIAL_CONTRACT, args: readonly unknown[]): Promise<Address> => {
    const artifact = await readArtifact(name);
    const hash = await wallet.deployContract({ abi: artifact.abi, bytecode: artifact.bytecode, args: args as unknown[] });
    const receipt = await clients.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success" || !receipt.contractAddress) {
      throw new ChainError("transaction-reverted", `deploying ${name} failed in transaction ${hash}`);
    }
    const entry = { address: getAddress(receipt.contractAddress), blockNumber: Number(receipt.blockNumber) };
    deployed[name] = entry;
    log(`deployed ${name.padEnd(16)} ${receipt.contractAddress} (gas ${receipt.gasUsed})`);
    return entry.address;
  };

  const genesis = params.rewardsGenesis ?? Number((await clients.publicClient.getBlock()).timestamp);
  const minUnbondingDelay = params.minUnbondingDelay ?? params.disputeWindow + params.timelockDelay;
  const proposers = params.proposers ?? [admin];
  const guardian = params.guardian ?? admin;
  const token = await deploy("PSPToken", [admin, params.initialSupply]);
  const nodeRegistry = await deploy("NodeRegistry", [
    token,
    admin,
    {
      minStakeOnion: params.minStakeOnion,
      minStakeDiscovery: params.minStakeDiscovery,
      minStakeAuthority: params.minStakeAuthority,
      minStakeOracle: params.minStakeOracle,
      unbondingDelay: BigInt(params.unbondingDelay),
      minDiscoveryAge: BigInt(params.minDiscoveryAge),
      activationDelay: BigInt(params.activationDelay),
      maxAuthorities: params.maxAuthorities,
      maxOracles: params.maxOracles,
      attestationFloor: params.attestationFloor,
      attestationBps: params.attestationBps,
      approvalRoles: params.approvalRoles.reduce((mask, role) => mask | ROLE_BITS[role], 0),
    },
    BigInt(minUnbondingDelay),
  ]);
  const rewards = await deploy("BandwidthRewards", [
    token,
    nodeRegistry,
    admin,
    BigInt(genesis),
    BigInt(params.epochLength),
    BigInt(params.disputeWindow),
    params.rewardQuorumBps,
  ]);
  const identities = await deploy("IdentityRegistry", [nodeRegistry]);
  await deploy("Subscriptions", [token, identities, rewards]);
  await deploy("OracleReceipts", [nodeRegistry, params.revocationQuorumBps]);
  // Applications' commercial nodes (issue 17): no governance role, so nothing to hand over.
  await deploy(COMMERCIAL_CONTRACT, [identities, nodeRegistry]);
  const timelock = await deploy(GOVERNANCE_CONTRACT, [BigInt(params.timelockDelay), proposers, proposers]);

  const call = async (address: Address, abi: Abi, functionName: string, args: readonly unknown[]) => {
    const hash = await wallet.writeContract({ address, abi, functionName, args: args as unknown[] });
    const receipt = await clients.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new ChainError("transaction-reverted", `${functionName} failed in transaction ${hash}`);
  };
  // Slashed stake feeds the reward pool, like subscription payments.
  await call(nodeRegistry, nodeRegistryAbi, "setSlashRecipient", [rewards]);
  // Hand governance to the timelock; the deployer keeps nothing.
  const adminRole = await clients.publicClient.readContract({ address: nodeRegistry, abi: nodeRegistryAbi, functionName: "DEFAULT_ADMIN_ROLE" });
  const governanceRole = await clients.publicClient.readContract({ address: nodeRegistry, abi: nodeRegistryAbi, functionName: "GOVERNANCE_ROLE" });
  const guardianRole = await clients.publicClient.readContract({ address: rewards, abi: bandwidthRewardsAbi, functionName: "GUARDIAN_ROLE" });
  await call(nodeRegistry, nodeRegistryAbi, "grantRole", [adminRole, timelock]);
  await call(nodeRegistry, nodeRegistryAbi, "grantRole", [governanceRole, timelock]);
  await call(nodeRegistry, nodeRegistryAbi, "renounceRole", [governanceRole, admin]);
  await call(nodeRegistry, nodeRegistryAbi, "renounceRole", [adminRole, admin]);
  await call(rewards, bandwidthRewardsAbi, "grantRole", [adminRole, timelock]);
  if (getAddress(guardian) !== getAddress(admin)) {
    await call(rewards, bandwidthRewardsAbi, "grantRole", [guardianRole, guardian]);
    await call(rewards, bandwidthRewardsAbi, "renounceRole", [guardianRole, admin]);
  }
  await call(rewards, bandwidthRewardsAbi, "renounceRole", [adminRole, admin]);
  log(`governance: PSPTimelock ${timelock} (delay ${params.timelockDelay} s, proposers ${proposers.join(", ")}), guardian ${guardian}`);

  for (const name of pspContracts) if (!deployed[name]) throw new Error(`internal: ${name} was not deployed`);
  const deployment: Deployment = {
    network: opts.network,
    chainId: clients.chain.id,
    deployer: admin,
    deployedAt: new Date().toISOString(),
    contracts: deployed,
    params: Object.fromEntries(
      Object.entries({ ...params, rewardsGenesis: genesis, minUnbondingDelay, proposers, guardian }).map(([k, v]) => [
        k,
        typeof v === "bigint" ? v.toString() : Array.isArray(v) ? v.join(",") : (v as string | number),
      ]),
    ) as Record<string, string | number>,
  };
  return { deployment, reused: false };
}

export async function writeDeployment(path: string, deployment: Deployment): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(deployment, null, 2) + "\n");
}

export type { Hex };

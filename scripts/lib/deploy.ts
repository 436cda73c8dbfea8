/**
 * Deploys the PSP contracts to any EVM chain and wires them together.
 *
 * Idempotent: given the previous deployment file for the same network, it
 * returns that deployment untouched when the chain id matches and every
 * contract still has code; otherwise it deploys a fresh, complete set (a
 * partial reuse could wire new contracts to stale ones).
 */
import { writeFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { getAddress, parseEther, type Address, type Hex } from "viem";
import type { ChainClients } from "../../node/src/chain/clients.js";
import { assertDeploymentLive, pspContracts, type DeployedContract, type Deployment, type PspContract } from "../../node/src/chain/deployment.js";
import { ChainError } from "../../node/src/chain/errors.js";
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
  maxAuthorities: number;
  maxOracles: number;
  /** Identity registrations need this many current authorities' attestations. */
  attestationThreshold: number;
  epochLength: number;
  disputeWindow: number;
  /** Share of the current oracle set that must agree on an epoch root, in basis points. */
  rewardQuorumBps: number;
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
  maxAuthorities: 9,
  maxOracles: 15,
  attestationThreshold: 5,
  epochLength: 24 * 3600,
  disputeWindow: 12 * 3600,
  rewardQuorumBps: 6667,
};

/** Devnet: same rules, seconds instead of days, so everything can be watched live. */
export const devnetParams: DeployParams = {
  ...defaultParams,
  unbondingDelay: 60,
  minDiscoveryAge: 0,
  maxAuthorities: 5,
  maxOracles: 5,
  attestationThreshold: 2,
  epochLength: 60,
  disputeWindow: 10,
};

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
  const deployed = {} as Record<PspContract, DeployedContract>;

  const deploy = async (name: PspContract, args: readonly unknown[]): Promise<Address> => {
    const artifact = await readArtifact(name);
    const hash = await wallet.deployContract({ abi: artifact.abi, bytecode: artifact.bytecode, args: args as unknown[] });
    const receipt = await clients.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success" || !receipt.contractAddress) {
      throw new ChainError("transaction-reverted", `deploying ${name} failed in transaction ${hash}`);
    }
    deployed[name] = { address: getAddress(receipt.contractAddress), blockNumber: Number(receipt.blockNumber) };
    log(`deployed ${name.padEnd(16)} ${receipt.contractAddress} (gas ${receipt.gasUsed})`);
    return deployed[name].address;
  };

  const genesis = params.rewardsGenesis ?? Number((await clients.publicClient.getBlock()).timestamp);
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
      maxAuthorities: params.maxAuthorities,
      maxOracles: params.maxOracles,
    },
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
  const identities = await deploy("IdentityRegistry", [nodeRegistry, admin, params.attestationThreshold]);
  await deploy("Subscriptions", [token, identities, rewards]);
  await deploy("OracleReceipts", [nodeRegistry]);

  // Slashed stake feeds the reward pool, like subscription payments.
  const registryArtifact = await readArtifact("NodeRegistry");
  const wireHash = await wallet.writeContract({
    address: nodeRegistry,
    abi: registryArtifact.abi,
    functionName: "setSlashRecipient",
    args: [rewards],
  });
  await clients.publicClient.waitForTransactionReceipt({ hash: wireHash });

  for (const name of pspContracts) if (!deployed[name]) throw new Error(`internal: ${name} was not deployed`);
  const deployment: Deployment = {
    network: opts.network,
    chainId: clients.chain.id,
    deployer: admin,
    deployedAt: new Date().toISOString(),
    contracts: deployed,
    params: Object.fromEntries(
      Object.entries({ ...params, rewardsGenesis: genesis }).map(([k, v]) => [k, typeof v === "bigint" ? v.toString() : v]),
    ) as Record<string, string | number>,
  };
  return { deployment, reused: false };
}

export async function writeDeployment(path: string, deployment: Deployment): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(deployment, null, 2) + "\n");
}

export type { Hex };

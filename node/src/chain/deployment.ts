/**
 * Deployment files: `deployments/<network>.json`, written by scripts/deploy.ts
 * and read by every node, script and tool to find the PSP contracts.
 *
 * Owns the file format and its validation. Trusts nothing in the file: every
 * address is checked to be an address, and `assertDeploymentLive` checks the
 * chain id and that code exists at each address before anything is sent.
 */
import { readFile } from "node:fs/promises";
import { getAddress, isAddress, type Address, type PublicClient } from "viem";
import { ChainError } from "./errors.js";

/** The contracts every PSP deployment has, in deployment order. */
export const pspContracts = [
  "PSPToken",
  "NodeRegistry",
  "BandwidthRewards",
  "IdentityRegistry",
  "Subscriptions",
  "OracleReceipts",
] as const;
export type PspContract = (typeof pspContracts)[number];

/**
 * The governance timelock (OpenZeppelin TimelockController) deployments since
 * issue 13 hand the governance roles to. Optional in the file: nodes never
 * need it, and files written before it still parse; governance tools require it.
 */
export const GOVERNANCE_CONTRACT = "PSPTimelock" as const;

/**
 * The commercial-node list (issue 17, contracts/CommercialNodes.sol). Optional
 * in the file like the timelock: files written before it still parse, and only
 * discovery nodes, commercial nodes and app tooling need it.
 */
export const COMMERCIAL_CONTRACT = "CommercialNodes" as const;

export interface DeployedContract {
  address: Address;
  /** Block in which it was deployed; event followers start here. */
  blockNumber: number;
}

export interface Deployment {
  network: string;
  chainId: number;
  deployer: Address;
  deployedAt: string;
  contracts: Record<PspContract, DeployedContract> & { [GOVERNANCE_CONTRACT]?: DeployedContract; [COMMERCIAL_CONTRACT]?: DeployedContract };
  /** Constructor parameters, for operators reading the file. */
  params: Record<string, string | number>;
}

/** Parses and validates a deployment file's JSON text. */
export function parseDeployment(text: string, source = "deployment file"): Deployment {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ChainError("bad-deployment", `${source} is not valid JSON: redeploy with \`npm run deploy\``, { cause: err });
  }
  const bad = (what: string) => new ChainError("bad-deployment", `${source}: ${what}`);
  if (typeof raw !== "object" || raw === null) throw bad("expected a JSON object");
  const obj = raw as Record<string, unknown>;
  if (typeof obj.chainId !== "number" || !Number.isSafeInteger(obj.chainId) || obj.chainId <= 0) throw bad("chainId must be a positive integer");
  if (typeof obj.network !== "string") throw bad("network must be a string");
  if (typeof obj.deployer !== "string" || !isAddress(obj.deployer)) throw bad("deployer must be an address");
  if (typeof obj.contracts !== "object" || obj.contracts === null) throw bad("contracts must be an object");
  const contracts = {} as Deployment["contracts"];
  const entryOf = (name: string): DeployedContract | undefined => {
    const entry = (obj.contracts as Record<string, unknown>)[name] as Record<string, unknown> | undefined;
    if (entry === undefined) return undefined;
    if (typeof entry.address !== "string" || !isAddress(entry.address)) throw bad(`contracts.${name}.address is not an address`);
    return { address: getAddress(entry.address), blockNumber: typeof entry.blockNumber === "number" ? entry.blockNumber : 0 };
  };
  for (const name of pspContracts) {
    const entry = entryOf(name);
    if (!entry) throw bad(`contracts.${name}.address is missing or not an address`);
    contracts[name] = entry;
  }
  const timelock = entryOf(GOVERNANCE_CONTRACT);
  if (timelock) contracts[GOVERNANCE_CONTRACT] = timelock;
  const commercial = entryOf(COMMERCIAL_CONTRACT);
  if (commercial) contracts[COMMERCIAL_CONTRACT] = commercial;
  return {
    network: obj.network,
    chainId: obj.chainId,
    deployer: getAddress(obj.deployer),
    deployedAt: typeof obj.deployedAt === "string" ? obj.deployedAt : "",
    contracts,
    params: (obj.params ?? {}) as Record<string, string | number>,
  };
}

/** Reads `path`; a missing file is a `missing-deployment` error saying how to make one. */
export async function readDeployment(path: string): Promise<Deployment> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ChainError(
      "missing-deployment",
      `no deployment at ${path}: deploy the contracts first (\`npm run deploy -- --rpc <url>\`) or pass --deployment`,
      { cause: err },
    );
  }
  return parseDeployment(text, path);
}

/**
 * Checks that the chain behind `client` is the one the deployment was made on
 * and that every contract has code there. Call before sending anything.
 */
export async function assertDeploymentLive(client: PublicClient, deployment: Deployment): Promise<void> {
  const chainId = await client.getChainId();
  if (chainId !== deployment.chainId) {
    throw new ChainError(
      "wrong-chain",
      `the RPC serves chain ${chainId} but the deployment is for chain ${deployment.chainId}: point --rpc at the right chain or use that chain's deployment file`,
    );
  }
  const names = [
    ...pspContracts,
    ...(deployment.contracts[GOVERNANCE_CONTRACT] ? [GOVERNANCE_CONTRACT] : []),
    ...(deployment.contracts[COMMERCIAL_CONTRACT] ? [COMMERCIAL_CONTRACT] : []),
  ];
  for (const name of names) {
    const code = await client.getCode({ address: deployment.contracts[name]!.address });
    if (!code || code === "0x") {
      throw new ChainError(
        "no-code",
        `${name} has no code at ${deployment.contracts[name]!.address} on chain ${chainId}: the chain was reset; redeploy with \`npm run deploy\``,
      );
    }
  }
}

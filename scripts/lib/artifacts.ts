/**
 * Reads compiled contracts from Hardhat's artifacts folder (`npm run build:contracts`).
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Abi, Hex } from "viem";

export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface ContractArtifact {
  contractName: string;
  abi: Abi;
  bytecode: Hex;
}

export async function readArtifact(contractName: string): Promise<ContractArtifact> {
  const path = join(projectRoot, "artifacts", "contracts", `${contractName}.sol`, `${contractName}.json`);
  try {
    return JSON.parse(await readFile(path, "utf8")) as ContractArtifact;
  } catch (err) {
    throw new Error(`no compiled artifact for ${contractName} at ${path}: run \`npm run build:contracts\` first`, { cause: err });
  }
}

/**
 * The project root, and compiled contracts from Hardhat's artifacts folder
 * (`npm run build:contracts`, run by `npm ci` through `prepare`).
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Abi, Hex } from "viem";

/**
 * The checkout's root: the nearest folder above this file holding
 * hardhat.config.ts, so the path is the same whether this runs from
 * scripts/lib (tsx) or from build/scripts/lib (compiled).
 */
function findProjectRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "hardhat.config.ts"))) return dir;
    if (dirname(dir) === dir) throw new Error(`no hardhat.config.ts above ${from}: is this a PSP checkout?`);
  }
}

export const projectRoot = findProjectRoot(dirname(fileURLToPath(import.meta.url)));

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
    throw new Error(`no compiled artifact for ${contractName} at ${path}: run \`npm run build\` first`, { cause: err });
  }
}

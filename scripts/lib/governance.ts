/**
 * Governance through the deployment's PSPTimelock (OpenZeppelin
 * TimelockController): schedule a batch of calls, wait out the delay, execute.
 * The devnet and the integration tests use it to approve their nodes for the
 * discovery, authority and oracle sets; on a real chain the same batches are
 * proposed by the multisig that holds PROPOSER_ROLE (docs/OPERATIONS.md).
 *
 * Owns nothing on chain. Trusts the deployment file for the addresses.
 */
import { encodeFunctionData, keccak256, toHex, zeroHash, type Abi, type Address, type Hex } from "viem";
import type { ChainClients } from "../../node/src/chain/clients.js";
import type { Deployment } from "../../node/src/chain/deployment.js";
import { ChainError } from "../../node/src/chain/errors.js";
import { nodeRegistryAbi, pspTimelockAbi } from "../../node/src/chain/generated/abis.js";
import { transact } from "../../node/src/chain/transact.js";

export interface GovernanceCall {
  target: Address;
  data: Hex;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until a transaction mined now would run at or after `at` (unix seconds):
 * the wall clock has passed it, and the next block's timestamp (at least the
 * latest + 1) would too.
 */
async function waitUntil(clients: ChainClients, at: bigint): Promise<void> {
  for (;;) {
    const latest = (await clients.publicClient.getBlock()).timestamp;
    const wall = BigInt(Math.floor(Date.now() / 1000));
    const next = latest + 1n > wall ? latest + 1n : wall;
    if (next >= at) return;
    await sleep(Number(at - next) * 1000);
  }
}

/**
 * Sends a call that only becomes valid at a time (a ready timelock operation, an
 * activation): without the usual simulation, which runs at the latest block's
 * time and would see it not yet valid while no new block was mined; a revert
 * still surfaces through the receipt.
 */
async function sendTimed(clients: ChainClients, call: { address: Address; abi: Abi; functionName: string; args: readonly unknown[] }): Promise<void> {
  const wallet = clients.walletClient!;
  const hash = await wallet.writeContract({ ...call, args: call.args as unknown[], account: wallet.account, chain: wallet.chain, gas: 3_000_000n });
  const receipt = await clients.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new ChainError("transaction-reverted", `${call.functionName} reverted in transaction ${hash}`);
}

/**
 * Schedules `calls` as one timelock batch from `clients`' account (a proposer),
 * waits until it is ready and executes it (the account must be an executor).
 */
export async function governanceExecute(clients: ChainClients, deployment: Deployment, calls: readonly GovernanceCall[]): Promise<void> {
  if (calls.length === 0) return;
  const wallet = clients.walletClient;
  if (!wallet) throw new ChainError("bad-argument", "governance needs a proposer account");
  const entry = deployment.contracts.PSPTimelock;
  if (!entry) throw new ChainError("bad-deployment", "the deployment file names no PSPTimelock (deployed before governance moved to a timelock): redeploy with `npm run deploy`");
  const timelock = entry.address;
  const base = { publicClient: clients.publicClient, walletClient: wallet, address: timelock, abi: pspTimelockAbi } as const;
  const read = clients.publicClient;
  const delay = await read.readContract({ address: timelock, abi: pspTimelockAbi, functionName: "getMinDelay" });
  const targets = calls.map((c) => c.target);
  const values = calls.map(() => 0n);
  const payloads = calls.map((c) => c.data);
  const salt = keccak256(toHex(`psp-governance-${Date.now()}-${Math.random()}`));
  await transact({ ...base, functionName: "scheduleBatch", args: [targets, values, payloads, zeroHash, salt, delay] });
  const id = await read.readContract({ address: timelock, abi: pspTimelockAbi, functionName: "hashOperationBatch", args: [targets, values, payloads, zeroHash, salt] });
  const readyAt = await read.readContract({ address: timelock, abi: pspTimelockAbi, functionName: "getTimestamp", args: [id] });
  await waitUntil(clients, readyAt);
  await sendTimed(clients, { address: timelock, abi: pspTimelockAbi, functionName: "executeBatch", args: [targets, values, payloads, zeroHash, salt] });
}

const SET_ROLE_BITS = [2, 4, 8] as const;

/**
 * Makes `nodes` members of the sets their role bits name: governance approves
 * the roles that need approval (one timelock batch), then each node activates
 * once its activation delay has passed. Nodes must be registered and staked.
 */
export async function admitNodes(clients: ChainClients, deployment: Deployment, nodes: readonly { nodeKey: Hex; roles: number }[]): Promise<void> {
  const registry = deployment.contracts.NodeRegistry.address;
  const read = clients.publicClient;
  const params = await read.readContract({ address: registry, abi: nodeRegistryAbi, functionName: "params" });
  const approvals: GovernanceCall[] = [];
  for (const node of nodes) {
    for (const role of SET_ROLE_BITS) {
      if ((node.roles & role) !== 0 && (params.approvalRoles & role) !== 0) {
        approvals.push({ target: registry, data: encodeFunctionData({ abi: nodeRegistryAbi, functionName: "approveRole", args: [node.nodeKey, role, true] }) });
      }
    }
  }
  await governanceExecute(clients, deployment, approvals);
  for (const node of nodes) {
    for (const role of SET_ROLE_BITS) {
      if ((node.roles & role) === 0) continue;
      if (await read.readContract({ address: registry, abi: nodeRegistryAbi, functionName: "isMember", args: [node.nodeKey, role] })) continue;
      const info = await read.readContract({ address: registry, abi: nodeRegistryAbi, functionName: "getNode", args: [node.nodeKey] });
      const since = role === 2 ? info.discoverySince : role === 4 ? info.authoritySince : info.oracleSince;
      if (since === 0n) continue; // not qualified (stake below the role's minimum): stays out
      await waitUntil(clients, since + (role === 2 ? params.minDiscoveryAge : params.activationDelay));
      await sendTimed(clients, { address: registry, abi: nodeRegistryAbi, functionName: "activate", args: [node.nodeKey, role] });
    }
  }
}

/**
 * The devnet's reward loop, shown (issue 16): the nodes carrying the demo
 * stream report their bytes, the viewers theirs, the oracles settle each
 * short epoch on chain; once a root is final this claims it for every node
 * operator that earned something, in one transaction each, and prints what
 * was paid. Later epochs keep settling (the oracles do that, not this);
 * `psp operator rewards --node-key <hex>` shows them.
 *
 * Uses what an operator would: the chain bindings, and an oracle's proof
 * through a PSP client's circuit, checked against the agreed root.
 */
import { formatEther, getAddress, type Address } from "viem";
import { connectChain } from "../../node/src/chain/clients.js";
import { readDeployment } from "../../node/src/chain/deployment.js";
import { createRewardsView, rewardsAddress } from "../../node/src/chain/rewards.js";
import type { PspClient } from "../../node/src/client/client.js";
import { readDevnetState } from "../../node/src/client/devnet-state.js";
import { claimNewestRewards, operatorRewards } from "../../node/src/cli/operator-rewards.js";
import { devAccount } from "./devnet-accounts.js";

export interface RewardsDemoResult {
  epoch: number;
  /** Wei paid per operator claimed for, and the final epoch each claim went against (a newer root may turn final between claims). */
  paid: { node: string; account: Address; amount: bigint; epoch: number }[];
}

/**
 * Waits for the first final root that pays something, then claims it for
 * every operator that earned. Polls every `pollMs`; resolves with what was paid.
 */
export async function runRewardsDemo(options: {
  stateFile: string;
  client: PspClient;
  log: (line: string) => void;
  stopped: () => boolean;
  pollMs?: number;
}): Promise<RewardsDemoResult | undefined> {
  const state = await readDevnetState(options.stateFile);
  const deployment = await readDeployment(state.deploymentFile);
  const reader = await connectChain({ rpcUrl: state.rpcUrl, expectedChainId: state.chainId });
  const view = createRewardsView(reader, rewardsAddress(deployment));
  const ask = (account: Address) => (epoch?: number) => options.client.oracle.rewardProof({ account, ...(epoch === undefined ? {} : { epoch }) });
  for (;;) {
    if (options.stopped()) return undefined;
    const finalEpoch = await view.latestFinalEpoch();
    if (finalEpoch !== undefined && (await view.epoch(finalEpoch)).cumulativeTotal > 0n) break;
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 3_000));
  }
  const epoch = Number(await view.latestFinalEpoch());
  const record = await view.epoch(BigInt(epoch));
  options.log(
    `rewards  epoch ${epoch} settled on chain: ${formatEther(record.cumulativeTotal)} PSP owed in total (root ${record.root.slice(0, 10)}…, final after its dispute window)`,
  );
  const paid: RewardsDemoResult["paid"] = [];
  // The devnet's operators are Hardhat accounts 1.., in node order (devnet.ts).
  for (const [i, node] of state.nodes.entries()) {
    const account = getAddress(node.operator);
    const rewards = await operatorRewards(view, ask(account), account);
    if (!rewards.finalLeaf || rewards.claimable === 0n) continue;
    const operator = devAccount(1 + i);
    if (getAddress(operator.address) !== account) continue;
    const sender = await connectChain({ rpcUrl: state.rpcUrl, expectedChainId: state.chainId, account: operator });
    const { paid: amount, leaf } = await claimNewestRewards({ view, ask: ask(account), account, clients: sender, read: rewards });
    paid.push({ node: node.name, account, amount, epoch: leaf.epoch });
  }
  const total = paid.reduce((sum, p) => sum + p.amount, 0n);
  options.log(
    `rewards  claimed ${formatEther(total)} PSP for ${paid.length} operators (${paid.map((p) => `${p.node} ${formatEther(p.amount)}`).join(", ")}); see \`npx psp operator rewards --node-key <hex>\``,
  );
  return { epoch, paid };
}

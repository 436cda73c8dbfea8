/**
 * `psp operator rewards` and `psp operator claim`: what an operator account
 * earned for the bandwidth its nodes carried, and claiming it
 * (docs/spec/rewards.md "Claims").
 *
 *   psp operator rewards --account 0x…        per-epoch earnings, claimed, claimable, pending
 *   psp operator claim --keystore op.json     claims everything claimable in one transaction
 *
 * Amounts are cumulative: the newest final root holds every epoch's earnings
 * up to it, so one claim covers every epoch since the last claim. The chain
 * says what is agreed, final and claimed; an oracle (reached through a
 * circuit, like any client reaches one) serves the account's leaf and proof,
 * which the contract checks. On the devnet --node-key picks that node's
 * operator account (and its keystore, for claim).
 *
 * Trusts: the chain (after the deployment's chain-id check); an oracle's
 * answer only as far as the contract accepts its proof (a proof that does not
 * lead to the agreed root is refused before any transaction is sent).
 */
import type { Command } from "commander";
import { formatEther, getAddress, isAddress, type Address, type Hex } from "viem";
import type { ChainClients } from "../chain/clients.js";
import { claimRewards, createRewardsView, rewardsAddress, type RewardsView } from "../chain/rewards.js";
import { ChainError } from "../chain/errors.js";
import { nodeKeyHex } from "../chain/staking.js";
import { verifyRewardProof } from "../rewards/merkle.js";
import type { RewardProofAnswer } from "../stream/oracle-client.js";
import {
  addChainOptions,
  chainContext,
  defaultDevnetAccount,
  deploymentPath,
  loadKeystoreAccount,
  type ChainCliOptions,
  type DevnetAccountChoice,
} from "./chain-context.js";
import { anonymousClientOptions, closeClient, openClient, warnLine } from "./client-options.js";
import { devnetFor } from "./devnet-defaults.js";
import { jsonText } from "./output.js";
import { withProgress } from "./progress.js";

type RewardOpts = ChainCliOptions & { account?: string; nodeKey?: string; bootstrap?: string; json?: boolean };

/** What `rewards` prints (and `--json` writes). */
export interface OperatorRewards {
  account: Address;
  /** Cumulative amount claimed so far, wei. */
  claimed: bigint;
  /** Payable now against the newest final root, wei. */
  claimable: bigint;
  /** Agreed but still disputable, wei. */
  pending: bigint;
  /** Computed by the oracle, not agreed on chain yet, wei. */
  unsettled: bigint;
  newestFinalEpoch: number | undefined;
  lastAgreedEpoch: number | undefined;
  epochs: { epoch: number; earned: bigint; status: "final" | "disputable" | "computed" }[];
}

function options(cmd: Command): Command {
  return addChainOptions(cmd)
    .option("--account <address>", "the operator account (default: the keystore's, or on the devnet the operator of --node-key)")
    .option("--node-key <hex>", "devnet: a node whose operator account to use")
    .option("--bootstrap <file>", "where the client starts to reach an oracle (default devnet/state.json)");
}

/** On the devnet, the operator of --node-key. */
const nodeOperator =
  (nodeKey: string | undefined): DevnetAccountChoice =>
  (state) =>
    nodeKey === undefined ? defaultDevnetAccount(state) : state.nodes.find((n) => n.nodeKey.toLowerCase() === nodeKeyHex(nodeKey).toLowerCase())?.operator;

async function accountOf(opts: RewardOpts & { keystore?: string }): Promise<Address> {
  if (opts.account !== undefined) {
    if (!isAddress(opts.account)) throw new ChainError("bad-argument", `--account ${opts.account} is not an EVM address`);
    return getAddress(opts.account);
  }
  if (opts.keystore !== undefined) return (await loadKeystoreAccount(opts.keystore)).address;
  const devnet = await devnetFor(deploymentPath(opts));
  const chosen = devnet && opts.nodeKey !== undefined ? nodeOperator(opts.nodeKey)(devnet) : undefined;
  if (!chosen) throw new ChainError("bad-argument", "name the operator account: --account <address>, --keystore <file>, or on the devnet --node-key <hex>");
  return getAddress(chosen);
}

/** The oracle's answer for `epoch`, checked against that epoch's agreed root before anything relies on it. */
async function provenLeaf(view: RewardsView, ask: (epoch?: number) => Promise<RewardProofAnswer>, account: Address, epoch: number): Promise<RewardProofAnswer> {
  const answer = await ask(epoch);
  const agreed = await view.epoch(BigInt(epoch));
  if (answer.epoch !== epoch || answer.root.toLowerCase() !== agreed.root.toLowerCase())
    throw new ChainError("bad-argument", `the oracle answered for another root than epoch ${epoch}'s agreed ${agreed.root}: retry (another oracle may answer)`);
  if (answer.amount > 0n && !verifyRewardProof(agreed.root, account, answer.amount, answer.proof))
    throw new ChainError("bad-argument", `the oracle's proof for ${account} does not lead to epoch ${epoch}'s agreed root: retry (another oracle may answer)`);
  return answer;
}

/** Reads everything `rewards` shows. */
export async function operatorRewards(
  view: RewardsView,
  ask: (epoch?: number) => Promise<RewardProofAnswer>,
  account: Address,
): Promise<OperatorRewards & { finalLeaf?: RewardProofAnswer }> {
  const [claimed, finalEpoch, lastEpoch] = await Promise.all([view.claimed(account), view.latestFinalEpoch(), view.lastAgreedEpoch()]);
  const newestFinalEpoch = finalEpoch === undefined ? undefined : Number(finalEpoch);
  const lastAgreedEpoch = lastEpoch === undefined ? undefined : Number(lastEpoch);
  const finalLeaf = newestFinalEpoch === undefined ? undefined : await provenLeaf(view, ask, account, newestFinalEpoch);
  const lastLeaf =
    lastAgreedEpoch === undefined ? undefined : lastAgreedEpoch === newestFinalEpoch ? finalLeaf : await provenLeaf(view, ask, account, lastAgreedEpoch);
  // Earnings per epoch come with every answer; the newest one computed is in any of them.
  const epochs = (lastLeaf ?? finalLeaf ?? (await ask())).epochs.map((e) => ({
    epoch: e.epoch,
    earned: e.amount,
    status: (newestFinalEpoch !== undefined && e.epoch <= newestFinalEpoch
      ? "final"
      : lastAgreedEpoch !== undefined && e.epoch <= lastAgreedEpoch
        ? "disputable"
        : "computed") as "final" | "disputable" | "computed",
  }));
  const finalAmount = finalLeaf?.amount ?? 0n;
  const lastAmount = lastLeaf?.amount ?? finalAmount;
  const unsettled = epochs.filter((e) => e.status === "computed").reduce((sum, e) => sum + e.earned, 0n);
  return {
    account,
    claimed,
    claimable: finalAmount > claimed ? finalAmount - claimed : 0n,
    pending: lastAmount - finalAmount,
    unsettled,
    newestFinalEpoch,
    lastAgreedEpoch,
    epochs,
    ...(finalLeaf ? { finalLeaf } : {}),
  };
}

/** How often a claim is retried when a newer root turned final between reading the leaf and the claim. */
const CLAIM_ATTEMPTS = 3;

/**
 * Claims everything `account` can claim against the newest final root, in
 * one transaction. A newer root can turn final between reading the leaf and
 * the claim being mined (the contract then refuses `RootSuperseded`): the
 * leaf is read and proven again and the claim resent, up to CLAIM_ATTEMPTS
 * times. `read` is a reading already made, used for the first attempt.
 * Throws ChainError "bad-argument" when there is nothing to claim.
 */
export async function claimNewestRewards(opts: {
  view: RewardsView;
  ask: (epoch?: number) => Promise<RewardProofAnswer>;
  account: Address;
  clients: ChainClients;
  read?: Awaited<ReturnType<typeof operatorRewards>>;
}): Promise<{ hash: Hex; paid: bigint; leaf: RewardProofAnswer }> {
  let state = opts.read ?? (await operatorRewards(opts.view, opts.ask, opts.account));
  for (let attempt = 1; ; attempt++) {
    const leaf = state.finalLeaf;
    if (!leaf || state.claimable === 0n)
      throw new ChainError(
        "bad-argument",
        `nothing to claim for ${opts.account}: ${state.newestFinalEpoch === undefined ? "no root is final yet" : `claimed ${psp(state.claimed)} of ${psp(leaf?.amount ?? 0n)}`}; pending ${psp(state.pending)}`,
      );
    try {
      const { hash, paid } = await claimRewards({
        clients: opts.clients,
        address: opts.view.address,
        epoch: BigInt(leaf.epoch),
        account: opts.account,
        cumulativeAmount: leaf.amount,
        proof: leaf.proof as Hex[],
      });
      return { hash, paid, leaf };
    } catch (err) {
      if (attempt >= CLAIM_ATTEMPTS || !ChainError.is(err, "transaction-reverted") || !/RootSuperseded/.test(err.message)) throw err;
      state = await operatorRewards(opts.view, opts.ask, opts.account);
    }
  }
}

const psp = (wei: bigint): string => `${formatEther(wei)} PSP`;
const json = (value: unknown): string => jsonText(value);

function print(r: OperatorRewards): void {
  const lines = [
    `account     ${r.account}`,
    `claimed     ${psp(r.claimed)}`,
    `claimable   ${psp(r.claimable)}${r.newestFinalEpoch === undefined ? " (no final root yet)" : ` (final up to epoch ${r.newestFinalEpoch})`}`,
    `pending     ${psp(r.pending)}${r.lastAgreedEpoch !== undefined && r.lastAgreedEpoch !== r.newestFinalEpoch ? ` (epoch ${r.lastAgreedEpoch}, in its dispute window)` : ""}`,
    `unsettled   ${psp(r.unsettled)} (computed by the oracles, not agreed on chain yet)`,
  ];
  if (r.epochs.length > 0) lines.push("epoch  earned  status", ...r.epochs.map((e) => `${String(e.epoch).padStart(5)}  ${psp(e.earned)}  ${e.status}`));
  console.log(lines.join("\n"));
}

/** Adds `rewards` and `claim` to `psp operator`. */
export function addRewardCommands(program: Command): void {
  options(program.command("rewards").description("show what an operator account earned per epoch, and what it can claim"))
    .option("--json", "print JSON")
    .action(async (opts: RewardOpts) => {
      const account = await accountOf(opts);
      const ctx = await chainContext(opts, false);
      const view = createRewardsView(ctx.clients, rewardsAddress(ctx.deployment));
      const client = await openClient(anonymousClientOptions(opts.bootstrap), warnLine);
      try {
        const { finalLeaf: _leaf, ...shown } = await operatorRewards(
          view,
          (epoch) => client.oracle.rewardProof({ account, ...(epoch === undefined ? {} : { epoch }) }),
          account,
        );
        if (opts.json) console.log(json(shown));
        else print(shown);
      } finally {
        await closeClient(client);
      }
    });

  options(program.command("claim").description("claim everything the account can claim, in one transaction (every epoch since the last claim)"))
    .option("--keystore <file>", "the ethers JSON keystore that sends the claim (on the devnet: the operator's)")
    .option("--json", "print JSON")
    .action(async (opts: RewardOpts & { keystore?: string }) => {
      const ctx = await chainContext(opts, true, nodeOperator(opts.nodeKey));
      const account = opts.account !== undefined ? await accountOf(opts) : ctx.clients.walletClient!.account!.address;
      const view = createRewardsView(ctx.clients, rewardsAddress(ctx.deployment));
      const client = await openClient(anonymousClientOptions(opts.bootstrap), warnLine);
      try {
        const ask = (epoch?: number) => client.oracle.rewardProof({ account, ...(epoch === undefined ? {} : { epoch }) });
        const first = await operatorRewards(view, ask, account);
        const { hash, paid, leaf } = await withProgress(
          `claim ${psp(first.claimable)} for ${account}, every epoch up to ${first.finalLeaf?.epoch ?? "none"}`,
          async (report) => {
            report.output("sending the claim and waiting until it is mined");
            return await claimNewestRewards({ view, ask, account, clients: ctx.clients, read: first });
          },
          opts,
        );
        if (opts.json) console.log(json({ account, epoch: leaf.epoch, paid, tx: hash }));
        else console.log(`claimed ${psp(paid)} for ${account}, every epoch up to ${leaf.epoch} (tx ${hash})`);
      } finally {
        await closeClient(client);
      }
    });
}

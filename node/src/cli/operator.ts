/**
 * `psp operator register | stake | unstake | withdraw | status` (also
 * `npm run operator -- …`): a node operator's staking actions on the
 * NodeRegistry, from an ethers JSON keystore (--keystore, on the devnet the
 * node operator's keystore the devnet wrote; passphrase from
 * PSP_KEYSTORE_PASSWORD or the terminal).
 */
import { Command } from "commander";
import { formatEther, isAddress, parseEther, type Address } from "viem";
import { parseRoles } from "../chain/contracts.js";
import { nodeKeyHex, nodeStatus, registerNode, requestUnstake, stakeNode, tokenBalance, withdrawStake } from "../chain/staking.js";
import { addChainOptions, chainContext, defaultDevnetAccount, type ChainCliOptions, type DevnetAccountChoice } from "./chain-context.js";

/** On the devnet, the operator of the node named by --node-key (or the default account for a node it does not know). */
const nodeOperator =
  (nodeKey: string): DevnetAccountChoice =>
  (state) =>
    state.nodes.find((n) => n.nodeKey.toLowerCase() === nodeKeyHex(nodeKey).toLowerCase())?.operator ?? defaultDevnetAccount(state);

function chainOptions(cmd: Command): Command {
  return addChainOptions(cmd)
    .option("--keystore <file>", "operator's ethers JSON keystore (on the devnet: the node's operator account)")
    .requiredOption("--node-key <hex>", "the node's Ed25519 identity public key (64 hex digits)");
}

function amount(value: string): bigint {
  if (!/^\d+(\.\d+)?$/.test(value)) throw new Error(`amount "${value}" is not a decimal number of PSP`);
  return parseEther(value);
}

type Opts = ChainCliOptions & { nodeKey: string };

export function operatorProgram(): Command {
  const program = new Command("operator").description("PSP node operator actions on the NodeRegistry").showHelpAfterError("(add --help for the usage)");

  chainOptions(program.command("register").description("register a node; you become its operator"))
    .requiredOption("--signer <address>", "EVM address the node signs attestations and oracle transactions with")
    .requiredOption("--roles <list>", "comma-separated: onion, discovery, authority, oracle")
    .action(async (opts: Opts & { signer: string; roles: string }) => {
      if (!isAddress(opts.signer)) throw new Error(`--signer ${opts.signer} is not an EVM address`);
      const ctx = await chainContext(opts, true, nodeOperator(opts.nodeKey));
      const { hash } = await registerNode(ctx, { nodeKey: nodeKeyHex(opts.nodeKey), signer: opts.signer as Address, roles: parseRoles(opts.roles) });
      console.log(`registered node ${nodeKeyHex(opts.nodeKey)} (tx ${hash})`);
    });

  chainOptions(program.command("stake").description("bond PSP to the node (permit when the allowance is short)"))
    .requiredOption("--amount <psp>", "amount in PSP, e.g. 100000")
    .action(async (opts: Opts & { amount: string }) => {
      const ctx = await chainContext(opts, true, nodeOperator(opts.nodeKey));
      const { hash } = await stakeNode(ctx, { nodeKey: nodeKeyHex(opts.nodeKey), amount: amount(opts.amount) });
      console.log(`staked ${opts.amount} PSP (tx ${hash})`);
    });

  chainOptions(program.command("unstake").description("start unbonding part of the node's stake"))
    .requiredOption("--amount <psp>", "amount in PSP")
    .action(async (opts: Opts & { amount: string }) => {
      const ctx = await chainContext(opts, true, nodeOperator(opts.nodeKey));
      const { hash } = await requestUnstake(ctx, { nodeKey: nodeKeyHex(opts.nodeKey), amount: amount(opts.amount) });
      console.log(`unbonding ${opts.amount} PSP (tx ${hash})`);
    });

  chainOptions(program.command("withdraw").description("withdraw matured unbonding stake")).action(async (opts: Opts) => {
    const ctx = await chainContext(opts, true, nodeOperator(opts.nodeKey));
    const { hash } = await withdrawStake(ctx, { nodeKey: nodeKeyHex(opts.nodeKey) });
    console.log(`withdrawn (tx ${hash})`);
  });

  chainOptions(program.command("status").description("show the node's stake, roles and set membership"))
    .option("--json", "print JSON")
    .action(async (opts: Opts & { json?: boolean }) => {
      const ctx = await chainContext(opts, false);
      const s = await nodeStatus(ctx, nodeKeyHex(opts.nodeKey));
      if (opts.json) {
        console.log(JSON.stringify(s, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2));
        return;
      }
      if (!s.registered) {
        console.log(`node ${s.nodeKey} is not registered`);
        return;
      }
      console.log(
        [
          `node        ${s.nodeKey}`,
          `operator    ${s.operator} (balance ${formatEther(await tokenBalance(ctx, s.operator))} PSP)`,
          `signer      ${s.signer}`,
          `roles       ${s.roles.join(", ")}${s.discoveryApproved ? " (discovery approved)" : ""}`,
          `bonded      ${formatEther(s.bonded)} PSP`,
          `unbonding   ${formatEther(s.unbonding)} PSP${s.unbonding > 0n ? ` until ${new Date(s.unbondingReleaseAt * 1000).toISOString()}` : ""}`,
          `eligible    ${s.eligible.join(", ") || "none"}`,
          `member of   ${s.memberOf.join(", ") || "no current set"}`,
        ].join("\n"),
      );
    });
  return program;
}

export function register(program: Command): void {
  program.addCommand(operatorProgram());
}

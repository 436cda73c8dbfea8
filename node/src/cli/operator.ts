/**
 * `psp operator consent | register | stake | activate | unstake | withdraw | status | rewards | claim` (also
 * `npm run operator -- …`): a node operator's staking actions on the
 * NodeRegistry, from an ethers JSON keystore (--keystore, on the devnet the
 * node operator's keystore the devnet wrote; passphrase from
 * PSP_KEYSTORE_PASSWORD or the terminal). `rewards` and `claim` are
 * operator-rewards.ts's. Commands that send a transaction show their
 * progress on stderr while it is mined (progress.ts); with `--json` every
 * command prints one JSON object on stdout instead of its lines.
 */
import { readFile, writeFile } from "node:fs/promises";
import { Command } from "commander";
import { formatEther, getAddress, isAddress, isHex, parseEther, type Address, type Hex, type LocalAccount } from "viem";
import { parseRoles } from "../chain/contracts.js";
import { ChainError } from "../chain/errors.js";
import {
  activateNode,
  nodeKeyHex,
  nodeStatus,
  registerNode,
  requestUnstake,
  signNodeRegistration,
  stakeNode,
  tokenBalance,
  withdrawStake,
  type NodeConsentProof,
} from "../chain/staking.js";
import { addChainOptions, chainContext, defaultDevnetAccount, loadKeystoreAccount, type ChainCliOptions, type DevnetAccountChoice } from "./chain-context.js";
import { loadIdentityKey } from "./identity.js";
import { addRewardCommands } from "./operator-rewards.js";
import { printJson } from "./output.js";
import { withProgress } from "./progress.js";

/** On the devnet, the operator of the node named by --node-key (or the default account for a node it does not know). */
const nodeOperator =
  (nodeKey: string): DevnetAccountChoice =>
  (state) =>
    state.nodes.find((n) => n.nodeKey.toLowerCase() === nodeKeyHex(nodeKey).toLowerCase())?.operator ?? defaultDevnetAccount(state);

function chainOptions(cmd: Command): Command {
  return addChainOptions(cmd)
    .option("--keystore <file>", "operator's ethers JSON keystore (on the devnet: the node's operator account)")
    .requiredOption("--node-key <hex>", "the node's Ed25519 identity public key (64 hex digits)")
    .option("--json", "print one JSON object");
}

/** Sends one operator transaction with progress, then prints `line` or, with --json, `{ ...fields, tx }`. */
async function sendWithProgress(opts: { json?: boolean }, title: string, send: () => Promise<{ hash: Hex }>, done: { line: (tx: Hex) => string; fields: Record<string, unknown> }): Promise<void> {
  const { hash } = await withProgress(
    title,
    async (report) => {
      report.output("sending the transaction and waiting until it is mined");
      return await send();
    },
    opts,
  );
  if (opts.json) printJson({ ...done.fields, tx: hash });
  else console.log(done.line(hash));
}

function amount(value: string): bigint {
  if (!/^\d+(\.\d+)?$/.test(value)) throw new Error(`amount "${value}" is not a decimal number of PSP`);
  return parseEther(value);
}

type Opts = ChainCliOptions & { nodeKey: string; json?: boolean };

/** Reads a consent file written by `psp operator consent`, checking every field. */
async function readConsent(path: string): Promise<NodeConsentProof> {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
  } catch (err) {
    throw new ChainError("bad-argument", `cannot read consent file ${path}: make one with \`psp operator consent\``, { cause: err });
  }
  const hex = (name: string, bytes: number): Hex => {
    const v = raw[name];
    if (typeof v !== "string" || !isHex(v) || v.length !== 2 + 2 * bytes) throw new ChainError("bad-argument", `${path}: ${name} must be ${bytes} bytes of 0x-hex`);
    return v;
  };
  const address = (name: string): Address => {
    const v = raw[name];
    if (typeof v !== "string" || !isAddress(v)) throw new ChainError("bad-argument", `${path}: ${name} must be an address`);
    return getAddress(v);
  };
  if (typeof raw.deadline !== "string" || !/^\d+$/.test(raw.deadline)) throw new ChainError("bad-argument", `${path}: deadline must be a decimal string`);
  return { nodeKey: hex("nodeKey", 32), signer: address("signer"), operator: address("operator"), deadline: BigInt(raw.deadline), signerConsent: hex("signerConsent", 65), keyProof: hex("keyProof", 64) };
}

export function operatorProgram(): Command {
  const program = new Command("operator").description("PSP node operator actions on the NodeRegistry").showHelpAfterError("(add --help for the usage)");

  addChainOptions(program.command("consent").description("sign a node's consent to be registered, where its keys are: the signer's EIP-712 consent and the node key's proof"))
    .requiredOption("--node-key-file <file>", "the node's Ed25519 identity key file (`psp identity create`; passphrase from PSP_KEY_PASSWORD)")
    .requiredOption("--signer-keystore <file>", "the node signer's ethers JSON keystore (passphrase from PSP_KEYSTORE_PASSWORD)")
    .requiredOption("--operator <address>", "the operator account that will send `operator register`")
    .option("--valid-for <seconds>", "how long the consent stays valid", "3600")
    .option("--out <file>", "write the consent here instead of stdout")
    .option("--json", "with --out: print { out, nodeKey, signer, operator, deadline } as JSON (without --out the consent itself is JSON)")
    .action(async (opts: ChainCliOptions & { nodeKeyFile: string; signerKeystore: string; operator: string; validFor: string; out?: string; json?: boolean }) => {
      if (!isAddress(opts.operator)) throw new Error(`--operator ${opts.operator} is not an EVM address`);
      const validForSeconds = Number(opts.validFor);
      if (!Number.isSafeInteger(validForSeconds) || validForSeconds <= 0) throw new Error(`--valid-for ${opts.validFor} is not a positive number of seconds`);
      const { secretKey } = await loadIdentityKey(opts.nodeKeyFile, { namespace: "peerstream", application: "network", kind: "node" });
      const signer = (await loadKeystoreAccount(opts.signerKeystore)) as LocalAccount;
      const ctx = await chainContext(opts, false);
      const consent = await signNodeRegistration(ctx, { nodeSecretKey: secretKey, signer, operator: getAddress(opts.operator), validForSeconds });
      const text = JSON.stringify(consent, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n";
      if (opts.out) {
        await writeFile(opts.out, text);
        if (opts.json) printJson({ out: opts.out, nodeKey: consent.nodeKey, signer: consent.signer, operator: consent.operator, deadline: consent.deadline });
        else console.error(`wrote ${opts.out}: consent of ${consent.signer} to serve node ${consent.nodeKey} for ${consent.operator}`);
      } else process.stdout.write(text);
    });

  chainOptions(program.command("register").description("register a node; you become its operator"))
    .requiredOption("--consent <file>", "the consent `psp operator consent` signed for this node and your account")
    .requiredOption("--roles <list>", "comma-separated: onion, discovery, authority, oracle")
    .action(async (opts: Opts & { consent: string; roles: string }) => {
      const consent = await readConsent(opts.consent);
      if (consent.nodeKey !== nodeKeyHex(opts.nodeKey)) throw new Error(`${opts.consent} is a consent for node ${consent.nodeKey}, not ${nodeKeyHex(opts.nodeKey)}`);
      const ctx = await chainContext(opts, true, nodeOperator(opts.nodeKey));
      const nodeKey = nodeKeyHex(opts.nodeKey);
      await sendWithProgress(opts, `register node ${nodeKey.slice(0, 18)}… (${opts.roles})`, () => registerNode(ctx, { consent, roles: parseRoles(opts.roles) }), {
        line: (tx) => `registered node ${nodeKey} (tx ${tx})`,
        fields: { registered: nodeKey, roles: opts.roles.split(",").map((r) => r.trim()) },
      });
    });

  chainOptions(program.command("activate").description("join a role's set once the node qualifies and its activation delay has passed"))
    .requiredOption("--role <role>", "discovery, authority or oracle")
    .action(async (opts: Opts & { role: string }) => {
      const role = opts.role.trim().toLowerCase();
      if (role !== "discovery" && role !== "authority" && role !== "oracle") throw new Error(`--role ${opts.role}: use discovery, authority or oracle`);
      const ctx = await chainContext(opts, true, nodeOperator(opts.nodeKey));
      const nodeKey = nodeKeyHex(opts.nodeKey);
      await sendWithProgress(opts, `activate node ${nodeKey.slice(0, 18)}… in the ${role} set`, () => activateNode(ctx, { nodeKey, role }), {
        line: (tx) => `node ${nodeKey} joined the ${role} set (tx ${tx})`,
        fields: { nodeKey, joined: role },
      });
    });

  chainOptions(program.command("stake").description("bond PSP to the node (permit when the allowance is short)"))
    .requiredOption("--amount <psp>", "amount in PSP, e.g. 100000")
    .action(async (opts: Opts & { amount: string }) => {
      const ctx = await chainContext(opts, true, nodeOperator(opts.nodeKey));
      const nodeKey = nodeKeyHex(opts.nodeKey);
      const wei = amount(opts.amount);
      await sendWithProgress(opts, `stake ${opts.amount} PSP on node ${nodeKey.slice(0, 18)}…`, () => stakeNode(ctx, { nodeKey, amount: wei }), {
        line: (tx) => `staked ${opts.amount} PSP (tx ${tx})`,
        fields: { nodeKey, staked: wei },
      });
    });

  chainOptions(program.command("unstake").description("start unbonding part of the node's stake"))
    .requiredOption("--amount <psp>", "amount in PSP")
    .action(async (opts: Opts & { amount: string }) => {
      const ctx = await chainContext(opts, true, nodeOperator(opts.nodeKey));
      const nodeKey = nodeKeyHex(opts.nodeKey);
      const wei = amount(opts.amount);
      await sendWithProgress(opts, `unstake ${opts.amount} PSP from node ${nodeKey.slice(0, 18)}…`, () => requestUnstake(ctx, { nodeKey, amount: wei }), {
        line: (tx) => `unbonding ${opts.amount} PSP (tx ${tx})`,
        fields: { nodeKey, unbonding: wei },
      });
    });

  chainOptions(program.command("withdraw").description("withdraw matured unbonding stake")).action(async (opts: Opts) => {
    const ctx = await chainContext(opts, true, nodeOperator(opts.nodeKey));
    const nodeKey = nodeKeyHex(opts.nodeKey);
    await sendWithProgress(opts, `withdraw matured stake of node ${nodeKey.slice(0, 18)}…`, () => withdrawStake(ctx, { nodeKey }), {
      line: (tx) => `withdrawn (tx ${tx})`,
      fields: { nodeKey, withdrawn: true },
    });
  });

  chainOptions(program.command("status").description("show the node's stake, roles and set membership")).action(async (opts: Opts) => {
      const ctx = await chainContext(opts, false);
      const s = await nodeStatus(ctx, nodeKeyHex(opts.nodeKey));
      if (opts.json) {
        printJson(s);
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
          `roles       ${s.roles.join(", ")}${s.approved.length ? ` (approved: ${s.approved.join(", ")})` : ""}`,
          `registered  #${s.seq}`,
          `bonded      ${formatEther(s.bonded)} PSP`,
          `unbonding   ${formatEther(s.unbonding)} PSP${s.unbonding > 0n ? ` until ${new Date(s.unbondingReleaseAt * 1000).toISOString()}` : ""}`,
          `eligible    ${s.eligible.join(", ") || "none"}`,
          ...s.pending.map((p) => `pending     ${p.role} from ${new Date(p.activatesAt * 1000).toISOString()} (then \`operator activate --role ${p.role}\`)`),
          `member of   ${s.memberOf.join(", ") || "no current set"}`,
        ].join("\n"),
      );
    });
  addRewardCommands(program);
  return program;
}

export function register(program: Command): void {
  program.addCommand(operatorProgram());
}

/**
 * `psp identity create | register | show`: identity keys and their on-chain
 * registration.
 *
 * Attestations come from authority nodes reached over TLS links (service
 * "authority" of the link RPC layer): `--authorities <file|url>` lists them
 * (a devnet state.json or a JSON list of { identity, host, port }), and only
 * those in the current on-chain authority set are asked. Without it,
 * devnet/state.json is used when present. The DEVNET PATH (`--devnet-keys
 * <dir>`) remains as a labelled fallback: it runs the authority service in
 * this process from the devnet's unencrypted node keys, nothing goes over
 * the network, and the command says so on stderr.
 *
 * Key files are the crypto layer's encrypted format; the passphrase comes
 * from PSP_KEY_PASSWORD or the terminal. The owner's EVM account comes from
 * an ethers keystore (--keystore, PSP_KEYSTORE_PASSWORD), as for `operator`.
 * `register` shows its progress on stderr (attestations, the transaction);
 * with `--json` every command prints one JSON object on stdout.
 */
import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { toHex, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { IDENTITY_KIND, identityId as computeIdentityId } from "../chain/attestation.js";
import type { AuthorityTransport } from "../authority/service.js";
import { createChainPki, type Pki } from "../chain/pki.js";
import { ChainError } from "../chain/errors.js";
import { generateEd25519KeyPair } from "../crypto/ed25519.js";
import { formatIdentity, parseIdentity, type Identity } from "../crypto/identity.js";
import { decryptKeyFile, encryptKeyFile, parseKeyFile } from "../crypto/keyfile.js";
import { addChainOptions, chainContext, type ChainCliOptions } from "./chain-context.js";
import { defaultDevnetStateFile } from "./devnet-defaults.js";
import { identityNameOptions, keyPassphrase, type NameOptions } from "./key-file.js";
import { printJson } from "./output.js";
import { withProgress } from "./progress.js";

export { identityNameOptions, type NameOptions } from "./key-file.js";

// The authority client (links, TLS) and the registration flow load only in the commands that use them.
const authorityModules = async () => ({ ...(await import("../authority/service.js")), ...(await import("../authority/node.js")) });

export interface AuthoritySourceOptions {
  authorities?: string;
  devnetKeys?: string;
}

/** Adds --authorities and the labelled --devnet-keys fallback. */
export function authorityOptions(cmd: Command): Command {
  return cmd
    .option("--authorities <file|url>", "authority nodes to ask over TLS: a devnet state.json or a JSON list of { identity, host, port } (default devnet/state.json)")
    .option("--devnet-keys <dir>", "DEVNET PATH fallback: run the authority service in this process from the devnet's node keys (nothing goes over the network)");
}

/**
 * Transports to the current authorities: over TLS links to the listed
 * authority nodes, or (only when asked with --devnet-keys) the in-process
 * DEVNET PATH, announced on stderr. `close` releases the links.
 */
export async function authorityTransports(pki: Pki, opts: AuthoritySourceOptions): Promise<{ transports: AuthorityTransport[]; close: () => Promise<void> }> {
  if (opts.devnetKeys !== undefined && opts.authorities === undefined) {
    const transports = await devnetAuthorityTransports(pki, opts.devnetKeys);
    console.error(`DEVNET PATH: ${transports.length} authority services run in this process from ${opts.devnetKeys}; nothing goes over the network`);
    return { transports, close: async () => {} };
  }
  const { connectAuthorities, currentAuthorityPeers, loadAuthorityPeers } = await authorityModules();
  const devnetState = defaultDevnetStateFile();
  const source = opts.authorities ?? (existsSync(devnetState) ? devnetState : undefined);
  if (source === undefined) {
    throw new ChainError("bad-argument", "no authorities to ask: pass --authorities <devnet state.json | JSON list of { identity, host, port } | URL>");
  }
  const peers = await currentAuthorityPeers(pki, await loadAuthorityPeers(source));
  const client = await connectAuthorities(peers);
  return { transports: client.transports, close: client.close };
}

export function chainOptions(cmd: Command): Command {
  return addChainOptions(cmd).option("--confirmations <n>", "blocks a chain fact must be buried under (default 0 on the devnet, 2 elsewhere)", nonNegativeInteger);
}

function nonNegativeInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError("must be a non-negative integer");
  return n;
}

export type ChainOptions = ChainCliOptions & { confirmations?: number };

/** The chain context plus a PKI view with the CLI's confirmation default. */
export async function cliPki(opts: ChainOptions, needsAccount: boolean) {
  const ctx = await chainContext(opts, needsAccount);
  const confirmations = opts.confirmations ?? (ctx.deployment.chainId === 31337 ? 0 : 2);
  const pki = await createChainPki({ clients: ctx.clients, deployment: ctx.deployment, confirmations, follow: false });
  return { ...ctx, pki };
}

/** Decrypts an identity key file and names it under `names`. */
export async function loadIdentityKey(path: string, names: NameOptions): Promise<{ secretKey: Uint8Array; identity: Identity; text: string }> {
  let json: string;
  try {
    json = await readFile(path, "utf8");
  } catch (err) {
    throw new ChainError("bad-argument", `cannot read key file ${path}: check --key-file (make one with \`psp identity create\`)`, { cause: err });
  }
  const { secretKey, publicKey, keyType } = await decryptKeyFile(json, await keyPassphrase(path));
  if (keyType !== "ed25519") throw new ChainError("bad-argument", `${path} holds an ${keyType} key; identities are Ed25519`);
  const identity: Identity = { namespace: names.namespace, application: names.application, kind: names.kind, publicKey };
  return { secretKey, identity, text: formatIdentity(identity) };
}

/**
 * DEVNET PATH: authority services run in this process from the devnet's
 * unencrypted node keys, keeping those whose node is in the current
 * authority set. Later, remote authorities reached over circuits replace this.
 */
export async function devnetAuthorityTransports(pki: Pki, dir: string): Promise<AuthorityTransport[]> {
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith(".json")).sort();
  } catch (err) {
    throw new ChainError("bad-argument", `no devnet keys at ${dir}: start the devnet (\`npm start\`) or pass --devnet-keys`, { cause: err });
  }
  const current = new Set((await pki.currentAuthorities()).members.map((m) => m.nodeKey));
  const { createAuthorityService, localAuthorityTransport } = await authorityModules();
  const transports: AuthorityTransport[] = [];
  for (const file of files) {
    const keys = JSON.parse(await readFile(join(dir, file), "utf8")) as { identitySecretKey?: Hex; signerPrivateKey?: Hex };
    if (!keys.identitySecretKey || !keys.signerPrivateKey) continue;
    const nodeSecretKey = Uint8Array.from(Buffer.from(keys.identitySecretKey.slice(2), "hex"));
    const service = createAuthorityService({ pki, nodeSecretKey, signer: privateKeyToAccount(keys.signerPrivateKey) });
    if (current.has(toHex(service.nodeKey))) transports.push(localAuthorityTransport(service, "psp-cli"));
  }
  if (transports.length === 0) {
    throw new ChainError("bad-argument", `none of the keys in ${dir} belongs to a current authority: is that the devnet this deployment runs on?`);
  }
  return transports;
}

export function register(program: Command): void {
  const identity = program.command("identity").description("identity keys and their on-chain registration");

  identityNameOptions(identity.command("create").description("make a new Ed25519 identity key in an encrypted key file and print the identity"))
    .requiredOption("--out <file>", "where to write the encrypted key file")
    .option("--force", "overwrite an existing file")
    .option("--json", "print { identity, keyFile } as JSON")
    .action(async (opts: NameOptions & { out: string; force?: boolean; json?: boolean }) => {
      const keys = generateEd25519KeyPair();
      const text = formatIdentity({ namespace: opts.namespace, application: opts.application, kind: opts.kind, publicKey: keys.publicKey });
      const file = await encryptKeyFile(keys.secretKey, await keyPassphrase(opts.out, true));
      try {
        await writeFile(opts.out, file + "\n", { mode: 0o600, flag: opts.force ? "w" : "wx" });
      } catch (err) {
        throw new ChainError("bad-argument", `cannot write ${opts.out} (${(err as NodeJS.ErrnoException).code ?? "error"}): pass --force to overwrite`, { cause: err });
      }
      if (opts.json) printJson({ identity: text, keyFile: opts.out });
      else console.log(text);
    });

  authorityOptions(identityNameOptions(chainOptions(identity.command("register").description("register the identity on chain with attestations from the authority nodes"))))
    .requiredOption("--key-file <file>", "the identity's encrypted key file")
    .option("--keystore <file>", "owner's ethers JSON keystore (sends the transaction; on the devnet: its account bob)")
    .option("--json", "print { identity, identityId, owner, tx } as JSON")
    .action(async (opts: NameOptions & ChainOptions & AuthoritySourceOptions & { keyFile: string; json?: boolean }) => {
      const { secretKey, text } = await loadIdentityKey(opts.keyFile, opts);
      const { clients, deployment, pki } = await cliPki(opts, true);
      const { remoteAttester } = await authorityModules();
      const { registerIdentity } = await import("../chain/identities.js");
      let release = async (): Promise<void> => {};
      try {
        const source = await authorityTransports(pki, opts);
        release = source.close;
        const transports = source.transports;
        const threshold = await pki.attestationThreshold();
        if (transports.length < threshold) throw new ChainError("bad-argument", `${transports.length} authorities reachable, ${threshold} attestations needed`);
        const result = await withProgress(
          `register ${text}`,
          async (report) => {
            report.output(`attestations from ${threshold} of ${transports.length} authorities, then the registration transaction`);
            return await registerIdentity({
              clients,
              deployment,
              namespace: opts.namespace,
              application: opts.application,
              kind: opts.kind,
              secretKey,
              attesters: transports.map((t) => remoteAttester(t)),
            });
          },
          opts,
        );
        if (opts.json) printJson({ identity: text, identityId: result.identityId, owner: result.registration.owner, tx: result.hash });
        else console.log(`registered ${text}\n  identity id ${result.identityId}\n  owner       ${result.registration.owner}\n  tx          ${result.hash}`);
      } finally {
        await release();
        pki.close();
      }
    });

  identityNameOptions(chainOptions(identity.command("show").description("show an identity and its on-chain status")))
    .option("--identity <string>", "the identity string")
    .option("--key-file <file>", "or: the identity's key file (no passphrase needed)")
    .option("--json", "print JSON")
    .action(async (opts: NameOptions & ChainOptions & { identity?: string; keyFile?: string; json?: boolean }) => {
      let id: Identity;
      if (opts.identity) id = parseIdentity(opts.identity);
      else if (opts.keyFile)
        id = {
          namespace: opts.namespace,
          application: opts.application,
          kind: opts.kind,
          publicKey: Uint8Array.from(Buffer.from(parseKeyFile(await readFile(opts.keyFile, "utf8")).publicKey, "hex")),
        };
      else throw new ChainError("bad-argument", "pass --identity <string> or --key-file <file>");
      const text = formatIdentity(id);
      const identityId = computeIdentityId({ namespace: id.namespace, application: id.application, kind: IDENTITY_KIND[id.kind], key: id.publicKey });
      const { pki } = await cliPki(opts, false);
      try {
        const record = await pki.getIdentity(identityId);
        const now = Math.floor(Date.now() / 1000);
        const subscribed = record.status === "active" && (await pki.isSubscribed(identityId, now));
        const info = {
          identity: text,
          identityId,
          status: record.status,
          confirmed: record.activeConfirmed,
          owner: record.owner,
          registeredAt: record.registeredAt,
          successor: record.successor,
          subscribed,
        };
        if (opts.json) {
          printJson(info);
          return;
        }
        console.log(
          [
            `identity     ${text}`,
            `identity id  ${identityId}`,
            `status       ${record.status}${record.status === "active" && !record.activeConfirmed ? " (not yet confirmed)" : ""}`,
            ...(record.status === "none" ? [] : [`owner        ${record.owner}`, `registered   ${new Date(record.registeredAt * 1000).toISOString()}`]),
            ...(record.status === "rotated" ? [`successor    ${record.successor}`] : []),
            `subscribed   ${subscribed ? "yes" : "no"}`,
          ].join("\n"),
        );
      } finally {
        pki.close();
      }
    });
}

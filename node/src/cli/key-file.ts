/**
 * What every command that acts as an identity shares, kept free of the
 * chain bindings so the commands that only talk to the network (`psp msg`,
 * `psp client run`) start without loading viem: the identity name options
 * and the passphrase of a key file (PSP_KEY_PASSWORD, the devnet's own
 * passphrase for the devnet's own key files, or the terminal).
 */
import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { ChainError } from "../chain/errors.js";
import { isIdentityKind, type IdentityKind } from "../crypto/identity.js";
import { devnetPassphraseFor } from "./devnet-defaults.js";

export interface NameOptions {
  namespace: string;
  application: string;
  kind: IdentityKind;
}

function identityKind(value: string): IdentityKind {
  if (!isIdentityKind(value)) throw new InvalidArgumentError("must be account, node or group");
  return value;
}

/** Adds --namespace, --application and --kind (default peerstream.client.account). */
export function identityNameOptions(cmd: Command): Command {
  return cmd
    .option("--namespace <name>", "identity namespace", "peerstream")
    .option("--application <name>", "identity application", "client")
    .option("--kind <kind>", "account, node or group", identityKind, "account" as IdentityKind);
}

/**
 * The passphrase of the key file at `path`: the devnet passphrase for the
 * devnet's own key files, else PSP_KEY_PASSWORD, else asked on the terminal
 * (twice with `confirm`, for a new file).
 */
export async function keyPassphrase(path: string, confirm = false): Promise<string> {
  // The devnet's own key files (the demo users) open with the documented devnet passphrase, whatever
  // PSP_KEY_PASSWORD holds for the user's own files.
  const devnet = confirm ? undefined : await devnetPassphraseFor(path);
  if (devnet !== undefined) return devnet;
  const fromEnv = process.env.PSP_KEY_PASSWORD;
  // An empty variable is an unset one: no key file is sealed with an empty passphrase.
  if (fromEnv) return fromEnv;
  if (!process.stdin.isTTY) throw new ChainError("bad-argument", `no passphrase for ${path}: set PSP_KEY_PASSWORD or run on a terminal`);
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    const first = await rl.question(`passphrase for ${path}: `);
    if (confirm && (await rl.question("again: ")) !== first) throw new ChainError("bad-argument", "the passphrases differ");
    return first;
  } finally {
    rl.close();
  }
}

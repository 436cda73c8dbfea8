/**
 * The devnet's state file (`devnet/state.json`, written by `npm start`):
 * its format and a reader that checks every field the library and the CLI
 * use, so a missing or stale file is one clear error, never a crash later.
 *
 * Produced by scripts/lib/devnet.ts; consumed by createPspClient (bootstrap
 * from a devnet), `psp status` and the CLI's devnet defaults (authorities,
 * keystores). Trusts nothing in the file.
 */
import { readFile } from "node:fs/promises";
import { ClientError } from "./errors.js";

type Hex = `0x${string}`;

export interface DevnetNodeState {
  name: string;
  roles: string[];
  /** `peerstream.network.node.<base58>` */
  identity: string;
  /** Ed25519 identity public key, 0x hex: the NodeRegistry key. */
  nodeKey: Hex;
  operator: Hex;
  signer: Hex;
  /** PSP bonded, decimal. */
  stake: string;
  /** Where the node listens for links ("host:port"). */
  addresses: string[];
  /** The node's control API URL (null while it is not running). */
  controlApi: string | null;
  /** The `psp node run` process (null while it is not running). */
  pid: number | null;
  /** File with this node's (unencrypted, devnet-only) keys. */
  keyFile: string;
  /** An internal relay: the consensus lists it without an address (its operator's state still has it). */
  internal?: boolean;
  /** Commercial role (issue 17): "published" serves the demo application and is published on chain; "claims-only" claims it without being published. */
  commercial?: "published" | "claims-only";
}

/** An ethers JSON keystore of a funded devnet account. */
export interface DevnetKeystore {
  label: string;
  address: Hex;
  file: string;
}

export interface DevnetState {
  rpcUrl: string;
  chainId: number;
  /** The devnet's own control API. */
  controlApi: string;
  startedAt: string;
  deploymentFile: string;
  contracts: Record<string, Hex>;
  accounts: {
    deployer: Hex;
    operators: Hex[];
    users: Hex[];
    /** Keystores of the user accounts, all under one documented devnet passphrase. */
    keystores: { passphrase: string; files: DevnetKeystore[]; default: Hex };
  };
  nodes: DevnetNodeState[];
  /** Current on-chain sets at start (NodeRegistry keys) and K for the discovery set. */
  sets: { authority: Hex[]; oracle: Hex[]; discovery: Hex[]; discoveryThreshold: number };
  /** What the devnet demonstrated at start (identity, certificate, subscription, receipts). */
  demo: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isHexOf = (v: unknown, bytes: number): v is Hex => typeof v === "string" && new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`).test(v);

/** Checks a parsed state file; throws ClientError "bad-bootstrap" naming the field. */
export function parseDevnetState(json: unknown, source = "devnet state"): DevnetState {
  const bad = (field: string, what: string): ClientError =>
    new ClientError("bad-bootstrap", `${source}: ${field} ${what}; is it a state.json written by this version's \`npm start\`? (start the devnet again to rewrite it)`);
  if (!isObject(json)) throw bad("(root)", "is not a JSON object");
  if (typeof json.rpcUrl !== "string" || !/^https?:\/\//.test(json.rpcUrl)) throw bad("rpcUrl", "is not an http(s) URL");
  if (!Number.isSafeInteger(json.chainId) || (json.chainId as number) < 1) throw bad("chainId", "is not a chain id");
  if (!isObject(json.contracts) || !isHexOf(json.contracts.IdentityRegistry, 20)) throw bad("contracts.IdentityRegistry", "is not an address");
  if (!Array.isArray(json.nodes) || json.nodes.length === 0) throw bad("nodes", "is not a non-empty list");
  for (const [i, n] of (json.nodes as unknown[]).entries()) {
    if (!isObject(n) || typeof n.name !== "string") throw bad(`nodes[${i}].name`, "is missing");
    if (!Array.isArray(n.roles) || !n.roles.every((r) => typeof r === "string")) throw bad(`nodes[${i}].roles`, "is not a list of role names");
    if (!isHexOf(n.nodeKey, 32)) throw bad(`nodes[${i}].nodeKey`, "is not a 32-byte hex key");
    if (!Array.isArray(n.addresses) || !n.addresses.every((a) => typeof a === "string")) throw bad(`nodes[${i}].addresses`, 'is not a list of "host:port"');
    if (n.controlApi !== null && typeof n.controlApi !== "string") throw bad(`nodes[${i}].controlApi`, "is neither a URL nor null");
  }
  if (!isObject(json.sets) || !Array.isArray(json.sets.discovery) || !json.sets.discovery.every((k) => isHexOf(k, 32)))
    throw bad("sets.discovery", "is not a list of 32-byte hex keys");
  if (!Number.isSafeInteger(json.sets.discoveryThreshold) || (json.sets.discoveryThreshold as number) < 1) throw bad("sets.discoveryThreshold", "is not a positive integer");
  if (!isObject(json.accounts) || !isObject(json.accounts.keystores) || !Array.isArray(json.accounts.keystores.files)) throw bad("accounts.keystores", "is missing");
  if (typeof json.accounts.keystores.passphrase !== "string") throw bad("accounts.keystores.passphrase", "is missing");
  return json as unknown as DevnetState;
}

/** Reads and checks a devnet state file; throws ClientError "bad-bootstrap" naming the fix. */
export async function readDevnetState(path: string): Promise<DevnetState> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ClientError(
      "bad-bootstrap",
      code === "ENOENT" ? `no devnet state at ${path}: start the devnet with \`npm start\` (or name another state file)` : `cannot read ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ClientError("bad-bootstrap", `${path} is not JSON (${(err as Error).message}): start the devnet again to rewrite it`, { cause: err });
  }
  return parseDevnetState(json, path);
}

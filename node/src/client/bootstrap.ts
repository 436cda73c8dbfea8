/**
 * Where a client starts from, resolved into what its parts need: the nodes
 * to fetch the consensus from, the discovery keys and K it trusts, a
 * consensus file to load, and the PKI deployment certificates are bound to.
 *
 * Three sources (PspClientOptions.bootstrap):
 *  - `{ devnet: "devnet/state.json" }`: a running devnet's state file: every
 *    node with an address, the on-chain discovery set and K, the chain id and
 *    IdentityRegistry;
 *  - `{ nodes, discovery }`: nodes to ask (any node proxies the consensus)
 *    and the trusted discovery keys;
 *  - `{ consensusFile, discovery }`: a consensus kept on disk (it is loaded,
 *    verified like a fetched one, and kept current there), with optional nodes.
 *
 * Owns validation of these options; every problem is ClientError
 * "bad-option" or "bad-bootstrap" naming the field. Trusts nothing given.
 */
import type { PeerAddress } from "../link/manager.js";
import { discoveryTrustFromKeys } from "../directory/config.js";
import type { DiscoveryTrust } from "../directory/config.js";
import { DirectoryError } from "../directory/errors.js";
import { readDevnetState } from "./devnet-state.js";
import { ClientError } from "./errors.js";

/** A node to ask for the consensus: its Ed25519 identity key (hex) and link address. */
export interface BootstrapNode {
  identity: string;
  host: string;
  port: number;
}

/** The discovery keys a client trusts (hex) and K, the signatures a consensus needs (default a majority). */
export interface DiscoveryTrustOption {
  keys: readonly string[];
  threshold?: number;
}

export type BootstrapOption =
  | { devnet: string }
  | { nodes: readonly BootstrapNode[]; discovery: DiscoveryTrustOption; consensusFile?: string }
  | { consensusFile: string; discovery: DiscoveryTrustOption; nodes?: readonly BootstrapNode[] };

/** The PKI deployment access certificates are bound to. */
export interface ChainBinding {
  chainId: number;
  /** The IdentityRegistry address. */
  registry: `0x${string}`;
}

export interface ResolvedBootstrap {
  sources: PeerAddress[];
  trust: DiscoveryTrust;
  consensusFile?: string;
  chain?: ChainBinding;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function parseHostPort(text: string, field: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  const host = m?.[1] ?? m?.[2];
  if (host === undefined || !(port >= 1 && port <= 65535)) throw new ClientError("bad-bootstrap", `${field}: ${JSON.stringify(text.slice(0, 80))} is not "host:port"`);
  return { host, port };
}

function toPeers(nodes: unknown, field: string): PeerAddress[] {
  if (!Array.isArray(nodes)) throw new ClientError("bad-option", `${field} must be a list of { identity: "<64 hex>", host, port }`);
  return nodes.map((n: unknown, i) => {
    if (!isObject(n) || typeof n.identity !== "string" || !/^[0-9a-fA-F]{64}$/.test(n.identity)) {
      throw new ClientError("bad-option", `${field}[${i}].identity must be the node's Ed25519 identity key, 64 hex digits`);
    }
    if (typeof n.host !== "string" || n.host.length === 0 || !Number.isInteger(n.port) || (n.port as number) < 1 || (n.port as number) > 65535) {
      throw new ClientError("bad-option", `${field}[${i}] needs "host" and "port" (1..65535)`);
    }
    return { identity: Uint8Array.from(Buffer.from(n.identity, "hex")), host: n.host, port: n.port as number };
  });
}

function toTrust(discovery: unknown, field: string): DiscoveryTrust {
  if (!isObject(discovery) || !Array.isArray(discovery.keys) || discovery.keys.length === 0) {
    throw new ClientError("bad-option", `${field} must be { keys: ["<64 hex discovery key>", ...], threshold?: K }`);
  }
  const threshold = discovery.threshold;
  if (threshold !== undefined && (!Number.isSafeInteger(threshold) || (threshold as number) < 1 || (threshold as number) > discovery.keys.length)) {
    throw new ClientError("bad-option", `${field}.threshold must be an integer in 1..${discovery.keys.length}`);
  }
  try {
    return discoveryTrustFromKeys(discovery.keys as string[], threshold as number | undefined);
  } catch (err) {
    if (err instanceof DirectoryError) throw new ClientError("bad-option", `${field}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Resolves a bootstrap option (reading a devnet state file when named). */
export async function resolveBootstrap(option: BootstrapOption | undefined): Promise<ResolvedBootstrap> {
  if (!isObject(option)) {
    throw new ClientError("bad-option", 'createPspClient needs bootstrap: { devnet: "devnet/state.json" }, { nodes, discovery } or { consensusFile, discovery }');
  }
  if ("devnet" in option) {
    if (typeof option.devnet !== "string" || option.devnet.length === 0) throw new ClientError("bad-option", "bootstrap.devnet must be the path of a devnet state.json");
    const state = await readDevnetState(option.devnet);
    const sources = state.nodes.flatMap((n) =>
      n.addresses[0] === undefined ? [] : [{ identity: Uint8Array.from(Buffer.from(n.nodeKey.slice(2), "hex")), ...parseHostPort(n.addresses[0], `${option.devnet}: ${n.name}`) }],
    );
    if (sources.length === 0) throw new ClientError("bad-bootstrap", `${option.devnet} lists no running node: is the devnet up (\`npm start\`)?`);
    return {
      sources,
      trust: toTrust({ keys: state.sets.discovery.map((k) => k.slice(2)), threshold: state.sets.discoveryThreshold }, `${option.devnet}: sets.discovery`),
      chain: { chainId: state.chainId, registry: state.contracts.IdentityRegistry! },
    };
  }
  const trust = toTrust(option.discovery, "bootstrap.discovery");
  const sources = option.nodes === undefined ? [] : toPeers(option.nodes, "bootstrap.nodes");
  const consensusFile = option.consensusFile;
  if (consensusFile !== undefined && (typeof consensusFile !== "string" || consensusFile.length === 0))
    throw new ClientError("bad-option", "bootstrap.consensusFile must be a file path");
  if (sources.length === 0 && consensusFile === undefined) throw new ClientError("bad-option", "bootstrap needs nodes to ask, a consensusFile, or both");
  return { sources, trust, ...(consensusFile === undefined ? {} : { consensusFile }) };
}

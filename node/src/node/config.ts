/**
 * The node's configuration file: parsing and validation.
 *
 * Owns the shape `psp node start --config <file>` reads (docs/spec/onion.md
 * §13, docs/spec/node.md) and its checks. The file is JSON, YAML (.yaml,
 * .yml) or TOML (.toml), chosen by its extension; all three give the same
 * value to the same checks, and a file that does not parse is named with the
 * line and column of the first problem. Every problem is a NodeError
 * "bad-config" naming the field and what would be accepted, so an operator
 * can fix the file without reading code. Keys may be given as hex (tests,
 * throwaway nodes), as an encrypted key file with the passphrase in an
 * environment variable, or left out (a fresh key each start).
 *
 * Trusts nothing in the file.
 */
import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { parse as parseToml, TomlError } from "smol-toml";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";
import { decryptKeyFile } from "../crypto/keyfile.js";
import { ed25519PublicKey, generateEd25519KeyPair } from "../crypto/ed25519.js";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import { generateX25519KeyPair, x25519PublicKey } from "../crypto/x25519.js";
import type { X25519KeyPair } from "../crypto/x25519.js";
import { checkLinkRpcLimits, inboundLimits } from "../link/index.js";
import type { InboundLimits, LinkOptions, LinkRpcOptions } from "../link/index.js";
import { isLoopbackHost } from "../api/token.js";
import { LOG_LEVELS } from "../log.js";
import type { LogLevel } from "../log.js";
import { CREATE_BURST_KEYS, POSITIVE_RELAY_LIMIT_KEYS } from "../onion/constants.js";
import type { RelayLimits } from "../onion/relay.js";
import { parseCommercialConfig } from "./commercial.js";
import type { NodeCommercialConfig } from "./commercial.js";

export type NodeErrorKind =
  /** The configuration is malformed; the message names the field. */
  | "bad-config"
  /** A key could not be loaded (file missing, wrong passphrase, wrong key type). */
  | "key-load"
  /** The node could not start (listen failed, ...). */
  | "start-failed"
  /** Start-up diagnostics (node/diagnostics.ts), each with a fix: the RPC endpoint does not answer. */
  | "chain-unreachable"
  /** The RPC endpoint serves another chain than the config's chain.chainId or the deployment file's. */
  | "wrong-chain"
  /** The node's identity key is not registered in the NodeRegistry. */
  | "not-registered"
  /** The node is registered without a role its config runs, or its stake is below that role's minimum. */
  | "not-staked"
  /** None of the configured discovery nodes answers a dial. */
  | "discovery-unreachable"
  /** The link or control API port is already bound by another process. */
  | "port-in-use";

/** All are the operator's to fix: the file, the keys, the chain standing, or the machine (a port in use). */
const NODE_CATEGORIES = {
  "bad-config": "config",
  "key-load": "config",
  "start-failed": "config",
  "chain-unreachable": "config",
  "wrong-chain": "config",
  "not-registered": "config",
  "not-staked": "config",
  "discovery-unreachable": "config",
  "port-in-use": "config",
} as const satisfies KindCategories<NodeErrorKind>;

export class NodeError extends layerError<NodeErrorKind>("node", NODE_CATEGORIES) {}

/**
 * Roles a node process can run. Every node also runs the DHT, the control
 * API, descriptor publication and the consensus cache; "onion" adds the
 * relay, "discovery" the discovery service (votes and signs the consensus),
 * "authority" the authority service (attestations and access certificates,
 * over links and at the end of circuits), "oracle" the oracle node (its
 * signer and its standing in the on-chain oracle set; the oracle service
 * itself lives in oracle/), "commercial" applications' plugin services
 * (node/src/commercial, issue 17; the descriptor claims the application ids
 * instead of a role bit). Each role is also claimed in the descriptor, and
 * the consensus flags it only where the chain agrees.
 */
export const NODE_ROLES = ["onion", "discovery", "authority", "oracle", "commercial"] as const;
export type NodeRole = (typeof NODE_ROLES)[number];

/** Built-in local services a node can offer at the end of circuits. */
export const BUILTIN_SERVICES = ["echo", "discard"] as const;
export type BuiltinService = (typeof BUILTIN_SERVICES)[number];

/** Where a key comes from. */
export type KeySource = { secretKeyHex: string } | { keyFile: string; passphraseEnv: string };

/** Where an EVM signer key comes from: hex (devnet, tests) or an ethers JSON keystore. */
export type SignerSource = { privateKeyHex: `0x${string}` } | { keystore: string; passphraseEnv: string };

/** The "authority" role: the node's EVM signer (it signs EIP-712 attestations) and its limits. */
export interface NodeAuthorityConfig {
  signer: SignerSource;
  /** Per-client and per-identity request limits (docs/spec/authority.md). */
  limits?: { requestsPerMinute?: number; burst?: number };
}

/** Landing and distributing streams (docs/spec/streaming.md): on by default for an onion node with a chain. */
export interface NodeStreamConfig {
  /** false: the node lands and distributes no streams (default true when the node has a chain and the onion role). */
  enabled?: boolean;
  /** Seconds a linkable receipt is accepted before its batch is committed on chain (default: the receipt module's grace). */
  graceSeconds?: number;
}

/** Usage reports for bandwidth rewards (docs/spec/rewards.md; node/usage-reporter.ts). */
export interface NodeRewardsConfig {
  /** Seconds between a node's usage reports, 1..3600 (default 300; the devnet uses 10). Windows are also cut at every epoch boundary. */
  reportIntervalSeconds?: number;
}

/** The "oracle" role: the node's EVM signer (it signs receipt batches and blind-key registrations) and the oracle service's settings. */
export interface NodeOracleConfig {
  signer: SignerSource;
  /** SQLite file of the issuance store (default <dataDir>/oracle.sqlite, else in memory). */
  store?: string;
  /** What a receipt allows (default: 8000 kbit/s, 4 h, video+audio+mpegts). */
  params?: { bitrateKbps: number; maxDurationSeconds: number; formatFlags: number };
  /** How often pending receipts are committed on chain, ms (default 10 s). */
  batchIntervalMs?: number;
  /** How often rows are replicated to the other oracles, ms (default 2 s). */
  replicateIntervalMs?: number;
  /** Reward settlement (docs/spec/rewards.md); every oracle of a network must use the same price and budget. */
  rewards?: NodeOracleRewardsConfig;
}

/** The oracle's reward settlement settings. Prices are decimal strings of PSP wei (JSON numbers cannot hold them). */
export interface NodeOracleRewardsConfig {
  /** PSP wei per normalized byte carried (default "1000000": 1 PSP per TB). */
  weiPerByte?: string;
  /** Most one epoch pays, PSP wei (default "1000000000000000000000": 1,000 PSP). */
  epochBudget?: string;
  /** Seconds after an epoch ends before reports for it are refused (default 300). */
  acceptSeconds?: number;
  /** Seconds after an epoch ends before it is computed and voted: acceptSeconds plus replication time (default 600). */
  settleDelaySeconds?: number;
}

export interface NodeConfig {
  /** Address the TLS listener binds. */
  listen: { host: string; port: number };
  /** Address clients and relays are told to dial (default: the bound address). */
  advertise?: { host: string; port: number };
  /** Ed25519 identity key; absent: a fresh one per start. */
  identity?: KeySource;
  /** X25519 onion key for ntor; absent: a fresh one per start. */
  onionKey?: KeySource;
  roles?: NodeRole[];
  onion?: {
    limits?: Partial<RelayLimits>;
    services?: BuiltinService[];
    allowStreamsAtFirstHop?: boolean;
    protoId?: string;
  };
  link?: Partial<LinkOptions>;
  maxLinks?: number;
  /** Budgets for links peers open to us (caps per class and source, handshake deadline, outbound reserve): docs/spec/link.md §9. */
  inbound?: Partial<InboundLimits>;
  /** Link RPC serving budgets (per link and peer class, the anonymous share): docs/spec/link.md §8. */
  rpc?: NodeRpcConfig;
  /** Directory for the node's state (DHT records, cached consensus); absent: memory only, lost at exit. */
  dataDir?: string;
  /** The control API; default loopback on a free port. `false` turns it off. */
  api?: { host: string; port: number } | false;
  dht?: NodeDhtConfig;
  directory?: NodeDirectoryConfig;
  /** The authority role's settings (required with that role). */
  authority?: NodeAuthorityConfig;
  /** The oracle role's settings (required with that role). */
  oracle?: NodeOracleConfig;
  /** Landing and distributing streams; needs `chain` (receipts and session ids are checked against it). */
  stream?: NodeStreamConfig;
  /** The commercial role's applications and plugins (required with that role; node/commercial.ts). */
  commercial?: NodeCommercialConfig;
  /** Usage reports for bandwidth rewards. */
  rewards?: NodeRewardsConfig;
  /**
   * The chain the node reads the NodeRegistry from (docs/spec/node.md "Chain").
   * With it, discovery nodes check descriptors against on-chain registration
   * and stake, and every node takes the discovery set and K from
   * NodeRegistry.discoverySet(); directory.discovery stays the bootstrap set
   * (and where the discovery nodes are dialled).
   */
  chain?: NodeChainConfig;
  /** The node's log (docs/spec/node.md "Logs"). */
  log?: NodeLogConfig;
}

export interface NodeLogConfig {
  /** Lowest level written (`--log-level` and PSP_LOG_LEVEL override it); default "info". */
  level?: LogLevel;
  /** A name on every line (`"name"`), e.g. the devnet's "onion-1"; every line also carries the short identity (`"node"`). */
  name?: string;
}

export interface NodeChainConfig {
  /** JSON-RPC endpoint, http(s)://. */
  rpcUrl: string;
  /** The deployment file (deployments/<network>.json) naming the PSP contracts. */
  deploymentFile: string;
  /** The chain id the operator expects rpcUrl to serve (checked at start-up with the deployment file's; optional). */
  chainId?: number;
  /** Blocks a fact must be buried under before it is trusted (default 2; 0 on a devnet that mines on demand). */
  confirmations?: number;
  /** How long a chain answer is reused without an event saying it changed, ms (default 30 s). */
  cacheMs?: number;
  /** How often the discovery set is read again and registry answers re-checked, ms (default 60 s). */
  refreshMs?: number;
  /** How often NodeRegistry events are polled, ms (default 2 s). */
  followMs?: number;
}

/** A node named by identity key (hex) and link address. */
export interface ConfiguredPeer {
  identity: string;
  host: string;
  port: number;
}

export interface NodeDhtConfig {
  /** Nodes to bootstrap from (their DHT contacts are derived from the identity key, see docs/spec/node.md). */
  seeds?: ConfiguredPeer[];
  /** DHT parameters (docs/spec/dht.md); every node of one network must agree on the puzzle difficulties. */
  staticDifficulty?: number;
  dynamicDifficulty?: number;
  bucketSize?: number;
  disjointPaths?: number;
  alpha?: number;
  rpcTimeoutMs?: number;
  /** Maintenance timers (ms). */
  sweepMs?: number;
  refreshMs?: number;
  replicateMs?: number;
  /** Contacts taken from the latest consensus at each re-seed (default 8). */
  reseedCount?: number;
  /** Replay cache: live nonces per sending node (default 2048) and in total (default 200,000); docs/spec/dht.md "Limits". */
  maxNoncesPerSender?: number;
  maxReplayEntries?: number;
  /** Storage quotas per node that sent a STORE (default 512 records / 1 MiB) and per source address (default 4 MiB). */
  maxRecordsPerSender?: number;
  maxBytesPerSender?: number;
  maxBytesPerAddress?: number;
}

export interface NodeDirectoryConfig {
  /** The discovery set: keys the node trusts and where they listen (also where descriptors go). */
  discovery: ConfiguredPeer[];
  /** K: signatures a consensus needs (default a strict majority of `discovery`). */
  threshold?: number;
  /** Voting schedule (a test network shortens it; every discovery node must agree). */
  schedule?: { periodMs?: number; voteDelayMs?: number; distDelayMs?: number; validPeriods?: number };
  /** Descriptor publication interval (default 10 min). */
  publishIntervalMs?: number;
  /** Advertised bandwidth, bytes per second (default 1 MB/s). */
  bandwidth?: number;
  /** ISO 3166-1 alpha-2 country (default "ZZ": unknown). */
  country?: string;
  /**
   * A bridge: its descriptor says so and discovery nodes never list it; clients
   * that know it configure it as their entry (selectPath's entryNodes).
   */
  bridge?: boolean;
  /**
   * An internal node (issue 20): only an interim or final hop, never an entry.
   * Its descriptor says so; the consensus lists it without addresses, and
   * only nodes learn them (the node-only view). Not with `bridge`.
   */
  internal?: boolean;
  /**
   * An internal node with outbound links only (issue 20; from
   * `internal: { outboundLinks: true | { minRetryMs?, maxRetryMs? } }`): it
   * does not listen for links, publishes no address, and keeps authenticated
   * links to every trusted discovery node and every listed public onion relay
   * (redialled with backoff when they drop), over which it is reached
   * (docs/spec/directory.md §12). Implies `internal`.
   */
  outboundLinks?: { minRetryMs?: number; maxRetryMs?: number };
  /**
   * Discovery nodes without a `chain` section only (tests, offline networks):
   * the registered, staked nodes and their on-chain roles (identity hex ->
   * role names), the chain view votes are checked against. Ignored when the
   * node has a `chain` section: the NodeRegistry is then the only source.
   */
  registry?: Record<string, string[]>;
  /**
   * The top-level `chain` section, copied here by parseNodeConfig so the
   * directory sees it; not a field of the file's `directory` object.
   */
  chain?: NodeChainConfig;
  /** Consensus refetch retry after a failure (default 30 s). */
  retryMs?: number;
}

/** The serving limits of the node's link RPC endpoint (LinkRpcOptions). */
export type NodeRpcConfig = Pick<
  LinkRpcOptions,
  "maxInflightPerPeer" | "maxServingTotal" | "reassemblyTimeoutMs" | "maxReassemblyBytesPerPeer" | "maxReassemblyBytesTotal" | "anonymous"
>;

const INBOUND_NUMBER_KEYS: ReadonlySet<string> = new Set([
  "outboundReserve",
  "maxAnonymous",
  "maxPending",
  "maxPerAddress",
  "maxPerPrefix",
  "handshakeTimeoutMs",
]);
const RPC_NUMBER_KEYS: ReadonlySet<string> = new Set([
  "maxInflightPerPeer",
  "maxServingTotal",
  "reassemblyTimeoutMs",
  "maxReassemblyBytesPerPeer",
  "maxReassemblyBytesTotal",
]);
const RPC_ANONYMOUS_KEYS: ReadonlySet<string> = new Set([
  "maxInflightPerLink",
  "maxServing",
  "maxReassemblyBytesPerLink",
  "maxReassemblyBytes",
  "reassemblyTimeoutMs",
  "requestsPerSecond",
  "requestBurst",
]);

/** Role names a registry entry may hold (NodeRegistry role bits). */
export const CHAIN_ROLE_NAMES = ["onion", "discovery", "authority", "oracle"] as const;

const RELAY_LIMIT_KEYS: ReadonlySet<string> = new Set([
  "nodeBytesPerSecond",
  "nodeBurstBytes",
  "circuitBytesPerSecond",
  "circuitBurstBytes",
  "maxCircuitsPerLink",
  "maxCircuits",
  "maxStreamsPerCircuit",
  "maxStreamsPerLink",
  "maxQueuedCellsPerCircuit",
  "maxMessageBytes",
  "extendTimeoutMs",
  "maxCircuitLength",
  "maxRelayEarly",
  ...POSITIVE_RELAY_LIMIT_KEYS,
]);

const LINK_NUMBER_KEYS: ReadonlySet<string> = new Set([
  "handshakeTimeoutMs",
  "keepaliveMs",
  "silenceTimeoutMs",
  "idleTimeoutMs",
  "maxQueuedBytes",
  "socketHighWaterBytes",
  "duplicateGraceMs",
  "closeGraceMs",
]);

function checkRelayLimitNumbers(v: unknown): Partial<RelayLimits> {
  const limits = checkNumbers("onion.limits", v, RELAY_LIMIT_KEYS) as Partial<RelayLimits>;
  for (const k of POSITIVE_RELAY_LIMIT_KEYS) {
    const n = limits[k];
    if (n !== undefined && n <= 0) throw bad(`onion.limits.${k}`, "must be positive");
  }
  for (const k of CREATE_BURST_KEYS) {
    const n = limits[k];
    if (n !== undefined && n < 1) throw bad(`onion.limits.${k}`, "must be at least 1 (one CREATE)");
  }
  return limits;
}

function bad(field: string, message: string): NodeError {
  return new NodeError("bad-config", `config ${field}: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkAddress(field: string, v: unknown): { host: string; port: number } {
  if (!isObject(v)) throw bad(field, 'must be an object { "host": string, "port": number }');
  const { host, port } = v;
  if (typeof host !== "string" || host.length === 0 || host.length > 253) throw bad(`${field}.host`, "must be a non-empty host name or IP address");
  if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535) throw bad(`${field}.port`, "must be an integer 0..65535 (0: any free port)");
  return { host, port: port as number };
}

function checkKeySource(field: string, v: unknown): KeySource {
  if (!isObject(v)) throw bad(field, 'must be { "secretKeyHex": "<64 hex>" } or { "keyFile": "<path>", "passphraseEnv": "<VAR>" }');
  if (typeof v.secretKeyHex === "string") {
    if (!/^[0-9a-fA-F]{64}$/.test(v.secretKeyHex)) throw bad(`${field}.secretKeyHex`, "must be 64 hex digits (a 32-byte secret key)");
    return { secretKeyHex: v.secretKeyHex };
  }
  if (typeof v.keyFile === "string" && typeof v.passphraseEnv === "string" && v.keyFile && v.passphraseEnv) {
    return { keyFile: v.keyFile, passphraseEnv: v.passphraseEnv };
  }
  throw bad(field, 'needs "secretKeyHex", or both "keyFile" and "passphraseEnv"');
}

function checkNumbers(field: string, v: unknown, allowed: ReadonlySet<string>): Record<string, number> {
  if (!isObject(v)) throw bad(field, "must be an object of numbers");
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v)) {
    if (!allowed.has(k)) throw bad(`${field}.${k}`, `unknown setting; known: ${[...allowed].join(", ")}`);
    if (typeof n !== "number" || !Number.isFinite(n) || n < 0) throw bad(`${field}.${k}`, "must be a non-negative finite number");
    out[k] = n;
  }
  return out;
}

/** The inbound link budgets, checked against maxLinks the way the connection manager will check them. */
function checkInbound(v: unknown, config: NodeConfig): Partial<InboundLimits> {
  if (!isObject(v)) throw bad("inbound", "must be an object of limits");
  const { exemptLoopback, ...numbers } = v;
  const out: Partial<InboundLimits> = checkNumbers("inbound", numbers, INBOUND_NUMBER_KEYS);
  if (exemptLoopback !== undefined) {
    if (typeof exemptLoopback !== "boolean") throw bad("inbound.exemptLoopback", "must be true or false");
    out.exemptLoopback = exemptLoopback;
  }
  try {
    inboundLimits(out, config.maxLinks ?? 1024, config.link?.handshakeTimeoutMs ?? 10_000);
  } catch (err) {
    throw bad("inbound", (err as Error).message);
  }
  return out;
}

/** The RPC serving budgets, checked the way createLinkRpc will check them. */
function checkRpc(v: unknown): NodeRpcConfig {
  if (!isObject(v)) throw bad("rpc", "must be an object of limits");
  const { anonymous, ...numbers } = v;
  const out: NodeRpcConfig = checkNumbers("rpc", numbers, RPC_NUMBER_KEYS);
  if (anonymous !== undefined) out.anonymous = checkNumbers("rpc.anonymous", anonymous, RPC_ANONYMOUS_KEYS);
  try {
    checkLinkRpcLimits(out);
  } catch (err) {
    throw bad("rpc", (err as Error).message);
  }
  return out;
}

/** Validates a parsed JSON value as a NodeConfig. Throws NodeError "bad-config". */
export function parseNodeConfig(value: unknown): NodeConfig {
  if (!isObject(value)) throw bad("(root)", "must be a JSON object");
  const known = new Set([
    "listen",
    "advertise",
    "identity",
    "onionKey",
    "roles",
    "onion",
    "link",
    "maxLinks",
    "inbound",
    "rpc",
    "dataDir",
    "api",
    "dht",
    "directory",
    "chain",
    "authority",
    "oracle",
    "stream",
    "commercial",
    "rewards",
    "log",
  ]);
  for (const k of Object.keys(value)) if (!known.has(k)) throw bad(k, `unknown field; known: ${[...known].join(", ")}`);
  const config: NodeConfig = { listen: checkAddress("listen", value.listen) };
  if (value.advertise !== undefined) {
    config.advertise = checkAddress("advertise", value.advertise);
    if (config.advertise.port === 0) throw bad("advertise.port", "must be a real port (1..65535)");
  }
  if (value.identity !== undefined) config.identity = checkKeySource("identity", value.identity);
  if (value.onionKey !== undefined) config.onionKey = checkKeySource("onionKey", value.onionKey);
  if (value.roles !== undefined) {
    if (!Array.isArray(value.roles) || !value.roles.every((r) => (NODE_ROLES as readonly unknown[]).includes(r))) {
      throw bad("roles", `must be a list of ${NODE_ROLES.join(", ")}`);
    }
    config.roles = value.roles as NodeRole[];
  }
  if (value.onion !== undefined) {
    const o = value.onion;
    if (!isObject(o)) throw bad("onion", "must be an object");
    config.onion = {};
    if (o.limits !== undefined) config.onion.limits = checkRelayLimitNumbers(o.limits);
    if (o.services !== undefined) {
      if (!Array.isArray(o.services) || !o.services.every((s) => (BUILTIN_SERVICES as readonly unknown[]).includes(s))) {
        throw bad("onion.services", `must be a list of built-in services: ${BUILTIN_SERVICES.join(", ")}`);
      }
      config.onion.services = o.services as BuiltinService[];
    }
    if (o.allowStreamsAtFirstHop !== undefined) {
      if (typeof o.allowStreamsAtFirstHop !== "boolean") throw bad("onion.allowStreamsAtFirstHop", "must be true or false");
      config.onion.allowStreamsAtFirstHop = o.allowStreamsAtFirstHop;
    }
    if (o.protoId !== undefined) {
      if (typeof o.protoId !== "string" || o.protoId.length === 0) throw bad("onion.protoId", "must be a non-empty string");
      config.onion.protoId = o.protoId;
    }
  }
  if (value.link !== undefined) config.link = checkNumbers("link", value.link, LINK_NUMBER_KEYS) as Partial<LinkOptions>;
  if (value.maxLinks !== undefined) {
    if (!Number.isInteger(value.maxLinks) || (value.maxLinks as number) < 1) throw bad("maxLinks", "must be a positive integer");
    config.maxLinks = value.maxLinks as number;
  }
  if (value.inbound !== undefined) config.inbound = checkInbound(value.inbound, config);
  if (value.rpc !== undefined) config.rpc = checkRpc(value.rpc);
  if (value.dataDir !== undefined) {
    if (typeof value.dataDir !== "string" || value.dataDir.length === 0) throw bad("dataDir", "must be a directory path");
    config.dataDir = value.dataDir;
  }
  if (value.api !== undefined)
    config.api = value.api === false ? false : checkAddress("api", { host: "127.0.0.1", ...(isObject(value.api) ? value.api : { bad: value.api }) });
  // Beyond loopback the API needs a bearer token, kept in <dataDir>/api-token (api/token.ts).
  if (config.api && !isLoopbackHost(config.api.host) && config.dataDir === undefined)
    throw bad("api.host", `${config.api.host} is reachable beyond this machine, so the API needs a bearer token kept in <dataDir>/api-token: set dataDir, or bind api.host to 127.0.0.1`);
  if (value.dht !== undefined) config.dht = checkDht(value.dht);
  // A parsed config (directory.chain copied in) parses again to the same value: startNode re-parses what loadNodeConfig returned.
  if (value.directory !== undefined) config.directory = checkDirectory(value.directory, value.chain !== undefined);
  if (config.directory?.outboundLinks && config.advertise)
    throw bad("advertise", "a node with directory.internal.outboundLinks accepts no links and advertises no address; remove advertise");
  if (value.chain !== undefined) {
    config.chain = checkChain(value.chain);
    if (config.directory) config.directory.chain = config.chain;
  }
  if (value.log !== undefined) config.log = checkLog(value.log);
  if (value.stream !== undefined) config.stream = checkStream(value.stream);
  if (value.rewards !== undefined) config.rewards = checkRewards(value.rewards);
  if (value.authority !== undefined) config.authority = checkAuthority(value.authority);
  if (value.oracle !== undefined) {
    if (!isObject(value.oracle)) throw bad("oracle", 'must be an object { "signer": ... }');
    const oracleKeys = ["signer", "store", "params", "batchIntervalMs", "replicateIntervalMs", "rewards"];
    for (const k of Object.keys(value.oracle)) if (!oracleKeys.includes(k)) throw bad(`oracle.${k}`, `unknown field; known: ${oracleKeys.join(", ")}`);
    const o = value.oracle;
    config.oracle = { signer: checkSigner("oracle.signer", o.signer) };
    if (o.store !== undefined) {
      if (typeof o.store !== "string" || o.store.length === 0) throw bad("oracle.store", "must be a file path");
      config.oracle.store = o.store;
    }
    for (const k of ["batchIntervalMs", "replicateIntervalMs"] as const) {
      if (o[k] === undefined) continue;
      if (typeof o[k] !== "number" || !Number.isSafeInteger(o[k]) || o[k] < 100) throw bad(`oracle.${k}`, "must be an integer ≥ 100 (ms)");
      config.oracle[k] = o[k];
    }
    if (o.params !== undefined) {
      const p = o.params;
      if (!isObject(p)) throw bad("oracle.params", "must be { bitrateKbps, maxDurationSeconds, formatFlags }");
      const read = (k: string): number => {
        const v = p[k];
        if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > 0xffff_ffff) throw bad(`oracle.params.${k}`, "must be an integer in 0..2^32-1");
        return v;
      };
      config.oracle.params = { bitrateKbps: read("bitrateKbps"), maxDurationSeconds: read("maxDurationSeconds"), formatFlags: read("formatFlags") };
    }
    if (o.rewards !== undefined) config.oracle.rewards = checkOracleRewards(o.rewards);
  }
  if (value.commercial !== undefined) config.commercial = parseCommercialConfig(value.commercial);
  if ((config.roles?.includes("commercial") ?? false) !== (config.commercial !== undefined)) {
    throw bad("commercial", 'the "commercial" role and the commercial section go together: { "apps": [{ "namespace", "application", "plugin" }] }');
  }
  for (const role of ["authority", "oracle"] as const) {
    if (!config.roles?.includes(role)) {
      if (config[role]) throw bad(role, `is set but "${role}" is not in roles`);
      continue;
    }
    if (!config[role])
      throw bad(
        role,
        `the "${role}" role needs ${role}.signer: { "privateKeyHex": "0x..." } or { "keystore": "<ethers JSON keystore>", "passphraseEnv": "<VAR>" }`,
      );
    if (!config.chain) throw bad("chain", `the "${role}" role reads the chain: add a "chain" section { "rpcUrl", "deploymentFile" }`);
  }
  if (config.roles?.includes("discovery")) {
    if (!config.directory)
      throw bad(
        "directory",
        'the "discovery" role needs directory.discovery (the bootstrap discovery set) and a "chain" section (or, offline, directory.registry)',
      );
    if (!config.chain && !config.directory.registry) {
      throw bad(
        "directory.registry",
        'the "discovery" role needs the NodeRegistry: add a "chain" section { "rpcUrl", "deploymentFile" }, or for an offline network directory.registry (identity hex -> role names)',
      );
    }
  }
  return config;
}

/** A log level name, or undefined when `v` is not one. */
export function parseLogLevel(v: unknown): LogLevel | undefined {
  return typeof v === "string" && (LOG_LEVELS as readonly string[]).includes(v) ? (v as LogLevel) : undefined;
}

function checkOracleRewards(value: unknown): NodeOracleRewardsConfig {
  if (!isObject(value)) throw bad("oracle.rewards", "must be { weiPerByte, epochBudget, acceptSeconds, settleDelaySeconds }");
  const known = ["weiPerByte", "epochBudget", "acceptSeconds", "settleDelaySeconds"];
  for (const k of Object.keys(value)) if (!known.includes(k)) throw bad(`oracle.rewards.${k}`, `unknown field; known: ${known.join(", ")}`);
  const out: NodeOracleRewardsConfig = {};
  for (const k of ["weiPerByte", "epochBudget"] as const) {
    const v = value[k];
    if (v === undefined) continue;
    if (typeof v !== "string" || !/^(0|[1-9][0-9]{0,77})$/.test(v)) throw bad(`oracle.rewards.${k}`, "must be a decimal string of PSP wei, e.g. \"1000000\"");
    out[k] = v;
  }
  for (const k of ["acceptSeconds", "settleDelaySeconds"] as const) {
    const v = value[k];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1 || v > 7 * 86_400) throw bad(`oracle.rewards.${k}`, "must be an integer in 1..604800 (seconds)");
    out[k] = v;
  }
  if ((out.settleDelaySeconds ?? 600) <= (out.acceptSeconds ?? 300))
    throw bad("oracle.rewards.settleDelaySeconds", "must be longer than acceptSeconds: an epoch is computed after its last reports had time to replicate");
  return out;
}

function checkStream(v: unknown): NodeStreamConfig {
  if (!isObject(v)) throw bad("stream", 'must be an object { "enabled": true | false, "graceSeconds": ... }');
  for (const k of Object.keys(v)) if (k !== "enabled" && k !== "graceSeconds") throw bad(`stream.${k}`, "unknown field; known: enabled, graceSeconds");
  const out: NodeStreamConfig = {};
  if (v.enabled !== undefined) {
    if (typeof v.enabled !== "boolean") throw bad("stream.enabled", "must be true or false");
    out.enabled = v.enabled;
  }
  if (v.graceSeconds !== undefined) {
    if (!Number.isInteger(v.graceSeconds) || (v.graceSeconds as number) < 0 || (v.graceSeconds as number) > 86_400)
      throw bad("stream.graceSeconds", "must be a whole number of seconds from 0 to 86400");
    out.graceSeconds = v.graceSeconds as number;
  }
  return out;
}

function checkRewards(v: unknown): NodeRewardsConfig {
  if (!isObject(v)) throw bad("rewards", 'must be an object { "reportIntervalSeconds": 300 }');
  for (const k of Object.keys(v)) if (k !== "reportIntervalSeconds") throw bad(`rewards.${k}`, "unknown field; known: reportIntervalSeconds");
  const out: NodeRewardsConfig = {};
  if (v.reportIntervalSeconds !== undefined) {
    if (!Number.isInteger(v.reportIntervalSeconds) || (v.reportIntervalSeconds as number) < 1 || (v.reportIntervalSeconds as number) > 3600)
      throw bad("rewards.reportIntervalSeconds", "must be a whole number of seconds from 1 to 3600");
    out.reportIntervalSeconds = v.reportIntervalSeconds as number;
  }
  return out;
}

function checkLog(v: unknown): NodeLogConfig {
  if (!isObject(v)) throw bad("log", 'must be an object { "level"?: "info", "name"?: string }');
  for (const k of Object.keys(v)) if (k !== "level" && k !== "name") throw bad(`log.${k}`, "unknown field; known: level, name");
  const out: NodeLogConfig = {};
  if (v.level !== undefined) {
    const level = parseLogLevel(v.level);
    if (level === undefined) throw bad("log.level", `must be one of ${LOG_LEVELS.join(", ")}`);
    out.level = level;
  }
  if (v.name !== undefined) {
    if (typeof v.name !== "string" || !/^[\w.-]{1,64}$/.test(v.name)) throw bad("log.name", "must be 1..64 letters, digits, '_', '.' or '-'");
    out.name = v.name;
  }
  return out;
}

function checkSigner(field: string, v: unknown): SignerSource {
  if (!isObject(v)) throw bad(field, 'must be { "privateKeyHex": "0x<64 hex>" } or { "keystore": "<path>", "passphraseEnv": "<VAR>" }');
  if (v.privateKeyHex !== undefined) {
    if (typeof v.privateKeyHex !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(v.privateKeyHex))
      throw bad(`${field}.privateKeyHex`, "must be 0x followed by 64 hex digits");
    return { privateKeyHex: v.privateKeyHex as `0x${string}` };
  }
  if (typeof v.keystore === "string" && v.keystore && typeof v.passphraseEnv === "string" && v.passphraseEnv)
    return { keystore: v.keystore, passphraseEnv: v.passphraseEnv };
  throw bad(field, 'needs "privateKeyHex", or both "keystore" and "passphraseEnv"');
}

function checkAuthority(v: unknown): NodeAuthorityConfig {
  if (!isObject(v)) throw bad("authority", 'must be an object { "signer": ..., "limits"?: { "requestsPerMinute", "burst" } }');
  for (const k of Object.keys(v)) if (k !== "signer" && k !== "limits") throw bad(`authority.${k}`, "unknown field; known: signer, limits");
  const out: NodeAuthorityConfig = { signer: checkSigner("authority.signer", v.signer) };
  if (v.limits !== undefined) {
    const limits = checkNumbers("authority.limits", v.limits, new Set(["requestsPerMinute", "burst"]));
    for (const [k, n] of Object.entries(limits)) if (!Number.isSafeInteger(n) || n < 1) throw bad(`authority.limits.${k}`, "must be a positive integer");
    out.limits = limits;
  }
  return out;
}

function checkPeers(field: string, v: unknown, max: number): ConfiguredPeer[] {
  if (!Array.isArray(v) || v.length > max) throw bad(field, `must be a list of at most ${max} { "identity": "<64 hex>", "host": string, "port": number }`);
  return v.map((p, i) => {
    if (!isObject(p) || typeof p.identity !== "string" || !/^[0-9a-fA-F]{64}$/.test(p.identity))
      throw bad(`${field}[${i}].identity`, "must be the node's Ed25519 identity key, 64 hex digits");
    const address = checkAddress(`${field}[${i}]`, { host: p.host, port: p.port });
    if (address.port === 0) throw bad(`${field}[${i}].port`, "must be a real port (1..65535)");
    return { identity: p.identity.toLowerCase(), ...address };
  });
}

const DHT_NUMBER_KEYS: ReadonlySet<string> = new Set([
  "staticDifficulty",
  "dynamicDifficulty",
  "bucketSize",
  "disjointPaths",
  "alpha",
  "rpcTimeoutMs",
  "sweepMs",
  "refreshMs",
  "replicateMs",
  "reseedCount",
  "maxNoncesPerSender",
  "maxReplayEntries",
  "maxRecordsPerSender",
  "maxBytesPerSender",
  "maxBytesPerAddress",
]);

/** DHT limits that must be whole positive numbers (a zero cap would refuse everything). */
const DHT_LIMIT_KEYS = ["maxNoncesPerSender", "maxReplayEntries", "maxRecordsPerSender", "maxBytesPerSender", "maxBytesPerAddress"] as const;

function checkDht(v: unknown): NodeDhtConfig {
  if (!isObject(v)) throw bad("dht", "must be an object");
  const { seeds, ...numbers } = v;
  const out: NodeDhtConfig = checkNumbers("dht", numbers, DHT_NUMBER_KEYS);
  for (const k of ["staticDifficulty", "dynamicDifficulty"] as const) {
    const n = out[k];
    if (n !== undefined && (!Number.isInteger(n) || n > 32)) throw bad(`dht.${k}`, "must be an integer 0..32");
  }
  for (const k of ["sweepMs", "refreshMs", "replicateMs", "rpcTimeoutMs", "bucketSize", "disjointPaths", "alpha"] as const) {
    if (out[k] === 0) throw bad(`dht.${k}`, "must be positive");
  }
  for (const k of DHT_LIMIT_KEYS) {
    const n = out[k];
    if (n !== undefined && (!Number.isSafeInteger(n) || n < 1)) throw bad(`dht.${k}`, "must be a positive integer");
  }
  if (seeds !== undefined) out.seeds = checkPeers("dht.seeds", seeds, 64);
  return out;
}

function checkChain(v: unknown): NodeChainConfig {
  if (!isObject(v)) throw bad("chain", 'must be an object { "rpcUrl": "http://...", "deploymentFile": "<path>" }');
  const known = new Set(["rpcUrl", "deploymentFile", "chainId", "confirmations", "cacheMs", "refreshMs", "followMs"]);
  for (const k of Object.keys(v)) if (!known.has(k)) throw bad(`chain.${k}`, `unknown field; known: ${[...known].join(", ")}`);
  const { rpcUrl, deploymentFile } = v;
  if (typeof rpcUrl !== "string" || !/^https?:\/\/[^\s]+$/.test(rpcUrl))
    throw bad("chain.rpcUrl", 'must be the JSON-RPC endpoint as an http(s) URL, e.g. "http://127.0.0.1:8545"');
  if (typeof deploymentFile !== "string" || deploymentFile.length === 0)
    throw bad("chain.deploymentFile", "must be the path of the deployment file (deployments/<network>.json)");
  const out: NodeChainConfig = { rpcUrl, deploymentFile };
  if (v.chainId !== undefined) {
    if (!Number.isSafeInteger(v.chainId) || (v.chainId as number) < 1) throw bad("chain.chainId", "must be the chain's id, a positive integer (e.g. 1 for Ethereum, 31337 for Hardhat)");
    out.chainId = v.chainId as number;
  }
  if (v.confirmations !== undefined) {
    if (!Number.isSafeInteger(v.confirmations) || (v.confirmations as number) < 0) throw bad("chain.confirmations", "must be a non-negative integer (blocks)");
    out.confirmations = v.confirmations as number;
  }
  if (v.cacheMs !== undefined) {
    if (!Number.isSafeInteger(v.cacheMs) || (v.cacheMs as number) < 0) throw bad("chain.cacheMs", "must be a non-negative integer (ms)");
    out.cacheMs = v.cacheMs as number;
  }
  for (const k of ["refreshMs", "followMs"] as const) {
    const n = v[k];
    if (n === undefined) continue;
    if (!Number.isSafeInteger(n) || (n as number) < 10) throw bad(`chain.${k}`, "must be an integer of at least 10 (ms)");
    out[k] = n as number;
  }
  return out;
}

/** directory.internal as an object: { outboundLinks: true | { minRetryMs?, maxRetryMs? } }. */
function checkOutboundLinks(v: Record<string, unknown>): { minRetryMs?: number; maxRetryMs?: number } {
  for (const k of Object.keys(v)) {
    if (k === "outboundLinks") continue;
    if (k === "neighbours" || k === "neighbors")
      throw bad(
        `directory.internal.${k}`,
        "a bounded neighbour set is not supported: clients would have to learn each such node's neighbours to pick the hop before it; " +
          "an outbound-only node links to every listed public relay (use outboundLinks: true)",
      );
    throw bad(`directory.internal.${k}`, "unknown field; known: outboundLinks");
  }
  const o = v.outboundLinks;
  if (o === true) return {};
  if (o === undefined || o === false) throw bad("directory.internal.outboundLinks", "must be true or { minRetryMs?, maxRetryMs? } (use internal: true for a node that listens)");
  if (!isObject(o)) throw bad("directory.internal.outboundLinks", "must be true or an object { minRetryMs?, maxRetryMs? }");
  if ("neighbours" in o || "neighbors" in o)
    throw bad(
      "directory.internal.outboundLinks.neighbours",
      "a bounded neighbour set is not supported: clients would have to learn each such node's neighbours to pick the hop before it; it links to every listed public relay",
    );
  const out = checkNumbers("directory.internal.outboundLinks", o, new Set(["minRetryMs", "maxRetryMs"]));
  for (const [k, n] of Object.entries(out)) if (n < 10) throw bad(`directory.internal.outboundLinks.${k}`, "must be at least 10 (ms)");
  if (out.minRetryMs !== undefined && out.maxRetryMs !== undefined && out.maxRetryMs < out.minRetryMs)
    throw bad("directory.internal.outboundLinks.maxRetryMs", `must be at least minRetryMs (${out.minRetryMs})`);
  return out;
}

function checkDirectory(v: unknown, hasChain: boolean): NodeDirectoryConfig {
  if (!isObject(v)) throw bad("directory", "must be an object");
  const known = new Set(["discovery", "threshold", "schedule", "publishIntervalMs", "bandwidth", "country", "bridge", "internal", "outboundLinks", "registry", "retryMs"]);
  // directory.chain is the top-level chain section copied in (and replaced by it); never a field of its own.
  if (hasChain) known.add("chain");
  for (const k of Object.keys(v)) if (!known.has(k)) throw bad(`directory.${k}`, `unknown field; known: ${[...known].join(", ")}`);
  const discovery = checkPeers("directory.discovery", v.discovery, 128);
  if (discovery.length === 0) throw bad("directory.discovery", "must list at least one discovery node");
  const out: NodeDirectoryConfig = { discovery };
  const positive = (k: "threshold" | "publishIntervalMs" | "bandwidth" | "retryMs"): void => {
    const n = v[k];
    if (n === undefined) return;
    if (!Number.isSafeInteger(n) || (n as number) < 1) throw bad(`directory.${k}`, "must be a positive integer");
    out[k] = n as number;
  };
  positive("threshold");
  positive("publishIntervalMs");
  positive("bandwidth");
  positive("retryMs");
  if (out.threshold !== undefined && out.threshold > discovery.length)
    throw bad("directory.threshold", `must be at most the ${discovery.length} discovery nodes listed`);
  if (v.country !== undefined) {
    if (typeof v.country !== "string" || !/^[A-Z]{2}$/.test(v.country))
      throw bad("directory.country", 'must be an ISO 3166-1 alpha-2 code in upper case, e.g. "DE" ("ZZ": unknown)');
    out.country = v.country;
  }
  if (v.bridge !== undefined) {
    if (typeof v.bridge !== "boolean") throw bad("directory.bridge", "must be true or false");
    out.bridge = v.bridge;
  }
  if (v.internal !== undefined) {
    if (typeof v.internal !== "boolean" && !isObject(v.internal))
      throw bad("directory.internal", "must be true, false, or { outboundLinks: true } for a node that accepts no inbound links");
    // A bridge is an unlisted entry; an internal node is never an entry.
    if (v.internal !== false && out.bridge) throw bad("directory.internal", "a node cannot be both a bridge and internal");
    out.internal = v.internal !== false;
    if (isObject(v.internal)) out.outboundLinks = checkOutboundLinks(v.internal);
  }
  // The parsed form (internal: true plus outboundLinks), so a parsed config parses again to the same value.
  if (v.outboundLinks !== undefined) {
    if (isObject(v.internal)) throw bad("directory.outboundLinks", "give it once, as directory.internal.outboundLinks");
    if (v.internal !== true) throw bad("directory.outboundLinks", "only for an internal node: use directory.internal: { outboundLinks: ... }");
    out.outboundLinks = checkOutboundLinks({ outboundLinks: isObject(v.outboundLinks) && Object.keys(v.outboundLinks).length === 0 ? true : v.outboundLinks });
  }
  if (v.schedule !== undefined) {
    out.schedule = checkNumbers("directory.schedule", v.schedule, new Set(["periodMs", "voteDelayMs", "distDelayMs", "validPeriods"]));
  }
  if (v.registry !== undefined) {
    if (!isObject(v.registry)) throw bad("directory.registry", "must map identity hex to a list of role names");
    const registry: Record<string, string[]> = {};
    for (const [identity, roles] of Object.entries(v.registry)) {
      if (!/^[0-9a-fA-F]{64}$/.test(identity)) throw bad(`directory.registry.${identity.slice(0, 16)}`, "keys must be identity keys, 64 hex digits");
      if (!Array.isArray(roles) || !roles.every((r) => (CHAIN_ROLE_NAMES as readonly unknown[]).includes(r))) {
        throw bad(`directory.registry.${identity.slice(0, 16)}`, `must be a list of ${CHAIN_ROLE_NAMES.join(", ")}`);
      }
      registry[identity.toLowerCase()] = roles as string[];
    }
    out.registry = registry;
  }
  return out;
}

/** The config file formats, by extension. */
export const CONFIG_FORMATS = { ".json": "JSON", ".yaml": "YAML", ".yml": "YAML", ".toml": "TOML" } as const;
export type ConfigFormat = (typeof CONFIG_FORMATS)[keyof typeof CONFIG_FORMATS];

/** The format a config file's name says it is in; undefined for any other extension. */
export function configFormatOf(path: string): ConfigFormat | undefined {
  const ext = extname(path).toLowerCase();
  return Object.hasOwn(CONFIG_FORMATS, ext) ? CONFIG_FORMATS[ext as keyof typeof CONFIG_FORMATS] : undefined;
}

/** 1-based line and column of a 0-based character offset. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const line = before.split("\n").length;
  return { line, column: before.length - before.lastIndexOf("\n") };
}

/**
 * Where JSON.parse stopped, from its message: V8 names a position ("... in
 * JSON at position 8"), or for an unexpected token quotes the text around it
 * (10 characters either side, "..." where it cut), which is found in `text`.
 * The end of the text when neither is there ("Unexpected end of JSON input").
 */
function jsonErrorOffset(text: string, message: string): number {
  const at = /position (\d+)/.exec(message);
  if (at) return Number(at[1]);
  const quoted = /^Unexpected token '(.+?)', (\.\.\.)?"([\s\S]*?)"(\.\.\.)? is not valid JSON$/.exec(message);
  if (quoted) {
    const [, token = "", cutBefore, context = ""] = quoted;
    const start = text.indexOf(context);
    if (start >= 0) return start + (cutBefore ? 10 : Math.max(0, context.indexOf(token)));
  }
  return text.length;
}

/** The first line of a parser's message, without the position it repeats (the caller names it). */
const firstLine = (message: string): string =>
  (message.split("\n")[0] ?? message)
    .replace(/\s+at line \d+, column \d+:?\s*$/, "")
    .replace(/\s+in JSON at position \d+.*$/, "")
    .replace(/:\s*$/, "");

/**
 * Parses config text in `format` into a plain value (not yet checked).
 * Throws NodeError "bad-config" naming `path`, the line and the column.
 */
export function parseConfigText(text: string, format: ConfigFormat, path: string): unknown {
  const where = (line: number, column: number, err: Error): NodeError =>
    new NodeError("bad-config", `config file ${path} is not valid ${format}: line ${line}, column ${column}: ${firstLine(err.message)}`, {
      cause: err,
      fix: `correct ${path} at line ${line}, column ${column}`,
    });
  try {
    if (format === "JSON") return JSON.parse(text);
    // YAML's core schema only: no timestamps or custom tags, duplicate keys refused.
    if (format === "YAML") return parseYaml(text, { schema: "core", uniqueKeys: true, maxAliasCount: 100 }) as unknown;
    return parseToml(text);
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      throw where(pos?.line ?? 1, pos?.col ?? 1, err);
    }
    if (err instanceof TomlError) throw where(err.line, err.column, err);
    if (err instanceof SyntaxError) {
      const { line, column } = lineColumn(text, jsonErrorOffset(text, err.message));
      throw where(line, column, err);
    }
    throw new NodeError("bad-config", `config file ${path} is not valid ${format}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Reads and validates a config file: JSON, YAML or TOML by its extension
 * (CONFIG_FORMATS). Throws NodeError "bad-config" (with the path) for
 * unreadable, unparsable (with line and column) or invalid files.
 */
export async function loadNodeConfig(path: string): Promise<NodeConfig> {
  const format = configFormatOf(path);
  if (format === undefined)
    throw new NodeError("bad-config", `config file ${path}: unknown format "${extname(path)}"`, {
      fix: `name it ${Object.keys(CONFIG_FORMATS)
        .map((e) => `*${e}`)
        .join(", ")}`,
    });
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new NodeError("bad-config", `cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const value = parseConfigText(text, format, path);
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new NodeError("bad-config", `config file ${path} must hold one ${format === "TOML" ? "table" : "object"} (the node's settings)`);
  return parseNodeConfig(value);
}

async function secretFrom(source: KeySource, field: string, keyType: "ed25519" | "x25519"): Promise<Uint8Array> {
  if ("secretKeyHex" in source) return Uint8Array.from(Buffer.from(source.secretKeyHex, "hex"));
  const passphrase = process.env[source.passphraseEnv];
  if (passphrase === undefined)
    throw new NodeError("key-load", `${field}: environment variable ${source.passphraseEnv} (the key file's passphrase) is not set`);
  let text: string;
  try {
    text = await readFile(source.keyFile, "utf8");
  } catch (err) {
    throw new NodeError("key-load", `${field}: cannot read key file ${source.keyFile}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const key = await decryptKeyFile(text, passphrase);
    if (key.keyType !== keyType) throw new NodeError("key-load", `${field}: ${source.keyFile} holds an ${key.keyType} key; an ${keyType} key is needed`);
    return key.secretKey;
  } catch (err) {
    if (err instanceof NodeError) throw err;
    throw new NodeError("key-load", `${field}: ${(err as Error).message}`, { cause: err });
  }
}

/** The node's identity key pair from the config (fresh when absent). */
export async function loadIdentityKey(config: NodeConfig): Promise<Ed25519KeyPair> {
  if (!config.identity) return generateEd25519KeyPair();
  const secretKey = await secretFrom(config.identity, "identity", "ed25519");
  return { secretKey, publicKey: ed25519PublicKey(secretKey) };
}

/** The EVM private key a signer source names (an ethers keystore is decrypted with the passphrase from its variable). */
export async function loadSignerKey(source: SignerSource, field: string): Promise<`0x${string}`> {
  if ("privateKeyHex" in source) return source.privateKeyHex;
  const passphrase = process.env[source.passphraseEnv];
  if (passphrase === undefined)
    throw new NodeError("key-load", `${field}: environment variable ${source.passphraseEnv} (the keystore's passphrase) is not set`);
  let text: string;
  try {
    text = await readFile(source.keystore, "utf8");
  } catch (err) {
    throw new NodeError("key-load", `${field}: cannot read keystore ${source.keystore}: ${(err as Error).message}`, { cause: err });
  }
  // ethers loads only for nodes whose signer sits in a keystore.
  const { decryptEvmKeystore } = await import("../crypto/evm-keystore.js");
  try {
    return (await decryptEvmKeystore(text, passphrase)).privateKey;
  } catch (err) {
    throw new NodeError("key-load", `${field}: ${(err as Error).message}`, { cause: err });
  }
}

/** The node's onion key pair from the config (fresh when absent). */
export async function loadOnionKey(config: NodeConfig): Promise<X25519KeyPair> {
  if (!config.onionKey) return generateX25519KeyPair();
  const secretKey = await secretFrom(config.onionKey, "onionKey", "x25519");
  return { secretKey, publicKey: x25519PublicKey(secretKey) };
}

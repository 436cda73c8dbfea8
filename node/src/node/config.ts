/**
 * The node's configuration file: parsing and validation.
 *
 * Owns the JSON shape `psp node run --config <file>` reads (docs/spec/onion.md
 * §13) and its checks. Every problem is a NodeError "bad-config" naming the
 * field and what would be accepted, so an operator can fix the file without
 * reading code. Keys may be given as hex (tests, throwaway nodes), as an
 * encrypted key file with the passphrase in an environment variable, or left
 * out (a fresh key each start).
 *
 * Trusts nothing in the file.
 */
import { readFile } from "node:fs/promises";
import { PspError } from "../errors.js";
import { decryptKeyFile } from "../crypto/keyfile.js";
import { ed25519PublicKey, generateEd25519KeyPair } from "../crypto/ed25519.js";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import { generateX25519KeyPair, x25519PublicKey } from "../crypto/x25519.js";
import type { X25519KeyPair } from "../crypto/x25519.js";
import type { LinkOptions } from "../link/index.js";
import type { RelayLimits } from "../onion/relay.js";

export type NodeErrorKind =
  /** The configuration is malformed; the message names the field. */
  | "bad-config"
  /** A key could not be loaded (file missing, wrong passphrase, wrong key type). */
  | "key-load"
  /** The node could not start (listen failed, ...). */
  | "start-failed";

export class NodeError extends PspError<NodeErrorKind> {}

/** Roles a node process can run; only "onion" exists so far. */
export const NODE_ROLES = ["onion"] as const;
export type NodeRole = (typeof NODE_ROLES)[number];

/** Built-in local services a node can offer at the end of circuits. */
export const BUILTIN_SERVICES = ["echo", "discard"] as const;
export type BuiltinService = (typeof BUILTIN_SERVICES)[number];

/** Where a key comes from. */
export type KeySource = { secretKeyHex: string } | { keyFile: string; passphraseEnv: string };

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
}

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
  "relayCircuitIdleMs",
  "maxCircuitLength",
  "maxRelayEarly",
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

/** Validates a parsed JSON value as a NodeConfig. Throws NodeError "bad-config". */
export function parseNodeConfig(value: unknown): NodeConfig {
  if (!isObject(value)) throw bad("(root)", "must be a JSON object");
  const known = new Set(["listen", "advertise", "identity", "onionKey", "roles", "onion", "link", "maxLinks"]);
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
    if (o.limits !== undefined) config.onion.limits = checkNumbers("onion.limits", o.limits, RELAY_LIMIT_KEYS) as Partial<RelayLimits>;
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
  return config;
}

/** Reads and validates a config file. Throws NodeError "bad-config" (with the path) for unreadable or invalid files. */
export async function loadNodeConfig(path: string): Promise<NodeConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new NodeError("bad-config", `cannot read config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new NodeError("bad-config", `config file ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseNodeConfig(json);
}

async function secretFrom(source: KeySource, field: string, keyType: "ed25519" | "x25519"): Promise<Uint8Array> {
  if ("secretKeyHex" in source) return Uint8Array.from(Buffer.from(source.secretKeyHex, "hex"));
  const passphrase = process.env[source.passphraseEnv];
  if (passphrase === undefined) throw new NodeError("key-load", `${field}: environment variable ${source.passphraseEnv} (the key file's passphrase) is not set`);
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

/** The node's onion key pair from the config (fresh when absent). */
export async function loadOnionKey(config: NodeConfig): Promise<X25519KeyPair> {
  if (!config.onionKey) return generateX25519KeyPair();
  const secretKey = await secretFrom(config.onionKey, "onionKey", "x25519");
  return { secretKey, publicKey: x25519PublicKey(secretKey) };
}

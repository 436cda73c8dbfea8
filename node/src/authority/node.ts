/**
 * Authority nodes on the network: the authority service (service.ts)
 * served as service "authority" of the link RPC layer, the client-side
 * `AuthorityTransport` over it, a runnable authority node (connection
 * manager + link RPC + chain PKI + service), and the list of authority peers
 * a client dials.
 *
 * Owns: the rate-limit key a link gives the service ("node:<hex key>" for an
 * authenticated node link, "client:<remote host>" for an anonymous client
 * link, so reconnecting does not reset a client's budget); the mapping of
 * transport failures to AuthorityError "unreachable"; the authority-peers
 * file format (a devnet state.json or a plain list, see
 * `parseAuthorityPeers`); retrying a certificate while the authorities' chain
 * view catches up with a registration.
 *
 * Trusts: the link layer for peer identities (a client dials an authority by
 * its node key, so it talks to that key or to nobody), service.ts for every
 * check on a request, and the chain for the current authority set (peers not
 * in it are dropped before dialing). The handler is transport-agnostic: it
 * takes bytes and a client key, so a circuit can carry it unchanged.
 */
import { readFile } from "node:fs/promises";
import { bytesToHex, hexToBytes, type Hex, type LocalAccount } from "viem";
import { ed25519PublicKey } from "../crypto/ed25519.js";
import { parseIdentity } from "../crypto/identity.js";
import { createConnectionManager, type ConnectionManager, type PeerAddress } from "../link/manager.js";
import { RpcError, createLinkRpc, type LinkRpc, type RpcContext } from "../link/rpc.js";
import {
  AuthorityError,
  MAX_AUTHORITY_MESSAGE_BYTES,
  createAuthorityService,
  requestAccessCertificate,
  type AuthorityLimits,
  type AuthorityService,
  type AuthorityTransport,
  type IssuedCertificate,
  type RequestCertificateOptions,
} from "./service.js";
import type { ChainClients } from "../chain/clients.js";
import type { Deployment } from "../chain/deployment.js";
import { ChainError } from "../chain/errors.js";
import { createChainPki, type Pki } from "../chain/pki.js";
import type { Logger } from "../log.js";

/** The RPC service authorities answer on. */
export const AUTHORITY_RPC_SERVICE = "authority";
/** Default deadline for one authority request over a link (dial included). */
export const DEFAULT_AUTHORITY_TIMEOUT_MS = 10_000;

/** The service's first rate-limit key for a request that came over `ctx`'s link. */
export function authorityClientKey(ctx: Pick<RpcContext, "peer" | "link">): string {
  return ctx.peer !== null ? `node:${bytesToHex(ctx.peer).slice(2)}` : `client:${ctx.link.remoteAddress.host}`;
}

/** Serves `service` on `rpc` as service "authority" (anonymous client links allowed). Returns a function that stops serving. */
export function serveAuthority(rpc: LinkRpc, service: AuthorityService): () => void {
  return rpc.serve(AUTHORITY_RPC_SERVICE, (request, ctx) => service.handleMessage(request, { client: authorityClientKey(ctx) }), {
    allowAnonymous: true,
    maxRequestBytes: MAX_AUTHORITY_MESSAGE_BYTES,
  });
}

/**
 * An AuthorityTransport to the authority at `peer` over link RPC: each call
 * is one request on the (shared, redialed on demand) link. Transport failures
 * become AuthorityError "unreachable" (or "busy" when the peer's in-flight cap
 * refused it); the service's own refusals arrive as `error` messages.
 */
export function linkAuthorityTransport(rpc: LinkRpc, peer: PeerAddress, options: { timeoutMs?: number } = {}): AuthorityTransport {
  const timeoutMs = options.timeoutMs ?? DEFAULT_AUTHORITY_TIMEOUT_MS;
  const where = `authority ${bytesToHex(peer.identity).slice(0, 18)}… at ${peer.host}:${peer.port}`;
  return async (request) => {
    try {
      return await rpc.request(peer, AUTHORITY_RPC_SERVICE, request, { timeoutMs, maxResponseBytes: MAX_AUTHORITY_MESSAGE_BYTES });
    } catch (err) {
      if (err instanceof RpcError && err.kind === "busy") throw new AuthorityError("busy", `${where} is busy: ${err.message}`, { cause: err, retryAfterMs: 1000 });
      const reason = err instanceof RpcError ? `${err.kind}: ${err.message}` : String(err);
      throw new AuthorityError("unreachable", `${where} could not be reached: ${reason}`, { cause: err });
    }
  };
}

// ---------------------------------------------------------------- authority peers

/** One authority a client can dial: its node key (NodeRegistry key) and where it listens. */
export interface AuthorityPeer extends PeerAddress {
  /** Hex node key, for matching against the on-chain authority set. */
  nodeKey: Hex;
  /** A label for messages (devnet node name or the identity string). */
  name: string;
}

function parseHostPort(text: string, source: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  const host = m?.[1] ?? m?.[2];
  if (host === undefined || !(port >= 1 && port <= 65535)) throw new ChainError("bad-argument", `${source}: address ${JSON.stringify(text.slice(0, 80))} is not host:port`);
  return { host, port };
}

function keyOf(value: unknown, source: string): Uint8Array {
  if (typeof value === "string" && /^0x[0-9a-fA-F]{64}$/.test(value)) return hexToBytes(value as Hex);
  if (typeof value === "string") {
    try {
      return parseIdentity(value).publicKey;
    } catch (err) {
      throw new ChainError("bad-argument", `${source}: ${JSON.stringify(value.slice(0, 100))} is neither a 32-byte hex node key nor a node identity string`, { cause: err });
    }
  }
  throw new ChainError("bad-argument", `${source}: an authority needs "identity" (node identity string or 0x node key)`);
}

/**
 * Reads authority peers from JSON: a devnet state.json (`nodes[]` with
 * "authority" in `roles`, `nodeKey`, `addresses: ["host:port"]`; nodes
 * without an address are skipped), or `{ "authorities": [...] }` / a bare
 * array of `{ identity, host, port }` or `{ identity, address: "host:port" }`
 * where identity is a node identity string or a 0x node key.
 */
export function parseAuthorityPeers(json: unknown, source = "authorities"): AuthorityPeer[] {
  const record = (json ?? {}) as Record<string, unknown>;
  const peers: AuthorityPeer[] = [];
  if (Array.isArray(record.nodes)) {
    for (const [i, n] of (record.nodes as Record<string, unknown>[]).entries()) {
      if (!Array.isArray(n?.roles) || !n.roles.includes("authority")) continue;
      const addresses = Array.isArray(n.addresses) ? (n.addresses as unknown[]) : [];
      if (typeof addresses[0] !== "string") continue;
      const identity = keyOf(n.nodeKey ?? n.identity, `${source}: nodes[${i}]`);
      peers.push({ identity, nodeKey: bytesToHex(identity), name: typeof n.name === "string" ? n.name : `nodes[${i}]`, ...parseHostPort(addresses[0], `${source}: nodes[${i}]`) });
    }
    if (peers.length === 0) throw new ChainError("bad-argument", `${source} lists no authority node with an address: is the devnet running its authority nodes?`);
    return peers;
  }
  const list = Array.isArray(json) ? json : record.authorities;
  if (!Array.isArray(list) || list.length === 0) {
    throw new ChainError("bad-argument", `${source} must be a devnet state.json or a non-empty list of { identity, host, port } authorities`);
  }
  for (const [i, entry] of (list as Record<string, unknown>[]).entries()) {
    const where = `${source}: authorities[${i}]`;
    const identity = keyOf(entry?.identity ?? entry?.nodeKey, where);
    const address =
      typeof entry.address === "string"
        ? parseHostPort(entry.address, where)
        : typeof entry.host === "string" && Number.isInteger(entry.port) && (entry.port as number) >= 1 && (entry.port as number) <= 65535
          ? { host: entry.host, port: entry.port as number }
          : (() => {
              throw new ChainError("bad-argument", `${where} needs "host" and "port" (1..65535) or "address": "host:port"`);
            })();
    peers.push({ identity, nodeKey: bytesToHex(identity), name: typeof entry.identity === "string" ? entry.identity : bytesToHex(identity), ...address });
  }
  return peers;
}

/** Loads authority peers from a file path or an http(s) URL serving the same JSON. */
export async function loadAuthorityPeers(fileOrUrl: string): Promise<AuthorityPeer[]> {
  let text: string;
  if (/^https?:\/\//.test(fileOrUrl)) {
    let res: Response;
    try {
      res = await fetch(fileOrUrl, { signal: AbortSignal.timeout(10_000) });
    } catch (err) {
      throw new ChainError("bad-argument", `cannot fetch authorities from ${fileOrUrl}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    if (!res.ok) throw new ChainError("bad-argument", `${fileOrUrl} answered HTTP ${res.status}; it should serve the authorities JSON`);
    text = await res.text();
  } else {
    try {
      text = await readFile(fileOrUrl, "utf8");
    } catch (err) {
      throw new ChainError("bad-argument", `cannot read authorities file ${fileOrUrl}: pass a devnet state.json or a JSON list of { identity, host, port }`, { cause: err });
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ChainError("bad-argument", `${fileOrUrl} is not JSON`, { cause: err });
  }
  return parseAuthorityPeers(json, fileOrUrl);
}

/**
 * Keeps the peers whose node key is in the current on-chain authority set;
 * throws "bad-argument" when none is (wrong file for this deployment).
 */
export async function currentAuthorityPeers(pki: Pki, peers: readonly AuthorityPeer[]): Promise<AuthorityPeer[]> {
  const current = new Set((await pki.currentAuthorities()).members.map((m) => m.nodeKey.toLowerCase()));
  const kept = peers.filter((p) => current.has(p.nodeKey.toLowerCase()));
  if (kept.length === 0) {
    throw new ChainError("bad-argument", `none of the ${peers.length} listed authorities is in the current on-chain authority set: is that list for this deployment?`);
  }
  return kept;
}

// ---------------------------------------------------------------- a client

export interface AuthorityClient {
  rpc: LinkRpc;
  manager: ConnectionManager;
  transports: AuthorityTransport[];
  close(): Promise<void>;
}

/** An anonymous link client with one transport per peer (what `psp identity register` and `psp cert request` use). */
export async function connectAuthorities(peers: readonly PeerAddress[], options: { timeoutMs?: number } = {}): Promise<AuthorityClient> {
  const manager = await createConnectionManager({});
  const rpc = createLinkRpc({ manager, maxMessageBytes: MAX_AUTHORITY_MESSAGE_BYTES });
  return {
    rpc,
    manager,
    transports: peers.map((p) => linkAuthorityTransport(rpc, p, options)),
    close: async () => {
      rpc.close();
      await manager.close();
    },
  };
}

const CHAIN_CATCHING_UP = new Set(["identity-not-registered", "identity-unconfirmed", "chain-unavailable"]);

/**
 * requestAccessCertificate, retried while the only refusals say the
 * authorities' chain view has not caught up with a fresh registration
 * (not registered / unconfirmed / chain unavailable), for up to `retryForMs`.
 */
export async function requestAccessCertificateWhenConfirmed(opts: RequestCertificateOptions & { retryForMs?: number; retryEveryMs?: number }): Promise<IssuedCertificate> {
  const until = performance.now() + (opts.retryForMs ?? 15_000);
  for (;;) {
    try {
      return await requestAccessCertificate({ ...opts, now: Date.now() });
    } catch (err) {
      const catchingUp =
        err instanceof AuthorityError && err.kind === "not-enough-authorities" && err.refusals.length > 0 && err.refusals.every((r) => CHAIN_CATCHING_UP.has(r.kind));
      if (!catchingUp || performance.now() + (opts.retryEveryMs ?? 500) > until) throw err;
      await new Promise((r) => setTimeout(r, opts.retryEveryMs ?? 500));
    }
  }
}

// ---------------------------------------------------------------- a node

export interface StartAuthorityNodeOptions {
  /** The node's Ed25519 identity seed (its NodeRegistry key). */
  identitySecretKey: Uint8Array;
  /** The node's EVM signer (signs EIP-712 attestations). */
  signer: Pick<LocalAccount, "address" | "signTypedData">;
  clients: Pick<ChainClients, "publicClient">;
  deployment: Deployment;
  /** Where to listen for links (port 0: any free port). */
  listen: { host: string; port: number };
  /** Chain facts: confirmation depth (default 2; 0 suits an automining devnet), cache, event polling. */
  confirmations?: number;
  cacheMs?: number;
  followIntervalMs?: number;
  limits?: Partial<AuthorityLimits>;
  /** Link RPC caps (defaults: link/rpc.ts). */
  maxInflightPerPeer?: number;
  onWarning?: (message: string, cause?: unknown) => void;
  /** Handed to the connection manager, link RPC, chain PKI and authority service; silent when absent. */
  logger?: Logger;
}

export interface AuthorityNode {
  nodeKey: Uint8Array;
  /** How clients dial this node. */
  peer: PeerAddress;
  /** "host:port", as recorded in a devnet state file. */
  address: string;
  manager: ConnectionManager;
  rpc: LinkRpc;
  pki: Pki;
  service: AuthorityService;
  close(): Promise<void>;
}

/** Starts an authority node: a listening connection manager, link RPC serving "authority", a chain PKI following events. */
export async function startAuthorityNode(opts: StartAuthorityNodeOptions): Promise<AuthorityNode> {
  const publicKey = ed25519PublicKey(opts.identitySecretKey);
  const pki = await createChainPki({
    clients: opts.clients,
    deployment: opts.deployment,
    confirmations: opts.confirmations ?? 2,
    ...(opts.cacheMs !== undefined ? { cacheMs: opts.cacheMs } : {}),
    follow: { intervalMs: opts.followIntervalMs ?? 2000 },
    ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  const logger = opts.logger ? { logger: opts.logger } : {};
  let manager: ConnectionManager | undefined;
  try {
    manager = await createConnectionManager({ identity: { secretKey: opts.identitySecretKey, publicKey }, listen: opts.listen, ...logger });
    const rpc = createLinkRpc({ manager, maxMessageBytes: MAX_AUTHORITY_MESSAGE_BYTES, ...(opts.maxInflightPerPeer ? { maxInflightPerPeer: opts.maxInflightPerPeer } : {}), ...logger });
    const service = createAuthorityService({ pki, nodeSecretKey: opts.identitySecretKey, signer: opts.signer, ...(opts.limits ? { limits: opts.limits } : {}), ...logger });
    serveAuthority(rpc, service);
    const bound = manager.address() as { host: string; port: number };
    const host = bound.host === "0.0.0.0" || bound.host === "::" ? opts.listen.host : bound.host;
    const m = manager;
    return {
      nodeKey: publicKey,
      peer: { identity: publicKey, host, port: bound.port },
      address: host.includes(":") ? `[${host}]:${bound.port}` : `${host}:${bound.port}`,
      manager,
      rpc,
      pki,
      service,
      close: async () => {
        rpc.close();
        await m.close();
        pki.close();
      },
    };
  } catch (err) {
    await manager?.close();
    pki.close();
    throw err;
  }
}

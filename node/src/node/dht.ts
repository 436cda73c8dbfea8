/**
 * The DHT as every node process runs it: a DhtNode on the node's identity
 * key, a SQLite record store in the data directory (records survive a
 * restart), the LinkDhtTransport on the node's link RPC endpoint,
 * maintenance timers, bootstrap from configured seeds and re-seeding from
 * random nodes of the latest consensus.
 *
 * Owns the contact derivation rule: a node's DHT contact is computed from
 * its identity key and link address alone (the dynamic puzzle solution X is
 * the first one found counting up from SHA-256("psp/dht-x" || key)), so a
 * seed list or a consensus entry (identity + address) is enough to reach a
 * node; the solver's cost is unchanged, and a wrong X is refused by the
 * contact check as before.
 *
 * Trusts: the DHT layer for every message check; its config (validated by
 * config.ts); the consensus it is handed (verified by the directory layer).
 */
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { nodeIdFromPublicKey, solveDynamicPuzzle, verifyStaticPuzzle } from "../crypto/puzzles.js";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import { resolveDhtConfig } from "../dht/config.js";
import type { DhtConfig } from "../dht/config.js";
import type { Contact } from "../dht/contact.js";
import { LinkDhtTransport, formatLinkAddress } from "../dht/link-transport.js";
import { DEFAULT_MAINTENANCE_INTERVALS, DhtNode } from "../dht/node.js";
import { DEFAULT_REPLAY_LIMITS } from "../dht/messages.js";
import { DEFAULT_SENDER_QUOTA } from "../dht/sender-quota.js";
import { SqliteRecordStore } from "../dht/sqlite-store.js";
import type { LinkRpc } from "../link/rpc.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { NodeError } from "./config.js";
import type { ConfiguredPeer, NodeDhtConfig } from "./config.js";

const X_START_TAG = new TextEncoder().encode("psp/dht-x");
/** Contacts taken from the consensus at each re-seed unless configured. */
export const DEFAULT_RESEED_COUNT = 8;

/** Counters of the node's DHT use, for the control API. */
export interface NodeDhtStats {
  /** Node and value lookups run (by this node's callers, maintenance and bootstrap). */
  lookups: number;
  /** Lookups that threw. */
  lookupFailures: number;
  /** Value lookups that found no record. */
  valueMisses: number;
  bootstraps: number;
  bootstrapFailures: number;
  reseeds: number;
  reseedContacts: number;
}

export interface NodeDht {
  readonly node: DhtNode;
  readonly transport: LinkDhtTransport;
  readonly store: SqliteRecordStore;
  readonly stats: NodeDhtStats;
  /** Bootstraps from `peers` (configured seeds or consensus nodes); resolves with the table size after. */
  bootstrapFrom(peers: readonly ConfiguredPeer[]): Promise<number>;
  /** Re-seeds from up to reseedCount random nodes of a consensus (other than this node). */
  reseed(peers: readonly ConfiguredPeer[]): Promise<number>;
  close(): void;
}

/** The start value of the dynamic puzzle search for `publicKey` (part of the contact derivation rule). */
export function puzzleStart(publicKey: Uint8Array): Uint8Array {
  const input = new Uint8Array(X_START_TAG.length + publicKey.length);
  input.set(X_START_TAG);
  input.set(publicKey, X_START_TAG.length);
  return sha256(input);
}

const contactCache = new Map<string, Contact>();

/** The DHT contact of a node from its identity key and link address (cached: the puzzle search costs ~2^c2 hashes). */
export function contactFor(publicKey: Uint8Array, host: string, port: number, difficulty: Pick<DhtConfig, "dynamicDifficulty">): Contact {
  const address = formatLinkAddress(host, port);
  const key = `${Buffer.from(publicKey).toString("hex")}/${difficulty.dynamicDifficulty}/${address}`;
  let contact = contactCache.get(key);
  if (!contact) {
    const nodeId = nodeIdFromPublicKey(publicKey);
    const { x } = solveDynamicPuzzle(nodeId, { difficulty: difficulty.dynamicDifficulty, start: puzzleStart(publicKey) });
    contact = { nodeId, publicKey, puzzleX: x, address };
    if (contactCache.size > 4096) contactCache.clear();
    contactCache.set(key, contact);
  }
  return contact;
}

function peerKey(peer: ConfiguredPeer): Uint8Array {
  return Uint8Array.from(Buffer.from(peer.identity, "hex"));
}

export interface StartNodeDhtOptions {
  identity: Ed25519KeyPair;
  rpc: LinkRpc;
  /** The address other nodes dial. */
  advertised: { host: string; port: number };
  config: NodeDhtConfig;
  dataDir: string | undefined;
  /** The node's logger: the DHT logs as component "dht" (bootstrap and re-seed failures at warn). */
  logger?: Logger;
}

/**
 * Starts the node's DHT. Throws NodeError "key-load" when the identity key
 * does not solve the static puzzle at the configured difficulty, "bad-config"
 * for DHT parameters out of range, "start-failed" when the store cannot open.
 */
export function startNodeDht(options: StartNodeDhtOptions): NodeDht {
  const { identity, config } = options;
  let dhtConfig: DhtConfig;
  try {
    dhtConfig = resolveDhtConfig({
      ...(config.staticDifficulty === undefined ? {} : { staticDifficulty: config.staticDifficulty }),
      ...(config.dynamicDifficulty === undefined ? {} : { dynamicDifficulty: config.dynamicDifficulty }),
      ...(config.bucketSize === undefined ? {} : { bucketSize: config.bucketSize, siblings: config.bucketSize }),
      ...(config.disjointPaths === undefined ? {} : { disjointPaths: config.disjointPaths }),
      ...(config.alpha === undefined ? {} : { alpha: config.alpha }),
      ...(config.rpcTimeoutMs === undefined ? {} : { rpcTimeoutMs: config.rpcTimeoutMs }),
      replay: {
        ...DEFAULT_REPLAY_LIMITS,
        ...(config.maxNoncesPerSender === undefined ? {} : { maxNoncesPerSender: config.maxNoncesPerSender }),
        ...(config.maxReplayEntries === undefined ? {} : { maxEntries: config.maxReplayEntries }),
      },
      senderQuota: {
        ...DEFAULT_SENDER_QUOTA,
        ...(config.maxRecordsPerSender === undefined ? {} : { maxRecordsPerSender: config.maxRecordsPerSender }),
        ...(config.maxBytesPerSender === undefined ? {} : { maxBytesPerSender: config.maxBytesPerSender }),
        ...(config.maxBytesPerAddress === undefined ? {} : { maxBytesPerAddress: config.maxBytesPerAddress }),
      },
    });
  } catch (err) {
    throw new NodeError("bad-config", `config dht: ${(err as Error).message}`, { cause: err });
  }
  const nodeId = nodeIdFromPublicKey(identity.publicKey);
  if (!verifyStaticPuzzle(identity.publicKey, nodeId, dhtConfig.staticDifficulty)) {
    throw new NodeError(
      "key-load",
      `identity: the key does not solve the DHT static puzzle at difficulty ${dhtConfig.staticDifficulty} (SHA-256(SHA-256(key)) needs that many leading zero bits); ` +
        "make the identity key with solveStaticPuzzle (crypto/puzzles.ts), or on a test network lower dht.staticDifficulty on every node",
    );
  }
  let store: SqliteRecordStore;
  try {
    store = new SqliteRecordStore({ path: options.dataDir === undefined ? ":memory:" : join(options.dataDir, "dht.sqlite") });
  } catch (err) {
    throw new NodeError("start-failed", `cannot open the DHT record store in ${options.dataDir ?? "memory"}: ${(err as Error).message}`, { cause: err });
  }
  const log = childLogger(options.logger, "dht");
  const self = contactFor(identity.publicKey, options.advertised.host, options.advertised.port, dhtConfig);
  const transport = new LinkDhtTransport({ rpc: options.rpc });
  const node = new DhtNode({
    identity: { secretKey: identity.secretKey, publicKey: identity.publicKey, puzzleX: self.puzzleX, address: self.address },
    transport,
    store,
    config: dhtConfig,
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const stopServing = transport.serve((request, context) => node.handleRequest(request, context));
  const stopMaintenance = node.startMaintenance({
    sweepMs: config.sweepMs ?? DEFAULT_MAINTENANCE_INTERVALS.sweepMs,
    refreshMs: config.refreshMs ?? DEFAULT_MAINTENANCE_INTERVALS.refreshMs,
    replicateMs: config.replicateMs ?? DEFAULT_MAINTENANCE_INTERVALS.replicateMs,
  });
  const stats: NodeDhtStats = { lookups: 0, lookupFailures: 0, valueMisses: 0, bootstraps: 0, bootstrapFailures: 0, reseeds: 0, reseedContacts: 0 };
  const ownHex = Buffer.from(identity.publicKey).toString("hex");
  const contactsOf = (peers: readonly ConfiguredPeer[]): Contact[] =>
    peers.filter((p) => p.identity !== ownHex).map((p) => contactFor(peerKey(p), p.host, p.port, dhtConfig));
  let closed = false;

  // Lookups and value lookups are counted where every caller passes through.
  const lookupNode = node.lookupNode.bind(node);
  const findValue = node.findValue.bind(node);
  const counted = async <T>(run: () => Promise<T>): Promise<T> => {
    stats.lookups++;
    try {
      return await run();
    } catch (err) {
      stats.lookupFailures++;
      throw err;
    }
  };
  node.lookupNode = (target, overrides) => counted(() => lookupNode(target, overrides));
  node.findValue = (key, o) =>
    counted(async () => {
      const found = await findValue(key, o);
      if (!found.record) stats.valueMisses++;
      return found;
    });

  return {
    node,
    transport,
    store,
    stats,
    async bootstrapFrom(peers) {
      const seeds = contactsOf(peers);
      if (seeds.length === 0 || closed) return node.table.size;
      stats.bootstraps++;
      try {
        await node.bootstrap(seeds);
      } catch (err) {
        // Maintenance and the next consensus re-seed try again; the operator hears of it once per attempt.
        stats.bootstrapFailures++;
        logFailure(log, err, "bootstrap the DHT", "warn", { seeds: seeds.length });
      }
      // No seed answering is not an exception in the DHT (pings just come back false), but it is news to the operator.
      if (node.table.size === 0)
        log.warn({ operation: "bootstrap the DHT", seeds: seeds.length }, "bootstrap the DHT: no seed answered; the next consensus re-seeds");
      else log.debug({ tableSize: node.table.size }, "DHT bootstrapped");
      return node.table.size;
    },
    async reseed(peers) {
      const others = peers.filter((p) => p.identity !== ownHex);
      const count = config.reseedCount ?? DEFAULT_RESEED_COUNT;
      const picked = others
        .map((p) => ({ p, r: Math.random() }))
        .sort((a, b) => a.r - b.r)
        .slice(0, count)
        .map((e) => e.p);
      if (picked.length === 0 || closed) return 0;
      stats.reseeds++;
      const added = node.seedContacts(contactsOf(picked));
      stats.reseedContacts += added;
      // A lookup of our own id spreads us into the new contacts' tables (they only learn from signed messages).
      // The contacts are seeded either way; a failed lookup is logged and counted, and the next consensus tries again.
      await node
        .lookupNode(node.nodeId)
        .catch((err: unknown) => logFailure(log, err, "reseed the DHT from the consensus", "warn", { contacts: picked.length }));
      return added;
    },
    close() {
      if (closed) return;
      closed = true;
      stopMaintenance();
      stopServing();
      transport.close();
      store.close();
    },
  };
}

/**
 * Nodes with the directory composed in, started by startNode from their
 * configs alone in one process on loopback: what the directory and
 * internal-node tests and the local network (local-network.ts) run on.
 *
 * Nodes named "discovery-*" also run the discovery role; the first three
 * names are the bootstrap discovery set, and the registry the discovery
 * nodes check lists every node with its roles. Each node listens on its own
 * /16 (`hostOf`), so a 3-hop path can be chosen among them, offers `echo`,
 * keeps its data under `dataDir/<name>`, and seeds its DHT from the first
 * node (static puzzle off, so start-up is fast).
 */
import { join } from "node:path";
import { hexOf } from "../../node/src/base/hex.js";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import { startNode } from "../../node/src/node/node.js";
import type { RunningNode, StartNodeOptions } from "../../node/src/node/node.js";
import { freePort } from "./hardhat-node.js";

/** Two-second voting periods: a consensus within seconds of start. */
export const FAST_SCHEDULE = { periodMs: 2000, voteDelayMs: 600, distDelayMs: 600, validPeriods: 3 };

export interface DirectoryNodesOptions {
  names: readonly string[];
  hostOf: (index: number) => string;
  /** Each node's identity secret, by name. */
  secret: (name: string) => Uint8Array;
  dataDir: string;
  schedule?: typeof FAST_SCHEDULE;
  /** Fields added to a node's config, e.g. `api: false`. */
  node?: (name: string, index: number) => Record<string, unknown>;
  /** Fields added to a node's `directory` section, e.g. `internal`. */
  directory?: (name: string, index: number) => Record<string, unknown>;
  /** startNode's options for a node (the shared TLS credentials are added). */
  hooks?: (name: string) => StartNodeOptions;
}

/** Starts every node in order; if one fails, closes those already started and throws its error. */
export async function startDirectoryNodes(options: DirectoryNodesOptions): Promise<RunningNode[]> {
  const { names, hostOf } = options;
  const credentials = await generateTlsCredentials();
  const ports = await Promise.all(names.map((_, i) => freePort(hostOf(i))));
  const identities = names.map((name) => hexOf(ed25519PublicKey(options.secret(name))));
  const rolesOf = (name: string): string[] => (name.startsWith("discovery") ? ["onion", "discovery"] : ["onion"]);
  const discovery = [0, 1, 2].map((i) => ({ identity: identities[i]!, host: hostOf(i), port: ports[i]! }));
  const registry = Object.fromEntries(names.map((name, i) => [identities[i]!, rolesOf(name)]));
  const nodes: RunningNode[] = [];
  try {
    for (const [i, name] of names.entries()) {
      const isDiscovery = name.startsWith("discovery");
      const config = {
        listen: { host: hostOf(i), port: ports[i] },
        identity: { secretKeyHex: hexOf(options.secret(name)) },
        roles: rolesOf(name),
        dataDir: join(options.dataDir, name),
        onion: { services: ["echo"] },
        dht: { staticDifficulty: 0, dynamicDifficulty: 4, ...(i === 0 ? {} : { seeds: [discovery[0]!] }) },
        directory: {
          discovery,
          schedule: options.schedule ?? FAST_SCHEDULE,
          publishIntervalMs: 1000,
          retryMs: 500,
          ...(isDiscovery ? { registry } : {}),
          ...options.directory?.(name, i),
        },
        ...options.node?.(name, i),
      };
      nodes.push(await startNode(config, { ...options.hooks?.(name), tlsCredentials: credentials }));
    }
    return nodes;
  } catch (err) {
    await Promise.allSettled(nodes.map((n) => n.close()));
    throw err;
  }
}

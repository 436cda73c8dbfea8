/**
 * A PSP network inside one process, for tests and benchmarks that need to
 * see into every node: seven nodes (three discovery, four onion) started by
 * startNode (directory-nodes.ts) on their own loopback /16s with TLS links, 2-second voting
 * periods, a DHT in SQLite, and users with their own onion and presence
 * clients. There is no chain: access certificates are signed by a local
 * authority key that the nodes and users check them against.
 *
 * Hooks let the caller observe every node's services and every cell a node
 * or a user sends (the privacy test records what each node saw).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { assembleCertificate, buildCertificateBody, signCertificateBody, verifyAccessCertificate } from "../../node/src/authority/certificate.js";
import { ed25519PublicKey, generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import type { Ed25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { formatIdentity } from "../../node/src/crypto/identity.js";
import { createCircuitDhtClient } from "../../node/src/dht/proxy.js";
import type { CircuitDhtClient } from "../../node/src/dht/proxy.js";
import type { DhtRecord } from "../../node/src/dht/record.js";
import { consensusToPathNodes } from "../../node/src/directory/path-nodes.js";
import type { Link } from "../../node/src/link/index.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { createOnionClient } from "../../node/src/onion/onion-client.js";
import type { OnionCircuit, OnionClientHandle } from "../../node/src/onion/onion-client.js";
import type { PathNode } from "../../node/src/onion/path.js";
import type { LocalService } from "../../node/src/onion/types.js";
import { PresenceClient } from "../../node/src/presence/client.js";
import type { Cell } from "../../node/src/wire/cell.js";
import { startDirectoryNodes } from "./directory-nodes.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const NAMES = ["discovery-1", "discovery-2", "discovery-3", "onion-1", "onion-2", "onion-3", "onion-4"];
const REGISTRY = "0x00000000000000000000000000000000000000aa" as const;

export interface LocalNetworkOptions {
  /** Distinguishes networks started in one process: key seeds and loopback /16s (1..9). */
  instance?: number;
  /** Wraps each node's services (observation). */
  wrapService?: (node: string) => (service: string, inner: LocalService) => LocalService;
  /** Sees every cell a node or user sends (`from` is the node's name or "client:<user>"). */
  onCell?: (from: string, cell: Cell) => void;
}

export interface LocalUser {
  name: string;
  identity: string;
  keys: Ed25519KeyPair;
  cert: { bytes: Uint8Array; notAfter: number };
  onion: OnionClientHandle;
  presence: PresenceClient;
  /** Every valid record under a DHT key, through a circuit (retried once when the circuit died). */
  dhtGetAll(key: Uint8Array): Promise<DhtRecord[]>;
}

export interface LocalNetwork {
  nodes: RunningNode[];
  /** Node name by identity hex. */
  nameOf: Map<string, string>;
  /** The consensus's relays, as clients build paths through them. */
  pathNodes(): PathNode[];
  /** An access certificate for `identity`, valid from now + offsetSeconds for one hour. */
  mintCertificate(identity: string, offsetSeconds?: number): { bytes: Uint8Array; notAfter: number };
  verifyCertificate(cert: Uint8Array): ReturnType<typeof verifyAccessCertificate>;
  /** A user with its own anonymous onion client and presence client; `certOffsetSeconds` < 0 gives it an expired certificate. */
  user(name: string, certOffsetSeconds?: number): Promise<LocalUser>;
  close(): Promise<void>;
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`local network: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts the seven nodes and waits until the consensus lists them all and every DHT table is full. */
export async function startLocalNetwork(options: LocalNetworkOptions = {}): Promise<LocalNetwork> {
  const instance = options.instance ?? 1;
  const dir = mkdtempSync(join(tmpdir(), "psp-local-net-"));
  const secret = (label: string): Uint8Array => sha256(new TextEncoder().encode(`local-network/${instance}/${label}`));
  const hostOf = (i: number): string => `127.${instance * 10 + i + 100}.0.1`;
  const authority = generateEd25519KeyPair();
  const verifyCertificate = (cert: Uint8Array) => verifyAccessCertificate(cert, { now: Date.now(), authorities: [authority.publicKey], threshold: 1 });
  const identities = NAMES.map((n) => hex(ed25519PublicKey(secret(n))));
  const nameOf = new Map(NAMES.map((n, i) => [identities[i]!, n]));
  const nodes: RunningNode[] = [];
  const users: LocalUser[] = [];
  const close = async (): Promise<void> => {
    for (const u of users) {
      u.presence.close();
      await u.onion.close();
    }
    await Promise.all(nodes.map((n) => n.close()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    nodes.push(
      ...(await startDirectoryNodes({
        names: NAMES,
        hostOf,
        secret,
        dataDir: dir,
        node: () => ({ api: false }),
        directory: () => ({ country: "DE" }),
        hooks: (name) => ({
          verifyCertificate,
          ...(options.wrapService ? { wrapService: options.wrapService(name) } : {}),
          ...(options.onCell
            ? {
                outboundHook: (cell: Cell) => {
                  options.onCell!(name, cell);
                  return cell;
                },
              }
            : {}),
        }),
      })),
    );
    const consensus = await waitFor(
      "a consensus listing all seven nodes",
      () => {
        const c = nodes[3]!.directory?.current();
        return c && c.entries.length === NAMES.length ? c : undefined;
      },
      90_000,
    );
    let pathNodes = consensusToPathNodes(consensus);
    await waitFor("full DHT tables", () => nodes.every((n) => n.dht.node.table.size >= NAMES.length - 1), 60_000);

    const mintCertificate = (identity: string, offsetSeconds = 0) => {
      const now = Math.floor(Date.now() / 1000) + offsetSeconds;
      const { body, bodyBytes } = buildCertificateBody({ identity, chainId: 31337, registry: REGISTRY, notBefore: now - 60, notAfter: now + 3540 });
      return { bytes: assembleCertificate(bodyBytes, [signCertificateBody(bodyBytes, authority.secretKey)]), notAfter: body.notAfter };
    };

    const user = async (name: string, certOffsetSeconds = 0): Promise<LocalUser> => {
      const keys = generateEd25519KeyPair();
      const identity = formatIdentity({ namespace: "peerstream", application: "client", kind: "account", publicKey: keys.publicKey });
      const cert = mintCertificate(identity, certOffsetSeconds);
      const onion = await createOnionClient({
        nodes: pathNodes,
        ...(options.onCell
          ? {
              outboundHook: (cell: Cell, _link: Link) => {
                options.onCell!(`client:${name}`, cell);
                return cell;
              },
            }
          : {}),
      });
      let dht: { circuit: OnionCircuit; client: CircuitDhtClient } | undefined;
      const dhtClient = async (): Promise<CircuitDhtClient> => {
        if (dht?.circuit.isOpen) return dht.client;
        // As PspClient does: a circuit from the manager, whose builds avoid relays found down and are tried three times.
        const circuit = await onion.getCircuit();
        dht = { circuit, client: createCircuitDhtClient(await circuit.openStream("dht")) };
        return dht.client;
      };
      // As PspClient does: a lookup whose circuit died under it is retried once on a new one.
      const dhtGetAll = async (key: Uint8Array): Promise<DhtRecord[]> => {
        try {
          return await (await dhtClient()).getAll(key);
        } catch {
          dht?.circuit.close();
          dht = undefined;
          return await (await dhtClient()).getAll(key);
        }
      };
      const presence = new PresenceClient({
        identity: { text: identity, secretKey: keys.secretKey, publicKey: keys.publicKey },
        certificate: async () => cert,
        dhtGetAll,
        buildCircuit: (o) => (o.path ? onion.buildCircuit({ path: o.path }) : onion.buildCircuit(o.lastHop ? { lastHop: o.lastHop } : {})),
        nodes: () => pathNodes,
        verifyCertificate,
      });
      const made: LocalUser = { name, identity, keys, cert, onion, presence, dhtGetAll };
      users.push(made);
      return made;
    };

    // A node that stops drops out of the next consensus: keep the clients' view current.
    for (const n of nodes) n.directory?.onConsensus((c) => (pathNodes = consensusToPathNodes(c)));
    return { nodes, nameOf, pathNodes: () => pathNodes, mintCertificate, verifyCertificate, user, close };
  } catch (err) {
    await close();
    throw err;
  }
}

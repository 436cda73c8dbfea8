/**
 * An in-process simulator of the discovery service: N discovery nodes, M
 * relays and a fake chain, driven by a virtual clock, with every message
 * delivered at once. Used by the tests and the benchmark; the same
 * DiscoveryNode code runs over real links once the link layer serves it.
 *
 * Owns: deterministic key derivation from a seed, the virtual chain (which
 * nodes are registered and staked, with which roles), who is up, and the
 * routing of DirectoryActions between discovery nodes. Trusts nothing it
 * routes: every message goes through the receiver's normal checks, and
 * rejections are recorded, not thrown.
 */
import { ed25519PublicKey } from "../crypto/ed25519.js";
import { sha256 } from "../crypto/kdf.js";
import { x25519PublicKey } from "../crypto/x25519.js";
import { DiscoveryNode } from "./discovery-node.js";
import type { DirectoryAction, DiscoveryNodeOptions } from "./discovery-node.js";
import { ChainRole, bytesToHexFast, majorityThreshold } from "./config.js";
import type { DiscoveryTrust, FlagThresholds, VotingSchedule } from "./config.js";
import { createDescriptor } from "./descriptor.js";
import type { DescriptorFields } from "./descriptor.js";
import { DirectoryError } from "./errors.js";

/** A 32-byte secret derived from the seed, a label and an index. */
export function simulatedSecret(seed: string, label: string, index: number): Uint8Array {
  return sha256(new TextEncoder().encode(`psp-directory-sim\u0000${seed}\u0000${label}\u0000${index}`));
}

export interface SimulatedRelay {
  index: number;
  secretKey: Uint8Array;
  identity: Uint8Array;
  /** Descriptor fields except publishedAt (set when publishing). */
  fields: Omit<DescriptorFields, "publishedAt">;
  up: boolean;
}

export interface SimulatedDiscovery {
  index: number;
  secretKey: Uint8Array;
  node: DiscoveryNode;
  up: boolean;
  /** Every action this node produced, in order. */
  actions: DirectoryAction[];
}

export interface DirectorySimulationOptions {
  discoveryNodes: number;
  relays: number;
  /** Start of the virtual clock, ms since the Unix epoch. */
  start: number;
  seed?: string;
  schedule?: Partial<VotingSchedule>;
  thresholds?: Partial<FlagThresholds>;
  /** Indices of relays marked as bridges. */
  bridges?: readonly number[];
  /** Indices of relays that declare themselves internal (never entries, no address in the consensus). */
  internal?: readonly number[];
}

export interface SimulationRejection {
  at: number;
  to: string;
  what: "descriptor" | "vote" | "signature";
  kind: string;
}

export class DirectorySimulation {
  now: number;
  readonly discovery: SimulatedDiscovery[] = [];
  readonly relays: SimulatedRelay[] = [];
  /** The fake chain: identity hex -> role bits, for nodes registered and staked. */
  readonly chain = new Map<string, number>();
  readonly rejections: SimulationRejection[] = [];

  constructor(options: DirectorySimulationOptions) {
    const seed = options.seed ?? "psp";
    this.now = options.start;
    const discoverySecrets = Array.from({ length: options.discoveryNodes }, (_, i) => simulatedSecret(seed, "discovery", i));
    const discoverySet = discoverySecrets.map((s) => ed25519PublicKey(s));
    for (const key of discoverySet) this.chain.set(bytesToHexFast(key), ChainRole.discovery);
    const base: Omit<DiscoveryNodeOptions, "secretKey"> = {
      discoverySet,
      chainRoles: (id) => this.chain.get(bytesToHexFast(id)),
      schedule: options.schedule ?? {},
      thresholds: options.thresholds ?? {},
    };
    discoverySecrets.forEach((secretKey, index) => {
      this.discovery.push({ index, secretKey, node: new DiscoveryNode({ ...base, secretKey }), up: true, actions: [] });
    });
    const bridges = new Set(options.bridges ?? []);
    const internal = new Set(options.internal ?? []);
    for (let index = 0; index < options.relays; index++) {
      const secretKey = simulatedSecret(seed, "relay", index);
      const identity = ed25519PublicKey(secretKey);
      const onionKey = x25519PublicKey(simulatedSecret(seed, "onion", index));
      // Spread relays over /16 networks so path selection has room.
      const host = `10.${index % 250}.${Math.floor(index / 250) % 250}.${1 + (index % 200)}`;
      this.relays.push({
        index,
        secretKey,
        identity,
        up: true,
        fields: {
          onionKey,
          addresses: [{ host, port: 9001 }],
          roles: ChainRole.onion,
          bridge: bridges.has(index),
          bandwidth: 50_000 + (index % 10) * 100_000,
          country: ["DE", "US", "NL", "FR", "JP"][index % 5] as string,
          version: "psp/0.1.0",
          ...(internal.has(index) ? { internal: true } : {}),
        },
      });
      this.chain.set(bytesToHexFast(identity), ChainRole.onion);
    }
  }

  /** The trust set a client of this network holds. */
  trust(threshold?: number): DiscoveryTrust {
    const keys = this.discovery.map((d) => d.node.publicKey);
    return { keys, threshold: threshold ?? majorityThreshold(keys.length) };
  }

  /** Every up relay signs a fresh descriptor and reports it to every up discovery node. */
  publishDescriptors(): void {
    for (const relay of this.relays) {
      if (!relay.up) continue;
      const bytes = createDescriptor({ ...relay.fields, publishedAt: this.now, secretKey: relay.secretKey });
      this.deliverDescriptor(bytes);
    }
  }

  /** Reports descriptor bytes to every up discovery node, recording rejections. */
  deliverDescriptor(bytes: Uint8Array): void {
    for (const d of this.discovery) {
      if (!d.up) continue;
      this.guard(d, "descriptor", () => d.node.submitDescriptor(bytes, this.now));
    }
  }

  /** Every up discovery node learns which relays are up (the socket layer's reachability test). */
  probeReachability(): void {
    const reachable = this.relays.filter((r) => r.up).map((r) => r.identity);
    for (const d of this.discovery) if (d.up) d.node.setReachable(reachable);
  }

  /** Advances the clock to `until` in steps, ticking every up discovery node and delivering its actions. */
  runUntil(until: number, stepMs = 1000): void {
    while (this.now < until) {
      this.now = Math.min(until, this.now + stepMs);
      for (const d of this.discovery) {
        if (d.up) this.dispatch(d, d.node.tick(this.now));
      }
    }
  }

  /** The latest consensus any up discovery node published (the newest). */
  latestConsensus(): Uint8Array | undefined {
    let best: { validAfter: number; bytes: Uint8Array } | undefined;
    for (const d of this.discovery) {
      const c = d.up ? d.node.latestConsensus() : undefined;
      if (c && (!best || c.validAfter > best.validAfter)) best = c;
    }
    return best?.bytes;
  }

  private guard(to: SimulatedDiscovery, what: SimulationRejection["what"], fn: () => unknown): void {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof DirectoryError)) throw err;
      this.rejections.push({ at: this.now, to: `discovery-${to.index}`, what, kind: err.kind });
    }
  }

  private dispatch(from: SimulatedDiscovery, actions: DirectoryAction[]): void {
    from.actions.push(...actions);
    const peers = this.discovery.filter((d) => d.up && d !== from);
    for (const action of actions) {
      switch (action.type) {
        case "broadcast-vote":
          for (const p of peers) this.guard(p, "vote", () => p.node.receiveVote(action.vote, this.now));
          break;
        case "fetch-votes":
          for (const p of peers) {
            for (const vote of p.node.votesFor(action.validAfter, action.voters)) {
              this.guard(from, "vote", () => from.node.receiveVote(vote, this.now));
            }
          }
          break;
        case "broadcast-signature":
          for (const p of peers) {
            let replies: DirectoryAction[] = [];
            this.guard(p, "signature", () => (replies = p.node.receiveSignature(action.signature, this.now)));
            if (replies.length > 0) this.dispatch(p, replies);
          }
          break;
        default:
          break;
      }
    }
  }
}

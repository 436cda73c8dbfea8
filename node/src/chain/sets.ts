/**
 * The NodeRegistry's role sets (authority, oracle, discovery) as a node sees
 * them, and the small caches the PKI keeps.
 *
 * Owns the rule for "current set": a node counts when it is in the set both
 * at the confirmed block (head − confirmations) and at the head. Joining a
 * set therefore needs the confirmation depth (a reorg cannot make a node an
 * authority we then trust), while leaving one (unstake, slash) applies at
 * once. Owns the caching: each set is read at most once per `cacheMs`, or
 * again as soon as `invalidate()` is called (pki.ts calls it on confirmed
 * NodeRegistry events, see events.ts).
 *
 * Trusts: the RPC endpoint's answers for the NodeRegistry's views.
 */
import { hexToBytes, type Address, type Chain, type Hex, type PublicClient, type Transport } from "viem";
import { ChainError } from "./errors.js";
import { nodeRegistryAbi } from "./generated/abis.js";

export const SET_ROLES = ["authority", "oracle", "discovery"] as const;
export type SetRole = (typeof SET_ROLES)[number];

export interface SetMember {
  /** The node's Ed25519 identity key as the registry's bytes32. */
  nodeKey: Hex;
  /** The same key as 32 bytes. */
  publicKey: Uint8Array;
  /** The node's EVM signer (attestations, oracle transactions). */
  signer: Address;
}

export interface RoleSet {
  role: SetRole;
  /** Members in registry order (stake descending, registration order ascending). */
  members: readonly SetMember[];
  /** The confirmed block the set was read at. */
  blockNumber: bigint;
}

const SET_FUNCTION = { authority: "authoritySet", oracle: "oracleSet", discovery: "discoverySet" } as const;

/** Reads `role`'s set at the confirmed block and at the head and keeps the members in both. */
export async function readRoleSet(
  client: PublicClient<Transport, Chain>,
  registry: Address,
  role: SetRole,
  confirmations: number,
): Promise<RoleSet> {
  const head = await client.getBlockNumber();
  const confirmed = head > BigInt(confirmations) ? head - BigInt(confirmations) : 0n;
  const read = async (blockNumber: bigint) => {
    try {
      const [nodeKeys, signers] = await client.readContract({ address: registry, abi: nodeRegistryAbi, functionName: SET_FUNCTION[role], blockNumber });
      return nodeKeys.map((nodeKey, i) => ({ nodeKey: nodeKey.toLowerCase() as Hex, signer: signers[i] as Address }));
    } catch (err) {
      throw new ChainError("rpc-unreachable", `cannot read the ${role} set at block ${blockNumber}: is the RPC up and the deployment current?`, { cause: err });
    }
  };
  const atConfirmed = await read(confirmed);
  const atHead = confirmed === head ? atConfirmed : await read(head);
  const headSigners = new Map(atHead.map((m) => [m.nodeKey, m.signer.toLowerCase()]));
  const members = atConfirmed
    .filter((m) => headSigners.get(m.nodeKey) === m.signer.toLowerCase())
    .map((m) => ({ ...m, publicKey: hexToBytes(m.nodeKey) }));
  return { role, members, blockNumber: confirmed };
}

// ---------------------------------------------------------------- caches

/**
 * One async value cached for `ttlMs`. Concurrent gets share one read; a read
 * that started before `invalidate()` never repopulates the cache afterwards.
 */
export class TtlCache<T> {
  private value: { data: T; at: number } | undefined;
  private pending: Promise<T> | undefined;
  private generation = 0;

  constructor(
    private readonly load: () => Promise<T>,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(): Promise<T> {
    const cached = this.value;
    if (cached && this.now() - cached.at < this.ttlMs) return cached.data;
    if (this.pending) return await this.pending;
    const generation = this.generation;
    const started = this.now();
    const pending = this.load().then((data) => {
      if (generation === this.generation) this.value = { data, at: started };
      return data;
    });
    this.pending = pending;
    try {
      return await pending;
    } finally {
      if (this.pending === pending) this.pending = undefined;
    }
  }

  invalidate(): void {
    this.generation++;
    this.value = undefined;
    this.pending = undefined;
  }
}

/** Values cached per key for `ttlMs`, at most `maxEntries` of them (oldest dropped first). */
export class KeyedTtlCache<T> {
  private readonly entries = new Map<string, { data: T; at: number; generation: number }>();
  private generation = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  async get(key: string, load: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit && hit.generation === this.generation && this.now() - hit.at < this.ttlMs) return hit.data;
    const generation = this.generation;
    const started = this.now();
    const data = await load();
    if (generation === this.generation) {
      this.entries.delete(key);
      if (this.entries.size >= this.maxEntries) {
        const oldest = this.entries.keys().next();
        if (!oldest.done) this.entries.delete(oldest.value);
      }
      this.entries.set(key, { data, at: started, generation });
    }
    return data;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  invalidateAll(): void {
    this.generation++;
    this.entries.clear();
  }
}

export interface NodeSetsOptions {
  client: PublicClient<Transport, Chain>;
  registry: Address;
  confirmations: number;
  cacheMs: number;
  now?: () => number;
}

export interface NodeSets {
  get(role: SetRole): Promise<RoleSet>;
  /** Drops every cached set; the next get reads the chain. */
  invalidate(): void;
}

/** Cached role sets of one NodeRegistry. */
export function createNodeSets(opts: NodeSetsOptions): NodeSets {
  const caches = Object.fromEntries(
    SET_ROLES.map((role) => [role, new TtlCache(() => readRoleSet(opts.client, opts.registry, role, opts.confirmations), opts.cacheMs, opts.now)]),
  ) as Record<SetRole, TtlCache<RoleSet>>;
  return {
    get: (role) => caches[role].get(),
    invalidate() {
      for (const role of SET_ROLES) caches[role].invalidate();
    },
  };
}

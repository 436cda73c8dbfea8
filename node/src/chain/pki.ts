/**
 * The PKI as nodes and authorities consult it: identities, applications and
 * their registration policy, the authority / oracle / discovery sets, and
 * subscriptions.
 *
 * Owns the `Pki` interface (anything that can answer these questions can
 * serve: the chain, or an in-process table in a simulator) and its chain
 * implementation `createChainPki`, which reads the PSP contracts through viem
 * and caches answers for `cacheMs`. A confirmed-event follower (events.ts)
 * drops the caches as soon as a relevant NodeRegistry, IdentityRegistry or
 * Subscriptions event is `confirmations` blocks deep.
 *
 * Confirmation rule (the same as sets.ts): a positive fact (an identity is
 * active, a node is an authority, a subscription is paid) must hold both at
 * the confirmed block and at the head; a negative one (revoked, unstaked)
 * applies from the head at once. So a reorg can never make us trust
 * something that then disappears, and a revocation is never delayed by the
 * confirmation depth beyond the cache lifetime.
 *
 * Trusts: the RPC endpoint and the deployment file (checked against the
 * chain id the endpoint reports).
 */
import { getAddress, type Address, type Hex } from "viem";
import type { ChainClients } from "./clients.js";
import type { Deployment } from "./deployment.js";
import { ChainError } from "./errors.js";
import { childLogger } from "../log.js";
import type { Logger } from "../log.js";
import { createEventFollower, type BlockRef, type EventFollower } from "./events.js";
import { identityRegistryAbi, nodeRegistryAbi, subscriptionsAbi } from "./generated/abis.js";
import { KeyedTtlCache, TtlCache, createNodeSets, type RoleSet } from "./sets.js";

export type { RoleSet, SetMember, SetRole } from "./sets.js";

export const IDENTITY_STATUS_NAMES = ["none", "active", "rotated", "revoked"] as const;
export type IdentityStatusName = (typeof IDENTITY_STATUS_NAMES)[number];

export interface IdentityRecord {
  identityId: Hex;
  /** Status at the chain head. */
  status: IdentityStatusName;
  /** True when the identity is Active at the head and at the confirmed block. */
  activeConfirmed: boolean;
  owner: Address;
  /** 0 account, 1 node, 2 group. */
  kind: number;
  registeredAt: number;
  applicationId: Hex;
  /** The Ed25519 key as bytes32 (lower-case hex). */
  key: Hex;
  /** Set once the identity was Rotated. */
  successor: Hex;
}

export type RegistrationPolicyName = "open" | "restricted";

export interface ApplicationRecord {
  applicationId: Hex;
  exists: boolean;
  owner: Address;
  policy: RegistrationPolicyName;
  namespace: string;
  name: string;
}

/** What a node asks the PKI. Every method may throw ChainError "rpc-unreachable". */
export interface Pki {
  readonly chainId: number;
  /** The IdentityRegistry attestations and certificates are bound to. */
  readonly identityRegistry: Address;
  getIdentity(identityId: Hex): Promise<IdentityRecord>;
  /** Active at the head and at the confirmed block. */
  isIdentityActive(identityId: Hex): Promise<boolean>;
  applicationPolicy(applicationId: Hex): Promise<ApplicationRecord>;
  /** May `account` register identities under a Restricted application? (Owners always may.) */
  isRegistrar(applicationId: Hex, account: Address): Promise<boolean>;
  currentAuthorities(): Promise<RoleSet>;
  currentOracles(): Promise<RoleSet>;
  currentDiscovery(): Promise<RoleSet>;
  /**
   * The NodeRegistry role bits (1 onion, 2 discovery, 4 authority, 8 oracle)
   * `nodeKey` is eligible for: registered, the bit set, bonded stake at the
   * role's minimum (NodeRegistry.isEligible, set caps not considered). 0 for
   * an unknown or unstaked node. A bit counts when eligible at the head and
   * at the confirmed block.
   */
  nodeRoles(nodeKey: Hex): Promise<number>;
  /** Paid past `time` (unix seconds) at the confirmed block, and the identity active. */
  isSubscribed(identityId: Hex, time: number): Promise<boolean>;
  /** Distinct authority attestations an identity registration needs. */
  attestationThreshold(): Promise<number>;
  /** Timestamp (unix seconds) of the chain head. */
  chainTime(): Promise<number>;
  /** Brings the caches up to date with every confirmed event (one poll). */
  sync(): Promise<void>;
  /** Drops every cached answer. */
  invalidate(): void;
  /** Stops following events. */
  close(): void;
}

export interface ChainPkiOptions {
  clients: Pick<ChainClients, "publicClient">;
  deployment: Deployment;
  /** How long an answer is reused without an event saying it changed; default 30 s. */
  cacheMs?: number;
  /** Blocks a fact must be buried under before it is trusted; default 2. */
  confirmations?: number;
  /** Poll for events in the background every `intervalMs`; default true (2 s). Tests call sync(). */
  follow?: boolean | { intervalMs: number };
  /** Clock for the caches (ms); default Date.now. */
  now?: () => number;
  /** Called when event following fails or a deep reorg is seen (both are also logged). */
  onWarning?: (message: string, cause?: unknown) => void;
  /** Logs as component "pki" (event following as "pki.events"): failed polls and deep reorgs at warn. */
  logger?: Logger;
}

/** NodeRegistry ROLE_ONION .. ROLE_ORACLE. */
const NODE_ROLE_BITS = [1, 2, 4, 8] as const;

const STATUS_FROM_CHAIN = (code: number): IdentityStatusName => IDENTITY_STATUS_NAMES[code] ?? "none";

/** A Pki over the PSP contracts of `deployment`. */
export async function createChainPki(opts: ChainPkiOptions): Promise<Pki> {
  const client = opts.clients.publicClient;
  const { deployment } = opts;
  const cacheMs = opts.cacheMs ?? 30_000;
  const confirmations = opts.confirmations ?? 2;
  if (!Number.isSafeInteger(confirmations) || confirmations < 0) {
    throw new ChainError("bad-argument", `confirmations must be a non-negative integer, got ${confirmations}`);
  }
  if (!(cacheMs >= 0)) throw new ChainError("bad-argument", `cacheMs must be a non-negative number of milliseconds, got ${cacheMs}`);
  const now = opts.now ?? Date.now;
  const log = childLogger(opts.logger, "pki");
  let chainId: number;
  try {
    chainId = await client.getChainId();
  } catch (err) {
    throw new ChainError("rpc-unreachable", "cannot read the chain id: is the RPC endpoint up?", { cause: err });
  }
  if (chainId !== deployment.chainId) {
    throw new ChainError("wrong-chain", `the RPC serves chain ${chainId} but the deployment is for chain ${deployment.chainId}: use that chain's deployment file`);
  }
  const identityRegistry = deployment.contracts.IdentityRegistry.address;
  const nodeRegistry = deployment.contracts.NodeRegistry.address;
  const subscriptions = deployment.contracts.Subscriptions.address;

  const sets = createNodeSets({ client, registry: nodeRegistry, confirmations, cacheMs, now });
  const identities = new KeyedTtlCache<IdentityRecord>(cacheMs, 50_000, now);
  const applications = new KeyedTtlCache<ApplicationRecord>(cacheMs, 10_000, now);
  const registrars = new KeyedTtlCache<boolean>(cacheMs, 10_000, now);
  const expiries = new KeyedTtlCache<bigint>(cacheMs, 50_000, now);
  const nodeRoles = new KeyedTtlCache<number>(cacheMs, 100_000, now);
  const threshold = new TtlCache(
    () => chainRead(`read the attestation threshold`, () => client.readContract({ address: identityRegistry, abi: identityRegistryAbi, functionName: "attestationThreshold" })),
    cacheMs,
    now,
  );

  const blocks = async (): Promise<{ head: bigint; confirmed: bigint }> => {
    const head = await chainRead("read the block number", () => client.getBlockNumber());
    return { head, confirmed: head > BigInt(confirmations) ? head - BigInt(confirmations) : 0n };
  };

  const readIdentity = async (identityId: Hex): Promise<IdentityRecord> => {
    checkBytes32(identityId, "identityId");
    const { head, confirmed } = await blocks();
    const at = (blockNumber: bigint) =>
      chainRead(`read identity ${identityId}`, () =>
        client.readContract({ address: identityRegistry, abi: identityRegistryAbi, functionName: "getIdentity", args: [identityId], blockNumber }),
      );
    const atHead = await at(head);
    const status = STATUS_FROM_CHAIN(atHead.status);
    const activeConfirmed = status === "active" && (confirmed === head || STATUS_FROM_CHAIN((await at(confirmed)).status) === "active");
    return {
      identityId,
      status,
      activeConfirmed,
      owner: atHead.owner,
      kind: atHead.kind,
      registeredAt: Number(atHead.registeredAt),
      applicationId: atHead.applicationId,
      key: atHead.key.toLowerCase() as Hex,
      successor: atHead.successor,
    };
  };

  const getIdentity = (identityId: Hex) => identities.get(identityId.toLowerCase(), () => readIdentity(identityId));

  const readNodeRoles = async (nodeKey: Hex): Promise<number> => {
    const { head, confirmed } = await blocks();
    const registered = await chainRead(`read whether node ${nodeKey} is registered`, () =>
      client.readContract({ address: nodeRegistry, abi: nodeRegistryAbi, functionName: "isRegistered", args: [nodeKey], blockNumber: head }),
    );
    if (!registered) return 0;
    const eligibleAt = async (blockNumber: bigint): Promise<number> => {
      const bits = await Promise.all(
        NODE_ROLE_BITS.map((role) =>
          chainRead(`read the eligibility of node ${nodeKey}`, () =>
            client.readContract({ address: nodeRegistry, abi: nodeRegistryAbi, functionName: "isEligible", args: [nodeKey, role], blockNumber }),
          ).then((eligible) => (eligible ? role : 0)),
        ),
      );
      return bits.reduce<number>((mask, bit) => mask | bit, 0);
    };
    const atHead = await eligibleAt(head);
    return atHead === 0 || confirmed === head ? atHead : atHead & (await eligibleAt(confirmed));
  };

  // Logs only say "something changed": every cache is rebuilt from reads, never from log contents.
  let follower: EventFollower | undefined;
  const startBlock = (await blocks()).confirmed + 1n;
  follower = createEventFollower({
    source: client,
    address: [nodeRegistry, identityRegistry, subscriptions],
    confirmations,
    startBlock,
    onLogs: (logs) => {
      const from = new Set(logs.map((l) => getAddress((l as { address: Address }).address)));
      if (from.has(nodeRegistry)) {
        sets.invalidate();
        nodeRoles.invalidateAll();
        // The attestation threshold is the NodeRegistry's authority quorum: it moves with the set and its parameters.
        threshold.invalidate();
      }
      if (from.has(identityRegistry)) {
        identities.invalidateAll();
        applications.invalidateAll();
        registrars.invalidateAll();
        threshold.invalidate();
      }
      if (from.has(subscriptions) || from.has(identityRegistry)) expiries.invalidateAll();
    },
    onDeepReorg: (at: BlockRef) => {
      const message = `block ${at.number} (${at.hash}) is no longer canonical: a reorg deeper than ${confirmations} confirmations; dropping every cached PKI answer`;
      log.warn({ block: at.number.toString(), hash: at.hash }, message);
      opts.onWarning?.(message);
      invalidate();
    },
    // The follower logs the failed poll itself; this only tells the caller.
    onError: (err) => opts.onWarning?.("following PKI events failed; will retry", err),
    logger: log,
    ...(typeof opts.follow === "object" ? { intervalMs: opts.follow.intervalMs } : {}),
  });
  if (opts.follow !== false) follower.start();

  function invalidate(): void {
    sets.invalidate();
    nodeRoles.invalidateAll();
    identities.invalidateAll();
    applications.invalidateAll();
    registrars.invalidateAll();
    expiries.invalidateAll();
    threshold.invalidate();
  }

  return {
    chainId,
    identityRegistry,
    getIdentity,
    async isIdentityActive(identityId) {
      return (await getIdentity(identityId)).activeConfirmed;
    },
    applicationPolicy(applicationId) {
      checkBytes32(applicationId, "applicationId");
      return applications.get(applicationId.toLowerCase(), async () => {
        const app = await chainRead(`read application ${applicationId}`, () =>
          client.readContract({ address: identityRegistry, abi: identityRegistryAbi, functionName: "getApplication", args: [applicationId] }),
        );
        return {
          applicationId,
          exists: BigInt(app.owner) !== 0n,
          owner: app.owner,
          policy: app.policy === 1 ? "restricted" : "open",
          namespace: app.namespace,
          name: app.name,
        } satisfies ApplicationRecord;
      });
    },
    isRegistrar(applicationId, account) {
      checkBytes32(applicationId, "applicationId");
      return registrars.get(`${applicationId.toLowerCase()}:${account.toLowerCase()}`, () =>
        chainRead(`read registrar ${account}`, () =>
          client.readContract({ address: identityRegistry, abi: identityRegistryAbi, functionName: "isRegistrar", args: [applicationId, account] }),
        ),
      );
    },
    currentAuthorities: () => sets.get("authority"),
    currentOracles: () => sets.get("oracle"),
    currentDiscovery: () => sets.get("discovery"),
    nodeRoles(nodeKey) {
      checkBytes32(nodeKey, "nodeKey");
      return nodeRoles.get(nodeKey.toLowerCase(), () => readNodeRoles(nodeKey.toLowerCase() as Hex));
    },
    async isSubscribed(identityId, time) {
      checkBytes32(identityId, "identityId");
      if (!Number.isSafeInteger(time) || time < 0) throw new ChainError("bad-argument", `time must be unix seconds, got ${time}`);
      const expiry = await expiries.get(identityId.toLowerCase(), async () => {
        const { confirmed } = await blocks();
        return await chainRead(`read the subscription of ${identityId}`, () =>
          client.readContract({ address: subscriptions, abi: subscriptionsAbi, functionName: "subscriptionExpiry", args: [identityId], blockNumber: confirmed }),
        );
      });
      return expiry > BigInt(time) && (await getIdentity(identityId)).activeConfirmed;
    },
    async attestationThreshold() {
      return Number(await threshold.get());
    },
    async chainTime() {
      const block = await chainRead("read the latest block", () => client.getBlock());
      return Number(block.timestamp);
    },
    sync: () => (follower ? follower.pollOnce() : Promise.resolve()),
    invalidate,
    close() {
      follower?.stop();
      follower = undefined;
    },
  };
}

async function chainRead<T>(what: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw new ChainError("rpc-unreachable", `cannot ${what} from the chain: is the RPC endpoint up and the deployment current?`, { cause: err });
  }
}

function checkBytes32(value: Hex, what: string): void {
  if (typeof value !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(value)) {
    throw new ChainError("bad-argument", `${what} must be 32 bytes as 0x-prefixed hex, got ${JSON.stringify(value)}`);
  }
}

// ---------------------------------------------------------------- in-memory PKI

/** The mutable tables behind `createMemoryPki`. */
export interface MemoryPkiState {
  identities: Map<string, Omit<IdentityRecord, "identityId" | "activeConfirmed">>;
  applications: Map<string, Omit<ApplicationRecord, "applicationId" | "exists">>;
  registrars: Set<string>;
  subscriptions: Map<string, number>;
  sets: { authority: RoleSet["members"]; oracle: RoleSet["members"]; discovery: RoleSet["members"] };
  /** Eligible NodeRegistry role bits by node key (lower-case bytes32 hex); absent: 0. */
  nodeRoles: Map<string, number>;
  attestationThreshold: number;
  /** Chain time in unix seconds; default the wall clock. */
  time?: number;
}

/**
 * A Pki held in memory: for the in-process network simulator, benchmarks and
 * tests of code above the chain layer. Every fact in it counts as confirmed.
 */
export function createMemoryPki(opts: { chainId: number; identityRegistry: Address; state?: Partial<MemoryPkiState> }): Pki & { state: MemoryPkiState } {
  const state: MemoryPkiState = {
    identities: new Map(),
    applications: new Map(),
    registrars: new Set(),
    subscriptions: new Map(),
    sets: { authority: [], oracle: [], discovery: [] },
    nodeRoles: new Map(),
    attestationThreshold: 1,
    ...opts.state,
  };
  const zero = "0x0000000000000000000000000000000000000000" as Address;
  const zero32 = `0x${"00".repeat(32)}` as Hex;
  const getIdentity = async (identityId: Hex): Promise<IdentityRecord> => {
    checkBytes32(identityId, "identityId");
    const rec = state.identities.get(identityId.toLowerCase());
    if (!rec) return { identityId, status: "none", activeConfirmed: false, owner: zero, kind: 0, registeredAt: 0, applicationId: zero32, key: zero32, successor: zero32 };
    return { ...rec, identityId, activeConfirmed: rec.status === "active" };
  };
  const set = (role: keyof MemoryPkiState["sets"]): RoleSet => ({ role, members: state.sets[role], blockNumber: 0n });
  return {
    state,
    chainId: opts.chainId,
    identityRegistry: getAddress(opts.identityRegistry),
    getIdentity,
    isIdentityActive: async (id) => (await getIdentity(id)).activeConfirmed,
    async applicationPolicy(applicationId) {
      const app = state.applications.get(applicationId.toLowerCase());
      return app ? { ...app, applicationId, exists: true } : { applicationId, exists: false, owner: zero, policy: "open", namespace: "", name: "" };
    },
    async isRegistrar(applicationId, account) {
      const app = state.applications.get(applicationId.toLowerCase());
      if (app && getAddress(app.owner) === getAddress(account)) return true;
      return state.registrars.has(`${applicationId.toLowerCase()}:${account.toLowerCase()}`);
    },
    currentAuthorities: async () => set("authority"),
    currentOracles: async () => set("oracle"),
    currentDiscovery: async () => set("discovery"),
    async nodeRoles(nodeKey) {
      checkBytes32(nodeKey, "nodeKey");
      return state.nodeRoles.get(nodeKey.toLowerCase()) ?? 0;
    },
    async isSubscribed(identityId, time) {
      return (state.subscriptions.get(identityId.toLowerCase()) ?? 0) > time && (await getIdentity(identityId)).activeConfirmed;
    },
    attestationThreshold: async () => state.attestationThreshold,
    chainTime: async () => state.time ?? Math.floor(Date.now() / 1000),
    sync: async () => {},
    invalidate: () => {},
    close: () => {},
  };
}

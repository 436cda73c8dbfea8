/**
 * The S/Kademlia simulator: N real DhtNode instances in one process over a
 * MemoryNetwork, with a seeded RNG, measuring lookup success under
 * colluding adversaries as in Baumgart & Mies' evaluation (§5).
 *
 * Simplifications, each chosen so 10,000 nodes run in minutes on 2 cores
 * while the routing and lookup code stays exactly the node's:
 * - Bootstrap from the global view: every routing table is filled directly
 *   (for each bucket, up to k random nodes of that id range; the sibling
 *   list from the nearest ids) instead of running N joins.
 * - Messages are unsigned (UNSIGNED_SIMULATOR_AUTH) and handed over as
 *   objects: 10^6 Ed25519 operations would dominate the run.
 * - Ids are SHA-256 of seeded random 32-byte keys, puzzle difficulty 0
 *   (the id = H(key) check still runs, through one shared cache).
 * - Tables are static during the run (requesters are not learned), so each
 *   configuration sees the same network.
 *
 * Adversaries (Baumgart & Mies §5: adversarial nodes collude, answer
 * lookups only with other adversarial nodes and never store data). When
 * queried for a target, an adversarial node answers with up to k
 * adversarial contacts, chosen by the run's `adversaryStrategy`:
 * - "random-closer" (default): k colluders drawn at random (seeded) from
 *   all adversarial nodes closer to the target than the answering node. The
 *   colluding set shares its view, and every answer names different
 *   colluders, so one disjoint path cannot use them all up; near the target
 *   only few closer colluders exist, as in a real network.
 * - "own-view": the adversarial contacts of the answering node's own
 *   routing table closest to the target (colluders that do not pool views).
 * STOREs are acknowledged and dropped; value lookups never get a value from
 * an adversary (it cannot forge the owner's signature).
 *
 * Node lookups succeed when the honest node closest to the target answered
 * a query of the lookup. Value lookups publish a fresh signed record from a
 * random honest node (a disjoint-path lookup, then STORE to the k closest it
 * found, which the honest ones accept only when plausibly responsible), then
 * look it up from another random honest node; they succeed when the lookup
 * gets the record from an honest holder.
 *
 * Owns the simulation; trusts the node code it measures.
 */
import { ContactVerifier } from "./contact.js";
import type { Contact } from "./contact.js";
import { DhtError } from "./errors.js";
import { ID_BYTES, compareDistance, compareIds } from "./id.js";
import { MemoryNetwork } from "./memory-transport.js";
import { UNSIGNED_SIMULATOR_AUTH } from "./messages.js";
import type { DhtRequest, DhtResponse } from "./messages.js";
import { DhtNode } from "./node.js";
import type { LookupOverrides } from "./node.js";
import { coSignRecord, signRecordAsOwner } from "./record.js";
import { MemoryRecordStore } from "./store.js";

/** sfc32: small, fast, seedable; not for keys, only for reproducible simulations. */
export class SeededRandom {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.next() / 0x1_0000_0000) * n);
  }

  bytes(length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i += 4) {
      const v = this.next();
      for (let j = 0; j < 4 && i + j < length; j++) out[i + j] = (v >>> (8 * j)) & 0xff;
    }
    return out;
  }
}

export interface NetworkOptions {
  nodes: number;
  /** k */
  bucketSize: number;
  /** s */
  siblings: number;
  seed: number;
}

/** How colluding adversaries pick the contacts they answer with (see the module doc). */
export type AdversaryStrategy = "random-closer" | "closest-rotating" | "own-view";
export const ADVERSARY_STRATEGIES: readonly AdversaryStrategy[] = ["random-closer", "closest-rotating", "own-view"];

export interface LookupRunOptions {
  /** Fraction of nodes that are adversarial, 0..0.9. */
  adversarialFraction: number;
  /** Default "random-closer". */
  adversaryStrategy?: AdversaryStrategy;
  /** Value lookups (publish, then find) to run besides the node lookups (default: same as `lookups`; 0 skips them). */
  valueLookups?: number;
  /** d */
  disjointPaths: number;
  alpha: number;
  lookups: number;
  seed: number;
  maxMessagesPerLookup?: number;
  /** w for node and value lookups (default: the node's, 2); publishing always converges on k. */
  lookupWindow?: number;
  /** b (default: the node's, 3; 0 = off). */
  firstReplyBreadth?: number;
}

export interface SimulationResult {
  nodes: number;
  adversarial: number;
  disjointPaths: number;
  bucketSize: number;
  siblings: number;
  alpha: number;
  /** w and b the node and value lookups used. */
  lookupWindow: number;
  firstReplyBreadth: number;
  lookups: number;
  /** Fraction of lookups that reached the honest node closest to the target. */
  successRate: number;
  /** Mean referral depth at which that node was reached (successful lookups). */
  meanHops: number;
  /** Mean queries (FIND_NODE RPCs sent; responses not counted) per node lookup. */
  meanMessages: number;
  /** Process CPU time (user + system) per lookup, ms. */
  cpuMsPerLookup: number;
  adversaryStrategy: AdversaryStrategy;
  /** Value lookups run. */
  valueLookups: number;
  /** Fraction of value lookups that got the record from an honest holder. */
  valueSuccessRate: number;
  /** Mean honest nodes that accepted each published record. */
  meanHonestReplicas: number;
  /** Mean queries per value lookup (the finding side only). */
  meanValueMessages: number;
}

const SIM_EPOCH = Date.UTC(2025, 0, 1);
const SIM_RECORD_TTL_MS = 3600_000;
/** Co-signs every simulated record (the publisher key is not checked against the node: validateRecord only needs a valid co-signature). */
const SIM_PUBLISHER_SECRET = new Uint8Array(32).fill(7);

function checkInt(v: number, name: string, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new DhtError("bad-config", `${name} must be an integer in ${min}..${max}, got ${v}`);
}

/** A built simulated network; run lookups on it with several settings. */
export class SimulatedNetwork {
  readonly network = new MemoryNetwork();
  readonly nodes: DhtNode[] = [];
  /** Contacts sorted by id. */
  private readonly sorted: Contact[];
  private adversarial = new Set<string>();
  private adversaries: DhtNode[] = [];
  private strategy: AdversaryStrategy = "random-closer";
  private adversaryRng = new SeededRandom(0);
  private readonly byAddress = new Map<string, DhtNode>();

  private constructor(readonly options: NetworkOptions) {
    checkInt(options.nodes, "nodes", 2, 1_000_000);
    checkInt(options.bucketSize, "bucket (k)", 1, 1024);
    checkInt(options.siblings, "siblings (s)", 1, 1024);
    const rng = new SeededRandom(options.seed);
    const verifier = new ContactVerifier({ staticDifficulty: 0, dynamicDifficulty: 0 }, options.nodes * 2);
    const now = (): number => SIM_EPOCH;
    const zeroX = new Uint8Array(ID_BYTES);
    for (let i = 0; i < options.nodes; i++) {
      const publicKey = rng.bytes(ID_BYTES);
      const address = `sim-${i}`;
      const node = new DhtNode({
        identity: { secretKey: new Uint8Array(32), publicKey, puzzleX: zeroX, address },
        transport: this.network.transport,
        store: new MemoryRecordStore(),
        config: {
          bucketSize: options.bucketSize,
          siblings: options.siblings,
          staticDifficulty: 0,
          dynamicDifficulty: 0,
          maxMessagesPerLookup: 100_000,
          // The simulated clock stands still, so nonces never age out: one share as large as the whole cache keeps long runs as before.
          replay: { maxNoncesPerSender: 100_000, maxEntries: 100_000 },
        },
        now,
        random: (n) => rng.bytes(n),
        auth: UNSIGNED_SIMULATOR_AUTH,
        checkShapes: false,
        learnFromRequests: false,
        contactVerifier: verifier,
      });
      this.nodes.push(node);
      this.byAddress.set(address, node);
      this.network.attach(address, (request) => node.handleRequest(request));
    }
    this.sorted = this.nodes.map((n) => n.contact).sort((a, b) => compareIds(a.nodeId, b.nodeId));
    this.fillRoutingTables(rng);
    this.network.interceptor = (contact, request) => this.adversaryAnswer(contact, request);
  }

  static build(options: NetworkOptions): SimulatedNetwork {
    return new SimulatedNetwork(options);
  }

  /** First index in `sorted` whose id is >= bound. */
  private lowerBound(bound: Uint8Array): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareIds((this.sorted[mid] as Contact).nodeId, bound) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** [start, end) of the sorted ids that share `bits` leading bits with `id` (flipping bit `bits` when `flip`). */
  private prefixRange(id: Uint8Array, bits: number, flip: boolean): [number, number] {
    const low = id.slice();
    const high = id.slice();
    if (flip) {
      const byte = bits >> 3;
      const mask = 0x80 >> (bits & 7);
      low[byte] = (low[byte] as number) ^ mask;
      high[byte] = (high[byte] as number) ^ mask;
      bits++;
    }
    for (let bit = bits; bit < ID_BYTES * 8; bit++) {
      const byte = bit >> 3;
      const mask = 0x80 >> (bit & 7);
      low[byte] = (low[byte] as number) & ~mask;
      high[byte] = (high[byte] as number) | mask;
    }
    const start = this.lowerBound(low);
    let end = this.lowerBound(high);
    if (end < this.sorted.length && compareIds((this.sorted[end] as Contact).nodeId, high) === 0) end++;
    return [start, end];
  }

  private fillRoutingTables(rng: SeededRandom): void {
    const { bucketSize: k, siblings: s } = this.options;
    for (const node of this.nodes) {
      const id = node.nodeId;
      const seeds: Contact[] = [];
      for (let bits = 0; bits < ID_BYTES * 8; bits++) {
        const [start, end] = this.prefixRange(id, bits, true);
        const size = end - start;
        // Pick min(k, size) distinct random members of the range.
        const picks = new Set<number>();
        if (size <= k) for (let i = start; i < end; i++) picks.add(i);
        else while (picks.size < k) picks.add(start + rng.int(size));
        for (const i of picks) seeds.push(this.sorted[i] as Contact);
        const [sameStart, sameEnd] = this.prefixRange(id, bits + 1, false);
        if (sameEnd - sameStart <= 1) break; // only this node shares a longer prefix
      }
      // Siblings: the s closest ids lie in a window of the sorted order around this node.
      const at = this.lowerBound(id);
      const window = this.sorted.slice(Math.max(0, at - 2 * s), Math.min(this.sorted.length, at + 2 * s + 1));
      window.sort((a, b) => compareDistance(a.nodeId, b.nodeId, id));
      seeds.push(...window.slice(0, s + 1));
      node.seedContacts(seeds);
    }
  }

  /** Marks a seeded random fraction of nodes adversarial (replacing the previous choice). */
  setAdversaries(fraction: number, seed: number): void {
    if (!(fraction >= 0 && fraction <= 0.9)) throw new DhtError("bad-config", `adversarial fraction must be in 0..0.9, got ${fraction}`);
    const rng = new SeededRandom(seed ^ 0x5bd1e995);
    const count = Math.round(fraction * this.nodes.length);
    const order = this.nodes.map((_, i) => i);
    for (let i = 0; i < count; i++) {
      const j = i + rng.int(order.length - i);
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    this.adversaries = order.slice(0, count).map((i) => this.nodes[i] as DhtNode);
    this.adversarial = new Set(this.adversaries.map((n) => n.contact.address));
  }

  private targetCache: { target: Uint8Array; sorted: Contact[]; rank: Map<Contact, number>; cursor: number } | undefined;

  /** Every adversary sorted by distance to `target`, with ranks (cached for the current target). */
  private adversariesByDistance(target: Uint8Array): { sorted: Contact[]; rank: Map<Contact, number>; cursor: number } {
    if (this.targetCache !== undefined && this.targetCache.target === target) return this.targetCache;
    const sorted = this.adversaries.map((n) => n.contact).sort((a, b) => compareDistance(a.nodeId, b.nodeId, target));
    const rank = new Map<Contact, number>();
    sorted.forEach((c, i) => rank.set(c, i));
    this.targetCache = { target, sorted, rank, cursor: 0 };
    return this.targetCache;
  }

  /** The colluders adversary `node` names for `target` (never itself, always closer to the target than itself). */
  private colludersFor(node: DhtNode, target: Uint8Array): Contact[] {
    const k = this.options.bucketSize;
    if (this.strategy === "own-view") {
      return node.table
        .closest(target, 4 * k)
        .filter((c) => this.adversarial.has(c.address) && compareDistance(c.nodeId, node.nodeId, target) < 0)
        .slice(0, k);
    }
    const cache = this.adversariesByDistance(target);
    const { sorted, rank } = cache;
    const closer = rank.get(node.contact) ?? 0;
    if (closer <= k) return sorted.slice(0, closer);
    if (this.strategy === "closest-rotating") {
      // The pool hands out its closest colluders not yet named for this target, wrapping around.
      const out: Contact[] = [];
      if (cache.cursor >= closer) cache.cursor = 0;
      for (let i = cache.cursor; i < closer && out.length < k; i++) out.push(sorted[i] as Contact);
      cache.cursor += out.length;
      return out;
    }
    const picks = new Set<number>();
    while (picks.size < k) picks.add(this.adversaryRng.int(closer));
    return [...picks].map((i) => sorted[i] as Contact);
  }

  private adversaryAnswer(contact: Contact, request: DhtRequest): DhtResponse | undefined {
    if (!this.adversarial.has(contact.address)) return undefined;
    const node = this.byAddress.get(contact.address) as DhtNode;
    const body = request.body;
    switch (body.type) {
      case "FIND_NODE":
      case "FIND_VALUE": {
        const target = body.type === "FIND_NODE" ? body.target : body.key;
        return node.respondWith(request, { type: "NODES", contacts: this.colludersFor(node, target) });
      }
      case "STORE":
        return node.respondWith(request, { type: "STORED", outcome: "stored" }); // and drops it
      case "PING":
        return node.respondWith(request, { type: "PONG" });
    }
  }

  /** Runs `lookups` node lookups from random honest nodes to random targets. */
  async runLookups(o: LookupRunOptions): Promise<SimulationResult> {
    checkInt(o.lookups, "lookups", 1, 10_000_000);
    const valueLookups = o.valueLookups ?? o.lookups;
    checkInt(valueLookups, "valueLookups", 0, 10_000_000);
    const strategy = o.adversaryStrategy ?? "random-closer";
    if (!ADVERSARY_STRATEGIES.includes(strategy)) {
      throw new DhtError("bad-config", `adversaryStrategy must be one of ${ADVERSARY_STRATEGIES.join(", ")}, got ${String(strategy)}`);
    }
    this.strategy = strategy;
    this.adversaryRng = new SeededRandom(o.seed ^ 0x2545f491);
    this.setAdversaries(o.adversarialFraction, o.seed);
    // Records of an earlier run must not make this run's value lookups succeed.
    for (const node of this.nodes) node.store.close();
    const honest = this.nodes.filter((n) => !this.adversarial.has(n.contact.address));
    if (honest.length < 2) throw new DhtError("bad-config", "need at least two honest nodes");
    const rng = new SeededRandom(o.seed);
    const lookupOverrides: LookupOverrides = {
      disjointPaths: o.disjointPaths,
      alpha: o.alpha,
      maxMessagesPerLookup: o.maxMessagesPerLookup ?? 20 * this.options.bucketSize,
      ...(o.lookupWindow === undefined ? {} : { lookupWindow: o.lookupWindow }),
      ...(o.firstReplyBreadth === undefined ? {} : { firstReplyBreadth: o.firstReplyBreadth }),
    };
    let successes = 0;
    let hopsSum = 0;
    let messages = 0;
    const cpuStart = process.cpuUsage();
    for (let i = 0; i < o.lookups; i++) {
      const initiator = honest[rng.int(honest.length)] as DhtNode;
      const target = rng.bytes(ID_BYTES);
      const goal = this.closestHonest(honest, target, initiator);
      const result = await initiator.lookupNode(target, lookupOverrides);
      messages += result.messages;
      const reached = result.queried.find((q) => q.answered && q.contact === goal);
      if (reached !== undefined) {
        successes++;
        hopsSum += reached.hops;
      }
    }
    let valueSuccesses = 0;
    let replicas = 0;
    let valueMessages = 0;
    for (let i = 0; i < valueLookups; i++) {
      const publisher = honest[rng.int(honest.length)] as DhtNode;
      let finder = honest[rng.int(honest.length)] as DhtNode;
      while (finder === publisher) finder = honest[rng.int(honest.length)] as DhtNode;
      const ownerSecretKey = rng.bytes(32);
      const record = coSignRecord(
        signRecordAsOwner({ ownerSecretKey, name: `sim/${i}`, value: rng.bytes(32), seq: 1, expiresAt: SIM_EPOCH + SIM_RECORD_TTL_MS }),
        SIM_PUBLISHER_SECRET,
      );
      const published = await publisher.publish(record, lookupOverrides);
      replicas += published.stored.filter((c) => !this.adversarial.has(c.address)).length + (published.storedLocally ? 1 : 0);
      const found = await finder.findValue(record.key, { ...lookupOverrides, quorum: 1 });
      valueMessages += found.lookup.messages;
      if (found.record !== undefined) valueSuccesses++;
    }
    const cpu = process.cpuUsage(cpuStart);
    return {
      nodes: this.nodes.length,
      adversarial: o.adversarialFraction,
      disjointPaths: o.disjointPaths,
      bucketSize: this.options.bucketSize,
      siblings: this.options.siblings,
      alpha: o.alpha,
      lookupWindow: o.lookupWindow ?? (this.nodes[0] as DhtNode).config.lookupWindow,
      firstReplyBreadth: o.firstReplyBreadth ?? (this.nodes[0] as DhtNode).config.firstReplyBreadth,
      lookups: o.lookups,
      successRate: successes / o.lookups,
      meanHops: successes === 0 ? 0 : hopsSum / successes,
      meanMessages: messages / o.lookups,
      cpuMsPerLookup: (cpu.user + cpu.system) / 1000 / (o.lookups + valueLookups),
      adversaryStrategy: strategy,
      valueLookups,
      valueSuccessRate: valueLookups === 0 ? 0 : valueSuccesses / valueLookups,
      meanHonestReplicas: valueLookups === 0 ? 0 : replicas / valueLookups,
      meanValueMessages: valueLookups === 0 ? 0 : valueMessages / valueLookups,
    };
  }

  private closestHonest(honest: DhtNode[], target: Uint8Array, except: DhtNode): Contact {
    let best: Contact | undefined;
    for (const n of honest) {
      if (n === except) continue;
      if (best === undefined || compareDistance(n.nodeId, best.nodeId, target) < 0) best = n.contact;
    }
    return best as Contact;
  }
}

export interface SimulationOptions extends NetworkOptions, LookupRunOptions {}

/** Builds a network and runs one configuration. */
export async function runSimulation(o: SimulationOptions): Promise<SimulationResult> {
  return SimulatedNetwork.build(o).runLookups(o);
}

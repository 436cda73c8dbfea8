/**
 * The S/Kademlia routing table: 256 k-buckets indexed by common prefix
 * length with the local id, a replacement cache per bucket, and a sibling
 * list of the s contacts closest to the local id.
 *
 * I/O-free: `offer` never evicts a live contact. When a bucket is full it
 * returns `ping-oldest`; the caller pings that contact and reports the
 * outcome with `resolvePing` (Kademlia's LRU rule: only dead contacts are
 * replaced, which favours long-lived nodes an attacker cannot displace).
 *
 * Trusts: its caller to offer only contacts that signed a verified message
 * (S/Kademlia §4.2); it does no crypto itself.
 */
import { DhtError } from "./errors.js";
import { ID_BITS, commonPrefixLength, compareDistance, idHex } from "./id.js";
import type { NodeId } from "./id.js";
import { contactHex } from "./contact.js";
import type { Contact } from "./contact.js";

export interface RoutingTableOptions {
  /** k: contacts per bucket. */
  bucketSize: number;
  /** s: size of the sibling list (contacts closest to the local id). */
  siblings: number;
  /** Candidates kept per full bucket, waiting for a dead contact to leave. */
  replacementCacheSize: number;
  /** Consecutive failed RPCs after which a contact is dropped. */
  staleAfterFailures: number;
}

export const DEFAULT_ROUTING_TABLE_OPTIONS: RoutingTableOptions = {
  bucketSize: 16,
  siblings: 16,
  replacementCacheSize: 8,
  staleAfterFailures: 3,
};

export type OfferResult =
  /** The contact is the local node; ignored. */
  | { kind: "self" }
  /** Already known: moved to the most-recently-seen end of its bucket. */
  | { kind: "updated" }
  /** Entered a bucket with room (or the sibling list). */
  | { kind: "added" }
  /** Bucket full: ping `oldest`, then call `resolvePing(oldest.nodeId, alive)`. */
  | { kind: "ping-oldest"; oldest: Contact }
  /** Bucket full and a ping of its oldest contact is already pending: kept as a replacement candidate. */
  | { kind: "cached" };

interface Entry {
  contact: Contact;
  hex: string;
  failures: number;
}

interface Bucket {
  /** Least recently seen first. */
  entries: Entry[];
  /** Most recent candidate last. */
  replacements: Entry[];
  /** Hex id of the contact being pinged before a replacement, if any. */
  pendingPing: string | undefined;
}

interface Sibling {
  contact: Contact;
  hex: string;
  prefix: number;
}

function checkOptions(o: RoutingTableOptions): void {
  const positive = (v: number, name: string, max: number): void => {
    if (!Number.isInteger(v) || v < 1 || v > max) {
      throw new DhtError("bad-config", `${name} must be an integer in 1..${max}, got ${v}`);
    }
  };
  positive(o.bucketSize, "bucketSize (k)", 1024);
  positive(o.siblings, "siblings (s)", 1024);
  positive(o.replacementCacheSize, "replacementCacheSize", 1024);
  positive(o.staleAfterFailures, "staleAfterFailures", 100);
}

export class RoutingTable {
  readonly options: RoutingTableOptions;
  /** Allocated on first use: most of the 256 buckets stay empty. */
  private readonly buckets: Array<Bucket | undefined> = new Array<Bucket | undefined>(ID_BITS);
  /** Sorted by distance to the local id, closest first. */
  private siblingList: Sibling[] = [];
  private readonly index = new Map<string, number>();

  constructor(
    readonly localId: NodeId,
    options: Partial<RoutingTableOptions> = {},
  ) {
    this.options = { ...DEFAULT_ROUTING_TABLE_OPTIONS, ...options };
    checkOptions(this.options);
  }

  private bucketAt(index: number): Bucket {
    let bucket = this.buckets[index];
    if (bucket === undefined) this.buckets[index] = bucket = { entries: [], replacements: [], pendingPing: undefined };
    return bucket;
  }

  /** Number of distinct contacts in buckets and sibling list. */
  get size(): number {
    const all = new Set<string>(this.index.keys());
    for (const s of this.siblingList) all.add(s.hex);
    return all.size;
  }

  /** Bucket index of an id: its common prefix length with the local id. */
  bucketIndex(id: NodeId): number {
    return commonPrefixLength(this.localId, id);
  }

  /** The contact with this id, if in a bucket or the sibling list. */
  get(id: NodeId): Contact | undefined {
    const hex = idHex(id);
    const b = this.index.get(hex);
    if (b !== undefined) return this.buckets[b]?.entries.find((e) => e.hex === hex)?.contact;
    return this.siblingList.find((s) => s.hex === hex)?.contact;
  }

  /** Contacts of one bucket, least recently seen first (for tests and diagnostics). */
  bucketContents(index: number): Contact[] {
    return (this.buckets[index]?.entries ?? []).map((e) => e.contact);
  }

  /** Replacement candidates of one bucket, most recent last. */
  replacementCandidates(index: number): Contact[] {
    return (this.buckets[index]?.replacements ?? []).map((e) => e.contact);
  }

  /** The sibling list, closest to the local id first. */
  siblings(): Contact[] {
    return this.siblingList.map((s) => s.contact);
  }

  /**
   * Offers a contact that just signed a verified message. See OfferResult
   * for what the caller must do next.
   */
  offer(contact: Contact): OfferResult {
    const prefix = this.bucketIndex(contact.nodeId);
    if (prefix >= ID_BITS) return { kind: "self" };
    const hex = contactHex(contact);
    const enteredSiblings = this.offerSibling(contact, hex, prefix);
    const bucket = this.bucketAt(prefix);
    const at = bucket.entries.findIndex((e) => e.hex === hex);
    if (at >= 0) {
      const [entry] = bucket.entries.splice(at, 1) as [Entry];
      entry.contact = contact;
      entry.failures = 0;
      bucket.entries.push(entry);
      return { kind: "updated" };
    }
    if (bucket.entries.length < this.options.bucketSize) {
      bucket.entries.push({ contact, hex, failures: 0 });
      this.index.set(hex, prefix);
      this.dropReplacement(bucket, hex);
      return { kind: "added" };
    }
    this.dropReplacement(bucket, hex);
    bucket.replacements.push({ contact, hex, failures: 0 });
    if (bucket.replacements.length > this.options.replacementCacheSize) bucket.replacements.shift();
    if (bucket.pendingPing !== undefined) return enteredSiblings ? { kind: "added" } : { kind: "cached" };
    const oldest = bucket.entries[0] as Entry;
    bucket.pendingPing = oldest.hex;
    return { kind: "ping-oldest", oldest: oldest.contact };
  }

  /**
   * Outcome of the ping `offer` asked for. Alive: the old contact stays (moved
   * to the recent end). Dead: it leaves and the newest replacement candidate
   * takes its place, which is returned.
   */
  resolvePing(oldestId: NodeId, alive: boolean): Contact | undefined {
    const hex = idHex(oldestId);
    const prefix = this.bucketIndex(oldestId);
    const bucket = this.buckets[prefix];
    if (bucket === undefined) return undefined;
    if (bucket.pendingPing === hex) bucket.pendingPing = undefined;
    const at = bucket.entries.findIndex((e) => e.hex === hex);
    if (at < 0) return undefined;
    if (alive) {
      const [entry] = bucket.entries.splice(at, 1) as [Entry];
      entry.failures = 0;
      bucket.entries.push(entry);
      return undefined;
    }
    return this.removeFromBucket(bucket, at);
  }

  /** Records a failed RPC; the contact is dropped after `staleAfterFailures` in a row. Returns true when dropped. */
  recordFailure(id: NodeId): boolean {
    const hex = idHex(id);
    const prefix = this.index.get(hex);
    let dropped = false;
    if (prefix !== undefined) {
      const bucket = this.buckets[prefix] as Bucket;
      const at = bucket.entries.findIndex((e) => e.hex === hex);
      const entry = bucket.entries[at];
      if (entry !== undefined && ++entry.failures >= this.options.staleAfterFailures) {
        this.removeFromBucket(bucket, at);
        dropped = true;
      }
    } else if (this.siblingList.some((s) => s.hex === hex)) {
      dropped = true;
    }
    if (dropped) this.removeSibling(hex);
    return dropped;
  }

  /** Removes a contact everywhere (e.g. it failed verification later). */
  remove(id: NodeId): void {
    const hex = idHex(id);
    const prefix = this.index.get(hex);
    if (prefix !== undefined) {
      const bucket = this.buckets[prefix] as Bucket;
      const at = bucket.entries.findIndex((e) => e.hex === hex);
      if (at >= 0) this.removeFromBucket(bucket, at);
    }
    this.removeSibling(hex);
  }

  /**
   * The `count` known contacts closest to `target`, closest first.
   *
   * Buckets are visited in XOR order instead of sorting the whole table:
   * with p = prefix(local, target), bucket p holds the closest contacts,
   * then every bucket above p (all at the same top distance bit), then
   * buckets p-1, p-2, ... 0, each strictly farther than the last.
   */
  closest(target: NodeId, count: number): Contact[] {
    const p = this.bucketIndex(target);
    const out: Contact[] = [];
    const seen = new Set<string>();
    const takeGroup = (group: Entry[] | Sibling[]): void => {
      if (group.length === 0) return;
      const sorted = [...group].sort((a, b) => compareDistance(a.contact.nodeId, b.contact.nodeId, target));
      for (const e of sorted) {
        if (out.length >= count) return;
        if (seen.has(e.hex)) continue;
        seen.add(e.hex);
        out.push(e.contact);
      }
    };
    const group = (from: number, to: number): Array<Entry | Sibling> => {
      const members: Array<Entry | Sibling> = [];
      for (let i = from; i <= to; i++) {
        const bucket = this.buckets[i];
        if (bucket !== undefined) members.push(...bucket.entries);
      }
      for (const s of this.siblingList) if (s.prefix >= from && s.prefix <= to) members.push(s);
      return members;
    };
    if (p < ID_BITS) takeGroup(group(p, p) as Entry[]);
    if (out.length < count && p + 1 < ID_BITS) takeGroup(group(p + 1, ID_BITS - 1) as Entry[]);
    for (let i = Math.min(p, ID_BITS) - 1; i >= 0 && out.length < count; i--) takeGroup(group(i, i) as Entry[]);
    return out;
  }

  /** Every contact once (buckets then siblings). */
  all(): Contact[] {
    const out: Contact[] = [];
    const seen = new Set<string>();
    const add = (hex: string, contact: Contact): void => {
      if (seen.has(hex)) return;
      seen.add(hex);
      out.push(contact);
    };
    for (const b of this.buckets) for (const e of b?.entries ?? []) add(e.hex, e.contact);
    for (const s of this.siblingList) add(s.hex, s.contact);
    return out;
  }

  private offerSibling(contact: Contact, hex: string, prefix: number): boolean {
    const list = this.siblingList;
    const at = list.findIndex((s) => s.hex === hex);
    if (at >= 0) {
      (list[at] as Sibling).contact = contact;
      return true;
    }
    const limit = this.options.siblings;
    const farthest = list[list.length - 1];
    if (list.length >= limit && farthest !== undefined && compareDistance(contact.nodeId, farthest.contact.nodeId, this.localId) >= 0) {
      return false;
    }
    let pos = list.findIndex((s) => compareDistance(contact.nodeId, s.contact.nodeId, this.localId) < 0);
    if (pos < 0) pos = list.length;
    list.splice(pos, 0, { contact, hex, prefix });
    if (list.length > limit) list.pop();
    return true;
  }

  private removeSibling(hex: string): void {
    const before = this.siblingList.length;
    this.siblingList = this.siblingList.filter((s) => s.hex !== hex);
    if (this.siblingList.length === before) return;
    // Refill the hole from the buckets so the list stays the s closest known.
    for (const c of this.closest(this.localId, this.options.siblings + 1)) {
      if (this.siblingList.length >= this.options.siblings) break;
      const h = contactHex(c);
      if (h === hex || this.siblingList.some((s) => s.hex === h)) continue;
      this.offerSibling(c, h, this.bucketIndex(c.nodeId));
    }
  }

  private removeFromBucket(bucket: Bucket, at: number): Contact | undefined {
    const [gone] = bucket.entries.splice(at, 1) as [Entry];
    this.index.delete(gone.hex);
    if (bucket.pendingPing === gone.hex) bucket.pendingPing = undefined;
    const replacement = bucket.replacements.pop();
    if (replacement === undefined) return undefined;
    replacement.failures = 0;
    bucket.entries.push(replacement);
    this.index.set(replacement.hex, this.bucketIndex(replacement.contact.nodeId));
    return replacement.contact;
  }

  private dropReplacement(bucket: Bucket, hex: string): void {
    const at = bucket.replacements.findIndex((e) => e.hex === hex);
    if (at >= 0) bucket.replacements.splice(at, 1);
  }
}

/**
 * The record store interface and its in-memory implementation (simulator,
 * tests, clients that do not persist).
 *
 * A store receives records its caller already validated (validateRecord)
 * and enforces the rules that need stored state, atomically: a key keeps
 * only its highest sequence number, expired records are treated as absent
 * and swept, and each owner has a quota of records and bytes on this node.
 * A store never evicts a live record to make room: a flood from one owner
 * hits that owner's quota, a flood from many hits the total capacity, and
 * either way the records already held stay.
 *
 * Trusts: its caller to have validated signatures, key binding and sizes.
 */
import { DhtError } from "./errors.js";
import { idHex } from "./id.js";
import type { DhtRecord } from "./record.js";

export interface StoreQuota {
  /** Live records one owner may hold on this node. */
  maxRecordsPerOwner: number;
  /** Encoded bytes one owner may hold on this node. */
  maxBytesPerOwner: number;
  /** Encoded bytes this node holds in total. */
  maxTotalBytes: number;
}

export const DEFAULT_STORE_QUOTA: StoreQuota = {
  maxRecordsPerOwner: 32,
  maxBytesPerOwner: 64 * 1024,
  maxTotalBytes: 64 * 1024 * 1024,
};

/** "stored": new or newer record kept; "unchanged": the same record (same seq and signature) was already held. */
export type PutOutcome = "stored" | "unchanged";

export interface OwnerUsage {
  records: number;
  bytes: number;
}

/** Who a record received from the network is charged to (sender-quota.ts): the sending node's id (hex) and its source address. */
export interface RecordCharge {
  sender: string;
  address?: string;
}

/** A live record's charge, as the store kept it: what a restarted node's sender ledger is rebuilt from. */
export interface HeldCharge extends RecordCharge {
  key: Uint8Array;
  size: number;
  expiresAt: number;
}

export interface RecordStore {
  /**
   * Stores a validated record of encoded size `size`, kept with `charge`
   * when a peer sent it (a local publish or re-replication has none).
   * Throws DhtError "stale-sequence", "expired", "quota-exceeded" or "store-full".
   */
  put(record: DhtRecord, size: number, now: number, charge?: RecordCharge): PutOutcome;
  /** The live record under `key`, if any. */
  get(key: Uint8Array, now: number): DhtRecord | undefined;
  /** Deletes every record expired at `now`; returns how many. */
  sweep(now: number): number;
  /** Live records and bytes of one owner. */
  usage(owner: Uint8Array, now: number): OwnerUsage;
  /** Number of records held (live or not yet swept). */
  count(): number;
  /** Every live record (for holders that re-replicate, and diagnostics). */
  records(now: number): DhtRecord[];
  /** Every live record a peer sent, with its charge. */
  charges(now: number): HeldCharge[];
  close(): void;
}

function sameRecord(a: DhtRecord, b: DhtRecord): boolean {
  if (a.seq !== b.seq || a.ownerSig.length !== b.ownerSig.length) return false;
  for (let i = 0; i < a.ownerSig.length; i++) if (a.ownerSig[i] !== b.ownerSig[i]) return false;
  return true;
}

/**
 * The ordering and quota decision shared by both stores, as a pure
 * function of what is currently held. Returns "unchanged" or the bytes
 * freed by replacing `existing`.
 */
export function decidePut(
  record: DhtRecord,
  size: number,
  now: number,
  existing: { record: DhtRecord; size: number } | undefined,
  ownerUsage: OwnerUsage,
  totalBytes: number,
  quota: StoreQuota,
): PutOutcome | { replacesBytes: number } {
  if (record.expiresAt <= now) throw new DhtError("expired", "record already expired");
  let replacesBytes = 0;
  if (existing !== undefined && existing.record.expiresAt > now) {
    if (sameRecord(existing.record, record)) return "unchanged";
    if (record.seq <= existing.record.seq) {
      throw new DhtError("stale-sequence", `record seq ${record.seq} is not newer than the stored seq ${existing.record.seq}`);
    }
    replacesBytes = existing.size;
  }
  const ownerRecords = ownerUsage.records - (replacesBytes > 0 ? 1 : 0) + 1;
  const ownerBytes = ownerUsage.bytes - replacesBytes + size;
  if (ownerRecords > quota.maxRecordsPerOwner || ownerBytes > quota.maxBytesPerOwner) {
    throw new DhtError(
      "quota-exceeded",
      `owner would hold ${ownerRecords} records / ${ownerBytes} bytes on this node; the quota is ${quota.maxRecordsPerOwner} / ${quota.maxBytesPerOwner}`,
    );
  }
  if (totalBytes - replacesBytes + size > quota.maxTotalBytes) {
    throw new DhtError("store-full", `store holds ${totalBytes} of ${quota.maxTotalBytes} bytes; try other nodes or later`);
  }
  return { replacesBytes };
}

interface Held {
  record: DhtRecord;
  size: number;
  ownerHex: string;
  charge?: RecordCharge;
}

/** A RecordStore in a Map; same rules as the SQLite store. */
export class MemoryRecordStore implements RecordStore {
  private readonly held = new Map<string, Held>();
  private readonly byOwner = new Map<string, Set<string>>();
  private totalBytes = 0;

  constructor(readonly quota: StoreQuota = DEFAULT_STORE_QUOTA) {}

  put(record: DhtRecord, size: number, now: number, charge?: RecordCharge): PutOutcome {
    const keyHex = idHex(record.key);
    const ownerHex = idHex(record.owner);
    const existing = this.held.get(keyHex);
    // Expired records still count toward totalBytes until swept; exclude the owner's here, as the SQLite store does.
    const decision = decidePut(record, size, now, existing, this.usage(record.owner, now), this.totalBytes - this.expiredBytesOf(ownerHex, now), this.quota);
    if (decision === "unchanged" || decision === "stored") return "unchanged";
    this.sweepOwner(ownerHex, now);
    const current = this.held.get(keyHex);
    if (current !== undefined) this.delete(keyHex, current);
    this.held.set(keyHex, { record, size, ownerHex, ...(charge ? { charge: { ...charge } } : {}) });
    let keys = this.byOwner.get(ownerHex);
    if (keys === undefined) this.byOwner.set(ownerHex, (keys = new Set()));
    keys.add(keyHex);
    this.totalBytes += size;
    return "stored";
  }

  get(key: Uint8Array, now: number): DhtRecord | undefined {
    const held = this.held.get(idHex(key));
    return held !== undefined && held.record.expiresAt > now ? held.record : undefined;
  }

  sweep(now: number): number {
    let removed = 0;
    for (const [keyHex, held] of this.held) {
      if (held.record.expiresAt <= now) {
        this.delete(keyHex, held);
        removed++;
      }
    }
    return removed;
  }

  usage(owner: Uint8Array, now: number): OwnerUsage {
    const usage = { records: 0, bytes: 0 };
    for (const keyHex of this.byOwner.get(idHex(owner)) ?? []) {
      const held = this.held.get(keyHex);
      if (held !== undefined && held.record.expiresAt > now) {
        usage.records++;
        usage.bytes += held.size;
      }
    }
    return usage;
  }

  count(): number {
    return this.held.size;
  }

  records(now: number): DhtRecord[] {
    return [...this.held.values()].filter((h) => h.record.expiresAt > now).map((h) => h.record);
  }

  charges(now: number): HeldCharge[] {
    const out: HeldCharge[] = [];
    for (const { record, size, charge } of this.held.values())
      if (charge && record.expiresAt > now) out.push({ key: record.key, size, expiresAt: record.expiresAt, ...charge });
    return out;
  }

  /** Test hook for fault injection: puts bytes in the store with no checks at all (a corrupted or malicious holder). */
  injectUnchecked(record: DhtRecord, size = 0): void {
    const keyHex = idHex(record.key);
    const existing = this.held.get(keyHex);
    if (existing !== undefined) this.delete(keyHex, existing);
    this.held.set(keyHex, { record, size, ownerHex: idHex(record.owner) });
    this.totalBytes += size;
  }

  close(): void {
    this.held.clear();
    this.byOwner.clear();
    this.totalBytes = 0;
  }

  private expiredBytesOf(ownerHex: string, now: number): number {
    let bytes = 0;
    for (const keyHex of this.byOwner.get(ownerHex) ?? []) {
      const held = this.held.get(keyHex);
      if (held !== undefined && held.record.expiresAt <= now) bytes += held.size;
    }
    return bytes;
  }

  private sweepOwner(ownerHex: string, now: number): void {
    for (const keyHex of this.byOwner.get(ownerHex) ?? []) {
      const held = this.held.get(keyHex);
      if (held !== undefined && held.record.expiresAt <= now) this.delete(keyHex, held);
    }
  }

  private delete(keyHex: string, held: Held): void {
    this.held.delete(keyHex);
    this.totalBytes -= held.size;
    const keys = this.byOwner.get(held.ownerHex);
    keys?.delete(keyHex);
    if (keys !== undefined && keys.size === 0) this.byOwner.delete(held.ownerHex);
  }
}

/**
 * Storage quotas on what an attacker controls: the node that sent a STORE
 * (its node id, which the message signature proves) and, where the
 * transport knows it, the address it came from. Owner keys are free to
 * make, so the store's per-owner quota alone lets one publisher fill the
 * store with fresh owners; this ledger charges every record accepted from
 * the network to its sender and source address too.
 *
 * Owns the charge ledger only (which sender and address each held key was
 * charged to, its size and expiry). A key re-stored by another sender moves
 * its charge; expired charges are dropped lazily. Pure: time is an input.
 *
 * Trusts: its caller to charge only after the store accepted the record and
 * to pass a verified sender id.
 */
import { DhtError } from "./errors.js";

export interface SenderQuotaLimits {
  /** Live records one sending node may have placed on this node. */
  maxRecordsPerSender: number;
  /** Encoded bytes one sending node may have placed on this node. */
  maxBytesPerSender: number;
  /** Encoded bytes all senders from one source address may have placed (NAT-shared, so larger). */
  maxBytesPerAddress: number;
}

export const DEFAULT_SENDER_QUOTA: SenderQuotaLimits = {
  maxRecordsPerSender: 512,
  maxBytesPerSender: 1024 * 1024,
  maxBytesPerAddress: 4 * 1024 * 1024,
};

interface Charge {
  sender: string;
  address: string | undefined;
  size: number;
  expiresAt: number;
}

interface Account {
  records: number;
  bytes: number;
}

/** Checks a field of SenderQuotaLimits; throws DhtError "bad-config". */
export function checkSenderQuota(limits: SenderQuotaLimits): SenderQuotaLimits {
  for (const [name, v] of Object.entries(limits)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new DhtError("bad-config", `senderQuota.${name} must be a positive integer, got ${String(v)}`);
  }
  return limits;
}

export class SenderQuota {
  private readonly charges = new Map<string, Charge>();
  private readonly senders = new Map<string, Account>();
  private readonly addresses = new Map<string, Account>();
  private sweptAt = Number.NEGATIVE_INFINITY;

  constructor(readonly limits: SenderQuotaLimits = DEFAULT_SENDER_QUOTA) {}

  /**
   * Throws DhtError "quota-exceeded" when storing `size` bytes under `keyHex`
   * from this sender (and address) would pass a cap. A key the sender
   * already holds is a replacement: only the size difference counts.
   */
  check(keyHex: string, size: number, sender: string, address: string | undefined, now: number): void {
    this.sweep(now);
    const held = this.charges.get(keyHex);
    const mine = held?.sender === sender ? held : undefined;
    const account = this.senders.get(sender) ?? { records: 0, bytes: 0 };
    const records = account.records + (mine ? 0 : 1);
    const bytes = account.bytes - (mine?.size ?? 0) + size;
    if (records > this.limits.maxRecordsPerSender || bytes > this.limits.maxBytesPerSender) {
      throw new DhtError(
        "quota-exceeded",
        `the sending node would hold ${records} records / ${bytes} bytes on this node; the per-sender quota is ${this.limits.maxRecordsPerSender} / ${this.limits.maxBytesPerSender}`,
      );
    }
    if (address === undefined) return;
    const fromAddress = this.addresses.get(address)?.bytes ?? 0;
    const addressBytes = fromAddress - (held?.address === address ? held.size : 0) + size;
    if (addressBytes > this.limits.maxBytesPerAddress) {
      throw new DhtError(
        "quota-exceeded",
        `senders from this address would hold ${addressBytes} bytes on this node; the per-address quota is ${this.limits.maxBytesPerAddress}`,
      );
    }
  }

  /** Records that the store now holds `keyHex` (size, expiry) on behalf of this sender and address. */
  charge(keyHex: string, size: number, expiresAt: number, sender: string, address: string | undefined): void {
    this.release(keyHex);
    this.charges.set(keyHex, { sender, address, size, expiresAt });
    add(this.senders, sender, 1, size);
    if (address !== undefined) add(this.addresses, address, 1, size);
  }

  /** Live records and bytes charged to a sender (node id hex). */
  usage(sender: string, now: number): Account {
    this.sweep(now);
    return { ...(this.senders.get(sender) ?? { records: 0, bytes: 0 }) };
  }

  /** Drops every charge whose record expired, at most once a second (the ledger is as large as the store). */
  private sweep(now: number): void {
    if (now - this.sweptAt < 1000) return;
    this.sweptAt = now;
    for (const [keyHex, c] of this.charges) if (c.expiresAt <= now) this.release(keyHex);
  }

  private release(keyHex: string): void {
    const c = this.charges.get(keyHex);
    if (c === undefined) return;
    this.charges.delete(keyHex);
    add(this.senders, c.sender, -1, -c.size);
    if (c.address !== undefined) add(this.addresses, c.address, -1, -c.size);
  }
}

function add(accounts: Map<string, Account>, name: string, records: number, bytes: number): void {
  const a = accounts.get(name) ?? { records: 0, bytes: 0 };
  a.records += records;
  a.bytes += bytes;
  if (a.records <= 0) accounts.delete(name);
  else accounts.set(name, a);
}

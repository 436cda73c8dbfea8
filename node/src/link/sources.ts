/**
 * Inbound connections counted by where they come from: per source address
 * and per network prefix (/24 for IPv4, /48 for IPv6), the way Tor's DoS
 * subsystem counts concurrent connections per client address.
 *
 * Owns the address normalization (an IPv4-mapped IPv6 address counts as its
 * IPv4 address), the prefix rule and the counts. Pure: no sockets, no time.
 *
 * Trusts the caller for the addresses (they come from the kernel, not from
 * the peer) and for pairing every add with one remove.
 */
import { isIPv4, isIPv6 } from "node:net";
import { isLoopbackHost } from "../base/address.js";

/** The budget a new connection would break, if any. */
export type SourceCap = "per-address" | "per-prefix";

/** The address a connection is counted under, and the prefix it shares with its neighbours. */
export function sourceKeys(remoteAddress: string | undefined): { address: string; prefix: string } {
  const raw = remoteAddress ?? "unknown";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(raw);
  const address = mapped ? (mapped[1] as string) : raw.toLowerCase();
  if (isIPv4(address)) return { address, prefix: `${address.split(".").slice(0, 3).join(".")}.0/24` };
  if (isIPv6(address)) return { address, prefix: `${ipv6Groups(address).slice(0, 3).join(":")}::/48` };
  return { address, prefix: address };
}

/** The eight 16-bit groups of an IPv6 address, "::" expanded, without leading zeros. */
function ipv6Groups(address: string): string[] {
  const [head = "", tail] = address.split("%")[0]!.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill("0"), ...right];
  return groups.map((g) => (g.includes(".") ? g : (parseInt(g, 16) || 0).toString(16)));
}

export interface SourceLimits {
  maxPerAddress: number;
  maxPerPrefix: number;
  /** Loopback addresses are not limited (a devnet on one machine is all 127.0.0.1). */
  exemptLoopback: boolean;
}

export class SourceCounts {
  private readonly byAddress = new Map<string, number>();
  private readonly byPrefix = new Map<string, number>();

  constructor(private readonly limits: SourceLimits) {}

  /** The cap one more connection from `address` would break, or undefined. */
  wouldBreak(keys: { address: string; prefix: string }): SourceCap | undefined {
    if (this.limits.exemptLoopback && isLoopbackHost(keys.address)) return undefined;
    if ((this.byAddress.get(keys.address) ?? 0) >= this.limits.maxPerAddress) return "per-address";
    if ((this.byPrefix.get(keys.prefix) ?? 0) >= this.limits.maxPerPrefix) return "per-prefix";
    return undefined;
  }

  add(keys: { address: string; prefix: string }): void {
    this.byAddress.set(keys.address, (this.byAddress.get(keys.address) ?? 0) + 1);
    this.byPrefix.set(keys.prefix, (this.byPrefix.get(keys.prefix) ?? 0) + 1);
  }

  remove(keys: { address: string; prefix: string }): void {
    decrement(this.byAddress, keys.address);
    decrement(this.byPrefix, keys.prefix);
  }

  /** Connections counted for `address` now. */
  count(address: string): number {
    return this.byAddress.get(sourceKeys(address).address) ?? 0;
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1;
  if (n > 0) map.set(key, n);
  else map.delete(key);
}

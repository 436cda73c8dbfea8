/**
 * Node addresses as descriptors and the consensus carry them.
 *
 * Owns the byte form: an address is a byte string of 6 bytes (IPv4 address,
 * then the port, big-endian) or 18 bytes (IPv6 address, then the port). Bytes
 * rather than text so one address has exactly one encoding, which the
 * consensus relies on when it counts equal values across votes. Host names
 * are not addresses: a descriptor names where the node listens, not a DNS
 * record someone else controls.
 *
 * Text form (API side): `host` is an IPv4 dotted quad or an IPv6 address
 * (brackets optional on input, never on output; output is RFC 5952: lower
 * case, longest zero run compressed). IPv4-mapped IPv6 (::ffff:a.b.c.d) is
 * refused: give the IPv4 form, so one host cannot appear under two families.
 *
 * Trusts nothing; every rejection is DirectoryError "malformed".
 */
import type { NodeAddress } from "../onion/types.js";
import { DirectoryError } from "./errors.js";

export type { NodeAddress };

export const IPV4_ADDRESS_BYTES = 6;
export const IPV6_ADDRESS_BYTES = 18;

function bad(message: string): DirectoryError {
  return new DirectoryError("malformed", message);
}

function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    // No leading zeros: "010" is octal to some parsers and decimal to others.
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIPv6(text: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.length > 45) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string | undefined): number[] | undefined => {
    if (part === undefined || part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as string;
      if (item.includes(".")) {
        // An IPv4 tail is only allowed as the very last item.
        if (i !== items.length - 1) return undefined;
        const v4 = parseIPv4(item);
        if (!v4) return undefined;
        out.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return undefined;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const head = groupsOf(halves[0]);
  const tail = groupsOf(halves[1]);
  if (!head || !tail) return undefined;
  if (halves.length === 2 && halves[0]?.includes(".")) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function isIPv4Mapped(ip: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (ip[i] !== 0) return false;
  return ip[10] === 0xff && ip[11] === 0xff;
}

function checkPort(port: unknown): number {
  if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw bad(`port must be an integer in 1..65535, got ${String(port)}`);
  }
  return port;
}

/** Encodes `{ host, port }` to its 6- or 18-byte form. Throws DirectoryError "malformed". */
export function encodeAddress(address: NodeAddress): Uint8Array {
  if (typeof address !== "object" || address === null || typeof address.host !== "string") {
    throw bad("an address is { host: <IPv4 or IPv6 literal>, port }");
  }
  const port = checkPort(address.port);
  let host = address.host;
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  const v4 = parseIPv4(host);
  const ip = v4 ?? parseIPv6(host);
  if (!ip) throw bad(`address host ${JSON.stringify(address.host.slice(0, 64))} is not an IPv4 or IPv6 literal (host names are not accepted)`);
  if (!v4 && isIPv4Mapped(ip)) throw bad(`address ${address.host} is IPv4-mapped IPv6: give the IPv4 address instead`);
  const out = new Uint8Array(ip.length + 2);
  out.set(ip, 0);
  out[ip.length] = port >> 8;
  out[ip.length + 1] = port & 0xff;
  return out;
}

function formatIPv6(ip: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip[i] as number) << 8) | (ip[i + 1] as number));
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Decodes the byte form back to `{ host, port }`. Throws DirectoryError "malformed". */
export function decodeAddress(bytes: Uint8Array): NodeAddress {
  if (!(bytes instanceof Uint8Array) || (bytes.length !== IPV4_ADDRESS_BYTES && bytes.length !== IPV6_ADDRESS_BYTES)) {
    throw bad(`an address is ${IPV4_ADDRESS_BYTES} (IPv4) or ${IPV6_ADDRESS_BYTES} (IPv6) bytes`);
  }
  const ipLen = bytes.length - 2;
  const port = ((bytes[ipLen] as number) << 8) | (bytes[ipLen + 1] as number);
  if (port === 0) throw bad("address port 0 is not a listening port");
  const ip = bytes.subarray(0, ipLen);
  if (ipLen === 16 && isIPv4Mapped(ip)) throw bad("IPv4-mapped IPv6 addresses are not accepted; the IPv4 form must be used");
  const host = ipLen === 4 ? Array.from(ip).join(".") : formatIPv6(ip);
  return { host, port };
}

/** "host:port", with brackets around IPv6 hosts. */
export function formatAddress(address: NodeAddress): string {
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** True for the 6-byte IPv4 form. */
export function isIPv4AddressBytes(bytes: Uint8Array): boolean {
  return bytes.length === IPV4_ADDRESS_BYTES;
}

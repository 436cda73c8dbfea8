/**
 * Byte layouts of the onion layer's own messages.
 *
 * Owns the bodies carried inside cells and relay cells:
 *   CREATE2    (cell payload)  HTYPE (2) ‖ HLEN (2) ‖ HDATA (HLEN)            zero padded
 *   CREATED2   (cell payload)  HLEN (2) ‖ HDATA (HLEN)                        zero padded
 *   DESTROY    (cell payload)  REASON (1)                                     zero padded
 *   EXTEND2    (relay data)    NSPEC (1) ‖ NSPEC × (LSTYPE (1) ‖ LSLEN (1) ‖ LSPEC) ‖ HTYPE (2) ‖ HLEN (2) ‖ HDATA
 *   EXTENDED2  (relay data)    HLEN (2) ‖ HDATA
 *   BEGIN      (relay data)    SERVICE (1..64 bytes of [a-z0-9._-]) ‖ 0x00
 *   END, TRUNCATED (relay data) REASON (1)
 * Link specifiers: 0x00 IPv4 (4 ‖ port 2), 0x01 IPv6 (16 ‖ port 2),
 * 0x03 Ed25519 identity (32), 0x80 host name (UTF-8 ‖ port 2, PSP only).
 * Unknown specifier types are skipped, as in Tor. The Ed25519 identity is
 * required; addresses are not: an EXTEND2 naming an internal node carries its
 * identity alone, and the extending relay finds the node by that identity
 * (docs/spec/onion.md §2).
 *
 * Trusts nothing: every decoder throws CircuitError "protocol-violation" on
 * malformed bytes.
 */
import { CircuitError } from "./errors.js";
import { HANDSHAKE_NTOR, MAX_SERVICE_NAME_LEN, toDestroyReason, toEndReason } from "./constants.js";
import type { DestroyReason, EndReason } from "./constants.js";

export const CELL_BODY_LEN = 507;
export const RELAY_DATA_LEN = 496;
export const IDENTITY_LEN = 32;

export const LinkSpecifierType = { IPV4: 0x00, IPV6: 0x01, ED25519: 0x03, HOSTNAME: 0x80 } as const;

function violation(message: string): CircuitError {
  return new CircuitError("protocol-violation", message);
}

function u16(b: Uint8Array, o: number): number {
  if (o + 2 > b.length) throw violation(`truncated: need 2 bytes at offset ${o} of ${b.length}`);
  return ((b[o] as number) << 8) | (b[o + 1] as number);
}

function putU16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

export interface Create2 {
  handshakeType: number;
  handshakeData: Uint8Array;
}

export function encodeCreate2(msg: Create2): Uint8Array {
  if (msg.handshakeData.length > CELL_BODY_LEN - 4) throw new CircuitError("bad-argument", "CREATE2 handshake data too long");
  const out = new Uint8Array(CELL_BODY_LEN);
  putU16(out, 0, msg.handshakeType);
  putU16(out, 2, msg.handshakeData.length);
  out.set(msg.handshakeData, 4);
  return out;
}

export function decodeCreate2(payload: Uint8Array): Create2 {
  const handshakeType = u16(payload, 0);
  const len = u16(payload, 2);
  if (4 + len > payload.length) throw violation(`CREATE2 HLEN ${len} exceeds the payload`);
  return { handshakeType, handshakeData: payload.slice(4, 4 + len) };
}

export function encodeCreated2(handshakeData: Uint8Array): Uint8Array {
  if (handshakeData.length > CELL_BODY_LEN - 2) throw new CircuitError("bad-argument", "CREATED2 handshake data too long");
  const out = new Uint8Array(CELL_BODY_LEN);
  putU16(out, 0, handshakeData.length);
  out.set(handshakeData, 2);
  return out;
}

/** Decodes CREATED2 (cell payload) or EXTENDED2 (relay data): both are HLEN ‖ HDATA. */
export function decodeCreated2(body: Uint8Array): Uint8Array {
  const len = u16(body, 0);
  if (2 + len > body.length) throw violation(`CREATED2/EXTENDED2 HLEN ${len} exceeds the body`);
  return body.slice(2, 2 + len);
}

export function encodeExtended2(handshakeData: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + handshakeData.length);
  putU16(out, 0, handshakeData.length);
  out.set(handshakeData, 2);
  return out;
}

export function encodeDestroy(reason: DestroyReason): Uint8Array {
  const out = new Uint8Array(CELL_BODY_LEN);
  out[0] = reason;
  return out;
}

export function decodeDestroy(payload: Uint8Array): DestroyReason {
  return toDestroyReason(payload[0] ?? 0);
}

export interface Extend2 {
  /** Ed25519 identity the next hop must authenticate with. */
  identity: Uint8Array;
  /** Where to reach it; empty when the client knows the node by identity only (an internal node). */
  addresses: { host: string; port: number }[];
  handshakeType: number;
  handshakeData: Uint8Array;
}

function ipv4Bytes(host: string): Uint8Array | undefined {
  const parts = host.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return Uint8Array.from(parts.map(Number));
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CircuitError("bad-argument", `port must be 1..65535, got ${port}`);
}

export function encodeExtend2(msg: Extend2): Uint8Array {
  if (msg.identity.length !== IDENTITY_LEN) throw new CircuitError("bad-argument", `EXTEND2 identity must be ${IDENTITY_LEN} bytes`);
  const specs: Uint8Array[] = [];
  const spec = (type: number, body: Uint8Array) => {
    if (body.length > 255) throw new CircuitError("bad-argument", "link specifier longer than 255 bytes");
    const s = new Uint8Array(2 + body.length);
    s[0] = type;
    s[1] = body.length;
    s.set(body, 2);
    specs.push(s);
  };
  for (const { host, port } of msg.addresses) {
    checkPort(port);
    const v4 = ipv4Bytes(host);
    if (v4) {
      const body = new Uint8Array(6);
      body.set(v4);
      putU16(body, 4, port);
      spec(LinkSpecifierType.IPV4, body);
    } else {
      const name = new TextEncoder().encode(host);
      if (name.length === 0 || name.length > 253) throw new CircuitError("bad-argument", `host name must be 1..253 bytes: ${host}`);
      const body = new Uint8Array(name.length + 2);
      body.set(name);
      putU16(body, name.length, port);
      spec(LinkSpecifierType.HOSTNAME, body);
    }
  }
  spec(LinkSpecifierType.ED25519, msg.identity);
  if (specs.length > 255) throw new CircuitError("bad-argument", "too many link specifiers");
  const total = 1 + specs.reduce((n, s) => n + s.length, 0) + 4 + msg.handshakeData.length;
  if (total > RELAY_DATA_LEN) throw new CircuitError("bad-argument", `EXTEND2 body is ${total} bytes; at most ${RELAY_DATA_LEN} fit a relay cell`);
  const out = new Uint8Array(total);
  out[0] = specs.length;
  let o = 1;
  for (const s of specs) {
    out.set(s, o);
    o += s.length;
  }
  putU16(out, o, msg.handshakeType);
  putU16(out, o + 2, msg.handshakeData.length);
  out.set(msg.handshakeData, o + 4);
  return out;
}

function formatIPv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((b[i] as number) << 8) | (b[i + 1] as number)).toString(16));
  return groups.join(":");
}

export function decodeExtend2(data: Uint8Array): Extend2 {
  if (data.length < 1) throw violation("EXTEND2 is empty");
  const nspec = data[0] as number;
  let o = 1;
  let identity: Uint8Array | undefined;
  const addresses: { host: string; port: number }[] = [];
  for (let i = 0; i < nspec; i++) {
    if (o + 2 > data.length) throw violation("EXTEND2 link specifier header truncated");
    const type = data[o] as number;
    const len = data[o + 1] as number;
    o += 2;
    if (o + len > data.length) throw violation("EXTEND2 link specifier body truncated");
    const body = data.subarray(o, o + len);
    o += len;
    switch (type) {
      case LinkSpecifierType.IPV4:
        if (len !== 6) throw violation("IPv4 link specifier must be 6 bytes");
        addresses.push({ host: Array.from(body.subarray(0, 4)).join("."), port: u16(body, 4) });
        break;
      case LinkSpecifierType.IPV6:
        if (len !== 18) throw violation("IPv6 link specifier must be 18 bytes");
        addresses.push({ host: formatIPv6(body.subarray(0, 16)), port: u16(body, 16) });
        break;
      case LinkSpecifierType.ED25519:
        if (len !== IDENTITY_LEN) throw violation(`Ed25519 link specifier must be ${IDENTITY_LEN} bytes`);
        if (identity) throw violation("EXTEND2 names two Ed25519 identities");
        identity = body.slice();
        break;
      case LinkSpecifierType.HOSTNAME: {
        if (len < 3) throw violation("host-name link specifier too short");
        let host: string;
        try {
          host = new TextDecoder("utf-8", { fatal: true }).decode(body.subarray(0, len - 2));
        } catch {
          throw violation("host-name link specifier is not UTF-8");
        }
        addresses.push({ host, port: u16(body, len - 2) });
        break;
      }
      default:
        break; // unknown specifier: skipped
    }
  }
  if (!identity) throw violation("EXTEND2 does not name an Ed25519 identity");
  if (addresses.some((a) => a.port === 0)) throw violation("EXTEND2 address with port 0");
  const handshakeType = u16(data, o);
  const hlen = u16(data, o + 2);
  if (o + 4 + hlen > data.length) throw violation(`EXTEND2 HLEN ${hlen} exceeds the body`);
  return { identity, addresses, handshakeType, handshakeData: data.slice(o + 4, o + 4 + hlen) };
}

const SERVICE_NAME = /^[a-z0-9][a-z0-9._-]*$/;

/** True for a syntactically valid service name. */
export function isServiceName(name: string): boolean {
  return name.length >= 1 && name.length <= MAX_SERVICE_NAME_LEN && SERVICE_NAME.test(name);
}

export function encodeBegin(service: string): Uint8Array {
  if (!isServiceName(service)) {
    throw new CircuitError(
      "bad-argument",
      `service name must be 1..${MAX_SERVICE_NAME_LEN} characters of [a-z0-9._-] starting with a letter or digit, got ${JSON.stringify(service)}`,
    );
  }
  const name = new TextEncoder().encode(service);
  const out = new Uint8Array(name.length + 1);
  out.set(name);
  return out;
}

export function decodeBegin(data: Uint8Array): string {
  const nul = data.indexOf(0);
  if (nul < 1) throw violation("BEGIN must carry a service name followed by a NUL byte");
  const name = String.fromCharCode(...data.subarray(0, nul));
  if (!isServiceName(name)) throw violation(`BEGIN names an invalid service ${JSON.stringify(name.slice(0, 80))}`);
  return name;
}

export function encodeReason(reason: number): Uint8Array {
  return Uint8Array.of(reason);
}

export function decodeEndReason(data: Uint8Array): EndReason {
  return toEndReason(data[0] ?? 1);
}

export function decodeTruncatedReason(data: Uint8Array): DestroyReason {
  return toDestroyReason(data[0] ?? 0);
}

export { HANDSHAKE_NTOR };

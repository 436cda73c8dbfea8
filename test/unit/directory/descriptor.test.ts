import { describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { decodeAddress, encodeAddress, formatAddress } from "../../../node/src/directory/address.js";
import { bytesToHexFast, ChainRole } from "../../../node/src/directory/config.js";
import { createDescriptor, verifyDescriptor } from "../../../node/src/directory/descriptor.js";
import type { DescriptorFields } from "../../../node/src/directory/descriptor.js";
import { DirectoryError } from "../../../node/src/directory/errors.js";
import { encodeCanonical, decodeCanonical } from "../../../node/src/wire/canonical.js";
import { kindOf as anyKindOf } from "../../helpers/index.js";

const NOW = 1_700_000_000_000;

function fields(overrides: Partial<DescriptorFields> = {}): DescriptorFields {
  return {
    onionKey: new Uint8Array(32).fill(7),
    addresses: [
      { host: "198.51.100.7", port: 9001 },
      { host: "2001:db8::7", port: 9001 },
    ],
    roles: ChainRole.onion,
    bridge: false,
    bandwidth: 250_000,
    country: "DE",
    version: "psp/0.1.0",
    publishedAt: NOW,
    family: "op-1",
    ...overrides,
  };
}

const kindOf = (fn: () => unknown) => anyKindOf(fn, DirectoryError);

describe("addresses", () => {
  it("encode to 6 or 18 bytes and format back canonically (RFC 5952)", () => {
    expect(encodeAddress({ host: "1.2.3.4", port: 443 })).toEqual(Uint8Array.of(1, 2, 3, 4, 1, 187));
    const v6 = encodeAddress({ host: "[2001:DB8:0:0:0:0:0:1]", port: 9001 });
    expect(v6.length).toBe(18);
    expect(decodeAddress(v6)).toEqual({ host: "2001:db8::1", port: 9001 });
    expect(decodeAddress(encodeAddress({ host: "::", port: 1 }))).toEqual({ host: "::", port: 1 });
    expect(decodeAddress(encodeAddress({ host: "1:0:0:2:0:0:0:3", port: 1 })).host).toBe("1:0:0:2::3");
    expect(formatAddress({ host: "2001:db8::1", port: 80 })).toBe("[2001:db8::1]:80");
  });

  it("refuses host names, leading zeros, IPv4-mapped IPv6 and bad ports", () => {
    expect(kindOf(() => encodeAddress({ host: "relay.example.org", port: 1 }))).toBe("malformed");
    expect(kindOf(() => encodeAddress({ host: "01.2.3.4", port: 1 }))).toBe("malformed");
    expect(kindOf(() => encodeAddress({ host: "::ffff:1.2.3.4", port: 1 }))).toBe("malformed");
    expect(kindOf(() => encodeAddress({ host: "1.2.3.4", port: 0 }))).toBe("malformed");
    expect(kindOf(() => encodeAddress({ host: "1::2::3", port: 1 }))).toBe("malformed");
    expect(kindOf(() => decodeAddress(new Uint8Array(7)))).toBe("malformed");
  });
});

describe("descriptors", () => {
  const keys = generateEd25519KeyPair();
  const registered = new Set([bytesToHexFast(keys.publicKey)]);
  const opts = { now: NOW, isRegisteredAndStaked: registered };

  it("round-trip every field, with identity and digest", () => {
    const bytes = createDescriptor({ ...fields(), secretKey: keys.secretKey });
    const d = verifyDescriptor(bytes, opts);
    expect(d.identity).toEqual(keys.publicKey);
    expect(d.addresses).toEqual([
      { host: "198.51.100.7", port: 9001 },
      { host: "2001:db8::7", port: 9001 },
    ]);
    expect([d.bandwidth, d.country, d.version, d.family, d.roles, d.bridge]).toEqual([250_000, "DE", "psp/0.1.0", "op-1", 1, false]);
    expect(d.digest.length).toBe(32);
    // A predicate works like the set.
    expect(verifyDescriptor(bytes, { now: NOW, isRegisteredAndStaked: () => true }).publishedAt).toBe(NOW);
  });

  it("rejects forged, stale, future-dated, oversized, malformed and unregistered descriptors", () => {
    const bytes = createDescriptor({ ...fields(), secretKey: keys.secretKey });
    // Forged: the body altered after signing (the bandwidth value 250000 is 0x0003d090).
    const forged = bytes.slice();
    const at = Buffer.from(forged).indexOf(Buffer.from([0x1a, 0x00, 0x03, 0xd0, 0x90]));
    expect(at).toBeGreaterThan(0);
    forged[at + 4] = 0x91;
    expect(kindOf(() => verifyDescriptor(forged, opts))).toBe("bad-signature");
    // Forged: another key's signature spliced into the envelope.
    const other = generateEd25519KeyPair();
    const env = decodeCanonical(bytes, { maxBytes: 4096 }) as Record<string, Uint8Array>;
    const otherEnv = decodeCanonical(createDescriptor({ ...fields(), secretKey: other.secretKey }), { maxBytes: 4096 }) as Record<string, Uint8Array>;
    expect(kindOf(() => verifyDescriptor(encodeCanonical({ ...env, sig: otherEnv["sig"] }), opts))).toBe("bad-signature");

    expect(kindOf(() => verifyDescriptor(bytes, { ...opts, now: NOW + 4 * 3600_000 }))).toBe("stale");
    expect(kindOf(() => verifyDescriptor(bytes, { ...opts, now: NOW - 10 * 60_000 }))).toBe("future-dated");
    expect(kindOf(() => verifyDescriptor(bytes, { ...opts, maxBytes: 100 }))).toBe("too-large");
    expect(kindOf(() => verifyDescriptor(Uint8Array.of(0xa0), opts))).toBe("malformed");
    expect(kindOf(() => verifyDescriptor(bytes, { now: NOW, isRegisteredAndStaked: new Set<string>() }))).toBe("not-registered");
    expect(kindOf(() => verifyDescriptor(bytes, { now: NOW, isRegisteredAndStaked: () => false }))).toBe("not-registered");
  });

  it("refuses to create descriptors with bad fields", () => {
    const make = (o: Partial<DescriptorFields>) => () => createDescriptor({ ...fields(o), secretKey: keys.secretKey });
    expect(kindOf(make({ country: "de" }))).toBe("malformed");
    expect(kindOf(make({ version: "has space" }))).toBe("malformed");
    expect(kindOf(make({ addresses: [] }))).toBe("malformed");
    expect(
      kindOf(
        make({
          addresses: [
            { host: "1.2.3.4", port: 1 },
            { host: "1.2.3.4", port: 1 },
          ],
        }),
      ),
    ).toBe("malformed");
    expect(kindOf(make({ roles: 16 }))).toBe("malformed");
    expect(kindOf(make({ onionKey: new Uint8Array(31) }))).toBe("malformed");
    expect(kindOf(make({ bandwidth: -1 }))).toBe("malformed");
  });
});

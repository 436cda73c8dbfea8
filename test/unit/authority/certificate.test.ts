/**
 * Access certificates: layout, threshold counting over the current authority
 * set, time window, chain binding, forgery, and fuzzed bytes.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bytesToHex } from "viem";
import {
  CertificateError,
  assembleCertificate,
  buildCertificateBody,
  decodeAccessCertificate,
  defaultCertificateThreshold,
  signCertificateBody,
  verifyAccessCertificate,
  verifyAccessCertificateWithConsensus,
  type CertificateErrorKind,
} from "../../../node/src/authority/certificate.js";
import { NodeFlag } from "../../../node/src/directory/config.js";
import { encodeCanonical } from "../../../node/src/wire/canonical.js";
import { CHAIN_ID, REGISTRY, makeAuthorities, makeIdentity } from "./helpers.js";
import { kindOf as anyKindOf } from "../../helpers/index.js";

const T0 = 1_800_000_000; // unix seconds
const authorities = makeAuthorities(4);
const outsider = makeAuthorities(1, "outsider")[0]!;
const alice = makeIdentity();
const current = authorities.slice(0, 3).map((a) => a.node.publicKey);

function body(overrides: Partial<{ notBefore: number; notAfter: number; chainId: number }> = {}) {
  return buildCertificateBody({ identity: alice.identity, chainId: CHAIN_ID, registry: REGISTRY, notBefore: T0, notAfter: T0 + 3600, ...overrides });
}

function certBy(signers: typeof authorities, bodyBytes = body().bodyBytes): Uint8Array {
  return assembleCertificate(
    bodyBytes,
    signers.map((a) => signCertificateBody(bodyBytes, a.node.secretKey)),
  );
}

const kindOf = (fn: () => unknown): CertificateErrorKind | "none" => anyKindOf(fn, CertificateError) ?? "none";

const verify = (cert: Uint8Array, nowSeconds = T0 + 10, threshold = 2) =>
  verifyAccessCertificate(cert, { now: nowSeconds * 1000, authorities: current, threshold, chainId: CHAIN_ID, registry: REGISTRY });

describe("access certificate", () => {
  it("round-trips and verifies with a threshold of current authorities", () => {
    const cert = certBy(authorities.slice(0, 3));
    const decoded = decodeAccessCertificate(cert);
    expect(decoded.body.identity).toBe(alice.identity);
    expect(decoded.body.identityId).toBe(alice.identityId);
    expect(decoded.signatures).toHaveLength(3);
    const verified = verify(cert);
    expect(verified.identity).toBe(alice.identity);
    expect(bytesToHex(verified.key)).toBe(bytesToHex(alice.keys.publicKey));
    expect(verified.authorities).toHaveLength(2); // stops once the threshold is met
    expect(verify(cert, T0 + 10, 3).authorities).toHaveLength(3);
    // Encoding is canonical: the same endorsements in any order give the same bytes.
    const b = body().bodyBytes;
    const sigs = authorities.slice(0, 3).map((a) => signCertificateBody(b, a.node.secretKey));
    expect(bytesToHex(assembleCertificate(b, [...sigs].reverse()))).toBe(bytesToHex(assembleCertificate(b, sigs)));
  });

  it("rejects expired and not-yet-valid certificates (with clock skew)", () => {
    const cert = certBy(authorities.slice(0, 3));
    expect(kindOf(() => verify(cert, T0 + 3600 + 59))).toBe("none");
    expect(kindOf(() => verify(cert, T0 + 3600 + 60))).toBe("expired");
    expect(kindOf(() => verify(cert, T0 - 60))).toBe("none");
    expect(kindOf(() => verify(cert, T0 - 61))).toBe("not-yet-valid");
    expect(kindOf(() => verify(certBy(authorities.slice(0, 3), body({ notAfter: T0 + 3 * 3600 }).bodyBytes)))).toBe("bad-validity");
    expect(kindOf(() => verify(certBy(authorities.slice(0, 3), body({ notAfter: T0 }).bodyBytes)))).toBe("bad-validity");
  });

  it("counts only distinct members of the current set", () => {
    // Signed by an outsider and one current authority: one counts.
    expect(kindOf(() => verify(certBy([outsider, authorities[0]!])))).toBe("below-threshold");
    // authorities[3] signed but has left the set (unstaked): it no longer counts.
    expect(kindOf(() => verify(certBy([authorities[0]!, authorities[3]!])))).toBe("below-threshold");
    // The same authority twice collapses to one signature.
    const b = body().bodyBytes;
    const one = signCertificateBody(b, authorities[0]!.node.secretKey);
    expect(decodeAccessCertificate(assembleCertificate(b, [one, one])).signatures).toHaveLength(1);
    expect(kindOf(() => verify(assembleCertificate(b, [one, one])))).toBe("below-threshold");
    expect(defaultCertificateThreshold(3)).toBe(2);
    expect(defaultCertificateThreshold(5)).toBe(3);
  });

  it("rejects a forged signature and a certificate for another chain", () => {
    const b = body().bodyBytes;
    const good = signCertificateBody(b, authorities[0]!.node.secretKey);
    // An outsider signs but claims to be authorities[1].
    const forged = { authority: authorities[1]!.node.publicKey, signature: signCertificateBody(b, outsider.node.secretKey).signature };
    expect(kindOf(() => verify(assembleCertificate(b, [good, forged])))).toBe("forged");
    // A signature over another body does not carry over.
    const other = body({ notAfter: T0 + 3000 }).bodyBytes;
    const moved = { ...signCertificateBody(other, authorities[1]!.node.secretKey) };
    expect(kindOf(() => verify(assembleCertificate(b, [good, moved])))).toBe("forged");
    expect(kindOf(() => verify(certBy(authorities.slice(0, 3), body({ chainId: 1 }).bodyBytes)))).toBe("wrong-chain");
  });

  it("rejects inconsistent bodies and non-canonical envelopes as malformed", () => {
    const { bodyBytes } = body();
    const bob = makeIdentity();
    // A body whose key is not the identity string's key.
    const tampered = encodeCanonical({ ...decodeMapOf(bodyBytes), key: bob.keys.publicKey });
    expect(kindOf(() => decodeAccessCertificate(encodeCanonical({ body: tampered, sigs: [], type: "access-cert", v: 1 })))).toBe("malformed");
    // Signatures out of order.
    const [s1, s2] = authorities.slice(0, 2).map((a) => signCertificateBody(bodyBytes, a.node.secretKey));
    const entries = [s1!, s2!].map((s) => ({ a: s.authority, s: s.signature })).sort((x, y) => (bytesToHex(x.a) < bytesToHex(y.a) ? 1 : -1));
    expect(kindOf(() => decodeAccessCertificate(encodeCanonical({ body: bodyBytes, sigs: entries, type: "access-cert", v: 1 })))).toBe("malformed");
    expect(kindOf(() => decodeAccessCertificate(new Uint8Array(5000)))).toBe("too-large");
  });

  it("gives a typed error for any fuzzed or mutated bytes", () => {
    const cert = certBy(authorities.slice(0, 3));
    const expected = new Set<string>(["malformed", "too-large", "expired", "not-yet-valid", "below-threshold", "forged", "wrong-chain", "bad-validity", "none"]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        expect(expected.has(kindOf(() => verify(bytes)))).toBe(true);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.nat(cert.length - 1), fc.integer({ min: 1, max: 255 }), (at, flip) => {
        const mutated = cert.slice();
        mutated[at] = mutated[at]! ^ flip;
        const kind = kindOf(() => verify(mutated));
        expect(expected.has(kind)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("counts against the authorities a consensus lists: a one-endorsement certificate from a young network's consensus falls short of a later one", () => {
    const listing = (keys: readonly Uint8Array[]) => ({
      entries: [
        ...keys.map((identity) => ({ identity, flags: NodeFlag.onion | NodeFlag.authority })),
        { identity: outsider.node.publicKey, flags: NodeFlag.onion },
      ],
    });
    const cert = certBy(authorities.slice(0, 1));
    const opts = { now: (T0 + 10) * 1000, chainId: CHAIN_ID, registry: REGISTRY };
    expect(verifyAccessCertificateWithConsensus(cert, listing(current.slice(0, 1)), opts).authorities).toHaveLength(1);
    expect(kindOf(() => verifyAccessCertificateWithConsensus(cert, listing(current), opts))).toBe("below-threshold");
    expect(verifyAccessCertificateWithConsensus(certBy(authorities.slice(0, 2)), listing(current), opts).authorities).toHaveLength(2);
    // A node without the authority flag does not count, and no consensus counts nobody.
    expect(kindOf(() => verifyAccessCertificateWithConsensus(certBy([outsider]), listing(current), opts))).toBe("below-threshold");
    expect(kindOf(() => verifyAccessCertificateWithConsensus(cert, undefined, opts))).toBe("below-threshold");
  });
});

function decodeMapOf(bytes: Uint8Array): Record<string, unknown> {
  const { body } = decodeAccessCertificate(encodeCanonical({ body: bytes, sigs: [], type: "access-cert", v: 1 }));
  return {
    chain: body.chainId,
    id: Buffer.from(body.identityId.slice(2), "hex"),
    identity: body.identity,
    key: body.key,
    na: body.notAfter,
    nb: body.notBefore,
    registry: Buffer.from(body.registry.slice(2), "hex"),
    v: 1,
  };
}

/**
 * The authority service against an in-memory PKI: challenges (single use,
 * expiry), proof of possession, identity status, rate limits, attestation
 * policy checks, and the message codec under fuzzed input.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bytesToHex, toHex, type Address } from "viem";
import { applicationId, recoverAttestationSigner } from "../../../node/src/chain/attestation.js";
import {
  AuthorityError,
  createAuthorityService,
  decodeAuthorityResponse,
  encodeAuthorityMessage,
  certificateProofMessage,
  localAuthorityTransport,
  remoteAttester,
  requestAccessCertificate,
  type AuthorityErrorKind,
  type AuthorityService,
} from "../../../node/src/authority/service.js";
import { buildCertificateBody, verifyAccessCertificate } from "../../../node/src/authority/certificate.js";
import { signRegistrationProof } from "../../../node/src/chain/registration.js";
import { ed25519Sign } from "../../../node/src/crypto/ed25519.js";
import { CHAIN_ID, REGISTRY, makeAuthorities, makeIdentity, memoryPki, type TestAuthority } from "./helpers.js";

const authorities = makeAuthorities(3);
const alice = makeIdentity();

function setup(opts: { now?: () => number; registered?: ReturnType<typeof makeIdentity>[]; authority?: TestAuthority; limits?: Parameters<typeof createAuthorityService>[0]["limits"] } = {}) {
  const pki = memoryPki(authorities, opts.registered ?? [alice]);
  const authority = opts.authority ?? authorities[0]!;
  const service = createAuthorityService({ pki, nodeSecretKey: authority.node.secretKey, signer: authority.signer, ...(opts.now ? { now: opts.now } : {}), ...(opts.limits ? { limits: opts.limits } : {}) });
  return { pki, service };
}

async function refusal(p: Promise<unknown> | (() => unknown)): Promise<AuthorityErrorKind | "none"> {
  try {
    await (typeof p === "function" ? p() : p);
    return "none";
  } catch (err) {
    if (err instanceof AuthorityError) return err.kind;
    throw err;
  }
}

function certRequest(service: AuthorityService, id = alice, overrides: { nowSeconds?: number; signWith?: Uint8Array; notAfter?: number } = {}) {
  const challenge = service.issueChallenge();
  const nb = overrides.nowSeconds ?? Math.floor(Date.now() / 1000);
  const { bodyBytes } = buildCertificateBody({ identity: id.identity, chainId: CHAIN_ID, registry: REGISTRY, notBefore: nb, notAfter: overrides.notAfter ?? nb + 3600 });
  const proof = ed25519Sign(overrides.signWith ?? id.keys.secretKey, certificateProofMessage(challenge, bodyBytes));
  return { nonce: challenge.nonce, body: bodyBytes, proof };
}

describe("certificate requests", () => {
  it("endorses an active identity that proves its key, once per challenge", async () => {
    const { service } = setup();
    const request = certRequest(service);
    const sig = await service.handleCertificateRequest(request);
    expect(bytesToHex(sig.authority)).toBe(authorities[0]!.nodeKey);
    expect(await refusal(service.handleCertificateRequest(request))).toBe("challenge-reused");
    expect(await refusal(service.handleCertificateRequest({ ...request, nonce: new Uint8Array(32) }))).toBe("unknown-challenge");
  });

  it("refuses an expired challenge", async () => {
    let t = Date.now();
    const { service } = setup({ now: () => t });
    const request = certRequest(service);
    t += 61_000;
    expect(await refusal(service.handleCertificateRequest(request))).toBe("challenge-expired");
  });

  it("gives nothing to a client that cannot prove its key", async () => {
    const { service } = setup();
    const mallory = makeIdentity();
    expect(await refusal(service.handleCertificateRequest(certRequest(service, alice, { signWith: mallory.keys.secretKey })))).toBe("bad-proof");
    // A proof made for another authority's challenge does not transfer.
    const other = setup({ authority: authorities[1]! }).service;
    const forOther = certRequest(other);
    const challenge = service.issueChallenge();
    expect(await refusal(service.handleCertificateRequest({ ...forOther, nonce: challenge.nonce }))).toBe("bad-proof");
  });

  it("refuses unregistered, revoked and rotated identities, bad windows and other chains", async () => {
    const { service, pki } = setup();
    const bob = makeIdentity();
    expect(await refusal(service.handleCertificateRequest(certRequest(service, bob)))).toBe("identity-not-registered");
    pki.state.identities.get(alice.identityId)!.status = "revoked";
    expect(await refusal(service.handleCertificateRequest(certRequest(service)))).toBe("identity-revoked");
    pki.state.identities.get(alice.identityId)!.status = "rotated";
    expect(await refusal(service.handleCertificateRequest(certRequest(service)))).toBe("identity-rotated");
    pki.state.identities.get(alice.identityId)!.status = "active";
    const now = Math.floor(Date.now() / 1000);
    expect(await refusal(service.handleCertificateRequest(certRequest(service, alice, { notAfter: now + 24 * 3600 })))).toBe("bad-validity");
    expect(await refusal(service.handleCertificateRequest(certRequest(service, alice, { nowSeconds: now - 3000 })))).toBe("bad-validity");
    const challenge = service.issueChallenge();
    const { bodyBytes } = buildCertificateBody({ identity: alice.identity, chainId: 1, registry: REGISTRY, notBefore: now, notAfter: now + 3600 });
    const proof = ed25519Sign(alice.keys.secretKey, certificateProofMessage(challenge, bodyBytes));
    expect(await refusal(service.handleCertificateRequest({ nonce: challenge.nonce, body: bodyBytes, proof }))).toBe("wrong-chain");
  });

  it("refuses to sign when this node is not a current authority", async () => {
    const outsider = makeAuthorities(1, "outsider")[0]!;
    const { service } = setup({ authority: outsider });
    expect(await refusal(service.handleCertificateRequest(certRequest(service)))).toBe("not-an-authority");
  });

  it("rate-limits per client and per identity key, with a retry time", async () => {
    let t = Date.now();
    const { service } = setup({ now: () => t, limits: { burst: 2, requestsPerMinute: 6 } });
    service.issueChallenge({ client: "peer-a" });
    service.issueChallenge({ client: "peer-a" });
    try {
      service.issueChallenge({ client: "peer-a" });
      expect.unreachable();
    } catch (err) {
      expect((err as AuthorityError).kind).toBe("rate-limited");
      expect((err as AuthorityError).retryAfterMs).toBeGreaterThan(0);
    }
    service.issueChallenge({ client: "peer-b" }); // other clients are unaffected
    await service.handleCertificateRequest(certRequest(service));
    await service.handleCertificateRequest(certRequest(service));
    expect(await refusal(service.handleCertificateRequest(certRequest(service)))).toBe("rate-limited");
    t += 10_000; // 6 per minute: one token back after 10 s
    await service.handleCertificateRequest(certRequest(service));
  });

  it("caps outstanding challenges", async () => {
    const { service } = setup({ limits: { maxOutstandingChallenges: 3 } });
    for (let i = 0; i < 3; i++) service.issueChallenge();
    expect(await refusal(() => service.issueChallenge())).toBe("busy");
  });

  it("gathers a certificate over the message transport from a threshold of authorities", async () => {
    const pki = memoryPki(authorities, [alice]);
    const services = [...authorities, makeAuthorities(1, "outsider")[0]!].map((a) => createAuthorityService({ pki, nodeSecretKey: a.node.secretKey, signer: a.signer }));
    const issued = await requestAccessCertificate({
      transports: services.map((s) => localAuthorityTransport(s)),
      identity: alice.identity,
      identitySecretKey: alice.keys.secretKey,
      chainId: CHAIN_ID,
      registry: REGISTRY,
      authorities: authorities.map((a) => a.node.publicKey),
      threshold: 2,
    });
    expect(issued.refusals.map((r) => r.kind)).toEqual(["not-an-authority"]);
    expect(verifyAccessCertificate(issued.certificate, { now: Date.now(), authorities: authorities.map((a) => a.nodeKey), threshold: 3 }).authorities).toHaveLength(3);
    const bob = makeIdentity();
    const failed = await refusal(
      requestAccessCertificate({
        transports: services.map((s) => localAuthorityTransport(s)),
        identity: bob.identity,
        identitySecretKey: bob.keys.secretKey,
        chainId: CHAIN_ID,
        registry: REGISTRY,
        authorities: authorities.map((a) => a.node.publicKey),
        threshold: 2,
      }),
    );
    expect(failed).toBe("not-enough-authorities");
  });
});

describe("attestation requests", () => {
  const owner = "0x00000000000000000000000000000000000000c1" as Address;
  const ctxFor = (key: Uint8Array, deadline = BigInt(Math.floor(Date.now() / 1000) + 600)) => ({
    chainId: CHAIN_ID,
    registry: REGISTRY,
    registration: { owner, namespace: "peerstream", application: "client", kind: 0, key: toHex(key), deadline },
  });

  it("attests a fresh key whose owner proves possession", async () => {
    const { service } = setup();
    const bob = makeIdentity();
    const ctx = ctxFor(bob.keys.publicKey);
    const attest = remoteAttester(localAuthorityTransport(service));
    const attestation = await attest(ctx, signRegistrationProof(bob.keys.secretKey, ctx));
    expect(attestation.signer).toBe(authorities[0]!.signer.address);
    expect(await recoverAttestationSigner(ctx, attestation.signature)).toBe(authorities[0]!.signer.address);
  });

  it("refuses a bad proof, a taken key, an unknown application, a far deadline and another chain", async () => {
    const { service, pki } = setup();
    const attest = remoteAttester(localAuthorityTransport(service));
    const bob = makeIdentity();
    const ctx = ctxFor(bob.keys.publicKey);
    expect(await refusal(attest(ctx, signRegistrationProof(alice.keys.secretKey, ctx)))).toBe("bad-proof");
    const taken = ctxFor(alice.keys.publicKey);
    expect(await refusal(attest(taken, signRegistrationProof(alice.keys.secretKey, taken)))).toBe("identity-exists");
    const unknownApp = { ...ctx, registration: { ...ctx.registration, application: "nope" } };
    expect(await refusal(attest(unknownApp, signRegistrationProof(bob.keys.secretKey, unknownApp)))).toBe("application-not-found");
    const far = ctxFor(bob.keys.publicKey, BigInt(Math.floor(Date.now() / 1000) + 3 * 24 * 3600));
    expect(await refusal(attest(far, signRegistrationProof(bob.keys.secretKey, far)))).toBe("deadline-out-of-range");
    const otherChain = { ...ctx, chainId: 1 };
    expect(await refusal(attest(otherChain, signRegistrationProof(bob.keys.secretKey, otherChain)))).toBe("wrong-chain");
    // Restricted application: neither owner nor submitter is a registrar.
    pki.state.applications.get(applicationId("peerstream", "client").toLowerCase())!.policy = "restricted";
    expect(await refusal(attest(ctx, signRegistrationProof(bob.keys.secretKey, ctx)))).toBe("policy-forbids");
    pki.state.registrars.add(`${applicationId("peerstream", "client").toLowerCase()}:${owner.toLowerCase()}`);
    expect(await refusal(attest(ctx, signRegistrationProof(bob.keys.secretKey, ctx)))).toBe("none");
  });
});

describe("authority messages", () => {
  it("answers every fuzzed request with a typed error message, never a throw", async () => {
    const { service } = setup();
    const kinds = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        const response = decodeAuthorityResponse(await service.handleMessage(bytes, { client: "fuzz" }));
        expect(response.t).toBe("error");
        if (response.t === "error") kinds.add(response.kind);
      }),
      { numRuns: 200 },
    );
    expect([...kinds].every((k) => ["malformed-request", "rate-limited", "unknown-message"].includes(k))).toBe(true);
    const big = await service.handleMessage(new Uint8Array(5000));
    expect(decodeAuthorityResponse(big)).toMatchObject({ t: "error", kind: "too-large" });
    const unknown = await service.handleMessage(encodeAuthorityMessage({ t: "error", kind: "x", message: "y" }));
    expect(decodeAuthorityResponse(unknown)).toMatchObject({ t: "error", kind: "unknown-message" });
  });
});

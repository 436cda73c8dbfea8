/**
 * The authority service, independent of transport: identity-registration
 * attestations and access-certificate endorsements, with single-use
 * challenges, per-client rate limits and a typed refusal for every reason.
 *
 * Owns the request/response messages (canonical CBOR maps, at most
 * MAX_AUTHORITY_MESSAGE_BYTES, each with "t" naming it and "v": 1):
 *
 *   challenge-request  { }                                       -> challenge
 *   challenge          { authority: bstr32, expires: uint ms, nonce: bstr32 }
 *   cert-request       { body: bstr, nonce: bstr32, proof: bstr64 } -> cert-endorsement
 *   cert-endorsement   { authority: bstr32, sig: bstr64 }
 *   attest-request     { application: tstr, chain: uint, deadline: uint, key: bstr32, kind: uint,
 *                        namespace: tstr, owner: bstr20, proof: bstr64, registry: bstr20,
 *                        submitter: bstr20 (optional) }        -> attestation
 *   attestation        { signature: bstr65, signer: bstr20 }
 *   error              { kind: tstr, message: tstr, retryAfterMs: uint (optional) }
 *
 * `handleMessage(bytes, { client })` answers any request with the response
 * bytes (an `error` message on refusal), so a link or circuit can carry them
 * as they are; `client` is whatever the transport knows about the peer and
 * keys the first rate limit.
 *
 * Certificate proof of possession: the identity key signs the signed-document
 * message of type "access-cert-proof" over { authority, cert: body, nonce }, so
 * a proof is bound to one challenge of one authority for one body.
 *
 * Trusts: the Pki for chain facts, its own clock, and nothing in a request.
 * Checks are ordered cheapest first; the Ed25519 proof is checked before any
 * per-identity limit (so nobody can exhaust someone else's budget) and before
 * any chain read.
 */
import { bytesToHex, getAddress, hexToBytes, type Address, type Hex, type LocalAccount } from "viem";
import { layerError } from "../errors.js";
import type { KindCategories, PspErrorOptions } from "../errors.js";
import { randomBytes as secureRandomBytes } from "../crypto/backend.js";
import { ed25519PublicKey, ed25519Sign, ed25519Verify } from "../crypto/ed25519.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import { KeyedRateLimiter } from "../base/token-bucket.js";
import { decodeCanonical, encodeCanonical, type CanonicalValue } from "../wire/canonical.js";
import { documentSigningMessage } from "../wire/document.js";
import { cborReaders, isCborMap } from "../wire/fields.js";
import {
  applicationId as computeApplicationId,
  identityId as computeIdentityId,
  signAttestation, validateRegistration, type AttestationContext, type Registration, type SignedAttestation } from "../chain/attestation.js";
import {
  DEFAULT_CERT_VALIDITY_SECONDS,
  assembleCertificate,
  buildCertificateBody,
  decodeCertificateBody,
  endorsementMessage,
  verifyAccessCertificate,
  verifyEndorsement,
  type AuthoritySignature,
  type VerifiedCertificate,
} from "./certificate.js";
import type { Pki } from "../chain/pki.js";
import { verifyRegistrationProof } from "../chain/registration.js";

export const MAX_AUTHORITY_MESSAGE_BYTES = 2048;
export const AUTHORITY_MESSAGE_VERSION = 1;
export const CERT_PROOF_TYPE = "access-cert-proof";
const NONCE_LEN = 32;

export type AuthorityErrorKind =
  | "too-large"
  | "malformed-request"
  | "unknown-message"
  | "rate-limited"
  /** Too many challenges outstanding; retry shortly. */
  | "busy"
  | "unknown-challenge"
  | "challenge-expired"
  | "challenge-reused"
  | "wrong-chain"
  | "bad-validity"
  | "bad-proof"
  /** This node is not in the current authority set; its signature would not count. */
  | "not-an-authority"
  | "identity-not-registered"
  /** Registered, but not yet under the confirmation depth. */
  | "identity-unconfirmed"
  | "identity-revoked"
  | "identity-rotated"
  | "application-not-found"
  | "policy-forbids"
  | "identity-exists"
  | "deadline-out-of-range"
  | "chain-unavailable"
  /** Client side: a response of an unknown kind or shape. */
  | "bad-response"
  /** Client side: the transport could not reach the authority or it did not answer in time. */
  | "unreachable"
  /** Client side: fewer authorities answered than the threshold. */
  | "not-enough-authorities";

/**
 * The service's refusals travel to the client with their kind: a request
 * that is malformed, for another chain, with a window out of bounds or a bad
 * proof is the sender's doing (and, to a client, an authority that refuses
 * a well-formed request so is one to drop); the chain's answers (not
 * registered, revoked, forbidden) are refusals; limits and a chain view that
 * has not caught up are worth a retry (after `retryAfterMs` when given).
 * Kinds shared with CertificateError have its category.
 */
const AUTHORITY_CATEGORIES = {
  "too-large": "peer",
  "malformed-request": "peer",
  "unknown-message": "peer",
  "rate-limited": "transient",
  busy: "transient",
  "unknown-challenge": "transient",
  "challenge-expired": "transient",
  "challenge-reused": "peer",
  "wrong-chain": "peer",
  "bad-validity": "peer",
  "bad-proof": "peer",
  "not-an-authority": "refused",
  "identity-not-registered": "refused",
  "identity-unconfirmed": "transient",
  "identity-revoked": "refused",
  "identity-rotated": "refused",
  "application-not-found": "refused",
  "policy-forbids": "refused",
  "identity-exists": "refused",
  "deadline-out-of-range": "refused",
  "chain-unavailable": "transient",
  "bad-response": "peer",
  unreachable: "transient",
  "not-enough-authorities": "transient",
} as const satisfies KindCategories<AuthorityErrorKind>;

export class AuthorityError extends layerError<AuthorityErrorKind>("authority", AUTHORITY_CATEGORIES) {
  /** For "not-enough-authorities": why each authority that did not sign refused. */
  readonly refusals: readonly AuthorityError[];

  constructor(kind: AuthorityErrorKind, message: string, options?: PspErrorOptions & { refusals?: readonly AuthorityError[] }) {
    super(kind, message, options);
    this.refusals = options?.refusals ?? [];
  }
}

/** Kinds only the client side raises; every other kind is a refusal an authority may send. */
const CLIENT_SIDE_KINDS: readonly AuthorityErrorKind[] = ["bad-response", "unreachable", "not-enough-authorities"];
const REFUSAL_KINDS = new Set<string>(AuthorityError.kinds.filter((kind) => !CLIENT_SIDE_KINDS.includes(kind)));

// ---------------------------------------------------------------- messages

export interface Challenge {
  authority: Uint8Array;
  nonce: Uint8Array;
  /** Unix ms after which the authority refuses it. */
  expires: number;
}

export interface CertificateRequest {
  nonce: Uint8Array;
  body: Uint8Array;
  proof: Uint8Array;
}

export interface AttestationRequest {
  chainId: number;
  registry: Address;
  registration: Registration;
  /** Ed25519 proof of possession (registration.ts). */
  proof: Uint8Array;
  /** The account that will send the transaction, when it is not the owner (Restricted applications). */
  submitter?: Address;
}

export type AuthorityRequest =
  | { t: "challenge-request" }
  | ({ t: "cert-request" } & CertificateRequest)
  | ({ t: "attest-request" } & AttestationRequest);

export type AuthorityResponse =
  | ({ t: "challenge" } & Challenge)
  | ({ t: "cert-endorsement" } & AuthoritySignature)
  | ({ t: "attestation" } & SignedAttestation)
  | { t: "error"; kind: string; message: string; retryAfterMs?: number };

/** Encodes a request or response as its canonical CBOR message. */
export function encodeAuthorityMessage(msg: AuthorityRequest | AuthorityResponse): Uint8Array {
  const v = AUTHORITY_MESSAGE_VERSION;
  switch (msg.t) {
    case "challenge-request":
      return encodeCanonical({ t: msg.t, v });
    case "challenge":
      return encodeCanonical({ t: msg.t, v, authority: msg.authority, nonce: msg.nonce, expires: msg.expires });
    case "cert-request":
      return encodeCanonical({ t: msg.t, v, nonce: msg.nonce, body: msg.body, proof: msg.proof });
    case "cert-endorsement":
      return encodeCanonical({ t: msg.t, v, authority: msg.authority, sig: msg.signature });
    case "attest-request": {
      const r = msg.registration;
      return encodeCanonical({
        t: msg.t,
        v,
        chain: msg.chainId,
        registry: hexToBytes(msg.registry),
        owner: hexToBytes(r.owner),
        namespace: r.namespace,
        application: r.application,
        kind: r.kind,
        key: hexToBytes(r.key),
        deadline: r.deadline,
        proof: msg.proof,
        submitter: msg.submitter === undefined ? undefined : hexToBytes(msg.submitter),
      });
    }
    case "attestation":
      return encodeCanonical({ t: msg.t, v, signer: hexToBytes(msg.signer), signature: hexToBytes(msg.signature) });
    case "error":
      return encodeCanonical({ t: msg.t, v, kind: msg.kind, message: msg.message.slice(0, 512), retryAfterMs: msg.retryAfterMs });
  }
}

const bad = (message: string) => new AuthorityError("malformed-request", message);

function decodeMap(bytes: Uint8Array): Record<string, CanonicalValue> {
  if (!(bytes instanceof Uint8Array)) throw bad("a message is bytes");
  if (bytes.length > MAX_AUTHORITY_MESSAGE_BYTES) {
    throw new AuthorityError("too-large", `message is ${bytes.length} bytes, above the ${MAX_AUTHORITY_MESSAGE_BYTES}-byte limit`);
  }
  let raw: CanonicalValue;
  try {
    raw = decodeCanonical(bytes, { maxBytes: MAX_AUTHORITY_MESSAGE_BYTES, maxDepth: 2 });
  } catch (err) {
    throw new AuthorityError("malformed-request", `message is not canonical CBOR: ${(err as Error).message}`, { cause: err });
  }
  if (!isCborMap(raw)) throw bad("a message is a CBOR map");
  if (raw.v !== AUTHORITY_MESSAGE_VERSION) throw bad(`message version ${String(raw.v)} is not ${AUTHORITY_MESSAGE_VERSION}`);
  if (typeof raw.t !== "string") throw bad('a message names its type in "t"');
  return raw;
}

const { readMap, readBytes, readText, readUint } = cborReaders(bad);

/** Checks that a message holds exactly "t", "v", the required fields and any of the optional ones. */
function fields(map: Record<string, CanonicalValue>, required: string[], optional: string[] = []): void {
  readMap(map, `"${map.t as string}"`, ["t", "v", ...required], optional);
}

const bytesField = (map: Record<string, CanonicalValue>, key: string, length: number): Uint8Array => readBytes(map[key], `"${key}"`, length);
const stringField = (map: Record<string, CanonicalValue>, key: string, maxLength = 64): string => readText(map[key], `"${key}"`, maxLength);
const uintField = (map: Record<string, CanonicalValue>, key: string): number => readUint(map[key], `"${key}"`);

/** Decodes a request; throws AuthorityError "too-large", "malformed-request" or "unknown-message". */
export function decodeAuthorityRequest(bytes: Uint8Array): AuthorityRequest {
  const map = decodeMap(bytes);
  switch (map.t) {
    case "challenge-request":
      fields(map, []);
      return { t: "challenge-request" };
    case "cert-request": {
      fields(map, ["nonce", "body", "proof"]);
      const body = map.body;
      if (!(body instanceof Uint8Array)) throw bad('"body" must be a byte string');
      return { t: "cert-request", nonce: bytesField(map, "nonce", NONCE_LEN), body, proof: bytesField(map, "proof", 64) };
    }
    case "attest-request": {
      fields(map, ["chain", "registry", "owner", "namespace", "application", "kind", "key", "deadline", "proof"], ["submitter"]);
      const deadline = map.deadline;
      if (typeof deadline !== "number" && typeof deadline !== "bigint") throw bad('"deadline" must be an unsigned integer');
      const request: AttestationRequest = {
        chainId: uintField(map, "chain"),
        registry: getAddress(bytesToHex(bytesField(map, "registry", 20))),
        registration: {
          owner: getAddress(bytesToHex(bytesField(map, "owner", 20))),
          namespace: stringField(map, "namespace"),
          application: stringField(map, "application"),
          kind: uintField(map, "kind"),
          key: bytesToHex(bytesField(map, "key", 32)),
          deadline: BigInt(deadline),
        },
        proof: bytesField(map, "proof", 64),
      };
      if (map.submitter !== undefined) request.submitter = getAddress(bytesToHex(bytesField(map, "submitter", 20)));
      return { t: "attest-request", ...request };
    }
    default:
      throw new AuthorityError("unknown-message", `unknown request type ${JSON.stringify(String(map.t).slice(0, 32))}`);
  }
}

/** Decodes a response; an `error` response comes back as a value, not thrown. */
export function decodeAuthorityResponse(bytes: Uint8Array): AuthorityResponse {
  let map: Record<string, CanonicalValue>;
  try {
    map = decodeMap(bytes);
  } catch (err) {
    throw new AuthorityError("bad-response", `authority response is not a valid message: ${(err as Error).message}`, { cause: err });
  }
  try {
    switch (map.t) {
      case "challenge":
        fields(map, ["authority", "nonce", "expires"]);
        return { t: "challenge", authority: bytesField(map, "authority", 32), nonce: bytesField(map, "nonce", NONCE_LEN), expires: uintField(map, "expires") };
      case "cert-endorsement":
        fields(map, ["authority", "sig"]);
        return { t: "cert-endorsement", authority: bytesField(map, "authority", 32), signature: bytesField(map, "sig", 64) };
      case "attestation":
        fields(map, ["signer", "signature"]);
        return { t: "attestation", signer: getAddress(bytesToHex(bytesField(map, "signer", 20))), signature: bytesToHex(bytesField(map, "signature", 65)) };
      case "error": {
        fields(map, ["kind", "message"], ["retryAfterMs"]);
        const out: AuthorityResponse = { t: "error", kind: stringField(map, "kind"), message: stringField(map, "message", 512) };
        if (map.retryAfterMs !== undefined) out.retryAfterMs = uintField(map, "retryAfterMs");
        return out;
      }
      default:
        throw bad(`unknown response type ${JSON.stringify(String(map.t).slice(0, 32))}`);
    }
  } catch (err) {
    if (err instanceof AuthorityError && err.kind !== "bad-response") {
      throw new AuthorityError("bad-response", `authority response is malformed: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/** The bytes an identity key signs to answer `challenge` for `bodyBytes`. */
export function certificateProofMessage(challenge: Pick<Challenge, "authority" | "nonce">, bodyBytes: Uint8Array): Uint8Array {
  return documentSigningMessage(CERT_PROOF_TYPE, encodeCanonical({ authority: challenge.authority, cert: bodyBytes, nonce: challenge.nonce }));
}

// ---------------------------------------------------------------- the service

export interface AuthorityLimits {
  /** How long a challenge may be answered. */
  challengeTtlMs: number;
  /** Challenges outstanding at once, across all clients. */
  maxOutstandingChallenges: number;
  /** Longest certificate window this authority signs (seconds). */
  maxCertValiditySeconds: number;
  /** How far a requested notBefore may be from this authority's clock (seconds). */
  maxNotBeforeSkewSeconds: number;
  /** Latest attestation deadline accepted, from now (seconds). */
  maxAttestationDeadlineSeconds: number;
  /** Sustained requests per client and per identity key, per minute. */
  requestsPerMinute: number;
  /** Requests a client or key may make in a burst. */
  burst: number;
  /** Rate-limit buckets kept (the oldest are dropped first). */
  maxTrackedClients: number;
}

export const DEFAULT_AUTHORITY_LIMITS: AuthorityLimits = {
  challengeTtlMs: 60_000,
  maxOutstandingChallenges: 10_000,
  maxCertValiditySeconds: DEFAULT_CERT_VALIDITY_SECONDS + 300,
  maxNotBeforeSkewSeconds: 300,
  maxAttestationDeadlineSeconds: 24 * 3600,
  requestsPerMinute: 30,
  burst: 10,
  maxTrackedClients: 100_000,
};

export interface AuthorityServiceOptions {
  pki: Pki;
  /** This node's Ed25519 identity seed: its NodeRegistry key signs endorsements. */
  nodeSecretKey: Uint8Array;
  /** This node's EVM signer: it signs EIP-712 attestations. */
  signer: Pick<LocalAccount, "address" | "signTypedData">;
  limits?: Partial<AuthorityLimits>;
  /** Clock in ms; default Date.now. */
  now?: () => number;
  /** Nonce source; default the crypto layer's CSPRNG. */
  randomBytes?: (length: number) => Uint8Array;
  /** Logs as component "authority": refusals at debug (counted), an unreadable chain at warn, an unexpected failure at error. */
  logger?: Logger;
}

export interface RequestContext {
  /** What the transport knows of the peer (link identity, circuit id): the first rate-limit key. */
  client?: string;
}

export interface AuthorityService {
  /** This authority's Ed25519 node key. */
  readonly nodeKey: Uint8Array;
  readonly signerAddress: Address;
  issueChallenge(ctx?: RequestContext): Challenge;
  handleCertificateRequest(request: CertificateRequest, ctx?: RequestContext): Promise<AuthoritySignature>;
  handleAttestationRequest(request: AttestationRequest, ctx?: RequestContext): Promise<SignedAttestation>;
  /** Any request in, response bytes out (an `error` message on refusal); never throws for bad input. */
  handleMessage(bytes: Uint8Array, ctx?: RequestContext): Promise<Uint8Array>;
}

/** A request budget per key (client, identity); a spent one is refused "rate-limited" with when to retry. */
function requestBudgets(limits: AuthorityLimits): { take(key: string, now: number, what: string): void } {
  const budgets = new KeyedRateLimiter({ requestsPerMinute: limits.requestsPerMinute, burst: limits.burst, maxKeys: limits.maxTrackedClients });
  return {
    take(key, now, what) {
      const retryAfterMs = budgets.take(key, now);
      if (retryAfterMs > 0) throw new AuthorityError("rate-limited", `too many requests from ${what}: retry in ${Math.ceil(retryAfterMs / 1000)} s`, { retryAfterMs });
    },
  };
}

/** Creates the transport-free authority service of one authority node. */
export function createAuthorityService(opts: AuthorityServiceOptions): AuthorityService {
  const limits: AuthorityLimits = { ...DEFAULT_AUTHORITY_LIMITS, ...opts.limits };
  const now = opts.now ?? Date.now;
  const random = opts.randomBytes ?? secureRandomBytes;
  const log = childLogger(opts.logger, "authority");
  const { pki } = opts;
  const nodeKey = ed25519PublicKey(opts.nodeSecretKey);
  const nodeKeyHex = bytesToHex(nodeKey);
  const signerAddress = getAddress(opts.signer.address);
  const registryAddress = getAddress(pki.identityRegistry);
  const clients = requestBudgets(limits);
  const keys = requestBudgets(limits);
  // Insertion order is expiry order (one TTL for all), so sweeping from the front is enough.
  const challenges = new Map<string, { expires: number; used: boolean }>();

  const sweep = (t: number) => {
    for (const [nonce, c] of challenges) {
      if (c.expires > t) break;
      challenges.delete(nonce);
    }
  };

  const chain = async <T>(read: () => Promise<T>): Promise<T> => {
    try {
      return await read();
    } catch (err) {
      if (err instanceof AuthorityError) throw err;
      throw new AuthorityError("chain-unavailable", "the authority cannot read the chain right now: retry later", { cause: err, retryAfterMs: 5_000 });
    }
  };

  const requireAuthority = async (by: "node" | "signer") => {
    const set = await chain(() => pki.currentAuthorities());
    const member = set.members.some((m) => (by === "node" ? m.nodeKey === nodeKeyHex : getAddress(m.signer) === signerAddress));
    if (!member) {
      throw new AuthorityError("not-an-authority", `this node (${nodeKeyHex}) is not in the current authority set: its signature would not count; ask another authority`);
    }
  };

  const service: AuthorityService = {
    nodeKey,
    signerAddress,

    issueChallenge(ctx = {}) {
      const t = now();
      if (ctx.client !== undefined) clients.take(`client:${ctx.client}`, t, "this client");
      sweep(t);
      if (challenges.size >= limits.maxOutstandingChallenges) {
        throw new AuthorityError("busy", "too many challenges outstanding: retry shortly", { retryAfterMs: 1_000 });
      }
      const nonce = random(NONCE_LEN);
      const expires = t + limits.challengeTtlMs;
      challenges.set(bytesToHex(nonce), { expires, used: false });
      return { authority: nodeKey, nonce, expires };
    },

    async handleCertificateRequest(request, ctx = {}) {
      const t = now();
      if (ctx.client !== undefined) clients.take(`client:${ctx.client}`, t, "this client");
      // The challenge is spent by this request whatever its outcome: one attempt per challenge.
      const nonceHex = bytesToHex(request.nonce);
      const challenge = challenges.get(nonceHex);
      if (!challenge) throw new AuthorityError("unknown-challenge", "this authority did not issue that challenge (or it was swept after expiring): request a new one");
      if (challenge.used) throw new AuthorityError("challenge-reused", "that challenge was already answered: request a new one for every certificate request");
      challenge.used = true;
      if (challenge.expires <= t) throw new AuthorityError("challenge-expired", `the challenge expired ${t - challenge.expires} ms ago: request a new one`);

      let body;
      try {
        body = decodeCertificateBody(request.body);
      } catch (err) {
        throw new AuthorityError("malformed-request", `certificate body: ${(err as Error).message}`, { cause: err });
      }
      if (body.chainId !== pki.chainId || body.registry !== registryAddress) {
        throw new AuthorityError("wrong-chain", `this authority serves chain ${pki.chainId}, registry ${pki.identityRegistry}; the body names chain ${body.chainId}, registry ${body.registry}`);
      }
      const nowSeconds = Math.floor(t / 1000);
      if (body.notAfter <= body.notBefore || body.notAfter - body.notBefore > limits.maxCertValiditySeconds) {
        throw new AuthorityError("bad-validity", `a certificate window is at most ${limits.maxCertValiditySeconds} s and not empty`);
      }
      if (Math.abs(body.notBefore - nowSeconds) > limits.maxNotBeforeSkewSeconds) {
        throw new AuthorityError("bad-validity", `notBefore ${body.notBefore} is more than ${limits.maxNotBeforeSkewSeconds} s from this authority's clock (${nowSeconds}): check your clock`);
      }
      if (!ed25519Verify(body.key, certificateProofMessage({ authority: nodeKey, nonce: request.nonce }, request.body), request.proof)) {
        throw new AuthorityError("bad-proof", "the proof does not verify under the identity's key for this challenge and body");
      }
      keys.take(`key:${bytesToHex(body.key)}`, t, "this identity");
      await requireAuthority("node");
      const identity = await chain(() => pki.getIdentity(body.identityId));
      switch (identity.status) {
        case "none":
          throw new AuthorityError("identity-not-registered", `identity ${body.identity} is not registered on chain ${pki.chainId}: register it first (psp identity register)`);
        case "revoked":
          throw new AuthorityError("identity-revoked", `identity ${body.identity} was revoked by its owner`);
        case "rotated":
          throw new AuthorityError("identity-rotated", `identity ${body.identity} was rotated to ${identity.successor}: use the new key`);
        case "active":
          if (!identity.activeConfirmed) {
            throw new AuthorityError("identity-unconfirmed", "the registration is not yet buried under enough blocks: retry in a few blocks", { retryAfterMs: 5_000 });
          }
      }
      return { authority: nodeKey, signature: ed25519Sign(opts.nodeSecretKey, endorsementMessage(nodeKey, request.body)) };
    },

    async handleAttestationRequest(request, ctx = {}) {
      const t = now();
      if (ctx.client !== undefined) clients.take(`client:${ctx.client}`, t, "this client");
      if (request.chainId !== pki.chainId || getAddress(request.registry) !== getAddress(pki.identityRegistry)) {
        throw new AuthorityError("wrong-chain", `this authority attests for chain ${pki.chainId}, registry ${pki.identityRegistry}`);
      }
      let registration: Registration;
      try {
        registration = validateRegistration(request.registration);
      } catch (err) {
        throw new AuthorityError("malformed-request", (err as Error).message, { cause: err });
      }
      const nowSeconds = BigInt(Math.floor(t / 1000));
      if (registration.deadline <= nowSeconds || registration.deadline > nowSeconds + BigInt(limits.maxAttestationDeadlineSeconds)) {
        throw new AuthorityError("deadline-out-of-range", `the deadline must be in the future and at most ${limits.maxAttestationDeadlineSeconds} s away`);
      }
      const attestationCtx: AttestationContext = { chainId: pki.chainId, registry: pki.identityRegistry, registration };
      if (!verifyRegistrationProof(attestationCtx, request.proof)) {
        throw new AuthorityError("bad-proof", "the Ed25519 proof of possession does not verify for this key, owner, chain and registry");
      }
      keys.take(`key:${registration.key.toLowerCase()}`, t, "this identity key");
      await requireAuthority("signer");
      const app = await chain(() => pki.applicationPolicy(applicationIdOf(registration)));
      if (!app.exists) {
        throw new AuthorityError("application-not-found", `application ${registration.namespace}.${registration.application} is not registered`);
      }
      if (app.policy === "restricted") {
        const candidates = [registration.owner, ...(request.submitter ? [request.submitter] : [])];
        let allowed = false;
        for (const account of candidates) if (!allowed && (await chain(() => pki.isRegistrar(app.applicationId, account)))) allowed = true;
        if (!allowed) {
          throw new AuthorityError("policy-forbids", `${registration.namespace}.${registration.application} is Restricted and neither the owner nor the submitter is an approved registrar`);
        }
      }
      const id = computeIdentityId(registration);
      const existing = await chain(() => pki.getIdentity(id));
      if (existing.status === "revoked") throw new AuthorityError("identity-revoked", "this key was registered and revoked; a revoked key can never be registered again");
      if (existing.status !== "none") throw new AuthorityError("identity-exists", `identity ${id} is already registered (${existing.status})`);
      return await signAttestation(opts.signer, attestationCtx);
    },

    async handleMessage(bytes, ctx = {}) {
      try {
        const request = decodeAuthorityRequest(bytes);
        switch (request.t) {
          case "challenge-request":
            return encodeAuthorityMessage({ t: "challenge", ...service.issueChallenge(ctx) });
          case "cert-request":
            return encodeAuthorityMessage({ t: "cert-endorsement", ...(await service.handleCertificateRequest(request, ctx)) });
          case "attest-request":
            return encodeAuthorityMessage({ t: "attestation", ...(await service.handleAttestationRequest(request, ctx)) });
        }
      } catch (err) {
        const refusal =
          err instanceof AuthorityError
            ? err
            : new AuthorityError("malformed-request", `request refused: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        // A client's bad or refused request is counted; our chain being down is the operator's business; anything untyped is a bug of ours.
        const level = !(err instanceof AuthorityError) ? "error" : refusal.kind === "chain-unavailable" ? "warn" : "debug";
        logFailure(log, level === "error" ? err : refusal, "answer authority request", level, { client: ctx.client });
        return encodeAuthorityMessage({
          t: "error",
          kind: refusal.kind,
          message: refusal.message,
          ...(refusal.retryAfterMs !== undefined ? { retryAfterMs: Math.ceil(refusal.retryAfterMs) } : {}),
        });
      }
    },
  };
  return service;
}

function applicationIdOf(r: Registration): Hex {
  return computeApplicationId(r.namespace, r.application);
}

// ---------------------------------------------------------------- the client side

/** Sends one request to one authority and returns its response bytes (a link, a circuit, or in-process). */
export type AuthorityTransport = (request: Uint8Array) => Promise<Uint8Array>;

/** An in-process transport to a local service (the devnet path, tests). */
export function localAuthorityTransport(service: AuthorityService, client = "local"): AuthorityTransport {
  return (request) => service.handleMessage(request, { client });
}

async function exchange(transport: AuthorityTransport, request: AuthorityRequest): Promise<AuthorityResponse> {
  const response = decodeAuthorityResponse(await transport(encodeAuthorityMessage(request)));
  if (response.t === "error") {
    const kind = REFUSAL_KINDS.has(response.kind) ? (response.kind as AuthorityErrorKind) : "bad-response";
    throw new AuthorityError(kind, `authority refused: ${response.message}`, response.retryAfterMs !== undefined ? { retryAfterMs: response.retryAfterMs } : {});
  }
  return response;
}

export interface RequestEndorsementOptions {
  transport: AuthorityTransport;
  /** The identity's Ed25519 seed; only signatures leave this process. */
  identitySecretKey: Uint8Array;
  bodyBytes: Uint8Array;
}

/** Challenge, prove, and collect one authority's endorsement of `bodyBytes` (checked before it is returned). */
export async function requestEndorsement(opts: RequestEndorsementOptions): Promise<AuthoritySignature> {
  const challenge = await exchange(opts.transport, { t: "challenge-request" });
  if (challenge.t !== "challenge") throw new AuthorityError("bad-response", `expected a challenge, got "${challenge.t}"`);
  const proof = ed25519Sign(opts.identitySecretKey, certificateProofMessage(challenge, opts.bodyBytes));
  const endorsement = await exchange(opts.transport, { t: "cert-request", nonce: challenge.nonce, body: opts.bodyBytes, proof });
  if (endorsement.t !== "cert-endorsement") throw new AuthorityError("bad-response", `expected an endorsement, got "${endorsement.t}"`);
  if (bytesToHex(endorsement.authority) !== bytesToHex(challenge.authority) || !verifyEndorsement(opts.bodyBytes, endorsement)) {
    throw new AuthorityError("bad-response", "the authority's endorsement does not verify under the key that issued the challenge");
  }
  return { authority: endorsement.authority, signature: endorsement.signature };
}

export interface RequestCertificateOptions {
  /** One transport per authority to ask. */
  transports: readonly AuthorityTransport[];
  identity: string;
  identitySecretKey: Uint8Array;
  chainId: number;
  registry: Address;
  /** Current authority node keys, to check the result; and how many must sign. */
  authorities: readonly (Uint8Array | Hex)[];
  threshold: number;
  /** Clock in ms; default Date.now. */
  now?: number;
  validitySeconds?: number;
}

export interface IssuedCertificate {
  certificate: Uint8Array;
  verified: VerifiedCertificate;
  /** Why the authorities that did not sign refused. */
  refusals: AuthorityError[];
}

/**
 * Asks every authority for an endorsement of a fresh body and assembles the
 * certificate; throws "not-enough-authorities" (with each refusal in the
 * message) when fewer than `threshold` current authorities signed.
 */
export async function requestAccessCertificate(opts: RequestCertificateOptions): Promise<IssuedCertificate> {
  const t = opts.now ?? Date.now();
  const notBefore = Math.floor(t / 1000);
  const { bodyBytes } = buildCertificateBody({
    identity: opts.identity,
    chainId: opts.chainId,
    registry: opts.registry,
    notBefore,
    notAfter: notBefore + (opts.validitySeconds ?? DEFAULT_CERT_VALIDITY_SECONDS),
  });
  const results = await Promise.allSettled(opts.transports.map((transport) => requestEndorsement({ transport, identitySecretKey: opts.identitySecretKey, bodyBytes })));
  const signatures: AuthoritySignature[] = [];
  const refusals: AuthorityError[] = [];
  for (const r of results) {
    if (r.status === "fulfilled") signatures.push(r.value);
    else refusals.push(r.reason instanceof AuthorityError ? r.reason : new AuthorityError("bad-response", String(r.reason), { cause: r.reason }));
  }
  const certificate = assembleCertificate(bodyBytes, signatures);
  try {
    const verified = verifyAccessCertificate(certificate, { now: t, authorities: opts.authorities, threshold: opts.threshold, chainId: opts.chainId, registry: opts.registry });
    return { certificate, verified, refusals };
  } catch (err) {
    const reasons = refusals.map((r) => `${r.kind}: ${r.message}`).join("; ");
    throw new AuthorityError(
      "not-enough-authorities",
      `${signatures.length} of ${opts.transports.length} authorities signed, ${opts.threshold} current ones needed${reasons ? ` (refusals: ${reasons})` : ""}`,
      { cause: err, refusals },
    );
  }
}

/** An identities.ts Attester that asks one authority over `transport`. */
export function remoteAttester(transport: AuthorityTransport, submitter?: Address) {
  return async (ctx: AttestationContext, proof: Uint8Array): Promise<SignedAttestation> => {
    const response = await exchange(transport, {
      t: "attest-request",
      chainId: ctx.chainId,
      registry: ctx.registry,
      registration: ctx.registration,
      proof,
      ...(submitter ? { submitter } : {}),
    });
    if (response.t !== "attestation") throw new AuthorityError("bad-response", `expected an attestation, got "${response.t}"`);
    return { signer: response.signer, signature: response.signature };
  };
}

/**
 * Identity registration from the owner's side: build the registration, have
 * the key prove possession, collect authority attestations, submit.
 *
 * Attestations come from whatever `Attester`s the caller has: the authority
 * nodes' service over the network, or (on a devnet) local signer keys.
 */
import { toHex, type Hex } from "viem";
import type { ChainClients } from "./clients.js";
import { identityId, sortAttestationsBySigner, type AttestationContext, type Registration, type SignedAttestation } from "./attestation.js";
import { assertDeploymentLive, type Deployment } from "./deployment.js";
import { ChainError } from "./errors.js";
import { identityRegistryAbi } from "./generated/abis.js";
import { signRegistrationProof } from "./registration.js";
import { transact } from "./transact.js";
import { ed25519PublicKey } from "../crypto/ed25519.js";
import { IDENTITY_KIND, type IdentityKindName } from "./attestation.js";

/** Something that, given a registration and its proof of possession, returns an attestation. */
export type Attester = (ctx: AttestationContext, proof: Uint8Array) => Promise<SignedAttestation>;

export interface RegisterIdentityOptions {
  clients: ChainClients;
  deployment: Deployment;
  namespace: string;
  application: string;
  kind: IdentityKindName;
  /** The identity's Ed25519 secret key (32-byte seed); it never leaves this process. */
  secretKey: Uint8Array;
  attesters: Attester[];
  /** Attestations stay valid this long (seconds). */
  validForSeconds?: number;
}

export async function registerIdentity(opts: RegisterIdentityOptions): Promise<{ identityId: Hex; hash: Hex; registration: Registration }> {
  const wallet = opts.clients.walletClient;
  if (!wallet) throw new ChainError("bad-argument", "registering an identity sends a transaction: pass the owner's keystore");
  await assertDeploymentLive(opts.clients.publicClient, opts.deployment);
  const now = Number((await opts.clients.publicClient.getBlock()).timestamp);
  const registration: Registration = {
    owner: wallet.account.address,
    namespace: opts.namespace,
    application: opts.application,
    kind: IDENTITY_KIND[opts.kind],
    key: toHex(ed25519PublicKey(opts.secretKey)),
    deadline: BigInt(now + (opts.validForSeconds ?? 3600)),
  };
  const ctx: AttestationContext = {
    chainId: opts.deployment.chainId,
    registry: opts.deployment.contracts.IdentityRegistry.address,
    registration,
  };
  const proof = signRegistrationProof(opts.secretKey, ctx);
  // One refusing or unreachable authority must not sink the registration:
  // what matters is reaching the registry's threshold.
  const threshold = await opts.clients.publicClient.readContract({ address: ctx.registry, abi: identityRegistryAbi, functionName: "attestationThreshold" });
  const results = await Promise.allSettled(opts.attesters.map((attest) => attest(ctx, proof)));
  const attestations = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  if (attestations.length < threshold) {
    const refusals = results.flatMap((r) => (r.status === "rejected" ? [r.reason instanceof Error ? r.reason.message : String(r.reason)] : []));
    throw new ChainError(
      "insufficient-attestations",
      `${attestations.length} of ${opts.attesters.length} authorities attested, the registry needs ${threshold}${refusals.length ? `; refusals: ${refusals.join("; ")}` : ""}`,
    );
  }
  const { hash } = await transact({
    publicClient: opts.clients.publicClient,
    walletClient: wallet,
    address: ctx.registry,
    abi: identityRegistryAbi,
    functionName: "registerIdentity",
    args: [registration, toHex(proof), sortAttestationsBySigner(attestations)],
  });
  return { identityId: identityId(registration), hash, registration };
}

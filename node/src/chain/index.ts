/**
 * The chain layer: viem clients and typed bindings for the PSP contracts of
 * one deployment, event following, the PKI interface the other layers read
 * (identities, applications, role sets), operator staking and the EIP-712
 * attestations authorities sign for identity registration. Import from
 * here, or from the individual modules.
 *
 * Depends on: crypto/ (Ed25519 proofs of possession), base/, viem and the
 * ABIs generated from contracts/ (generated/abis.ts).
 * Used by: authority/ (the Pki, attestations), directory/ through node/
 * (chain roles of descriptors), node/, client/ and the CLI's identity,
 * operator and cert commands.
 * Trust boundary: trusts the JSON-RPC endpoint it is pointed at for chain
 * state, after checking its chain id against the deployment and that every
 * contract address has code; every argument is checked before a
 * transaction is sent, and errors are ChainError.
 * Spec: docs/spec/contracts-core.md and docs/spec/contracts-pki.md.
 */
export { ChainError } from "./errors.js";
export type { ChainErrorKind } from "./errors.js";
export { connectChain } from "./clients.js";
export type { ChainClients, ConnectOptions } from "./clients.js";
export { NodeRole, parseRoles, roleNames, pspContractsFor } from "./contracts.js";
export type { NodeRoleName, PspContracts } from "./contracts.js";
export { assertDeploymentLive, parseDeployment, readDeployment } from "./deployment.js";
export type { Deployment } from "./deployment.js";
export { createChainPki, createMemoryPki } from "./pki.js";
export type { ApplicationRecord, IdentityRecord, Pki } from "./pki.js";
export { createNodeSets, readRoleSet } from "./sets.js";
export type { NodeSets, RoleSet, SetMember, SetRole } from "./sets.js";
export { createEventFollower } from "./events.js";
export type { EventFollower, EventFollowerOptions } from "./events.js";
export { IDENTITY_KIND, applicationId, identityId, signAttestation, sortAttestationsBySigner, validateRegistration } from "./attestation.js";
export type { AttestationContext, Registration, SignedAttestation } from "./attestation.js";
export { attestRegistration, signRegistrationProof, verifyRegistrationProof } from "./registration.js";
export { registerIdentity } from "./identities.js";
export { nodeKeyHex, nodeStatus, registerNode, requestUnstake, stakeNode, withdrawStake } from "./staking.js";
export { createCommercialView, publishCommercialNode, removeCommercialNode, serveConsentDigest, serveConsentTypedData, signServeConsent } from "./commercial.js";
export type { CommercialView, ServeConsent } from "./commercial.js";
export { claimRewards, createRewardsView, REWARD_EPOCH_STATUSES, rewardsAddress, submitRewardRoot } from "./rewards.js";
export type { RewardEpoch, RewardEpochStatus, RewardsTiming, RewardsView } from "./rewards.js";

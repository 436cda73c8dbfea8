/**
 * Test fixture for the on-chain PKI: a fresh Hardhat chain with the real
 * PSPToken and NodeRegistry, `authorityCount` staked authority nodes, an
 * IdentityRegistry and a Subscriptions contract, plus helpers that sign
 * attestations exactly as an authority node will (node/src/chain/attestation.ts).
 *
 * Shared by the contract tests and scripts/bench/gas-pki.ts. No mocks: an
 * authority is a node registered with ROLE_AUTHORITY and bonded at the minimum.
 */
import { network } from "hardhat";
import type { ContractReturnType } from "@nomicfoundation/hardhat-viem/types";
import { keccak256, parseEther, toHex, type Address, type Hex } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { nodeConsentTypedData } from "../../../node/src/chain/consent.js";
import {
  REGISTRATION_POLICY,
  signAttestation,
  signRotationAttestation,
  sortAttestationsBySigner,
  type KeyRotation,
  type Registration,
} from "../../../node/src/chain/attestation.js";

export const ROLE_AUTHORITY = 4;
export const MIN_STAKE_AUTHORITY = parseEther("1000");
export const INITIAL_SUPPLY = parseEther("1000000000");
export const UNBONDING_DELAY = 7n * 24n * 3600n;
/** A 64-byte stand-in for an Ed25519 key proof (the contracts only carry it). */
export const KEY_PROOF: Hex = `0x${"a5".repeat(64)}`;

export type Connection = Awaited<ReturnType<typeof network.connect>>;
export type Viem = Connection["viem"];
export type WalletClient = Awaited<ReturnType<Viem["getWalletClients"]>>[number];

export interface Authority {
  nodeKey: Hex;
  operator: WalletClient;
  /** The EVM key the node signs attestations with; never sends transactions. */
  signer: PrivateKeyAccount;
}

export interface PkiFixture {
  connection: Connection;
  viem: Viem;
  networkHelpers: Connection["networkHelpers"];
  publicClient: Awaited<ReturnType<Viem["getPublicClient"]>>;
  chainId: number;
  admin: WalletClient;
  /** Accounts with no special role, each funded with PSP. */
  users: WalletClient[];
  rewardPool: Address;
  token: ContractReturnType<"PSPToken">;
  nodeRegistry: ContractReturnType<"NodeRegistry">;
  identities: ContractReturnType<"IdentityRegistry">;
  subscriptions: ContractReturnType<"Subscriptions">;
  authorities: Authority[];
}

/** A deterministic signer key per index, so gas figures and failures reproduce. */
export function testSigner(label: string, index: number): PrivateKeyAccount {
  return privateKeyToAccount(keccak256(toHex(`psp-test-${label}-${index}`)));
}

/** A deterministic 32-byte stand-in for an Ed25519 public key. */
export function testKey(label: string): Hex {
  return keccak256(toHex(`psp-test-key-${label}`));
}

export interface DeployOptions {
  /** Number of staked authority nodes (default 3). */
  authorityCount?: number;
  /** Authority quorum floor (default 2); with `thresholdBps` 0 (default) it is the whole threshold. */
  threshold?: number;
  /** Authority quorum share of the current authority set, in basis points (default 0). */
  thresholdBps?: number;
}

/** Deploys the whole PKI on a fresh in-process chain. */
export async function deployPki(opts: DeployOptions = {}): Promise<PkiFixture> {
  const authorityCount = opts.authorityCount ?? 3;
  const threshold = opts.threshold ?? 2;
  const connection = await network.connect();
  const { viem, networkHelpers } = connection;
  const publicClient = await viem.getPublicClient();
  const wallets = await viem.getWalletClients();
  const [admin, pool, ...rest] = wallets;
  if (admin === undefined || pool === undefined || rest.length < authorityCount + 4) {
    throw new Error(`need ${authorityCount + 6} funded accounts, Hardhat gave ${wallets.length}`);
  }
  const operators = rest.slice(0, authorityCount);
  const users = rest.slice(authorityCount);

  const token = await viem.deployContract("PSPToken", [admin.account.address, INITIAL_SUPPLY]);
  const nodeRegistry = await viem.deployContract("NodeRegistry", [
    token.address,
    admin.account.address,
    {
      minStakeOnion: 0n,
      minStakeDiscovery: MIN_STAKE_AUTHORITY,
      minStakeAuthority: MIN_STAKE_AUTHORITY,
      minStakeOracle: MIN_STAKE_AUTHORITY,
      unbondingDelay: UNBONDING_DELAY,
      minDiscoveryAge: 0n,
      activationDelay: 0n,
      maxAuthorities: 16,
      maxOracles: 16,
      attestationFloor: threshold,
      attestationBps: opts.thresholdBps ?? 0,
      approvalRoles: 0,
    },
    UNBONDING_DELAY,
  ]);
  const identities = await viem.deployContract("IdentityRegistry", [nodeRegistry.address]);
  const subscriptions = await viem.deployContract("Subscriptions", [token.address, identities.address, pool.account.address]);

  for (const w of [...operators, ...users]) {
    await token.write.transfer([w.account.address, parseEther("100000")]);
  }
  const authorities: Authority[] = [];
  const chainId = await publicClient.getChainId();
  for (const [i, operator] of operators.entries()) {
    const authority = { nodeKey: testKey(`authority-node-${i}`), operator, signer: testSigner("authority", i) };
    await stakeAuthority({ nodeRegistry, token, networkHelpers, chainId }, authority);
    authorities.push(authority);
  }
  return {
    connection,
    viem,
    networkHelpers,
    publicClient,
    chainId,
    admin,
    users,
    rewardPool: pool.account.address,
    token,
    nodeRegistry,
    identities,
    subscriptions,
    authorities,
  };
}

/** Registers `authority` as an authority node (its signer consenting) and bonds the minimum stake. */
export async function stakeAuthority(
  f: Pick<PkiFixture, "nodeRegistry" | "token" | "networkHelpers" | "chainId">,
  authority: Authority,
): Promise<void> {
  const { nodeRegistry, token } = f;
  const account = authority.operator.account;
  const nonce = await nodeRegistry.read.nonces([authority.signer.address]);
  const deadline = BigInt(await f.networkHelpers.time.latest()) + 3600n;
  const consent = await authority.signer.signTypedData(
    nodeConsentTypedData({
      chainId: f.chainId,
      registry: nodeRegistry.address,
      consent: { nodeKey: authority.nodeKey, operator: account.address, signer: authority.signer.address, nonce, deadline },
    }),
  );
  await nodeRegistry.write.registerNode([authority.nodeKey, authority.signer.address, ROLE_AUTHORITY, deadline, consent, KEY_PROOF], { account });
  await token.write.approve([nodeRegistry.address, MIN_STAKE_AUTHORITY], { account });
  await nodeRegistry.write.stake([authority.nodeKey, MIN_STAKE_AUTHORITY], { account });
}

/** Sets the NodeRegistry's authority quorum to max(floor, ceil(authorityCount * bps / 10000)) (admin is governance). */
export async function setQuorum(f: Pick<PkiFixture, "nodeRegistry" | "admin">, floor: number, bps = 0): Promise<void> {
  const params = await f.nodeRegistry.read.params();
  await f.nodeRegistry.write.setParams([{ ...params, attestationFloor: floor, attestationBps: bps }], { account: f.admin.account });
}

/** Signs `registration` with each signer for (chainId, registry) and returns them sorted for the contract. */
export async function attest(
  signers: readonly PrivateKeyAccount[],
  ctx: { chainId: number; registry: Address; registration: Registration },
): Promise<Hex[]> {
  const signed = await Promise.all(signers.map((s) => signAttestation(s, ctx)));
  return sortAttestationsBySigner(signed);
}

/** Signs a key rotation with each signer for (chainId, registry) and returns them sorted for `rotateKey`. */
export async function attestRotation(
  signers: readonly PrivateKeyAccount[],
  ctx: { chainId: number; registry: Address; rotation: KeyRotation },
): Promise<Hex[]> {
  const signed = await Promise.all(signers.map((s) => signRotationAttestation(s, ctx)));
  return sortAttestationsBySigner(signed);
}

/** Claims `namespace` and creates `application` in it, both owned by `owner`; returns the application id. */
export async function createApplication(
  f: PkiFixture,
  owner: WalletClient,
  namespace: string,
  application: string,
  policy: number = REGISTRATION_POLICY.open,
): Promise<Hex> {
  const account = owner.account;
  const nsOwner = await f.identities.read.namespaceOwner([keccak256(toHex(namespace))]);
  if (nsOwner === "0x0000000000000000000000000000000000000000") {
    await f.identities.write.registerNamespace([namespace], { account });
  }
  await f.identities.write.registerApplication([namespace, application, policy], { account });
  return f.identities.read.applicationIdOf([namespace, application]);
}

let registrationCounter = 0;

/** A registration valid for an hour from the chain's current time, with a fresh key unless one is given. */
export async function makeRegistration(
  f: PkiFixture,
  fields: Partial<Registration> & Pick<Registration, "owner">,
): Promise<Registration> {
  const now = BigInt(await f.networkHelpers.time.latest());
  return {
    namespace: "peerstream",
    application: "client",
    kind: 0,
    key: testKey(`identity-${registrationCounter++}`),
    deadline: now + 3600n,
    ...fields,
  };
}

/** Registers an identity with attestations from `signers` (default: every authority); returns its id. */
export async function registerIdentity(
  f: PkiFixture,
  registration: Registration,
  sender: WalletClient,
  signers: readonly PrivateKeyAccount[] = f.authorities.map((a) => a.signer),
): Promise<Hex> {
  const attestations = await attest(signers, { chainId: f.chainId, registry: f.identities.address, registration });
  await f.identities.write.registerIdentity([registration, KEY_PROOF, attestations], { account: sender.account });
  return f.identities.read.identityIdOf([registration.namespace, registration.application, registration.kind, registration.key]);
}

/**
 * Shared setup for the chain unit tests: authorities with real Ed25519 node
 * keys and EVM signers, an in-memory PKI holding one registered identity.
 */
import { bytesToHex, keccak256, toHex, type Address, type Hex } from "viem";
import { privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { applicationId, identityId } from "../../../node/src/chain/attestation.js";
import { createMemoryPki } from "../../../node/src/chain/pki.js";
import { generateEd25519KeyPair, type Ed25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { formatIdentity } from "../../../node/src/crypto/identity.js";

export const CHAIN_ID = 31337;
export const REGISTRY = "0x00000000000000000000000000000000000000aa" as Address;

export interface TestAuthority {
  node: Ed25519KeyPair;
  signer: PrivateKeyAccount;
  nodeKey: Hex;
}

export function makeAuthorities(count: number, label = "auth"): TestAuthority[] {
  return Array.from({ length: count }, (_, i) => {
    const node = generateEd25519KeyPair();
    return { node, signer: privateKeyToAccount(keccak256(toHex(`${label}-${i}`))), nodeKey: bytesToHex(node.publicKey) };
  });
}

export interface TestIdentity {
  keys: Ed25519KeyPair;
  identity: string;
  identityId: Hex;
}

export function makeIdentity(namespace = "peerstream", application = "client"): TestIdentity {
  const keys = generateEd25519KeyPair();
  return {
    keys,
    identity: formatIdentity({ namespace, application, kind: "account", publicKey: keys.publicKey }),
    identityId: identityId({ namespace, application, kind: 0, key: keys.publicKey }),
  };
}

/** A memory PKI with `authorities` as the authority set and `registered` identities Active. */
export function memoryPki(authorities: readonly TestAuthority[], registered: readonly TestIdentity[] = []) {
  const pki = createMemoryPki({ chainId: CHAIN_ID, identityRegistry: REGISTRY });
  const owner = "0x00000000000000000000000000000000000000b0" as Address;
  pki.state.applications.set(applicationId("peerstream", "client").toLowerCase(), { owner, policy: "open", namespace: "peerstream", name: "client" });
  pki.state.sets.authority = authorities.map((a) => ({ nodeKey: a.nodeKey, publicKey: a.node.publicKey, signer: a.signer.address }));
  for (const id of registered) {
    pki.state.identities.set(id.identityId, {
      status: "active",
      owner,
      kind: 0,
      registeredAt: 1,
      applicationId: applicationId("peerstream", "client"),
      key: bytesToHex(id.keys.publicKey),
      successor: `0x${"00".repeat(32)}`,
    });
  }
  return pki;
}

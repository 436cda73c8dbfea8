/**
 * ERC-2612 permits for the PSP token: an EIP-712 signature that grants an
 * allowance, so staking and subscribing need no separate approval transaction.
 */
import { parseSignature, type Address, type Hex, type TypedDataDefinition } from "viem";

/** The EIP-712 types of an ERC-2612 permit. */
export const permitTypes = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
} as const;

export interface PermitRequest {
  /** The token's EIP-712 name ("PeerStream Token" for PSP); its version is "1". */
  tokenName: string;
  token: Address;
  chainId: number;
  owner: Address;
  spender: Address;
  value: bigint;
  nonce: bigint;
  deadline: bigint;
}

/** The typed data `owner` signs to let `spender` take `value`. */
export function permitTypedData(p: PermitRequest): TypedDataDefinition<typeof permitTypes, "Permit"> {
  return {
    domain: { name: p.tokenName, version: "1", chainId: p.chainId, verifyingContract: p.token },
    types: permitTypes,
    primaryType: "Permit",
    message: { owner: p.owner, spender: p.spender, value: p.value, nonce: p.nonce, deadline: p.deadline },
  };
}

/** Splits a 65-byte signature into the (v, r, s) that `permit` and `*WithPermit` take. */
export function permitSignatureParts(signature: Hex): { v: number; r: Hex; s: Hex } {
  const { v, r, s, yParity } = parseSignature(signature);
  return { v: Number(v ?? BigInt(27 + yParity)), r, s };
}

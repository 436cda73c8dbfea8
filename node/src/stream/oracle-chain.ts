/**
 * The chain's side of receipt verification: a ReceiptChainView (receipt.ts)
 * over the deployed contracts, for landing nodes and tests.
 *
 * Owns the reads: the current oracle set (NodeRegistry.oracleSet, node keys
 * and signers), a receipt's inclusion (OracleReceipts.verifyReceipt, which
 * is false for a revoked one), revocation by receipt hash (the indexed
 * ReceiptRevoked event, from the deployment block on, so no batch id is
 * needed), a blind key's record (OracleReceipts.getBlindKey) and whether its
 * publisher is still an oracle (NodeRegistry.isOracleSigner).
 *
 * Trusts: the RPC endpoint and the deployment file. Reads are not cached
 * here; a failed read is ChainError "rpc-unreachable" from the caller's
 * point of view (viem's error as its cause).
 */
import { getAddress, hexToBytes, type Address, type Chain, type Hex, type PublicClient, type Transport } from "viem";
import { ChainError } from "../chain/errors.js";
import { nodeRegistryAbi, oracleReceiptsAbi } from "../chain/generated/abis.js";
import type { Deployment } from "../chain/deployment.js";
import type { BlindKeyRecord, ReceiptChainView } from "./receipt.js";

async function read<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new ChainError("rpc-unreachable", `could not ${what}: ${(err as Error).message}`, { cause: err });
  }
}

export function receiptChainView(client: PublicClient<Transport, Chain>, deployment: Deployment): ReceiptChainView {
  const receipts = deployment.contracts.OracleReceipts;
  const registry = deployment.contracts.NodeRegistry.address;
  return {
    async oracleKeys() {
      const [nodeKeys] = await read("read the oracle set", () => client.readContract({ address: registry, abi: nodeRegistryAbi, functionName: "oracleSet" }));
      return nodeKeys.map((k) => hexToBytes(k));
    },
    verifyInclusion: (inclusion, receiptHash) =>
      read("verify a receipt's inclusion", () =>
        client.readContract({
          address: receipts.address,
          abi: oracleReceiptsAbi,
          functionName: "verifyReceipt",
          args: [inclusion.batchId, receiptHash, inclusion.proof],
        }),
      ),
    async isRevoked(receiptHash: Hex) {
      const logs = await read("read ReceiptRevoked events", () =>
        client.getContractEvents({
          address: receipts.address,
          abi: oracleReceiptsAbi,
          eventName: "ReceiptRevoked",
          args: { receiptHash },
          fromBlock: BigInt(receipts.blockNumber),
          toBlock: "latest",
        }),
      );
      return logs.length > 0;
    },
    async blindKey(keyId: Hex): Promise<BlindKeyRecord | undefined> {
      let key;
      try {
        key = await client.readContract({ address: receipts.address, abi: oracleReceiptsAbi, functionName: "getBlindKey", args: [keyId] });
      } catch (err) {
        if ((err as Error).message.includes("UnknownBlindKey")) return undefined;
        throw new ChainError("rpc-unreachable", `could not read blind key ${keyId}: ${(err as Error).message}`, { cause: err });
      }
      return {
        keyId,
        spki: hexToBytes(key.spki),
        oracle: getAddress(key.oracle),
        params: { bitrateKbps: key.bitrateKbps, maxDurationSeconds: key.maxDurationSeconds, formatFlags: key.formatFlags },
        validFrom: Number(key.validFrom),
        validUntil: Number(key.validUntil),
        revoked: key.revoked,
      };
    },
    isOracleSigner: (signer: Address) =>
      read("read the oracle set", () => client.readContract({ address: registry, abi: nodeRegistryAbi, functionName: "isOracleSigner", args: [signer] })),
  };
}

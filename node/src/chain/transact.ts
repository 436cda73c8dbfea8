/**
 * Sends a contract transaction the careful way: simulate first so a revert is
 * reported with the contract's custom error before any gas is spent, then
 * send, then wait for the receipt and check its status.
 */
import { BaseError, ContractFunctionRevertedError, type Abi, type Account, type Address, type Chain, type ContractFunctionArgs, type ContractFunctionName, type Hash, type PublicClient, type TransactionReceipt, type Transport, type WalletClient } from "viem";
import { ChainError } from "./errors.js";

export interface TransactOptions<TAbi extends Abi, TName extends ContractFunctionName<TAbi, "nonpayable" | "payable">> {
  publicClient: PublicClient<Transport, Chain>;
  walletClient: WalletClient<Transport, Chain, Account>;
  address: Address;
  abi: TAbi;
  functionName: TName;
  args: ContractFunctionArgs<TAbi, "nonpayable" | "payable", TName>;
}

/** Names the custom error (and its arguments) a reverted call carried, if any. */
export function describeRevert(err: unknown): string {
  if (err instanceof BaseError) {
    const revert = err.walk((e) => e instanceof ContractFunctionRevertedError);
    if (revert instanceof ContractFunctionRevertedError) {
      const name = revert.data?.errorName ?? revert.reason ?? "unknown error";
      const args = revert.data?.args?.map((a) => (typeof a === "bigint" ? a.toString() : String(a))).join(", ");
      return args ? `${name}(${args})` : name;
    }
    return err.shortMessage;
  }
  return err instanceof Error ? err.message : String(err);
}

export async function transact<TAbi extends Abi, TName extends ContractFunctionName<TAbi, "nonpayable" | "payable">>(
  opts: TransactOptions<TAbi, TName>,
): Promise<{ hash: Hash; receipt: TransactionReceipt }> {
  let request;
  try {
    // viem's generics cannot follow TName through simulateContract here.
    ({ request } = await opts.publicClient.simulateContract({
      address: opts.address,
      abi: opts.abi as Abi,
      functionName: opts.functionName as string,
      args: opts.args as readonly unknown[],
      account: opts.walletClient.account,
    }));
  } catch (err) {
    throw new ChainError("transaction-reverted", `${String(opts.functionName)} would revert: ${describeRevert(err)}`, { cause: err });
  }
  const hash = await opts.walletClient.writeContract(request);
  const receipt = await opts.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") {
    throw new ChainError("transaction-reverted", `${String(opts.functionName)} reverted in transaction ${hash}`);
  }
  return { hash, receipt };
}

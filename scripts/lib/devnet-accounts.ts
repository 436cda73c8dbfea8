/**
 * Hardhat's well-known development accounts (public test mnemonic). Only ever
 * used against chain 31337; never hold anything of value with them.
 */
import { mnemonicToAccount, type HDAccount } from "viem/accounts";

export const HARDHAT_MNEMONIC = "test test test test test test test test test test test junk";
export const HARDHAT_CHAIN_ID = 31337;

export function devAccount(index: number): HDAccount {
  return mnemonicToAccount(HARDHAT_MNEMONIC, { addressIndex: index });
}

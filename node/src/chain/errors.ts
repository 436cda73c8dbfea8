import { PspError } from "../errors.js";

/** Why a chain operation was refused; every kind names a fix in its message. */
export type ChainErrorKind =
  | "rpc-unreachable"
  | "wrong-chain"
  | "missing-deployment"
  | "bad-deployment"
  | "no-code"
  | "insufficient-balance"
  | "insufficient-allowance"
  | "unknown-node"
  | "not-operator"
  | "nothing-to-withdraw"
  | "bad-argument"
  | "insufficient-attestations"
  | "transaction-reverted"
  | "reclaim-refused";

export class ChainError extends PspError<ChainErrorKind> {}

/**
 * Operator EVM keys in the standard Ethereum JSON keystore (Web3 Secret
 * Storage v3), as thin wrappers over ethers.
 *
 * Owns only the mapping to PSP's typed errors and a bound on the KDF cost a
 * file may ask for (ethers itself accepts any N, so a hostile file could make
 * us spin for hours). Wallet tools (geth, MetaMask exports, ethers) read and
 * write the same files.
 *
 * Trusts: ethers' keystore implementation.
 */
import { decryptKeystoreJson, encryptKeystoreJson, computeAddress } from "ethers";
import { CryptoError } from "./errors.js";

export interface EvmAccount {
  /** Checksummed 0x address. */
  address: `0x${string}`;
  /** 0x-prefixed 32-byte private key, as viem's privateKeyToAccount takes it. */
  privateKey: `0x${string}`;
}

export interface EncryptEvmKeystoreOptions {
  /** scrypt cost; ethers' default (2^17) when omitted. Tests use 2^10. */
  scryptN?: number;
}

const MAX_SCRYPT_N = 2 ** 20;
const MAX_PBKDF2_ITERATIONS = 10_000_000;
const PRIVATE_KEY = /^0x[0-9a-fA-F]{64}$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Field lookup ignoring case, as ethers reads keystores ("Crypto" from geth, "crypto" elsewhere). */
function field(value: unknown, name: string): unknown {
  if (!isRecord(value)) return undefined;
  const key = Object.keys(value).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : value[key];
}

/** Encrypts an EVM private key into a JSON keystore string. */
export async function encryptEvmKeystore(privateKey: `0x${string}`, passphrase: string, options: EncryptEvmKeystoreOptions = {}): Promise<string> {
  if (typeof privateKey !== "string" || !PRIVATE_KEY.test(privateKey)) {
    throw new CryptoError("bad-key-length", "EVM private key must be 0x followed by 64 hex digits");
  }
  if (typeof passphrase !== "string" || passphrase.length === 0) {
    throw new CryptoError("bad-passphrase", "refusing to encrypt a keystore with an empty passphrase");
  }
  let address: string;
  try {
    address = computeAddress(privateKey);
  } catch (err) {
    throw new CryptoError("bad-key-length", "EVM private key is not a valid secp256k1 scalar", { cause: err });
  }
  const scrypt = options.scryptN === undefined ? undefined : { N: options.scryptN };
  if (scrypt && (!Number.isInteger(scrypt.N) || scrypt.N < 2 ** 10 || scrypt.N > MAX_SCRYPT_N || (scrypt.N & (scrypt.N - 1)) !== 0)) {
    throw new CryptoError("bad-kdf-params", `scryptN must be a power of two from 2^10 to 2^20, got ${String(options.scryptN)}`);
  }
  return encryptKeystoreJson({ address, privateKey }, passphrase, scrypt ? { scrypt } : {});
}

/** Decrypts a JSON keystore. Throws CryptoError "bad-passphrase" or "malformed-key-file". */
export async function decryptEvmKeystore(json: string, passphrase: string): Promise<EvmAccount> {
  if (typeof json !== "string" || json.length > 64 * 1024) throw new CryptoError("malformed-key-file", "keystore must be a JSON string under 64 KiB");
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    throw new CryptoError("malformed-key-file", "keystore is not valid JSON");
  }
  const kdfparams = field(field(data, "crypto"), "kdfparams");
  if (!isRecord(kdfparams)) throw new CryptoError("malformed-key-file", "keystore has no crypto.kdfparams");
  const n = field(kdfparams, "n");
  const c = field(kdfparams, "c");
  if ((typeof n === "number" && n > MAX_SCRYPT_N) || (typeof c === "number" && c > MAX_PBKDF2_ITERATIONS)) {
    throw new CryptoError("bad-kdf-params", "keystore KDF cost is above the accepted limit (scrypt N <= 2^20, PBKDF2 c <= 10^7)");
  }
  try {
    const account = await decryptKeystoreJson(json, typeof passphrase === "string" ? passphrase : "");
    return { address: account.address as `0x${string}`, privateKey: account.privateKey as `0x${string}` };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (message.includes("incorrect password")) {
      throw new CryptoError("bad-passphrase", "keystore does not open with this passphrase", { cause: err });
    }
    throw new CryptoError("malformed-key-file", `keystore is malformed: ${message.split(" (")[0]}`, { cause: err });
  }
}

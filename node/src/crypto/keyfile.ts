/**
 * Encrypted key files for node and user identity keys (and onion keys).
 *
 * Owns the JSON format (version 1):
 *   {
 *     "version": 1,
 *     "keyType": "ed25519" | "x25519",
 *     "publicKey": hex(32),
 *     "kdf": { "name": "scrypt", "N": 2^k, "r": int, "p": int, "salt": hex(16..64) },
 *     "cipher": { "name": "chacha20-poly1305", "nonce": hex(12) },
 *     "ciphertext": hex(32 + 16)
 *   }
 * The AEAD key is scrypt(NFKC(passphrase), salt, N, r, p, dkLen 32); the
 * associated data is "psp-keyfile-v1" ‖ keyType ‖ publicKey ‖ the KDF
 * parameters, so editing any header field makes decryption fail. After
 * decryption the public key is re-derived and compared, so a file whose
 * header names another key is rejected.
 *
 * scrypt parameters are bounded (N 2^10..2^20, r 1..32, p 1..16, at most
 * 1 GiB of memory) so a hostile file cannot make us spin or exhaust memory.
 *
 * Trusts nothing in the file. Errors: CryptoError "bad-passphrase" (the AEAD
 * does not open: wrong passphrase), "malformed-key-file" (anything
 * structural), "bad-kdf-params" (parameters outside the bounds).
 */
import { scryptAsync as nobleScryptAsync } from "@noble/hashes/scrypt.js";
import { hexOf, parseHex } from "../base/hex.js";
import { AEAD_ALGORITHM, AEAD_KEY_LEN, AEAD_NONCE_LEN, AEAD_TAG_LEN, aeadOpen, aeadSeal } from "./aead.js";
import { concatBytes, nodeCrypto, randomBytes } from "./backend.js";
import { ED25519_SECRET_KEY_LEN, ed25519PublicKey } from "./ed25519.js";
import { CryptoError } from "./errors.js";
import { x25519PublicKey } from "./x25519.js";

export const KEY_FILE_VERSION = 1;
export type KeyFileKeyType = "ed25519" | "x25519";

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  r: number;
  p: number;
}

/** Defaults: ~128 MiB and a fraction of a second; interactive unlock of a long-lived key. */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };
export const SCRYPT_LIMITS = { minLogN: 10, maxLogN: 20, maxR: 32, maxP: 16, maxMemoryBytes: 1024 * 1024 * 1024 } as const;
const SALT_LEN = 16;

export interface KeyFile {
  version: 1;
  keyType: KeyFileKeyType;
  publicKey: string;
  kdf: { name: "scrypt"; N: number; r: number; p: number; salt: string };
  cipher: { name: "chacha20-poly1305"; nonce: string };
  ciphertext: string;
}

export interface EncryptKeyFileOptions {
  /** Which kind of key `secretKey` is (decides how the public key is derived). Default "ed25519". */
  keyType?: KeyFileKeyType;
  /** scrypt cost; DEFAULT_SCRYPT_PARAMS when omitted. Tests use N = 2^10. */
  scrypt?: Partial<ScryptParams>;
}

export interface DecryptedKey {
  keyType: KeyFileKeyType;
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

const AAD_DOMAIN = new TextEncoder().encode("psp-keyfile-v1");

function malformed(message: string): CryptoError {
  return new CryptoError("malformed-key-file", `key file: ${message}`);
}

function checkScryptParams(params: ScryptParams): void {
  const { N, r, p } = params;
  const logN = Math.log2(N);
  if (!Number.isInteger(N) || !Number.isInteger(logN) || logN < SCRYPT_LIMITS.minLogN || logN > SCRYPT_LIMITS.maxLogN) {
    throw new CryptoError(
      "bad-kdf-params",
      `scrypt N must be a power of two from 2^${SCRYPT_LIMITS.minLogN} to 2^${SCRYPT_LIMITS.maxLogN}, got ${String(N)}`,
    );
  }
  if (!Number.isInteger(r) || r < 1 || r > SCRYPT_LIMITS.maxR) {
    throw new CryptoError("bad-kdf-params", `scrypt r must be an integer in 1..${SCRYPT_LIMITS.maxR}, got ${String(r)}`);
  }
  if (!Number.isInteger(p) || p < 1 || p > SCRYPT_LIMITS.maxP) {
    throw new CryptoError("bad-kdf-params", `scrypt p must be an integer in 1..${SCRYPT_LIMITS.maxP}, got ${String(p)}`);
  }
  if (128 * N * r > SCRYPT_LIMITS.maxMemoryBytes) {
    throw new CryptoError("bad-kdf-params", `scrypt N*r needs ${128 * N * r} bytes of memory, above the 1 GiB limit`);
  }
}

async function scrypt(passphrase: Uint8Array, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  const { N, r, p } = params;
  const nc = nodeCrypto;
  if (nc) {
    // node:crypto runs scrypt on the libuv pool, off the event loop.
    return new Promise((resolve, reject) => {
      nc.scrypt(passphrase, salt, AEAD_KEY_LEN, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => {
        if (err) reject(new CryptoError("bad-kdf-params", `scrypt failed: ${err.message}`, { cause: err }));
        else resolve(new Uint8Array(key.buffer, key.byteOffset, key.byteLength));
      });
    });
  }
  return nobleScryptAsync(passphrase, salt, { N, r, p, dkLen: AEAD_KEY_LEN, maxmem: 256 * N * r + 1024 * 1024 });
}

function passphraseBytes(passphrase: string): Uint8Array {
  if (typeof passphrase !== "string") throw new CryptoError("bad-passphrase", "passphrase must be a string");
  return new TextEncoder().encode(passphrase.normalize("NFKC"));
}

function associatedData(keyType: KeyFileKeyType, publicKey: Uint8Array, kdf: ScryptParams & { salt: Uint8Array }): Uint8Array {
  const header = new TextEncoder().encode(`|${keyType}|scrypt|${kdf.N}|${kdf.r}|${kdf.p}|`);
  return concatBytes(AAD_DOMAIN, header, publicKey, kdf.salt);
}

function derivePublicKey(keyType: KeyFileKeyType, secretKey: Uint8Array): Uint8Array {
  return keyType === "ed25519" ? ed25519PublicKey(secretKey) : x25519PublicKey(secretKey);
}

const LOWERCASE_HEX = /^[0-9a-f]*$/;

function fromHex(value: unknown, what: string, minLen: number, maxLen = minLen): Uint8Array {
  const bytes = typeof value === "string" && LOWERCASE_HEX.test(value) ? parseHex(value) : undefined;
  if (bytes === undefined || bytes.length < minLen || bytes.length > maxLen) {
    const size = minLen === maxLen ? `${minLen}` : `${minLen}..${maxLen}`;
    throw malformed(`${what} must be ${size} bytes of lowercase hex`);
  }
  return bytes;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Encrypts a 32-byte secret key under a passphrase; returns the key file as a JSON string. */
export async function encryptKeyFile(secretKey: Uint8Array, passphrase: string, options: EncryptKeyFileOptions = {}): Promise<string> {
  const keyType = options.keyType ?? "ed25519";
  if (keyType !== "ed25519" && keyType !== "x25519") {
    throw new CryptoError("malformed-key-file", `keyType must be "ed25519" or "x25519", got ${JSON.stringify(keyType)}`);
  }
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== ED25519_SECRET_KEY_LEN) {
    throw new CryptoError("bad-key-length", `secret key must be ${ED25519_SECRET_KEY_LEN} bytes`);
  }
  const pass = passphraseBytes(passphrase);
  if (pass.length === 0) throw new CryptoError("bad-passphrase", "refusing to encrypt a key file with an empty passphrase");
  const params: ScryptParams = { ...DEFAULT_SCRYPT_PARAMS, ...options.scrypt };
  checkScryptParams(params);
  const publicKey = derivePublicKey(keyType, secretKey);
  const salt = randomBytes(SALT_LEN);
  const nonce = randomBytes(AEAD_NONCE_LEN);
  const key = await scrypt(pass, salt, params);
  const ciphertext = aeadSeal(key, nonce, secretKey, associatedData(keyType, publicKey, { ...params, salt }));
  key.fill(0);
  const file: KeyFile = {
    version: KEY_FILE_VERSION,
    keyType,
    publicKey: hexOf(publicKey),
    kdf: { name: "scrypt", N: params.N, r: params.r, p: params.p, salt: hexOf(salt) },
    cipher: { name: AEAD_ALGORITHM, nonce: hexOf(nonce) },
    ciphertext: hexOf(ciphertext),
  };
  return JSON.stringify(file, null, 2);
}

/** Parses and structurally checks a key file without decrypting it. */
export function parseKeyFile(json: string | unknown): KeyFile {
  let data: unknown = json;
  if (typeof json === "string") {
    if (json.length > 64 * 1024) throw malformed(`file is ${json.length} characters; a key file is well under 1 KiB`);
    try {
      data = JSON.parse(json);
    } catch {
      throw malformed("not valid JSON");
    }
  }
  if (!isRecord(data)) throw malformed("top level must be a JSON object");
  if (data["version"] !== KEY_FILE_VERSION) throw malformed(`unsupported version ${JSON.stringify(data["version"])}; this software reads version ${KEY_FILE_VERSION}`);
  const keyType = data["keyType"];
  if (keyType !== "ed25519" && keyType !== "x25519") throw malformed(`keyType must be "ed25519" or "x25519"`);
  const kdf = data["kdf"];
  if (!isRecord(kdf) || kdf["name"] !== "scrypt") throw malformed(`kdf.name must be "scrypt"`);
  const cipher = data["cipher"];
  if (!isRecord(cipher) || cipher["name"] !== AEAD_ALGORITHM) throw malformed(`cipher.name must be "${AEAD_ALGORITHM}"`);
  for (const field of ["N", "r", "p"] as const) {
    if (typeof kdf[field] !== "number") throw malformed(`kdf.${field} must be a number`);
  }
  const params = { N: kdf["N"] as number, r: kdf["r"] as number, p: kdf["p"] as number };
  checkScryptParams(params);
  const salt = fromHex(kdf["salt"], "kdf.salt", 16, 64);
  const nonce = fromHex(cipher["nonce"], "cipher.nonce", AEAD_NONCE_LEN);
  const publicKey = fromHex(data["publicKey"], "publicKey", 32);
  const ciphertext = fromHex(data["ciphertext"], "ciphertext", ED25519_SECRET_KEY_LEN + AEAD_TAG_LEN);
  return {
    version: KEY_FILE_VERSION,
    keyType,
    publicKey: hexOf(publicKey),
    kdf: { name: "scrypt", ...params, salt: hexOf(salt) },
    cipher: { name: AEAD_ALGORITHM, nonce: hexOf(nonce) },
    ciphertext: hexOf(ciphertext),
  };
}

/** Decrypts a key file (JSON string or parsed object). */
export async function decryptKeyFile(json: string | unknown, passphrase: string): Promise<DecryptedKey> {
  const file = parseKeyFile(json);
  const pass = passphraseBytes(passphrase);
  const salt = fromHex(file.kdf.salt, "kdf.salt", 16, 64);
  const publicKey = fromHex(file.publicKey, "publicKey", 32);
  const params: ScryptParams = { N: file.kdf.N, r: file.kdf.r, p: file.kdf.p };
  const key = await scrypt(pass, salt, params);
  let secretKey: Uint8Array;
  try {
    secretKey = aeadOpen(
      key,
      fromHex(file.cipher.nonce, "cipher.nonce", AEAD_NONCE_LEN),
      fromHex(file.ciphertext, "ciphertext", ED25519_SECRET_KEY_LEN + AEAD_TAG_LEN),
      associatedData(file.keyType, publicKey, { ...params, salt }),
    );
  } catch (err) {
    throw new CryptoError("bad-passphrase", "key file does not open with this passphrase (or its header was altered)", { cause: err });
  } finally {
    key.fill(0);
  }
  const derived = derivePublicKey(file.keyType, secretKey);
  if (hexOf(derived) !== file.publicKey) {
    secretKey.fill(0);
    throw malformed("the decrypted secret key does not match the file's publicKey");
  }
  return { keyType: file.keyType, secretKey, publicKey: derived };
}

/**
 * CryptoError: the typed error of the crypto layer.
 *
 * Owns the list of things that can go wrong with keys, signatures, key
 * exchanges, identity strings and key files. Every function in node/src/crypto
 * throws only this error for bad input, so a caller can switch on `kind`.
 */
import { layerError } from "../errors.js";
import type { KindCategories } from "../errors.js";

export type CryptoErrorKind =
  /** A key, nonce, signature or other fixed-size value had the wrong length. */
  | "bad-key-length"
  /** A Diffie-Hellman result was all zero: the peer sent a low-order point. */
  | "zero-shared-secret"
  /** The ntor server's AUTH value did not match: wrong server key or a forged reply. */
  | "ntor-auth-failed"
  /** An ntor onionskin or reply had the wrong shape. */
  | "ntor-bad-message"
  /** The hs-ntor service's AUTH in a RENDEZVOUS1 reply did not match: wrong service keys or a forged reply. */
  | "hs-ntor-auth-failed"
  /** An hs-ntor reply had the wrong shape, or a protocol id was unusable. */
  | "hs-ntor-bad-message"
  /** An Ed25519 public key does not decode to a usable curve point (off the curve, non-canonical or of small order). */
  | "bad-public-key"
  /** AEAD decryption failed: wrong key, wrong nonce, wrong associated data or tampered data. */
  | "aead-auth-failed"
  /** An identity string is malformed (see the message for which part). */
  | "bad-identity"
  /** An identity string's checksum does not match its prefix and key (typo). */
  | "identity-checksum-mismatch"
  /** An identity kind other than account, node or group. */
  | "unknown-identity-kind"
  /** A key file could not be decrypted with the passphrase given. */
  | "bad-passphrase"
  /** A key file is not valid JSON, has an unknown version or bad fields. */
  | "malformed-key-file"
  /** KDF parameters are out of the accepted range (too weak or too costly). */
  | "bad-kdf-params"
  /** A requested output length is out of range. */
  | "bad-length"
  /** A time period number, period length or timestamp is out of range. */
  | "bad-time-period"
  /** A HashX seed (an Equi-X challenge) yields a program that fails HashX's constraints: pick another seed or nonce. */
  | "hashx-bad-seed"
  /** An Equi-X solution's indices are not in the canonical tree order (reordered or swapped indices). */
  | "equix-order"
  /** An Equi-X solution's hashes do not cancel at an inner tree level (15 or 30 low bits): an altered solution. */
  | "equix-partial-sum"
  /** An Equi-X solution's eight hashes do not sum to zero in their low 60 bits. */
  | "equix-final-sum"
  /** A proof-of-work solution names a different seed than the one the service published. */
  | "pow-seed-mismatch"
  /** A proof-of-work solution's blake2b check fails for the effort it claims. */
  | "pow-effort-failed"
  /** An RSA key is unusable for RFC 9474 blind signatures (not RSA, too small or too large, even modulus). */
  | "blind-rsa-bad-key"
  /** A blinded message or blind signature is of the wrong length or not below the modulus, or the message cannot be blinded. */
  | "blind-rsa-bad-input"
  /** An RFC 9474 signature (blind or final) does not verify under the public key. */
  | "blind-rsa-invalid-signature";

/**
 * Lengths, lengths of outputs and time periods are the caller's to get right
 * (a peer's bytes are length-checked by the decoder above before they get
 * here); what fails to verify came from someone else; identity strings,
 * passphrases and key files come from a person.
 */
const CRYPTO_CATEGORIES = {
  "bad-key-length": "bug",
  "zero-shared-secret": "peer",
  "ntor-auth-failed": "peer",
  "ntor-bad-message": "peer",
  "hs-ntor-auth-failed": "peer",
  "hs-ntor-bad-message": "peer",
  "bad-public-key": "peer",
  "aead-auth-failed": "peer",
  "bad-identity": "config",
  "identity-checksum-mismatch": "config",
  "unknown-identity-kind": "config",
  "bad-passphrase": "config",
  "malformed-key-file": "config",
  "bad-kdf-params": "config",
  "bad-length": "bug",
  "bad-time-period": "bug",
  "hashx-bad-seed": "peer",
  "equix-order": "peer",
  "equix-partial-sum": "peer",
  "equix-final-sum": "peer",
  "pow-seed-mismatch": "peer",
  "pow-effort-failed": "peer",
  "blind-rsa-bad-key": "bug",
  "blind-rsa-bad-input": "peer",
  "blind-rsa-invalid-signature": "peer",
} as const satisfies KindCategories<CryptoErrorKind>;

export class CryptoError extends layerError<CryptoErrorKind>("crypto", CRYPTO_CATEGORIES) {}

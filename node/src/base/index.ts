/**
 * The shared primitives: small, dependency-free helpers every layer would
 * otherwise write again. This file only re-exports.
 *
 * - bytes.ts: bytesEqual (public data; secrets use crypto/compare.ts),
 *   compareBytes, concatBytes;
 * - hex.ts: hexOf / parseHex, lower-case hex without a prefix;
 * - base64url.ts: base64UrlEncode / base64UrlDecode, unpadded and strict
 *   (one text per byte string);
 * - text.ts: utf8Prefix (UTF-8 cut to a byte budget at a character
 *   boundary), printableAscii;
 * - timeout.ts: withTimeout, a deadline on a promise; unrefTimer, the
 *   SetTimer services take so tests can drive their timers by hand;
 * - codes.ts: codeLookup, the reverse of a name → wire-code table;
 * - token-bucket.ts: TokenBucket, rate arithmetic on a caller's clock;
 * - errors.ts: BaseError, raised only for a caller's bad argument.
 *
 * Depends on: nothing in PSP but node/src/errors.ts; no node: modules, so it
 * runs in browsers too.
 * Used by: every layer (crypto, wire, link, onion, directory, dht, chain,
 * authority, node, client, cli).
 * Trust boundary: trusts nothing: pure functions of their arguments (the
 * token bucket's state is its caller's) that never guess at bad input
 * (parseHex and base64UrlDecode return undefined, utf8Prefix never splits a character).
 * Whether a peer's bytes are acceptable is the calling layer's to decide.
 * Spec: none of its own; the byte layouts it serves are in docs/spec/.
 */
export { BaseError } from "./errors.js";
export type { BaseErrorKind } from "./errors.js";
export { bytesEqual, compareBytes, concatBytes } from "./bytes.js";
export { hexOf, parseHex } from "./hex.js";
export { base64UrlDecode, base64UrlEncode } from "./base64url.js";
export { printableAscii, utf8Prefix } from "./text.js";
export { unrefTimer, withTimeout } from "./timeout.js";
export type { CancellableTimer, SetTimer } from "./timeout.js";
export { codeLookup } from "./codes.js";
export type { Code, CodeLookup, CodeName, CodeTable } from "./codes.js";
export { TokenBucket } from "./token-bucket.js";
export type { TokenBucketOptions } from "./token-bucket.js";

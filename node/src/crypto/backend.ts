/**
 * Picks the crypto backend: node:crypto when the runtime has it, @noble otherwise.
 *
 * Owns the decision only. node:crypto (OpenSSL) is much faster for Ed25519,
 * X25519 and AEAD (see scripts/bench/crypto.ts), but the client library must
 * also run in a browser, where only the @noble code exists. We never import
 * "node:crypto" statically: `process.getBuiltinModule` (Node >= 22.3) returns
 * it synchronously in Node and is absent in browsers, so bundlers see no Node
 * import. Setting PSP_CRYPTO_BACKEND=noble forces the portable code (used to
 * run the whole test suite against it).
 *
 * Trusts: the runtime's node:crypto, when present, to be genuine.
 */
import type * as NodeCrypto from "node:crypto";
import { bytesEqual } from "../base/bytes.js";

export type BackendName = "node" | "noble";

interface MaybeNodeProcess {
  getBuiltinModule?: (id: string) => unknown;
  env?: Record<string, string | undefined>;
}

function loadNodeCrypto(): typeof NodeCrypto | undefined {
  const proc = (globalThis as { process?: MaybeNodeProcess }).process;
  if (proc?.env?.["PSP_CRYPTO_BACKEND"] === "noble") return undefined;
  try {
    const mod = proc?.getBuiltinModule?.("node:crypto") as typeof NodeCrypto | undefined;
    return mod && typeof mod.sign === "function" ? mod : undefined;
  } catch {
    return undefined;
  }
}

/** node:crypto when available and not disabled, else undefined. */
export const nodeCrypto: typeof NodeCrypto | undefined = loadNodeCrypto();

/** Which backend the default functions of this layer use. */
export const defaultBackend: BackendName = nodeCrypto ? "node" : "noble";

/** Cryptographically secure random bytes (WebCrypto, present in Node and browsers). */
export function randomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  // getRandomValues fills at most 65536 bytes per call.
  for (let i = 0; i < length; i += 65536) {
    globalThis.crypto.getRandomValues(out.subarray(i, Math.min(length, i + 65536)));
  }
  return out;
}

/**
 * A small cache from a caller's key bytes to a backend key object, so the hot
 * path does not re-parse DER for every signature. Keyed by the array object;
 * a stored copy is compared on every hit so a caller mutating its array in
 * place can never get the old key back.
 */
export class KeyObjectCache<T> {
  private readonly map = new WeakMap<Uint8Array, { copy: Uint8Array; value: T }>();

  get(key: Uint8Array, make: (key: Uint8Array) => T): T {
    const hit = this.map.get(key);
    if (hit && bytesEqual(hit.copy, key)) return hit.value;
    const value = make(key);
    this.map.set(key, { copy: key.slice(), value });
    return value;
  }
}

/** Concatenates byte arrays into a new one (the crypto modules' import of base's). */
export { concatBytes } from "../base/bytes.js";

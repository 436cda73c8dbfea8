/**
 * Brotli compression of consensus documents for serving and fetching.
 *
 * Measured (scripts/bench/directory.ts): brotli cuts a 10,000-node consensus
 * to about 58% of its canonical bytes (deflate 60%); the random keys, 64 of
 * every ~130 bytes per node, do not compress further. So caches serve the
 * compressed form when the fetcher accepts it; the signed bytes are the
 * decompressed ones, so compression is transport only and changes no
 * signature.
 *
 * Owns the decompression bound: output is capped at maxBytes before it is
 * produced, so a small hostile input cannot expand into gigabytes.
 * node:zlib is loaded through process.getBuiltinModule, as crypto/backend.ts
 * does, so this module can be bundled for a browser (where it reports
 * "bad-config": fetch uncompressed there).
 */
import type * as NodeZlib from "node:zlib";
import { DEFAULT_LIMITS } from "./config.js";
import { DirectoryError } from "./errors.js";

function loadZlib(): typeof NodeZlib | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    return proc?.getBuiltinModule?.("node:zlib") as typeof NodeZlib | undefined;
  } catch {
    return undefined;
  }
}

const zlib = loadZlib();

function requireZlib(): typeof NodeZlib {
  if (!zlib) throw new DirectoryError("bad-config", "brotli is unavailable in this runtime (no node:zlib): fetch the consensus uncompressed");
  return zlib;
}

/** Brotli-compresses document bytes (quality 9: most of the gain of 11 at a fraction of the time). */
export function compressConsensus(bytes: Uint8Array): Uint8Array {
  const z = requireZlib();
  const out = z.brotliCompressSync(bytes, {
    params: { [z.constants.BROTLI_PARAM_QUALITY]: 9, [z.constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Decompresses at most maxBytes (default the consensus size limit). Throws
 * DirectoryError "too-large" beyond it and "malformed" for bytes that are not
 * brotli. The result still has to go through verifyConsensus.
 */
export function decompressConsensus(bytes: Uint8Array, maxBytes: number = DEFAULT_LIMITS.maxConsensusBytes): Uint8Array {
  const z = requireZlib();
  if (!(bytes instanceof Uint8Array)) throw new DirectoryError("malformed", "compressed consensus must be a Uint8Array");
  try {
    const out = z.brotliDecompressSync(bytes, { maxOutputLength: maxBytes });
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ERR_BUFFER_TOO_LARGE" || (err instanceof RangeError && /maxOutputLength|too large/i.test(err.message))) {
      throw new DirectoryError("too-large", `compressed consensus expands beyond ${maxBytes} bytes`, { cause: err });
    }
    throw new DirectoryError("malformed", `not a brotli-compressed consensus: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

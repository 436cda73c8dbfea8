/**
 * Canonical CBOR: the one byte encoding of every signed PSP document
 * (descriptors, consensus, DHT records, certificates, receipts).
 *
 * Owns the rules (RFC 8949 §4.2.1 core deterministic encoding, via cborg):
 * - definite lengths only; integers, lengths and floats in their shortest form;
 * - map keys are text strings, sorted by the bytewise order of their encoding;
 *   no duplicate keys;
 * - values: null, booleans, integers (−2^64 .. 2^64−1; beyond 2^53 they must
 *   be given as, and decode as, bigint), finite floats only where a value is not an integer, text
 *   strings, byte strings (Uint8Array), arrays and string-keyed maps;
 * - no tags, no undefined, no NaN or infinities, no other simple values.
 * Object properties whose value is undefined are omitted on encode (as
 * JSON.stringify does); undefined anywhere else cannot be encoded.
 *
 * decodeCanonical accepts exactly the bytes encodeCanonical produces: it
 * decodes strictly, then re-encodes and compares, so two different byte
 * strings can never carry the same signed meaning.
 *
 * Trusts nothing about input bytes: size and nesting depth are bounded
 * before any work proportional to them, and every rejection is a WireError
 * ("too-large", "malformed", "non-canonical", "unencodable").
 */
import { Tokenizer, Type, decode, encode, rfc8949EncodeOptions } from "cborg";
import type { DecodeOptions, EncodeOptions } from "cborg";
import { bytesEqual } from "../base/bytes.js";
import { WireError } from "./errors.js";

export type CanonicalValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | CanonicalValue[]
  | { [key: string]: CanonicalValue };

export interface DecodeCanonicalOptions {
  /** Largest input accepted, in bytes. Required: every caller must think about it. */
  maxBytes: number;
  /** Deepest nesting of arrays and maps accepted; DEFAULT_MAX_DEPTH when omitted. */
  maxDepth?: number;
}

export const DEFAULT_MAX_DEPTH = 32;
const MAX_UINT64 = 2n ** 64n - 1n;
const MIN_NEGINT64 = -(2n ** 64n);

const ENCODE_OPTIONS: EncodeOptions = {
  ...rfc8949EncodeOptions,
  float64: false,
  ignoreUndefinedProperties: true,
};

const DECODE_OPTIONS: DecodeOptions = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: true,
  rejectDuplicateMapKeys: true,
  useMaps: false,
  tags: [],
};

function unencodable(path: string, what: string): WireError {
  return new WireError("unencodable", `cannot encode ${what} at ${path || "the top level"} canonically`);
}

/** Checks that `value` is in the canonical data model, before cborg sees it. */
function checkEncodable(value: unknown, path: string, depth: number, maxDepth: number): void {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) throw unencodable(path, String(value));
      // cborg would write such a number as a float; integers that big must be bigints.
      if (Number.isInteger(value) && !Number.isSafeInteger(value)) throw unencodable(path, `${value} (use a bigint above 2^53)`);
      return;
    case "bigint":
      if (value > MAX_UINT64 || value < MIN_NEGINT64) throw unencodable(path, "an integer outside the 64-bit CBOR range");
      return;
    case "object": {
      if (value === null || value instanceof Uint8Array) return;
      if (depth >= maxDepth) throw unencodable(path, `a value nested deeper than ${maxDepth} levels (or a cycle)`);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          if (item === undefined) throw unencodable(`${path}[${i}]`, "undefined");
          checkEncodable(item, `${path}[${i}]`, depth + 1, maxDepth);
        }
        return;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw unencodable(path, `a ${(value as object).constructor?.name ?? "non-plain"} object; use plain objects, arrays and Uint8Array`);
      }
      for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
        if (item !== undefined) checkEncodable(item, `${path}.${key}`, depth + 1, maxDepth);
      }
      return;
    }
    default:
      throw unencodable(path, typeof value);
  }
}

/** Encodes `value` canonically. Throws WireError "unencodable" for values outside the data model. */
export function encodeCanonical(value: unknown): Uint8Array {
  if (value === undefined) throw unencodable("", "undefined");
  checkEncodable(value, "", 0, DEFAULT_MAX_DEPTH);
  try {
    return plainBytes(encode(value, ENCODE_OPTIONS));
  } catch (err) {
    throw new WireError("unencodable", `cannot encode value canonically: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/**
 * cborg's tokenizer wrapped to count nesting as tokens are read, so a deeply
 * nested input is refused before the recursive decoder descends into it.
 */
class DepthLimitedTokenizer extends Tokenizer {
  private readonly remaining: number[] = [];

  constructor(
    data: Uint8Array,
    options: DecodeOptions,
    private readonly maxDepth: number,
  ) {
    super(data, options);
  }

  override next(): ReturnType<Tokenizer["next"]> {
    const token = super.next();
    const stack = this.remaining;
    if (stack.length > 0) stack[stack.length - 1] = (stack[stack.length - 1] as number) - 1;
    const isArray = Type.equals(token.type, Type.array);
    const isMap = Type.equals(token.type, Type.map);
    if ((isArray || isMap) && (token.value as number) > 0) {
      stack.push(isMap ? 2 * (token.value as number) : (token.value as number));
      if (stack.length > this.maxDepth) {
        throw new WireError("malformed", `CBOR nesting is deeper than the ${this.maxDepth}-level limit`);
      }
    }
    while (stack.length > 0 && stack[stack.length - 1] === 0) stack.pop();
    return token;
  }
}

/**
 * A plain Uint8Array view of the same memory. cborg hands out Node Buffers in
 * Node, and Buffer#slice is a view where Uint8Array#slice copies; callers get
 * plain arrays so the two never get confused.
 */
function plainBytes(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes canonical CBOR, refusing anything encodeCanonical would not have
 * produced. Byte strings in the result are copies, not views of `bytes`.
 */
export function decodeCanonical(bytes: Uint8Array, options: DecodeCanonicalOptions): CanonicalValue {
  const maxBytes = options?.maxBytes;
  if (!Number.isInteger(maxBytes) || maxBytes < 1) {
    throw new WireError("bad-field", `decodeCanonical needs options.maxBytes, a positive integer; got ${String(maxBytes)}`);
  }
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  if (!Number.isInteger(maxDepth) || maxDepth < 1 || maxDepth > 256) {
    throw new WireError("bad-field", `maxDepth must be an integer in 1..256, got ${String(maxDepth)}`);
  }
  if (!(bytes instanceof Uint8Array)) throw new WireError("malformed", `canonical CBOR input must be a Uint8Array, got ${typeof bytes}`);
  if (bytes.length > maxBytes) {
    throw new WireError("too-large", `input is ${bytes.length} bytes, above the ${maxBytes}-byte limit`);
  }
  if (bytes.length === 0) throw new WireError("malformed", "input is empty");
  // Decoded byte strings are then copies (Uint8Array#slice), never views of the input.
  bytes = plainBytes(bytes);
  let value: CanonicalValue;
  try {
    value = decode(bytes, { ...DECODE_OPTIONS, tokenizer: new DepthLimitedTokenizer(bytes, DECODE_OPTIONS, maxDepth) }) as CanonicalValue;
  } catch (err) {
    if (err instanceof WireError) throw err;
    const reason = err instanceof Error ? err.message.replace(/^CBOR decode error: /, "") : String(err);
    throw new WireError("malformed", `not well-formed canonical CBOR: ${reason}`, { cause: err });
  }
  let again: Uint8Array;
  try {
    again = encodeCanonical(value);
  } catch (err) {
    throw new WireError("malformed", "decoded value is outside the canonical data model", { cause: err });
  }
  if (!bytesEqual(again, bytes)) {
    throw new WireError("non-canonical", "CBOR is well-formed but not in canonical form (key order, float size or string encoding differs)");
  }
  return value;
}

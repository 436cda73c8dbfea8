/**
 * Typed reads of the fields of a decoded canonical-CBOR value.
 *
 * Owns the shape checks every document and message decoder repeats (a map
 * with exactly these keys, a byte string of this length, an unsigned
 * integer, a bounded text or array), so each decoder states its layout as a
 * list of reads. The readers fail with the error the caller makes from a
 * message (its own layer's "malformed"), so the directory, the authority
 * service and certificates share the checks and keep their error kinds.
 *
 * Trusts nothing about the value: every read checks its type first.
 */
import type { CanonicalValue } from "./canonical.js";

export type CborMap = { [key: string]: CanonicalValue };

export interface CborReaders {
  /** `value` as a map holding every key of `required` and no key outside `required` and `optional`. */
  readMap(value: unknown, what: string, required: readonly string[], optional?: readonly string[]): CborMap;
  /** A byte string of exactly `length` bytes. */
  readBytes(value: unknown, what: string, length: number): Uint8Array;
  /** An integer in 0..max (default: the largest safe integer). */
  readUint(value: unknown, what: string, max?: number): number;
  /** A text string matching `pattern`. */
  readString(value: unknown, what: string, pattern: RegExp): string;
  /** A text string of at most `maxLength` characters. */
  readText(value: unknown, what: string, maxLength: number): string;
  /** An array of minItems..maxItems items. */
  readArray(value: unknown, what: string, maxItems: number, minItems?: number): CanonicalValue[];
}

/** True for a CBOR map as decodeCanonical returns it (a plain object). */
export function isCborMap(value: unknown): value is CborMap {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** The readers, each throwing `malformed(message)` for a value of the wrong shape. */
export function cborReaders(malformed: (message: string) => Error): CborReaders {
  return {
    readMap(value, what, required, optional = []) {
      if (!isCborMap(value)) throw malformed(`${what} must be a CBOR map`);
      for (const key of required) if (!Object.hasOwn(value, key)) throw malformed(`${what} lacks the field "${key}"`);
      for (const key of Object.keys(value)) {
        if (!required.includes(key) && !optional.includes(key)) throw malformed(`${what} has an unknown field ${JSON.stringify(key.slice(0, 32))}`);
      }
      return value;
    },
    readBytes(value, what, length) {
      if (!(value instanceof Uint8Array) || value.length !== length) throw malformed(`${what} must be a ${length}-byte string`);
      return value;
    },
    readUint(value, what, max = Number.MAX_SAFE_INTEGER) {
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > max) throw malformed(`${what} must be an integer in 0..${max}`);
      return value;
    },
    readString(value, what, pattern) {
      if (typeof value !== "string" || !pattern.test(value)) throw malformed(`${what} must match ${pattern.source}`);
      return value;
    },
    readText(value, what, maxLength) {
      if (typeof value !== "string" || value.length > maxLength) throw malformed(`${what} must be text of at most ${maxLength} characters`);
      return value;
    },
    readArray(value, what, maxItems, minItems = 0) {
      if (!Array.isArray(value)) throw malformed(`${what} must be an array`);
      if (value.length > maxItems || value.length < minItems) throw malformed(`${what} must have ${minItems}..${maxItems} items, has ${value.length}`);
      return value;
    },
  };
}

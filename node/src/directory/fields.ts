/**
 * Field readers for directory documents decoded from canonical CBOR.
 *
 * Owns the mapping of shape errors, and of the wire layer's WireError, to
 * DirectoryError, so each document module states its layout as a list of
 * typed reads. Trusts nothing about the decoded value.
 */
import type { CanonicalValue } from "../wire/canonical.js";
import { WireError } from "../wire/errors.js";
import { DirectoryError } from "./errors.js";

export type CborMap = { [key: string]: CanonicalValue };

export function malformed(message: string): DirectoryError {
  return new DirectoryError("malformed", message);
}

/** Runs a wire-layer call, turning its WireError into the matching DirectoryError. */
export function fromWire<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof WireError) {
      const kind = err.kind === "too-large" ? "too-large" : err.kind === "bad-signature" ? "bad-signature" : "malformed";
      throw new DirectoryError(kind, `${what}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/** Checks `value` is a map with exactly the required keys plus any of the optional ones. */
export function readMap(value: unknown, what: string, required: readonly string[], optional: readonly string[] = []): CborMap {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw malformed(`${what} must be a CBOR map`);
  }
  const map = value as CborMap;
  for (const key of required) if (!Object.hasOwn(map, key)) throw malformed(`${what} lacks the field "${key}"`);
  for (const key of Object.keys(map)) {
    if (!required.includes(key) && !optional.includes(key)) throw malformed(`${what} has an unknown field ${JSON.stringify(key.slice(0, 32))}`);
  }
  return map;
}

export function readBytes(value: unknown, what: string, length: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) throw malformed(`${what} must be a ${length}-byte string`);
  return value;
}

export function readUint(value: unknown, what: string, max: number = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw malformed(`${what} must be an integer in 0..${max}`);
  }
  return value;
}

export function readString(value: unknown, what: string, pattern: RegExp): string {
  if (typeof value !== "string" || !pattern.test(value)) throw malformed(`${what} must match ${pattern.source}`);
  return value;
}

export function readArray(value: unknown, what: string, maxItems: number, minItems = 0): CanonicalValue[] {
  if (!Array.isArray(value)) throw malformed(`${what} must be an array`);
  if (value.length > maxItems || value.length < minItems) throw malformed(`${what} must have ${minItems}..${maxItems} items, has ${value.length}`);
  return value;
}

/** Bytewise comparison (shorter first on a common prefix), for sorting keys and digests. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareBytes(a, b) === 0;
}

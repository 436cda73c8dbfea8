/**
 * Field readers for directory documents decoded from canonical CBOR.
 *
 * Owns the mapping of shape errors (wire/fields.ts's readers), and of the
 * wire layer's WireError, to DirectoryError, so each document module states
 * its layout as a list of typed reads. Trusts nothing about the decoded value.
 */
import { WireError } from "../wire/errors.js";
import { cborReaders } from "../wire/fields.js";
import { DirectoryError } from "./errors.js";

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

/** The wire layer's CBOR field readers, failing with DirectoryError "malformed". */
export const { readMap, readBytes, readUint, readString, readArray } = cborReaders(malformed);

/**
 * Contacts: what one node knows about another (id, key, puzzle solution,
 * transport address) and the cheap S/Kademlia check every contact passes
 * before it is used.
 *
 * Owns contact shape checks and puzzle verification with a small cache.
 * Trusts: crypto/puzzles for the hash checks; nothing about its input.
 */
import { verifyDynamicPuzzle, verifyStaticPuzzle } from "../crypto/puzzles.js";
import { DhtError } from "./errors.js";
import { idHex, isId } from "./id.js";
import type { NodeId } from "./id.js";

/** Longest transport address accepted (a host:port, an onion-style ref, a sim name). */
export const MAX_ADDRESS_LENGTH = 256;

export interface Contact {
  /** SHA-256(publicKey); must satisfy the static puzzle. */
  nodeId: NodeId;
  /** The node's Ed25519 identity key (32 bytes); signs its messages. */
  publicKey: Uint8Array;
  /** Dynamic puzzle solution X (32 bytes). */
  puzzleX: Uint8Array;
  /** Transport address, opaque to the DHT (the link layer resolves it). */
  address: string;
}

export interface PuzzleDifficulty {
  /** c1: leading zero bits of SHA-256(nodeId). */
  staticDifficulty: number;
  /** c2: leading zero bits of SHA-256(nodeId XOR X). */
  dynamicDifficulty: number;
}

/** Checks a value has the Contact shape; throws DhtError "malformed" naming the bad field. */
export function assertContactShape(value: unknown): asserts value is Contact {
  if (typeof value !== "object" || value === null) throw new DhtError("malformed", "contact must be an object");
  const c = value as Record<string, unknown>;
  if (!isId(c["nodeId"])) throw new DhtError("malformed", "contact.nodeId must be 32 bytes");
  if (!isId(c["publicKey"])) throw new DhtError("malformed", "contact.publicKey must be 32 bytes");
  if (!isId(c["puzzleX"])) throw new DhtError("malformed", "contact.puzzleX must be 32 bytes");
  const address = c["address"];
  if (typeof address !== "string" || address.length === 0 || address.length > MAX_ADDRESS_LENGTH) {
    throw new DhtError("malformed", `contact.address must be a string of 1..${MAX_ADDRESS_LENGTH} characters`);
  }
}

const hexCache = new WeakMap<Contact, string>();

/**
 * Hex node id of a contact, cached per contact object (contacts are never
 * mutated after creation), so a contact shared by many routing tables has
 * one id string.
 */
export function contactHex(contact: Contact): string {
  let hex = hexCache.get(contact);
  if (hex === undefined) hexCache.set(contact, (hex = idHex(contact.nodeId)));
  return hex;
}

/**
 * Verifies contacts against the puzzles. Valid contacts are remembered (by
 * id, key and X) in a bounded cache so a contact seen in many replies is
 * hashed once; a contact with the same id but another key or X is checked
 * afresh and fails.
 */
export class ContactVerifier {
  private readonly verified = new Map<string, string>();

  constructor(
    readonly difficulty: PuzzleDifficulty,
    private readonly cacheSize = 4096,
  ) {}

  /** Throws DhtError "malformed" or "bad-node-id"; returns the contact typed. */
  verify(value: unknown): Contact {
    assertContactShape(value);
    const key = contactHex(value);
    const proof = idHex(value.publicKey) + idHex(value.puzzleX);
    if (this.verified.get(key) === proof) return value;
    if (!verifyStaticPuzzle(value.publicKey, value.nodeId, this.difficulty.staticDifficulty)) {
      throw new DhtError(
        "bad-node-id",
        `contact ${key.slice(0, 16)}: node id is not SHA-256 of its key or misses static puzzle difficulty ${this.difficulty.staticDifficulty}`,
      );
    }
    if (!verifyDynamicPuzzle(value.nodeId, value.puzzleX, this.difficulty.dynamicDifficulty)) {
      throw new DhtError(
        "bad-node-id",
        `contact ${key.slice(0, 16)}: dynamic puzzle unsolved at difficulty ${this.difficulty.dynamicDifficulty}`,
      );
    }
    if (this.verified.size >= this.cacheSize) {
      const oldest = this.verified.keys().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.set(key, proof);
    return value;
  }
}

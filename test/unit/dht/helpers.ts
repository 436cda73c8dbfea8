import { sha256 } from "@noble/hashes/sha2.js";
import type { Contact } from "../../../node/src/dht/contact.js";

/** A contact with an id chosen directly (no puzzles): for table and lookup tests that never verify contacts. */
export function rawContact(id: Uint8Array, address = `raw-${Buffer.from(id).toString("hex").slice(0, 8)}`): Contact {
  return { nodeId: id, publicKey: new Uint8Array(32), puzzleX: new Uint8Array(32), address };
}

/** An id equal to `base` with the given bit flipped and optionally a distinct tail byte. */
export function idWithBitFlipped(base: Uint8Array, bit: number, tail = 0): Uint8Array {
  const id = base.slice();
  id[bit >> 3] = (id[bit >> 3] as number) ^ (0x80 >> (bit & 7));
  id[31] = (id[31] as number) ^ tail;
  return id;
}

export function seededId(n: number): Uint8Array {
  return sha256(new TextEncoder().encode(`id-${n}`));
}

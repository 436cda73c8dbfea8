import { describe, expect, it } from "vitest";
import {
  DHT_CHUNK_LEN,
  DhtCellKind,
  decodeDhtErrorBody,
  encodeDhtCells,
  encodeDhtErrorCell,
  formatLinkAddress,
  fragmentOfPayload,
  parseLinkAddress,
} from "../../../node/src/dht/link-transport.js";
import { CELL_PAYLOAD_LEN, decodeCell, encodeCell } from "../../../node/src/wire/cell.js";
import { Reassembler } from "../../../node/src/wire/fragment.js";

describe("DHT cells", () => {
  it("a message split into DHT cells survives zero padding and reassembles", () => {
    const message = Uint8Array.from({ length: 3 * DHT_CHUNK_LEN + 17 }, (_, i) => (i * 7) & 0xff);
    const cells = encodeDhtCells(DhtCellKind.RESPONSE, 0xdeadbeef, message);
    expect(cells).toHaveLength(4);
    const reassembler = new Reassembler({ maxMessageBytes: 32 * 1024 });
    let out: Uint8Array | undefined;
    cells.forEach((cell, i) => {
      const wire = decodeCell(encodeCell(cell)); // padded to 507 bytes
      expect(wire.payload).toHaveLength(CELL_PAYLOAD_LEN);
      expect(Array.from(wire.payload.subarray(0, 5))).toEqual([DhtCellKind.RESPONSE, 0xde, 0xad, 0xbe, 0xef]);
      const { fragment, last } = fragmentOfPayload(wire.payload);
      expect(last).toBe(i === 3);
      out = reassembler.push(fragment);
    });
    expect(out).toEqual(message);
  });

  it("a fragment claiming to lie past its message's end is a typed error", () => {
    const payload = new Uint8Array(CELL_PAYLOAD_LEN);
    payload.set([1, 0, 0, 0, 1, 0, 3, 0, 0, 0, 100], 0); // seq 3 of a 100-byte message
    expect(() => fragmentOfPayload(payload)).toThrow(expect.objectContaining({ kind: "bad-fragment" }));
  });

  it("ERROR cells carry a DhtError kind; unknown kinds decode as malformed", () => {
    const cell = encodeDhtErrorCell(5, "busy", "x".repeat(2000));
    expect(cell.payload.length).toBeLessThanOrEqual(CELL_PAYLOAD_LEN);
    const wire = decodeCell(encodeCell(cell));
    const err = decodeDhtErrorBody(wire.payload.subarray(5));
    expect(err.kind).toBe("busy");
    const bogus = encodeDhtErrorCell(5, "busy", "").payload.slice();
    bogus.set(new TextEncoder().encode("nope"), 6);
    expect(decodeDhtErrorBody(bogus.subarray(5)).kind).toBe("malformed");
  });

  it("link contact addresses round-trip and bad ones are refused", () => {
    expect(parseLinkAddress(formatLinkAddress("127.0.0.1", 4433))).toEqual({ host: "127.0.0.1", port: 4433 });
    expect(parseLinkAddress(formatLinkAddress("::1", 9))).toEqual({ host: "::1", port: 9 });
    for (const bad of ["sim-3", "host:0", "host:70000", "a:b:1"]) {
      expect(() => parseLinkAddress(bad)).toThrow(expect.objectContaining({ kind: "unreachable" }));
    }
  });
});

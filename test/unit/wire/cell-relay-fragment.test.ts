import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CELL_LEN, CELL_PAYLOAD_LEN, CellCommand, cellCommandName, decodeCell, encodeCell, encodeCellInto, encodeCells, isLinkCommand } from "../../../node/src/wire/cell.js";
import type { Cell } from "../../../node/src/wire/cell.js";
import { WireError } from "../../../node/src/wire/errors.js";
import { FRAGMENT_HEADER_LEN, Reassembler, fragmentMessage } from "../../../node/src/wire/fragment.js";
import {
  RELAY_DATA_LEN,
  RelayCommand,
  decodeRelayPayload,
  encodeRelayPayload,
  isKnownRelayCommand,
  registerRelayCommands,
  relayCommandName,
} from "../../../node/src/wire/relay.js";
import { validCell } from "../../properties/wire.js";
import { kindOf } from "../../helpers/index.js";

const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** Runs fn; if it throws, the error must be a WireError. Returns the kind or undefined. */
const wireKind = (fn: () => unknown) => kindOf(fn, WireError);

describe("cells", () => {
  it("has the agreed constants", () => {
    expect([CELL_LEN, CELL_PAYLOAD_LEN]).toEqual([512, 507]);
    expect(CellCommand).toEqual({ PADDING: 0, CREATE: 1, CREATED: 2, RELAY: 3, DESTROY: 4, RELAY_EARLY: 5, VERSIONS: 7, AUTH: 8, CLOSE: 9, DHT: 10, RPC: 11 });
    expect(cellCommandName(3)).toBe("RELAY");
    expect(cellCommandName(6)).toBeUndefined();
    expect(isLinkCommand(CellCommand.CLOSE)).toBe(true);
    expect(isLinkCommand(CellCommand.RELAY)).toBe(false);
  });

  it("encodes to exactly 512 bytes (big-endian circuit id, zero padding) and decodes back", () => {
    const bytes = encodeCell({ circId: 0x01020304, command: CellCommand.RELAY, payload: Uint8Array.of(0xaa, 0xbb) });
    expect(bytes.length).toBe(512);
    expect(toHex(bytes.subarray(0, 7))).toBe("0102030403aabb");
    expect(bytes.subarray(7).every((b) => b === 0)).toBe(true);
    fc.assert(
      fc.property(validCell, (cell) => {
        const enc = encodeCell(cell);
        expect(enc.length).toBe(CELL_LEN);
        const dec = decodeCell(enc);
        expect(dec.circId).toBe(cell.circId);
        expect(dec.command).toBe(cell.command);
        expect(dec.payload.length).toBe(CELL_PAYLOAD_LEN);
        expect(toHex(dec.payload.subarray(0, cell.payload.length))).toBe(toHex(cell.payload));
        expect(dec.payload.subarray(cell.payload.length).every((b) => b === 0)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it("batches cells into one buffer and decodes them at offsets, as views", () => {
    const cells: Cell[] = [
      { circId: 5, command: CellCommand.RELAY, payload: Uint8Array.of(1) },
      { circId: 0, command: CellCommand.PADDING, payload: new Uint8Array(0) },
      { circId: 7, command: CellCommand.DESTROY, payload: Uint8Array.of(2) },
    ];
    const batch = encodeCells(cells);
    expect(batch.length).toBe(3 * CELL_LEN);
    const third = decodeCell(batch, 2 * CELL_LEN);
    expect([third.circId, third.command, third.payload[0]]).toEqual([7, CellCommand.DESTROY, 2]);
    batch[2 * CELL_LEN + 5] = 9; // the payload is a view, not a copy
    expect(third.payload[0]).toBe(9);
    const target = new Uint8Array(CELL_LEN + 10).fill(0xff);
    encodeCellInto(cells[0] as Cell, target, 10);
    expect(target[9]).toBe(0xff);
    expect(target.subarray(10 + 6).every((b) => b === 0)).toBe(true);
  });

  it("refuses bad cells with typed errors", () => {
    expect(wireKind(() => decodeCell(new Uint8Array(511)))).toBe("bad-length");
    expect(wireKind(() => decodeCell(new Uint8Array(512), 1))).toBe("bad-length");
    const unknown = new Uint8Array(512);
    unknown[4] = 6;
    expect(wireKind(() => decodeCell(unknown))).toBe("unknown-command");
    unknown[4] = 200;
    expect(wireKind(() => decodeCell(unknown))).toBe("unknown-command");
    const relayOnZero = new Uint8Array(512);
    relayOnZero[4] = CellCommand.RELAY;
    expect(wireKind(() => decodeCell(relayOnZero))).toBe("bad-circ-id");
    const versionsOnCircuit = new Uint8Array(512);
    versionsOnCircuit[3] = 1;
    versionsOnCircuit[4] = CellCommand.VERSIONS;
    expect(wireKind(() => decodeCell(versionsOnCircuit))).toBe("bad-circ-id");
    expect(wireKind(() => encodeCell({ circId: -1, command: CellCommand.RELAY, payload: new Uint8Array(0) }))).toBe("bad-circ-id");
    expect(wireKind(() => encodeCell({ circId: 2 ** 32, command: CellCommand.RELAY, payload: new Uint8Array(0) }))).toBe("bad-circ-id");
    expect(wireKind(() => encodeCell({ circId: 1.5, command: CellCommand.RELAY, payload: new Uint8Array(0) }))).toBe("bad-circ-id");
    expect(wireKind(() => encodeCell({ circId: 1, command: 6, payload: new Uint8Array(0) }))).toBe("unknown-command");
    expect(wireKind(() => encodeCell({ circId: 1, command: CellCommand.RELAY, payload: new Uint8Array(508) }))).toBe("bad-length");
    expect(wireKind(() => encodeCellInto({ circId: 1, command: 3, payload: new Uint8Array(0) }, new Uint8Array(600), 100))).toBe("bad-length");
  });
});

describe("relay payloads", () => {
  it("lays out recognized, stream id, digest, length, command, data", () => {
    const p = encodeRelayPayload({ recognized: 0, streamId: 0x1234, digest: Uint8Array.of(9, 8, 7, 6), command: RelayCommand.DATA, data: Uint8Array.of(0xee) });
    expect(p.length).toBe(CELL_PAYLOAD_LEN);
    expect(toHex(p.subarray(0, 12))).toBe("0000123409080706000102ee");
    expect(p.subarray(12).every((b) => b === 0)).toBe(true);
    expect(RELAY_DATA_LEN).toBe(496);
    expect(RelayCommand).toMatchObject({ BEGIN: 1, DATA: 2, END: 3, CONNECTED: 4, SENDME: 5, EXTEND: 6, EXTENDED: 7, TRUNCATE: 8, TRUNCATED: 9, DROP: 10 });
  });

  it("round-trips with zero or random padding; decode ignores padding content", () => {
    const relayArb = fc.record({
      recognized: fc.integer({ min: 0, max: 0xffff }),
      streamId: fc.integer({ min: 0, max: 0xffff }),
      digest: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      command: fc.constantFrom(...Object.values(RelayCommand)),
      data: fc.uint8Array({ maxLength: RELAY_DATA_LEN }),
    });
    fc.assert(
      fc.property(relayArb, fc.constantFrom("zero" as const, "random" as const), (relay, padding) => {
        const dec = decodeRelayPayload(encodeRelayPayload(relay, { padding }));
        expect(dec.recognized).toBe(relay.recognized);
        expect(dec.streamId).toBe(relay.streamId);
        expect(dec.command).toBe(relay.command);
        expect(toHex(dec.digest)).toBe(toHex(relay.digest));
        expect(toHex(dec.data)).toBe(toHex(relay.data));
      }),
      { numRuns: 2000 },
    );
    const short = encodeRelayPayload({ recognized: 0, streamId: 1, digest: new Uint8Array(4), command: 2, data: new Uint8Array(0) }, { padding: "random" });
    expect(short.subarray(11).some((b) => b !== 0)).toBe(true);
  });

  it("rejects long lengths, unknown commands and bad fields with typed errors", () => {
    const p = encodeRelayPayload({ recognized: 0, streamId: 1, digest: new Uint8Array(4), command: 2, data: new Uint8Array(0) });
    p[8] = 0x01;
    p[9] = 0xf1; // 497
    expect(wireKind(() => decodeRelayPayload(p))).toBe("bad-relay-length");
    p[8] = 0;
    p[9] = 0;
    p[10] = 250;
    expect(wireKind(() => decodeRelayPayload(p))).toBe("unknown-relay-command");
    expect(wireKind(() => decodeRelayPayload(new Uint8Array(506)))).toBe("bad-length");
    const base = { recognized: 0, streamId: 1, digest: new Uint8Array(4), command: 2, data: new Uint8Array(0) };
    expect(wireKind(() => encodeRelayPayload({ ...base, data: new Uint8Array(497) }))).toBe("bad-relay-length");
    expect(wireKind(() => encodeRelayPayload({ ...base, streamId: 65536 }))).toBe("bad-stream-id");
    expect(wireKind(() => encodeRelayPayload({ ...base, command: 0 }))).toBe("unknown-relay-command");
    expect(wireKind(() => encodeRelayPayload({ ...base, digest: new Uint8Array(3) }))).toBe("bad-field");
  });

  it("lets later layers register their commands without collisions", () => {
    expect(isKnownRelayCommand(40)).toBe(false);
    registerRelayCommands({ TEST_INTRODUCE: 40 });
    registerRelayCommands({ TEST_INTRODUCE: 40 });
    expect(relayCommandName(40)).toBe("TEST_INTRODUCE");
    expect(decodeRelayPayload(encodeRelayPayload({ recognized: 0, streamId: 0, digest: new Uint8Array(4), command: 40, data: new Uint8Array(1) })).command).toBe(40);
    expect(wireKind(() => registerRelayCommands({ OTHER: 40 }))).toBe("bad-field");
    expect(wireKind(() => registerRelayCommands({ DATA_AGAIN: RelayCommand.DATA }))).toBe("bad-field");
    expect(wireKind(() => registerRelayCommands({ TOO_BIG: 256 }))).toBe("bad-field");
  });
});

describe("fragmentation", () => {
  it("fragments to at most maxChunk bytes each and reassembles exactly", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: FRAGMENT_HEADER_LEN + 1, max: 600 }), (msg, maxChunk) => {
        const frags = fragmentMessage(msg, maxChunk);
        expect(frags.every((f) => f.length <= maxChunk)).toBe(true);
        const r = new Reassembler({ maxMessageBytes: 3000 });
        let out: Uint8Array | undefined;
        frags.forEach((f, i) => {
          out = r.push(f);
          expect(out === undefined).toBe(i < frags.length - 1);
        });
        expect(toHex(out as Uint8Array)).toBe(toHex(msg));
        expect(r.inProgress).toBe(false);
        r.end();
      }),
      { numRuns: 800 },
    );
  });

  it("reports overflow, out-of-order, inconsistent and truncated streams", () => {
    const msg = new Uint8Array(1000).fill(1);
    const frags = fragmentMessage(msg, 256);
    expect(frags.length).toBe(4);
    const small = new Reassembler({ maxMessageBytes: 999 });
    expect(wireKind(() => small.push(frags[0] as Uint8Array))).toBe("message-too-large");
    const r = new Reassembler({ maxMessageBytes: 5000 });
    r.push(frags[0] as Uint8Array);
    expect(wireKind(() => r.push(frags[2] as Uint8Array))).toBe("out-of-order");
    expect(r.inProgress).toBe(false); // an error drops the partial message
    r.push(frags[0] as Uint8Array);
    expect(wireKind(() => r.push(frags[0] as Uint8Array))).toBe("out-of-order"); // replay
    r.push(frags[0] as Uint8Array);
    const otherTotal = fragmentMessage(new Uint8Array(1001), 256)[1] as Uint8Array;
    expect(wireKind(() => r.push(otherTotal))).toBe("bad-fragment");
    r.push(frags[0] as Uint8Array);
    r.push(frags[1] as Uint8Array);
    expect(r.bytesBuffered).toBe(500);
    expect(wireKind(() => r.end())).toBe("truncated");
    expect(wireKind(() => r.push(new Uint8Array(3)))).toBe("bad-fragment");
    expect(wireKind(() => fragmentMessage(msg, 6))).toBe("bad-field");
    expect(wireKind(() => fragmentMessage(new Uint8Array(70_000), 7))).toBe("message-too-large");
    expect(fragmentMessage(new Uint8Array(0), 100)).toHaveLength(1);
  });
});

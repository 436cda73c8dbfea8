/**
 * The refusal body both request/response protocols share (wire/error-body.ts):
 * one layout and one truncation rule, in bytes, that never splits a UTF-8
 * character, whether the text goes in a link RPC ERROR cell or a stream-RPC
 * ERROR message.
 */
import { describe, expect, it } from "vitest";
import { CELL_PAYLOAD_LEN } from "../../../node/src/wire/cell.js";
import { ERROR_BODY_FIXED_LEN, decodeErrorBody, encodeErrorBody } from "../../../node/src/wire/error-body.js";
import { RPC_CELL_HEADER_LEN, RpcError, decodeRpcErrorBody, encodeRpcErrorCell } from "../../../node/src/link/rpc.js";
import { StreamRpcError, decodeStreamRpcError, encodeStreamRpcError } from "../../../node/src/onion/stream-rpc.js";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
/** 3-byte characters behind one ASCII byte, so a byte cut lands inside one at every offset. */
const longText = "x" + "€".repeat(400);

describe("error body", () => {
  it("round-trips code, detail and text", () => {
    const body = encodeErrorBody({ code: 6, detail: "stale-sequence", text: "refusé" }, 100);
    expect(decodeErrorBody(body)).toEqual({ code: 6, detail: "stale-sequence", text: "refusé" });
  });

  it("cuts the text to the byte budget at a character boundary, for every budget", () => {
    for (let max = 0; max < 40; max++) {
      const body = encodeErrorBody({ code: 1, detail: "", text: longText }, max);
      expect(body.length - ERROR_BODY_FIXED_LEN).toBeLessThanOrEqual(max);
      const text = strictUtf8.decode(body.subarray(ERROR_BODY_FIXED_LEN));
      expect(longText.startsWith(text)).toBe(true);
      expect(decodeErrorBody(body)?.text).toBe(text);
    }
  });

  it("keeps the detail printable ASCII and at most 32 bytes, and refuses bodies that do not decode", () => {
    const body = encodeErrorBody({ code: 1, detail: "é\n" + "d".repeat(40), text: "" }, 10);
    expect(decodeErrorBody(body)?.detail).toBe("??" + "d".repeat(30));
    expect(decodeErrorBody(new Uint8Array([1, 33, ...new Uint8Array(40)]))).toBeUndefined();
    expect(decodeErrorBody(new Uint8Array([1, 5, 0]))).toBeUndefined();
    expect(decodeErrorBody(new Uint8Array([]))).toBeUndefined();
    // A text length past the end keeps what is there.
    expect(decodeErrorBody(new Uint8Array([1, 0, 0, 9, 0x61]))?.text).toBe("a");
  });

  it("link RPC ERROR cells and stream-RPC ERROR messages cut a long text the same way", () => {
    const cell = encodeRpcErrorCell(1, 5, new RpcError("refused", longText, { code: "busy" }));
    expect(cell.payload.length).toBeLessThanOrEqual(CELL_PAYLOAD_LEN);
    const fromCell = decodeRpcErrorBody(cell.payload.subarray(RPC_CELL_HEADER_LEN));
    const streamBody = encodeStreamRpcError(new StreamRpcError("refused", longText, { code: "busy" }));
    const fromStream = decodeStreamRpcError(streamBody);
    for (const err of [fromCell, fromStream]) {
      expect(err.message).not.toContain("\uFFFD");
      expect(err.code).toBe("busy");
    }
    const textOf = (message: string) => message.slice(message.indexOf(": ") + 2);
    expect(longText.startsWith(textOf(fromCell.message))).toBe(true);
    expect(longText.startsWith(textOf(fromStream.message))).toBe(true);
    // The cell's budget (464 bytes) is smaller than the stream's (512): the same rule, cut earlier.
    expect(textOf(fromStream.message).startsWith(textOf(fromCell.message))).toBe(true);
    expect(new TextEncoder().encode(textOf(fromCell.message)).length).toBeGreaterThan(460);
  });
});

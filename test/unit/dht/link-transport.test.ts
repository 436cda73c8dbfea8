import { describe, expect, it } from "vitest";
import { formatLinkAddress, parseLinkAddress, rpcToDhtError } from "../../../node/src/dht/link-transport.js";
import { DhtError } from "../../../node/src/dht/errors.js";
import { RpcError, decodeRpcErrorBody, encodeRpcErrorCell } from "../../../node/src/link/rpc.js";
import { RPC_CELL_HEADER_LEN } from "../../../node/src/link/rpc.js";

describe("DHT over link RPC", () => {
  it("link contact addresses round-trip and bad ones are refused", () => {
    expect(parseLinkAddress(formatLinkAddress("127.0.0.1", 4433))).toEqual({ host: "127.0.0.1", port: 4433 });
    expect(parseLinkAddress(formatLinkAddress("::1", 9))).toEqual({ host: "::1", port: 9 });
    for (const bad of ["sim-3", "host:0", "host:70000", "a:b:1"]) {
      expect(() => parseLinkAddress(bad)).toThrow(expect.objectContaining({ kind: "unreachable" }));
    }
  });

  it("a DHT refusal sent over the wire comes back as the same DhtError kind", () => {
    const cell = encodeRpcErrorCell(1, 5, new RpcError("refused", "sender key differs", { code: "link-mismatch" }));
    const received = decodeRpcErrorBody(cell.payload.subarray(RPC_CELL_HEADER_LEN));
    expect(received).toMatchObject({ kind: "refused", code: "link-mismatch", remote: true });
    expect(rpcToDhtError(received).kind).toBe("link-mismatch");
    // A code the DHT does not know is malformed, not trusted.
    expect(rpcToDhtError(new RpcError("refused", "x", { code: "rm -rf" })).kind).toBe("malformed");
  });

  it("RPC failures map onto the DHT's kinds", () => {
    const cases: [RpcError["kind"], string][] = [
      ["busy", "busy"],
      ["timeout", "timeout"],
      ["oversized", "oversized"],
      ["unknown-service", "unreachable"],
      ["unauthenticated", "link-mismatch"],
      ["closed", "unreachable"],
      ["handler-failed", "malformed"],
    ];
    for (const [rpc, dht] of cases) expect(rpcToDhtError(new RpcError(rpc, "x")).kind).toBe(dht);
    const own = new DhtError("stale-message", "y");
    expect(rpcToDhtError(own)).toBe(own);
    expect(rpcToDhtError(new Error("boom"))).toBeInstanceOf(DhtError);
  });
});

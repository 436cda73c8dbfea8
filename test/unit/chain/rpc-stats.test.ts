/**
 * The chain endpoint's call counters (chain/clients.ts chainRpcStats, read
 * by the psp_chain_* metrics): a refused connection counts as failed calls
 * and leaves no success time or head block.
 */
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { chainRpcStats, connectChain } from "../../../node/src/chain/clients.js";
import { ChainError } from "../../../node/src/chain/errors.js";

/** A port nobody listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

describe("chain RPC stats", () => {
  it("counts every call to an endpoint that refuses connections as failed", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    await expect(connectChain({ rpcUrl: url })).rejects.toSatisfy((e: unknown) => ChainError.is(e, "rpc-unreachable"));
    const stats = chainRpcStats(url);
    expect(stats.requests).toBeGreaterThanOrEqual(1);
    expect(stats.failures).toBe(stats.requests);
    expect(stats.lastSuccessAt).toBeUndefined();
    expect(stats.headBlock).toBeUndefined();
    // One object per endpoint for the process: the metrics read the same counters later.
    expect(chainRpcStats(url)).toBe(stats);
  });
});

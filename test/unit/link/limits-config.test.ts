/**
 * Node config for the issue-19 link budgets: `inbound` and `rpc` pass
 * through checked the way the connection manager and the RPC endpoint
 * check them, so a bad value fails at config load naming the field.
 */
import { describe, expect, it } from "vitest";
import { parseNodeConfig } from "../../../node/src/node/config.js";

const base = { listen: { host: "127.0.0.1", port: 0 } };

describe("node config: link budgets", () => {
  it("passes inbound and rpc limits through", () => {
    const config = parseNodeConfig({
      ...base,
      maxLinks: 2048,
      inbound: { maxAnonymous: 512, outboundReserve: 128, maxPerAddress: 8, maxPerPrefix: 32, handshakeTimeoutMs: 5000, exemptLoopback: false },
      rpc: { maxServingTotal: 2048, anonymous: { maxServing: 256, requestsPerSecond: 5, requestBurst: 10 } },
    });
    expect(config.inbound).toEqual({
      maxAnonymous: 512,
      outboundReserve: 128,
      maxPerAddress: 8,
      maxPerPrefix: 32,
      handshakeTimeoutMs: 5000,
      exemptLoopback: false,
    });
    expect(config.rpc).toEqual({ maxServingTotal: 2048, anonymous: { maxServing: 256, requestsPerSecond: 5, requestBurst: 10 } });
  });

  it("refuses unknown fields, bad types and budgets that leave no reserve, naming the field", () => {
    const fails = (extra: Record<string, unknown>) => () => parseNodeConfig({ ...base, ...extra });
    expect(fails({ inbound: { maxAnon: 3 } })).toThrow(/inbound\.maxAnon/);
    expect(fails({ inbound: { exemptLoopback: "yes" } })).toThrow(/inbound\.exemptLoopback/);
    expect(fails({ maxLinks: 100, inbound: { outboundReserve: 100 } })).toThrow(/inbound.*outboundReserve/);
    expect(fails({ rpc: { maxServingTotal: 10, anonymous: { maxServing: 10 } } })).toThrow(/rpc.*reserved for node links/);
    expect(fails({ rpc: { anonymous: { requestsPerSecond: 0 } } })).toThrow(/requestsPerSecond/);
    expect(fails({ rpc: { maxInflight: 3 } })).toThrow(/rpc\.maxInflight/);
  });
});

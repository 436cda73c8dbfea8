/**
 * The commercial layer's pure parts: the open handshake codec (round trips,
 * every refusal of a malformed, oversized or mis-versioned message, and a
 * fast-check fuzz that random bytes only ever give CommercialError), the
 * identity proof's binding to node, application and service, the plugin
 * interface checks, the node's `commercial` config section, and how the
 * client picks an application's node from consensus entries.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applicationNodes, chooseApplicationNode, commercialErrorOf } from "../../node/src/commercial/client.js";
import { CommercialError } from "../../node/src/commercial/errors.js";
import {
  checkOpenProof,
  decodeOpen,
  decodeOpenReply,
  encodeOpen,
  encodeOpenReply,
  identityKeyOf,
  MAX_OPEN_BYTES,
  signOpenProof,
} from "../../node/src/commercial/messages.js";
import { checkPlugin } from "../../node/src/commercial/plugin.js";
import { NodeFlag } from "../../node/src/directory/config.js";
import type { ConsensusEntry } from "../../node/src/directory/consensus.js";
import { parseNodeConfig } from "../../node/src/node/config.js";
import { NodeError } from "../../node/src/node/config.js";
import { StreamRpcError } from "../../node/src/onion/stream-rpc.js";
import { encodeCanonical } from "../../node/src/wire/canonical.js";
import { kindOf as anyKindOf } from "../helpers/index.js";

const kindOf = (fn: () => unknown) => anyKindOf(fn, CommercialError);
const app = new Uint8Array(32).fill(5);
const node = new Uint8Array(32).fill(9);
const user = new Uint8Array(32).fill(3);

describe("open handshake codec", () => {
  it("round-trips opens with and without a proof, and replies", () => {
    expect(decodeOpen(encodeOpen({ app, service: "kv" }))).toEqual({ app, service: "kv" });
    const proof = signOpenProof({
      secretKey: user,
      cert: new Uint8Array(300).fill(1),
      node,
      app,
      service: "kv",
      ts: 1_700_000_000_000,
      nonce: new Uint8Array(16).fill(2),
    });
    expect(decodeOpen(encodeOpen({ app, service: "kv", proof }))).toEqual({ app, service: "kv", proof });
    expect(decodeOpenReply(encodeOpenReply({ t: "ok", mode: "duplex", maxMessageBytes: 4096 }))).toEqual({ t: "ok", mode: "duplex", maxMessageBytes: 4096 });
    expect(decodeOpenReply(encodeOpenReply({ t: "refused", kind: "rate-limited", message: "slow down", retryAfterMs: 250 }))).toEqual({
      t: "refused",
      kind: "rate-limited",
      message: "slow down",
      retryAfterMs: 250,
    });
  });

  it("binds the proof to node, application and service", () => {
    const proof = signOpenProof({ secretKey: user, cert: new Uint8Array(8), node, app, service: "kv", ts: 5, nonce: new Uint8Array(16) });
    const key = identityKeyOf(user);
    expect(checkOpenProof(proof, key, { node, app, service: "kv" })).toBe(true);
    expect(checkOpenProof(proof, key, { node: app, app, service: "kv" })).toBe(false);
    expect(checkOpenProof(proof, key, { node, app: node, service: "kv" })).toBe(false);
    expect(checkOpenProof(proof, key, { node, app, service: "counter" })).toBe(false);
    expect(checkOpenProof({ ...proof, ts: 6 }, key, { node, app, service: "kv" })).toBe(false);
  });

  it("refuses malformed, oversized and foreign messages with typed kinds", () => {
    const raw = (v: Record<string, unknown>) => encodeCanonical(v);
    expect(kindOf(() => decodeOpen(raw({ app, svc: "kv", t: "open", v: 2 })))).toBe("malformed");
    expect(kindOf(() => decodeOpen(raw({ app, svc: "KV", t: "open", v: 1 })))).toBe("malformed");
    expect(kindOf(() => decodeOpen(raw({ app: app.subarray(1), svc: "kv", t: "open", v: 1 })))).toBe("malformed");
    expect(kindOf(() => decodeOpen(raw({ app, svc: "kv", t: "hello", v: 1 })))).toBe("malformed");
    expect(kindOf(() => decodeOpen(raw({ app, svc: "kv", t: "open", v: 1, extra: 1 })))).toBe("malformed");
    expect(
      kindOf(() =>
        decodeOpen(raw({ app, svc: "kv", t: "open", v: 1, id: { cert: new Uint8Array(0), n: new Uint8Array(16), sig: new Uint8Array(64), ts: 1 } })),
      ),
    ).toBe("malformed");
    expect(kindOf(() => decodeOpen(new Uint8Array(MAX_OPEN_BYTES + 1)))).toBe("too-large");
    expect(
      kindOf(() => encodeOpen({ app, service: "kv", proof: { cert: new Uint8Array(7000), ts: 1, nonce: new Uint8Array(16), sig: new Uint8Array(64) } })),
    ).toBe("too-large");
    expect(kindOf(() => decodeOpenReply(raw({ kind: "exploded", msg: "x", t: "refused", v: 1 })))).toBe("malformed");
    expect(kindOf(() => decodeOpenReply(raw({ max: 0, mode: "request", t: "ok", v: 1 })))).toBe("malformed");
    expect(kindOf(() => decodeOpenReply(raw({ max: 10, mode: "stream", t: "ok", v: 1 })))).toBe("malformed");
  });

  it("never throws anything but CommercialError on random bytes or random maps", () => {
    const only = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        if (!(err instanceof CommercialError)) throw err;
      }
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        only(() => decodeOpen(bytes));
        only(() => decodeOpenReply(bytes));
      }),
      { numRuns: 500 },
    );
    const value = fc.oneof(fc.integer({ min: 0 }), fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 70 }), fc.boolean());
    fc.assert(
      fc.property(
        fc.record({ t: fc.constantFrom("open", "ok", "refused", "x"), v: fc.constantFrom(1, 2) }),
        fc.dictionary(fc.constantFrom("app", "svc", "id", "max", "mode", "kind", "msg", "retry", "zz"), value),
        (head, rest) => {
          const bytes = encodeCanonical({ ...rest, ...head });
          only(() => decodeOpen(bytes));
          only(() => decodeOpenReply(bytes));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("plugins", () => {
  it("accepts request and duplex services and refuses anything else with bad-plugin", () => {
    const ok = checkPlugin({
      services: { kv: { mode: "request", handle: () => new Uint8Array() }, feed: { mode: "duplex", open: () => ({ onMessage() {} }) } },
    });
    expect(Object.keys(ok.services)).toEqual(["kv", "feed"]);
    for (const bad of [
      {},
      { services: {} },
      { services: { "Bad Name": { mode: "request", handle: () => new Uint8Array() } } },
      { services: { kv: { mode: "request" } } },
      { services: { kv: { mode: "duplex", handle: () => new Uint8Array() } } },
      { services: { kv: { mode: "request", handle: () => new Uint8Array(), maxMessageBytes: 0 } } },
      { services: { kv: { mode: "request", handle: () => new Uint8Array(), requiresIdentity: "yes" } } },
    ]) {
      expect(kindOf(() => checkPlugin(bad))).toBe("bad-plugin");
    }
  });
});

describe("the node's commercial section", () => {
  const base = { listen: { host: "127.0.0.1", port: 0 } };
  const section = { apps: [{ namespace: "demo", application: "shop", plugin: "./plugin.js" }], limits: { burst: 10 } };
  const nodeKind = (v: unknown) => anyKindOf(() => parseNodeConfig(v), NodeError);
  it("goes with the commercial role, and is checked", () => {
    expect(parseNodeConfig({ ...base, roles: ["onion", "commercial"], commercial: section }).commercial).toEqual(section);
    expect(parseNodeConfig(base).commercial).toBeUndefined();
    expect(nodeKind({ ...base, roles: ["onion", "commercial"] })).toBe("bad-config");
    expect(nodeKind({ ...base, roles: ["onion"], commercial: section })).toBe("bad-config");
    expect(nodeKind({ ...base, roles: ["commercial"], commercial: { apps: [] } })).toBe("bad-config");
    expect(nodeKind({ ...base, roles: ["commercial"], commercial: { apps: [{ namespace: "Demo", application: "shop", plugin: "p" }] } })).toBe("bad-config");
    expect(nodeKind({ ...base, roles: ["commercial"], commercial: { ...section, limits: { burst: 0 } } })).toBe("bad-config");
    expect(nodeKind({ ...base, roles: ["commercial"], commercial: { ...section, limits: { speed: 1 } } })).toBe("bad-config");
    expect(nodeKind({ ...base, roles: ["commercial"], commercial: { apps: [section.apps[0], section.apps[0]] } })).toBe("bad-config");
  });
});

describe("client: choosing an application's node", () => {
  const entry = (id: number, flags: number, apps?: Uint8Array[]): ConsensusEntry => ({
    identity: new Uint8Array(32).fill(id),
    onionKey: new Uint8Array(32),
    encodedAddresses: [Uint8Array.of(192, 0, 2, id, 0x23, 0x29)],
    country: "DE",
    version: "psp/0.1.0",
    bandwidth: 1,
    flags,
    ...(apps ? { apps } : {}),
  });
  const relay = NodeFlag.running | NodeFlag.valid | NodeFlag.onion;
  it("takes only onion relays whose commercial entry lists the app", () => {
    const other = new Uint8Array(32).fill(6);
    const entries = [
      entry(1, relay | NodeFlag.commercial, [app]),
      entry(2, relay | NodeFlag.commercial, [other]),
      entry(3, relay),
      entry(4, NodeFlag.running | NodeFlag.valid | NodeFlag.commercial, [app]),
      entry(5, relay | NodeFlag.commercial, [app, other].sort()),
    ];
    expect(applicationNodes({ entries }, app).map((n) => n.identity[0])).toEqual([1, 5]);
    expect(chooseApplicationNode(applicationNodes({ entries }, app), "demo.shop", () => 0.99).identity[0]).toBe(5);
    expect(kindOf(() => chooseApplicationNode([], "demo.shop"))).toBe("no-nodes");
  });

  it("maps the stream RPC's refusals to commercial kinds", () => {
    expect(commercialErrorOf(new StreamRpcError("refused", "x", { code: "rate-limited" })).kind).toBe("rate-limited");
    expect(commercialErrorOf(new StreamRpcError("oversized", "x")).kind).toBe("too-large");
    expect(commercialErrorOf(new StreamRpcError("timeout", "x")).kind).toBe("timeout");
    expect(commercialErrorOf(new StreamRpcError("closed", "x")).kind).toBe("unreachable");
  });
});

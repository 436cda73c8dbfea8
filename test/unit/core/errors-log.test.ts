import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { DhtError } from "../../../node/src/dht/errors.js";
import { PspError, errorCategory, isPspError, walkError } from "../../../node/src/errors.js";
import { childLogger, createLogger, logFailure } from "../../../node/src/log.js";
import type { LogEvent } from "../../../node/src/log.js";

function sink(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join("")
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe("PspError", () => {
  it("carries layer, kind, category and a qualified kind; Class.is matches only its own layer", () => {
    const err: unknown = new DhtError("timeout", "no answer from the peer", {
      retryAfterMs: 500,
      fix: "retry later",
    });
    expect(DhtError.is(err, "timeout")).toBe(true);
    expect(DhtError.is(err, "malformed")).toBe(false);
    const other = new PspError("timeout", "a timeout of another layer");
    expect(DhtError.is(other, "timeout")).toBe(false);
    expect(isPspError(other, "timeout")).toBe(true);
    const e = err as DhtError;
    expect([e.layer, e.kind, e.category, e.qualifiedKind, e.retryAfterMs]).toEqual(["dht", "timeout", "transient", "dht/timeout", 500]);
    expect(e.message).toBe("no answer from the peer");
    expect(e.describe()).toBe("no answer from the peer\nfix: retry later");
    expect(new DhtError("bad-owner-signature", "forged").category).toBe("peer");
    expect(new DhtError("quota-exceeded", "full").category).toBe("refused");
  });

  it("every kind of a layer has a category, and anything that is not a PspError is a bug", () => {
    for (const kind of DhtError.kinds) expect(["peer", "refused", "transient", "config", "bug", "shutdown"]).toContain(DhtError.categoryOf(kind));
    expect(errorCategory(new TypeError("x"))).toBe("bug");
    expect(errorCategory("a string")).toBe("bug");
  });

  it("walk() goes down causes, and stops on a cycle", () => {
    const inner = new DhtError("timeout", "inner");
    const middle = new Error("middle", { cause: inner });
    const outer = new PspError("wrapped", "outer", { cause: middle });
    expect(outer.walk()).toBe(inner);
    expect(outer.walk((e) => DhtError.is(e))).toBe(inner);
    expect(outer.walk((e) => e instanceof RangeError)).toBeUndefined();
    const a = new Error("a");
    const b = new Error("b", { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(() => walkError(a)).not.toThrow();
  });

  it("serializes to JSON without stacks, with its cause summarized", () => {
    const json = new DhtError("unreachable", "gone", {
      cause: new Error("ECONNREFUSED"),
    }).toJSON();
    expect(json).toEqual({
      name: "DhtError",
      layer: "dht",
      kind: "unreachable",
      category: "transient",
      message: "gone",
      cause: { name: "Error", message: "ECONNREFUSED" },
    });
  });
});

describe("logging", () => {
  it("nests component names, keeps bindings once, and reports warn and above to onLog", () => {
    const out = sink();
    const events: LogEvent[] = [];
    const root = createLogger({
      destination: out.stream,
      pretty: false,
      base: { node: "n1" },
      onLog: (e) => events.push(e),
    });
    const dht = childLogger(root, "dht", { shard: 1 });
    const lookup = childLogger(dht, "lookup");
    lookup.info("started");
    logFailure(lookup, new DhtError("timeout", "no answer"), "reseed");
    lookup.error(new Error("plain"), "broke");
    const lines = out.lines();
    expect(lines[0]).toMatchObject({
      node: "n1",
      component: "dht.lookup",
      shard: 1,
      msg: "started",
    });
    expect(lines[1]).toMatchObject({
      operation: "reseed",
      err: { layer: "dht", kind: "timeout", category: "transient" },
    });
    expect(events).toEqual([
      { level: "warn", component: "dht.lookup", errorKind: "dht/timeout" },
      { level: "error", component: "dht.lookup", errorKind: "Error" },
    ]);
  });

  it("a component without a parent logger is silent", () => {
    expect(childLogger(undefined, "x").isLevelEnabled("fatal")).toBe(false);
  });
});

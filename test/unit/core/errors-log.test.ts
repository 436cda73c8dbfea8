import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { DhtError } from "../../../node/src/dht/errors.js";
import { PspError, errorCategory, isPspError, layerError, walkError } from "../../../node/src/errors.js";
import { childLogger, createLogger, failureLevel, logFailure, throttledFailureLog, watchLogEvents } from "../../../node/src/log.js";
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
      { level: "warn", component: "dht.lookup", errorKind: "dht/timeout", operation: "reseed" },
      { level: "error", component: "dht.lookup", errorKind: "Error" },
    ]);
  });

  it("a component without a parent logger is silent", () => {
    expect(childLogger(undefined, "x").isLevelEnabled("fatal")).toBe(false);
  });

  it("counts a failure logged at debug even while debug lines are not printed", () => {
    const out = sink();
    const events: LogEvent[] = [];
    const root = createLogger({ destination: out.stream, pretty: false, level: "info", onLog: (e) => events.push(e) });
    logFailure(childLogger(root, "link"), new DhtError("malformed", "bad bytes"), "decode request", "debug");
    expect(out.lines()).toEqual([]);
    expect(events).toEqual([{ level: "debug", component: "link", errorKind: "dht/malformed", operation: "decode request" }]);
  });

  it("a watcher on a child sees that child's subtree only; the root's watchers see everything", () => {
    const out = sink();
    const rootEvents: LogEvent[] = [];
    const root = createLogger({ destination: out.stream, pretty: false, onLog: (e) => rootEvents.push(e) });
    const nodeA = root.child({ node: "a" });
    const nodeB = root.child({ node: "b" });
    const seenByA: LogEvent[] = [];
    const stop = watchLogEvents(nodeA, (e) => seenByA.push(e));
    childLogger(nodeA, "dht").warn("a warns");
    childLogger(nodeB, "dht").warn("b warns");
    expect(seenByA.map((e) => e.component)).toEqual(["dht"]);
    expect(rootEvents).toHaveLength(2);
    stop();
    childLogger(nodeA, "dht").warn("a again");
    expect(seenByA).toHaveLength(1);
    expect(out.lines()[0]).toMatchObject({ node: "a", component: "dht", msg: "a warns" });
  });

  it("a throttled failure log prints the first of a kind and then one line per interval with the count left out, counting each", () => {
    const out = sink();
    const events: LogEvent[] = [];
    const root = createLogger({ destination: out.stream, pretty: false, onLog: (e) => events.push(e) });
    let now = 0;
    const fail = throttledFailureLog(childLogger(root, "directory"), 1000, () => now);
    for (let i = 0; i < 5; i++) fail(new DhtError("timeout", "no answer"), "fetch consensus");
    now = 1500;
    fail(new DhtError("timeout", "no answer"), "fetch consensus");
    expect(events).toHaveLength(6);
    const lines = out.lines();
    expect(lines).toHaveLength(2);
    expect(lines[0]).not.toHaveProperty("suppressed");
    expect(lines[1]).toMatchObject({ operation: "fetch consensus", suppressed: 4 });
  });

  it("picks a failure's level from its category", () => {
    expect(failureLevel(new DhtError("timeout", "t"))).toBe("warn");
    expect(failureLevel(new DhtError("bad-config", "c"))).toBe("error");
    class ClosedError extends layerError<"closed">("core", { closed: "shutdown" }) {}
    expect(failureLevel(new ClosedError("closed", "the endpoint was closed"))).toBe("debug");
    expect(failureLevel(new TypeError("x is undefined"))).toBe("error");
    expect(failureLevel(new Error("ECONNREFUSED"))).toBe("warn");
  });
});

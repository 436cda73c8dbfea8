/**
 * Stream RPC over an in-memory pair of streams (the service side as the
 * relay drives it, the client side as an OnionStream): matching ids,
 * deadlines, busy, oversized, typed remote errors, pause under saturation,
 * and fuzzed messages that only ever produce typed errors.
 */
import { EventEmitter } from "node:events";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DhtError } from "../../../node/src/dht/errors.js";
import { EndReason } from "../../../node/src/onion/constants.js";
import { CircuitError } from "../../../node/src/onion/errors.js";
import type { OnionStreamEvents } from "../../../node/src/onion/onion-client.js";
import {
  StreamRpcError,
  StreamRpcKind,
  createStreamRpc,
  createStreamRpcService,
  decodeStreamRpcError,
  decodeStreamRpcMessage,
  encodeStreamRpcMessage,
} from "../../../node/src/onion/stream-rpc.js";
import type { RpcStream, StreamRpcHandler, StreamRpcServiceOptions } from "../../../node/src/onion/stream-rpc.js";
import type { ServiceHandler, ServiceStream } from "../../../node/src/onion/types.js";

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** The client's end: an OnionStream look-alike whose sends reach the service's handler. */
class FakeClientStream extends EventEmitter<OnionStreamEvents> {
  readonly service = "test";
  isOpen = true;
  sent: Uint8Array[] = [];
  toService: ((m: Uint8Array) => void) | undefined;
  async send(message: Uint8Array): Promise<void> {
    if (!this.isOpen) throw new CircuitError("stream-closed", "closed");
    this.sent.push(message);
    this.toService?.(message);
  }
  close(): void {
    this.remoteClose(undefined);
  }
  remoteClose(error: CircuitError | undefined): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.emit("close", error);
  }
}

interface Pair {
  client: FakeClientStream;
  serviceStream: ServiceStream & { paused: boolean; ended: EndReason | undefined; out: Uint8Array[] };
  handler: ServiceHandler;
}

/** Connects a client stream to a service made by createStreamRpcService (delivery like the relay: held while paused). */
function connect(service: ReturnType<typeof createStreamRpcService>["service"], client = new FakeClientStream()): Pair {
  const held: Uint8Array[] = [];
  const ref: { handler?: ServiceHandler } = {};
  const serviceStream: Pair["serviceStream"] = {
    circuitId: 7,
    streamId: 1,
    service: "test",
    previousHop: null,
    queuedCells: 0,
    paused: false,
    ended: undefined,
    out: [],
    send(message) {
      if (this.ended !== undefined) throw new CircuitError("bad-state", "closed");
      this.out.push(message);
      queueMicrotask(() => client.emit("message", message));
    },
    pause() {
      this.paused = true;
    },
    resume() {
      this.paused = false;
      while (!this.paused && held.length > 0) ref.handler?.onMessage(held.shift() as Uint8Array, 0);
    },
    end(reason = EndReason.DONE) {
      this.ended = reason;
      client.remoteClose(new CircuitError("stream-closed", "ended", { endReason: reason }));
    },
    destroyCircuit() {
      this.end(EndReason.DESTROY);
    },
  };
  const accepted = service(serviceStream, 0);
  if (typeof accepted === "number") throw new Error("service refused the stream");
  ref.handler = accepted;
  client.toService = (m) => {
    if (serviceStream.paused) held.push(m);
    else accepted.onMessage(m, 0);
  };
  return { client, serviceStream, handler: accepted };
}

function setup(handler: StreamRpcHandler, options: StreamRpcServiceOptions = {}, maxMessageBytes?: number) {
  const made = createStreamRpcService(handler, options);
  const pair = connect(made.service);
  const rpc = createStreamRpc(pair.client as unknown as RpcStream, maxMessageBytes === undefined ? {} : { maxMessageBytes });
  return { ...pair, rpc, stats: made.stats };
}

async function rejection(p: Promise<unknown>): Promise<StreamRpcError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StreamRpcError);
  return err as StreamRpcError;
}

describe("stream RPC codec", () => {
  it("lays out id (4, big-endian) ‖ kind (1) ‖ body and refuses short messages", () => {
    const m = encodeStreamRpcMessage(0x01020304, StreamRpcKind.RESPONSE, bytes("ok"));
    expect([...m.subarray(0, 5)]).toEqual([1, 2, 3, 4, 2]);
    expect(text(decodeStreamRpcMessage(m).body)).toBe("ok");
    expect(() => decodeStreamRpcMessage(new Uint8Array(4))).toThrow(StreamRpcError);
    expect(decodeStreamRpcError(new Uint8Array([99, 0, 0, 0])).kind).toBe("malformed");
    expect(decodeStreamRpcError(new Uint8Array([])).kind).toBe("malformed");
  });
});

describe("stream RPC over one stream", () => {
  it("matches concurrent answers to their requests by id and calls flush for asynchronous replies", async () => {
    let flushes = 0;
    const { rpc, stats } = setup(
      async (req) => {
        await new Promise((r) => setTimeout(r, text(req) === "slow" ? 20 : 1));
        return bytes(`re:${text(req)}`);
      },
      { flush: () => flushes++ },
    );
    const [a, b, c] = await Promise.all(["slow", "fast", ""].map((s) => rpc.request(bytes(s), { timeoutMs: 1000 })));
    expect([text(a!), text(b!), text(c!)]).toEqual(["re:slow", "re:fast", "re:"]);
    expect(stats).toMatchObject({ requests: 3, responses: 3, errors: 0, inflight: 0 });
    expect(flushes).toBe(3);
    expect(rpc.inflight).toBe(0);
  });

  it("times out a request the service does not answer in time, and drops the late answer", async () => {
    const { rpc } = setup(async () => {
      await new Promise((r) => setTimeout(r, 40));
      return bytes("late");
    });
    const err = await rejection(rpc.request(bytes("x"), { timeoutMs: 5 }));
    expect(err.kind).toBe("timeout");
    await new Promise((r) => setTimeout(r, 60));
    expect(rpc.stats.unsolicited).toBe(1);
    expect((await rejection(rpc.request(bytes("x"), { timeoutMs: 0 }))).kind).toBe("bad-argument");
  });

  it("refuses requests past maxInflight with busy; the stream stays usable", async () => {
    const gates: (() => void)[] = [];
    const { rpc, stats } = setup(
      (req) =>
        new Promise<Uint8Array>((resolve) => {
          gates.push(() => resolve(req));
        }),
      { maxInflight: 2 },
    );
    const first = rpc.request(bytes("1"), { timeoutMs: 1000 });
    const second = rpc.request(bytes("2"), { timeoutMs: 1000 });
    const third = await rejection(rpc.request(bytes("3"), { timeoutMs: 1000 }));
    expect(third).toMatchObject({ kind: "busy", remote: true });
    expect(stats.busyRefusals).toBe(1);
    gates.forEach((g) => g());
    expect(text(await first)).toBe("1");
    expect(text(await second)).toBe("2");
    const fourth = rpc.request(bytes("4"), { timeoutMs: 1000 });
    await tick();
    gates.at(-1)?.();
    expect(text(await fourth)).toBe("4");
  });

  it("refuses oversized requests locally and remotely, and oversized responses", async () => {
    let calls = 0;
    const { rpc, client } = setup(
      async (req) => {
        calls++;
        return text(req) === "big" ? new Uint8Array(200) : req;
      },
      { maxMessageBytes: 100 },
      150,
    );
    expect((await rejection(rpc.request(new Uint8Array(151), { timeoutMs: 1000 }))).kind).toBe("oversized");
    expect(client.sent.length).toBe(0); // never sent
    expect(await rejection(rpc.request(new Uint8Array(120), { timeoutMs: 1000 }))).toMatchObject({ kind: "oversized", remote: true });
    expect(calls).toBe(0);
    expect(await rejection(rpc.request(bytes("big"), { timeoutMs: 1000 }))).toMatchObject({ kind: "oversized", remote: true });
    expect(text(await rpc.request(bytes("fine"), { timeoutMs: 1000 }))).toBe("fine");
  });

  it("carries typed refusals: a service code, another layer's error kind, and a hidden internal failure", async () => {
    const { rpc } = setup(async (req) => {
      switch (text(req)) {
        case "refuse":
          throw new StreamRpcError("refused", "not today", { code: "quota" });
        case "dht":
          throw new DhtError("stale-sequence", "seq 3 is not newer than 5");
        default:
          throw new Error("secret internal detail");
      }
    });
    expect(await rejection(rpc.request(bytes("refuse"), { timeoutMs: 1000 }))).toMatchObject({ kind: "refused", code: "quota", remote: true });
    expect(await rejection(rpc.request(bytes("dht"), { timeoutMs: 1000 }))).toMatchObject({ kind: "refused", code: "stale-sequence" });
    const internal = await rejection(rpc.request(bytes("boom"), { timeoutMs: 1000 }));
    expect(internal.kind).toBe("handler-failed");
    expect(internal.message).not.toContain("secret");
  });

  it("fails pending and later requests with closed when the stream ends", async () => {
    const { rpc, client } = setup(() => new Promise<Uint8Array>(() => undefined));
    const pending = rpc.request(bytes("x"), { timeoutMs: 5000 });
    client.remoteClose(new CircuitError("stream-closed", "END DESTROY", { endReason: EndReason.DESTROY }));
    const err = await rejection(pending);
    expect(err.kind).toBe("closed");
    expect(err.cause).toBeInstanceOf(CircuitError);
    expect((await rejection(rpc.request(bytes("y"), { timeoutMs: 100 }))).kind).toBe("closed");
  });

  it("pauses a stream while the service is saturated and resumes it when the handler catches up", async () => {
    const gates: (() => void)[] = [];
    const { rpc, serviceStream, stats } = setup(
      (req) =>
        new Promise<Uint8Array>((resolve) => {
          gates.push(() => resolve(req));
        }),
      { maxInflight: 8, maxInflightTotal: 2 },
    );
    const answers = ["a", "b", "c"].map((s) => rpc.request(bytes(s), { timeoutMs: 2000 }));
    await tick();
    expect(serviceStream.paused).toBe(true);
    expect(stats.pauses).toBe(1);
    expect(gates.length).toBe(2); // "c" waits at the relay, not in the handler
    gates.splice(0).forEach((g) => g());
    await tick();
    expect(serviceStream.paused).toBe(false);
    expect(gates.length).toBe(1);
    gates.splice(0).forEach((g) => g());
    expect((await Promise.all(answers)).map(text)).toEqual(["a", "b", "c"]);
  });

  it("ends the stream with RESOURCELIMIT when a reply cannot be queued", async () => {
    const made = createStreamRpcService(async (r) => r);
    const pair = connect(made.service);
    pair.serviceStream.send = () => {
      throw new CircuitError("resource-limit", "queue full");
    };
    pair.handler.onMessage(encodeStreamRpcMessage(1, StreamRpcKind.REQUEST, bytes("x")), 0);
    await tick();
    expect(pair.serviceStream.ended).toBe(EndReason.RESOURCELIMIT);
  });
});

describe("fuzzed messages", () => {
  it("the service answers any bytes with a response or a typed error, never a throw", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), async (messages) => {
        const made = createStreamRpcService(async (r) => r, { maxMessageBytes: 32, maxInflight: 4 });
        const pair = connect(made.service);
        for (const m of messages) expect(() => pair.handler.onMessage(m, 0)).not.toThrow();
        await tick();
        for (const out of pair.serviceStream.out) {
          const decoded = decodeStreamRpcMessage(out);
          expect([StreamRpcKind.RESPONSE, StreamRpcKind.ERROR]).toContain(decoded.kind);
          if (decoded.kind === StreamRpcKind.ERROR) expect(["busy", "oversized", "malformed"]).toContain(decodeStreamRpcError(decoded.body).kind);
        }
        expect(pair.serviceStream.ended).toBeUndefined();
      }),
      { numRuns: 100 },
    );
  });

  it("the client turns any answer into a value or a typed error", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 10 }), fc.boolean(), async (answers, matchId) => {
        const client = new FakeClientStream();
        const rpc = createStreamRpc(client as unknown as RpcStream, { maxMessageBytes: 16 });
        const pending = rpc.request(bytes("q"), { timeoutMs: 20 });
        for (const a of answers) {
          if (matchId && a.length >= 4) a.set([0, 0, 0, 1]);
          expect(() => client.emit("message", a)).not.toThrow();
        }
        const outcome = await pending.then(
          (v) => v,
          (e: unknown) => e,
        );
        if (!(outcome instanceof Uint8Array)) {
          expect(outcome).toBeInstanceOf(StreamRpcError);
          expect(["timeout", "oversized", "malformed", "busy", "refused", "handler-failed"]).toContain((outcome as StreamRpcError).kind);
        }
      }),
      { numRuns: 60 },
    );
  });
});

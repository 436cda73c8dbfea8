/**
 * The client daemon's API against a stand-in client: real HTTP and
 * WebSocket on loopback, real PresenceChannels (ratchets and all) over an
 * in-memory stream pair, so the token, the schemas, the error bodies and the
 * event stream are checked in milliseconds. The devnet test
 * (test/suites/client-daemon.ts, on cli-msg.test.ts's devnet) runs the same API over the
 * network.
 */
import { EventEmitter } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startClientDaemon } from "../../../node/src/api/client-daemon.js";
import type { ClientDaemon } from "../../../node/src/api/client-daemon.js";
import type { SessionClient } from "../../../node/src/api/client-session.js";
import type { PspClientEvents } from "../../../node/src/client/client.js";
import type { OnionStream } from "../../../node/src/onion/onion-client.js";
import { PresenceChannel } from "../../../node/src/presence/channel.js";
import type { IncomingIntroduction, PointInfo } from "../../../node/src/presence/client.js";
import { PresenceError } from "../../../node/src/presence/errors.js";
import { createChannelRatchet } from "../../../node/src/presence/ratchet.js";
import { daemonCaller, daemonEvents } from "../../helpers/daemon.js";

const TOKEN = "unit-test-token-0123456789";
const ALICE = "peerstream.client.account.alice";
const BUSY = "peerstream.client.account.busy";
const CAROL = "peerstream.client.account.carol";

/** Two ends of an in-memory stream, as a rendezvous splice gives them. */
function streamPair(): [OnionStream, OnionStream] {
  const make = () => {
    const e = new EventEmitter() as EventEmitter & { peer?: EventEmitter; closedResolve?: (v: undefined) => void; isClosed?: boolean };
    const closed = new Promise<undefined>((r) => (e.closedResolve = r));
    return Object.assign(e, {
      closed,
      takeBuffered: () => [],
      send: async (bytes: Uint8Array) => {
        if (e.isClosed) throw new Error("stream closed");
        const peer = e.peer!;
        setImmediate(() => peer.emit("message", bytes));
      },
      close: () => {
        if (e.isClosed) return;
        e.isClosed = true;
        e.closedResolve!(undefined);
        const peer = e.peer as unknown as { close(): void };
        setImmediate(() => peer.close());
      },
    });
  };
  const a = make();
  const b = make();
  a.peer = b;
  b.peer = a;
  return [a as unknown as OnionStream, b as unknown as OnionStream];
}

/** A channel between us (`me`) and `peer`: our end and theirs. */
function channelPair(peer: string, me: string): { ours: PresenceChannel; theirs: PresenceChannel } {
  const seed = new Uint8Array(32).fill(7);
  const [a, b] = streamPair();
  return {
    ours: new PresenceChannel(a, createChannelRatchet({ keySeed: seed, role: "initiator" }), peer),
    theirs: new PresenceChannel(b, createChannelRatchet({ keySeed: seed, role: "responder" }), me),
  };
}

class FakeClient extends EventEmitter<PspClientEvents> implements SessionClient {
  readonly identity = CAROL;
  readonly consensus = undefined;
  points: PointInfo[] = [];
  /** The far ends of channels `connect` opened, by peer. */
  readonly far = new Map<string, PresenceChannel>();
  readonly presence = {
    announce: async (o?: { points?: number }) => {
      this.points = Array.from({ length: o?.points ?? 3 }, (_, slot) => ({ slot, node: "ab".repeat(32), state: "up" as const, expiresAt: 0, stored: 1, introductions: 0 }));
      return this.points;
    },
    withdraw: () => {
      this.points = [];
    },
    status: () => this.points,
  };
  async lookup(identity: string) {
    if (identity === ALICE) return [];
    if (identity === BUSY) throw new PresenceError("busy", "the presence node sheds load", { retryAfterMs: 2500 });
    throw new PresenceError("not-found", `no presence record of ${identity}`);
  }
  async connect(identity: string) {
    if (identity !== ALICE) throw new PresenceError("refused", "the presence point refused the introduction: the user refused the introduction");
    const { ours, theirs } = channelPair(identity, this.identity);
    this.far.set(identity, theirs);
    this.emit("channel", ours);
    return ours;
  }
  /** An introduction from `from`, as the presence client hands one to the app. */
  introduce(from: string): { answer: Promise<"accepted" | "refused">; far: Promise<PresenceChannel> } {
    let settle!: (v: "accepted" | "refused") => void;
    let farOf!: (c: PresenceChannel) => void;
    const answer = new Promise<"accepted" | "refused">((r) => (settle = r));
    const far = new Promise<PresenceChannel>((r) => (farOf = r));
    const intro: IncomingIntroduction = {
      from,
      certificateNotAfter: 2_000_000_000,
      slot: 0,
      accept: async () => {
        settle("accepted");
        const { ours, theirs } = channelPair(from, this.identity);
        farOf(theirs);
        this.emit("channel", ours);
        return ours;
      },
      refuse: () => settle("refused"),
      cancel: () => settle("refused"),
    };
    this.emit("introduction", intro);
    return { answer, far };
  }
}

let client: FakeClient;
let daemon: ClientDaemon;

/** The daemon as an app calls it. */
const call = (...args: Parameters<ReturnType<typeof daemonCaller>>) => daemonCaller(daemon.url, TOKEN)(...args);
const events = () => daemonEvents(daemon.url, TOKEN);

beforeAll(async () => {
  client = new FakeClient();
  daemon = await startClientDaemon({ client, token: TOKEN, port: 0 });
});
afterAll(async () => {
  await daemon?.close();
});

describe("client daemon API", () => {
  it("answers 401 to every request without the token, known route or not, and to a wrong token", async () => {
    for (const [method, path] of [
      ["GET", "/v1/status"],
      ["POST", "/v1/channels"],
      ["GET", "/v1/nope"],
    ] as const) {
      const r = await call(method, path, undefined, null);
      expect(r.status).toBe(401);
      expect((r.json.error as { kind: string }).kind).toBe("unauthorized");
    }
    expect((await call("GET", "/v1/status", undefined, "wrong-token-wrong-token")).status).toBe(401);
    const refused = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`${daemon.url.replace("http", "ws")}/v1/events`);
      ws.addEventListener("open", () => resolve("open"));
      ws.addEventListener("error", () => resolve("error"));
    });
    expect(refused).toBe("error");
  });

  it("refuses malformed bodies and parameters with 400 and a kind, and keeps serving", async () => {
    const bad: [string, string, unknown][] = [
      ["POST", "/v1/channels", {}],
      ["POST", "/v1/channels", { to: 42 }],
      ["POST", "/v1/channels", { to: ALICE, extra: true }],
      ["POST", "/v1/channels", "{not json"],
      ["POST", "/v1/presence/announce", { points: 99 }],
      ["POST", "/v1/channels/0123456789abcdef/messages", { text: "a", base64: "YQ==" }],
      ["POST", "/v1/channels/0123456789abcdef/messages", { base64: "***" }],
      ["POST", "/v1/channels/not-an-id/messages", { text: "a" }],
      ["POST", "/v1/introductions/xyz/accept", undefined],
    ];
    for (const [method, path, body] of bad) {
      const r = await call(method, path, body);
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect((r.json.error as { kind: string }).kind).toBe("bad-request");
    }
    // Fastify's own schema failures name the field.
    expect((await call("POST", "/v1/channels", {})).json.error).toMatchObject({ kind: "bad-request", message: "body/to must have required property 'to'" });
    expect((await call("POST", "/v1/channels", { to: ALICE, extra: true })).json.error).toMatchObject({ message: "body must NOT have additional properties (extra)" });
    const status = await call("GET", "/v1/status");
    expect(status.status).toBe(200);
    expect(status.json.identity).toBe(CAROL);
  });

  it("maps the layers' errors to statuses and keeps their kinds", async () => {
    const missing = await call("GET", "/v1/lookup/peerstream.client.account.nobody");
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatchObject({ kind: "not-found", layer: "presence" });
    const refused = await call("POST", "/v1/channels", { to: "peerstream.client.account.nobody" });
    expect(refused.status).toBe(403);
    expect(refused.json.error).toMatchObject({ kind: "refused" });
    const unknown = await call("POST", "/v1/channels/0123456789abcdef/messages", { text: "hi" });
    expect(unknown.status).toBe(404);
    expect((await call("POST", "/v1/introductions/0123456789abcdef/refuse")).status).toBe(404);
    // A transient refusal is a 503 that says when to come back.
    const busy = await call("GET", `/v1/lookup/${BUSY}`);
    expect([busy.status, busy.headers.get("retry-after")]).toEqual([503, "3"]);
    expect(busy.json.error).toMatchObject({ kind: "busy", layer: "presence" });
  });

  it("announces and withdraws presence", async () => {
    const up = await call("POST", "/v1/presence/announce");
    expect(up.status).toBe(200);
    expect((up.json.points as unknown[]).length).toBe(3);
    const two = await call("POST", "/v1/presence/announce", { points: 2, public: false });
    expect((two.json.points as unknown[]).length).toBe(2);
    expect(two.json.points).toEqual(client.points);
    expect(((await call("GET", "/v1/status")).json.presence as { announced: boolean }).announced).toBe(true);
    await call("DELETE", "/v1/presence");
    expect(((await call("GET", "/v1/status")).json.presence as { announced: boolean }).announced).toBe(false);
  });

  it("opens a channel, sends on it (answering on the peer's acknowledgement) and streams the peer's messages", async () => {
    const app = await events();
    const { next } = app;
    const opened = await call("POST", "/v1/channels", { to: ALICE });
    expect(opened.status).toBe(201);
    const id = opened.json.id as string;
    expect(opened.json).toMatchObject({ peer: ALICE, role: "initiator" });
    expect(await next("channel")).toMatchObject({ id, peer: ALICE });
    const far = client.far.get(ALICE)!;
    const received = far.messages()[Symbol.asyncIterator]();
    expect((await call("POST", `/v1/channels/${id}/messages`, { text: "hello alice" })).json).toEqual({ delivered: true });
    expect((await received.next()).value?.text).toBe("hello alice");
    expect((await call("POST", `/v1/channels/${id}/messages`, { base64: Buffer.from([0, 1, 2]).toString("base64") })).status).toBe(200);
    expect(Array.from((await received.next()).value?.body ?? [])).toEqual([0, 1, 2]);
    await far.send("hello carol");
    expect(await next("message")).toMatchObject({ type: "message", channel: id, from: ALICE, text: "hello carol", base64: Buffer.from("hello carol").toString("base64") });
    expect(((await call("GET", "/v1/channels")).json.channels as { id: string }[]).map((c) => c.id)).toContain(id);
    // The response schemas drop nothing the session produces.
    expect((await call("GET", "/v1/channels")).json).toEqual({ channels: daemon.session.channels() });
    expect((await call("GET", "/v1/status")).json).toEqual(JSON.parse(JSON.stringify(daemon.session.status())));
    expect((await call("DELETE", `/v1/channels/${id}`)).json).toEqual({ closed: true });
    expect(await next("closed")).toMatchObject({ channel: id, peer: ALICE });
    expect((await call("POST", `/v1/channels/${id}/messages`, { text: "late" })).status).toBe(404);
    await app.close();
  });

  it("offers introductions on the socket: accepted there or over REST, refused, or refused at once with no app attached", async () => {
    const app = await events();
    const { socket, next } = app;
    const first = client.introduce(ALICE);
    const offered = await next("introduction");
    expect(offered).toMatchObject({ from: ALICE });
    socket.send(JSON.stringify({ type: "accept", id: offered.id }));
    expect(await first.answer).toBe("accepted");
    const accepted = await next("accepted");
    const channel = await next("channel");
    expect(accepted.channel).toBe(channel.id);
    const far = await first.far;
    await far.send("hi from alice");
    expect(await next("message")).toMatchObject({ channel: channel.id, text: "hi from alice" });

    const second = client.introduce(ALICE);
    const offer2 = await next("introduction");
    expect(((await call("GET", "/v1/introductions")).json.introductions as { id: string }[]).map((i) => i.id)).toContain(offer2.id);
    expect((await call("POST", `/v1/introductions/${String(offer2.id)}/refuse`)).json).toEqual({ refused: true });
    expect(await second.answer).toBe("refused");

    socket.send("{bad json");
    expect((await next("error")).error).toMatchObject({ kind: "bad-request" });
    socket.send(JSON.stringify({ type: "accept", id: "0123456789abcdef" }));
    expect((await next("error")).error).toMatchObject({ kind: "not-found" });

    await app.close();
    while ((await call("GET", "/v1/status")).json.sockets !== 0) await new Promise((r) => setTimeout(r, 20));
    expect(await client.introduce(ALICE).answer).toBe("refused");
  });

  it("keeps events for the next socket while none is attached", async () => {
    const opened = await call("POST", "/v1/channels", { to: ALICE });
    // Resolves on our end's acknowledgement, sent as the message is handed on: it waits in the backlog now.
    await client.far.get(ALICE)!.send("while nobody listened");
    const app = await events();
    expect(await app.next("message")).toMatchObject({ channel: opened.json.id, text: "while nobody listened" });
    await app.close();
  });
});

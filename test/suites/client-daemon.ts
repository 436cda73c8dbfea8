/**
 * `psp client run` as apps in other languages use it, against a real
 * devnet (cli-msg.test.ts's: a suite, not a file, so it starts no devnet of
 * its own): two daemons (carol, announced; alice, connecting) as child
 * processes, driven only through their REST routes and event sockets. A
 * request without the token is a 401; alice opens a channel that carol's
 * app accepts on its socket (and a second one over REST), they exchange
 * messages both ways; malformed bodies get a 400 with a kind and the daemon
 * goes on serving; the docs/CLIENT.md app runs as printed; SIGINT stops
 * both cleanly.
 */
import { spawn } from "node:child_process";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { daemonCaller, daemonEvents } from "../helpers/daemon.js";
import type { DaemonEvents } from "../helpers/daemon.js";
import type { TestDevnet } from "../helpers/devnet.js";
import { runPsp, startPsp, type RunningPsp } from "../helpers/psp.js";
import { projectRoot } from "../../scripts/lib/artifacts.js";

interface Daemon {
  run: RunningPsp;
  url: string;
  token: string;
  identity: string;
  call: ReturnType<typeof daemonCaller>;
}

/** Declares the suite; call inside a file whose beforeAll started the devnet `devnet()` returns. */
export function describeClientDaemon(devnet: () => TestDevnet): void {
  describe("psp client run", () => {
    let net: TestDevnet;
    let carol: Daemon;
    let alice: Daemon;
    const sockets: DaemonEvents[] = [];

    /** `psp client run` as a demo user, once it printed its ready line. */
    async function daemon(user: string, extra: string[] = []): Promise<Daemon> {
      const run = startPsp(net.root, ["client", "run", "--key-file", net.user(user).keyFile, "--port", "0", "--log-level", "warn", ...extra]);
      const ready = JSON.parse(await run.line((l) => l.includes('"event":"ready"'))) as { url: string; identity: string; token?: string; tokenFile?: string };
      const token = ready.token ?? (await readFile(ready.tokenFile!, "utf8")).trim();
      return { run, url: ready.url, token, identity: ready.identity, call: daemonCaller(ready.url, token) };
    }

    async function events(d: Daemon): Promise<DaemonEvents> {
      const e = await daemonEvents(d.url, d.token);
      sockets.push(e);
      return e;
    }

    beforeAll(async () => {
      net = devnet();
      [carol, alice] = await Promise.all([daemon("carol", ["--token-file", join(net.root, "carol.token")]), daemon("alice")]);
    }, 300_000);

    afterAll(async () => {
      await Promise.all(sockets.map((s) => s.close()));
      await Promise.all([carol?.run.stop(), alice?.run.stop()]);
    });

    it("keeps its token to itself: a 0600 token file, and 401 for every request without it", async () => {
      expect((await stat(join(net.root, "carol.token"))).mode & 0o777).toBe(0o600);
      expect(carol.run.stdout()).not.toContain(carol.token);
      expect(alice.token.length).toBeGreaterThanOrEqual(16);
      for (const [method, path] of [
        ["GET", "/v1/status"],
        ["GET", `/v1/lookup/${carol.identity}`],
        ["POST", "/v1/channels"],
      ] as const) {
        const r = await carol.call(method, path, undefined, null);
        expect(r.status, `${method} ${path}`).toBe(401);
        expect(r.json).toMatchObject({ error: { kind: "unauthorized" } });
      }
      const status = await carol.call("GET", "/v1/status");
      expect(status.status).toBe(200);
      expect(status.json).toMatchObject({ identity: net.user("carol").identity, presence: { announced: false } });
      // The daemon may have bootstrapped from a node still serving an older consensus (valid, fewer nodes): it moves on to the newest.
      const listed = async () => ((await carol.call("GET", "/v1/status")).json.consensus as { nodes: number }).nodes;
      await expect.poll(listed, { timeout: 60_000, interval: 500 }).toBe(net.devnet.state.nodes.length);
    });

    it("opens a channel through presence and rendezvous, accepted on the socket, and carries messages both ways", async () => {
      const atCarol = await events(carol);
      const atAlice = await events(alice);
      const announced = await carol.call("POST", "/v1/presence/announce", {});
      expect(announced.status, JSON.stringify(announced.json)).toBe(200);
      expect((announced.json.points as { state: string }[]).some((p) => p.state === "up")).toBe(true);
      const found = await alice.call("GET", `/v1/lookup/${carol.identity}`);
      expect(found.status, JSON.stringify(found.json)).toBe(200);
      expect((found.json.points as unknown[]).length).toBeGreaterThanOrEqual(1);

      const opening = alice.call("POST", "/v1/channels", { to: carol.identity });
      const intro = await atCarol.next("introduction");
      expect(intro.from).toBe(alice.identity);
      atCarol.socket.send(JSON.stringify({ type: "accept", id: intro.id }));
      const opened = await opening;
      expect(opened.status, JSON.stringify(opened.json)).toBe(201);
      expect(opened.json).toMatchObject({ peer: carol.identity, role: "initiator" });
      const carolSide = await atCarol.next("channel");
      expect(carolSide).toMatchObject({ peer: alice.identity, role: "responder" });
      expect((await atCarol.next("accepted")).channel).toBe(carolSide.id);

      const sent = await alice.call("POST", `/v1/channels/${String(opened.json.id)}/messages`, { text: "hello carol" });
      expect([sent.status, sent.json]).toEqual([200, { delivered: true }]);
      expect(await atCarol.next("message")).toMatchObject({ channel: carolSide.id, from: alice.identity, text: "hello carol" });

      const reply = await carol.call("POST", `/v1/channels/${String(carolSide.id)}/messages`, { base64: Buffer.from("hello alice").toString("base64") });
      expect(reply.json).toEqual({ delivered: true });
      expect(await atAlice.next("message")).toMatchObject({ channel: opened.json.id, from: carol.identity, text: "hello alice" });

      expect((await alice.call("DELETE", `/v1/channels/${String(opened.json.id)}`)).json).toEqual({ closed: true });
      expect(await atCarol.next("closed")).toMatchObject({ channel: carolSide.id, peer: alice.identity });
    }, 180_000);

    it("lets the app accept over REST too", async () => {
      const atCarol = sockets[0]!;
      const opening = alice.call("POST", "/v1/channels", { to: carol.identity });
      const intro = await atCarol.next("introduction");
      const accepted = await carol.call("POST", `/v1/introductions/${String(intro.id)}/accept`);
      expect(accepted.status, JSON.stringify(accepted.json)).toBe(200);
      expect((await opening).status).toBe(201);
      const channel = (accepted.json.channel as { id: string }).id;
      expect((await carol.call("POST", `/v1/channels/${channel}/messages`, { text: "second channel" })).json).toEqual({ delivered: true });
      expect(await sockets[1]!.next("message")).toMatchObject({ from: carol.identity, text: "second channel" });
    }, 180_000);

    it("answers malformed bodies with 400 and a kind, and goes on serving", async () => {
      for (const body of [{}, { to: 7 }, { to: carol.identity, bogus: 1 }, "{oops", { to: carol.identity, timeoutMs: "soon" }]) {
        const r = await alice.call("POST", "/v1/channels", body);
        expect(r.status, JSON.stringify(body)).toBe(400);
        expect(r.json).toMatchObject({ error: { kind: "bad-request" } });
      }
      const channels = (await alice.call("GET", "/v1/channels")).json.channels as { id: string }[];
      const open = channels[0]!.id;
      for (const body of [{}, { text: 1 }, { text: "a", base64: "YQ==" }, { base64: "not base64!" }]) {
        expect((await alice.call("POST", `/v1/channels/${open}/messages`, body)).status, JSON.stringify(body)).toBe(400);
      }
      expect((await alice.call("POST", "/v1/presence/announce", { points: 0 })).status).toBe(400);
      expect((await alice.call("GET", "/v1/lookup/not-an-identity")).json).toMatchObject({ error: { kind: "bad-argument" } });
      expect((await alice.call("GET", "/v1/status")).status).toBe(200);
      expect((await alice.call("POST", `/v1/channels/${open}/messages`, { text: "still here" })).json).toEqual({ delivered: true });
    }, 120_000);

    it("runs the docs/CLIENT.md daemon app as printed: psp msg send reaches it", async () => {
      const doc = await readFile(join(projectRoot, "docs", "CLIENT.md"), "utf8");
      const example = /## The client daemon[\s\S]*?```js\n([\s\S]*?)```/.exec(doc)?.[1];
      expect(example).toContain("http://127.0.0.1:8700");
      // The one change: the port this test's daemon got instead of the default 8700.
      await writeFile(join(net.root, "echo.mjs"), example!.replace("http://127.0.0.1:8700", carol.url));
      const app = spawn(process.execPath, ["echo.mjs"], {
        cwd: net.root,
        env: { ...process.env, PSP_CLIENT_TOKEN: carol.token },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      const printed = (text: string) =>
        new Promise<void>((resolve) => {
          const check = () => out.includes(text) && resolve();
          app.stdout.on("data", (c: Buffer) => {
            out += c.toString();
            check();
          });
          check();
        });
      try {
        await printed("announced");
        const sent = await runPsp(net.root, ["msg", "send", "--key-file", net.user("alice").keyFile, "--to", carol.identity, "--text", "hi echo"]);
        expect(sent.code, sent.stderr).toBe(0);
        await printed(`${alice.identity}: hi echo`);
      } finally {
        app.kill("SIGINT");
      }
    }, 180_000);

    it("stops cleanly on SIGINT", async () => {
      expect(await carol.run.stop()).toEqual({ code: 0, signal: null });
      expect(await alice.run.stop()).toEqual({ code: 0, signal: null });
    }, 60_000);
  });
}

/**
 * `psp stream create | publish | play` as users run them, against a real
 * devnet (chain, contracts, eleven `psp node run` processes, two oracles;
 * oracle-network.test.ts's, so this suite starts no devnet of its own):
 * alice (subscribed) creates a stream and gets a ticket on stdout while the
 * publish token goes to a 0600 publisher file under the state dir; a viewer
 * started before the producer waits for the first chunk; an ffmpeg test
 * source piped through `ffmpeg -re … | psp stream publish` (a shell pipe, as
 * in the README) reaches `psp stream play --out`, both exit 0 when the
 * stream ends, and ffprobe counts the source's frames within 5 % in the
 * output. SIGINT to a publisher whose input is still open ends the stream
 * (END) and both sides exit 0; `--blind` creates through RFC 9474 receipts.
 * A mistyped ticket, a ticket with no publisher file here and an
 * unsubscribed identity (carol) each give one typed error line with a fix
 * and their own exit code.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hexOf } from "../../node/src/base/hex.js";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { StreamExit } from "../../node/src/cli/stream.js";
import { decodeTicket, encodeTicket } from "../../node/src/stream/ticket.js";
import type { TestDevnet } from "../helpers/devnet.js";
import { pspBin, runPsp, startPsp, type RunningPsp } from "../helpers/psp.js";

const run = promisify(execFile);
const FFMPEG = "/usr/bin/ffmpeg";
const FFPROBE = "/usr/bin/ffprobe";

/** Declares the suite; call inside a file whose beforeAll started the devnet `devnet()` returns, before anything stops its nodes. */
export function describeStreamCli(devnet: () => TestDevnet): void {
  describe("psp stream", () => {
    let net: TestDevnet;
    /** The publisher files go under the test's own folder (the default state dir, through XDG_STATE_HOME). */
    let env: Record<string, string>;
    const running: RunningPsp[] = [];

    const errorLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("error:"));

    async function videoFrames(file: string): Promise<number> {
      const { stdout } = await run(FFPROBE, [
        "-v",
        "error",
        "-count_frames",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=nb_read_frames",
        "-of",
        "csv=p=0",
        file,
      ]);
      // csv prints "88," (and repeats it per program): the first number is the count.
      return Number(/\d+/.exec(stdout)?.[0] ?? "NaN");
    }

    beforeAll(() => {
      net = devnet();
      env = { XDG_STATE_HOME: join(net.root, "state") };
    });

    afterAll(async () => {
      await Promise.all(running.map((r) => r.stop()));
    });

    it("create → play (waiting) → ffmpeg | publish: the viewer's file holds the source's frames within 5 %; both exit 0", async () => {
      const source = join(net.root, "source.ts");
      await run(FFMPEG, ["-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "3.5", "-f", "mpegts", source]);
      const sourceFrames = await videoFrames(source);
      expect(sourceFrames).toBeGreaterThan(80);

      const alice = net.user("alice");
      const created = await runPsp(net.root, ["stream", "create", "--key-file", alice.keyFile], env);
      expect(created.code, created.stderr).toBe(0);
      const ticketText = created.stdout.trim();
      expect(ticketText).toMatch(/^pspstream1:[A-Za-z0-9_-]+$/);
      const ticket = decodeTicket(ticketText);
      const publisherFile = join(net.root, "state", "psp", "streams", `${hexOf(ticket.streamId)}.json`);
      expect(statSync(publisherFile).mode & 0o777).toBe(0o600);
      const { token } = JSON.parse(await readFile(publisherFile, "utf8")) as { token: string };
      // The viewers' ticket never carries the publish token.
      expect(Buffer.from(ticketText.slice("pspstream1:".length), "base64url").toString("hex")).not.toContain(token);

      const out = join(net.root, "viewer.ts");
      const viewer = startPsp(net.root, ["stream", "play", "--ticket", ticketText, "--out", out], env);
      running.push(viewer);
      await expect.poll(() => viewer.stderr(), { timeout: 60_000, interval: 200 }).toContain("waiting for the first chunk");

      // As the README runs it: a shell pipe from ffmpeg (real time) into psp stream publish.
      const producer = spawn(
        "sh",
        ["-c", `${FFMPEG} -v error -re -i "$SOURCE" -c copy -f mpegts - | "${process.execPath}" "${pspBin}" stream publish --ticket "$TICKET"`],
        {
          cwd: net.root,
          env: { ...process.env, ...env, SOURCE: source, TICKET: ticketText },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let producerOut = "";
      let producerErr = "";
      producer.stdout.on("data", (c: Buffer) => (producerOut += c.toString()));
      producer.stderr.on("data", (c: Buffer) => (producerErr += c.toString()));
      const producerCode = await new Promise<number | null>((resolve) => producer.once("exit", resolve));
      expect(producerCode, producerErr).toBe(0);
      expect(producerOut).toBe(""); // progress goes to stderr only
      expect(producerErr).toMatch(/stream ended: \d+ chunks/);
      expect(existsSync(publisherFile)).toBe(false);

      expect(await viewer.exited, viewer.stderr()).toEqual({ code: 0, signal: null });
      expect(viewer.stdout()).toBe("");
      expect(viewer.stderr()).toMatch(/stream ended: \d+ chunks/);
      const got = await videoFrames(out);
      console.info(`cli-stream: ${got} frames played of ${sourceFrames} in the source`);
      expect(Math.abs(got - sourceFrames) / sourceFrames, `${got} frames of ${sourceFrames}`).toBeLessThanOrEqual(0.05);
    }, 180_000);

    it("SIGINT to publish ends the stream as EOF does: the publisher and the viewer both exit 0", async () => {
      const alice = net.user("alice");
      const created = await runPsp(net.root, ["stream", "create", "--key-file", alice.keyFile, "--distribution", "1"], env);
      expect(created.code, created.stderr).toBe(0);
      const ticketText = created.stdout.trim();
      const viewer = startPsp(net.root, ["stream", "play", "--ticket", ticketText, "--out", join(net.root, "sigint.ts")], env);
      running.push(viewer);
      await expect.poll(() => viewer.stderr(), { timeout: 60_000, interval: 200 }).toContain("waiting for the first chunk");
      // Standard input stays open: only the signal can end this stream.
      const producer = spawn(process.execPath, [pspBin, "stream", "publish", "--ticket", ticketText], {
        cwd: net.root,
        env: { ...process.env, ...env },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let producerErr = "";
      producer.stderr.on("data", (c: Buffer) => (producerErr += c.toString()));
      const exited = new Promise<number | null>((resolve) => producer.once("exit", resolve));
      producer.stdin.write(await readFile(join(net.root, "source.ts")));
      await expect.poll(() => viewer.stderr(), { timeout: 60_000, interval: 200 }).toContain("receiving");
      producer.kill("SIGINT");
      expect(await exited, producerErr).toBe(0);
      expect(producerErr).toMatch(/stream ended: \d+ chunks/);
      expect(await viewer.exited, viewer.stderr()).toEqual({ code: 0, signal: null });
    }, 120_000);

    it("--blind: a stream created under an RFC 9474 receipt the oracle cannot link; the landing node takes it", async () => {
      const alice = net.user("alice");
      // With --json the answer is one JSON object on stdout.
      const created = await runPsp(net.root, ["stream", "create", "--key-file", alice.keyFile, "--blind", "--distribution", "1", "--json"], env);
      expect(created.code, created.stderr).toBe(0);
      const answer = JSON.parse(created.stdout) as { ticket: string; streamId: string; publisherFile: string; expiresAt: number };
      const ticket = decodeTicket(answer.ticket);
      expect(answer.streamId).toBe(hexOf(ticket.streamId));
      expect(answer.publisherFile).toBe(join(net.root, "state", "psp", "streams", `${hexOf(ticket.streamId)}.json`));
      expect(existsSync(answer.publisherFile)).toBe(true);
    }, 120_000);

    it("a mistyped ticket exits 2, a ticket without a publisher file here exits 3, each with one typed error line and a fix", async () => {
      const other = encodeTicket({
        streamId: new Uint8Array(16).fill(7),
        streamKey: new Uint8Array(32).fill(1),
        landing: generateEd25519KeyPair().publicKey,
        host: "127.0.0.1",
        port: 9,
      });
      const typo = other.slice(0, 20) + (other[20] === "A" ? "B" : "A") + other.slice(21);
      const played = await runPsp(net.root, ["stream", "play", "--ticket", typo], env);
      expect(played.code).toBe(StreamExit.badTicket);
      expect(errorLines(played.stderr), played.stderr).toEqual([expect.stringMatching(/^error: \[stream\/bad-ticket\] .*; fix: copy the whole ticket again/)]);
      expect(played.stdout).toBe("");
      // With --json the failure is also one JSON document on stdout (and the same exit code).
      const playedJson = await runPsp(net.root, ["stream", "play", "--ticket", typo, "--json"], env);
      expect(playedJson.code).toBe(StreamExit.badTicket);
      expect(JSON.parse(playedJson.stdout)).toMatchObject({
        error: { layer: "stream", kind: "bad-ticket", fix: expect.stringMatching(/copy the whole ticket/) },
      });

      const published = await runPsp(net.root, ["stream", "publish", "--ticket", other], env);
      expect(published.code).toBe(StreamExit.noPublisherFile);
      expect(errorLines(published.stderr), published.stderr).toEqual([
        expect.stringMatching(/^error: \[client\/bad-option\] no publisher file for stream 0707.*; fix: publish on the machine where `psp stream create`/),
      ]);
    }, 60_000);

    it("an unsubscribed identity (carol) is refused by the oracle: exit 4, one line naming the fix, nothing on stdout", async () => {
      const carol = net.user("carol");
      const refused = await runPsp(net.root, ["stream", "create", "--key-file", carol.keyFile], env);
      expect(refused.code, refused.stderr).toBe(StreamExit.notAllowed);
      expect(errorLines(refused.stderr), refused.stderr).toEqual([expect.stringMatching(/^error: \[oracle\/not-subscribed\] .*; fix: .*subscription/)]);
      expect(refused.stdout).toBe("");
    }, 120_000);
  });
}

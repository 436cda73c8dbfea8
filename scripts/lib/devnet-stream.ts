/**
 * The devnet's demo stream (issue 15): alice, who is subscribed, gets a
 * stream-creation receipt from an oracle through a circuit, creates a stream
 * at a landing node with two distribution nodes, and publishes ffmpeg's
 * test source (H.264 in MPEG-TS, live, for as long as the devnet runs); carol plays it
 * twice, each player with its own oracle session id, so two viewers receive
 * it through the distribution nodes. The ticket is printed so anyone can
 * watch with `psp stream play`.
 *
 * Without ffmpeg on the PATH the demo stream is skipped with a line saying
 * so: the media must be real, and PSP never looks inside it.
 *
 * Uses only the public client API (createPspClient), as an app would.
 */
import { spawn, spawnSync } from "node:child_process";
import type { ChildProcessByStdio } from "node:child_process";
import type { Readable } from "node:stream";
import type { PspClient } from "../../node/src/client/client.js";
import type { ViewerSession } from "../../node/src/stream/oracle-client.js";
import type { Player } from "../../node/src/stream/player.js";
import { publishReadable } from "../../node/src/stream/publisher.js";
import type { Publisher } from "../../node/src/stream/publisher.js";
import { decodeTicket } from "../../node/src/stream/ticket.js";

/**
 * ffmpeg's arguments for the test source: 320x240 at 25 frames/s, H.264 video (libx264, constrained
 * baseline, ultrafast, zerolatency: no B-frames, no lookahead) at 600 kbit/s with a keyframe every
 * second, in MPEG-TS on stdout, paced in real time; for `seconds` when given, else until stopped.
 * H.264 in MPEG-TS is what a browser can play (mpegts.js remuxes it for Media Source Extensions,
 * which take no MPEG-2 video), and a 1 s GOP lets a viewer that joins or jumps to the live edge start
 * within a second. The test source has no audio, so the stream has none.
 */
export function testSourceFfmpegArgs(seconds?: number): string[] {
  return [
    "-hide_banner",
    "-loglevel",
    "error",
    "-re",
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=320x240:rate=25",
    ...(seconds === undefined ? [] : ["-t", String(seconds)]),
    "-c:v",
    "libx264",
    "-profile:v",
    "baseline",
    "-preset",
    "ultrafast",
    "-tune",
    "zerolatency",
    "-pix_fmt",
    "yuv420p",
    "-g",
    "25",
    "-keyint_min",
    "25",
    "-sc_threshold",
    "0",
    "-b:v",
    "600k",
    "-maxrate",
    "600k",
    "-bufsize",
    "300k",
    "-f",
    "mpegts",
    "-",
  ];
}

/** The demo's source, for as long as the devnet runs. */
export const DEMO_STREAM_FFMPEG_ARGS: readonly string[] = testSourceFfmpegArgs();

/** The gateway's session id is renewed when less than this is left of it, seconds. */
const SESSION_RENEW_MARGIN_S = 120;

/** Bitrate cap the demo asks for, kbit/s (the test source runs well below it). */
const DEMO_STREAM_KBPS = 1500;

/** True when `ffmpeg -version` runs. */
export function ffmpegAvailable(): boolean {
  return spawnSync("ffmpeg", ["-version"], { stdio: "ignore" }).status === 0;
}

export interface StreamDemo {
  /** The viewers' ticket (stream id, key, landing node). */
  ticket: string;
  /**
   * A viewer session id of carol's from an oracle, renewed when it nears its end: what the devnet's
   * browser gateway (devnet-gateway.ts) attaches with on behalf of a page.
   */
  session(): Promise<Uint8Array>;
  /** Chunks each viewer has received so far. */
  received(): number[];
  stop(): void;
}

/**
 * Starts the demo stream and resolves once every viewer has received its
 * first chunk (or rejects when a step fails). `log` gets one line per step.
 */
export async function startStreamDemo(alice: PspClient, carol: PspClient, log: (line: string) => void): Promise<StreamDemo> {
  const t0 = performance.now();
  const obtained = await alice.oracle.receipt();
  const created = await alice.streams.create({ receipt: obtained.receipt.bytes, kbps: DEMO_STREAM_KBPS, distribution: 2 });
  const ticket = decodeTicket(created.ticket);
  log(
    `stream   alice got a receipt from an oracle and created stream ${Buffer.from(ticket.streamId).toString("hex").slice(0, 12)}… at landing node ` +
      `${Buffer.from(ticket.landing).toString("hex").slice(0, 12)}… with 2 distribution nodes (${(performance.now() - t0).toFixed(0)} ms)`,
  );

  const players: Player[] = [];
  let source: ChildProcessByStdio<null, Readable, null> | undefined;
  let publisher: Publisher | undefined;
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    for (const p of players) p.close();
    publisher?.end();
    source?.kill("SIGTERM");
  };
  try {
    // Viewers first: a viewer attached before the producer starts waits for the first chunk.
    const counts = [0, 0];
    const viewers = await Promise.all(
      counts.map(async (_, i) => {
        const session = await carol.oracle.session();
        // Each player reports what it received under its own session, so the nodes carrying the demo are paid.
        const player = await carol.streams.play({ ticket: created.ticket, session: () => session });
        players.push(player);
        const first = new Promise<string>((resolve, reject) => {
          player.on("media", () => {
            counts[i] = (counts[i] ?? 0) + 1;
            if (counts[i] === 1) resolve(player.stats.attachedTo.at(-1) ?? "?");
          });
          player.once("error", reject);
          player.once("end", () => reject(new Error("the demo stream ended before its first chunk")));
        });
        return { first };
      }),
    );
    if (stopped) throw new Error("the demo stream was stopped while starting");
    // The source runs until the devnet stops.
    source = spawn("ffmpeg", DEMO_STREAM_FFMPEG_ARGS, { stdio: ["ignore", "pipe", "ignore"] });
    publisher = await alice.streams.publish({ ticket: created.ticket, token: created.token });
    void publishReadable(publisher, source.stdout).catch((err: unknown) => {
      if (!stopped) log(`stream   alice's publisher stopped: ${err instanceof Error ? err.message : String(err)}`);
    });
    let timer: NodeJS.Timeout | undefined;
    const attached = await Promise.race([
      Promise.all(viewers.map((v) => v.first)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no chunk of the demo stream reached both viewers within 60 s")), 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    log(
      `stream   carol's 2 viewers receive alice's ffmpeg test source through access points ${attached.map((a) => `${a.slice(0, 12)}…`).join(", ")} ` +
        `(first chunks ${(performance.now() - t0).toFixed(0)} ms after alice asked for the receipt)`,
    );
    let viewerSession: ViewerSession | undefined;
    const session = async (): Promise<Uint8Array> => {
      if (!viewerSession || viewerSession.id.expiresAt - SESSION_RENEW_MARGIN_S <= Date.now() / 1000) viewerSession = await carol.oracle.session();
      return viewerSession.session;
    };
    return { ticket: created.ticket, session, received: () => [...counts], stop };
  } catch (err) {
    stop();
    throw err;
  }
}

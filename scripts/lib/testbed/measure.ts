/**
 * What the testbed measures (issue 18), against any running devnet (the
 * testbed's, or the loopback one as a same-run baseline), through the public
 * client API only (createPspClient), as an app would:
 *
 * - the network's own round trip: TCP connects from this process to every
 *   node's link port (one SYN / SYN-ACK exchange each);
 * - 3-hop circuits: build time to each onion node as last hop, and 64-byte
 *   echo round trips through one of them;
 * - presence: alice and carol announce; carol finds alice by identity and
 *   opens a private channel (lookup, introduction, rendezvous: connect
 *   time), then messages round-trip over it (alice answers each);
 * - a stream: alice gets a receipt from an oracle, creates a stream at a
 *   landing node with distribution nodes and publishes ffmpeg's test source;
 *   carol plays it: per-chunk latency is her clock on receipt minus the
 *   producer's clock sealed inside the chunk (same machine, same clock).
 *
 * Trusts the devnet state file and the demo users' key files.
 */
import { spawn } from "node:child_process";
import { connect as tcpConnect } from "node:net";
import { createPspClient } from "../../../node/src/client/client.js";
import type { PspClient } from "../../../node/src/client/client.js";
import type { DevnetState } from "../../../node/src/client/devnet-state.js";
import { publishReadable } from "../../../node/src/stream/publisher.js";
import type { OpenedChunk } from "../../../node/src/stream/crypto.js";
import { childLogger, logFailure } from "../../../node/src/log.js";
import type { Logger } from "../../../node/src/log.js";
import { testSourceFfmpegArgs } from "../devnet-stream.js";

export interface Distribution {
  samples: number;
  minMs: number;
  medianMs: number;
  p90Ms: number;
  maxMs: number;
}

export interface NetworkFigures {
  /** TCP connect from this process to each node's link port. */
  tcpConnect: Distribution;
  /** 3-hop circuit builds, one to each onion node as last hop. */
  circuitBuild: Distribution;
  /** 64-byte echo round trips through one 3-hop circuit. */
  circuitEcho: Distribution;
  /** carol finds alice and opens a private channel (lookup, introduction, rendezvous). */
  presenceConnectMs: number;
  /** Message round trips over that channel (carol → alice → carol). */
  presenceMessage: Distribution;
  /** Producer → viewer latency per stream chunk (landing, distribution, access point). */
  streamChunk: Distribution & { p99Ms: number };
}

export interface MeasureOptions {
  state: DevnetState & { demo: { users: { name: string; identity: string; keyFile: string }[] } };
  stateFile: string;
  passphrase: string;
  /** TCP connects per node (default 5). */
  tcpRounds?: number;
  /** Echo and message round trips (default 20 and 10). */
  echoRounds?: number;
  messageRounds?: number;
  /** Stream chunks to time (default 100: 4 s of the 25 chunk/s test source). */
  streamChunks?: number;
  logger?: Logger;
}

export function distribution(xs: readonly number[]): Distribution & { p99Ms: number } {
  if (xs.length === 0) throw new Error("no samples to summarise");
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1)))]!;
  return { samples: s.length, minMs: s[0]!, medianMs: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), maxMs: s.at(-1)! };
}

const plain = ({ p99Ms: _, ...d }: Distribution & { p99Ms: number }): Distribution => d;

function tcpConnectMs(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const socket = tcpConnect({ host, port });
    socket.setTimeout(15_000, () => socket.destroy(new Error(`TCP connect to ${host}:${port} timed out`)));
    socket.once("connect", () => {
      const ms = performance.now() - t;
      socket.destroy();
      resolve(ms);
    });
    socket.once("error", reject);
  });
}

async function withTimeout<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms / 1000} s`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every measurement once against the devnet of `options.state`. */
export async function measureNetwork(options: MeasureOptions): Promise<NetworkFigures> {
  const log = childLogger(options.logger, "testbed.measure");
  const { state } = options;
  const user = (name: string) => {
    const u = state.demo.users.find((x) => x.name === name);
    if (!u) throw new Error(`the devnet has no demo user ${name}`);
    return u;
  };

  // The network's own round trip, before any client traffic.
  const tcp: number[] = [];
  for (let r = 0; r < (options.tcpRounds ?? 5); r++)
    for (const n of state.nodes) {
      const [host, port] = n.addresses[0]!.split(":") as [string, string];
      tcp.push(await tcpConnectMs(host, Number(port)));
    }

  const clients: PspClient[] = [];
  const stops: (() => void)[] = [];
  let closing = false;
  try {
    const [alice, carol] = (await Promise.all(
      ["alice", "carol"].map(async (name) => {
        const client = await createPspClient({
          bootstrap: { devnet: options.stateFile },
          identity: { keyFile: user(name).keyFile, passphrase: options.passphrase },
          ...(options.logger ? { logger: options.logger.child({ user: name }) } : {}),
        });
        clients.push(client);
        await withTimeout(`${name} bootstrap`, 120_000, client.ready);
        return client;
      }),
    )) as [PspClient, PspClient];

    // 3-hop circuits: one to each onion node that may be a last hop (not internal relays).
    const lastHops = state.nodes.filter((n) => !n.internal && n.roles.includes("onion")).map((n) => n.nodeKey.replace(/^0x/, ""));
    const builds: number[] = [];
    const echo: number[] = [];
    for (const [i, lastHop] of lastHops.entries()) {
      const t = performance.now();
      const circuit = await withTimeout("3-hop circuit build", 60_000, carol.circuit({ lastHop }));
      builds.push(performance.now() - t);
      if (circuit.hops !== 3) throw new Error(`a circuit to ${lastHop.slice(0, 12)}… has ${circuit.hops} hops, not 3`);
      if (i === 0) {
        const stream = await circuit.openStream("echo");
        const body = new Uint8Array(64).fill(7);
        for (let r = 0; r < (options.echoRounds ?? 20) + 2; r++) {
          const t1 = performance.now();
          await stream.send(body);
          const back = await withTimeout("echo through a 3-hop circuit", 30_000, stream.receive());
          if (back.length !== body.length) throw new Error(`echo returned ${back.length} bytes, not ${body.length}`);
          if (r >= 2) echo.push(performance.now() - t1); // the first two warm the path
        }
        stream.close();
      }
      circuit.close();
    }
    log.info(
      `circuits ${builds.length} 3-hop builds, median ${distribution(builds).medianMs.toFixed(1)} ms; echo median ${distribution(echo).medianMs.toFixed(1)} ms`,
    );

    // Presence: alice answers every message on every channel.
    alice.on("introduction", (intro) => {
      intro
        .accept()
        .then(async (channel) => {
          stops.push(() => channel.close());
          for await (const m of channel.messages()) await channel.send(`re: ${m.text}`);
        })
        .catch((err: unknown) => logFailure(log, err, "alice answer", closing ? "debug" : "warn"));
    });
    await withTimeout("presence announce", 120_000, Promise.all([alice.presence.announce(), carol.presence.announce()]));
    const t0 = performance.now();
    const channel = await withTimeout("carol connects to alice", 120_000, carol.connect(alice.identity!));
    const presenceConnectMs = performance.now() - t0;
    stops.push(() => channel.close());
    const replies = channel.messages();
    const messages: number[] = [];
    for (let r = 0; r < (options.messageRounds ?? 10); r++) {
      const t1 = performance.now();
      await channel.send(`ping ${r}`);
      const reply = await withTimeout("a message round trip", 30_000, replies.next());
      if (reply.value?.text !== `re: ping ${r}`) throw new Error(`alice's reply was ${JSON.stringify(reply.value?.text)}, not "re: ping ${r}"`);
      messages.push(performance.now() - t1);
    }
    channel.close();
    log.info(`presence connect ${presenceConnectMs.toFixed(0)} ms; message round trip median ${distribution(messages).medianMs.toFixed(1)} ms`);

    // A stream: alice produces, carol views through landing → distribution → access point.
    const wanted = options.streamChunks ?? 100;
    const obtained = await withTimeout("an oracle receipt", 60_000, alice.oracle.receipt());
    const created = await withTimeout("stream creation", 60_000, alice.streams.create({ receipt: obtained.receipt.bytes, kbps: 1500, distribution: 2 }));
    const session = await withTimeout("an oracle session", 60_000, carol.oracle.session());
    const player = await withTimeout("attach a player", 60_000, carol.streams.play({ ticket: created.ticket, session: () => session }));
    stops.push(() => player.close());
    const latencies: number[] = [];
    const enough = new Promise<void>((resolve, reject) => {
      player.on("media", (chunk: OpenedChunk) => {
        latencies.push(Date.now() - chunk.producedAt);
        if (latencies.length === wanted) resolve();
      });
      player.once("error", reject);
      player.once("end", () => reject(new Error(`the stream ended after ${latencies.length} of ${wanted} chunks`)));
    });
    // Long enough for `wanted` chunks at 25 a second, with room for a slow start.
    const source = spawn("ffmpeg", testSourceFfmpegArgs(Math.ceil(wanted / 25) + 20), { stdio: ["ignore", "pipe", "ignore"] });
    stops.push(() => source.kill("SIGTERM"));
    const publisher = await withTimeout("attach the publisher", 60_000, alice.streams.publish({ ticket: created.ticket, token: created.token }));
    stops.push(() => publisher.end());
    void publishReadable(publisher, source.stdout).catch((err: unknown) => logFailure(log, err, "publish the test source", "debug"));
    await withTimeout(`${wanted} stream chunks`, 120_000, enough);
    // Chunks still arriving while the promise settles are not part of the sample.
    const streamChunk = distribution(latencies.slice(0, wanted));
    log.info(`stream   ${latencies.length} chunks, producer → viewer median ${streamChunk.medianMs} ms, p99 ${streamChunk.p99Ms} ms`);

    return {
      tcpConnect: plain(distribution(tcp)),
      circuitBuild: plain(distribution(builds)),
      circuitEcho: plain(distribution(echo)),
      presenceConnectMs,
      presenceMessage: plain(distribution(messages)),
      streamChunk,
    };
  } finally {
    closing = true;
    for (const stop of stops.reverse()) stop();
    await Promise.all(clients.map((c) => c.close()));
  }
}

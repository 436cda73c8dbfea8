/**
 * Child process of the streaming benchmark (scripts/bench/stream.ts): the
 * serving side. A landing node, one distribution node and a producer, all
 * in this process, over real TLS on loopback; the producer publishes a
 * 2 Mbit/s stream (25 sealed chunks a second, the producer's time inside
 * the seal) from the moment it is ready. Viewers live in another process
 * (stream-viewers.ts) and attach to the distribution node.
 *
 * Owns the message protocol with the parent over the fork IPC channel:
 *   child → parent: { type: "ready", point, streamId, streamKey, session } (hex)
 *   parent → child: { type: "mark" }    → { type: "mark", seq, at, cpuUs, loopP99Ms, loopMaxMs, runqueueWaitUs, viewers, counters }
 *     seq: the next sequence number the producer will send; at: this
 *     process's performance.now() when it answered; cpuUs: this
 *     process's user + system CPU so far (µs); loop*: this process's event
 *     loop delay since the previous mark
 *   parent → child: { type: "profile", ms } → { type: "profile", top, totalMs }
 *     a V8 CPU profile of this process for `ms`, self time summed per function
 *   parent → child: { type: "close" }   → exits
 *
 * Trusts: the parent (it forked us).
 */
import { Session } from "node:inspector/promises";
import { basename } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { hexOf } from "../../../node/src/base/hex.js";
import { generateTlsCredentials } from "../../../node/src/link/tls.js";
import { openPublisher } from "../../../node/src/stream/publisher.js";
import {
  benchOracle,
  runqueueWaitUs,
  CHUNK_MEDIA_BYTES,
  CHUNKS_PER_SECOND,
  createBenchStream,
  sleepUntil,
  startMediaNode,
  wallMicros,
} from "./stream-nodes.js";

type ParentMessage = { type: "mark" } | { type: "profile"; ms: number } | { type: "close" };

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** Self time per function (name and file), largest first, from a V8 CPU profile. */
async function profile(ms: number): Promise<{ top: { fn: string; ms: number }[]; totalMs: number }> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  await new Promise((r) => setTimeout(r, ms));
  const { profile: p } = (await session.post("Profiler.stop")) as { profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] } };
  session.disconnect();
  const byNode = new Map<number, ProfileNode>(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byNode.get(p.samples[i] as number);
    const dt = p.timeDeltas[i] ?? 0;
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const key = url ? `${functionName || "(anonymous)"} ${basename(url)}:${lineNumber + 1}` : functionName;
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
    total += dt;
  }
  // What the process did, not the profiler's own inspector calls or the idle loop.
  for (const skip of ["(idle)"]) {
    total -= selfUs.get(skip) ?? 0;
    selfUs.delete(skip);
  }
  for (const key of [...selfUs.keys()].filter((k) => k.includes("node:inspector"))) {
    total -= selfUs.get(key) ?? 0;
    selfUs.delete(key);
  }
  const top = [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 14)
    .map(([fn, us]) => ({ fn, ms: us / 1000 }));
  return { top, totalMs: total / 1000 };
}

async function main(): Promise<void> {
  const send = (msg: unknown): void => {
    process.send?.(msg);
  };
  const credentials = await generateTlsCredentials();
  const oracle = benchOracle();
  const landing = await startMediaNode(credentials, oracle.admission);
  const distribution = await startMediaNode(credentials, oracle.admission);
  const { ticket, token } = await createBenchStream(landing, [distribution], oracle);
  const publisher = await openPublisher({ ticket, token, clock: wallMicros });
  const media = new Uint8Array(CHUNK_MEDIA_BYTES).fill(0x47);
  let nextSeq = 0;
  let running = true;
  const period = 1000 / CHUNKS_PER_SECOND;
  const pace = async (): Promise<void> => {
    const start = performance.now();
    while (running && publisher.isOpen) {
      publisher.write(media);
      nextSeq++;
      await sleepUntil(start + nextSeq * period);
    }
  };
  void pace();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();

  process.on("message", (msg: ParentMessage) => {
    if (msg.type === "mark") {
      const cpu = process.cpuUsage();
      const view = distribution.host.streamsView()[0];
      send({
        type: "mark",
        seq: nextSeq,
        at: performance.now(),
        cpuUs: cpu.user + cpu.system,
        loopP99Ms: loop.percentile(99) / 1e6,
        loopMaxMs: loop.max / 1e6,
        runqueueWaitUs: runqueueWaitUs(),
        viewers: view?.viewers ?? 0,
        counters: { distribution: distribution.host.counters, landing: landing.host.counters },
      });
      loop.reset();
    } else if (msg.type === "profile") {
      void profile(msg.ms).then((r) => send({ type: "profile", ...r }));
    } else if (msg.type === "close") {
      running = false;
      publisher.end();
      void Promise.all([landing.close(), distribution.close()]).finally(() => process.exit(0));
    }
  });
  process.on("disconnect", () => process.exit(0));
  send({
    type: "ready",
    point: { identity: hexOf(distribution.identity.publicKey), host: distribution.entry.host, port: distribution.entry.port },
    streamId: hexOf(ticket.streamId),
    streamKey: hexOf(ticket.streamKey),
    session: hexOf(oracle.session()),
  });
}

await main();

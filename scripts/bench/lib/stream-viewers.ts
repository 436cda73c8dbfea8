/**
 * Child process of the streaming benchmark (scripts/bench/stream.ts): the
 * viewers, many stream links to one distribution node, in a process of
 * their own so the distribution node's process serves them as it would
 * serve remote viewers.
 *
 * Each viewer is a real stream link (connectStreamLink: TLS 1.3, the node's
 * proof checked, ATTACH with an oracle session id, frames cut by the real
 * FrameReader) and records the arrival time of every CHUNK by sequence
 * number. To keep this process from being the bottleneck, only one viewer
 * in OPEN_EVERY opens every chunk (ChaCha20-Poly1305 under the stream key,
 * the producer's time read from inside the seal); every viewer's delay is
 * its arrival time less that producer time for the same sequence number,
 * and every viewer is checked for every sequence number of the window.
 *
 * Owns the message protocol with the parent over the fork IPC channel:
 *   parent → child: { type: "init", point, streamId, streamKey, session } → { type: "init" }
 *   parent → child: { type: "attach", total } → { type: "attached", viewers, failed }
 *   parent → child: { type: "mark" } → { type: "mark", at, cpuUs, bytesIn, loopP99Ms, loopMaxMs, runqueueWaitUs }
 *     (event loop delay since the previous mark)
 *   parent → child: { type: "report", from, to } → { type: "report", … } for
 *     sequence numbers from..to inclusive; then forgets what it recorded
 *   parent → child: { type: "close" } → exits
 *
 * Trusts: the parent; the distribution node only as far as its proof and
 * the chunks that open.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseHex } from "../../../node/src/base/hex.js";
import { StreamCipher } from "../../../node/src/stream/crypto.js";
import { connectStreamLink } from "../../../node/src/stream/stream-link.js";
import type { StreamLink } from "../../../node/src/stream/stream-link.js";
import { quantile, runqueueWaitUs, wallMicros } from "./stream-nodes.js";

/** One viewer in this many opens every chunk. */
export const OPEN_EVERY = 10;
/** Attaches in flight at once (the node's listener holds at most 256 connections in their handshake). */
const ATTACH_CONCURRENCY = 32;

interface Init {
  point: { identity: string; host: string; port: number };
  streamId: string;
  streamKey: string;
  session: string;
}

type ParentMessage =
  ({ type: "init" } & Init) | { type: "attach"; total: number } | { type: "mark" } | { type: "report"; from: number; to: number } | { type: "close" };

interface Viewer {
  link: StreamLink;
  cipher: StreamCipher | undefined;
  /** seq → arrival (µs, wall time line). */
  arrivals: Map<number, number>;
  closed: boolean;
  rejected: number;
}

const bytes = (hex: string): Uint8Array => {
  const b = parseHex(hex);
  if (!b) throw new Error(`not hex: ${hex.slice(0, 16)}…`);
  return b;
};

async function main(): Promise<void> {
  const send = (msg: unknown): void => {
    process.send?.(msg);
  };
  let init: Init | undefined;
  const viewers: Viewer[] = [];
  /** seq → producer time (µs) read from inside the seal by the opening viewers. */
  const producedAt = new Map<number, number>();
  let closedBeforeReport = 0;
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();

  const attachOne = async (index: number): Promise<void> => {
    if (!init) throw new Error("attach before init");
    const streamId = bytes(init.streamId);
    const link = await connectStreamLink({ host: init.point.host, port: init.point.port, expectedIdentity: bytes(init.point.identity) });
    link.send({ type: "attach", streamId, session: bytes(init.session) });
    const answer = await link.nextFrame(10_000);
    if (answer.type !== "accept") {
      link.destroy();
      throw new Error(`attach refused: ${answer.type === "refuse" ? `${answer.kind} ${answer.text}` : answer.type}`);
    }
    const viewer: Viewer = {
      link,
      cipher: index % OPEN_EVERY === 0 ? new StreamCipher(streamId, bytes(init.streamKey)) : undefined,
      arrivals: new Map(),
      closed: false,
      rejected: 0,
    };
    link.on("frame", (f) => {
      if (f.type !== "chunk") return;
      const at = wallMicros();
      const seq = Number(f.seq);
      viewer.arrivals.set(seq, at);
      if (viewer.cipher) {
        try {
          producedAt.set(seq, viewer.cipher.open(f.seq, f.sealed).producedAt);
        } catch {
          viewer.rejected++;
        }
      }
    });
    link.once("close", () => {
      viewer.closed = true;
      closedBeforeReport++;
    });
    viewers.push(viewer);
  };

  process.on("message", (msg: ParentMessage) => {
    if (msg.type === "init") {
      init = msg;
      send({ type: "init" });
    } else if (msg.type === "attach") {
      void (async () => {
        let failed = 0;
        let next = viewers.length;
        const worker = async (): Promise<void> => {
          while (next < msg.total) {
            const index = next++;
            await attachOne(index).catch(() => failed++);
          }
        };
        await Promise.all(Array.from({ length: ATTACH_CONCURRENCY }, worker));
        send({ type: "attached", viewers: viewers.length, failed });
      })();
    } else if (msg.type === "mark") {
      const cpu = process.cpuUsage();
      send({
        type: "mark",
        at: performance.now(),
        cpuUs: cpu.user + cpu.system,
        bytesIn: viewers.reduce((a, v) => a + v.link.bytesIn, 0),
        loopP99Ms: loop.percentile(99) / 1e6,
        loopMaxMs: loop.max / 1e6,
        runqueueWaitUs: runqueueWaitUs(),
      });
      loop.reset();
    } else if (msg.type === "report") {
      const delaysMs: number[] = [];
      let missing = 0;
      let viewersWithLoss = 0;
      let unknownTime = 0;
      for (const v of viewers) {
        let lost = 0;
        for (let seq = msg.from; seq <= msg.to; seq++) {
          const at = v.arrivals.get(seq);
          if (at === undefined) {
            lost++;
            continue;
          }
          const t = producedAt.get(seq);
          if (t === undefined) unknownTime++;
          else delaysMs.push((at - t) / 1000);
        }
        missing += lost;
        if (lost > 0) viewersWithLoss++;
        v.arrivals.clear();
      }
      producedAt.clear();
      send({
        type: "report",
        viewers: viewers.length,
        closed: closedBeforeReport,
        chunks: msg.to - msg.from + 1,
        missing,
        viewersWithLoss,
        unknownTime,
        rejected: viewers.reduce((a, v) => a + v.rejected, 0),
        delayP50Ms: quantile(delaysMs, 0.5),
        delayP99Ms: quantile(delaysMs, 0.99),
        delayMaxMs: quantile(delaysMs, 1),
        samples: delaysMs.length,
      });
    } else if (msg.type === "close") {
      for (const v of viewers) v.link.destroy();
      process.exit(0);
    }
  });
  process.on("disconnect", () => process.exit(0));
}

await main();

/**
 * How many viewers one distribution node process serves: the serving side
 * (landing, one distribution node, producer: stream-serve.ts) in one child
 * process, the viewers (stream-viewers.ts) in another, the viewer count
 * stepped up. Each step: attach up to the count, settle, a window of
 * `windowMs` between two marks (the producer's next sequence number and
 * both processes' CPU), a grace period, then the viewers' report on every
 * sequence number of the window. Steps go on past a p99 failure while
 * nothing is lost and neither process uses a whole core (on a shared
 * machine the delay bound may fail early for reasons outside the node;
 * the steps after it show what the node itself does). Beside CPU, both processes report their event loop delay and
 * the time their main thread waited for a CPU while runnable
 * (/proc/self/schedstat), so a failure can be told apart: the node's own
 * work, or the machine's other load.
 *
 * Owns the step schedule and the pass rule. Trusts: its two children.
 */
import { fork } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { loadavg } from "node:os";
import { CHUNKS_PER_SECOND } from "./stream-nodes.js";

export interface CapacityStep {
  viewers: number;
  attachFailed: number;
  chunks: number;
  /** Chunk copies the distribution node dropped in the window (live-edge jumps, too old when a socket drained). */
  nodeDropped: number;
  /** Chunks the producer should have sent in the window at its pace. */
  expectedChunks: number;
  missing: number;
  viewersWithLoss: number;
  closed: number;
  delayP50Ms: number;
  delayP99Ms: number;
  delayMaxMs: number;
  samples: number;
  /** Bytes the viewers received per second in the window. */
  egressBytesPerSecond: number;
  /** CPU of the serving process (landing + distribution + producer), cores. */
  serveCores: number;
  /** CPU of the viewers' process, cores. */
  viewerCores: number;
  /** Event loop delay of the serving process in the window, p99 and max, ms. */
  serveLoopP99Ms: number;
  serveLoopMaxMs: number;
  viewerLoopP99Ms: number;
  /** Time the serving / viewers' main thread was runnable but waited for a CPU (other load on the machine), ms per second. */
  serveRunqueueMsPerS: number;
  viewerRunqueueMsPerS: number;
  /** The machine's 1-minute load average at the end of the window. */
  loadAverage: number;
  /** Every viewer got every chunk of the window and the producer kept pace. */
  lossFree: boolean;
  /** Loss-free and p99 delay under the bound. */
  pass: boolean;
}

export interface CapacityResult {
  steps: CapacityStep[];
  /** The serving process with the stream running and no viewer, cores. */
  idleServeCores: number;
  /** Largest viewer count that passed (0 if none). */
  maxViewers: number;
  /** Largest viewer count with no loss, whatever its delay (0 if none). */
  maxViewersLossFree: number;
  /** A CPU profile of the serving process at the first failing count (or the largest one), self time per function. */
  profile: { viewers: number; wallMs: number; totalMs: number; top: { fn: string; ms: number }[] } | undefined;
}

interface Child {
  proc: ChildProcess;
  ask<T>(msg: Record<string, unknown>, answer: string, timeoutMs?: number): Promise<T>;
  next<T>(answer: string, timeoutMs?: number): Promise<T>;
}

function start(file: string): Child {
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  const needsLoader = ext === ".ts" && !process.execArgv.some((a) => a.includes("tsx"));
  const proc = fork(new URL(`./${file}${ext}`, import.meta.url), [], {
    execArgv: needsLoader ? [...process.execArgv, "--import", "tsx"] : process.execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const next = <T>(answer: string, timeoutMs = 120_000): Promise<T> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: { type: string }): void => {
        if (m.type !== answer) return;
        cleanup();
        resolve(m as T);
      };
      const onExit = (code: number | null): void => {
        cleanup();
        reject(new Error(`${file} exited (${code}) before answering ${answer}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${file} did not answer ${answer} within ${timeoutMs} ms`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        proc.off("message", onMessage);
        proc.off("exit", onExit);
      };
      proc.on("message", onMessage);
      proc.once("exit", onExit);
    });
  return {
    proc,
    next,
    ask<T>(msg: Record<string, unknown>, answer: string, timeoutMs?: number): Promise<T> {
      const p = next<T>(answer, timeoutMs);
      proc.send(msg);
      return p;
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface ServeMark {
  seq: number;
  at: number;
  cpuUs: number;
  loopP99Ms: number;
  loopMaxMs: number;
  runqueueWaitUs: number;
  viewers: number;
  counters: { distribution: { chunksDropped: number; liveEdgeJumps: number } };
}
interface ViewerMark {
  at: number;
  cpuUs: number;
  bytesIn: number;
  loopP99Ms: number;
  loopMaxMs: number;
  runqueueWaitUs: number;
}
interface ViewerReport {
  viewers: number;
  closed: number;
  chunks: number;
  missing: number;
  viewersWithLoss: number;
  delayP50Ms: number;
  delayP99Ms: number;
  delayMaxMs: number;
  samples: number;
}

export interface CapacityOptions {
  counts: number[];
  windowMs: number;
  settleMs: number;
  maxP99Ms: number;
  profileMs: number;
}

export async function measureCapacity(options: CapacityOptions): Promise<CapacityResult> {
  const serve = start("stream-serve");
  const viewersProc = start("stream-viewers");
  try {
    const ready = await serve.next<Record<string, unknown>>("ready");
    await viewersProc.ask({ ...ready, type: "init" }, "init");
    await sleep(options.settleMs);

    // The serving process's own cost with the stream running and nobody watching.
    const idleA = await serve.ask<ServeMark>({ type: "mark" }, "mark");
    await sleep(options.windowMs / 2);
    const idleB = await serve.ask<ServeMark>({ type: "mark" }, "mark");
    const idleServeCores = (idleB.cpuUs - idleA.cpuUs) / 1000 / (idleB.at - idleA.at);

    const steps: CapacityStep[] = [];
    let maxViewers = 0;
    let maxViewersLossFree = 0;
    const window = async (count: number, attachFailed: number): Promise<CapacityStep> => {
      const [sA, vA] = await Promise.all([serve.ask<ServeMark>({ type: "mark" }, "mark"), viewersProc.ask<ViewerMark>({ type: "mark" }, "mark")]);
      await sleep(options.windowMs);
      const [sB, vB] = await Promise.all([serve.ask<ServeMark>({ type: "mark" }, "mark"), viewersProc.ask<ViewerMark>({ type: "mark" }, "mark")]);
      // Each process's rates over its own interval between the marks (an answer delayed on its way back does not stretch it).
      const serveMs = sB.at - sA.at;
      const viewerMs = vB.at - vA.at;
      const loadAverage = loadavg()[0] ?? Number.NaN;
      // Grace for the window's last chunks: longer than any delay that could pass.
      await sleep(Math.max(500, options.maxP99Ms * 10));
      const r = await viewersProc.ask<ViewerReport>({ type: "report", from: sA.seq, to: sB.seq - 1 }, "report");
      const expectedChunks = Math.round((serveMs / 1000) * CHUNKS_PER_SECOND);
      const lossFree = attachFailed === 0 && r.viewers === count && r.closed === 0 && r.missing === 0 && r.chunks >= expectedChunks * 0.9;
      return {
        viewers: r.viewers,
        attachFailed,
        chunks: r.chunks,
        expectedChunks,
        nodeDropped: sB.counters.distribution.chunksDropped - sA.counters.distribution.chunksDropped,
        missing: r.missing,
        viewersWithLoss: r.viewersWithLoss,
        closed: r.closed,
        delayP50Ms: r.delayP50Ms,
        delayP99Ms: r.delayP99Ms,
        delayMaxMs: r.delayMaxMs,
        samples: r.samples,
        egressBytesPerSecond: ((vB.bytesIn - vA.bytesIn) * 1000) / viewerMs,
        serveCores: (sB.cpuUs - sA.cpuUs) / 1000 / serveMs,
        viewerCores: (vB.cpuUs - vA.cpuUs) / 1000 / viewerMs,
        serveLoopP99Ms: sB.loopP99Ms,
        serveLoopMaxMs: sB.loopMaxMs,
        viewerLoopP99Ms: vB.loopP99Ms,
        serveRunqueueMsPerS: (sB.runqueueWaitUs - sA.runqueueWaitUs) / serveMs,
        viewerRunqueueMsPerS: (vB.runqueueWaitUs - vA.runqueueWaitUs) / viewerMs,
        loadAverage,
        // Every viewer attached and got every chunk, and the producer (in the serving process: a starved loop shows up as fewer chunks) kept pace.
        lossFree,
        pass: lossFree && r.delayP99Ms < options.maxP99Ms,
      };
    };
    for (const count of options.counts) {
      const attached = await viewersProc.ask<{ viewers: number; failed: number }>({ type: "attach", total: count }, "attached", 300_000);
      await sleep(options.settleMs);
      const step = await window(count, attached.failed);
      steps.push(step);
      if (step.pass) maxViewers = count;
      if (step.lossFree) maxViewersLossFree = count;
      // Past a loss, or with either process using a whole core, more viewers measure nothing more about the node.
      if (!step.lossFree || step.serveCores >= 0.95 || step.viewerCores >= 0.95) break;
    }
    let profile: CapacityResult["profile"];
    if (options.profileMs > 0) {
      const p = await serve.ask<{ top: { fn: string; ms: number }[]; totalMs: number }>(
        { type: "profile", ms: options.profileMs },
        "profile",
        options.profileMs + 60_000,
      );
      profile = { viewers: steps[steps.length - 1]?.viewers ?? 0, wallMs: options.profileMs, totalMs: p.totalMs, top: p.top };
    }
    return { steps, idleServeCores, maxViewers, maxViewersLossFree, profile };
  } finally {
    for (const c of [viewersProc, serve]) {
      if (c.proc.connected) c.proc.send({ type: "close" });
    }
    await Promise.all(
      [viewersProc, serve].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.proc.exitCode !== null) return resolve();
            const t = setTimeout(() => {
              c.proc.kill("SIGKILL");
              resolve();
            }, 5000);
            c.proc.once("exit", () => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
  }
}

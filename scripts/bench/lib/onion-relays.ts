/**
 * Worker-thread side of the onion benchmark's second layout: the three
 * relays of `runOnionBench` run here, in a worker thread of the benchmark's
 * process, so they and the client (with the raw-TLS baseline) use two
 * threads. Only an additional figure: the headline keeps every node on one
 * thread, like the raw TLS baseline (docs/spec/onion.md §15).
 *
 * Owns the message protocol with onion-bench.ts over the worker port:
 *   worker → parent: { type: "ready", nodes: PathNode[] } once listening
 *   parent → worker: { type: "expect", bytes }  → worker: { type: "expecting" } at
 *     once, then { type: "arrived" } once the last relay's discard service
 *     counted `bytes` more (the parent sends nothing before "expecting")
 *   parent → worker: { type: "close" }           → worker: { type: "closed" }
 *
 * Trusts: the parent (same process).
 */
import { parentPort, workerData } from "node:worker_threads";
import { generateTlsCredentials } from "../../../node/src/link/index.js";
import { startNode } from "../../../node/src/node/node.js";
import type { RunningNode } from "../../../node/src/node/node.js";

interface RelayWorkerData {
  hops: number;
  limits: Record<string, number>;
}

type ParentMessage = { type: "expect"; bytes: number } | { type: "close" };

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error("onion-relays.ts runs as a worker thread of onion-bench.ts");
  const { hops, limits } = workerData as RelayWorkerData;
  const creds = await generateTlsCredentials();
  const relays: RunningNode[] = [];
  for (let i = 1; i <= hops; i++) {
    relays.push(await startNode({ listen: { host: `127.${i}.0.1`, port: 0 }, onion: { services: ["discard", "echo"], limits } }, { tlsCredentials: creds }));
  }
  const sink = relays[relays.length - 1]?.services.discard;
  if (!sink) throw new Error("the last relay offers no discard service");
  port.on("message", (msg: ParentMessage) => {
    if (msg.type === "expect") {
      const target = sink.bytes + msg.bytes;
      port.postMessage({ type: "expecting" });
      const check = setInterval(() => {
        if (sink.bytes >= target) {
          clearInterval(check);
          port.postMessage({ type: "arrived" });
        }
      }, 1);
    } else if (msg.type === "close") {
      void Promise.all(relays.map((r) => r.close())).then(() => {
        port.postMessage({ type: "closed" });
        port.close();
      });
    }
  });
  port.postMessage({ type: "ready", nodes: relays.map((r) => r.pathNode) });
}

void main();

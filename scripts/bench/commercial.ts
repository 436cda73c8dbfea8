/**
 * A commercial node's echo service (issue 17) through a 3-hop circuit against
 * the same through a direct link (a 1-hop circuit over the client's own TLS
 * link to the node), in the same run: round trip of one 64-byte request at a
 * time, and requests per second with 8 in flight on one stream. Four nodes on
 * 127.<i>.0.1 and the client in this process, real TLS 1.3, the demo plugin
 * (node/src/commercial/examples/demo-kv.ts) behind the open handshake. Rounds
 * alternate direct and 3-hop; the median round by ratio is shown.
 * Run alone with `npx tsx scripts/bench.ts commercial`.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { applicationId } from "../../node/src/chain/attestation.js";
import { openCommercial } from "../../node/src/commercial/client.js";
import type { CommercialConnection } from "../../node/src/commercial/client.js";
import * as demo from "../../node/src/commercial/examples/demo-kv.js";
import { COMMERCIAL_SERVICE } from "../../node/src/commercial/messages.js";
import { checkPlugin } from "../../node/src/commercial/plugin.js";
import { createCommercialServer } from "../../node/src/commercial/server.js";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import { startNode } from "../../node/src/node/node.js";
import type { RunningNode } from "../../node/src/node/node.js";
import { createOnionClient } from "../../node/src/onion/onion-client.js";
import type { BenchSection } from "./types.js";
import { fmt, table } from "./types.js";

const UNLIMITED = { nodeBytesPerSecond: 1e12, nodeBurstBytes: 1e12, circuitBytesPerSecond: 1e12, circuitBurstBytes: 1e12 };
const ROUNDS = 5;
const SEQUENTIAL = 200;
const PARALLEL_TOTAL = 2000;
const IN_FLIGHT = 8;
const secret = (label: string) => sha256(new TextEncoder().encode(`bench-commercial/${label}`));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))] as number;

interface Measure {
  rttMs: number[];
  rps: number;
}

async function measure(conn: CommercialConnection): Promise<Measure> {
  const body = new Uint8Array(64).fill(7);
  for (let i = 0; i < 20; i++) await conn.request(body);
  const rttMs: number[] = [];
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t = performance.now();
    await conn.request(body);
    rttMs.push(performance.now() - t);
  }
  let sent = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (sent < PARALLEL_TOTAL) {
        sent++;
        await conn.request(body);
      }
    }),
  );
  return { rttMs, rps: (PARALLEL_TOTAL * 1000) / (performance.now() - started) };
}

export async function run(): Promise<BenchSection> {
  const creds = await generateTlsCredentials();
  const nodes: RunningNode[] = [];
  const appId = Uint8Array.from(Buffer.from(applicationId("demo", "shop").slice(2), "hex"));
  const ref: { node?: RunningNode } = {};
  const server = createCommercialServer({
    nodeIdentity: ed25519PublicKey(secret("node-4")),
    applications: [{ appId, name: "demo.shop", plugin: checkPlugin(demo, "demo-kv") }],
    limits: { requestsPerMinute: 1e9, burst: 1e9, maxInflight: IN_FLIGHT },
    flush: () => ref.node?.driver.run(() => undefined),
  });
  for (let i = 1; i <= 4; i++) {
    nodes.push(
      await startNode(
        {
          listen: { host: `127.${i}.0.1`, port: 0 },
          identity: { secretKeyHex: Buffer.from(secret(`node-${i}`)).toString("hex") },
          api: false,
          dht: { staticDifficulty: 0 },
          onion: { limits: UNLIMITED },
        },
        { tlsCredentials: creds, ...(i === 4 ? { services: { [COMMERCIAL_SERVICE]: server.service } } : {}) },
      ),
    );
  }
  const target = nodes[3]!;
  ref.node = target;
  const client = await createOnionClient({ nodes: nodes.map((n) => n.pathNode), limits: UNLIMITED });
  const connect = async (hops: 1 | 3): Promise<CommercialConnection> => {
    const circuit = hops === 1 ? await client.buildCircuit({ path: [target.pathNode] }) : await client.buildCircuit({ lastHop: target.pathNode });
    const stream = await circuit.openStream(COMMERCIAL_SERVICE);
    void stream.closed.then(() => circuit.close());
    return await openCommercial(stream, { appId, service: "echo", node: target.pathNode.identity });
  };
  const rounds: { direct: Measure; circuit: Measure }[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const d = await connect(1);
      const direct = await measure(d);
      d.close();
      const c = await connect(3);
      const circuit = await measure(c);
      c.close();
      rounds.push({ direct, circuit });
    }
  } finally {
    await client.close();
    for (const n of nodes) await n.close();
  }
  const byRtt = rounds.map((r) => ({ r, ratio: median(r.circuit.rttMs) / median(r.direct.rttMs) })).sort((a, b) => a.ratio - b.ratio);
  const byRps = rounds.map((r) => ({ r, ratio: r.circuit.rps / r.direct.rps })).sort((a, b) => a.ratio - b.ratio);
  const midRtt = byRtt[Math.floor((byRtt.length - 1) / 2)]!;
  const midRps = byRps[Math.floor((byRps.length - 1) / 2)]!;
  const figures = {
    rounds: ROUNDS,
    rttMedianMs3Hop: median(midRtt.r.circuit.rttMs),
    rttMedianMsDirect: median(midRtt.r.direct.rttMs),
    rttP90Ms3Hop: p90(midRtt.r.circuit.rttMs),
    rttP90MsDirect: p90(midRtt.r.direct.rttMs),
    rttRatio: midRtt.ratio,
    rps3Hop: midRps.r.circuit.rps,
    rpsDirect: midRps.r.direct.rps,
    rpsRatio: midRps.ratio,
    roundRttRatios: byRtt.map((x) => x.ratio),
    roundRpsRatios: byRps.map((x) => x.ratio),
  };
  const markdown = [
    `The demo plugin's \`echo\` service on a commercial node (4 nodes on 127.1-4.0.1 and the client in one process, real TLS 1.3, onion rate limits lifted,`,
    `the node's per-client budget lifted). "Direct" is a 1-hop circuit over the client's own TLS link to the node (what \`connect(service, { direct: true })\` uses);`,
    `"3-hop" a circuit ending at the node. Each round measures direct then 3-hop on fresh connections: ${SEQUENTIAL} sequential 64-byte requests (round trip),`,
    `then ${PARALLEL_TOTAL} requests with ${IN_FLIGHT} in flight on one stream (requests/s). ${ROUNDS} rounds; the median round by ratio is shown.`,
    "",
    table(
      ["measure", "3-hop circuit", "direct link", "3-hop / direct"],
      [
        ["round trip, median ms", fmt(figures.rttMedianMs3Hop, 2), fmt(figures.rttMedianMsDirect, 2), fmt(figures.rttRatio, 2)],
        ["round trip, p90 ms", fmt(figures.rttP90Ms3Hop, 2), fmt(figures.rttP90MsDirect, 2), ""],
        [`requests/s (${IN_FLIGHT} in flight, one stream)`, fmt(figures.rps3Hop, 0), fmt(figures.rpsDirect, 0), fmt(figures.rpsRatio, 2)],
      ],
    ),
  ].join("\n");
  return { title: "Commercial nodes: echo through a 3-hop circuit vs a direct link", markdown, figures };
}

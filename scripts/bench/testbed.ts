/**
 * The multi-host testbed (issue 18): connect times, round trips and stream
 * latency with every node in a network namespace of its own, links shaped
 * by netem (scripts/lib/testbed/), beside the same measurements on the
 * loopback devnet in the same run and beside the configured round trip
 * (2 × the per-link delay: one shaped egress each way between any two hosts).
 * Both devnets are the full devnet (chain, eleven nodes of every role, demo
 * users); measurements through the public client API (lib/testbed/measure.ts).
 *
 * Needs root for network namespaces; without them the section says why and
 * holds no figures. Run alone with `npx tsx scripts/bench.ts testbed`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEVNET_PASSPHRASE, startDevnet, waitForConsensusListing } from "../lib/devnet.js";
import { checkTestbedCapability } from "../lib/testbed/capability.js";
import { measureNetwork, type Distribution, type NetworkFigures } from "../lib/testbed/measure.js";
import { DEFAULT_LINK_SHAPE, type TestbedNet } from "../lib/testbed/net.js";
import { startTestbed, TESTBED_SCHEDULE } from "../lib/testbed/testbed.js";
import { fmt, table } from "./types.js";
import type { BenchSection } from "./types.js";

const TITLE = "Multi-host testbed: circuits, presence and a stream across network namespaces";

async function loopback(): Promise<NetworkFigures> {
  const dir = await mkdtemp(join(tmpdir(), "psp-bench-loopback-"));
  try {
    const devnet = await startDevnet({ port: 0, apiPort: 0, dir, deploymentFile: join(dir, "deployment.json"), schedule: TESTBED_SCHEDULE });
    try {
      await waitForConsensusListing(devnet.state.nodes, devnet.state.nodes.length, 5 * 60_000);
      return await measureNetwork({ state: devnet.state, stateFile: join(dir, "state.json"), passphrase: DEVNET_PASSPHRASE });
    } finally {
      await devnet.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function testbed(): Promise<{ figures: NetworkFigures; shaping: TestbedNet["shaping"] }> {
  const dir = await mkdtemp(join(tmpdir(), "psp-bench-testbed-"));
  try {
    const tb = await startTestbed({ dir, shape: DEFAULT_LINK_SHAPE });
    try {
      return { figures: await measureNetwork({ state: tb.devnet.state, stateFile: tb.stateFile, passphrase: DEVNET_PASSPHRASE }), shaping: tb.net.shaping };
    } finally {
      await tb.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchSection> {
  const cap = await checkTestbedCapability();
  if (!cap.netns) return { title: TITLE, markdown: `Not measured on this machine: ${cap.reason}.`, figures: { skipped: cap.reason } };
  const base = await loopback();
  const tb = await testbed();
  const shaped = tb.shaping.by !== "none";
  const shape = DEFAULT_LINK_SHAPE;
  const rttMs = shaped ? 2 * shape.delayMs : 0;
  // [measure, figure, floor in host-to-host round trips: the shaped link crossings the measure cannot do without, halved]
  const rows: [string, (f: NetworkFigures) => number, number][] = [
    ["TCP connect to a node's link port (median)", (f) => f.tcpConnect.medianMs, 1],
    // CREATE to the first hop, EXTEND to the second (two links), to the third (three): 1 + 2 + 3 round trips.
    ["3-hop circuit build (median)", (f) => f.circuitBuild.medianMs, 6],
    // client ↔ hop 1 ↔ hop 2 ↔ hop 3.
    ["64-byte echo through a 3-hop circuit (median)", (f) => f.circuitEcho.medianMs, 3],
    // carol and alice are both in the root namespace: at least out to the rendezvous node and back, each way.
    ["presence connect: lookup, introduction, rendezvous", (f) => f.presenceConnectMs, 2],
    ["message round trip on a private channel (median)", (f) => f.presenceMessage.medianMs, 2],
    // Producer and viewer both in the root namespace: out to the landing node and back, one way.
    ["stream chunk, producer → viewer (median)", (f) => f.streamChunk.medianMs, 1],
    ["stream chunk, producer → viewer (p99)", (f) => f.streamChunk.p99Ms, 1],
  ];
  const figures = {
    shape,
    shaping: tb.shaping,
    configuredRttMs: rttMs,
    loopback: base,
    testbed: tb.figures,
    ratios: Object.fromEntries(rows.map(([name, get]) => [name, get(tb.figures) / get(base)])),
  };
  const how =
    tb.shaping.by === "netem"
      ? "netem"
      : tb.shaping.by === "emulator"
        ? `the testbed's userspace link emulator (scripts/lib/testbed/linkemu.py: TAP pairs pumped by one python3 process, because the kernel refuses netem: "${tb.shaping.reason.split(": ").at(-1)?.replace(/\)$/, "")}")`
        : "";
  const dist = (d: Distribution) => `${fmt(d.medianMs, 1)} (${fmt(d.minMs, 1)}–${fmt(d.maxMs, 1)})`;
  const markdown = [
    shaped
      ? `Eleven nodes, each in its own network namespace, linked to a bridge; every host's egress shaped by ${how}: ${shape.delayMs} ms ± ${shape.jitterMs} ms, ${shape.lossPercent} % loss, so any two hosts (the clients in the root namespace included) are ${rttMs} ms apart per round trip.`
      : `**The links could not be shaped on this machine** (${tb.shaping.by === "none" ? tb.shaping.reason : ""}): these figures show what namespaces, veth pairs and a bridge cost against loopback, not the cost of delay.`,
    `The baseline is the same devnet (chain, eleven nodes of every role, the demo users alice and carol) all on loopback, measured first in the same run; "floor" is the configured round trip times the host-to-host round trips the measure cannot do without (a lower bound by physics; a chunk's latency is one way, so its floor is one round trip: out to the landing node and back).`,
    `Circuits: one 3-hop build to each of the ${base.circuitBuild.samples} onion nodes that may be a last hop, ${base.circuitEcho.samples} echo round trips on one; presence: one connect, ${base.presenceMessage.samples} message round trips; stream: ${base.streamChunk.samples} chunks of ffmpeg's test source, latency from the producer's clock sealed in each chunk.`,
    "",
    table(
      [
        "measure (ms)",
        shaped ? `testbed (${shape.delayMs} ms ± ${shape.jitterMs} ms, ${shape.lossPercent} % loss)` : "testbed (unshaped)",
        "loopback",
        "testbed / loopback",
        "floor from the configured RTT",
      ],
      rows.map(([name, get, trips]) => [
        name,
        fmt(get(tb.figures), 1),
        fmt(get(base), 1),
        fmt(get(tb.figures) / get(base), 2),
        shaped && trips > 0 ? `${fmt(trips * rttMs, 0)} (${trips} × ${rttMs})` : "",
      ]),
    ),
    "",
    `Distributions, median (min–max) ms, testbed / loopback: TCP connect ${dist(tb.figures.tcpConnect)} / ${dist(base.tcpConnect)}; circuit build ${dist(tb.figures.circuitBuild)} / ${dist(base.circuitBuild)}; echo ${dist(tb.figures.circuitEcho)} / ${dist(base.circuitEcho)}; message ${dist(tb.figures.presenceMessage)} / ${dist(base.presenceMessage)}; stream chunk ${dist(tb.figures.streamChunk)} / ${dist(base.streamChunk)}.`,
  ].join("\n");
  return { title: TITLE, markdown, figures };
}

/**
 * Onion circuits over real TLS links (loopback, relays and client in this
 * process): circuit builds with links open and from cold, 3-hop throughput
 * against one raw TLS socket measured in the same rounds, CPU per MB.
 * The same figures `psp bench onion --json` prints (lib/onion-bench.ts).
 * Run alone with `npx tsx scripts/bench.ts onion`.
 */
import { runOnionBench } from "./lib/onion-bench.js";
import type { BenchSection } from "./types.js";
import { fmt, table } from "./types.js";

export async function run(): Promise<BenchSection> {
  const r = await runOnionBench({ rounds: 9 });
  const markdown = [
    `Three relays on 127.1.0.1, 127.2.0.1, 127.3.0.1 and a client, all in one process, over real TLS 1.3 links.`,
    `Builds: ${r.buildSamples} with every link already open (after 5 warm-up builds), ${r.coldSamples} from no open link (fresh relays and client each).`,
    `Throughput: one stream to the last hop's \`discard\` service, 64 KiB messages, rate limits lifted; ${r.roundRatios.length} rounds of`,
    `(raw TLS socket, bare prototype without and with onion crypto, cell prototype, ${fmt(r.transferBytes / 2 ** 20)} MiB through the circuit) back to back,`,
    `the median round by ratio shown. MB = 10^6 application bytes. The bare prototype is the one the throughput target was set against:`,
    `the same three TLS links with the onion layer's cipher and hash passes over 32 KB writes, and nothing else.`,
    `The cell prototype is a second reference in the same rounds: that chain carrying PSP's cells (DATA payloads sealed as runs of 16, three layers, 512-byte framing,`,
    `a recognized check at the middle hops, verification and a copy into 64 KiB messages at the last) with no circuits, streams, flow control or per-cell objects.`,
    `CPU is the process's (user + system, every thread, so V8's GC helpers too) from the first write to the last byte, PSP's and the prototype's in the same round.`,
    `Everything runs on the main thread, so throughput is bounded by its time per MB: wall time × event-loop utilization (the share of the time it ran code rather than waiting for I/O or a timer).`,
    "",
    table(
      ["measure", "PSP", "baseline", "ratio", "target"],
      [
        [
          "circuit build, links open, median ms",
          fmt(r.circuitBuildMsMedian, 2),
          `Tor ${r.torBuildMsMedian}`,
          fmt(r.circuitBuildVsTor, 2),
          `<= ${r.targets.circuitBuildVsTor} x Tor`,
        ],
        ["circuit build, links open, p90 ms", fmt(r.circuitBuildMsP90, 2), "", "", ""],
        ["circuit build, no links, median ms", fmt(r.circuitBuildColdMsMedian, 2), "", "", ""],
        ["3-hop throughput, MB/s", fmt(r.throughput3HopMBps, 1), `raw TLS ${fmt(r.rawTlsMBps, 1)}`, fmt(r.throughputRatio, 3), ""],
        [
          "bare prototype (3 TLS links, 32 KB writes, 6 AES + 2 SHA-256 passes, no protocol), MB/s",
          fmt(r.prototypeMBps, 1),
          `raw TLS ${fmt(r.rawTlsMBps, 1)}`,
          fmt(r.prototypeRatio, 3),
          "",
        ],
        [
          "3-hop throughput vs the bare prototype (median of same-round ratios)",
          fmt(r.throughput3HopMBps, 1),
          `prototype ${fmt(r.prototypeMBps, 1)}`,
          fmt(r.throughputVsPrototype, 2),
          `>= ${r.targets.throughputVsPrototype} x prototype`,
        ],
        [
          "cell prototype (the same chain carrying PSP's cells: sealed runs, 3 layers, framing; no protocol state), MB/s",
          fmt(r.cellPrototypeMBps, 1),
          `prototype ${fmt(r.prototypeMBps, 1)}`,
          fmt(r.cellPrototypeVsPrototype, 2),
          "",
        ],
        [
          "3-hop throughput vs the cell prototype (median of same-round ratios)",
          fmt(r.throughput3HopMBps, 1),
          `cell prototype ${fmt(r.cellPrototypeMBps, 1)}`,
          fmt(r.throughputVsCellPrototype, 2),
          "",
        ],
        [
          "bare prototype without onion crypto (plain forwarding), MB/s",
          fmt(r.prototypePlainMBps, 1),
          `raw TLS ${fmt(r.rawTlsMBps, 1)}`,
          fmt(r.prototypePlainMBps / r.rawTlsMBps, 3),
          "",
        ],
        ["3-hop throughput vs Tor, MB/s", fmt(r.throughput3HopMBps, 1), `Tor ${r.torThroughputMBps}`, fmt(r.throughput3HopMBps / r.torThroughputMBps, 1), ""],
        [
          "CPU ms per MB (all nodes; vs the prototype: median of same-round ratios)",
          fmt(r.cpuMsPerMB, 1),
          `prototype ${fmt(r.prototypeCpuMsPerMB, 1)}`,
          fmt(r.cpuVsPrototype, 2),
          "",
        ],
        [
          "main-thread ms per MB: wall time × event-loop utilization (PSP's / the prototype's utilization)",
          `${fmt(r.busyMsPerMB, 1)} (${fmt(r.eventLoopUtilization, 2)})`,
          `prototype ${fmt(r.prototypeBusyMsPerMB, 1)} (${fmt(r.prototypeEventLoopUtilization, 2)}); cell prototype ${fmt(r.cellPrototypeBusyMsPerMB, 1)} (${fmt(r.cellPrototypeEventLoopUtilization, 2)})`,
          fmt(r.busyMsPerMB / r.prototypeBusyMsPerMB, 2),
          "",
        ],
        ...(r.relaysInWorker
          ? [
              [
                "3-hop throughput, relays in a worker thread (additional), MB/s",
                fmt(r.relaysInWorker.throughput3HopMBps, 1),
                `raw TLS ${fmt(r.relaysInWorker.rawTlsMBps, 1)}`,
                fmt(r.relaysInWorker.throughputRatio, 3),
                "",
              ],
            ]
          : []),
      ],
    ),
    ...(r.relaysInWorker
      ? [
          "",
          "The worker-thread row puts the three relays on a second thread of the process (client and raw TLS stay on the main one): two threads against a one-thread baseline, so it is shown for reference only; the target applies to the one-thread row.",
        ]
      : []),
    "",
    `All round ratios vs raw TLS: ${r.roundRatios.map((x) => fmt(x, 3)).join(", ")}; vs the prototype: ${r.vsPrototypeRatios.map((x) => fmt(x, 2)).join(", ")}. ` +
      `Build target (<= ${r.targets.circuitBuildVsTor} x Tor): ${r.targetsMet.circuitBuildVsTor ? "met" : "not met"}; ` +
      `throughput target (>= ${r.targets.throughputVsPrototype} x the bare prototype, same rounds): ${r.targetsMet.throughputVsPrototype ? "met" : "not met"} in this run.`,
    "",
    `The target was set when the bare prototype reached 0.15 x raw TLS; in this run it reached ${fmt(r.prototypeRatio, 3)} x, ` +
      `and the full protocol (cells, sealed runs, flow control, streams) ${fmt(r.throughputVsPrototype, 2)} x the prototype. ` +
      `Carrying cells alone reached ${fmt(r.cellPrototypeVsPrototype, 2)} x the prototype, and PSP ${fmt(r.throughputVsCellPrototype, 2)} x the cell prototype.`,
  ].join("\n");
  return { title: "Onion circuits over TLS", markdown, figures: { ...r } };
}

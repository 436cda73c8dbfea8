/**
 * `psp bench onion`: builds a small loopback onion network in this process
 * (real TLS links) and prints circuit-build times, 3-hop throughput against
 * one raw TLS socket measured in the same run, and CPU per MB; one JSON
 * object with --json. The measurement itself is benchmark code,
 * scripts/bench/lib/onion-bench.ts (tsconfig.build.json compiles it into build/).
 */
import type { Command } from "commander";
import { integerOption } from "./options.js";
import { runOnionBench } from "../../../scripts/bench/lib/onion-bench.js";

export function register(program: Command): void {
  const bench = program.command("bench").description("benchmarks on this machine");
  bench
    .command("onion")
    .description("3-hop circuits over loopback TLS: build times, throughput vs raw TLS, CPU per MB")
    .option("--builds <n>", "circuit builds timed with links open", integerOption("--builds", 1, 10_000), 40)
    .option("--cold <n>", "circuit builds timed from no open links", integerOption("--cold", 1, 1000), 8)
    .option("--mib <n>", "MiB pushed through the circuit per round", integerOption("--mib", 1, 4096), 16)
    .option("--rounds <n>", "rounds of (raw TLS, 3-hop transfer); the median round is reported", integerOption("--rounds", 1, 100), 3)
    .option("--json", "print one JSON object")
    .action(async (o: { builds: number; cold: number; mib: number; rounds: number; json?: boolean }) => {
      const r = await runOnionBench({ buildSamples: o.builds, coldSamples: o.cold, transferBytes: o.mib * 1024 * 1024, rounds: o.rounds });
      if (o.json) {
        console.log(JSON.stringify(r));
        return;
      }
      const f = (n: number, d = 2) => n.toFixed(d);
      console.log(
        [
          `circuit build (links open): median ${f(r.circuitBuildMsMedian)} ms, p90 ${f(r.circuitBuildMsP90)} ms (Tor private network: ${r.torBuildMsMedian} ms)`,
          `circuit build (no links):   median ${f(r.circuitBuildColdMsMedian)} ms`,
          `3-hop throughput: ${f(r.throughput3HopMBps)} MB/s = ${f(r.throughputRatio, 3)} x raw TLS ${f(r.rawTlsMBps)} MB/s (Tor: ${r.torThroughputMBps} MB/s)`,
          `bare prototype:   ${f(r.prototypeMBps)} MB/s = ${f(r.prototypeRatio, 3)} x raw TLS; PSP reaches ${f(r.throughputVsPrototype)} x the prototype (median round; target >= ${r.targets.throughputVsPrototype}: ${r.targetsMet.throughputVsPrototype ? "met" : "not met"})`,
          `cell prototype:   ${f(r.cellPrototypeMBps)} MB/s = ${f(r.cellPrototypeVsPrototype)} x the bare prototype (the chain carrying PSP's cells, no protocol state); PSP reaches ${f(r.throughputVsCellPrototype)} x it`,
          `circuit build vs Tor: ${f(r.circuitBuildVsTor)} x (target <= ${r.targets.circuitBuildVsTor}: ${r.targetsMet.circuitBuildVsTor ? "met" : "not met"})`,
          `CPU: ${f(r.cpuMsPerMB)} ms per MB relayed through 3 hops (all relays and the client); the prototype ${f(r.prototypeCpuMsPerMB)}, ${f(r.cpuVsPrototype)} x`,
          `main thread: ${f(r.busyMsPerMB)} ms per MB busy (event loop ${f(r.eventLoopUtilization)} utilized); the prototype ${f(r.prototypeBusyMsPerMB)} ms (${f(r.prototypeEventLoopUtilization)}), the cell prototype ${f(r.cellPrototypeBusyMsPerMB)} ms (${f(r.cellPrototypeEventLoopUtilization)})`,
        ].join("\n"),
      );
    });
}

/**
 * Equi-X / HashX benchmarks: solves and verifies per second, HashX program generation and hash
 * rates, and the v1 PoW verify, each against blake2b-512 hashes of a 100-byte challenge measured in
 * the same run (the ratio is what survives a noisy, shared machine).
 * Run alone with `npx tsx scripts/bench.ts equix`.
 */
import { blake2b } from "@noble/hashes/blake2.js";
import { equixSolve, equixVerify, powVerify } from "../../node/src/crypto/equix.js";
import { HashX } from "../../node/src/crypto/hashx.js";
import { fmt, opsPerSecond, table } from "./types.js";
import type { BenchSection } from "./types.js";

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export async function run(): Promise<BenchSection> {
  const figures: Record<string, unknown> = {};
  const challenge = new Uint8Array(100).fill(0x42);
  const blakeOps = opsPerSecond(() => blake2b(challenge, { dkLen: 64 }), 300);

  // Solve: every challenge is new, as in real use (each builds its own HashX program).
  const solveCount = 6;
  let found = 0;
  const wall0 = performance.now();
  const cpu0 = cpuMs();
  let first: { c: Uint8Array; s: Uint16Array } | undefined;
  for (let i = 0; i < solveCount; i++) {
    const c = new Uint8Array(100).fill(i + 1);
    const sols = equixSolve(c);
    found += sols.length;
    if (!first && sols[0]) first = { c, s: sols[0] };
  }
  const solveWallMs = (performance.now() - wall0) / solveCount;
  const solveCpuMs = (cpuMs() - cpu0) / solveCount;
  const solveOps = 1000 / solveWallMs;

  const sample = first ?? { c: new Uint8Array(4), s: equixSolve(new Uint8Array(4))[0]! };
  const verifyOps = opsPerSecond(() => equixVerify(sample.c, sample.s), 400);
  const makeOps = opsPerSecond(() => HashX.tryCreate(challenge), 300);
  const h = HashX.create(new Uint8Array(4));
  const w = new Int32Array(2);
  let x = 0;
  const singleHashOps = opsPerSecond(() => h.hashWords(x++ & 0xffff, w), 300);
  const lo = new Int32Array(4096);
  const hi = new Int32Array(4096);
  const batchHashOps = opsPerSecond(() => h.hashRange(0, 4096, lo, hi), 300) * 4096;

  // v1 PoW verify on a published Tor vector (effort 100,000).
  const powOps = opsPerSecond(
    () =>
      powVerify({
        seed: Buffer.from("86fb0acf4932cda44dbb451282f415479462dd10cb97ff5e7e8e2a53c3767a7f", "hex"),
        serviceBlindedId: Buffer.from("bfd298428562e530c52bdb36d81a0e293ef4a0e94d787f0f8c0c611f4f9e78ed", "hex"),
        solution: {
          nonce: Buffer.from("2eff9fdbc34326d9d2f18ed277469c63", "hex"),
          effort: 100_000,
          seedHead: Buffer.from("86fb0acf", "hex"),
          proof: Buffer.from("400cb091139f86b352119f6e131802d6", "hex"),
        },
      }),
    300,
  );

  const rows: (string | number)[][] = [
    ["blake2b-512, 100 B (baseline)", fmt(blakeOps), "1×"],
    ["Equi-X solve (new challenge each)", fmt(solveOps, 2), `${fmt(solveOps / blakeOps, 6)}×`],
    ["Equi-X verify (program generation + 8 hashes)", fmt(verifyOps), `${fmt(verifyOps / blakeOps, 4)}×`],
    ["v1 PoW verify (blake2b effort check + Equi-X verify)", fmt(powOps), `${fmt(powOps / blakeOps, 4)}×`],
    ["HashX program generation", fmt(makeOps), `${fmt(makeOps / blakeOps, 4)}×`],
    ["HashX hash, single-input interpreter", fmt(singleHashOps), `${fmt(singleHashOps / blakeOps, 3)}×`],
    ["HashX hash, block interpreter (solver path)", fmt(batchHashOps), `${fmt(batchHashOps / blakeOps, 3)}×`],
  ];
  figures["blake2b-512 100 B"] = { opsPerSec: Math.round(blakeOps) };
  figures["equix solve"] = { opsPerSec: solveOps, wallMsPerSolve: solveWallMs, cpuMsPerSolve: solveCpuMs, solutionsPerChallenge: found / solveCount, ratio: solveOps / blakeOps };
  figures["equix verify"] = { opsPerSec: Math.round(verifyOps), ratio: verifyOps / blakeOps };
  figures["pow v1 verify"] = { opsPerSec: Math.round(powOps), ratio: powOps / blakeOps };
  figures["hashx make"] = { opsPerSec: Math.round(makeOps), ratio: makeOps / blakeOps };
  figures["hashx hash single"] = { opsPerSec: Math.round(singleHashOps), ratio: singleHashOps / blakeOps };
  figures["hashx hash batch"] = { opsPerSec: Math.round(batchHashOps), ratio: batchHashOps / blakeOps };

  const markdown = [
    "Pure TypeScript HashX and Equi-X (node/src/crypto/hashx.ts, equix.ts); ratios are against blake2b-512",
    "(@noble/hashes) of a 100-byte challenge in the same run.",
    "",
    table(["operation", "ops/s", "ratio to blake2b"], rows),
    "",
    `One solve took ${fmt(solveWallMs)} ms wall / ${fmt(solveCpuMs)} ms CPU here (${fmt(found / solveCount, 1)} solutions per challenge);`,
    "Tor's C solver with its x86 JIT is quoted at about 10 ms. A v1 proof at effort E costs about E / 2 solves,",
    "so PSP's presence nodes should ask for efforts scaled to this rate, not Tor's. Verifying is cheap: one",
    "HashX program generation plus eight hashes.",
  ].join("\n");
  return { title: "Equi-X / HashX (onion-service proof of work)", markdown, figures };
}

/**
 * Directory figures: building, signing and verifying a consensus of 10,000
 * descriptors with 3 and 9 discovery nodes (the real DiscoveryNode code,
 * driven through one voting round in one process), the consensus size raw
 * and compressed per 1,000 nodes, and a client's verification time.
 *
 * Baselines measured in the same run: raw Ed25519 verification of the same
 * number of signatures (against descriptor intake), canonical CBOR encoding
 * of the same consensus body (against computing it), and decoding the body
 * plus K raw signature checks (against the client's full verification).
 * External reference, not measured here: Tor's microdescriptor consensus is
 * roughly 2.5-3 MB uncompressed and ~1 MB compressed for ~8,000 relays.
 */
import { deflateSync } from "node:zlib";
import { compressConsensus, decompressConsensus } from "../../node/src/directory/compression.js";
import { ed25519PublicKey, ed25519Sign, ed25519Verify } from "../../node/src/crypto/ed25519.js";
import { x25519PublicKey } from "../../node/src/crypto/x25519.js";
import { DiscoveryNode } from "../../node/src/directory/discovery-node.js";
import type { DirectoryAction } from "../../node/src/directory/discovery-node.js";
import { ChainRole, DEFAULT_SCHEDULE, bytesToHexFast, majorityThreshold } from "../../node/src/directory/config.js";
import { encodeConsensusBody, verifyConsensus, decodeConsensusBody } from "../../node/src/directory/consensus.js";
import { createDescriptor } from "../../node/src/directory/descriptor.js";
import { nextValidAfter, roundTimes } from "../../node/src/directory/schedule.js";
import { simulatedSecret } from "../../node/src/directory/sim.js";
import { decodeCanonical } from "../../node/src/wire/canonical.js";
import { CONSENSUS_TYPE } from "../../node/src/directory/consensus.js";
import { documentSigningMessage } from "../../node/src/wire/document.js";
import type { BenchSection } from "./types.js";
import { fmt, table } from "./types.js";

const RELAYS = 10_000;
const START = Date.UTC(2026, 0, 1);

function timed<T>(fn: () => T): [T, number] {
  const t = performance.now();
  const out = fn();
  return [out, performance.now() - t];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] as number;
}

interface RoundFigures {
  discovery: number;
  ingestMs: number;
  voteMs: number;
  voteBytes: number;
  receiveVotesMs: number;
  computeSignMs: number;
  publishMs: number;
  perNodeTotalMs: number;
  consensusBytes: number;
  brotliBytes: number;
  deflateBytes: number;
  nodesListed: number;
  clientVerifyMs: number;
  baselineEncodeMs: number;
  baselineClientMs: number;
  baselineVerifyAllMs: number;
  compressMs: number;
  decompressMs: number;
}

function runRound(descriptors: Uint8Array[], chain: Map<string, number>, discoveryCount: number): RoundFigures {
  const secrets = Array.from({ length: discoveryCount }, (_, i) => simulatedSecret("bench", "discovery", i));
  const discoverySet = secrets.map((s) => ed25519PublicKey(s));
  const chainRoles = (id: Uint8Array) => chain.get(bytesToHexFast(id)) ?? (discoverySet.some((k) => bytesToHexFast(k) === bytesToHexFast(id)) ? ChainRole.discovery : undefined);
  const nodes = secrets.map((secretKey) => new DiscoveryNode({ secretKey, discoverySet, chainRoles }));
  const validAfter = nextValidAfter(START, DEFAULT_SCHEDULE);
  const times = roundTimes(validAfter, DEFAULT_SCHEDULE);
  const now = times.voteAt - 1000;
  const reachable = [...chain.keys()].map((h) => Uint8Array.from(Buffer.from(h, "hex")));

  const ingest: number[] = [];
  for (const node of nodes) {
    ingest.push(timed(() => { for (const d of descriptors) node.submitDescriptor(d, now); })[1]);
    node.setReachable(reachable);
  }
  const votes: Uint8Array[] = [];
  const voteMs: number[] = [];
  for (const node of nodes) {
    const [actions, ms] = timed(() => node.tick(times.voteAt));
    voteMs.push(ms);
    const v = actions.find((a): a is Extract<DirectoryAction, { type: "broadcast-vote" }> => a.type === "broadcast-vote");
    if (!v) throw new Error("no vote cast");
    votes.push(v.vote);
  }
  const receiveMs = nodes.map((node, i) => timed(() => votes.forEach((v, j) => j !== i && node.receiveVote(v, times.voteAt + 1)))[1]);
  const signatures: Uint8Array[] = [];
  const computeMs: number[] = [];
  for (const node of nodes) {
    const [actions, ms] = timed(() => node.tick(times.computeAt));
    computeMs.push(ms);
    const s = actions.find((a): a is Extract<DirectoryAction, { type: "broadcast-signature" }> => a.type === "broadcast-signature");
    if (!s) throw new Error(`consensus not computed: ${JSON.stringify(actions.map((a) => a.type))}`);
    signatures.push(s.signature);
  }
  nodes.forEach((node, i) => signatures.forEach((s, j) => j !== i && node.receiveSignature(s, times.computeAt + 1)));
  const publishMs: number[] = [];
  let consensus: Uint8Array | undefined;
  for (const node of nodes) {
    const [actions, ms] = timed(() => node.tick(validAfter));
    publishMs.push(ms);
    const p = actions.find((a): a is Extract<DirectoryAction, { type: "consensus-published" }> => a.type === "consensus-published");
    if (!p) throw new Error("consensus not published");
    consensus = p.consensus;
  }
  const bytes = consensus as Uint8Array;

  // Client: full verification, and the baseline of decoding plus K raw signature checks.
  const trust = { trustedKeys: discoverySet, threshold: majorityThreshold(discoveryCount) };
  const clientRuns: number[] = [];
  let verified = verifyConsensus(bytes, { ...trust, now: validAfter });
  for (let i = 0; i < 5; i++) clientRuns.push(timed(() => (verified = verifyConsensus(bytes, { ...trust, now: validAfter })))[1]);
  const sigMessage = documentSigningMessage(CONSENSUS_TYPE, verified.bodyBytes);
  const oneSig = ed25519Sign(secrets[0] as Uint8Array, sigMessage);
  const baselineClient: number[] = [];
  for (let i = 0; i < 5; i++) {
    baselineClient.push(
      timed(() => {
        decodeCanonical(bytes, { maxBytes: 1 << 26 });
        decodeCanonical(verified.bodyBytes, { maxBytes: 1 << 26 });
        for (let k = 0; k < discoveryCount; k++) ed25519Verify(discoverySet[0] as Uint8Array, sigMessage, oneSig);
      })[1],
    );
  }
  const body = decodeConsensusBody(verified.bodyBytes);
  const encodeRuns = Array.from({ length: 5 }, () => timed(() => encodeConsensusBody(body))[1]);
  // Raw Ed25519 verification of as many signatures as descriptors ingested.
  const rawVerifyMs = timed(() => { for (let i = 0; i < descriptors.length; i++) ed25519Verify(discoverySet[0] as Uint8Array, sigMessage.subarray(0, 200), oneSig); })[1];

  const [packed, compressMs] = timed(() => compressConsensus(bytes));
  const brotli = packed.length;
  const decompressMs = median(Array.from({ length: 3 }, () => timed(() => decompressConsensus(packed))[1]));
  const deflate = deflateSync(bytes, { level: 9 }).length;
  const perNode = median(ingest) + median(voteMs) + median(receiveMs) + median(computeMs) + median(publishMs);
  return {
    discovery: discoveryCount,
    ingestMs: median(ingest),
    voteMs: median(voteMs),
    voteBytes: votes[0]?.length ?? 0,
    receiveVotesMs: median(receiveMs),
    computeSignMs: median(computeMs),
    publishMs: median(publishMs),
    perNodeTotalMs: perNode,
    consensusBytes: bytes.length,
    brotliBytes: brotli,
    deflateBytes: deflate,
    nodesListed: verified.entries.length,
    clientVerifyMs: median(clientRuns),
    baselineEncodeMs: median(encodeRuns),
    baselineClientMs: median(baselineClient),
    baselineVerifyAllMs: rawVerifyMs,
    compressMs,
    decompressMs,
  };
}

export async function run(): Promise<BenchSection> {
  const chain = new Map<string, number>();
  const [descriptors, createMs] = timed(() =>
    Array.from({ length: RELAYS }, (_, i) => {
      const secretKey = simulatedSecret("bench", "relay", i);
      chain.set(bytesToHexFast(ed25519PublicKey(secretKey)), ChainRole.onion);
      return createDescriptor({
        secretKey,
        onionKey: x25519PublicKey(simulatedSecret("bench", "onion", i)),
        addresses: i % 4 === 0
          ? [{ host: `10.${i % 250}.${(i >> 8) % 250}.${1 + (i % 200)}`, port: 9001 }, { host: `2001:db8:${i.toString(16)}::1`, port: 9001 }]
          : [{ host: `10.${i % 250}.${(i >> 8) % 250}.${1 + (i % 200)}`, port: 9001 }],
        roles: ChainRole.onion,
        bridge: false,
        bandwidth: 50_000 + (i % 97) * 37_000,
        country: ["DE", "US", "NL", "FR", "JP", "SE", "CA"][i % 7] as string,
        version: "psp/0.1.0",
        publishedAt: START - 60_000,
        family: i % 10 === 0 ? `family-${i % 300}` : undefined,
      });
    }),
  );
  const rounds = [3, 9].map((n) => runRound(descriptors, chain, n));
  const ms = (x: number) => `${fmt(x, x < 10 ? 2 : 0)} ms`;
  const ratio = (a: number, b: number) => `${fmt(a / b, 2)}×`;
  const rows = rounds.map((r) => [
    r.discovery,
    ms(r.ingestMs),
    `${ms(r.baselineVerifyAllMs)} (${ratio(r.ingestMs, r.baselineVerifyAllMs)})`,
    ms(r.voteMs),
    ms(r.receiveVotesMs),
    ms(r.computeSignMs),
    `${ms(r.baselineEncodeMs)} (${ratio(r.computeSignMs, r.baselineEncodeMs)})`,
    ms(r.publishMs),
    ms(r.perNodeTotalMs),
  ]);
  const clientRows = rounds.map((r) => [r.discovery, majorityThreshold(r.discovery), ms(r.clientVerifyMs), ms(r.baselineClientMs), ratio(r.clientVerifyMs, r.baselineClientMs)]);
  const sizeRows = rounds.map((r) => {
    const per = (b: number) => `${fmt(b / (r.nodesListed / 1000) / 1024, 1)} KiB`;
    return [r.discovery, fmt(r.nodesListed), `${fmt(r.consensusBytes / 1024 / 1024, 2)} MiB`, per(r.consensusBytes), per(r.brotliBytes), `${fmt((100 * r.brotliBytes) / r.consensusBytes, 0)}%`, per(r.deflateBytes), `${fmt((100 * r.deflateBytes) / r.consensusBytes, 0)}%`, `${fmt(r.voteBytes / 1024 / 1024, 2)} MiB`];
  });
  const r3 = rounds[0] as RoundFigures;
  const markdown = [
    `One voting round of the real DiscoveryNode state machine, ${fmt(RELAYS)} relay descriptors, every discovery node in one process`,
    `(medians over the discovery nodes; creating the ${fmt(RELAYS)} signed descriptors took ${fmt(createMs)} ms, not counted).`,
    "Baselines from the same run: raw Ed25519 verification of as many signatures as descriptors (against intake),",
    "canonical CBOR encoding of the same consensus body (against compute + sign), and, for the client, strict canonical",
    "decoding of the document and body plus K raw Ed25519 checks (against the full verifyConsensus).",
    "",
    table(["discovery nodes", "descriptor intake", "raw Ed25519 ×10k (ratio)", "vote build+sign", "receive N−1 votes", "compute + sign", "CBOR encode (ratio)", "publish", "total per node"], rows),
    "",
    table(["discovery nodes", "K", "client verifyConsensus", "decode + K verifies", "ratio"], clientRows),
    "",
    table(["discovery nodes", "nodes listed", "consensus", "raw per 1,000", "brotli-9 per 1,000", "brotli/raw", "deflate-9 per 1,000", "deflate/raw", "one vote"], sizeRows),
    "",
    `External reference (not measured here): Tor's microdescriptor consensus is about 2.5-3 MB raw and ~1 MB compressed`,
    `for ~8,000 relays, i.e. ~310-375 KiB raw and ~125 KiB compressed per 1,000; PSP's is ${fmt(r3.consensusBytes / (r3.nodesListed / 1000) / 1024, 0)} KiB raw per 1,000.`,
    `Compression saves ${fmt(100 - (100 * r3.brotliBytes) / r3.consensusBytes, 0)}% (brotli): the 64 random key bytes per node do not compress.`,
    `Brotli-9 costs ${ms(r3.compressMs)} once per consensus on a cache (ConsensusCache.serveCompressed memoizes it) and ${ms(r3.decompressMs)}`,
    `per fetch on a client (${ratio(r3.decompressMs, r3.clientVerifyMs)} of its verification time), so caches serve it compressed.`,
  ].join("\n");
  return { title: "Directory: consensus build, sign, verify and size (10,000 descriptors)", markdown, figures: { relays: RELAYS, createDescriptorsMs: createMs, rounds } };
}

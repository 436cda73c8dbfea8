/**
 * Latency of the media path, in the bench's process over real TLS on
 * loopback: a landing node feeding one distribution node, a producer
 * publishing a 2 Mbit/s stream (25 chunks a second, 9,964 media bytes
 * each), one viewer attached directly at the landing node and one at the
 * distribution node. Both viewers are raw stream links that open every
 * chunk with the stream key and read the producer's time from inside the
 * seal (the nodes cannot read it).
 *
 * Per chunk: producer → viewer through the landing node only, through
 * landing + distribution, and the difference of the two viewers' arrival
 * times for the same sequence number: what one distribution hop adds.
 * Baseline in the same run, interleaved with the chunks (one every 20 ms,
 * alternating): the same-size write over one raw TLS socket pair (TLS 1.3,
 * Nagle off as on stream links), from write() to the last byte's arrival.
 *
 * Owns nothing beyond the measurement. Trusts: the node code it drives.
 */
import { once } from "node:events";
import { connect as tlsConnect, createServer } from "node:tls";
import type { TLSSocket } from "node:tls";
import { clientTlsOptions, serverTlsOptions } from "../../../node/src/link/tls.js";
import type { TlsCredentials } from "../../../node/src/link/tls.js";
import { StreamCipher } from "../../../node/src/stream/crypto.js";
import { openPublisher } from "../../../node/src/stream/publisher.js";
import { connectStreamLink } from "../../../node/src/stream/stream-link.js";
import type { StreamTicket } from "../../../node/src/stream/ticket.js";
import type { MediaNode } from "./stream-nodes.js";
import {
  benchOracle,
  CHUNK_FRAME_BYTES,
  CHUNK_MEDIA_BYTES,
  CHUNKS_PER_SECOND,
  createBenchStream,
  quantile,
  runqueueWaitUs,
  sleepUntil,
  startMediaNode,
  wallMicros,
} from "./stream-nodes.js";

export interface LatencyFigures {
  chunks: number;
  chunkFrameBytes: number;
  /** Producer → viewer attached at the landing node. */
  landingOnlyP50Ms: number;
  landingOnlyP99Ms: number;
  /** Producer → viewer through landing + one distribution node. */
  viaDistributionP50Ms: number;
  viaDistributionP99Ms: number;
  /** Per chunk: arrival at the distribution node's viewer less arrival at the landing node's viewer. */
  hopP50Ms: number;
  hopP99Ms: number;
  /** One raw TLS socket pair, the same-size write, write() to last byte. */
  rawTlsP50Ms: number;
  rawTlsP99Ms: number;
  lostChunks: number;
  /** Time this process's main thread was runnable but waited for a CPU during the run (other load on the machine), ms per second. */
  runqueueMsPerS: number;
}

/** A viewer that attaches at `node` directly and records, per seq, arrival and producer time (µs). */
async function rawViewer(node: MediaNode, ticket: StreamTicket, session: Uint8Array) {
  const link = await connectStreamLink({ host: node.entry.host, port: node.entry.port, expectedIdentity: node.identity.publicKey });
  link.send({ type: "attach", streamId: ticket.streamId, session });
  const answer = await link.nextFrame(5000);
  if (answer.type !== "accept") throw new Error(`attach at a bench node refused: ${answer.type}`);
  const cipher = new StreamCipher(ticket.streamId, ticket.streamKey);
  const arrivals = new Map<number, { at: number; producedAt: number }>();
  link.on("frame", (f) => {
    if (f.type !== "chunk") return;
    const at = wallMicros();
    arrivals.set(Number(f.seq), { at, producedAt: cipher.open(f.seq, f.sealed).producedAt });
  });
  return { link, arrivals };
}

/** One raw TLS socket pair: `send(bytes)` resolves with the ms from write() to the last byte's arrival. */
async function rawPair(credentials: TlsCredentials) {
  const server = createServer(serverTlsOptions(credentials));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  const accepted = once(server, "secureConnection") as Promise<[TLSSocket]>;
  const client = tlsConnect(clientTlsOptions("127.0.0.1", port));
  await once(client, "secureConnect");
  const [peer] = await accepted;
  client.setNoDelay(true);
  peer.setNoDelay(true);
  let expected = 0;
  let received = 0;
  let done: ((at: number) => void) | undefined;
  peer.on("data", (b: Buffer) => {
    received += b.length;
    if (received >= expected && done) {
      const d = done;
      done = undefined;
      d(performance.now());
    }
  });
  return {
    async send(bytes: Uint8Array): Promise<number> {
      expected = received + bytes.length;
      const arrived = new Promise<number>((r) => (done = r));
      const start = performance.now();
      client.write(bytes);
      return (await arrived) - start;
    },
    close() {
      client.destroy();
      peer.destroy();
      server.close();
    },
  };
}

export async function measureLatency(credentials: TlsCredentials, chunks: number): Promise<LatencyFigures> {
  const oracle = benchOracle();
  const landing = await startMediaNode(credentials, oracle.admission);
  const distribution = await startMediaNode(credentials, oracle.admission);
  const pair = await rawPair(credentials);
  try {
    const { ticket, token } = await createBenchStream(landing, [distribution], oracle);
    const direct = await rawViewer(landing, ticket, oracle.session());
    const viaHop = await rawViewer(distribution, ticket, oracle.session());
    const publisher = await openPublisher({ ticket, token, clock: wallMicros });
    const media = new Uint8Array(CHUNK_MEDIA_BYTES).fill(0x47);
    const rawBytes = new Uint8Array(CHUNK_FRAME_BYTES).fill(0x47);
    const raw: number[] = [];
    // Warm-up: 25 chunks and raw writes, not counted.
    const warm = CHUNKS_PER_SECOND;
    const step = 1000 / CHUNKS_PER_SECOND / 2;
    const start = performance.now();
    const waitedBefore = runqueueWaitUs();
    for (let i = 0; i < 2 * (chunks + warm); i++) {
      await sleepUntil(start + i * step);
      if (i % 2 === 0) publisher.write(media);
      else {
        const ms = await pair.send(rawBytes);
        if (i >= 2 * warm) raw.push(ms);
      }
    }
    const runqueueMsPerS = (runqueueWaitUs() - waitedBefore) / (performance.now() - start);
    await new Promise((r) => setTimeout(r, 500));
    publisher.end();
    const landingOnly: number[] = [];
    const viaDistribution: number[] = [];
    const hop: number[] = [];
    let lost = 0;
    for (let seq = warm; seq < warm + chunks; seq++) {
      const a = direct.arrivals.get(seq);
      const b = viaHop.arrivals.get(seq);
      if (!a || !b) {
        lost++;
        continue;
      }
      landingOnly.push((a.at - a.producedAt) / 1000);
      viaDistribution.push((b.at - b.producedAt) / 1000);
      hop.push((b.at - a.at) / 1000);
    }
    direct.link.destroy();
    viaHop.link.destroy();
    return {
      chunks,
      chunkFrameBytes: CHUNK_FRAME_BYTES,
      landingOnlyP50Ms: quantile(landingOnly, 0.5),
      landingOnlyP99Ms: quantile(landingOnly, 0.99),
      viaDistributionP50Ms: quantile(viaDistribution, 0.5),
      viaDistributionP99Ms: quantile(viaDistribution, 0.99),
      hopP50Ms: quantile(hop, 0.5),
      hopP99Ms: quantile(hop, 0.99),
      rawTlsP50Ms: quantile(raw, 0.5),
      rawTlsP99Ms: quantile(raw, 0.99),
      lostChunks: lost,
      runqueueMsPerS,
    };
  } finally {
    pair.close();
    await landing.close();
    await distribution.close();
  }
}

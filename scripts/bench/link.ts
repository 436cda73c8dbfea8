/**
 * Link benchmarks: cell throughput over one authenticated link against raw
 * TLS bytes over the same loopback in the same run, and the link handshake
 * time against a bare TLS handshake. Both ends live in this one process, so
 * the figures include both sides' CPU work.
 */
import { once } from "node:events";
import { connect as tlsConnect, createServer } from "node:tls";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { createConnectionManager, generateTlsCredentials } from "../../node/src/link/index.js";
import type { Link } from "../../node/src/link/index.js";
import { rawTlsThroughput } from "./lib/raw-tls.js";
import { clientTlsOptions, serverTlsOptions } from "../../node/src/link/tls.js";
import type { TlsCredentials } from "../../node/src/link/tls.js";
import { CELL_LEN, CELL_PAYLOAD_LEN, CellCommand } from "../../node/src/wire/cell.js";
import type { Cell } from "../../node/src/wire/cell.js";
import type { BenchSection } from "./types.js";
import { fmt, table } from "./types.js";

const HOST = "127.0.0.1";
const TRANSFER_BYTES = 64 * 1024 * 1024;
const ROUNDS = 5;
const WRITE_BYTES = 64 * CELL_LEN; // raw TLS writes the same size as one link batch
const BATCH_CELLS = 64;
const HANDSHAKES = 40;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** One link: sendMany in batches of 64 cells, awaiting drain under pressure. Returns cells/s. */
async function linkThroughput(creds: TlsCredentials): Promise<number> {
  const a = generateEd25519KeyPair();
  const b = generateEd25519KeyPair();
  const receiver = await createConnectionManager({ identity: a, listen: { host: HOST, port: 0 }, tlsCredentials: creds });
  const sender = await createConnectionManager({ identity: b, tlsCredentials: creds });
  const cellsToSend = Math.floor(TRANSFER_BYTES / CELL_LEN);
  let received = 0;
  const done = new Promise<number>((resolve) => {
    receiver.handle(CellCommand.RELAY, () => {
      if (++received === cellsToSend) resolve(performance.now());
    });
  });
  const link: Link = await sender.getLink({ identity: a.publicKey, host: HOST, port: (receiver.address() as { port: number }).port });
  const batch: Cell[] = Array.from({ length: BATCH_CELLS }, (_, i) => ({
    circId: 1 + i,
    command: CellCommand.RELAY,
    payload: new Uint8Array(CELL_PAYLOAD_LEN).fill(i),
  }));
  const started = performance.now();
  for (let sent = 0; sent < cellsToSend; sent += BATCH_CELLS) {
    if (!link.sendMany(batch)) await link.drain();
  }
  const ended = await done;
  await Promise.all([sender.close(), receiver.close()]);
  return (cellsToSend * 1000) / (ended - started);
}

async function tlsHandshakeMs(creds: TlsCredentials): Promise<number> {
  const server = createServer(serverTlsOptions(creds));
  server.listen(0, HOST);
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  const times: number[] = [];
  for (let i = 0; i < HANDSHAKES; i++) {
    const t = performance.now();
    const s = tlsConnect(clientTlsOptions(HOST, port));
    await once(s, "secureConnect");
    times.push(performance.now() - t);
    s.destroy();
  }
  server.close();
  return median(times);
}

async function linkHandshakeMs(creds: TlsCredentials): Promise<number> {
  const a = generateEd25519KeyPair();
  const responder = await createConnectionManager({ identity: a, listen: { host: HOST, port: 0 }, tlsCredentials: creds });
  const port = (responder.address() as { port: number }).port;
  const times: number[] = [];
  for (let i = 0; i < HANDSHAKES; i++) {
    // A fresh dialer each time, so every round is a full TLS + VERSIONS/AUTH handshake.
    const dialer = await createConnectionManager({ identity: generateEd25519KeyPair(), tlsCredentials: creds });
    const t = performance.now();
    await dialer.getLink({ identity: a.publicKey, host: HOST, port });
    times.push(performance.now() - t);
    await dialer.close();
  }
  await responder.close();
  return median(times);
}

export async function run(): Promise<BenchSection> {
  const creds = await generateTlsCredentials();
  // The machine is shared and noisy: run ROUNDS rounds, each measuring raw TLS
  // and the link back to back, and report the median round (by ratio).
  const rounds: { raw: number; cells: number; ratio: number }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const raw = await rawTlsThroughput(creds, { bytes: TRANSFER_BYTES, writeBytes: WRITE_BYTES, host: HOST });
    const cells = await linkThroughput(creds);
    rounds.push({ raw, cells, ratio: (cells * CELL_LEN) / raw });
  }
  rounds.sort((x, y) => x.ratio - y.ratio);
  const mid = rounds[Math.floor(ROUNDS / 2)] as { raw: number; cells: number; ratio: number };
  const rawBps = mid.raw;
  const cellsPerSec = mid.cells;
  const cellBps = cellsPerSec * CELL_LEN;
  const payloadBps = cellsPerSec * CELL_PAYLOAD_LEN;
  const tlsMs = await tlsHandshakeMs(creds);
  const linkMs = await linkHandshakeMs(creds);
  const mb = (bps: number): string => fmt(bps / 1e6, 1);
  const ratio = mid.ratio;
  const markdown = [
    `One link, both ends in one process, ${TRANSFER_BYTES / 2 ** 20} MiB per run; ${ROUNDS} rounds of (raw TLS, link) back to back, the median round by ratio is shown;`,
    `the link sends batches of ${BATCH_CELLS} cells with \`sendMany\` and awaits \`drain()\` under pressure, the receiver`,
    `decodes every cell and calls a handler. Raw TLS writes ${WRITE_BYTES / 1024} KiB chunks over the same loopback.`,
    "",
    table(
      ["measure", "value", "baseline (raw TLS)", "ratio"],
      [
        ["cells/s over one link", fmt(cellsPerSec), "", ""],
        ["cell bytes on the wire, MB/s", mb(cellBps), mb(rawBps), fmt(ratio, 2)],
        ["cell payload, MB/s", mb(payloadBps), mb(rawBps), fmt(payloadBps / rawBps, 2)],
        ["handshake, median ms (TLS + VERSIONS/AUTH)", fmt(linkMs, 2), fmt(tlsMs, 2), fmt(linkMs / tlsMs, 2)],
      ],
    ),
    "",
    `All round ratios: ${rounds.map((r) => fmt(r.ratio, 2)).join(", ")}.`,
    `Target: cell framing costs under 10% of raw TLS throughput (ratio >= 0.9): ${ratio >= 0.9 ? "met" : "not met"} in this run.`,
  ].join("\n");
  return {
    title: "Links (TLS 1.3 + cells)",
    markdown,
    figures: {
      cellsPerSecond: cellsPerSec,
      cellMBps: cellBps / 1e6,
      payloadMBps: payloadBps / 1e6,
      rawTlsMBps: rawBps / 1e6,
      cellToRawRatio: ratio,
      linkHandshakeMedianMs: linkMs,
      tlsHandshakeMedianMs: tlsMs,
      handshakeRatio: linkMs / tlsMs,
      roundRatios: rounds.map((r) => r.ratio),
    },
  };
}

/**
 * Usage meters on the real media path (issue 16): a landing node feeding
 * two distribution nodes over real TLS stream links on loopback, ffmpeg's
 * MPEG-TS test source published through it, two players and one raw viewer
 * (a bare stream link that records every byte it receives), each node with
 * a UsageMeter and a NodeUsageReporter cutting 1-second windows and 3-second
 * epochs, each player with a ViewerUsageReporter. Oracle session ids and
 * receipts are real (the oracle set is held in memory, as in
 * stream-media.test.ts); signing and sending are the test's (they collect
 * the windows).
 *
 * Proves, from the reported windows: what the landing node reports sent to
 * each distribution node equals what that node reports received from it;
 * what a distribution node reports sent under a viewer's session sid equals
 * what that viewer reports received from it, and, for the raw viewer, the
 * bytes that actually arrived on its socket (less the END frame); the
 * landing node anchors the stream with its receipt and bitrate; no window
 * straddles an epoch; every byte counted is reported (nothing left, nothing
 * dropped). Equal, not merely close: the stream ends gracefully, so no chunk
 * is in flight when the meters are read.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytesEqual } from "../../node/src/base/bytes.js";
import { hexOf } from "../../node/src/base/hex.js";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import type { Ed25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { createConnectionManager } from "../../node/src/link/manager.js";
import type { ConnectionManager } from "../../node/src/link/manager.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import type { TlsCredentials } from "../../node/src/link/tls.js";
import { NodeUsageReporter } from "../../node/src/node/usage-reporter.js";
import { oracleAdmission, ReceiptReplayStore } from "../../node/src/stream/admission.js";
import { generateStreamKey } from "../../node/src/stream/crypto.js";
import { encodeFrame } from "../../node/src/stream/frames.js";
import type { NodeEntry } from "../../node/src/stream/frames.js";
import { StreamHost } from "../../node/src/stream/host.js";
import { playStream } from "../../node/src/stream/player.js";
import type { Player } from "../../node/src/stream/player.js";
import { openPublisher, publishReadable } from "../../node/src/stream/publisher.js";
import { signReceipt } from "../../node/src/stream/receipt.js";
import type { ReceiptChainView } from "../../node/src/stream/receipt.js";
import { signSessionId } from "../../node/src/stream/session.js";
import { connectStreamLink } from "../../node/src/stream/stream-link.js";
import type { StreamTicket } from "../../node/src/stream/ticket.js";
import { UsageMeter } from "../../node/src/stream/usage.js";
import type { EpochTiming, UsageWindow } from "../../node/src/stream/usage.js";
import { reportPlayerUsage } from "../../node/src/stream/viewer-usage.js";
import type { ViewerUsageReporter } from "../../node/src/stream/viewer-usage.js";
import { testSourceFfmpegArgs } from "../../scripts/lib/devnet-stream.js";
import { waiter } from "../helpers/index.js";

const FFMPEG = "/usr/bin/ffmpeg";
const SECONDS = 5;

interface MeteredNode {
  name: string;
  identity: Ed25519KeyPair;
  manager: ConnectionManager;
  host: StreamHost;
  store: ReceiptReplayStore;
  meter: UsageMeter;
  reporter: NodeUsageReporter;
  windows: UsageWindow[];
  entry: NodeEntry;
}

const oracle = generateEd25519KeyPair();
const view: ReceiptChainView = {
  oracleKeys: () => Promise.resolve([oracle.publicKey]),
  verifyInclusion: () => Promise.resolve(false),
  isRevoked: () => Promise.resolve(false),
  blindKey: () => Promise.resolve(undefined),
  isOracleSigner: () => Promise.resolve(false),
};
const admission = oracleAdmission({ view, sessionOracleKeys: () => [oracle.publicKey] });
const nowS = (): number => Math.floor(Date.now() / 1000);
// Short epochs, so the stream crosses several boundaries.
const epoch: EpochTiming = { genesis: nowS() - 1000, epochLength: 3 };
const nodes: MeteredNode[] = [];
let credentials: TlsCredentials;
let dir: string;

async function startNode(name: string): Promise<MeteredNode> {
  const identity = generateEd25519KeyPair();
  const manager = await createConnectionManager({ identity, listen: { host: "127.0.0.1", port: 0 }, tlsCredentials: credentials });
  const address = manager.address() as { host: string; port: number };
  const store = new ReceiptReplayStore(join(dir, `${name}-receipts.db`));
  const meter = new UsageMeter();
  const host = new StreamHost({ identity, admission, replayStore: store, advertised: address, tickMs: 100, usage: meter });
  manager.setStreamHandler((socket) => host.handleSocket(socket));
  const windows: UsageWindow[] = [];
  const reporter = new NodeUsageReporter({
    identity: identity.publicKey,
    meter,
    intervalSeconds: 1,
    epoch,
    oracles: () => [oracle.publicKey],
    sign: (w) => {
      windows.push(w);
      return Uint8Array.of(w.part);
    },
    send: () => Promise.resolve(),
  });
  reporter.start();
  const node = {
    name,
    identity,
    manager,
    host,
    store,
    meter,
    reporter,
    windows,
    entry: { identity: identity.publicKey, host: address.host, port: address.port, load: 0 },
  };
  nodes.push(node);
  return node;
}

const waitFor = waiter({ timeoutMs: 10_000, intervalMs: 20 });

function ffmpegSource(seconds: number) {
  return spawn(FFMPEG, testSourceFfmpegArgs(seconds), { stdio: ["ignore", "pipe", "inherit"] });
}

/** Bytes reported under (stream, peer, direction), over all windows. */
function reported(windows: readonly UsageWindow[], stream: Uint8Array, peer: Uint8Array, direction: "sent" | "received"): number {
  let n = 0;
  for (const w of windows) for (const e of w.entries) if (bytesEqual(e.stream, stream) && bytesEqual(e.peer, peer) && e.direction === direction) n += e.bytes;
  return n;
}

function expectWithinEpochs(windows: readonly UsageWindow[]): void {
  for (const w of windows) {
    expect(w.to).toBeGreaterThan(w.from);
    expect(Math.floor((w.from - epoch.genesis) / epoch.epochLength)).toBe(Math.floor((w.to - 1 - epoch.genesis) / epoch.epochLength));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "psp-stream-usage-"));
  credentials = await generateTlsCredentials();
}, 60_000);

afterAll(async () => {
  for (const n of nodes) {
    await n.reporter.close(false);
    n.host.close();
    await n.manager.close().catch(() => undefined);
    n.store.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("usage meters over real TLS stream links", () => {
  it("landing, distribution and viewer meters agree with the bytes the viewers received", async () => {
    const landing = await startNode("landing");
    const d1 = await startNode("d1");
    const d2 = await startNode("d2");
    const receipt = signReceipt({
      params: { bitrateKbps: 4000, maxDurationSeconds: 600, formatFlags: 5 },
      issuedAt: nowS() - 5,
      expiresAt: nowS() + 3600,
      secretKey: oracle.secretKey,
    });
    const created = await landing.host.create({ receipt: receipt.bytes, kbps: 3000, durationS: 120, public: false, distribution: [d1.entry, d2.entry] });
    const ticket: StreamTicket = {
      streamId: created.streamId,
      streamKey: generateStreamKey(),
      landing: landing.identity.publicKey,
      host: landing.entry.host,
      port: landing.entry.port,
    };
    await waitFor(
      "both feeds",
      () => landing.host.streamsView()[0]?.feeds.length === 2 && d1.host.streamsView().length === 1 && d2.host.streamsView().length === 1,
    );

    // Two players, one session each; their reporters cut 1-second windows too.
    const sessions = [0, 1].map(() => signSessionId({ issuedAt: nowS() - 5, expiresAt: nowS() + 3600, secretKey: oracle.secretKey }));
    const viewers: { player: Player; reporter: ViewerUsageReporter; windows: UsageWindow[]; ended: Promise<void> }[] = [];
    for (const [i, s] of sessions.entries()) {
      const player = await playStream({ ticket, session: () => s.bytes, reattachTimeoutMs: 5000 });
      const windows: UsageWindow[] = [];
      const reporter = reportPlayerUsage(player, {
        intervalSeconds: 1,
        epoch,
        send: (w) => {
          windows.push(w);
          return Promise.resolve();
        },
      });
      const ended = new Promise<void>((resolve) => player.once("end", () => resolve()));
      viewers.push({ player, reporter, windows, ended });
      await waitFor("load reports", () => landing.host.streamsView()[0]!.feeds.reduce((a, f) => a + f.load, 0) === i + 1);
    }

    // A raw viewer at d2 records every byte the node writes to it.
    const rawSession = signSessionId({ issuedAt: nowS() - 5, expiresAt: nowS() + 3600, secretKey: oracle.secretKey });
    const raw = await connectStreamLink({ host: d2.entry.host, port: d2.entry.port, expectedIdentity: d2.identity.publicKey });
    raw.send({ type: "attach", streamId: ticket.streamId, session: rawSession.bytes });
    expect((await raw.nextFrame(5000)).type).toBe("accept");
    let rawBytes = 0;
    raw.socket.on("data", (b: Buffer) => (rawBytes += b.length));
    const rawClosed = new Promise<void>((resolve) => raw.once("close", () => resolve()));

    const publisher = await openPublisher({ ticket, token: created.token });
    const source = ffmpegSource(SECONDS);
    await publishReadable(publisher, source.stdout);
    await Promise.all(viewers.map((v) => v.ended));
    await rawClosed;
    await Promise.all(viewers.map((v) => v.reporter.close()));
    await waitFor("the stream gone from every node", () => nodes.every((n) => n.host.streamsView().length === 0));
    for (const n of [landing, d1, d2]) await n.reporter.close();

    const id = ticket.streamId;
    // Landing → distribution: both ends report the same bytes.
    for (const d of [d1, d2]) {
      const sent = reported(landing.windows, id, d.identity.publicKey, "sent");
      expect(sent).toBeGreaterThan(100_000);
      expect(reported(d.windows, id, landing.identity.publicKey, "received")).toBe(sent);
    }
    // Distribution → players: the node's figure under the viewer's sid is the viewer's under the node's key.
    for (const [i, v] of viewers.entries()) {
      expect(v.player.stats.rejected + v.player.stats.repeats).toBe(0);
      expect(v.player.stats.attachedTo.length).toBe(1);
      const at = [d1, d2].find((d) => hexOf(d.identity.publicKey) === v.player.stats.attachedTo[0])!;
      const got = reported(v.windows, id, at.identity.publicKey, "received");
      expect(got).toBeGreaterThan(100_000);
      expect(reported(at.windows, id, sessions[i]!.sid, "sent")).toBe(got);
      expect(v.windows.every((w) => w.anchors.length === 0 && w.entries.every((e) => e.direction === "received"))).toBe(true);
      expectWithinEpochs(v.windows);
      expect(v.player.usage.pendingBytes).toBe(0);
    }
    // Distribution → raw viewer: what arrived on the socket, less the END frame.
    const endFrame = encodeFrame({ type: "end" }).length;
    expect(rawBytes).toBeGreaterThan(100_000);
    expect(reported(d2.windows, id, rawSession.sid, "sent")).toBe(rawBytes - endFrame);
    // The landing node anchors the stream with its receipt and bitrate; nobody else anchors anything.
    const anchors = landing.windows.flatMap((w) => w.anchors);
    expect(anchors.length).toBeGreaterThan(0);
    for (const a of anchors) expect(a).toEqual({ stream: id, receipt: receipt.bytes, kbps: 3000 });
    for (const n of [d1, d2]) expect(n.windows.every((w) => w.anchors.length === 0)).toBe(true);
    // Every byte counted was reported, in windows within one epoch each.
    for (const n of [landing, d1, d2]) {
      expectWithinEpochs(n.windows);
      expect(n.meter.stats.bytesReported).toBe(n.meter.stats.bytesAdded);
      expect(n.meter.stats.droppedBytes).toBe(0);
      expect(n.reporter.stats).toMatchObject({ dropped: 0, failures: 0 });
    }
    // The stream crossed more than one epoch and more than one window.
    expect(new Set(landing.windows.map((w) => w.from)).size).toBeGreaterThan(2);
  }, 90_000);
});

/**
 * A slow viewer at a distribution node, over real TLS on loopback: the
 * viewer's socket is paused, so the node's socket to it fills and the
 * fan-out engine queues, jumps to the live edge and drops, then the viewer
 * reads in short pulses, so queued batches are written into a socket that
 * fills again part-way.
 *
 * Proves: every chunk copy the node does not send is counted in its
 * counters (chunksIn = chunksOut + chunksDropped once the stream is quiet,
 * with live-edge jumps counted), and a blocked spell holds one 'drain'
 * listener, not one per write of a drained batch (no
 * MaxListenersExceededWarning; a stale listener would mark the sink
 * unblocked while its socket is still full).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { createConnectionManager } from "../../node/src/link/manager.js";
import type { ConnectionManager } from "../../node/src/link/manager.js";
import { generateTlsCredentials } from "../../node/src/link/tls.js";
import type { TlsCredentials } from "../../node/src/link/tls.js";
import { oracleAdmission, ReceiptReplayStore } from "../../node/src/stream/admission.js";
import { generateStreamKey } from "../../node/src/stream/crypto.js";
import { StreamHost } from "../../node/src/stream/host.js";
import { openPublisher } from "../../node/src/stream/publisher.js";
import { signReceipt } from "../../node/src/stream/receipt.js";
import type { ReceiptChainView } from "../../node/src/stream/receipt.js";
import { signSessionId } from "../../node/src/stream/session.js";
import { connectStreamLink } from "../../node/src/stream/stream-link.js";
import { waiter } from "../helpers/index.js";

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
const closers: (() => Promise<void>)[] = [];
let credentials: TlsCredentials;

async function mediaNode() {
  const identity = generateEd25519KeyPair();
  const manager: ConnectionManager = await createConnectionManager({ identity, listen: { host: "127.0.0.1", port: 0 }, tlsCredentials: credentials });
  const address = manager.address() as { host: string; port: number };
  const store = new ReceiptReplayStore(":memory:");
  const host = new StreamHost({ identity, admission, replayStore: store, advertised: address, tickMs: 100 });
  manager.setStreamHandler((socket) => host.handleSocket(socket));
  closers.push(async () => {
    host.close();
    await manager.close().catch(() => undefined);
    store.close();
  });
  return { identity, host, entry: { identity: identity.publicKey, host: address.host, port: address.port, load: 0 } };
}

const waitFor = waiter({ timeoutMs: 20_000, intervalMs: 20 });

beforeAll(async () => {
  credentials = await generateTlsCredentials();
}, 60_000);

afterAll(async () => {
  for (const close of closers) await close();
});

describe("a slow viewer at a distribution node", () => {
  it("counts every chunk copy it does not send, and holds one drain listener per blocked spell", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      if (w.name === "MaxListenersExceededWarning") warnings.push(w);
    };
    process.on("warning", onWarning);
    try {
      const landing = await mediaNode();
      const distribution = await mediaNode();
      // A high bitrate, so the landing node's rate limit lets enough through to fill loopback socket buffers quickly.
      const receipt = signReceipt({
        params: { bitrateKbps: 400_000, maxDurationSeconds: 600, formatFlags: 0 },
        issuedAt: nowS() - 5,
        expiresAt: nowS() + 3600,
        secretKey: oracle.secretKey,
      });
      const created = await landing.host.create({ receipt: receipt.bytes, kbps: 400_000, durationS: 600, public: false, distribution: [distribution.entry] });
      await waitFor("the feed", () => distribution.host.streamsView().length === 1);
      const viewer = await connectStreamLink({
        host: distribution.entry.host,
        port: distribution.entry.port,
        expectedIdentity: distribution.identity.publicKey,
      });
      viewer.send({
        type: "attach",
        streamId: created.streamId,
        session: signSessionId({ issuedAt: nowS() - 5, expiresAt: nowS() + 3600, secretKey: oracle.secretKey }).bytes,
      });
      expect((await viewer.nextFrame(5000)).type).toBe("accept");
      viewer.socket.pause();

      const ticket = { streamId: created.streamId, streamKey: generateStreamKey(), landing: landing.identity.publicKey, ...landing.entry };
      const publisher = await openPublisher({ ticket, token: created.token });
      const media = new Uint8Array(9964);
      const d = distribution.host.counters;
      // Phase 1: the viewer reads nothing until the node has had to drop (its socket is full and the queue jumped).
      while (d.chunksDropped === 0 || d.liveEdgeJumps === 0) {
        if (d.chunksIn > 20_000) throw new Error("the node never dropped a chunk for a viewer that reads nothing");
        if (!publisher.write(media)) await publisher.drain();
        await new Promise((r) => setImmediate(r));
      }
      // Phase 2: the viewer reads in short pulses while chunks keep coming, so queued batches meet a socket that fills again.
      for (let pulse = 0; pulse < 40; pulse++) {
        viewer.socket.resume();
        await new Promise((r) => setTimeout(r, 5));
        viewer.socket.pause();
        for (let i = 0; i < 20; i++) {
          if (!publisher.write(media)) await publisher.drain();
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      // Quiet: the viewer reads everything; every copy the node took in was sent or counted as dropped.
      viewer.socket.resume();
      await waitFor("the node's queue to empty", () => d.chunksIn === d.chunksOut + d.chunksDropped);
      expect(d.chunksDropped).toBeGreaterThan(0);
      expect(d.liveEdgeJumps).toBeGreaterThan(0);
      // psp_stream_chunk_bytes_total: one viewer, so no more bytes out than in, and some of each.
      expect(d.bytesOut).toBeGreaterThan(0);
      expect(d.bytesOut).toBeLessThanOrEqual(d.bytesIn);
      expect(warnings.map((w) => w.message)).toEqual([]);
      publisher.end();
      viewer.destroy();
    } finally {
      process.off("warning", onWarning);
    }
  }, 60_000);
});

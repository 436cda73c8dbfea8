/**
 * The media path the streaming benchmark measures, built from the real
 * pieces: media nodes (a ConnectionManager listening as a node, its
 * listener handing psp-stream/1 sockets to a StreamHost), a stream created
 * at a landing node with a real oracle-signed receipt, session ids checked
 * by oracleAdmission, and the chunk size of a 2 Mbit/s stream.
 *
 * Owns: the oracle (an in-memory key standing for the chain view, as in
 * test/integration/stream-media.test.ts), the bench's stream parameters,
 * the clock carried inside the seal (µs on a wall-clock time line, so two
 * processes of this machine can compare it), and quantiles.
 *
 * Trusts: nothing beyond the node code it drives; it runs in the bench's
 * own processes.
 */
import { readFileSync } from "node:fs";
import { generateEd25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import type { Ed25519KeyPair } from "../../../node/src/crypto/ed25519.js";
import { createConnectionManager } from "../../../node/src/link/manager.js";
import type { ConnectionManager } from "../../../node/src/link/manager.js";
import type { TlsCredentials } from "../../../node/src/link/tls.js";
import { oracleAdmission, ReceiptReplayStore } from "../../../node/src/stream/admission.js";
import type { StreamAdmission } from "../../../node/src/stream/admission.js";
import { generateStreamKey } from "../../../node/src/stream/crypto.js";
import type { NodeEntry } from "../../../node/src/stream/frames.js";
import { StreamHost } from "../../../node/src/stream/host.js";
import { signReceipt } from "../../../node/src/stream/receipt.js";
import type { ReceiptChainView } from "../../../node/src/stream/receipt.js";
import { signSessionId } from "../../../node/src/stream/session.js";
import type { StreamTicket } from "../../../node/src/stream/ticket.js";

/** A 2 Mbit/s stream cut into 25 chunks a second: 53 MPEG-TS packets (9,964 bytes) a chunk, 1.99 Mbit/s. */
export const CHUNKS_PER_SECOND = 25;
export const CHUNK_MEDIA_BYTES = 188 * 53;
export const STREAM_KBPS = 2000;
/** CHUNK frame on the wire: LEN (4) ‖ TYPE (1) ‖ seq (8) ‖ sealed (time (8) ‖ media ‖ tag (16)). */
export const CHUNK_FRAME_BYTES = 4 + 1 + 8 + 8 + CHUNK_MEDIA_BYTES + 16;

/** Microseconds on the wall-clock time line, sub-millisecond within a process and comparable across processes of one machine (within clock-sync error). */
export function wallMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

export interface BenchOracle {
  keys: Ed25519KeyPair;
  admission: StreamAdmission;
  receipt(): Uint8Array;
  session(): Uint8Array;
}

export function benchOracle(): BenchOracle {
  const keys = generateEd25519KeyPair();
  const view: ReceiptChainView = {
    oracleKeys: () => Promise.resolve([keys.publicKey]),
    verifyInclusion: () => Promise.resolve(false),
    isRevoked: () => Promise.resolve(false),
    blindKey: () => Promise.resolve(undefined),
    isOracleSigner: () => Promise.resolve(false),
  };
  const nowS = (): number => Math.floor(Date.now() / 1000);
  return {
    keys,
    admission: oracleAdmission({ view, sessionOracleKeys: () => [keys.publicKey] }),
    receipt: () =>
      signReceipt({
        params: { bitrateKbps: 4000, maxDurationSeconds: 3600, formatFlags: 5 },
        issuedAt: nowS() - 5,
        expiresAt: nowS() + 3600,
        secretKey: keys.secretKey,
      }).bytes,
    session: () => signSessionId({ issuedAt: nowS() - 5, expiresAt: nowS() + 3600, secretKey: keys.secretKey }).bytes,
  };
}

export interface MediaNode {
  identity: Ed25519KeyPair;
  manager: ConnectionManager;
  host: StreamHost;
  store: ReceiptReplayStore;
  entry: NodeEntry;
  close(): Promise<void>;
}

export async function startMediaNode(credentials: TlsCredentials, admission: StreamAdmission, host = "127.0.0.1"): Promise<MediaNode> {
  const identity = generateEd25519KeyPair();
  const manager = await createConnectionManager({ identity, listen: { host, port: 0 }, tlsCredentials: credentials });
  const address = manager.address() as { host: string; port: number };
  const store = new ReceiptReplayStore(":memory:");
  const streamHost = new StreamHost({ identity, admission, replayStore: store, advertised: address, tickMs: 250 });
  manager.setStreamHandler((socket) => streamHost.handleSocket(socket));
  return {
    identity,
    manager,
    host: streamHost,
    store,
    entry: { identity: identity.publicKey, host: address.host, port: address.port, load: 0 },
    async close() {
      streamHost.close();
      await manager.close().catch(() => undefined);
      store.close();
    },
  };
}

/** Creates a 2 Mbit/s stream at `landing` fed to `distribution`; resolves once every feed is up. */
export async function createBenchStream(
  landing: MediaNode,
  distribution: MediaNode[],
  oracle: BenchOracle,
): Promise<{ ticket: StreamTicket; token: Uint8Array }> {
  const created = await landing.host.create({
    receipt: oracle.receipt(),
    kbps: STREAM_KBPS,
    durationS: 3600,
    public: false,
    distribution: distribution.map((d) => d.entry),
  });
  const ticket: StreamTicket = {
    streamId: created.streamId,
    streamKey: generateStreamKey(),
    landing: landing.identity.publicKey,
    host: landing.entry.host,
    port: landing.entry.port,
  };
  const deadline = performance.now() + 10_000;
  const hosted = (n: MediaNode): boolean => n.host.streamsView().some((s) => Buffer.from(s.streamId).equals(Buffer.from(created.streamId)));
  while ((landing.host.streamsView()[0]?.feeds.length ?? 0) < distribution.length || !distribution.every(hosted)) {
    if (performance.now() > deadline) throw new Error("the landing node did not feed its distribution nodes within 10 s");
    await new Promise((r) => setTimeout(r, 10));
  }
  return { ticket, token: created.token };
}

/** The q-quantile (nearest rank) of `xs`; NaN when empty. */
export function quantile(xs: readonly number[] | Float64Array, q: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = Float64Array.from(xs).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * q) - 1))] as number;
}

/** Sleeps until `at` (performance.now() time line); a self-correcting pace for chunks. */
export function sleepUntil(at: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, at - performance.now())));
}

/**
 * Time this process's main thread has spent runnable but waiting for a CPU
 * (µs, Linux /proc/self/schedstat, second field): how much the machine's
 * other load delayed it. NaN where the kernel does not report it.
 */
export function runqueueWaitUs(): number {
  try {
    const fields = readFileSync("/proc/self/schedstat", "utf8").trim().split(/\s+/);
    return Number(fields[1]) / 1000;
  } catch {
    return Number.NaN;
  }
}

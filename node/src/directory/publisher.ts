/**
 * The descriptor publisher every node runs: signs a fresh descriptor
 * periodically and reports it to every discovery node it can reach.
 *
 * Owns the publication schedule (at start, then every intervalMs, and on
 * demand when something in the descriptor changed) and the per-discovery
 * node outcome of the last round. Trusts the caller's descriptor fields
 * (createDescriptor checks their shape) and nothing a discovery node answers
 * beyond its verdict.
 */
import type { PeerAddress } from "../link/manager.js";
import { childLogger, logFailure, throttledFailureLog } from "../log.js";
import type { Logger } from "../log.js";
import { bytesToHexFast } from "./config.js";
import { createDescriptor } from "./descriptor.js";
import type { DescriptorFields } from "./descriptor.js";
import { DirectoryError } from "./errors.js";
import type { DirectoryErrorKind } from "./errors.js";
import { DEFAULT_DIRECTORY_TIMEOUT_MS, directoryRequest } from "./transport.js";
import type { DirectoryRpc } from "./transport.js";

export interface DescriptorPublisherOptions {
  rpc: DirectoryRpc;
  /** The node's 32-byte Ed25519 identity seed. */
  secretKey: Uint8Array;
  /** The descriptor as of now (called at each publication, so onion-key rotations are picked up). */
  descriptor: () => Omit<DescriptorFields, "publishedAt">;
  /** Link addresses of the discovery nodes (called at each publication when a function). */
  discovery: readonly PeerAddress[] | (() => readonly PeerAddress[]);
  /** Time between publications (default 10 min: well inside the 3 h descriptor lifetime and each 15 min period). */
  intervalMs?: number;
  timeoutMs?: number;
  now?: () => number;
  /** Logs as component "publisher": a discovery node that refuses or cannot be reached (throttled warnings), a round that fails. */
  logger?: Logger;
}

export type PublishOutcome =
  | { discovery: string; ok: true; accepted: boolean }
  | { discovery: string; ok: false; kind: DirectoryErrorKind; message: string };

export interface DescriptorPublisher {
  /** Signs and reports a descriptor now; resolves with each discovery node's verdict. */
  publishNow(): Promise<PublishOutcome[]>;
  /** Outcomes of the last completed publication. */
  readonly lastOutcomes: readonly PublishOutcome[];
  stop(): void;
}

/** Starts publishing: once at once, then every intervalMs. */
export function startDescriptorPublisher(options: DescriptorPublisherOptions): DescriptorPublisher {
  const intervalMs = options.intervalMs ?? 10 * 60_000;
  if (!Number.isSafeInteger(intervalMs) || intervalMs <= 0) throw new DirectoryError("bad-config", `intervalMs must be a positive integer, got ${String(intervalMs)}`);
  const now = options.now ?? Date.now;
  const log = childLogger(options.logger, "publisher");
  const logRefusal = throttledFailureLog(log);
  let lastOutcomes: PublishOutcome[] = [];
  let stopped = false;

  const publishNow = async (): Promise<PublishOutcome[]> => {
    const descriptor = createDescriptor({ ...options.descriptor(), publishedAt: now(), secretKey: options.secretKey });
    const targets = typeof options.discovery === "function" ? options.discovery() : options.discovery;
    const outcomes = await Promise.all(
      targets.map(async (peer): Promise<PublishOutcome> => {
        const discovery = bytesToHexFast(peer.identity);
        try {
          const response = await directoryRequest(options.rpc, peer, { type: "publish-descriptor", descriptor }, { timeoutMs: options.timeoutMs ?? DEFAULT_DIRECTORY_TIMEOUT_MS });
          if (response.type !== "ok") return { discovery, ok: false, kind: "malformed", message: `answered ${response.type} to publish-descriptor` };
          return { discovery, ok: true, accepted: response.accepted };
        } catch (err) {
          if (!(err instanceof DirectoryError)) throw err;
          logRefusal(err, "publish descriptor to a discovery node", "warn");
          return { discovery, ok: false, kind: err.kind, message: err.message };
        }
      }),
    );
    lastOutcomes = outcomes;
    log.debug({ reached: outcomes.filter((o) => o.ok).length, of: outcomes.length }, "descriptor published");
    return outcomes;
  };

  // A round that throws (our descriptor fields, a bug) has no caller: it is logged, and the next round tries again.
  const publishInBackground = (): void => void publishNow().catch((err: unknown) => logFailure(log, err, "publish descriptor", "error"));
  const timer = setInterval(() => {
    if (!stopped) publishInBackground();
  }, intervalMs);
  timer.unref();
  publishInBackground();

  return {
    publishNow,
    get lastOutcomes() {
      return lastOutcomes;
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

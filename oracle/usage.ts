/**
 * Usage intake: the usage reports nodes and viewers send an oracle, checked
 * against what only an oracle knows (the epoch clock, the oracle set, the
 * consensus, the chain's receipts), stored before they are acknowledged, and
 * queued for the other oracles (docs/spec/rewards.md "Intake").
 *
 * Owns the context checks on top of rewards/report.ts's (shape, limits,
 * signature, the viewer's session binding):
 *   - the window lies inside one epoch, ended at most `acceptSeconds` ago and
 *     not in the future ("wrong-epoch"); replicas skip the deadline, their
 *     first oracle applied it;
 *   - a node report is signed by a node of the consensus;
 *   - a viewer report's session id is signed by a current oracle
 *     ("unknown-session") and valid over the whole window ("expired-session");
 *   - every anchor's receipt was signed by a current oracle or under a blind
 *     key registered on chain ("bad-report"), whatever its age: a stream runs
 *     long after its receipt's start window closes;
 *   - one report per reporter and window part, windows never overlapping
 *     ("report-conflict"); the same bytes again are acknowledged as a duplicate.
 *
 * Trusts: rewards/report.ts for the report's own integrity, the chain view and
 * consensus it is given, and its store.
 */
import { bytesToHex, type Hex } from "viem";
import { logFailure, type Logger } from "../node/src/log.js";
import { RewardsError } from "../node/src/rewards/errors.js";
import { decodeUsageReport, type UsageReport } from "../node/src/rewards/report.js";
import { decodeBlindReceipt, decodeReceipt, receiptReplayKey, verifyBlindReceipt, type ReceiptChainView } from "../node/src/stream/receipt.js";
import { DEFAULT_STREAM_CLOCK_SKEW_SECONDS } from "../node/src/stream/receipt.js";
import { OracleError } from "./errors.js";
import type { OracleStore } from "./store.js";

/** The reward epochs' clock, from BandwidthRewards. */
export interface EpochClock {
  genesis: number;
  epochLength: number;
}

export const epochOf = (clock: EpochClock, unixSeconds: number): number => Math.floor((unixSeconds - clock.genesis) / clock.epochLength);
export const epochEndOf = (clock: EpochClock, epoch: number): number => clock.genesis + (epoch + 1) * clock.epochLength;

/** A verified stream anchor: the stream's bitrate cap and the receipt it rests on. */
export interface VerifiedAnchor {
  stream: string;
  kbps: number;
  /** receiptReplayKey: one receipt anchors one stream per epoch. */
  receiptKey: string;
}

export interface UsageIntakeOptions {
  store: OracleStore;
  clock: () => Promise<EpochClock>;
  /** Node keys (hex, no 0x) of the current oracle set. */
  oracleKeys: () => Promise<ReadonlySet<string>>;
  /** The other current oracles (hex), to queue each accepted report for. */
  peers: () => Promise<string[]>;
  /** True when a node key (hex) is listed in the consensus this node holds. */
  isListedNode: (nodeKeyHex: string) => boolean;
  receipts: ReceiptChainView;
  /** How long after its epoch ends a report is still taken in (default 60 s). */
  acceptSeconds?: number;
  skewSeconds?: number;
  now?: () => number;
  logger: Logger;
}

export interface UsageIntake {
  /** Checks and stores a report; resolves with its hash (and whether it was already held), or throws OracleError. */
  submit(bytes: Uint8Array, options?: { replica?: boolean }): Promise<{ hash: Hex; duplicate: boolean }>;
  /** The reward epochs' clock this intake judges windows by. */
  clock(): Promise<EpochClock>;
  /** Stores replicated reports; returns how many were taken, logging (never throwing for) the ones refused. */
  replicate(docs: readonly Uint8Array[]): Promise<number>;
  stats(): { accepted: number; duplicates: number; replicas: number; refused: Record<string, number> };
}

const hexOfKey = (k: Uint8Array): string => bytesToHex(k).slice(2);

/** Verifies an anchor's receipt for rewards: signer or key on chain, and the stream not outliving receipt and duration. */
export async function verifyAnchorReceipt(
  bytes: Uint8Array,
  view: ReceiptChainView,
  windowEnd: number,
  oracleKeys: ReadonlySet<string>,
): Promise<{ kbps: number; receiptKey: string }> {
  const refuse = (message: string, cause?: unknown) => new OracleError("bad-report", `stream anchor: ${message}`, cause === undefined ? {} : { cause });
  let blind;
  try {
    blind = decodeBlindReceipt(bytes);
  } catch {
    blind = undefined;
  }
  if (blind) {
    const key = await view.blindKey(blind.keyId);
    if (!key) throw refuse("the blind receipt's key is not registered on chain");
    try {
      // The key's own window decides validity; the stream may then run its duration.
      const verified = verifyBlindReceipt(bytes, { key, oracleCurrent: true, now: key.validFrom });
      if (windowEnd > verified.validUntil + verified.params.maxDurationSeconds) throw refuse("the window ends after the receipt's stream could have ended");
      return { kbps: verified.params.bitrateKbps, receiptKey: receiptReplayKey(verified) };
    } catch (err) {
      if (err instanceof OracleError) throw err;
      throw refuse(`the blind receipt does not verify: ${(err as Error).message}`, err);
    }
  }
  let receipt;
  try {
    receipt = decodeReceipt(bytes);
  } catch (err) {
    throw refuse(`not a receipt: ${(err as Error).message}`, err);
  }
  if (!oracleKeys.has(hexOfKey(receipt.oracle))) throw refuse("the receipt's oracle is not in the current oracle set");
  if (await view.isRevoked(receipt.receiptHash)) throw refuse("the receipt was revoked on chain");
  if (windowEnd > receipt.expiresAt + receipt.params.maxDurationSeconds) throw refuse("the window ends after the receipt's stream could have ended");
  return { kbps: receipt.params.bitrateKbps, receiptKey: receiptReplayKey(receipt) };
}

export function createUsageIntake(opts: UsageIntakeOptions): UsageIntake {
  const now = opts.now ?? Date.now;
  const acceptSeconds = opts.acceptSeconds ?? 60;
  const skew = opts.skewSeconds ?? DEFAULT_STREAM_CLOCK_SKEW_SECONDS;
  const stats = { accepted: 0, duplicates: 0, replicas: 0, refused: {} as Record<string, number> };

  const decode = (bytes: Uint8Array): UsageReport => {
    try {
      return decodeUsageReport(bytes);
    } catch (err) {
      if (err instanceof RewardsError) throw new OracleError("bad-report", `usage report refused: ${err.message}`, { cause: err });
      throw err;
    }
  };

  const check = async (report: UsageReport, replica: boolean): Promise<number> => {
    const clock = await opts.clock();
    const nowSeconds = Math.floor(now() / 1000);
    if (report.from < clock.genesis) throw new OracleError("wrong-epoch", "the report's window starts before the first reward epoch");
    const epoch = epochOf(clock, report.from);
    const end = epochEndOf(clock, epoch);
    if (report.to > end) throw new OracleError("wrong-epoch", `the window crosses the end of epoch ${epoch}: cut windows at epoch boundaries`);
    if (report.to > nowSeconds + skew) throw new OracleError("wrong-epoch", "the window ends in the future");
    if (!replica && nowSeconds > end + acceptSeconds)
      throw new OracleError("wrong-epoch", `epoch ${epoch} closed for reports ${nowSeconds - end - acceptSeconds} s ago`);
    const oracles = await opts.oracleKeys();
    if (report.kind === "node") {
      if (!opts.isListedNode(hexOfKey(report.reporter))) throw new OracleError("bad-report", "the reporting node is not listed in the consensus");
    } else {
      const session = report.session!;
      if (!oracles.has(hexOfKey(session.oracle))) throw new OracleError("unknown-session", "the session id was not issued by a current oracle");
      if (report.from < session.issuedAt - skew || report.to > session.expiresAt + skew)
        throw new OracleError("expired-session", "the session id is not valid over the report's window: ask an oracle for a new one");
    }
    for (const anchor of report.anchors) await verifyAnchorReceipt(anchor.receipt, opts.receipts, report.to, oracles);
    return epoch;
  };

  const store = async (bytes: Uint8Array, replica: boolean): Promise<{ hash: Hex; duplicate: boolean }> => {
    const report = decode(bytes);
    const hash = report.hash;
    if (opts.store.hasReport(report.hash)) {
      stats.duplicates++;
      return { hash, duplicate: true };
    }
    const epoch = await check(report, replica);
    const peers = replica ? [] : await opts.peers();
    const outcome = opts.store.insertReport(
      { hash: report.hash, epoch, reporter: hexOfKey(report.reporter), kind: report.kind, from: report.from, to: report.to, part: report.part, doc: bytes },
      peers,
      now(),
    );
    if (outcome === "conflict")
      throw new OracleError("report-conflict", "the reporter already sent another report for this window (or an overlapping one): reports are final");
    if (outcome === "duplicate") stats.duplicates++;
    else if (replica) stats.replicas++;
    else stats.accepted++;
    return { hash, duplicate: outcome === "duplicate" };
  };

  const counted = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (err) {
      const kind = err instanceof OracleError ? err.kind : "internal";
      stats.refused[kind] = (stats.refused[kind] ?? 0) + 1;
      throw err;
    }
  };

  return {
    submit: (bytes, options = {}) => counted(() => store(bytes, options.replica ?? false)),
    clock: () => opts.clock(),
    async replicate(docs) {
      let taken = 0;
      for (const doc of docs) {
        try {
          await counted(() => store(doc, true));
          taken++;
        } catch (err) {
          // One bad or conflicting replica is dropped, never refused with the rest: the sender would resend the batch forever.
          if (err instanceof OracleError && (err.kind === "chain-unavailable" || err.kind === "store-failed")) throw err;
          logFailure(opts.logger, err, "accept a replicated usage report", "warn");
        }
      }
      return taken;
    },
    stats: () => ({ ...stats, refused: { ...stats.refused } }),
  };
}

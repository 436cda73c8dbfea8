/**
 * The oracle service, independent of transport: anonymous stream-creation
 * receipts for subscribed producers, viewer session ids for solved puzzles,
 * inclusion proofs, the blind keys it signs with, and replicated rows from
 * other oracles (docs/spec/oracle.md).
 *
 * A receipt request (messages in node/src/stream/oracle-messages.ts) is
 * checked cheapest first, the way authority/service.ts checks a certificate
 * request: the client's rate limit, the single-use challenge, the access
 * certificate (threshold-verified by the injected `verifyCertificate`,
 * against the consensus on a node), the identity's Ed25519 proof over the
 * challenge (and, in blind mode, over the blinded message and key), the
 * identity's rate limit, this node's standing in the oracle set, then the
 * chain's answer to Subscriptions.isSubscribed. Only then is a receipt
 * signed, its row (receipt id → identity) written to the store and queued
 * for every other current oracle, before the receipt leaves.
 *
 * A session request needs no identity: a puzzle seed this oracle set (one
 * use, one minute) and a 32-byte x with SHA-256(seed ⊕ x) below the
 * difficulty (crypto/puzzles.ts, the S/Kademlia dynamic puzzle), rate
 * limited per client key (per circuit on the onion service).
 *
 * Trusts: the Pki for chain facts, its clock, its store, and nothing in a
 * request. `handleMessage` never throws for bad input: every refusal is an
 * `error` message with an OracleError kind.
 */
import { randomBytes as nodeRandomBytes } from "node:crypto";
import { bytesToHex } from "viem";
import { KeyedRateLimiter } from "../node/src/base/token-bucket.js";
import { blindRsaBlindSign, type BlindRsaPrivateKey } from "../node/src/crypto/blind-rsa.js";
import { ed25519PublicKey, ed25519Verify } from "../node/src/crypto/ed25519.js";
import { verifyDynamicPuzzle } from "../node/src/crypto/puzzles.js";
import type { Pki } from "../node/src/chain/pki.js";
import type { VerifiedCertificate } from "../node/src/authority/certificate.js";
import { childLogger, logFailure, type Logger } from "../node/src/log.js";
import {
  decodeOracleRequest,
  encodeOracleMessage,
  MAX_REWARD_EPOCHS,
  receiptProofMessage,
  type ListedBlindKey,
  type OracleRequest,
  type OracleResponse,
} from "../node/src/stream/oracle-messages.js";
import { DEFAULT_RECEIPT_VALIDITY_SECONDS, FormatFlag, signReceipt, type StreamParams } from "../node/src/stream/receipt.js";
import { DEFAULT_SESSION_VALIDITY_SECONDS, signSessionId } from "../node/src/stream/session.js";
import { OracleError } from "./errors.js";
import { openIssuanceRow, signIssuanceRow } from "./replication.js";
import type { Settlement } from "./settlement.js";
import type { IssuanceRow, OracleStore } from "./store.js";
import type { UsageIntake } from "./usage.js";

export interface OracleLimits {
  challengeTtlMs: number;
  maxOutstandingChallenges: number;
  receiptValiditySeconds: number;
  sessionValiditySeconds: number;
  /** Leading zero bits of SHA-256(seed ⊕ x) a session puzzle asks (16: ~65,000 hashes, tens of ms). */
  puzzleDifficulty: number;
  puzzleTtlMs: number;
  maxOutstandingPuzzles: number;
  /** Sustained requests per client key (a circuit) and per identity, per minute. */
  requestsPerMinute: number;
  burst: number;
  maxTrackedClients: number;
}

export const DEFAULT_ORACLE_LIMITS: OracleLimits = {
  challengeTtlMs: 60_000,
  maxOutstandingChallenges: 10_000,
  receiptValiditySeconds: DEFAULT_RECEIPT_VALIDITY_SECONDS,
  sessionValiditySeconds: DEFAULT_SESSION_VALIDITY_SECONDS,
  puzzleDifficulty: 16,
  puzzleTtlMs: 60_000,
  maxOutstandingPuzzles: 10_000,
  requestsPerMinute: 30,
  burst: 10,
  maxTrackedClients: 100_000,
};

/** What a linkable receipt allows unless configured otherwise: 8 Mbit/s, 4 h, audio+video in MPEG-TS. */
export const DEFAULT_RECEIPT_PARAMS: StreamParams = {
  bitrateKbps: 8000,
  maxDurationSeconds: 4 * 3600,
  formatFlags: FormatFlag.video | FormatFlag.audio | FormatFlag.mpegts,
};

/** A blind key this oracle signs with (published on chain by keys.ts). */
export interface ActiveBlindKey extends ListedBlindKey {
  privateKey: BlindRsaPrivateKey;
}

export interface OracleServiceOptions {
  /** This node's Ed25519 identity seed: it signs receipts, session ids and rows. */
  nodeSecretKey: Uint8Array;
  pki: Pick<Pki, "isSubscribed" | "currentOracles">;
  /** Threshold check of an access certificate (verifyAccessCertificateWithConsensus on a node); throws CertificateError. */
  verifyCertificate: (cert: Uint8Array, nowMs: number) => VerifiedCertificate;
  store: OracleStore;
  /** The blind keys currently offered. */
  blindKeys?: () => readonly ActiveBlindKey[];
  params?: StreamParams;
  limits?: Partial<OracleLimits>;
  /** Clock in ms; default Date.now. */
  now?: () => number;
  randomBytes?: (n: number) => Uint8Array;
  /** Called after a linkable receipt is stored (the batcher may commit early). */
  onIssued?: () => void;
  /** Usage intake and reward proofs (usage.ts, settlement.ts); without them those requests are refused "not-settled". */
  usage?: UsageIntake;
  settlement?: Pick<Settlement, "proof">;
  logger?: Logger;
}

export interface OracleRequestContext {
  /** The first rate-limit key ("circuit:<id>", "node:<hex>"). */
  client?: string;
  /** The proven node identity of the sender, for `replicate` (node links only). */
  peer?: Uint8Array | null;
}

export interface OracleStatus {
  requests: number;
  receipts: { linkable: number; blind: number };
  sessions: number;
  replicasReceived: number;
  refusals: Record<string, number>;
}

export interface OracleService {
  readonly nodeKey: Uint8Array;
  handleMessage(bytes: Uint8Array, ctx?: OracleRequestContext): Promise<Uint8Array>;
  handle(request: OracleRequest, ctx?: OracleRequestContext): Promise<OracleResponse>;
  status(): OracleStatus;
}

/** A request budget per key (client, identity); a spent one is refused "rate-limited" with when to retry. */
function requestBudgets(limits: OracleLimits): { take(key: string, now: number, what: string): void } {
  const budgets = new KeyedRateLimiter({ requestsPerMinute: limits.requestsPerMinute, burst: limits.burst, maxKeys: limits.maxTrackedClients });
  return {
    take(key, now, what) {
      const retryAfterMs = budgets.take(key, now);
      if (retryAfterMs > 0) throw new OracleError("rate-limited", `too many requests from ${what}: retry in ${Math.ceil(retryAfterMs / 1000)} s`, { retryAfterMs });
    },
  };
}

/** Single-use tokens with one TTL (insertion order is expiry order). */
class OneShot<T> {
  private readonly items = new Map<string, { expires: number; used: boolean; value: T }>();
  constructor(
    private readonly max: number,
    private readonly what: string,
  ) {}
  add(key: string, expires: number, value: T, now: number): void {
    this.sweep(now);
    if (this.items.size >= this.max) throw new OracleError("busy", `too many ${this.what}s outstanding: retry shortly`, { retryAfterMs: 1000 });
    this.items.set(key, { expires, used: false, value });
  }
  spend(key: string, now: number): T {
    const item = this.items.get(key);
    if (!item) throw new OracleError("unknown-challenge", `this oracle did not set that ${this.what} (or it expired): request a new one`);
    if (item.used) throw new OracleError("challenge-reused", `that ${this.what} was already answered: request a new one`);
    item.used = true;
    if (item.expires <= now) throw new OracleError("challenge-expired", `the ${this.what} expired: request a new one`);
    return item.value;
  }
  private sweep(now: number): void {
    for (const [k, v] of this.items) {
      if (v.expires > now) break;
      this.items.delete(k);
    }
  }
}

export function createOracleService(opts: OracleServiceOptions): OracleService {
  const limits: OracleLimits = { ...DEFAULT_ORACLE_LIMITS, ...opts.limits };
  const now = opts.now ?? Date.now;
  const random = opts.randomBytes ?? ((n: number) => new Uint8Array(nodeRandomBytes(n)));
  const log = childLogger(opts.logger, "oracle");
  const nodeKey = ed25519PublicKey(opts.nodeSecretKey);
  const nodeKeyHex = bytesToHex(nodeKey).slice(2);
  const params = opts.params ?? DEFAULT_RECEIPT_PARAMS;
  const clients = requestBudgets(limits);
  const identities = requestBudgets(limits);
  const challenges = new OneShot<null>(limits.maxOutstandingChallenges, "challenge");
  const puzzles = new OneShot<number>(limits.maxOutstandingPuzzles, "puzzle");
  const status: OracleStatus = { requests: 0, receipts: { linkable: 0, blind: 0 }, sessions: 0, replicasReceived: 0, refusals: {} };

  const chain = async <T>(read: () => Promise<T>): Promise<T> => {
    try {
      return await read();
    } catch (err) {
      if (err instanceof OracleError) throw err;
      throw new OracleError("chain-unavailable", "the oracle cannot read the chain right now: retry later", { cause: err, retryAfterMs: 5_000 });
    }
  };

  /** Current oracle node keys (hex, no 0x); throws not-an-oracle when this node is not one. */
  const oracleKeys = async (requireSelf: boolean): Promise<Set<string>> => {
    const set = await chain(() => opts.pki.currentOracles());
    const keys = new Set(set.members.map((m) => m.nodeKey.toLowerCase().replace(/^0x/, "")));
    if (requireSelf && !keys.has(nodeKeyHex)) {
      throw new OracleError(
        "not-an-oracle",
        `this node (${nodeKeyHex.slice(0, 16)}…) is not in the current oracle set: its receipts would not count; ask another oracle`,
      );
    }
    return keys;
  };

  const store = (row: Omit<IssuanceRow, "doc" | "oracle">, peers: Set<string>): void => {
    const doc = signIssuanceRow(row, opts.nodeSecretKey);
    opts.store.insert(
      { ...row, oracle: nodeKeyHex, doc },
      [...peers].filter((p) => p !== nodeKeyHex),
      now(),
    );
  };

  const receipt = async (req: Extract<OracleRequest, { t: "receipt-request" }>, ctx: OracleRequestContext): Promise<OracleResponse> => {
    const t = now();
    if (ctx.client !== undefined) clients.take(`client:${ctx.client}`, t, "this client");
    challenges.spend(bytesToHex(req.nonce), t);
    let cert: VerifiedCertificate;
    try {
      cert = opts.verifyCertificate(req.cert, t);
    } catch (err) {
      throw new OracleError("bad-certificate", `the access certificate does not verify: ${(err as Error).message}`, { cause: err });
    }
    const blind = req.blinded && req.key ? { blinded: req.blinded, key: req.key } : undefined;
    if (!ed25519Verify(cert.key, receiptProofMessage(nodeKey, req.nonce, blind), req.proof)) {
      throw new OracleError("bad-proof", "the proof does not verify under the certificate's identity key for this challenge");
    }
    identities.take(`identity:${cert.identityId}`, t, "this identity");
    const peers = await oracleKeys(true);
    const nowSeconds = Math.floor(t / 1000);
    if (!(await chain(() => opts.pki.isSubscribed(cert.identityId, nowSeconds)))) {
      throw new OracleError("not-subscribed", `identity ${cert.identity} has no paid subscription on chain`, {
        fix: "subscribe (psp subscription buy) and retry",
      });
    }
    if (blind) {
      const key = (opts.blindKeys?.() ?? []).find((k) => k.keyId.toLowerCase() === blind.key.toLowerCase());
      if (!key || nowSeconds < key.validFrom || nowSeconds >= key.validUntil) {
        throw new OracleError("unknown-key", `this oracle does not sign with key ${blind.key} now: list its keys (keys-request)`);
      }
      let sig: Uint8Array;
      try {
        sig = blindRsaBlindSign(key.privateKey, blind.blinded);
      } catch (err) {
        throw new OracleError("malformed-request", `blinded message: ${(err as Error).message}`, { cause: err });
      }
      store(
        {
          rowId: bytesToHex(random(16)).slice(2),
          kind: "blind",
          receiptHash: null,
          identity: cert.identity,
          identityId: cert.identityId,
          issuedAt: nowSeconds,
          expiresAt: key.validUntil,
          keyId: key.keyId,
        },
        peers,
      );
      status.receipts.blind++;
      return { t: "blind-sig", key: key.keyId, sig };
    }
    const issued = signReceipt({
      params,
      issuedAt: nowSeconds,
      expiresAt: nowSeconds + limits.receiptValiditySeconds,
      secretKey: opts.nodeSecretKey,
      id: random(16),
    });
    store(
      {
        rowId: bytesToHex(issued.id).slice(2),
        kind: "linkable",
        receiptHash: issued.receiptHash,
        identity: cert.identity,
        identityId: cert.identityId,
        issuedAt: issued.issuedAt,
        expiresAt: issued.expiresAt,
        keyId: null,
      },
      peers,
    );
    status.receipts.linkable++;
    opts.onIssued?.();
    return { t: "receipt", receipt: issued.bytes };
  };

  const handle = async (request: OracleRequest, ctx: OracleRequestContext = {}): Promise<OracleResponse> => {
    const t = now();
    switch (request.t) {
      case "challenge-request": {
        if (ctx.client !== undefined) clients.take(`client:${ctx.client}`, t, "this client");
        const nonce = random(32);
        const expires = t + limits.challengeTtlMs;
        challenges.add(bytesToHex(nonce), expires, null, t);
        return { t: "challenge", oracle: nodeKey, nonce, expires };
      }
      case "receipt-request":
        return await receipt(request, ctx);
      case "keys-request": {
        const nowSeconds = Math.floor(t / 1000);
        const keys = (opts.blindKeys?.() ?? []).filter((k) => nowSeconds < k.validUntil).map(({ privateKey: _p, ...listed }) => listed);
        return { t: "keys", keys };
      }
      case "proof-request": {
        const inclusion = opts.store.inclusion(request.hash);
        if (inclusion === undefined) throw new OracleError("unknown-receipt", `this oracle holds no receipt with hash ${request.hash}`);
        if (inclusion === null)
          throw new OracleError("not-committed", "the receipt's batch has not landed on chain yet: retry shortly", { retryAfterMs: 5_000 });
        return { t: "inclusion", ...inclusion };
      }
      case "puzzle-request": {
        if (ctx.client !== undefined) clients.take(`client:${ctx.client}`, t, "this client");
        const seed = random(32);
        const expires = t + limits.puzzleTtlMs;
        puzzles.add(bytesToHex(seed), expires, limits.puzzleDifficulty, t);
        return { t: "puzzle", seed, difficulty: limits.puzzleDifficulty, expires };
      }
      case "session-request": {
        if (ctx.client !== undefined) clients.take(`client:${ctx.client}`, t, "this client");
        const difficulty = puzzles.spend(bytesToHex(request.seed), t);
        if (!verifyDynamicPuzzle(request.seed, request.x, difficulty))
          throw new OracleError("pow-invalid", `the solution does not reach difficulty ${difficulty}`);
        await oracleKeys(true);
        const nowSeconds = Math.floor(t / 1000);
        const session = signSessionId({
          issuedAt: nowSeconds,
          expiresAt: nowSeconds + limits.sessionValiditySeconds,
          secretKey: opts.nodeSecretKey,
          viewerKey: request.viewerKey,
        });
        status.sessions++;
        return { t: "session", session: session.bytes };
      }
      case "replicate": {
        if (!ctx.peer) throw new OracleError("bad-replica", "rows are replicated over authenticated node links only");
        const keys = await oracleKeys(false);
        if (!keys.has(bytesToHex(ctx.peer).slice(2))) throw new OracleError("bad-replica", "the sender is not a current oracle");
        // A row that does not open (its issuer left the oracle set, say) is logged and dropped, never
        // refused with the rest: the sender would retry the whole message forever.
        let n = 0;
        for (const doc of request.rows) {
          try {
            opts.store.insert(openIssuanceRow(doc, keys));
            n++;
          } catch (err) {
            if (!(err instanceof OracleError) || err.kind !== "bad-replica") throw err;
            status.refusals["bad-replica"] = (status.refusals["bad-replica"] ?? 0) + 1;
            logFailure(log, err, "accept a replicated row", "warn", { client: ctx.client });
          }
        }
        status.replicasReceived += n;
        return { t: "ack", n: request.rows.length };
      }
      case "usage-report": {
        if (!opts.usage) throw new OracleError("not-settled", "this oracle takes no usage reports");
        // A node reports over its own link; a viewer through a circuit, rate limited per circuit.
        if (!ctx.peer && ctx.client !== undefined) clients.take(`client:${ctx.client}`, t, "this client");
        const { hash, duplicate } = await opts.usage.submit(request.report);
        return { t: "report-ack", hash, dup: duplicate };
      }
      case "epoch-clock-request": {
        if (!opts.usage) throw new OracleError("not-settled", "this oracle takes no usage reports");
        const clock = await opts.usage.clock();
        return { t: "epoch-clock", genesis: clock.genesis, length: clock.epochLength };
      }
      case "reports-replicate": {
        if (!opts.usage) throw new OracleError("not-settled", "this oracle takes no usage reports");
        if (!ctx.peer) throw new OracleError("bad-replica", "reports are replicated over authenticated node links only");
        const keys = await oracleKeys(false);
        if (!keys.has(bytesToHex(ctx.peer).slice(2))) throw new OracleError("bad-replica", "the sender is not a current oracle");
        await opts.usage.replicate(request.reports);
        return { t: "ack", n: request.reports.length };
      }
      case "reward-proof-request": {
        if (ctx.client !== undefined) clients.take(`client:${ctx.client}`, t, "this client");
        if (!opts.settlement) throw new OracleError("not-settled", "this oracle does not settle rewards");
        const p = await opts.settlement.proof(request.account, request.epoch);
        return { t: "reward-proof", epoch: p.epoch, root: p.root, amount: p.amount, proof: p.proof, epochs: p.epochs.slice(-MAX_REWARD_EPOCHS) };
      }
    }
  };

  return {
    nodeKey,
    handle,
    status: () => ({ ...status, receipts: { ...status.receipts }, refusals: { ...status.refusals } }),
    async handleMessage(bytes, ctx = {}) {
      status.requests++;
      try {
        return encodeOracleMessage(await handle(decodeOracleRequest(bytes), ctx));
      } catch (err) {
        const refusal =
          err instanceof OracleError
            ? err
            : new OracleError("malformed-request", `request refused: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        status.refusals[refusal.kind] = (status.refusals[refusal.kind] ?? 0) + 1;
        const level = !(err instanceof OracleError) ? "error" : refusal.kind === "chain-unavailable" || refusal.kind === "store-failed" ? "warn" : "debug";
        logFailure(log, level === "error" ? err : refusal, "answer oracle request", level, { client: ctx.client });
        return encodeOracleMessage({
          t: "error",
          kind: refusal.kind,
          message: refusal.message,
          ...(refusal.retryAfterMs !== undefined ? { retryAfterMs: Math.ceil(refusal.retryAfterMs) } : {}),
        });
      }
    },
  };
}

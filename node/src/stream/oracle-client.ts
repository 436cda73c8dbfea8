/**
 * The producer's and viewer's side of the oracle protocol: a linkable or
 * blind stream-creation receipt, its inclusion proof, and a viewer session
 * id, each asked of a current oracle through a 3-hop circuit ending at it
 * (onion service "oracle"), so the oracle never learns the asker's address.
 *
 * Owns the exchanges (messages in oracle-messages.ts):
 * - linkable: challenge → receipt-request { cert, nonce, proof } → receipt;
 *   the receipt is checked (signature by the oracle that set the challenge)
 *   before it is returned;
 * - blind: keys-request → pick a key valid now → prepareBlindReceipt (random
 *   token, RFC 9474 blind) → challenge → receipt-request { ..., blinded, key }
 *   → blind-sig → finalize (unblind and verify under the key). The oracle
 *   sees the blinded message only; the proof binds blinded message and key;
 * - session: a fresh Ed25519 viewer keypair → puzzle-request → solve
 *   (crypto/puzzles.ts dynamic puzzle) → session-request with the public key →
 *   session id (checked: signed by that oracle, naming that key). The secret
 *   key stays with the viewer: it signs the viewer's usage reports.
 * A session request carries no identity and uses a circuit of its own.
 *
 * Trusts: the consensus for who the oracles are (the NodeFlag.oracle
 * entries), the oracle for nothing it could forge (every answer is verified
 * here); the chain checks a blind key's record at the landing node.
 */
import { bytesToHex, type Address } from "viem";
import { bytesEqual } from "../base/bytes.js";
import { ed25519Sign, generateEd25519KeyPair } from "../crypto/ed25519.js";
import { solveDynamicPuzzle } from "../crypto/puzzles.js";
import { NodeFlag } from "../directory/config.js";
import type { VerifiedConsensus } from "../directory/consensus.js";
import { createStreamRpc, StreamRpcError, type RpcStream } from "../onion/stream-rpc.js";
import { OracleError } from "./oracle-errors.js";
import {
  decodeOracleResponse,
  encodeOracleMessage,
  MAX_ORACLE_MESSAGE_BYTES,
  receiptProofMessage,
  refusalError,
  type ListedBlindKey,
  type OracleRequest,
  type OracleResponse,
  type RewardProofAnswer,
} from "./oracle-messages.js";
import {
  blindKeyId,
  decodeReceipt,
  finishBlindReceipt,
  prepareBlindReceipt,
  type BlindReceipt,
  type LinkableReceipt,
  type ReceiptInclusion,
} from "./receipt.js";
import { decodeSessionId, type SessionId } from "./session.js";

/** The onion service oracles offer. */
export type { RewardProofAnswer } from "./oracle-messages.js";

export const ORACLE_SERVICE = "oracle";
export const DEFAULT_ORACLE_TIMEOUT_MS = 20_000;
/** Hardest session puzzle a client solves (an oracle asking more is refused "bad-response"). */
export const MAX_SESSION_PUZZLE_DIFFICULTY = 24;

export interface OracleClientDeps {
  consensus: () => VerifiedConsensus | undefined;
  /** Opens a stream to `service` at the end of a fresh circuit whose last hop is `lastHop` (closing it closes the circuit). */
  openStream: (service: string, lastHop: Uint8Array) => Promise<RpcStream>;
  /** The client's access certificate (bytes). */
  certificate: () => Promise<Uint8Array>;
  /** The client's identity seed (signs the proof over the oracle's challenge). */
  identitySecretKey: () => Uint8Array;
  timeoutMs?: number;
}

export interface OracleReceiptOptions {
  /** "linkable" (default): the oracle signs a receipt it can link to the producer. "blind": RFC 9474, it cannot. */
  mode?: "linkable" | "blind";
  /** A specific oracle (its identity key); default a random one of the consensus's oracles. */
  oracle?: Uint8Array;
}

export type ObtainedReceipt =
  { mode: "linkable"; receipt: LinkableReceipt; oracle: Uint8Array } | { mode: "blind"; receipt: BlindReceipt; key: ListedBlindKey; oracle: Uint8Array };

export interface OracleClient {
  /** The oracles the held consensus lists (identity keys). */
  oracles(): Uint8Array[];
  receipt(options?: OracleReceiptOptions): Promise<ObtainedReceipt>;
  /** The receipt's inclusion proof from the oracle that issued it (OracleError "not-committed" until its batch lands). */
  inclusion(receipt: LinkableReceipt): Promise<ReceiptInclusion>;
  /** A viewer session id from an oracle, for a solved puzzle; unrelated to any identity. */
  session(options?: { oracle?: Uint8Array }): Promise<ViewerSession>;
  /**
   * An account's cumulative reward leaf and Merkle proof under the agreed root
   * of `epoch` (default: the newest agreed one), with its per-epoch earnings.
   * The caller checks it against the chain's root (rewards/merkle.ts verifyRewardProof).
   */
  rewardProof(options: { account: Address; epoch?: number; oracle?: Uint8Array }): Promise<RewardProofAnswer>;
  /** The reward epochs' clock (BandwidthRewards' genesis and epoch length), as an oracle reads it from the chain. */
  epochClock(options?: { oracle?: Uint8Array }): Promise<{ genesis: number; epochLength: number }>;
  /** Hands a signed usage report (a viewer's, rewards/report.ts) to an oracle; resolves once it is stored. */
  report(report: Uint8Array, options?: { oracle?: Uint8Array }): Promise<{ duplicate: boolean }>;
}

/** A session id and the viewer key it names. */
export interface ViewerSession {
  /** The session id's bytes, as shown to a distribution node in ATTACH. */
  session: Uint8Array;
  /** The viewer's ephemeral Ed25519 seed, whose public key the session names: it signs the viewer's usage reports. */
  secretKey: Uint8Array;
  /** The decoded session id (times, sid, oracle, viewer key). */
  id: SessionId;
}

export function createOracleClient(deps: OracleClientDeps): OracleClient {
  const timeoutMs = deps.timeoutMs ?? DEFAULT_ORACLE_TIMEOUT_MS;

  const oracles = (): Uint8Array[] =>
    (deps.consensus()?.entries ?? []).filter((e) => (e.flags & NodeFlag.oracle) !== 0 && (e.flags & NodeFlag.onion) !== 0).map((e) => e.identity);

  const pick = (wanted?: Uint8Array): Uint8Array => {
    const listed = oracles();
    if (wanted) {
      if (!listed.some((k) => bytesEqual(k, wanted))) throw new OracleError("unreachable", `${bytesToHex(wanted)} is not an oracle the consensus lists`);
      return wanted;
    }
    if (listed.length === 0) throw new OracleError("unreachable", "the consensus lists no oracle yet: retry once the network has one", { retryAfterMs: 5_000 });
    return listed[Math.floor(Math.random() * listed.length)]!;
  };

  /** One conversation with one oracle on one circuit. */
  const session = async <T>(oracle: Uint8Array, run: (ask: (req: OracleRequest) => Promise<OracleResponse>) => Promise<T>): Promise<T> => {
    let stream: RpcStream;
    try {
      stream = await deps.openStream(ORACLE_SERVICE, oracle);
    } catch (err) {
      throw new OracleError("unreachable", `no circuit to oracle ${bytesToHex(oracle).slice(0, 18)}…: ${(err as Error).message}`, { cause: err });
    }
    const rpc = createStreamRpc(stream, { maxMessageBytes: MAX_ORACLE_MESSAGE_BYTES });
    const ask = async (req: OracleRequest): Promise<OracleResponse> => {
      let bytes: Uint8Array;
      try {
        bytes = await rpc.request(encodeOracleMessage(req), { timeoutMs });
      } catch (err) {
        const retryAfterMs = err instanceof StreamRpcError && err.kind === "busy" ? { retryAfterMs: 1000 } : {};
        throw new OracleError("unreachable", `the oracle did not answer: ${(err as Error).message}`, { cause: err, ...retryAfterMs });
      }
      const response = decodeOracleResponse(bytes);
      if (response.t === "error") throw refusalError(response);
      return response;
    };
    try {
      return await run(ask);
    } finally {
      rpc.close();
      stream.close();
    }
  };

  const expect = <K extends OracleResponse["t"]>(r: OracleResponse, t: K): Extract<OracleResponse, { t: K }> => {
    if (r.t !== t) throw new OracleError("bad-response", `expected "${t}", got "${r.t}"`);
    return r as Extract<OracleResponse, { t: K }>;
  };

  return {
    oracles,

    async receipt(options = {}) {
      const oracle = pick(options.oracle);
      const cert = await deps.certificate();
      const secretKey = deps.identitySecretKey();
      return await session(oracle, async (ask) => {
        if (options.mode === "blind") {
          const nowSeconds = Math.floor(Date.now() / 1000);
          const keys = expect(await ask({ t: "keys-request" }), "keys").keys.filter((k) => k.validFrom <= nowSeconds && nowSeconds < k.validUntil);
          const key = keys.sort((a, b) => b.validUntil - a.validUntil)[0];
          if (!key) throw new OracleError("unknown-key", "the oracle lists no blind key valid now");
          if (blindKeyId(key.spki) !== key.keyId.toLowerCase()) throw new OracleError("bad-response", "a listed blind key does not hash to its id");
          const request = prepareBlindReceipt(key.spki);
          const challenge = expect(await ask({ t: "challenge-request" }), "challenge");
          if (!bytesEqual(challenge.oracle, oracle))
            throw new OracleError("bad-response", "the challenge names another oracle than the one at the end of the circuit");
          const blind = { blinded: request.blindedMsg, key: key.keyId };
          const proof = ed25519Sign(secretKey, receiptProofMessage(challenge.oracle, challenge.nonce, blind));
          const answer = expect(await ask({ t: "receipt-request", cert, nonce: challenge.nonce, proof, ...blind }), "blind-sig");
          if (answer.key.toLowerCase() !== key.keyId.toLowerCase()) throw new OracleError("bad-response", "the oracle signed with another key than asked");
          let receipt: BlindReceipt;
          try {
            receipt = finishBlindReceipt(request, answer.sig);
          } catch (err) {
            throw new OracleError("bad-response", `the blind signature does not verify: ${(err as Error).message}`, { cause: err });
          }
          return { mode: "blind" as const, receipt, key, oracle };
        }
        const challenge = expect(await ask({ t: "challenge-request" }), "challenge");
        if (!bytesEqual(challenge.oracle, oracle))
          throw new OracleError("bad-response", "the challenge names another oracle than the one at the end of the circuit");
        const proof = ed25519Sign(secretKey, receiptProofMessage(challenge.oracle, challenge.nonce));
        const answer = expect(await ask({ t: "receipt-request", cert, nonce: challenge.nonce, proof }), "receipt");
        let receipt: LinkableReceipt;
        try {
          receipt = decodeReceipt(answer.receipt);
        } catch (err) {
          throw new OracleError("bad-response", `the receipt does not verify: ${(err as Error).message}`, { cause: err });
        }
        if (!bytesEqual(receipt.oracle, oracle)) throw new OracleError("bad-response", "the receipt is signed by another key than the oracle's");
        return { mode: "linkable" as const, receipt, oracle };
      });
    },

    async inclusion(receipt) {
      return await session(pick(receipt.oracle), async (ask) => {
        const r = expect(await ask({ t: "proof-request", hash: receipt.receiptHash }), "inclusion");
        return { batchId: r.batchId, proof: r.proof };
      });
    },

    async rewardProof(options) {
      return await session(pick(options.oracle), async (ask) => {
        const { t: _t, ...answer } = expect(await ask({ t: "reward-proof-request", account: options.account, ...(options.epoch === undefined ? {} : { epoch: options.epoch }) }), "reward-proof");
        if (options.epoch !== undefined && answer.epoch !== options.epoch) throw new OracleError("bad-response", `asked for epoch ${options.epoch}, got ${answer.epoch}`);
        return answer;
      });
    },

    async epochClock(options = {}) {
      return await session(pick(options.oracle), async (ask) => {
        const clock = expect(await ask({ t: "epoch-clock-request" }), "epoch-clock");
        return { genesis: clock.genesis, epochLength: clock.length };
      });
    },

    async report(report, options = {}) {
      return await session(pick(options.oracle), async (ask) => ({ duplicate: expect(await ask({ t: "usage-report", report }), "report-ack").dup }));
    },

    async session(options = {}) {
      const oracle = pick(options.oracle);
      const viewer = generateEd25519KeyPair();
      return await session(oracle, async (ask) => {
        const puzzle = expect(await ask({ t: "puzzle-request" }), "puzzle");
        if (puzzle.difficulty > MAX_SESSION_PUZZLE_DIFFICULTY)
          throw new OracleError("bad-response", `the oracle asks difficulty ${puzzle.difficulty}, over ${MAX_SESSION_PUZZLE_DIFFICULTY}`);
        const { x } = solveDynamicPuzzle(puzzle.seed, { difficulty: puzzle.difficulty });
        const answer = expect(await ask({ t: "session-request", seed: puzzle.seed, x, viewerKey: viewer.publicKey }), "session");
        let sid: SessionId;
        try {
          sid = decodeSessionId(answer.session);
        } catch (err) {
          throw new OracleError("bad-response", `the session id does not verify: ${(err as Error).message}`, { cause: err });
        }
        if (!bytesEqual(sid.oracle, oracle)) throw new OracleError("bad-response", "the session id is signed by another key than the oracle's");
        if (!bytesEqual(sid.viewerKey, viewer.publicKey))
          throw new OracleError("bad-response", "the session id names another viewer key than the one asked for");
        return { session: sid.bytes, secretKey: viewer.secretKey, id: sid };
      });
    },
  };
}

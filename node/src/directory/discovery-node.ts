/**
 * The discovery node: collects descriptors, votes each period, exchanges
 * votes and signatures with the other discovery nodes, and publishes the
 * signed consensus.
 *
 * A pure state machine (no I/O, no clock): the driver feeds it descriptors,
 * reachability results, votes and signatures from the network and the time,
 * and carries out the actions it returns (send a vote or signature to every
 * other discovery node, fetch missing votes, serve the published consensus).
 * The round for the consensus valid from T runs (schedule.ts):
 *   voteAt     build and sign this node's vote        -> broadcast-vote
 *   fetchAt    ask peers for votes still missing      -> fetch-votes
 *   computeAt  compute the consensus, sign the body   -> broadcast-signature
 *   T          publish with the signatures held (>=K) -> consensus-published
 * Signatures that arrive later re-publish with more signers.
 *
 * Flag assignment (this node's view; the consensus takes the majority):
 *   running    the node's id is in the latest reachability set
 *   valid      a fresh verified descriptor of a node registered and staked
 *   fast       advertised bandwidth >= fastMinBandwidth
 *   stable     listed continuously by this node for >= stableMinUptimeMs
 *   guard      running, fast, stable and onion (the reachability test is from outside), never internal
 *   internal   the verified descriptor says internal (an interim or final hop only)
 *   onion / discovery / authority / oracle  role claimed in the descriptor and held on chain
 *   commercial the descriptor claims application ids and the chain (chainApps)
 *              confirms at least one; the vote entry carries the confirmed ids
 * A vote lists only nodes that are running and valid, and never bridges.
 *
 * Trusts: the injected chain view and reachability results; nothing in the
 * bytes it is given.
 */
import { ed25519PublicKey } from "../crypto/ed25519.js";
import { DEFAULT_DESCRIPTOR_MAX_AGE_MS, DEFAULT_FLAG_THRESHOLDS, DEFAULT_LIMITS, DEFAULT_MAX_SKEW_MS, MAX_DISCOVERY_NODES, NodeFlag, ROLE_FLAGS, ChainRole, bytesToHexFast, majorityThreshold, resolveSchedule } from "./config.js";
import type { DirectoryLimits, FlagThresholds, VotingSchedule } from "./config.js";
import { assembleConsensus, checkConsensusSignature, computeConsensus, decodeConsensusSignature, encodeConsensusSignature, signConsensus } from "./consensus.js";
import type { ComputedConsensus, ConsensusSignature } from "./consensus.js";
import { verifyDescriptor } from "./descriptor.js";
import type { Descriptor } from "./descriptor.js";
import { DirectoryError } from "./errors.js";
import type { DirectoryErrorKind } from "./errors.js";
import { bytesEqual } from "../base/bytes.js";
import { currentValidAfter, nextValidAfter, roundTimes } from "./schedule.js";
import { createVote, openVote } from "./vote.js";
import type { Vote, VoteEntry } from "./vote.js";

/**
 * The chain as this node sees it: the role bits a node currently holds, or
 * undefined when it is not registered and staked. Injected so this stays I/O free.
 */
export type ChainRoles = (identity: Uint8Array) => number | undefined;

/**
 * The chain's answer to a commercial claim: of the application ids a
 * descriptor claims, those the node serves now (CommercialNodes.isServing).
 * Injected and synchronous like ChainRoles; absent, no claim is confirmed.
 */
export type ChainApps = (identity: Uint8Array, claimed: readonly Uint8Array[]) => Uint8Array[];

export interface DiscoveryNodeOptions {
  /** This discovery node's 32-byte Ed25519 seed. */
  secretKey: Uint8Array;
  /** Public keys of the whole discovery set (N), including this node's. */
  discoverySet: readonly Uint8Array[];
  chainRoles: ChainRoles;
  /** Confirms descriptors' application claims (commercial nodes); without it no node gets the commercial flag. */
  chainApps?: ChainApps;
  schedule?: Partial<VotingSchedule>;
  thresholds?: Partial<FlagThresholds>;
  /** Signatures needed before publishing (K); default a strict majority of N. */
  threshold?: number;
  descriptorMaxAgeMs?: number;
  maxSkewMs?: number;
  limits?: Partial<DirectoryLimits>;
}

export type DirectoryAction =
  | { type: "broadcast-vote"; validAfter: number; vote: Uint8Array }
  | { type: "fetch-votes"; validAfter: number; voters: Uint8Array[] }
  | { type: "broadcast-signature"; validAfter: number; signature: Uint8Array }
  | { type: "consensus-published"; validAfter: number; consensus: Uint8Array; signers: number; nodes: number }
  | { type: "consensus-failed"; validAfter: number; kind: DirectoryErrorKind; message: string }
  | { type: "consensus-disagreement"; validAfter: number; signer: Uint8Array; theirDigest: Uint8Array; ourDigest: Uint8Array };

interface Round {
  validAfter: number;
  voted: boolean;
  fetched: boolean;
  computed?: ComputedConsensus;
  computeFailed: boolean;
  votes: Map<string, Vote>;
  /** Valid signatures over our computed body, by signer. */
  signatures: Map<string, ConsensusSignature>;
  /** Signature messages that arrived before we computed. */
  early: Map<string, ReturnType<typeof decodeConsensusSignature>>;
  publishedSigners: number;
  failureReported: boolean;
}

export class DiscoveryNode {
  readonly publicKey: Uint8Array;
  readonly schedule: VotingSchedule;
  readonly threshold: number;
  private readonly secretKey: Uint8Array;
  private readonly discoveryKeys: Map<string, Uint8Array>;
  private readonly chainRoles: ChainRoles;
  private readonly chainApps: ChainApps | undefined;
  private readonly thresholds: FlagThresholds;
  private readonly limits: DirectoryLimits;
  private readonly maxAgeMs: number;
  private readonly maxSkewMs: number;
  private readonly descriptors = new Map<string, Descriptor>();
  private reachable = new Set<string>();
  private readonly listedSince = new Map<string, number>();
  private readonly rounds = new Map<number, Round>();
  private published?: { validAfter: number; bytes: Uint8Array };

  constructor(options: DiscoveryNodeOptions) {
    this.secretKey = options.secretKey;
    this.publicKey = ed25519PublicKey(options.secretKey);
    this.schedule = resolveSchedule(options.schedule);
    this.thresholds = { ...DEFAULT_FLAG_THRESHOLDS, ...options.thresholds };
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.maxAgeMs = options.descriptorMaxAgeMs ?? DEFAULT_DESCRIPTOR_MAX_AGE_MS;
    this.maxSkewMs = options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
    this.chainRoles = options.chainRoles;
    this.chainApps = options.chainApps;
    if (typeof this.chainRoles !== "function") throw new DirectoryError("bad-config", "chainRoles must be a function (identity) => role bits | undefined");
    this.discoveryKeys = new Map();
    for (const key of options.discoverySet ?? []) {
      if (!(key instanceof Uint8Array) || key.length !== 32) throw new DirectoryError("bad-config", "discoverySet holds 32-byte Ed25519 public keys");
      this.discoveryKeys.set(bytesToHexFast(key), key);
    }
    const n = this.discoveryKeys.size;
    if (n < 1 || n > MAX_DISCOVERY_NODES) throw new DirectoryError("bad-config", `the discovery set must have 1..${MAX_DISCOVERY_NODES} distinct keys`);
    if (!this.discoveryKeys.has(bytesToHexFast(this.publicKey))) throw new DirectoryError("bad-config", "this node's own key must be in discoverySet");
    this.threshold = options.threshold ?? majorityThreshold(n);
    if (!Number.isInteger(this.threshold) || this.threshold < 1 || this.threshold > n) throw new DirectoryError("bad-config", `threshold must be in 1..${n}`);
  }

  get discoverySetSize(): number {
    return this.discoveryKeys.size;
  }

  /**
   * Accepts a descriptor a node reported. Keeps the newest per node (an older
   * or equal publication time than the one held is ignored and returns false).
   * Throws DirectoryError (see verifyDescriptor) for a refused descriptor.
   */
  submitDescriptor(bytes: Uint8Array, now: number): boolean {
    const d = verifyDescriptor(bytes, {
      now,
      maxAge: this.maxAgeMs,
      maxSkew: this.maxSkewMs,
      maxBytes: this.limits.maxDescriptorBytes,
      isRegisteredAndStaked: (id) => this.chainRoles(id) !== undefined,
    });
    const key = bytesToHexFast(d.identity);
    const held = this.descriptors.get(key);
    if (held && held.publishedAt >= d.publishedAt) return false;
    if (!held && this.descriptors.size >= this.limits.maxNodes) {
      this.expireDescriptors(now);
      if (this.descriptors.size >= this.limits.maxNodes) throw new DirectoryError("too-large", `this discovery node already holds ${this.limits.maxNodes} descriptors`);
    }
    this.descriptors.set(key, d);
    return true;
  }

  /** Replaces the set of nodes the socket layer found reachable from outside. */
  setReachable(identities: Iterable<Uint8Array>): void {
    this.reachable = new Set(Array.from(identities, bytesToHexFast));
  }

  /** The descriptors this node holds (newest per node, bridges included), e.g. to test their reachability. */
  heldDescriptors(): Descriptor[] {
    return [...this.descriptors.values()];
  }

  /** How many descriptors this node holds (bridges included). */
  descriptorCount(): number {
    return this.descriptors.size;
  }

  /** The latest published consensus document. */
  latestConsensus(): { validAfter: number; bytes: Uint8Array } | undefined {
    return this.published;
  }

  /** Votes this node holds for a round (its own included), to answer fetch-votes. */
  votesFor(validAfter: number, voters?: readonly Uint8Array[]): Uint8Array[] {
    const round = this.rounds.get(validAfter);
    if (!round) return [];
    const wanted = voters ? new Set(voters.map(bytesToHexFast)) : undefined;
    return [...round.votes.entries()].filter(([k]) => !wanted || wanted.has(k)).map(([, v]) => v.bytes);
  }

  /** Discovery keys whose vote for the round is still missing. */
  missingVoters(validAfter: number): Uint8Array[] {
    const round = this.rounds.get(validAfter);
    return [...this.discoveryKeys.entries()].filter(([k]) => !round?.votes.has(k)).map(([, key]) => key);
  }

  /** Advances the round state to `now`; returns what the driver must do. */
  tick(now: number): DirectoryAction[] {
    const actions: DirectoryAction[] = [];
    const current = currentValidAfter(now, this.schedule);
    const next = nextValidAfter(now, this.schedule);
    // The current period's round may still need publishing; the next one is being voted on.
    for (const validAfter of [current, next]) {
      const times = roundTimes(validAfter, this.schedule);
      if (now < times.voteAt) continue;
      // A round this node missed entirely (it started late) is left to the others.
      if (!this.rounds.has(validAfter) && now >= times.computeAt) continue;
      const round = this.round(validAfter);
      if (!round.voted && now < times.computeAt) {
        actions.push(this.castVote(round, now));
      }
      if (round.voted && !round.fetched && now >= times.fetchAt && !round.computed) {
        round.fetched = true;
        const missing = this.missingVoters(validAfter);
        if (missing.length > 0) actions.push({ type: "fetch-votes", validAfter, voters: missing });
      }
      if (!round.computed && !round.computeFailed && now >= times.computeAt) actions.push(...this.compute(round));
      if (now >= times.publishAt) actions.push(...this.maybePublish(round));
    }
    for (const validAfter of this.rounds.keys()) if (validAfter < current) this.rounds.delete(validAfter);
    this.expireDescriptors(now);
    return actions;
  }

  /**
   * Accepts a vote from another discovery node (directly or relayed by a
   * fetch). Returns false when it is a copy of one already held. Throws
   * DirectoryError "unknown-signer", "wrong-period" (not a round being
   * collected), "conflicting-vote", or a decoding kind.
   */
  receiveVote(bytes: Uint8Array, now: number): boolean {
    const vote = openVote(bytes, { discoverySet: new Set(this.discoveryKeys.keys()), maxBytes: this.limits.maxVoteBytes, maxNodes: this.limits.maxNodes });
    const open = [currentValidAfter(now, this.schedule), nextValidAfter(now, this.schedule)];
    if (!open.includes(vote.validAfter)) {
      throw new DirectoryError("wrong-period", `vote is for the consensus valid from ${vote.validAfter}; this node collects votes for ${open.join(" and ")}`);
    }
    if (now < roundTimes(vote.validAfter, this.schedule).voteAt - this.maxSkewMs) {
      throw new DirectoryError("future-dated", "vote arrived before its round opened: check the sender's clock");
    }
    const round = this.round(vote.validAfter);
    if (round.computed || round.computeFailed) throw new DirectoryError("wrong-period", `votes for the consensus valid from ${vote.validAfter} are closed`);
    const key = bytesToHexFast(vote.voter);
    const held = round.votes.get(key);
    if (held) {
      if (bytesEqual(held.digest, vote.digest)) return false;
      throw new DirectoryError("conflicting-vote", `discovery node ${key} sent two different votes for ${vote.validAfter}; keeping the first`);
    }
    round.votes.set(key, vote);
    return true;
  }

  /**
   * Accepts another discovery node's signature message. Returns actions: a
   * re-publication with more signers, or a disagreement when the signer
   * computed a different body. Throws DirectoryError "unknown-signer",
   * "wrong-period", "bad-signature" or "malformed".
   */
  receiveSignature(bytes: Uint8Array, now: number): DirectoryAction[] {
    const message = decodeConsensusSignature(bytes);
    const key = bytesToHexFast(message.signer);
    if (!this.discoveryKeys.has(key)) throw new DirectoryError("unknown-signer", `signature from ${key}, which is not in the discovery set`);
    const round = this.rounds.get(message.validAfter);
    if (!round || message.validAfter < currentValidAfter(now, this.schedule)) {
      throw new DirectoryError("wrong-period", `no round open for the consensus valid from ${message.validAfter}`);
    }
    if (!round.computed) {
      round.early.set(key, message);
      return [];
    }
    const actions = this.acceptSignature(round, message);
    if (now >= round.validAfter) actions.push(...this.maybePublish(round));
    return actions;
  }

  // ---------------------------------------------------------------- internals

  private round(validAfter: number): Round {
    let round = this.rounds.get(validAfter);
    if (!round) {
      round = {
        validAfter,
        voted: false,
        fetched: false,
        computeFailed: false,
        votes: new Map(),
        signatures: new Map(),
        early: new Map(),
        publishedSigners: 0,
        failureReported: false,
      };
      this.rounds.set(validAfter, round);
    }
    return round;
  }

  private expireDescriptors(now: number): void {
    for (const [key, d] of this.descriptors) if (d.publishedAt < now - this.maxAgeMs) this.descriptors.delete(key);
  }

  /**
   * This node's view at `now`: the entries of its vote, with flags. Called
   * once per vote: it also advances the stable-flag clock (a node absent from
   * one call starts again from zero).
   */
  voteEntries(now: number): VoteEntry[] {
    const entries: VoteEntry[] = [];
    const listedNow = new Set<string>();
    for (const [key, d] of this.descriptors) {
      if (d.bridge || d.publishedAt < now - this.maxAgeMs || !this.reachable.has(key)) continue;
      const roles = this.chainRoles(d.identity);
      if (roles === undefined) continue;
      listedNow.add(key);
      const since = this.listedSince.get(key) ?? now;
      this.listedSince.set(key, since);
      let flags = NodeFlag.running | NodeFlag.valid;
      if (d.bandwidth >= this.thresholds.fastMinBandwidth) flags |= NodeFlag.fast;
      if (now - since >= this.thresholds.stableMinUptimeMs) flags |= NodeFlag.stable;
      for (const [role, flag] of ROLE_FLAGS) if ((roles & role) !== 0 && (d.roles & role) !== 0) flags |= flag;
      const guardNeeds = NodeFlag.fast | NodeFlag.stable | NodeFlag.onion;
      // An internal node is never an entry, so never a guard.
      if (d.internal === true) flags |= NodeFlag.internal;
      else if ((flags & guardNeeds) === guardNeeds && (roles & ChainRole.onion) !== 0) flags |= NodeFlag.guard;
      const entry: VoteEntry = {
        identity: d.identity,
        descriptorDigest: d.digest,
        onionKey: d.onionKey,
        addresses: d.encodedAddresses,
        country: d.country,
        version: d.version,
        bandwidth: d.bandwidth,
        flags,
        publishedAt: d.publishedAt,
      };
      if (d.family !== undefined) entry.family = d.family;
      const apps = this.confirmedApps(d);
      if (apps.length > 0) {
        entry.apps = apps;
        entry.flags |= NodeFlag.commercial;
      }
      entries.push(entry);
    }
    // A node missing from one vote starts its stable clock again.
    for (const key of [...this.listedSince.keys()]) if (!listedNow.has(key)) this.listedSince.delete(key);
    return entries;
  }

  /** The descriptor's claimed application ids the chain confirms, ascending (never one it did not claim). */
  private confirmedApps(d: Descriptor): Uint8Array[] {
    if (!this.chainApps || !d.apps || d.apps.length === 0) return [];
    const claimed = new Set(d.apps.map(bytesToHexFast));
    const confirmed = new Set<string>();
    for (const id of this.chainApps(d.identity, d.apps)) {
      const key = bytesToHexFast(id);
      if (claimed.has(key)) confirmed.add(key);
    }
    return d.apps.filter((id) => confirmed.has(bytesToHexFast(id)));
  }

  private castVote(round: Round, now: number): DirectoryAction {
    const bytes = createVote({ secretKey: this.secretKey, validAfter: round.validAfter, publishedAt: now, entries: this.voteEntries(now) });
    const vote = openVote(bytes, { discoverySet: new Set(this.discoveryKeys.keys()), maxBytes: this.limits.maxVoteBytes, maxNodes: this.limits.maxNodes });
    round.votes.set(bytesToHexFast(this.publicKey), vote);
    round.voted = true;
    return { type: "broadcast-vote", validAfter: round.validAfter, vote: bytes };
  }

  private compute(round: Round): DirectoryAction[] {
    let computed: ComputedConsensus;
    try {
      computed = computeConsensus([...round.votes.values()], { discoverySetSize: this.discoveryKeys.size, schedule: this.schedule });
    } catch (err) {
      if (!(err instanceof DirectoryError)) throw err;
      round.computeFailed = true;
      return [{ type: "consensus-failed", validAfter: round.validAfter, kind: err.kind, message: err.message }];
    }
    round.computed = computed;
    const own = signConsensus(computed.bodyBytes, this.secretKey);
    round.signatures.set(bytesToHexFast(own.signer), own);
    const actions: DirectoryAction[] = [
      {
        type: "broadcast-signature",
        validAfter: round.validAfter,
        signature: encodeConsensusSignature({ ...own, validAfter: round.validAfter, digest: computed.digest }),
      },
    ];
    for (const early of round.early.values()) {
      try {
        actions.push(...this.acceptSignature(round, early));
      } catch (err) {
        if (!(err instanceof DirectoryError)) throw err; // a bad early signature is dropped
      }
    }
    round.early.clear();
    return actions;
  }

  private acceptSignature(round: Round, message: ReturnType<typeof decodeConsensusSignature>): DirectoryAction[] {
    const computed = round.computed as ComputedConsensus;
    if (!bytesEqual(message.digest, computed.digest)) {
      return [{ type: "consensus-disagreement", validAfter: round.validAfter, signer: message.signer, theirDigest: message.digest, ourDigest: computed.digest }];
    }
    if (!checkConsensusSignature(computed.bodyBytes, message)) {
      throw new DirectoryError("bad-signature", `consensus signature from ${bytesToHexFast(message.signer)} does not verify over the body it names`);
    }
    round.signatures.set(bytesToHexFast(message.signer), { signer: message.signer, sig: message.sig });
    return [];
  }

  private maybePublish(round: Round): DirectoryAction[] {
    if (!round.computed) {
      if (round.computeFailed || round.failureReported) return [];
      round.failureReported = true;
      return [{ type: "consensus-failed", validAfter: round.validAfter, kind: "insufficient-votes", message: "no consensus was computed for this period" }];
    }
    const count = round.signatures.size;
    if (count < this.threshold) {
      if (round.failureReported) return [];
      round.failureReported = true;
      return [{ type: "consensus-failed", validAfter: round.validAfter, kind: "under-signed", message: `${count} of ${this.threshold} signatures at publication time` }];
    }
    if (count <= round.publishedSigners) return [];
    round.publishedSigners = count;
    const bytes = assembleConsensus(round.computed.bodyBytes, [...round.signatures.values()]);
    if (!this.published || this.published.validAfter <= round.validAfter) this.published = { validAfter: round.validAfter, bytes };
    return [{ type: "consensus-published", validAfter: round.validAfter, consensus: bytes, signers: count, nodes: round.computed.body.entries.length }];
  }
}

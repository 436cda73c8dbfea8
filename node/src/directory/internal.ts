/**
 * The node-only view of internal nodes (issue 20, docs/spec/directory.md §12).
 *
 * An internal node is only an interim or final hop; the consensus everyone
 * fetches lists it without addresses, so clients never learn where it
 * listens. Nodes, which must extend circuits to it, fetch the view: the
 * internal nodes' own signed descriptors, served only over links whose peer
 * proved a known node identity.
 *
 * Owns: the serving rule (answerFetchInternal: who may have the view, and
 * which descriptors make it up), and InternalDirectory, a pure holder (input:
 * descriptor bytes, a verified consensus and the time) of the descriptors a
 * node accepted, which answers addressesOf(identity) (empty for an internal
 * node with outbound links only: isOutboundOnly) and serves the view on to
 * other nodes. fetchInternalView is the one networked call; keeping the view
 * in step with the consensus is internal-refresh.ts.
 *
 * Trusts: the consensus it is given (already verified K of N) for which
 * identities are internal; each descriptor only after its signature by that
 * identity and its freshness are checked (descriptor.ts); the link RPC for
 * the requesting peer's identity; the caller's isKnownNode for who is a node.
 */
import type { PeerAddress } from "../link/manager.js";
import type { NodeAddress } from "./address.js";
import { DEFAULT_DESCRIPTOR_MAX_AGE_MS, DEFAULT_MAX_SKEW_MS, NodeFlag, bytesToHexFast } from "./config.js";
import type { ConsensusEntry } from "./consensus.js";
import { verifyDescriptor } from "./descriptor.js";
import type { Descriptor } from "./descriptor.js";
import { DirectoryError } from "./errors.js";
import type { DirectoryResponse } from "./messages.js";
import { DEFAULT_DIRECTORY_TIMEOUT_MS, directoryRequest, peerName } from "./transport.js";
import type { DirectoryRpc } from "./transport.js";

/** The consensus as this module needs it: its period and entries (a VerifiedConsensus fits). */
export interface InternalViewConsensus {
  validAfter: number;
  entries: readonly ConsensusEntry[];
}

/** The node-only view: internal nodes' signed descriptors for the consensus valid from validAfter. */
export interface InternalView {
  validAfter: number;
  descriptors: Uint8Array[];
}

/** Something that can serve the view (a discovery service, or a node's InternalDirectory). */
export interface InternalViewSource {
  /** The view for the live consensus held at `now`; undefined while none is held. */
  internalView(now: number): InternalView | undefined;
}

/** Identities (hex) the consensus flags internal. */
export function internalIdentities(consensus: InternalViewConsensus): Set<string> {
  const out = new Set<string>();
  for (const e of consensus.entries) if ((e.flags & NodeFlag.internal) !== 0) out.add(bytesToHexFast(e.identity));
  return out;
}

/**
 * The view from held descriptors: the newest held descriptor of each node the
 * consensus flags internal, in consensus order. Nodes without a held
 * descriptor are left out (the fetcher then has no address for them).
 */
export function internalViewOf(consensus: InternalViewConsensus, descriptors: Iterable<Descriptor>): InternalView {
  const internal = internalIdentities(consensus);
  const newest = new Map<string, Descriptor>();
  for (const d of descriptors) {
    const key = bytesToHexFast(d.identity);
    if (!internal.has(key)) continue;
    const held = newest.get(key);
    if (!held || held.publishedAt < d.publishedAt) newest.set(key, d);
  }
  const out: Uint8Array[] = [];
  for (const e of consensus.entries) {
    const d = newest.get(bytesToHexFast(e.identity));
    if (d) out.push(d.bytes);
  }
  return { validAfter: consensus.validAfter, descriptors: out };
}

/**
 * The answer to fetch-internal. `peer` is the requesting link's proven
 * identity (RpcContext.peer, null on an anonymous client link); only a peer
 * `isKnownNode` accepts gets the view, everyone else "unauthorized".
 */
export function answerFetchInternal(
  source: InternalViewSource,
  peer: Uint8Array | null,
  isKnownNode: (identity: Uint8Array) => boolean,
  now: number,
): DirectoryResponse {
  if (peer === null) return { type: "error", kind: "unauthorized", message: "the internal nodes' view is served to nodes only, over an authenticated link" };
  if (!isKnownNode(peer)) return { type: "error", kind: "unauthorized", message: "the internal nodes' view is served to listed nodes only" };
  const view = source.internalView(now);
  if (!view) return { type: "no-consensus" };
  return { type: "internal", validAfter: view.validAfter, descriptors: view.descriptors };
}

/** The default isKnownNode of a server: the peer is listed in the consensus it holds (any flag). */
export function listedIn(consensus: () => InternalViewConsensus | undefined): (identity: Uint8Array) => boolean {
  let cachedFor: InternalViewConsensus | undefined;
  let listed = new Set<string>();
  return (identity) => {
    const c = consensus();
    if (c !== cachedFor) {
      cachedFor = c;
      listed = new Set(c ? c.entries.map((e) => bytesToHexFast(e.identity)) : []);
    }
    return listed.has(bytesToHexFast(identity));
  };
}

export interface InternalDirectoryOptions {
  /** Oldest descriptor publication kept, as an age in ms (default 3 h, as discovery nodes keep them). */
  maxAgeMs?: number;
  /** Tolerated clock skew for future publication times (default 5 min). */
  maxSkewMs?: number;
}

export interface OfferInternalResult {
  /** Descriptors kept (new, or newer than the one held). */
  accepted: number;
  /** Refused descriptors by DirectoryError kind ("not-registered": the consensus does not flag that identity internal). */
  rejected: Record<string, number>;
}

/**
 * What a node knows of internal nodes' addresses: the verified descriptors
 * of the nodes its consensus flags internal. Pure: every input is bytes, a
 * verified consensus and the time.
 */
export class InternalDirectory implements InternalViewSource {
  private readonly maxAgeMs: number;
  private readonly maxSkewMs: number;
  private readonly descriptors = new Map<string, Descriptor>();
  private consensus?: InternalViewConsensus & { validUntil?: number };

  constructor(options: InternalDirectoryOptions = {}) {
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_DESCRIPTOR_MAX_AGE_MS;
    this.maxSkewMs = options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  }

  /**
   * Takes a new consensus: descriptors of nodes it no longer flags internal
   * are dropped (a node that became public is reached at its listed address).
   */
  setConsensus(consensus: InternalViewConsensus & { validUntil?: number }): void {
    this.consensus = consensus;
    const internal = internalIdentities(consensus);
    for (const key of [...this.descriptors.keys()]) if (!internal.has(key)) this.descriptors.delete(key);
  }

  /**
   * Verifies and keeps descriptors from a view answer: each must be signed by
   * its identity key, fresh at `now`, and of a node `consensus` flags
   * internal. One bad descriptor does not spoil the others: it is counted by
   * kind. Also takes `consensus` as the held one (setConsensus).
   */
  offer(consensus: InternalViewConsensus & { validUntil?: number }, descriptors: readonly Uint8Array[], now: number): OfferInternalResult {
    this.setConsensus(consensus);
    const internal = internalIdentities(consensus);
    const result: OfferInternalResult = { accepted: 0, rejected: {} };
    for (const bytes of descriptors) {
      try {
        const d = verifyDescriptor(bytes, {
          now,
          maxAge: this.maxAgeMs,
          maxSkew: this.maxSkewMs,
          // The consensus (K of N discovery signatures) stands in for the chain: it lists only registered nodes.
          isRegisteredAndStaked: (id) => internal.has(bytesToHexFast(id)),
        });
        const key = bytesToHexFast(d.identity);
        const held = this.descriptors.get(key);
        if (held && held.publishedAt >= d.publishedAt) continue;
        this.descriptors.set(key, d);
        result.accepted++;
      } catch (err) {
        if (!(err instanceof DirectoryError)) throw err;
        result.rejected[err.kind] = (result.rejected[err.kind] ?? 0) + 1;
      }
    }
    return result;
  }

  /** Drops descriptors older than maxAgeMs at `now`. */
  prune(now: number): void {
    for (const [key, d] of this.descriptors) if (d.publishedAt < now - this.maxAgeMs) this.descriptors.delete(key);
  }

  /**
   * Where an internal node listens, from its verified descriptor (in its
   * order of preference); empty for one with outbound links only (reached
   * over its own links); undefined when this node holds none for it, or
   * (with `now`) only a stale one.
   */
  addressesOf(identity: Uint8Array, now?: number): NodeAddress[] | undefined {
    const d = this.descriptors.get(bytesToHexFast(identity));
    if (!d || (now !== undefined && d.publishedAt < now - this.maxAgeMs)) return undefined;
    return d.addresses.map((a) => ({ ...a }));
  }

  /**
   * True for an internal node with outbound links only: its held, fresh
   * descriptor lists no address, so it is reached only over a link it opened
   * (never dialed). False when unknown or when it lists an address.
   */
  isOutboundOnly(identity: Uint8Array, now?: number): boolean {
    return this.addressesOf(identity, now)?.length === 0;
  }

  /** Identities (hex) the held consensus flags internal for which no fresh descriptor is held at `now`. */
  missing(now: number): string[] {
    const c = this.consensus;
    if (!c) return [];
    return [...internalIdentities(c)].filter((key) => {
      const d = this.descriptors.get(key);
      return !d || d.publishedAt < now - this.maxAgeMs;
    });
  }

  /** How many internal nodes' descriptors are held. */
  get size(): number {
    return this.descriptors.size;
  }

  /** Serves what was fetched on to other nodes (every node may serve the view it holds). */
  internalView(now: number): InternalView | undefined {
    const c = this.consensus;
    if (!c || (c.validUntil !== undefined && now > c.validUntil)) return undefined;
    return internalViewOf(
      c,
      [...this.descriptors.values()].filter((d) => d.publishedAt >= now - this.maxAgeMs),
    );
  }
}

/**
 * Fetches the node-only view from `peer` over an authenticated link (the
 * RPC's manager must hold this node's identity, or the answer is
 * "unauthorized"). Returns the view's descriptor bytes, unverified: hand them
 * to InternalDirectory.offer. Throws DirectoryError ("unauthorized",
 * "unavailable" when the peer holds no consensus or cannot be reached, a
 * decoding kind for a bad answer).
 */
export async function fetchInternalView(rpc: DirectoryRpc, peer: PeerAddress, options: { timeoutMs?: number } = {}): Promise<InternalView> {
  const response = await directoryRequest(rpc, peer, { type: "fetch-internal" }, { timeoutMs: options.timeoutMs ?? DEFAULT_DIRECTORY_TIMEOUT_MS });
  if (response.type === "no-consensus") throw new DirectoryError("unavailable", `${peerName(peer)} holds no live consensus`);
  if (response.type !== "internal") throw new DirectoryError("malformed", `${peerName(peer)} answered ${response.type} to fetch-internal`);
  return { validAfter: response.validAfter, descriptors: response.descriptors };
}

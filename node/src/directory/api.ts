/**
 * The directory's control API pieces, for the node runtime to mount on the
 * fastify base (api/server.ts): `GET /v1/consensus`, the discovery fields of
 * `/v1/status`, and Prometheus metrics.
 *
 * Owns the JSON form of a consensus (hex keys, text addresses, flag names),
 * its response schema and the discovery status schema, and the
 * psp_directory_* metric names (docs/METRICS.md). No consensus held is a
 * DirectoryError "unavailable" (transient): the API base answers it 503
 * with Retry-After in the one error body (api/errors.ts). Reads only: the service and client own the state;
 * metrics are computed from their counters when scraped.
 */
import type { FastifyInstance } from "fastify";
import { Counter, Gauge } from "prom-client";
import type { Registry } from "prom-client";
import { decodeAddress, formatAddress } from "./address.js";
import { DirectoryError } from "./errors.js";
import { bytesToHexFast, flagNames } from "./config.js";
import type { VerifiedConsensus } from "./consensus.js";
import type { DiscoveryService } from "./service.js";
import type { ConsensusClient } from "./client.js";
import type { InternalViewStats } from "./internal-refresh.js";
import type { OutboundLinkStats } from "./outbound.js";

/** The consensus as JSON: times in ms since the Unix epoch, keys in hex. */
export function consensusToJson(consensus: VerifiedConsensus) {
  return {
    validAfter: consensus.validAfter,
    freshUntil: consensus.freshUntil,
    validUntil: consensus.validUntil,
    discoverySetSize: consensus.discoverySetSize,
    digest: bytesToHexFast(consensus.digest),
    voters: consensus.voters.map(bytesToHexFast),
    signers: consensus.signers.map(bytesToHexFast),
    nodes: consensus.entries.map((e) => ({
      identity: bytesToHexFast(e.identity),
      onionKey: bytesToHexFast(e.onionKey),
      addresses: e.encodedAddresses.map((a) => formatAddress(decodeAddress(a))),
      country: e.country,
      version: e.version,
      bandwidth: e.bandwidth,
      flags: flagNames(e.flags),
      ...(e.family !== undefined ? { family: e.family } : {}),
    })),
  };
}

const int = { type: "integer" } as const;
const hexList = { type: "array", items: { type: "string" } } as const;

/** The JSON schema of consensusToJson. */
export const CONSENSUS_SCHEMA = {
  type: "object",
  required: ["validAfter", "freshUntil", "validUntil", "discoverySetSize", "digest", "voters", "signers", "nodes"],
  properties: {
    validAfter: int,
    freshUntil: int,
    validUntil: int,
    discoverySetSize: int,
    digest: { type: "string" },
    voters: hexList,
    signers: hexList,
    nodes: {
      type: "array",
      items: {
        type: "object",
        required: ["identity", "onionKey", "addresses", "country", "version", "bandwidth", "flags"],
        properties: {
          identity: { type: "string" },
          onionKey: { type: "string" },
          addresses: { type: "array", items: { type: "string" } },
          country: { type: "string" },
          version: { type: "string" },
          bandwidth: int,
          flags: { type: "array", items: { type: "string" } },
          family: { type: "string" },
        },
      },
    },
  },
} as const;

/** The OpenAPI description of `GET /v1/consensus` (it takes no parameters); `errorResponses` are the API's shared 4xx/5xx schemas. */
export function consensusRouteSchema(errorResponses: Record<string, unknown> = {}) {
  return {
    summary: "The held consensus",
    description:
      "The current verified consensus as JSON (times in ms since the Unix epoch, keys in hex, text addresses, flag names); 503 unavailable while none is held or no directory is configured.",
    tags: ["directory"],
    response: { 200: CONSENSUS_SCHEMA, ...errorResponses },
  };
}

export interface ConsensusRouteSource {
  current(): VerifiedConsensus | undefined;
  /** What to say while none is held (default: not fetched yet). */
  missing?: { message: string; fix?: string };
}

/** Mounts `GET /v1/consensus`: the current verified consensus, or DirectoryError "unavailable" (503) while none is held. */
export function mountConsensusRoute(app: FastifyInstance, source: ConsensusRouteSource, errorResponses: Record<string, unknown> = {}): void {
  app.get("/v1/consensus", { schema: consensusRouteSchema(errorResponses) }, async () => {
    const held = source.current();
    if (!held) {
      const missing = source.missing ?? {
        message: "no verified consensus is held yet; it is fetched at start and refreshed after fresh-until",
        fix: "wait for the first fetch; if it lasts, check the node's discovery configuration and psp_directory_fetch_failures_total",
      };
      throw new DirectoryError("unavailable", missing.message, missing.fix !== undefined ? { fix: missing.fix } : {});
    }
    return consensusToJson(held);
  });
}

/** The JSON schema of discoveryStatus. */
export const DISCOVERY_STATUS_SCHEMA = {
  type: "object",
  description: "the discovery role: its signing key, descriptors held, reachable nodes, votes, consensus documents published and failed",
  required: ["publicKey", "descriptors", "reachable", "votesCast", "votesReceived", "consensusPublished", "lastConsensus", "consensusFailures", "disagreements"],
  properties: {
    publicKey: { type: "string" },
    descriptors: int,
    reachable: int,
    votesCast: int,
    votesReceived: int,
    consensusPublished: int,
    lastConsensus: {
      type: "object",
      nullable: true,
      properties: { validAfter: int, signers: int, nodes: int, publishedAt: int },
    },
    consensusFailures: { type: "object", additionalProperties: { type: "integer" } },
    disagreements: int,
  },
} as const;

/** The discovery node's fields for `/v1/status`. */
export function discoveryStatus(service: DiscoveryService) {
  const s = service.stats;
  return {
    publicKey: bytesToHexFast(service.publicKey),
    descriptors: service.node.descriptorCount(),
    reachable: s.reachable,
    votesCast: s.votesCast,
    votesReceived: s.votesReceived,
    consensusPublished: s.consensusPublished,
    lastConsensus: s.lastConsensus ?? null,
    consensusFailures: s.consensusFailures,
    disagreements: s.disagreements,
  };
}

/**
 * Registers the directory metrics on `registry` (prefix psp_directory_).
 * Pass the service on a discovery node and the client on any node.
 */
export function registerDirectoryMetrics(
  registry: Registry,
  sources: { service?: DiscoveryService; client?: ConsensusClient; internalView?: InternalViewStats; outbound?: OutboundLinkStats; now?: () => number },
): void {
  const { service, client } = sources;
  const now = sources.now ?? Date.now;
  const fromRecord = (counter: Counter<string>, label: string, record: Record<string, number>) => {
    counter.reset();
    for (const [kind, n] of Object.entries(record)) counter.inc({ [label]: kind }, n);
  };
  if (service) {
    new Counter({
      name: "psp_directory_descriptors_received_total",
      help: "Descriptors reported to this discovery node",
      registers: [registry],
      collect() {
        this.reset();
        this.inc(service.stats.descriptorsReceived);
      },
    });
    new Counter({
      name: "psp_directory_descriptors_rejected_total",
      help: "Descriptors refused, by reason",
      labelNames: ["reason"],
      registers: [registry],
      collect() {
        fromRecord(this, "reason", service.stats.descriptorsRejected);
      },
    });
    new Counter({
      name: "psp_directory_votes_total",
      help: "Votes cast by this node and received from other discovery nodes",
      labelNames: ["direction"],
      registers: [registry],
      collect() {
        fromRecord(this, "direction", { cast: service.stats.votesCast, received: service.stats.votesReceived });
      },
    });
    new Counter({
      name: "psp_directory_votes_rejected_total",
      help: "Votes refused, by reason",
      labelNames: ["reason"],
      registers: [registry],
      collect() {
        fromRecord(this, "reason", service.stats.votesRejected);
      },
    });
    new Counter({
      name: "psp_directory_consensus_failures_total",
      help: "Rounds without a published consensus, by reason",
      labelNames: ["reason"],
      registers: [registry],
      collect() {
        fromRecord(this, "reason", service.stats.consensusFailures);
      },
    });
    new Gauge({
      name: "psp_directory_reachable_nodes",
      help: "Nodes found reachable by the last test",
      registers: [registry],
      collect() {
        this.set(service.stats.reachable);
      },
    });
  }
  const held = () => client?.current() ?? service?.current();
  new Gauge({
    name: "psp_directory_consensus_age_seconds",
    help: "Seconds since the valid-after of the held consensus (-1 when none)",
    registers: [registry],
    collect() {
      const c = held();
      this.set(c ? (now() - c.validAfter) / 1000 : -1);
    },
  });
  new Gauge({
    name: "psp_directory_consensus_signatures",
    help: "Trusted signatures on the held consensus",
    registers: [registry],
    collect() {
      this.set(held()?.signers.length ?? 0);
    },
  });
  new Gauge({
    name: "psp_directory_consensus_nodes",
    help: "Nodes listed in the held consensus",
    registers: [registry],
    collect() {
      this.set(held()?.entries.length ?? 0);
    },
  });
  const view = sources.internalView;
  if (view) {
    new Counter({
      name: "psp_directory_internal_view_fetches_total",
      help: "Node-only view answers received (internal nodes' descriptors)",
      registers: [registry],
      collect() {
        this.reset();
        this.inc(view.fetches);
      },
    });
    new Counter({
      name: "psp_directory_internal_view_fetch_failures_total",
      help: "Node-only view fetches that failed or were refused, by reason",
      labelNames: ["reason"],
      registers: [registry],
      collect() {
        fromRecord(this, "reason", view.failures);
      },
    });
    new Counter({
      name: "psp_directory_internal_view_retries_total",
      help: "Node-only view refresh rounds scheduled again (no answer, or internal nodes missing)",
      registers: [registry],
      collect() {
        this.reset();
        this.inc(view.retries);
      },
    });
    new Gauge({
      name: "psp_directory_internal_view_stale",
      help: "1 while no node-only view was fetched for the held consensus, else 0",
      registers: [registry],
      collect() {
        this.set(view.stale ? 1 : 0);
      },
    });
    new Gauge({
      name: "psp_directory_internal_view_missing_nodes",
      help: "Internal nodes of the held consensus with no fresh descriptor in the node-only view",
      registers: [registry],
      collect() {
        this.set(view.missing);
      },
    });
  }
  const outbound = sources.outbound;
  if (outbound) {
    new Gauge({
      name: "psp_directory_outbound_links",
      help: "Outbound-only internal node: links held to neighbours (state=held) and neighbours wanted (state=wanted)",
      labelNames: ["state"],
      registers: [registry],
      collect() {
        this.set({ state: "held" }, outbound.linksHeld);
        this.set({ state: "wanted" }, outbound.neighbours);
      },
    });
    new Counter({
      name: "psp_directory_outbound_link_events_total",
      help: "Outbound-only internal node: dials, failed dials and dropped links to neighbours",
      labelNames: ["event"],
      registers: [registry],
      collect() {
        fromRecord(this, "event", { dial: outbound.dials, "dial-failure": outbound.dialFailures, dropped: outbound.linksDropped });
      },
    });
  }
  if (client) {
    new Counter({
      name: "psp_directory_fetch_failures_total",
      help: "Consensus fetches that failed or were refused, by reason",
      labelNames: ["reason"],
      registers: [registry],
      collect() {
        fromRecord(this, "reason", client.stats.failures);
      },
    });
  }
}

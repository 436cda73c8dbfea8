/**
 * The node's control API routes, mounted on the shared fastify base
 * (api/server.ts): `GET /v1/status` (nodeStatus, its schema
 * NODE_STATUS_SCHEMA), `GET /v1/dht/stats`, `GET /v1/dht/records/:key`,
 * `GET /v1/consensus`; `GET /metrics` serves what metrics.ts registers.
 *
 * Owns the JSON shapes of these routes and their response schemas (fastify
 * serializes through them and drops what they do not declare: sections a
 * layer may grow, a kind-keyed refusal count, say so with
 * `additionalProperties`). Reads state only, except that a record lookup
 * runs a DHT value lookup. Errors are the one body of api/errors.ts: a bad
 * key is 400 `bad-request`, a record not found 404 `not-found`, no
 * consensus 503 `unavailable`; a lookup that cannot run or finish for a
 * passing reason (no contacts yet, this node's own limits: a transient
 * DhtError) is a 503 with Retry-After from the base's error handler, never
 * a 404 or a 500.
 *
 * Trusts the layers it reads from.
 */
import type { FastifyInstance } from "fastify";
import { ApiError, ERROR_RESPONSES } from "../api/errors.js";
import { DISCOVERY_STATUS_SCHEMA, discoveryStatus, mountConsensusRoute } from "../directory/api.js";
import type { ConnectionManager } from "../link/manager.js";
import type { LinkRpc } from "../link/rpc.js";
import type { OnionRelay } from "../onion/relay.js";
import type { StreamHost } from "../stream/host.js";
import type { NodeDht } from "./dht.js";
import type { NodeDirectory } from "./directory.js";
import type { LogEventsMetric } from "./metrics.js";
import type { NodeAuthority, NodeOracle, OracleServiceHandle } from "./roles.js";
import type { NodePresence } from "./presence.js";
import type { NodeUsage } from "./usage.js";
import { hex } from "./hex.js";
import type { NodeInfo } from "./node.js";

export { countLogEvents, createLogEventsMetric, registerNodeMetrics } from "./metrics.js";
export type { LogEventsMetric } from "./metrics.js";

export interface NodeApiSources {
  info: NodeInfo;
  startedAt: number;
  manager: ConnectionManager;
  /** The node's link RPC endpoint: its refusals by budget and class are exported. */
  rpc?: LinkRpc | undefined;
  relay: OnionRelay | undefined;
  dht: NodeDht;
  directory: NodeDirectory | undefined;
  authority?: NodeAuthority | undefined;
  oracle?: NodeOracle | undefined;
  presence?: NodePresence | undefined;
  /** The landing and distribution roles (psp_stream_*), when this node hosts streams. */
  streams?: StreamHost | undefined;
  /** The oracle service (psp_oracle_* beyond the standing), when the oracle role runs it. */
  oracleService?: OracleServiceHandle | undefined;
  /** Usage metering and reporting (psp_usage_*, usage-reporter.ts), when this node hosts streams on a chain. */
  usage?: NodeUsage | undefined;
  /** The chain's JSON-RPC URL this node reads (psp_chain_*), when it has a chain. */
  chainRpcUrl?: string | undefined;
  /** psp_log_events_total, fed from the node's logger since start (createLogEventsMetric). */
  logEvents?: LogEventsMetric;
}

/** What `GET /v1/dht/stats` returns. */
export function dhtStats(dht: NodeDht) {
  const t = dht.transport.stats;
  return {
    nodeId: hex(dht.node.nodeId),
    address: dht.node.contact.address,
    tableSize: dht.node.table.size,
    storedRecords: dht.store.count(),
    lookups: dht.stats.lookups,
    lookupFailures: dht.stats.lookupFailures,
    valueMisses: dht.stats.valueMisses,
    requestsSent: t.requestsSent,
    responsesReceived: t.responsesReceived,
    /** Requests sent that got no valid answer (timeouts, refusals, unreachable peers). */
    requestFailures: Math.max(0, t.requestsSent - t.responsesReceived - dht.transport.inflight),
    requestsServed: t.requestsServed,
    requestsRefused: t.requestsRefused,
    /** Incoming requests refused, by DhtError kind (which cap or check refused them). */
    refused: { ...dht.node.stats.refused },
    /** Our own requests stopped by this node's own limits (not counted against contacts). */
    localRefusals: dht.node.stats.localRefusals,
    bootstraps: dht.stats.bootstraps,
    reseeds: dht.stats.reseeds,
    reseedContacts: dht.stats.reseedContacts,
  };
}

/** What `GET /v1/status` returns. */
export function nodeStatus(s: NodeApiSources) {
  const consensus = s.directory?.current();
  const dht = dhtStats(s.dht);
  return {
    identity: s.info.identity,
    onionKey: s.info.onionKey,
    roles: s.info.roles,
    addresses: [`${s.info.host}:${s.info.port}`],
    uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
    links: s.manager.linkCount,
    linkLimits: linkLimitStatus(s),
    circuits: s.relay?.stats().circuits ?? 0,
    bytesRelayed: s.relay?.stats().bytesSent ?? 0,
    dht: { tableSize: dht.tableSize, records: dht.storedRecords, address: dht.address },
    consensus: consensus
      ? {
          validAfter: consensus.validAfter,
          freshUntil: consensus.freshUntil,
          validUntil: consensus.validUntil,
          nodes: consensus.entries.length,
          signers: consensus.signers.length,
        }
      : null,
    ...(s.directory?.service ? { discovery: discoveryStatus(s.directory.service) } : {}),
    ...(s.presence
      ? {
          presence: {
            points: s.presence.presence.points,
            rendezvousWaiting: s.presence.rendezvous.waiting,
            ...s.presence.presence.stats,
            rendezvous: s.presence.rendezvous.stats,
          },
        }
      : {}),
    ...(s.authority ? { authority: s.authority.status() } : {}),
    ...(s.oracle ? { oracle: s.oracle.status() } : {}),
  };
}

/** What a node sheds under load (issue 19): inbound link refusals by cap, RPC refusals by class and budget. */
function linkLimitStatus(s: NodeApiSources) {
  const m = s.manager;
  return {
    pendingInbound: m.pendingInbound,
    anonymousInbound: m.anonymousInboundLinks,
    handshakeTimeouts: m.stats.handshakeTimeouts,
    refusals: { ...m.stats.refusals },
    ...(s.rpc ? { rpcRefusals: { node: { ...s.rpc.stats.refusals.node }, anonymous: { ...s.rpc.stats.refusals.anonymous } } } : {}),
  };
}

const int = { type: "integer" } as const;
const str = { type: "string" } as const;
/** Counts keyed by a kind, cap or reason the code names (open-ended: a layer may add kinds). */
const countsByKey = { type: "object", additionalProperties: { type: "integer" } } as const;

/** `GET /v1/dht/stats` (dhtStats). */
export const DHT_STATS_SCHEMA = {
  type: "object",
  required: ["nodeId", "address", "tableSize", "storedRecords", "lookups", "refused"],
  properties: {
    nodeId: { type: "string", description: "the DHT node id, hex" },
    address: str,
    tableSize: int,
    storedRecords: int,
    lookups: int,
    lookupFailures: int,
    valueMisses: int,
    requestsSent: int,
    responsesReceived: int,
    requestFailures: { type: "integer", description: "requests sent that got no valid answer (timeouts, refusals, unreachable peers)" },
    requestsServed: int,
    requestsRefused: int,
    refused: { ...countsByKey, description: "incoming requests refused, by DhtError kind" },
    localRefusals: { type: "integer", description: "our own requests stopped by this node's own limits" },
    bootstraps: int,
    reseeds: int,
    reseedContacts: int,
  },
} as const;

/** `GET /v1/dht/records/:key`. */
export const DHT_RECORD_SCHEMA = {
  type: "object",
  required: ["key", "name", "owner", "publisher", "seq", "expiresAt", "valueHex"],
  properties: { key: str, name: str, owner: str, publisher: str, seq: int, expiresAt: { type: "integer", description: "ms since the Unix epoch" }, valueHex: str },
} as const;

/** A node's standing in an on-chain role set (roles.ts RoleStanding). */
const ROLE_STANDING_PROPERTIES = {
  signer: { type: "string", description: "the EVM signer this node signs with" },
  inSet: { type: "boolean", nullable: true, description: "in the current on-chain set; null until the chain answered" },
  signerMismatch: { type: "boolean" },
  lastError: { type: "string", description: "the last chain failure, while reads fail" },
} as const;

/** `GET /v1/status` of a node (nodeStatus). Open-ended sections (a layer's counters) allow more properties. */
export const NODE_STATUS_SCHEMA = {
  type: "object",
  required: ["identity", "onionKey", "roles", "addresses", "uptimeSeconds", "links", "linkLimits", "circuits", "bytesRelayed", "dht", "consensus"],
  properties: {
    identity: { type: "string", description: "the node's public identity key, hex" },
    onionKey: { type: "string", description: "its ntor onion key, hex" },
    roles: { type: "array", items: str },
    addresses: { type: "array", items: { type: "string", description: "host:port" } },
    uptimeSeconds: int,
    links: { type: "integer", description: "open links" },
    linkLimits: {
      type: "object",
      required: ["pendingInbound", "anonymousInbound", "handshakeTimeouts", "refusals"],
      properties: {
        pendingInbound: int,
        anonymousInbound: int,
        handshakeTimeouts: int,
        refusals: { ...countsByKey, description: "inbound connections refused, by cap" },
        rpcRefusals: {
          type: "object",
          description: "link RPC requests refused busy, by peer class and budget",
          properties: { node: countsByKey, anonymous: countsByKey },
        },
      },
    },
    circuits: { type: "integer", description: "circuits through this relay" },
    bytesRelayed: { type: "integer", description: "cell bytes this relay sent" },
    dht: { type: "object", required: ["tableSize", "records", "address"], properties: { tableSize: int, records: int, address: str } },
    consensus: {
      type: "object",
      nullable: true,
      description: "the held consensus (times in ms since the Unix epoch), null while none is held",
      required: ["validAfter", "freshUntil", "validUntil", "nodes", "signers"],
      properties: { validAfter: int, freshUntil: int, validUntil: int, nodes: int, signers: int },
    },
    discovery: DISCOVERY_STATUS_SCHEMA,
    presence: {
      type: "object",
      description: "presence points held, rendezvous cookies waiting, the presence node's counters (presence-node.ts PresenceNodeStats) and the rendezvous node's",
      required: ["points", "rendezvousWaiting", "rendezvous"],
      properties: { points: int, rendezvousWaiting: int, rendezvous: { type: "object", additionalProperties: { type: "integer" } } },
      additionalProperties: { type: "integer" },
    },
    authority: {
      type: "object",
      description: "the authority role: standing in the on-chain authority set, requests answered, refusals by kind",
      required: ["signer", "inSet", "signerMismatch", "requests", "refusals"],
      properties: { ...ROLE_STANDING_PROPERTIES, requests: int, refusals: countsByKey },
    },
    oracle: {
      type: "object",
      description: "the oracle role: standing in the on-chain oracle set",
      required: ["signer", "inSet", "signerMismatch"],
      properties: ROLE_STANDING_PROPERTIES,
    },
  },
} as const;

/** Mounts the node routes (besides /v1/status and /metrics, which the base serves). */
export function mountNodeRoutes(app: FastifyInstance, s: NodeApiSources): void {
  app.get(
    "/v1/dht/stats",
    {
      schema: {
        summary: "DHT statistics",
        description: "Routing table size, stored records, lookups and their failures, requests sent, served and refused (by kind), re-seeds.",
        tags: ["dht"],
        response: { 200: DHT_STATS_SCHEMA, ...ERROR_RESPONSES },
      },
    },
    async () => dhtStats(s.dht),
  );
  app.get<{ Params: { key: string } }>(
    "/v1/dht/records/:key",
    {
      schema: {
        summary: "Look a DHT record up",
        description:
          "Runs a DHT value lookup for the key (recordKey(owner, name), 64 hex digits): the live record found, 404 not-found when none, 400 bad-request for a bad key, 503 with Retry-After when the lookup cannot run yet.",
        tags: ["dht"],
        params: {
          type: "object",
          properties: { key: { type: "string", pattern: "^[0-9a-fA-F]{64}$", description: "the record key, 64 hex digits" } },
          required: ["key"],
        },
        response: { 200: DHT_RECORD_SCHEMA, ...ERROR_RESPONSES },
      },
      attachValidation: true,
    },
    async (request) => {
      if (request.validationError) {
        throw new ApiError("bad-request", `key must be a record key, 64 hex digits (recordKey(owner, name)): ${request.validationError.message}`);
      }
      const key = Uint8Array.from(Buffer.from(request.params.key, "hex"));
      const found = await s.dht.node.findValue(key);
      const r = found.record;
      if (!r) throw new ApiError("not-found", `no live record under key ${request.params.key} was found in the DHT`);
      return {
        key: hex(r.key),
        name: r.name,
        owner: hex(r.owner),
        publisher: hex(r.publisher),
        seq: r.seq,
        expiresAt: r.expiresAt,
        valueHex: hex(r.value),
      };
    },
  );
  const directory = s.directory;
  const noDirectory = {
    message: "this node has no directory configured (config directory.discovery); it holds no consensus",
    fix: "give the node a directory section (docs/OPERATIONS.md)",
  };
  mountConsensusRoute(app, directory ? { current: () => directory.current() } : { current: () => undefined, missing: noDirectory }, ERROR_RESPONSES);
}

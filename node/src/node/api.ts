/**
 * The node's control API routes and metrics, mounted on the shared fastify
 * base (api/server.ts): `GET /v1/status`, `GET /v1/dht/stats`,
 * `GET /v1/dht/records/:key`, `GET /metrics` (links, circuits, DHT,
 * directory, authority and oracle figures, and the log events counted by
 * level, component, kind and operation) and `GET /v1/consensus`.
 *
 * Owns the JSON shapes of these routes and the psp_node_* / psp_dht_* /
 * psp_link_* / psp_onion_* / psp_authority_* / psp_oracle_* / psp_log_* metric names. Reads state only, except that a
 * record lookup runs a DHT value lookup. Parameters are checked by JSON
 * schema: a bad one gets 400 `{ error, kind: "bad-request" }`. A lookup
 * that cannot run or finish for a passing reason (no contacts yet, this
 * node's own limits: a transient DhtError) is a 503 with Retry-After from
 * the base's error handler (api/errors.ts retryAfterSeconds), never a 404
 * or a 500.
 *
 * Trusts the layers it reads from.
 */
import type { FastifyInstance } from "fastify";
import { Counter, Gauge } from "prom-client";
import type { Registry } from "prom-client";
import { CONSENSUS_ROUTE_SCHEMA, discoveryStatus, mountConsensusRoute, registerDirectoryMetrics } from "../directory/api.js";
import { LINK_CAPS } from "../link/errors.js";
import type { ConnectionManager } from "../link/manager.js";
import { RPC_BUDGETS } from "../link/rpc.js";
import type { LinkRpc, RpcPeerClass } from "../link/rpc.js";
import type { LogEvent } from "../log.js";
import type { OnionRelay } from "../onion/relay.js";
import type { NodeDht } from "./dht.js";
import type { NodeDirectory } from "./directory.js";
import type { NodeAuthority, NodeOracle } from "./roles.js";
import type { NodePresence } from "./presence.js";
import { hex } from "./hex.js";
import type { NodeInfo } from "./node.js";

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
  /** psp_log_events_total, fed from the node's logger since start (createLogEventsMetric). */
  logEvents?: LogEventsMetric;
}

export type LogEventsMetric = Counter<"level" | "component" | "kind" | "operation">;

/**
 * psp_log_events_total{level, component, kind, operation}: every line at
 * warn or above and every failure a layer reports (at any level, printed or
 * not). Labels come from the code, never from peers: components and
 * operations are fixed names, kind an error's layer/kind or class name.
 * Made before the control API exists (start-up failures count too) and
 * registered with it later.
 */
export function createLogEventsMetric(): LogEventsMetric {
  return new Counter({
    name: "psp_log_events_total",
    help: "Log lines at warn or above and failures reported at any level, by level, component, error kind (layer/kind) and operation",
    labelNames: ["level", "component", "kind", "operation"],
    registers: [],
  });
}

export function countLogEvents(metric: LogEventsMetric, event: LogEvent): void {
  metric.inc({ level: event.level, component: event.component, kind: event.errorKind, operation: event.operation ?? "none" });
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

/** The peer class an inbound link refusal falls in: only the anonymous cap knows it; the others refuse before the handshake ends. */
const LINK_CAP_CLASS = { links: "inbound", anonymous: "anonymous", pending: "inbound", "per-address": "inbound", "per-prefix": "inbound" } as const;

function registerLinkLimitMetrics(registry: Registry, s: NodeApiSources): void {
  gauge(registry, "psp_link_pending_inbound", "Inbound connections still in TCP, TLS or the link handshake", () => s.manager.pendingInbound);
  gauge(registry, "psp_link_anonymous_inbound", "Anonymous client links that dialed this node", () => s.manager.anonymousInboundLinks);
  counter(registry, "psp_link_handshake_timeouts_total", "Inbound connections closed at the handshake deadline", () => s.manager.stats.handshakeTimeouts);
  new Counter({
    name: "psp_link_refusals_total",
    help: "Inbound connections refused, by the cap that was full and the peer class (inbound: not known yet)",
    labelNames: ["cap", "class"],
    registers: [registry],
    collect() {
      this.reset();
      for (const cap of LINK_CAPS) this.inc({ cap, class: LINK_CAP_CLASS[cap] }, s.manager.stats.refusals[cap]);
    },
  });
  const rpc = s.rpc;
  if (rpc === undefined) return;
  new Counter({
    name: "psp_rpc_refusals_total",
    help: "Link RPC requests refused busy, by the budget that was full and the peer class",
    labelNames: ["budget", "class"],
    registers: [registry],
    collect() {
      this.reset();
      for (const peerClass of ["node", "anonymous"] as RpcPeerClass[]) {
        for (const budget of RPC_BUDGETS) this.inc({ budget, class: peerClass }, rpc.stats.refusals[peerClass][budget]);
      }
    },
  });
  new Gauge({
    name: "psp_rpc_serving",
    help: "Link RPC requests being received or served, by peer class",
    labelNames: ["class"],
    registers: [registry],
    collect() {
      for (const peerClass of ["node", "anonymous"] as RpcPeerClass[]) this.set({ class: peerClass }, rpc.stats.serving[peerClass]);
    },
  });
}

const gauge = (registry: Registry, name: string, help: string, read: () => number): void => {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
};
const counter = (registry: Registry, name: string, help: string, read: () => number): void => {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
};

const labelledCounter = (registry: Registry, name: string, help: string, label: string, read: () => Partial<Record<string, number>>): void => {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, n] of Object.entries(read())) if (n !== undefined) this.inc({ [label]: value }, n);
    },
  });
};

/** Registers the node's metrics on the control API's registry. */
export function registerNodeMetrics(registry: Registry, s: NodeApiSources): void {
  gauge(registry, "psp_node_uptime_seconds", "Seconds since the node started", () => (Date.now() - s.startedAt) / 1000);
  gauge(registry, "psp_link_open", "Open links", () => s.manager.linkCount);
  registerLinkLimitMetrics(registry, s);
  gauge(registry, "psp_onion_circuits", "Circuits through this relay", () => s.relay?.stats().circuits ?? 0);
  counter(registry, "psp_onion_bytes_sent_total", "Cell bytes this relay sent", () => s.relay?.stats().bytesSent ?? 0);
  gauge(registry, "psp_dht_table_size", "Contacts in the DHT routing table", () => s.dht.node.table.size);
  gauge(registry, "psp_dht_stored_records", "Records in the DHT record store", () => s.dht.store.count());
  counter(registry, "psp_dht_lookups_total", "DHT node and value lookups run", () => s.dht.stats.lookups);
  counter(registry, "psp_dht_lookup_failures_total", "DHT lookups that failed", () => s.dht.stats.lookupFailures);
  counter(registry, "psp_dht_requests_sent_total", "DHT requests sent", () => s.dht.transport.stats.requestsSent);
  counter(registry, "psp_dht_requests_served_total", "DHT requests answered", () => s.dht.transport.stats.requestsServed);
  counter(registry, "psp_dht_requests_refused_total", "DHT requests refused before the DHT saw them", () => s.dht.transport.stats.requestsRefused);
  labelledCounter(
    registry,
    "psp_dht_refusals_total",
    "DHT requests the DHT node answered with an ERROR, by kind (quota-exceeded, overloaded, ...)",
    "kind",
    () => s.dht.node.stats.refused,
  );
  counter(registry, "psp_dht_local_refusals_total", "DHT requests of ours stopped by this node's own limits", () => s.dht.node.stats.localRefusals);
  counter(registry, "psp_onion_handshakes_total", "ntor handshakes this relay computed", () => s.relay?.stats().handshakes ?? 0);
  labelledCounter(
    registry,
    "psp_onion_creates_refused_total",
    "CREATEs refused before any handshake work, by cap",
    "cap",
    () => s.relay?.stats().createsRefused ?? {},
  );
  if (s.presence) {
    const { presence, rendezvous } = s.presence;
    gauge(registry, "psp_presence_points", "Presence points this node holds", () => presence.points);
    counter(registry, "psp_presence_registrations_total", "Presence registrations accepted (new points)", () => presence.stats.registered);
    counter(registry, "psp_presence_registrations_refused_total", "Presence registrations and renewals refused", () => presence.stats.refusedRegistrations);
    counter(registry, "psp_presence_introductions_total", "Introductions received", () => presence.stats.introductions);
    counter(registry, "psp_presence_introductions_delivered_total", "Introductions forwarded to the user", () => presence.stats.delivered);
    new Counter({
      name: "psp_presence_introduction_outcomes_total",
      help: "Introductions by how they ended at this presence node",
      labelNames: ["outcome"],
      registers: [registry],
      collect() {
        this.reset();
        const st = presence.stats;
        const outcomes: Record<string, number> = {
          accepted: st.accepted,
          refused: st.refused,
          cancelled: st.cancelled,
          timeout: st.timedOut,
          replayed: st.replayed,
          "cap-reached": st.capReached,
          "pow-required": st.powRequired,
          "pow-invalid": st.powInvalid,
          "unknown-presence": st.unknownPoint,
        };
        for (const [outcome, n] of Object.entries(outcomes)) this.inc({ outcome }, n);
      },
    });
    gauge(registry, "psp_rendezvous_waiting", "Rendezvous cookies waiting for a join", () => rendezvous.waiting);
    counter(registry, "psp_rendezvous_joined_total", "Rendezvous channels spliced", () => rendezvous.stats.joined);
    counter(registry, "psp_rendezvous_relayed_bytes_total", "Bytes passed through spliced rendezvous channels", () => rendezvous.stats.relayedBytes);
  }
  const inSet = (standing: { inSet: boolean | null }): number => (standing.inSet === null ? -1 : standing.inSet ? 1 : 0);
  if (s.authority) {
    const authority = s.authority;
    counter(registry, "psp_authority_requests_total", "Authority requests answered (links and circuits)", () => authority.status().requests);
    new Counter({
      name: "psp_authority_refusals_total",
      help: "Authority requests refused, by kind",
      labelNames: ["kind"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [kind, n] of Object.entries(authority.status().refusals)) this.inc({ kind }, n);
      },
    });
    gauge(registry, "psp_authority_in_set", "1 while the chain counts this node as an authority, 0 when not, -1 before it answered", () =>
      inSet(authority.status()),
    );
  }
  if (s.oracle) {
    const oracle = s.oracle;
    gauge(registry, "psp_oracle_in_set", "1 while the chain counts this node as an oracle, 0 when not, -1 before it answered", () => inSet(oracle.status()));
  }
  if (s.logEvents) registry.registerMetric(s.logEvents);
  if (s.directory) {
    registerDirectoryMetrics(registry, {
      ...(s.directory.service ? { service: s.directory.service } : {}),
      ...(s.directory.client ? { client: s.directory.client } : {}),
      internalView: s.directory.internalViewStats,
      ...(s.directory.outbound ? { outbound: s.directory.outbound.stats } : {}),
    });
  }
}

/** Mounts the node routes (besides /v1/status and /metrics, which the base serves). */
export function mountNodeRoutes(app: FastifyInstance, s: NodeApiSources): void {
  app.get(
    "/v1/dht/stats",
    {
      schema: {
        summary: "DHT statistics",
        description: "Routing table size, stored records, lookups and their failures, requests sent, served and refused (by kind), re-seeds.",
        tags: ["dht"],
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
      },
      attachValidation: true,
    },
    async (request, reply) => {
      if (request.validationError) {
        return reply
          .status(400)
          .send({ error: `key must be a record key, 64 hex digits (recordKey(owner, name)): ${request.validationError.message}`, kind: "bad-request" });
      }
      const key = Uint8Array.from(Buffer.from(request.params.key, "hex"));
      const found = await s.dht.node.findValue(key);
      const r = found.record;
      if (!r) return reply.status(404).send({ error: `no live record under key ${request.params.key} was found in the DHT`, kind: "not-found" });
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
  if (s.directory) mountConsensusRoute(app, s.directory);
  else {
    app.get("/v1/consensus", { schema: CONSENSUS_ROUTE_SCHEMA }, async (_request, reply) =>
      reply.status(503).send({ error: "this node has no directory configured (config directory.discovery); it holds no consensus", kind: "unavailable" }),
    );
  }
}

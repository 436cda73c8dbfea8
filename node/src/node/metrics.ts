/**
 * The node's Prometheus metrics, registered on the control API's registry
 * (api/server.ts) and read from the layers' own counters when scraped
 * (prom-client collect()): links and link RPC, circuits, DHT, presence and
 * rendezvous, streams (landing and distribution), authority, oracle (its
 * standing and, when the oracle service runs, receipts, sessions, usage
 * intake, replication and settlement), the chain endpoint, directory
 * (directory/api.ts registerDirectoryMetrics) and log events. Usage
 * reporting (psp_usage_*) is registered by usage-reporter.ts.
 *
 * Owns the psp_node_* / psp_link_* / psp_rpc_* / psp_onion_* / psp_dht_* /
 * psp_presence_* / psp_rendezvous_* / psp_stream_* / psp_authority_* /
 * psp_oracle_* / psp_chain_* / psp_log_* names; docs/METRICS.md lists every
 * one (test/suites/node-metrics.ts, run on the devnet test's devnet, checks both ways). Label values
 * come from the code (kinds, caps, reasons, roles), never from peers.
 *
 * Trusts the layers it reads from.
 */
import { Counter, Gauge } from "prom-client";
import type { Registry } from "prom-client";
import { chainRpcStats } from "../chain/clients.js";
import type { ChainRpcStats } from "../chain/clients.js";
import { registerDirectoryMetrics } from "../directory/api.js";
import { LINK_CAPS } from "../link/errors.js";
import { RPC_BUDGETS } from "../link/rpc.js";
import type { RpcPeerClass } from "../link/rpc.js";
import type { LogEvent } from "../log.js";
import type { StreamHost } from "../stream/host.js";
import type { NodeApiSources } from "./api.js";
import type { OracleServiceHandle, OracleServiceStatus } from "./roles.js";
import type { NodeUsageReporter } from "./usage-reporter.js";
import type { UsageMeter } from "../stream/usage.js";

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
  counter(registry, "psp_onion_circuits_created_total", "Circuits this relay created", () => s.relay?.stats().circuitsCreated ?? 0);
  labelledCounter(
    registry,
    "psp_onion_circuits_destroyed_total",
    "Circuits torn down at this relay, by DESTROY reason (REQUESTED, FINISHED, CHANNEL_CLOSED, RESOURCELIMIT, ...)",
    "reason",
    () => s.relay?.stats().circuitsDestroyed ?? {},
  );
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
    counter(registry, "psp_presence_renewals_total", "Presence registrations renewed", () => presence.stats.renewals);
    counter(registry, "psp_presence_introductions_queued_total", "Introductions queued behind others for the same user", () => presence.stats.queued);
    counter(registry, "psp_rendezvous_relayed_messages_total", "Messages passed through spliced rendezvous channels", () => rendezvous.stats.relayedMessages);
    labelledCounter(registry, "psp_rendezvous_outcomes_total", "Rendezvous cookies by outcome: established, refused, expired, throttled", "outcome", () => ({
      established: rendezvous.stats.established,
      refused: rendezvous.stats.refused,
      expired: rendezvous.stats.expired,
      throttled: rendezvous.stats.throttled,
    }));
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
  if (s.oracleService) registerOracleServiceMetrics(registry, s.oracleService);
  if (s.streams) registerStreamMetrics(registry, s.streams);
  if (s.usage) registerUsageMetrics(registry, s.usage.meter, s.usage.reporter);
  if (s.chainRpcUrl !== undefined) registerChainMetrics(registry, chainRpcStats(s.chainRpcUrl));
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

/** psp_stream_*: the landing and distribution roles (stream/host.ts counters, its hosted streams when scraped). */
function registerStreamMetrics(registry: Registry, host: StreamHost): void {
  const c = host.counters;
  new Gauge({
    name: "psp_stream_hosted",
    help: "Streams this node hosts, by role (landing: created here; distribution: fed by another node)",
    labelNames: ["role"],
    registers: [registry],
    collect() {
      const byRole = { landing: 0, distribution: 0 };
      for (const v of host.streamsView()) byRole[v.role]++;
      for (const [role, n] of Object.entries(byRole)) this.set({ role }, n);
    },
  });
  gauge(registry, "psp_stream_viewers", "Viewers attached to the streams this node hosts", () => host.streamsView().reduce((n, v) => n + v.viewers, 0));
  gauge(registry, "psp_stream_fed_nodes", "Distribution nodes this node feeds, over all its streams", () =>
    host.streamsView().reduce((n, v) => n + v.feeds.length, 0),
  );
  counter(registry, "psp_stream_created_total", "Streams created at this landing node", () => c.streamsCreated);
  labelledCounter(registry, "psp_stream_chunks_total", "CHUNK frames received (in) and written to viewers and fed nodes (out)", "direction", () => ({
    in: c.chunksIn,
    out: c.chunksOut,
  }));
  labelledCounter(registry, "psp_stream_chunk_bytes_total", "CHUNK frame bytes received (in) and written (out)", "direction", () => ({
    in: c.bytesIn,
    out: c.bytesOut,
  }));
  labelledCounter(
    registry,
    "psp_stream_chunks_dropped_total",
    "Chunks not forwarded, by reason: late (behind the live edge), queue-full (a slow sink's queue), over-rate (producer past its receipt's bitrate)",
    "reason",
    () => ({ late: c.late, "queue-full": c.chunksDropped, "over-rate": c.overRate }),
  );
  counter(registry, "psp_stream_live_edge_jumps_total", "Slow sinks moved to the live edge (their queue dropped)", () => c.liveEdgeJumps);
  labelledCounter(
    registry,
    "psp_stream_refusals_total",
    "Stream links and requests refused, by StreamMediaError kind (busy, bad-session, unknown-stream, ...)",
    "kind",
    () => c.refusals,
  );
}

/** psp_oracle_*: the oracle service's counters (oracle/node.ts status(), typed by roles.ts OracleServiceStatus). */
function registerOracleServiceMetrics(registry: Registry, service: OracleServiceHandle): void {
  let cached: { at: number; status: OracleServiceStatus } | undefined;
  // One status() per scrape: it counts rows in SQLite.
  const status = (): OracleServiceStatus => {
    const now = Date.now();
    if (!cached || now - cached.at > 1000) cached = { at: now, status: service.status() };
    return cached.status;
  };
  counter(registry, "psp_oracle_requests_total", "Oracle requests answered", () => status().requests);
  labelledCounter(registry, "psp_oracle_receipts_issued_total", "Stream-creation receipts issued, by kind (linkable, blind)", "kind", () => status().receipts);
  counter(registry, "psp_oracle_sessions_issued_total", "Viewer session ids issued", () => status().sessions);
  labelledCounter(registry, "psp_oracle_refusals_total", "Oracle requests refused, by OracleError kind", "kind", () => status().refusals);
  gauge(registry, "psp_oracle_stored_receipts", "Issuance rows in this oracle's store", () => status().stored);
  labelledCounter(registry, "psp_oracle_batches_total", "Receipt batches: built, committed on chain, failed to commit", "outcome", () => {
    const b = status().batches;
    return { built: b.batches, committed: b.committed, failed: b.failures };
  });
  new Gauge({
    name: "psp_oracle_outbox_rows",
    help: "Rows waiting to be replicated to the other oracles, by what (issuance, usage)",
    labelNames: ["what"],
    registers: [registry],
    collect() {
      const st = status();
      this.set({ what: "issuance" }, st.outbox);
      this.set({ what: "usage" }, st.usage.outbox);
    },
  });
  new Counter({
    name: "psp_oracle_replication_rows_total",
    help: "Rows sent to other oracles (acknowledged) and rows whose send failed (retried later), by what (issuance, usage)",
    labelNames: ["what", "outcome"],
    registers: [registry],
    collect() {
      this.reset();
      const st = status();
      for (const [what, r] of [
        ["issuance", st.replication],
        ["usage", st.usage.replication],
      ] as const) {
        this.inc({ what, outcome: "sent" }, r.sent);
        this.inc({ what, outcome: "failed" }, r.failed);
      }
    },
  });
  counter(registry, "psp_oracle_replicas_received_total", "Issuance rows taken from other oracles", () => status().replicasReceived);
  labelledCounter(
    registry,
    "psp_oracle_usage_reports_total",
    "Usage reports taken: accepted (new), duplicate, replica (from another oracle)",
    "outcome",
    () => {
      const u = status().usage;
      return { accepted: u.accepted, duplicate: u.duplicates, replica: u.replicas };
    },
  );
  labelledCounter(registry, "psp_oracle_usage_reports_refused_total", "Usage reports refused, by OracleError kind", "kind", () => status().usage.refused);
  gauge(registry, "psp_oracle_usage_reports_stored", "Usage reports in this oracle's store", () => status().usage.stored);
  counter(registry, "psp_oracle_settlement_computed_total", "Reward trees computed (one per settled epoch)", () => status().settlement.computed);
  counter(registry, "psp_oracle_settlement_votes_total", "Reward roots this oracle submitted on chain", () => status().settlement.votes);
  counter(registry, "psp_oracle_reward_proofs_served_total", "Reward proofs served to operators", () => status().settlement.proofsServed);
  gauge(
    registry,
    "psp_oracle_settlement_last_computed_epoch",
    "The last epoch whose reward tree was computed (-1 before any)",
    () => status().settlement.lastComputed ?? -1,
  );
  gauge(
    registry,
    "psp_oracle_settlement_last_voted_epoch",
    "The last epoch this oracle voted a root for (-1 before any)",
    () => status().settlement.lastVoted ?? -1,
  );
}

/** psp_chain_*: this process's JSON-RPC calls to the node's chain endpoint (chain/clients.ts chainRpcStats). */
function registerChainMetrics(registry: Registry, stats: ChainRpcStats): void {
  counter(registry, "psp_chain_rpc_requests_total", "JSON-RPC calls to the chain endpoint (every chain reader of this process)", () => stats.requests);
  counter(registry, "psp_chain_rpc_failures_total", "JSON-RPC calls that failed (unreachable, timed out, an error answer)", () => stats.failures);
  gauge(registry, "psp_chain_last_success_age_seconds", "Seconds since a JSON-RPC call last succeeded (-1 before any)", () =>
    stats.lastSuccessAt === undefined ? -1 : (Date.now() - stats.lastSuccessAt) / 1000,
  );
  gauge(registry, "psp_chain_head_block", "The highest block number the chain endpoint reported (-1 before any)", () =>
    stats.headBlock === undefined ? -1 : Number(stats.headBlock),
  );
}

/** psp_usage_* metrics of a node's meter and reporter, on the control API's registry. */
export function registerUsageMetrics(registry: Registry, meter: UsageMeter, reporter: NodeUsageReporter): void {
  counter(registry, "psp_usage_bytes_counted_total", "Chunk bytes counted for usage reports (sent and received)", () => meter.stats.bytesAdded);
  counter(registry, "psp_usage_dropped_bytes_total", "Counted bytes dropped at the meter's key cap (never reported)", () => meter.stats.droppedBytes);
  counter(registry, "psp_usage_report_windows_total", "Usage windows cut with something to report", () => reporter.stats.windows);
  new Counter({
    name: "psp_usage_reports_total",
    help: "Usage report parts by outcome: queued (signed), delivered (an oracle took it), dropped (outbox cap or close)",
    labelNames: ["outcome"],
    registers: [registry],
    collect() {
      this.reset();
      const s = reporter.stats;
      for (const [outcome, n] of Object.entries({ queued: s.queued, delivered: s.delivered, dropped: s.dropped })) this.inc({ outcome }, n);
    },
  });
  counter(registry, "psp_usage_report_failures_total", "Delivery rounds in which no oracle took a usage report", () => reporter.stats.failures);
  counter(registry, "psp_usage_reports_refused_total", "Usage reports an oracle refused for good (dropped)", () => reporter.stats.refused);
  gauge(registry, "psp_usage_reports_pending", "Signed usage reports waiting for an oracle", () => reporter.pending);
}

/**
 * The devnet's control API: what the devnet runs and what the chain says now.
 *
 *   GET /v1/status                  chain id, head block, node and set counts
 *   GET /v1/devnet                  the whole state file
 *   GET /v1/chain/sets              current authority, oracle and discovery sets, read live
 *   GET /v1/nodes/:name             a node's devnet entry and its live on-chain status
 *   GET /v1/identities/:identityId  an identity's on-chain record and subscription
 *   GET /v1/overview                every node (roles, stake, status from its own API, its last stats event),
 *                                   the chain's sets and head, reward epochs and claims: the dashboard's first state
 *   GET /v1/events                  WebSocket: every node's events tagged { node }, and chain events
 *                                   (block, RootVoted, RootAgreed, RootRejected, Claimed), as they happen
 *   GET /                           the dashboard (dashboard/, built into build/dashboard/ by npm run build)
 *   GET /metrics                    Prometheus metrics
 *
 * Errors on these routes are `{ error: { kind, message } }`. The event
 * aggregate reconnects to a node whose stream closes (a node restarting),
 * with a back-off up to 5 s, for as long as the devnet runs.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import fastifyStatic from "@fastify/static";
import fastifyWebsocket from "@fastify/websocket";
import type { FastifyInstance } from "fastify";
import { Gauge } from "prom-client";
import { formatEther, getAddress, isHex, type Address, type Hex } from "viem";
import { createRewardsView, rewardsAddress } from "../../node/src/chain/rewards.js";
import { bandwidthRewardsAbi } from "../../node/src/chain/contracts.js";
import { attachEventSocket, DEFAULT_EVENT_QUEUE, type EventSocketStats } from "../../node/src/node/events.js";
import { childLogger, logFailure, type Logger } from "../../node/src/log.js";
import { projectRoot } from "./artifacts.js";
import { connectChain } from "../../node/src/chain/clients.js";
import { pspContractsFor } from "../../node/src/chain/contracts.js";
import { readDeployment } from "../../node/src/chain/deployment.js";
import { nodeStatus } from "../../node/src/chain/staking.js";
import { IDENTITY_STATUS } from "../../node/src/chain/attestation.js";
import { mountDemoStreamGateway } from "./devnet-gateway.js";
import { ERROR_RESPONSES, errorBody } from "../../node/src/api/errors.js";
import { jsonValue, startControlApi, type ControlApi } from "../../node/src/api/server.js";
import type { DevnetState } from "./devnet.js";

const statusNames = Object.fromEntries(Object.entries(IDENTITY_STATUS).map(([name, code]) => [code, name]));

/** Where `npm run build:dashboard` puts the dashboard; served at the API root. */
export const DASHBOARD_DIR = join(projectRoot, "build", "dashboard");
/** How often the chain is polled for a new block and reward events. */
const CHAIN_POLL_MS = 1000;
/** Reward epochs the overview lists (newest first). */
const OVERVIEW_EPOCHS = 8;
/** How long the overview waits for one node's /v1/status. */
const NODE_STATUS_TIMEOUT_MS = 1500;

/** One message of the devnet's aggregate stream: a node's event tagged with its name, or a chain event (node null). */
export interface DevnetEvent {
  type: string;
  at: number;
  node: string | null;
  data: Record<string, unknown>;
}

/** A devnet API error: `{ error: { kind, message } }` with its status. */
class DevnetApiError extends Error {
  constructor(
    readonly kind: "not-found" | "bad-request" | "unavailable",
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}


interface Aggregate {
  subscribe(listener: (event: DevnetEvent) => void): () => void;
  /** The last `stats` event of each node (by name) and whether its stream is connected. */
  lastStats: Map<string, DevnetEvent>;
  connected: Set<string>;
  stats: EventSocketStats & { forwarded: number; reconnects: number };
  close(): void;
}

/** Follows every node's /v1/events (reconnecting) and the chain; fans the events out tagged. */
function startAggregate(state: DevnetState, chain: { poll: () => Promise<DevnetEvent[]> }, log: Logger): Aggregate {
  const listeners = new Set<(event: DevnetEvent) => void>();
  const lastStats = new Map<string, DevnetEvent>();
  const connected = new Set<string>();
  const stats = { clients: 0, dropped: 0, forwarded: 0, reconnects: 0 };
  let closed = false;
  const sockets = new Set<WebSocket>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (fn: () => void, ms: number) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };
  const emit = (event: DevnetEvent): void => {
    stats.forwarded++;
    if (event.type === "stats" && event.node) lastStats.set(event.node, event);
    for (const l of [...listeners]) {
      try {
        l(event);
      } catch (err) {
        logFailure(log, err, "deliver a devnet event", "warn");
      }
    }
  };
  const follow = (name: string, api: string, delayMs: number): void => {
    if (closed) return;
    const socket = new WebSocket(api.replace(/^http/, "ws") + "/v1/events");
    sockets.add(socket);
    socket.addEventListener("open", () => {
      connected.add(name);
      delayMs = 500;
    });
    socket.addEventListener("message", (m) => {
      try {
        const e = JSON.parse(String(m.data)) as { type?: unknown; at?: unknown; data?: unknown };
        if (typeof e.type !== "string" || typeof e.at !== "number" || typeof e.data !== "object" || e.data === null) throw new Error("not { type, at, data }");
        emit({ type: e.type, at: e.at, node: name, data: e.data as Record<string, unknown> });
      } catch (err) {
        logFailure(log, err, "read a node event", "debug", { node: name });
      }
    });
    socket.addEventListener("close", () => {
      sockets.delete(socket);
      connected.delete(name);
      if (closed) return;
      // The node restarted or is not up yet: try again, backing off to 5 s.
      stats.reconnects++;
      later(() => follow(name, api, Math.min(delayMs * 2, 5000)), delayMs);
    });
    socket.addEventListener("error", () => undefined);
  };
  for (const n of state.nodes) if (n.controlApi) follow(n.name, n.controlApi, 500);
  const pollChain = async (): Promise<void> => {
    if (closed) return;
    try {
      for (const e of await chain.poll()) emit(e);
    } catch (err) {
      logFailure(log, err, "poll the chain for dashboard events", "debug");
    }
    later(() => void pollChain(), CHAIN_POLL_MS);
  };
  void pollChain();
  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    lastStats,
    connected,
    stats,
    close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.close();
    },
  };
}

const overviewSchema = {
  summary: "The whole devnet at once",
  description:
    "Every node (roles, stake, its /v1/status, its last stats event), the chain head and sets, reward epochs and claims: the dashboard's first state.",
  tags: ["devnet"],
  response: {
    200: {
      type: "object",
      required: ["at", "chain", "nodes", "sets", "rewards"],
      properties: {
        at: { type: "number" },
        chain: {
          type: "object",
          required: ["chainId", "blockNumber", "blockTimestamp"],
          properties: { chainId: { type: "number" }, blockNumber: { type: "string" }, blockTimestamp: { type: "number" } },
        },
        nodes: {
          type: "array",
          items: {
            type: "object",
            required: ["name", "roles", "nodeKey", "stake", "up", "events"],
            properties: {
              name: { type: "string" },
              roles: { type: "array", items: { type: "string" } },
              internal: { type: "boolean" },
              nodeKey: { type: "string" },
              operator: { type: "string" },
              stake: { type: "string" },
              controlApi: { type: "string", nullable: true },
              up: { type: "boolean" },
              events: { type: "boolean" },
              consensusAgeSeconds: { type: "number", nullable: true },
              status: { type: "object", additionalProperties: true, nullable: true },
              stats: { type: "object", additionalProperties: true, nullable: true },
            },
          },
        },
        sets: {
          type: "object",
          properties: {
            authority: { type: "array", items: { type: "string" } },
            oracle: { type: "array", items: { type: "string" } },
            discovery: { type: "array", items: { type: "string" } },
          },
        },
        rewards: {
          type: "object",
          properties: {
            genesis: { type: "number" },
            epochLength: { type: "number" },
            disputeWindow: { type: "number" },
            currentEpoch: { type: "number" },
            totalClaimed: { type: "string" },
            pool: { type: "string" },
            epochs: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  epoch: { type: "number" },
                  status: { type: "string" },
                  root: { type: "string" },
                  cumulativeTotal: { type: "string" },
                  startsAt: { type: "number" },
                  endsAt: { type: "number" },
                  agreedAt: { type: "number" },
                  finalAt: { type: "number", nullable: true },
                },
              },
            },
            claims: {
              type: "array",
              items: { type: "object", properties: { node: { type: "string" }, account: { type: "string" }, claimed: { type: "string" } } },
            },
          },
        },
      },
    },
  },
} as const;

export async function startDevnetApi(state: DevnetState, port: number, logger?: Logger): Promise<ControlApi> {
  const deployment = await readDeployment(state.deploymentFile);
  const clients = await connectChain({ rpcUrl: state.rpcUrl, expectedChainId: state.chainId });
  const c = pspContractsFor(deployment, { public: clients.publicClient });
  const nameOf = new Map(state.nodes.map((n) => [n.nodeKey.toLowerCase(), n.name]));
  const started = Date.now();
  const log = childLogger(logger, "devnet.api");
  const rewards = createRewardsView(clients, rewardsAddress(deployment));
  const nodeByOperator = new Map(state.nodes.map((n) => [getAddress(n.operator), n.name]));

  // The chain as events: a block at a time, and what the reward pool logged in it.
  let lastBlock: bigint | undefined;
  const pollChain = async (): Promise<DevnetEvent[]> => {
    const head = await clients.publicClient.getBlockNumber();
    if (lastBlock !== undefined && head <= lastBlock) return [];
    const from = lastBlock === undefined ? head : lastBlock + 1n;
    lastBlock = head;
    const block = await clients.publicClient.getBlock({ blockNumber: head });
    const at = Date.now();
    const out: DevnetEvent[] = [
      { type: "block", at, node: null, data: { number: head.toString(), timestamp: Number(block.timestamp), transactions: block.transactions.length } },
    ];
    const logs = await clients.publicClient.getContractEvents({ address: rewards.address, abi: bandwidthRewardsAbi, fromBlock: from, toBlock: head });
    for (const entry of logs) {
      const args = (entry as { args?: Record<string, unknown> }).args ?? {};
      const account = typeof args.account === "string" ? getAddress(args.account) : undefined;
      const oracle = typeof args.nodeKey === "string" ? nameOf.get(args.nodeKey.toLowerCase()) : undefined;
      out.push({
        type: "rewards",
        at,
        node: oracle ?? (account ? (nodeByOperator.get(account) ?? null) : null),
        data: { event: entry.eventName, block: Number(entry.blockNumber), ...(jsonValue(args) as Record<string, unknown>) },
      });
    }
    return out;
  };
  const aggregate = startAggregate(state, { poll: pollChain }, log);

  const overview = async () => {
    const [head, sets, timing, current, totalClaimed, unallocated] = await Promise.all([
      clients.publicClient.getBlock(),
      Promise.all([c.nodeRegistry.read.authoritySet(), c.nodeRegistry.read.oracleSet(), c.nodeRegistry.read.discoverySet()]),
      rewards.timing(),
      rewards.currentEpoch(),
      rewards.totalClaimed(),
      rewards.unallocated(),
    ]);
    const now = Date.now();
    const nodes = await Promise.all(
      state.nodes.map(async (n) => {
        const [chainStatus, status] = await Promise.all([
          nodeStatus({ clients, deployment }, n.nodeKey as Hex).catch(() => undefined),
          n.controlApi
            ? fetch(`${n.controlApi}/v1/status`, { signal: AbortSignal.timeout(NODE_STATUS_TIMEOUT_MS) })
                .then(async (r) => (r.ok ? ((await r.json()) as Record<string, unknown>) : undefined))
                .catch(() => undefined)
            : Promise.resolve(undefined),
        ]);
        const consensus = status?.consensus as { validAfter?: number } | null | undefined;
        return {
          name: n.name,
          roles: n.roles,
          internal: n.internal === true,
          nodeKey: n.nodeKey,
          operator: n.operator,
          stake: chainStatus ? formatEther(chainStatus.bonded) : n.stake,
          controlApi: n.controlApi,
          up: status !== undefined,
          events: aggregate.connected.has(n.name),
          consensusAgeSeconds: typeof consensus?.validAfter === "number" ? Math.round((now - consensus.validAfter) / 1000) : null,
          status: status ?? null,
          stats: (aggregate.lastStats.get(n.name)?.data as Record<string, unknown> | undefined) ?? null,
        };
      }),
    );
    const epochs = [];
    for (let e = current; e >= 0n && e > current - BigInt(OVERVIEW_EPOCHS); e--) {
      const r = await rewards.epoch(e);
      epochs.push({
        epoch: Number(r.epoch),
        status: r.status,
        root: r.root,
        cumulativeTotal: r.cumulativeTotal.toString(),
        startsAt: Number(r.startsAt),
        endsAt: Number(r.endsAt),
        agreedAt: Number(r.agreedAt),
        finalAt: r.finalAt === undefined ? null : Number(r.finalAt),
      });
    }
    const claims = await Promise.all(
      state.nodes.map(async (n) => ({ node: n.name, account: n.operator, claimed: (await rewards.claimed(n.operator as Address)).toString() })),
    );
    const setNames = (keys: readonly Hex[]) => keys.map((k) => nameOf.get(k.toLowerCase()) ?? k);
    return {
      at: now,
      chain: { chainId: state.chainId, blockNumber: head.number.toString(), blockTimestamp: Number(head.timestamp) },
      nodes,
      sets: { authority: setNames(sets[0][0]), oracle: setNames(sets[1][0]), discovery: setNames(sets[2][0]) },
      rewards: {
        genesis: Number(timing.genesis),
        epochLength: Number(timing.epochLength),
        disputeWindow: Number(timing.disputeWindow),
        currentEpoch: Number(current),
        totalClaimed: totalClaimed.toString(),
        pool: unallocated.toString(),
        epochs,
        claims: claims.filter((cl) => cl.claimed !== "0"),
      },
    };
  };

  /** The dashboard's routes, in their own scope: errors there are { error: { kind, message } }. */
  const dashboardRoutes = async (scope: FastifyInstance): Promise<void> => {
    scope.setErrorHandler((err: unknown, request, reply) => {
      const e = err as { statusCode?: number; message?: string; kind?: string; status?: number };
      const status = err instanceof DevnetApiError ? err.status : typeof e.statusCode === "number" && e.statusCode >= 400 ? e.statusCode : 500;
      const kind = err instanceof DevnetApiError ? err.kind : status === 400 ? "bad-request" : status === 404 ? "not-found" : "internal";
      if (status >= 500) logFailure(log, err, "answer a devnet API request", "warn", { route: request.url });
      void reply.status(status).send(errorBody(kind, e.message ?? "internal error"));
    });
    // The control API base registers @fastify/websocket (ahead of any token check).
    if (!scope.hasDecorator("websocketServer")) await scope.register(fastifyWebsocket, { options: { maxPayload: 4096 } });
    scope.get("/v1/overview", { schema: overviewSchema }, async () => {
      try {
        return await overview();
      } catch (err) {
        throw new DevnetApiError("unavailable", `the chain did not answer: ${(err as Error).message}`, 503);
      }
    });
    scope.get(
      "/v1/events",
      {
        websocket: true,
        schema: {
          summary: "Every node's events and the chain's (WebSocket)",
          description:
            "JSON text messages { type, at, node, data }: each node's /v1/events tagged with its name, and block and reward-pool events (node null).",
          tags: ["devnet"],
        },
      },
      (socket) => attachEventSocket(socket, (l) => aggregate.subscribe(l), { maxQueue: DEFAULT_EVENT_QUEUE * 4, stats: aggregate.stats, logger: log }),
    );
    // The dashboard's player: the demo stream's sealed chunks, opened in the page (devnet-gateway.ts).
    await mountDemoStreamGateway(scope, state, { logger: log });
    if (existsSync(join(DASHBOARD_DIR, "index.html"))) {
      await scope.register(fastifyStatic, { root: DASHBOARD_DIR, prefix: "/", wildcard: false, index: "index.html" });
    } else {
      scope.get("/", { schema: { summary: "The dashboard", description: "Not built: npm run build:dashboard builds it.", tags: ["devnet"] } }, async () => {
        throw new DevnetApiError("unavailable", `the dashboard is not built (no ${DASHBOARD_DIR}/index.html): run npm run build:dashboard`, 503);
      });
    }
  };

  const api = await startControlApi({
    port,
    metricLabels: { process: "devnet" },
    status: async () => {
      const [authorities, oracles, discovery] = await Promise.all([
        c.nodeRegistry.read.authorityCount(),
        c.nodeRegistry.read.oracleCount(),
        c.nodeRegistry.read.discoveryCount(),
      ]);
      return {
        role: "devnet",
        chainId: state.chainId,
        rpcUrl: state.rpcUrl,
        blockNumber: await clients.publicClient.getBlockNumber(),
        uptimeSeconds: Math.round((Date.now() - started) / 1000),
        nodes: state.nodes.length,
        sets: { authority: authorities, oracle: oracles, discovery },
      };
    },
    routes: async (app, metrics) => {
      await app.register(dashboardRoutes);
      new Gauge({
        name: "psp_devnet_block_number",
        help: "Head block of the devnet chain",
        registers: [metrics],
        async collect() {
          this.set(Number(await clients.publicClient.getBlockNumber()));
        },
      });
      new Gauge({
        name: "psp_devnet_bonded_stake_psp",
        help: "Total PSP bonded in the NodeRegistry",
        registers: [metrics],
        async collect() {
          this.set(Number((await c.nodeRegistry.read.totalBonded()) / 10n ** 18n));
        },
      });

      const open = (description: string) => ({ type: "object", additionalProperties: true, description }) as const;
      const member = {
        type: "object",
        properties: { name: { type: "string", nullable: true }, nodeKey: { type: "string" }, signer: { type: "string" } },
        required: ["name", "nodeKey", "signer"],
      } as const;
      app.get(
        "/v1/devnet",
        {
          schema: {
            summary: "The devnet's state",
            description:
              "What state.json holds: chain, contracts, nodes with their addresses and control APIs, accounts, the demo users, and `demo.stream` (ticket and gateway path) once the demo stream runs.",
            tags: ["devnet"],
            response: { 200: open("the devnet state (scripts/lib/devnet.ts DevnetState)"), ...ERROR_RESPONSES },
          },
        },
        async () => jsonValue(state),
      );

      app.get(
        "/v1/chain/sets",
        {
          schema: {
            summary: "The current on-chain sets",
            description: "The authority, oracle and discovery sets as NodeRegistry holds them now, each member named when it is a devnet node.",
            tags: ["devnet"],
            response: {
              200: {
                type: "object",
                properties: {
                  authority: { type: "array", items: member },
                  oracle: { type: "array", items: member },
                  discovery: { type: "array", items: member },
                },
                required: ["authority", "oracle", "discovery"],
              },
              ...ERROR_RESPONSES,
            },
          },
        },
        async () => {
          const named = ([keys, signers]: readonly [readonly Hex[], readonly Hex[]]) =>
            keys.map((nodeKey, i) => ({ name: nameOf.get(nodeKey.toLowerCase()) ?? null, nodeKey, signer: signers[i] }));
          const [authority, oracle, discovery] = await Promise.all([
            c.nodeRegistry.read.authoritySet(),
            c.nodeRegistry.read.oracleSet(),
            c.nodeRegistry.read.discoverySet(),
          ]);
          return { authority: named(authority), oracle: named(oracle), discovery: named(discovery) };
        },
      );

      app.get<{ Params: { name: string } }>(
        "/v1/nodes/:name",
        {
          schema: {
            summary: "A devnet node",
            description: "The node's devnet entry (addresses, roles, keys' files, control API) and its live on-chain status (stake, roles, sets).",
            tags: ["devnet"],
            params: { type: "object", properties: { name: { type: "string", pattern: "^[a-z0-9-]{1,32}$" } }, required: ["name"] },
            response: { 200: open("the devnet entry and `chain`, its NodeRegistry status"), ...ERROR_RESPONSES },
          },
        },
        async (request, reply) => {
          const node = state.nodes.find((n) => n.name === request.params.name);
          if (!node)
            return reply
              .status(404)
              .send(errorBody("not-found", `no devnet node named ${request.params.name}: one of ${state.nodes.map((n) => n.name).join(", ")}`));
          return jsonValue({ ...node, chain: await nodeStatus({ clients, deployment }, node.nodeKey) });
        },
      );

      app.get<{ Params: { identityId: string } }>(
        "/v1/identities/:identityId",
        {
          schema: {
            summary: "An identity on chain",
            description:
              "IdentityRegistry's record of an identity (owner, status, kind, application, key, successor) and its subscription; amounts and times as decimal strings.",
            tags: ["devnet"],
            params: { type: "object", properties: { identityId: { type: "string", pattern: "^0x[0-9a-fA-F]{64}$" } }, required: ["identityId"] },
            response: { 200: open("the identity and `subscription { expiresAt, active }`"), ...ERROR_RESPONSES },
          },
        },
        async (request, reply) => {
          const id = request.params.identityId;
          if (!isHex(id)) return reply.status(400).send(errorBody("bad-request", "identityId must be 0x followed by 64 hex digits"));
          const identity = await c.identityRegistry.read.getIdentity([id]);
          if (identity.status === IDENTITY_STATUS.none) return reply.status(404).send(errorBody("not-found", `identity ${id} is not registered`));
          const now = BigInt(Math.floor(Date.now() / 1000));
          return jsonValue({
            identityId: id,
            owner: identity.owner,
            status: statusNames[identity.status],
            kind: identity.kind,
            applicationId: identity.applicationId,
            key: identity.key,
            registeredAt: identity.registeredAt,
            successor: identity.successor,
            subscription: {
              expiresAt: await c.subscriptions.read.subscriptionExpiry([id]),
              active: await c.subscriptions.read.isSubscribed([id, now]),
            },
          });
        },
      );
    },
  });
  return {
    ...api,
    close: async () => {
      aggregate.close();
      await api.close();
    },
  };
}

/**
 * The devnet's control API: what the devnet runs and what the chain says now.
 *
 *   GET /v1/status                  chain id, head block, node and set counts
 *   GET /v1/devnet                  the whole state file
 *   GET /v1/chain/sets              current authority, oracle and discovery sets, read live
 *   GET /v1/nodes/:name             a node's devnet entry and its live on-chain status
 *   GET /v1/identities/:identityId  an identity's on-chain record and subscription
 *   GET /metrics                    Prometheus metrics
 */
import { Gauge } from "prom-client";
import { isHex, type Hex } from "viem";
import { connectChain } from "../../node/src/chain/clients.js";
import { pspContractsFor } from "../../node/src/chain/contracts.js";
import { readDeployment } from "../../node/src/chain/deployment.js";
import { nodeStatus } from "../../node/src/chain/staking.js";
import { IDENTITY_STATUS } from "../../node/src/chain/attestation.js";
import { startControlApi, type ControlApi } from "../../node/src/api/server.js";
import type { DevnetState } from "./devnet.js";

const statusNames = Object.fromEntries(Object.entries(IDENTITY_STATUS).map(([name, code]) => [code, name]));

export async function startDevnetApi(state: DevnetState, port: number): Promise<ControlApi> {
  const deployment = await readDeployment(state.deploymentFile);
  const clients = await connectChain({ rpcUrl: state.rpcUrl, expectedChainId: state.chainId });
  const c = pspContractsFor(deployment, { public: clients.publicClient });
  const nameOf = new Map(state.nodes.map((n) => [n.nodeKey.toLowerCase(), n.name]));
  const started = Date.now();

  return await startControlApi({
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
    routes: (app, metrics) => {
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

      app.get("/v1/devnet", async () => state);

      app.get("/v1/chain/sets", async () => {
        const named = ([keys, signers]: readonly [readonly Hex[], readonly Hex[]]) =>
          keys.map((nodeKey, i) => ({ name: nameOf.get(nodeKey.toLowerCase()) ?? null, nodeKey, signer: signers[i] }));
        const [authority, oracle, discovery] = await Promise.all([
          c.nodeRegistry.read.authoritySet(),
          c.nodeRegistry.read.oracleSet(),
          c.nodeRegistry.read.discoverySet(),
        ]);
        return { authority: named(authority), oracle: named(oracle), discovery: named(discovery) };
      });

      app.get<{ Params: { name: string } }>(
        "/v1/nodes/:name",
        { schema: { params: { type: "object", properties: { name: { type: "string", pattern: "^[a-z0-9-]{1,32}$" } }, required: ["name"] } } },
        async (request, reply) => {
          const node = state.nodes.find((n) => n.name === request.params.name);
          if (!node) return reply.status(404).send({ error: `no devnet node named ${request.params.name}`, nodes: state.nodes.map((n) => n.name) });
          return { ...node, chain: await nodeStatus({ clients, deployment }, node.nodeKey) };
        },
      );

      app.get<{ Params: { identityId: string } }>(
        "/v1/identities/:identityId",
        { schema: { params: { type: "object", properties: { identityId: { type: "string", pattern: "^0x[0-9a-fA-F]{64}$" } }, required: ["identityId"] } } },
        async (request, reply) => {
          const id = request.params.identityId;
          if (!isHex(id)) return reply.status(400).send({ error: "identityId must be 0x followed by 64 hex digits" });
          const identity = await c.identityRegistry.read.getIdentity([id]);
          if (identity.status === IDENTITY_STATUS.none) return reply.status(404).send({ error: `identity ${id} is not registered` });
          const now = BigInt(Math.floor(Date.now() / 1000));
          return {
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
          };
        },
      );
    },
  });
}

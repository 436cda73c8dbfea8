/**
 * The oracle service as a node runs it: `startOracleService` is the factory
 * `psp node run` hands startNode (StartNodeOptions.oracleService), so
 * node/src never imports oracle/ (only the CLI's composition does).
 *
 * Composes: a chain connection with the oracle's signer (its Pki for the
 * oracle set and subscriptions; its wallet for commitBatch and
 * registerBlindKey), the SQLite issuance store (`oracle.store`, default
 * <dataDir>/oracle.sqlite, else in memory with a warning), the service,
 * the batcher, the blind key keeper (one RSA-2048 key for the configured
 * parameter class, published on chain, renewed an hour before it expires,
 * kept in the store across restarts), the replicator to the other current
 * oracles over node links (link RPC service ORACLE_RPC_SERVICE, addresses
 * from the consensus), usage intake (usage.ts) with its own replicator of
 * reports, settlement (settlement.ts: epoch roots voted on BandwidthRewards
 * with the oracle's signer), and the onion service "oracle" at the end of
 * circuits.
 *
 * Trusts: the chain and the consensus the node hands it; everything else is
 * service.ts's to check.
 */
import { join } from "node:path";
import { createPrivateKey } from "node:crypto";
import { bytesToHex, parseEventLogs, zeroAddress, type Address } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { verifyAccessCertificateWithConsensus } from "../node/src/authority/certificate.js";
import { connectChain, type ChainClients } from "../node/src/chain/clients.js";
import { nodeRegistryAbi, oracleReceiptsAbi } from "../node/src/chain/contracts.js";
import { readDeployment, type Deployment } from "../node/src/chain/deployment.js";
import { createRewardsView, rewardsAddress, submitRewardRoot } from "../node/src/chain/rewards.js";
import { epochTimingOf } from "../node/src/node/stream.js";
import { receiptChainView } from "../node/src/stream/oracle-chain.js";
import { createChainPki } from "../node/src/chain/pki.js";
import { transact } from "../node/src/chain/transact.js";
import { blindRsaPrivateKey, generateBlindRsaKey } from "../node/src/crypto/blind-rsa.js";
import { decodeAddress } from "../node/src/directory/address.js";
import { NodeFlag } from "../node/src/directory/config.js";
import { childLogger, logFailure } from "../node/src/log.js";
import { loadSignerKey } from "../node/src/node/config.js";
import type { OracleServiceContext, OracleServiceHandle } from "../node/src/node/roles.js";
import { streamRpcService } from "../node/src/onion/stream-rpc.js";
import { encodeOracleMessage, MAX_ORACLE_LINK_MESSAGE_BYTES, MAX_ORACLE_MESSAGE_BYTES } from "../node/src/stream/oracle-messages.js";
import { blindKeyId, type StreamParams } from "../node/src/stream/receipt.js";
import { createBatcher, type Batcher } from "./batcher.js";
import { OracleError } from "./errors.js";
import { createReplicator, issuanceMessage, ORACLE_RPC_SERVICE, type Replicator } from "./replication.js";
import { createOracleService, DEFAULT_RECEIPT_PARAMS, type ActiveBlindKey, type OracleService } from "./service.js";
import { createSettlement, type RewardsChainView, type Settlement } from "./settlement.js";
import { OracleStore } from "./store.js";
import { createUsageIntake, type UsageIntake } from "./usage.js";

/** The onion service name. */
export const ORACLE_CIRCUIT_SERVICE = "oracle";
/** How long a blind key is valid (and how often one is published). */
export const BLIND_KEY_VALIDITY_SECONDS = 24 * 3600;
/** A new key is published this long before the current one expires. */
export const BLIND_KEY_RENEW_SECONDS = 3600;

/** The rate-limit key of a request that came through local circuit `circuitId`. */
export const circuitClientKey = (circuitId: number): string => `circuit:${circuitId}`;

/** A running oracle service: what startNode needs, plus its parts for tests and status. */
export interface RunningOracleService extends OracleServiceHandle {
  readonly service: OracleService;
  readonly store: OracleStore;
  readonly batcher: Batcher;
  readonly replicator: Replicator;
  readonly reportReplicator: Replicator;
  readonly usage: UsageIntake;
  readonly settlement: Settlement;
}

/** Settlement defaults (docs/spec/rewards.md); every oracle of a network must share price and budget, or their roots differ. */
export const DEFAULT_WEI_PER_BYTE = 1_000_000n;
export const DEFAULT_EPOCH_BUDGET = 1_000n * 10n ** 18n;
export const DEFAULT_ACCEPT_SECONDS = 300;
export const DEFAULT_SETTLE_DELAY_SECONDS = 600;

/** The settlement's chain view over BandwidthRewards and the NodeRegistry, sending votes as the oracle's signer. */
function rewardsChain(clients: ChainClients, deployment: Deployment): RewardsChainView {
  const view = createRewardsView(clients, rewardsAddress(deployment));
  const operators = new Map<string, Address | undefined>();
  return {
    clock: () => epochTimingOf(clients, deployment),
    async lastAgreed() {
      const epoch = await view.lastAgreedEpoch();
      if (epoch === undefined) return undefined;
      const record = await view.epoch(epoch);
      return { epoch: Number(epoch), root: record.root, total: record.cumulativeTotal, final: record.status === "final" };
    },
    async agreedRoot(epoch) {
      const record = await view.epoch(BigInt(epoch));
      return record.agreedAt === 0n ? undefined : record.root;
    },
    hasVoted: (epoch, nodeKey) => view.hasVoted(BigInt(epoch), nodeKey),
    async submitRoot(epoch, root, total) {
      await submitRewardRoot({ clients, address: view.address, epoch: BigInt(epoch), root, cumulativeTotal: total });
    },
    async operatorOf(nodeKey) {
      // A node's operator never changes (NodeRegistry has no transfer): cached for the process.
      if (!operators.has(nodeKey)) {
        const node = await clients.publicClient.readContract({ address: deployment.contracts.NodeRegistry.address, abi: nodeRegistryAbi, functionName: "getNode", args: [nodeKey] });
        operators.set(nodeKey, node.operator === zeroAddress ? undefined : node.operator);
      }
      return operators.get(nodeKey);
    },
  };
}

export async function startOracleService(ctx: OracleServiceContext): Promise<RunningOracleService> {
  const log = childLogger(ctx.logger, "oracle");
  const signer = privateKeyToAccount(await loadSignerKey(ctx.config.signer, "oracle.signer"));
  const deployment = await readDeployment(ctx.chain.deploymentFile);
  const clients = await connectChain({ rpcUrl: ctx.chain.rpcUrl, expectedChainId: deployment.chainId, account: signer });
  const pki = await createChainPki({
    clients,
    deployment,
    ...(ctx.chain.cacheMs === undefined ? {} : { cacheMs: ctx.chain.cacheMs }),
    ...(ctx.chain.confirmations === undefined ? {} : { confirmations: ctx.chain.confirmations }),
    follow: { intervalMs: ctx.chain.followMs ?? 2_000 },
    ...(ctx.logger ? { logger: ctx.logger } : {}),
  });
  const walletClient = clients.walletClient!;
  const receiptsAddress = deployment.contracts.OracleReceipts.address;
  const storePath = ctx.config.store ?? (ctx.dataDir ? join(ctx.dataDir, "oracle.sqlite") : ":memory:");
  if (storePath === ":memory:") log.warn("no oracle.store and no dataDir: receipt owners are kept in memory only and lost on restart");
  const store = new OracleStore(storePath);
  const nodeKeyHex = bytesToHex(ctx.identity.publicKey).slice(2);
  const params: StreamParams = ctx.config.params ?? DEFAULT_RECEIPT_PARAMS;

  // ------------------------------------------------------------ blind keys
  const active: ActiveBlindKey[] = [];
  const loadKeys = () => {
    active.length = 0;
    for (const k of store.blindKeys()) active.push({ ...k, privateKey: blindRsaPrivateKey(createPrivateKey(k.pkcs8Pem)) });
  };
  loadKeys();
  const ensureBlindKey = async (): Promise<void> => {
    const nowSeconds = Math.floor(Date.now() / 1000);
    if (active.some((k) => k.validUntil - BLIND_KEY_RENEW_SECONDS > nowSeconds)) return;
    const sk = generateBlindRsaKey(2048);
    const validFrom = nowSeconds - 60;
    const validUntil = nowSeconds + BLIND_KEY_VALIDITY_SECONDS;
    const spki = sk.publicKey.spki;
    await transact({
      publicClient: clients.publicClient,
      walletClient,
      address: receiptsAddress,
      abi: oracleReceiptsAbi,
      functionName: "registerBlindKey",
      args: [bytesToHex(spki), params.bitrateKbps, params.maxDurationSeconds, params.formatFlags, BigInt(validFrom), BigInt(validUntil)],
    });
    const pkcs8Pem = sk.key.export({ format: "pem", type: "pkcs8" }).toString();
    store.saveBlindKey({ keyId: blindKeyId(spki), pkcs8Pem, spki, params, validFrom, validUntil });
    loadKeys();
    log.info({ keyId: blindKeyId(spki), validUntil }, "published a blind receipt key");
  };
  // Renewed every 5 minutes; a failed publication (the chain down, a nonce race with another sender of this signer) retries in 5 s.
  let keyTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const keepKeys = async (): Promise<void> => {
    let retryMs = 5 * 60_000;
    try {
      const oracles = await pki.currentOracles();
      if (oracles.members.some((m) => m.nodeKey.toLowerCase() === `0x${nodeKeyHex}`)) await ensureBlindKey();
    } catch (err) {
      logFailure(log, err, "publish a blind receipt key", "warn");
      retryMs = 5_000;
    }
    if (!closed) {
      keyTimer = setTimeout(() => void keepKeys(), retryMs);
      keyTimer.unref();
    }
  };

  // ------------------------------------------------------------ batches, service
  const batcher = createBatcher({
    store,
    oracle: nodeKeyHex,
    logger: log,
    ...(ctx.config.batchIntervalMs === undefined ? {} : { intervalMs: ctx.config.batchIntervalMs }),
    commit: async (root, count) => {
      const { receipt } = await transact({
        publicClient: clients.publicClient,
        walletClient,
        address: receiptsAddress,
        abi: oracleReceiptsAbi,
        functionName: "commitBatch",
        args: [root, count],
      });
      const [event] = parseEventLogs({ abi: oracleReceiptsAbi, logs: receipt.logs, eventName: "BatchCommitted" });
      if (!event) throw new OracleError("chain-unavailable", "commitBatch was mined without a BatchCommitted event");
      return event.args.batchId;
    },
  });
  // ------------------------------------------------------------ usage and rewards
  const rewardsConfig = ctx.config.rewards ?? {};
  const receiptView = receiptChainView(clients.publicClient, deployment);
  const currentOracleKeys = async (): Promise<ReadonlySet<string>> =>
    new Set((await pki.currentOracles()).members.map((m) => m.nodeKey.toLowerCase().replace(/^0x/, "")));
  const otherOracles = async (): Promise<string[]> => [...(await currentOracleKeys())].filter((k) => k !== nodeKeyHex);
  const chainRewards = rewardsChain(clients, deployment);
  const usage = createUsageIntake({
    store,
    clock: chainRewards.clock,
    oracleKeys: currentOracleKeys,
    peers: otherOracles,
    isListedNode: (key) => ctx.consensus()?.entries.some((e) => bytesToHex(e.identity).slice(2) === key) ?? false,
    receipts: receiptView,
    acceptSeconds: rewardsConfig.acceptSeconds ?? DEFAULT_ACCEPT_SECONDS,
    logger: log,
  });
  const settlement = createSettlement({
    store,
    chain: chainRewards,
    receipts: receiptView,
    oracleKeys: currentOracleKeys,
    policy: {
      weiPerByte: BigInt(rewardsConfig.weiPerByte ?? DEFAULT_WEI_PER_BYTE),
      epochBudget: BigInt(rewardsConfig.epochBudget ?? DEFAULT_EPOCH_BUDGET),
    },
    nodeKey: `0x${nodeKeyHex}`,
    settleDelaySeconds: rewardsConfig.settleDelaySeconds ?? DEFAULT_SETTLE_DELAY_SECONDS,
    logger: log,
  });

  const service = createOracleService({
    nodeSecretKey: ctx.identity.secretKey,
    pki,
    verifyCertificate: (cert, now) =>
      verifyAccessCertificateWithConsensus(cert, ctx.consensus(), { now, chainId: pki.chainId, registry: pki.identityRegistry }),
    store,
    blindKeys: () => active,
    params,
    onIssued: () => batcher.poke(),
    usage,
    settlement,
    ...(ctx.logger ? { logger: ctx.logger } : {}),
  });

  // ------------------------------------------------------------ replication
  const stopServing = ctx.rpc.serve(
    ORACLE_RPC_SERVICE,
    (request, rpcCtx) => service.handleMessage(request, { client: `node:${rpcCtx.peer ? bytesToHex(rpcCtx.peer) : "anonymous"}`, peer: rpcCtx.peer }),
    {
      allowAnonymous: false,
      // Node usage reports are larger than what circuits carry.
      maxRequestBytes: MAX_ORACLE_LINK_MESSAGE_BYTES,
    },
  );
  const addressOf = (peer: string) => {
    const entry = ctx.consensus()?.entries.find((e) => bytesToHex(e.identity).slice(2) === peer && (e.flags & NodeFlag.oracle) !== 0);
    const encoded = entry?.encodedAddresses[0];
    const address = encoded ? decodeAddress(encoded) : ctx.internalAddress?.(peer);
    if (!address) throw new OracleError("unreachable", `oracle ${peer.slice(0, 16)}… has no address in the consensus yet`);
    return { identity: new Uint8Array(Buffer.from(peer, "hex")), host: address.host, port: address.port };
  };
  const replicator = createReplicator({
    queue: store.issuanceOutbox(),
    message: issuanceMessage,
    what: "issuance rows",
    logger: log,
    ...(ctx.config.replicateIntervalMs === undefined ? {} : { intervalMs: ctx.config.replicateIntervalMs }),
    send: (peer, request) => ctx.rpc.request(addressOf(peer), ORACLE_RPC_SERVICE, request, { timeoutMs: 10_000, maxResponseBytes: MAX_ORACLE_MESSAGE_BYTES }),
  });
  const reportReplicator = createReplicator({
    queue: store.reportOutbox(),
    // A node report is up to 48 KiB: one per message keeps every message under the link limit.
    message: (reports) => encodeOracleMessage({ t: "reports-replicate", reports }),
    batch: 1,
    what: "usage reports",
    logger: log,
    ...(ctx.config.replicateIntervalMs === undefined ? {} : { intervalMs: ctx.config.replicateIntervalMs }),
    send: (peer, request) => ctx.rpc.request(addressOf(peer), ORACLE_RPC_SERVICE, request, { timeoutMs: 10_000, maxResponseBytes: MAX_ORACLE_MESSAGE_BYTES }),
  });

  await keepKeys();

  const circuitService = streamRpcService((request, sctx) => service.handleMessage(request, { client: circuitClientKey(sctx.circuitId) }), {
    maxMessageBytes: MAX_ORACLE_MESSAGE_BYTES,
    maxInflight: 4,
    flush: ctx.flush,
    logger: log,
  });
  log.info({ store: storePath, blindKeys: active.length, issued: store.count() }, "oracle service started");

  return {
    circuitService,
    service,
    store,
    batcher,
    replicator,
    reportReplicator,
    usage,
    settlement,
    status: () => ({
      ...service.status(),
      stored: store.count(),
      outbox: store.outboxSize(),
      batches: batcher.stats(),
      replication: replicator.stats(),
      usage: { ...usage.stats(), stored: store.reportCount(), outbox: store.reportOutbox().size(), replication: reportReplicator.stats() },
      settlement: settlement.stats(),
    }),
    close() {
      closed = true;
      clearTimeout(keyTimer);
      replicator.close();
      reportReplicator.close();
      settlement.close();
      batcher.close();
      stopServing();
      pki.close();
      store.close();
    },
  };
}

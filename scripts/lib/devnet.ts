/**
 * The local devnet: a Hardhat JSON-RPC chain, the PSP contracts, funded test
 * accounts (with ethers keystores under one documented passphrase), staked
 * nodes of every role, each running as its own `psp node run` process
 * (devnet-nodes.ts), and a demo of the on-chain flows (identity registration
 * with attestations gathered from the authority nodes over TLS, an access
 * certificate from them, a subscription, an oracle receipt batch). Writes
 * the state file (node/src/client/devnet-state.ts) that `psp`, the client
 * library and scripts read.
 *
 * Everything goes through JSON-RPC with viem, exactly as against any other
 * EVM chain; only the funding uses Hardhat's well-known dev accounts.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { createTestClient, formatEther, http, parseEther, keccak256, toHex, type Address, type Hex } from "viem";
import { setIntervalMining } from "viem/actions";
import { generatePrivateKey, privateKeyToAccount, type PrivateKeyAccount } from "viem/accounts";
import { connectChain, type ChainClients } from "../../node/src/chain/clients.js";
import { ChainError } from "../../node/src/chain/errors.js";
import { pspContractsFor, roleNames, NodeRole, type NodeRoleName } from "../../node/src/chain/contracts.js";
import type { Deployment } from "../../node/src/chain/deployment.js";
import { applicationId, REGISTRATION_POLICY } from "../../node/src/chain/attestation.js";
import { remoteAttester } from "../../node/src/authority/service.js";
import { connectAuthorities, requestAccessCertificateWhenConfirmed } from "../../node/src/authority/node.js";
import type { DevnetKeystore, DevnetNodeState, DevnetState } from "../../node/src/client/devnet-state.js";
import { majorityThreshold } from "../../node/src/directory/config.js";
import { encryptKeyFile } from "../../node/src/crypto/keyfile.js";
import { encryptEvmKeystore } from "../../node/src/crypto/evm-keystore.js";
import type { PeerAddress } from "../../node/src/link/manager.js";
import { defaultCertificateThreshold, verifyAccessCertificate } from "../../node/src/authority/certificate.js";
import { registerIdentity } from "../../node/src/chain/identities.js";
import { nodeKeyHex, registerNode, signNodeRegistration, stakeNode } from "../../node/src/chain/staking.js";
import { transact } from "../../node/src/chain/transact.js";
import { identityRegistryAbi, oracleReceiptsAbi, pspTokenAbi, subscriptionsAbi } from "../../node/src/chain/generated/abis.js";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { solveStaticPuzzle } from "../../node/src/crypto/puzzles.js";
import { DEFAULT_DHT_CONFIG } from "../../node/src/dht/config.js";
import { startDevnetNodes, type DevnetNodeEntry, type DevnetNodes, type NodePlacement } from "./devnet-nodes.js";
import { formatIdentity } from "../../node/src/crypto/identity.js";
import { deployPsp, devnetParams, writeDeployment, type DeployParams } from "./deploy.js";
import { devAccount } from "./devnet-accounts.js";
import { admitNodes } from "./governance.js";
import { startHardhatNode, type HardhatNode } from "./hardhat-node.js";
import { startDevnetApi } from "./devnet-api.js";
import { DEMO_COMMERCIAL, publishDemoCommercial } from "./devnet-commercial.js";
import type { DevnetCommercialMode } from "./devnet-commercial.js";
import { childLogger } from "../../node/src/log.js";
import type { Logger } from "../../node/src/log.js";

export interface DevnetNodeSpec {
  name: string;
  roles: NodeRoleName[];
  /** PSP bonded to the node. */
  stake: bigint;
  /** An internal relay (issue 20): listed without an address, only a middle or last hop. */
  internal?: boolean;
  /** A commercial node of the demo application (issue 17): published on chain, or claiming it without publication. */
  commercial?: DevnetCommercialMode;
}

/** A handful of nodes of every role; stakes differ so set ordering is visible. */
export const defaultDevnetNodes: DevnetNodeSpec[] = [
  { name: "authority-1", roles: ["onion", "authority"], stake: parseEther("150000") },
  { name: "authority-2", roles: ["onion", "authority"], stake: parseEther("125000") },
  { name: "authority-3", roles: ["onion", "authority"], stake: parseEther("100000") },
  { name: "oracle-1", roles: ["onion", "oracle"], stake: parseEther("120000") },
  { name: "oracle-2", roles: ["onion", "oracle"], stake: parseEther("100000") },
  { name: "discovery-1", roles: ["onion", "discovery"], stake: parseEther("60000") },
  { name: "discovery-2", roles: ["onion", "discovery"], stake: parseEther("55000") },
  { name: "discovery-3", roles: ["onion", "discovery"], stake: parseEther("50000") },
  { name: "onion-1", roles: ["onion"], stake: parseEther("5000"), commercial: "published" },
  { name: "onion-2", roles: ["onion"], stake: parseEther("3000"), commercial: "claims-only" },
  { name: "onion-3", roles: ["onion"], stake: parseEther("1000"), internal: true },
];

export type { DevnetKeystore, DevnetNodeState, DevnetState };

/**
 * The passphrase of every devnet keystore and key file (devnet/keys/): devnet
 * only, printed by `npm start`, used by the CLI on the devnet when
 * PSP_KEYSTORE_PASSWORD / PSP_KEY_PASSWORD are not set.
 */
export const DEVNET_PASSPHRASE = "psp-devnet";
/** scrypt cost of devnet keystores and key files: fast to open, never for real keys. */
const DEVNET_SCRYPT_N = 2 ** 12;
/** Times the devnet asks the authorities to attest a demo user before it gives up. */
const DEMO_REGISTRATION_ATTEMPTS = 3;

/** What the devnet demonstrated at start; the `demo` section of state.json. */
export interface DevnetDemo {
  application: { namespace: string; application: string; applicationId: Hex; owner: Address };
  /** The demo identity ("alice"): its key file is encrypted under DEVNET_PASSPHRASE. */
  identity: { identity: string; identityId: Hex; owner: Address; keyFile: string };
  /** The registered demo users (alice, carol), key files under DEVNET_PASSPHRASE: they find each other and talk on `npm start`. */
  users: { name: string; identity: string; identityId: Hex; keyFile: string }[];
  /** The demo identity's access certificate, obtained from the authority nodes over TLS. */
  certificate: { file: string; authorities: number; notAfter: number; verified: boolean };
  /** Registration + certificate through the authority nodes, end to end (ms). */
  endToEndMs: number;
  subscription: { planId: string; expiresAt: number };
  receipts: { batchId: string; count: number; verified: boolean };
}

export interface DevnetOptions {
  /** 0 picks a free port; the devnet command uses 8545. */
  port: number;
  /** Control API port; 0 picks a free one; the devnet command uses 8600. */
  apiPort: number;
  /** Where state.json, keys and logs go. */
  dir: string;
  /** Where the deployment file is written. */
  deploymentFile: string;
  nodes?: DevnetNodeSpec[];
  params?: DeployParams;
  /**
   * Which nodes run as `psp node run` processes (default every node). The
   * authority nodes must be among them: the demo registers through them.
   */
  runNodes?: (node: DevnetNodeEntry) => boolean;
  /** Discovery voting schedule for those nodes (default: 60 s periods). */
  schedule?: { periodMs: number; voteDelayMs: number; distDelayMs: number; validPeriods: number };
  /** Progress of the start-up, one info line per step (component "devnet"); silent when absent. */
  logger?: Logger;
  /** Address the chain listens on (default 127.0.0.1; the multi-host testbed gives the root namespace's). */
  chainHost?: string;
  /** Where each node runs (default loopback; the multi-host testbed: one network namespace each). */
  placement?: (node: DevnetNodeEntry, index: number) => NodePlacement;
  /** Called as the start-up reaches each of DEVNET_STEPS (scripts/devnet.ts shows them with node/src/cli/progress.ts). */
  onStep?: (step: DevnetStep) => void;
}

/** The devnet's start-up steps, in order. */
export const DEVNET_STEPS = ["chain", "deploy", "nodes", "demo"] as const;
export type DevnetStep = (typeof DEVNET_STEPS)[number];

export interface Devnet {
  state: DevnetState & { demo: DevnetDemo };
  chain: HardhatNode;
  /** Resolves when a node first serves a verified consensus (never, without discovery processes). */
  firstConsensus: Promise<FirstConsensus>;
  /** The running authority nodes, as a client dials them. */
  authorities: PeerAddress[];
  /** The node processes. */
  nodes: DevnetNodes;
  stop(): Promise<void>;
}

export interface FirstConsensus {
  /** Node whose control API served it. */
  servedBy: string;
  nodes: number;
  signers: number;
  validUntil: number;
  afterMs: number;
}

const OPERATOR_FUNDS = parseEther("1000000");
const USER_FUNDS = parseEther("100000");
const SIGNER_GAS_FUNDS = parseEther("10");
const REWARD_POOL_FUNDS = parseEther("100000");
/** Longest gap between devnet blocks (transactions are mined at once besides). */
const DEVNET_BLOCK_SECONDS = 2;

export async function startDevnet(opts: DevnetOptions): Promise<Devnet> {
  const log = childLogger(opts.logger, "devnet");
  const specs = opts.nodes ?? defaultDevnetNodes;
  await mkdir(join(opts.dir, "keys", "accounts"), { recursive: true });
  opts.onStep?.("chain");
  const chain = await startHardhatNode({ port: opts.port, logFile: join(opts.dir, "hardhat.log"), ...(opts.chainHost ? { host: opts.chainHost } : {}) });
  let nodeProcesses: DevnetNodes | undefined;
  try {
    // A real chain makes blocks whether or not anyone transacts, and block.timestamp is the clock reward epochs,
    // dispute windows and unbonding run on: without blocks a quiet devnet's views would stop in time.
    await setIntervalMining(createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) }), { interval: DEVNET_BLOCK_SECONDS });
    log.info(`chain    ${chain.rpcUrl} (Hardhat, chain id 31337, a block at least every ${DEVNET_BLOCK_SECONDS} s)`);
    const deployer = devAccount(0);
    const admin = await connectChain({ rpcUrl: chain.rpcUrl, account: deployer });
    opts.onStep?.("deploy");
    const { deployment } = await deployPsp({ clients: admin, network: "localhost", params: opts.params ?? devnetParams, log: (line) => log.info(line) });
    await writeDeployment(opts.deploymentFile, deployment);
    const contracts = pspContractsFor(deployment, { public: admin.publicClient, wallet: admin.walletClient! });

    // Fund operators (one dev account per node) and users with PSP.
    const operators = specs.map((_, i) => devAccount(1 + i));
    const users = [0, 1, 2].map((i) => devAccount(1 + specs.length + i));
    for (const account of [...operators.map((a) => [a, OPERATOR_FUNDS] as const), ...users.map((a) => [a, USER_FUNDS] as const)]) {
      await send(admin, { address: contracts.token.address, abi: pspTokenAbi, functionName: "transfer", args: [account[0].address, account[1]] });
    }
    // The reward pool pays the bandwidth the nodes carry (subscriptions and slashed stake add to it).
    await send(admin, { address: contracts.token.address, abi: pspTokenAbi, functionName: "transfer", args: [deployment.contracts.BandwidthRewards.address, REWARD_POOL_FUNDS] });
    log.info(
      `funded   ${operators.length} operators with ${formatEther(OPERATOR_FUNDS)} PSP, ${users.length} users with ${formatEther(USER_FUNDS)} PSP, the reward pool with ${formatEther(REWARD_POOL_FUNDS)} PSP`,
    );

    // Register and stake every node from its operator's account.
    opts.onStep?.("nodes");
    const nodes: DevnetNodeState[] = [];
    const signers = new Map<string, PrivateKeyAccount>();
    for (const [i, spec] of specs.entries()) {
      // Node identities double as DHT keys, so they must pass the S/Kademlia static puzzle.
      const keys = solveStaticPuzzle({ difficulty: DEFAULT_DHT_CONFIG.staticDifficulty, generateKeyPair: generateEd25519KeyPair }).keyPair;
      const signerKey = generatePrivateKey();
      const signer = privateKeyToAccount(signerKey);
      signers.set(spec.name, signer);
      const operator = operators[i]!;
      const ctx = { clients: await connectChain({ rpcUrl: chain.rpcUrl, account: operator }), deployment };
      const nodeKey = nodeKeyHex(keys.publicKey);
      const consent = await signNodeRegistration(ctx, { nodeSecretKey: keys.secretKey, signer, operator: operator.address });
      await registerNode(ctx, { consent, roles: spec.roles.reduce((m, r) => m | NodeRole[r], 0) });
      await stakeNode(ctx, { nodeKey, amount: spec.stake });
      // Signers send oracle transactions, so they need gas.
      await admin.walletClient!.sendTransaction({ to: signer.address, value: SIGNER_GAS_FUNDS });
      const keyFile = join(opts.dir, "keys", `${spec.name}.json`);
      await writeFile(
        keyFile,
        JSON.stringify({ warning: "devnet keys, unencrypted: never use outside the devnet", identitySecretKey: toHex(keys.secretKey), signerPrivateKey: signerKey }, null, 2),
        { mode: 0o600 },
      );
      nodes.push({
        name: spec.name,
        roles: spec.roles,
        identity: formatIdentity({ namespace: "peerstream", application: "network", kind: "node", publicKey: keys.publicKey }),
        nodeKey,
        operator: operator.address,
        signer: signer.address,
        stake: formatEther(spec.stake),
        addresses: [],
        controlApi: null,
        pid: null,
        keyFile,
        ...(spec.internal ? { internal: true } : {}),
        ...(spec.commercial ? { commercial: spec.commercial } : {}),
      });
      log.info(
        `node     ${spec.name.padEnd(12)} ${roleNames(spec.roles.reduce((m, r) => m | NodeRole[r], 0))
          .join("+")
          .padEnd(16)} staked ${formatEther(spec.stake)} PSP`,
      );
    }
    // Governance (the timelock, 1 s on the devnet) approves every discovery, authority and oracle node
    // in one batch; each then activates once its (devnet: 1 s) activation delay has passed.
    await admitNodes(admin, deployment, nodes.map((n) => ({ nodeKey: n.nodeKey as Hex, roles: n.roles.reduce((m, r) => m | NodeRole[r as NodeRoleName], 0) })));
    const [authorityKeys] = await contracts.nodeRegistry.read.authoritySet();
    const [oracleKeys] = await contracts.nodeRegistry.read.oracleSet();
    const [discoveryKeys] = await contracts.nodeRegistry.read.discoverySet();
    // The demo application's commercial node is published (its signer consenting) before the nodes start, so the first descriptors are confirmed.
    const commercialNodes = nodes.filter((n) => n.commercial === "published");
    const commercialAppId = await publishDemoCommercial(admin, deployment, commercialNodes.map((n) => ({ nodeKey: n.nodeKey as Hex, signer: signers.get(n.name)! })));
    log.info(`commercial ${DEMO_COMMERCIAL.namespace}.${DEMO_COMMERCIAL.application} (${commercialAppId.slice(0, 10)}…) published on ${commercialNodes.map((n) => n.name).join(", ")}`);
    log.info(`sets     ${authorityKeys.length} authorities, ${oracleKeys.length} oracles, ${discoveryKeys.length} discovery nodes`);

    // Every node as a real process: TLS links, onion relay, DHT, directory, its roles, a control API.
    // Chain-backed: discovery nodes check descriptors and take the discovery set from the NodeRegistry,
    // authority and oracle nodes read the chain with their signers.
    nodeProcesses = await startDevnetNodes({
      dir: opts.dir,
      nodes,
      logger: log,
      chain: { rpcUrl: chain.rpcUrl, deploymentFile: opts.deploymentFile },
      ...(opts.runNodes ? { run: opts.runNodes } : {}),
      ...(opts.schedule ? { schedule: opts.schedule } : {}),
      ...(opts.placement ? { placement: opts.placement } : {}),
    });
    for (const p of nodeProcesses.nodes) {
      const entry = nodes.find((n) => n.name === p.name)!;
      entry.addresses = p.addresses;
      entry.controlApi = p.controlApi;
      entry.pid = p.pid;
    }
    const authorityPeers: PeerAddress[] = nodeProcesses.nodes
      .filter((p) => p.roles.includes("authority"))
      .map((p) => {
        const [host, port] = p.addresses[0]!.split(":") as [string, string];
        return { identity: Uint8Array.from(Buffer.from(p.identity, "hex")), host, port: Number(port) };
      });
    if (authorityPeers.length === 0) throw new Error("devnet: no authority node runs, so the demo identity cannot be registered (runNodes must keep them)");

    // Keystores for the user and operator accounts, so the CLI can send from them on the devnet.
    opts.onStep?.("demo");
    const keystores: DevnetKeystore[] = [];
    const accountLabels = [
      ...users.map((account, i) => ({ account, label: ["alice", "bob", "carol"][i] ?? `user-${i}` })),
      ...operators.map((account, i) => ({ account, label: `operator-${specs[i]!.name}` })),
    ];
    for (const { account, label } of accountLabels) {
      const file = join(opts.dir, "keys", "accounts", `${label}.json`);
      const privateKey = toHex(account.getHdKey().privateKey!);
      await writeFile(file, (await encryptEvmKeystore(privateKey, DEVNET_PASSPHRASE, { scryptN: DEVNET_SCRYPT_N })) + "\n", { mode: 0o600 });
      keystores.push({ label, address: account.address, file });
    }
    log.info(`accounts ${keystores.length} keystores in ${join(opts.dir, "keys", "accounts")} (passphrase "${DEVNET_PASSPHRASE}", devnet only)`);

    // A demo application and identity, registered with authority attestations.
    const namespace = "peerstream";
    const application = "client";
    await send(admin, { address: contracts.identityRegistry.address, abi: identityRegistryAbi, functionName: "registerNamespace", args: [namespace] });
    await send(admin, {
      address: contracts.identityRegistry.address,
      abi: identityRegistryAbi,
      functionName: "registerApplication",
      args: [namespace, application, REGISTRATION_POLICY.open],
    });
    const appId = applicationId(namespace, application);
    // The demo users: alice (the demo identity, subscribed below) and carol, registered end to end
    // through the authority nodes over TLS, as any client does: attestations, the registration
    // transaction, then a certificate once the authorities' chain view has the identity.
    const registerDemoUser = async (name: string, account: (typeof users)[number]) => {
      const keys = generateEd25519KeyPair();
      const clients = await connectChain({ rpcUrl: chain.rpcUrl, account });
      const identity = formatIdentity({ namespace, application, kind: "account", publicKey: keys.publicKey });
      const started = performance.now();
      const authorityClient = await connectAuthorities(authorityPeers);
      let registered: Awaited<ReturnType<typeof registerIdentity>>;
      let certificate: Uint8Array;
      try {
        // Authorities that just started can miss an attestation deadline on a loaded machine (CI starts two
        // devnets at once on 2 cores): ask again, as a client would, before calling the devnet broken.
        for (let attempt = 1; ; attempt++) {
          try {
            registered = await registerIdentity({
              clients,
              deployment,
              namespace,
              application,
              kind: "account",
              secretKey: keys.secretKey,
              attesters: authorityClient.transports.map((t) => remoteAttester(t)),
            });
            break;
          } catch (err) {
            if (attempt >= DEMO_REGISTRATION_ATTEMPTS || !ChainError.is(err, "insufficient-attestations")) throw err;
            log.warn(`identity ${name}: ${(err as Error).message}; asking the authorities again (attempt ${attempt + 1} of ${DEMO_REGISTRATION_ATTEMPTS})`);
            await new Promise((r) => setTimeout(r, 2000 * attempt));
          }
        }
        const current = [...authorityKeys];
        const issued = await requestAccessCertificateWhenConfirmed({
          transports: authorityClient.transports,
          identity,
          identitySecretKey: keys.secretKey,
          chainId: deployment.chainId,
          registry: deployment.contracts.IdentityRegistry.address,
          authorities: current,
          threshold: defaultCertificateThreshold(current.length),
        });
        certificate = issued.certificate;
      } finally {
        await authorityClient.close();
      }
      const endToEndMs = performance.now() - started;
      // Checked as any node checks it: against the on-chain authority set, here read afresh.
      const [liveAuthorities] = await contracts.nodeRegistry.read.authoritySet();
      const verifiedCert = verifyAccessCertificate(certificate, {
        now: Date.now(),
        authorities: liveAuthorities,
        threshold: defaultCertificateThreshold(liveAuthorities.length),
        chainId: deployment.chainId,
        registry: deployment.contracts.IdentityRegistry.address,
      });
      // The `psp identity` key file format, so `psp cert request --key-file devnet/keys/<name>.key` works as is.
      const keyFile = join(opts.dir, "keys", `${name}.key`);
      await writeFile(keyFile, (await encryptKeyFile(keys.secretKey, DEVNET_PASSPHRASE, { scrypt: { N: DEVNET_SCRYPT_N } })) + "\n", { mode: 0o600 });
      const certFile = `${keyFile}.cert`;
      await writeFile(certFile, certificate);
      log.info(`identity ${identity} (${name}) registered through ${authorityPeers.length} authority nodes over TLS`);
      return { name, identity, clients, registered, verifiedCert, keyFile, certFile, endToEndMs };
    };
    // Two accounts, two nonces: both register at once (each waits seconds on attestations and the chain).
    const [aliceUser, carolUser] = await Promise.all([registerDemoUser("alice", users[0]!), registerDemoUser("carol", users[2]!)]);
    const aliceClients = aliceUser.clients;
    const registered = aliceUser.registered;
    const verifiedCert = aliceUser.verifiedCert;
    const aliceIdentity = aliceUser.identity;
    const aliceKeyFile = aliceUser.keyFile;
    const certFile = aliceUser.certFile;
    const endToEndMs = aliceUser.endToEndMs;
    log.info(`cert     access certificate signed by ${verifiedCert.authorities.length} authorities, valid until ${new Date(verifiedCert.notAfter * 1000).toISOString()}`);
    log.info(`e2e      register + certificate through the network: ${endToEndMs.toFixed(0)} ms`);

    // A monthly plan for the application; alice subscribes for one period.
    const price = parseEther("10");
    await send(admin, {
      address: contracts.subscriptions.address,
      abi: subscriptionsAbi,
      functionName: "createPlan",
      args: [appId, price, BigInt(30 * 24 * 3600)],
    });
    const planId = (await contracts.subscriptions.read.planCount()) as bigint;
    await send(aliceClients, { address: contracts.token.address, abi: pspTokenAbi, functionName: "approve", args: [contracts.subscriptions.address, price] });
    await send(aliceClients, { address: contracts.subscriptions.address, abi: subscriptionsAbi, functionName: "subscribe", args: [registered.identityId, planId, 1] });
    const expiresAt = Number(await contracts.subscriptions.read.subscriptionExpiry([registered.identityId]));
    log.info(`subscribe plan ${planId}: ${formatEther(price)} PSP / 30 days, alice subscribed until ${new Date(expiresAt * 1000).toISOString()}`);

    // An oracle commits a batch of (demo) stream-creation receipt hashes.
    const receiptHashes = [0, 1, 2, 3].map((i) => keccak256(toHex(`devnet demo receipt ${i} ${Date.now()}`)));
    const tree = StandardMerkleTree.of(
      receiptHashes.map((h) => [h]),
      ["bytes32"],
    );
    const oracleSigner = signers.get(specs.find((s) => s.roles.includes("oracle"))!.name)!;
    const oracleClients = await connectChain({ rpcUrl: chain.rpcUrl, account: oracleSigner });
    await send(oracleClients, { address: contracts.oracleReceipts.address, abi: oracleReceiptsAbi, functionName: "commitBatch", args: [tree.root as Hex, receiptHashes.length] });
    const batchId = (await contracts.oracleReceipts.read.batchCount()) as bigint;
    const verified = await contracts.oracleReceipts.read.verifyReceipt([batchId, receiptHashes[0]!, tree.getProof(0) as Hex[]]);
    log.info(`receipts batch ${batchId}: ${receiptHashes.length} receipts committed by oracle-1, inclusion proof ${verified ? "verifies" : "FAILS"}`);

    const bob = keystores.find((k) => k.label === "bob")!;
    const state: Devnet["state"] = {
      rpcUrl: chain.rpcUrl,
      chainId: deployment.chainId,
      controlApi: "",
      startedAt: new Date().toISOString(),
      deploymentFile: opts.deploymentFile,
      contracts: Object.fromEntries(Object.entries(deployment.contracts).map(([k, v]) => [k, v.address])),
      accounts: {
        deployer: deployer.address,
        operators: operators.map((a) => a.address),
        users: users.map((a) => a.address),
        keystores: { passphrase: DEVNET_PASSPHRASE, files: keystores, default: bob.address },
      },
      nodes,
      sets: { authority: [...authorityKeys], oracle: [...oracleKeys], discovery: [...discoveryKeys], discoveryThreshold: majorityThreshold(discoveryKeys.length) },
      demo: {
        application: { namespace, application, applicationId: appId, owner: deployer.address },
        identity: { identity: aliceIdentity, identityId: registered.identityId, owner: users[0]!.address, keyFile: aliceKeyFile },
        users: [aliceUser, carolUser].map((u) => ({ name: u.name, identity: u.identity, identityId: u.registered.identityId, keyFile: u.keyFile })),
        certificate: { file: certFile, authorities: verifiedCert.authorities.length, notAfter: verifiedCert.notAfter, verified: true },
        endToEndMs: Math.round(endToEndMs),
        subscription: { planId: planId.toString(), expiresAt },
        receipts: { batchId: batchId.toString(), count: receiptHashes.length, verified },
      },
    };
    const api = await startDevnetApi(state, opts.apiPort, opts.logger);
    state.controlApi = api.url;
    log.info(`api      ${api.url}/v1/status`);
    log.info(`dashboard ${api.url}/`);
    await writeFile(join(opts.dir, "state.json"), JSON.stringify(state, null, 2) + "\n");
    const stopWatching = new AbortController();
    const running = nodeProcesses;
    return {
      state,
      chain,
      authorities: authorityPeers,
      nodes: running,
      firstConsensus: watchFirstConsensus(nodes, stopWatching.signal),
      stop: async () => {
        stopWatching.abort();
        await api.close();
        await running.stop();
        await chain.stop();
      },
    };
  } catch (err) {
    await nodeProcesses?.stop();
    await chain.stop();
    throw err;
  }
}

/**
 * Polls the nodes' `GET /v1/consensus` until every node serves a consensus
 * listing at least `count` nodes (descriptors reach the discovery nodes over
 * the first periods, so the first consensus may list few, and a node keeps
 * serving the one it holds until it fetches the next). Then a client
 * bootstrapping from any node gets the full listing and the authorities'
 * full threshold. Resolves with how many it lists; rejects after `timeoutMs`.
 */
export async function waitForConsensusListing(nodes: readonly DevnetNodeState[], count: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  const apis = nodes.filter((n) => n.controlApi).map((n) => n.controlApi!);
  const listing = new Map<string, number>();
  for (;;) {
    for (const api of apis) {
      if ((listing.get(api) ?? 0) >= count) continue;
      try {
        const res = await fetch(`${api}/v1/consensus`);
        if (res.ok) listing.set(api, ((await res.json()) as { nodes: unknown[] }).nodes.length);
      } catch {
        // A node still starting (or stopping): ask again next round.
      }
    }
    const listed = [...listing.values()];
    if (apis.every((api) => (listing.get(api) ?? 0) >= count)) return Math.min(...listed);
    if (performance.now() >= deadline) {
      const serving = listed.filter((n) => n >= count).length;
      throw new Error(
        `no consensus listing ${count} nodes on every node within ${Math.round(timeoutMs / 1000)} s (the best lists ${Math.max(0, ...listed)}; ${serving} of ${apis.length} nodes serve one listing all)`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Polls the running nodes' `GET /v1/consensus` until one serves a verified consensus. */
async function watchFirstConsensus(nodes: DevnetNodeState[], signal: AbortSignal): Promise<FirstConsensus> {
  const started = performance.now();
  const running = nodes.filter((n) => n.controlApi && n.roles.includes("discovery"));
  if (running.length === 0) return await new Promise<never>(() => {});
  while (!signal.aborted) {
    for (const node of running) {
      try {
        const res = await fetch(`${node.controlApi}/v1/consensus`, { signal });
        if (res.ok) {
          const body = (await res.json()) as { nodes: unknown[]; signers: unknown[]; validUntil: number };
          return { servedBy: node.name, nodes: body.nodes.length, signers: body.signers.length, validUntil: body.validUntil, afterMs: performance.now() - started };
        }
      } catch {
        // Not up yet, or stopping: try again.
      }
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return await new Promise<never>(() => {});
}

/** transact() with the clients' own wallet. */
async function send(clients: ChainClients, call: Omit<Parameters<typeof transact>[0], "publicClient" | "walletClient">) {
  return await transact({ ...call, publicClient: clients.publicClient, walletClient: clients.walletClient! } as Parameters<typeof transact>[0]);
}

export type { Deployment };

/**
 * Start-up diagnostics of `psp node start`: what would make a node start
 * wrong, checked before it starts, each a NodeError whose message says what
 * was found and whose `fix` says what to do (docs/OPERATIONS.md "Start-up
 * diagnostics"):
 *
 * - "port-in-use": the link port (`listen.port`) or the control API port
 *   (`api.port`) is bound by another process (fatal);
 * - "chain-unreachable": `chain.rpcUrl` does not answer (fatal);
 * - "wrong-chain": the endpoint serves another chain than `chain.chainId` or
 *   the deployment file names (fatal);
 * - "not-registered": the node's identity key is not in the NodeRegistry, or
 *   is registered without a role the config runs (fatal);
 * - "not-staked": no stake, or less than a configured role's minimum, or a
 *   set role governance has not approved (fatal); a set role whose
 *   activation delay still runs, or that is not activated, is a warning
 *   (the node serves meanwhile and follows the registry's events);
 * - "discovery-unreachable": none of `directory.discovery` accepts a TCP
 *   connection within the timeout (fatal for a node outside the discovery
 *   set; a warning for a discovery node, whose set starts together, and
 *   whenever some answer). Skipped with `checkDiscovery: false` (the
 *   `node run` alias: scripts start a whole network at once, and the
 *   node's directory logs every failed fetch anyway).
 *
 * A node without a `chain` section skips the chain checks; a node without
 * an `identity` (a fresh key each start) skips the registration check with
 * a warning when it has a chain.
 *
 * Trusts: the config (already validated) and the chain it names, read
 * through the chain layer's checked bindings.
 */
import { createConnection, createServer } from "node:net";
import { formatEther } from "viem";
import { hexOf } from "../base/hex.js";
import { connectChain } from "../chain/clients.js";
import { pspContractsFor, type NodeRoleName } from "../chain/contracts.js";
import { readDeployment, type Deployment } from "../chain/deployment.js";
import { nodeKeyHex, nodeStatus } from "../chain/staking.js";
import { isPspError } from "../errors.js";
import { CHAIN_ROLE_NAMES, NodeError } from "./config.js";
import type { ConfiguredPeer, NodeConfig } from "./config.js";

/** How long one discovery node may take to accept a TCP connection, ms. */
export const DISCOVERY_DIAL_TIMEOUT_MS = 5_000;

export interface Diagnostic {
  severity: "fatal" | "warning";
  error: NodeError;
}

export interface DiagnoseOptions {
  /** The config file's path, named in the fixes. */
  configFile: string;
  /** The node's identity public key (undefined: a fresh key each start). */
  identity?: Uint8Array;
  /** Dial the discovery set (psp node start) or not (the `node run` alias, used by scripts that start a whole network at once). */
  checkDiscovery: boolean;
  /** Per discovery node, ms (default DISCOVERY_DIAL_TIMEOUT_MS). */
  discoveryTimeoutMs?: number;
}

const fatal = (error: NodeError): Diagnostic => ({ severity: "fatal", error });
const warning = (error: NodeError): Diagnostic => ({ severity: "warning", error });

/** Tries to bind host:port and lets go again: the errno code when it cannot. */
async function bindProbe(host: string, port: number): Promise<string | undefined> {
  return await new Promise((resolve) => {
    const server = createServer();
    server.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** A port problem as the diagnostic naming its config field. */
export function portProblem(field: "listen" | "api", host: string, port: number, code: string, configFile: string): NodeError {
  const where = `${host}:${port}`;
  if (code === "EADDRINUSE")
    return new NodeError("port-in-use", `${field}.port ${port} is already in use on ${host} (another process listens on ${where})`, {
      fix: `stop the process that holds it (\`ss -ltnp 'sport = :${port}'\` names it), or set ${field}.port in ${configFile} to a free port`,
    });
  if (code === "EACCES")
    return new NodeError("start-failed", `${field}.port ${port} on ${host}: permission denied`, {
      fix: `use a port of 1024 or more in ${field}.port of ${configFile}, or grant the node CAP_NET_BIND_SERVICE`,
    });
  if (code === "EADDRNOTAVAIL")
    return new NodeError("start-failed", `${field}.host ${host} is not an address of this machine`, {
      fix: `set ${field}.host in ${configFile} to one of this machine's addresses (0.0.0.0: all of them)`,
    });
  return new NodeError("start-failed", `cannot listen on ${where} (${field}): ${code}`, { fix: `check ${field}.host and ${field}.port in ${configFile}` });
}

/** The ports the node will bind, with the config field that names each (port 0 picks a free one: nothing to check). */
function boundPorts(config: NodeConfig): { field: "listen" | "api"; host: string; port: number }[] {
  const out: { field: "listen" | "api"; host: string; port: number }[] = [];
  const outboundOnly = config.directory?.outboundLinks !== undefined;
  if (!outboundOnly && config.listen.port !== 0) out.push({ field: "listen", ...config.listen });
  if (config.api && config.api.port !== 0) out.push({ field: "api", ...config.api });
  return out;
}

export async function checkPorts(config: NodeConfig, configFile: string): Promise<Diagnostic[]> {
  const out: Diagnostic[] = [];
  for (const { field, host, port } of boundPorts(config)) {
    const code = await bindProbe(host, port);
    if (code !== undefined) out.push(fatal(portProblem(field, host, port, code, configFile)));
  }
  return out;
}

/** The registry's minimum stake of a role, wei. */
function minimumStake(
  params: { minStakeOnion: bigint; minStakeDiscovery: bigint; minStakeAuthority: bigint; minStakeOracle: bigint },
  role: NodeRoleName,
): bigint {
  return { onion: params.minStakeOnion, discovery: params.minStakeDiscovery, authority: params.minStakeAuthority, oracle: params.minStakeOracle }[role];
}

export async function checkChain(config: NodeConfig, opts: DiagnoseOptions): Promise<Diagnostic[]> {
  const chain = config.chain;
  if (!chain) return [];
  const file = opts.configFile;
  let deployment: Deployment;
  try {
    deployment = await readDeployment(chain.deploymentFile);
  } catch (err) {
    const why = isPspError(err) ? err.shortMessage : (err as Error).message;
    return [
      fatal(
        new NodeError("bad-config", `chain.deploymentFile: ${why}`, {
          cause: err,
          fix: `set chain.deploymentFile in ${file} to the PSP deployment file of the chain (npm run deploy writes it)`,
        }),
      ),
    ];
  }
  let clients;
  try {
    clients = await connectChain({ rpcUrl: chain.rpcUrl });
  } catch (err) {
    return [
      fatal(
        new NodeError("chain-unreachable", `chain.rpcUrl ${chain.rpcUrl} does not answer`, {
          cause: err,
          fix: `check that the chain's JSON-RPC endpoint runs and that chain.rpcUrl in ${file} names it`,
        }),
      ),
    ];
  }
  const served = clients.chain.id;
  if (chain.chainId !== undefined && chain.chainId !== served)
    return [
      fatal(
        new NodeError("wrong-chain", `chain.rpcUrl ${chain.rpcUrl} serves chain ${served}, but chain.chainId is ${chain.chainId}`, {
          fix: `point chain.rpcUrl in ${file} at an RPC endpoint of chain ${chain.chainId} (or correct chain.chainId)`,
        }),
      ),
    ];
  if (deployment.chainId !== served)
    return [
      fatal(
        new NodeError(
          "wrong-chain",
          `${chain.deploymentFile} is a deployment on chain ${deployment.chainId}, but chain.rpcUrl ${chain.rpcUrl} serves chain ${served}`,
          {
            fix: `point chain.rpcUrl in ${file} at chain ${deployment.chainId}, or chain.deploymentFile at the deployment on chain ${served}`,
          },
        ),
      ),
    ];
  if (!opts.identity)
    return [
      warning(
        new NodeError(
          "not-registered",
          "the node has no identity key in its config: a fresh key each start can never be registered, so discovery nodes will not list it",
          {
            fix: `create a key (psp identity create --kind node --application network) and set identity in ${file}, then register and stake it`,
          },
        ),
      ),
    ];
  const nodeKey = nodeKeyHex(opts.identity);
  const registry = deployment.contracts.NodeRegistry.address;
  const status = await nodeStatus({ clients, deployment }, nodeKey);
  const roles = (config.roles ?? ["onion"]).filter((r): r is NodeRoleName => (CHAIN_ROLE_NAMES as readonly string[]).includes(r));
  const key = nodeKey.slice(2);
  if (!status.registered)
    return [
      fatal(
        new NodeError("not-registered", `node key ${key} is not registered in the NodeRegistry ${registry} on chain ${served}`, {
          fix: `from the operator account: psp operator consent --node-key-file <key file> --signer-keystore <signer> --operator <address> --out consent.json, then psp operator register --node-key ${key} --consent consent.json --roles ${roles.join(",")}, then psp operator stake (docs/OPERATIONS.md)`,
        }),
      ),
    ];
  const missing = roles.filter((r) => !status.roles.includes(r));
  if (missing.length > 0)
    return [
      fatal(
        new NodeError(
          "not-registered",
          `node key ${key} is registered for ${status.roles.join(", ") || "no role"}, not for ${missing.join(", ")} which ${file} runs`,
          {
            fix: `remove ${missing.join(", ")} from roles in ${file}, or register the node for them (psp operator register --roles ${[...new Set([...status.roles, ...missing])].join(",")})`,
          },
        ),
      ),
    ];
  if (status.bonded === 0n)
    return [
      fatal(
        new NodeError("not-staked", `node key ${key} has no stake bonded`, {
          fix: `psp operator stake --node-key ${key} --amount <PSP> from its operator ${status.operator}`,
        }),
      ),
    ];
  const params = await pspContractsFor(deployment, { public: clients.publicClient }).nodeRegistry.read.params();
  const out: Diagnostic[] = [];
  for (const role of roles) {
    if (status.eligible.includes(role)) {
      if (role !== "onion" && !status.memberOf.includes(role))
        out.push(
          warning(
            new NodeError("not-staked", `node key ${key} qualifies for the ${role} set but has not joined it`, {
              fix: `psp operator activate --node-key ${key} --role ${role}`,
            }),
          ),
        );
      continue;
    }
    const min = minimumStake(params, role);
    if (status.bonded < min) {
      out.push(
        fatal(
          new NodeError("not-staked", `node key ${key} has ${formatEther(status.bonded)} PSP bonded; the ${role} role needs ${formatEther(min)} PSP`, {
            fix: `psp operator stake --node-key ${key} --amount ${formatEther(min - status.bonded)} from its operator ${status.operator}`,
          }),
        ),
      );
      continue;
    }
    const pending = status.pending.find((p) => p.role === role);
    if (pending) {
      out.push(
        warning(
          new NodeError(
            "not-staked",
            `node key ${key} joins the ${role} set after its activation delay, at ${new Date(pending.activatesAt * 1000).toISOString()}`,
            {
              fix: `then: psp operator activate --node-key ${key} --role ${role}`,
            },
          ),
        ),
      );
      continue;
    }
    if (!status.approved.includes(role)) {
      out.push(
        fatal(
          new NodeError("not-staked", `node key ${key} is not approved by governance for the ${role} role`, {
            fix: `ask the network's governance to approve it (docs/OPERATIONS.md "Governance"), or remove ${role} from roles in ${file}`,
          }),
        ),
      );
      continue;
    }
    out.push(
      warning(
        new NodeError("not-staked", `node key ${key} is not active in the ${role} set`, {
          fix: `psp operator activate --node-key ${key} --role ${role}`,
        }),
      ),
    );
  }
  return out;
}

/** Why a TCP connection to host:port failed, or undefined once it was accepted. */
async function dialProbe(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return await new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(`no answer within ${timeoutMs} ms`);
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(undefined);
    });
    socket.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code === "ECONNREFUSED" ? "connection refused (nothing listens there)" : (err.code ?? err.message));
    });
  });
}

export async function checkDiscovery(config: NodeConfig, opts: DiagnoseOptions): Promise<Diagnostic[]> {
  if (!opts.checkDiscovery) return [];
  const self = opts.identity ? hexOf(opts.identity) : undefined;
  const peers: ConfiguredPeer[] = (config.directory?.discovery ?? []).filter((p) => p.identity.toLowerCase() !== self);
  if (peers.length === 0) return [];
  const timeoutMs = opts.discoveryTimeoutMs ?? DISCOVERY_DIAL_TIMEOUT_MS;
  const results = await Promise.all(peers.map(async (p) => ({ peer: p, why: await dialProbe(p.host, p.port, timeoutMs) })));
  const failed = results.filter((r) => r.why !== undefined);
  if (failed.length === 0) return [];
  const list = failed.map((r) => `${r.peer.host}:${r.peer.port} (${r.peer.identity.slice(0, 16)}…): ${r.why}`).join("; ");
  const isDiscovery = self !== undefined && (config.directory?.discovery ?? []).some((p) => p.identity.toLowerCase() === self);
  const none = failed.length === peers.length;
  const error = new NodeError(
    "discovery-unreachable",
    none
      ? `none of the ${peers.length} discovery nodes in directory.discovery answers: ${list}`
      : `${failed.length} of ${peers.length} discovery nodes do not answer: ${list}`,
    { fix: `check directory.discovery in ${opts.configFile} (hosts, ports), this machine's outbound firewall, and that those nodes run` },
  );
  return [none && !isDiscovery ? fatal(error) : warning(error)];
}

/** Every check, in order of cost: ports, chain, discovery. Stops after the first check group that finds a fatal problem. */
export async function diagnoseNode(config: NodeConfig, opts: DiagnoseOptions): Promise<Diagnostic[]> {
  const out: Diagnostic[] = [];
  for (const check of [() => checkPorts(config, opts.configFile), () => checkChain(config, opts), () => checkDiscovery(config, opts)]) {
    out.push(...(await check()));
    if (out.some((d) => d.severity === "fatal")) break;
  }
  return out;
}

/** A start failure that is a port in use (a race after the check), as that diagnostic; else the error itself. */
export function explainStartFailure(err: unknown, config: NodeConfig, configFile: string): unknown {
  if (!NodeError.is(err, "start-failed")) return err;
  const code = (err.walk((e) => typeof (e as NodeJS.ErrnoException)?.code === "string") as NodeJS.ErrnoException | undefined)?.code;
  if (code !== "EADDRINUSE") return err;
  const api = config.api && /control API/.test(err.message) ? config.api : undefined;
  const field = api ? "api" : "listen";
  const { host, port } = api ?? config.listen;
  return portProblem(field, host, port, code, configFile);
}

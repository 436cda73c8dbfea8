/**
 * Runs the devnet's nodes as real node processes: one
 * `psp node run --config <file>` child per node (Node 22 = this process's
 * executable, the `psp` bin), from the keys in <dir>/keys/<name>.json.
 *
 * Owns the devnet node configs (<dir>/nodes/<name>/config.json, mode 0600:
 * they hold the devnet-only secret keys) and their logs
 * (<dir>/nodes/<name>/node.log): each node listens on its own loopback /16
 * (127.<i+1>.0.1) so 3-hop paths exist among them, and runs the roles it is
 * registered with. With `chain` (the devnet's RPC URL and deployment file)
 * every node reads the NodeRegistry: discovery nodes check registration and
 * stake on chain, everyone takes the discovery set and K from
 * NodeRegistry.discoverySet(), and authority and oracle nodes run those roles
 * with the signer key from their key file. Without it (no chain running)
 * only nodes whose roles need no chain run, and discovery nodes get a
 * registry view of every devnet node from the key files. Everyone gets the
 * discovery nodes as the bootstrap set and the first one as DHT seed. Waits
 * for every ready line; `stop()` sends SIGTERM (orderly close) and SIGKILLs
 * what has not exited after 5 s.
 *
 * Trusts the devnet's own key files and state; nothing else.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { ed25519PublicKey } from "../../node/src/crypto/ed25519.js";
import { nodeIdFromPublicKey, verifyStaticPuzzle } from "../../node/src/crypto/puzzles.js";
import { DEFAULT_DHT_CONFIG } from "../../node/src/dht/config.js";
import { demoCommercialConfig } from "./devnet-commercial.js";
import type { DevnetCommercialMode } from "./devnet-commercial.js";
import type { NodeInfo } from "../../node/src/node/node.js";
import { childLogger } from "../../node/src/log.js";
import type { Logger } from "../../node/src/log.js";
import { projectRoot } from "./artifacts.js";
import { freePort } from "./hardhat-node.js";

const pspBin = join(projectRoot, "node", "bin", "psp.js");

/** A devnet node as state.json lists it (DevnetNodeState carries these fields). */
export interface DevnetNodeEntry {
  name: string;
  roles: readonly string[];
  keyFile: string;
  /** Runs as an internal relay (config directory.internal). */
  internal?: boolean;
  /** Runs the commercial role serving the demo application (devnet-commercial.ts). */
  commercial?: DevnetCommercialMode;
}

export interface DevnetNodesOptions {
  /** The devnet directory; configs, data and logs go to <dir>/nodes/<name>/. */
  dir: string;
  /** Every devnet node (without `chain`: the registry view discovery nodes check descriptors against). */
  nodes: readonly DevnetNodeEntry[];
  /**
   * The devnet's chain: nodes then check registrations and read the discovery
   * set from the NodeRegistry (facts trusted at the head: Hardhat mines on demand).
   */
  chain?: { rpcUrl: string; deploymentFile: string };
  /** Which nodes to run (default: every node, or without `chain` those whose roles need none). */
  run?: (node: DevnetNodeEntry) => boolean;
  /** Voting schedule (default 60 s periods: a devnet consensus within about a minute). */
  schedule?: { periodMs: number; voteDelayMs: number; distDelayMs: number; validPeriods: number };
  /** Descriptor publication interval (default 20 s). */
  publishIntervalMs?: number;
  /** Ready-line deadline per node (default 120 s: eleven processes start at once, and a shared CI machine can be several times slower than usual). */
  readyTimeoutMs?: number;
  /** One info line per node started (component "nodes" beneath it); silent when absent. The nodes' own logs go to their node.log. */
  logger?: Logger;
  /**
   * Where each node runs (the multi-host testbed, scripts/lib/testbed/): its link address, its
   * control API host and an argv prefix the process is started under (e.g. `ip netns exec <ns>`).
   * Default: every node on its own 127.<i+1>.0.1 with a free port, the API on 127.0.0.1, spawned directly.
   */
  placement?: (node: DevnetNodeEntry, index: number) => NodePlacement;
}

/** Where one node runs (DevnetNodesOptions.placement). */
export interface NodePlacement {
  host: string;
  port: number;
  /** Control API host (beyond loopback the node makes a bearer token, in <dataDir>/api-token). */
  apiHost: string;
  /** argv run in front of `node psp.js node run …`. */
  command: readonly string[];
}

export interface DevnetNodeProcess {
  name: string;
  roles: string[];
  /** Ed25519 identity key, hex. */
  identity: string;
  /** Link addresses, "host:port". */
  addresses: string[];
  controlApi: string;
  pid: number;
}

export interface DevnetNodes {
  nodes: DevnetNodeProcess[];
  stop(): Promise<void>;
}

export const DEFAULT_DEVNET_SCHEDULE = { periodMs: 60_000, voteDelayMs: 10_000, distDelayMs: 10_000, validPeriods: 3 };

/** Roles that read the chain: a node with one runs only when the devnet has a chain. */
const CHAIN_ROLES = ["authority", "oracle"];
/** Usage windows of the devnet's nodes (its reward epochs are 60 s). */
export const DEVNET_REPORT_INTERVAL_SECONDS = 10;
/** The devnet oracles' settlement: 1 PSP per MB carried, reports taken for 5 s after an epoch, settled 20 s after it. */
export const DEVNET_ORACLE_REWARDS = { weiPerByte: "1000000000000", epochBudget: "10000000000000000000000", acceptSeconds: 5, settleDelaySeconds: 20 };
const needsChain = (n: DevnetNodeEntry): boolean => n.roles.some((r) => CHAIN_ROLES.includes(r));

interface NodeKeys {
  /** Ed25519 identity seed, 64 hex digits. */
  secret: string;
  /** EVM signer key, 0x + 64 hex digits (authority and oracle nodes). */
  signer?: `0x${string}`;
}

async function readKeys(keyFile: string): Promise<NodeKeys> {
  const parsed = JSON.parse(await readFile(keyFile, "utf8")) as { identitySecretKey?: unknown; signerPrivateKey?: unknown };
  const key = typeof parsed.identitySecretKey === "string" ? parsed.identitySecretKey.replace(/^0x/, "") : "";
  if (!/^[0-9a-fA-F]{64}$/.test(key)) throw new Error(`${keyFile}: identitySecretKey must be 32 bytes of hex`);
  const signer = typeof parsed.signerPrivateKey === "string" && /^0x[0-9a-fA-F]{64}$/.test(parsed.signerPrivateKey) ? (parsed.signerPrivateKey as `0x${string}`) : undefined;
  return { secret: key.toLowerCase(), ...(signer ? { signer } : {}) };
}

function waitReady(child: ChildProcess, name: string, timeoutMs: number, logFile: string): Promise<NodeInfo> {
  let stderr = "";
  const log = createWriteStream(logFile, { flags: "a" });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  return new Promise<NodeInfo>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`devnet node ${name}: no ready line within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
    // stdout carries the node's JSON log lines; the ready line is the one with event "ready" (the NodeInfo fields sit beside the log fields).
    lines.on("line", (line) => {
      let parsed: NodeInfo & { event?: string };
      try {
        parsed = JSON.parse(line) as NodeInfo & { event?: string };
      } catch {
        return; // not JSON (a stray print of a dependency): it is in node.log all the same
      }
      if (parsed.event === "ready") {
        clearTimeout(timer);
        ok(parsed);
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      fail(new Error(`devnet node ${name} exited (${code ?? signal}) before it was ready: ${stderr}`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((ok) => child.once("exit", () => ok()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** Starts the devnet's onion and discovery nodes as `psp node run` processes and waits until each is ready. */
export async function startDevnetNodes(options: DevnetNodesOptions): Promise<DevnetNodes> {
  const log = childLogger(options.logger, "nodes");
  const schedule = options.schedule ?? DEFAULT_DEVNET_SCHEDULE;
  const selected = options.nodes.filter(options.run ?? ((n) => options.chain !== undefined || !needsChain(n)));
  const keys = new Map<string, NodeKeys>();
  const identities = new Map<string, string>();
  for (const n of options.nodes) {
    const k = await readKeys(n.keyFile);
    keys.set(n.name, k);
    identities.set(n.name, Buffer.from(ed25519PublicKey(Uint8Array.from(Buffer.from(k.secret, "hex")))).toString("hex"));
  }
  for (const n of selected) {
    if (!needsChain(n)) continue;
    if (!options.chain) throw new Error(`devnet node ${n.name} runs ${n.roles.join("+")}: those roles read the chain, and no chain was given`);
    if (!keys.get(n.name)!.signer) throw new Error(`${n.keyFile}: an ${n.roles.join("+")} node needs signerPrivateKey (0x + 64 hex digits)`);
  }
  // Devnet keys made before the DHT puzzle requirement do not solve it: the whole devnet then runs the DHT at difficulty 0.
  const solves = selected.every((n) => {
    const key = Uint8Array.from(Buffer.from(identities.get(n.name)!, "hex"));
    return verifyStaticPuzzle(key, nodeIdFromPublicKey(key), DEFAULT_DHT_CONFIG.staticDifficulty);
  });
  const staticDifficulty = solves ? DEFAULT_DHT_CONFIG.staticDifficulty : 0;
  if (!solves) log.warn(`nodes    identity keys do not solve the DHT static puzzle (difficulty ${DEFAULT_DHT_CONFIG.staticDifficulty}); the devnet DHT runs at difficulty 0`);

  const placements = options.placement ? selected.map((n, i) => options.placement!(n, i)) : undefined;
  const hosts = placements ? placements.map((p) => p.host) : selected.map((_, i) => `127.${i + 1}.0.1`);
  const ports = placements ? placements.map((p) => p.port) : await Promise.all(hosts.map((h) => freePort(h)));
  const discovery = selected.flatMap((n, i) => (n.roles.includes("discovery") ? [{ identity: identities.get(n.name)!, host: hosts[i]!, port: ports[i]! }] : []));
  // Without a discovery node running (a benchmark's authorities-only devnet) the nodes run without a directory.
  const registry = Object.fromEntries(options.nodes.map((n) => [identities.get(n.name)!, n.roles.filter((r) => ["onion", "discovery", "authority", "oracle"].includes(r))]));

  const children: ChildProcess[] = [];
  let stopping = false;
  const stop = async (): Promise<void> => {
    stopping = true;
    await Promise.all(children.map(stopChild));
  };
  try {
    const started = await Promise.all(
      selected.map(async (n, i) => {
        const nodeDir = resolve(options.dir, "nodes", n.name);
        await mkdir(nodeDir, { recursive: true });
        const isDiscovery = n.roles.includes("discovery");
        const nodeKeys = keys.get(n.name)!;
        const signer = nodeKeys.signer ? { signer: { privateKeyHex: nodeKeys.signer } } : undefined;
        const config = {
          listen: { host: hosts[i], port: ports[i] },
          // Every node.log line then names its node (the level comes from PSP_LOG_LEVEL, inherited, or info).
          log: { name: n.name },
          identity: { secretKeyHex: nodeKeys.secret },
          roles: [...n.roles.filter((r) => r === "onion" || r === "discovery" || (options.chain && CHAIN_ROLES.includes(r))), ...(n.commercial ? ["commercial"] : [])],
          ...(n.commercial ? { commercial: demoCommercialConfig() } : {}),
          // Every local client shares 127.0.0.1 and so one per-client rate-limit bucket: the burst is raised for that.
          ...(n.roles.includes("authority") && options.chain ? { authority: { ...signer, limits: { burst: 100, requestsPerMinute: 600 } } } : {}),
          ...(n.roles.includes("oracle") && options.chain ? { oracle: signer && { ...signer, rewards: DEVNET_ORACLE_REWARDS } } : {}),
          // Short report windows, so the devnet's short reward epochs settle what its demo stream carried.
          rewards: { reportIntervalSeconds: DEVNET_REPORT_INTERVAL_SECONDS },
          dataDir: join(nodeDir, "data"),
          api: { host: placements?.[i]!.apiHost ?? "127.0.0.1", port: 0 },
          onion: { services: ["echo", "discard"] },
          dht: { staticDifficulty, seeds: discovery.filter((d) => d.identity !== identities.get(n.name)).slice(0, 1) },
          ...(discovery.length === 0
            ? {}
            : {
                directory: {
                  discovery,
                  schedule,
                  publishIntervalMs: options.publishIntervalMs ?? 20_000,
                  retryMs: Math.max(1000, Math.floor(schedule.periodMs / 10)),
                  ...(isDiscovery && !options.chain ? { registry } : {}),
                  ...(n.internal ? { internal: true } : {}),
                },
              }),
          ...(options.chain
            ? {
                chain: {
                  rpcUrl: options.chain.rpcUrl,
                  deploymentFile: resolve(options.chain.deploymentFile),
                  confirmations: 0,
                  followMs: 500,
                  refreshMs: Math.max(1000, Math.floor(schedule.periodMs / 4)),
                },
              }
            : {}),
        };
        const configFile = join(nodeDir, "config.json");
        await writeFile(configFile, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
        const argv = [...(placements?.[i]!.command ?? []), process.execPath, pspBin, "node", "run", "--config", configFile];
        const child = spawn(argv[0]!, argv.slice(1), { cwd: projectRoot, stdio: ["ignore", "pipe", "pipe"] });
        children.push(child);
        const info = await waitReady(child, n.name, options.readyTimeoutMs ?? 120_000, join(nodeDir, "node.log"));
        // A node that dies while the devnet runs (killed, or a crash) is said at once, not found out later from silence.
        child.once("exit", (code, signal) => {
          if (!stopping) log.error({ node: n.name, pid: child.pid, code, signal }, `node     ${n.name} exited (${code ?? signal}) while the devnet runs: see ${join(nodeDir, "node.log")}`);
        });
        log.info(`node     ${n.name.padEnd(12)} pid ${child.pid} link ${info.host}:${info.port} api ${info.controlApi}`);
        return {
          name: n.name,
          roles: info.roles,
          identity: info.identity,
          addresses: [`${info.host}:${info.port}`],
          controlApi: info.controlApi ?? "",
          pid: child.pid ?? -1,
        } satisfies DevnetNodeProcess;
      }),
    );
    return { nodes: started, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The "commercial" role as a node process runs it (docs/spec/commercial.md
 * "Node"): the applications' plugins loaded from the config, served as
 * onion service "commercial" (also at the first hop, for clients that chose
 * a direct connection), and the application ids claimed in the descriptor.
 * With a chain section, the node checks every refresh that each application
 * publishes it (CommercialNodes.isServing) and says so in its status and log;
 * discovery nodes list it for an application only when the chain agrees.
 * Also `ChainAppsView`, the discovery side: which applications a
 * descriptor's node serves on chain, as a synchronous snapshot for the
 * discovery state machine (like ChainRoleView for roles).
 *
 * Owns config parsing of the `commercial` section and composition only;
 * every check on a request stays in node/src/commercial. Trusts its config
 * (the plugins it names run in this process) and the chain.
 */
import type { Hex } from "viem";
import { verifyAccessCertificateWithConsensus } from "../authority/certificate.js";
import { hexOf } from "../base/hex.js";
import { withTimeout } from "../base/timeout.js";
import { applicationId } from "../chain/attestation.js";
import { connectChain } from "../chain/clients.js";
import { createCommercialView } from "../chain/commercial.js";
import type { CommercialView } from "../chain/commercial.js";
import { readDeployment } from "../chain/deployment.js";
import { ChainError } from "../chain/errors.js";
import { loadPlugin } from "../commercial/plugin.js";
import { createCommercialServer, DEFAULT_COMMERCIAL_LIMITS } from "../commercial/server.js";
import type { CommercialLimits, CommercialStats, ServedApplication } from "../commercial/server.js";
import type { ChainApps } from "../directory/discovery-node.js";
import type { VerifiedConsensus } from "../directory/consensus.js";
import type { Ed25519KeyPair } from "../crypto/ed25519.js";
import { childLogger, logFailure } from "../log.js";
import type { Logger } from "../log.js";
import type { LocalService } from "../onion/types.js";
import { NodeError } from "./config.js";
import type { NodeChainConfig } from "./config.js";

/** One application the node serves: its names and the plugin module that implements its services. */
export interface NodeCommercialApp {
  namespace: string;
  application: string;
  /** Path of the plugin module (absolute, or relative to the node's working directory). */
  plugin: string;
}

/** The `commercial` config section (required with the "commercial" role). */
export interface NodeCommercialConfig {
  apps: NodeCommercialApp[];
  limits?: Partial<CommercialLimits>;
}

const NAME = /^[a-z0-9-]{1,32}$/;
const bad = (field: string, message: string) => new NodeError("bad-config", `config commercial${field}: ${message}`);

/** Validates the `commercial` section. Throws NodeError "bad-config". */
export function parseCommercialConfig(value: unknown): NodeCommercialConfig {
  const v = value as { apps?: unknown; limits?: unknown } | null;
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw bad("", 'must be an object { "apps": [{ "namespace", "application", "plugin" }], "limits"? }');
  for (const k of Object.keys(v)) if (k !== "apps" && k !== "limits") throw bad(`.${k}`, "unknown field; known: apps, limits");
  if (!Array.isArray(v.apps) || v.apps.length === 0 || v.apps.length > 8) throw bad(".apps", "must list 1..8 applications");
  const apps = v.apps.map((a: unknown, i: number) => {
    const app = a as Record<string, unknown> | null;
    if (typeof app !== "object" || app === null) throw bad(`.apps[${i}]`, 'must be { "namespace", "application", "plugin" }');
    for (const k of Object.keys(app)) if (!["namespace", "application", "plugin"].includes(k)) throw bad(`.apps[${i}].${k}`, "unknown field");
    for (const k of ["namespace", "application"] as const) {
      if (typeof app[k] !== "string" || !NAME.test(app[k])) throw bad(`.apps[${i}].${k}`, "must be 1..32 characters of a-z, 0-9 and -");
    }
    if (typeof app["plugin"] !== "string" || app["plugin"].length === 0) throw bad(`.apps[${i}].plugin`, "must be the path of the plugin module");
    return { namespace: app["namespace"] as string, application: app["application"] as string, plugin: app["plugin"] };
  });
  const names = new Set(apps.map((a) => `${a.namespace}.${a.application}`));
  if (names.size !== apps.length) throw bad(".apps", "lists an application twice");
  const out: NodeCommercialConfig = { apps };
  if (v.limits !== undefined) {
    const l = v.limits as Record<string, unknown> | null;
    if (typeof l !== "object" || l === null) throw bad(".limits", "must be an object");
    const limits: Partial<CommercialLimits> = {};
    for (const [k, n] of Object.entries(l)) {
      if (!Object.hasOwn(DEFAULT_COMMERCIAL_LIMITS, k)) throw bad(`.limits.${k}`, `unknown limit; known: ${Object.keys(DEFAULT_COMMERCIAL_LIMITS).join(", ")}`);
      if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) throw bad(`.limits.${k}`, "must be a positive integer");
      limits[k as keyof CommercialLimits] = n;
    }
    out.limits = limits;
  }
  return out;
}

export interface CommercialRoleStatus {
  applications: { name: string; appId: string; services: string[]; publishedOnChain: boolean | null }[];
  stats: CommercialStats;
  lastError?: string;
}

export interface NodeCommercial {
  /** The onion service "commercial". */
  readonly service: LocalService;
  /** The application ids to claim in the descriptor. */
  readonly appIds: Uint8Array[];
  status(): CommercialRoleStatus;
  close(): void;
}

export interface StartNodeCommercialOptions {
  identity: Ed25519KeyPair;
  config: NodeCommercialConfig;
  /** Where relative plugin paths start (default the working directory). */
  baseDir?: string;
  /** The consensus the node holds (its authorities check access certificates). */
  consensus: () => VerifiedConsensus | undefined;
  chain?: NodeChainConfig;
  flush: () => void;
  logger?: Logger;
}

/** Loads the plugins and builds the service. Throws NodeError "bad-config" (a plugin that does not load or fit). */
export async function startNodeCommercial(opts: StartNodeCommercialOptions): Promise<NodeCommercial> {
  const log = childLogger(opts.logger, "commercial");
  const applications: ServedApplication[] = [];
  for (const app of opts.config.apps) {
    try {
      applications.push({
        appId: Uint8Array.from(Buffer.from(applicationId(app.namespace, app.application).slice(2), "hex")),
        name: `${app.namespace}.${app.application}`,
        plugin: await loadPlugin(app.plugin, opts.baseDir),
      });
    } catch (err) {
      throw new NodeError("bad-config", `config commercial: ${app.namespace}.${app.application}: ${(err as Error).message}`, { cause: err });
    }
  }
  const deployment = opts.chain ? await readDeployment(opts.chain.deploymentFile).catch(() => undefined) : undefined;
  const server = createCommercialServer({
    nodeIdentity: opts.identity.publicKey,
    applications,
    ...(opts.config.limits ? { limits: opts.config.limits } : {}),
    verifyCertificate: (cert) => {
      const v = verifyAccessCertificateWithConsensus(cert, opts.consensus(), {
        now: Date.now(),
        ...(deployment ? { chainId: deployment.chainId, registry: deployment.contracts.IdentityRegistry.address } : {}),
      });
      return { identity: v.identity, key: v.key };
    },
    flush: opts.flush,
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  const published = new Map<string, boolean | null>(applications.map((a) => [a.name, null]));
  let lastError: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (opts.chain && deployment) {
    const chain = opts.chain;
    let view: CommercialView | undefined;
    const nodeKey = `0x${hexOf(opts.identity.publicKey)}` as Hex;
    const check = async (): Promise<void> => {
      try {
        view ??= createCommercialView(await connectChain({ rpcUrl: chain.rpcUrl, expectedChainId: deployment.chainId }), deployment);
        for (const app of applications) {
          const serving = await view.isServing(`0x${hexOf(app.appId)}`, nodeKey);
          if (published.get(app.name) !== serving) {
            if (serving) log.info({ application: app.name }, "the application publishes this node on chain: discovery lists it");
            else log.warn({ application: app.name }, "the application does not publish this node on chain (CommercialNodes): clients will not find it here");
          }
          published.set(app.name, serving);
        }
        lastError = undefined;
      } catch (err) {
        logFailure(log, err, "check the commercial publications on chain", lastError === undefined ? "warn" : "debug");
        lastError = (err as Error).message;
      }
    };
    void check();
    timer = setInterval(() => void check(), chain.refreshMs ?? 60_000);
    timer.unref();
  }
  log.info({ applications: applications.map((a) => a.name) }, "serving commercial applications");
  return {
    service: server.service,
    appIds: applications.map((a) => a.appId),
    status: () => ({
      applications: applications.map((a) => ({
        name: a.name,
        appId: `0x${hexOf(a.appId)}`,
        services: Object.keys(a.plugin.services),
        publishedOnChain: published.get(a.name) ?? null,
      })),
      stats: structuredClone(server.stats),
      ...(lastError === undefined ? {} : { lastError }),
    }),
    close() {
      if (timer) clearInterval(timer);
    },
  };
}

/**
 * Applications per node as last read from CommercialNodes.servingAppsOf, for
 * the discovery state machine's synchronous ChainApps. A node never looked
 * up is confirmed for nothing.
 */
export class ChainAppsView {
  private readonly snapshot = new Map<string, Uint8Array[]>();

  constructor(
    private readonly servingApps: (nodeKey: Hex) => Promise<Hex[]>,
    private readonly onError: (err: unknown) => void = () => undefined,
    private readonly timeoutMs = 5_000,
    private readonly maxEntries = 100_000,
  ) {}

  readonly apps: ChainApps = (identity) => this.snapshot.get(hexOf(identity)) ?? [];

  /** Reads one node's applications into the snapshot (keeps the last answer on failure). */
  async resolve(identity: Uint8Array): Promise<void> {
    const key = hexOf(identity);
    try {
      const ids = await withTimeout(
        this.servingApps(`0x${key}`),
        this.timeoutMs,
        () => new ChainError("rpc-unreachable", `chain lookup of node ${key}'s applications timed out`),
      );
      this.snapshot.delete(key);
      if (this.snapshot.size >= this.maxEntries) this.snapshot.delete(this.snapshot.keys().next().value as string);
      this.snapshot.set(
        key,
        ids.map((h) => Uint8Array.from(Buffer.from(h.slice(2), "hex"))),
      );
    } catch (err) {
      this.onError(err);
    }
  }

  async refresh(identities: Iterable<Uint8Array>): Promise<void> {
    for (const id of identities) await this.resolve(id);
  }
}

/**
 * The node process: composes layers by role.
 *
 * Owns start-up and shutdown of one node: keys from the config, a
 * ConnectionManager listening on TLS, and per role the layers above it. The
 * onion role is an OnionRelay (with the configured limits and built-in
 * services) driven over the manager's links by an OnionDriver. Other roles
 * (discovery, authority, oracle) join here as they are built.
 *
 * Trusts: its config (validated by config.ts) and the layers it composes.
 */
import { hex } from "./hex.js";
import { createConnectionManager } from "../link/index.js";
import type { ConnectionManager, Link, TlsCredentials } from "../link/index.js";
import { OnionRelay } from "../onion/relay.js";
import { OnionDriver } from "../onion/runtime.js";
import { createDiscardService, createEchoService } from "../onion/services.js";
import type { ServiceCounters } from "../onion/services.js";
import type { PathNode } from "../onion/path.js";
import type { LocalService } from "../onion/types.js";
import type { Cell } from "../wire/cell.js";
import { NodeError, loadIdentityKey, loadOnionKey, parseNodeConfig } from "./config.js";
import type { NodeConfig } from "./config.js";

/** What a running node tells others about itself (what a directory would list). */
export interface NodeInfo {
  /** Ed25519 identity public key, hex. */
  identity: string;
  /** X25519 onion public key, hex. */
  onionKey: string;
  host: string;
  port: number;
  roles: string[];
}

export interface StartNodeOptions {
  /** TLS certificate to reuse (tests and benchmarks start many nodes); generated when absent. */
  tlsCredentials?: TlsCredentials;
  /** Extra local services by name (in addition to the configured built-ins). */
  services?: Record<string, LocalService>;
  /** Test hook on every cell the relay sends (see OnionDriverOptions.outboundHook). */
  outboundHook?: (cell: Cell, link: Link) => Cell | undefined;
}

export interface RunningNode {
  readonly info: NodeInfo;
  /** The node as a client puts it in a path. */
  readonly pathNode: PathNode;
  readonly manager: ConnectionManager;
  readonly relay: OnionRelay;
  readonly driver: OnionDriver;
  /** Counters of the built-in services this node offers. */
  readonly services: Partial<Record<"echo" | "discard", ServiceCounters>>;
  /** Orderly shutdown: links get CLOSE SHUTDOWN, circuits end with CHANNEL_CLOSED at the neighbours. */
  close(): Promise<void>;
}

/**
 * Starts a node from a config (a NodeConfig or the parsed JSON of one).
 * Throws NodeError "bad-config", "key-load" or "start-failed".
 */
export async function startNode(configInput: NodeConfig | unknown, options: StartNodeOptions = {}): Promise<RunningNode> {
  const config = parseNodeConfig(configInput);
  const identity = await loadIdentityKey(config);
  const onionKey = await loadOnionKey(config);
  let manager: ConnectionManager;
  try {
    manager = await createConnectionManager({
      identity,
      listen: config.listen,
      ...(config.link ? { link: config.link } : {}),
      ...(config.maxLinks === undefined ? {} : { maxLinks: config.maxLinks }),
      ...(options.tlsCredentials ? { tlsCredentials: options.tlsCredentials } : {}),
    });
  } catch (err) {
    throw new NodeError("start-failed", `cannot listen on ${config.listen.host}:${config.listen.port}: ${(err as Error).message}`, { cause: err });
  }
  const bound = manager.address() as { host: string; port: number };
  const advertised = config.advertise ?? { host: config.listen.host, port: bound.port };

  const services: Record<string, LocalService> = {};
  const counters: RunningNode["services"] = {};
  for (const name of config.onion?.services ?? []) {
    const made = name === "echo" ? createEchoService() : createDiscardService();
    services[name] = made.service;
    counters[name] = made.counters;
  }
  Object.assign(services, options.services);

  const relay = new OnionRelay({
    identity: identity.publicKey,
    onionKeys: [onionKey],
    now: performance.now(),
    services,
    ...(config.onion?.limits ? { limits: config.onion.limits } : {}),
    ...(config.onion?.allowStreamsAtFirstHop === undefined ? {} : { allowStreamsAtFirstHop: config.onion.allowStreamsAtFirstHop }),
    ...(config.onion?.protoId === undefined ? {} : { protoId: config.onion.protoId }),
  });
  const driver = new OnionDriver({ manager, machine: relay, ...(options.outboundHook ? { outboundHook: options.outboundHook } : {}) });

  const info: NodeInfo = {
    identity: hex(identity.publicKey),
    onionKey: hex(onionKey.publicKey),
    host: advertised.host,
    port: advertised.port,
    roles: config.roles ?? ["onion"],
  };
  const pathNode: PathNode = {
    identity: identity.publicKey,
    onionKey: onionKey.publicKey,
    host: advertised.host,
    port: advertised.port,
    flags: ["running"],
  };
  let closing: Promise<void> | undefined;
  return {
    info,
    pathNode,
    manager,
    relay,
    driver,
    services: counters,
    close() {
      closing ??= (async () => {
        await manager.close();
        driver.stop();
      })();
      return closing;
    },
  };
}

/** A PathNode from a NodeInfo (what `psp node run` prints), for clients. */
export function pathNodeFromInfo(info: NodeInfo, flags: readonly string[] = ["running"]): PathNode {
  const key = (field: string, v: string): Uint8Array => {
    if (!/^[0-9a-f]{64}$/i.test(v)) throw new NodeError("bad-config", `node info ${field} must be 64 hex digits`);
    return Uint8Array.from(Buffer.from(v, "hex"));
  };
  return { identity: key("identity", info.identity), onionKey: key("onionKey", info.onionKey), host: info.host, port: info.port, flags };
}

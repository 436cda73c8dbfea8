/**
 * The multi-host testbed (issue 18): the devnet (scripts/lib/devnet.ts:
 * Hardhat chain, contracts, eleven staked nodes of every role, the demo
 * users registered through the authorities) with every node process in a
 * network namespace of its own (net.ts), its links and control API on its
 * namespace's address, the chain on the root namespace's address, and every
 * link shaped (netem, or the userspace link emulator). Resolves once every node serves a consensus listing
 * all of them; `stop()` stops the devnet and deletes the network.
 *
 * Trusts the devnet's code and key files, and iproute2; nodes' control APIs
 * are beyond loopback here, so their bearer tokens are read from the nodes'
 * data directories, as an operator on the same machine would.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { defaultDevnetNodes, startDevnet, type Devnet } from "../devnet.js";
import type { DevnetNodeState } from "../devnet.js";
import { childLogger } from "../../../node/src/log.js";
import type { Logger } from "../../../node/src/log.js";
import { createTestbedNet, type LinkShape, type TestbedNet } from "./net.js";

/** Each node's link port: every namespace has its own port space, so one fixed port serves all. */
export const TESTBED_LINK_PORT = 9100;
/** Voting every 2 s, each consensus valid 20 s: as the test devnet (test/helpers/devnet.ts). */
export const TESTBED_SCHEDULE = { periodMs: 2000, voteDelayMs: 600, distDelayMs: 600, validPeriods: 10 };

export interface TestbedOptions {
  /** Where the devnet's state, keys and logs go. */
  dir: string;
  shape: LinkShape;
  /** Fail when the links cannot be shaped (no netem, no link emulator), instead of running them unshaped. */
  requireShaping?: boolean;
  /** Deadline for a consensus listing every node (default 5 minutes). */
  consensusTimeoutMs?: number;
  logger?: Logger;
}

export interface Testbed {
  net: TestbedNet;
  devnet: Devnet;
  /** The devnet state file clients bootstrap from (`bootstrap: { devnet: stateFile }`). */
  stateFile: string;
  stop(): Promise<void>;
}

/** GET a node's control API with its bearer token. */
async function nodeGet(node: DevnetNodeState, dir: string, path: string): Promise<unknown> {
  const token = (await readFile(join(dir, "nodes", node.name, "data", "api-token"), "utf8")).trim();
  const res = await fetch(`${node.controlApi}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${node.name} ${path}: HTTP ${res.status}`);
  return await res.json();
}

/** Polls every node's /v1/consensus until each lists `count` nodes. */
async function waitForListing(nodes: readonly DevnetNodeState[], dir: string, count: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const done = new Set<string>();
  let best = 0;
  for (;;) {
    for (const n of nodes.filter((x) => x.controlApi && !done.has(x.name))) {
      try {
        const listed = ((await nodeGet(n, dir, "/v1/consensus")) as { nodes: unknown[] }).nodes.length;
        best = Math.max(best, listed);
        if (listed >= count) done.add(n.name);
      } catch {
        // Not yet serving one (or still starting): ask again next round.
      }
    }
    if (done.size === nodes.filter((x) => x.controlApi).length) return;
    if (performance.now() >= deadline)
      throw new Error(
        `testbed: no consensus listing ${count} nodes on every node within ${Math.round(timeoutMs / 1000)} s (${done.size} of ${nodes.length} serve one; the best lists ${best})`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Builds the network, starts the devnet across it and waits for the full consensus. */
export async function startTestbed(options: TestbedOptions): Promise<Testbed> {
  const log = childLogger(options.logger, "testbed");
  const net = await createTestbedNet({
    names: defaultDevnetNodes.map((n) => n.name),
    shape: options.shape,
    ...(options.requireShaping ? { requireShaping: true } : {}),
    log,
  });
  let devnet: Devnet | undefined;
  try {
    const byName = new Map(net.hosts.map((h) => [h.name, h]));
    devnet = await startDevnet({
      port: 0,
      apiPort: 0,
      dir: options.dir,
      deploymentFile: join(options.dir, "deployment.json"),
      schedule: TESTBED_SCHEDULE,
      chainHost: net.rootAddress,
      placement: (node) => {
        const host = byName.get(node.name);
        if (!host) throw new Error(`testbed: no namespace for node ${node.name}`);
        return { host: host.address, port: TESTBED_LINK_PORT, apiHost: host.address, command: net.exec(host) };
      },
      ...(options.logger ? { logger: options.logger } : {}),
    });
    const t0 = performance.now();
    await waitForListing(devnet.state.nodes, options.dir, devnet.state.nodes.length, options.consensusTimeoutMs ?? 5 * 60_000);
    log.info(`consensus every node serves one listing all ${devnet.state.nodes.length} nodes (${((performance.now() - t0) / 1000).toFixed(1)} s after start)`);
  } catch (err) {
    await devnet?.stop().catch((e: Error) => log.error(e.message));
    await net.teardown().catch((e: Error) => log.error(e.message));
    throw err;
  }
  const running = devnet;
  let stopped: Promise<void> | undefined;
  return {
    net,
    devnet: running,
    stateFile: join(options.dir, "state.json"),
    stop: () =>
      (stopped ??= (async () => {
        try {
          await running.stop();
        } finally {
          await net.teardown();
        }
      })()),
  };
}

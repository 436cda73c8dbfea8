/**
 * A devnet for a test file: chain, contracts, eleven `psp node run`
 * processes with 2-second voting periods, in a temporary folder whose
 * devnet/ subfolder holds state.json and the keys, so a `psp` command run
 * with that folder as its working directory finds the devnet by default.
 * Resolves once a consensus lists every node.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDevnet, waitForConsensusListing, type Devnet } from "../../scripts/lib/devnet.js";
import type { DeployParams } from "../../scripts/lib/deploy.js";

/**
 * Voting every 2 s keeps tests short. Each consensus stays valid for 20 s
 * (10 periods), so a stall of several seconds on a loaded machine (CI runs
 * two devnets at once on 2 cores) cannot leave clients without a consensus.
 */
export const TEST_DEVNET_SCHEDULE = { periodMs: 2000, voteDelayMs: 600, distDelayMs: 600, validPeriods: 10 };

export interface TestDevnet {
  /** The working directory: devnet/ and deployment.json are in it. */
  root: string;
  devnet: Devnet;
  /** The demo user `name` (alice, carol): identity and key file. */
  user(name: string): { identity: string; keyFile: string };
  stop(): Promise<void>;
}

/** `params` replaces the devnet's deployment parameters (e.g. shorter reward epochs). */
export async function startTestDevnet(prefix: string, options: { params?: DeployParams } = {}): Promise<TestDevnet> {
  const root = await mkdtemp(join(tmpdir(), `psp-${prefix}-`));
  const devnet = await startDevnet({
    port: 0,
    apiPort: 0,
    dir: join(root, "devnet"),
    deploymentFile: join(root, "deployment.json"),
    schedule: TEST_DEVNET_SCHEDULE,
    ...(options.params ? { params: options.params } : {}),
  }).catch(async (err: unknown) => {
    await rm(root, { recursive: true, force: true });
    throw err;
  });
  try {
    await devnet.firstConsensus;
    // Descriptors reach the discovery nodes over the first periods: wait for a consensus listing them all.
    await waitForConsensusListing(devnet.state.nodes, devnet.state.nodes.length, 5 * 60_000);
  } catch (err) {
    await devnet.stop();
    await rm(root, { recursive: true, force: true });
    throw err;
  }
  return {
    root,
    devnet,
    user: (name) => {
      const user = devnet.state.demo.users.find((u) => u.name === name);
      if (!user) throw new Error(`the devnet has no demo user ${name}`);
      return user;
    },
    stop: async () => {
      await devnet.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * `psp node start --config <file>` refuses to start a node that would run
 * wrong, before it starts, with exit status 2 and one line naming the fix
 * (and with --json the same error as JSON on stdout): a chain id that is not
 * the configured one, a node key that is not registered, not staked or not
 * approved for its role, a link or API port another process holds, and
 * discovery nodes that do not answer. A node that passes every check starts
 * and prints its ready line; the `node run` alias (which scripts
 * use to start a whole network at once) does not dial the discovery set. One real Hardhat chain for the file; real
 * sockets; the built `psp` bin.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseEther, toHex } from "viem";
import { generatePrivateKey } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectChain } from "../../node/src/chain/clients.js";
import { pspContractsFor } from "../../node/src/chain/contracts.js";
import type { Deployment } from "../../node/src/chain/deployment.js";
import { registerNode, signNodeRegistration, stakeNode } from "../../node/src/chain/staking.js";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { projectRoot } from "../../scripts/lib/artifacts.js";
import { deployPsp, devnetParams, writeDeployment } from "../../scripts/lib/deploy.js";
import { devAccount } from "../../scripts/lib/devnet-accounts.js";
import { freePort, startHardhatNode, type HardhatNode } from "../../scripts/lib/hardhat-node.js";

const pspBin = join(projectRoot, "node", "bin", "psp.js");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `psp node <start|run> --config <file>`: resolves on exit, or once the
 * ready line appears (the node is then stopped with SIGTERM and `code` is "ready").
 */
async function nodeCommand(config: string, extra: string[] = [], command = "start"): Promise<Run & { ready: boolean }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [pspBin, "node", command, "--config", config, ...extra], {
      cwd: projectRoot,
      env: { ...process.env, PSP_LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let ready = false;
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
      if (!ready && /"event":"ready"/.test(stdout)) {
        ready = true;
        child.kill("SIGTERM");
      }
    });
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr, ready }));
  });
}

/** The one error line of a refused start. */
function errorLine(run: Run): string {
  const lines = run.stderr.split("\n").filter((l) => l.includes("error:"));
  expect(lines, run.stderr).toHaveLength(1);
  return lines[0]!;
}

describe("psp node start: start-up diagnostics", () => {
  let chain: HardhatNode;
  let dir: string;
  let deployment: Deployment;
  let deploymentFile: string;
  const operator = devAccount(1);

  const ctx = async () => ({ clients: await connectChain({ rpcUrl: chain.rpcUrl, account: operator }), deployment });

  /** A registered node key (roles bitmask), staked with `stake` PSP when given. */
  async function registeredNode(signer: number, roles: number, stake?: string): Promise<Uint8Array> {
    const keys = generateEd25519KeyPair();
    const c = await ctx();
    const consent = await signNodeRegistration(c, { nodeSecretKey: keys.secretKey, signer: devAccount(signer), operator: operator.address });
    await registerNode(c, { consent, roles });
    if (stake !== undefined) await stakeNode(c, { nodeKey: consent.nodeKey, amount: parseEther(stake) });
    return keys.secretKey;
  }

  let configs = 0;
  /** Writes a config (a YAML file every other time: both formats go through the same checks). */
  async function config(body: Record<string, unknown>): Promise<string> {
    configs++;
    const file = join(dir, `node-${configs}.${configs % 2 === 0 ? "yaml" : "json"}`);
    await writeFile(file, JSON.stringify({ listen: { host: "127.0.0.1", port: 0 }, api: false, ...body }, null, 2));
    return file;
  }

  const chainSection = (extra: Record<string, unknown> = {}) => ({ chain: { rpcUrl: chain.rpcUrl, deploymentFile, confirmations: 0, ...extra } });
  const identity = (secretKey: Uint8Array) => ({ identity: { secretKeyHex: toHex(secretKey).slice(2) } });

  beforeAll(async () => {
    chain = await startHardhatNode({ port: 0 });
    dir = await mkdtemp(join(tmpdir(), "psp-node-start-"));
    const admin = await connectChain({ rpcUrl: chain.rpcUrl, account: devAccount(0) });
    ({ deployment } = await deployPsp({ clients: admin, network: "test", params: devnetParams }));
    deploymentFile = join(dir, "deployment.json");
    await writeDeployment(deploymentFile, deployment);
    const { token } = pspContractsFor(deployment, { public: admin.publicClient, wallet: admin.walletClient! });
    await admin.publicClient.waitForTransactionReceipt({ hash: await token.write.transfer([operator.address, parseEther("500000")]) });
  });
  afterAll(async () => {
    await chain?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a chain id other than the configured one, naming the fix, as a line and as JSON", async () => {
    const file = await config({ ...chainSection({ chainId: 8453 }) });
    const run = await nodeCommand(file, ["--json"]);
    expect(run.code, run.stderr).toBe(2);
    expect(errorLine(run)).toMatch(
      /^psp node start: error: \[node\/wrong-chain\] chain\.rpcUrl .* serves chain 31337, but chain\.chainId is 8453; fix: point chain\.rpcUrl in .* at an RPC endpoint of chain 8453/,
    );
    const json = JSON.parse(run.stdout) as { error: { kind: string; message: string; fix: string } };
    expect(json.error).toMatchObject({ layer: "node", kind: "wrong-chain", category: "config" });
    expect(json.error.fix).toMatch(/chain 8453/);
  });

  it("refuses a deployment file of another chain", async () => {
    const other = join(dir, "other-chain.json");
    await writeFile(other, JSON.stringify({ ...JSON.parse(await readFile(deploymentFile, "utf8")), chainId: 5 }));
    const run = await nodeCommand(await config({ chain: { rpcUrl: chain.rpcUrl, deploymentFile: other } }));
    expect(run.code, run.stderr).toBe(2);
    expect(errorLine(run)).toMatch(
      /\[node\/wrong-chain\] .*other-chain\.json is a deployment on chain 5, but .* serves chain 31337; fix: .*chain\.deploymentFile/,
    );
  });

  it("refuses an RPC endpoint that does not answer", async () => {
    const port = await freePort();
    const run = await nodeCommand(await config({ chain: { rpcUrl: `http://127.0.0.1:${port}`, deploymentFile } }));
    expect(run.code, run.stderr).toBe(2);
    expect(errorLine(run)).toMatch(
      /\[node\/chain-unreachable\] chain\.rpcUrl http:\/\/127\.0\.0\.1:\d+ does not answer; fix: check that the chain's JSON-RPC endpoint runs/,
    );
  });

  it("refuses a node key that is not registered, naming psp operator register", async () => {
    const run = await nodeCommand(await config({ ...chainSection(), ...identity(generateEd25519KeyPair().secretKey) }));
    expect(run.code, run.stderr).toBe(2);
    expect(errorLine(run)).toMatch(
      /\[node\/not-registered\] node key [0-9a-f]{64} is not registered in the NodeRegistry 0x[0-9a-fA-F]{40} on chain 31337; fix: .*psp operator register --node-key [0-9a-f]{64} --consent consent\.json --roles onion/,
    );
  });

  it("refuses a registered node without stake, and one below its role's minimum, naming psp operator stake", async () => {
    const unstaked = await nodeCommand(await config({ ...chainSection(), ...identity(await registeredNode(20, 1)) }));
    expect(unstaked.code, unstaked.stderr).toBe(2);
    expect(errorLine(unstaked)).toMatch(
      /\[node\/not-staked\] node key [0-9a-f]{64} has no stake bonded; fix: psp operator stake --node-key [0-9a-f]{64} --amount <PSP>/,
    );
    const short = await nodeCommand(await config({ ...chainSection(), ...identity(await registeredNode(21, 1, "1")) }));
    expect(short.code, short.stderr).toBe(2);
    const min = Number(devnetParams.minStakeOnion / 10n ** 18n);
    expect(errorLine(short)).toMatch(
      new RegExp(
        `\\[node/not-staked\\] .* has 1 PSP bonded; the onion role needs ${min} PSP; fix: psp operator stake --node-key [0-9a-f]{64} --amount ${min - 1} `,
      ),
    );
  });

  it("refuses a set role governance has not approved, and a role the node is not registered for", async () => {
    const key = await registeredNode(22, 1 | 4, "100000");
    const signer = { privateKeyHex: generatePrivateKey() };
    const authority = await nodeCommand(await config({ ...chainSection(), ...identity(key), roles: ["onion", "authority"], authority: { signer } }));
    expect(authority.code, authority.stderr).toBe(2);
    expect(errorLine(authority)).toMatch(/\[node\/not-staked\] .* not approved by governance for the authority role; fix: /);
    const oracle = await nodeCommand(await config({ ...chainSection(), ...identity(key), roles: ["onion", "oracle"], oracle: { signer } }));
    expect(oracle.code, oracle.stderr).toBe(2);
    expect(errorLine(oracle)).toMatch(/\[node\/not-registered\] .* registered for onion, authority, not for oracle .*; fix: remove oracle from roles/);
  });

  it("starts a registered, staked node and prints its ready line", async () => {
    // A test key (no DHT puzzle solved): the test network lowers the puzzle, as docs/spec/node.md allows.
    const run = await nodeCommand(await config({ ...chainSection(), ...identity(await registeredNode(23, 1, "5000")), dht: { staticDifficulty: 0 } }));
    expect(run.ready, run.stderr + run.stdout).toBe(true);
    expect(run.stderr).not.toMatch(/error:/);
  });

  it("refuses a link or API port another process holds, naming the config field", async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen({ host: "127.0.0.1", port: 0 }, resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const link = await nodeCommand(await config({ listen: { host: "127.0.0.1", port } }), ["--json"]);
      expect(link.code, link.stderr).toBe(2);
      expect(errorLine(link)).toMatch(
        new RegExp(`\\[node/port-in-use\\] listen\\.port ${port} is already in use on 127\\.0\\.0\\.1 .*; fix: .*or set listen\\.port in .* to a free port`),
      );
      expect((JSON.parse(link.stdout) as { error: { kind: string } }).error.kind).toBe("port-in-use");
      const api = await nodeCommand(await config({ api: { host: "127.0.0.1", port } }));
      expect(api.code, api.stderr).toBe(2);
      expect(errorLine(api)).toMatch(new RegExp(`\\[node/port-in-use\\] api\\.port ${port} is already in use .*; fix: .*set api\\.port in`));
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("refuses discovery nodes that all do not answer, listing each; `node run` does not dial them", async () => {
    const [a, b] = [await freePort(), await freePort()];
    const discovery = [
      { identity: "aa".repeat(32), host: "127.0.0.1", port: a },
      { identity: "bb".repeat(32), host: "127.0.0.1", port: b },
    ];
    const file = await config({ directory: { discovery } });
    const start = await nodeCommand(file);
    expect(start.code, start.stderr).toBe(2);
    const line = errorLine(start);
    expect(line).toMatch(/\[node\/discovery-unreachable\] none of the 2 discovery nodes in directory\.discovery answers: /);
    expect(line).toContain(`127.0.0.1:${a} (aaaaaaaaaaaaaaaa…): connection refused`);
    expect(line).toContain(`127.0.0.1:${b} (bbbbbbbbbbbbbbbb…): connection refused`);
    expect(line).toMatch(/; fix: check directory\.discovery in /);
    const run = await nodeCommand(file, [], "run");
    expect(run.ready, run.stderr + run.stdout).toBe(true);
    expect(run.stderr).toBe("");
  });
});

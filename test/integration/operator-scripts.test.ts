/**
 * Deploy and operator staking against a real Hardhat JSON-RPC node: the happy
 * path, the CLI with an encrypted keystore, and every refusal an operator can
 * run into (wrong chain, missing deployment, short balance, immature unbond).
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parseEther, toHex, type Hex } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectChain } from "../../node/src/chain/clients.js";
import { pspContractsFor } from "../../node/src/chain/contracts.js";
import { readDeployment, type Deployment } from "../../node/src/chain/deployment.js";
import { nodeKeyHex, nodeStatus, registerNode, requestUnstake, signNodeRegistration, stakeNode, withdrawStake } from "../../node/src/chain/staking.js";
import { encryptKeyFile } from "../../node/src/crypto/keyfile.js";
import { admitNodes } from "../../scripts/lib/governance.js";
import { generateEd25519KeyPair } from "../../node/src/crypto/ed25519.js";
import { encryptEvmKeystore } from "../../node/src/crypto/evm-keystore.js";
import { projectRoot } from "../../scripts/lib/artifacts.js";
import { deployPsp, devnetParams, writeDeployment } from "../../scripts/lib/deploy.js";
import { devAccount } from "../../scripts/lib/devnet-accounts.js";
import { startHardhatNode, type HardhatNode } from "../../scripts/lib/hardhat-node.js";

const run = promisify(execFile);

describe("deploy and operator scripts", () => {
  let chain: HardhatNode;
  let dir: string;
  let deployment: Deployment;
  const deploymentFile = () => join(dir, "deployment.json");
  const operator = devAccount(1);
  const stranger = devAccount(2);

  const ctxFor = async (account = operator) => ({
    clients: await connectChain({ rpcUrl: chain.rpcUrl, account }),
    deployment,
  });

  beforeAll(async () => {
    chain = await startHardhatNode({ port: 0 });
    dir = await mkdtemp(join(tmpdir(), "psp-ops-"));
    const admin = await connectChain({ rpcUrl: chain.rpcUrl, account: devAccount(0) });
    ({ deployment } = await deployPsp({ clients: admin, network: "test", params: devnetParams }));
    await writeDeployment(deploymentFile(), deployment);
    const { token } = pspContractsFor(deployment, { public: admin.publicClient, wallet: admin.walletClient! });
    const hash = await token.write.transfer([operator.address, parseEther("200000")]);
    await admin.publicClient.waitForTransactionReceipt({ hash });
  });
  afterAll(async () => {
    await chain?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("npm run deploy --json prints one JSON document, and deploys nothing again", async () => {
    const file = join(dir, "deploy-cli.json");
    const deploy = async () => JSON.parse((await run(process.execPath, [join(projectRoot, "build", "scripts", "deploy.js"), "--rpc", chain.rpcUrl, "--deployment", file, "--devnet-params", "--json"], { cwd: projectRoot })).stdout) as {
      file: string;
      written: boolean;
      chainId: number;
      contracts: Record<string, string>;
    };
    const first = await deploy();
    expect(first).toMatchObject({ file, written: true, chainId: 31337 });
    expect(first.contracts.NodeRegistry).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(await deploy()).toEqual({ ...first, written: false });
  });

  it("deploy is idempotent while the contracts are live", async () => {
    const admin = await connectChain({ rpcUrl: chain.rpcUrl, account: devAccount(0) });
    const again = await deployPsp({ clients: admin, network: "test", params: devnetParams, previous: deployment });
    expect(again.reused).toBe(true);
    expect(again.deployment).toEqual(deployment);
  });

  it("deploy redeploys when the recorded contracts are gone", async () => {
    const admin = await connectChain({ rpcUrl: chain.rpcUrl, account: devAccount(0) });
    const ghost = structuredClone(deployment);
    ghost.contracts.OracleReceipts.address = "0x000000000000000000000000000000000000dEaD";
    const fresh = await deployPsp({ clients: admin, network: "test", params: devnetParams, previous: ghost });
    expect(fresh.reused).toBe(false);
    expect(fresh.deployment.contracts.NodeRegistry.address).not.toBe(deployment.contracts.NodeRegistry.address);
  });

  /** Registers a fresh node with `signer`'s consent and its key's proof. */
  const register = async (ctx: Awaited<ReturnType<typeof ctxFor>>, signer: number, roles: number) => {
    const keys = generateEd25519KeyPair();
    const consent = await signNodeRegistration(ctx, { nodeSecretKey: keys.secretKey, signer: devAccount(signer), operator: ctx.clients.walletClient!.account.address });
    await registerNode(ctx, { consent, roles });
    return consent.nodeKey;
  };

  it("registers, stakes with a permit, joins after approval, unstakes and withdraws after the unbonding delay", async () => {
    const ctx = await ctxFor();
    const nodeKey = await register(ctx, 9, 1 | 4);
    await stakeNode(ctx, { nodeKey, amount: parseEther("100000") });
    let status = await nodeStatus(ctx, nodeKey);
    expect(status.bonded).toBe(parseEther("100000"));
    // Staked, but the authority role needs governance approval on this deployment.
    expect(status.eligible).toEqual(["onion"]);
    expect(status.memberOf).toEqual([]);
    await admitNodes(await connectChain({ rpcUrl: chain.rpcUrl, account: devAccount(0) }), deployment, [{ nodeKey, roles: 4 }]);
    status = await nodeStatus(ctx, nodeKey);
    expect(status.approved).toEqual(["authority"]);
    expect(status.eligible).toEqual(["onion", "authority"]);
    expect(status.memberOf).toContain("authority");

    await requestUnstake(ctx, { nodeKey, amount: parseEther("40000") });
    status = await nodeStatus(ctx, nodeKey);
    expect(status.unbonding).toBe(parseEther("40000"));
    expect(status.eligible).toEqual(["onion"]);
    expect(status.memberOf).not.toContain("authority");

    await expect(withdrawStake(ctx, { nodeKey })).rejects.toMatchObject({ kind: "nothing-to-withdraw", message: expect.stringMatching(/s from now/) });
    await ctx.clients.publicClient.request({ method: "evm_increaseTime" as never, params: [devnetParams.unbondingDelay + 1] as never });
    await ctx.clients.publicClient.request({ method: "evm_mine" as never, params: [] as never });
    const before = await pspContractsFor(deployment, { public: ctx.clients.publicClient }).token.read.balanceOf([operator.address]);
    await withdrawStake(ctx, { nodeKey });
    const after = await pspContractsFor(deployment, { public: ctx.clients.publicClient }).token.read.balanceOf([operator.address]);
    expect(after - before).toBe(parseEther("40000"));
  });

  it("refuses with errors that name the fix", async () => {
    const ctx = await ctxFor();
    await expect(stakeNode(ctx, { nodeKey: nodeKeyHex(generateEd25519KeyPair().publicKey), amount: 1n })).rejects.toMatchObject({ kind: "unknown-node" });
    const keys = generateEd25519KeyPair();
    const consent = await signNodeRegistration(ctx, { nodeSecretKey: keys.secretKey, signer: devAccount(10), operator: operator.address });
    const nodeKey = consent.nodeKey;
    await registerNode(ctx, { consent, roles: 1 });
    await expect(stakeNode(ctx, { nodeKey, amount: parseEther("999999999") })).rejects.toMatchObject({ kind: "insufficient-balance" });
    await expect(requestUnstake(ctx, { nodeKey, amount: 1n })).rejects.toMatchObject({ kind: "insufficient-balance" });
    await expect(withdrawStake(ctx, { nodeKey })).rejects.toMatchObject({ kind: "nothing-to-withdraw" });
    const strangerCtx = await ctxFor(stranger);
    await expect(stakeNode(strangerCtx, { nodeKey, amount: 1n })).rejects.toMatchObject({ kind: "not-operator" });
    // The same key twice is refused by the contract, reported by its custom error.
    const twice = await signNodeRegistration(ctx, { nodeSecretKey: keys.secretKey, signer: devAccount(11), operator: operator.address });
    await expect(registerNode(ctx, { consent: twice, roles: 1 })).rejects.toMatchObject({
      kind: "transaction-reverted",
      message: expect.stringContaining("NodeAlreadyRegistered"),
    });
    // A consent for another operator is refused before anything is sent.
    const forOther = await signNodeRegistration(ctx, { nodeSecretKey: generateEd25519KeyPair().secretKey, signer: devAccount(12), operator: stranger.address });
    await expect(registerNode(ctx, { consent: forOther, roles: 1 })).rejects.toMatchObject({ kind: "bad-argument" });
    const wrongChain = { ...ctx, deployment: { ...deployment, chainId: 1 } };
    await expect(registerNode(wrongChain, { consent: forOther, roles: 1 })).rejects.toMatchObject({
      kind: "wrong-chain",
    });
    await expect(readDeployment(join(dir, "nope.json"))).rejects.toMatchObject({ kind: "missing-deployment" });
    expect(() => nodeKeyHex("abcd")).toThrow(/64 hex digits/);
  });

  it("the operator CLI stakes from an encrypted keystore and reports status", async () => {
    const keystore = join(dir, "operator.json");
    const operatorKey: Hex = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"; // Hardhat dev account 1
    await writeFile(keystore, await encryptEvmKeystore(operatorKey, "correct horse", { scryptN: 2 ** 10 }));
    const nodeKeys = generateEd25519KeyPair();
    const nodeKey = toHex(nodeKeys.publicKey).slice(2);
    const common = ["--rpc", chain.rpcUrl, "--deployment", deploymentFile(), "--node-key", nodeKey];
    const env = { ...process.env, PSP_KEYSTORE_PASSWORD: "correct horse", PSP_KEY_PASSWORD: "node key pass" };
    const cli = (args: string[], extraEnv = env) => run(process.execPath, [join(projectRoot, "build", "scripts", "operator.js"), ...args], { env: extraEnv, cwd: projectRoot });

    // Where the node's keys are: its signer's keystore and its identity key file sign the consent.
    const signerKeystore = join(dir, "signer.json");
    await writeFile(signerKeystore, await encryptEvmKeystore(toHex(devAccount(13).getHdKey().privateKey!), "correct horse", { scryptN: 2 ** 10 }));
    const nodeKeyFile = join(dir, "node.key");
    await writeFile(nodeKeyFile, await encryptKeyFile(nodeKeys.secretKey, "node key pass", { scrypt: { N: 2 ** 10 } }));
    const consentFile = join(dir, "consent.json");
    const chainArgs = ["--rpc", chain.rpcUrl, "--deployment", deploymentFile()];
    // With --json every command's stdout is one JSON document (its progress stays off stdout).
    const json = async (args: string[]) => JSON.parse((await cli([...args, "--json"])).stdout) as Record<string, unknown>;
    const consented = await json(["consent", ...chainArgs, "--node-key-file", nodeKeyFile, "--signer-keystore", signerKeystore, "--operator", operator.address, "--out", consentFile]);
    expect(consented).toMatchObject({ out: consentFile, nodeKey: `0x${nodeKey}`, operator: operator.address });
    expect(await json(["register", ...common, "--keystore", keystore, "--consent", consentFile, "--roles", "onion"])).toMatchObject({
      registered: `0x${nodeKey}`,
      roles: ["onion"],
      tx: expect.stringMatching(/^0x[0-9a-f]{64}$/),
    });
    // Without --json: the progress goes to stderr as plain lines (not a terminal), the answer line to stdout.
    const staked = await cli(["stake", ...common, "--keystore", keystore, "--amount", "2500"]);
    expect(staked.stdout).toMatch(/^staked 2500 PSP \(tx 0x[0-9a-f]{64}\)\n$/);
    expect(staked.stderr).toMatch(/✔ stake 2500 PSP on node 0x/);
    const { stdout } = await cli(["status", ...common, "--json"]);
    const status = JSON.parse(stdout) as { bonded: string; eligible: string[] };
    expect(status.bonded).toBe(parseEther("2500").toString());
    expect(status.eligible).toEqual(["onion"]);

    const wrongPassword = cli(["stake", ...common, "--keystore", keystore, "--amount", "1"], { ...env, PSP_KEYSTORE_PASSWORD: "wrong" });
    await expect(wrongPassword).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining("[crypto/bad-passphrase]") });
    // A failure under --json is also one JSON document on stdout: { error: { kind, message, fix } }.
    const failed = (await cli(["stake", ...common, "--keystore", keystore, "--amount", "1", "--json"], { ...env, PSP_KEYSTORE_PASSWORD: "wrong" }).catch(
      (e: unknown) => e,
    )) as { code: number; stdout: string };
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout)).toMatchObject({ error: { layer: "crypto", kind: "bad-passphrase", message: expect.any(String) } });
    const badRole = cli(["register", ...common, "--keystore", keystore, "--consent", consentFile, "--roles", "exit"]);
    await expect(badRole).rejects.toMatchObject({ stderr: expect.stringContaining('unknown role "exit"') });
  });
});

/**
 * The built `psp` bin on bad input, as a user meets it: unknown options, a
 * missing or malformed devnet state, a deployment for another chain, a wrong
 * passphrase. Each must print one clear error line naming the fix, exit
 * non-zero, and write nothing.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHardhatNode, type HardhatNode } from "../../scripts/lib/hardhat-node.js";

const root = join(import.meta.dirname, "..", "..");
const pspBin = join(root, "node", "bin", "psp.js");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The test's own environment minus any PSP_KEY_PASSWORD its runner has set. */
function withoutPassphrase(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { PSP_KEY_PASSWORD: _ignored, ...rest } = env;
  return rest;
}

async function psp(cwd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [pspBin, ...args], { cwd, env: { ...withoutPassphrase(process.env), ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The lines a failed run printed, without blank ones. */
const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

/** Every file under `dir` with its contents, to prove a failed run wrote nothing. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out[join(entry.parentPath, entry.name)] = await readFile(join(entry.parentPath, entry.name), "utf8");
  }
  return out;
}

describe("psp on bad input", () => {
  let dir: string;
  let keyFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "psp-cli-errors-"));
    keyFile = join(dir, "alice.key");
    const made = await psp(dir, ["identity", "create", "--out", keyFile], { PSP_KEY_PASSWORD: "correct horse battery" });
    expect(made.code, made.stderr).toBe(0);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs `args`, expects a failure with one error line matching `pattern`, and no file written or changed. */
  async function expectRefused(args: string[], pattern: RegExp, env: Record<string, string> = {}): Promise<Run> {
    const before = await snapshot(dir);
    const run = await psp(dir, args, env);
    expect(run.code, run.stderr).not.toBe(0);
    const errors = lines(run.stderr).filter((l) => l.startsWith("error:"));
    expect(errors, run.stderr).toHaveLength(1);
    expect(errors[0]).toMatch(pattern);
    // At most a one-line hint beside the error, never a wall of usage.
    expect(lines(run.stderr).length, run.stderr).toBeLessThanOrEqual(2);
    expect(await snapshot(dir)).toEqual(before);
    return run;
  }

  it("prints data and failures as one JSON document on stdout with --json", async () => {
    const created = await psp(dir, ["identity", "create", "--out", join(dir, "bob.key"), "--json"], { PSP_KEY_PASSWORD: "correct horse battery" });
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toEqual({ identity: expect.stringMatching(/^peerstream\.client\.account\./), keyFile: join(dir, "bob.key") });
    const refused = await psp(dir, ["status", "--state", join(dir, "missing.json"), "--json"]);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toEqual({
      error: { layer: "client", kind: "bad-bootstrap", category: "config", message: expect.stringMatching(/no devnet state at .*npm start/) },
    });
    await rm(join(dir, "bob.key"));
  });

  it("refuses unknown options and commands, pointing at --help", async () => {
    const run = await expectRefused(["identity", "show", "--bogus"], /unknown option '--bogus'/);
    expect(run.stderr).toMatch(/--help/);
    await expectRefused(["frobnicate"], /unknown command 'frobnicate'/);
    await expectRefused(["sim", "dht", "--nodes", "lots"], /--nodes must be an integer/);
  });

  it("refuses a missing, malformed or foreign devnet state file", async () => {
    await expectRefused(["status", "--state", join(dir, "missing.json")], /no devnet state at .*npm start/);
    await writeFile(join(dir, "broken.json"), "{not json");
    await expectRefused(["status", "--state", join(dir, "broken.json")], /is not JSON.*start the devnet again/);
    await writeFile(join(dir, "other.json"), JSON.stringify({ chainId: 31337, rpcUrl: 42 }));
    await expectRefused(["status", "--state", join(dir, "other.json")], /rpcUrl .*start the devnet again/);
  });

  it("refuses a wrong passphrase or a missing one without touching the key file", async () => {
    await expectRefused(["cert", "request", "--key-file", keyFile], /bad-passphrase.*does not open with this passphrase/, { PSP_KEY_PASSWORD: "wrong horse" });
    await expectRefused(["identity", "register", "--key-file", keyFile], /no passphrase .*PSP_KEY_PASSWORD/);
    await expectRefused(["identity", "create", "--out", keyFile], /EEXIST.*--force/, { PSP_KEY_PASSWORD: "another one" });
  });

  describe("against a chain", () => {
    let chain: HardhatNode;
    beforeAll(async () => {
      chain = await startHardhatNode({ port: 0 });
    });
    afterAll(async () => {
      await chain?.stop();
    });

    it("refuses a deployment made for another chain, and a missing one", async () => {
      const address = (n: number) => `0x${n.toString(16).padStart(40, "0")}`;
      const names = ["PSPToken", "NodeRegistry", "BandwidthRewards", "IdentityRegistry", "Subscriptions", "OracleReceipts"];
      const foreign = {
        network: "mainnet",
        chainId: 1,
        deployer: address(1),
        contracts: Object.fromEntries(names.map((n, i) => [n, { address: address(i + 16), blockNumber: 1 }])),
      };
      await writeFile(join(dir, "mainnet.json"), JSON.stringify(foreign));
      const show = ["identity", "show", "--key-file", keyFile, "--rpc", chain.rpcUrl];
      await expectRefused([...show, "--deployment", join(dir, "mainnet.json")], /deployment on chain 1 but .* serves chain 31337: point --rpc/);
      await expectRefused(show, /no deployment at .*npm run deploy/);
    });
  });
});

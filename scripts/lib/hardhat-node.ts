/**
 * Starts a Hardhat JSON-RPC node as a child process and waits until it answers.
 *
 * Listens on 127.0.0.1 only (without --hostname Hardhat listens on every
 * interface). Used by the devnet and by integration tests that need a chain
 * reached over JSON-RPC exactly as a deployed node would reach one.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createServer } from "node:net";
import { projectRoot } from "./artifacts.js";

export interface HardhatNode {
  rpcUrl: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

export interface StartHardhatNodeOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Where the node's output goes; discarded when omitted. */
  logFile?: string;
  timeoutMs?: number;
}

/** Asks the OS for a free TCP port on `host`. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function portInUse(host: string, port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(true));
    server.listen(port, host, () => server.close(() => resolve(false)));
  });
}

async function rpcReady(rpcUrl: string): Promise<boolean> {
  try {
    const res = await fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
    });
    return res.ok;
  } catch {
    return false;
  }
}

export async function startHardhatNode(opts: StartHardhatNodeOptions = {}): Promise<HardhatNode> {
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port || (await freePort(host));
  if (await portInUse(host, port)) {
    throw new Error(`port ${host}:${port} is already in use: stop whatever runs there (another devnet?) or choose another port`);
  }
  const hardhatBin = join(projectRoot, "node_modules", "hardhat", "dist", "src", "cli.js");
  const child = spawn(process.execPath, [hardhatBin, "node", "--hostname", host, "--port", String(port)], {
    cwd: projectRoot,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: "true" },
  });
  if (opts.logFile) {
    await mkdir(dirname(opts.logFile), { recursive: true });
    const log = createWriteStream(opts.logFile);
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
  } else {
    child.stdout?.resume();
    child.stderr?.resume();
  }
  let exited: number | null | undefined;
  child.once("exit", (code) => (exited = code));
  const rpcUrl = `http://${host}:${port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  while (!(await rpcReady(rpcUrl))) {
    if (exited !== undefined) throw new Error(`hardhat node exited with code ${exited} before serving ${rpcUrl}${opts.logFile ? `; see ${opts.logFile}` : ""}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`hardhat node did not answer on ${rpcUrl} in time`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const stop = async () => {
    if (exited !== undefined) return;
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
    await gone;
    clearTimeout(timer);
  };
  return { rpcUrl, port, process: child, stop };
}

/**
 * The built `psp` bin as a user runs it: to completion (`runPsp`), or as a
 * long-running command whose output lines a test waits for (`startPsp`).
 * The runner's PSP_KEY_PASSWORD is never passed on unless a test sets it.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";

export const pspBin = join(import.meta.dirname, "..", "..", "node", "bin", "psp.js");

export interface PspRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function environment(env: Record<string, string>): NodeJS.ProcessEnv {
  const { PSP_KEY_PASSWORD: _ignored, ...rest } = process.env;
  return { ...rest, ...env };
}

export async function runPsp(cwd: string, args: string[], env: Record<string, string> = {}): Promise<PspRun> {
  const running = startPsp(cwd, args, env);
  const { code } = await running.exited;
  return { code, stdout: running.stdout(), stderr: running.stderr() };
}

export interface RunningPsp {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** The first stdout line `match` accepts, now or later; rejects if the command exits first. */
  line(match: (line: string) => boolean): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends SIGINT and resolves with how the command ended. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startPsp(cwd: string, args: string[], env: Record<string, string> = {}): RunningPsp {
  const child = spawn(process.execPath, [pspBin, ...args], { cwd, env: environment(env), stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const waiting: { match: (line: string) => boolean; resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  const lines = (): string[] => out.split("\n").filter((l) => l !== "");
  const check = (): void => {
    for (const w of [...waiting]) {
      const found = lines().find(w.match);
      if (found !== undefined) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(found);
      }
    }
  };
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
    check();
  });
  child.stderr.on("data", (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      check();
      for (const w of waiting.splice(0)) w.reject(new Error(`psp ${args.join(" ")} exited (${code ?? signal}) first:\n${err}`));
      resolve({ code, signal });
    });
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    line: (match) =>
      new Promise((resolve, reject) => {
        const found = lines().find(match);
        if (found !== undefined) return resolve(found);
        if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`psp ${args.join(" ")} has exited:\n${err}`));
        waiting.push({ match, resolve, reject });
      }),
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
      return await exited;
    },
  };
}

/**
 * The CLI's progress helper (node/src/cli/progress.ts) off a terminal: plain
 * lines on stderr only (listr2's verbose renderer), nothing at all under
 * --json, a step's own error passed through unchanged, and externally driven
 * steps (the devnet's start) that complete in order or fail at the running
 * step. stdout is never written.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { progressMode, runSteps, trackSteps, withProgress } from "../../../node/src/cli/progress.js";
import { ChainError } from "../../../node/src/chain/errors.js";

describe("progress", () => {
  let stderr: string;
  let stdout: string;
  beforeEach(() => {
    stderr = "";
    stdout = "";
    vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => ((stderr += chunk.toString()), true));
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => ((stdout += chunk.toString()), true));
    vi.stubEnv("PSP_PROGRESS", "");
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it("picks silent under --json, the renderer on a terminal, plain lines elsewhere", () => {
    expect(progressMode({ json: true }, { isTTY: true })).toBe("silent");
    vi.stubEnv("CI", "");
    expect(progressMode({}, { isTTY: true })).toBe("tty");
    expect(progressMode({}, { isTTY: false })).toBe("plain");
    vi.stubEnv("CI", "true");
    expect(progressMode({}, { isTTY: true })).toBe("plain");
    vi.stubEnv("PSP_PROGRESS", "silent");
    expect(progressMode({}, { isTTY: true })).toBe("silent");
  });

  it("prints plain step lines on stderr, returns the step's result and writes no stdout", async () => {
    const result = await withProgress("register node 0xab…", async (report) => {
      report.output("waiting until it is mined");
      report.title("registered node 0xab…");
      return 42;
    });
    expect(result).toBe(42);
    expect(stderr).toMatch(/❯ register node 0xab…/);
    expect(stderr).toMatch(/› waiting until it is mined/);
    expect(stderr).toMatch(/✔ registered node 0xab…/);
    expect(stdout).toBe("");
  });

  it("is silent under --json", async () => {
    expect(
      await runSteps<[number, string]>(
        [
          { title: "a", run: async () => 1 },
          { title: "b", run: async () => "two" },
        ],
        { json: true },
      ),
    ).toEqual([1, "two"]);
    expect(stderr).toBe("");
    expect(stdout).toBe("");
  });

  it("fails with the step's own error and runs no later step", async () => {
    const refused = new ChainError("wrong-chain", "served chain 1");
    let later = false;
    const run = runSteps([
      { title: "first", run: async () => Promise.reject(refused) },
      { title: "second", run: async () => (later = true) },
    ]);
    await expect(run).rejects.toBe(refused);
    expect(later).toBe(false);
    expect(stderr).toMatch(/✖ served chain 1/);
  });

  it("tracks steps driven from elsewhere, in order, and fails at the running one", async () => {
    const steps = trackSteps(["chain", "deploy", "nodes"]);
    steps.start("chain");
    steps.output("chain at 127.0.0.1:8545");
    steps.start("nodes");
    steps.output("node onion-1 staked");
    await steps.done();
    const completed = [...stderr.matchAll(/✔ (\w+)/g)].map((m) => m[1]);
    expect(completed).toEqual(["chain", "deploy", "nodes"]);
    expect(stderr).toMatch(/› node onion-1 staked/);
    expect(() => steps.start("demo")).toThrow(/no step "demo"/);

    stderr = "";
    const failing = trackSteps(["chain", "deploy"]);
    failing.start("deploy");
    await failing.fail(new Error("deploy reverted"));
    expect(stderr).toMatch(/✔ chain/);
    expect(stderr).toMatch(/✖ deploy reverted/);
  });
});

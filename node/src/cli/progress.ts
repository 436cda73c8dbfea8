/**
 * Progress on long work (a transaction to be mined, an epoch to pass, the
 * devnet's start, a deployment): the one helper every command and script
 * uses, on listr2. Progress goes to stderr only, so stdout stays a command's
 * answer:
 *
 * - on a terminal: listr2's default renderer (a spinner per step, the
 *   step's latest line under it);
 * - not on a terminal (pipes, CI, tests) or with PSP_PROGRESS=plain: plain
 *   lines from listr2's verbose renderer, `❯ title` (started), `› line`
 *   (output), `✔ title` (completed), `✖ message` (failed);
 * - with `--json` (or PSP_PROGRESS=silent): nothing, so stdout carries only
 *   JSON and stderr only errors.
 *
 * A failing step fails the run with the step's own error (listr2 passes it
 * through unchanged), so the command's one-line error and exit code are the
 * same with or without progress.
 *
 * Trusts: the code that calls it.
 */
import { Listr, ListrLogger, ProcessOutput } from "listr2";
import type { ListrTaskWrapper } from "listr2";

export type ProgressMode = "tty" | "plain" | "silent";

/** How progress shows: silent under --json, the animated renderer on a terminal stderr, else plain lines. */
export function progressMode(opts: { json?: boolean | undefined } = {}, stream: { isTTY?: boolean } = process.stderr): ProgressMode {
  if (opts.json) return "silent";
  const forced = process.env.PSP_PROGRESS;
  if (forced === "plain" || forced === "silent" || forced === "tty") return forced;
  return stream.isTTY === true && !process.env.CI ? "tty" : "plain";
}

/** What a step may say while it runs. */
export interface StepReport {
  /** One line of what the step is doing now (shown under it, or as an `[OUTPUT]` line). */
  output(line: string): void;
  /** Renames the running step (e.g. with the transaction hash once sent). */
  title(title: string): void;
}

export interface ProgressStep<T = unknown> {
  title: string;
  run: (report: StepReport) => Promise<T>;
}

type AnyTask = ListrTaskWrapper<unknown, never, never>;

/** listr2 options for a mode: renderers write to stderr only, no signal handlers (the command keeps its own). */
function listrOptions(mode: ProgressMode) {
  const processOutput = new ProcessOutput(process.stderr, process.stderr, { leaveEmptyLine: false });
  const logger = new ListrLogger({ processOutput });
  return {
    concurrent: false,
    exitOnError: true,
    registerSignalListeners: false,
    collectErrors: false as const,
    renderer: mode === "tty" ? ("default" as const) : mode === "plain" ? ("verbose" as const) : ("silent" as const),
    rendererOptions: mode === "tty" ? { processOutput, collapseSubtasks: false, showErrorMessage: false } : { logger, logTitleChange: true },
    fallbackRenderer: "verbose" as const,
    fallbackRendererOptions: { logger, logTitleChange: true },
  };
}

function reportOf(task: AnyTask): StepReport {
  return {
    output: (line) => {
      task.output = line;
    },
    title: (title) => {
      task.title = title;
    },
  };
}

/** Runs `steps` in order with progress; resolves with each step's result, or rejects with the first step's error. */
export async function runSteps<T extends unknown[]>(steps: { [K in keyof T]: ProgressStep<T[K]> }, opts: { json?: boolean | undefined } = {}): Promise<T> {
  const results: unknown[] = [];
  const list = new Listr(
    (steps as ProgressStep[]).map((step, i) => ({
      title: step.title,
      task: async (_ctx: unknown, task: AnyTask) => {
        results[i] = await step.run(reportOf(task));
      },
    })),
    listrOptions(progressMode(opts)) as never,
  );
  await list.run();
  return results as T;
}

/** Runs one step with progress and returns its result. */
export async function withProgress<T>(title: string, run: (report: StepReport) => Promise<T>, opts: { json?: boolean | undefined } = {}): Promise<T> {
  const [result] = await runSteps<[T]>([{ title, run }], opts);
  return result;
}

/**
 * Progress for work driven from elsewhere: one long function that says which
 * of its named steps it reached (the devnet's start). `start(title)` ends the
 * steps before it; `done()` ends them all; `fail(err)` fails the running one.
 */
export interface StepTracker {
  start(title: string): void;
  output(line: string): void;
  done(): Promise<void>;
  fail(err: unknown): Promise<void>;
}

export function trackSteps(titles: readonly string[], opts: { json?: boolean | undefined } = {}): StepTracker {
  const gates = titles.map(() => {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined); // awaited by its task; a step failed before its task ran is no unhandled rejection
    return { promise, resolve, reject };
  });
  const tasks: (AnyTask | undefined)[] = [];
  const pending: (string | undefined)[] = [];
  let active = 0;
  const list = new Listr(
    titles.map((title, i) => ({
      title,
      task: async (_ctx: unknown, task: AnyTask) => {
        tasks[i] = task;
        if (pending[i] !== undefined) task.output = pending[i];
        await gates[i]!.promise;
      },
    })),
    listrOptions(progressMode(opts)) as never,
  );
  const running = list.run().then(
    () => undefined,
    (err: unknown) => err,
  );
  const upTo = (index: number): void => {
    for (let j = 0; j < index; j++) gates[j]!.resolve();
    active = Math.max(active, index);
  };
  return {
    start(title) {
      const index = titles.indexOf(title);
      if (index < 0) throw new Error(`progress: no step "${title}" (steps: ${titles.join(", ")})`);
      upTo(index);
    },
    output(line) {
      const task = tasks[active];
      if (task) task.output = line;
      else pending[active] = line;
    },
    async done() {
      upTo(titles.length);
      const err = await running;
      if (err !== undefined) throw err;
    },
    async fail(err) {
      gates[active]!.reject(err);
      for (let j = active + 1; j < gates.length; j++) gates[j]!.resolve();
      await running;
    },
  };
}

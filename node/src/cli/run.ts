/**
 * Runs a commander program and turns a thrown error into one line on stderr
 * (`error: [layer/kind] message; fix: …`) and exit code 1, instead of a
 * stack trace: every PSP error already says what went wrong and how to fix
 * it. With `--json` among the arguments the error is also printed on stdout
 * as `{ "error": { layer, kind, category, message, fix } }` (output.ts).
 * PSP_DEBUG=1 prints the whole error after the line.
 */
import type { Command } from "commander";
import { reportFailure, wantsJson } from "./output.js";

export { errorSummary } from "./output.js";

export async function runCli(program: Command, argv: string[] = process.argv): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    reportFailure(err, { json: wantsJson(argv), exitCode: 1 });
  }
}

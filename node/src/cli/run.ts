/**
 * Runs a commander program and turns a thrown error into one line on stderr
 * (`error: [layer/kind] message; fix: …`) and exit code 1, instead of a
 * stack trace: every PSP error already says what went wrong and how to fix
 * it. PSP_DEBUG=1 prints the whole error after the line.
 */
import type { Command } from "commander";
import { isPspError } from "../errors.js";

/** An error on one line: its qualified kind, its message and, when it has one, its fix. */
export function errorSummary(err: unknown): string {
  const line = isPspError(err)
    ? `[${err.qualifiedKind}] ${err.shortMessage}${err.fix === undefined ? "" : `; fix: ${err.fix}`}`
    : err instanceof Error
      ? err.message
      : String(err);
  return line.replace(/\s*\n\s*/g, " ");
}

export async function runCli(program: Command, argv: string[] = process.argv): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    console.error(`error: ${errorSummary(err)}`);
    if (process.env.PSP_DEBUG) console.error(err);
    process.exitCode = 1;
  }
}

/**
 * Runs a commander program and turns a thrown error into one line on stderr
 * (`error: [kind] message`) and exit code 1, instead of a stack trace: every
 * PSP error already says what went wrong and how to fix it.
 */
import type { Command } from "commander";
import { isPspError } from "../errors.js";

export async function runCli(program: Command, argv: string[] = process.argv): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const kind = isPspError(err) ? `[${err.kind}] ` : "";
    console.error(`error: ${kind}${err instanceof Error ? err.message : String(err)}`);
    if (process.env.PSP_DEBUG) console.error(err);
    process.exitCode = 1;
  }
}

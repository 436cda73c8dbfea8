/**
 * What a command prints, in one place: data as JSON (`--json`, bigints as
 * decimal strings) and a failure as one line on stderr, plus with `--json`
 * the same failure as `{ "error": { layer, kind, category, message, fix } }`
 * on stdout, so a script reading stdout always gets one JSON document.
 *
 * Trusts: the values commands hand it.
 */
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

/** JSON text of `value` (bigints as decimal strings), indented like every `--json` answer. */
export function jsonText(value: unknown, indent: number | undefined = 2): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), indent);
}

/** Prints `value` on stdout as one JSON document. */
export function printJson(value: unknown): void {
  console.log(jsonText(value));
}

/** Prints `value` on stdout as one JSON line (event streams: one object per line). */
export function printJsonLine(value: unknown): void {
  console.log(jsonText(value, undefined));
}

/** An error as the `--json` error document. */
export function errorJson(err: unknown): { error: { layer?: string; kind: string; category?: string; message: string; fix?: string } } {
  if (isPspError(err)) {
    return {
      error: {
        layer: err.layer,
        kind: err.kind,
        category: err.category,
        message: err.shortMessage.replace(/\s*\n\s*/g, " "),
        ...(err.fix === undefined ? {} : { fix: err.fix }),
      },
    };
  }
  return { error: { kind: "error", message: (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, " ") } };
}

/**
 * Reports a failed command: the one-line `error: …` on stderr (with
 * `prefix`, e.g. "psp node start"), with `json` also the error document on
 * stdout, and `exitCode`. PSP_DEBUG=1 adds the whole error on stderr.
 */
export function reportFailure(err: unknown, opts: { json?: boolean | undefined; exitCode: number; prefix?: string }): void {
  console.error(`${opts.prefix ? `${opts.prefix}: ` : ""}error: ${errorSummary(err)}`);
  if (process.env.PSP_DEBUG) console.error(err);
  if (opts.json) printJson(errorJson(err));
  process.exitCode = opts.exitCode;
}

/** True when the arguments ask for JSON (for failures raised before a command's options are parsed). */
export function wantsJson(argv: readonly string[]): boolean {
  return argv.includes("--json");
}

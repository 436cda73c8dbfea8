/**
 * The `psp` command: one commander program (main.ts, run by node/bin/psp.js)
 * with one module per command group, loaded only when a run names it
 * (commands.ts). This file only re-exports what scripts share with it.
 *
 * Depends on: every layer (node/ for `psp node start`, client/, chain/,
 * authority/, crypto/ for keys) and the compiled build/.
 * Used by: people and the devnet scripts (scripts/devnet.ts, deploy.ts,
 * operator.ts run their programs through runCli).
 * Trust boundary: trusts the user at the terminal; options, files and
 * passphrases are checked by the layers they go to, and any failure is one
 * line `error: [layer/kind] message; fix: …` with a non-zero exit (and with
 * `--json`, `{ "error": {...} }` on stdout: output.ts). Long work shows
 * its progress on stderr through progress.ts.
 * Spec: README.md ("The psp command") and docs/OPERATIONS.md.
 */
export { errorSummary, runCli } from "./run.js";

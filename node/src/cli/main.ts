/**
 * The `psp` command line: one commander program, one module per command
 * group (commands.ts), loaded only when a run names it.
 */
import { Command } from "commander";
import { registerCommands } from "./commands.js";
import { runCli } from "./run.js";

const program = new Command().name("psp").description("PeerStream Protocol: node, client and operator tools").showHelpAfterError("(add --help for the usage)");

await registerCommands(program, process.argv.slice(2));

await runCli(program);

/**
 * The `psp` command line: one commander program, one module per command group.
 * Each group exports `register(program)`; this file only wires them together.
 */
import { Command } from "commander";
import { registerCommands } from "./commands.js";
import { runCli } from "./run.js";

const program = new Command()
  .name("psp")
  .description("PeerStream Protocol: node, client and operator tools")
  .showHelpAfterError();

registerCommands(program);

await runCli(program);

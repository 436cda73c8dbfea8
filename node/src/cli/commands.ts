import type { Command } from "commander";

/**
 * Every command group of the CLI. A new group is a module exporting
 * `register(program: Command): void`, added to this list.
 */
const groups: Array<(program: Command) => void> = [];

export function registerCommands(program: Command): void {
  for (const register of groups) register(program);
}

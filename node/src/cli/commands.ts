import type { Command } from "commander";
import { register as registerSim } from "./sim.js";
import { register as registerNode } from "./node.js";
import { register as registerBench } from "./bench.js";
import { register as registerIdentity } from "./identity.js";
import { register as registerCert } from "./cert.js";
import { register as registerOperator } from "./operator.js";

/**
 * Every command group of the CLI. A new group is a module exporting
 * `register(program: Command): void`, added to this list.
 */
const groups: Array<(program: Command) => void> = [registerSim, registerIdentity, registerCert, registerOperator, registerNode, registerBench];

export function registerCommands(program: Command): void {
  for (const register of groups) register(program);
}

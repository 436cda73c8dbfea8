/**
 * Every command group of the CLI, loaded lazily: `psp --help` lists the
 * groups from this table without importing any of them, and a run imports
 * only the group it names (viem, the chain bindings or the DHT simulator
 * load only for the commands that use them). A new group is a module
 * exporting `register(program: Command): void`, added to this table.
 */
import type { Command } from "commander";

export interface CommandGroup {
  name: string;
  description: string;
  load: () => Promise<{ register(program: Command): void }>;
}

export const commandGroups: readonly CommandGroup[] = [
  { name: "status", description: "the running devnet at a glance: nodes, roles, consensus age, links, circuits, DHT", load: () => import("./status.js") },
  { name: "identity", description: "identity keys and their on-chain registration", load: () => import("./identity.js") },
  { name: "cert", description: "access certificates from the authority nodes", load: () => import("./cert.js") },
  { name: "operator", description: "node operator actions: consent, register, stake, activate, unstake, withdraw, status, rewards, claim", load: () => import("./operator.js") },
  { name: "node", description: "run a PSP node", load: () => import("./node.js") },
  { name: "msg", description: "private messages: listen for them (psp msg listen), send one (psp msg send)", load: () => import("./msg.js") },
  { name: "stream", description: "real-time streams: create one (psp stream create), publish stdin to it, play it to stdout", load: () => import("./stream.js") },
  { name: "client", description: "run a local client daemon: a REST + WebSocket API for apps in any language", load: () => import("./client.js") },
  { name: "sim", description: "in-process simulators", load: () => import("./sim.js") },
  { name: "bench", description: "benchmarks on this machine", load: () => import("./bench.js") },
];

/** The group a run names, if any: its first argument that is not an option (after `help`, for `psp help <group>`). */
function namedGroup(args: readonly string[]): CommandGroup | undefined {
  const words = args.filter((a) => !a.startsWith("-"));
  const name = words[0] === "help" ? words[1] : words[0];
  return commandGroups.find((g) => g.name === name);
}

/**
 * Registers the group `args` names in full and every other group as a
 * described stub (enough for the help listing and for "unknown command").
 */
export async function registerCommands(program: Command, args: readonly string[]): Promise<void> {
  const named = namedGroup(args);
  for (const group of commandGroups) {
    if (group === named) (await group.load()).register(program);
    else program.command(group.name).description(group.description);
  }
}

/**
 * `psp status`: the running devnet at a glance. Reads devnet/state.json (or
 * --state), asks the devnet's control API and every node's `GET /v1/status`,
 * and prints one line per node: roles, link address, open links, circuits,
 * DHT contacts and records, and the age of the consensus it holds. --json
 * prints what was gathered. A node that does not answer is shown as down;
 * a devnet whose API does not answer is an error naming the fix.
 */
import { join } from "node:path";
import type { Command } from "commander";
import { ClientError } from "../client/errors.js";
import { readDevnetState } from "../client/devnet-state.js";
import type { DevnetNodeState } from "../client/devnet-state.js";

interface NodeStatusBody {
  roles: string[];
  links: number;
  circuits: number;
  dht: { tableSize: number; records: number };
  consensus: { validAfter: number; nodes: number; signers: number } | null;
  uptimeSeconds: number;
}

interface DevnetStatusBody {
  chainId: number;
  blockNumber: string | number;
  uptimeSeconds: number;
}

async function getJson<T>(url: string, timeoutMs: number): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return res.ok ? ((await res.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

export function register(program: Command): void {
  program
    .command("status")
    .description("the running devnet at a glance: nodes, roles, consensus age, links, circuits, DHT")
    .option("--state <file>", "the devnet's state file", join(process.cwd(), "devnet", "state.json"))
    .option("--timeout <ms>", "how long each node may take to answer", (v) => Number(v), 2000)
    .option("--json", "print one JSON object")
    .action(async (opts: { state: string; timeout: number; json?: boolean }) => {
      const state = await readDevnetState(opts.state);
      const devnet = await getJson<DevnetStatusBody>(`${state.controlApi}/v1/status`, opts.timeout);
      if (!devnet) {
        throw new ClientError("bad-bootstrap", `the devnet of ${opts.state} is not running (its API at ${state.controlApi} does not answer): start it with \`npm start\``);
      }
      const now = Date.now();
      const nodes = await Promise.all(
        state.nodes.map(async (n: DevnetNodeState) => ({ node: n, status: n.controlApi ? await getJson<NodeStatusBody>(`${n.controlApi}/v1/status`, opts.timeout) : undefined })),
      );
      const newest = nodes.reduce<NodeStatusBody["consensus"]>(
        (best, { status }) => (status?.consensus && (!best || status.consensus.validAfter > best.validAfter) ? status.consensus : best),
        null,
      );
      if (opts.json) {
        console.log(
          JSON.stringify(
            {
              devnet,
              consensus: newest,
              nodes: nodes.map(({ node, status }) => ({ name: node.name, roles: node.roles, addresses: node.addresses, up: status !== undefined, status: status ?? null })),
            },
            null,
            2,
          ),
        );
        return;
      }
      const up = nodes.filter((n) => n.status).length;
      const lines = [
        `devnet     chain ${devnet.chainId} at ${state.rpcUrl}, block ${devnet.blockNumber}, up ${age(devnet.uptimeSeconds * 1000)}; API ${state.controlApi}`,
        newest
          ? `consensus  valid from ${new Date(newest.validAfter).toISOString()} (${age(now - newest.validAfter)} old), ${newest.nodes} nodes, ${newest.signers} signatures`
          : "consensus  none yet (the first one is signed one voting period after start)",
        `nodes      ${up} of ${state.nodes.length} answering`,
        "",
        ["name".padEnd(13), "roles".padEnd(18), "link".padEnd(20), "links".padStart(5), "circuits".padStart(9), "dht".padStart(10), "  consensus"].join(" "),
      ];
      for (const { node, status } of nodes) {
        const cells = status
          ? [
              String(status.links).padStart(5),
              String(status.circuits).padStart(9),
              `${status.dht.tableSize}/${status.dht.records}`.padStart(10),
              `  ${status.consensus ? `${age(now - status.consensus.validAfter)} old` : "none"}`,
            ]
          : ["down".padStart(5)];
        lines.push([node.name.padEnd(13), node.roles.join(",").padEnd(18), (node.addresses[0] ?? "-").padEnd(20), ...cells].join(" "));
      }
      lines.push("", "dht: contacts/records; per-node detail at each node's control API /v1/status and /metrics");
      console.log(lines.join("\n"));
    });
}

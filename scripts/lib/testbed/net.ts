/**
 * The testbed's network (issue 18): one Linux network namespace per node
 * host, each joined by a link to a bridge in a "switch" namespace of its
 * own; the root namespace (where the chain and the test's clients run) joins
 * the same bridge through one more link, so it is a host like the others.
 * Addresses: the root namespace 10.B.0.254, host i 10.(B+i).0.1, each host
 * in a /16 of its own (path selection puts a circuit's hops in distinct
 * /16s), all on-link over the bridge; B is the first base from 10.100 on
 * whose /16s no root-namespace route or address touches.
 *
 * Link shape, applied on the egress of every host's own end of its link
 * (and the root namespace's): every packet a host sends waits `delayMs` ±
 * `jitterMs` and is dropped with probability `lossPercent`. A packet between
 * two hosts crosses exactly one such egress each way, so the configured
 * round trip between any two hosts is 2 × delayMs. Links are veth pairs
 * shaped by netem where the kernel has sch_netem; where it refuses netem
 * they are TAP pairs pumped by the userspace link emulator (linkemu.py,
 * python3), which shapes the same direction the same way; with neither they
 * are unshaped veth pairs and `shaping.reason` says why.
 *
 * Naming: everything is named after the creating process's pid
 * (`psptb-<pid>-sw`, `psptb-<pid>-h<i>`, root interface `psptb<pid>`), so
 * `removeStale()` deletes what a crashed run left behind (the pid is gone)
 * without touching a testbed another live process runs. Deleting a
 * namespace deletes the interfaces in it (a veth takes its peer along; the
 * emulator's TAPs go when it exits), so teardown is "stop the emulator,
 * delete our namespaces, then our root interface if still there".
 *
 * Trusts iproute2 (`ip`, `tc`) and the kernel; needs root (CAP_NET_ADMIN
 * and CAP_SYS_ADMIN). Every command that fails says which command and why.
 */
import { execFile, spawn } from "node:child_process";
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Logger } from "../../../node/src/log.js";

const run = promisify(execFile);

/** Name prefix of every namespace and root interface a testbed makes. */
export const TESTBED_PREFIX = "psptb";
/** The first 10.B /16 the testbed may use (10.100.0.0 onwards). */
const SUBNET_FIRST = 100;
/** The userspace link emulator, for kernels without sch_netem. */
const LINKEMU = join(dirname(fileURLToPath(import.meta.url)), "linkemu.py");
/** Address of the root namespace on the testbed's /24. */
const ROOT_HOST_OCTET = 254;

export interface LinkShape {
  /** One-way delay a host's egress adds, ms. */
  delayMs: number;
  /** ± jitter around it, ms (netem's uniform jitter). */
  jitterMs: number;
  /** Packets dropped on a host's egress, percent. */
  lossPercent: number;
}

/** The issue's example: 20 ms ± 5 ms and 0.5 % loss per link. */
export const DEFAULT_LINK_SHAPE: LinkShape = { delayMs: 20, jitterMs: 5, lossPercent: 0.5 };

export interface TestbedHost {
  name: string;
  /** The host's network namespace (`ip netns exec <namespace> …`). */
  namespace: string;
  /** Its address on the testbed's /24. */
  address: string;
}

export interface TestbedNet {
  /** The root namespace's address on the bridge (the chain listens there). */
  rootAddress: string;
  hosts: TestbedHost[];
  shape: LinkShape;
  /**
   * What shapes the links: netem; the userspace link emulator (linkemu.py), where the kernel
   * refuses netem (`reason` says so); or nothing (`reason` says why).
   */
  shaping: { by: "netem" } | { by: "emulator"; reason: string } | { by: "none"; reason: string };
  /** argv prefix that runs a command inside `host`'s namespace. */
  exec(host: TestbedHost): string[];
  /** Sets every link's shape anew (e.g. 0 ms and 0 % for a same-run baseline). Throws when the links are unshaped. */
  reshape(shape: LinkShape): Promise<void>;
  /** Deletes every namespace and interface this testbed made; safe to call twice. */
  teardown(): Promise<void>;
}

/** Runs one iproute2 command; a failure names the command and carries its stderr. */
export async function ip(args: string[], cmd = "ip"): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { timeout: 30_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; code?: unknown; message: string };
    const why = (e.stderr ?? "").trim() || e.message;
    throw new Error(`${cmd} ${args.join(" ")}: ${why}`, { cause: err });
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Our namespaces and root interfaces, with the pid that made each. */
async function owned(): Promise<{ namespaces: { name: string; pid: number }[]; links: { name: string; pid: number }[] }> {
  const namespaces = (await ip(["netns", "list"]))
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .flatMap((name) => {
      const m = new RegExp(`^${TESTBED_PREFIX}-(\\d+)-`).exec(name);
      return m ? [{ name, pid: Number(m[1]) }] : [];
    });
  const links = (await ip(["-o", "link", "show"])).split("\n").flatMap((l) => {
    const m = new RegExp(`^\\d+: (${TESTBED_PREFIX}(\\d+))[@:]`).exec(l);
    return m ? [{ name: m[1]!, pid: Number(m[2]) }] : [];
  });
  return { namespaces, links };
}

/** Deletes a namespace, first killing what still runs in it (node processes a crashed testbed left behind). */
async function deleteNamespace(name: string): Promise<void> {
  const pids = (await ip(["netns", "pids", name]).catch(() => "")).split(/\s+/).filter((p) => /^\d+$/.test(p));
  for (const pid of pids) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // gone already
    }
  }
  await ip(["netns", "del", name]);
}

/**
 * Deletes the namespaces (and whatever still runs in them) and root
 * interfaces of testbeds whose process is gone (a run that crashed or was
 * SIGKILLed). Returns what it deleted.
 */
export async function removeStale(log?: Logger): Promise<string[]> {
  const { namespaces, links } = await owned();
  const removed: string[] = [];
  for (const ns of namespaces.filter((n) => n.pid !== process.pid && !pidAlive(n.pid))) {
    await deleteNamespace(ns.name);
    removed.push(`netns ${ns.name}`);
  }
  for (const link of links.filter((l) => l.pid !== process.pid && !pidAlive(l.pid))) {
    // Its peer's namespace may have gone just now, taking the pair with it.
    await ip(["link", "del", link.name]).catch(() => undefined);
    removed.push(`link ${link.name}`);
  }
  if (removed.length > 0) log?.warn(`removed what a previous testbed left behind: ${removed.join(", ")}`);
  return removed;
}

/** The first base B (10.B.0.0/16 for the root namespace, 10.B+i.0.0/16 for host i) whose /16s no root route or address touches. */
async function freeBase(hosts: number): Promise<number> {
  const used = new Set(
    [...(await ip(["-4", "-o", "addr", "show"])).concat(await ip(["-4", "route", "show", "table", "all"])).matchAll(/(?:^|\s)10\.(\d+)\./gm)].map((m) =>
      Number(m[1]),
    ),
  );
  for (let base = SUBNET_FIRST; base + hosts <= 254; base += hosts + 1) {
    if (Array.from({ length: hosts + 1 }, (_, i) => base + i).every((b) => !used.has(b))) return base;
  }
  throw new Error(`no ${hosts + 1} consecutive free /16s in 10.${SUBNET_FIRST}-254.0.0 in the root namespace`);
}

function netemArgs(shape: LinkShape): string[] {
  return [
    "netem",
    "delay",
    `${shape.delayMs}ms`,
    ...(shape.jitterMs > 0 ? [`${shape.jitterMs}ms`] : []),
    ...(shape.lossPercent > 0 ? ["loss", `${shape.lossPercent}%`] : []),
  ];
}

/** The link emulator (linkemu.py): TAP pairs pumped by a userspace process, for kernels without netem. */
interface Emulator {
  reshape(shape: LinkShape): Promise<void>;
  stop(): Promise<void>;
}

async function startEmulator(links: { hostNs: string; hostDev: string; swNs: string; swDev: string }[], shape: LinkShape): Promise<Emulator> {
  const child = spawn("python3", [LINKEMU, JSON.stringify({ links, shape })], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const lines = createInterface({ input: child.stdout });
  const waiters: ((line: string) => void)[] = [];
  lines.on("line", (line) => waiters.shift()?.(line));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const next = (what: string, expected: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`link emulator: no "${expected}" after ${what} within 30 s; stderr: ${stderr}`)), 30_000);
      void exited.then(() => reject(new Error(`link emulator exited during ${what}: ${stderr.trim() || `code ${child.exitCode}`}`)));
      waiters.push((line) => {
        clearTimeout(timer);
        if (line === expected) resolve();
        else reject(new Error(`link emulator answered "${line}" to ${what}`));
      });
    });
  child.once("error", () => undefined); // an exec failure also ends in "exit", reported by next()
  try {
    await next("start", "ready");
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return {
    reshape: async (s) => {
      const answered = next("reshape", "shaped");
      child.stdin.write(JSON.stringify(s) + "\n");
      await answered;
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Builds the testbed network for `names` (one host each). Links are shaped
 * by netem where the kernel has it, else by the userspace link emulator
 * (python3 and /dev/net/tun), else they run unshaped and `shaping.reason`
 * says why; with `requireShaping` an unshaped testbed is an error.
 */
export async function createTestbedNet(options: { names: readonly string[]; shape: LinkShape; requireShaping?: boolean; log?: Logger }): Promise<TestbedNet> {
  const { names, shape, log } = options;
  if (names.length === 0 || names.length > 100) throw new Error(`a testbed has 1 to 100 hosts, not ${names.length}`);
  await removeStale(log);
  const base = await freeBase(names.length);
  const tag = `${TESTBED_PREFIX}-${process.pid}`;
  const sw = `${tag}-sw`;
  const rootLink = `${TESTBED_PREFIX}${process.pid}`;
  const rootAddress = `10.${base}.0.${ROOT_HOST_OCTET}`;
  // Each host in a /16 of its own: path selection wants the hops of a circuit in distinct /16s.
  const hosts: TestbedHost[] = names.map((name, i) => ({ name, namespace: `${tag}-h${i + 1}`, address: `10.${base + i + 1}.0.1` }));
  let emulator: Emulator | undefined;
  let tornDown = false;
  const teardown = async (): Promise<void> => {
    if (tornDown) return;
    tornDown = true;
    const failures: string[] = [];
    await emulator?.stop();
    const { namespaces, links } = await owned();
    for (const ns of namespaces.filter((n) => n.pid === process.pid)) await ip(["netns", "del", ns.name]).catch((err: Error) => failures.push(err.message));
    for (const link of links.filter((l) => l.pid === process.pid)) await ip(["link", "del", link.name]).catch(() => undefined);
    if (failures.length > 0) throw new Error(`testbed teardown: ${failures.join("; ")}`);
  };
  const shaped: { dev: string; ns?: string }[] = [{ dev: rootLink }, ...hosts.map((h) => ({ dev: "eth0", ns: h.namespace }))];
  const tc = async (verb: "add" | "change", s: LinkShape): Promise<void> => {
    for (const link of shaped) await ip([...(link.ns ? ["-n", link.ns] : []), "qdisc", verb, "dev", link.dev, "root", ...netemArgs(s)], "tc");
  };
  try {
    // The switch: a bridge in a namespace of its own.
    await ip(["netns", "add", sw]);
    await ip(["-n", sw, "link", "set", "lo", "up"]);
    await ip(["-n", sw, "link", "add", "name", "br0", "type", "bridge"]);
    await ip(["-n", sw, "link", "set", "br0", "up"]);
    for (const h of hosts) {
      await ip(["netns", "add", h.namespace]);
      await ip(["-n", h.namespace, "link", "set", "lo", "up"]);
    }
    // How links are shaped: netem if the kernel has it, else the userspace emulator, else not at all.
    let shaping: TestbedNet["shaping"];
    const netemRefused = await ip(["-n", sw, "qdisc", "add", "dev", "br0", "root", ...netemArgs({ delayMs: 1, jitterMs: 0, lossPercent: 0 })], "tc").then(
      async () => {
        await ip(["-n", sw, "qdisc", "del", "dev", "br0", "root"], "tc");
        return undefined;
      },
      (err: Error) => err.message,
    );
    if (netemRefused === undefined) shaping = { by: "netem" };
    else {
      const emulatorMissing = await emulatorUnavailable();
      if (emulatorMissing === undefined) shaping = { by: "emulator", reason: `netem refused (${netemRefused})` };
      else {
        shaping = { by: "none", reason: `netem refused (${netemRefused}) and ${emulatorMissing}` };
        if (options.requireShaping) throw new Error(`cannot shape the testbed's links: ${shaping.reason}`);
        log?.warn(`${shaping.reason}; the links run unshaped (no delay, no loss)`);
      }
    }
    // The root namespace's port on the bridge, then one per host: veth pairs, or the emulator's TAP pairs.
    if (shaping.by === "emulator") {
      emulator = await startEmulator(
        [
          { hostNs: "", hostDev: rootLink, swNs: sw, swDev: "root" },
          ...hosts.map((h, i) => ({ hostNs: h.namespace, hostDev: "eth0", swNs: sw, swDev: `h${i + 1}` })),
        ],
        shape,
      );
    } else {
      await ip(["link", "add", "name", rootLink, "type", "veth", "peer", "name", "root", "netns", sw]);
      for (const [i, h] of hosts.entries())
        await ip(["-n", sw, "link", "add", "name", `h${i + 1}`, "type", "veth", "peer", "name", "eth0", "netns", h.namespace]);
    }
    await ip(["-n", sw, "link", "set", "root", "master", "br0", "up"]);
    await ip(["addr", "add", `${rootAddress}/24`, "dev", rootLink]);
    await ip(["link", "set", rootLink, "up"]);
    for (const [i, h] of hosts.entries()) {
      await ip(["-n", sw, "link", "set", `h${i + 1}`, "master", "br0", "up"]);
      await ip(["-n", h.namespace, "addr", "add", `${h.address}/24`, "dev", "eth0"]);
      await ip(["-n", h.namespace, "link", "set", "eth0", "up"]);
      // Every other host (and the root namespace) is on the same bridge: on-link, in its own /16.
      await ip(["-n", h.namespace, "route", "add", "10.0.0.0/8", "dev", "eth0"]);
      await ip(["route", "add", `10.${base + i + 1}.0.0/24`, "dev", rootLink]);
    }
    if (shaping.by === "netem") await tc("add", shape);
    log?.info(
      `net      ${hosts.length} namespaces (10.${base + 1}.0.1 … 10.${base + hosts.length}.0.1, a /16 each) behind bridge br0 in ${sw}; root namespace ${rootAddress} on ${rootLink}; links ${
        shaping.by === "none"
          ? "unshaped"
          : `shaped by ${shaping.by === "netem" ? "netem" : "the userspace link emulator"}: ${shape.delayMs} ms ± ${shape.jitterMs} ms, ${shape.lossPercent} % loss`
      }`,
    );
    const how = shaping;
    return {
      rootAddress,
      hosts,
      shape,
      shaping: how,
      exec: (h) => ["ip", "netns", "exec", h.namespace],
      reshape: async (s) => {
        if (how.by === "netem") await tc("change", s);
        else if (emulator) await emulator.reshape(s);
        else throw new Error(`cannot reshape the links: ${how.reason}`);
      },
      teardown,
    };
  } catch (err) {
    await teardown().catch((e: Error) => log?.error(e.message));
    throw err;
  }
}

/** Why the userspace link emulator cannot run here (undefined: it can). */
export async function emulatorUnavailable(): Promise<string | undefined> {
  try {
    await access("/dev/net/tun", constants.R_OK | constants.W_OK);
  } catch {
    return "no /dev/net/tun for the userspace link emulator";
  }
  try {
    await run("python3", ["-c", "import ctypes, fcntl, select"], { timeout: 30_000 });
  } catch {
    return "no python3 for the userspace link emulator";
  }
  return undefined;
}

/**
 * `testbed down`: asks every live testbed process to stop (SIGTERM: it tears
 * its own network down), waits up to `graceMs`, then deletes whatever
 * testbed namespaces and root interfaces remain. Returns what it deleted.
 */
export async function removeAll(graceMs = 20_000, log?: Logger): Promise<string[]> {
  const live = [...new Set((await owned()).namespaces.map((n) => n.pid))].filter((pid) => pid !== process.pid && pidAlive(pid));
  for (const pid of live) {
    log?.info(`asking testbed process ${pid} to stop (SIGTERM)`);
    process.kill(pid, "SIGTERM");
  }
  const deadline = performance.now() + graceMs;
  while (live.some(pidAlive) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  const { namespaces, links } = await owned();
  const removed: string[] = [];
  for (const ns of namespaces.filter((n) => n.pid !== process.pid)) {
    await deleteNamespace(ns.name);
    removed.push(`netns ${ns.name}`);
  }
  for (const link of links.filter((l) => l.pid !== process.pid)) {
    await ip(["link", "del", link.name]).catch(() => undefined);
    removed.push(`link ${link.name}`);
  }
  return removed;
}

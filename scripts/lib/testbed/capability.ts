/**
 * Can this machine run the testbed? Tries, in a throwaway namespace, what
 * the testbed does (net.ts): `ip netns add`, a veth pair, netem on it. Says
 * why not in one sentence: not root, no iproute2, namespaces refused, veth
 * refused, netem refused (the kernel lacks sch_netem) and whether the
 * userspace link emulator can stand in for it. The script and the test skip
 * with that sentence when namespaces are refused; shaping alone missing is
 * reported separately, since the testbed can still run unshaped.
 *
 * Trusts iproute2 and the kernel's answers; leaves nothing behind.
 */
import { access } from "node:fs/promises";
import { constants } from "node:fs";
import { emulatorUnavailable, ip, TESTBED_PREFIX } from "./net.js";

export interface TestbedCapability {
  /** Namespaces and veth pairs work: the testbed can run. */
  netns: boolean;
  /** netem shapes links. */
  netem: boolean;
  /** The links can be shaped (delay and loss): by netem, or else by the userspace link emulator. */
  shaping: boolean;
  /** Why not (the first thing refused), when any is false. */
  reason?: string;
}

async function onPath(cmd: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin"])) {
    try {
      await access(`${dir}/${cmd}`, constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** Checks (once per call; about ten iproute2 commands) what the testbed needs. */
export async function checkTestbedCapability(): Promise<TestbedCapability> {
  if (process.platform !== "linux")
    return { netns: false, netem: false, shaping: false, reason: `network namespaces are Linux only (this is ${process.platform})` };
  if (typeof process.getuid === "function" && process.getuid() !== 0)
    return { netns: false, netem: false, shaping: false, reason: "not root: creating network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)" };
  if (!(await onPath("ip")))
    return { netns: false, netem: false, shaping: false, reason: "no iproute2: the `ip` command is not on the PATH (Debian: apt-get install iproute2)" };
  const ns = `${TESTBED_PREFIX}-${process.pid}-check`;
  try {
    try {
      await ip(["netns", "add", ns]);
    } catch (err) {
      return { netns: false, netem: false, shaping: false, reason: `network namespaces refused (${(err as Error).message})` };
    }
    try {
      await ip(["-n", ns, "link", "add", "name", "va", "type", "veth", "peer", "name", "vb"]);
      await ip(["-n", ns, "link", "set", "va", "up"]);
      await ip(["-n", ns, "link", "set", "vb", "up"]);
    } catch (err) {
      return { netns: false, netem: false, shaping: false, reason: `veth pairs refused (${(err as Error).message})` };
    }
    let refused: string;
    if (!(await onPath("tc"))) refused = "no `tc` on the PATH (iproute2)";
    else {
      try {
        await ip(["-n", ns, "qdisc", "add", "dev", "va", "root", "netem", "delay", "20ms", "5ms", "loss", "0.5%"], "tc");
        return { netns: true, netem: true, shaping: true };
      } catch (err) {
        refused = `netem refused, the kernel has no sch_netem (${(err as Error).message})`;
      }
    }
    const noEmulator = await emulatorUnavailable();
    if (noEmulator === undefined)
      return { netns: true, netem: false, shaping: true, reason: `${refused}: the userspace link emulator shapes the links instead` };
    return { netns: true, netem: false, shaping: false, reason: `${refused} and ${noEmulator}: the links cannot be shaped` };
  } finally {
    await ip(["netns", "del", ns]).catch(() => undefined);
  }
}

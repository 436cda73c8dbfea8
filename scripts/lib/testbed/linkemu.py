#!/usr/bin/env python3
"""
The testbed's link emulator (issue 18), for kernels without sch_netem: each
link is a pair of TAP devices, one in the host's network namespace, one in
the switch namespace (net.ts bridges it), and this process carries Ethernet
frames between them. Frames a host sends (host TAP -> switch TAP) wait the
link's delay +- jitter and are dropped with the link's loss probability,
exactly where net.ts would put netem (the host's egress); frames towards the
host pass at once. Unlike netem with jitter, frames of one link never
overtake each other (a frame leaves no earlier than the one before it).

Input: one JSON object on argv[1]:
  {"links": [{"hostNs": "<netns name or ''=this one>", "hostDev": "eth0",
              "swNs": "<netns>", "swDev": "h1"}, ...],
   "shape": {"delayMs": 20, "jitterMs": 5, "lossPercent": 0.5}}
It creates every TAP device, prints "ready" on stdout, then runs until
SIGTERM/SIGINT or stdin closes. A JSON shape on a stdin line reshapes every
link (answered with "shaped"). Any failure goes to stderr with a non-zero
exit: the devices vanish with this process, so a dead emulator is a dead
link, never a silently unshaped one.

Trusts its argv and stdin (the testbed that spawned it); needs root.
Python 3 standard library only.
"""
import ctypes
import fcntl
import heapq
import json
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
MAX_FRAME = 65536

libc = ctypes.CDLL(None, use_errno=True)


def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def open_tap(ns, name, home):
    """Opens (creating) TAP device `name` in network namespace `ns` ('' = ours)."""
    if ns:
        setns(f"/var/run/netns/{ns}")
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
        return fd
    finally:
        if ns:
            setns(home)


def main():
    config = json.loads(sys.argv[1])
    shape = config["shape"]
    home = f"/proc/{os.getpid()}/ns/net"
    # Keep a handle on our own namespace: /proc/<pid>/ns/net follows setns, so pin it first.
    home_fd = os.open(home, os.O_RDONLY)
    home = f"/proc/self/fd/{home_fd}"
    # route[fd] = (out fd, shaped?, link index)
    route = {}
    for i, link in enumerate(config["links"]):
        host = open_tap(link["hostNs"], link["hostDev"], home)
        sw = open_tap(link["swNs"], link["swDev"], home)
        route[host] = (sw, True, i)
        route[sw] = (host, False, i)
    last_due = [0.0] * len(config["links"])
    queue = []  # (due, seq, out fd, frame)
    seq = 0
    stop = False

    def on_signal(_sig, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    stdin = sys.stdin.fileno()
    inputs = list(route.keys()) + [stdin]
    pending_line = b""
    while not stop:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                os.write(out, frame)
            except OSError:
                pass  # the receiving device is down (EIO) or its queue full: the frame is lost, as on a real link
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 1.0
        try:
            readable, _, _ = select.select(inputs, [], [], timeout)
        except InterruptedError:
            continue
        for fd in readable:
            if fd == stdin:
                data = os.read(stdin, 4096)
                if not data:
                    return  # the testbed went away: so do the links
                pending_line += data
                while b"\n" in pending_line:
                    line, pending_line = pending_line.split(b"\n", 1)
                    if line.strip():
                        shape = json.loads(line)
                        sys.stdout.write("shaped\n")
                        sys.stdout.flush()
                continue
            out, shaped, i = route[fd]
            for _ in range(64):  # drain a burst, then look at the clock again
                try:
                    frame = os.read(fd, MAX_FRAME)
                except (BlockingIOError, InterruptedError):
                    break
                if not shaped:
                    try:
                        os.write(out, frame)
                    except OSError:
                        pass  # as above
                    continue
                if shape["lossPercent"] > 0 and random.random() * 100 < shape["lossPercent"]:
                    continue
                delay = (shape["delayMs"] + random.uniform(-shape["jitterMs"], shape["jitterMs"])) / 1000
                due = max(time.monotonic() + max(0.0, delay), last_due[i])
                last_due[i] = due
                seq += 1
                heapq.heappush(queue, (due, seq, out, frame))


if __name__ == "__main__":
    try:
        main()
    except Exception as err:  # noqa: BLE001 - reported, then a non-zero exit
        sys.stderr.write(f"linkemu: {err}\n")
        sys.exit(1)

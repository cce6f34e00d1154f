#!/usr/bin/python3
"""The soak: a POP under steady load and steady change, for minutes.

    make soak                 (or: python3 tests/soak/soak.py --build build
                               [--minutes 3] [--sites 10000])

The benchmark's lab (tests/bench/bench.py): gregen in the router sends from
10,000 sites, keepalives and UDP in turns, to gatewayd in pop1 (with healthd
and statsd beside it). Meanwhile sites are added, edited and deleted through
the control socket several times a second, and the downstream HTTP service
stops and starts every few seconds, so health flips and keepalives are
withheld and answered in turn. Afterwards:

- every packet sent is accounted for: lost before the POP, dropped by the
  raw socket's queue, or in exactly one of gatewayd's counters (delivered,
  keepalive, probe, a drop reason);
- memory is flat: each daemon's resident size at the end is within 10 % (or
  4 MB) of what it was after the first round of load and change (the
  allocator's high-water mark is reached in that round);
- no process restarted.

It prints its figures and exits 1 if any check fails. Not part of make
check: it takes minutes.
"""

import argparse
import json
import os
import random
import sys
import threading
import time

import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "bench"))

import bench  # noqa: E402


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Churn(threading.Thread):
    """Site changes through gatewayd's control socket until stopped."""

    def __init__(self, ctl_path, sites):
        super().__init__(daemon=True)
        self.ctl_path, self.sites = ctl_path, sites
        self.stop_flag = False
        self.done = {"added": 0, "edited": 0, "deleted": 0, "refused": 0}

    def request(self, sock, req):
        sock.send(json.dumps(req).encode())
        reply = json.loads(sock.recv())
        if not reply["ok"]:
            self.done["refused"] += 1
        return reply["ok"]

    def run(self):
        sock = zmq.Context.instance().socket(zmq.REQ)
        sock.setsockopt(zmq.RCVTIMEO, 10000)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect("ipc://" + self.ctl_path)
        rnd = random.Random(7)
        i = 0
        while not self.stop_flag:
            name = f"churn{i % 50}"
            ip = f"198.51.100.{1 + i % 50}"	# sends nothing: its counters stay 0
            if self.request(sock, {"command": "site.add",
                                   "site": {"name": name, "source_ip": ip}}):
                self.done["added"] += 1
            edit = f"s{rnd.randrange(self.sites)}"
            if self.request(sock, {"command": "site.edit", "name": edit,
                                   "set": {"traffic_type": rnd.choice(["user", "iot"])}}):
                self.done["edited"] += 1
            if self.request(sock, {"command": "site.delete", "names": [name]}):
                self.done["deleted"] += 1
            i += 1
            time.sleep(0.2)
        sock.close()


def ends(shm):
    """Every packet gatewayd read, by where it ended."""
    pop = shm.pop_totals()
    total = sum(pop["drops"].values())
    for s in shm.sites().values():
        total += s["rx_packets"] + s["keepalives"] + s["probes"] + sum(s["drops"].values())
    return pop["rx_packets"], total


def soak(args):
    lab = bench.build_lab(args.build)
    failures = []
    try:
        grepop = bench.Grepop(lab)
        grepop.configure(args.sites)
        gw = grepop.start()
        statsd = lab.popen(bench.POP, [lab.binary("statsd"), "-c", grepop.conf],
                           name="pop1-statsd")
        procs = {"gatewayd": gw, "healthd": grepop.healthd, "statsd": statsd}
        ctl = os.path.join(lab.pop_dir(bench.POP), "run", "gatewayd.ctl")
        bench.gregen(lab, "keepalive", args.sites, 10)	# warm-up: every site once
        time.sleep(2)
        rss0 = None
        before = bench.snapshot(lab, gw, grepop.shm)
        read0, ends0 = ends(grepop.shm)

        churn = Churn(ctl, args.sites)
        churn.start()
        sent, flips = 0, 0
        deadline = time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline:
            lab.svc_http(bench.POP, flips % 2 == 1)	# health down, then up again
            flips += 1
            for profile in ("keepalive", "udp64"):
                sent += bench.gregen(lab, profile, args.sites, 3)["packets"]
            if rss0 is None:
                rss0 = {n: rss_kib(p.popen.pid) for n, p in procs.items()}
        lab.svc_http(bench.POP, True)
        churn.stop_flag = True
        churn.join(15)
        bench.settle(lab, "sink0")
        time.sleep(1)
        after = bench.snapshot(lab, gw, grepop.shm)
        read1, ends1 = ends(grepop.shm)
        rss1 = {n: rss_kib(p.popen.pid) for n, p in procs.items()}

        arrived = bench.delta(before, after, "wan0", "rx_packets")
        raw = after["raw_drops"] - before["raw_drops"]
        read, ended = read1 - read0, ends1 - ends0
        lost = sent - arrived
        print(f"soak: {args.minutes} min, {args.sites} sites, {flips} health flips, "
              f"site changes {churn.done}")
        print(f"soak: sent {sent}, lost before the POP {lost}, raw-socket drops {raw}, "
              f"read by gatewayd {read}, ended in its counters {ended}")
        print(f"soak: resident KiB after the first round {rss0}, at the end {rss1}")
        if read != ended:
            failures.append(f"gatewayd read {read} packets but counted {ended}")
        if lost + raw + read != sent:
            failures.append(f"{sent - lost - raw - read} packets unaccounted for")
        for name, p in procs.items():
            if not p.alive():
                failures.append(f"{name} is not running any more")
            growth = rss1[name] - rss0[name]
            if growth > max(4096, rss0[name] // 10):
                failures.append(f"{name} grew by {growth} KiB")
        if churn.done["refused"]:
            failures.append(f"{churn.done['refused']} site changes were refused")
    finally:
        lab.close()
    for f in failures:
        print(f"soak: FAILED: {f}")
    print("soak: " + ("passed" if not failures else "failed"))
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description="A POP under load and change for minutes.")
    ap.add_argument("--build", default=os.environ.get("GREPOP_BUILD", "build"))
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--sites", type=int, default=10000)
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    if os.geteuid() != 0:
        print("soak: needs root (network namespaces)", file=sys.stderr)
        return 1
    return soak(args)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""The grepop demo: two POPs end to end in network namespaces, narrated.

    make demo            (or: /usr/bin/python3 tests/demo.py --build build)

A branch office has two routers' worth of tunnels: a Cisco-style one (GRE
keepalives) and a Juniper-style one (ICMP probes to the POP's probe IP), each
with pop1 as primary and pop2 as backup. Each POP runs the real service set
(healthd, gatewayd, statsd) in front of its downstream security services.
The demo brings the tunnels up, runs a download through them, fails pop1's
web service, watches the routers move to pop2, brings the service back and
watches them return. The stats feed and the dashboard stay reachable on
this host's loopback while it runs. Everything is removed on exit or Ctrl-C.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lab"))
sys.path.insert(0, os.path.join(HERE, "e2e"))

import lab as lablib  # noqa: E402
from pop import Pop, wait_for  # noqa: E402

SITES = [
    {"name": "branch-cisco", "source_ip": "198.18.0.2", "traffic_type": "user"},
    {"name": "branch-juniper", "source_ip": "198.18.0.3", "traffic_type": "iot"},
]
TENANTS = [{"name": "default", "tun": "grepop0", "routes": ["10.1.0.0/16", "10.2.0.0/16"]}]

T0 = time.monotonic()


def say(text):
    print(f"[{time.monotonic() - T0:5.1f}s] {text}", flush=True)


def show(text):
    for line in text.rstrip("\n").splitlines():
        print(f"         {line}", flush=True)


class Demo:
    def __init__(self, build):
        self.build = build
        self.lab = lablib.standard("demo", build, backup=True, branch2=True)
        self.pops = {}
        self.routers = {}

    def ctl(self, pop, *args):
        out = subprocess.run([os.path.join(self.build, "grepopctl"), "-c", self.pops[pop].conf,
                              *args], capture_output=True, text=True, timeout=15)
        return out.stdout + out.stderr

    def start(self):
        say("Two POPs, each with healthd, gatewayd and statsd; the branch routers point "
            "at pop1 first, pop2 as backup")
        for name in ("pop1", "pop2"):
            self.pops[name] = Pop(self.lab, name, sites=SITES, tenants=TENANTS, statsd=True)
        for name, pop in self.pops.items():
            feed, _, http = self.lab.stats_ports(name)
            wait_for(lambda p=pop: p.shm().health("swg") == "up", 15, what=f"{name} healthy")
            say(f"{name}: downstream services healthy; dashboard http://127.0.0.1:{http}/ ,"
                f" feed tcp://127.0.0.1:{feed}")
        self.routers["cisco"] = self.lab.start_router(
            ["--keepalive", "1,3"], site="branch", pop="pop1", backup="pop2")
        self.routers["juniper"] = self.lab.start_router(
            ["--probe", f"{lablib.PROBE_IP},1,3", "--probe-src", "10.2.0.1"],
            site="branch2", pop="pop1", backup="pop2")

    def wait_active(self, router, role, timeout=20):
        r = self.routers[router]
        wait_for(lambda: (r.status() or {}).get("active") == role, timeout,
                 what=f"{router} router on {role}")

    def watch_events(self, pop):
        """Print the POP's events from its feed as they come."""
        import zmq
        feed, _, _ = self.lab.stats_ports(pop)
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.SUBSCRIBE, b"grepop.v1.event")
        sock.setsockopt(zmq.RCVTIMEO, 500)
        sock.connect(f"tcp://127.0.0.1:{feed}")

        def loop():
            while not self.done:
                try:
                    _, body = sock.recv_multipart()
                except zmq.Again:
                    continue
                ev = json.loads(body)
                what = ev.get("site") or ev.get("service") or ev.get("mode") or ""
                say(f"  event from {pop}: {ev.get('type')} {what}")
            sock.close()

        threading.Thread(target=loop, daemon=True).start()

    def download(self, host, size):
        out = self.lab.run(host, ["curl", "-s", "-m", "30", "-o", "/dev/null", "-w",
                                  "%{http_code} %{size_download} %{speed_download}",
                                  f"http://{lablib.SVC_IP}/blob/{size}"], check=False, timeout=40)
        code, got, speed = (out.split() + ["0", "0", "0"])[:3]
        return code == "200" and int(got) == size, float(speed) * 8 / 1e6

    def background_downloads(self):
        """A rate-limited download from each branch, so throughput shows."""
        for host in ("branch", "branch2"):
            self.lab.popen(host, ["curl", "-s", "-m", "60", "--limit-rate", "5M", "-o",
                                  "/dev/null", f"http://{lablib.SVC_IP}/blob/200000000"],
                           name=f"{host}-download")

    def run(self):
        self.done = False
        self.start()
        for pop in self.pops:
            self.watch_events(pop)
        self.wait_active("cisco", "primary")
        self.wait_active("juniper", "primary")
        say("Both tunnels are up on pop1: keepalives reflected, probes answered")
        ok, mbps = self.download("branch", 20_000_000)
        say(f"A 20 MB download from the Cisco branch through pop1: "
            f"{'complete' if ok else 'FAILED'}, {mbps:.0f} Mbit/s")
        say("A steady download from each branch (5 MB/s each); grepopctl site list on pop1:")
        self.background_downloads()
        time.sleep(2.5)
        show(self.ctl("pop1", "site", "list"))

        say("pop1's web service fails")
        self.lab.svc_http("pop1", False)
        wait_for(lambda: self.pops["pop1"].shm().health("swg") == "down", 15,
                 what="swg down on pop1")
        say("healthd on pop1 marks swg down: pop1 withholds keepalives and probe answers")
        self.wait_active("cisco", "backup", 30)
        self.wait_active("juniper", "backup", 30)
        say("Both routers saw their keepalives/probes go unanswered and moved to pop2")
        ok, mbps = self.download("branch", 5_000_000)
        say(f"The branch's download now runs through pop2: "
            f"{'complete' if ok else 'FAILED'}, {mbps:.0f} Mbit/s")
        time.sleep(1.5)
        show(self.ctl("pop2", "site", "list"))
        show(self.ctl("pop1", "pop", "show"))

        say("pop1's web service recovers")
        self.lab.svc_http("pop1", True)
        self.wait_active("cisco", "primary", 30)
        self.wait_active("juniper", "primary", 30)
        say("pop1 answers again; both routers are back on their primary POP")
        ok, _ = self.download("branch", 5_000_000)
        say(f"Traffic flows through pop1 again: {'complete' if ok else 'FAILED'}")
        show(self.ctl("pop1", "site", "list"))

    def close(self):
        self.done = True
        self.lab.close()


def main():
    ap = argparse.ArgumentParser(description="Run two grepop POPs end to end, narrated.")
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"))
    ap.add_argument("--hold", type=int, default=0,
                    help="keep the lab running this many seconds at the end (dashboard)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("demo: needs root (network namespaces, TUN, raw sockets)", file=sys.stderr)
        return 1
    demo = Demo(os.path.abspath(args.build))
    try:
        demo.run()
        if args.hold:
            say(f"Holding for {args.hold} s: the dashboards are still up")
            time.sleep(args.hold)
        say("Done; removing the lab")
        return 0
    except KeyboardInterrupt:
        say("Interrupted; removing the lab")
        return 130
    except Exception as e:	# the lab comes down whatever failed
        say(f"demo failed: {e}")
        return 1
    finally:
        demo.close()


if __name__ == "__main__":
    sys.exit(main())

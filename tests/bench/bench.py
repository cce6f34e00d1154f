#!/usr/bin/python3
"""The data-plane benchmark: gatewayd against the simplest GRE forwarder,
in the same lab, in the same run.

    python3 tests/bench/bench.py [--build build] [--smoke] [--seconds S]
                                 [--rounds N] [--profiles a,b] [--json FILE]
                                 [--io socket|ring|xdp] [--offload on|off]
                                 [--egress tso|software] [--nic] [--steer-ingress]

The lab (tests/lab/lab.py): a router namespace where gregen sends prebuilt
GRE (sendmmsg on a packet socket, past the qdisc) through the veth it
shares with pop1 (no bridge between: its forwarding would run on the
generator's core) to pop1's gateway IP; pop1 runs the program under test,
pinned to one core (the generator gets the other):

    grepop  gatewayd (1 worker) + healthd, whose checks go to the HTTP
            service in svc1, so the sites are served;
    naive   build/tools/naive_fwd: recvmmsg + strip 24 bytes + write() per
            packet to a TUN of the same name, MTU and routes.

The decapsulated packets go to 203.0.113.0/24, routed in pop1 through the
veth sink0 to a sink namespace that drops them: a real IPv4 forward
whose end is the kernel's TX counter of sink0, not anything the program
under test says. What pop1 sends toward the sites (keepalive answers, the
return path) is routed through the veth ret0 (172.16.0.0/12, the sites'
addresses) to the same sink and counted there the same way. (The kernel
here has no dummy interfaces.) Both veths have their segmentation offloads
off, so a coalesced (GSO) packet is cut into wire-sized packets before it is
counted, on the forwarding core: delivered counts packets on the wire.

The return path: gregen in svc1 floods UDP to the branch addresses gatewayd
learned, through pop1 into the TUN; gatewayd (or naive_fwd --mode return)
encapsulates it toward the site. In return-gso each of gregen's writes is
one 47-segment UDP_SEGMENT packet, which reaches the TUN whole when the
program asked for USO, segmented by the kernel otherwise. return-requests
is return-udp64 while the site also sends GRE at REQUEST_RATE, as a
trickle of requests whose replies come back in bulk: a worker that waits
for more of the trickle must not hold the replies back.

overload (UDP 64, one packet per flow of 100,000, which nothing coalesces)
and tcp-lossless (bulk TCP): per program, the lossless
rate (gregen --rate, halving the interval between nothing and gregen's
flat-out rate SEARCH_STEPS times, the fastest rate with a loss under
LOSSLESS), then twice that offered, with pop1's receive work on the core
under test; overload's verdict compares what it delivered with
the lossless rate, tcp-lossless's the two programs' lossless rates.

Before the profiles, gregen's own ceiling (into pop1 with a MAC nobody has)
is measured, so a figure limited by the generator can be told apart. After
them, the issue's targets as verdict lines computed from the same run:

    target PROFILE WHAT<=LIMIT measured=X HIT|MISS|n/a

Per profile the programs run interleaved, grepop naive grepop naive ...,
each on a fresh start. udp64-flows100000 and udp64-sites100000, when both
are asked for, take turns round by round too (PAIRED): the 100,000-site
target compares grepop with itself, and each round's ratio then has the
two measured minutes apart, not a whole profile apart. Per round: what gregen sent, what reached pop1, the
raw socket's drops, gatewayd's own counters, the TUN's counters and what
left the egress veth, so every packet sent is accounted for; the CPU time
of the program (/proc/PID/stat) and of its whole core (/proc/stat, softirq
and anything else that ran there included). A profile's figures are the
medians of its rounds. Ends with a table and one line per profile

    bench PROFILE grepop_pps=N naive_pps=N ratio=R

and writes the same, with every round's figures, as JSON (BUILD/bench.json).

The veths deliver on the sending core, so pop1's receive work for what
gregen sends runs on the generator's core: a program that keeps up
(loss < 1 %, "limited by generator") shows the generator's rate, and its
CPU per packet is the figure that compares. --steer-ingress moves that
work onto the core under test (RPS) instead, as a NIC interrupt there
would, and shows how each program behaves under overload.

--nic makes pop1's wan0 receive as a NIC queue does, on the core under
test: its NAPI runs in a kernel thread pinned there, with GRO on for
gatewayd with io = ring (the ring reports what GRO merged and gatewayd
writes it to the TUN whole), the XDP program there for io = xdp (searches
put it there without --nic too), off for the naive forwarder and io = socket,
whose raw sockets cannot cut a merged packet, with the receive steered to
that core by RPS instead. Every cost of the POP's receive is then on the
core under test; the generator's core only generates. A program receiving
through RPS loses its core to the receive once offered more than it
forwards, so --nic gives no verdict on the flat-out ratios to the naive
forwarder.
"""

import argparse
import concurrent.futures
import json
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

import lab as lablib  # noqa: E402
from shmlayout import Shm  # noqa: E402

GEN_CPU, DUT_CPU = "0", "1"
POP, ROUTER = "pop1", "router"
SVC = "svc1"
SINK = "sink"		# where delivered packets end
SINK_MAC = "02:00:00:00:5e:00"	# the next hop toward the sink: no such host
TUN = "grepop0"
TUNNEL_MTU = 1476
SITE_BASE = "172.16.0.1"		# site s sends from SITE_BASE + s
INNER_BASE = "10.1.0.2"		# and its hosts from INNER_BASE + s
INNER_DST = "203.0.113.1"
SINK_NET, RET_NET = "203.0.113.0/24", "172.16.0.0/12"
TENANT_ROUTES = ["10.0.0.0/8"]
HZ = os.sysconf("SC_CLK_TCK")

# name: (gregen profile, sites, direction); "udp-gso" is gregen --plain
# --udp-gso. SEARCHED profiles search each program's lossless rate and then
# offer twice that.
PROFILES = {
    "udp64": ("udp64", 1, "forward"),
    "udp512": ("udp512", 1, "forward"),
    "udp1400": ("udp1400", 1, "forward"),
    "tcp": ("tcp", 1, "forward"),
    "imix": ("imix", 1, "forward"),
    "imix-tcp": ("imix-tcp", 1, "forward"),
    "overload": ("udp64", 1, "forward"),
    "tcp-lossless": ("tcp", 1, "forward"),
    "keepalive": ("keepalive", 1000, "forward"),
    "udp64-sites1000": ("udp64", 1000, "forward"),
    "udp64-flows100000": ("udp64", 1, "forward"),
    "udp64-sites100000": ("udp64", 100000, "forward"),
    "return-udp64": ("udp64", 1, "return"),
    "return-udp1400": ("udp1400", 1, "return"),
    "return-gso": ("udp-gso", 1, "return"),
    "return-requests": ("udp64", 1, "return"),
}
SEARCHED = ("overload", "tcp-lossless")
# Profiles compared with each other: run in turns, round by round, so the
# machine's drift (10-40 % over minutes here) falls on both alike.
PAIRED = ("udp64-flows100000", "udp64-sites100000")
# Flows (inner source ports) where a profile wants other than gregen's 16.
# udp64-flows100000 is one site carrying as many flows from as many hosts
# as udp64-sites100000 has sites (one host each), one packet each in turn:
# neither coalesces and both learn 100,000 endpoints, so the two differ
# only in how many sites the packets belong to.
# overload too: traffic nothing coalesces is the workers' worst case, and
# keeps grepop's lossless rate under half of what one generator core can
# offer (with its 16 flows coalesced, grepop's ring path loses nothing up
# to gregen's own ceiling, so twice that rate could not be offered).
FLOWS = {"udp64-flows100000": 100000, "overload": 100000}
# A bulk TCP sender's segmentation offload puts a burst of one flow's
# segments on the wire back to back (up to 64 KiB: 46 of 1400 bytes); the
# TCP profiles send 16 in a row per flow, the 16 flows taking turns.
TCP_BURST = 16
# return-requests: forward GRE packets a second alongside the return flood.
REQUEST_RATE = 2000
SMOKE_PROFILES = ["udp64", "tcp", "return-udp64"]
GSO_SEGMENT = 1372		# UDP payload: 1400-byte IP packets
GSO_SEGMENTS = 47		# per gregen --udp-gso write
# The overload search (overload_round): halvings of the interval that holds
# the lossless rate, to 1/64 of gregen's flat-out rate; then twice that rate.
SEARCH_STEPS = 6
LOSSLESS = 0.005
QUEUE_DROPS_LAG = 1.2		# s: gatewayd counts its receive queue's drops once a second


class BenchError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


# -- what the kernel counted

def link_stats(lab, ns):
    """{ifname: {"rx_packets", "rx_bytes", "rx_dropped", "tx_...": N}}."""
    out = {}
    for link in json.loads(lab.run(ns, ["ip", "-j", "-s", "link", "show"])):
        st = link.get("stats64", {})
        out[link["ifname"]] = {f"{d}_{k}": st.get(d, {}).get(k, 0)
                               for d in ("rx", "tx") for k in ("packets", "bytes", "dropped")}
    return out


def raw_drops(lab, ns):
    """Drops of every raw socket in NS (/proc/net/raw, last column)."""
    lines = lab.run(ns, ["cat", "/proc/net/raw"]).splitlines()[1:]
    return sum(int(line.split()[-1]) for line in lines if line.strip())


def proc_cpu(pid):
    """utime + stime of PID in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def core_times(cpu):
    """(busy, total) jiffies of CPU from /proc/stat; busy includes softirq."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                idle = v[3] + v[4]
                return sum(v) - idle, sum(v)
    raise BenchError(f"no cpu{cpu} in /proc/stat")


def grepop_counters(shm):
    """gatewayd's own view: POP totals and every site's, drops by reason."""
    pop = shm.pop_totals()
    sites = shm.sites().values()
    drops = dict(pop["drops"])
    for s in sites:
        for k, v in s["drops"].items():
            drops[k] += v
    return {"rx_packets": pop["rx_packets"], "tx_packets": pop["tx_packets"],
            "delivered": sum(s["rx_packets"] for s in sites), "drops": drops,
            "rx_queue_drops": pop["rx_queue_drops"]}


# How delivered packets are counted on sink0 (--egress): "tso" lets a
# coalesced packet cross whole, as to a NIC with segmentation offload, and
# counts its segments in the sink's IP receive (which adds a GSO packet's
# segment count to the ECN counters); "software" has the kernel segment it
# before sink0, on the core under test, and counts sink0's TX packets.
EGRESS = {"mode": "tso"}
# --nic: pop1's wan0 receives as a NIC's queue does, with NAPI in a kernel
# thread on the core under test (see nic_receive).
NIC = {"on": False}
# A search (SEARCHED) runs without --nic: pop1's receive is steered to the
# core under test (see nic_receive).
SEARCH = {"on": False}
ECN_COUNTERS = ("InNoECTPkts", "InECT1Pkts", "InECT0Pkts", "InCEPkts")


def sink_segments(lab):
    """IPv4 packets the sink received, a GSO packet as its segments."""
    lines = lab.run(SINK, ["cat", "/proc/net/netstat"]).splitlines()
    for head, values in zip(lines[::2], lines[1::2]):
        if head.startswith("IpExt:"):
            row = dict(zip(head.split()[1:], (int(v) for v in values.split()[1:])))
            return sum(row[k] for k in ECN_COUNTERS)
    raise BenchError("no IpExt in the sink's /proc/net/netstat")


def snapshot(lab, dut, shm):
    return {
        "sink_segments": sink_segments(lab),
        "links": link_stats(lab, POP),
        "raw_drops": raw_drops(lab, POP),
        "cpu": proc_cpu(dut.popen.pid),
        "core": core_times(DUT_CPU),
        "grepop": grepop_counters(shm) if shm else None,
    }


# -- the lab and the programs under test

def build_lab(build, steer_ingress=False, nic=False):
    # The router and pop1 on one veth: a bridge between them would be
    # forwarding work on the generator's core, lowering its ceiling.
    lab = lablib.Lab(f"bn{os.getpid() % 100000}", build, direct_wan=True)
    try:
        lab.add_router(ROUTER)
        lab.add_pop(POP)
        lab.svc_http(POP, True)
        lab._ns_add(SINK)
        for i, (name, net) in enumerate((("sink0", SINK_NET), ("ret0", RET_NET))):
            here, there = f"192.0.2.{4 * i + 1}", f"192.0.2.{4 * i + 2}"
            lab._veth(POP, name, SINK, f"eth{i}")
            lab.run(POP, ["ip", "addr", "add", f"{here}/30", "dev", name])
            # A next hop whose MAC is nobody's: the sink's kernel sees
            # frames for another host and drops them first thing in IP
            # receive. That work stays on the core under test (a veth
            # delivers on the sending core), and it is small; steering it
            # elsewhere cost an inter-processor interrupt per packet, which
            # in this VM took 10 % of the forwarder's time.
            if name == "sink0" and EGRESS["mode"] == "tso":
                # As a NIC with TSO: a coalesced packet crosses whole and
                # the sink's IP receive counts its segments (sink_segments).
                lab.run(SINK, ["ip", "link", "set", f"eth{i}", "up"])
                lladdr = mac_of(lab, SINK, f"eth{i}")
            else:
                lladdr = SINK_MAC
            lab.run(POP, ["ip", "neigh", "replace", there, "lladdr", lladdr, "dev", name,
                          "nud", "permanent"])
            lab.run(POP, ["ip", "route", "add", net, "via", there, "dev", name])
            if lladdr == SINK_MAC:
                segment_before_counting(lambda cmd: lab.run(POP, cmd), name)
        # pop1's IP receive of what gregen sends runs on the generator's core
        # (veths receive on the sending core), unless STEER_INGRESS moves it
        # to the core under test, as a NIC interrupt there would: then an
        # overload shows as receive livelock.
        if steer_ingress:
            for ifname in ("wan0", "lan0"):
                steer(lab, POP, ifname, DUT_CPU)
        if nic:
            # A veth hands its peer's NAPI only what its own device could
            # not have sent as one TSO packet.
            lab.run(ROUTER, ["ethtool", "-K", "wan0", "tso", "off"])
        # No IPv6 chatter (router solicitations, MLD) in the counters.
        for ns in ("wan", ROUTER, POP, SVC, SINK):
            lab.run(ns, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        # Keepalives decapsulated by naive_fwd come back in through its TUN
        # from the gateway IP, a local address: let the kernel forward them.
        for key in ("all", "default"):
            lab.run(POP, ["sysctl", "-qw", f"net.ipv4.conf.{key}.accept_local=1"])
    except BaseException:
        lab.close()
        raise
    return lab


# Every segmentation offload a veth has: with them off, the kernel cuts a
# GSO packet into wire-sized ones before the veth's transmit, which then
# counts each of them.
SEGMENTATION_OFFLOADS = ["tso", "gso", "tx-udp-segmentation", "tx-gre-segmentation",
                         "tx-gre-csum-segmentation", "tx-ipxip4-segmentation",
                         "tx-ipxip6-segmentation", "tx-udp_tnl-segmentation",
                         "tx-udp_tnl-csum-segmentation", "tx-sctp-segmentation",
                         "tx-gso-list"]


def segment_before_counting(run, ifname):
    """Make IFNAME's TX counter count wire-sized packets: a coalesced
    packet (one skb of N segments) is segmented in software before the veth
    sends it, on the forwarding core, as a NIC without offloads would need.
    RUN(cmd) runs a command in IFNAME's namespace and returns its output."""
    features = run(["ethtool", "-k", ifname])
    wanted = [f for f in SEGMENTATION_OFFLOADS
              if f in ("tso", "gso") or re.search(rf"^\s*{re.escape(f)}: on", features, re.M)]
    run(["ethtool", "-K", ifname, *[x for f in wanted for x in (f, "off")]])
    still = re.findall(r"^\s*(\S*segmentation\S*|generic-segmentation-offload|tx-gso-list): "
                       r"on$", run(["ethtool", "-k", ifname]), re.M)
    if still:
        raise BenchError(f"{ifname} still segments in hardware: {still}")


def nic_receive(lab, prog):
    """With --nic, pop1's wan0 as PROG wants its NIC: for gatewayd with
    io = ring, GRO on (the ring reports what it merged, and gatewayd writes
    that whole to its TUN), the veth's NAPI in a kernel thread pinned to
    the core under test, as a NIC queue whose interrupt lands there; for
    io = xdp the same thread, where the XDP program runs and copies each
    GRE packet into the worker's frames (gatewayd turns GRO off); for the
    naive forwarder and io = socket, whose raw socket cannot read a merged
    packet, GRO off and the receive steered to the same core (RPS). Either
    way the POP's whole receive work runs on the core under test.

    Without --nic, a search (SEARCH) steers the receive to the core under
    test by RPS, which comes after XDP: for io = xdp the NAPI thread is
    pinned there instead, and RPS stays as the search set it."""
    napi = prog.name == "grepop" and prog.io in ("ring", "xdp")
    if not NIC["on"]:
        if napi and prog.io == "xdp" and SEARCH["on"]:
            napi_on_dut(lab)
        return
    steer(lab, POP, "wan0", None if napi else DUT_CPU)
    if napi:
        napi_on_dut(lab)
    else:
        lab.run(POP, ["ethtool", "-K", "wan0", "gro", "off"])


def napi_on_dut(lab):
    """pop1's wan0 receives in a NAPI kernel thread pinned to the core under
    test (a veth has NAPI while GRO or an XDP program is on)."""
    # Off first: its NAPI thread goes, so the one that comes is pop1's.
    lab.run(POP, ["ethtool", "-K", "wan0", "gro", "off"])
    before = napi_threads()
    lab.run(POP, ["ethtool", "-K", "wan0", "gro", "on"])
    lab.run(POP, ["sh", "-c", "echo 1 > /sys/class/net/wan0/threaded"])
    ours = lablib.wait_for(lambda: napi_threads() - before, 5, what="wan0's NAPI thread")
    for pid in ours:
        subprocess.run(["taskset", "-p", "-c", DUT_CPU, pid], check=True, capture_output=True)


def napi_threads():
    """The pids of the kernel's NAPI threads for devices called wan0."""
    found = set()
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if pid.isdigit() and f.read().startswith("napi/wan0-"):
                    found.add(pid)
        except OSError:
            pass
    return found


def steer(lab, ns, ifname, cpu):
    """Receive processing of IFNAME in NS on CPU (RPS); CPU None: where the
    packet arrived again."""
    mask = format(1 << int(cpu), "x") if cpu is not None else "0"
    lab.run(ns, ["sh", "-c", f"echo {mask} > /sys/class/net/{ifname}/queues/rx-0/rps_cpus"])


def mac_of(lab, ns, ifname):
    return json.loads(lab.run(ns, ["ip", "-j", "link", "show", ifname]))[0]["address"]


def ip_plus(base, n):
    a = [int(x) for x in base.split(".")]
    v = (a[0] << 24 | a[1] << 16 | a[2] << 8 | a[3]) + n
    return ".".join(str(v >> s & 255) for s in (24, 16, 8, 0))


class Grepop:
    """healthd (kept across rounds) and gatewayd (started per round)."""

    name = "grepop"

    def __init__(self, lab, io="socket", offload=True):
        self.lab, self.sites, self.healthd, self.shm = lab, None, None, None
        self.io, self.offload = io, offload

    def configure(self, n_sites):
        if n_sites == self.sites:
            return
        sites = [{"name": f"s{i}", "source_ip": ip_plus(SITE_BASE, i)} for i in range(n_sites)]
        self.conf = self.lab.write_conf(POP, sites=sites, tenants=[
            {"name": "default", "tun": TUN, "routes": TENANT_ROUTES}], io=self.io)
        with open(self.conf) as f:
            text = f.read()
        # One worker on one core, no per-tunnel rate: the bench measures the
        # data path, not the policer. gateway.offload as asked.
        text = text.replace("workers = 2;", "workers = 1; default_rate_mbps = 0; offload = "
                            f"{'true' if self.offload else 'false'};")
        with open(self.conf, "w") as f:
            f.write(text)
        self.sites = n_sites
        if self.healthd is None:
            self.healthd = self.lab.popen(POP, [self.lab.binary("healthd"), "-c", self.conf],
                                          name="pop1-healthd")

    def start(self):
        run_dir = os.path.join(self.lab.pop_dir(POP), "run")
        ctl = os.path.join(run_dir, "gatewayd.ctl")
        if os.path.exists(ctl):
            os.unlink(ctl)
        self.proc = self.lab.popen(POP, ["taskset", "-c", DUT_CPU, self.lab.binary("gatewayd"),
                                         "-c", self.conf], name=f"pop1-gatewayd-{time.time()}")
        lablib.wait_for(lambda: os.path.exists(ctl) or not self.proc.alive(), 60,
                        what="gatewayd's control socket")
        if not self.proc.alive():
            raise BenchError(f"gatewayd exited: {self.proc.log()[-2000:]}")
        if self.shm is None:
            self.shm = Shm(os.path.join(run_dir, "state"))
        lablib.wait_for(lambda: self.shm.health("swg") == "up" and
                        self.shm.health("cfw") == "up", 20, what="services up")
        return self.proc

    def stop(self):
        self.proc.stop()
        self.lab.procs.remove(self.proc)

    def close(self):
        if self.shm:
            self.shm.close()


class Naive:
    """naive_fwd, in the direction of the profile."""

    name = "naive"

    def __init__(self, lab):
        self.lab = lab

    def configure(self, n_sites):
        pass

    def start(self, direction):
        cmd = ["taskset", "-c", DUT_CPU, self.lab.tool("naive_fwd"), "--mode", direction,
               "--gateway", self.lab.pop_ip(POP), "--tun", TUN, "--mtu", str(TUNNEL_MTU),
               "--peer", SITE_BASE]
        for r in TENANT_ROUTES:
            cmd += ["--route", r]
        self.proc = self.lab.popen(POP, cmd, name=f"pop1-naive-{time.time()}")
        self.proc.wait_line("^ready$", timeout=10)
        return self.proc

    def stop(self):
        self.proc.stop()
        self.lab.procs.remove(self.proc)

    def close(self):
        pass


# -- traffic

def gregen(lab, profile, sites, seconds, count=None, direction="forward", rate=None,
           dst_mac=None, flows=None):
    """Run gregen pinned to the generator core; its counts as a dict. RATE
    paces it (packets a second); DST_MAC replaces pop1's MAC."""
    if direction == "forward":
        ns, ifname = ROUTER, "wan0"
        args = ["--dst-mac", dst_mac or mac_of(lab, POP, "wan0"), "--gateway", lab.pop_ip(POP)]
    else:
        ns, ifname = SVC, "eth0"
        args = ["--dst-mac", mac_of(lab, POP, "lan0"), "--plain", lablib.SVC_IP]
    if profile == "udp-gso":
        profile, args = "udp1400", args + ["--udp-gso", str(GSO_SEGMENT)]
    cmd = ["taskset", "-c", GEN_CPU, lab.tool("gregen"), "--ifname", ifname, "--profile",
           profile, "--sites", str(sites), "--site-base", SITE_BASE, "--inner-base",
           INNER_BASE, "--inner-dst", INNER_DST, "--seconds", str(seconds), *args]
    if count:
        cmd += ["--count", str(count)]
    if rate:
        cmd += ["--rate", str(int(rate))]
    if flows:
        # Each flow from its own host, as each site's in udp64-sites100000.
        cmd += ["--flows", str(flows), "--flow-hosts"]
    # Not the TX ring: a ring slot stays taken until the receiver frees
    # its packet, so with the receive on the other core (--nic, RPS)
    # gregen would wait for it; sendmmsg copies and goes on.
    cmd += ["--tx", "sendmmsg"]
    if profile in ("tcp", "imix-tcp"):
        cmd += ["--burst", str(TCP_BURST)]
    out = lab.run(ns, cmd, timeout=seconds + 30)
    m = re.search(r"^gregen (.*)$", out, re.M)
    if not m:
        raise BenchError(f"gregen printed nothing: {out!r}")
    kv = dict(item.split("=", 1) for item in m.group(1).split())
    return {k: (float(v) if k == "seconds" else int(v) if v.isdigit() else v)
            for k, v in kv.items()}


def delta(a, b, ifname, key):
    return b["links"].get(ifname, {}).get(key, 0) - a["links"].get(ifname, {}).get(key, 0)


def account(before, after, sent, direction, egress, per_write=1):
    """Where each packet gregen sent ended, from the kernel's counters (and
    gatewayd's when it ran). PER_WRITE: segments in each packet gregen sent
    (--udp-gso), which pop1's ingress counts once."""
    ingress = "wan0" if direction == "forward" else "lan0"
    acc = {
        "sent": sent["packets"],
        "arrived": delta(before, after, ingress, "rx_packets") * per_write,
        "delivered": delta(before, after, egress, "tx_packets"),
        "delivered_skbs": delta(before, after, egress, "tx_packets"),
        "delivered_bytes": delta(before, after, egress, "tx_bytes"),
        "raw_socket_drops": after["raw_drops"] - before["raw_drops"],
        "tun_written": delta(before, after, TUN, "rx_packets"),
        "tun_write_drops": delta(before, after, TUN, "rx_dropped"),
        "tun_read": delta(before, after, TUN, "tx_packets"),
        "tun_queue_drops": delta(before, after, TUN, "tx_dropped"),
        # The sink's backlog was full (veth counts that as its TX drop).
        "egress_drops": delta(before, after, egress, "tx_dropped"),
    }
    if egress == "sink0" and EGRESS["mode"] == "tso":
        acc["delivered"] = after["sink_segments"] - before["sink_segments"]
    acc["lost_before_pop"] = max(acc["sent"] - acc["arrived"], 0)
    # A TUN whose reader asked for offloads queues gregen's large writes
    # whole (it read fewer packets than left the egress): each one it
    # dropped was PER_WRITE segments.
    whole = per_write > 1 and acc["tun_read"] and acc["delivered"] > 1.5 * acc["tun_read"]
    acc["tun_queue_drops_segments"] = acc["tun_queue_drops"] * (per_write if whole else 1)
    counted = (acc["lost_before_pop"] + acc["tun_write_drops"] +
               acc["tun_queue_drops_segments"] + acc["egress_drops"])
    counted += acc["raw_socket_drops"] if direction == "forward" else 0
    if before["grepop"]:
        g0, g1 = before["grepop"], after["grepop"]
        drops = {k: g1["drops"][k] - g0["drops"][k] for k in g1["drops"]}
        acc["gatewayd"] = {"rx_packets": g1["rx_packets"] - g0["rx_packets"],
                           "tx_packets": g1["tx_packets"] - g0["tx_packets"],
                           "delivered": g1["delivered"] - g0["delivered"],
                           "rx_queue_drops": g1["rx_queue_drops"] - g0["rx_queue_drops"],
                           "drops": {k: v for k, v in drops.items() if v}}
        counted += sum(drops.values())
        # What gatewayd's receive queue dropped, as gatewayd read it from the
        # kernel: with the ring the only count there is; with the raw socket
        # the same drops as /proc/net/raw's, counted there already.
        if acc["raw_socket_drops"] == 0:
            counted += acc["gatewayd"]["rx_queue_drops"]
    acc["loss"] = 1 - acc["delivered"] / acc["sent"] if acc["sent"] else 0.0
    acc["unaccounted"] = acc["sent"] - acc["delivered"] - counted
    return acc


def settle(lab, egress, timeout=5.0):
    """Wait until the program under test has drained its socket queue:
    EGRESS stops counting (a full 8 MB raw-socket queue is ~10,000 packets)."""
    last, deadline = None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = link_stats(lab, POP).get(egress, {}).get("tx_packets")
        if now == last:
            return
        last = now
        time.sleep(0.25)


class Running:
    """PROG started for profile NAME (and stopped at the end of a with)."""

    def __init__(self, lab, prog, name):
        self.lab, self.prog, self.name = lab, prog, name
        gen_profile, self.sites, self.direction = PROFILES[name]
        self.egress = ("sink0" if self.direction == "forward" and gen_profile != "keepalive"
                       else "ret0")

    def __enter__(self):
        self.prog.configure(self.sites)
        nic_receive(self.lab, self.prog)
        self.dut = (self.prog.start() if self.prog.name == "grepop" else
                    self.prog.start(self.direction))
        self.shm = self.prog.shm if self.prog.name == "grepop" else None
        try:
            if self.direction == "return":
                # The branch hosts talk first, so gatewayd knows where they live.
                gregen(self.lab, "udp64", self.sites, 5, count=100 * self.sites)
                time.sleep(0.2)
        except BaseException:
            self.prog.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.prog.stop()


def run_round(lab, prog, name, seconds, rate=None):
    """One round of profile NAME: PROG started, measured, stopped."""
    with Running(lab, prog, name) as running:
        return measure(running, seconds, rate)


def measure(running, seconds, rate=None):
    """SECONDS of the profile's traffic (paced to RATE) into the running
    program; its figures from the kernel's counters."""
    lab, prog, name, egress = running.lab, running.prog, running.name, running.egress
    gen_profile, sites, direction = PROFILES[name]
    dut, shm = running.dut, running.shm
    before = snapshot(lab, dut, shm)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        requests = (pool.submit(gregen, lab, "udp64", sites, seconds, rate=REQUEST_RATE)
                    if name == "return-requests" else None)
        sent = gregen(lab, gen_profile, sites, seconds, direction=direction, rate=rate,
                      flows=FLOWS.get(name))
        if requests:
            requests.result()	# raises what gregen raised
    settle(lab, egress)
    after = snapshot(lab, dut, shm)
    wall = time.monotonic() - t0
    if shm:
        # gatewayd reads its queue's drops from the kernel once a second.
        time.sleep(QUEUE_DROPS_LAG)
        after["grepop"]["rx_queue_drops"] = shm.pop_totals()["rx_queue_drops"]
    acc = account(before, after, sent, direction, egress,
                  GSO_SEGMENTS if gen_profile == "udp-gso" else 1)
    busy = (after["core"][0] - before["core"][0]) / HZ
    delivered = max(acc["delivered"], 1)
    # The veth's TX bytes include the 14-byte Ethernet header of each skb; a
    # coalesced one carried the IP and TCP or UDP headers of its segments
    # once (gregen's have no options: 40 or 28 bytes).
    skbs = acc["delivered_skbs"]
    l4_hdr = 40 if gen_profile in ("tcp", "imix-tcp") else 28
    ip_bytes = acc["delivered_bytes"] - 14 * skbs + (acc["delivered"] - skbs) * l4_hdr
    return {
        "program": prog.name, "profile": name, "sites": sites, "direction": direction,
        "gen": sent, "seconds": sent["seconds"], "wall_seconds": wall, "rate": rate,
        "offered_pps": sent["packets"] / sent["seconds"],
        "pps": acc["delivered"] / sent["seconds"],
        "gbps": ip_bytes * 8 / sent["seconds"] / 1e9,
        "cpu_s": after["cpu"] - before["cpu"],
        "cpu_ns_per_pkt": (after["cpu"] - before["cpu"]) / delivered * 1e9,
        "core_busy": busy / wall,
        "core_ns_per_pkt": busy / delivered * 1e9,
        "accounting": acc,
    }


def overload_round(lab, prog, name, seconds):
    """PROG's lossless rate and what it delivers when offered twice that:
    the round at twice the rate, with the search in it. The search halves
    the interval between nothing and what gregen offered flat out,
    SEARCH_STEPS times, keeping the fastest rate whose loss was under
    LOSSLESS. (Not down from what it delivered flat out: a program whose
    core a flood takes from it delivers far less than it could.)"""
    step_seconds = min(seconds, 2.0)
    with Running(lab, prog, name) as running:
        flat = measure(running, seconds)
        search, lossless = [], None
        lo, hi = 0.0, flat["offered_pps"]
        for _ in range(SEARCH_STEPS):
            r = measure(running, step_seconds, rate=(lo + hi) / 2)
            search.append(r)
            if r["accounting"]["loss"] < LOSSLESS:
                lossless, lo = r, (lo + hi) / 2
            else:
                hi = (lo + hi) / 2
        found = lossless is not None
        lossless = lossless or search[-1]
        over = measure(running, seconds, rate=2 * lossless["pps"])
    over.update({"flat": flat, "search": search, "lossless_found": found,
                 "lossless_pps": lossless["pps"],
                 "overload_ratio": over["pps"] / lossless["pps"] if lossless["pps"] else 0.0})
    return over


def describe(r):
    a = r["accounting"]
    line = (f"  {r['program']:6} {r['pps'] / 1e3:8.1f} kpps {r['gbps']:6.2f} Gbps  "
            f"cpu {r['cpu_ns_per_pkt']:6.0f} ns/pkt (core {r['core_ns_per_pkt']:6.0f}, "
            f"{100 * r['core_busy']:3.0f}% busy)  offered {r['offered_pps'] / 1e3:.1f} kpps  "
            f"loss {100 * a['loss']:.1f}%")
    parts = [f"sent={a['sent']}", f"arrived={a['arrived']}",
             f"raw_drops={a['raw_socket_drops']}", f"tun_written={a['tun_written']}",
             f"tun_read={a['tun_read']}", f"tun_queue_drops={a['tun_queue_drops']}",
             f"delivered={a['delivered']}", f"egress_drops={a['egress_drops']}",
             f"unaccounted={a['unaccounted']}"]
    if "gatewayd" in a:
        g = a["gatewayd"]
        parts.append(f"gatewayd rx={g['rx_packets']} delivered={g['delivered']} "
                     f"tx={g['tx_packets']} rx_queue_drops={g['rx_queue_drops']} "
                     f"drops={g['drops']}")
    line += "\n    " + " ".join(parts)
    if "lossless_pps" in r:
        steps = " ".join(f"{x['offered_pps'] / 1e3:.1f}:{100 * x['accounting']['loss']:.1f}%"
                         for x in r["search"])
        line += (f"\n    flat out {r['flat']['pps'] / 1e3:.1f} kpps; search (offered kpps:loss)"
                 f" {steps}; lossless {r['lossless_pps'] / 1e3:.1f} kpps"
                 f"{'' if r['lossless_found'] else ' (NOT FOUND: the last step)'}; at twice"
                 f" that offered {r['offered_pps'] / 1e3:.1f} kpps, delivered "
                 f"{r['pps'] / 1e3:.1f} = {r['overload_ratio']:.2f} x lossless")
    return line


def median(values):
    """The middle round: one disturbed round on a shared machine moves it least."""
    values = sorted(values)
    n = len(values)
    if n == 0:
        return 0.0
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def summarize(name, rounds):
    by = {p: [r for r in rounds if r["program"] == p] for p in ("grepop", "naive")}
    s = {"profile": name}
    for p, rs in by.items():
        s[f"{p}_pps"] = round(median(r["pps"] for r in rs))
        s[f"{p}_gbps"] = round(median(r["gbps"] for r in rs), 3)
        s[f"{p}_cpu_ns_per_pkt"] = round(median(r["cpu_ns_per_pkt"] for r in rs))
        s[f"{p}_core_ns_per_pkt"] = round(median(r["core_ns_per_pkt"] for r in rs))
        s[f"{p}_loss"] = round(median(r["accounting"]["loss"] for r in rs), 4)
    s["ratio"] = round(s["grepop_pps"] / s["naive_pps"], 3) if s["naive_pps"] else None
    s["cpu_ratio"] = (round(s["grepop_cpu_ns_per_pkt"] / s["naive_cpu_ns_per_pkt"], 3)
                      if s["naive_cpu_ns_per_pkt"] else None)
    # Under 1 % loss the program kept up with gregen: its pps is the
    # generator's, and the CPU per packet is the figure that compares.
    s["limited_by"] = {p: "program" if s[f"{p}_loss"] > 0.01 else "generator" for p in by}
    if name in SEARCHED:
        for p, rs in by.items():
            s[f"{p}_lossless_pps"] = round(median(r["lossless_pps"] for r in rs))
            s[f"{p}_offered_pps"] = round(median(r["offered_pps"] for r in rs))
            s[f"{p}_overload_ratio"] = round(median(r["overload_ratio"] for r in rs), 3)
    return s


def schedule(profiles):
    """PROFILES in groups whose rounds take turns: PAIRED, where the first
    of them was asked for, when both were; each other profile alone."""
    both = all(p in profiles for p in PAIRED)
    groups = []
    for name in profiles:
        if not (both and name in PAIRED):
            groups.append([name])
        elif not any(g == list(PAIRED) for g in groups):
            groups.append(list(PAIRED))
    return groups


def paired_ratios(summary, one_site, many_sites):
    """Each round's 100,000-site ratio: grepop's CPU per packet at one site
    over that at 100,000 sites, the two measured in turn. Their median is
    the target's figure (SUMMARY is udp64-sites100000's)."""
    ratios = [round(a["cpu_ns_per_pkt"] / b["cpu_ns_per_pkt"], 3)
              for a, b in zip((r for r in one_site if r["program"] == "grepop"),
                              (r for r in many_sites if r["program"] == "grepop"))
              if b["cpu_ns_per_pkt"]]
    summary["grepop_sites_ratio_rounds"] = ratios
    log(f"  {PAIRED[0]} / {PAIRED[1]}, grepop's CPU per packet, round by round: "
        + " ".join(f"{x:.3f}" for x in ratios))


def verdicts(summaries, io, statsd, nic=False):
    """The issue's targets, each measured in this run: HIT, MISS, or n/a
    when the run lacks what it needs. With --nic the flat-out comparisons
    with the naive forwarder are n/a: its receive, steered by RPS to its
    core, takes that core from it once offered more than it can forward
    (a receive livelock), so its figures there say little."""
    livelock = "--nic: the naive forwarder livelocks under RPS; compare without --nic"
    by = {s["profile"]: s for s in summaries}
    out = []

    def target(profile, what, op, limit, measured, note=""):
        if measured is None:
            verdict = "n/a"
        else:
            verdict = "HIT" if (measured >= limit if op == ">=" else measured <= limit) else "MISS"
        out.append({"profile": profile, "target": f"{what}{op}{limit}",
                    "measured": measured, "verdict": verdict, "note": note})

    for name, s in by.items():
        if name in ("udp64", "udp512", "udp1400", "imix"):
            ring = io in ("ring", "xdp") and name in ("udp64", "udp1400")
            target(name, "ratio", ">=", 1.25 if ring else 0.95, None if nic else s["ratio"],
                   livelock if nic else "")
        elif name == "tcp":
            target(name, "cpu_ratio", "<=", 0.25, None if nic else s["cpu_ratio"],
                   livelock if nic else "")
        elif name == "tcp-lossless":
            target(name, "lossless_ratio", ">=", 2,
                   round(s["grepop_lossless_pps"] / s["naive_lossless_pps"], 3)
                   if s["naive_lossless_pps"] else None, "grepop's lossless rate / naive's")
        elif name == "overload":
            # Only a verdict when gregen offered (nearly) twice the rate.
            factor = (s["grepop_offered_pps"] / s["grepop_lossless_pps"]
                      if s["grepop_lossless_pps"] else 0)
            target(name, "overload_ratio", ">=", 0.8,
                   s["grepop_overload_ratio"] if factor >= 1.8 else None,
                   f"grepop's delivered when offered {factor:.2f} x its lossless rate, "
                   "over that rate")
        elif name in ("return-udp64", "return-udp1400", "return-requests"):
            target(name, "ratio", ">=", 1, s["ratio"])
        elif name == "return-gso":
            target(name, "ratio", ">=", 1.5, s["ratio"])
        elif name == "udp64-sites100000":
            # The rate one core sustains, from the CPU per packet: the
            # delivered rates move with the generator and the machine's load.
            # Against one site with as many flows (nothing coalesces in
            # either), so the ratio is the lookup's; else plain udp64.
            # Measured in turns (PAIRED), the median of the rounds' ratios.
            if s.get("grepop_sites_ratio_rounds"):
                target(name, "sites_ratio", ">=", 0.95,
                       round(median(s["grepop_sites_ratio_rounds"]), 3),
                       f"median of {len(s['grepop_sites_ratio_rounds'])} rounds, each grepop's "
                       f"CPU per packet in {PAIRED[0]} / at 100,000 sites, measured in turn")
                continue
            base = "udp64-flows100000" if "udp64-flows100000" in by else "udp64"
            one = by.get(base, {}).get("grepop_cpu_ns_per_pkt")
            many = s["grepop_cpu_ns_per_pkt"]
            target(name, "sites_ratio", ">=", 0.95,
                   round(one / many, 3) if one and many else None,
                   f"grepop's CPU per packet in {base} / at 100,000 sites")
        elif name == "imix-tcp":
            target(name, "grepop_gbps", ">=", 1, s["grepop_gbps"])
    if statsd and "shm_bytes_per_site" in statsd:
        target("memory", "shm_bytes_per_site", "<=", 512, statsd["shm_bytes_per_site"])
    return out


NOBODY_MAC = "02:00:00:00:5e:01"


def generator_max(lab, seconds):
    """gregen's own ceiling: flat out into pop1 with a destination MAC that is
    nobody's, so pop1's kernel drops each frame on arrival. That arrival runs
    on the generator's core too (a veth delivers on the sending core), as
    it does in the profiles."""
    out = {}
    for profile in ("udp64", "udp1400", "tcp"):
        r = gregen(lab, profile, 1, seconds, dst_mac=NOBODY_MAC)
        out[profile] = round(r["packets"] / r["seconds"])
    return out


# -- statsd at 100,000 sites

def statsd_phase(lab, grepop, seconds):
    """statsd's CPU share while 100,000 sites send keepalives."""
    if not os.access(lab.binary("statsd"), os.X_OK):
        return {"skipped": f"{lab.binary('statsd')} does not exist"}
    grepop.configure(100000)
    grepop.start()
    state = os.path.join(lab.pop_dir(POP), "run", "state")
    shm_bytes = os.path.getsize(state)
    statsd = lab.popen(POP, [lab.binary("statsd"), "-c", grepop.conf], name="pop1-statsd")
    try:
        time.sleep(2)		# its first full scan and snapshot
        if not statsd.alive():
            return {"skipped": f"statsd exited: {statsd.log()[-500:]}"}
        c0, t0 = proc_cpu(statsd.popen.pid), time.monotonic()
        gregen(lab, "keepalive", 100000, seconds)
        c1, t1 = proc_cpu(statsd.popen.pid), time.monotonic()
    finally:
        statsd.stop()
        lab.procs.remove(statsd)
        grepop.stop()
    return {"sites": 100000, "seconds": t1 - t0, "cpu_s": c1 - c0,
            "core_share": (c1 - c0) / (t1 - t0), "shm_bytes": shm_bytes,
            "shm_bytes_per_site": round(shm_bytes / 100000)}


# -- the run

def machine():
    """What ran it; the load average says how much else did (a shared machine)."""
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "model": model, "kernel": platform.release(),
            "loadavg_at_start": os.getloadavg()}


def print_table(summaries):
    log("")
    log(f"{'profile':20} {'grepop kpps':>11} {'naive kpps':>10} {'ratio':>6} "
        f"{'grepop Gbps':>11} {'naive Gbps':>10} {'grepop ns/pkt':>13} {'naive ns/pkt':>12} "
        f"{'cpu ratio':>9} {'grepop loss':>11} {'naive loss':>10}  limited by (grepop/naive)")
    for s in summaries:
        log(f"{s['profile']:20} {s['grepop_pps'] / 1e3:11.1f} {s['naive_pps'] / 1e3:10.1f} "
            f"{s['ratio'] or 0:6.2f} {s['grepop_gbps']:11.2f} {s['naive_gbps']:10.2f} "
            f"{s['grepop_cpu_ns_per_pkt']:13} {s['naive_cpu_ns_per_pkt']:12} "
            f"{s['cpu_ratio'] or 0:9.2f} {100 * s['grepop_loss']:10.1f}% "
            f"{100 * s['naive_loss']:9.1f}%  {s['limited_by']['grepop']}/"
            f"{s['limited_by']['naive']}")
    log("")


def run(args):
    started = time.monotonic()
    # The bench itself (its reads of 100,000 sites' counters between rounds,
    # the lab's helpers it starts) off the core under test: the figures of
    # that core are the program's and the kernel's work for it.
    os.sched_setaffinity(0, {int(GEN_CPU)})
    EGRESS["mode"] = args.egress
    NIC["on"] = args.nic
    lab = build_lab(args.build, args.steer_ingress, args.nic)
    progs = [Grepop(lab, args.io, args.offload == "on"), Naive(lab)]
    result = {"machine": machine(), "seconds": args.seconds, "rounds": args.rounds,
              "steer_ingress": args.steer_ingress, "nic": args.nic, "io": args.io,
              "offload": args.offload,
              "egress": args.egress,
              "profiles": [], "summary": []}
    try:
        result["generator_max_pps"] = generator_max(lab, min(args.seconds, 2.0))
        log(f"gregen flat out (pop1 drops on arrival): {result['generator_max_pps']}")
        for group in schedule(args.profiles):
            for name in group:
                log(f"profile {name} (gregen {PROFILES[name][0]}, {PROFILES[name][1]} sites, "
                    f"{PROFILES[name][2]})")
            # The searches: pop1's receive work on the core under test, as a NIC
            # interrupt there would put it, so the generator's core only
            # generates and a livelock would show. (A search is never paired.)
            steered = group[0] in SEARCHED and not args.steer_ingress and not args.nic
            if steered:
                steer(lab, POP, "wan0", DUT_CPU)
                SEARCH["on"] = True
            rounds = {name: [] for name in group}
            for i in range(args.rounds):
                for name in group:
                    for prog in progs:
                        r = (overload_round(lab, prog, name, args.seconds)
                             if name in SEARCHED else run_round(lab, prog, name, args.seconds))
                        log(describe(r))
                        rounds[name].append(r)
            if steered:
                steer(lab, POP, "wan0", None)
                SEARCH["on"] = False
            for name in group:
                result["profiles"].append({"profile": name, "rounds": rounds[name]})
                result["summary"].append(summarize(name, rounds[name]))
            if len(group) > 1:
                paired_ratios(result["summary"][-1], *(rounds[n] for n in group))
        if not args.smoke:
            result["statsd"] = statsd_phase(lab, progs[0], args.seconds)
            log(f"statsd at 100000 sites: {result['statsd']}")
    finally:
        for p in progs:
            p.close()
        lab.close()
    result["loadavg_at_end"] = os.getloadavg()
    result["verdicts"] = verdicts(result["summary"], args.io, result.get("statsd"), args.nic)
    result["wall_seconds"] = round(time.monotonic() - started)
    log(f"machine: {result['machine']}, load average at the end {result['loadavg_at_end']}")
    print_table(result["summary"])
    for s in result["summary"]:
        log(f"bench {s['profile']} grepop_pps={s['grepop_pps']} naive_pps={s['naive_pps']} "
            f"ratio={s['ratio']}")
    for profile, pps in result["generator_max_pps"].items():
        log(f"gregen max {profile} pps={pps}")
    for v in result["verdicts"]:
        log(f"target {v['profile']} {v['target']} measured={v['measured']} {v['verdict']}" +
            (f" ({v['note']})" if v["note"] else ""))
    log(f"offload={args.offload} io={args.io} egress={args.egress}; "
        f"took {result['wall_seconds']} s")
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    log(f"wrote {args.json}")
    return 0


def main():
    ap = argparse.ArgumentParser(description="gatewayd against a naive forwarder.")
    ap.add_argument("--build", default=os.environ.get("GREPOP_BUILD", "build"))
    ap.add_argument("--smoke", action="store_true", help="seconds, for make check")
    ap.add_argument("--io", choices=["socket", "ring", "xdp"], default="socket",
                    help="gatewayd's receive path (gateway.io)")
    ap.add_argument("--offload", choices=["on", "off"], default="on",
                    help="gatewayd's GSO/TSO with the TUN (gateway.offload)")
    ap.add_argument("--egress", choices=["tso", "software"], default="tso",
                    help="sink0 passes coalesced packets whole, as a NIC with TSO, and the "
                    "sink counts their segments (default); or the kernel segments them "
                    "before sink0, on the core under test")
    ap.add_argument("--seconds", type=float, help="per round (default 5, smoke 1)")
    ap.add_argument("--rounds", type=int, help="per program and profile (default 3, smoke 1)")
    ap.add_argument("--profiles", help="comma-separated: " + ",".join(PROFILES))
    ap.add_argument("--steer-ingress", action="store_true",
                    help="pop1's receive processing on the core under test (RPS)")
    ap.add_argument("--nic", action="store_true",
                    help="pop1's wan0 receives as a NIC queue on the core under test: "
                    "NAPI in a thread there, GRO on for io = ring, RPS for the others")
    ap.add_argument("--json", help="default BUILD/bench.json (smoke: BUILD/bench-smoke.json)")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    args.seconds = args.seconds or (1.0 if args.smoke else 5.0)
    args.rounds = args.rounds or (1 if args.smoke else 3)
    args.profiles = (args.profiles.split(",") if args.profiles else
                     SMOKE_PROFILES if args.smoke else list(PROFILES))
    args.json = args.json or os.path.join(
        args.build, "bench-smoke.json" if args.smoke else "bench.json")
    for p in args.profiles:
        if p not in PROFILES:
            ap.error(f"unknown profile {p}")
    if os.geteuid() != 0:
        print("bench: needs root (network namespaces)", file=sys.stderr)
        return 1
    try:
        return run(args)
    except (BenchError, lablib.LabError, subprocess.SubprocessError) as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

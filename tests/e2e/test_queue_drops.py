"""GRE the kernel drops before gatewayd reads it is counted too.

When a worker's receive queue is full (the raw socket's buffer with
gateway.io = "socket", the packet ring with "ring", the AF_XDP socket's
receive ring with "xdp") the kernel drops what
arrives and no gatewayd code sees it. gatewayd reads the kernel's count of
those drops about once a second into rx_queue_drops, so every GRE packet
that reached the POP's WAN interface is in exactly one of rx_packets and
rx_queue_drops. Here gatewayd is stopped (SIGSTOP) while a flood bigger than
either queue arrives, then resumed.
"""

import json
import os
import re
import signal
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as lablib  # noqa: E402
from conftest import module_prefix  # noqa: E402
from pop import Pop, wait_for  # noqa: E402

ROUTER_IP = f"{lablib.WAN_NET}.2"
SITES = [{"name": "branch", "source_ip": ROUTER_IP, "services": "swg+cfw"}]
TENANTS = [{"name": "default", "tun": "grepop0", "routes": ["10.1.0.0/16"]}]
# More than either queue holds: the ring's 128 blocks, each handed over
# after 1 ms, take what arrives in 128 ms (~65,000 of these at gregen's
# rate); the raw socket's 16 MiB of buffer ~13,000; the AF_XDP socket's
# receive ring 2,048.
PACKETS = 250000


@pytest.fixture(scope="module", params=["socket", "ring", "xdp"])
def env(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    lab = lablib.Lab(module_prefix(request), build_dir, direct_wan=True)
    try:
        lab.add_router()
        lab.add_pop("pop1")
        lab.start_services("pop1")
        # Nothing but the flood on pop1's WAN: no IPv6 chatter.
        for ns in ("router", "pop1"):
            lab.run(ns, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
        pop = Pop(lab, "pop1", sites=SITES, tenants=TENANTS, io=request.param)
        wait_for(lambda: pop.shm().health("swg") == "up", 10, what="services up")
        yield lab, pop
    finally:
        lab.close()


def wan_rx(lab):
    link = json.loads(lab.run("pop1", ["ip", "-j", "-s", "link", "show", "wan0"]))[0]
    return link["stats64"]["rx"]["packets"]


def seen(pop):
    t = pop.pop_totals()
    return t["rx_packets"], t["rx_queue_drops"]


def flood(lab):
    mac = json.loads(lab.run("pop1", ["ip", "-j", "link", "show", "wan0"]))[0]["address"]
    out = lab.run("router", [lab.tool("gregen"), "--ifname", "wan0", "--dst-mac", mac,
                             "--gateway", lab.pop_ip("pop1"), "--site-base", ROUTER_IP,
                             "--inner-base", "10.1.0.2", "--inner-dst", lablib.SVC_IP,
                             "--profile", "udp64", "--count", str(PACKETS),
                             "--tx", "sendmmsg"], timeout=60)
    return int(re.search(r"packets=(\d+) ", out).group(1))


def settled(pop, last):
    """The totals once they stopped moving for 1.5 s (bounded by 15 s)."""
    end = time.monotonic() + 15
    while time.monotonic() < end:
        time.sleep(1.5)
        now = seen(pop)
        if now == last[0]:
            return now
        last[0] = now
    return last[0]


def test_full_queue_counted(env):
    lab, pop = env
    rx0, q0 = seen(pop)
    arrived0 = wan_rx(lab)
    gatewayd = pop.procs["gatewayd"].popen.pid
    os.kill(gatewayd, signal.SIGSTOP)
    try:
        sent = flood(lab)
        arrived = wan_rx(lab) - arrived0
    finally:
        os.kill(gatewayd, signal.SIGCONT)
    rx, q = settled(pop, [seen(pop)])
    read, dropped = rx - rx0, q - q0
    assert sent == PACKETS
    assert arrived > 0.9 * PACKETS, arrived
    # The queue overflowed, and the kernel's drops are gatewayd's count now.
    assert dropped > 0, (read, dropped, arrived)
    # Every packet that arrived: read, or counted as dropped before reading
    # (an ARP exchange on the WAN may add a packet or two there).
    assert arrived - 2 <= read + dropped <= arrived, (read, dropped, arrived)
    print(f"sent {sent} arrived {arrived} read {read} queue drops {dropped}")
    # And gatewayd answers afterwards.
    assert pop.ctl({"command": "site.list"})["ok"]

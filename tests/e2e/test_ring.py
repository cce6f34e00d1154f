"""gatewayd with gateway.io = "ring": GRE received from an AF_PACKET
TPACKET_V3 ring on the WAN interface, shared by two workers through a hash
fanout, instead of raw sockets. The same traffic must work the same way, and
the kernel's own stack must neither answer GRE nor see it twice.
"""

import hashlib
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as lablib  # noqa: E402
import services  # noqa: E402
from conftest import module_prefix  # noqa: E402
from pop import Pop, wait_for  # noqa: E402

SITES = [{"name": "branch", "source_ip": "198.18.0.2"},
         {"name": "branch2", "source_ip": "198.18.0.3", "key": "9"}]


@pytest.fixture(scope="module")
def env(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    lab = lablib.standard(module_prefix(request), build_dir, backup=False, branch2=True)
    try:
        pop = Pop(lab, "pop1", sites=SITES, io="ring")
        wait_for(lambda: pop.shm().health("swg") == "up", 10, what="services up")
        routers = [lab.start_router(["--keepalive", "1,3"], site="branch", backup=None),
                   lab.start_router(["--keepalive", "1,3", "--key", "9", "--checksum"],
                                    site="branch2", backup=None)]
        for r in routers:
            wait_for(lambda r=r: (r.status() or {}).get("primary", {}).get("answered", 0) > 0,
                     10, what="keepalives answered")
        yield lab, pop
    finally:
        lab.close()


@pytest.mark.parametrize("host,size", [("branch", 3_000_000), ("branch2", 1_000_000)])
def test_download_through_the_ring(env, host, size):
    lab, pop = env
    out = lab.run(host, ["sh", "-c", f"curl -sS -m 20 http://{lablib.SVC_IP}/blob/{size}"
                                     " | sha256sum"], timeout=30)
    assert out.split()[0] == hashlib.sha256(services.blob_bytes(size)).hexdigest()


def test_every_packet_once_and_nothing_answered_by_the_kernel(env):
    lab, pop = env
    before = pop.site("branch")
    out = lab.run("branch", ["ping", "-c", "20", "-i", "0.05", "-W", "2", lablib.SVC_IP],
                  check=False)
    assert " 0% packet loss" in out, out
    after = pop.site("branch")
    # 20 echo requests, each seen once (a second copy through a raw socket
    # would show as more), plus the keepalives meanwhile.
    assert 20 <= after["rx_packets"] - before["rx_packets"] <= 22
    assert sum(after["drops"].values()) == sum(before["drops"].values())
    snmp = lab.run("pop1", ["cat", "/proc/net/snmp"])
    icmp = dict(zip(*[line.split()[1:] for line in snmp.splitlines()
                      if line.startswith("Icmp:")][:2]))
    assert icmp["OutDestUnreachs"] == "0"	# no "protocol unreachable" for GRE

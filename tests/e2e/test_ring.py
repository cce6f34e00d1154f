"""gatewayd with GRE read on the WAN interface instead of raw sockets:
gateway.io = "ring" (an AF_PACKET TPACKET_V3 ring shared by two workers
through a hash fanout) and "xdp" (an XDP program that hands GRE to the
gateway IP to the AF_XDP socket of the worker of its receive queue). The
same traffic must work the same way, and the kernel's own stack must neither
answer GRE nor see it twice.

What gatewayd sends goes out through a packet socket too, as whole frames to
the next hop's MAC, once the control thread has resolved it: past the IP
stack, so the POP's netfilter OUTPUT hook no longer sees it.
"""

import hashlib
import json
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


@pytest.fixture(scope="module", params=["ring", "xdp"])
def env(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    lab = lablib.standard(module_prefix(request), build_dir, backup=False, branch2=True)
    try:
        pop = Pop(lab, "pop1", sites=SITES, io=request.param)
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


def test_gre_dropped_before_ip_input(env):
    """The ring took it; the WAN's ingress hook drops it before IP input
    would spend anything on it: the ip table's rules never see it."""
    lab, pop = env
    out = lab.run("branch", ["ping", "-c", "10", "-i", "0.05", "-W", "2", lablib.SVC_IP],
                  check=False)
    assert " 0% packet loss" in out, out
    tables = json.loads(lab.run("pop1", ["nft", "-j", "list", "ruleset"]))["nftables"]
    chains = [t["chain"] for t in tables if "chain" in t]
    assert {"family": "netdev", "name": "wan", "hook": "ingress"}.items() <= \
        next(c for c in chains if c["family"] == "netdev").items()
    counters = [e["counter"]["packets"] for t in tables if "rule" in t and
                t["rule"]["family"] == "ip" and t["rule"]["table"] == "grepop"
                for e in t["rule"]["expr"] if "counter" in e]
    assert counters == [0, 0], counters


# Frames arriving on the router's WAN port: GRE from SRC_IP, with their MACs.
# Prints "ready", then "gre N good G" every half second (good: to DST_MAC from
# SRC_MAC), for 60 s at most.
SNIFF_WAN = r"""
import select, socket, sys, time
ifname, src_ip, dst_mac, src_mac = sys.argv[1:5]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: keep up with a download
s.bind((ifname, 0))
want_src = socket.inet_aton(src_ip)
print("ready", flush=True)
gre = good = 0
last, deadline = time.monotonic(), time.monotonic() + 60
while time.monotonic() < deadline:
    if select.select([s], [], [], 0.1)[0]:
        f = s.recv(65536)
        if len(f) >= 34 and f[23] == 47 and f[26:30] == want_src:
            gre += 1
            good += f[0:6].hex(":") == dst_mac and f[6:12].hex(":") == src_mac
    if time.monotonic() - last >= 0.5:
        last = time.monotonic()
        print("gre", gre, "good", good, flush=True)
"""

GRE_OUT = """table ip ptxcount {
    chain out {
        type filter hook output priority 0; policy accept;
        ip protocol gre counter
    }
}
"""


def link_mac(lab, role, ifname):
    return json.loads(lab.run(role, ["ip", "-j", "link", "show", ifname]))[0]["address"]


def gre_out_packets(lab):
    table = json.loads(lab.run("pop1", ["nft", "-j", "list", "table", "ip", "ptxcount"]))
    for item in table["nftables"]:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                return expr["counter"]["packets"]
    raise AssertionError(f"no counter in {table}")


def packet_path_used(lab):
    """Whether a ping through the tunnel now leaves the POP without GRE
    through its IP stack (the next hop resolved, its MAC published)."""
    before = gre_out_packets(lab)
    out = lab.run("branch", ["ping", "-c", "1", "-W", "1", lablib.SVC_IP], check=False)
    return " 0% packet loss" in out and gre_out_packets(lab) == before


def test_packet_sockets_for_sending(env):
    lab, pop = env
    # /proc/net/packet: sk RefCnt Type Proto Iface ...; a send-only socket
    # is SOCK_RAW (3) bound to no protocol, one per worker.
    rows = [line.split() for line in lab.run("pop1", ["cat", "/proc/net/packet"])
            .splitlines()[1:]]
    assert len([r for r in rows if r[2] == "3" and r[3] == "0000"]) == 2, rows


def test_return_path_skips_the_ip_stack(env):
    lab, pop = env
    router_mac, pop_mac = link_mac(lab, "router", "wan0"), link_mac(lab, "pop1", "wan0")
    lab.run("pop1", ["nft", "-f", "-"], input=GRE_OUT)
    sniffer = lab.popen("router", [lablib.PYTHON, "-c", SNIFF_WAN, "wan0", "198.18.0.11",
                                   router_mac, pop_mac], name="sniff-wan")
    try:
        sniffer.wait_line("^ready$", timeout=10)
        # The first packets of a tunnel go raw until the refresh (every second)
        # finds the neighbour the kernel resolved for them.
        wait_for(lambda: packet_path_used(lab), 10, what="the packet path in use")
        before, out_before = pop.site("branch"), gre_out_packets(lab)
        size = 3_000_000
        out = lab.run("branch", ["sh", "-c", f"curl -sS -m 20 http://{lablib.SVC_IP}"
                                             f"/blob/{size} | sha256sum"], timeout=30)
        assert out.split()[0] == hashlib.sha256(services.blob_bytes(size)).hexdigest()
        sent = pop.site("branch")["tx_packets"] - before["tx_packets"]
        raw = gre_out_packets(lab) - out_before
        assert sent >= size // 1500
        assert raw == 0, (raw, sent)

        def seen():
            counts = [line.split() for line in sniffer.lines if line.startswith("gre")]
            return (int(counts[-1][1]), int(counts[-1][3])) if counts else (0, 0)
        wait_for(lambda: seen()[0] >= sent, 5, what=f"{sent} GRE frames at the router")
        gre, good = seen()
        assert good == gre, (gre, good, sent)
    finally:
        sniffer.stop()
        lab.run("pop1", ["nft", "delete", "table", "ip", "ptxcount"], check=False)


def test_keepalives_answered_through_the_packet_socket(env):
    lab, pop = env
    lab.run("pop1", ["nft", "-f", "-"], input=GRE_OUT)
    try:
        wait_for(lambda: packet_path_used(lab), 10, what="the packet path in use")
        before, out_before = pop.site("branch2")["keepalives"], gre_out_packets(lab)
        wait_for(lambda: pop.site("branch2")["keepalives"] >= before + 6, 10,
                 what="keepalives reflected")
        assert gre_out_packets(lab) == out_before
    finally:
        lab.run("pop1", ["nft", "delete", "table", "ip", "ptxcount"], check=False)


def test_xdp_program_only_with_xdp(env):
    """With "xdp" gatewayd's program sits on the WAN interface (in the
    driver or the kernel's generic path); with "ring" there is none."""
    lab, pop = env
    link = json.loads(lab.run("pop1", ["ip", "-j", "-d", "link", "show", "wan0"]))[0]
    if pop.io != "xdp":
        assert "xdp" not in link, link
        return
    assert link["xdp"]["prog"]["name"] == "grepop_gre", link["xdp"]
    assert link["xdp"]["mode"] in (1, 2), link["xdp"]	# driver or generic

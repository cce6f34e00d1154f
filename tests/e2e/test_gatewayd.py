"""gatewayd end to end: branch hosts reach the downstream services through
their routers' GRE tunnels and the real gatewayd, and back.

The lab: router with two sites (branch 10.1.0.0/24 from 198.18.0.2, branch2
10.2.0.0/24 from 198.18.0.3), pop1 running healthd and gatewayd, svc1 with
HTTP and echo services.
"""

import hashlib
import os
import re
import signal
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as lablib  # noqa: E402
import services  # noqa: E402
from conftest import module_prefix  # noqa: E402
from pop import Pop, wait_for  # noqa: E402

SITES = [
    {"name": "branch", "source_ip": "198.18.0.2"},
    {"name": "branch2", "source_ip": "198.18.0.3", "services": "cfw"},
]
TENANTS = [{"name": "default", "tun": "grepop0",
            "routes": ["10.1.0.0/16", "10.2.0.0/16", "fd00:1::/64"]}]


@pytest.fixture(scope="module")
def env(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    lab = lablib.standard(module_prefix(request), build_dir, backup=False, branch2=True)
    try:
        pop = Pop(lab, "pop1", sites=SITES, tenants=TENANTS)
        wait_for(lambda: pop.shm().health("swg") == "up" and pop.shm().health("cfw") == "up",
                 10, what="services up")
        routers = {
            "branch": lab.start_router(["--keepalive", "1,3"], site="branch", backup=None),
            "branch2": lab.start_router(["--keepalive", "1,3"], site="branch2", backup=None),
        }
        for r in routers.values():
            wait_for(lambda r=r: (r.status() or {}).get("active") == "primary", 10,
                     what="tunnel up")
        yield lab, pop, routers
    finally:
        lab.close()


def curl(lab, host, url, out="/dev/null", timeout=20):
    return lab.run(host, ["curl", "-s", "-m", str(timeout), "-o", out, "-w",
                          "%{http_code} %{size_download}", url], check=False,
                   timeout=timeout + 5)


def test_download_is_byte_exact(env):
    lab, pop, _ = env
    size = 4_000_000
    out = os.path.join(lab.run_dir, "blob")
    before = pop.site("branch")
    assert curl(lab, "branch", f"http://{lablib.SVC_IP}/blob/{size}", out) == f"200 {size}"
    with open(out, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    assert got == hashlib.sha256(services.blob_bytes(size)).hexdigest()
    after = pop.site("branch")
    assert after["tx_bytes"] - before["tx_bytes"] > size
    assert after["rx_packets"] > before["rx_packets"]
    assert after["established_ns"] > 0 and after["last_user_ns"] > 0


def test_keepalives_reflected(env):
    lab, pop, routers = env
    st = routers["branch"].status()
    assert st["primary"]["up"] and st["primary"]["answered"] > 0
    assert pop.site("branch")["keepalives"] > 0


# The SYN from the branch host as the server receives it. (A Python filter:
# BPF filters need tcpdump, which the lab does not install.)
SNIFF_SYN = r"""
from scapy.all import AsyncSniffer, IP, TCP
def branch_syn(p):
    return TCP in p and p[IP].src == "10.1.0.2" and p[TCP].dport == 80 and p[TCP].flags.S
sniffer = AsyncSniffer(iface="eth0", lfilter=branch_syn, count=1, timeout=20,
                       started_callback=lambda: print("ready", flush=True))
sniffer.start()
sniffer.join()
for p in sniffer.results or []:
    print(dict(p[TCP].options).get("MSS"), flush=True)
"""


def test_mss_clamped_at_the_server(env):
    lab, pop, _ = env
    sniffer = lab.popen("svc1", [lablib.PYTHON, "-c", SNIFF_SYN], name="sniff-syn")
    sniffer.wait_line("^ready$", timeout=20)
    assert curl(lab, "branch", f"http://{lablib.SVC_IP}/healthz").startswith("200")
    assert sniffer.wait_line(r"^\d+$", timeout=15) == "1436", sniffer.lines


def test_return_path_for_each_site(env):
    lab, pop, _ = env
    out = lab.run("branch2", ["ping", "-c", "3", "-i", "0.2", "-W", "2", lablib.SVC_IP])
    assert " 0% packet loss" in out
    assert pop.site("branch2")["tx_packets"] >= 3


def test_policy_swg_only_site(env):
    lab, pop, _ = env
    # branch2 has cfw only: everything TCP/UDP/ICMP passes. Make branch swg only.
    assert pop.ctl({"command": "site.edit", "name": "branch",
                    "set": {"services": "swg"}})["ok"]
    try:
        before = pop.drops("branch")["policy"]
        lab.run("branch", ["ping", "-c", "2", "-i", "0.2", "-W", "1", lablib.SVC_IP],
                check=False)
        assert pop.drops("branch")["policy"] >= before + 2
        assert curl(lab, "branch", f"http://{lablib.SVC_IP}/healthz").startswith("200")
    finally:
        assert pop.ctl({"command": "site.edit", "name": "branch",
                        "set": {"services": "swg+cfw"}})["ok"]


@pytest.fixture
def big_mtu_router(env):
    """branch's router with a 1500-byte tunnel MTU, so oversize packets reach the POP."""
    lab, pop, routers = env
    lab.stop_router(routers["branch"])
    r = lab.start_router(["--keepalive", "1,3", "--mtu", "1500"], site="branch", backup=None)
    wait_for(lambda: (r.status() or {}).get("active") == "primary", 10, what="tunnel up")
    yield r
    lab.stop_router(r)
    routers["branch"] = lab.start_router(["--keepalive", "1,3"], site="branch", backup=None)
    wait_for(lambda: (routers["branch"].status() or {}).get("active") == "primary", 10,
             what="tunnel up")


def test_oversize_with_and_without_df(env, big_mtu_router):
    lab, pop, _ = env
    before = pop.drops("branch")["too_big"]
    # Without DF first: once the branch learns the path MTU it fragments itself.
    out = lab.run("branch", ["ping", "-c", "1", "-W", "2", "-M", "dont", "-s", "1472",
                             lablib.SVC_IP], check=False)
    assert "1 received" not in out
    assert pop.drops("branch")["too_big"] == before + 1
    out = lab.run("branch", ["ping", "-c", "1", "-W", "3", "-M", "do", "-s", "1472",
                             lablib.SVC_IP], check=False)
    assert re.search(r"mtu ?= ?1476", out), out
    assert pop.drops("branch")["too_big"] == before + 2


SEND_GRE = r"""
from scapy.all import IP, GRE, UDP, send
send(IP(src="198.18.0.50", dst="198.18.0.11") / GRE() /
     IP(src="10.9.0.2", dst="198.19.0.2") / UDP(dport=7), count=5, verbose=False)
"""


def test_unknown_source_dropped_by_nftables(env):
    lab, pop, _ = env
    lab.run("router", ["ip", "addr", "add", "198.18.0.50/24", "dev", "wan0"])
    try:
        before = pop.nft_drop_counter()
        socket_drops = pop.pop_totals()["drops"]["unknown_source"]
        lab.run("router", [lablib.PYTHON, "-c", SEND_GRE], timeout=60)
        wait_for(lambda: pop.nft_drop_counter() >= before + 5, 5, what="nft counter")
        # Dropped by the kernel: gatewayd never saw them.
        assert pop.pop_totals()["drops"]["unknown_source"] == socket_drops
    finally:
        lab.run("router", ["ip", "addr", "del", "198.18.0.50/24", "dev", "wan0"])


def test_disable_enable_while_another_site_flows(env):
    lab, pop, _ = env
    pinger = lab.popen("branch2", ["ping", "-i", "0.1", "-c", "40", "-W", "1", lablib.SVC_IP],
                       name="ping-branch2")
    time.sleep(0.5)
    assert pop.ctl({"command": "site.disable", "names": ["branch"]})["ok"]
    disabled_before = pop.drops("branch")["disabled"]
    assert not curl(lab, "branch", f"http://{lablib.SVC_IP}/healthz", timeout=2).startswith(
        "200")
    assert pop.drops("branch")["disabled"] > disabled_before
    assert pop.ctl({"command": "site.enable", "names": ["branch"]})["ok"]
    assert curl(lab, "branch", f"http://{lablib.SVC_IP}/healthz").startswith("200")
    pinger.popen.wait(timeout=15)
    out = "\n".join(pinger.lines)
    assert " 0% packet loss" in out, out
    with open(pop.sites_file) as f:
        assert "branch" in f.read()


def test_ipv6_inner_packets(env):
    lab, pop, _ = env
    lab.run("branch", ["ip", "addr", "add", "fd00:1::2/64", "dev", "eth0", "nodad"])
    lab.run("branch", ["ip", "-6", "route", "add", "default", "via", "fd00:1::1"])
    lab.run("router", ["ip", "addr", "add", "fd00:1::1/64", "dev", "lan0", "nodad"])
    lab.run("router", ["ip", "-6", "route", "add", "fd00:19::/64", "dev", "gre-r"])
    lab.run("pop1", ["ip", "addr", "add", "fd00:19::1/64", "dev", "lan0", "nodad"])
    lab.run("svc1", ["ip", "addr", "add", "fd00:19::2/64", "dev", "eth0", "nodad"])
    lab.run("svc1", ["ip", "-6", "route", "add", "default", "via", "fd00:19::1"])
    # The first packets may wait on neighbour discovery along the way.
    wait_for(lambda: " 0% packet loss" in lab.run(
        "branch", ["ping", "-6", "-c", "1", "-W", "1", "fd00:19::2"], check=False), 10,
        what="a first IPv6 echo answered")
    out = lab.run("branch", ["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd00:19::2"],
                  check=False)
    assert " 0% packet loss" in out, out


def test_control_refuses_bad_changes(env):
    lab, pop, _ = env
    with open(pop.sites_file) as f:
        before = f.read()
    refusals = [
        ({"command": "site.add", "site": {"name": "branch", "source_ip": "198.18.0.9"}},
         "exists"),
        ({"command": "site.add", "site": {"name": "x", "source_ip": "198.18.0.2"}},
         "198.18.0.2"),
        ({"command": "site.add", "site": {"name": "y", "source_ip": "not-an-ip"}},
         "source_ip"),
        ({"command": "site.edit", "name": "nope", "set": {"enabled": "no"}}, "no site"),
        ({"command": "site.delete", "names": ["branch", "nope"]}, "nope"),
        ({"command": "site.import", "csv": "name,source_ip\na,1.2.3\n"}, ":2:"),
        ({"command": "pop.accept", "mode": "sometimes"}, "accept, no-new or drain"),
        ({"command": "launch"}, "unknown command"),
    ]
    for request, words in refusals:
        reply = pop.ctl(request)
        assert reply["ok"] is False, request
        assert words in reply["error"], (request, reply)
    with open(pop.sites_file) as f:
        assert f.read() == before
    names = [s["name"] for s in pop.ctl({"command": "site.list"})["sites"]]
    assert names == ["branch", "branch2"]


def test_import_dry_run_then_apply(env):
    lab, pop, _ = env
    csv = ("name,source_ip,services\n"
           "branch,198.18.0.2,swg+cfw\n"
           "branch2,198.18.0.3,swg+cfw\n"
           "newsite,198.18.0.77,swg\n")
    reply = pop.ctl({"command": "site.import", "csv": csv, "dry_run": True})
    assert reply["ok"] and reply["added"] == ["newsite"] and reply["changed"] == ["branch2"]
    assert pop.site("newsite") is None
    reply = pop.ctl({"command": "site.import", "csv": csv})
    assert reply["ok"]
    assert pop.site("newsite") is not None
    assert "198.18.0.77" in lab.run("pop1", ["nft", "list", "set", "ip", "grepop", "sites"])
    export = pop.ctl({"command": "site.export"})["csv"]
    assert "newsite" in export
    # Back as it was, through a removal.
    csv = "name,source_ip,services\nbranch,198.18.0.2,swg+cfw\nbranch2,198.18.0.3,cfw\n"
    reply = pop.ctl({"command": "site.import", "csv": csv})
    assert reply["ok"] and reply["removed"] == ["newsite"]
    assert pop.site("newsite") is None


def test_sighup_reloads_sites_and_refuses_a_bad_file(env):
    lab, pop, _ = env
    gw = pop.procs["gatewayd"]
    extra = {"name": "extra", "source_ip": "198.18.0.88"}
    try:
        with open(pop.sites_file, "w") as f:
            f.write(lablib.sites_csv(SITES + [extra]))
        os.kill(gw.popen.pid, signal.SIGHUP)	# ip netns exec became gatewayd
        wait_for(lambda: pop.site("extra") is not None, 5, what="reloaded site")
        with open(pop.sites_file, "w") as f:
            f.write(lablib.sites_csv(SITES + [{"name": "broken", "source_ip": "999.1.1.1"}]))
        os.kill(gw.popen.pid, signal.SIGHUP)
        wait_for(lambda: "reload refused" in pop.log("gatewayd"), 5, what="refusal logged")
        assert re.search(r"sites.csv:4:2: ", pop.log("gatewayd")), pop.log("gatewayd")
        assert pop.site("extra") is not None	# still running the previous set
    finally:
        with open(pop.sites_file, "w") as f:
            f.write(lablib.sites_csv(SITES))
        os.kill(gw.popen.pid, signal.SIGHUP)
        wait_for(lambda: pop.site("extra") is None, 5, what="site gone")


def test_counters_survive_a_gatewayd_restart(env):
    lab, pop, routers = env
    before = pop.site("branch")
    assert pop.stop("gatewayd") == 0
    assert "table ip grepop" not in lab.run("pop1", ["nft", "list", "tables"])
    pop.start("gatewayd")
    after = pop.site("branch")
    for key in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "keepalives"):
        assert after[key] >= before[key], key
    assert after["generation"] == before["generation"]
    wait_for(lambda: routers["branch"].status()["primary"]["up"], 10, what="tunnel up")
    assert curl(lab, "branch", f"http://{lablib.SVC_IP}/healthz").startswith("200")


def test_only_net_admin_after_start(env):
    lab, pop, _ = env
    with open(f"/proc/{pop.procs['gatewayd'].popen.pid}/status") as f:
        caps = dict(line.split(":\t") for line in f if line.startswith("Cap"))
    net_admin = 1 << 12
    assert int(caps["CapEff"], 16) == net_admin
    assert int(caps["CapPrm"], 16) == net_admin
    assert int(caps["CapBnd"], 16) == net_admin

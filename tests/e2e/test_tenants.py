"""Two tenants whose branches use the same addresses (10.1.0.0/24) on one
POP: each tenant has its own TUN, routing table and downstream interface,
and each branch reaches its own services and gets its own replies.

    router  (198.18.0.2) branch  10.1.0.2  -> tenant a: grepopa, table 100, lan0 -> svc1
    router2 (198.18.0.4) branchb 10.1.0.2  -> tenant b: grepopb, table 101, lan1 -> svc1b
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as lablib  # noqa: E402
from conftest import module_prefix  # noqa: E402
from pop import Pop, wait_for  # noqa: E402

SITES = [
    {"name": "branch", "source_ip": "198.18.0.2", "tenant": "a"},
    {"name": "branchb", "source_ip": "198.18.0.4", "tenant": "b"},
]
TENANTS = [
    {"name": "a", "tun": "grepopa", "table": 100, "downstream": "lan0", "routes": ["10.1.0.0/24"]},
    {"name": "b", "tun": "grepopb", "table": 101, "downstream": "lan1", "routes": ["10.1.0.0/24"]},
]


@pytest.fixture(scope="module")
def env(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    lab = lablib.overlapping(module_prefix(request), build_dir)
    try:
        # Tenant b's own services, behind its own downstream interface.
        lab._ns_add("svc1b")
        lab._veth("pop1", "lan1", "svc1b", "eth0")
        lab.run("pop1", ["ip", "addr", "add", f"{lablib.SVC_NET}.1/24", "dev", "lan1"])
        lab.run("svc1b", ["ip", "addr", "add", f"{lablib.SVC_IP}/24", "dev", "eth0"])
        lab.run("svc1b", ["ip", "route", "add", "default", "via", f"{lablib.SVC_NET}.1"])
        svc = lab.popen("svc1b", [lablib.PYTHON, os.path.join(lablib.HERE, "services.py"),
                                  "http", "--name", "tenant b"], name="svc1b-http")
        svc.wait_line("^ready$", timeout=10)
        pop = Pop(lab, "pop1", sites=SITES, tenants=TENANTS)
        wait_for(lambda: pop.shm().health("swg") == "up", 10, what="services up")
        for router, site in (("router", "branch"), ("router2", "branchb")):
            r = lab.start_router(["--keepalive", "1,3"], router=router, site=site, backup=None)
            wait_for(lambda r=r: (r.status() or {}).get("active") == "primary", 10,
                     what=f"{site}'s tunnel up")
        yield lab, pop
    finally:
        lab.close()


def fetch(lab, host, path):
    return lab.run(host, ["curl", "-s", "-m", "5", "-w", " %{http_code}",
                          f"http://{lablib.SVC_IP}{path}"], check=False)


def test_each_tenant_reaches_its_own_services(env):
    lab, pop = env
    assert fetch(lab, "branchb", "/whoami") == "tenant b\n 200"
    assert fetch(lab, "branch", "/whoami") == "grepop-lab\n 200"	# svc1, not svc1b


def test_replies_return_through_the_right_tunnel(env):
    lab, pop = env
    a, b = pop.site("branch"), pop.site("branchb")
    for _ in range(3):
        assert fetch(lab, "branchb", "/whoami").endswith(" 200")
    assert pop.site("branchb")["tx_packets"] > b["tx_packets"]
    assert pop.site("branch")["tx_packets"] - a["tx_packets"] < 3	# keepalives only
    assert pop.pop_totals()["drops"]["no_route_back"] == 0


def test_tables_and_rules_are_removed_on_exit(env):
    lab, pop = env
    rules = lab.run("pop1", ["ip", "rule", "list"])
    assert "lookup 100" in rules and "lookup 101" in rules
    assert pop.stop("gatewayd") == 0
    rules = lab.run("pop1", ["ip", "rule", "list"])
    assert "lookup 100" not in rules and "lookup 101" not in rules
    assert "grepopa" not in lab.run("pop1", ["ip", "link"])

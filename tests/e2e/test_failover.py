"""Failover between two POPs with the real daemons: gatewayd answers a
site's keepalives and probes only while its downstream services are healthy,
so a branch router (grerouter) moves its traffic to the backup POP when the
primary's services fail, and back when they recover."""

import hashlib
import os

import pytest

import lab as lablib
import services
from conftest import module_prefix
from pop import Pop

BLOB = 300000


@pytest.fixture(scope="module")
def pops(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    for daemon in ("gatewayd", "healthd"):
        if not os.access(os.path.join(build_dir, daemon), os.X_OK):
            pytest.skip(f"{daemon} not built")
    lab = lablib.standard(module_prefix(request), build_dir)
    try:
        yield lab, Pop(lab, "pop1"), Pop(lab, "pop2")
    finally:
        lab.close()


def download_ok(lab):
    """A byte-exact download from the services through whichever tunnel."""
    out = lab.run("branch", ["sh", "-c", f"curl -sS -m 10 http://{lablib.SVC_IP}/blob/{BLOB} | "
                                         "sha256sum"], timeout=15)
    return out.split()[0] == hashlib.sha256(services.blob_bytes(BLOB)).hexdigest()


def rx_packets(pop):
    site = pop.site("branch")
    return site["rx_packets"] if site else 0


@pytest.mark.parametrize("check", [
    ["--keepalive", "1,3"],
    ["--probe", f"{lablib.PROBE_IP},1,3", "--probe-src", "10.1.0.1"],
], ids=["keepalive", "probe"])
def test_failover_follows_service_health(pops, check):
    lab, pop1, pop2 = pops
    router = lab.start_router(check)
    try:
        lablib.wait_for(lambda: router.status()["primary"]["answered"] >= 2 and
                        router.status()["backup"]["answered"] >= 2, 10, what="both POPs answer")
        assert router.status()["active"] == "primary"
        before = rx_packets(pop2)
        assert download_ok(lab)
        assert rx_packets(pop2) == before, "traffic reached the backup while the primary was up"

        n = len(router.lines)
        lab.svc_http("pop1", False)
        router.wait_line(r"^tunnel primary 198\.18\.0\.11 down \(3 \w+ unanswered\)$", 15, start=n)
        router.wait_line(r"^active backup 198\.18\.0\.12$", 2, start=n)
        assert router.status()["backup"]["up"]
        before2 = rx_packets(pop2)
        assert download_ok(lab)
        assert rx_packets(pop2) > before2
        # keepalives or probes still reach pop1, but no traffic is accepted there
        assert router.status()["primary"]["sent"] > router.status()["primary"]["answered"]

        n = len(router.lines)
        lab.svc_http("pop1", True)
        router.wait_line(r"^tunnel primary 198\.18\.0\.11 up \(2 \w+ answered\)$", 15, start=n)
        router.wait_line(r"^active primary 198\.18\.0\.11$", 2, start=n)
        before1 = rx_packets(pop1)
        assert download_ok(lab)
        assert rx_packets(pop1) > before1
    finally:
        lab.svc_http("pop1", True)
        lab.stop_router(router)

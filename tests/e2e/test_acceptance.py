"""When a POP accepts tunnels, end to end: health flips reach the data path
fast, new tunnels are refused as GRE AUTH FAILURE while the services are
down (counted, logged once, published), and the operators' acceptance modes
no-new and drain do what they say.

The lab: router with branch (198.18.0.2) and branch2 (198.18.0.3), pop1
running healthd, gatewayd and statsd. Health is probed every 500 ms with a
400 ms timeout and fall 3 (tests/lab/grepop.conf.in).
"""

import json
import os
import re
import sys
import time

import pytest
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as lablib  # noqa: E402
from conftest import module_prefix  # noqa: E402
from pop import Pop, wait_for  # noqa: E402

SITES = [{"name": "branch", "source_ip": "198.18.0.2"},
         {"name": "branch2", "source_ip": "198.18.0.3"}]
KEEPALIVE = ["--keepalive", "1,3"]


@pytest.fixture(scope="module")
def env(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    lab = lablib.standard(module_prefix(request), build_dir, backup=False, branch2=True)
    try:
        pop = Pop(lab, "pop1", sites=SITES, statsd=True)
        wait_for(lambda: pop.shm().health("swg") == "up", 10, what="services up")
        router = lab.start_router(KEEPALIVE, site="branch", backup=None)
        wait_for(lambda: (router.status() or {}).get("active") == "primary", 10,
                 what="tunnel up")
        yield lab, pop, router
    finally:
        lab.close()


def subscribe_events(lab):
    feed, _, _ = lab.stats_ports("pop1")
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, b"grepop.v1.event")
    sock.connect(f"tcp://127.0.0.1:{feed}")
    time.sleep(0.5)		# the subscription reaches statsd
    return sock


def next_event(sock, type_, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sock.poll(100):
            ev = json.loads(sock.recv_multipart()[1])
            if ev["type"] == type_:
                return ev
    raise AssertionError(f"no {type_} event within {timeout} s")


def test_health_flip_withholds_keepalives_fast(env):
    lab, pop, _ = env
    try:
        before = pop.drops("branch")["not_serving"]
        stopped = time.monotonic()
        lab.svc_http("pop1", False)
        wait_for(lambda: pop.drops("branch")["not_serving"] > before, 10, interval=0.02,
                 what="a keepalive withheld")
        took = time.monotonic() - stopped
        # fall x interval (3 x 500 ms) + the check's timeout (400 ms) + one
        # keepalive period (1 s), and some slack for a loaded machine.
        assert took < 1.5 + 0.4 + 1.0 + 1.0, took
    finally:
        lab.svc_http("pop1", True)
    wait_for(lambda: pop.shm().health("swg") == "up", 10, what="services up again")


def test_new_tunnel_refused_as_auth_failure(env):
    lab, pop, _ = env
    events = subscribe_events(lab)
    router2 = None
    try:
        lab.svc_http("pop1", False)
        wait_for(lambda: pop.shm().health("swg") == "down", 10, what="swg down")
        router2 = lab.start_router(KEEPALIVE, site="branch2", backup=None)
        wait_for(lambda: pop.drops("branch2")["auth_failure"] >= 2, 10, what="refusals")
        ev = next_event(events, "gre.auth_failure")
        assert ev["site"] == "branch2"
        log = pop.log("gatewayd")
        assert len(re.findall(r"site branch2: GRE AUTH FAILURE", log)) == 1	# once a minute
        assert pop.site("branch2")["established_ns"] == 0
        assert router2.status()["primary"]["answered"] == 0	# nothing came back

        lab.svc_http("pop1", True)	# healthy again: the next packet establishes it
        wait_for(lambda: router2.status()["primary"]["answered"] > 0, 15,
                 what="branch2's keepalives answered")
        assert pop.site("branch2")["established_ns"] > 0
    finally:
        events.close()
        lab.svc_http("pop1", True)
        if router2:
            lab.stop_router(router2)


def test_no_new_serves_established_and_refuses_new(env):
    lab, pop, router = env
    # A site that never had a tunnel here: branch2's router, under a new name.
    assert pop.ctl({"command": "site.delete", "names": ["branch2"]})["ok"]
    assert pop.ctl({"command": "site.add", "site": {"name": "late",
                                                    "source_ip": "198.18.0.3"}})["ok"]
    late = None
    try:
        assert pop.ctl({"command": "pop.accept", "mode": "no-new"})["ok"]
        assert pop.shm().accept_mode() == "no-new"
        keepalives = pop.site("branch")["keepalives"]
        late = lab.start_router(KEEPALIVE, site="branch2", backup=None)
        wait_for(lambda: pop.drops("late")["auth_failure"] >= 2, 10, what="late refused")
        wait_for(lambda: pop.site("branch")["keepalives"] >= keepalives + 2, 10,
                 what="the established site's keepalives still answered")
        assert router.status()["primary"]["up"]
        assert late.status()["primary"]["answered"] == 0
    finally:
        assert pop.ctl({"command": "pop.accept", "mode": "accept"})["ok"]
        if late:
            lab.stop_router(late)
        pop.ctl({"command": "site.delete", "names": ["late"]})
        pop.ctl({"command": "site.add", "site": {"name": "branch2", "source_ip": "198.18.0.3"}})


def test_drain_withholds_keepalives_but_carries_traffic(env):
    lab, pop, router = env
    try:
        assert pop.ctl({"command": "pop.accept", "mode": "drain"})["ok"]
        withheld = pop.drops("branch")["not_serving"]
        rx = pop.site("branch")["rx_packets"]
        # The router still sends here until it notices: that traffic is served.
        out = lab.run("branch", ["curl", "-s", "-m", "3", "-o", "/dev/null", "-w",
                                 "%{http_code}", f"http://{lablib.SVC_IP}/healthz"], check=False)
        assert out == "200"
        assert pop.site("branch")["rx_packets"] > rx
        wait_for(lambda: pop.drops("branch")["not_serving"] > withheld, 5,
                 what="keepalive withheld")
        wait_for(lambda: not router.status()["primary"]["up"], 10, what="router moves away")
        with open(os.path.join(lab.pop_dir("pop1"), "lib", "accept")) as f:
            assert f.read().strip() == "drain"	# survives a restart
    finally:
        assert pop.ctl({"command": "pop.accept", "mode": "accept"})["ok"]
    wait_for(lambda: router.status()["primary"]["up"], 15, what="router back")

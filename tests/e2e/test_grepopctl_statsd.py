"""grepopctl and the stats feed end to end: real gatewayd, healthd and statsd
in the lab, traffic through a real tunnel, and what operators and
dashboards see of it: site list and show with plausible throughput, pop and
health show, the feed's events for keepalive loss and recovery, watch.
"""

import json
import os
import sys
import threading
import time

import pytest
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as lablib  # noqa: E402
from conftest import module_prefix  # noqa: E402
from grepopctl_run import run_ctl  # noqa: E402
from pop import Pop, wait_for  # noqa: E402

SITES = [
    {"name": "branch", "source_ip": "198.18.0.2", "traffic_type": "mixed"},
    {"name": "quiet", "source_ip": "198.18.0.60", "keepalive": "no"},
]


@pytest.fixture(scope="module")
def env(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    lab = lablib.standard(module_prefix(request), build_dir, backup=False)
    try:
        pop = Pop(lab, "pop1", sites=SITES, statsd=True)
        wait_for(lambda: pop.shm().health("swg") == "up", 10, what="services up")
        router = lab.start_router(["--keepalive", "1,3"], backup=None)
        wait_for(lambda: (router.status() or {}).get("active") == "primary", 10,
                 what="tunnel up")
        yield [lab, pop, router]
    finally:
        lab.close()


def ctl(pop, *args):
    return run_ctl(pop.conf, *args)


def listed(pop, name):
    r = ctl(pop, "--json", "site", "list")
    assert r.rc == 0, r
    return {s["name"]: s for s in r.json["sites"]}[name]


def test_site_list_shows_throughput(env):
    lab, pop, _ = env
    dl = lab.popen("branch", ["curl", "-s", "-m", "20", "--limit-rate", "2M", "-o", "/dev/null",
                              f"http://{lablib.SVC_IP}/blob/30000000"], name="dl")
    try:
        # 2 MB/s is 16,000 Kbps toward the branch; allow for curl's pacing.
        site = wait_for(lambda: (lambda s: s if 8000 < s["tx_kbps"] < 40000 else None)(
            listed(pop, "branch")), 10, what="plausible tx_kbps")
        assert site["status"] == "up" and site["keepalive_status"] == "seen"
        assert site["tunnel"] == "established" and site["traffic_type"] == "mixed"
        table = ctl(pop, "site", "list").stdout
        assert table.splitlines()[0].split()[:3] == ["NAME", "SOURCE", "IP"]
        assert "branch" in table and "page 1 of 1 (2 sites)" in table
    finally:
        dl.stop()


def test_filters_and_show(env):
    lab, pop, _ = env
    r = ctl(pop, "--json", "site", "list", "--status", "down")
    assert [s["name"] for s in r.json["sites"]] == ["quiet"]	# no tunnel, no keepalives
    r = ctl(pop, "--json", "site", "list", "--traffic-type", "mixed")
    assert [s["name"] for s in r.json["sites"]] == ["branch"]
    r = ctl(pop, "site", "show", "branch")
    assert r.rc == 0 and "198.18.0.2" in r.stdout and "auth_failure" in r.stdout
    r = ctl(pop, "site", "show", "nope")
    assert r.rc == 1


def test_pop_and_health_show(env):
    lab, pop, _ = env
    r = ctl(pop, "--json", "pop", "show")
    assert r.rc == 0, r
    assert r.json["gateway_ip"] == "198.18.0.11" and r.json["accept_mode"] == "accept"
    assert r.json["services"]["swg"]["health"] == "up"
    r = ctl(pop, "health", "show")
    assert r.rc == 0 and "swg" in r.stdout and "up" in r.stdout


def test_drain_shows_everywhere(env):
    lab, pop, router = env
    try:
        assert ctl(pop, "pop", "drain").rc == 0
        wait_for(lambda: not ctl(pop, "--json", "pop", "show").json["accepting_new_tunnels"],
                 5, what="not accepting")
        # Draining withholds keepalives: the router gives up on the POP.
        wait_for(lambda: not router.status()["primary"]["up"], 15, what="tunnel down")
    finally:
        assert ctl(pop, "pop", "accept").rc == 0
    wait_for(lambda: router.status()["primary"]["up"], 15, what="tunnel back up")


class FeedEvents:
    """Collects the feed's events in a thread until stopped."""

    def __init__(self, endpoint):
        self.events = []
        self._stop = False
        self._sock = zmq.Context.instance().socket(zmq.SUB)
        self._sock.setsockopt(zmq.SUBSCRIBE, b"grepop.v1.event")
        self._sock.setsockopt(zmq.RCVTIMEO, 200)
        self._sock.connect(endpoint)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                _, body = self._sock.recv_multipart()
            except zmq.Again:
                continue
            self.events.append(json.loads(body))

    def seen(self, type_, site=None):
        return any(e["type"] == type_ and site in (None, e.get("site")) for e in self.events)

    def stop(self):
        self._stop = True
        self._thread.join(2)
        self._sock.close()


def test_feed_events_for_keepalive_loss_and_recovery(env):
    lab, pop, router = env
    feed, _, _ = lab.stats_ports("pop1")
    events = FeedEvents(f"tcp://127.0.0.1:{feed}")
    try:
        time.sleep(0.5)		# the subscription reaches statsd
        lab.stop_router(router)	# the router goes away: its keepalives stop
        wait_for(lambda: events.seen("keepalive.not_seen", "branch"), 25,
                 what="keepalive.not_seen")
        # One sweep derives both events, but they are two messages: the second
        # may still be on its way when the first is seen.
        wait_for(lambda: events.seen("site.down", "branch"), 2, what="site.down")
        env[2] = lab.start_router(["--keepalive", "1,3"], backup=None)
        wait_for(lambda: events.seen("keepalive.seen", "branch"), 15, what="keepalive.seen")
        wait_for(lambda: events.seen("site.up", "branch"), 2, what="site.up")
        assert all("seq" in e and e["pop"] == "pop1" for e in events.events)
    finally:
        events.stop()


def test_events_and_watch_commands(env):
    lab, pop, _ = env
    r = ctl(pop, "watch", "--count", "3")
    assert r.rc == 0 and len(r.stdout.splitlines()) == 3, r
    done = {}

    def run_events():
        done["r"] = run_ctl(pop.conf, "--json", "events", "--seconds", "4")

    t = threading.Thread(target=run_events)
    t.start()
    time.sleep(1)
    assert pop.ctl({"command": "site.disable", "names": ["quiet"]})["ok"]
    t.join(15)
    assert pop.ctl({"command": "site.enable", "names": ["quiet"]})["ok"]
    r = done["r"]
    assert r.rc == 0, r
    assert {"type": "site.disabled", "site": "quiet"}.items() <= next(
        e for e in r.json_lines if e["type"] == "site.disabled").items()

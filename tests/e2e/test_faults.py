"""Faults end to end: daemons killed with SIGKILL while traffic flows,
configurations that fail to load, a state file of another layout, abuse of
the control socket.

The lab: router with two sites. branch (198.18.0.2) sends keepalives every
second, so a POP that withholds them is seen at once; branch2 (198.18.0.3)
sends none, so its tunnel stays up whatever happens to health and its ping
shows whether the data path is affected.
"""

import json
import os
import re
import signal
import sys
import time

import pytest
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as lablib  # noqa: E402
from conftest import module_prefix  # noqa: E402
from pop import Pop, wait_for  # noqa: E402
from shmlayout import OFF_LAYOUT_VERSION  # noqa: E402

SITES = [
    {"name": "branch", "source_ip": "198.18.0.2"},
    {"name": "branch2", "source_ip": "198.18.0.3"},
]


@pytest.fixture(scope="module")
def env(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    lab = lablib.standard(module_prefix(request), build_dir, backup=False, branch2=True)
    try:
        pop = Pop(lab, "pop1", sites=SITES)
        wait_for(lambda: services_up(pop), 10, what="services up")
        routers = {
            "branch": lab.start_router(["--keepalive", "1,3"], site="branch", backup=None),
            "branch2": lab.start_router([], site="branch2", backup=None),
        }
        wait_for(lambda: primary_up(routers["branch"]), 10, what="branch's tunnel up")
        yield lab, pop, routers
    finally:
        lab.close()


def services_up(pop):
    return pop.shm().health("swg") == "up" and pop.shm().health("cfw") == "up"


def primary_up(router):
    return (router.status() or {}).get("active") == "primary"


def ping(lab, host="branch2", count=5, interval="0.1"):
    """COUNT pings from HOST to the service; True if none was lost."""
    out = lab.run(host, ["ping", "-n", "-c", str(count), "-i", interval, "-W", "2",
                         lablib.SVC_IP], check=False, timeout=count + 10)
    return f"{count} received" in out


def pinger(lab, count, host="branch2"):
    """A steady ping from HOST through its tunnel, in the background."""
    return lab.popen(host, ["ping", "-n", "-c", str(count), "-i", "0.1", "-W", "1",
                            lablib.SVC_IP], name=f"ping-{host}")


def replies(proc):
    return sum(1 for line in proc.lines if "bytes from" in line)


def kill9(pop, daemon):
    """SIGKILL DAEMON (ip netns exec became it) and forget the process."""
    proc = pop.procs[daemon]
    os.kill(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait(timeout=5)
    assert pop.stop(daemon) == -signal.SIGKILL


def flat_counters(pop):
    """Every site's counters, flat: 'SITE.rx_packets', 'SITE.drops.REASON'."""
    out = {}
    for name, site in pop.shm().sites().items():
        for key in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "keepalives", "probes"):
            out[f"{name}.{key}"] = site[key]
        for reason, v in site["drops"].items():
            out[f"{name}.drops.{reason}"] = v
    return out


def nft_table_handle(lab):
    """The handle of table ip grepop: a table created again gets a new one."""
    out = json.loads(lab.run("pop1", ["nft", "-j", "list", "table", "ip", "grepop"]))
    return next(i["table"]["handle"] for i in out["nftables"] if "table" in i)


def test_gatewayd_killed_while_traffic_flows(env):
    lab, pop, routers = env
    flow = pinger(lab, 400)
    wait_for(lambda: replies(flow) >= 5, 10, what="traffic through branch2's tunnel")
    before = flat_counters(pop)
    table_before = nft_table_handle(lab)
    kill9(pop, "gatewayd")
    # The rules and sets outlive the process; a new start replaces them.
    pop.start("gatewayd")
    after = flat_counters(pop)
    lost = {k: (before[k], after.get(k)) for k in before if after.get(k, -1) < before[k]}
    assert lost == {}, lost
    n = replies(flow)
    wait_for(lambda: replies(flow) >= n + 5, 10, what="traffic again after the restart")
    wait_for(lambda: primary_up(routers["branch"]), 10, what="branch's tunnel up")
    assert ping(lab, "branch")
    assert nft_table_handle(lab) != table_before
    pop.nft_drop_counter()	# the rule for unknown sources is back
    text = lab.run("pop1", ["nft", "list", "set", "ip", "grepop", "sites"])
    assert "198.18.0.2" in text and "198.18.0.3" in text, text
    after = flat_counters(pop)
    assert after["branch2.rx_packets"] > before["branch2.rx_packets"]
    flow.stop()


def test_healthd_killed_fails_closed_then_recovers(env):
    lab, pop, routers = env
    wait_for(lambda: primary_up(routers["branch"]), 10, what="branch's tunnel up")
    flow = pinger(lab, 60)
    wait_for(lambda: replies(flow) >= 3, 10, what="traffic through branch2's tunnel")
    log_mark = len(pop.log("gatewayd"))
    withheld = pop.drops("branch")["not_serving"]
    with open(pop.conf) as f:
        interval = int(re.search(r"health = \{\s*interval_ms = (\d+);", f.read()).group(1))
    kill9(pop, "healthd")
    killed = time.monotonic()
    # Stale after 3 health intervals; the next keepalive (one a second) is
    # withheld; 1 s more for a loaded machine.
    wait_for(lambda: pop.drops("branch")["not_serving"] > withheld, 10,
             what="branch's keepalives withheld")
    assert time.monotonic() - killed < 3 * interval / 1000 + 2
    wait_for(lambda: "healthd heartbeat stopped" in pop.log("gatewayd")[log_mark:], 5,
             what="gatewayd logs the stopped heartbeat")
    assert " 0% packet loss" in flow.wait_line("packets transmitted", 20), flow.lines
    keepalives = pop.site("branch")["keepalives"]
    pop.start("healthd")
    wait_for(lambda: services_up(pop), 10, what="services up again")
    wait_for(lambda: pop.site("branch")["keepalives"] > keepalives, 10,
             what="keepalives answered again")
    wait_for(lambda: "healthd heartbeat is back" in pop.log("gatewayd")[log_mark:], 5,
             what="gatewayd logs the heartbeat back")
    wait_for(lambda: primary_up(routers["branch"]), 10, what="branch's tunnel up again")
    assert ping(lab, "branch")


def test_statsd_killed_data_path_unaffected(env):
    lab, pop, _ = env
    if not os.access(lab.binary("statsd"), os.X_OK):
        pytest.skip(f"{lab.binary('statsd')} is not built: build statsd to run this test")
    pop.start("statsd")
    wait_for(lambda: pop.shm().statsd_heartbeat_ns(), 10, what="statsd's heartbeat")
    flow = pinger(lab, 30)
    wait_for(lambda: replies(flow) >= 3, 10, what="traffic")
    kill9(pop, "statsd")
    assert " 0% packet loss" in flow.wait_line("packets transmitted", 20), flow.lines
    assert pop.procs["gatewayd"].alive() and pop.procs["healthd"].alive()


def sighup(pop, daemon):
    os.kill(pop.procs[daemon].popen.pid, signal.SIGHUP)


BAD_CONFS = [
    # (what is wrong, text appended or substituted, words of the message)
    ("syntax", lambda t: t + "\nbroken = ;\n", "syntax error"),
    ("value", lambda t: t.replace("tunnel_mtu = 1476", "tunnel_mtu = 20000"),
     "pop.tunnel_mtu: 20000 is out of range"),
]


@pytest.mark.parametrize("what,breaks,words", BAD_CONFS, ids=[b[0] for b in BAD_CONFS])
def test_bad_config_on_sighup_keeps_running_state(env, what, breaks, words):
    lab, pop, _ = env
    with open(pop.conf) as f:
        good = f.read()
    sites = [s["name"] for s in pop.ctl({"command": "site.list"})["sites"]]
    marks = {d: len(pop.log(d)) for d in ("gatewayd", "healthd")}
    beat = pop.shm().heartbeat_ns()
    try:
        with open(pop.conf, "w") as f:
            f.write(breaks(good))
        reply = pop.ctl({"command": "reload"})
        assert reply["ok"] is False and words in reply["error"], reply
        for daemon in ("gatewayd", "healthd"):
            sighup(pop, daemon)
        wait_for(lambda: "reload refused, still running the previous configuration" in
                 pop.log("gatewayd")[marks["gatewayd"]:], 5, what="gatewayd's refusal")
        wait_for(lambda: "keeping the previous configuration" in
                 pop.log("healthd")[marks["healthd"]:], 5, what="healthd's refusal")
        for daemon in ("gatewayd", "healthd"):
            assert words in pop.log(daemon)[marks[daemon]:], pop.log(daemon)
            assert os.path.basename(pop.conf) in pop.log(daemon)[marks[daemon]:]
            assert pop.procs[daemon].alive()
        assert [s["name"] for s in pop.ctl({"command": "site.list"})["sites"]] == sites
        wait_for(lambda: pop.shm().heartbeat_ns() > beat, 5, what="healthd still beating")
        assert services_up(pop)
        assert ping(lab)
    finally:
        with open(pop.conf, "w") as f:
            f.write(good)
    assert pop.ctl({"command": "reload"})["ok"]


def ctl_raw(pop, payload, timeout_ms=5000):
    """Send PAYLOAD (bytes) on a new REQ socket; the reply as a dict, or None."""
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.connect("ipc://" + pop.path("gatewayd.ctl"))
    try:
        sock.send(payload)
        return json.loads(sock.recv())
    except zmq.Again:
        return None
    finally:
        sock.close()


CTL_ABUSE = [
    ("malformed", b'{"command": "site.list"', "not a JSON object"),
    ("array", b'["site.list"]', "not a JSON object"),
    ("string", b'"site.list"', "not a JSON object"),
    ("number", b"42", "not a JSON object"),
    ("null", b"null", "not a JSON object"),
    ("empty", b"", "not a JSON object"),
    ("no_command", b'{"cmd": "site.list"}', "no \"command\""),
    ("command_not_string", b'{"command": 7}', "no \"command\""),
    ("nul_bytes", b'{"command": "site.list\x00"}', "not a JSON object"),
    ("garbage_1mb", os.urandom(1 << 20), "not a JSON object"),
    ("deep_nesting", b"[" * 100000 + b"]" * 100000, "not a JSON object"),
]


@pytest.mark.parametrize("what,payload,words", CTL_ABUSE, ids=[c[0] for c in CTL_ABUSE])
def test_control_survives_bad_requests(env, what, payload, words):
    lab, pop, _ = env
    reply = ctl_raw(pop, payload)
    assert reply is not None and reply["ok"] is False and words in reply["error"], reply
    assert pop.ctl({"command": "site.list"})["ok"]
    assert ping(lab, count=3, interval="0.05")


def test_control_refuses_70mb_without_dying(env):
    lab, pop, _ = env
    # Above the 64 MB limit, libzmq drops the connection: no reply, no parse.
    assert ctl_raw(pop, b" " * (70 << 20), timeout_ms=3000) is None
    assert pop.procs["gatewayd"].alive()
    assert pop.ctl({"command": "site.list"})["ok"]
    assert ping(lab)


def test_control_many_clients_at_once(env):
    lab, pop, _ = env
    ctx = zmq.Context.instance()
    socks = []
    try:
        for i in range(50):
            s = ctx.socket(zmq.REQ)
            s.setsockopt(zmq.LINGER, 0)
            s.connect("ipc://" + pop.path("gatewayd.ctl"))
            socks.append(s)
        for i, s in enumerate(socks):
            s.send(json.dumps({"command": "site.list"} if i % 2 else
                              {"command": "nope"}).encode())
        poller = zmq.Poller()
        for s in socks:
            poller.register(s, zmq.POLLIN)
        replies_by_socket = {}
        deadline = time.monotonic() + 10
        while len(replies_by_socket) < len(socks) and time.monotonic() < deadline:
            for s, _ in poller.poll(200):
                replies_by_socket[socks.index(s)] = json.loads(s.recv())
                poller.unregister(s)
        assert len(replies_by_socket) == 50
        for i, reply in replies_by_socket.items():
            if i % 2:
                assert reply["ok"] and len(reply["sites"]) == 2, reply
            else:
                assert reply["ok"] is False and "unknown command" in reply["error"], reply
    finally:
        for s in socks:
            s.close()
    assert ping(lab)


def test_state_file_of_another_layout_is_refused(env):
    """Last in the module: it stops the POP."""
    lab, pop, routers = env
    state = pop.path("state")
    for daemon in ("gatewayd", "healthd"):
        pop.stop(daemon)
    with open(state, "r+b") as f:
        f.seek(OFF_LAYOUT_VERSION)
        f.write((0).to_bytes(4, "little"))
    pop._shm = None
    for daemon in ("gatewayd", "healthd"):
        proc = lab.popen("pop1", [lab.binary(daemon), "-c", pop.conf], name=f"old-{daemon}")
        assert proc.popen.wait(timeout=10) == 1, proc.log()
        log = proc.log()
        assert "another layout version" in log, log
        assert "remove the state file and start again" in log, log
    with open(state, "rb") as f:
        f.seek(OFF_LAYOUT_VERSION)
        assert f.read(4) == b"\0\0\0\0"	# refused, not overwritten
    # The way forward works.
    os.unlink(state)
    pop.start("healthd")
    wait_for(lambda: os.path.exists(state), 5, what="a new state file")
    pop.start("gatewayd")
    wait_for(lambda: ctl_raw(pop, b'{"command": "site.list"}', 500), 5, what="gatewayd")
    wait_for(lambda: services_up(pop), 10, what="services up")
    wait_for(lambda: primary_up(routers["branch"]), 15, what="branch's tunnel up")
    assert ping(lab)

"""End-to-end tests of statsd: the real binary on loopback, a temporary
runtime directory, and this test playing gatewayd and healthd by writing
the shared memory through shmlayout.py.

No network namespace is needed: every endpoint is on 127.0.0.1 or an ipc://
socket in the temporary directory.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
import zmq

import shmlayout

POP = "e2e1"
INTERVAL_MS = 200
KEEPALIVE_WINDOW_S = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_conf(path, rundir, ports, extra=""):
    with open(path, "w") as f:
        f.write(f"""
pop = {{ name = "{POP}"; gateway_ip = "192.0.2.1"; location = "lab"; backup_pops = ( "ams1" ); }};
runtime_dir = "{rundir}";
state_dir = "{rundir}";
sites_file = "{rundir}/sites.csv";
gateway = {{ workers = 2; max_sites = 64; keepalive_window_s = {KEEPALIVE_WINDOW_S};
            tunnel_idle_s = 3; }};
health = {{ interval_ms = 100; timeout_ms = 50; }};
stats = {{ interval_ms = {INTERVAL_MS}; feed = "tcp://127.0.0.1:{ports[0]}";
          snapshot = "tcp://127.0.0.1:{ports[1]}"; http = "127.0.0.1:{ports[2]}"; }};
{extra}
""")


class Statsd:
    def __init__(self, build, env=None, stale_socket=False):
        self.dir = tempfile.mkdtemp(prefix="statsd-e2e.")
        if stale_socket:
            # What a statsd killed with SIGKILL leaves behind.
            stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            stale.bind(os.path.join(self.dir, "events.sock"))
            stale.close()
        self.ports = [free_port() for _ in range(3)]
        self.conf = os.path.join(self.dir, "grepop.conf")
        write_conf(self.conf, self.dir, self.ports)
        self.log = open(os.path.join(self.dir, "statsd.log"), "w+")
        self.proc = subprocess.Popen([os.path.join(build, "statsd"), "-c", self.conf],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))
        self.feed = f"tcp://127.0.0.1:{self.ports[0]}"
        self.snapshot = f"tcp://127.0.0.1:{self.ports[1]}"
        self.http = f"http://127.0.0.1:{self.ports[2]}"
        self.ctx = zmq.Context()
        deadline = time.monotonic() + 10
        while True:
            assert self.proc.poll() is None, self.read_log()
            try:
                self.get("/api/v1/pop")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "statsd did not start: " + self.read_log()
                time.sleep(0.05)
        self.shm = shmlayout.Shm(os.path.join(self.dir, "state"))

    def read_log(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def get(self, path):
        with urllib.request.urlopen(self.http + path, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read()

    def get_json(self, path):
        try:
            status, _, body = self.get(path)
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        return status, json.loads(body)

    def subscribe(self, prefix="grepop.v1."):
        sub = self.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt_string(zmq.SUBSCRIBE, prefix)
        sub.connect(self.feed)
        time.sleep(0.3)     # the subscription reaches the PUB socket
        return sub

    def stop(self):
        self.shm.close()
        self.ctx.destroy(linger=0)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def statsd(build_dir):
    s = Statsd(build_dir)
    yield s
    s.stop()


def receive(sub, match, timeout=5.0, limit=100000):
    """The first [topic, message] for which match(topic, msg) is true."""
    deadline = time.monotonic() + timeout
    for _ in range(limit):
        left = deadline - time.monotonic()
        if left <= 0 or not sub.poll(int(left * 1000)):
            break
        topic, body = sub.recv_multipart()
        msg = json.loads(body)
        if match(topic.decode(), msg):
            return topic.decode(), msg
    pytest.fail("no matching feed message within %.1f s" % timeout)


def keep_alive(shm, slot, seconds, bytes_per_tick=0):
    """Act as gatewayd for SECONDS: keepalives and traffic every 50 ms.
    Returns the rate really written, in kbps."""
    start = time.monotonic()
    end = start + seconds
    written = 0
    while time.monotonic() < end:
        shm.set_time(slot, "last_keepalive_ns")
        shm.set_time(slot, "last_seen_ns")
        if bytes_per_tick:
            shm.add(slot, "rx_bytes", bytes_per_tick, lane=1)
            shm.add(slot, "rx_packets", 10, lane=1)
            written += bytes_per_tick
        time.sleep(0.05)
    return written * 8 / 1000 / (time.monotonic() - start)


def test_check_config(build_dir, statsd):
    r = subprocess.run([os.path.join(build_dir, "statsd"), "-n", "-c", statsd.conf],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert f'name = "{POP}"' in r.stdout


def test_feed_site_and_pop(statsd):
    shm = statsd.shm
    shm.write_site(0, "branch-1", source_ip="198.18.0.2", key=42, generation=5)
    shm.set_time(0, "established_ns")
    sub = statsd.subscribe()
    # about 2000 kbps: 12500 bytes every 50 ms
    kbps = keep_alive(shm, 0, 1.5, bytes_per_tick=12500)
    rates = []
    for _ in range(4):
        _, msg = receive(sub, lambda t, m: t == "grepop.v1.site.branch-1" and m["rx_kbps"] > 0)
        rates.append(msg["rx_kbps"])
    # The first interval may be partly idle; the busiest one matches the writer.
    assert kbps / 2 < max(rates) < kbps * 2, (kbps, rates)
    assert 0 < msg["rx_kbps_5m"] < max(rates)
    assert msg["pop"] == POP and isinstance(msg["seq"], int)
    assert msg["status"] == "up" and msg["keepalive_status"] == "seen"
    assert msg["tunnel"] == "established" and msg["established_since"]
    assert msg["key"] == 42 and msg["source_ip"] == "198.18.0.2"
    assert msg["services"] == "swg+cfw" and msg["tenant"] == "default"
    assert msg["pop_backup"] == ["ams1"]
    assert set(msg["drops"]) == set(shmlayout.DROPS[:shmlayout.SITE_DROPS])
    assert msg["time"].endswith("Z") and msg["time_ns"] > 0
    _, pop = receive(sub, lambda t, m: t == "grepop.v1.pop")
    assert pop["name"] == POP and pop["sites"]["total"] >= 1
    assert pop["usage"]["user"]["sites"] >= 1
    assert pop["accept_mode"] == "accept" and pop["accepting_new_tunnels"] is True
    sub.close()


def test_seq_increases_across_topics(statsd):
    sub = statsd.subscribe()
    seqs = [receive(sub, lambda t, m: True)[1]["seq"] for _ in range(5)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    sub.close()


def test_event_republished(statsd):
    sub = statsd.subscribe("grepop.v1.event")
    push = statsd.ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.connect("ipc://" + os.path.join(statsd.dir, "events.sock"))
    push.send(json.dumps({"type": "service.down", "time_ns": shmlayout.now_ns(),
                          "service": "swg", "from": "up", "to": "down",
                          "reason": "HTTP 503"}).encode())
    push.send(b"not json")      # refused, statsd carries on
    _, ev = receive(sub, lambda t, m: m.get("type") == "service.down")
    assert ev["pop"] == POP and isinstance(ev["seq"], int)
    assert ev["service"] == "swg" and ev["reason"] == "HTTP 503"
    assert ev["time"].endswith("Z")
    deadline = time.monotonic() + 3
    while "malformed events" not in statsd.read_log():
        assert time.monotonic() < deadline, "the bad frame was not reported"
        time.sleep(0.1)
    push.close()
    sub.close()


def test_site_down_derived(statsd):
    shm = statsd.shm
    shm.write_site(1, "branch-ka", source_ip="198.18.0.3")
    sub = statsd.subscribe()
    keep_alive(shm, 1, 0.8)
    receive(sub, lambda t, m: t == "grepop.v1.site.branch-ka" and m["status"] == "up")
    # Keepalives stop: down once the window has passed.
    _, ev = receive(sub, lambda t, m: t == "grepop.v1.event" and m.get("site") == "branch-ka"
                    and m["type"] == "site.down", timeout=KEEPALIVE_WINDOW_S + 3)
    assert ev["pop"] == POP
    _, msg = receive(sub, lambda t, m: t == "grepop.v1.site.branch-ka")
    assert msg["status"] == "down" and msg["keepalive_status"] == "not seen"
    # And back up.
    shm.set_time(1, "last_keepalive_ns")
    receive(sub, lambda t, m: t == "grepop.v1.event" and m.get("site") == "branch-ka"
            and m["type"] == "site.up")
    sub.close()


def test_snapshot(statsd):
    shm = statsd.shm
    shm.write_site(2, "branch-snap", source_ip="198.18.0.4", enabled=False)
    time.sleep(3 * INTERVAL_MS / 1000)
    dealer = statsd.ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(statsd.snapshot)
    dealer.send(b"snapshot")
    topics, msgs = [], []
    for _ in range(1000):
        assert dealer.poll(5000), "snapshot stalled after %s" % topics
        topic, body = dealer.recv_multipart()
        topics.append(topic.decode())
        msgs.append(json.loads(body))
        if topic == b"grepop.v1.snapshot.end":
            break
    assert topics[0] == "grepop.v1.pop"
    assert topics[-1] == "grepop.v1.snapshot.end"
    end_seq = msgs[-1]["seq"]
    sites = {m["name"]: m for t, m in zip(topics, msgs) if t.startswith("grepop.v1.site.")}
    assert {"branch-1", "branch-ka", "branch-snap"} <= set(sites)
    assert len(sites) == msgs[0]["sites"]["total"]
    assert sites["branch-snap"]["status"] == "disabled"
    # The POP message is the state as of the end marker's seq; each site's
    # message carries the seq current when it was built, never older.
    assert msgs[0]["seq"] == end_seq
    assert all(m["seq"] >= end_seq for m in sites.values())
    dealer.close()


def test_metrics(statsd):
    shm = statsd.shm
    shm.write_site(3, 'we"ird\\name', source_ip="198.18.0.5")
    shm.add_drop(0, "rate", 7, lane=1)
    shm.add_pop_drop("unknown_source", 3)
    shm.add_rx_queue_drops(40, lane=0)
    shm.add_rx_queue_drops(2, lane=1)
    shm.set_service("swg", "up")
    shm.healthd_heartbeat()
    time.sleep(3 * INTERVAL_MS / 1000)
    status, ctype, body = statsd.get("/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    text = body.decode()
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert 'grepop_site_drops_total{site="branch-1",reason="rate"} 7' in text
    assert 'grepop_site_up{site="we\\"ird\\\\name"}' in text
    assert 'grepop_pop_drops_total{reason="unknown_source"} 3' in text
    assert "\ngrepop_pop_rx_queue_drops_total 42\n" in text     # both lanes
    assert statsd.get_json("/api/v1/pop")[1]["totals"]["rx_queue_drops"] == 42
    assert 'grepop_service_up{service="swg"} 1' in text
    assert 'grepop_info{pop="%s"} 1' % POP in text
    for name in ("grepop_site_rx_bytes_total", "grepop_healthd_heartbeat_age_seconds"):
        assert text.count("# TYPE %s " % name) == 1
    assert "198.18." not in text    # no addresses in labels


def test_api_sites(statsd):
    shm = statsd.shm
    for i in range(10, 25):
        shm.write_site(i, "page-%02d" % i, source_ip="198.18.1.%d" % i,
                       traffic_type="iot" if i % 2 else "user", keepalive=False)
    time.sleep(3 * INTERVAL_MS / 1000)
    status, body = statsd.get_json("/api/v1/sites?name=page-&per_page=4&page=2")
    assert status == 200
    assert body["total"] == 15 and body["page"] == 2 and body["per_page"] == 4
    assert [s["name"] for s in body["sites"]] == ["page-14", "page-15", "page-16", "page-17"]
    status, body = statsd.get_json("/api/v1/sites?name=page-&traffic_type=iot&per_page=100")
    assert status == 200 and body["total"] == 7
    assert all(s["traffic_type"] == "iot" for s in body["sites"])
    status, body = statsd.get_json("/api/v1/sites?status=disabled")
    assert [s["name"] for s in body["sites"]] == ["branch-snap"]
    status, body = statsd.get_json("/api/v1/sites?name=page-&page=99")
    assert status == 200 and body["sites"] == [] and body["total"] == 15
    status, body = statsd.get_json("/api/v1/sites")
    assert body["per_page"] == 100 and body["total"] >= 18
    for bad in ("status=sideways", "page=0", "page=x", "per_page=100000", "traffic_type=",
                "colour=red"):
        status, body = statsd.get_json("/api/v1/sites?" + bad)
        assert status == 400 and "error" in body, bad
    status, body = statsd.get_json("/api/v1/pop")
    assert status == 200 and body["name"] == POP and body["healthd"] in ("alive", "stale")
    status, body = statsd.get_json("/nothing-here")
    assert status == 404 and "error" in body
    status, body = statsd.get_json("/api/v1/sites?order=desc&per_page=2")
    assert status == 200 and body["pages"] >= 1
    names = [s["name"] for s in body["sites"]]
    assert names == sorted(names, reverse=True)


def test_slow_subscriber(statsd):
    """A subscriber that never reads must not stall the scan loop."""
    slow = statsd.ctx.socket(zmq.SUB)
    slow.setsockopt(zmq.RCVHWM, 1)
    slow.setsockopt(zmq.RCVBUF, 4096)
    slow.setsockopt(zmq.LINGER, 0)
    slow.setsockopt_string(zmq.SUBSCRIBE, "")
    slow.connect(statsd.feed)
    shm = statsd.shm
    for i in range(30, 64):
        shm.write_site(i, "bulk-%02d" % i, source_ip="198.18.2.%d" % i)
    beats = []
    for _ in range(10):
        beats.append(shm.statsd_heartbeat_ns())
        time.sleep(0.3)
    assert all(b > a for a, b in zip(beats, beats[1:])), beats
    assert statsd.get_json("/api/v1/pop")[0] == 200
    slow.close()


def test_reload(statsd):
    """SIGHUP with a broken file keeps the running configuration."""
    with open(statsd.conf) as f:
        good = f.read()
    with open(statsd.conf, "w") as f:
        f.write(good + "\nstats = {\n")
    statsd.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert statsd.proc.poll() is None
    assert statsd.conf + ":" in statsd.read_log()
    assert statsd.get_json("/api/v1/pop")[1]["name"] == POP
    with open(statsd.conf, "w") as f:
        f.write(good)
    statsd.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "configuration reloaded" not in statsd.read_log():
        assert time.monotonic() < deadline, statsd.read_log()
        time.sleep(0.1)


def test_sigterm_clean_exit(build_dir):
    """Starts over a stale events socket file; exits 0 on SIGTERM."""
    s = Statsd(build_dir, stale_socket=True)
    try:
        push = s.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect("ipc://" + os.path.join(s.dir, "events.sock"))
        sub = s.subscribe("grepop.v1.event")
        push.send(json.dumps({"type": "pop.accept_mode", "mode": "drain"}).encode())
        _, ev = receive(sub, lambda t, m: m.get("type") == "pop.accept_mode")
        assert ev["mode"] == "drain" and ev["time_ns"] > 0
        push.close()
        sub.close()
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(10) == 0
    finally:
        s.stop()


def test_systemd_notify(build_dir):
    """READY=1 once serving, STATUS=, WATCHDOG=1 from the loop, STOPPING=1."""
    tmp = tempfile.mkdtemp(prefix="statsd-notify.")
    path = os.path.join(tmp, "notify.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(path)
    notify.settimeout(5)
    s = None
    try:
        s = Statsd(build_dir, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
        seen = []
        for _ in range(100):
            if "READY=1" in seen and "WATCHDOG=1" in seen and any(
                    m.startswith("STATUS=") for m in seen):
                break
            seen.extend(notify.recv(4096).decode().split("\n"))
        assert "READY=1" in seen and "WATCHDOG=1" in seen, seen
        assert "STATUS=0 sites, 0 up, 0 down" in seen, seen
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(10) == 0
        rest = []
        for _ in range(100):
            if "STOPPING=1" in rest:
                break
            rest.extend(notify.recv(4096).decode().split("\n"))
        assert "STOPPING=1" in rest
    finally:
        notify.close()
        if s:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)

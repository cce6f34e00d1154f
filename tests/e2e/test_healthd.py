"""End-to-end tests of healthd: the real binary against real servers on
loopback (an HTTP server for swg, a TCP listener for cfw), observed the way
the other processes observe it: the shared-memory file, the events socket
(a ZeroMQ PULL socket standing in for statsd), a NOTIFY_SOCKET standing in
for systemd, and its log on stderr. Every wait is bounded.
"""

import http.server
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest
import zmq

from shmlayout import Shm

BUILD = os.environ.get("GREPOP_BUILD", "build")
HEALTHD = os.path.join(BUILD, "healthd")

INTERVAL_MS = 200
TIMEOUT_MS = 150
RISE = 2
FALL = 3
SLACK_S = 1.0


class HealthServer:
    """/healthz answers STATUS; stop() makes the port refuse connections."""

    def __init__(self):
        self.status = 200
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                code = owner.status if self.path == "/healthz" else 404
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/healthz" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.running = True

    def stop(self):
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.running = False


class TcpListener:
    """Accepts and closes every connection until stopped."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
                conn.close()
            except (socket.timeout, OSError):
                continue

    def stop(self):
        if not self.done.is_set():
            self.done.set()
            self.thread.join(5)
            self.sock.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_conf(path, runtime_dir, checks, interval_ms=INTERVAL_MS):
    items = []
    for service, kind, target in checks:
        key = "url" if kind == "http" else "address"
        items.append('{ service = "%s"; type = "%s"; %s = "%s"; }' % (service, kind, key, target))
    with open(path, "w") as f:
        f.write("""pop = { name = "e2e1"; gateway_ip = "192.0.2.1"; };
runtime_dir = "%s";
gateway = { max_sites = 16; workers = 2; };
health = {
  interval_ms = %d; timeout_ms = %d; rise = %d; fall = %d;
  checks = ( %s );
};
""" % (runtime_dir, interval_ms, TIMEOUT_MS, RISE, FALL, ",\n    ".join(items)))


def wait_for(pred, timeout_s, step_s=0.02):
    """Poll PRED until it returns a true value or TIMEOUT_S passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step_s)


class Healthd:
    """One healthd process with its runtime directory and observers."""

    def __init__(self, checks, watchdog_usec=None):
        self.dir = tempfile.mkdtemp(prefix="hd-", dir="/tmp")
        self.conf = os.path.join(self.dir, "grepop.conf")
        write_conf(self.conf, self.dir, checks)
        self.ctx = zmq.Context()
        self.pull = self.ctx.socket(zmq.PULL)
        self.pull.bind("ipc://%s/events.sock" % self.dir)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(os.path.join(self.dir, "notify.sock"))
        self.notify.settimeout(0.05)
        self.notes = []
        # A datagram queue holds only net.unix.max_dgram_qlen (10) messages and
        # sd_notify blocks when it is full, as with a stuck systemd: keep reading.
        self.notes_lock = threading.Lock()
        self.reading = threading.Event()
        self.reader = threading.Thread(target=self._read_notify, daemon=True)
        self.reader.start()
        self.events = []
        self.log_path = os.path.join(self.dir, "healthd.log")
        self.proc = None
        self.shm = None
        self.watchdog_usec = watchdog_usec

    def start(self, args=()):
        env = dict(os.environ, NOTIFY_SOCKET=os.path.join(self.dir, "notify.sock"))
        env.pop("WATCHDOG_PID", None)
        if self.watchdog_usec:
            env["WATCHDOG_USEC"] = str(self.watchdog_usec)
        else:
            env.pop("WATCHDOG_USEC", None)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([HEALTHD, "-c", self.conf, *args],
                                         stdout=log, stderr=log, env=env)
        return self

    def attach(self):
        path = os.path.join(self.dir, "state")
        assert wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, 5)
        self.shm = Shm(path)
        return self.shm

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def count(self, text):
        return sum(1 for line in self.log().splitlines() if text in line)

    def _read_notify(self):
        while not self.reading.is_set():
            try:
                lines = self.notify.recv(4096).decode().split("\n")
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            with self.notes_lock:
                self.notes.extend(lines)

    def drain_notify(self):
        """Every notify line received so far, in order."""
        with self.notes_lock:
            return list(self.notes)

    def drain_events(self):
        while True:
            try:
                self.events.append(json.loads(self.pull.recv(zmq.NOBLOCK)))
            except zmq.Again:
                return self.events

    def health(self, service):
        return self.shm.health(service)

    def wait_health(self, service, state, timeout_s):
        start = time.monotonic()
        ok = wait_for(lambda: self.health(service) == state, timeout_s)
        assert ok, "%s not %s after %.1f s (is %s); log:\n%s" % (
            service, state, timeout_s, self.health(service), self.log())
        return time.monotonic() - start

    def signal(self, signo):
        self.proc.send_signal(signo)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode if self.proc else None

    def close(self):
        self.stop()
        if self.shm:
            self.shm.close()
        self.pull.close(0)
        self.ctx.term()
        self.reading.set()
        self.reader.join(5)
        self.notify.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def servers():
    web = HealthServer()
    tcp = TcpListener()
    yield web, tcp
    web.stop()
    tcp.stop()


@pytest.fixture
def daemons():
    made = []

    def make(checks, **kw):
        hd = Healthd(checks, **kw)
        made.append(hd)
        return hd

    yield make
    for hd in made:
        hd.close()


def rounds_s(n):
    return n * INTERVAL_MS / 1000.0


def test_swg_up_down_recover(servers, daemons):
    web, tcp = servers
    hd = daemons([("swg", "http", web.url), ("cfw", "tcp", tcp.address)]).start()
    hd.attach()

    hd.wait_health("swg", "up", rounds_s(RISE + 1) + SLACK_S)
    hd.wait_health("cfw", "up", rounds_s(RISE + 1) + SLACK_S)
    up_since = hd.shm.service("swg")["since_ns"]
    assert up_since > 0

    web.status = 503
    took = hd.wait_health("swg", "down", rounds_s(FALL + 1) + SLACK_S)
    # Not before FALL failed rounds: the hysteresis holds it up meanwhile.
    assert took >= rounds_s(FALL - 1)
    svc = hd.shm.service("swg")
    assert svc["since_ns"] > up_since
    assert svc["checks_failed"] >= FALL
    assert hd.health("cfw") == "up"

    web.status = 200
    hd.wait_health("swg", "up", rounds_s(RISE + 1) + SLACK_S)

    web.stop()
    hd.wait_health("swg", "down", rounds_s(FALL + 1) + SLACK_S)
    time.sleep(rounds_s(4))  # more failed rounds: still no new log line

    down_503 = "service swg: up -> down (HTTP 503 from %s)" % web.url
    refused = "service swg: up -> down (connect: Connection refused from %s)" % web.url
    assert hd.count(down_503) == 1, hd.log()
    assert hd.count("service swg: down -> up (all checks passed)") == 1, hd.log()
    assert hd.count("service swg: unknown -> up (all checks passed)") == 1, hd.log()
    assert hd.count(refused) == 1, hd.log()
    assert hd.count("service cfw:") == 1, hd.log()
    # Probe results are debug only: nothing per round at the default level.
    assert hd.count("check ") == 0

    # swg: up, down, up, down; cfw: up.
    assert wait_for(lambda: len(hd.drain_events()) >= 5, 3), hd.events
    events = [e for e in hd.events if e["service"] == "swg"]
    assert [(e["type"], e["from"], e["to"]) for e in events] == [
        ("service.up", "unknown", "up"), ("service.down", "up", "down"),
        ("service.up", "down", "up"), ("service.down", "up", "down")]
    assert events[1]["reason"] == "HTTP 503"
    assert events[3]["reason"] == "connect: Connection refused"
    assert all(e["time_ns"] > 0 for e in events)

    # Stopping leaves the health as it was: gatewayd judges by the heartbeat.
    assert hd.stop() == 0
    assert hd.health("swg") == "down"
    assert hd.health("cfw") == "up"


def test_cfw_tcp_and_several_checks(servers, daemons):
    web, tcp = servers
    other = TcpListener()
    try:
        hd = daemons([("cfw", "tcp", tcp.address), ("cfw", "tcp", other.address),
                      ("swg", "http", web.url)]).start()
        hd.attach()
        hd.wait_health("cfw", "up", rounds_s(RISE + 1) + SLACK_S)
        other.stop()  # one of two checks failing takes the service down
        hd.wait_health("cfw", "down", rounds_s(FALL + 1) + SLACK_S)
        assert hd.count("service cfw: up -> down (connect: Connection refused from %s)"
                        % other.address) == 1, hd.log()
        assert hd.health("swg") == "up"
    finally:
        other.stop()


def test_unchecked_service_is_up(servers, daemons):
    web, _ = servers
    hd = daemons([("swg", "http", web.url)]).start()
    hd.attach()
    hd.wait_health("cfw", "up", SLACK_S)
    assert hd.count("service cfw: unknown -> up (no check configured)") == 1


def test_heartbeat_advances_while_checks_hang(daemons):
    # A listener that never answers: every HTTP check hangs until its timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(256)
    url = "http://127.0.0.1:%d/healthz" % silent.getsockname()[1]
    try:
        hd = daemons([("swg", "http", url)]).start()
        shm = hd.attach()
        assert wait_for(lambda: shm.heartbeat_ns() > 0, 3), hd.log()
        beats = []
        for _ in range(6):
            beats.append(shm.heartbeat_ns())
            time.sleep(rounds_s(1.5))
        assert all(b2 > b1 for b1, b2 in zip(beats, beats[1:])), beats
        assert abs(beats[-1] / 1e9 - time.time()) < 2
        hd.wait_health("swg", "down", rounds_s(FALL + 1) + SLACK_S)
        assert hd.count("service swg: unknown -> down (timeout after %d ms from %s)"
                        % (TIMEOUT_MS, url)) == 1, hd.log()
    finally:
        silent.close()


def test_systemd_notify(servers, daemons):
    web, tcp = servers
    hd = daemons([("swg", "http", web.url), ("cfw", "tcp", tcp.address)],
                 watchdog_usec=1000000).start()
    hd.attach()
    hd.wait_health("swg", "up", rounds_s(RISE + 1) + SLACK_S)
    assert wait_for(lambda: "STATUS=swg up, cfw up" in hd.drain_notify(), 3), hd.notes
    notes = hd.drain_notify()
    assert "READY=1" in notes
    assert notes.index("READY=1") < notes.index("STATUS=swg up, cfw up")
    assert "WATCHDOG=1" in notes
    assert notes.index("READY=1") < notes.index("WATCHDOG=1")

    web.status = 503
    hd.wait_health("swg", "down", rounds_s(FALL + 1) + SLACK_S)
    assert wait_for(lambda: "STATUS=swg down (HTTP 503), cfw up" in hd.drain_notify(), 3)

    # The watchdog keeps coming, at least every half period.
    before = hd.drain_notify().count("WATCHDOG=1")
    time.sleep(1.2)
    assert hd.drain_notify().count("WATCHDOG=1") >= before + 2

    hd.signal(signal.SIGTERM)
    assert hd.proc.wait(5) == 0
    assert wait_for(lambda: "STOPPING=1" in hd.drain_notify(), 2), hd.notes
    assert hd.count("stopping on") == 1


def test_no_watchdog_without_watchdog_usec(servers, daemons):
    web, _ = servers
    hd = daemons([("swg", "http", web.url)]).start()
    hd.attach()
    assert wait_for(lambda: "READY=1" in hd.drain_notify(), 3)
    time.sleep(rounds_s(3))
    assert "WATCHDOG=1" not in hd.drain_notify()


def test_reload(servers, daemons):
    web, tcp = servers
    hd = daemons([("swg", "http", web.url), ("cfw", "tcp", "127.0.0.1:%d" % free_port())])
    hd.start()
    hd.attach()
    hd.wait_health("cfw", "down", rounds_s(FALL + 1) + SLACK_S)

    # A broken file: a warning with file:line, the old checks keep running.
    good = open(hd.conf).read()
    with open(hd.conf, "w") as f:
        f.write(good.replace("rise = %d;" % RISE, "rise = ;"))
    hd.signal(signal.SIGHUP)
    assert wait_for(lambda: hd.count("keeping the previous configuration"), 3), hd.log()
    line = [l for l in hd.log().splitlines() if "keeping the previous" in l][0]
    assert re.search(r"reload: %s:\d+: " % re.escape(hd.conf), line), line
    assert "warning" in line or line.startswith("<4>"), line
    assert hd.proc.poll() is None
    beat = hd.shm.heartbeat_ns()
    assert wait_for(lambda: hd.shm.heartbeat_ns() > beat, 2)

    # A good file: the cfw check now points at a live listener.
    write_conf(hd.conf, hd.dir, [("swg", "http", web.url), ("cfw", "tcp", tcp.address)])
    hd.signal(signal.SIGHUP)
    hd.wait_health("cfw", "up", rounds_s(RISE + 1) + SLACK_S)
    assert hd.count("configuration reloaded from %s" % hd.conf) == 1
    assert hd.health("swg") == "up"

    # Dropping cfw's check makes it UP at once (already up: no new line).
    write_conf(hd.conf, hd.dir, [("swg", "http", web.url)])
    hd.signal(signal.SIGHUP)
    assert wait_for(lambda: hd.count("configuration reloaded") == 2, 3)
    assert hd.health("cfw") == "up"
    assert hd.stop() == 0


def test_layout_mismatch_exits_1(daemons):
    hd = daemons([("swg", "tcp", "127.0.0.1:%d" % free_port())])
    state = os.path.join(hd.dir, "state")
    header = struct.pack("<QIIQ", 0x31504F5045524700, 99, 2, 4096)
    with open(state, "wb") as f:
        f.write(header.ljust(4096, b"\0"))
    hd.start()
    assert hd.proc.wait(5) == 1
    assert "another layout version" in hd.log()
    with open(state, "rb") as f:  # not touched
        assert struct.unpack_from("<I", f.read(12), 8)[0] == 99


def test_bad_config_exits_1(daemons):
    hd = daemons([("swg", "tcp", "127.0.0.1:1")])
    with open(hd.conf, "a") as f:
        f.write("health = oops\n")
    hd.start()
    assert hd.proc.wait(5) == 1
    assert re.search(r"%s:\d+: " % re.escape(hd.conf), hd.log()), hd.log()
    assert not os.path.exists(os.path.join(hd.dir, "state"))


def test_check_config_option(daemons, tmp_path):
    hd = daemons([("swg", "tcp", "127.0.0.1:1")])
    ok = subprocess.run([HEALTHD, "-n", "-c", hd.conf], capture_output=True, text=True,
                        timeout=10)
    assert ok.returncode == 0, ok.stderr
    assert "127.0.0.1:1" in ok.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text("pop = {\n")
    res = subprocess.run([HEALTHD, "-n", "-c", str(bad)], capture_output=True, text=True,
                         timeout=10)
    assert res.returncode == 1
    assert str(bad) + ":" in res.stderr
    assert subprocess.run([HEALTHD, "-h"], capture_output=True, timeout=10).returncode == 0
    assert subprocess.run([HEALTHD, "-x"], capture_output=True, timeout=10).returncode == 2

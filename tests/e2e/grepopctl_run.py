"""Running build/grepopctl from tests, and stand-ins for its daemons.

run_ctl() is what every test of grepopctl calls: against the stand-ins here
(protocol conformance) and against the real gatewayd and statsd (end to
end); it only needs a configuration path.

The stand-ins bind the sockets docs/architecture.md documents and nothing
more: FakeGatewayd is a REP socket that records each request and answers
with a reply the test chooses; FakeStatsd is the snapshot ROUTER and the
feed PUB. Every thread they start stops within a bounded time.
"""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import zmq

BUILD = os.environ.get("GREPOP_BUILD",
                       os.path.join(os.path.dirname(__file__), "..", "..", "build"))
GREPOPCTL = os.path.join(BUILD, "grepopctl")


class Result:
    def __init__(self, rc, stdout, stderr, elapsed):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.elapsed = elapsed

    @property
    def json(self):
        """stdout as one JSON value."""
        return json.loads(self.stdout)

    @property
    def json_lines(self):
        """stdout as JSON lines."""
        return [json.loads(line) for line in self.stdout.splitlines() if line]

    def __repr__(self):
        return "rc=%d\nstdout:\n%s\nstderr:\n%s" % (self.rc, self.stdout, self.stderr)


def run_ctl(conf_path, *args, timeout=15, stdin=None):
    """Run grepopctl -c CONF_PATH ARGS...; returns a Result."""
    start = time.monotonic()
    proc = subprocess.run([GREPOPCTL, "-c", conf_path, *args], capture_output=True,
                          text=True, timeout=timeout, stdin=stdin)
    return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def write_conf(directory, feed=None, snapshot=None):
    """A minimal configuration whose runtime_dir is DIRECTORY; returns its path."""
    feed = feed or "ipc://%s/feed.sock" % directory
    snapshot = snapshot or "ipc://%s/snapshot.sock" % directory
    path = os.path.join(directory, "grepop.conf")
    with open(path, "w") as f:
        f.write('pop = { name = "fra1"; gateway_ip = "192.0.2.1"; };\n'
                'runtime_dir = "%s";\n'
                'stats = { feed = "%s"; snapshot = "%s"; };\n' % (directory, feed, snapshot))
    return path


class Runtime:
    """A temporary runtime directory with a configuration, removed on close."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="grepopctl-", dir="/tmp")
        self.conf = write_conf(self.dir)
        self.ctl_endpoint = "ipc://%s/gatewayd.ctl" % self.dir
        self.feed_endpoint = "ipc://%s/feed.sock" % self.dir
        self.snapshot_endpoint = "ipc://%s/snapshot.sock" % self.dir

    def run(self, *args, **kwargs):
        return run_ctl(self.conf, *args, **kwargs)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class _Server(threading.Thread):
    """A socket loop in a thread, polling so that stop() ends it within 50 ms."""

    def __init__(self):
        super().__init__(daemon=True)
        self.ctx = zmq.Context.instance()
        self.stopping = threading.Event()
        self.error = None

    def stop(self):
        self.stopping.set()
        self.join(5)
        assert not self.is_alive(), "stand-in thread did not stop"
        if self.error:
            raise self.error


class FakeGatewayd(_Server):
    """gatewayd's control socket. reply(request) -> reply object, or None: no answer."""

    def __init__(self, endpoint, reply=None):
        super().__init__()
        self.endpoint = endpoint
        self.reply = reply or (lambda req: {"ok": True})
        self.requests = []
        self.sock = self.ctx.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)

    def run(self):
        try:
            while not self.stopping.is_set():
                if not self.sock.poll(50):
                    continue
                frames = self.sock.recv_multipart()
                assert len(frames) == 1, "a request is one frame: %r" % frames
                req = json.loads(frames[0])
                self.requests.append(req)
                answer = self.reply(req)
                if answer is None:
                    self.stopping.wait(10)      # wedged: never answers
                    break
                self.sock.send(json.dumps(answer).encode())
        except Exception as e:          # reported by stop()
            self.error = e
        finally:
            self.sock.close(0)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def site_message(name, seq, status="up", traffic_type="user", ago=12, **extra):
    """A site message as docs/architecture.md shows it."""
    now = time.time()
    msg = {"pop": "fra1", "seq": seq, "time": iso(now), "time_ns": int(now * 1e9),
           "name": name, "source_ip": "198.18.0.2", "tenant": "default",
           "traffic_type": traffic_type, "services": "swg+cfw",
           "enabled": status != "disabled", "keepalive": True, "key": None,
           "status": status,
           "keepalive_status": "seen" if status == "up" else "not seen",
           "last_keepalive": iso(now - ago) if status == "up" else None,
           "last_user_traffic": None, "tunnel": "established",
           "established_since": iso(now - 600), "rx_kbps": 12.5, "tx_kbps": 300.1,
           "rx_kbps_5m": 3.2, "tx_kbps_5m": 80.0, "rx_packets": 10, "rx_bytes": 1000,
           "tx_packets": 12, "tx_bytes": 14000, "keepalives": 3, "probes": 0,
           "drops": {"policy": 4, "rate": 0, "bad_key": 1}, "pop_backup": ["ams1"]}
    msg.update(extra)
    return msg


def pop_message(seq):
    now = time.time()
    return {"pop": "fra1", "seq": seq, "time": iso(now), "time_ns": int(now * 1e9),
            "name": "fra1", "location": "Frankfurt, DE", "gateway_ip": "192.0.2.1",
            "probe_ip": "100.64.255.1", "backup_pops": ["ams1"],
            "accept_mode": "no-new", "accepting_new_tunnels": False,
            "healthd": "alive", "healthd_heartbeat": iso(now - 1),
            "services": {
                "swg": {"health": "up", "since": iso(now - 180), "checks_ok": 180,
                        "checks_failed": 2},
                "cfw": {"health": "down", "since": iso(now - 30), "checks_ok": 7,
                        "checks_failed": 30}},
            "sites": {"total": 2, "up": 1, "down": 0, "disabled": 1},
            "totals": {"rx_packets": 0, "rx_bytes": 0, "tx_packets": 0, "tx_bytes": 0,
                       "drops": {"unknown_source": 0}},
            "usage": {"user": {"sites": 1, "rx_bytes": 0, "tx_bytes": 0}}}


class FakeStatsd(_Server):
    """statsd's snapshot ROUTER and feed PUB.

    sites: the site messages the snapshot sends; publish: a function
    (seq) -> list of (topic, message) sent on the feed every 50 ms;
    answer=False makes the snapshot endpoint read requests and never answer;
    end_count overrides the site count of the snapshot's end message.
    """

    def __init__(self, snapshot_endpoint, feed_endpoint, sites=(), publish=None, answer=True,
                 end_count=None):
        super().__init__()
        self.sites = list(sites)
        self.end_count = len(self.sites) if end_count is None else end_count
        self.publish = publish
        self.answer = answer
        self.seq = 1000
        self.requests = []
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.SNDHWM, 0)      # a snapshot is never cut short
        self.router.bind(snapshot_endpoint)
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 0)
        self.pub.bind(feed_endpoint)

    def _snapshot(self, identity):
        self.seq += 1
        send = lambda topic, msg: self.router.send_multipart(
            [identity, topic.encode(), json.dumps(msg).encode()])
        send("grepop.v1.pop", pop_message(self.seq))
        for site in self.sites:
            send("grepop.v1.site." + site["name"], site)
        send("grepop.v1.snapshot.end", {"seq": self.seq, "sites": self.end_count})

    def run(self):
        next_publish = 0
        try:
            while not self.stopping.is_set():
                if self.router.poll(10):
                    frames = self.router.recv_multipart()
                    self.requests.append(frames[1:])
                    if self.answer:
                        self._snapshot(frames[0])
                if self.publish and time.monotonic() >= next_publish:
                    next_publish = time.monotonic() + 0.05
                    self.seq += 1
                    for topic, msg in self.publish(self.seq):
                        self.pub.send_multipart([topic.encode(), json.dumps(msg).encode()])
        except Exception as e:          # reported by stop()
            self.error = e
        finally:
            self.router.close(0)
            self.pub.close(0)

"""The daemons run with no more than their units give them.

systemd is not PID 1 here, so the units' privileges are reproduced by hand
for the real binaries: an unprivileged user owning the runtime and state
directories (as RuntimeDirectory= and StateDirectory= arrange), and exactly
the capabilities of the unit's CapabilityBoundingSet=/AmbientCapabilities=
(read from systemd/*.service), with no_new_privs. The sd_notify messages go
to a datagram socket of the test (NOTIFY_SOCKET), as they would to systemd:
READY=1, STATUS=, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1.

On a host with udev, /dev/net/tun is mode 0666 (systemd's default udev
rules) and DeviceAllow= confines gatewayd to it. This machine may have no
udev and a 0600 node, so gatewayd gets, in its own mount namespace only, a
0666 node of the same device bound over /dev/net/tun.
"""

import os
import re
import signal
import socket
import stat
import sys
import time
import zlib

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))

import lab as lablib  # noqa: E402
from shm_reader import ShmReader  # noqa: E402

BUILD = os.path.abspath(os.environ.get("GREPOP_BUILD", os.path.join(REPO, "build")))
UID = 65534                     # nobody: owns nothing else the daemons could use
WATCHDOG_USEC = 2000000
CAP_BITS = {"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13}


def unit_caps(daemon):
    """The capability names of grepop-DAEMON.service (bounding = ambient)."""
    with open(os.path.join(REPO, "systemd", "grepop-%s.service" % daemon)) as f:
        text = f.read()
    bounding = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M).group(1).split()
    ambient = re.search(r"^AmbientCapabilities=(.*)$", text, re.M).group(1).split()
    assert sorted(bounding) == sorted(ambient), daemon
    return bounding


def setpriv(caps):
    names = ",".join("+" + c[len("CAP_"):].lower() for c in caps)
    keep = "-all" + ("," + names if names else "")
    return ["setpriv", "--reuid=%d" % UID, "--regid=%d" % UID, "--clear-groups",
            "--inh-caps=" + keep, "--ambient-caps=" + keep, "--bounding-set=" + keep,
            "--no-new-privs", "--"]


class Notify:
    """NOTIFY_SOCKET of one daemon: collects its messages."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.settimeout(0.2)
        self.messages = []

    def wait(self, prefix, timeout=10.0, proc=None):
        """The first message line starting with PREFIX (already seen ones too)."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages:
                if m.startswith(prefix):
                    return m
            if time.monotonic() > deadline or (proc and not proc.alive() and
                                                not self._read()):
                raise AssertionError("no %s from the daemon; got %r" % (prefix, self.messages))
            self._read()

    def _read(self):
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            return False
        self.messages.extend(data.splitlines())
        return True

    def clear(self):
        self.messages = []

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def pop_lab():
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    for d in ("gatewayd", "healthd"):
        if not os.access(os.path.join(BUILD, d), os.X_OK):
            pytest.skip("%s: %s is not built" % (BUILD, d))
    prefix = "u%dp%d" % (os.getpid() % 10000, zlib.crc32(__name__.encode()) % 100)
    lab = lablib.Lab(prefix, BUILD)
    try:
        lab.add_pop("pop1")
        lab.start_services("pop1")
        conf = lab.write_conf("pop1")
        top = lab.pop_dir("pop1")
        for sub in ("run", "lib"):
            for root, dirs, files in os.walk(os.path.join(top, sub)):
                for name in [root] + [os.path.join(root, f) for f in files]:
                    os.chown(name, UID, UID)
        yield lab, conf
    finally:
        lab.close()


def udev_tun(lab):
    """A command prefix that shows /dev/net/tun as udev makes it: 0666."""
    node = os.path.join(lab.run_dir, "tun")
    if not os.path.exists(node):
        st = os.stat("/dev/net/tun")
        os.mknod(node, 0o666 | stat.S_IFCHR, st.st_rdev)
        os.chmod(node, 0o666)
    return ["unshare", "--mount", "--propagation=private", "sh", "-c",
            'mount --bind "$0" /dev/net/tun && exec "$@"', node]


def start(lab, conf, daemon, caps, name):
    notify = Notify(os.path.join(lab.run_dir, "notify-%s.sock" % name))
    cmd = ["env", "NOTIFY_SOCKET=" + notify.path, "WATCHDOG_USEC=%d" % WATCHDOG_USEC]
    if daemon == "gatewayd":
        cmd = udev_tun(lab) + cmd
    proc = lab.popen("pop1", cmd + setpriv(caps) + [lab.binary(daemon), "-c", conf],
                     name="pop1-" + name, merge_stderr=True)
    return proc, notify


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def stop(proc, notify):
    proc.popen.send_signal(signal.SIGTERM)
    notify.wait("STOPPING=1", timeout=5)
    rc = proc.popen.wait(timeout=10)
    notify.close()
    return rc


def test_gatewayd_serves_with_only_its_units_capabilities(pop_lab):
    lab, conf = pop_lab
    caps = unit_caps("gatewayd")
    assert sorted(caps) == ["CAP_NET_ADMIN", "CAP_NET_RAW"]
    proc, notify = start(lab, conf, "gatewayd", caps, "gatewayd")
    try:
        notify.wait("READY=1", proc=proc)
        notify.wait("STATUS=", timeout=3)
        st = proc_status(proc.popen.pid)
        assert st["Uid"].split()[0] == str(UID)
        assert int(st["CapEff"], 16) == sum(1 << CAP_BITS[c] for c in caps)
        assert int(st["CapBnd"], 16) == sum(1 << CAP_BITS[c] for c in caps)
        assert st["NoNewPrivs"] == "1"
        # The data plane really is up: its tenant TUN device exists.
        links = lab.run("pop1", ["ip", "-o", "link", "show", "type", "tun"])
        assert "grepop" in links, links
        notify.clear()
        notify.wait("WATCHDOG=1", timeout=WATCHDOG_USEC / 1e6)

        proc.popen.send_signal(signal.SIGHUP)        # the unit's ExecReload=
        notify.clear()
        notify.wait("WATCHDOG=1", timeout=WATCHDOG_USEC / 1e6)
        assert proc.alive(), proc.log()
    finally:
        rc = stop(proc, notify)
    assert rc == 0, proc.log()


def test_gatewayd_without_capabilities_does_not_become_ready(pop_lab):
    """The check above can fail: with no capabilities gatewayd stops at start."""
    lab, conf = pop_lab
    proc, notify = start(lab, conf, "gatewayd", [], "gatewayd-nocaps")
    try:
        rc = proc.popen.wait(timeout=10)
        assert rc != 0
        assert not any(m.startswith("READY=1") for m in notify.messages)
        assert "Operation not permitted" in proc.log() or "ermission" in proc.log(), proc.log()
    finally:
        notify.close()


def test_healthd_serves_with_no_capabilities(pop_lab):
    lab, conf = pop_lab
    caps = unit_caps("healthd")
    assert caps == []
    proc, notify = start(lab, conf, "healthd", caps, "healthd")
    try:
        notify.wait("READY=1", proc=proc)
        st = proc_status(proc.popen.pid)
        assert st["Uid"].split()[0] == str(UID)
        assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0
        notify.clear()
        notify.wait("WATCHDOG=1", timeout=WATCHDOG_USEC / 1e6)
        # The checks work as an ordinary user: both services come up.
        shm = ShmReader(os.path.join(lab.pop_dir("pop1"), "run", "state"))
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not (
                    shm.health("swg") == "up" and shm.health("cfw") == "up"):
                time.sleep(0.1)
            assert (shm.health("swg"), shm.health("cfw")) == ("up", "up")
        finally:
            shm.close()
    finally:
        rc = stop(proc, notify)
    assert rc == 0, proc.log()

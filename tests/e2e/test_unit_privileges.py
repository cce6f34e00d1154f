"""The daemons run with no more than their units give them.

systemd is not PID 1 here, so the units' privileges are reproduced by hand
for the real binaries: an unprivileged user owning the runtime and state
directories (as RuntimeDirectory= and StateDirectory= arrange), and exactly
the capabilities of the unit's CapabilityBoundingSet=/AmbientCapabilities=
(read from systemd/*.service), with no_new_privs. The sd_notify messages go
to a datagram socket of the test (NOTIFY_SOCKET), as they would to systemd:
READY=1, STATUS=, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1. strace
records each daemon's life: every system call must pass the unit's
SystemCallFilter= (the groups as systemd-analyze lists them), every socket
family its RestrictAddressFamilies=, and every file it creates or writes
must be where ProtectSystem=strict leaves it writable: the runtime
directory, gatewayd's state directory, /dev, /proc, /sys.

On a host with udev, /dev/net/tun is mode 0666 (systemd's default udev
rules) and DeviceAllow= confines gatewayd to it. This machine may have no
udev and a 0600 node, so gatewayd gets, in its own mount namespace only, a
0666 node of the same device bound over /dev/net/tun.
"""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import zlib

import pytest
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))

import lab as lablib  # noqa: E402
from shmlayout import Shm  # noqa: E402

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


def syscall_groups():
    """{"@group": [names and @groups]} as this systemd knows them."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"],
                         capture_output=True, text=True, timeout=30).stdout
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif line.startswith("    ") and current is not None and "#" not in line:
            current.append(line.strip())
    return groups


def expand(groups, name, seen=None):
    seen = set() if seen is None else seen
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    return set().union(*(expand(groups, m, seen) for m in groups[name]))


def unit_syscalls(daemon):
    """The system calls grepop-DAEMON.service allows."""
    with open(os.path.join(REPO, "systemd", "grepop-%s.service" % daemon)) as f:
        lines = re.findall(r"^SystemCallFilter=(.*)$", f.read(), re.M)
    groups = syscall_groups()
    allowed = set()
    for value in lines:
        deny = value.startswith("~")
        names = set().union(*(expand(groups, n) for n in value.lstrip("~").split()))
        allowed = allowed - names if deny else allowed | names
    return allowed


def traced_syscalls(path):
    """System call names from the table of strace -C (rows of numbers, then
    the name; the "total" row left out)."""
    with open(path) as f:
        rows = [line.split() for line in f if re.match(r"^\s*\d+\.\d+\s", line)]
    return {row[-1] for row in rows if row[-1] != "total"}


def traced_families(path):
    """Address families of the sockets the traced processes opened."""
    with open(path) as f:
        return set(re.findall(r"\bsocket(?:pair)?\((AF_\w+)", f.read()))


def unit_families(daemon):
    with open(os.path.join(REPO, "systemd", "grepop-%s.service" % daemon)) as f:
        return set(re.search(r"^RestrictAddressFamilies=(.*)$", f.read(), re.M).group(1).split())


WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")


def written_paths(path):
    """Files the traced processes opened for writing, created, renamed,
    removed or bound a socket at (calls that failed left out)."""
    written = set()
    with open(path) as f:
        for line in f:
            if re.search(r"= -1 E\w+", line):
                continue
            m = re.search(r"\bopenat\(\w+, \"([^\"]+)\", ([A-Z_|]+)", line)
            if m and any(flag in m.group(2) for flag in WRITE_FLAGS):
                written.add(m.group(1))
            m = re.search(r"\b(?:mkdir|mkdirat|unlink|unlinkat|rmdir|rename|renameat2?|"
                          r"link|linkat|symlink|symlinkat|truncate|chmod|fchmodat|chown|"
                          r"fchownat)\((.*)", line)
            if m:
                written.update(re.findall(r"\"([^\"]+)\"", m.group(1)))
            m = re.search(r"\bbind\(\d+, \{sa_family=AF_UNIX, sun_path=\"([^\"]+)\"", line)
            if m:
                written.add(m.group(1))
    return written


def outside(paths, allowed):
    return sorted(p for p in paths
                  if not any(p == a or p.startswith(a.rstrip("/") + "/") for a in allowed))


def start(lab, conf, daemon, caps, name, trace=None):
    notify = Notify(os.path.join(lab.run_dir, "notify-%s.sock" % name))
    cmd = ["env", "NOTIFY_SOCKET=" + notify.path, "WATCHDOG_USEC=%d" % WATCHDOG_USEC]
    if trace:
        # LeakSanitizer cannot work under ptrace; the other tests check leaks.
        asan = os.environ.get("ASAN_OPTIONS", "")
        cmd.append("ASAN_OPTIONS=" + (asan + ":" if asan else "") + "detect_leaks=0")
    if daemon == "gatewayd":
        cmd = udev_tun(lab) + cmd
    cmd += setpriv(caps)
    if trace:
        open(trace, "w").close()
        os.chown(trace, UID, UID)       # strace runs as the daemon's user
        cmd += ["strace", "-f", "-qq", "-C", "-e", "signal=none", "-o", trace]
    proc = lab.popen("pop1", cmd + [lab.binary(daemon), "-c", conf],
                     name="pop1-" + name, merge_stderr=True)
    proc.traced = bool(trace)
    return proc, notify


def sanitized(binary):
    """True for a sanitizer build, whose runtime makes system calls of its
    own that no production unit needs to allow."""
    with open(binary, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


def assert_syscalls_allowed(lab, daemon, trace):
    used = traced_syscalls(trace)
    assert len(used) > 20, used                             # the table was read
    if sanitized(lab.binary(daemon)):
        return
    allowed = unit_syscalls(daemon)
    assert used <= allowed, sorted(used - allowed)


def daemon_pid(proc):
    """The daemon's pid: the process itself, or strace's child."""
    pid = proc.popen.pid
    if not proc.traced:
        return pid
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return int(f.read().split()[0])


def ctl(run_dir, request):
    """One request to gatewayd's control socket, the reply as a dict."""
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    try:
        sock.connect("ipc://" + os.path.join(run_dir, "gatewayd.ctl"))
        sock.send_string(json.dumps(request))
        return json.loads(sock.recv_string())
    finally:
        sock.close()


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def stop(proc, notify):
    os.kill(daemon_pid(proc), signal.SIGTERM)
    notify.wait("STOPPING=1", timeout=5)
    rc = proc.popen.wait(timeout=10)
    notify.close()
    return rc


def test_gatewayd_serves_with_only_its_units_capabilities(pop_lab):
    lab, conf = pop_lab
    caps = unit_caps("gatewayd")
    assert sorted(caps) == ["CAP_NET_ADMIN", "CAP_NET_RAW"]
    trace = os.path.join(lab.run_dir, "gatewayd.strace")
    proc, notify = start(lab, conf, "gatewayd", caps, "gatewayd", trace)
    try:
        notify.wait("READY=1", proc=proc)
        notify.wait("STATUS=", timeout=3)
        st = proc_status(daemon_pid(proc))
        assert st["Uid"].split()[0] == str(UID)
        unit_mask = sum(1 << CAP_BITS[c] for c in caps)
        # Serving, it may have given up CAP_NET_RAW; never more than the unit's.
        assert int(st["CapEff"], 16) & ~unit_mask == 0, st["CapEff"]
        assert int(st["CapEff"], 16) & (1 << CAP_BITS["CAP_NET_ADMIN"]), st["CapEff"]
        assert int(st["CapBnd"], 16) == unit_mask
        assert st["NoNewPrivs"] == "1"
        # The data plane really is up: its tenant TUN device exists.
        links = lab.run("pop1", ["ip", "-o", "link", "show", "type", "tun"])
        assert "grepop" in links, links
        notify.clear()
        notify.wait("WATCHDOG=1", timeout=WATCHDOG_USEC / 1e6)

        # Control requests write the sites file and the acceptance mode.
        run_dir = os.path.join(lab.pop_dir("pop1"), "run")
        state_dir = os.path.join(lab.pop_dir("pop1"), "lib")
        site = {"name": "priv-check", "source_ip": "198.18.77.7"}
        assert ctl(run_dir, {"command": "site.add", "site": site})["ok"]
        assert ctl(run_dir, {"command": "pop.accept", "mode": "no-new"})["ok"]
        with open(os.path.join(state_dir, "sites.csv")) as f:
            assert "priv-check,198.18.77.7" in f.read()

        os.kill(daemon_pid(proc), signal.SIGHUP)     # the unit's ExecReload=
        notify.clear()
        notify.wait("WATCHDOG=1", timeout=WATCHDOG_USEC / 1e6)
        assert proc.alive(), proc.log()
    finally:
        rc = stop(proc, notify)
    assert rc == 0, proc.log()
    assert_syscalls_allowed(lab, "gatewayd", trace)
    families = traced_families(trace)
    assert {"AF_INET", "AF_NETLINK"} <= families, families
    assert families <= unit_families("gatewayd"), families
    written = written_paths(trace)
    assert os.path.join(state_dir, "sites.csv") in written, sorted(written)
    assert outside(written, [run_dir, state_dir, "/dev", "/proc", "/sys"]) == []


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
    trace = os.path.join(lab.run_dir, "healthd.strace")
    proc, notify = start(lab, conf, "healthd", caps, "healthd", trace)
    try:
        notify.wait("READY=1", proc=proc)
        st = proc_status(daemon_pid(proc))
        assert st["Uid"].split()[0] == str(UID)
        assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0
        notify.clear()
        notify.wait("WATCHDOG=1", timeout=WATCHDOG_USEC / 1e6)
        # The checks work as an ordinary user: both services come up.
        shm = Shm(os.path.join(lab.pop_dir("pop1"), "run", "state"))
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
    assert_syscalls_allowed(lab, "healthd", trace)
    families = traced_families(trace)
    assert "AF_INET" in families, families
    assert families <= unit_families("healthd"), families
    run_dir = os.path.join(lab.pop_dir("pop1"), "run")
    assert outside(written_paths(trace), [run_dir, "/dev", "/proc", "/sys"]) == []


def test_statsd_serves_with_no_capabilities(pop_lab):
    lab, conf = pop_lab
    if not os.access(lab.binary("statsd"), os.X_OK):
        pytest.skip("%s: statsd is not built" % BUILD)
    caps = unit_caps("statsd")
    assert caps == []
    trace = os.path.join(lab.run_dir, "statsd.strace")
    proc, notify = start(lab, conf, "statsd", caps, "statsd", trace)
    try:
        notify.wait("READY=1", proc=proc)
        st = proc_status(daemon_pid(proc))
        assert st["Uid"].split()[0] == str(UID)
        assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0
        notify.clear()
        notify.wait("WATCHDOG=1", timeout=WATCHDOG_USEC / 1e6)
        # It serves as an ordinary user: the POP from its JSON API.
        port = lab.stats_ports("pop1")[2]
        out = lab.run("pop1", ["curl", "-sf", "--max-time", "5",
                               "http://127.0.0.1:%d/api/v1/pop" % port])
        assert '"name"' in out, out
        os.kill(daemon_pid(proc), signal.SIGHUP)     # the unit's ExecReload=
        notify.clear()
        notify.wait("WATCHDOG=1", timeout=WATCHDOG_USEC / 1e6)
    finally:
        rc = stop(proc, notify)
    assert rc == 0, proc.log()
    assert_syscalls_allowed(lab, "statsd", trace)
    families = traced_families(trace)
    assert families <= unit_families("statsd"), families
    run_dir = os.path.join(lab.pop_dir("pop1"), "run")
    assert outside(written_paths(trace), [run_dir, "/dev", "/proc", "/sys"]) == []


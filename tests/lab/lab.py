#!/usr/bin/python3
"""The grepop test lab: branch routers and POPs in network namespaces.

    python3 tests/lab/lab.py up|down|status [--prefix gp] [--build build]

Every namespace is called PREFIX-ROLE, so runs with different prefixes do not
collide and `down` finds everything a run left behind. The standard shape:

    PREFIX-branch 10.1.0.2 --- 10.1.0.1 PREFIX-router 198.18.0.2 ---+
                                     (grerouter, TUN gre-r)         |
                                                        PREFIX-wan (bridge br0)
                                                                    |
    PREFIX-svc1 198.19.0.2 --- 198.19.0.1 PREFIX-pop1 198.18.0.11 --+
    PREFIX-svc2 198.19.0.2 --- 198.19.0.1 PREFIX-pop2 198.18.0.12 --+

Routers, branches and POPs are added by parameters (add_router, add_branch,
add_pop), so tests can build a second site behind the same router, or two
routers whose branches both use 10.1.0.0/24 (two tenants, overlapping
addresses). Interfaces are created directly inside their namespaces with
short fixed names (wan0, lan0, eth0), so nothing is ever created in the
namespace the lab runs from.

Cleanup is always complete: Lab is a context manager, registers an atexit
hook and SIGTERM/SIGHUP handlers, and teardown kills every process still
running in a PREFIX- namespace (ip netns pids) before deleting it, then
removes the run directory /tmp/grepop-lab-PREFIX.
"""

import argparse
import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = "/usr/bin/python3"

WAN_NET = "198.18.0"
SVC_NET = "198.19.0"
SVC_IP = "198.19.0.2"
PROBE_IP = "100.64.255.1"
TUNNEL_ROUTES = ("198.19.0.0/24", "100.64.255.0/24")


class LabError(Exception):
    pass


def sh(cmd, check=True, timeout=20, input=None):
    """Run CMD (a list); return stdout. Raise LabError with stderr on failure."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(cmd)}: timed out after {timeout} s") from None
    if check and p.returncode != 0:
        raise LabError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def wait_for(predicate, timeout=10.0, interval=0.1, what="condition"):
    """Poll PREDICATE until it returns a true value (returned) or TIMEOUT
    seconds pass (LabError naming WHAT)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def netns_list(prefix):
    out = sh(["ip", "-j", "netns", "list"], check=False) or "[]"
    return sorted(n["name"] for n in json.loads(out) if n["name"].startswith(prefix + "-"))


def netns_kill_all(ns, grace=2.0):
    """SIGTERM every process in NS, SIGKILL what is left after GRACE s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [int(p) for p in sh(["ip", "netns", "pids", ns], check=False).split()]
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if os.path.exists(f"/proc/{p}")]
            time.sleep(0.05)
        if not pids:
            return


def teardown(prefix):
    """Remove everything a lab with PREFIX created. Safe to call repeatedly."""
    for ns in netns_list(prefix):
        netns_kill_all(ns)
    for ns in netns_list(prefix):
        sh(["ip", "netns", "del", ns], check=False)
    shutil.rmtree(run_dir_of(prefix), ignore_errors=True)


def run_dir_of(prefix):
    return f"/tmp/grepop-lab-{prefix}"


def sweep_orphans():
    """Tear down labs whose owner process died without cleaning up (SIGKILL,
    a crash of the interpreter). A lab records its owner in run_dir/owner;
    labs left up on purpose by `lab.py up` have no owner file."""
    base = os.path.dirname(run_dir_of("x"))
    for entry in os.listdir(base):
        if not entry.startswith("grepop-lab-"):
            continue
        prefix = entry[len("grepop-lab-"):]
        if os.path.exists(os.path.join(base, entry, "owner")) and lab_owner(prefix) is None:
            teardown(prefix)


def lab_owner(prefix):
    """The live process that owns the lab PREFIX, or None."""
    try:
        with open(os.path.join(run_dir_of(prefix), "owner")) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return None
    return pid if os.path.exists(f"/proc/{pid}") else None


class Proc:
    """A process in a namespace. Its stdout lines (and stderr's, with
    MERGE_STDERR) are collected in .lines by a thread and appended to
    .log_path, where stderr goes otherwise."""

    def __init__(self, lab, ns, cmd, name, merge_stderr=False):
        self.ns, self.cmd, self.name = ns, cmd, name
        self.log_path = os.path.join(lab.run_dir, f"{name}.log")
        self.lines = []
        self._eof = False
        self._cond = threading.Condition()
        self._err = open(self.log_path, "a")
        stderr = subprocess.STDOUT if merge_stderr else self._err
        netns = ["ip", "netns", "exec", ns] if ns else []
        self.popen = subprocess.Popen(netns + cmd,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=stderr, text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.popen.stdout:
            with open(self.log_path, "a") as f:
                f.write(line)
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_line(self, pattern, timeout=10.0, start=0):
        """First stdout line (from index START) matching the regex PATTERN."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if rx.search(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    why = "it exited" if self._eof else f"{timeout} s"
                    raise LabError(f"{self.name}: no line matching {pattern!r} ({why}); "
                                   f"output: {self.lines[-10:]}; log {self.log_path}")
                self._cond.wait(min(left, 0.2))

    def alive(self):
        return self.popen.poll() is None

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        self._err.close()
        return self.popen.returncode

    def log(self):
        with open(self.log_path) as f:
            return f.read()


class Router(Proc):
    """A grerouter process: one tunnel (site) of a branch router."""

    def __init__(self, lab, ns, cmd, name, status_path, tun):
        self.status_path, self.tun = status_path, tun
        super().__init__(lab, ns, cmd, name)

    def status(self):
        """The router's status file as a dict, or None before it exists."""
        try:
            with open(self.status_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None


class Echo(Proc):
    """gre_echo.py: a stand-in POP that reflects keepalives, answers probes."""

    def __init__(self, lab, ns, cmd, name, status_path):
        self.status_path = status_path
        super().__init__(lab, ns, cmd, name)

    def stats(self):
        """Its counters (see gre_echo.py) as a dict, or None before any."""
        try:
            with open(self.status_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None


class Lab:
    """A topology of namespaces. Use as a context manager, or call close()."""

    def __init__(self, prefix=None, build=None, direct_wan=False):
        """DIRECT_WAN: the first two namespaces to join the WAN (a router and
        a POP) are the two ends of one veth, with no bridge between them: a
        benchmark's generator then pays for one veth hop, not for a bridge
        and a second veth on its core. The WAN takes no third member."""
        self.direct_wan, self._wan_members = direct_wan, 0
        self.prefix = prefix or f"gl{os.getpid() % 100000}"
        if not re.fullmatch(r"[a-z][a-z0-9]{0,11}", self.prefix):
            raise LabError(f"prefix {self.prefix!r}: want 1-12 lower-case letters and digits")
        self.build = os.path.abspath(build or os.environ.get("GREPOP_BUILD",
                                                             os.path.join(REPO, "build")))
        self.run_dir = run_dir_of(self.prefix)
        self.namespaces = []
        self.routers = {}	# router name -> {"wan_ip", "branches", "extra_ips"}
        self.pops = {}		# pop name -> {"wan_ip", "svc", "index"}
        self.procs = []
        self.services = {}	# (pop, "http"|"echo") -> Proc
        self._closed = False
        sweep_orphans()
        owner = lab_owner(self.prefix)
        if owner is not None and owner != os.getpid():
            raise LabError(f"lab prefix {self.prefix} is in use by process {owner}")
        teardown(self.prefix)	# a previous run that was killed hard
        os.makedirs(self.run_dir, mode=0o755)
        with open(os.path.join(self.run_dir, "owner"), "w") as f:
            f.write(str(os.getpid()))
        atexit.register(self.close)
        self._old_handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        sh(["ip", "netns", "add", self.ns("wan")])
        self.namespaces.append(self.ns("wan"))
        self._ns_setup(self.ns("wan"))
        self.run("wan", ["ip", "link", "add", "br0", "type", "bridge"])
        self.run("wan", ["ip", "link", "set", "br0", "up"])

    # -- names and commands

    def ns(self, role):
        """Namespace name of ROLE ("router", "pop1", ...)."""
        return role if role.startswith(self.prefix + "-") else f"{self.prefix}-{role}"

    def run(self, role, cmd, check=True, timeout=20, input=None):
        """Run CMD in the namespace of ROLE and return its stdout."""
        return sh(["ip", "netns", "exec", self.ns(role)] + list(cmd), check, timeout, input)

    def popen(self, role, cmd, name=None, merge_stderr=False):
        """Start CMD in ROLE's namespace (None: the namespace the lab runs
        from, for processes that need no network of the lab's, only its
        files and loopback); stopped at teardown. Returns a Proc."""
        ns = self.ns(role) if role else None
        proc = Proc(self, ns, list(cmd), name or f"{role or 'host'}-{os.path.basename(cmd[0])}",
                    merge_stderr)
        self.procs.append(proc)
        return proc

    def start_daemon(self, pop, daemon, conf, *args):
        """Run the grepop DAEMON ("gatewayd", "healthd", "statsd") from the
        build directory in POP's namespace with configuration CONF (from
        write_conf). Its log lines (stderr) are in the returned Proc's .lines."""
        path = self.binary(daemon)
        if not os.access(path, os.X_OK):
            raise LabError(f"{path} missing: build it first")
        return self.popen(pop, [path, "-c", conf, *args], name=f"{pop}-{daemon}",
                          merge_stderr=True)

    def tool(self, name):
        path = os.path.join(self.build, "tools", name)
        if not os.access(path, os.X_OK):
            raise LabError(f"{path} missing: build it (make BUILD=... {path})")
        return path

    def binary(self, name):
        return os.path.join(self.build, name)

    # -- topology

    def _ns_add(self, role):
        ns = self.ns(role)
        if len(ns) > 40:
            raise LabError(f"namespace name {ns} too long")
        sh(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        self._ns_setup(ns)
        return ns

    def _ns_setup(self, ns):
        sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        for key in ("net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter"):
            sh(["ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}=0"])

    def _veth(self, role_a, name_a, role_b, name_b):
        sh(["ip", "-n", self.ns(role_a), "link", "add", name_a, "type", "veth",
            "peer", "name", name_b, "netns", self.ns(role_b)])
        sh(["ip", "-n", self.ns(role_a), "link", "set", name_a, "up"])
        sh(["ip", "-n", self.ns(role_b), "link", "set", name_b, "up"])

    def _wan_join(self, role, ip):
        port = role[-15:]
        if not self.direct_wan:
            self._veth(role, "wan0", "wan", port)
            self.run("wan", ["ip", "link", "set", port, "master", "br0"])
        elif self._wan_members == 0:
            # The first member: the other end waits in the WAN namespace.
            self._veth(role, "wan0", "wan", "peer0")
        elif self._wan_members == 1:
            self.run("wan", ["ip", "link", "set", "peer0", "netns", self.ns(role)])
            self.run(role, ["ip", "link", "set", "peer0", "name", "wan0"])
            self.run(role, ["ip", "link", "set", "wan0", "up"])
        else:
            raise LabError("a direct WAN joins two namespaces, no more")
        self._wan_members += 1
        self.run(role, ["ip", "addr", "add", f"{ip}/24", "dev", "wan0"])

    def _forwarding(self, role):
        self.run(role, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        self.run(role, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])

    def add_router(self, name="router", wan_ip=f"{WAN_NET}.2"):
        """A branch router on the WAN. Add branches with add_branch."""
        self._ns_add(name)
        self._wan_join(name, wan_ip)
        self._forwarding(name)
        self.routers[name] = {"wan_ip": wan_ip, "branches": [], "extra_ips": []}

    def add_branch(self, name="branch", router="router", net="10.1.0", local_ip=None):
        """A branch LAN NET.0/24 behind ROUTER: host NET.2, router NET.1. With
        LOCAL_IP (another WAN address of the router), its traffic leaves
        through its own tunnel (start_router(site=name)) by policy routing."""
        r = self.routers[router]
        idx = len(r["branches"])
        self._ns_add(name)
        self._veth(name, "eth0", router, f"lan{idx}")
        self.run(router, ["ip", "addr", "add", f"{net}.1/24", "dev", f"lan{idx}"])
        self.run(name, ["ip", "addr", "add", f"{net}.2/24", "dev", "eth0"])
        self.run(name, ["ip", "route", "add", "default", "via", f"{net}.1"])
        if local_ip:
            self.run(router, ["ip", "addr", "add", f"{local_ip}/24", "dev", "wan0"])
        r["branches"].append({"name": name, "net": net, "local_ip": local_ip or r["wan_ip"],
                              "table": 100 + idx})

    def add_pop(self, name="pop1", wan_ip=f"{WAN_NET}.11", svc=None):
        """A POP (gatewayd's namespace) and its downstream services namespace
        SVC (default svcN for popN) at 198.19.0.2."""
        svc = svc or re.sub(r"^pop", "svc", name)
        self._ns_add(name)
        self._ns_add(svc)
        self._wan_join(name, wan_ip)
        self._forwarding(name)
        self._veth(name, "lan0", svc, "eth0")
        self.run(name, ["ip", "addr", "add", f"{SVC_NET}.1/24", "dev", "lan0"])
        self.run(svc, ["ip", "addr", "add", f"{SVC_IP}/24", "dev", "eth0"])
        self.run(svc, ["ip", "route", "add", "default", "via", f"{SVC_NET}.1"])
        self.pops[name] = {"wan_ip": wan_ip, "svc": svc, "index": len(self.pops)}

    def pop_ip(self, pop):
        return self.pops[pop]["wan_ip"]

    # -- downstream services

    def start_services(self, pop):
        """HTTP (80, 443) and echo (7) in POP's services namespace."""
        self.svc_http(pop, True)
        if not self._svc_alive(pop, "echo"):
            self._svc_start(pop, "echo")

    def _svc_alive(self, pop, kind):
        proc = self.services.get((pop, kind))
        return proc is not None and proc.alive()

    def _svc_start(self, pop, kind):
        svc = self.pops[pop]["svc"]
        proc = self.popen(svc, [PYTHON, os.path.join(HERE, "services.py"), kind],
                          name=f"{svc}-{kind}")
        proc.wait_line("^ready$", timeout=10)
        self.services[(pop, kind)] = proc

    def svc_http(self, pop, up):
        """Start (UP) or stop the HTTP service behind POP: a stopped service
        listens nowhere, so both HTTP and TCP health checks fail."""
        if up and not self._svc_alive(pop, "http"):
            self._svc_start(pop, "http")
        elif not up and (pop, "http") in self.services:
            self.services.pop((pop, "http")).stop()

    # -- the branch router's tunnels

    def start_router(self, args=(), router="router", site=None, pop="pop1", backup="pop2",
                     tun=None, wait=True, ipv6=True):
        """Start grerouter in ROUTER's namespace for the tunnel of branch SITE
        (default: the router's first branch) to POP, with BACKUP (None for
        none) and extra ARGS (e.g. ["--keepalive", "1,3", "--key", "7"]);
        route the service and probe prefixes into its TUN. Returns a Router.
        Without IPV6 the TUN is created with IPv6 disabled, so the tunnel
        carries exactly what the test sends (no MLD reports, solicitations)."""
        r = self.routers[router]
        branch = next(b for b in r["branches"] if site in (None, b["name"]))
        idx = r["branches"].index(branch)
        tun = tun or ("gre-r" if idx == 0 else f"gre-r{idx}")
        status = os.path.join(self.run_dir, f"{router}-{tun}.json")
        cmd = [self.tool("grerouter"), "--local", branch["local_ip"], "--pop", self.pop_ip(pop),
               "--tun", tun, "--status", status]
        if backup:
            cmd += ["--backup", self.pop_ip(backup)]
        if not ipv6:
            self._ipv6_default(router, False)
        try:
            proc = Router(self, self.ns(router), cmd + list(args), f"{router}-{tun}", status,
                          tun)
            self.procs.append(proc)
            if wait or not ipv6:
                wait_for(lambda: proc.status() or not proc.alive(), 5, what=f"{tun} status")
        finally:
            if not ipv6:
                self._ipv6_default(router, True)
        if not proc.alive():
            raise LabError(f"grerouter exited: {proc.log()}")
        if wait:
            self._tunnel_routes(router, branch, tun, idx)
        return proc

    def _ipv6_default(self, role, on):
        """IPv6 on (or off) for interfaces created from now on in ROLE."""
        self.run(role, ["sysctl", "-qw", f"net.ipv6.conf.default.disable_ipv6={int(not on)}"])

    def start_echo(self, pop, *args):
        """Run gre_echo.py (ARGS: e.g. "--echo-icmp") on POP's gateway IP in
        place of gatewayd. Returns an Echo once it listens."""
        name = f"echo-{pop}"
        status = os.path.join(self.run_dir, f"{name}.json")
        if os.path.exists(status):
            os.unlink(status)
        cmd = [PYTHON, os.path.join(HERE, "gre_echo.py"), "--local", self.pop_ip(pop),
               "--status", status, *args]
        proc = Echo(self, self.ns(pop), cmd, name, status)
        self.procs.append(proc)
        proc.wait_line("^ready$", timeout=10)
        return proc

    def _tunnel_routes(self, router, branch, tun, idx):
        if idx == 0:
            for prefix in TUNNEL_ROUTES:
                self.run(router, ["ip", "route", "replace", prefix, "dev", tun])
            return
        table = str(branch["table"])
        for prefix in TUNNEL_ROUTES:
            self.run(router, ["ip", "route", "replace", prefix, "dev", tun, "table", table])
        self.run(router, ["ip", "rule", "add", "from", f"{branch['net']}.0/24", "lookup", table])

    def stop_router(self, proc=None):
        """Stop one Router (or every grerouter); returns the last exit code."""
        rc = None
        for p in [p for p in self.procs if isinstance(p, Router) and proc in (None, p)]:
            rc = p.stop()
            self.procs.remove(p)
        return rc

    # -- gatewayd configuration

    def write_conf(self, pop, runtime_dir=None, sites=None, tenants=None, extra="",
                   tunnel_mtu=1476, io="socket"):
        """Write POP's grepop.conf (from grepop.conf.in) and its sites CSV
        under pop_dir(POP); RUNTIME_DIR defaults to pop_dir(POP)/run.

        SITES: list of dicts with CSV columns (name and source_ip required;
        others as text), default one site per branch. TENANTS: list of
        {"name", "tun", "routes"}, default one tenant "default" routing every
        branch network. IO: gatewayd's receive path, "socket" or "ring".
        Returns the configuration's path."""
        p = self.pops[pop]
        runtime_dir = runtime_dir or os.path.join(self.pop_dir(pop), "run")
        state_dir = os.path.join(self.pop_dir(pop), "lib")
        for d in (runtime_dir, state_dir):
            os.makedirs(d, exist_ok=True)
        sites_file = os.path.join(state_dir, "sites.csv")
        with open(sites_file, "w") as f:
            f.write(sites_csv(sites if sites is not None else self.default_sites()))
        feed, snapshot, http = self.stats_ports(pop)
        values = {
            "POP_NAME": pop, "GATEWAY_IP": p["wan_ip"], "PROBE_IP": PROBE_IP,
            "WAN_INTERFACE": "wan0", "TUNNEL_MTU": str(tunnel_mtu),
            "BACKUP_POPS": ", ".join(f'"{b}"' for b in self.pops if b != pop),
            "RUNTIME_DIR": runtime_dir, "STATE_DIR": state_dir, "SITES_FILE": sites_file,
            "TENANTS": tenants_conf(tenants or self.default_tenants()),
            "SVC_IP": SVC_IP, "FEED_PORT": str(feed), "SNAPSHOT_PORT": str(snapshot),
            "HTTP_PORT": str(http), "EXTRA": extra, "IO": io,
        }
        with open(os.path.join(HERE, "grepop.conf.in")) as f:
            text = f.read()
        text = re.sub(r"@([A-Z_]+)@", lambda m: values.get(m.group(1), m.group(0)), text)
        path = os.path.join(self.pop_dir(pop), "grepop.conf")
        with open(path, "w") as f:
            f.write(text)
        return path

    def pop_dir(self, pop):
        """POP's files: grepop.conf, run/ (runtime_dir), lib/ (state_dir and
        sites.csv)."""
        return os.path.join(self.run_dir, pop)

    def stats_ports(self, pop):
        """(feed, snapshot, http) ports for POP's statsd, as write_conf sets:
        free ports of this host's loopback, chosen once per POP, so that a
        lab never collides with another one or with a leftover process."""
        p = self.pops[pop]
        if "stats_ports" not in p:
            socks = [socket.socket() for _ in range(3)]
            for s in socks:
                s.bind(("127.0.0.1", 0))
            p["stats_ports"] = tuple(s.getsockname()[1] for s in socks)
            for s in socks:
                s.close()
        return p["stats_ports"]

    def default_sites(self):
        sites = []
        for router in self.routers.values():
            for b in router["branches"]:
                sites.append({"name": b["name"], "source_ip": b["local_ip"]})
        return sites

    def default_tenants(self):
        nets = sorted({".".join(b["net"].split(".")[:2]) + ".0.0/16"
                       for r in self.routers.values() for b in r["branches"]})
        return [{"name": "default", "tun": "grepop0", "routes": nets or ["10.1.0.0/16"]}]

    # -- teardown

    def _on_signal(self, signum, frame):
        self.close()
        old = self._old_handlers.get(signum)
        signal.signal(signum, old if callable(old) else signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def close(self):
        """Stop every process, delete every PREFIX- namespace and the run
        directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for proc in reversed(self.procs):
            try:
                proc.stop(timeout=3)
            except Exception:	# teardown goes on whatever one process did
                pass
        self.procs = []
        teardown(self.prefix)
        atexit.unregister(self.close)
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- inspection

    def addresses(self, role):
        """{interface: [CIDR, ...]} in ROLE's namespace."""
        out = json.loads(self.run(role, ["ip", "-j", "addr", "show"]))
        return {i["ifname"]: [f"{a['local']}/{a['prefixlen']}" for a in i.get("addr_info", [])]
                for i in out}


def sites_csv(sites):
    cols = ["name", "source_ip"]
    for s in sites:
        cols += [c for c in s if c not in cols]
    lines = [",".join(cols)]
    for s in sites:
        lines.append(",".join(csv_field(str(s.get(c, ""))) for c in cols))
    return "\n".join(lines) + "\n"


def csv_field(v):
    if any(ch in v for ch in ',"\n'):
        return '"' + v.replace('"', '""') + '"'
    return v


def tenants_conf(tenants):
    items = []
    for t in tenants:
        routes = ", ".join(f'"{r}"' for r in t["routes"])
        table = f" table = {t['table']};" if t.get("table") else ""
        downstream = f' downstream = "{t["downstream"]}";' if t.get("downstream") else ""
        items.append(f'\t{{ name = "{t["name"]}"; tun = "{t["tun"]}";{table}{downstream} '
                     f'routes = ( {routes} ); }}')
    return ",\n".join(items)


def standard(prefix=None, build=None, backup=True, branch2=False):
    """The usual shape: router + branch, pop1/svc1, pop2/svc2 (BACKUP), and
    with BRANCH2 a second site 10.2.0.0/24 behind the same router whose
    tunnel starts from 198.18.0.3. Services are started."""
    lab = Lab(prefix, build)
    try:
        lab.add_router()
        lab.add_branch()
        if branch2:
            lab.add_branch("branch2", net="10.2.0", local_ip=f"{WAN_NET}.3")
        lab.add_pop("pop1", f"{WAN_NET}.11")
        if backup:
            lab.add_pop("pop2", f"{WAN_NET}.12")
        for pop in lab.pops:
            lab.start_services(pop)
    except BaseException:
        lab.close()
        raise
    return lab


def overlapping(prefix=None, build=None):
    """Two tenants: router (198.18.0.2) and router2 (198.18.0.4), each with a
    branch on 10.1.0.0/24; one POP (pop1) with services."""
    lab = Lab(prefix, build)
    try:
        lab.add_router("router", f"{WAN_NET}.2")
        lab.add_branch("branch", "router", "10.1.0")
        lab.add_router("router2", f"{WAN_NET}.4")
        lab.add_branch("branchb", "router2", "10.1.0")
        lab.add_pop("pop1", f"{WAN_NET}.11")
        lab.start_services("pop1")
    except BaseException:
        lab.close()
        raise
    return lab


def cli_status(prefix):
    names = netns_list(prefix)
    if not names:
        print(f"no lab with prefix {prefix}")
        return 1
    for ns in names:
        out = json.loads(sh(["ip", "-n", ns, "-j", "addr", "show"]))
        addrs = [f"{i['ifname']}={a['local']}/{a['prefixlen']}" for i in out
                 for a in i.get("addr_info", []) if i["ifname"] != "lo"]
        pids = sh(["ip", "netns", "pids", ns], check=False).split()
        print(f"{ns:16} {' '.join(addrs) or '-':60} processes: {len(pids)}")
    return 0


def main():
    ap = argparse.ArgumentParser(description="Build or remove the grepop test lab.")
    ap.add_argument("action", choices=["up", "down", "status"])
    ap.add_argument("--prefix", default="gp", help="namespace prefix (default gp)")
    ap.add_argument("--build", help="build directory (default $GREPOP_BUILD or build)")
    ap.add_argument("--no-backup", action="store_true", help="only one POP")
    ap.add_argument("--branch2", action="store_true", help="a second site behind the router")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("lab: needs root (network namespaces)", file=sys.stderr)
        return 1
    if args.action == "down":
        teardown(args.prefix)
        return 0
    if args.action == "status":
        return cli_status(args.prefix)
    try:
        lab = standard(args.prefix, args.build, not args.no_backup, args.branch2)
    except LabError as e:
        print(f"lab: {e}", file=sys.stderr)
        return 1
    # Leave the topology and the services running for the demo: forget them
    # so that exiting does not tear them down; `down` removes them.
    atexit.unregister(lab.close)
    os.unlink(os.path.join(lab.run_dir, "owner"))
    for sig, old in lab._old_handlers.items():
        signal.signal(sig, old)
    lab._closed = True
    for proc in lab.procs:
        proc._err.close()
    print(f"lab {args.prefix} up: " + " ".join(lab.namespaces))
    print(f"remove with: python3 {os.path.relpath(__file__)} down --prefix {args.prefix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A running POP in the lab: its daemons, its control socket, its counters.

    pop = Pop(lab, "pop1")            # writes the config, starts healthd + gatewayd
    pop.ctl({"command": "site.list"})  # a control request, the reply as a dict
    pop.site("branch")                 # that site's counters from shared memory
    pop.stop()

Used by the end-to-end tests and the demo, so both run the real daemons the
same way.
"""

import json
import os
import time

import zmq

from shmlayout import Shm


class PopError(Exception):
    pass


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Poll PREDICATE until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise PopError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Pop:
    """The daemons of one POP of LAB, started with a configuration written
    by lab.write_conf (SITES, TENANTS and EXTRA are passed on)."""

    def __init__(self, lab, name, sites=None, tenants=None, extra="", healthd=True,
                 statsd=False, io="socket"):
        self.lab, self.name = lab, name
        self.io = io
        self.conf = lab.write_conf(name, sites=sites, tenants=tenants, extra=extra, io=io)
        self.runtime_dir = os.path.join(lab.pop_dir(name), "run")
        self.sites_file = os.path.join(lab.pop_dir(name), "lib", "sites.csv")
        self.procs = {}
        self._zmq = zmq.Context.instance()
        self._shm = None
        if healthd:
            self.start("healthd")
        self.start("gatewayd")
        if statsd:
            self.start("statsd")

    def start(self, daemon, *args):
        """Start DAEMON (gatewayd, healthd, statsd) and wait until it serves.
        statsd runs outside the POP's namespace: it needs only the shared
        memory and the runtime directory, and its feed, snapshot and HTTP
        endpoints are then on this host's loopback for tests and the demo."""
        role = None if daemon == "statsd" else self.name
        proc = self.lab.popen(role, [self.lab.binary(daemon), "-c", self.conf, *args],
                              name=f"{self.name}-{daemon}-{len(self.lab.procs)}")
        self.procs[daemon] = proc
        if daemon == "gatewayd":
            wait_for(lambda: os.path.exists(self.path("gatewayd.ctl")) or not proc.alive(),
                     10, what="gatewayd's control socket")
            if not proc.alive():
                raise PopError(f"gatewayd exited: {proc.log()}")
        return proc

    def stop(self, daemon=None):
        """Stop one daemon, or all of them; returns the last exit code."""
        rc = None
        for name in [daemon] if daemon else list(self.procs):
            proc = self.procs.pop(name, None)
            if proc:
                rc = proc.stop()
                self.lab.procs.remove(proc)
        return rc

    def log(self, daemon):
        return self.procs[daemon].log()

    def path(self, name):
        return os.path.join(self.runtime_dir, name)

    def ctl(self, request, timeout_ms=5000):
        """Send one control request to gatewayd; the reply as a dict."""
        sock = self._zmq.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        sock.connect("ipc://" + self.path("gatewayd.ctl"))
        try:
            sock.send(json.dumps(request).encode())
            return json.loads(sock.recv())
        finally:
            sock.close()

    def shm(self):
        if self._shm is None:
            self._shm = Shm(self.path("state"))
        return self._shm

    def site(self, name):
        """Counters of site NAME (see Shm.site_totals), or None."""
        return self.shm().site(name)

    def drops(self, name):
        return self.site(name)["drops"]

    def pop_totals(self):
        return self.shm().pop_totals()

    def nft_drop_counter(self):
        """Packets dropped by gatewayd's nftables rule (unknown sources)."""
        out = json.loads(self.lab.run(self.name, ["nft", "-j", "list", "table", "ip", "grepop"]))
        for item in out["nftables"]:
            rule = item.get("rule")
            if not rule:
                continue
            for expr in rule["expr"]:
                if "counter" in expr:
                    return expr["counter"]["packets"]
        raise PopError("no counter in table ip grepop")

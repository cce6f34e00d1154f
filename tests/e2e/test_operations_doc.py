"""docs/operations.md shows real output: this test makes it so.

The runbook's console blocks are marked with the situation they show:

    <!-- situation: wrong-source-ip -->
    ```console
    $ grepopctl site list --status down
    NAME     SOURCE IP    STATUS ...
    ```

This test builds a lab with one POP (gatewayd, healthd, statsd) and two
branch routers sending keepalives, creates each situation in turn (a site
whose source IP is wrong, a POP that accepts no new tunnels, a policy drop,
a drain, a service down, restarts, a shared memory of another layout), runs
every command the runbook shows for it and asserts that the lines the
runbook shows appear in the real output, in order. Times, counts and
addresses vary, so both sides are compared with every ISO time and every
number replaced; a line "..." in the runbook stands for any lines. Column
headers, status words, counter and metric names, messages must match.

Commands are run as an operator would on the POP, translated to the lab:
grepopctl gets the POP's configuration, journalctl reads the daemon's log
file (-o cat: the message only; -g: a regular expression), curl to the
default HTTP port goes to statsd's port, ping runs on the services' host,
anything else runs in the POP's network namespace.

    python3 tests/e2e/test_operations_doc.py --dump   # print real outputs
"""

import glob
import os
import re
import shlex
import struct
import sys
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
sys.path.insert(0, HERE)

import lab as lablib  # noqa: E402
from grepopctl_run import run_ctl  # noqa: E402
from pop import Pop, wait_for  # noqa: E402
import shmlayout  # noqa: E402

DOC = os.path.join(REPO, "docs", "operations.md")
RUNTIME_DIR = "/run/grepop"		# as the runbook shows it
HTTP_PORT = 9476			# stats.http's default port, as the runbook shows it

SITES = [
    {"name": "branch", "source_ip": "198.18.0.2"},
    # The router of branch2 sends from 198.18.0.3: this entry is wrong.
    {"name": "branch2", "source_ip": "198.18.0.33"},
]


# --- the runbook's blocks


class Block:
    def __init__(self, situation, command, expected, line):
        self.situation, self.command, self.expected, self.line = \
            situation, command, expected, line

    def __repr__(self):
        return f"operations.md:{self.line}: $ {self.command}"


def read_blocks(path=DOC):
    """Every console block preceded by a situation mark, in file order."""
    with open(path) as f:
        text = f.read()
    blocks = []
    rx = re.compile(r"<!-- situation: ([a-z0-9-]+) -->\n```console\n(.*?)```", re.S)
    for m in rx.finditer(text):
        lines = m.group(2).rstrip("\n").split("\n")
        assert lines[0].startswith("$ "), f"a console block starts with '$ command': {lines[0]}"
        assert not any(x.startswith("$ ") for x in lines[1:]), "one command per block"
        line = text.count("\n", 0, m.start()) + 1
        blocks.append(Block(m.group(1), lines[0][2:], lines[1:], line))
    unmarked = len(re.findall(r"```console", text)) - len(blocks)
    assert unmarked == 0, f"{unmarked} console blocks without a situation mark"
    return blocks


TIME_RX = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
NUMBER_RX = re.compile(r"\d+(\.\d+)?")


PLURAL_RX = re.compile(r"\bN ([a-z]+?)s\b")


def normalise(line):
    """LINE with times and numbers replaced (and the plural a number brings:
    "1 packet", "2 packets"), blanks collapsed."""
    line = TIME_RX.sub("T", line)
    line = NUMBER_RX.sub("N", line)
    line = PLURAL_RX.sub(r"N \1", line)
    return " ".join(line.split())


def missing_lines(expected, actual):
    """The first expected line not found, in order, among ACTUAL; None when
    all are. "..." skips any lines; otherwise lines follow each other."""
    want = [normalise(x) for x in expected]
    have = [normalise(x) for x in actual]
    pos, gap = 0, True		# the first line may be anywhere
    for i, w in enumerate(want):
        if w == "...":
            gap = True
            continue
        if gap:
            found = next((j for j in range(pos, len(have)) if have[j] == w), None)
        else:
            found = pos if pos < len(have) and have[pos] == w else None
        if found is None:
            return expected[i]
        pos, gap = found + 1, False
    return None


# --- running a command as the runbook shows it


class Runner:
    def __init__(self, lab, pop):
        self.lab, self.pop = lab, pop

    def logs(self, daemon):
        """Every message DAEMON logged in this lab, without time and level."""
        lines = []
        for path in sorted(glob.glob(os.path.join(self.lab.run_dir,
                                                  f"{self.pop.name}-{daemon}-*.log")),
                           key=os.path.getmtime):
            with open(path) as f:
                for line in f:
                    m = re.match(r"\S+ \w+\[\d+\] \w+: (.*)$", line.rstrip("\n"))
                    if m:
                        lines.append(m.group(1))
        return lines

    def journalctl(self, args):
        unit = args[args.index("-u") + 1]
        daemon = unit.replace("grepop-", "").replace(".service", "")
        assert "-o" in args and args[args.index("-o") + 1] == "cat", "use journalctl -o cat"
        lines = self.logs(daemon)
        if "-g" in args:
            rx = re.compile(args[args.index("-g") + 1])
            lines = [x for x in lines if rx.search(x)]
        return "\n".join(lines)

    def curl(self, args):
        url = args[-1].replace(f"127.0.0.1:{HTTP_PORT}",
                               f"127.0.0.1:{self.lab.stats_ports(self.pop.name)[2]}")
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()

    def run_one(self, args):
        if args[0] == "grepopctl":
            r = run_ctl(self.pop.conf, *args[1:])
            return r.stdout + r.stderr
        if args[0] == "journalctl":
            return self.journalctl(args)
        if args[0] == "curl":
            return self.curl(args)
        if args[0] == "ping":	# from a service host, toward a branch
            return self.lab.run(self.lab.pops[self.pop.name]["svc"], args, check=False)
        return self.lab.run(self.pop.name, args, check=False)

    def run(self, command):
        """The output of COMMAND (pipes into grep allowed), lab paths shown
        as the runbook shows them."""
        parts = command.split(" | ")
        out = self.run_one(shlex.split(parts[0]))
        for part in parts[1:]:
            args = shlex.split(part)
            assert args[0] == "grep" and len(args) == 2, f"only '| grep PATTERN': {part}"
            out = "\n".join(x for x in out.splitlines() if re.search(args[1], x))
        return out.replace(self.pop.runtime_dir, RUNTIME_DIR)


# --- the situations, in the order the test creates them


def site_status(pop, name):
    r = run_ctl(pop.conf, "--json", "site", "show", name)
    return r.json["status"] if r.rc == 0 else None


def drops(pop, site, reason):
    return pop.drops(site)[reason]


def setup_wrong_source_ip(env):
    pop = env.pop
    wait_for(lambda: site_status(pop, "branch") == "up", 10, what="branch up")
    wait_for(lambda: pop.nft_drop_counter() >= 2, 10, what="branch2's GRE dropped by nftables")
    assert pop.site("branch2")["keepalives"] == 0


def setup_auth_failure(env):
    pop = env.pop
    wait_for(lambda: drops(pop, "branch2", "auth_failure") > 0, 10, what="auth_failure drops")
    wait_for(lambda: any("GRE AUTH FAILURE" in x for x in env.runner.logs("gatewayd")), 5,
             what="the GRE AUTH FAILURE log line")
    assert pop.site("branch2")["keepalives"] == 0


def setup_fixed(env):
    wait_for(lambda: site_status(env.pop, "branch2") == "up", 10, what="branch2 up")
    wait_for(lambda: site_status(env.pop, "branch") == "up", 10, what="branch up")


def setup_policy(env):
    lab, pop = env.lab, env.pop
    assert pop.ctl({"command": "site.edit", "name": "branch",
                    "set": {"services": "swg"}})["ok"]
    lab.run("branch", ["curl", "-s", "-m", "1", f"http://{lablib.SVC_IP}:7/"], check=False)
    wait_for(lambda: drops(pop, "branch", "policy") > 0, 5, what="policy drops")


def setup_mtu(env):
    # Traffic from the branch first: the POP learns where 10.1.0.2 lives.
    out = env.lab.run("branch", ["curl", "-s", "-m", "3", f"http://{lablib.SVC_IP}/healthz"],
                      check=False)
    assert out.strip() == "ok", out


def setup_route_back(env):
    env.lab.run(env.lab.pops["pop1"]["svc"], ["ping", "-c", "1", "-W", "1", "10.1.0.77"],
                check=False)
    wait_for(lambda: env.pop.pop_totals()["drops"]["no_route_back"] > 0, 5,
             what="no_route_back drops")
    time.sleep(0.6)	# one statsd interval


def setup_draining(env):
    pop = env.pop
    wait_for(lambda: drops(pop, "branch", "not_serving") > 0, 5, what="keepalives withheld")
    wait_for(lambda: (env.router.status() or {}).get("active") != "primary", 10,
             what="the router leaving this POP")


def setup_undrained(env):
    wait_for(lambda: (env.router.status() or {}).get("active") == "primary", 10,
             what="the router back on this POP")


def setup_service_down(env):
    env.lab.svc_http("pop1", False)
    for service in ("swg", "cfw"):	# one process serves both checks in the lab
        wait_for(lambda: env.pop.shm().health(service) == "down", 10, what=f"{service} down")
    time.sleep(0.6)	# one statsd interval


def setup_restart(env):
    lab, pop = env.lab, env.pop
    lab.svc_http("pop1", True)
    for service in ("swg", "cfw"):
        wait_for(lambda: pop.shm().health(service) == "up", 10, what=f"{service} up again")
    wait_for(lambda: site_status(pop, "branch") == "up", 15, what="branch up again")
    before = pop.site("branch")
    refusals = [x for x in env.runner.logs("gatewayd") if "GRE AUTH FAILURE" in x]
    for daemon in ("statsd", "healthd", "gatewayd"):
        pop.stop(daemon)
        pop.start(daemon)
    wait_for(lambda: pop.site("branch")["keepalives"] > before["keepalives"], 10,
             what="keepalives counted after the restart")
    after = pop.site("branch")
    for key in ("keepalives", "rx_packets", "tx_packets"):
        assert after[key] >= before[key], f"{key} went back from {before[key]} to {after[key]}"
    assert after["drops"]["policy"] >= before["drops"]["policy"] > 0
    wait_for(lambda: site_status(pop, "branch") == "up", 10, what="statsd serving again")
    # A restarted gatewayd does not report the refusals of the one before.
    assert [x for x in env.runner.logs("gatewayd") if "GRE AUTH FAILURE" in x] == refusals


def setup_shm_layout(env):
    pop = env.pop
    pop.stop()
    path = pop.path("state")
    with open(path, "r+b") as f:
        f.seek(shmlayout.OFF_LAYOUT_VERSION)
        f.write(struct.pack("<I", shmlayout.LAYOUT_VERSION + 1))
    proc = pop.start("statsd")
    assert proc.popen.wait(10) == 1


SITUATIONS = [
    ("wrong-source-ip", setup_wrong_source_ip),
    ("no-new", None),
    ("fix-source-ip", None),
    ("auth-failure", setup_auth_failure),
    ("accept", None),
    ("fixed", setup_fixed),
    ("keepalives", None),
    ("policy", setup_policy),
    ("policy-fix", None),
    ("mtu", setup_mtu),
    ("route-back", setup_route_back),
    ("drain", None),
    ("draining", setup_draining),
    ("undrain", None),
    ("undrained", setup_undrained),
    ("service-down", setup_service_down),
    ("restart", setup_restart),
    ("shm-layout", setup_shm_layout),
]


class Env:
    pass


def start_env(prefix, build):
    env = Env()
    env.lab = lablib.standard(prefix, build, backup=False, branch2=True)
    try:
        env.pop = Pop(env.lab, "pop1", sites=SITES, statsd=True)
        env.runner = Runner(env.lab, env.pop)
        wait_for(lambda: env.pop.shm().health("swg") == "up", 10, what="services up")
        env.router = env.lab.start_router(["--keepalive", "1,3"], backup=None, ipv6=False)
        env.router2 = env.lab.start_router(["--keepalive", "1,3"], site="branch2",
                                           backup=None, ipv6=False)
    except BaseException:
        env.lab.close()
        raise
    return env


def run_situations(env, blocks, on_block):
    for name, setup in SITUATIONS:
        if setup:
            setup(env)
        for block in [b for b in blocks if b.situation == name]:
            on_block(block, env.runner.run(block.command))


def test_every_situation_is_in_the_runbook():
    shown = {b.situation for b in read_blocks()}
    known = {name for name, _ in SITUATIONS}
    assert shown - known == set(), "situations the test does not create"
    assert known - shown == set(), "situations the runbook does not show"


def test_normalise_and_match():
    assert normalise("seen 12s ago  pop1") == normalise("seen 3s ago pop1")
    assert normalise("refused (1 packet; POP") == normalise("refused (7 packets; POP")
    assert normalise("status up") != normalise("status down")
    assert missing_lines(["a 1", "...", "c 2"], ["x", "a 5", "b", "c 7"]) is None
    assert missing_lines(["a 1", "c 2"], ["a 5", "b", "c 7"]) == "c 2"
    assert missing_lines(["status down"], ["status up"]) == "status down"


def test_runbook_shows_real_output(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    from conftest import module_prefix
    blocks = read_blocks()
    failures = []

    def check(block, output):
        missing = missing_lines(block.expected, output.splitlines())
        if missing is not None:
            failures.append(f"{block}: no line {missing!r} in:\n{output}")

    start = time.monotonic()
    env = start_env(module_prefix(request), build_dir)
    try:
        run_situations(env, blocks, check)
    finally:
        env.lab.close()
    assert not failures, "\n\n".join(failures)
    assert time.monotonic() - start < 90


def main():
    """--dump: print every block's real output, to write the runbook from."""
    build = os.environ.get("GREPOP_BUILD", os.path.join(REPO, "build"))
    env = start_env(f"ops{os.getpid() % 10000}", build)

    def dump(block, output):
        print(f"<!-- situation: {block.situation} -->\n```console\n$ {block.command}")
        print(output.rstrip("\n"))
        print("```\n", flush=True)
    try:
        run_situations(env, read_blocks(), dump)
    finally:
        env.lab.close()


if __name__ == "__main__":
    if sys.argv[1:] == ["--dump"]:
        main()

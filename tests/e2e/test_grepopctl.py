"""grepopctl protocol conformance: build/grepopctl against stand-ins.

These tests check the client side of docs/architecture.md only: the exact
requests grepopctl sends to gatewayd's control socket and statsd's snapshot
endpoint, how it renders the documented replies, feed messages and errors,
that a silent daemon never hangs it, and its exit codes (0 ok, 1 refused or
not found, 2 usage, 3 unreachable). The stand-ins are not gatewayd and
statsd: the end-to-end run against the real daemons uses the same run_ctl().
"""

import os
import pty
import select
import subprocess
import time

import pytest

from grepopctl_run import (GREPOPCTL, FakeGatewayd, FakeStatsd, Runtime, site_message,
                           write_conf)

pytestmark = pytest.mark.skipif(not os.access(GREPOPCTL, os.X_OK),
                                reason="build grepopctl first (GREPOP_BUILD)")

SITECONF = {"name": "b1", "source_ip": "198.18.0.2", "traffic_type": "user",
            "services": "swg+cfw", "keepalive": True, "enabled": True,
            "tenant": "default", "key": 7, "http_ports": [80, 8080], "rate_mbps": 0}


@pytest.fixture
def rt():
    runtime = Runtime()
    yield runtime
    runtime.close()


def gatewayd(rt, reply=None):
    fake = FakeGatewayd(rt.ctl_endpoint, reply)
    fake.start()
    return fake


def statsd(rt, **kwargs):
    fake = FakeStatsd(rt.snapshot_endpoint, rt.feed_endpoint, **kwargs)
    fake.start()
    return fake


# gatewayd's control socket


def test_site_add_sends_columns_as_text(rt):
    gw = gatewayd(rt, lambda req: {"ok": True, "site": SITECONF})
    try:
        r = rt.run("site", "add", "b1", "--source-ip", "198.18.0.2", "--key", "7",
                   "--http-ports", "80;8080", "--keepalive", "yes", "--rate-mbps", "0")
    finally:
        gw.stop()
    assert r.rc == 0, r
    assert gw.requests == [{"command": "site.add", "site": {
        "name": "b1", "source_ip": "198.18.0.2", "key": "7", "http_ports": "80;8080",
        "keepalive": "yes", "rate_mbps": "0"}}]
    assert r.stdout.startswith("site b1 added\n")
    assert "http ports    80;8080\n" in r.stdout
    assert "key           7\n" in r.stdout


def test_site_edit_json_prints_the_reply(rt):
    gw = gatewayd(rt, lambda req: {"ok": True, "site": SITECONF})
    try:
        r = rt.run("--json", "site", "edit", "b1", "--enabled", "no", "--tenant", "t2")
    finally:
        gw.stop()
    assert r.rc == 0, r
    assert gw.requests == [{"command": "site.edit", "name": "b1",
                            "set": {"enabled": "no", "tenant": "t2"}}]
    assert r.json == {"ok": True, "site": SITECONF}


def test_refusal_is_printed_and_exits_1(rt):
    error = "site \"nope\" does not exist: nothing was changed"
    gw = gatewayd(rt, lambda req: {"ok": False, "error": error})
    try:
        r = rt.run("site", "disable", "b1", "nope")
        rj = rt.run("site", "delete", "nope", "--json")
    finally:
        gw.stop()
    assert r.rc == 1, r
    assert r.stderr == "grepopctl: gatewayd refused: %s\n" % error
    assert r.stdout == ""
    assert gw.requests[0] == {"command": "site.disable", "names": ["b1", "nope"]}
    assert rj.rc == 1, rj
    assert rj.json == {"ok": False, "error": error}


def test_enable_lists_names(rt):
    gw = gatewayd(rt, lambda req: {"ok": True, "names": req["names"]})
    try:
        r = rt.run("site", "enable", "a", "b")
    finally:
        gw.stop()
    assert r.rc == 0, r
    assert gw.requests == [{"command": "site.enable", "names": ["a", "b"]}]
    assert r.stdout == "enabled (2): a, b\n"


def test_import_dry_run_sends_the_file(rt):
    text = "name,source_ip\nb1,198.18.0.2\nb2,198.18.0.3\n"
    path = os.path.join(rt.dir, "new sites.csv")
    with open(path, "w") as f:
        f.write(text)
    gw = gatewayd(rt, lambda req: {"ok": True, "added": ["b2"], "changed": ["b1"],
                                   "removed": []})
    try:
        r = rt.run("site", "import", path, "--dry-run")
    finally:
        gw.stop()
    assert r.rc == 0, r
    assert gw.requests == [{"command": "site.import", "csv": text, "file": path,
                            "dry_run": True}]
    assert r.stdout == ("would add (1): b2\nwould change (1): b1\nwould remove (0): -\n"
                        "dry run: nothing was changed\n")


def test_import_missing_file_sends_nothing(rt):
    gw = gatewayd(rt)
    try:
        r = rt.run("site", "import", os.path.join(rt.dir, "absent.csv"))
    finally:
        gw.stop()
    assert r.rc == 1, r
    assert "absent.csv: No such file or directory" in r.stderr
    assert gw.requests == []


def test_export_prints_the_csv(rt):
    csv = "name,source_ip,traffic_type\nb1,198.18.0.2,user\n"
    gw = gatewayd(rt, lambda req: {"ok": True, "csv": csv})
    try:
        r = rt.run("site", "export")
    finally:
        gw.stop()
    assert r.rc == 0, r
    assert gw.requests == [{"command": "site.export"}]
    assert r.stdout == csv


@pytest.mark.parametrize("verb", ["accept", "no-new", "drain"])
def test_pop_acceptance(rt, verb):
    gw = gatewayd(rt, lambda req: {"ok": True, "mode": req["mode"]})
    try:
        r = rt.run("pop", verb)
    finally:
        gw.stop()
    assert r.rc == 0, r
    assert gw.requests == [{"command": "pop.accept", "mode": verb}]
    assert r.stdout == "acceptance mode: %s\n" % verb


def test_silent_gatewayd_times_out_with_3(rt):
    gw = gatewayd(rt, lambda req: None)
    try:
        r = rt.run("-t", "0.5", "reload")
    finally:
        gw.stop()
    assert r.rc == 3, r
    assert gw.requests == [{"command": "reload"}]
    assert r.elapsed < 3
    assert "no answer from gatewayd at %s within 0.5 s" % rt.ctl_endpoint in r.stderr
    assert "may not be running" in r.stderr


def test_no_gatewayd_exits_3(rt):
    r = rt.run("pop", "drain")
    assert r.rc == 3, r
    assert "%s/gatewayd.ctl does not exist" % rt.dir in r.stderr


def test_reply_without_ok_is_a_protocol_error(rt):
    gw = gatewayd(rt, lambda req: {"mode": "drain"})
    try:
        r = rt.run("pop", "drain")
    finally:
        gw.stop()
    assert r.rc == 1, r
    assert "does not follow the protocol" in r.stderr


# statsd's snapshot


def many_sites(n):
    return [site_message("site-%03d" % i, 1, status="down" if i % 5 == 0 else "up",
                         traffic_type="iot" if i % 2 else "user")
            for i in reversed(range(n))]


def test_site_list_pages_of_100(rt):
    st = statsd(rt, sites=many_sites(250))
    try:
        r = rt.run("site", "list", "--page", "3")
        rj = rt.run("site", "list", "--json")
        rf = rt.run("site", "list", "--status", "down", "--traffic-type", "user",
                    "--json")
        rx = rt.run("site", "list", "--page", "4")
    finally:
        st.stop()
    # Exactly one frame "snapshot" per request (the ROUTER adds the identity).
    assert st.requests == [[b"snapshot"]] * 4
    assert r.rc == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "IP", "STATUS", "KEEPALIVE", "POP",
                                "THROUGHPUT", "KBPS", "LAST", "USER", "TRAFFIC", "TRAFFIC",
                                "TYPE"]
    assert lines[1].split()[0] == "site-200"
    assert lines[-2].split()[0] == "site-249"
    assert lines[-1] == "page 3 of 3 (250 sites)"
    assert len(lines) == 1 + 50 + 1
    # Aligned: every row starts its STATUS column where the header does.
    col = lines[0].index("STATUS")
    assert all(line[col - 2:col] == "  " and line[col] != " " for line in lines[1:-1])
    assert "  down    not seen  " in lines[1]                # site-200
    assert "  up      seen 12s ago  " in lines[2] or "  up      seen 13s ago  " in lines[2]
    assert "fra1 (ams1)" in lines[2] and "12.5/300.1" in lines[2]

    assert rj.rc == 0 and rj.json["total"] == 250 and len(rj.json["sites"]) == 250
    assert rj.json["sites"][0]["name"] == "site-000"
    assert rf.json["total"] == 25
    assert {s["status"] for s in rf.json["sites"]} == {"down"}
    assert rx.rc == 1 and "there is no page 4: 250 sites match, 3 pages" in rx.stderr


def test_site_show(rt):
    st = statsd(rt, sites=[site_message("b1", 1), site_message("b2", 1, status="disabled")])
    try:
        r = rt.run("site", "show", "b1")
        rj = rt.run("--json", "site", "show", "b2")
        rn = rt.run("site", "show", "b3")
    finally:
        st.stop()
    assert r.rc == 0, r
    assert "\nstatus                 up\n" in r.stdout
    assert "\ndrops policy           4\n" in r.stdout
    assert "\ndrops bad_key          1\n" in r.stdout
    assert "\nkey                    none\n" in r.stdout
    assert rj.rc == 0 and rj.json["name"] == "b2" and rj.json["status"] == "disabled"
    assert rn.rc == 1 and "no site named \"b3\"" in rn.stderr


def test_pop_and_health_show(rt):
    st = statsd(rt)
    try:
        p = rt.run("pop", "show")
        h = rt.run("health", "show")
        hj = rt.run("health", "show", "--json")
    finally:
        st.stop()
    assert p.rc == 0, p
    assert "accepting new tunnels  no\n" in p.stdout
    assert "acceptance mode        no-new\n" in p.stdout
    assert "location               Frankfurt, DE\n" in p.stdout
    assert "backup pops            ams1\n" in p.stdout
    assert h.rc == 0, h
    assert h.stdout.startswith("healthd alive, last heartbeat 1s ago\n")
    assert "CHECKS OK  CHECKS FAILED" in h.stdout
    assert [l.split()[:2] + l.split()[-2:] for l in h.stdout.splitlines()[3:]] == \
        [["swg", "up", "180", "2"], ["cfw", "down", "7", "30"]]
    assert hj.json["services"]["cfw"]["checks_failed"] == 30


def test_incomplete_snapshot_is_a_protocol_error(rt):
    st = statsd(rt, sites=[site_message("b1", 1)], end_count=2)
    try:
        r = rt.run("site", "list")
    finally:
        st.stop()
    assert r.rc == 1, r
    assert "statsd at %s sent a message that does not follow the protocol" \
        % rt.snapshot_endpoint in r.stderr


def test_silent_statsd_times_out_with_3(rt):
    st = statsd(rt, answer=False)
    try:
        r = rt.run("-t", "0.4", "site", "list")
    finally:
        st.stop()
    assert r.rc == 3, r
    assert r.elapsed < 3
    assert "no answer from statsd at %s within 0.4 s" % rt.snapshot_endpoint in r.stderr


def test_tcp_statsd_not_running_exits_3(rt):
    conf = write_conf(rt.dir, feed="tcp://127.0.0.1:1", snapshot="tcp://*:1")
    r = subprocess.run([GREPOPCTL, "-c", conf, "-t", "0.3", "pop", "show"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 3, r
    assert "statsd at tcp://127.0.0.1:1 within 0.3 s" in r.stderr     # "*" means this host


# statsd's feed


def events(seq):
    return [("grepop.v1.event", {"type": "service.down", "time_ns": 0, "pop": "fra1",
                                 "seq": seq, "time": "2026-12-03T13:24:05Z",
                                 "service": "swg", "from": "up", "to": "down",
                                 "reason": "HTTP 503"}),
            ("grepop.v1.site.b1", site_message("b1", seq))]


def test_events_lines_and_json(rt):
    st = statsd(rt, publish=events)
    try:
        r = rt.run("events", "--count", "2", "--seconds", "10")
        rj = rt.run("events", "--count", "3", "--seconds", "10", "--json")
    finally:
        st.stop()
    assert r.rc == 0, r
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0] == ("2026-12-03T13:24:05Z fra1 service.down service=swg from=up "
                        "to=down reason=\"HTTP 503\"")
    assert rj.rc == 0, rj
    assert [e["type"] for e in rj.json_lines] == ["service.down"] * 3   # no site messages


def test_events_seconds_bound(rt):
    st = statsd(rt)                     # connected, publishes nothing
    try:
        r = rt.run("events", "--seconds", "1")
    finally:
        st.stop()
    assert r.rc == 0, r
    assert r.stdout == ""
    assert 0.9 < r.elapsed < 4


def test_watch_lines_when_not_a_terminal(rt):
    st = statsd(rt, publish=events)
    try:
        r = rt.run("watch", "--count", "4", "--seconds", "10")
        rj = rt.run("watch", "--count", "2", "--seconds", "10", "--json")
    finally:
        st.stop()
    assert r.rc == 0, r
    lines = r.stdout.splitlines()
    assert len(lines) == 4
    assert any(l.startswith("site ") and " name=b1 status=up" in l for l in lines)
    assert any(l.startswith("event 2026-12-03T13:24:05Z fra1 service.down") for l in lines)
    assert {m["topic"] for m in rj.json_lines} <= {"grepop.v1.event", "grepop.v1.site.b1"}


def test_watch_redraws_on_a_terminal(rt):
    st = statsd(rt, sites=[site_message("a1", 1)],
                publish=lambda seq: [("grepop.v1.site.b1", site_message("b1", seq))])
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([GREPOPCTL, "-c", rt.conf, "watch", "--count", "5",
                                 "--seconds", "10"], stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        out = b""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        rc = proc.wait(10)
    finally:
        os.close(master)
        st.stop()
    text = out.decode()
    assert rc == 0, proc.stderr.read()
    assert "\x1b[H\x1b[J" in text                   # the screen is redrawn
    last = text.split("\x1b[H\x1b[J")[-1]
    assert "acceptance mode" in last
    assert "a1 " in last and "b1 " in last          # snapshot plus feed
    assert "page 1 of 1 (2 sites)" in last


# usage and configuration


@pytest.mark.parametrize("args,message", [
    (["site", "frob"], "unknown command \"site frob\""),
    (["site", "list", "--bogus"], "unknown option --bogus"),
    (["site", "add", "b1"], "site add needs --source-ip"),
    (["pop", "show", "extra"], "unexpected argument \"extra\""),
    ([], "missing command"),
])
def test_usage_errors_exit_2(rt, args, message):
    r = rt.run(*args)
    assert r.rc == 2, r
    assert message in r.stderr
    assert "\nusage: grepopctl " in r.stderr
    assert r.stdout == ""


def test_help_exits_0(rt):
    r = rt.run("help")
    assert r.rc == 0
    assert "site list [--status up|down|disabled]" in r.stdout


def test_bad_configuration_exits_1(rt):
    path = os.path.join(rt.dir, "bad.conf")
    with open(path, "w") as f:
        f.write("pop = { name = 3; };\n")
    r = subprocess.run([GREPOPCTL, "-c", path, "pop", "show"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 1
    assert r.stderr.startswith("grepopctl: %s:1: " % path)

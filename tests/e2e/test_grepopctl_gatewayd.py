"""grepopctl end to end against the real gatewayd: every control command,
checked by what gatewayd then holds (its own site.list, the sites file, the
acceptance mode file), refusals and a stopped gatewayd.

statsd-backed commands (site list/show, pop show, health show, watch,
events) join here when statsd lands; until then test_grepopctl.py checks
them against the documented protocol.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as lablib  # noqa: E402
from conftest import module_prefix  # noqa: E402
from grepopctl_run import run_ctl  # noqa: E402
from pop import Pop  # noqa: E402

SITES = [{"name": "branch", "source_ip": "198.18.0.2"}]


@pytest.fixture(scope="module")
def pop(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    lab = lablib.standard(module_prefix(request), build_dir, backup=False)
    try:
        yield Pop(lab, "pop1", sites=SITES)
    finally:
        lab.close()


def ctl(pop, *args):
    return run_ctl(pop.conf, *args)


def sites(pop):
    return {s["name"]: s for s in pop.ctl({"command": "site.list"})["sites"]}


def test_add_edit_disable_enable_delete(pop):
    r = ctl(pop, "site", "add", "b9", "--source-ip", "198.18.0.9", "--key", "9",
            "--traffic-type", "iot", "--http-ports", "80;8080")
    assert r.rc == 0, r
    assert r.stdout.startswith("site b9 added\n")
    assert sites(pop)["b9"]["key"] == 9
    assert sites(pop)["b9"]["http_ports"] == [80, 8080]
    with open(pop.sites_file) as f:
        assert "\nb9,198.18.0.9,iot," in f.read()

    r = ctl(pop, "--json", "site", "edit", "b9", "--rate-mbps", "50")
    assert r.rc == 0, r
    assert r.json["site"]["rate_mbps"] == 50

    assert ctl(pop, "site", "disable", "b9").stdout == "disabled (1): b9\n"
    assert sites(pop)["b9"]["enabled"] is False
    assert ctl(pop, "site", "enable", "b9").rc == 0
    assert sites(pop)["b9"]["enabled"] is True
    assert ctl(pop, "site", "delete", "b9").rc == 0
    assert "b9" not in sites(pop)


def test_refusals_change_nothing(pop):
    before = sites(pop)
    r = ctl(pop, "site", "delete", "branch", "nope")
    assert r.rc == 1, r
    assert r.stderr.startswith("grepopctl: gatewayd refused: ")
    assert "nope" in r.stderr
    r = ctl(pop, "site", "add", "bad", "--source-ip", "300.1.2.3")
    assert r.rc == 1, r
    r = ctl(pop, "site", "edit", "branch", "--keepalive", "maybe")
    assert r.rc == 1, r
    assert sites(pop) == before


def test_import_dry_run_and_export(pop):
    path = os.path.join(pop.lab.pop_dir("pop1"), "import.csv")
    with open(path, "w") as f:
        f.write("name,source_ip\nbranch,198.18.0.2\nnew1,198.18.0.7\n")
    r = ctl(pop, "site", "import", path, "--dry-run")
    assert r.rc == 0, r
    assert "would add (1): new1\n" in r.stdout
    assert "new1" not in sites(pop)

    r = ctl(pop, "site", "export")
    assert r.rc == 0, r
    with open(pop.sites_file) as f:
        assert r.stdout == f.read()


def test_acceptance_mode(pop):
    accept_file = os.path.join(pop.lab.pop_dir("pop1"), "lib", "accept")
    try:
        r = ctl(pop, "pop", "drain")
        assert r.rc == 0, r
        assert r.stdout == "acceptance mode: drain\n"
        with open(accept_file) as f:
            assert f.read().split() == ["drain"]
    finally:
        assert ctl(pop, "pop", "accept").rc == 0
    with open(accept_file) as f:
        assert f.read().split() == ["accept"]


def test_stopped_gatewayd_exits_3(pop):
    pop.stop("gatewayd")
    try:
        r = run_ctl(pop.conf, "-t", "0.5", "reload")
        assert r.rc == 3, r
        assert "gatewayd" in r.stderr and "may not be running" in r.stderr
    finally:
        pop.start("gatewayd")

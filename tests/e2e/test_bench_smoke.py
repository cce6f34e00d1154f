"""The benchmark in smoke mode: bench.py builds its lab, runs gatewayd and
the naive forwarder for about a second each on the forward and the return
path, and reports. Asserts only that it ran, that the kernel counted
delivered packets for both programs and that it printed its summary; the
figures themselves are for `make bench`.
"""

import json
import os
import re
import subprocess

import pytest

from conftest import REPO

BENCH = os.path.join(REPO, "tests", "bench", "bench.py")
SUMMARY = re.compile(r"^bench (\S+) grepop_pps=(\d+) naive_pps=(\d+) ratio=(\S+)$", re.M)


@pytest.fixture(scope="module")
def smoke(build_dir, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    p = subprocess.run(["/usr/bin/python3", BENCH, "--smoke", "--build", build_dir,
                        "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    with open(out) as f:
        return p.stdout, json.load(f)


def test_prints_one_summary_line_per_profile(smoke):
    stdout, _ = smoke
    lines = {m.group(1): m for m in SUMMARY.finditer(stdout)}
    assert set(lines) == {"udp64", "return-udp64"}, stdout
    for m in lines.values():
        assert int(m.group(2)) > 0 and int(m.group(3)) > 0, m.group(0)
        assert float(m.group(4)) > 0, m.group(0)


def test_both_programs_delivered_by_the_kernels_count(smoke):
    _, result = smoke
    rounds = [r for p in result["profiles"] for r in p["rounds"]]
    assert {(r["program"], r["profile"]) for r in rounds} == {
        (prog, prof) for prog in ("grepop", "naive") for prof in ("udp64", "return-udp64")}
    for r in rounds:
        acc = r["accounting"]
        assert acc["sent"] > 0 and acc["delivered"] > 0, (r["program"], r["profile"], acc)
        assert acc["delivered"] <= acc["sent"] + 10, acc
        assert r["cpu_s"] > 0, r


def test_gatewayd_counts_what_it_received(smoke):
    """Every packet that reached pop1 is a raw-socket drop or in gatewayd's
    counters, and what gatewayd delivered is what the TUN took."""
    _, result = smoke
    for r in result["profiles"][0]["rounds"]:
        if r["program"] != "grepop":
            continue
        acc = r["accounting"]
        g = acc["gatewayd"]
        assert abs(acc["arrived"] - acc["raw_socket_drops"] - g["rx_packets"]) <= 10, acc
        assert g["rx_packets"] == g["delivered"] + sum(g["drops"].values()) - \
            g["drops"].get("local", 0) - g["drops"].get("no_route_back", 0), acc
        assert g["delivered"] == acc["tun_written"], acc


def test_summary_is_in_the_json(smoke):
    _, result = smoke
    assert [s["profile"] for s in result["summary"]] == ["udp64", "return-udp64"]
    assert result["machine"]["nproc"] >= 1

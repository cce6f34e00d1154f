"""The benchmark in smoke mode: bench.py builds its lab, runs gatewayd and
the naive forwarder for about a second each on the forward path (UDP and
bulk TCP, which gatewayd may coalesce) and the return path, and reports.
Asserts only that it ran, that the kernel counted delivered packets for both
programs and that it printed its summary and verdicts; the figures
themselves are for `make bench`. Also: that the bench's way of counting
counts a coalesced packet as the packets it carries.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO
import lab as lablib

BENCH = os.path.join(REPO, "tests", "bench", "bench.py")
sys.path.insert(0, os.path.dirname(BENCH))

import bench  # noqa: E402

# Writes one TCP packet of SEGMENTS x 1000 payload bytes, with a
# virtio_net_hdr that asks for segmentation (GSO TCPv4, partial checksum),
# to a TUN in the current namespace, as gatewayd's coalescing does.
GSO_WRITER = r'''
import fcntl, os, socket, struct, subprocess, sys, time
segments = int(sys.argv[1])
fd = os.open("/dev/net/tun", os.O_RDWR)
IFF_TUN, IFF_NO_PI, IFF_VNET_HDR, TUNSETIFF = 0x1, 0x1000, 0x4000, 0x400454ca
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"gt0", IFF_TUN | IFF_NO_PI | IFF_VNET_HDR))
for cmd in (["ip", "link", "set", "gt0", "up"], ["ip", "route", "add", "10.0.0.0/8", "dev", "gt0"]):
    subprocess.run(cmd, check=True)
payload = bytes(1000 * segments)
src, dst = socket.inet_aton("10.1.0.2"), socket.inet_aton("203.0.113.1")
total = 40 + len(payload)
ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, 6, 0, src, dst))
s = sum(struct.unpack("!10H", ip))
s = (s & 0xffff) + (s >> 16)
s = (s & 0xffff) + (s >> 16)
ip[10:12] = struct.pack("!H", ~s & 0xffff)
pseudo = sum(struct.unpack("!4H", src + dst)) + 6 + 20 + len(payload)
pseudo = (pseudo & 0xffff) + (pseudo >> 16)
pseudo = (pseudo & 0xffff) + (pseudo >> 16)
tcp = struct.pack("!HHIIBBHHH", 10000, 5001, 1, 1, 5 << 4, 0x10, 65535, pseudo, 0)
# flags NEEDS_CSUM, gso TCPV4, hdr_len, gso_size, csum_start, csum_offset
vnet = struct.pack("=BBHHHH", 1, 1, 40, 1000, 20, 16)
os.write(fd, vnet + bytes(ip) + tcp + payload)
time.sleep(0.3)
'''
SUMMARY = re.compile(r"^bench (\S+) grepop_pps=(\d+) naive_pps=(\d+) ratio=(\S+)$", re.M)
VERDICT = re.compile(r"^target (\S+) (\S+) measured=(\S+) (HIT|MISS|n/a)", re.M)
SMOKE = ["udp64", "tcp", "return-udp64"]


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
    assert set(lines) == set(SMOKE), stdout
    for m in lines.values():
        assert int(m.group(2)) > 0 and int(m.group(3)) > 0, m.group(0)
        assert float(m.group(4)) > 0, m.group(0)


def test_both_programs_delivered_by_the_kernels_count(smoke):
    _, result = smoke
    rounds = [r for p in result["profiles"] for r in p["rounds"]]
    assert {(r["program"], r["profile"]) for r in rounds} == {
        (prog, prof) for prog in ("grepop", "naive") for prof in SMOKE}
    for r in rounds:
        acc = r["accounting"]
        assert acc["sent"] > 0 and acc["delivered"] > 0, (r["program"], r["profile"], acc)
        assert acc["delivered"] <= acc["sent"] + 10, acc
        assert r["cpu_s"] > 0, r


def test_gatewayd_counts_what_it_received(smoke):
    """Every packet that reached pop1 is a raw-socket drop or in gatewayd's
    counters; the TUN took what gatewayd delivered, in as many writes or
    fewer (coalesced), and the sink counted it segment by segment."""
    _, result = smoke
    for p in result["profiles"][:2]:
        for r in p["rounds"]:
            if r["program"] != "grepop":
                continue
            acc = r["accounting"]
            g = acc["gatewayd"]
            assert abs(acc["arrived"] - acc["raw_socket_drops"] - g["rx_packets"]) <= 10, acc
            assert g["rx_packets"] == g["delivered"] + sum(g["drops"].values()) - \
                g["drops"].get("local", 0) - g["drops"].get("no_route_back", 0), acc
            assert 0 < acc["tun_written"] <= g["delivered"], acc
            assert abs(acc["delivered"] + acc["egress_drops"] - g["delivered"]) <= 10, acc


def test_summary_is_in_the_json(smoke):
    _, result = smoke
    assert [s["profile"] for s in result["summary"]] == SMOKE
    assert result["machine"]["nproc"] >= 1
    assert all(v > 0 for v in result["generator_max_pps"].values())


def test_verdicts_are_printed_and_in_the_json(smoke):
    stdout, result = smoke
    printed = {(m.group(1), m.group(2)) for m in VERDICT.finditer(stdout)}
    assert ("tcp", "cpu_ratio<=0.25") in printed and ("udp64", "ratio>=0.95") in printed
    assert {(v["profile"], v["target"]) for v in result["verdicts"]} == printed


def tx_packets(ns, ifname):
    out = lablib.sh(["ip", "-n", ns, "-j", "-s", "link", "show", ifname])
    return json.loads(out)[0]["stats64"]["tx"]["packets"]


@pytest.mark.parametrize("segment", [False, True])
def test_a_gso_packet_counts_as_its_segments(segment):
    """What the bench counts as delivered: a coalesced packet written to a
    TUN and forwarded out of a veth counts once on a veth with offloads (the
    control), and as its 10 segments on one set up by the bench."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    ns, sink = f"t{os.getpid()}gso", f"t{os.getpid()}gsos"
    lablib.sh(["ip", "netns", "add", ns])
    lablib.sh(["ip", "netns", "add", sink])
    try:
        lablib.sh(["ip", "-n", ns, "link", "add", "va", "type", "veth", "peer", "name", "vb",
                   "netns", sink])
        lablib.sh(["ip", "-n", sink, "link", "set", "vb", "up"])
        for cmd in (["sysctl", "-qw", "net.ipv4.ip_forward=1"],
                    ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
                    ["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
                    ["ip", "link", "set", "va", "up"],
                    ["ip", "addr", "add", "192.0.2.1/30", "dev", "va"],
                    ["ip", "neigh", "replace", "192.0.2.2", "lladdr", "02:00:00:00:5e:00",
                     "dev", "va", "nud", "permanent"],
                    ["ip", "route", "add", "203.0.113.0/24", "via", "192.0.2.2"]):
            lablib.sh(["ip", "netns", "exec", ns, *cmd])
        if segment:
            bench.segment_before_counting(
                lambda cmd: lablib.sh(["ip", "netns", "exec", ns, *cmd]), "va")
        before = tx_packets(ns, "va")
        lablib.sh(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", GSO_WRITER, "10"])
        assert tx_packets(ns, "va") - before == (10 if segment else 1)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
        subprocess.run(["ip", "netns", "del", sink], check=False)

"""The benchmark's generator on the wire, decoded by scapy (an independent
decoder): outer IPv4 + GRE with valid checksums from one source IP per
site, TCP flows that open with a SYN carrying MSS and then send consecutive
segments with valid checksums (IMIX sizes per flow in imix-tcp), Cisco
keepalives addressed back to the site; --rate paces, --udp-gso writes
large UDP packets.
"""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as lablib  # noqa: E402

CAPTURE = r'''
import json, socket, subprocess, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
s.bind(("vb", 0))
s.settimeout(1)
subprocess.run(sys.argv[1:], check=True, capture_output=True)
frames = []
while True:
    try:
        frames.append(s.recv(65536).hex())
    except socket.timeout:
        break
print(json.dumps(frames))
'''


@pytest.fixture
def capture(build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    ns = f"t{os.getpid()}gregen"
    lablib.sh(["ip", "netns", "add", ns])
    try:
        lablib.sh(["ip", "-n", ns, "link", "add", "name", "va", "type", "veth", "peer", "name",
                   "vb"])
        for dev in ("va", "vb"):
            lablib.sh(["ip", "-n", ns, "link", "set", dev, "up"])

        def run(*args):
            cmd = [os.path.join(build_dir, "tools", "gregen"), "--ifname", "va", "--dst-mac",
                   "02:00:00:00:00:01", "--gateway", "198.18.0.11", *args]
            out = lablib.sh(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", CAPTURE,
                             *cmd], timeout=30)
            return [bytes.fromhex(f) for f in json.loads(out)]
        yield run
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.fixture
def plain(capture):
    """capture, with an address on va and a route to the sites' inner
    addresses through vb's side, for --plain and --udp-gso."""
    ns = f"t{os.getpid()}gregen"
    for cmd in (["ip", "addr", "add", "198.19.0.2/24", "dev", "va"],
                ["ip", "neigh", "replace", "198.19.0.1", "lladdr", "02:00:00:00:00:01", "dev",
                 "va", "nud", "permanent"],
                ["ip", "route", "add", "10.0.0.0/8", "via", "198.19.0.1"]):
        lablib.sh(["ip", "netns", "exec", ns, *cmd])
    return capture


def checksum_ok(pkt, layer):
    from scapy.all import IP
    copy = IP(bytes(pkt))
    del copy[layer].chksum
    return IP(bytes(copy))[layer].chksum == pkt[layer].chksum


def decode(frames):
    from scapy.all import GRE, IP, Ether
    out = []
    for f in frames:
        outer = Ether(f)[IP]
        assert outer.proto == 47 and checksum_ok(outer, IP)
        assert outer[GRE].proto == 0x0800 and outer[GRE].chksum_present == 0
        out.append((outer, IP(bytes(outer[GRE].payload))))
    return out


def test_tcp_flows_are_valid_segments_in_order(capture):
    from scapy.all import IP, TCP
    pkts = decode(capture("--profile", "tcp", "--sites", "2", "--flows", "2", "--count", "6"))
    assert len(pkts) == 6
    assert [o.src for o, _ in pkts] == ["172.16.0.1", "172.16.0.2"] * 3
    for outer, inner in pkts:
        assert checksum_ok(inner, IP) and checksum_ok(inner, TCP)
        assert inner.src == {"172.16.0.1": "10.1.0.2", "172.16.0.2": "10.1.0.3"}[outer.src]
    for site in (0, 1):
        syn, seg1, seg2 = (inner[TCP] for _, inner in pkts[site::2])
        assert syn.flags == "S" and ("MSS", 1460) in syn.options
        assert seg1.flags == "A" and seg1.seq == syn.seq + 1
        assert seg2.seq == seg1.seq + len(seg1.payload) and len(seg1.payload) == 1360


def test_keepalives_come_back_to_the_site(capture):
    from scapy.all import IP, GRE
    pkts = decode(capture("--profile", "keepalive", "--sites", "3", "--count", "3"))
    assert [o.src for o, _ in pkts] == ["172.16.0.1", "172.16.0.2", "172.16.0.3"]
    for outer, inner in pkts:
        assert checksum_ok(inner, IP)
        assert inner.src == "198.18.0.11" and inner.dst == outer.src and inner.proto == 47
        assert inner[GRE].proto == 0 and len(bytes(inner)) == 24


@pytest.mark.parametrize("tx", ["ring", "sendmmsg"])
def test_udp_sizes(capture, tx):
    for profile, size in (("udp64", 64), ("udp512", 512), ("udp1400", 1400)):
        pkts = decode(capture("--profile", profile, "--count", "2", "--tx", tx))
        assert [len(bytes(i)) for _, i in pkts] == [size, size]
        assert all(o.len == size + 24 for o, _ in pkts)
        # As a Linux sender's: DF set and a UDP checksum (what coalescing needs).
        from scapy.all import UDP
        assert all(i.flags == "DF" and i[UDP].chksum != 0 and checksum_ok(i, UDP)
                   for _, i in pkts)


def test_burst_sends_a_flows_packets_in_a_row(capture):
    from scapy.all import TCP
    pkts = decode(capture("--profile", "tcp", "--flows", "2", "--burst", "3", "--count", "9"))
    ports = [i[TCP].sport for _, i in pkts]
    assert ports[0:3] == [ports[0]] * 3 and ports[3:6] == [ports[3]] * 3
    assert ports[0] != ports[3] and ports[6:9] == [ports[0]] * 3
    seqs = [i[TCP].seq for _, i in pkts[0:3]]
    assert seqs[2] > seqs[1] > seqs[0]


def test_the_ring_sends_more_than_it_holds(capture):
    """300 frames through a 256-slot TX ring, in batches: every one once,
    in order."""
    from scapy.all import TCP
    pkts = decode(capture("--profile", "tcp", "--flows", "1", "--count", "300"))
    assert len(pkts) == 300
    seqs = [inner[TCP].seq for _, inner in pkts[1:]]
    assert all(b - a == 1360 for a, b in zip(seqs, seqs[1:]))


def test_tcp_bulk_pushes_every_32nd_segment(capture):
    from scapy.all import TCP
    pkts = decode(capture("--profile", "tcp", "--flows", "1", "--count", "66"))
    flags = [str(inner[TCP].flags) for _, inner in pkts]
    assert flags[0] == "S" and flags[32] == "PA" and flags[64] == "PA"
    assert flags.count("A") == 63
    seqs = [inner[TCP].seq for _, inner in pkts[1:]]
    assert all(b - a == 1360 for a, b in zip(seqs, seqs[1:]))


def test_imix_tcp_flows_keep_one_size_each(capture):
    from scapy.all import IP, TCP
    pkts = decode(capture("--profile", "imix-tcp", "--flows", "12", "--count", "36"))
    assert len(pkts) == 36
    sizes = {}
    for _, inner in pkts[12:]:		# the first 12 are the flows' SYNs
        assert checksum_ok(inner, IP) and checksum_ok(inner, TCP)
        sizes.setdefault(inner[TCP].sport, set()).add(len(bytes(inner)))
    assert all(len(v) == 1 for v in sizes.values())
    counts = sorted(next(iter(v)) for v in sizes.values())
    assert counts == [64] * 7 + [576] * 4 + [1476]
    by_flow = {}
    for _, inner in pkts[12:]:
        by_flow.setdefault(inner[TCP].sport, []).append(inner[TCP])
    for segs in by_flow.values():
        assert segs[1].seq == segs[0].seq + len(segs[0].payload)


def test_rate_paces_the_sending(build_dir, capture):
    ns = f"t{os.getpid()}gregen"
    out = lablib.sh(["ip", "netns", "exec", ns, os.path.join(build_dir, "tools", "gregen"),
                     "--ifname", "va", "--dst-mac", "02:00:00:00:00:01", "--gateway",
                     "198.18.0.11", "--rate", "2000", "--count", "600", "--seconds", "5"])
    kv = dict(x.split("=") for x in out.split()[1:])
    assert kv["packets"] == "600"
    # Paced: about 0.3 s, not the microseconds 600 frames take flat out.
    assert 0.25 <= float(kv["seconds"]) <= 2.0, out


def test_udp_gso_writes_large_packets(plain):
    from scapy.all import IP, UDP
    frames = plain("--plain", "198.19.0.2", "--udp-gso", "1372", "--count", "94")
    udp = [IP(f[14:]) for f in frames if IP(f[14:]).proto == 17]
    # Two writes of 47 segments each; the veth carries each write whole.
    assert len(udp) == 2, [len(f) for f in frames]
    for pkt in udp:
        assert pkt.src == "198.19.0.2" and pkt.dst == "10.1.0.2" and pkt[UDP].dport == 9
        assert len(bytes(pkt[UDP].payload)) == 47 * 1372

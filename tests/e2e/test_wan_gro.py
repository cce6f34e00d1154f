"""A WAN interface that merges what it receives (GRO), as most NICs do.

The kernel's GRO merges consecutive TCP segments of one tunnel into one
large GRE packet before gatewayd reads it. With gateway.io = "ring" the
ring reports the segment size (PACKET_VNET_HDR) and gatewayd writes the
packet whole to its TUN for the kernel to cut again; with "socket" a raw
socket cannot say how to cut it, so gatewayd turns GRO off on the WAN
interface at start, and says so.

The lab: the router and pop1 on one veth whose pop1 end receives as a NIC
queue does (its NAPI polls in a kernel thread, so each poll finds a run of
packets to merge; GRO on). gregen sends bulk TCP from the router's site
(16 flows, 16 segments of a flow in a row, a SYN first). gatewayd runs with
gateway.offload = false, so every large write to its TUN is the kernel's
merging, not gatewayd's own. pop1's veth toward svc1 segments and
checksums in software, and a capture in svc1 checks that every segment
arrived once, with its checksum right and its flow's bytes in order.
"""

import json
import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as lablib  # noqa: E402
from conftest import module_prefix  # noqa: E402
from pop import Pop, wait_for  # noqa: E402

ROUTER_IP = f"{lablib.WAN_NET}.2"
SITES = [{"name": "branch", "source_ip": ROUTER_IP, "services": "swg+cfw"}]
TENANTS = [{"name": "default", "tun": "grepop0", "routes": ["10.1.0.0/16"]}]
PACKETS = 4000          # gregen's, SYNs included (16 flows)
FLOWS = 16
# Paced (in bursts of what is due each millisecond), so that no queue on
# the way to svc1 overflows, but quick enough that each poll of pop1's
# NAPI finds runs of a flow's segments to merge.
RATE = 100000

# TCP from 10.1.0.2 arriving on svc1's eth0: per source port the (seq,
# payload length) of each segment and how many had a wrong checksum. Ends a
# second after the last one; bounded to 30 s.
CAPTURE = r"""
import json, socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
s.bind(("eth0", 0))
s.settimeout(0.2)
src = socket.inet_aton("10.1.0.2")

def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return t

flows, bad = {}, 0
print("ready", flush=True)
end = time.monotonic() + 30
last = None
while time.monotonic() < end and (last is None or time.monotonic() - last < 1):
    try:
        f = s.recv(70000)
    except socket.timeout:
        continue
    ip = f[14:]
    if len(ip) < 40 or ip[9] != 6 or ip[12:16] != src:
        continue
    last = time.monotonic()
    tot = struct.unpack("!H", ip[2:4])[0]
    ihl = (ip[0] & 15) * 4
    tcp = ip[ihl:tot]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
    if csum(pseudo + tcp) != 0xffff:
        bad += 1
    sport, seq = struct.unpack("!H2xI", tcp[:8])
    flows.setdefault(sport, []).append((seq, len(tcp) - (tcp[12] >> 4) * 4))
print(json.dumps({"flows": flows, "bad": bad}), flush=True)
"""


@pytest.fixture(scope="module", params=["ring", "socket"])
def env(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    lab = lablib.Lab(module_prefix(request), build_dir, direct_wan=True)
    try:
        lab.add_router()
        lab.add_pop("pop1")
        lab.start_services("pop1")
        # A veth hands its peer's NAPI only what its own side could not
        # have sent as one TSO packet; the NAPI thread makes polls of runs.
        lab.run("router", ["ethtool", "-K", "wan0", "tso", "off"])
        # Toward svc1 every segment leaves on its own, its checksum written;
        # svc1 captures them and drops them before its TCP would answer.
        lab.run("pop1", ["ethtool", "-K", "lan0", "tso", "off", "gso", "off", "tx", "off"])
        lab.run("svc1", ["nft", "add table ip t; add chain ip t in { type filter hook input "
                         "priority 0; }; add rule ip t in ip saddr 10.1.0.2 drop"])
        pop = Pop(lab, "pop1", sites=SITES, tenants=TENANTS, io=request.param)
        # Again with gateway.offload = false, and GRO on when it starts.
        pop.stop("gatewayd")
        with open(pop.conf) as f:
            text = f.read()
        with open(pop.conf, "w") as f:
            f.write(text.replace("gateway = {", "gateway = {\n\toffload = false;", 1))
        lab.run("pop1", ["ethtool", "-K", "wan0", "gro", "on"])
        lab.run("pop1", ["sh", "-c", "echo 1 > /sys/class/net/wan0/threaded"])
        pop.start("gatewayd")
        # (The two runs share a log.)
        wait_for(lambda: pop.log("gatewayd").count("serving GRE") == 2, 10,
                 what="gatewayd serving")
        yield lab, pop, request.param
    finally:
        lab.close()


def gro_on(lab):
    return "generic-receive-offload: on" in lab.run("pop1", ["ethtool", "-k", "wan0"])


def tun_writes(lab):
    link = json.loads(lab.run("pop1", ["ip", "-j", "-s", "link", "show", "grepop0"]))[0]
    return link["stats64"]["rx"]["packets"]


def send_bulk(lab, io):
    """gregen's bulk TCP from the router's site; what svc1 captured. With
    the raw socket nothing is merged, so nothing needs runs of a flow in one
    NAPI poll: a quarter of the rate keeps a gatewayd slowed down by the
    sanitizers ahead of its socket queue."""
    capture = lab.popen("svc1", [lablib.PYTHON, "-c", CAPTURE], name="capture")
    capture.wait_line("^ready$", timeout=10)
    mac = json.loads(lab.run("pop1", ["ip", "-j", "link", "show", "wan0"]))[0]["address"]
    out = lab.run("router", [lab.tool("gregen"), "--ifname", "wan0", "--dst-mac", mac,
                             "--gateway", lab.pop_ip("pop1"), "--site-base", ROUTER_IP,
                             "--inner-base", "10.1.0.2", "--inner-dst", lablib.SVC_IP,
                             "--profile", "tcp", "--burst", "16", "--flows", str(FLOWS),
                             "--count", str(PACKETS),
                             "--rate", str(RATE if io == "ring" else RATE // 4), "--tx", "sendmmsg"],
                     timeout=30)
    assert f"packets={PACKETS} " in out, out
    wire = int(re.search(r"wire_bytes=(\d+)", out).group(1))
    return json.loads(capture.wait_line(r"^\{", timeout=40)), wire


def check_segments(seen, counted):
    """Every segment once, each flow's bytes contiguous. COUNTED: what
    gatewayd's counters said, shown when segments are missing."""
    assert seen["bad"] == 0
    assert sum(len(v) for v in seen["flows"].values()) == PACKETS, counted
    assert len(seen["flows"]) == FLOWS
    for sport, segs in seen["flows"].items():
        segs.sort()
        for (seq, length), (nxt, _) in zip(segs, segs[1:]):
            # The SYN takes one sequence number, data its length.
            assert nxt == seq + (length or 1), (sport, seq, length, nxt)


def test_bulk_tcp_counted_and_intact(env):
    lab, pop, io = env
    wait_for(lambda: pop.shm().health("swg") == "up" and pop.shm().health("cfw") == "up",
             10, what="services up")
    before_site, before_pop = pop.site("branch"), pop.pop_totals()
    writes = tun_writes(lab)
    seen, wire = send_bulk(lab, io)
    site, totals = pop.site("branch"), pop.pop_totals()
    check_segments(seen, {"site": {k: site[k] - before_site[k] for k in ("rx_packets",)},
                          "site_drops": site["drops"], "pop_rx": totals["rx_packets"] -
                          before_pop["rx_packets"], "rx_queue_drops": totals["rx_queue_drops"] -
                          before_pop["rx_queue_drops"]})
    # Counted as the segments on the wire, whatever the kernel merged.
    assert site["rx_packets"] - before_site["rx_packets"] == PACKETS
    assert totals["rx_packets"] - before_pop["rx_packets"] == PACKETS
    # And their IP bytes, each with its own headers (not the Ethernet one).
    assert totals["rx_bytes"] - before_pop["rx_bytes"] == wire - 14 * PACKETS
    assert sum(site["drops"].values()) == sum(before_site["drops"].values())
    writes = tun_writes(lab) - writes
    if io == "ring":
        # The kernel merged (how much depends on how many packets each
        # poll finds), and gatewayd wrote what it merged whole.
        assert gro_on(lab)
        assert writes < PACKETS * 9 // 10, writes
    else:
        assert not gro_on(lab)
        assert writes >= PACKETS, writes


def test_socket_turns_gro_off(env):
    lab, pop, io = env
    logged = ("wan0: GRO turned off: a raw GRE socket cannot cut merged packets again" in
              pop.log("gatewayd"))
    assert logged == (io == "socket")

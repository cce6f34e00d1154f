"""The return path with TUN offloads (gateway.offload), end to end.

With offloads the kernel hands gatewayd whole 64 KiB TCP packets and UDP
GSO packets from the TUN and gatewayd cuts them into segments; without,
the kernel segments them before the TUN. Either way the branch host must
get every byte, in order, as ordinary packets. The tests run once per mode
and also check that the mode is the one asked for: the TUN's features, its
TX packet counter (one per large packet with offloads, so far fewer than
the segments the site was sent), and packets larger than the TUN's MTU
seen leaving into it.

The lab: router + branch (10.1.0.2), pop1 with svc1 (198.19.0.2).
"""

import hashlib
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as lablib  # noqa: E402
import services  # noqa: E402
from conftest import module_prefix  # noqa: E402
from pop import Pop, wait_for  # noqa: E402

TUN = "grepop0"
TUN_MTU = 1476
BRANCH_IP = "10.1.0.2"

# Outgoing packets on the TUN as an AF_PACKET socket sees them: before
# segmentation when the device takes large packets. Prints "ready", then
# "big N" for the first packet above the MTU and "seen N" every second.
SNIFF_TUN = r"""
import select, socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(3))
s.bind((sys.argv[1], 0))
mtu = int(sys.argv[2])
print("ready", flush=True)
seen, big, last = 0, False, time.monotonic()
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    if select.select([s], [], [], 0.2)[0]:
        data, addr = s.recvfrom(1 << 17)
        if addr[2] == socket.PACKET_OUTGOING:
            seen += 1
            if len(data) > mtu and not big:
                big = True
                print("big", len(data), flush=True)
    if time.monotonic() - last >= 1:
        last = time.monotonic()
        print("seen", seen, flush=True)
"""

# A UDP GSO sender: COUNT datagrams of SIZE bytes in one sendmsg (UDP_SEGMENT).
UDP_GSO_SEND = r"""
import socket, sys
dst, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = b"".join(bytes([i]) * 4 + (b"%04d" % i) * ((size - 4) // 4) for i in range(count))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_UDP, 103, size)
s.sendto(data, (dst, port))
print("sent", len(data), flush=True)
"""

# A UDP receiver: prints "ready", then "got LEN SHA256" per datagram, for 15 s at most.
UDP_RECV = r"""
import hashlib, select, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    if select.select([s], [], [], 0.2)[0]:
        data = s.recv(65536)
        print("got", len(data), hashlib.sha256(data).hexdigest(), flush=True)
"""


def offload_off(path):
    """Turn gateway.offload off in the configuration at PATH."""
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("gateway = {", "gateway = {\n\toffload = false;", 1))
    return path


@pytest.fixture(scope="module")
def lab(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    the_lab = lablib.standard(module_prefix(request), build_dir, backup=False)
    try:
        router = the_lab.start_router(["--keepalive", "1,3"], backup=None)
        yield the_lab, router
    finally:
        the_lab.close()


@pytest.fixture(scope="module", params=["on", "off"])
def env(request, lab):
    """The POP with gateway.offload on, then off (gatewayd restarted)."""
    the_lab, router = lab
    write_conf = the_lab.write_conf
    if request.param == "off":
        the_lab.write_conf = lambda *a, **kw: offload_off(write_conf(*a, **kw))
    try:
        pop = Pop(the_lab, "pop1")
    finally:
        the_lab.write_conf = write_conf
    try:
        wait_for(lambda: pop.shm().health("swg") == "up", 15, what="services up")
        wait_for(lambda: (router.status() or {}).get("active") == "primary", 15,
                 what="tunnel up")
        # The branch host talks first: gatewayd learns where 10.1.0.2 lives.
        # (After a restart the router may need a keepalive or two.)
        wait_for(lambda: " 0% packet loss" in the_lab.run(
            "branch", ["ping", "-c", "1", "-W", "1", lablib.SVC_IP], check=False), 20,
            what="the branch reaching svc1")
        yield the_lab, pop, request.param == "on"
        log = pop.log("gatewayd")
        # A clean exit: also what an AddressSanitizer build reports errors by.
        assert pop.stop("gatewayd") == 0, log[-2000:]
    finally:
        pop.stop()


def tun_tx_packets(lab):
    link = json.loads(lab.run("pop1", ["ip", "-j", "-s", "link", "show", TUN]))[0]
    return link["stats64"]["tx"]["packets"]


def test_mode_announced(env):
    lab, pop, on = env
    features = lab.run("pop1", ["ethtool", "-k", TUN])
    tso = "tcp-segmentation-offload: on" in features
    assert tso == on, features
    want = "TUN offloads on: checksum tso4 tso6 ecn uso4 uso6" if on else "TUN offloads off"
    wait_for(lambda: want in pop.log("gatewayd"), 5, what=want)


def test_download_through_large_reads(env):
    lab, pop, on = env
    size = 6_000_000
    out = os.path.join(lab.run_dir, f"blob-{int(on)}")
    sniffer = lab.popen("pop1", [lablib.PYTHON, "-c", SNIFF_TUN, TUN, str(TUN_MTU)],
                        name=f"sniff-tun-{int(on)}")
    sniffer.wait_line("^ready$", timeout=10)
    before, tun_before = pop.site("branch"), tun_tx_packets(lab)
    got = lab.run("branch", ["curl", "-s", "-m", "60", "-o", out, "-w",
                             "%{http_code} %{size_download}",
                             f"http://{lablib.SVC_IP}/blob/{size}"], check=False, timeout=70)
    assert got == f"200 {size}"
    with open(out, "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(
            services.blob_bytes(size)).digest()
    after, tun_after = pop.site("branch"), tun_tx_packets(lab)
    segments = after["tx_packets"] - before["tx_packets"]
    reads = tun_after - tun_before
    assert segments >= size // 1436
    assert after["drops"]["bad_inner"] == before["drops"]["bad_inner"]
    sniffer.wait_line(r"^seen [1-9]", timeout=5)
    if on:
        # Several segments per read from the TUN, and reads above the MTU.
        assert reads * 2 < segments, (reads, segments)
        assert int(sniffer.wait_line(r"^big \d+", timeout=5).split()[1]) > TUN_MTU
    else:
        assert reads >= segments, (reads, segments)
        assert not any(line.startswith("big") for line in sniffer.lines), sniffer.lines[:5]
    sniffer.stop()


def test_udp_gso_arrives_as_datagrams(env):
    lab, pop, on = env
    count, size, port = 20, 1200, 9000 + int(on)
    receiver = lab.popen("branch", [lablib.PYTHON, "-c", UDP_RECV, str(port)],
                         name=f"udp-recv-{int(on)}")
    receiver.wait_line("^ready$", timeout=10)
    before = pop.site("branch")["tx_packets"]
    sent = lab.run("svc1", [lablib.PYTHON, "-c", UDP_GSO_SEND, BRANCH_IP, str(port),
                            str(count), str(size)])
    assert sent.strip() == f"sent {count * size}"
    receiver.wait_line(r"^got", timeout=10)
    wait_for(lambda: len([x for x in receiver.lines if x.startswith("got")]) >= count, 5,
             what=f"{count} datagrams")
    got = [line.split() for line in receiver.lines if line.startswith("got")]
    want = [bytes([i]) * 4 + (b"%04d" % i) * ((size - 4) // 4) for i in range(count)]
    assert [g[1] for g in got] == [str(size)] * count
    assert [g[2] for g in got] == [hashlib.sha256(d).hexdigest() for d in want]
    assert pop.site("branch")["tx_packets"] - before >= count
    receiver.stop()

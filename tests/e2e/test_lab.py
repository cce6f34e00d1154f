"""The lab itself and the branch router peer (grerouter), without gatewayd:
a small Python GRE reflector (tests/lab/gre_echo.py) plays the POPs."""

import hashlib
import os

import pytest

import lab as lablib
import services


def assert_scapy_agrees(pkt, key, sgt):
    """A third reading of grerouter's header: scapy's GRE dissector."""
    scapy_inet = pytest.importorskip("scapy.layers.inet")
    scapy_l2 = pytest.importorskip("scapy.layers.l2")
    ip = scapy_inet.IP(pkt)
    gre = ip[scapy_l2.GRE]
    assert (gre.chksum_present, gre.key_present, gre.seqnum_present) == (1, 1, 1)
    assert gre.key == key and gre.proto == 0x8909
    rebuilt = scapy_l2.GRE(bytes(gre))
    rebuilt.chksum = None	# let scapy compute it
    assert bytes(rebuilt)[4:6] == bytes(gre)[4:6], "GRE checksum differs from scapy's"
    meta, inner = bytes(gre.payload)[:8], bytes(gre.payload)[8:]
    ethertype = b"\x86\xdd" if inner[0] >> 4 == 6 else b"\x08\x00"
    assert meta == ethertype + bytes([1, 1, 0, 1, sgt >> 8, sgt & 0xff])


def test_addresses(lab):
    assert "198.18.0.2/24" in lab.addresses("router")["wan0"]
    assert "10.1.0.1/24" in lab.addresses("router")["lan0"]
    assert "10.1.0.2/24" in lab.addresses("branch")["eth0"]
    for pop, ip in (("pop1", "198.18.0.11"), ("pop2", "198.18.0.12")):
        assert f"{ip}/24" in lab.addresses(pop)["wan0"]
        assert "198.19.0.1/24" in lab.addresses(pop)["lan0"]
        assert "198.19.0.2/24" in lab.addresses(lab.pops[pop]["svc"])["eth0"]
    lab.run("branch", ["ping", "-c1", "-W2", "10.1.0.1"])
    lab.run("router", ["ping", "-c1", "-W2", "198.18.0.11"])
    lab.run("router", ["ping", "-c1", "-W2", "198.18.0.12"])
    # Without a tunnel the router has no route to the services.
    with pytest.raises(lablib.LabError):
        lab.run("branch", ["ping", "-c1", "-W1", "198.19.0.2"])


def test_services(lab):
    out = lab.run("pop1", ["curl", "-sS", "-m", "5", "http://198.19.0.2/healthz"])
    assert out == "ok\n"
    blob = lab.run("pop1", ["sh", "-c", "curl -sS -m 10 http://198.19.0.2:443/blob/100000 | "
                            "sha256sum"])
    assert blob.split()[0] == hashlib.sha256(services.blob_bytes(100000)).hexdigest()
    assert services.blob_bytes(50, 7) == services.blob_bytes(100)[7:57]
    out = lab.run("pop1", [lablib.PYTHON, "-c",
                           "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
                           "s.settimeout(2); s.sendto(b'hi', ('198.19.0.2', 7));"
                           "print(s.recv(10).decode())"])
    assert out.strip() == "hi"


def test_http_stop_start(lab):
    lab.svc_http("pop2", False)
    with pytest.raises(lablib.LabError):
        lab.run("pop2", ["curl", "-sS", "-m", "2", "http://198.19.0.2/healthz"])
    # the other POP's services are untouched
    assert lab.run("pop1", ["curl", "-sS", "-m", "5", "http://198.19.0.2/healthz"]) == "ok\n"
    lab.svc_http("pop2", True)
    assert lab.run("pop2", ["curl", "-sS", "-m", "5", "http://198.19.0.2/healthz"]) == "ok\n"


def test_grerouter_cli(lab):
    out = lab.run("router", [lab.tool("grerouter"), "--help"])
    assert out.startswith("usage: grerouter")
    assert "--keepalive" in out and "--backup" in out
    with pytest.raises(lablib.LabError, match="not an IPv4 address"):
        lab.run("router", [lab.tool("grerouter"), "--local", "nope", "--pop", "198.18.0.11"])
    with pytest.raises(lablib.LabError, match="are required"):
        lab.run("router", [lab.tool("grerouter"), "--local", "198.18.0.2"])
    with pytest.raises(lablib.LabError, match="needs --probe-src"):
        lab.run("router", [lab.tool("grerouter"), "--local", "198.18.0.2", "--pop", "1.2.3.4",
                           "--probe", "100.64.255.1,1,3"])


def test_failover_and_back(lab):
    """Keepalives + probes with every header option: primary up, failover to
    the backup when the primary's reflector dies, back after RISE answers."""
    echo1, echo2 = lab.start_echo("pop1"), lab.start_echo("pop2", "--echo-icmp")
    router = lab.start_router(["--keepalive", "1,3", "--probe", "100.64.255.1,1,3",
                               "--probe-src", "10.1.0.1", "--key", "42", "--checksum", "--seq",
                               "--cisco-meta", "77"])
    try:
        lablib.wait_for(lambda: (router.status() or {}).get("primary", {}).get("answered", 0) >= 4,
                        6, what="primary answers")
        st = router.status()
        assert st["active"] == "primary" and st["primary"]["up"] and st["backup"]["up"]
        assert router.lines[0] == "active primary 198.18.0.11"
        seen = echo1.stats()
        assert seen["bad"] == 0 and seen["keepalives"] >= 1 and seen["probes"] >= 1
        last = seen["last"]
        assert (last["key"], last["sgt"], last["checksum"]) == (42, 77, True)
        assert last["seq"] is not None
        assert_scapy_agrees(bytes.fromhex(seen["last_hex"]), key=42, sgt=77)

        # The branch's traffic goes into the primary's tunnel.
        lab.run("branch", ["ping", "-c1", "-W1", "198.19.0.2"], check=False)
        lablib.wait_for(lambda: echo1.stats()["data"] >= 1, 3, what="data at pop1")

        n = len(router.lines)
        echo1.stop()
        router.wait_line(r"^tunnel primary 198\.18\.0\.11 down \(3 (keepalives|probes) "
                         r"unanswered\)$", 8, start=n)
        router.wait_line(r"^active backup 198\.18\.0\.12$", 2, start=n)
        assert router.status()["active"] == "backup"

        # Now the branch reaches through the backup, both ways: pop2's
        # reflector answers the ping inside the tunnel.
        out = lab.run("branch", ["ping", "-c2", "-W2", "198.19.0.2"])
        assert "2 received" in out
        lablib.wait_for(lambda: router.status()["rx_packets"] >= 2, 3, what="rx_packets >= 2")

        n = len(router.lines)
        echo1 = lab.start_echo("pop1")
        router.wait_line(r"^tunnel primary 198\.18\.0\.11 up \(2 \w+ answered\)$", 8, start=n)
        router.wait_line(r"^active primary 198\.18\.0\.11$", 2, start=n)
    finally:
        assert lab.stop_router(router) == 0
        echo1.stop()
        echo2.stop()
    # grerouter removed its TUN and its status file on SIGTERM
    assert "gre-r" not in lab.addresses("router")
    assert router.status() is None


def test_no_backup_goes_none(lab):
    echo1 = lab.start_echo("pop1")
    router = lab.start_router(["--keepalive", "1,2"], backup=None)
    try:
        lablib.wait_for(lambda: (router.status() or {}).get("primary", {}).get("answered", 0) >= 2,
                        5, what="primary answers")
        assert router.status()["backup"] is None
        echo1.stop()
        router.wait_line(r"^active none$", 6)
        assert router.status()["active"] == "none"
    finally:
        lab.stop_router(router)
        echo1.stop()


def test_teardown_leaves_nothing(build_dir):
    prefix = f"z{os.getpid() % 10000}"
    with lablib.standard(prefix, build_dir) as lab:
        assert len(lablib.netns_list(prefix)) == 7	# with the WAN bridge's
        lab.popen("router", ["sleep", "300"])
        assert os.path.isdir(lab.run_dir)
    assert lablib.netns_list(prefix) == []
    assert not os.path.exists(lablib.run_dir_of(prefix))


def test_wrong_key_is_not_an_answer(lab):
    """Probe replies with another key are dropped: the tunnel goes down."""
    echo1 = lab.start_echo("pop1", "--reply-key", "6")
    router = lab.start_router(["--key", "5", "--probe", "100.64.255.1,1,2",
                               "--probe-src", "10.1.0.1"], backup=None)
    try:
        router.wait_line(r"^tunnel primary 198\.18\.0\.11 down \(2 probes unanswered\)$", 6)
        st = router.status()
        assert st["primary"]["answered"] == 0 and st["drops"] >= 2
        assert echo1.stats()["probes"] >= 2
        assert "198.18.0.2/5" in echo1.stats()["tunnels"]
    finally:
        lab.stop_router(router)
        echo1.stop()


def test_counts_are_exact(lab):
    """Every packet routed into the TUN becomes one GRE packet at the POP,
    and nothing else is sent (no keepalives or probes configured)."""
    echo1 = lab.start_echo("pop1", "--echo-icmp")
    router = lab.start_router(["--seq"], backup=None, ipv6=False)
    try:
        lab.run("branch", ["ping", "-c3", "-i", "0.2", "-W2", "198.19.0.2"])
        lablib.wait_for(lambda: router.status()["rx_packets"] == 3, 3, what="3 replies")
        lablib.wait_for(lambda: echo1.stats()["probes"] == 3, 3, what="3 echoes at pop1")
        st, seen = router.status(), echo1.stats()
        assert (st["tx_packets"], st["drops"]) == (3, 0)
        assert (seen["data"], seen["probes"], seen["keepalives"], seen["bad"]) == (0, 3, 0, 0)
        assert seen["tunnels"] == {"198.18.0.2/None": 3}
        assert seen["last"]["seq"] == 2	# sequence numbers 0, 1, 2
        assert st["primary"]["sent"] == 0
    finally:
        lab.stop_router(router)
        echo1.stop()


GRE_SENDER = """
import socket, struct, sys
sys.path.insert(0, {here!r})
from gre_echo import inet_csum
icmp = bytearray(b"\\x08\\x00\\x00\\x00\\x12\\x34\\x00\\x01" + b"x" * 16)
icmp[2:4] = struct.pack("!H", inet_csum(bytes(icmp)))
ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0, 64, 1, 0,
                           socket.inet_aton("198.19.0.2"), socket.inet_aton("10.1.0.2")))
ip[10:12] = struct.pack("!H", inet_csum(bytes(ip)))
gre = struct.pack("!HH", {flags}, 0x0800) + bytes(ip) + bytes(icmp)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
s.sendto(gre, ("198.18.0.2", 0))
"""


def send_gre(lab, pop, flags=0):
    """One GRE packet from POP to the router: an echo request for the branch."""
    lab.run(pop, [lablib.PYTHON, "-c", GRE_SENDER.format(here=lablib.HERE, flags=flags)])


def test_decapsulates_only_from_its_pops(lab):
    router = lab.start_router([], backup=None, ipv6=False)
    try:
        send_gre(lab, "pop1")
        lablib.wait_for(lambda: router.status()["rx_packets"] == 1, 3, what="rx from pop1")
        send_gre(lab, "pop2")			# not a POP of this router
        send_gre(lab, "pop1", flags=0x4000)	# routing bit: refused by RFC 2784
        send_gre(lab, "pop1", flags=0x0001)	# version 1
        send_gre(lab, "pop1", flags=0x2000)	# a key announced but not configured
        lablib.wait_for(lambda: router.status()["drops"] == 4, 3, what="4 drops")
        assert router.status()["rx_packets"] == 1
    finally:
        lab.stop_router(router)

"""Hostile input against a running gatewayd, end to end.

Every case sends crafted GRE from the router's namespace to pop1's gatewayd
and asserts three things:

  - exactly one counter moved, by exactly the number of packets sent (the
    site's drop reason, or nftables' counter for sources that are no site);
  - nothing was reflected or leaked: three capture agents (netagent.py) on
    the router's wan0, the services side (svc1) and the other site's LAN
    (branch2) record every packet that is not legitimate tunnel traffic;
  - branch2's own tunnel carried a ping without loss meanwhile.

The sites: "hostile" (198.18.0.40) is where most cases come from, so that
they reach gatewayd's parser (nftables drops GRE from any other source);
"off" is disabled, "keyed" expects key 7, "fresh" never established a
tunnel. Their addresses are extra addresses of the router's wan0 so that
anything the POP sends them is seen there.

Ordering: a case ends with a fence, a keepalive and an ICMP echo reply
with a marker identification from "hostile", sent after the case's packets
through the same worker. Once both markers came back (the keepalive
reflected to the router, the echo reply delivered to svc1), everything the
case could have caused has been captured.
"""

import json
import os
import struct
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lab"))

import lab as lablib  # noqa: E402
from conftest import module_prefix  # noqa: E402
from pop import Pop, PopError, wait_for  # noqa: E402

from scapy.all import GRE, ICMP, IP, IPv6, UDP, TCP, Raw  # noqa: E402

POP_IP = "198.18.0.11"
HOSTILE, OFF, KEYED, FRESH = "198.18.0.40", "198.18.0.41", "198.18.0.42", "198.18.0.43"
BRANCH = "198.18.0.2"
INNER_SRC = "10.1.0.77"		# a host behind "hostile", inside the tenant's routes
SPOOF_BASE = "203.0.113.0"	# sources that are no site
FLOOD = 20000			# packets of each flood,
FLOOD_PPS = 10000		# sent in 2 s: well inside gatewayd's socket buffer

SITES = [
    {"name": "branch", "source_ip": BRANCH},
    {"name": "branch2", "source_ip": "198.18.0.3"},
    {"name": "hostile", "source_ip": HOSTILE},
    {"name": "off", "source_ip": OFF, "enabled": "no"},
    {"name": "keyed", "source_ip": KEYED, "key": "7"},
    {"name": "fresh", "source_ip": FRESH},
]
EXTRA_IPS = (HOSTILE, OFF, KEYED, FRESH)


# -- packet builders (bytes: scapy for the IP layers, GRE by hand)

def gre(proto=0x0800, payload=b"", flags=0, key=None, seq=None, csum=None, version=0):
    """A GRE header and PAYLOAD. Optional fields follow FLAGS (C, K, S); a
    checksum is computed unless CSUM gives its value."""
    fields = b""
    if flags & 0x8000:
        fields += b"\0\0\0\0"
    if flags & 0x2000:
        fields += struct.pack("!I", key or 0)
    if flags & 0x1000:
        fields += struct.pack("!I", seq or 0)
    pkt = bytearray(struct.pack("!HH", flags | version, proto) + fields + payload)
    if flags & 0x8000:
        value = csum if csum is not None else checksum(bytes(pkt))
        struct.pack_into("!H", pkt, 4, value)
    return bytes(pkt)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def outer(gre_bytes, src=HOSTILE):
    return bytes(IP(src=src, dst=POP_IP, proto=47, id=1) / Raw(gre_bytes))


def inner_echo_reply(src=INNER_SRC, dst=lablib.SVC_IP, ident=2):
    """An ICMP echo reply: delivered, and the receiver answers nothing."""
    return bytes(IP(src=src, dst=dst, id=ident) / ICMP(type=0, id=1, seq=1) / (b"h" * 16))


def inner_keepalive(dst, src=POP_IP, ident=3, payload=None):
    """The inner half of a Cisco keepalive: IPv4 POP -> DST carrying GRE 0."""
    return bytes(IP(src=src, dst=dst, proto=47, id=ident) / Raw(payload or gre(proto=0)))


def keepalive(site_ip=HOSTILE, dst=None, ident=3):
    return outer(gre(payload=inner_keepalive(dst or site_ip, ident=ident)), site_ip)


def data(payload=None, src=HOSTILE, **kw):
    return outer(gre(payload=payload or inner_echo_reply(), **kw), src)


def mangle(pkt, offset, value, fmt="!B"):
    b = bytearray(pkt)
    struct.pack_into(fmt, b, offset, value)
    return bytes(b)


def nested(depth, dst):
    """GRE carrying IPv4/GRE DEPTH times, each level to DST, then UDP."""
    payload = bytes(IP(src=INNER_SRC, dst=dst) / UDP(dport=9) / b"deep")
    for _ in range(depth):
        payload = bytes(IP(src=INNER_SRC, dst=dst, proto=47) / Raw(gre(payload=payload)))
    return payload


INNER = inner_echo_reply()
PPTP = struct.pack("!HH", 0, 0x1234) + b"\xff\x03\x00\x21"	# payload length, call id, PPP
CISCO_META_BAD = struct.pack("!HBBHH", 0x0800, 2, 1, 1, 10) + INNER	# version 2

# name, packets, site, the counters (one or a tuple) that move by len(packets),
# replies to the router, packets delivered to svc1. Counter "nft" is
# nftables' drop counter; "pop.*" are the POP's own counters, the rest the
# site's.
CASES = [
    ("empty_gre", [outer(b"")], "hostile", "drops.bad_header", 0, 0),
    ("truncated_gre", [outer(b"\x00"), outer(b"\x00\x00"), outer(b"\x00\x00\x08")],
     "hostile", "drops.bad_header", 0, 0),
    ("checksum_announced_missing", [outer(struct.pack("!HH", 0x8000, 0x0800))],
     "hostile", "drops.bad_header", 0, 0),
    ("key_announced_missing", [outer(struct.pack("!HH", 0x2000, 0x0800) + b"\0\0")],
     "hostile", "drops.bad_header", 0, 0),
    ("seq_announced_missing", [outer(struct.pack("!HH", 0x1000, 0x0800))],
     "hostile", "drops.bad_header", 0, 0),
    ("all_announced_short", [outer(struct.pack("!HHI", 0xb000, 0x0800, 0))],
     "hostile", "drops.bad_header", 0, 0),
    ("pptp_version_1", [outer(gre(proto=0x880b, flags=0x2000, version=1, payload=PPTP))],
     "hostile", "drops.bad_header", 0, 0),
    ("versions_2_to_7", [outer(gre(payload=INNER, version=v)) for v in range(2, 8)],
     "hostile", "drops.bad_header", 0, 0),
    ("routing_bit", [outer(gre(payload=INNER, flags=0x4000))],
     "hostile", "drops.bad_header", 0, 0),
    ("reserved_bits", [outer(gre(payload=INNER, flags=f)) for f in (0x0800, 0x0700, 0x0100,
                                                                    0x0080, 0x0008)],
     "hostile", "drops.bad_header", 0, 0),
    ("bad_cisco_metadata", [outer(gre(proto=0x8909, payload=CISCO_META_BAD))],
     "hostile", "drops.bad_header", 0, 0),
    ("wrong_checksum", [outer(gre(payload=INNER, flags=0x8000, csum=0x1234)),
                        outer(gre(payload=INNER, flags=0x8000, csum=0))],
     "hostile", "drops.bad_checksum", 0, 0),
    ("erspan", [outer(gre(proto=0x88be, payload=b"\0" * 40)),
                outer(gre(proto=0x22eb, payload=b"\0" * 40))],
     "hostile", ("drops.unsupported_protocol", "pop.unsupported_proto.erspan"), 0, 0),
    ("wccp", [outer(gre(proto=0x883e, payload=b"\0\0\0\0" + INNER))],
     "hostile", ("drops.unsupported_protocol", "pop.unsupported_proto.wccp"), 0, 0),
    ("teb", [outer(gre(proto=0x6558, payload=b"\xff" * 12 + b"\x08\x00" + INNER))],
     "hostile", ("drops.unsupported_protocol", "pop.unsupported_proto.teb"), 0, 0),
    ("unknown_protocols", [outer(gre(proto=p, payload=INNER)) for p in (0x0004, 0x880b, 0x0806)],
     "hostile", ("drops.unsupported_protocol", "pop.unsupported_proto.other"), 0, 0),
    ("inner_empty", [data(payload=b"\0")], "hostile", "drops.bad_inner", 0, 0),
    ("inner_truncated", [data(payload=INNER[:19])], "hostile", "drops.bad_inner", 0, 0),
    ("inner_version", [data(payload=mangle(INNER, 0, 0x55)), data(payload=mangle(INNER, 0, 0x65))],
     "hostile", "drops.bad_inner", 0, 0),
    ("inner_ipv4_as_ipv6", [data(payload=INNER, proto=0x86dd)], "hostile", "drops.bad_inner", 0, 0),
    ("inner_header_length", [data(payload=mangle(INNER, 0, 0x44)),
                             data(payload=mangle(INNER, 0, 0x4f))],
     "hostile", "drops.bad_inner", 0, 0),
    ("inner_total_length", [data(payload=mangle(INNER, 2, len(INNER) + 1, "!H")),
                            data(payload=mangle(INNER, 2, 19, "!H"))],
     "hostile", "drops.bad_inner", 0, 0),
    ("inner_ip_checksum", [data(payload=mangle(INNER, 10, 0xbeef, "!H"))],
     "hostile", "drops.bad_inner", 0, 0),
    ("inner_udp_length", [data(payload=bytes(IP(src=INNER_SRC, dst=lablib.SVC_IP) /
                                             UDP(dport=9, len=200) / b"x"))],
     "hostile", "drops.bad_inner", 0, 0),
    ("inner_tcp_offset", [data(payload=bytes(IP(src=INNER_SRC, dst=lablib.SVC_IP) /
                                             TCP(dport=80, dataofs=4)))],
     "hostile", "drops.bad_inner", 0, 0),
    ("inner_ipv6_length", [data(payload=mangle(bytes(IPv6(src="fd00:1::77", dst="fd00:19::2") /
                                                     UDP(dport=9)), 4, 400, "!H"),
                                proto=0x86dd)],
     "hostile", "drops.bad_inner", 0, 0),
    ("loop_to_gateway_ip", [data(payload=inner_echo_reply(dst=POP_IP))],
     "hostile", "drops.loop", 0, 0),
    ("loop_from_gateway_ip", [data(payload=inner_echo_reply(src=POP_IP))],
     "hostile", "drops.loop", 0, 0),
    ("loop_to_probe_ip", [data(payload=bytes(IP(src=INNER_SRC, dst=lablib.PROBE_IP) /
                                             UDP(dport=9) / b"x"))],
     "hostile", "drops.loop", 0, 0),
    ("loop_to_pop_lan_address", [data(payload=bytes(IP(src=INNER_SRC, dst="198.19.0.1") /
                                                    ICMP(type=8, id=7, seq=1)))],
     "hostile", "drops.loop", 0, 0),
    ("loop_to_loopback", [data(payload=bytes(IP(src=INNER_SRC, dst="127.0.0.1") /
                                             ICMP(type=8, id=7, seq=1))),
                          data(payload=bytes(IP(src=INNER_SRC, dst="127.1.2.3") / UDP(dport=9))),
                          data(payload=bytes(IPv6(src="fd00:1::77", dst="::1") / UDP(dport=9)),
                               proto=0x86dd)],
     "hostile", "drops.loop", 0, 0),
    ("gre_in_gre_in_gre", [data(payload=nested(2, lablib.SVC_IP)), data(payload=nested(3, BRANCH)),
                           data(payload=nested(2, HOSTILE))],
     "hostile", "drops.reflect", 0, 0),
    ("keepalive_reflection", [keepalive(dst=d) for d in (BRANCH, "198.18.0.12", "8.8.8.8",
                                                        lablib.SVC_IP, "198.18.0.255",
                                                        "255.255.255.255")],
     "hostile", "drops.reflect", 0, 0),
    ("keepalive_disabled_site", [keepalive(OFF)], "off", "drops.disabled", 0, 0),
    ("keepalive_unknown_source", [keepalive("198.18.0.99")], None, "nft", 0, 0),
    ("key_unexpected", [data(flags=0x2000, key=7)], "hostile", "drops.bad_key", 0, 0),
    ("key_wrong_or_missing", [data(src=KEYED, flags=0x2000, key=8), data(src=KEYED)],
     "keyed", "drops.bad_key", 0, 0),
    ("sequence_wrap_and_repeat",
     [data(flags=0x1000, seq=s) for s in (0xfffffffe, 0xffffffff, 0, 1, 1, 1)],
     "hostile", "rx_packets", 0, 6),
    # Controls: legitimate packets are answered, so silence elsewhere means something.
    ("keepalive_answered", [keepalive()], "hostile", "keepalives", 1, 0),
    ("probe_answered", [data(payload=bytes(IP(src=INNER_SRC, dst=lablib.PROBE_IP) /
                                           ICMP(type=8, id=9, seq=1)))],
     "hostile", "probes", 1, 0),
]

FLOODS = [
    # name, packet, flood sources (None: the packet's own), site, counter
    ("flood_keepalives_spoofed", keepalive(SPOOF_BASE), SPOOF_BASE, None, "nft"),
    ("flood_new_tunnels_spoofed", data(src=SPOOF_BASE), SPOOF_BASE, None, "nft"),
    ("flood_reflection_attempts", keepalive(dst="8.8.8.8"), HOSTILE, "hostile", "drops.reflect"),
    ("flood_new_tunnels_refused", data(src=FRESH), FRESH, "fresh", "drops.auth_failure"),
]


class Agent:
    """netagent.py in a namespace of the lab."""

    def __init__(self, lab, role, iface, ignore=()):
        cmd = ["ip", "netns", "exec", lab.ns(role), lablib.PYTHON,
               os.path.join(HERE, "netagent.py"), "--iface", iface]
        for rule in ignore:
            cmd += ["--ignore", rule]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, start_new_session=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def call(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "netagent exited"
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=5)


class Env:
    def __init__(self, lab, pop, router, agents):
        self.lab, self.pop, self.router = lab, pop, router
        self.wan, self.svc, self.branch2 = agents
        self.fence_id = 0xfe00

    def fence(self):
        """Send the markers from "hostile"; return what each agent recorded."""
        self.fence_id += 1
        ident = self.fence_id
        self.wan.call(op="send", pkts=[keepalive(ident=ident).hex(),
                                       data(payload=inner_echo_reply(ident=ident)).hex()])
        wan = self.wan.call(op="fence", id=ident, timeout=5)
        svc = self.svc.call(op="fence", id=ident, timeout=5)
        assert wan["seen"] and svc["seen"], "a marker did not come back"
        return wan["packets"], svc["packets"], self.branch2.call(op="take")["packets"]

    def ping(self, count):
        """branch2's own traffic through its own tunnel while a case runs."""
        return self.lab.popen("branch2", ["ping", "-n", "-c", str(count), "-i", "0.05", "-W", "2",
                                          lablib.SVC_IP], name="ping-branch2")

    def counters(self):
        """Everything a case may move, flat: 'SITE.drops.REASON', 'pop.…', 'nft'."""
        out = {"nft": self.pop.nft_drop_counter()}
        for name, site in self.pop.shm().sites().items():
            for key in ("rx_packets", "tx_packets", "keepalives", "probes"):
                out[f"{name}.{key}"] = site[key]
            for reason, v in site["drops"].items():
                out[f"{name}.drops.{reason}"] = v
        totals = self.pop.pop_totals()
        for reason, v in totals["drops"].items():
            out[f"pop.drops.{reason}"] = v
        for kind, v in totals["unsupported_proto"].items():
            out[f"pop.unsupported_proto.{kind}"] = v
        return out


# Counters that legitimate traffic (branch2's ping and keepalives, the
# fence, the POP's own IPv6 chatter on its TUN) moves during any case.
BACKGROUND = ("branch2.", "pop.drops.local")
FENCE = {"hostile.keepalives": 2, "hostile.rx_packets": 2}	# two per case


def moved(before, after):
    diff = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    for k, v in FENCE.items():
        diff[k] = diff.get(k, 0) - v
    return {k: v for k, v in diff.items() if v and not k.startswith(BACKGROUND)}


@pytest.fixture(scope="module")
def env(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    lab = lablib.standard(module_prefix(request), build_dir, backup=False, branch2=True)
    agents = []
    try:
        for ip in EXTRA_IPS:
            lab.run("router", ["ip", "addr", "add", f"{ip}/24", "dev", "wan0"])
        pop = Pop(lab, "pop1", sites=SITES)
        wait_for(lambda: pop.shm().health("swg") == "up" and pop.shm().health("cfw") == "up",
                 10, what="services up")
        router = lab.start_router(["--keepalive", "1,3"], site="branch2", backup=None)
        wait_for(lambda: (router.status() or {}).get("active") == "primary", 10,
                 what="branch2's tunnel up")
        agents = [
            # Only branch2's tunnel is legitimate: nothing else goes to the router.
            Agent(lab, "router", "wan0", [f"{POP_IP}/32,198.18.0.3/32,47"]),
            Agent(lab, "svc1", "eth0", ["198.19.0.1/32,0.0.0.0/0,0", "10.2.0.0/24,0.0.0.0/0,0"]),
            Agent(lab, "branch2", "eth0", [f"{lablib.SVC_IP}/32,10.2.0.2/32,1"]),
        ]
        e = Env(lab, pop, router, agents)
        e.fence()	# establishes "hostile" and shows that the markers come back
        yield e
    finally:
        for a in agents:
            a.close()
        lab.close()


def run_case(env, site, counter, send, n, replies, delivered, ping_count=10):
    pinger = env.ping(ping_count)
    before = env.counters()
    keys = [c if c == "nft" or c.startswith("pop.") else f"{site}.{c}"
            for c in ((counter,) if isinstance(counter, str) else counter)]
    send()
    wan0, svc0, other0 = env.fence()
    try:	# another site may be another worker's, nftables' is the kernel's
        wait_for(lambda: env.counters()[keys[0]] >= before[keys[0]] + n, 3)
    except PopError:
        pass	# the assertion below says what moved instead
    wan, svc, other = env.fence()
    wan, svc, other = wan + wan0, svc + svc0, other + other0
    after = env.counters()
    assert moved(before, after) == {k: n for k in keys}, wan
    assert [p for p in wan if p["dst"] != HOSTILE or p["src"] != POP_IP] == [], wan
    assert len(wan) == replies, wan
    assert len(svc) == delivered and all(p["src"] == INNER_SRC for p in svc), svc
    assert other == [], other
    summary = pinger.wait_line("packets transmitted", timeout=30)
    assert f" {ping_count} received" in summary, pinger.lines


# Wrong behaviour found by these cases and not fixed here, with the reason.
@pytest.mark.parametrize("name,pkts,site,counter,replies,delivered", CASES,
                         ids=[c[0] for c in CASES])
def test_hostile_packet(env, name, pkts, site, counter, replies, delivered):
    run_case(env, site, counter, lambda: env.wan.call(op="send", pkts=[p.hex() for p in pkts]),
             len(pkts), replies, delivered)


@pytest.mark.parametrize("name,pkt,sources,site,counter", FLOODS, ids=[f[0] for f in FLOODS])
def test_flood(env, name, pkt, sources, site, counter):
    span = 4096 if sources == SPOOF_BASE else 1
    no_new = site == "fresh"
    if no_new:
        assert env.pop.ctl({"command": "pop.accept", "mode": "no-new"})["ok"]
    try:
        run_case(env, site, counter,
                 lambda: env.wan.call(op="flood", pkt=pkt.hex(), count=FLOOD, src_base=sources,
                                      src_span=span, pps=FLOOD_PPS),
                 FLOOD, 0, 0, ping_count=50)
    finally:
        if no_new:
            assert env.pop.ctl({"command": "pop.accept", "mode": "accept"})["ok"]
    if counter == "nft":
        assert env.pop.pop_totals()["drops"]["unknown_source"] == 0

#!/usr/bin/python3
"""Write the seed corpora of the gateway and statsd harnesses:

    tests/fuzz/make_corpus.py        (from the repository root)

corpus_worker/, corpus_merged/ (what GRO merged, after its GSO type and
segment size), corpus_tun/ and corpus_tun_gso/ (TUN reads with their
virtio_net_hdr) hold packets for the sites and endpoints of
tests/fuzz/gw_fixture.c, corpus_control/ the requests of the control
protocol (docs/architecture.md) and corpus_http_query/ query strings of
/api/v1/sites. The files are committed; run this again after changing the
fixture and commit the difference.
"""
import ipaddress
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
GATEWAY = "198.18.0.11"
PROBE = "100.64.255.1"
STATE = 0x1b            # swg and cfw up, heartbeat fresh, accept, tunnels established
IDLE = 0x20             # every tunnel idle: the packet asks for admission


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ipv4(src, dst, proto, payload, df=False, ident=1):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000 if df else 0,
                      64, proto, 0, ipaddress.IPv4Address(src).packed,
                      ipaddress.IPv4Address(dst).packed)
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + payload


def ipv6(src, dst, proto, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), proto, 64,
                       ipaddress.IPv6Address(src).packed,
                       ipaddress.IPv6Address(dst).packed) + payload


def tcp(sport, dport, syn=True, mss=1460, data=b""):
    opts = struct.pack("!BBH", 2, 4, mss) if syn else b""
    off = (20 + len(opts)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, off << 4, 0x02 if syn else 0x18,
                       65535, 0, 0) + opts + data


def udp(sport, dport, data=b""):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def icmp_echo(kind=8):
    body = struct.pack("!BBHHH", kind, 0, 0, 0x1234, 1) + b"grepop-probe"
    return body[:2] + struct.pack("!H", csum(body)) + body[4:]


def gre(src, inner, proto=0x0800, key=None, checksum=False, dst=GATEWAY):
    flags = (0x8000 if checksum else 0) | (0x2000 if key is not None else 0)
    hdr = struct.pack("!HH", flags, proto)
    opt_csum = b"\0\0\0\0" if checksum else b""
    opt_key = struct.pack("!I", key) if key is not None else b""
    body = hdr + opt_csum + opt_key + inner
    if checksum:
        c = csum(body)
        body = hdr + struct.pack("!HH", c, 0) + opt_key + inner
    return ipv4(src, dst, 47, body)


def write(corpus, name, data):
    d = os.path.join(HERE, "corpus_" + corpus)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def worker_corpus():
    syn = ipv4("10.1.0.1", "192.0.2.80", 6, tcp(40000, 443))
    seeds = {
        "data_syn": (STATE, gre("198.18.0.2", syn)),
        "data_new_tunnel": (STATE | IDLE, gre("198.18.0.2", syn)),
        "data_no_new": (0x0b | IDLE, gre("198.18.0.2", syn)),
        "data_health_stale": (0x1f | IDLE, gre("198.18.0.2", syn)),
        "data_keyed_csum": (STATE, gre("198.18.0.3", ipv4("10.2.0.1", "192.0.2.80", 6,
                                       tcp(40001, 8443)), key=42, checksum=True)),
        "data_keyed_udp": (STATE, gre("198.18.0.3", ipv4("10.3.0.1", "192.0.2.53", 17,
                                      udp(5353, 53, b"q")), key=43)),
        "bad_key": (STATE, gre("198.18.0.3", syn, key=99)),
        "unknown_source": (STATE, gre("198.18.0.99", syn)),
        "disabled": (STATE, gre("198.18.0.4", syn)),
        "rate_corp": (STATE, gre("198.18.0.5", ipv4("172.16.0.1", "192.0.2.53", 17,
                                 udp(5353, 53, b"x" * 1200)))),
        "too_big_df": (STATE, gre("198.18.0.2", ipv4("10.1.0.1", "192.0.2.80", 6,
                                  tcp(40000, 443, False, data=b"y" * 1480), df=True))),
        "data_v6": (STATE, gre("198.18.0.2", ipv6("2001:db8:1::1", "2001:db8:ffff::1", 6,
                                                  tcp(40000, 443)), proto=0x86dd)),
        "keepalive": (STATE, gre("198.18.0.2", ipv4(GATEWAY, "198.18.0.2", 47,
                                 struct.pack("!HH", 0, 0)))),
        "keepalive_keyed": (STATE, gre("198.18.0.3", ipv4(GATEWAY, "198.18.0.3", 47,
                                       struct.pack("!HHI", 0x2000, 0, 42)), key=42)),
        "keepalive_drain": (0x13, gre("198.18.0.2", ipv4(GATEWAY, "198.18.0.2", 47,
                                      struct.pack("!HH", 0, 0)))),
        "keepalive_reply": (STATE, gre("198.18.0.2", b"", proto=0)),
        "reflect": (STATE, gre("198.18.0.2", ipv4(GATEWAY, "198.18.0.77", 47,
                               struct.pack("!HH", 0, 0)))),
        "probe": (STATE, gre("198.18.0.6", ipv4("10.6.0.1", PROBE, 1, icmp_echo()))),
        "loop": (STATE, gre("198.18.0.2", ipv4("10.1.0.1", "127.0.0.1", 17, udp(1, 2)))),
        "loop_gateway": (STATE, gre("198.18.0.2", ipv4(GATEWAY, "192.0.2.80", 17, udp(1, 2)))),
        "policy": (STATE, gre("198.18.0.3", ipv4("10.2.0.1", "192.0.2.53", 17, udp(1, 53)),
                              key=42)),
        "cisco_meta": (STATE, gre("198.18.0.2", struct.pack("!HBBHH", 0x0800, 1, 1, 1, 5) +
                                  syn, proto=0x8909)),
        "teb": (STATE, gre("198.18.0.2", b"\0" * 14, proto=0x6558)),
    }
    for name, (state, pkt) in seeds.items():
        write("worker", name, bytes([state]) + pkt)


def merged_corpus():
    """Seeds of fuzz_merged: state, GSO type choice (1 TCPv4, 2 TCPv6, 3
    UDP, | 0x80 ECN), segment size (little-endian), packet."""
    def seed(kind, seg, pkt, state=STATE):
        return bytes([state, kind]) + struct.pack("<H", seg) + pkt

    data = tcp(40000, 443, syn=False, data=bytes(range(256)) * 16)   # 4096 bytes
    seeds = {
        "tcp4": seed(1, 1000, gre("198.18.0.2", ipv4("10.1.0.1", "192.0.2.80", 6, data,
                                                     df=True))),
        "tcp4_ecn_short_last": seed(0x81, 1400, gre("198.18.0.2", ipv4(
            "10.1.0.1", "192.0.2.80", 6, data, df=True))),
        "tcp4_too_big": seed(1, 1460, gre("198.18.0.2", ipv4("10.1.0.1", "192.0.2.80", 6,
                                                             data, df=True))),
        "tcp6": seed(2, 1000, gre("198.18.0.2", ipv6("2001:db8:1::1", "2001:db8:ffff::1", 6,
                                                     data), proto=0x86dd)),
        "udp4": seed(3, 1000, gre("198.18.0.3", ipv4("10.3.0.1", "192.0.2.53", 17,
                                                     udp(5000, 53, bytes(3000))), key=43)),
        "type_mismatch": seed(3, 1000, gre("198.18.0.2", ipv4("10.1.0.1", "192.0.2.80", 6,
                                                              data))),
        "policy": seed(1, 1000, gre("198.18.0.3", ipv4("10.2.0.1", "192.0.2.80", 6,
                                                       tcp(1, 22, syn=False, data=bytes(3000))),
                                    key=42)),
    }
    for name, data in seeds.items():
        write("merged", name, data)


def tun_corpus():
    seeds = {
        "reply_syn": (0, ipv4("192.0.2.80", "10.1.0.1", 6, tcp(443, 40000), df=True)),
        "reply_keyed": (0, ipv4("192.0.2.80", "10.2.0.1", 6, tcp(8443, 40001, False, data=b"ok"))),
        "reply_same_source": (0, ipv4("192.0.2.53", "10.3.0.1", 17, udp(53, 5353, b"a"))),
        "reply_corp": (1, ipv4("192.0.2.53", "172.16.0.1", 17, udp(53, 5353, b"a"))),
        "reply_disabled": (0, ipv4("192.0.2.53", "10.6.0.1", 17, udp(53, 5353))),
        "too_big_df": (0, ipv4("192.0.2.80", "10.1.0.1", 6, tcp(443, 40000, False,
                                                           data=b"z" * 1480), df=True)),
        "too_big_v6": (0, ipv6("2001:db8:ffff::1", "2001:db8:1::1", 6,
                               tcp(443, 40000, False, data=b"z" * 1460))),
        "reply_v6_syn": (0, ipv6("2001:db8:ffff::1", "2001:db8:1::1", 6, tcp(443, 40000))),
        "no_route": (0, ipv4("192.0.2.53", "10.9.9.9", 17, udp(53, 5353))),
        "local_v6": (0, ipv6("fe80::1", "ff02::2", 58, b"\x85\0\0\0\0\0\0\0")),
        "icmp": (0, ipv4("192.0.2.1", "10.1.0.1", 1, icmp_echo(0))),
    }
    for name, (tenant, pkt) in seeds.items():
        write("tun", name, bytes([tenant]) + pkt)


def vnet(gso_type=0, gso_size=0, csum_start=0, csum_offset=0, flags=1, hdr_len=0):
    """A struct virtio_net_hdr (little-endian) as a TUN with offloads writes it."""
    return struct.pack("<BBHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)


def tun_gso_corpus():
    big = b"".join(bytes([i]) * 100 for i in range(30))
    tcp_big = tcp(443, 40000, False, data=big)
    seeds = {
        "tcp4": (0, vnet(1, 1400, 20, 16, hdr_len=40) +
                 ipv4("192.0.2.80", "10.1.0.1", 6, tcp_big, df=True)),
        "tcp4_ecn_keyed": (0, vnet(0x81, 536, 20, 16, hdr_len=40) +
                           ipv4("192.0.2.80", "10.2.0.1", 6, tcp_big, df=True)),
        "tcp6": (0, vnet(4, 1000, 40, 16, hdr_len=60) +
                 ipv6("2001:db8:ffff::1", "2001:db8:1::1", 6, tcp_big)),
        "udp4": (0, vnet(5, 1200, 20, 6, hdr_len=28) +
                 ipv4("192.0.2.53", "10.1.0.1", 17, udp(53, 5353, big))),
        "needs_csum": (0, vnet(0, 0, 20, 6) +
                       ipv4("192.0.2.53", "10.1.0.1", 17, udp(53, 5353, b"abc"))),
        "too_big": (0, vnet(1, 1460, 20, 16, hdr_len=40) +
                    ipv4("192.0.2.80", "10.1.0.1", 6, tcp_big, df=True)),
        "no_route": (0, vnet(1, 1400, 20, 16, hdr_len=40) +
                     ipv4("192.0.2.80", "10.9.9.9", 6, tcp_big, df=True)),
        "plain": (0, vnet(flags=0) + ipv4("192.0.2.53", "10.1.0.1", 17, udp(53, 5353, b"a"))),
    }
    for name, (tenant, pkt) in seeds.items():
        write("tun_gso", name, bytes([tenant]) + pkt)


def control_corpus():
    seeds = {
        "list": {"command": "site.list"},
        "add": {"command": "site.add", "site": {"name": "g", "source_ip": "198.18.0.7",
                                                "services": "swg", "key": 7,
                                                "http_ports": [8080, 8443], "keepalive": False}},
        "edit": {"command": "site.edit", "name": "a", "set": {"rate_mbps": "10",
                                                             "traffic_type": "iot"}},
        "enable": {"command": "site.enable", "names": ["c"]},
        "disable": {"command": "site.disable", "names": ["a", "b"]},
        "delete": {"command": "site.delete", "names": ["e"]},
        "import": {"command": "site.import", "file": "new.csv", "dry_run": False,
                   "csv": "name,source_ip,services,key\nx,198.18.0.9,cfw,\n"
                          "y,198.18.0.10,swg,5\n"},
        "import_dry": {"command": "site.import", "dry_run": True,
                       "csv": "name,source_ip\na,198.18.0.2\n"},
        "export": {"command": "site.export"},
        "accept": {"command": "pop.accept", "mode": "no-new"},
        "drain": {"command": "pop.accept", "mode": "drain"},
        "reload": {"command": "reload"},
        "unknown": {"command": "site.frobnicate"},
    }
    for name, req in seeds.items():
        write("control", name, json.dumps(req).encode())


def http_query_corpus():
    seeds = {
        "all": "status=up&traffic_type=user&name=a&page=2&per_page=10",
        "disabled": "status=disabled",
        "per_page_max": "per_page=1000&page=1",
        "name_only": "name",
        "escaped": "name=%62&traffic_type=guest-wifi",
        "bad": "colour=blue",
    }
    for name, q in seeds.items():
        write("http_query", name, q.encode())


if __name__ == "__main__":
    worker_corpus()
    merged_corpus()
    tun_corpus()
    tun_gso_corpus()
    control_corpus()
    http_query_corpus()

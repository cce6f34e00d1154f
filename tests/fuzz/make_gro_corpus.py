#!/usr/bin/python3
"""Write the seed corpus of fuzz_gro (tests/fuzz/fuzz_gro.c):

    tests/fuzz/make_gro_corpus.py        (from the repository root)

Each seed is a run of records (flags byte, 2-byte length, inner packet):
mergeable TCP and UDP runs over IPv4 and IPv6, interleaved flows, two
sites, and the packets that must break a run. The files are committed; run
this again after changing the record format and commit the difference.
"""
import os
import socket
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus_gro")
SRC4, DST4 = socket.inet_aton("10.1.0.2"), socket.inet_aton("198.19.0.2")
SRC6 = socket.inet_pton(socket.AF_INET6, "fd00:1::2")
DST6 = socket.inet_pton(socket.AF_INET6, "fd00:2::9")


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def ip_wrap(v6, proto, l4, ident=0, df=True):
    if v6:
        return struct.pack("!IHBB", 6 << 28, len(l4), proto, 64) + SRC6 + DST6 + l4
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, 0x4000 if df else 0,
                      64, proto, 0, SRC4, DST4)
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + l4


def with_l4_csum(v6, proto, l4, off, bad=False):
    pseudo = (SRC6 + DST6 if v6 else SRC4 + DST4) + struct.pack("!HH", proto, len(l4))
    c = csum(pseudo + l4) ^ (0x0101 if bad else 0)
    return l4[:off] + struct.pack("!H", c or 0xffff) + l4[off + 2:]


def tcp(seq, size, v6=False, flags=0x10, sport=40000, bad=False, ident=0):
    payload = bytes((seq + i) * 7 & 0xff for i in range(size))
    opts = struct.pack("!BBBBII", 1, 1, 8, 10, 5, 99)
    l4 = struct.pack("!HHIIBBHHH", sport, 443, seq, 77, (32 // 4) << 4, flags, 512, 0, 0)
    l4 = with_l4_csum(v6, 6, l4 + opts + payload, 16, bad)
    return ip_wrap(v6, 6, l4, ident)


def udp(size, v6=False, sport=40000, bad=False):
    payload = bytes(i * 3 & 0xff for i in range(size))
    l4 = struct.pack("!HHHH", sport, 53, 8 + size, 0) + payload
    return ip_wrap(v6, 17, with_l4_csum(v6, 17, l4, 6, bad))


def records(*pkts):
    out = b""
    for p in pkts:
        flags, pkt = p if isinstance(p, tuple) else (0, p)
        out += struct.pack("!BH", flags, len(pkt)) + pkt
    return out


SEEDS = {
    "tcp4_run": records(*[tcp(1000 + 600 * i, 600, ident=i) for i in range(5)]),
    "tcp6_run_psh": records(*[tcp(1 + 500 * i, 500, v6=True) for i in range(3)],
                            tcp(1501, 100, v6=True, flags=0x18)),
    "udp4_run_short_last": records(*[udp(400) for _ in range(4)], udp(50), udp(400)),
    "udp6_run": records(*[udp(300, v6=True) for _ in range(5)]),
    "interleaved": records(*[p for i in range(3)
                             for p in (tcp(1 + 400 * i, 400), tcp(1 + 400 * i, 400,
                                                                  sport=40001))]),
    "two_sites": records(tcp(1, 400), (1, tcp(401, 400)), tcp(401, 400), (1, tcp(801, 400))),
    "breakers": records(tcp(1, 400), tcp(401, 400, bad=True), tcp(801, 400),
                        tcp(1201, 0, flags=0x11), tcp(1201, 400), (2, tcp(1601, 400)),
                        udp(200), udp(200, bad=True), udp(200)),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()

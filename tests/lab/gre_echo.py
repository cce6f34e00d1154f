#!/usr/bin/python3
"""A minimal GRE peer for testing grerouter without gatewayd, run in a POP
namespace. Written from the RFCs with the standard library only, so it is a
second, independent reading of the wire format.

For every GRE packet to --local it checks the header (version 0, no routing
or reserved bits, checksum when C is set, the MetaData header when present),
then:
  - keepalive (inner IPv4 with protocol 47): sends the inner packet on its
    way, as a POP does, so it goes back to the router;
  - ICMP echo request to --probe-ip (or to anything with --echo-icmp):
    answers inside the tunnel with the same GRE flags, key and MetaData;
  - anything else: counted as data.
Counters (also per tunnel: "source/key"), the last header seen and the last
packet in hex go to --status (JSON), rewritten at most every 100 ms while
they change.
"""

import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time

GRE_C, GRE_R, GRE_K, GRE_S = 0x8000, 0x4000, 0x2000, 0x1000
GRE_RESERVED, GRE_VERSION = 0x0FF8, 0x0007
PROTO_IPV4, PROTO_META = 0x0800, 0x8909


def inet_csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def gre_parse(pkt):
    """GRE header at the start of PKT -> dict, or a string saying what is wrong."""
    if len(pkt) < 4:
        return "truncated"
    flags, proto = struct.unpack("!HH", pkt[:4])
    if flags & (GRE_R | GRE_RESERVED | GRE_VERSION):
        return "bad flags"
    hdr = {"flags": flags, "proto": proto, "key": None, "seq": None, "sgt": None,
           "checksum": bool(flags & GRE_C)}
    off = 4
    for bit, name in ((GRE_C, None), (GRE_K, "key"), (GRE_S, "seq")):
        if flags & bit:
            if len(pkt) < off + 4:
                return "truncated options"
            if name:
                hdr[name] = struct.unpack("!I", pkt[off:off + 4])[0]
            off += 4
    if flags & GRE_C and inet_csum(pkt) != 0:
        return "bad checksum"
    if proto == PROTO_META:
        if len(pkt) < off + 8:
            return "truncated metadata"
        etype, ver, mlen, mtype, sgt = struct.unpack("!HBBHH", pkt[off:off + 8])
        if ver != 1 or mlen != 1 or mtype != 1:
            return "bad metadata"
        hdr["proto"], hdr["sgt"] = etype, sgt
        off += 8
    hdr["payload"] = pkt[off:]
    return hdr


def gre_build(hdr, proto, payload, seq):
    """A GRE header like HDR (flags, key, MetaData) around PAYLOAD."""
    flags = hdr["flags"] & (GRE_C | GRE_K | GRE_S)
    opts = b""
    if flags & GRE_C:
        opts += b"\0\0\0\0"
    if flags & GRE_K:
        opts += struct.pack("!I", hdr["key"])
    if flags & GRE_S:
        opts += struct.pack("!I", seq)
    meta = b""
    if hdr["sgt"] is not None:
        meta = struct.pack("!HBBHH", proto, 1, 1, 1, hdr["sgt"])
        proto = PROTO_META
    pkt = struct.pack("!HH", flags, proto) + opts + meta + payload
    if flags & GRE_C:
        pkt = pkt[:4] + struct.pack("!H", inet_csum(pkt)) + pkt[6:]
    return pkt


def icmp_reply(inner):
    """Echo reply for an IPv4 echo request (no options), or None."""
    if len(inner) < 28 or inner[0] != 0x45 or inner[9] != 1 or inner[20] != 8:
        return None
    icmp = bytearray(inner[20:])
    icmp[0], icmp[2:4] = 0, b"\0\0"
    icmp[2:4] = struct.pack("!H", inet_csum(bytes(icmp)))
    ip = bytearray(inner[:20])
    ip[8], ip[10:12] = 64, b"\0\0"
    ip[12:16], ip[16:20] = inner[16:20], inner[12:16]
    ip[10:12] = struct.pack("!H", inet_csum(bytes(ip)))
    return bytes(ip) + bytes(icmp)


class Echo:
    def __init__(self, args):
        self.args = args
        self.probe_ip = socket.inet_aton(args.probe_ip)
        self.gre = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
        self.gre.bind((args.local, 0))
        self.out = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.stats = {"keepalives": 0, "probes": 0, "data": 0, "bad": 0, "last": None,
                      "last_bad": None, "last_hex": None, "tunnels": {}}
        self.seq = 0
        self.dirty, self.written = True, 0.0

    def handle(self, pkt, src):
        ihl = (pkt[0] & 0x0F) * 4
        hdr = gre_parse(pkt[ihl:])
        if isinstance(hdr, str):
            self.stats["bad"] += 1
            self.stats["last_bad"] = hdr
            return
        inner = hdr.pop("payload")
        self.stats["last"] = dict(hdr, src=src, inner_len=len(inner))
        self.stats["last_hex"] = pkt.hex()
        tunnel = f"{src}/{hdr['key']}"
        self.stats["tunnels"][tunnel] = self.stats["tunnels"].get(tunnel, 0) + 1
        self.dirty = True
        if hdr["proto"] != PROTO_IPV4 or len(inner) < 20:
            self.stats["data"] += 1
        elif inner[9] == socket.IPPROTO_GRE:
            self.stats["keepalives"] += 1
            self.out.sendto(inner, (socket.inet_ntoa(inner[16:20]), 0))
        elif (inner[16:20] == self.probe_ip or self.args.echo_icmp) and icmp_reply(inner):
            self.stats["probes"] += 1
            self.seq += 1
            if self.args.reply_key is not None:
                hdr["key"] = self.args.reply_key
            self.gre.sendto(gre_build(hdr, PROTO_IPV4, icmp_reply(inner), self.seq), (src, 0))
        else:
            self.stats["data"] += 1

    def write_status(self):
        now = time.monotonic()
        if not self.args.status or not self.dirty or now - self.written < 0.1:
            return
        tmp = self.args.status + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.stats, f)
        os.replace(tmp, self.args.status)
        self.dirty, self.written = False, now

    def run(self, stop):
        poller = select.poll()
        poller.register(self.gre, select.POLLIN)
        while not stop:
            if poller.poll(100):
                pkt, (src, _) = self.gre.recvfrom(65536)
                self.handle(pkt, src)
            self.write_status()
        self.dirty, self.written = True, 0.0
        self.write_status()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--local", required=True, help="the POP's gateway IP")
    ap.add_argument("--probe-ip", default="100.64.255.1")
    ap.add_argument("--echo-icmp", action="store_true", help="answer every inner ICMP echo")
    ap.add_argument("--reply-key", type=int, help="answer probes with this key (a wrong one)")
    ap.add_argument("--status", help="JSON counters file")
    args = ap.parse_args()
    try:
        echo = Echo(args)
    except OSError as e:
        print(f"gre_echo: cannot open raw sockets on {args.local}: {e}", file=sys.stderr)
        return 1
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    print("ready", flush=True)
    echo.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""A packet agent for one namespace of the lab, driven line by line on stdin.

    netagent.py --iface wan0 [--ignore SRC_CIDR,DST_CIDR,PROTO ...]

It records every IPv4 packet arriving on IFACE (not the ones this host
sends) that no --ignore rule matches (PROTO 0 = any), and sends raw IPv4
packets (IP_HDRINCL: the kernel fills in the total length and the header
checksum, nothing else). Plain sockets, no scapy: it starts in milliseconds
and sends tens of thousands of packets a second.

Commands, one JSON object per line; one JSON reply per line:

    {"op": "send", "pkts": ["45000...", ...]}          -> {"sent": N}
    {"op": "flood", "pkt": HEX, "count": N, "src_base": "203.0.113.0",
     "src_span": 256, "pps": 10000}                     -> {"sent": N}
        the same packet COUNT times at PPS a second at most, the outer
        source cycling through SRC_SPAN addresses from SRC_BASE
    {"op": "fence", "id": ID, "timeout": S}             -> {"seen": true,
     "packets": [...]}
        waits until a packet with IPv4 identification ID arrives (a marker
        the test sent through the POP), then returns the recorded packets
        other than markers and forgets them
    {"op": "take"}                                      -> {"packets": [...]}

Recorded packets are {"src", "dst", "proto", "id", "len"}. Prints "ready"
once the capture socket is bound.
"""

import argparse
import ipaddress
import json
import socket
import struct
import sys
import threading
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
FENCE_MIN = 0xfe00	# IPv4 identifications from here up are markers


class Capture:
    def __init__(self, iface, ignore):
        self.ignore = ignore
        self.lock = threading.Condition()
        self.packets = []
        self.fences = set()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind((iface, 0))
        threading.Thread(target=self._run, daemon=True).start()

    def _ignored(self, src, dst, proto):
        for s_net, d_net, p in self.ignore:
            if src in s_net and dst in d_net and p in (0, proto):
                return True
        return False

    def _run(self):
        while True:
            frame, addr = self.sock.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING or addr[1] != ETH_P_IP or len(frame) < 34:
                continue
            ip = frame[14:]
            ident, = struct.unpack_from("!H", ip, 4)
            src = ipaddress.IPv4Address(ip[12:16])
            dst = ipaddress.IPv4Address(ip[16:20])
            proto = ip[9]
            inner_id = self._inner_id(ip)
            with self.lock:
                if ident >= FENCE_MIN or inner_id >= FENCE_MIN:
                    self.fences.add(max(ident, inner_id))
                    self.lock.notify_all()
                elif not self._ignored(src, dst, proto):
                    self.packets.append({"src": str(src), "dst": str(dst), "proto": proto,
                                         "id": ident, "len": len(ip)})

    @staticmethod
    def _inner_id(ip):
        """The identification of an IPv4 packet in plain GRE (no options), or 0."""
        ihl = (ip[0] & 0x0f) * 4
        if ip[9] != 47 or len(ip) < ihl + 4 + 20:
            return 0
        flags, proto = struct.unpack_from("!HH", ip, ihl)
        if flags != 0 or proto != 0x0800:
            return 0
        return struct.unpack_from("!H", ip, ihl + 4 + 4)[0]

    def fence(self, ident, timeout):
        deadline = time.monotonic() + timeout
        with self.lock:
            while ident not in self.fences and time.monotonic() < deadline:
                self.lock.wait(0.05)
            seen = ident in self.fences
            self.fences.discard(ident)
            return seen, self.take_locked()

    def take_locked(self):
        out, self.packets = self.packets, []
        return out


def send_raw(sock, pkt):
    dst = socket.inet_ntoa(pkt[16:20])
    try:
        sock.sendto(pkt, (dst, 0))
        return 1
    except OSError:
        return 0


def flood(sock, pkt, count, src_base, span, pps):
    """COUNT copies of PKT at PPS packets a second at most, in bursts of 100."""
    base = int(ipaddress.IPv4Address(src_base))
    buf = bytearray(pkt)
    start = time.monotonic()
    for i in range(count):
        if i % 100 == 0:
            ahead = start + i / pps - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        struct.pack_into("!I", buf, 12, base + i % span)
        while not send_raw(sock, bytes(buf)):	# a full queue: wait, do not lose it
            time.sleep(0.001)
    return count


def parse_ignore(spec):
    s, d, p = spec.split(",")
    return ipaddress.ip_network(s), ipaddress.ip_network(d), int(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--ignore", action="append", default=[], type=parse_ignore)
    args = ap.parse_args()
    cap = Capture(args.iface, args.ignore)
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    print("ready", flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "send":
            reply = {"sent": sum(send_raw(tx, bytes.fromhex(p)) for p in req["pkts"])}
        elif req["op"] == "flood":
            reply = {"sent": flood(tx, bytes.fromhex(req["pkt"]), req["count"],
                                   req["src_base"], req.get("src_span", 1),
                                   req.get("pps", 10000))}
        elif req["op"] == "fence":
            seen, packets = cap.fence(req["id"], req.get("timeout", 5))
            reply = {"seen": seen, "packets": packets}
        else:
            with cap.lock:
                reply = {"packets": cap.take_locked()}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()

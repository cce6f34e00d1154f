#!/usr/bin/python3
"""The downstream security services of the lab, run inside a POP's service
namespace (198.19.0.2):

  http   HTTP on the given ports (default 80 and 443, plain HTTP on both):
         GET /healthz -> 200 "ok"; GET /blob/N -> N deterministic bytes
         (blob_bytes(N), so a download can be checked byte for byte);
         GET /whoami -> the --name given (which service answered).
  echo   TCP echo and UDP echo on port 7.

The lab runs `services.py http` and `services.py echo` as separate processes,
so stopping the HTTP process is a real failure of the service (nothing listens
any more), and starting it again is a recovery.
"""

import argparse
import hashlib
import http.server
import signal
import socketserver
import sys
import threading

CHUNK = 32  # bytes per SHA-256 block of a blob


def blob_bytes(n, start=0):
    """Bytes [start, start + n) of the deterministic blob: block k is
    sha256(b"grepop-blob" + k as 8 bytes), so every offset has its own value
    and a reordered, dropped or repeated segment shows."""
    first = start // CHUNK
    last = (start + n + CHUNK - 1) // CHUNK
    data = b"".join(hashlib.sha256(b"grepop-blob" + k.to_bytes(8, "big")).digest()
                    for k in range(first, last))
    skip = start - first * CHUNK
    return data[skip:skip + n]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "grepop-lab"
    name = "grepop-lab"

    def log_message(self, fmt, *args):
        pass

    def _send(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/healthz":
            self._send(200, b"ok\n")
        elif self.path == "/whoami":
            self._send(200, self.name.encode() + b"\n")
        elif self.path.startswith("/blob/"):
            self._blob(self.path[len("/blob/"):])
        else:
            self._send(404, b"not found\n")

    def _blob(self, arg):
        try:
            size = int(arg)
        except ValueError:
            size = -1
        if not 0 <= size <= 1 << 30:
            self._send(400, b"want /blob/SIZE with 0 <= SIZE <= 1 GiB\n")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        step = 1 << 16
        for off in range(0, size, step):
            self.wfile.write(blob_bytes(min(step, size - off), off))


class HTTPServer(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


class TCPEcho(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class UDPEcho(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(data, self.client_address)


class UDPServer(socketserver.UDPServer):
    allow_reuse_address = True


def serve(servers):
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    for s in servers:
        s.shutdown()
        s.server_close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("service", choices=["http", "echo"])
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--ports", default="80,443", help="HTTP ports (comma separated)")
    ap.add_argument("--echo-port", type=int, default=7)
    ap.add_argument("--name", default=Handler.name, help="what GET /whoami answers")
    args = ap.parse_args()
    Handler.name = args.name
    try:
        if args.service == "http":
            servers = [HTTPServer((args.bind, int(p)), Handler) for p in args.ports.split(",")]
        else:
            servers = [TCPServer((args.bind, args.echo_port), TCPEcho),
                       UDPServer((args.bind, args.echo_port), UDPEcho)]
    except (OSError, ValueError) as e:
        print(f"services: cannot listen: {e}", file=sys.stderr)
        return 1
    serve(servers)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""The dashboard's test server: statsd/www/ plus the JSON API from fixture data.

This is not statsd. It serves the same files and the same two API paths
(docs/architecture.md, "HTTP (stats.http)" and "The dashboard") from
made-up sites whose state a test can change, so that the page can be tested
before and apart from the real statsd:

    server = DashboardServer(n_sites=250)
    server.start()                      # 127.0.0.1, a free port
    server.set_site(name, status="down")
    server.stop()

Run by hand to look at the page: tests/e2e/dashboard_server.py [--port N]
[--sites N]. POST /_fixture/site/NAME with a JSON object changes a site
(e.g. {"status": "down"}), POST /_fixture/pop changes the POP message.
"""

import argparse
import json
import math
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WWW = os.path.join(REPO, "statsd", "www")
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
STATUSES = ("up", "down", "disabled")
TRAFFIC_TYPES = ("user", "iot", "mixed", "machine", "guest-wifi")
CITIES = ("berlin", "hamburg", "munich", "cologne", "vienna", "zurich", "paris", "lyon",
          "milan", "madrid", "lisbon", "dublin", "london", "oslo", "warsaw", "prague")
KINDS = ("office", "store", "plant", "depot", "guest", "lab")


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t is not None else None


def make_sites(n, now):
    """N sites with names, addresses and states spread like a real POP's."""
    sites = []
    for i in range(n):
        name = "%s-%s-%03d" % (CITIES[i % len(CITIES)], KINDS[(i // 3) % len(KINDS)], i)
        keepalive = i % 4 != 3
        status = "disabled" if i % 23 == 22 else ("down" if i % 11 == 5 else "up")
        sites.append({
            "name": name,
            "source_ip": "198.18.%d.%d" % (i // 250, i % 250 + 2),
            "tenant": "default",
            "traffic_type": TRAFFIC_TYPES[i % len(TRAFFIC_TYPES)],
            "services": ("swg+cfw", "swg", "cfw")[i % 3],
            "enabled": status != "disabled",
            "keepalive": keepalive,
            "key": 1000 + i if i % 5 == 0 else None,
            "status": status,
            "last_keepalive_age": (i % 9) + 1 if keepalive else None,
            "last_user_traffic_age": (i * 7) % 400 if i % 6 else None,
            "established_age": 3600 + i * 17,
            "base_kbps": 50.0 + (i * 37) % 900,
            "pop_backup": ["ams1"] if i % 2 else ["ams1", "par1"],
        })
    return sites


class Fixture:
    """The POP and its sites; site messages are made fresh at each request."""

    def __init__(self, n_sites, pop="fra1"):
        self.lock = threading.Lock()
        self.start = time.time()
        self.seq = 0
        self.pop_name = pop
        self.api_down = False           # the API answers 503, as a statsd gone wrong
        self.order_supported = True     # False: `order` refused, as statsd may
        self.sites = make_sites(n_sites, self.start)
        self.pop = {
            "name": pop, "location": "Frankfurt, DE", "gateway_ip": "192.0.2.1",
            "probe_ip": "100.64.255.1", "backup_pops": ["ams1", "par1"],
            "accept_mode": "accept", "accepting_new_tunnels": True, "healthd": "alive",
            "services": {"swg": {"health": "up", "since_age": 5400},
                         "cfw": {"health": "up", "since_age": 86400}},
        }

    def next_seq(self):
        self.seq += 1
        return self.seq

    def header(self, now):
        return {"pop": self.pop_name, "seq": self.next_seq(), "time": iso(now),
                "time_ns": int(now * 1e9)}

    def site_message(self, s, now):
        # Throughput changes every second, so the page's sparklines move.
        tick = int(now)
        wave = 0.5 + 0.5 * math.sin(tick / 4.0 + len(s["name"]) + s["base_kbps"])
        up = s["status"] == "up"
        rx = round(s["base_kbps"] * wave, 1) if up else 0.0
        tx = round(s["base_kbps"] * 6 * (1 - wave / 2), 1) if up else 0.0
        ka = s["last_keepalive_age"]
        if s["keepalive"] and not up:
            ka = None if ka is None else ka + 600
        msg = self.header(now)
        msg.update({k: s[k] for k in ("name", "source_ip", "tenant", "traffic_type",
                                       "services", "enabled", "keepalive", "key", "status",
                                       "pop_backup")})
        msg.update({
            "keepalive_status": ("off" if not s["keepalive"]
                                 else "seen" if up else "not seen"),
            "last_keepalive": iso(now - ka) if ka is not None else None,
            "last_user_traffic": (iso(now - s["last_user_traffic_age"])
                                  if s["last_user_traffic_age"] is not None else None),
            "tunnel": "established" if up else "idle",
            "established_since": iso(now - s["established_age"]) if up else None,
            "rx_kbps": rx, "tx_kbps": tx, "rx_kbps_5m": round(rx * 0.8, 1),
            "tx_kbps_5m": round(tx * 0.8, 1),
            "rx_packets": tick * 10, "rx_bytes": tick * 10000,
            "tx_packets": tick * 12, "tx_bytes": tick * 14000,
            "keepalives": tick // 10, "probes": 0, "drops": {"policy": 0, "rate": 0},
        })
        return msg

    def pop_message(self, now):
        with self.lock:
            counts = {st: sum(1 for s in self.sites if s["status"] == st) for st in STATUSES}
            msg = self.header(now)
            msg.update({k: v for k, v in self.pop.items() if k != "services"})
            msg["services"] = {name: {"health": svc["health"], "since": iso(now - svc["since_age"])}
                               for name, svc in self.pop["services"].items()}
            msg["sites"] = dict(total=len(self.sites), **counts)
            return msg

    def sites_page(self, query, now):
        """(status, body) for /api/v1/sites with QUERY (a parse_qs dict), as
        statsd answers: unknown parameters refused, past the last page an
        empty list. `order` is the dashboard's addition."""
        q = {k: v[-1] for k, v in query.items()}
        known = {"name", "status", "traffic_type", "page", "per_page"}
        unknown = set(q) - known - ({"order"} if self.order_supported else set())
        if unknown:
            return 400, {"error": "unknown parameter \"%s\"" % sorted(unknown)[0]}
        name = q.get("name", "").lower()
        status = q.get("status", "")
        ttype = q.get("traffic_type", "")
        order = q.get("order", "asc")
        if status and status not in STATUSES:
            return 400, {"error": "status: one of up, down, disabled"}
        if ttype and ttype not in TRAFFIC_TYPES:
            return 400, {"error": "traffic_type: one of " + ", ".join(TRAFFIC_TYPES)}
        if order not in ("asc", "desc"):
            return 400, {"error": "order: asc or desc"}
        try:
            per_page = int(q.get("per_page", "100"))
            page = int(q.get("page", "1"))
        except ValueError:
            return 400, {"error": "page and per_page: numbers"}
        if not 1 <= per_page <= 1000 or page < 1:
            return 400, {"error": "per_page: 1..1000; page: from 1"}
        with self.lock:
            match = [s for s in self.sites
                     if name in s["name"].lower()
                     and (not status or s["status"] == status)
                     and (not ttype or s["traffic_type"] == ttype)]
            match.sort(key=lambda s: s["name"], reverse=order == "desc")
            chunk = match[(page - 1) * per_page:page * per_page]
            return 200, {"sites": [self.site_message(s, now) for s in chunk], "page": page,
                         "total": len(match), "per_page": per_page}

    def set_site(self, name, **fields):
        with self.lock:
            for s in self.sites:
                if s["name"] == name:
                    s.update(fields)
                    if "status" in fields:
                        s["enabled"] = fields["status"] != "disabled"
                    return True
            return False

    def set_pop(self, **fields):
        with self.lock:
            for k, v in fields.items():
                if k == "services":
                    for svc, health in v.items():
                        self.pop["services"][svc] = {"health": health, "since_age": 0}
                else:
                    self.pop[k] = v
            mode = self.pop["accept_mode"]
            self.pop["accepting_new_tunnels"] = mode == "accept"


class Handler(BaseHTTPRequestHandler):
    server_version = "grepop-dashboard-test"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        fixture = self.server.fixture
        now = time.time()
        if url.path.startswith("/api/") and fixture.api_down:
            return self.reply(503, {"error": "the fixture's API is down"})
        if url.path == "/api/v1/pop":
            return self.reply(200, fixture.pop_message(now))
        if url.path == "/api/v1/sites":
            return self.reply(*fixture.sites_page(urllib.parse.parse_qs(url.query), now))
        if url.path in FILES:
            name, ctype = FILES[url.path]
            with open(os.path.join(WWW, name), "rb") as f:
                return self.reply(200, f.read(), ctype)
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = min(int(self.headers.get("Content-Length", "0")), 65536)
        try:
            fields = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self.reply(400, {"error": "body: a JSON object"})
        if url.path.startswith("/_fixture/site/"):
            name = urllib.parse.unquote(url.path[len("/_fixture/site/"):])
            ok = self.server.fixture.set_site(name, **fields)
            return self.reply(200 if ok else 404, {"ok": ok})
        if url.path == "/_fixture/pop":
            self.server.fixture.set_pop(**fields)
            return self.reply(200, {"ok": True})
        self.reply(404, {"error": "not found"})


class DashboardServer:
    """The fixture behind a ThreadingHTTPServer on 127.0.0.1."""

    def __init__(self, n_sites=250, port=0):
        self.fixture = Fixture(n_sites)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.fixture = self.fixture
        self.thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.httpd.server_address[1]

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def set_site(self, name, **fields):
        if not self.fixture.set_site(name, **fields):
            raise KeyError(name)

    def set_pop(self, **fields):
        self.fixture.set_pop(**fields)

    def set_api_down(self, down):
        self.fixture.api_down = down

    def site_names(self):
        return sorted(s["name"] for s in self.fixture.sites)


def main():
    ap = argparse.ArgumentParser(description="the dashboard's test server (not statsd)")
    ap.add_argument("--port", type=int, default=9476)
    ap.add_argument("--sites", type=int, default=250)
    args = ap.parse_args()
    server = DashboardServer(args.sites, args.port)
    print("dashboard test server on %s (Ctrl-C stops it)" % server.url, flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

"""Read grepop's shared memory (shm/shm.h) from Python: POP state, sites, counters.

The offsets are hard-coded from struct shm_header and struct shm_pop on
x86_64; tests/unit/test_healthd_health.c asserts the same numbers with
offsetof (and tests/unit/test_shm.c the site and lane offsets), so a layout
change breaks those tests until both are updated.
"""

import mmap
import struct

MAGIC = 0x31504F5045524700
LAYOUT_VERSION = 1

OFF_MAGIC = 0
OFF_LAYOUT_VERSION = 8
OFF_LANES = 12
OFF_SIZE = 16
OFF_POP = 64
OFF_HEALTHD_HEARTBEAT = OFF_POP + 16    # shm_pop.healthd_heartbeat_ns
OFF_SERVICE = OFF_POP + 40              # shm_pop.service[0]
SERVICE_SIZE = 32                       # struct shm_service_state

OFF_ACCEPT = OFF_POP + 0                # shm_pop.accept_mode
OFF_SITE_CAPACITY = 24                  # shm_header.site_capacity
OFF_SITE_STRIDE = 28
OFF_SITES = 40                          # shm_header.sites_offset
OFF_POP_LANE = OFF_POP + 128            # shm_pop.lane[0]
POP_LANE_SIZE = 256
POP_LANES = 8                           # SHM_MAX_LANES

# struct shm_site and struct shm_site_lane
SITE_OFF_IN_USE = 4
SITE_OFF_GENERATION = 8
SITE_OFF_NAME = 16
SITE_OFF_SOURCE_IP = 16 + 64
SITE_OFF_ENABLED = 16 + 98
SITE_OFF_LANES = 128
SITE_LANE_SIZE = 192
SITE_COUNTERS = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "keepalives", "probes")
SITE_TIMES = ("last_keepalive_ns", "last_user_ns", "last_seen_ns", "established_ns")

# enum shm_drop, in order; the first 14 are counted per site.
DROPS = ("disabled", "bad_key", "bad_header", "bad_checksum", "bad_inner",
         "unsupported_protocol", "too_big", "policy", "rate", "auth_failure", "reflect",
         "not_serving", "loop", "io", "unknown_source", "no_route_back", "local")
SITE_DROPS = 14
ACCEPT = ("accept", "no-new", "drain")
PROTO_KINDS = ("teb", "erspan", "wccp", "other")   # shm_pop_lane.unsupported_proto, SHM_PROTO_*

SERVICES = ("swg", "cfw")               # enum shm_service
HEALTH = ("unknown", "up", "down")      # enum shm_health


class ShmReader:
    """A read-only mapping of <runtime_dir>/state."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
        magic, version = struct.unpack_from("<QI", self._map, OFF_MAGIC)
        if magic != MAGIC:
            raise ValueError("%s: not a grepop state file" % path)
        if version != LAYOUT_VERSION:
            raise ValueError("%s: layout version %d" % (path, version))

    def close(self):
        self._map.close()

    def heartbeat_ns(self):
        return struct.unpack_from("<Q", self._map, OFF_HEALTHD_HEARTBEAT)[0]

    def service(self, name):
        """{"health": "up", "since_ns": N, "checks_ok": N, "checks_failed": N}"""
        off = OFF_SERVICE + SERVICES.index(name) * SERVICE_SIZE
        health, _pad, since, ok, failed = struct.unpack_from("<IIQQQ", self._map, off)
        return {
            "health": HEALTH[health] if health < len(HEALTH) else str(health),
            "since_ns": since,
            "checks_ok": ok,
            "checks_failed": failed,
        }

    def health(self, name):
        return self.service(name)["health"]

    def accept_mode(self):
        return ACCEPT[struct.unpack_from("<I", self._map, OFF_ACCEPT)[0]]

    def _lanes(self):
        return struct.unpack_from("<I", self._map, OFF_LANES)[0]

    def sites(self):
        """{name: totals} of every slot in use; totals as site() returns."""
        cap, stride = struct.unpack_from("<II", self._map, OFF_SITE_CAPACITY)
        base = struct.unpack_from("<Q", self._map, OFF_SITES)[0]
        out = {}
        for i in range(cap):
            off = base + i * stride
            if not struct.unpack_from("<I", self._map, off + SITE_OFF_IN_USE)[0]:
                continue
            name = self._map[off + SITE_OFF_NAME:off + SITE_OFF_NAME + 64].split(b"\0")[0]
            out[name.decode()] = self._site_totals(off)
        return out

    def site(self, name):
        """Counters summed over lanes, drops by name, latest times, enabled."""
        return self.sites().get(name)

    def _site_totals(self, off):
        totals = dict.fromkeys(SITE_COUNTERS + SITE_TIMES, 0)
        totals["drops"] = dict.fromkeys(DROPS[:SITE_DROPS], 0)
        totals["enabled"] = bool(self._map[off + SITE_OFF_ENABLED])
        totals["generation"] = struct.unpack_from("<Q", self._map, off + SITE_OFF_GENERATION)[0]
        for lane in range(self._lanes()):
            lo = off + SITE_OFF_LANES + lane * SITE_LANE_SIZE
            values = struct.unpack_from("<6Q14Q4Q", self._map, lo)
            for k, v in zip(SITE_COUNTERS, values[:6]):
                totals[k] += v
            for k, v in zip(DROPS, values[6:20]):
                totals["drops"][k] += v
            for k, v in zip(SITE_TIMES, values[20:]):
                totals[k] = max(totals[k], v)
        return totals

    def pop_totals(self):
        """POP lanes summed: rx/tx packets and bytes, drops by name, and the
        unsupported GRE protocols by kind (PROTO_KINDS)."""
        totals = {"rx_packets": 0, "rx_bytes": 0, "tx_packets": 0, "tx_bytes": 0,
                  "drops": dict.fromkeys(DROPS, 0),
                  "unsupported_proto": dict.fromkeys(PROTO_KINDS, 0)}
        for lane in range(POP_LANES):
            values = struct.unpack_from("<4Q%dQ%dQ" % (len(DROPS), len(PROTO_KINDS)), self._map,
                                        OFF_POP_LANE + lane * POP_LANE_SIZE)
            for k, v in zip(("rx_packets", "rx_bytes", "tx_packets", "tx_bytes"), values[:4]):
                totals[k] += v
            for k, v in zip(DROPS, values[4:4 + len(DROPS)]):
                totals["drops"][k] += v
            for k, v in zip(PROTO_KINDS, values[4 + len(DROPS):]):
                totals["unsupported_proto"][k] += v
        return totals

"""Read and write grepop's shared memory (shm/shm.h) from Python tests.

A test plays gatewayd or healthd with it: publish site identities, move
counters and times, set the acceptance mode and service health, and read
what the daemons write back (heartbeats).

The offsets are hard-coded for x86_64 from shm/shm.h;
tests/unit/test_statsd_collect.c (test_layout) asserts the same numbers
with offsetof, so a layout change breaks that test until this file follows.
"""

import ipaddress
import mmap
import struct
import time

MAGIC = 0x31504F5045524700
LAYOUT_VERSION = 1

# struct shm_header
OFF_MAGIC = 0
OFF_LAYOUT_VERSION = 8
OFF_LANES = 12
OFF_SITE_CAPACITY = 24
OFF_SITE_STRIDE = 28
OFF_SITES_OFFSET = 40
OFF_POP = 64

# struct shm_pop, from OFF_POP
POP_ACCEPT_MODE = 0
POP_SITE_GENERATION = 8
POP_HEALTHD_HEARTBEAT = 16
POP_STATSD_HEARTBEAT = 24
POP_SERVICE = 40
SERVICE_SIZE = 32           # struct shm_service_state
POP_LANE = 128
POP_LANE_SIZE = 256         # struct shm_pop_lane
POP_LANE_DROPS = 32
POP_LANE_UNSUPPORTED = 168  # unsupported_proto[], after drops[SHM_DROP_COUNT]
POP_LANE_RX_QUEUE_DROPS = 208

# struct shm_site
SITE_SEQ = 0
SITE_IN_USE = 4
SITE_GENERATION = 8
SITE_ID = 16
SITE_LANE = 128
SITE_LANE_SIZE = 192        # struct shm_site_lane

# struct shm_site_id, from SITE_ID
ID_NAME = 0
NAME_MAX = 64
ID_SOURCE_IP = 64
ID_KEY = 68
ID_HAS_KEY = 97
ID_ENABLED = 98
ID_KEEPALIVE = 99
ID_TRAFFIC_TYPE = 100
ID_SERVICES = 101
ID_TENANT = 102
ID_SIZE = 104

# struct shm_site_lane: u64 fields by name
LANE_FIELDS = {
    "rx_packets": 0, "rx_bytes": 8, "tx_packets": 16, "tx_bytes": 24,
    "keepalives": 32, "probes": 40,
    "last_keepalive_ns": 160, "last_user_ns": 168, "last_seen_ns": 176,
    "established_ns": 184,
}
LANE_DROPS = 48

# enum shm_drop, in order; the first 14 are counted per site
DROPS = ("disabled", "bad_key", "bad_header", "bad_checksum", "bad_inner",
         "unsupported_protocol", "too_big", "policy", "rate", "auth_failure",
         "reflect", "not_serving", "loop", "io", "unknown_source", "no_route_back", "local")
SITE_DROPS = 14
SERVICES = ("swg", "cfw")
HEALTH = ("unknown", "up", "down")
ACCEPT = ("accept", "no-new", "drain")
PROTO_KINDS = ("teb", "erspan", "wccp", "other")   # SHM_PROTO_*
TRAFFIC_TYPES = ("user", "iot", "mixed", "machine", "guest-wifi")


def now_ns():
    return time.time_ns()


class Shm:
    """A read-write mapping of an existing <runtime_dir>/state."""

    def __init__(self, path):
        self._file = open(path, "r+b")
        self.map = mmap.mmap(self._file.fileno(), 0)
        magic, version, lanes = struct.unpack_from("<QII", self.map, OFF_MAGIC)
        if magic != MAGIC:
            raise ValueError("%s: not a grepop state file" % path)
        if version != LAYOUT_VERSION:
            raise ValueError("%s: layout version %d" % (path, version))
        self.lanes = lanes
        self.capacity, self.stride = struct.unpack_from("<II", self.map, OFF_SITE_CAPACITY)
        self.sites_offset = struct.unpack_from("<Q", self.map, OFF_SITES_OFFSET)[0]

    def close(self):
        self.map.close()
        self._file.close()

    # --- helpers ---

    def _u64(self, off, value=None):
        if value is None:
            return struct.unpack_from("<Q", self.map, off)[0]
        struct.pack_into("<Q", self.map, off, value)
        return value

    def _u32(self, off, value=None):
        if value is None:
            return struct.unpack_from("<I", self.map, off)[0]
        struct.pack_into("<I", self.map, off, value)
        return value

    def slot(self, index):
        if not 0 <= index < self.capacity:
            raise IndexError(index)
        return self.sites_offset + index * self.stride

    def _lane(self, index, lane):
        if not 0 <= lane < self.lanes:
            raise IndexError(lane)
        return self.slot(index) + SITE_LANE + lane * SITE_LANE_SIZE

    # --- sites, as gatewayd's control thread writes them ---

    def write_site(self, index, name, source_ip="198.18.0.2", enabled=True, keepalive=True,
                   traffic_type="user", services=("swg", "cfw"), tenant=0, key=None,
                   generation=1):
        """Publish an identity in slot INDEX under its sequence counter."""
        base = self.slot(index)
        seq = self._u32(base + SITE_SEQ)
        if seq & 1:
            seq += 1
        self._u32(base + SITE_SEQ, seq + 1)
        ident = bytearray(ID_SIZE)
        raw = name.encode()[:NAME_MAX - 1]
        ident[ID_NAME:ID_NAME + len(raw)] = raw
        ident[ID_SOURCE_IP:ID_SOURCE_IP + 4] = ipaddress.IPv4Address(source_ip).packed
        struct.pack_into("<I", ident, ID_KEY, key or 0)
        ident[ID_HAS_KEY] = key is not None
        ident[ID_ENABLED] = bool(enabled)
        ident[ID_KEEPALIVE] = bool(keepalive)
        ident[ID_TRAFFIC_TYPE] = TRAFFIC_TYPES.index(traffic_type)
        ident[ID_SERVICES] = sum(1 << SERVICES.index(s) for s in services)
        ident[ID_TENANT] = tenant
        self.map[base + SITE_ID:base + SITE_ID + ID_SIZE] = bytes(ident)
        self._u64(base + SITE_GENERATION, generation)
        self._u32(base + SITE_IN_USE, 1)
        self._u32(base + SITE_SEQ, seq + 2)

    def free_site(self, index):
        base = self.slot(index)
        seq = self._u32(base + SITE_SEQ)
        self._u32(base + SITE_SEQ, seq + 1)
        self._u32(base + SITE_IN_USE, 0)
        self._u32(base + SITE_SEQ, seq + 2)

    def clear_counters(self, index):
        for lane in range(self.lanes):
            off = self._lane(index, lane)
            self.map[off:off + SITE_LANE_SIZE] = bytes(SITE_LANE_SIZE)

    # --- counters, as a data-plane worker writes its lane ---

    def add(self, index, field, n, lane=0):
        off = self._lane(index, lane) + LANE_FIELDS[field]
        return self._u64(off, self._u64(off) + n)

    def set_time(self, index, field, ns=None, lane=0):
        return self._u64(self._lane(index, lane) + LANE_FIELDS[field],
                         now_ns() if ns is None else ns)

    def add_drop(self, index, reason, n, lane=0):
        d = DROPS.index(reason)
        if d >= SITE_DROPS:
            raise ValueError("%s is counted per POP" % reason)
        off = self._lane(index, lane) + LANE_DROPS + 8 * d
        return self._u64(off, self._u64(off) + n)

    def site_totals(self, index):
        """Sums over lanes of the counters, latest of the times, drops by
        reason, and the slot's enabled flag and generation."""
        out = {}
        for field, rel in LANE_FIELDS.items():
            values = [self._u64(self._lane(index, lane) + rel) for lane in range(self.lanes)]
            out[field] = max(values) if field.endswith("_ns") else sum(values)
        out["drops"] = {reason: sum(self._u64(self._lane(index, lane) + LANE_DROPS + 8 * d)
                                    for lane in range(self.lanes))
                        for d, reason in enumerate(DROPS[:SITE_DROPS])}
        out["enabled"] = bool(self.map[self.slot(index) + SITE_ID + ID_ENABLED])
        out["generation"] = self._u64(self.slot(index) + SITE_GENERATION)
        return out

    def sites(self):
        """{name: site_totals} of every slot in use."""
        out = {}
        for index in range(self.capacity):
            off = self.slot(index)
            if self._u32(off + SITE_IN_USE):
                name = self.map[off + SITE_ID + ID_NAME:off + SITE_ID + ID_NAME + NAME_MAX]
                out[name.split(b"\0")[0].decode()] = self.site_totals(index)
        return out

    def site(self, name):
        """site_totals of the site called NAME, or None."""
        return self.sites().get(name)

    # --- POP state ---

    def add_pop_drop(self, reason, n, lane=0):
        off = OFF_POP + POP_LANE + lane * POP_LANE_SIZE + POP_LANE_DROPS + 8 * DROPS.index(reason)
        return self._u64(off, self._u64(off) + n)

    def add_rx_queue_drops(self, n, lane=0):
        off = OFF_POP + POP_LANE + lane * POP_LANE_SIZE + POP_LANE_RX_QUEUE_DROPS
        return self._u64(off, self._u64(off) + n)

    def set_accept_mode(self, mode):
        self._u32(OFF_POP + POP_ACCEPT_MODE, ACCEPT.index(mode))

    def set_service(self, name, health, since_ns=None):
        off = OFF_POP + POP_SERVICE + SERVICES.index(name) * SERVICE_SIZE
        self._u32(off, HEALTH.index(health))
        self._u64(off + 8, now_ns() if since_ns is None else since_ns)

    def healthd_heartbeat(self, ns=None):
        return self._u64(OFF_POP + POP_HEALTHD_HEARTBEAT, now_ns() if ns is None else ns)

    def statsd_heartbeat_ns(self):
        return self._u64(OFF_POP + POP_STATSD_HEARTBEAT)

    def heartbeat_ns(self):
        """healthd's heartbeat."""
        return self._u64(OFF_POP + POP_HEALTHD_HEARTBEAT)

    def accept_mode(self):
        return ACCEPT[self._u32(OFF_POP + POP_ACCEPT_MODE)]

    def service(self, name):
        """{"health": "up", "since_ns": N, "checks_ok": N, "checks_failed": N}"""
        off = OFF_POP + POP_SERVICE + SERVICES.index(name) * SERVICE_SIZE
        health, _pad, since, ok, failed = struct.unpack_from("<IIQQQ", self.map, off)
        return {"health": HEALTH[health] if health < len(HEALTH) else str(health),
                "since_ns": since, "checks_ok": ok, "checks_failed": failed}

    def health(self, name):
        return self.service(name)["health"]

    def pop_totals(self):
        """POP lanes summed: rx/tx packets and bytes, drops by reason, the
        unsupported GRE protocols by kind (PROTO_KINDS) and what the kernel
        dropped for a full receive queue (rx_queue_drops)."""
        totals = {"rx_packets": 0, "rx_bytes": 0, "tx_packets": 0, "tx_bytes": 0,
                  "rx_queue_drops": 0, "drops": dict.fromkeys(DROPS, 0),
                  "unsupported_proto": dict.fromkeys(PROTO_KINDS, 0)}
        for lane in range(8):	# SHM_MAX_LANES
            base = OFF_POP + POP_LANE + lane * POP_LANE_SIZE
            values = struct.unpack_from("<4Q%dQ" % len(DROPS), self.map, base)
            for k, v in zip(("rx_packets", "rx_bytes", "tx_packets", "tx_bytes"), values[:4]):
                totals[k] += v
            for k, v in zip(DROPS, values[4:]):
                totals["drops"][k] += v
            kinds = struct.unpack_from("<%dQ" % len(PROTO_KINDS), self.map,
                                       base + POP_LANE_UNSUPPORTED)
            for k, v in zip(PROTO_KINDS, kinds):
                totals["unsupported_proto"][k] += v
            totals["rx_queue_drops"] += struct.unpack_from(
                "<Q", self.map, base + POP_LANE_RX_QUEUE_DROPS)[0]
        return totals

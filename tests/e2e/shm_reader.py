"""Read the POP block of grepop's shared memory (shm/shm.h) from Python.

The offsets are hard-coded from struct shm_header and struct shm_pop on
x86_64; tests/unit/test_healthd_health.c asserts the same numbers with
offsetof, so a layout change breaks that test until both are updated.
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

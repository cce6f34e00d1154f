"""gatewayd against an independent GRE implementation (grerouter) with every
header option: key, checksum, sequence numbers, Cisco MetaData, and each with
keepalives answered. Two implementations written apart must agree on the
wire."""

import hashlib
import os

import pytest

import lab as lablib
import services
from conftest import module_prefix
from pop import Pop

OPTIONS = {
    "plain": [],
    "key": ["--key", "42"],
    "checksum": ["--checksum"],
    "seq": ["--seq"],
    "meta": ["--cisco-meta", "77"],
    "all": ["--key", "42", "--checksum", "--seq", "--cisco-meta", "77"],
}


@pytest.fixture(scope="module")
def env(request, build_dir):
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    for daemon in ("gatewayd", "healthd"):
        if not os.access(os.path.join(build_dir, daemon), os.X_OK):
            pytest.skip(f"{daemon} not built")
    lab = lablib.standard(module_prefix(request), build_dir, backup=False)
    try:
        yield lab
    finally:
        lab.close()


ECHO_CLIENT = """
import socket, sys
sys.path.insert(0, {here!r})
from services import blob_bytes
data = blob_bytes({n})
s = socket.create_connection(({ip!r}, 7), timeout=10)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
got = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
print("same" if got == data else f"differs: {{len(got)}} of {{len(data)}} bytes")
"""

@pytest.mark.parametrize("name", [
    "plain", "key", "checksum", "seq", "meta", "all"])
def test_options_interoperate(env, name):
    lab = env
    args = OPTIONS[name]
    # each case on its own: no path MTU or TCP metrics learnt by an earlier one
    for role in ("svc1", "branch"):
        lab.run(role, ["ip", "route", "flush", "cache"])
        lab.run(role, ["ip", "tcp_metrics", "flush", "all"], check=False)
    key = args[args.index("--key") + 1] if "--key" in args else ""
    pop = Pop(lab, "pop1", sites=[{"name": "branch", "source_ip": "198.18.0.2", "key": key}])
    lablib.wait_for(lambda: pop.shm().health("swg") == "up" and pop.shm().health("cfw") == "up",
                    10, what="services up")
    start = pop.site("branch")
    router = lab.start_router(["--keepalive", "1,3", *args], backup=None)
    try:
        lablib.wait_for(lambda: router.status()["primary"]["answered"] >= 2, 10,
                        what="keepalives answered")
        out = lab.run("branch", ["sh", "-c", f"curl -sS -m 10 http://{lablib.SVC_IP}/blob/200000"
                                             " | sha256sum"], timeout=15)
        assert out.split()[0] == hashlib.sha256(services.blob_bytes(200000)).hexdigest()
        # full-size segments from the branch as well: TCP echo both ways
        out = lab.run("branch", [lablib.PYTHON, "-c", ECHO_CLIENT.format(
            here=lablib.HERE, n=300000, ip=lablib.SVC_IP)], timeout=20)
        assert out.strip() == "same"
        site = pop.site("branch")
        assert site["rx_packets"] > start["rx_packets"] and site["tx_packets"] > start["tx_packets"]
        assert router.status()["drops"] == 0
        drops = {k: v - start["drops"][k] for k, v in site["drops"].items() if v != start["drops"][k]}
        assert drops == {}
    finally:
        lab.stop_router(router)
        pop.stop()

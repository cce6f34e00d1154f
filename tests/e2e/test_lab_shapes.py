"""Other lab shapes: two sites behind one router (each its own tunnel, by
policy routing), two tenants' routers with the same branch network, and the
lab's command line as the demo uses it."""

import os
import subprocess

import lab as lablib


def ping(lab, role, dst, count=2):
    out = lab.run(role, ["ping", "-c", str(count), "-i", "0.2", "-W", "2", dst], check=False)
    return f"{count} received" in out


def tunnel_count(echo, tunnel):
    """Packets the reflector saw from TUNNEL ("source/key")."""
    return ((echo.stats() or {}).get("tunnels") or {}).get(tunnel, 0)


def assert_conf_loads(lab, conf):
    """The configuration loader itself accepts what write_conf wrote."""
    gatewayd = lab.binary("gatewayd")
    if not os.access(gatewayd, os.X_OK):
        return	# gatewayd not built: the text checks above still ran
    out = lab.run("pop1", [gatewayd, "-n", "-c", conf])
    assert 'gateway_ip = "198.18.0.11";' in out


def test_two_sites_one_router(build_dir):
    prefix = f"s{os.getpid() % 10000}"
    with lablib.standard(prefix, build_dir, backup=False, branch2=True) as lab:
        echo = lab.start_echo("pop1", "--echo-icmp")
        r1 = lab.start_router(["--key", "1"], backup=None)
        r2 = lab.start_router(["--key", "2", "--checksum"], site="branch2", backup=None)
        assert r2.tun == "gre-r1"
        assert ping(lab, "branch", "198.19.0.2")
        assert ping(lab, "branch2", "198.19.0.2")
        lablib.wait_for(lambda: tunnel_count(echo, "198.18.0.2/1") >= 2 and
                        tunnel_count(echo, "198.18.0.3/2") >= 2, 3, what="both tunnels at pop1")
        lablib.wait_for(lambda: r2.status()["rx_packets"] >= 2 and r1.status()["rx_packets"] >= 2,
                        3, what="replies through both tunnels")
        assert_conf_loads(lab, lab.write_conf("pop1"))
    assert lablib.netns_list(prefix) == []


def test_overlapping_tenants(build_dir):
    prefix = f"o{os.getpid() % 10000}"
    with lablib.overlapping(prefix, build_dir) as lab:
        assert "10.1.0.2/24" in lab.addresses("branch")["eth0"]
        assert "10.1.0.2/24" in lab.addresses("branchb")["eth0"]
        echo = lab.start_echo("pop1", "--echo-icmp")
        lab.start_router(["--key", "10"], router="router", backup=None)
        lab.start_router(["--key", "20"], router="router2", backup=None)
        assert ping(lab, "branch", "198.19.0.2")
        assert ping(lab, "branchb", "198.19.0.2")
        lablib.wait_for(lambda: tunnel_count(echo, "198.18.0.2/10") >= 2 and
                        tunnel_count(echo, "198.18.0.4/20") >= 2, 3, what="both tenants at pop1")
        conf = lab.write_conf("pop1", sites=[
            {"name": "acme", "source_ip": "198.18.0.2", "key": "10", "tenant": "acme"},
            {"name": "globex", "source_ip": "198.18.0.4", "key": "20", "tenant": "globex"}],
            tenants=[{"name": "acme", "tun": "t-acme", "routes": ["10.1.0.0/16"], "table": 101},
                     {"name": "globex", "tun": "t-globex", "routes": ["10.1.0.0/16"],
                      "table": 102}])
        with open(conf) as f:
            text = f.read()
        assert 'tun = "t-globex"; table = 102;' in text and "@" not in text
        assert_conf_loads(lab, conf)
        with open(os.path.join(lab.pop_dir("pop1"), "lib", "sites.csv")) as f:
            assert f.read().splitlines() == ["name,source_ip,key,tenant",
                                             "acme,198.18.0.2,10,acme",
                                             "globex,198.18.0.4,20,globex"]


def test_cli_up_status_down(build_dir):
    prefix = f"c{os.getpid() % 10000}"
    cli = [lablib.PYTHON, os.path.join(lablib.HERE, "lab.py")]
    try:
        up = subprocess.run(cli + ["up", "--prefix", prefix, "--build", build_dir],
                            capture_output=True, text=True, timeout=60)
        assert up.returncode == 0, up.stderr
        # the topology and its services outlive the command
        assert len(lablib.netns_list(prefix)) == 7
        st = subprocess.run(cli + ["status", "--prefix", prefix], capture_output=True,
                            text=True, timeout=20)
        assert st.returncode == 0
        assert f"{prefix}-svc1" in st.stdout and "eth0=198.19.0.2/24" in st.stdout
        out = lablib.sh(["ip", "netns", "exec", f"{prefix}-pop2", "curl", "-sS", "-m", "5",
                         "http://198.19.0.2/healthz"])
        assert out == "ok\n"
    finally:
        down = subprocess.run(cli + ["down", "--prefix", prefix], capture_output=True,
                              text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert lablib.netns_list(prefix) == []
    assert not os.path.exists(lablib.run_dir_of(prefix))
    st = subprocess.run(cli + ["status", "--prefix", prefix], capture_output=True, text=True,
                        timeout=20)
    assert st.returncode == 1 and "no lab" in st.stdout


def test_orphans_are_swept(build_dir):
    """A lab whose owner was SIGKILLed is removed by the next lab."""
    prefix = f"k{os.getpid() % 10000}"
    script = (f"import sys; sys.path.insert(0, {lablib.HERE!r}); import lab, os, signal; "
              f"lab.standard({prefix!r}, {build_dir!r}, backup=False); "
              "print('up', flush=True); os.kill(os.getpid(), signal.SIGKILL)")
    p = subprocess.run([lablib.PYTHON, "-c", script], capture_output=True, text=True, timeout=60)
    assert p.returncode == -9 and p.stdout == "up\n", p.stderr
    try:
        assert len(lablib.netns_list(prefix)) == 5
        lablib.sweep_orphans()
        assert lablib.netns_list(prefix) == []
        assert not os.path.exists(lablib.run_dir_of(prefix))
    finally:
        lablib.teardown(prefix)


def test_prefix_in_use_is_refused(lab):
    """Another process asking for a live lab's prefix is refused and the
    running lab is left alone."""
    script = (f"import sys; sys.path.insert(0, {lablib.HERE!r}); import lab; "
              f"lab.Lab({lab.prefix!r})")
    p = subprocess.run([lablib.PYTHON, "-c", script], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0 and f"{lab.prefix} is in use by process {os.getpid()}" in p.stderr
    assert len(lablib.netns_list(lab.prefix)) == 7
    lab.run("branch", ["ping", "-c1", "-W2", "10.1.0.1"])


def test_sigterm_removes_the_lab(build_dir):
    """A test run stopped with SIGTERM (a CI timeout) still removes its lab."""
    prefix = f"q{os.getpid() % 10000}"
    script = (f"import sys, time; sys.path.insert(0, {lablib.HERE!r}); import lab; "
              f"l = lab.standard({prefix!r}, {build_dir!r}, backup=False); "
              "l.start_router(['--keepalive', '1,3'], backup=None); "
              "print('up', flush=True); time.sleep(60)")
    p = subprocess.Popen([lablib.PYTHON, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "up\n"
        assert len(lablib.netns_list(prefix)) == 5
        p.terminate()
        assert p.wait(timeout=30) == -15	# the handler re-raises the signal
        assert lablib.netns_list(prefix) == []
        assert not os.path.exists(lablib.run_dir_of(prefix))
    finally:
        p.kill()
        lablib.teardown(prefix)

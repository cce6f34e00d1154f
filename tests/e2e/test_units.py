"""The systemd units and `make install`, checked without systemd running.

`make install` puts a build (GREPOP_BUILD, default build/) into a temporary
DESTDIR with PREFIX=/usr. The installed units are then checked by systemd's
own tools: `systemd-analyze verify` (syntax, known keys, executables that
exist) and `systemd-analyze security --offline=yes` (exposure below 3.0).
For verify, the units are rendered once more with @PREFIX@ pointing into the
DESTDIR, so that ExecStart= names the binaries just installed.
"""

import os
import re
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("GREPOP_BUILD", os.path.join(REPO, "build")))
DAEMONS = ("gatewayd", "healthd", "statsd")
SERVICES = tuple("grepop-%s.service" % d for d in DAEMONS)
UNITS = SERVICES + ("grepop.target",)
MAX_EXPOSURE = 3.0
SITES_HEADER = "name,source_ip,traffic_type,services,keepalive,enabled,tenant,key," \
    "http_ports,rate_mbps"


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


def unit_text(name, prefix):
    with open(os.path.join(REPO, "systemd", name)) as f:
        return f.read().replace("@PREFIX@", prefix)


def unit_settings(text):
    """{key: [values...]} of a unit file, comments and sections left out."""
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    """`make install DESTDIR=tmp PREFIX=/usr` of the existing build."""
    missing = [p for p in DAEMONS + ("grepopctl",)
               if not os.access(os.path.join(BUILD, p), os.X_OK)]
    if missing:
        pytest.skip("%s: not built: %s" % (BUILD, " ".join(missing)))
    dest = tmp_path_factory.mktemp("destdir")
    # -o all: install the build as it is, never rebuild it with other flags
    # (GREPOP_BUILD may be the sanitizer build).
    r = run(["make", "--no-print-directory", "-C", REPO, "-o", "all", "install",
             "BUILD=" + BUILD, "DESTDIR=" + str(dest), "PREFIX=/usr"])
    assert r.returncode == 0, r.stdout + r.stderr
    yield dest
    shutil.rmtree(dest, ignore_errors=True)


def test_install_puts_every_file_in_place(destdir):
    for d in DAEMONS:
        assert os.access(destdir / "usr/sbin" / d, os.X_OK), d
    assert os.access(destdir / "usr/bin/grepopctl", os.X_OK)
    for u in UNITS:
        text = (destdir / "lib/systemd/system" / u).read_text()
        assert "@PREFIX@" not in text, u
    gw = (destdir / "lib/systemd/system/grepop-gatewayd.service").read_text()
    assert "ExecStart=/usr/sbin/gatewayd -c /etc/grepop/grepop.conf" in gw

    conf = (destdir / "etc/grepop/grepop.conf").read_text()
    with open(os.path.join(REPO, "etc/grepop.conf")) as f:
        assert conf == f.read()
    sites = (destdir / "var/lib/grepop/sites.csv").read_text()
    assert sites.splitlines() == [SITES_HEADER]

    assert (destdir / "usr/lib/sysusers.d/grepop.conf").is_file()
    man_dir = os.path.join(REPO, "man")
    if os.path.isdir(man_dir):
        for page in os.listdir(man_dir):
            section = page.rsplit(".", 1)[-1]
            if section.isdigit():
                assert (destdir / "usr/share/man" / ("man" + section) / page).is_file()


def test_install_keeps_the_operators_files(destdir):
    conf = destdir / "etc/grepop/grepop.conf"
    sites = destdir / "var/lib/grepop/sites.csv"
    conf.write_text("# edited by the operator\n")
    sites.write_text(SITES_HEADER + "\nbranch,198.18.0.2,user,swg,yes,yes,default,,,\n")

    r = run(["make", "--no-print-directory", "-C", REPO, "-o", "all", "install",
             "BUILD=" + BUILD, "DESTDIR=" + str(destdir), "PREFIX=/usr"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert conf.read_text() == "# edited by the operator\n"
    assert "branch,198.18.0.2" in sites.read_text()


def test_sysusers_creates_the_grepop_user(destdir, tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    r = run(["systemd-sysusers", "--root=" + str(root),
             str(destdir / "usr/lib/sysusers.d/grepop.conf")])
    assert r.returncode == 0, r.stderr
    passwd = (root / "etc/passwd").read_text()
    user = [line.split(":") for line in passwd.splitlines() if line.startswith("grepop:")]
    assert len(user) == 1
    assert user[0][5] == "/var/lib/grepop"
    assert int(user[0][2]) < 1000            # a system user
    assert "grepop:" in (root / "etc/group").read_text()


def test_units_verify(destdir, tmp_path):
    # The installed units, with ExecStart= pointing at the DESTDIR's binaries.
    for u in UNITS:
        (tmp_path / u).write_text(unit_text(u, str(destdir / "usr")))
    r = run(["systemd-analyze", "verify", "--man=no"] + [str(tmp_path / u) for u in UNITS])
    assert r.returncode == 0, r.stderr
    # verify only warns about unknown keys and bad values: any line is a failure.
    assert r.stderr.strip() == "" and r.stdout.strip() == "", r.stderr + r.stdout


def test_verify_catches_a_broken_unit(tmp_path):
    """The check above can fail: a misspelt key and a missing binary are seen."""
    text = unit_text("grepop-statsd.service", str(tmp_path / "usr"))
    broken = text.replace("UMask=", "UMsak=").replace("/sbin/statsd", "/sbin/no-such-statsd")
    (tmp_path / "grepop-statsd.service").write_text(broken)
    r = run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "grepop-statsd.service")])
    assert "UMsak" in r.stderr
    assert "no-such-statsd" in r.stderr


def exposure(path):
    r = run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(path)])
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    return float(m.group(1)), r


@pytest.mark.parametrize("unit", SERVICES)
def test_unit_exposure_below_3(unit, tmp_path):
    path = tmp_path / unit
    path.write_text(unit_text(unit, "/usr"))
    score, _ = exposure(path)
    assert score < MAX_EXPOSURE, "%s: exposure %.1f" % (unit, score)
    # --threshold takes the same scale times ten; it fails above it.
    r = run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
             "--threshold=%d" % int(MAX_EXPOSURE * 10), str(path)])
    assert r.returncode == 0, r.stdout


def test_an_unhardened_unit_scores_high(tmp_path):
    """The score parsed above is real: a bare service is far above 3.0."""
    path = tmp_path / "bare.service"
    path.write_text("[Service]\nType=notify\nExecStart=/usr/sbin/statsd\n")
    score, _ = exposure(path)
    assert score > 8.0


def test_documentation_names_pages_that_exist():
    man_dir = os.path.join(REPO, "man")
    if not os.path.isdir(man_dir):
        pytest.skip("no man/ folder yet")
    for u in UNITS:
        for doc in " ".join(unit_settings(unit_text(u, "/usr")).get("Documentation", [])).split():
            m = re.fullmatch(r"man:([\w.-]+)\((\d)\)", doc)
            assert m, "%s: %s" % (u, doc)
            page = "%s.%s" % m.groups()
            assert os.path.isfile(os.path.join(man_dir, page)), "%s: no man/%s" % (u, page)


def test_service_set_wiring():
    target = unit_settings(unit_text("grepop.target", "/usr"))
    assert target["WantedBy"] == ["multi-user.target"]
    assert set(" ".join(target["Wants"]).split()) == set(SERVICES)
    for unit in SERVICES:
        s = unit_settings(unit_text(unit, "/usr"))
        daemon = unit[len("grepop-"):-len(".service")]
        assert s["PartOf"] == ["grepop.target"], unit
        assert s["WantedBy"] == ["grepop.target"], unit
        assert s["Type"] == ["notify"], unit
        assert s["Restart"] == ["on-failure"], unit
        assert s["WatchdogSec"] and s["WatchdogSec"][0] != "0", unit
        assert s["ExecStart"] == ["/usr/sbin/%s -c /etc/grepop/grepop.conf" % daemon]
        assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"], unit
        # One user and one preserved runtime directory for the shared memory.
        assert s["User"] == ["grepop"] and s["Group"] == ["grepop"], unit
        assert s["RuntimeDirectory"] == ["grepop"], unit
        assert s["RuntimeDirectoryPreserve"] == ["yes"], unit
        # Only gatewayd writes the sites file and the acceptance mode.
        assert s.get("StateDirectory") == (["grepop"] if daemon == "gatewayd" else None), unit
        assert s["ConfigurationDirectory"] == ["grepop"], unit
        caps = s["CapabilityBoundingSet"][0].split()
        if daemon == "gatewayd":
            assert sorted(caps) == ["CAP_NET_ADMIN", "CAP_NET_RAW"]
            assert sorted(s["AmbientCapabilities"][0].split()) == caps
            assert s["DeviceAllow"] == ["/dev/net/tun rw"]
            assert s["DevicePolicy"] == ["closed"]
        else:
            assert caps == [], unit
            assert s["PrivateDevices"] == ["yes"], unit

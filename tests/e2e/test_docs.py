"""The manual pages in man/ stay true to the code.

Each page renders without a warning from man and groff, and each is checked
against what it documents:

  grepop.conf.5   every key of lib/conf.c's key tables is documented, every
                  documented key exists, each documented default is what
                  `gatewayd -n` prints for a minimal configuration, each
                  range is the one in the table, and the example loads;
  grepop-sites.5  every column of lib/site_conf.c is documented and no other,
                  and the example file loads;
  grepopctl.8     every command and option of `grepopctl --help` is there,
                  and the exit codes of grepopctl/cli.h;
  the daemons     every option of `DAEMON -h` is there.

No root and no network: only the build's binaries and man/groff.
"""

import glob
import os
import re
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAN = os.path.join(REPO, "man")
PAGES = ["gatewayd.8", "healthd.8", "statsd.8", "grepopctl.8", "grepop.conf.5",
         "grepop-sites.5"]
ENV = dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80")

MINIMAL_CONF = 'pop = { name = "fra1"; gateway_ip = "192.0.2.1"; };\n'
NO_SITES = "/nonexistent/grepop-test/sites.csv"	# a missing sites file: no sites


def page_path(page):
    return os.path.join(MAN, page)


def source(page):
    with open(page_path(page)) as f:
        return f.read()


def rendered(page):
    """The page as man shows it, in plain text (no overstrikes), with the
    typographic minus and hyphen turned back into ASCII."""
    p = subprocess.run(["man", "-l", "-Tutf8", page_path(page)], capture_output=True,
                       text=True, env=dict(ENV, MAN_KEEP_FORMATTING="", MANPAGER="cat"),
                       timeout=30)
    assert p.returncode == 0, p.stderr
    text = re.sub(r".\x08", "", p.stdout)
    text = text.replace("\u2212", "-").replace("\u2010", "-")
    # Words broken across lines by the formatter ("gre-\npopctl").
    return re.sub(r"(\w)[-\u2010]\n\s+(\w)", r"\1\2", text)


def flat(text):
    return " ".join(text.split())


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_warnings(page):
    p = subprocess.run(["man", "--warnings", "-l", "-Tutf8", page_path(page)],
                       capture_output=True, text=True, env=ENV, timeout=30)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    p = subprocess.run(["groff", "-man", "-ww", "-z", page_path(page)], capture_output=True,
                       text=True, env=ENV, timeout=30)
    assert p.returncode == 0 and p.stderr == "", p.stderr


@pytest.mark.parametrize("page", PAGES)
def test_page_has_the_usual_sections(page):
    heads = re.findall(r"^\.SH (.*)$", source(page), re.M)
    for want in ["NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "EXAMPLES", "SEE ALSO"]:
        assert want in heads, f"{page}: no {want} section"
    if page.endswith(".8"):
        for want in ["OPTIONS", "EXIT STATUS"]:
            assert want in heads, f"{page}: no {want} section"
    if page in ("gatewayd.8", "healthd.8", "statsd.8"):
        assert "SIGNALS" in heads


# --- grepop.conf.5 against lib/conf.c


def conf_c_tables():
    """{table name: [(key, parser, lo, hi, children)]} from lib/conf.c."""
    with open(os.path.join(REPO, "lib", "conf.c")) as f:
        text = f.read()
    tables = {}
    for m in re.finditer(r"static const struct conf_key (\w+)\[\] = \{(.*?)\n\};", text, re.S):
        entries = []
        for line in re.findall(r"^\t(RANGE_KEY\(.*?\)|\{ \.name = \"\w+\".*?\}),?$", m.group(2),
                               re.M | re.S):
            r = re.match(r'RANGE_KEY\("(\w+)", (\w+), \w+, (\w+), (\w+)\)', line)
            if r:
                entries.append((r.group(1), r.group(2), r.group(3), r.group(4), None))
                continue
            name = re.search(r'\.name = "(\w+)"', line).group(1)
            parser = re.search(r"\.parse = (\w+)", line).group(1)
            child = re.search(r"\.children = (\w+)", line)
            entries.append((name, parser, None, None, child and child.group(1)))
        tables[m.group(1)] = entries
    return tables


# Tables that are not a group's children: the elements of two lists.
LIST_TABLES = {"tenant_keys": "tenants[].", "check_keys": "health.checks[]."}


def conf_c_keys():
    """{dotted key path: (lo, hi)} of every key the loader accepts."""
    tables = conf_c_tables()
    prefixes = dict(LIST_TABLES, root_keys="")
    for entries in tables.values():
        for name, _, _, _, child in entries:
            if child:
                prefixes[child] = None
    for name, _, _, _, child in tables["root_keys"]:
        if child:
            prefixes[child] = name + "."
    assert set(prefixes) == set(tables), \
        f"a key table of lib/conf.c this test does not place: {set(tables) - set(prefixes)}"
    keys = {}
    for table, entries in tables.items():
        for name, _, lo, hi, child in entries:
            if not child:
                keys[prefixes[table] + name] = (lo, hi)
    return keys


def shm_define(name):
    with open(os.path.join(REPO, "shm", "shm.h")) as f:
        return re.search(rf"#define {name}\s+(\d+)", f.read()).group(1)


def conf_page_entries():
    """{key path: the text of its entry} from grepop.conf.5 (.TP / .B key)."""
    text = source("grepop.conf.5")
    entries = {}
    key = r"[a-z_]+(?:\[\])?(?:\.[a-z_]+(?:\[\])?)*"
    for m in re.finditer(rf"^\.TP\n\.B ({key})\n(.*?)(?=^\.TP|^\.SH|\Z)", text, re.M | re.S):
        entries[m.group(1)] = m.group(2)
    return entries


def printed_keys(conf_text):
    """{dotted path: value text} of gatewayd -n's normalised configuration;
    list elements are named NAME[] (every element of a list says the same
    key, the first value is kept)."""
    path, keys = [], {}
    for raw in conf_text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"(\w+) = (.*);$", line)
        if m and not m.group(2).endswith(("{", "(")):
            keys.setdefault(".".join(path + [m.group(1)]), m.group(2))
            continue
        m = re.match(r"(\w+) = ([{(])$", line)
        if m:
            path.append(m.group(1) + ("[]" if m.group(2) == "(" else ""))
            continue
        if line == "{":
            continue
        if line in ("}", "},", "};", ");", ")"):
            if line in ("};", ");") and path:
                path.pop()
            continue
        raise AssertionError(f"cannot read gatewayd -n line {raw!r}")
    return keys


def run_check(build_dir, conf_text, sites_text=None):
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "grepop.conf")
        with open(conf, "w") as f:
            f.write(conf_text)
        sites = NO_SITES
        if sites_text is not None:
            sites = os.path.join(d, "sites.csv")
            with open(sites, "w") as f:
                f.write(sites_text)
        args = [os.path.join(build_dir, "gatewayd"), "-n", "-c", conf, "-s", sites]
        return subprocess.run(args, capture_output=True, text=True, timeout=30)


def test_conf_page_documents_every_key_and_no_other():
    code = set(conf_c_keys())
    page = set(conf_page_entries())
    groups = {"tenants", "health.checks"}	# lists: documented as keys too
    assert code - page == set(), "keys lib/conf.c accepts, missing in grepop.conf.5"
    assert page - code - groups == set(), "keys in grepop.conf.5 that lib/conf.c rejects"


def test_conf_page_defaults_are_what_gatewayd_prints(build_dir):
    p = run_check(build_dir, MINIMAL_CONF)
    assert p.returncode == 0, p.stderr
    printed = printed_keys(p.stdout.split("# sites:")[0])
    entries = conf_page_entries()
    assert set(printed) <= set(entries), "gatewayd -n prints keys the page lacks"
    checked = 0
    for key, text in entries.items():
        assert "Default:" in text or "Required." in text, f"{key}: neither default nor required"
        m = re.search(r"Default: \\fB(.*?)\\fR\.", text)
        if m is None or key.startswith("tenants[]") and key != "tenants[].table" \
                and key != "tenants[].routes":
            continue
        assert key in printed, f"{key}: a default, but gatewayd -n does not print it"
        assert m.group(1) == printed[key], f"{key}: page says {m.group(1)}, gatewayd {printed[key]}"
        checked += 1
    assert checked >= 25


def test_conf_page_ranges_are_the_loaders():
    entries = conf_page_entries()
    checked = 0
    for key, (lo, hi) in conf_c_keys().items():
        if lo is None:
            continue
        hi = hi if hi.isdigit() else shm_define(hi)
        assert f"Range: {lo}..{hi}" in entries[key], f"{key}: range {lo}..{hi} not in the page"
        checked += 1
    assert checked >= 12


def test_conf_page_example_loads(build_dir):
    example = re.search(r"^\.SH EXAMPLES\n.*?^\.EX\n(.*?)^\.EE", source("grepop.conf.5"),
                        re.M | re.S).group(1)
    p = run_check(build_dir, example.replace("\\-", "-"))
    assert p.returncode == 0, p.stderr
    assert 'downstream = "svc1";' in p.stdout


def test_conf_file_in_etc_loads(build_dir):
    with open(os.path.join(REPO, "etc", "grepop.conf")) as f:
        text = f.read()
    p = run_check(build_dir, text)
    assert p.returncode == 0, p.stderr


# --- grepop-sites.5 against lib/site_conf.c


def site_columns_in_code():
    with open(os.path.join(REPO, "lib", "site_conf.c")) as f:
        text = f.read()
    block = re.search(r"sites_column_names\[SITES_COL_COUNT\] = \{(.*?)\};", text, re.S).group(1)
    return re.findall(r'= "(\w+)"', block)


def test_sites_page_documents_every_column(build_dir):
    text = source("grepop-sites.5")
    section = re.search(r"^\.SH COLUMNS\n(.*?)^\.SH", text, re.M | re.S).group(1)
    documented = re.findall(r"^\.TP\n\.B (\w+)$", section, re.M)
    code = site_columns_in_code()
    assert len(code) == 10
    assert sorted(documented) == sorted(code)
    p = run_check(build_dir, MINIMAL_CONF)
    header = p.stdout.strip().splitlines()[-1]
    assert header.split(",") == code, "gatewayd -n writes other columns"


def test_sites_page_example_loads(build_dir):
    example = re.search(r"^\.SH EXAMPLES\n.*?^\.EX\n(.*?)^\.EE", source("grepop-sites.5"),
                        re.M | re.S).group(1).replace("\\-", "-")
    p = run_check(build_dir, MINIMAL_CONF, example)
    assert p.returncode == 0, p.stderr
    assert "(3)" in p.stdout


# --- grepopctl.8 against grepopctl --help


def help_commands(build_dir):
    """grepopctl --help's text and its commands ("site list", "pop no-new", "help")."""
    p = subprocess.run([os.path.join(build_dir, "grepopctl"), "--help"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0
    commands = []
    for line in p.stdout.split("commands:\n")[1].split("\n\n")[0].splitlines():
        words = []
        for w in line.split():
            if not re.fullmatch(r"[a-z][a-z-]*", w):
                break
            words.append(w)
        commands.append(" ".join(words))
    return p.stdout, commands


def test_grepopctl_page_has_every_command_and_option(build_dir):
    text, commands = help_commands(build_dir)
    assert len(commands) >= 17
    page = flat(rendered("grepopctl.8"))
    for command in commands:
        assert command in page, f"grepopctl.8 lacks the command {command!r}"
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b", text))
    assert {"--json", "-t", "-c", "--status", "--dry-run", "--rate-mbps"} <= options
    for option in options:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", page), \
            f"grepopctl.8 lacks the option {option}"


def test_grepopctl_page_has_the_exit_codes():
    with open(os.path.join(REPO, "grepopctl", "cli.h")) as f:
        codes = re.findall(r"#define CLI_EXIT_\w+\s+(\d+)", f.read())
    assert codes == ["0", "1", "2", "3"]
    section = re.search(r"^\.SH EXIT STATUS\n(.*?)^\.SH", source("grepopctl.8"),
                        re.M | re.S).group(1)
    assert re.findall(r"^\.TP\n\.B (\d+)$", section, re.M) == codes


@pytest.mark.parametrize("daemon", ["gatewayd", "healthd", "statsd"])
def test_daemon_page_has_every_option(build_dir, daemon):
    p = subprocess.run([os.path.join(build_dir, daemon), "-h"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 0
    options = re.findall(r"^\s+(-[a-z])\b", p.stdout, re.M)
    assert "-c" in options and "-n" in options
    section = re.search(r"^\.SH OPTIONS\n(.*?)^\.SH", source(f"{daemon}.8"), re.M | re.S).group(1)
    documented = re.findall(r"^\.TP\n\.BI? \\(-[a-z])", section, re.M)
    assert set(options) <= set(documented), f"{daemon}.8 lacks {set(options) - set(documented)}"
    assert set(documented) - set(options) <= {"-h"}, f"{daemon}.8 documents options it lacks"


def test_make_install_installs_every_page(build_dir):
    """make install puts every page where man finds it (into a DESTDIR)."""
    with tempfile.TemporaryDirectory() as dest:
        p = subprocess.run(["make", "-s", "-o", "all", "install", f"BUILD={build_dir}",
                            f"DESTDIR={dest}", "PREFIX=/usr"], cwd=REPO, capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        for page in PAGES:
            path = os.path.join(dest, "usr", "share", "man", "man" + page[-1], page)
            assert os.path.isfile(path), f"make install did not install {page}"
            with open(path) as f:
                assert f.read() == source(page)
    assert sorted(os.listdir(MAN)) == sorted(PAGES)


# --- names the documents use, against the code


def doc_text(*parts):
    with open(os.path.join(REPO, *parts)) as f:
        return f.read()


def metric_names_in_code():
    text = doc_text("statsd", "http.c")
    names = set(re.findall(r'put_head\(out, "(\w+)"', text))
    names |= set(re.findall(r'\{ "(\w+)", "(?:gauge|counter)"', text))
    return {"grepop_" + n for n in names}


def test_documented_metrics_exist():
    code = metric_names_in_code()
    assert {"grepop_site_up", "grepop_pop_drops_total", "grepop_site_drops_total"} <= code
    for doc in [("docs", "operations.md"), ("docs", "architecture.md"), ("man", "statsd.8")]:
        text = doc_text(*doc).replace("\\", "")
        for name in set(re.findall(r"grepop_[a-z_]+[a-z]", text)):
            if name.startswith("grepop_pop_accept") and name not in code:
                assert any(c.startswith(name) for c in code), f"{doc}: {name}"
                continue
            assert name in code, f"{'/'.join(doc)} names {name}, which statsd does not export"
    statsd8 = doc_text("man", "statsd.8").replace("\\", "")
    for name in code:
        assert name in statsd8, f"statsd.8 does not list {name}"


def drop_names_in_code():
    block = re.search(r"drop_names\[SHM_DROP_COUNT\] = \{(.*?)\};", doc_text("shm", "shm.c"),
                      re.S).group(1)
    return re.findall(r'= "(\w+)"', block)


def test_every_drop_reason_is_explained():
    reasons = drop_names_in_code()
    assert len(reasons) == 17
    ops = doc_text("docs", "operations.md")
    table = "\n".join(x for x in ops.splitlines() if x.startswith("| `"))
    gatewayd8 = doc_text("man", "gatewayd.8")
    for reason in reasons:
        assert f"`{reason}`" in table, f"operations.md's table lacks {reason}"
        assert f".B {reason}" in gatewayd8 or f".BR {reason} " in gatewayd8, \
            f"gatewayd.8 lacks the drop reason {reason}"


def test_grepopctl_commands_in_documents_exist(build_dir):
    _, commands = help_commands(build_dir)
    words = {c.split()[0] for c in commands}
    checked = 0
    for doc in [("docs", "operations.md"), ("docs", "architecture.md"), ("README.md",)]:
        for use in re.findall(r"grepopctl ((?:[a-z-]+ ?){1,2})", doc_text(*doc)):
            first = use.split()[0]
            if first not in words:
                continue	# prose: "grepopctl talks to one node"
            two = " ".join(use.split()[:2])
            assert two in commands or first in commands, f"{'/'.join(doc)}: grepopctl {use}"
            checked += 1
    assert checked >= 20


def test_architecture_numbers_are_the_codes():
    arch = doc_text("docs", "architecture.md")
    gateway_h = doc_text("gatewayd", "gateway.h")
    worker_c = doc_text("gatewayd", "worker.c")

    def _value(text, name):
        """A #define of a number, "64" or "(1u << 17)"."""
        m = re.search(rf"#define {name}\s+\(?(\d+)u?(?:\s*<<\s*(\d+))?\)?", text)
        return int(m.group(1)) << int(m.group(2) or 0)

    assert f"{_value(gateway_h, 'GW_ENDPOINTS_PER_WORKER'):,}" in arch
    assert (f"up to {_value(worker_c, 'GW_GRE_BUDGET')} batches of "
            f"{_value(gateway_h, 'GW_BATCH')} GRE packets") in arch
    assert f"at most {shm_define('SHM_MAX_LANES')} =\n  `SHM_MAX_LANES`" in arch


def test_units_name_pages_that_exist():
    units = glob.glob(os.path.join(REPO, "systemd", "*.service"))
    if not units:
        pytest.skip("no systemd units in this tree")
    named = set()
    for unit in units:
        with open(unit) as f:
            for line in f:
                if line.startswith("Documentation="):
                    named |= set(re.findall(r"man:([\w.-]+)\((\d)\)", line))
    assert named, "the units name no manual page"
    for name, section in named:
        assert os.path.isfile(os.path.join(MAN, f"{name}.{section}")), f"no man/{name}.{section}"

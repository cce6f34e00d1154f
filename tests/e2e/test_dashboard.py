"""The dashboard (statsd/www/) in headless Chromium, driven by chromedriver.

Every test runs twice: against the real statsd of a lab POP with 250 sites
(one of them with a live tunnel), changed through gatewayd's control
socket; and against tests/e2e/dashboard_server.py, the page's test server,
whose answers the tests can break (lost connection, no sort support). To
run the same tests against another
statsd, set GREPOP_DASHBOARD_URL to its stats.http address (its POP should
have more than 200 sites) and GREPOP_DASHBOARD_CTL to the grepopctl command
for that POP (e.g. "build/grepopctl -c /etc/grepop/grepop.conf"), which
the tests use to disable a site and change the acceptance mode; without it
those two tests are skipped.

Screenshots are left in tests/artifacts/dashboard-statsd.png (the real
statsd) and dashboard-fixture.png.
"""

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import urllib.request

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

import lab as lablib  # noqa: E402
from conftest import module_prefix  # noqa: E402
from dashboard_server import DashboardServer  # noqa: E402
from pop import Pop, wait_for  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ARTIFACTS = os.path.join(REPO, "tests", "artifacts")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_S = 10


class FixtureBackend:
    """The page's test server, whose sites the tests can change."""

    def __init__(self):
        self.server = DashboardServer(n_sites=250).start()
        self.url = self.server.url + "/"
        self.live_status = "down"

    def set_status(self, name, status):
        self.server.set_site(name, status=status)

    def set_accept_mode(self, mode):
        self.server.set_pop(accept_mode=mode)
        return True

    def set_api_down(self, down):
        self.server.set_api_down(down)
        return True

    def set_order_supported(self, supported):
        self.server.fixture.order_supported = supported
        return True

    def close(self):
        self.server.stop()


class LabBackend:
    """The real service set of a lab POP: healthd, gatewayd and statsd."""

    def __init__(self, request, build_dir):
        if os.geteuid() != 0:
            pytest.skip("needs root for network namespaces")
        self.lab = lablib.standard(module_prefix(request), build_dir, backup=False)
        try:
            sites = [{"name": "branch", "source_ip": "198.18.0.2"}] + [
                {"name": f"site-{i:03d}", "source_ip": f"198.18.{1 + i // 200}.{1 + i % 200}"}
                for i in range(249)]
            self.pop = Pop(self.lab, "pop1", sites=sites, statsd=True)
            router = self.lab.start_router(["--keepalive", "1,3"], backup=None)
            wait_for(lambda: (router.status() or {}).get("active") == "primary", 10,
                     what="tunnel up")
        except BaseException:
            self.lab.close()
            raise
        self.url = f"http://127.0.0.1:{self.lab.stats_ports('pop1')[2]}/"
        self.live_status = "disabled"

    def set_status(self, name, status):
        command = "site.disable" if status == "disabled" else "site.enable"
        assert self.pop.ctl({"command": command, "names": [name]})["ok"]

    def set_accept_mode(self, mode):
        return self.pop.ctl({"command": "pop.accept", "mode": mode})["ok"]

    def set_api_down(self, down):
        return False

    def set_order_supported(self, supported):
        return False

    def close(self):
        self.lab.close()


class ExternalBackend:
    """A real statsd at GREPOP_DASHBOARD_URL, changed through grepopctl."""

    def __init__(self, url):
        self.url = url.rstrip("/") + "/"
        self.ctl = shlex.split(os.environ.get("GREPOP_DASHBOARD_CTL", ""))
        self.live_status = "disabled"

    def grepopctl(self, *args):
        if not self.ctl:
            pytest.skip("GREPOP_DASHBOARD_CTL is not set")
        subprocess.run(self.ctl + list(args), check=True, timeout=10,
                       stdout=subprocess.DEVNULL)

    def set_status(self, name, status):
        self.grepopctl("site", "disable" if status == "disabled" else "enable", name)

    def set_accept_mode(self, mode):
        if not self.ctl:
            return False
        self.grepopctl("pop", mode)
        return True

    def set_api_down(self, down):
        return False

    def set_order_supported(self, supported):
        return False

    def close(self):
        pass


def api(backend, path):
    with urllib.request.urlopen(backend.url + path, timeout=5) as r:
        return json.load(r)


def all_sites(backend):
    reply = api(backend, "api/v1/sites?per_page=1000")
    assert reply["total"] == len(reply["sites"]), "more than 1000 sites"
    return reply["sites"]


@pytest.fixture(scope="module", params=["statsd", "fixture"])
def backend(request, build_dir):
    url = os.environ.get("GREPOP_DASHBOARD_URL")
    if url:
        b = ExternalBackend(url)
    elif request.param == "statsd":
        b = LabBackend(request, build_dir)
    else:
        b = FixtureBackend()
    yield b
    b.close()


@pytest.fixture(scope="module")
def browser(backend):
    """A fresh browser per backend, so no request of one shows in the other."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip("chromium and chromium-driver are not installed (scripts/deps.sh)")
    profile = tempfile.mkdtemp(prefix="grepop-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1680,1050",
                "--user-data-dir=" + profile):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait(driver, what, predicate, timeout=WAIT_S):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: predicate(d), message="waiting for " + what)


def row_names(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#site-rows tr')].map(r => r.dataset.site)")


def page_info(driver):
    return driver.find_element(By.ID, "page-info").text


def open_page(driver, backend):
    driver.get(backend.url)
    wait(driver, "the first poll", lambda d: len(row_names(d)) > 0)


def test_page_shows_the_pop_and_the_sites(browser, backend):
    sites = sorted(s["name"] for s in all_sites(backend))
    pop = api(backend, "api/v1/pop")
    open_page(browser, backend)

    assert row_names(browser) == sites[:100]
    assert page_info(browser) == "Page 1 of %d" % -(-len(sites) // 100)
    assert browser.find_element(By.ID, "pop-name").text == pop["name"]
    assert browser.find_element(By.ID, "pop-gateway").text == pop["gateway_ip"]
    assert browser.find_element(By.ID, "count-total").text == str(pop["sites"]["total"])
    # Every row says its status in words, not only by colour.
    words = browser.execute_script(
        "return [...document.querySelectorAll('#site-rows .status-text')].map(e => e.textContent)")
    assert set(words) <= {"Up", "Down", "Disabled"} and len(words) == 100
    # Nothing on the page comes from another host.
    external = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".filter(u => !u.startsWith(location.origin))")
    assert external == []
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def filter_word(names):
    """A piece of a site name that several sites but less than a page share."""
    name = names[len(names) // 2]
    for k in range(len(name) - 1, 0, -1):
        for word in (name[:k], name[-k:]):
            count = sum(1 for n in names if word.lower() in n.lower())
            if 1 < count < 100:
                return word
    return name


def test_name_filter_narrows_the_table(browser, backend):
    sites = sorted(s["name"] for s in all_sites(backend))
    word = filter_word(sites)
    expected = [n for n in sites if word.lower() in n.lower()]
    assert 0 < len(expected) < 100
    open_page(browser, backend)

    box = browser.find_element(By.ID, "filter-name")
    box.send_keys(word)
    wait(browser, "the filtered table", lambda d: row_names(d) == expected)
    assert page_info(browser) == "Page 1 of 1"
    assert "#name=" in browser.current_url

    box.clear()
    box.send_keys("no-such-site-anywhere")
    wait(browser, "an empty table", lambda d: row_names(d) == [])
    assert browser.find_element(By.ID, "empty").is_displayed()


def test_status_filter(browser, backend):
    down = sorted(s["name"] for s in all_sites(backend) if s["status"] == "down")
    open_page(browser, backend)
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("down")
    wait(browser, "only down sites", lambda d: row_names(d) == down[:100])


def test_paging_and_sort(browser, backend):
    sites = sorted(s["name"] for s in all_sites(backend))
    pages = -(-len(sites) // 100)
    assert pages >= 3, "the paging test needs more than 200 sites"
    open_page(browser, backend)
    assert browser.find_element(By.ID, "prev").get_attribute("disabled")

    browser.find_element(By.ID, "next").click()
    wait(browser, "page 2", lambda d: row_names(d) == sites[100:200])
    assert page_info(browser) == "Page 2 of %d" % pages

    browser.find_element(By.ID, "last").click()
    wait(browser, "the last page", lambda d: row_names(d) == sites[(pages - 1) * 100:])
    assert browser.find_element(By.ID, "next").get_attribute("disabled")

    browser.find_element(By.ID, "prev").click()
    wait(browser, "the page before", lambda d: row_names(d) == sites[(pages - 2) * 100:
                                                                    (pages - 1) * 100])

    browser.find_element(By.ID, "sort-name").click()
    wait(browser, "Z to A", lambda d: row_names(d) == sites[::-1][:100])
    assert page_info(browser).startswith("Page 1 of")
    th = browser.find_element(By.ID, "th-name")
    assert th.get_attribute("aria-sort") == "descending"


def test_a_page_past_the_end_shows_the_last_page(browser, backend):
    sites = sorted(s["name"] for s in all_sites(backend))
    pages = -(-len(sites) // 100)
    browser.get(backend.url + "#page=%d" % (pages + 5))
    wait(browser, "the last page", lambda d: row_names(d) == sites[(pages - 1) * 100:])
    assert page_info(browser) == "Page %d of %d" % (pages, pages)


def test_sort_toggle_without_server_support(browser, backend):
    """A statsd that refuses `order` leaves the page sorting A to Z."""
    if not backend.set_order_supported(False):
        pytest.skip("cannot change this server")
    sites = sorted(s["name"] for s in all_sites(backend))
    try:
        open_page(browser, backend)
        browser.find_element(By.ID, "sort-name").click()
        sort = browser.find_element(By.ID, "sort-name")
        wait(browser, "the toggle disabled", lambda d: sort.get_attribute("disabled"))
        wait(browser, "A to Z", lambda d: row_names(d) == sites[:100])
        assert "conn-ok" in browser.find_element(By.ID, "conn").get_attribute("class")
    finally:
        backend.set_order_supported(True)
    browser.get_log("browser")          # the 400 logged meanwhile


def status_of(driver, name):
    return driver.execute_script(
        "const r = document.querySelector(`#site-rows tr[data-site=\"${arguments[0]}\"]`);"
        "return r ? r.querySelector('.status').dataset.status : null", name)


def test_status_change_appears_without_reload(browser, backend):
    new = backend.live_status
    site = next(s for s in all_sites(backend) if s["status"] not in (new, "disabled"))
    name, old = site["name"], site["status"]
    open_page(browser, backend)
    box = browser.find_element(By.ID, "filter-name")
    box.send_keys(name)
    wait(browser, name, lambda d: status_of(d, name) == old)
    browser.execute_script("window.grepopTestMark = 1")

    backend.set_status(name, new)
    try:
        wait(browser, "%s %s" % (name, new), lambda d: status_of(d, name) == new, timeout=5)
        assert browser.execute_script("return window.grepopTestMark") == 1, "page reloaded"
    finally:
        backend.set_status(name, old)
    wait(browser, "%s %s again" % (name, old), lambda d: status_of(d, name) == old, timeout=5)


def test_acceptance_mode_badge(browser, backend):
    if not backend.set_accept_mode("no-new"):
        pytest.skip("cannot change the acceptance mode of this server")
    open_page(browser, backend)
    badge = browser.find_element(By.ID, "pop-accept")
    try:
        wait(browser, "the no-new badge", lambda d: "Not accepting new tunnels" in badge.text)
        backend.set_accept_mode("drain")
        wait(browser, "the drain badge", lambda d: badge.text.startswith("Draining"))
    finally:
        backend.set_accept_mode("accept")
    wait(browser, "the accept badge", lambda d: badge.text == "Accepting new tunnels")


def test_lost_connection_is_shown(browser, backend):
    if not backend.set_api_down(False):
        pytest.skip("cannot make this server fail")
    open_page(browser, backend)
    conn = browser.find_element(By.ID, "conn")
    wait(browser, "live", lambda d: conn.text.startswith("Live"))
    backend.set_api_down(True)
    try:
        wait(browser, "the lost connection", lambda d: "retrying" in conn.text, timeout=5)
        assert "conn-bad" in conn.get_attribute("class")
        assert len(row_names(browser)) == 100, "the last data stays on screen"
    finally:
        backend.set_api_down(False)
    wait(browser, "live again", lambda d: conn.text.startswith("Live"), timeout=5)
    browser.get_log("browser")          # the 503s logged meanwhile


def test_sparklines_and_screenshot(request, browser, backend):
    open_page(browser, backend)
    # Each poll adds a sample to every visible site's line.
    wait(browser, "five polls",
         lambda d: int(d.execute_script("return document.body.dataset.polls || 0")) >= 5,
         timeout=10)
    points = browser.execute_script(
        "const p = document.querySelector('#site-rows .spark polyline.rx');"
        "return p ? p.getAttribute('points').split(' ').length : 0")
    assert points >= 4

    os.makedirs(ARTIFACTS, exist_ok=True)
    kind = request.node.callspec.params.get("backend", "external")
    path = os.path.join(ARTIFACTS, f"dashboard-{kind}.png")
    assert browser.save_screenshot(path)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

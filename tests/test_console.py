"""The operator console against a running gateway with the venue simulator and a FIX client on 127.0.0.1, in a
real headless browser (Debian's Chromium driven through its ChromeDriver by Selenium): sign-in, a reject on the
page within a second, a utilisation bar that moves with a fill, the kill button, what a viewer sees, and forged
or anonymous requests refused and journaled. The sign-in throttle is tested over plain HTTP.

Screenshots go to the test's folder, and also to $FIXGW_SCREENSHOTS when set (docs/images is made that way).
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# Off the network (this machine has none) and out of any profile; a new empty profile per browser.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--disable-dev-shm-usage", "--window-size=1500,3000")  # tall: full-page screenshots
PASSWORDS = {"anna": "anna-operator-pw", "victor": "victor-viewer-pw"}


def console_settings(tmp: Path, **settings: Any) -> Any:
    """A [console] section on a free port, with anna (operator) and victor (viewer) in its users file."""
    from config.settings import ConsoleSettings
    from gateway.control.console.auth import hash_password
    from sim.demo import free_port

    users = tmp / "console-users.toml"
    users.write_text("".join(f'[users.{n}]\nrole = "{"operator" if n == "anna" else "viewer"}"\n'
                             f'password_hash = "{hash_password(p)}"\n' for n, p in PASSWORDS.items()))
    return ConsoleSettings(port=free_port(), users_file=users, **settings)


class RunningConsole:
    """The console of a running gateway, on an event loop of its own thread (the daemon runs it in its loop)."""

    def __init__(self, gw: Any, tmp: Path) -> None:
        from gateway.control.admin import AdminServer
        from gateway.control.console.app import Console

        self.loop = asyncio.new_event_loop()
        self.console = Console(gw, AdminServer(gw, tmp / "admin.sock"), gw.cfg.console)
        self.thread = threading.Thread(target=self.loop.run_forever, name="console-loop", daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.console.start(), self.loop).result(15)
        self.url = f"http://127.0.0.1:{self.console.port}"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.console.close(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def console(stack: Any, tmp_path: Path) -> Iterator[RunningConsole]:
    stack.cfg = stack.cfg.model_copy(update={"console": console_settings(tmp_path)})
    stack.start_sim()
    gw = stack.start_gateway()
    c = RunningConsole(gw, tmp_path)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A new headless Chromium per call of the returned function."""
    if not (CHROMIUM.exists() and DRIVER.exists()):
        pytest.skip("cannot run: Debian's chromium and chromium-driver are not installed "
                    "(./dev setup installs them when it runs as root with apt-get)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    made: list[Any] = []

    def make() -> Any:
        opts = webdriver.ChromeOptions()
        opts.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            opts.add_argument(flag)
        opts.add_argument(f"--user-data-dir={tmp_path / f'chromium-{len(made)}'}")
        driver = webdriver.Chrome(service=Service(str(DRIVER)), options=opts)
        made.append(driver)
        return driver

    yield make
    for d in made:
        d.quit()


def _until(d: Any, timeout: float, fn: Any, poll: float = 0.1) -> Any:
    """WebDriverWait that looks again when the live updates (or a page load) replaced what it was reading."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(d, timeout, poll_frequency=poll,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(fn)


def _click(d: Any, css: str) -> None:
    """Click a button that a live update may redraw between finding it and clicking it."""
    from selenium.webdriver.common.by import By

    _until(d, 5, lambda d: d.find_element(By.CSS_SELECTOR, css).click() or True)


def _sign_in(d: Any, url: str, user: str) -> None:
    from selenium.webdriver.common.by import By

    d.get(url + "/login")
    d.find_element(By.NAME, "user").send_keys(user)
    d.find_element(By.NAME, "password").send_keys(PASSWORDS[user])
    d.find_element(By.CSS_SELECTOR, "form.login button").click()
    _until(d, 10, lambda d: d.find_elements(By.ID, "decisions"))
    _until(d, 10, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-updated"))


def _shot(d: Any, tmp: Path, name: str) -> None:
    path = tmp / name
    bottom = d.execute_script("return Math.max(...[...document.body.children].map(e => e.getBoundingClientRect().bottom))")
    d.set_window_size(1500, max(600, int(bottom) + 24))
    d.save_screenshot(str(path))
    d.set_window_size(1500, 3000)
    out = os.environ.get("FIXGW_SCREENSHOTS")
    if out:
        shutil.copy(path, Path(out) / name)


def _admin_rows(gw: Any) -> list[tuple[str, str, str, str]]:
    from gateway.events import journal_query

    assert gw.journal.flush()
    return [(r["action"], r["scope"], r["who"], r["why"]) for r in journal_query.query(gw.journal.path, table="admin")]


def _er(client: Any, cl: str, exec_type: str) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type, timeout=15)


def _bar(d: Any, account: str, limit: str) -> tuple[float, float]:
    """(value / limit, the drawn width in %) of a utilisation bar, read in one go: the live updates replace the
    part's HTML under the test's feet."""
    ratio, width = d.execute_script(
        "const b = document.querySelector(arguments[0]);"
        "return [b.dataset.ratio, b.querySelector('.fill').style.width];",
        f'.bar[data-account="{account}"][data-limit="{limit}"]')
    return float(ratio), float(width.rstrip("%"))


def _reject_link(d: Any, cl: str) -> tuple[str, str]:
    """(text, href) of the code link in the decisions row of ClOrdID `cl`."""
    return tuple(d.execute_script(
        "for (const row of document.querySelectorAll('#decisions tr')) {"
        "  const c = row.querySelector('span.cl');"
        "  if (c && c.textContent === arguments[0]) { const a = row.querySelector('a.code');"
        "    return a ? [a.textContent, a.href] : ['', '']; } }"
        "return ['', ''];", cl))


def test_an_operator_sees_a_reject_within_a_second_and_a_fill_move_the_utilisation(
        stack: Any, console: RunningConsole, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    d = browser()
    d.get(console.url + "/login")
    _shot(d, tmp_path, "console-login.png")
    _sign_in(d, console.url, "anna")
    assert "anna (operator)" in d.find_element(By.CSS_SELECTOR, "header .who").text
    c = stack.client()
    _until(d, 5, lambda d: re.search(r"FIXGW->OMS1 client logged on \d+ \d+ [\d:.]+ \(\d+ s ago\)",
                                                  d.find_element(By.ID, "sessions").text))
    c.new_order("R1", "ACC1", "AAPL", "1", 20_000, 190.0)  # over qty_max
    _er(c, "R1", "8")
    answered = time.monotonic()
    _until(d, 1.0, lambda d: "R1" in d.find_element(By.ID, "decisions").text, poll=0.02)
    assert time.monotonic() - answered <= 1.0
    text, href = _reject_link(d, "R1")
    assert (text, href) == ("QTY_MAX", console.url + "/runbooks/QTY_MAX")
    before, width = _bar(d, "ACC1", "gross_exposure")
    c.new_order("F1", "ACC1", "AAPL", "1", 2_000, 190.0)
    c.wait_for(lambda m: m.get(11) == "F1" and m.get(39) == "2", timeout=15)
    _until(d, 5, lambda d: _bar(d, "ACC1", "gross_exposure")[0] > before)
    after, width_after = _bar(d, "ACC1", "gross_exposure")
    assert width_after > width and width_after == pytest.approx(100 * after, abs=0.1)  # the bar is drawn longer
    d.get(href)  # the reject's code leads to its runbook
    assert "What the operator checks" in d.find_element(By.TAG_NAME, "pre").text
    d.back()
    _until(d, 10, lambda d: "F1" in d.find_element(By.ID, "decisions").text)
    _shot(d, tmp_path, "console-operator.png")
    assert ("console login", "console", "anna", "operator, from 127.0.0.1") in _admin_rows(stack.gw)


def test_the_kill_button_with_a_reason_cancels_the_accounts_orders_as_the_signed_in_user(
        stack: Any, console: RunningConsole, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    c = stack.client()
    c.new_order("J1", "ACC1", "JPM", "1", 100, 200.0)  # the simulator only acknowledges JPM: it rests
    _er(c, "J1", "0")
    d = browser()
    _sign_in(d, console.url, "anna")
    _until(d, 5, lambda d: "J1" in d.find_element(By.ID, "orders").text)
    _click(d, 'button[data-act="kill on"][data-target="account:ACC1"]')
    form = d.find_element(By.ID, "action-form")
    assert form.find_element(By.NAME, "target").get_attribute("value") == "account:ACC1"
    assert form.find_element(By.NAME, "action").get_attribute("value") == "kill on"
    form.find_element(By.NAME, "why").send_keys("runaway algo on ACC1")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _er(c, "J1", "4")  # cancelled at the venue, the client told
    _flash(d, "Done: kill on account:ACC1 (1 order(s) cancelled).")
    _until(d, 5, lambda d: "account:ACC1" in d.find_element(By.ID, "switches").text)
    assert ("kill on", "account:ACC1", "anna", "runaway algo on ACC1") in _admin_rows(stack.gw)
    c.new_order("K1", "ACC1", "AAPL", "1", 10, 190.0)
    assert _er(c, "K1", "8")[58].startswith("KILL_SWITCH_ACCOUNT")
    # an action without a reason is refused before it reaches the gateway
    _click(d, '#switches button[data-act="kill off"]')
    d.execute_script("document.getElementById('action-form').elements.why.removeAttribute('required')")
    d.find_element(By.CSS_SELECTOR, "#action-form button[type=submit]").click()
    _flash(d, "Refused: every action needs a reason.")
    assert stack.gw.router.read(lambda ledger, risk: risk.engine.kill_state("account", 0))


def _flash(d: Any, expected: str) -> None:
    """Wait for the page after a POST to show `expected`: until it has loaded, the old page and its flash are
    still there, and go stale under the test."""
    from selenium.webdriver.common.by import By

    seen: list[str] = []

    def shown(d: Any) -> bool:
        seen.append(d.find_element(By.CSS_SELECTOR, "p.flash").text)
        return seen[-1] == expected

    try:
        _until(d, 5, shown)
    except Exception:
        raise AssertionError(f"flash {expected!r} not shown; saw {seen[-3:]}") from None


def _post(d: Any, path: str, fields: dict[str, str]) -> int:
    """A POST made by the page's own JavaScript, with the browser's cookies: what a forged request could do."""
    return int(d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: 'POST', body: new URLSearchParams(arguments[1]), redirect: 'manual',"
        " credentials: 'same-origin'}).then(r => done(r.status), e => done(-1));", path, fields))


def test_a_viewer_sees_no_actions_and_forged_or_anonymous_posts_are_refused_and_journaled(
        stack: Any, console: RunningConsole, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    viewer = browser()
    _sign_in(viewer, console.url, "victor")
    assert viewer.find_elements(By.CSS_SELECTOR, "button[data-act]") == []
    assert viewer.find_elements(By.ID, "action-form") == []
    assert "victor (viewer)" in viewer.find_element(By.CSS_SELECTOR, "header .who").text
    _shot(viewer, tmp_path, "console-viewer.png")
    token = viewer.find_element(By.CSS_SELECTOR, "form.who input[name=csrf]").get_attribute("value")
    kill_all = {"action": "kill on", "target": "global", "why": "forged"}
    assert _post(viewer, "/action", {**kill_all, "csrf": token}) == 403  # the viewer's own valid token
    operator = browser()
    _sign_in(operator, console.url, "anna")
    assert _post(operator, "/action", kill_all) == 403  # no CSRF token
    assert _post(operator, "/action", {**kill_all, "csrf": "guessed"}) == 403
    anonymous = urllib.request.Request(console.url + "/action", data=urllib.parse.urlencode(kill_all).encode())
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(anonymous, timeout=10)
    assert e.value.code == 401
    assert not stack.gw.router.read(lambda ledger, risk: risk.engine.kill_state("global"))
    refused = [(who, why.split(",")[0]) for action, scope, who, why in _admin_rows(stack.gw)
               if action == "console refused" and scope == "kill on global"]
    assert refused == [("victor", "viewer may not act"), ("anna", "no valid CSRF token"),
                       ("anna", "no valid CSRF token"), ("(not signed in)", "no session")]


def _opener() -> urllib.request.OpenerDirector:
    # Browsers send Secure cookies to http://127.0.0.1 (a secure context); urllib's jar is told to do the same.
    jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(secure_protocols=("https", "wss", "http")))
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def _login(opener: urllib.request.OpenerDirector, url: str, user: str, password: str) -> int:
    page = opener.open(url + "/login", timeout=10).read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode({"csrf": token, "user": user, "password": password}).encode()
    try:
        return opener.open(url + "/login", data=data, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code


def test_nothing_without_a_login_and_failed_logins_are_throttled_and_journaled(
        stack: Any, console: RunningConsole) -> None:
    opener = _opener()
    assert opener.open(console.url + "/", timeout=10).geturl().endswith("/login")  # redirected to sign in
    for path in ("/events", "/runbooks/QTY_MAX"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.build_opener(NoRedirect).open(console.url + path, timeout=10)
        assert e.value.code in (401, 303)
    assert [_login(opener, console.url, "anna", "wrong password") for _ in range(5)] == [401] * 5
    assert _login(opener, console.url, "anna", PASSWORDS["anna"]) == 429  # throttled: the password is not tried
    other = _opener()
    assert _login(other, console.url, "victor", PASSWORDS["victor"]) == 429  # the same address is throttled too
    rows = [(a, who) for a, _scope, who, _why in _admin_rows(stack.gw) if a.startswith("console login")]
    assert rows == [("console login failed", "anna")] * 5 + [("console login throttled", "anna"),
                                                            ("console login throttled", "victor")]
    headers = opener.open(console.url + "/login", timeout=10).headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    cookie = next(c for c in opener.handlers if isinstance(c, urllib.request.HTTPCookieProcessor)).cookiejar
    assert all(c.secure and c.has_nonstandard_attr("HttpOnly") for c in cookie)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def _form_post(opener: urllib.request.OpenerDirector, url: str, fields: dict[str, str]) -> tuple[int, str]:
    try:
        with opener.open(url, data=urllib.parse.urlencode(fields).encode(), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_the_daemon_serves_the_console_and_an_action_from_it_is_journaled_as_the_user(
        stack: Any, tmp_path: Path) -> None:
    import signal
    import tempfile

    from tests.test_daemon import Daemon, NotifySocket, _journal_admin

    settings = console_settings(tmp_path)
    port = settings.port
    with tempfile.TemporaryDirectory(prefix="fx") as short:  # unix socket paths are limited to 108 bytes
        notify = NotifySocket(Path(short) / "notify")
        stack.cfg = stack.cfg.model_copy(update={
            "console": settings,
            "gateway": stack.cfg.gateway.model_copy(update={"admin_socket": Path(short) / "admin.sock"})})
        stack.start_sim()
        d = Daemon(stack.cfg, tmp_path, notify)
        try:
            d.start()
            notify.wait_for("READY=1")
            c = stack.client()
            c.new_order("J1", "ACC1", "JPM", "1", 100, 200.0)  # rests at the venue
            _er(c, "J1", "0")
            url = f"http://127.0.0.1:{port}"
            opener = _opener()
            assert _login(opener, url, "anna", PASSWORDS["anna"]) == 200  # followed to the page
            page = opener.open(url + "/", timeout=10).read().decode()
            assert "J1" in page and 'id="action-form"' in page
            token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            status, after = _form_post(opener, url + "/action", {"csrf": token, "action": "kill on",
                                                                 "target": "account:ACC1", "why": "desk asked"})
            assert status == 200 and "Done: kill on account:ACC1 (1 order(s) cancelled)." in after
            _er(c, "J1", "4")
            assert d.admin("status")["kill_switch"]["accounts"] == ["ACC1"]
            assert d.kill(signal.SIGTERM) == 0
            rows = _journal_admin(stack.cfg.state_dir / "journal.sqlite")
            assert ("kill on", "account:ACC1", "anna", "desk asked") in rows
            assert any(r[0] == "console login" and r[2] == "anna" for r in rows)
        finally:
            d.close()
            notify.close()


@pytest.mark.parametrize("text, field, why", [
    ("", "users", "no [users.NAME] table"),
    ('[users.anna]\nrole = "admin"\npassword_hash = "$argon2id$x"\n', "users.anna.role", "one of viewer, operator"),
    ('[users.anna]\nrole = "viewer"\npassword_hash = "plain"\n', "users.anna.password_hash", "Argon2 hash"),
    ('[users.anna]\nrole = "viewer"\npassword_hash = "$argon2id$x"\npassword = "x"\n', "users.anna.password",
     "unknown setting"),
    ("[users.anna\n", "(syntax)", "invalid TOML"),
])
def test_a_broken_users_file_names_the_file_the_field_and_why(tmp_path: Path, text: str, field: str,
                                                              why: str) -> None:
    from config.errors import ConfigError
    from gateway.control.console.auth import load_users

    path = tmp_path / "users.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_users(path)
    assert e.value.path == str(path) and e.value.field == field and why in e.value.reason


def test_add_user_writes_a_hash_that_signs_in_and_check_config_counts_the_users(tmp_path: Path) -> None:
    import subprocess
    import sys

    from gateway.control.console.auth import Users
    from sim.demo import demo_configs
    from tests.gwtest import write_config

    users = tmp_path / "users.toml"
    for name, role, pw in (("anna", "operator", "long enough pw 1"), ("victor", "viewer", "long enough pw 2")):
        r = subprocess.run([sys.executable, "-m", "gateway.cli", "console", "add-user", "--users", str(users),
                            "--name", name, "--role", role, "--password-stdin"], input=pw + "\n",
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    assert "long enough" not in users.read_text()  # only hashes are stored
    u = Users(users)
    assert u.check("anna", "long enough pw 1").role == "operator" and u.check("anna", "long enough pw 2") is None
    short = subprocess.run([sys.executable, "-m", "gateway.cli", "console", "add-user", "--users", str(users),
                            "--name", "x", "--role", "viewer", "--password-stdin"], input="short\n",
                           capture_output=True, text=True, timeout=60)
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    cfg, _ = demo_configs(tmp_path)
    from config.settings import ConsoleSettings

    toml = write_config(cfg.model_copy(update={"console": ConsoleSettings(port=8780, users_file=users)}),
                        tmp_path / "gateway.toml")
    r = subprocess.run([sys.executable, "-m", "gateway.cli", "check-config", str(toml)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "console on 127.0.0.1:8780 for 2 user(s) (1 operator(s))" in r.stdout


def test_an_operator_logs_a_client_session_out_and_back_on_from_the_console(
        stack: Any, console: RunningConsole) -> None:
    c = stack.client()
    opener = _opener()
    assert _login(opener, console.url, "anna", PASSWORDS["anna"]) == 200
    page = opener.open(console.url + "/", timeout=10).read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert 'data-act="logout" data-target="FIXGW-&gt;OMS1"' in page
    status, after = _form_post(opener, console.url + "/action", {"csrf": token, "action": "logout",
                                                                 "target": "FIXGW->OMS1", "why": "desk closing"})
    assert status == 200 and "Done: logout FIXGW-&gt;OMS1." in after
    c.wait_for(lambda m: m.get(35) == "5", admin=True)  # the client got a Logout
    status, after = _form_post(opener, console.url + "/action", {"csrf": token, "action": "logon",
                                                                 "target": "FIXGW->OMS1", "why": "desk back"})
    assert status == 200 and "Done: logon FIXGW-&gt;OMS1." in after
    assert c.wait_logon(30)
    rows = _admin_rows(stack.gw)
    assert ("session logout", "FIXGW->OMS1", "anna", "desk closing") in rows
    assert ("session logon", "FIXGW->OMS1", "anna", "desk back") in rows
    status, after = _form_post(opener, console.url + "/action", {"csrf": token, "action": "logout",
                                                                 "target": "FIXGW->NOPE", "why": "typo"})
    assert status == 200 and "Refused: logout FIXGW-&gt;NOPE: unknown session" in after  # the admin path's own check


def test_the_sign_in_throttle_lifts_after_its_window_and_forgets_quiet_keys() -> None:
    from gateway.control.console.auth import LoginThrottle

    now = [1000.0]
    t = LoginThrottle(max_failures=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert not t.blocked("user:a", "addr:x")
        t.failed("user:a", "addr:x")
    assert t.blocked("user:a") and t.blocked("addr:x") and not t.blocked("user:b")
    assert t.first_block("a|x") and not t.first_block("a|x")  # journaled once per window
    now[0] += 61
    assert not t.blocked("user:a", "addr:x") and t.first_block("a|x")
    assert t._failures == {}  # nothing kept for keys with no recent failure

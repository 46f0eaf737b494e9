"""Browser tests: the real demo shop (``wsgi.py``) served over HTTP, driven by headless Chromium.

Each test gets its own shop: a ``flask --app wsgi run`` subprocess on a free port and a fresh
SQLite file, set up with the shop's own commands (``demo init-db``, ``loyalty db upgrade``).
Browser tests run on SQLite only; ``LOYALTY_TEST_DATABASE_URL`` and the other ``LOYALTY_*``,
``DEMO_*`` and ``FLASK_*`` variables of the test run are kept away from the shop's processes.

Chromium is Debian's (``apt-get install -y chromium``), launched through Playwright: Playwright's
own browser download is not used. Without it the tests skip and say so; CI sets
``LOYALTY_REQUIRE_BROWSER=1``, and there a missing browser fails instead.

Every page a journey visits is screenshotted to ``tests/browser/screenshots/<locale>/NN-name.png``
(pages checked at a phone's width go to ``<locale>/narrow/``) and checked with axe-core; console
errors and uncaught page errors are collected, and at a narrow width a document wider than the
viewport (horizontal scrolling) is recorded too. All of it is asserted by
``Journey.assert_clean()`` at the end, so one run reports every page at once (the axe and layout
findings are also written to ``axe-report.txt`` beside the screenshots as they are found).

The browser context may read and write the clipboard (``clipboard-read``/``clipboard-write``):
the shop is served on http://127.0.0.1, a secure context, so ``navigator.clipboard`` works there.
``DemoShop.python(script, *args)`` runs a short script against the shop's database (rewards for
a journey are made that way: the shop has no command for them).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .a11y import axe_violations, describe

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium",)
BROWSER_HINT = "browser tests skipped: install Debian's Chromium with `apt-get install -y chromium` to enable them"
START_DEADLINE = 60.0
CLI_TIMEOUT = 180.0
#: Chromium asks every site for /favicon.ico on its own; the demo shop has none, and its 404 is
#: logged as a console error that no page of the shop caused.
IGNORED_CONSOLE_URLS = frozenset({"/favicon.ico"})
#: Host settings of the test run that must not leak into the shop's processes.
PRIVATE_PREFIXES = ("LOYALTY_", "DEMO_", "FLASK_", "TESTAPP_")


def unavailable(reason: str) -> None:
    """Skip with a hint; fail instead when CI demands the browser (``LOYALTY_REQUIRE_BROWSER=1``)."""
    if os.environ.get("LOYALTY_REQUIRE_BROWSER") == "1":
        pytest.fail(f"LOYALTY_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(f"{BROWSER_HINT} ({reason})")


def chromium_executable() -> str:
    for candidate in (*CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    unavailable("no chromium executable at /usr/bin/chromium or on PATH")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the whole run; each test opens its own context."""
    executable = chromium_executable()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as missing:
        unavailable(f"playwright is not installed ({missing}): pip install -e '.[test]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"], headless=True)
        yield browser
        browser.close()


# The demo shop as a real server --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shop_environment(database_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(PRIVATE_PREFIXES)}
    env.update(
        DEMO_DATABASE_URL=f"sqlite:///{database_path}",
        DEMO_SECRET_KEY=secrets.token_hex(32),
        DEMO_ADMIN_PASSWORD=secrets.token_urlsafe(16),
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class DemoShop:
    base_url: str
    env: dict[str, str] = field(repr=False)
    log: Path = field(repr=False)

    def url(self, path: str) -> str:
        return self.base_url + path

    def flask(self, *args: str) -> str:
        """``flask --app wsgi ARGS`` against the same database as the server; fails on a non-zero exit."""
        return run_flask(self.env, *args)

    def python(self, script: str, *args: str) -> str:
        """Run ``script`` (``python -c``, arguments in ``sys.argv[1:]``) in the repository with the
        shop's environment, so ``import wsgi`` opens the server's database; its stdout."""
        command = [sys.executable, "-c", textwrap.dedent(script), *args]
        done = subprocess.run(command, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=CLI_TIMEOUT)
        assert done.returncode == 0, f"the script exited {done.returncode}:\n{script}\n{done.stdout}{done.stderr}"
        return done.stdout


def run_flask(env: dict[str, str], *args: str) -> str:
    command = [sys.executable, "-m", "flask", "--app", "wsgi", *args]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert done.returncode == 0, (
        f"`flask --app wsgi {' '.join(args)}` exited {done.returncode}:\n{done.stdout}{done.stderr}"
    )
    return done.stdout


def wait_until_serving(server: subprocess.Popen, url: str, log: Path) -> None:
    """Poll ``url`` until it answers 200, the server exits, or the deadline passes."""
    deadline = time.monotonic() + START_DEADLINE
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the demo shop exited with {server.returncode} before serving:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as error:
            last_error = error
        time.sleep(0.05)
    raise AssertionError(
        f"the demo shop did not serve {url} within {START_DEADLINE:.0f}s ({last_error}):\n{log.read_text()}"
    )


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=15)


@pytest.fixture
def demo_shop(tmp_path: Path) -> Iterator[DemoShop]:
    """The demo shop on a fresh SQLite file, served by ``flask run`` in a subprocess."""
    env = shop_environment(tmp_path / "shop.sqlite")
    run_flask(env, "demo", "init-db")
    run_flask(env, "loyalty", "db", "upgrade")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "run", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--no-reload", "--no-debugger", "--with-threads"]
    with log.open("w") as output:
        server = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(server, base_url + "/", log)
        yield DemoShop(base_url, env, log)
    finally:
        stop(server)


# A journey: one browser context, its pages checked as they are visited ----------------------


@pytest.fixture
def locale() -> str:
    """The browser's language (and Accept-Language); tests parametrise it."""
    return "en-US"


#: The outermost elements whose right edge is past the viewport (argument: its width), as CSS paths.
OVERFLOWING_ELEMENTS = """width => {
  const path = el => {
    const parts = [];
    for (let node = el; node && node.nodeType === 1 && parts.length < 5; node = node.parentElement) {
      let part = node.localName;
      if (node.id) { parts.unshift(part + "#" + node.id); break; }
      if (node.classList.length) part += "." + [...node.classList].join(".");
      parts.unshift(part);
    }
    return parts.join(" > ");
  };
  const clipped = el => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") return true;
    }
    return false;
  };
  const wide = [...document.body.querySelectorAll("*")].filter(
    el => el.getBoundingClientRect().right > width + 1 && getComputedStyle(el).position !== "fixed" && !clipped(el));
  const outermost = wide.filter(el => !wide.includes(el.parentElement));
  return outermost.slice(0, 8).map(el => ({path: path(el), right: Math.round(el.getBoundingClientRect().right)}));
}"""


@dataclass
class Journey:
    """A customer's browser tab on the demo shop, with a record of every page it visited."""

    page: Any
    shop: DemoShop
    locale: str
    folder: Path = field(repr=False)
    console_errors: list[str] = field(default_factory=list, repr=False)
    axe_failures: list[str] = field(default_factory=list, repr=False)
    #: The same axe findings as data: (checkpoint label, page path, violations).
    axe_findings: list[tuple[str, str, list[dict[str, Any]]]] = field(default_factory=list, repr=False)
    layout_failures: list[str] = field(default_factory=list, repr=False)
    visited: int = 0

    def url(self, path: str) -> str:
        return self.shop.url(path)

    def checkpoint(self, name: str, subfolder: str = "") -> None:
        """Screenshot the page as ``[subfolder/]NN-name.png`` and run axe on it."""
        self.page.wait_for_load_state("load")
        self.visited += 1
        folder = self.folder / subfolder
        folder.mkdir(parents=True, exist_ok=True)
        label = f"{subfolder + '/' if subfolder else ''}{self.visited:02d}-{name}"
        self.page.screenshot(path=str(folder / f"{self.visited:02d}-{name}.png"), full_page=True)
        violations = axe_violations(self.page)
        if violations:
            self.axe_findings.append((label, self.page_path(), violations))
            self.report(self.axe_failures, f"{label} ({self.page_path()}):\n{describe(violations)}")

    def page_path(self) -> str:
        parts = urlsplit(self.page.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def report(self, failures: list[str], finding: str) -> None:
        with (self.folder / "axe-report.txt").open("a") as report:
            report.write(finding + "\n\n")
        failures.append(finding)

    def check_no_horizontal_scroll(self) -> None:
        """The document is no wider than the viewport (1 px of rounding allowed); else record the
        widest elements that stick out, by a CSS path."""
        width = self.page.viewport_size["width"]
        scroll_width = self.page.evaluate("document.documentElement.scrollWidth")
        if scroll_width <= width + 1:
            return
        culprits = self.page.evaluate(OVERFLOWING_ELEMENTS, width)
        listed = "\n".join(f"    - {c['path']} (right edge at {c['right']}px)" for c in culprits)
        self.report(
            self.layout_failures,
            f"{self.page_path()} at {width}px: document scrollWidth {scroll_width}px, "
            f"so the page scrolls sideways; outermost elements past the edge:\n{listed}",
        )

    def note_console(self, message: Any) -> None:
        if message.type != "error" or urlsplit(message.location.get("url", "")).path in IGNORED_CONSOLE_URLS:
            return
        self.console_errors.append(f"{self.page.url}: console error: {message.text} (at {message.location})")

    def note_page_error(self, error: Any) -> None:
        self.console_errors.append(f"{self.page.url}: uncaught {error}")

    def assert_clean(self) -> None:
        """No console errors and no serious or critical axe findings on any page visited so far."""
        problems = []
        if self.console_errors:
            problems.append("console errors:\n" + "\n".join(self.console_errors))
        if self.axe_failures:
            problems.append("axe: serious or critical violations on\n" + "\n".join(self.axe_failures))
        if self.layout_failures:
            problems.append("horizontal scrolling at a narrow width on\n" + "\n".join(self.layout_failures))
        if problems:
            pytest.fail(f"[{self.locale}] " + "\n\n".join(problems), pytrace=False)


@pytest.fixture
def journey(chromium: Any, demo_shop: DemoShop, locale: str) -> Iterator[Journey]:
    folder = SCREENSHOTS / locale
    folder.mkdir(parents=True, exist_ok=True)
    for old in [*folder.glob("*.png"), *folder.glob("*/*.png"), *folder.glob("axe-report.txt")]:
        old.unlink()
    context = chromium.new_context(
        locale=locale,
        base_url=demo_shop.base_url,
        viewport={"width": 1280, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    trip = Journey(page, demo_shop, locale, folder)
    page.on("console", trip.note_console)
    page.on("pageerror", trip.note_page_error)
    try:
        yield trip
    finally:
        context.close()

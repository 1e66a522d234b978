"""The browser suite's machinery: Debian's Chromium through Playwright, a real gunicorn on
127.0.0.1 with a fresh database, a ``Person`` who drives the pages, axe-core and screenshots.

Playwright is imported lazily, so that a machine without it skips the suite instead of failing
to collect it. Every wait is bounded; nothing leaves loopback.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from servers import ROOT
from support import PASSWORD, skip_or_fail

from app.carriers import ACCESS_COOKIE, SESSION_COOKIE

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
AXE_REPORTS = ARTIFACTS / "axe"
ACCESS_TTL = 2  # seconds: short enough to watch rotation happen between two clicks
TIMEOUT_MS = 15_000
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
BLOCKING_IMPACTS = ("serious", "critical")
AUTH_COOKIES = (ACCESS_COOKIE, SESSION_COOKIE, "__Host-flask")
_emails = itertools.count(1)
SIGN_IN_HEADING = re.compile(r"^Sign in( to continue)?$")  # the latter when sent by a page


def require_browser() -> None:
    """Skip when Playwright or Debian's Chromium is missing; in CI (``CI`` set), fail instead."""
    reason = None
    if shutil.which(CHROMIUM) is None:
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    try:
        import axe_playwright_python  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        reason = f"{exc.name} is not installed (pip install -e '.[test]')"
    if reason:
        skip_or_fail(f"browser suite: {reason}")


def new_email(label: str) -> str:
    """A fresh address per person, so scenarios sharing one server never meet."""
    return f"{label}-{next(_emails)}-{os.getpid()}@example.com"


def expect(target):
    """Playwright's retrying assertions (bounded by ``TIMEOUT_MS``)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


# --- a person at a browser ---------------------------------------------------------------


@dataclass
class Person:
    """One browser context driving the real pages, recording dialogs and refused scripts."""

    context: object
    page: object
    dialogs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        self.page.on("console", self._console)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.problems.append(f"CSP violation: {message.text}")

    def go(self, path: str):
        self.page.goto(path)
        return self.page

    def fill_and_submit(self, path: str, fields: dict[str, str], button: str) -> None:
        self.go(path)
        for label, value in fields.items():
            self.page.get_by_label(label, exact=True).fill(value)
        self.page.get_by_role("button", name=button, exact=True).click()
        self.page.wait_for_load_state()

    def register(self, email: str, password: str = PASSWORD) -> None:
        self.fill_and_submit("/register", {"Email": email, "Password": password},
                             "Create account")
        self.expect_flash("Your account is ready")

    def sign_in(self, email: str, password: str = PASSWORD) -> None:
        self.fill_and_submit("/login", {"Email": email, "Password": password}, "Sign in")
        self.expect_signed_in(email)

    def sign_up(self, label: str = "ada") -> str:
        email = new_email(label)
        self.register(email)
        self.sign_in(email)
        return email

    def expect_signed_in(self, email: str) -> None:
        expect(self.page.locator('[data-test="email"]')).to_have_text(email)

    def expect_flash(self, text: str) -> None:
        expect(self.page.locator("[data-flash]")).to_contain_text(text)

    def expect_sign_in_page(self, message: str) -> None:
        """The sign-in form, with ``message`` flashed, and nothing of the account on show."""
        expect(self.page.get_by_role("heading", level=1)).to_have_text(SIGN_IN_HEADING)
        self.expect_flash(message)
        expect(self.page.locator('[data-test="email"], [data-session-id]')).to_have_count(0)

    def cookies(self) -> dict[str, str]:
        return {c["name"]: c["value"] for c in self.context.cookies()}

    def current_session_id(self) -> str:
        row = self.go("/sessions").locator('[data-current="true"]')
        return row.get_attribute("data-session-id")

    def wait_past_access_expiry(self) -> None:
        """Sleep until the access token has expired and the browser has dropped its cookie, so
        the next request can only be served by rotating the session. The suite does this once,
        to see the browser honour the cookie's Max-Age; elsewhere ``drop_access_cookie``."""
        time.sleep(ACCESS_TTL + 1)
        assert ACCESS_COOKIE not in self.cookies(), "the access cookie outlived its Max-Age"
        assert SESSION_COOKIE in self.cookies()

    def drop_access_cookie(self) -> None:
        """What the browser does once the access token has expired, without waiting for it:
        the next request can only be served by rotating the session."""
        self.context.clear_cookies(name=ACCESS_COOKIE)
        assert SESSION_COOKIE in self.cookies()


# --- what a reviewer and axe-core see ----------------------------------------------------


def check_page(person: Person, name: str) -> None:
    """Screenshot the page at both widths and run axe-core on each; serious or critical
    violations fail the test."""
    page = person.page
    size = page.viewport_size
    try:
        for label, viewport in VIEWPORTS.items():
            page.set_viewport_size(viewport)
            screenshot(page, f"{label}-{name}")
            assert_accessible(page, f"{label}-{name}")
    finally:
        page.set_viewport_size(size)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def assert_accessible(page, name: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    # axe is evaluated through the DevTools protocol, which the page's CSP does not govern.
    violations = Axe().run(page).response["violations"]
    AXE_REPORTS.mkdir(parents=True, exist_ok=True)
    (AXE_REPORTS / f"{name}.json").write_text(json.dumps(violations, indent=1))
    blocking = [v for v in violations if v["impact"] in BLOCKING_IMPACTS]
    assert not blocking, f"axe-core on {name}:\n" + "\n".join(
        f"  {v['id']} ({v['impact']}): {v['help']} at "
        f"{[node['target'] for node in v['nodes']]}" for v in blocking)

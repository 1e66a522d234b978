"""Fixtures of the browser suite: Chromium, the site under test, and people at browsers."""

from __future__ import annotations

import os

import pytest
from servers import Server, free_port, server_env
from support import CHEAP_ARGON2, SECRET, reset_database

from app import create_app
from e2e.support import (
    ACCESS_TTL,
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    VIEWPORTS,
    Person,
    require_browser,
)


@pytest.fixture(scope="package")
def playwright():
    """One Playwright for the whole browser suite: its sync API runs an event loop of its
    own, so a second one started beside it fails; modules that need a browser of their own
    (other flags) launch it from this one."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as started:
        yield started


@pytest.fixture(scope="package")
def chromium(playwright):
    # Playwright turns the back/forward cache off; people's browsers have it on.
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000,
        ignore_default_args=["--disable-back-forward-cache"])
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="package")
def site(chromium, tmp_path_factory):
    """gunicorn serving the app on a fresh database (emptied afterwards on PostgreSQL)."""
    url = (os.environ.get("TEST_DATABASE_URL")
           or f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'e2e.sqlite3'}")
    settings = {"TESTING": True, "SECRET_KEY": SECRET, "DATABASE_URL": url,
                "GATEHOUSE_EMAIL_VERIFICATION": "off", **CHEAP_ARGON2}
    create_app(settings)
    reset_database()  # a shared PostgreSQL database starts empty
    create_app(settings)  # the schema, before several workers start at once
    # Every scenario registers its own people from 127.0.0.1: more than the default 10
    # registrations per address per window (tests/test_security_throttle.py tests that limit).
    # Its public address is http://localhost:<port> (passkeys need a host name); it answers
    # at 127.0.0.1 as well, where every other scenario opens it.
    port = free_port()
    env = server_env(url, SECRET, GATEHOUSE_ACCESS_TOKEN_TTL=ACCESS_TTL,
                     GATEHOUSE_REGISTER_LIMIT_IP=1000,
                     GATEHOUSE_PUBLIC_URL=f"http://localhost:{port}")
    try:
        with Server(env, workers=2, threads=4, port=port) as server:
            yield server
    finally:
        reset_database()


@pytest.fixture
def people(chromium, site):
    """Open a browser context (one person's browser, its own cookie jar) per call."""
    opened: list[Person] = []

    def open_browser(user_agent: str | None = None, viewport: str = "desktop",
                     host: str = "127.0.0.1") -> Person:
        """``host="localhost"`` opens the site at its public address, where passkeys work."""
        context = chromium.new_context(base_url=site.url.replace("127.0.0.1", host),
                                       user_agent=user_agent,
                                       viewport=VIEWPORTS[viewport])
        context.set_default_timeout(TIMEOUT_MS)
        person = Person(context, context.new_page())
        opened.append(person)
        return person

    yield open_browser
    problems = [p for person in opened for p in person.problems]
    for person in opened:
        person.context.close()
    assert not problems, f"the browser reported: {problems}"



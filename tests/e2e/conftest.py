"""Fixtures of the browser suite: Chromium, the site under test, and people at browsers."""

from __future__ import annotations

import os

import pytest
from servers import Server, server_env
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
def chromium():
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
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
    settings = {"TESTING": True, "SECRET_KEY": SECRET, "DATABASE_URL": url, **CHEAP_ARGON2}
    create_app(settings)
    reset_database()  # a shared PostgreSQL database starts empty
    create_app(settings)  # the schema, before several workers start at once
    env = server_env(url, SECRET, GATEHOUSE_ACCESS_TOKEN_TTL=ACCESS_TTL)
    try:
        with Server(env, workers=2, threads=4) as server:
            yield server
    finally:
        reset_database()


@pytest.fixture
def people(chromium, site):
    """Open a browser context (one person's browser, its own cookie jar) per call."""
    opened: list[Person] = []

    def open_browser(user_agent: str | None = None, viewport: str = "desktop") -> Person:
        context = chromium.new_context(base_url=site.url, user_agent=user_agent,
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


